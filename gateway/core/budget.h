/*
 * budget: one process-wide bound on the memory that callers make the gateway hold (request bodies
 * being received, upstream answers being received or waiting to be read by a slow caller).
 *
 * New calls are refused while the budget is spent; bytes of a call already sent upstream are
 * always taken (overdrawing), since refusing them would lose an answer Tencent Cloud already
 * produced. The worst case is therefore the limit plus, for every call already forwarded, its
 * max_response_bytes. Thread-safe: a counter updated with atomics.
 */
#ifndef GW_BUDGET_H
#define GW_BUDGET_H

#include <stdbool.h>
#include <stddef.h>

struct gw_budget;

/* Returns a new budget of limit bytes (free with gw_budget_free), or NULL when out of memory. */
struct gw_budget *gw_budget_new(size_t limit);

/* Accepts NULL. */
void gw_budget_free(struct gw_budget *b);

/* Takes n bytes if they fit under the limit; returns false (taking nothing) when they do not. */
bool gw_budget_take(struct gw_budget *b, size_t n);

/* Takes n bytes even past the limit. */
void gw_budget_overdraw(struct gw_budget *b, size_t n);

/* Gives back n bytes taken before. */
void gw_budget_give(struct gw_budget *b, size_t n);

/* True when nothing more fits: new calls are refused. */
bool gw_budget_spent(const struct gw_budget *b);

/* Bytes taken now, and the limit. */
size_t gw_budget_used(const struct gw_budget *b);
size_t gw_budget_limit(const struct gw_budget *b);

#endif
