/*
 * replay: the signatures accepted recently, so that a signed request is accepted once. See
 * identify.h.
 *
 * A fixed table of slots cut into STRIPES stripes, each with its own mutex: workers that check
 * different signatures rarely wait for each other, and memory never grows. A key (the first 128
 * bits of an HMAC, uniformly random) picks its stripe and a start slot; it may live in any of the
 * WINDOW slots from there (wrapping within the stripe). Nothing is ever deleted: a slot whose
 * entry expired is free again, and a look-up scans the whole window, so no tombstones are needed.
 */
#include "identity/identify.h"

#include <pthread.h>
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#define STRIPES 64u
#define WINDOW 32u
#define MIN_SLOTS (STRIPES * WINDOW * 2) /* a window never wraps onto itself */

struct slot {
    unsigned char key[GW_REPLAY_KEY_LEN];
    uint32_t expires; /* seconds since the epoch; 0: never used */
};

/* One cache line each, so that two stripes' locks do not share one. */
struct stripe {
    alignas(64) pthread_mutex_t lock;
    struct slot *slots;
};

struct gw_replay {
    struct stripe stripes[STRIPES];
    size_t per_stripe; /* a power of two */
    struct slot *all;
};

enum gw_err gw_replay_new(size_t slots, struct gw_replay **out)
{
    size_t n = MIN_SLOTS;
    while (n < slots && n <= SIZE_MAX / 2 / sizeof(struct slot)) {
        n *= 2;
    }
    struct gw_replay *r = aligned_alloc(64, sizeof *r);
    if (r == NULL) {
        return GW_ERR_NOMEM;
    }
    memset(r, 0, sizeof *r);
    /* calloc: untouched pages cost nothing until signatures land in them. */
    r->all = calloc(n, sizeof *r->all);
    if (r->all == NULL) {
        free(r);
        return GW_ERR_NOMEM;
    }
    r->per_stripe = n / STRIPES;
    for (size_t i = 0; i < STRIPES; i++) {
        if (pthread_mutex_init(&r->stripes[i].lock, NULL) != 0) {
            while (i > 0) {
                pthread_mutex_destroy(&r->stripes[--i].lock);
            }
            free(r->all);
            free(r);
            return GW_ERR_INTERNAL;
        }
        r->stripes[i].slots = r->all + i * r->per_stripe;
    }
    *out = r;
    return GW_OK;
}

void gw_replay_free(struct gw_replay *replay)
{
    if (replay == NULL) {
        return;
    }
    for (size_t i = 0; i < STRIPES; i++) {
        pthread_mutex_destroy(&replay->stripes[i].lock);
    }
    free(replay->all);
    free(replay);
}

/* Seconds as stored: clamped into 1..UINT32_MAX (0 marks an unused slot). */
static uint32_t stored_time(int64_t t)
{
    if (t < 1) {
        return 1;
    }
    if (t > (int64_t)UINT32_MAX) {
        return UINT32_MAX;
    }
    return (uint32_t)t;
}

enum gw_err gw_replay_check(struct gw_replay *replay, const unsigned char key[GW_REPLAY_KEY_LEN],
                            int64_t now, int64_t expires)
{
    uint64_t h;
    memcpy(&h, key + 1, sizeof h);
    struct stripe *st = &replay->stripes[key[0] % STRIPES];
    size_t mask = replay->per_stripe - 1;
    size_t start = (size_t)h & mask;
    uint32_t at = stored_time(now);
    struct slot *free_slot = NULL;
    enum gw_err err = GW_OK;

    pthread_mutex_lock(&st->lock);
    for (size_t i = 0; i < WINDOW; i++) {
        struct slot *s = &st->slots[(start + i) & mask];
        if (s->expires <= at) {
            /* Never used, or expired: free, and an expired key no longer counts as seen. */
            if (free_slot == NULL) {
                free_slot = s;
            }
            continue;
        }
        if (memcmp(s->key, key, GW_REPLAY_KEY_LEN) == 0) {
            err = GW_ERR_EXISTS;
            goto out;
        }
    }
    if (free_slot == NULL) {
        err = GW_ERR_BUSY;
        goto out;
    }
    memcpy(free_slot->key, key, GW_REPLAY_KEY_LEN);
    free_slot->expires = stored_time(expires);
    err = GW_OK;
out:
    pthread_mutex_unlock(&st->lock);
    return err;
}
