/*
 * limits: rate limits per (credential, action), shared by every worker of the process, with fair
 * shares for the callers of one credential and optional quotas per caller.
 *
 * The algorithm is GCRA (the "virtual scheduling" form of a token bucket): a bucket of rate r
 * and burst b is one 64-bit "theoretical arrival time" (TAT), in nanoseconds. A call at time now
 * conforms when max(TAT, now) - now <= (b - 1) / r; it then moves TAT to max(TAT, now) + 1 / r.
 * This admits exactly the sequences a token bucket of b tokens refilled at r per second admits,
 * and one compare-and-swap updates it: no lock, no allocation per call.
 *
 * Buckets live in one fixed open-addressing table allocated at start (max_buckets cells), keyed
 * by a keyed hash (SipHash, random key) of the bucket's name. Cells are claimed with a CAS and
 * never freed: a bucket's state is only its TAT, and a stale TAT is a full bucket.
 *
 * The rule for a call of caller c with credential k, action a (rate R, burst B for (k, a)):
 *  1. quota: if c has a quota (limits.callers.c), c's own bucket (all its calls) must conform;
 *  2. share (fair_share on): the n callers bound to k each own a share bucket for (k, a) with
 *     rate R/n and burst max(1, B/n). The call takes from c's share; if c's share is spent it may
 *     borrow from the share of another caller d only when d's share is full (TAT <= now: d has
 *     used nothing for at least its burst's worth of time);
 *  3. cap: the (k, a) bucket of rate R and burst B must conform.
 * A step that refuses gives back what the earlier steps took.
 *
 * Why this is fair and safe (the design's two claims):
 *  - Nothing exceeds the limit: step 3 admits at most R*t + B calls in any window t.
 *  - No caller starves another: c's share refills at R/n whatever the others do, because others
 *    take from it only when it is full, that is only tokens c left unused past its burst. So c is
 *    always admitted at R/n sustained (burst at least max(1, B/n) - 1). The sum of the shares is
 *    (R, max(n, B)): when n <= B every share-admitted sequence also conforms to the cap, so step 3
 *    never refuses a call within its caller's share, and each caller gets at least an equal
 *    share R/n when all are active, and the idle shares' tokens when others are idle.
 *
 * Thread-safe: every function may be called from any worker at once.
 */
#ifndef GW_LIMITS_H
#define GW_LIMITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/errors.h"

#define GW_LIMITS_MAX_RULES 64    /* entries of each of limits.actions, .services, .callers */
#define GW_LIMITS_MAX_SHARERS 64  /* callers of one credential considered for borrowing */
#define GW_LIMITS_MAX_RATE 1.0e6  /* calls per second */
#define GW_LIMITS_DEFAULT_RATE 20 /* Tencent Cloud's usual per-action limit, per account */

struct gw_limits;

/* A rate: "name" is "service.Action" (actions), "service" (services) or a caller name. */
struct gw_limits_rate {
    const char *name; /* borrowed during gw_limits_new, copied */
    double rate;      /* calls per second, > 0 */
    double burst;     /* calls at once, >= 1; 0: the rate (at least 1) */
};

struct gw_limits_options {
    double default_rate;  /* for actions with no rule; 0: GW_LIMITS_DEFAULT_RATE */
    double default_burst; /* 0: the rate */
    const struct gw_limits_rate *actions;
    size_t action_count;
    const struct gw_limits_rate *services;
    size_t service_count;
    const struct gw_limits_rate *callers; /* quotas: a bucket per caller over all its calls */
    size_t caller_count;
    bool fair_share;    /* shares per caller of a credential (see above) */
    size_t max_buckets; /* cells of the table, rounded up to a power of two; 0: 65536 */
};

/* Which step refused a call. */
enum gw_limits_step {
    GW_LIMITS_OK = 0,
    GW_LIMITS_QUOTA, /* the caller's own quota */
    GW_LIMITS_SHARE, /* the caller's share, and no idle share to borrow */
    GW_LIMITS_CAP,   /* the (credential, action) limit */
    GW_LIMITS_FULL,  /* the table has no cell left for a new bucket */
};

/* One call to judge. Strings are borrowed for the duration of the call. */
struct gw_limits_request {
    const char *credential;
    const char *service;
    const char *action;
    const char *caller;
    const char *const *sharers; /* the callers bound to credential (caller among them), or NULL */
    size_t sharer_count;        /* n; only the first GW_LIMITS_MAX_SHARERS are lent from */
};

/* The limits that apply to a call (gw_limits_rule), and a verdict (gw_limits_take). */
struct gw_limits_rule {
    double rate, burst;             /* the (credential, action) limit */
    double share_rate, share_burst; /* the caller's share; equal to rate, burst without sharing */
    double quota_rate, quota_burst; /* the caller's quota; 0 when none */
};

struct gw_limits_verdict {
    enum gw_limits_step refused; /* GW_LIMITS_OK when admitted */
    int64_t retry_ns;            /* when refused: the earliest instant worth retrying, from now */
    bool borrowed;               /* admitted on another caller's idle share */
    struct gw_limits_rule rule;  /* scaled as applied */
};

/* Returns a new limits in *out (free with gw_limits_free): GW_ERR_INVALID for a bad rate. */
enum gw_err gw_limits_new(const struct gw_limits_options *o, struct gw_limits **out) GW_MUST_CHECK;

/* Accepts NULL. */
void gw_limits_free(struct gw_limits *l);

/*
 * The rates that apply to r, each multiplied by scale (1; or 1/replicas when a shared backend
 * is unreachable): the action's rule, else the service's, else Tencent's published limit for
 * the action, else the default.
 */
void gw_limits_rule(const struct gw_limits *l, const struct gw_limits_request *r, double scale,
                    struct gw_limits_rule *out);

/*
 * Judges one call at now_ns (CLOCK_MONOTONIC nanoseconds, or any clock that never goes back),
 * taking its tokens when admitted. Returns true when admitted; fills *v either way.
 */
bool gw_limits_take(struct gw_limits *l, const struct gw_limits_request *r, double scale,
                    int64_t now_ns, struct gw_limits_verdict *v);

/* Nanoseconds between calls at rate (per second); rate > 0. */
int64_t gw_limits_interval_ns(double rate);

#endif
