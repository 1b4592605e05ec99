/*
 * idem/shared: ClientToken records in Redis, so that every gateway using the same Redis (with
 * limits.backend "redis") honours a token once: a repeat on another replica while the first call
 * is in flight waits for its answer, a repeat after it ended has it replayed within the window,
 * and the same token with other parameters is FailedOperation.DuplicatedRequest.
 *
 * The local table (idem.h) still comes first and joins repeats that reach the same gateway; only
 * the call that is first on its gateway asks Redis. A record lives at
 * "<prefix>:idem:<caller>:<service>:<action>:<hash>" (hash: of caller, service, action and
 * token) as a hash {s: pending|done, p: parameters' hash, o: owner, st: status, b: body}:
 *   - claim (one Lua script, atomic): absent: becomes pending with a lease of the call's deadline
 *     plus a margin, and the call is sent; pending with the same parameters: the call polls
 *     (50 ms, then 1.5 times longer each time, at most 500 ms, until its own deadline) until the
 *     record is done or its lease ended (then this call claims it and is sent); done: replayed;
 *     other parameters: conflict.
 *   - finish: only by the owner of the claim: done with the answer for the replay window (window
 *     0: one second, for the calls polling it) when the answer is definite and at most
 *     GW_IDEM_SHARED_MAX_ANSWER bytes, else deleted (a repeat is sent again, which Tencent's
 *     ClientToken makes safe).
 * Polling, not pub/sub: no second connection per worker, and a poll costs one small script.
 *
 * The commands share the limiter's connection to Redis (limits/redis.h): its timeout, reconnects
 * and readiness. When Redis does not answer, the call is judged by the local table alone (logged
 * once until every connection is back): replicas may then each send a repeat once.
 *
 * Runs on the worker's loop thread only.
 */
#ifndef GW_IDEM_SHARED_H
#define GW_IDEM_SHARED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/errors.h"
#include "idem/idem.h"

struct gw_call;
struct gw_limiter;
struct gw_loop;
struct gw_redis_shared;
struct gw_idem_shared;
struct redisReply;

/* Answers longer than this are not kept in Redis: a repeat on another replica is sent again. */
#define GW_IDEM_SHARED_MAX_ANSWER (64 * 1024)
/* Calls one worker may have polling at once; more are refused (retry shortly). */
#define GW_IDEM_SHARED_MAX_POLLING 4096
#define GW_IDEM_SHARED_KEY_MAX 512

/* How a claim ended. */
enum gw_idem_shared_step {
    GW_IDEM_SHARED_CLAIMED,  /* first on every replica: send it, then gw_idem_shared_finish */
    GW_IDEM_SHARED_REPLAY,   /* the first call's answer (done elsewhere, or waited for) */
    GW_IDEM_SHARED_CONFLICT, /* the token was used with other parameters */
    GW_IDEM_SHARED_TIMEOUT,  /* the call's deadline came while the first was still in flight */
    GW_IDEM_SHARED_BUSY,     /* GW_IDEM_SHARED_MAX_POLLING calls poll already */
    GW_IDEM_SHARED_FAILED,   /* Redis did not answer: judge by the local table alone */
    GW_IDEM_SHARED_STOPPING, /* the gateway stops */
};

/* A claim's end, on the loop: answer (REPLAY only) is stolen: take its body. */
typedef void (*gw_idem_shared_fn)(struct gw_call *call, enum gw_idem_shared_step step,
                                  struct gw_idem_answer *answer, void *arg);

struct gw_idem_shared_options {
    struct gw_limiter *limiter;    /* borrowed: its connection to Redis carries the records */
    struct gw_redis_shared *state; /* borrowed: for the log line once per change and readiness */
    const char *key_prefix;        /* limits.redis.key_prefix (copied) */
    int64_t window_ms;             /* replay window (0: records are deleted at the end) */
    gw_idem_shared_fn done;
    void *arg;
};

/* One worker's side. *out is new (free with gw_idem_shared_free). */
enum gw_err gw_idem_shared_new(const struct gw_idem_shared_options *o, struct gw_loop *loop,
                               struct gw_idem_shared **out) GW_MUST_CHECK;

/* Polling calls end with STOPPING. Accepts NULL. */
void gw_idem_shared_stop(struct gw_idem_shared *s);

/* Stops (if not yet) and frees. Accepts NULL. */
void gw_idem_shared_free(struct gw_idem_shared *s);

/*
 * Asks Redis about call's token (key from gw_idem_key_make; the call is the first with it on this
 * gateway). deadline_ns (CLOCK_MONOTONIC, 0: none) bounds its wait and its lease. Returns GW_OK
 * when done() will run for call later; otherwise (Redis unreachable: logged) the call is judged
 * by the local table alone and no callback comes.
 */
enum gw_err gw_idem_shared_claim(struct gw_idem_shared *s, struct gw_call *call,
                                 const struct gw_idem_key *key, int64_t deadline_ns) GW_MUST_CHECK;

/*
 * The claimed call ended with this answer: kept for the window when keep and it fits, else the
 * record goes. Sent without waiting for the reply; nothing when Redis is away (the lease ends).
 */
void gw_idem_shared_finish(struct gw_idem_shared *s, struct gw_call *call, unsigned status,
                           const char *body, size_t len, bool keep);

/* ---- pure parts, for tests ------------------------------------------------------------------ */

/*
 * Writes the record's key to out (outlen bytes, NUL-terminated), or GW_ERR_TOO_LARGE when it does
 * not fit (out untouched). The names are for people reading Redis: a byte of theirs that is ':'
 * or not printable ASCII becomes '_'; the hash alone tells tokens apart.
 */
enum gw_err gw_idem_shared_key(const char *prefix, const char *caller, const char *service,
                               const char *action, const struct gw_idem_key *key, char *out,
                               size_t outlen) GW_MUST_CHECK;

/* What a claim's reply says (a reply the script cannot give: FAILED). */
enum gw_idem_shared_reply {
    GW_IDEM_SHARED_R_CLAIMED,
    GW_IDEM_SHARED_R_PENDING,
    GW_IDEM_SHARED_R_CONFLICT,
    GW_IDEM_SHARED_R_DONE, /* *answer filled (new body) */
    GW_IDEM_SHARED_R_BAD,
    GW_IDEM_SHARED_R_NOMEM,
};
enum gw_idem_shared_reply gw_idem_shared_parse(const struct redisReply *reply,
                                               struct gw_idem_answer *answer);

#endif
