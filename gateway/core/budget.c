#include "core/budget.h"

#include <stdatomic.h>
#include <stdlib.h>

struct gw_budget {
    atomic_size_t used;
    size_t limit;
};

struct gw_budget *gw_budget_new(size_t limit)
{
    struct gw_budget *b = calloc(1, sizeof *b);
    if (b != NULL) {
        atomic_init(&b->used, 0);
        b->limit = limit;
    }
    return b;
}

void gw_budget_free(struct gw_budget *b)
{
    free(b);
}

bool gw_budget_take(struct gw_budget *b, size_t n)
{
    size_t used = atomic_load(&b->used);
    do {
        if (n > b->limit || used > b->limit - n) {
            return false;
        }
    } while (!atomic_compare_exchange_weak(&b->used, &used, used + n));
    return true;
}

void gw_budget_overdraw(struct gw_budget *b, size_t n)
{
    atomic_fetch_add(&b->used, n);
}

void gw_budget_give(struct gw_budget *b, size_t n)
{
    atomic_fetch_sub(&b->used, n);
}

bool gw_budget_spent(const struct gw_budget *b)
{
    return atomic_load(&((struct gw_budget *)b)->used) >= b->limit;
}

size_t gw_budget_used(const struct gw_budget *b)
{
    return atomic_load(&((struct gw_budget *)b)->used);
}

size_t gw_budget_limit(const struct gw_budget *b)
{
    return b->limit;
}
