/*
 * redis: one worker's asynchronous connection to the Redis server that holds the buckets shared
 * by several gateways (limits.backend "redis"). hiredis's async API runs on the worker's own
 * event loop through a small adapter (its fd watched with gw_loop_watch), so a worker never
 * blocks on Redis.
 *
 * A take is one EVALSHA of a GCRA script (the same rule as gw_limits_take: quota, share with
 * borrowing of idle shares, cap) that checks and updates every bucket of the call atomically,
 * on Redis's clock. Replies come in order; a reply later than timeout_ms, a lost connection or an
 * error reply reports GW_REDIS_FAILED for that call (and for every call still pending), drops the
 * connection and reconnects with exponential backoff (100 ms to 5 s). While not connected,
 * gw_redis_take refuses at once so the caller falls back to local limits.
 *
 * Other modules send their own commands on the same connection (gw_redis_command): ClientToken
 * records (idem/shared.h) share it, its timeout and its readiness.
 *
 * Everything here runs on the loop's thread, except gw_redis_connected_workers.
 */
#ifndef GW_REDIS_H
#define GW_REDIS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/errors.h"
#include "limits/limits.h"

struct gw_call;
struct gw_loop;
struct gw_redis;

/* How one take ended. */
enum gw_redis_result {
    GW_REDIS_ADMITTED,
    GW_REDIS_REFUSED, /* retry_ns and step say when and why */
    GW_REDIS_FAILED,  /* no answer in time, or no connection: judge the call locally */
};

/* The outcome of gw_redis_take for call; runs on the loop's thread, never inside take. */
typedef void (*gw_redis_result_fn)(void *arg, struct gw_call *call, enum gw_redis_result result,
                                   enum gw_limits_step step, int64_t retry_ns);

/*
 * The state every worker's connection shares: how many are connected, for readiness and for
 * one log line per change of the whole.
 */
struct gw_redis_shared {
    atomic_uint connected;            /* workers whose connection is up */
    atomic_bool fallback_logged;      /* the change to local limits was logged */
    atomic_bool idem_fallback_logged; /* the change to local ClientTokens was (idem/shared.h) */
    unsigned workers;                 /* how many workers have a connection */
    char where[96];                   /* "address=... port=..." for the log lines */
};

/* Sets up the shared state of workers connections to address:port. */
void gw_redis_shared_init(struct gw_redis_shared *all, unsigned workers, const char *address,
                          uint16_t port);

struct gw_redis_options {
    const char *address; /* numeric */
    uint16_t port;
    long timeout_ms;             /* a reply later than this is a failure */
    const char *key_prefix;      /* of every key */
    unsigned max_pending;        /* takes waiting for their reply at once; beyond: FAILED */
    struct gw_redis_shared *all; /* borrowed, outlives the connection */
    gw_redis_result_fn result;
    void *result_arg;
};

/* Starts connecting (the connection comes up later on the loop). *out is new. */
enum gw_err gw_redis_new(const struct gw_redis_options *o, struct gw_loop *loop,
                         struct gw_redis **out) GW_MUST_CHECK;

/* Ends the connection: pending takes report GW_REDIS_FAILED first. Accepts NULL. */
void gw_redis_free(struct gw_redis *r);

/* True while connected with the script loaded: a take can be sent. */
bool gw_redis_ready(const struct gw_redis *r);

/*
 * Sends one take for call (its rule computed by gw_limits_rule, unscaled). Returns GW_OK when the
 * result will come through the result callback, GW_ERR_BUSY when not connected or max_pending
 * takes are waiting (judge locally: no callback comes), GW_ERR_NOMEM.
 */
enum gw_err gw_redis_take(struct gw_redis *r, struct gw_call *call,
                          const struct gw_limits_request *req,
                          const struct gw_limits_rule *rule) GW_MUST_CHECK;

struct redisReply;

/*
 * The reply to one gw_redis_command (borrowed: valid during the call only), or NULL when none
 * came in time or the connection ended. Runs on the loop's thread, never inside the command.
 */
typedef void (*gw_redis_reply_fn)(void *arg, struct gw_call *call, const struct redisReply *reply);

/*
 * Sends any command on the connection (argv: argc binary-safe arguments, copied), with the same
 * timeout as takes: a late reply drops the connection. reply NULL: nobody reads the reply.
 * Returns GW_OK when reply will run, GW_ERR_BUSY when not connected or too many are pending (no
 * callback comes), GW_ERR_NOMEM.
 */
enum gw_err gw_redis_command(struct gw_redis *r, int argc, const char **argv, const size_t *argvlen,
                             gw_redis_reply_fn reply, void *arg,
                             struct gw_call *call) GW_MUST_CHECK;

/* True when every worker's connection is up (readiness). */
bool gw_redis_all_connected(const struct gw_redis_shared *all);

#endif
