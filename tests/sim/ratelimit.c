#include "ratelimit.h"

#include <pthread.h>
#include <stdlib.h>

#define WINDOW_NS 1000000000u

/* A ring of the admission times of the last `rate` admitted requests for one key. */
struct window {
    uint64_t *times;
    size_t head;  /* oldest entry once the ring is full */
    size_t count; /* entries used, up to rate */
};

struct sim_ratelimit {
    pthread_mutex_t lock;
    uint32_t rate;
    size_t nkeys;
    struct window *w;
};

enum sim_err sim_ratelimit_new(size_t nkeys, uint32_t rate, struct sim_ratelimit **out)
{
    struct sim_ratelimit *rl;
    size_t i;

    if (rate > SIM_RATELIMIT_MAX) {
        return SIM_ETOOBIG;
    }
    rl = calloc(1, sizeof(*rl));
    if (rl == NULL) {
        return SIM_ENOMEM;
    }
    rl->rate = rate;
    rl->nkeys = nkeys;
    rl->w = calloc(nkeys, sizeof(*rl->w));
    if (rl->w == NULL || pthread_mutex_init(&rl->lock, NULL) != 0) {
        free(rl->w);
        free(rl);
        return SIM_ENOMEM;
    }
    for (i = 0; rate > 0 && i < nkeys; i++) {
        rl->w[i].times = calloc(rate, sizeof(uint64_t));
        if (rl->w[i].times == NULL) {
            sim_ratelimit_free(rl);
            return SIM_ENOMEM;
        }
    }
    *out = rl;
    return SIM_OK;
}

bool sim_ratelimit_take(struct sim_ratelimit *rl, size_t key, uint64_t now_ns)
{
    struct window *w;
    bool ok = true;

    if (rl->rate == 0 || key >= rl->nkeys) {
        return true;
    }
    (void)pthread_mutex_lock(&rl->lock);
    w = &rl->w[key];
    if (w->count < rl->rate) {
        w->times[(w->head + w->count) % rl->rate] = now_ns;
        w->count++;
    } else if (now_ns - w->times[w->head] >= WINDOW_NS) {
        /* the oldest of the last `rate` admissions left the window: replace it */
        w->times[w->head] = now_ns;
        w->head = (w->head + 1) % rl->rate;
    } else {
        ok = false;
    }
    (void)pthread_mutex_unlock(&rl->lock);
    return ok;
}

void sim_ratelimit_free(struct sim_ratelimit *rl)
{
    size_t i;

    if (rl == NULL) {
        return;
    }
    for (i = 0; i < rl->nkeys; i++) {
        free(rl->w[i].times);
    }
    free(rl->w);
    (void)pthread_mutex_destroy(&rl->lock);
    free(rl);
}
