/*
 * ratelimit: at most N requests per key (one key per API action) in any sliding one-second window,
 * as Tencent states per-action limits ("20 requests per second"). Mutex-protected.
 */
#ifndef SIM_RATELIMIT_H
#define SIM_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common.h"

/* Largest accepted per-second rate; the window keeps one timestamp per allowed request. */
#define SIM_RATELIMIT_MAX 100000u

struct sim_ratelimit;

/*
 * Creates a limiter for nkeys keys allowing rate requests per second each; rate 0 disables it.
 * *out is new; free with sim_ratelimit_free. Returns SIM_ETOOBIG above SIM_RATELIMIT_MAX.
 */
enum sim_err sim_ratelimit_new(size_t nkeys, uint32_t rate,
                               struct sim_ratelimit **out) SIM_MUST_CHECK;

/* Takes one request for key at monotonic time now_ns. Returns false if it must be refused (a
 * refused request does not count against later ones). */
bool sim_ratelimit_take(struct sim_ratelimit *rl, size_t key, uint64_t now_ns);

/* Accepts NULL. */
void sim_ratelimit_free(struct sim_ratelimit *rl);

#endif
