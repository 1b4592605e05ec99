/*
 * limiter: one worker's side of the rate limits, what the pipeline's "limit" stage calls. It
 * judges a call by the limits shared by all workers (gw_limits), or by the Redis buckets shared
 * by several gateways (limits.backend "redis"), and holds the calls that wait: for a token (up to
 * limits.max_wait_ms, on a timer of the worker's loop) or for Redis's answer.
 *
 * When Redis does not answer (not connected, or no reply within its timeout) a call is judged by
 * the local buckets with every rate divided by limits.redis.replicas, so the replicas together
 * stay within the account's limit; the change is logged once per change of state, and
 * gw_limiter_shared_ok says it for readiness.
 *
 * A refused call gets RequestLimitExceeded that names the limit and when to retry; it is never
 * sent. Runs on the worker's loop thread only (gw_limiter_shared_ok: any thread).
 */
#ifndef GW_LIMITER_H
#define GW_LIMITER_H

#include <stdbool.h>
#include <stdint.h>

#include "core/call.h"
#include "core/errors.h"

struct gw_limits;
struct gw_loop;
struct gw_redis;
struct gw_redis_shared;

struct gw_limiter;

struct gw_limiter_options {
    struct gw_limits *limits; /* borrowed: shared by every worker */
    long max_wait_ms;         /* 0: refuse at once */
    /* The shared backend: address NULL for local limits only. */
    const char *redis_address;
    uint16_t redis_port;
    long redis_timeout_ms;
    const char *redis_key_prefix;
    unsigned replicas;                   /* local limits are 1/replicas while Redis is away */
    struct gw_redis_shared *redis_state; /* borrowed: one for all workers */
};

/* What the limit stage does with a call. */
enum gw_limiter_step {
    GW_LIMITER_PASS,    /* admitted: go on */
    GW_LIMITER_REFUSED, /* refused (gw_call_refuse done): decided */
    GW_LIMITER_WAIT,    /* the call waits; call->limit.resume runs later on the loop */
};

/* *out is new (free with gw_limiter_free). */
enum gw_err gw_limiter_new(const struct gw_limiter_options *o, struct gw_loop *loop,
                           struct gw_limiter **out) GW_MUST_CHECK;

/*
 * Judges call (identified, allowed: call->credential and call->snapshot set). On
 * GW_LIMITER_WAIT, call->in.will_wait has run, and resume(call, arg) runs exactly once later on
 * the loop: with call->error_code set when refused meanwhile, else to go on.
 */
enum gw_limiter_step gw_limiter_admit(struct gw_limiter *lim, struct gw_call *call,
                                      gw_call_event_fn resume, void *arg);

/* Refuses every waiting call (the gateway stops) and takes no more. On the loop's thread. */
void gw_limiter_stop(struct gw_limiter *lim);

/* Stops (if not yet) and frees. Accepts NULL. */
void gw_limiter_free(struct gw_limiter *lim);

/*
 * The worker's connection to the shared backend (borrowed: valid until gw_limiter_stop), or NULL
 * without Redis or once stopped. Other modules' records share it (idem/shared.h).
 */
struct gw_redis *gw_limiter_redis(const struct gw_limiter *lim);

/* The readiness of the shared backend: true without Redis, or when every worker reaches it. */
bool gw_limiter_shared_ok(const struct gw_redis_shared *state);

#endif
