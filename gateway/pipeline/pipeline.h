/*
 * pipeline: the one place that knows the order of the stages every call goes through.
 *
 *   head:  admit -> request head
 *   body:  request body -> identify -> validate -> policy -> limit (may wait) -> sign ->
 *          forward (waits) -> outcome
 *   final: reply -> record, then the transport's answered callback
 *
 * With a journal (the audit log), a stage before signing refuses calls while records cannot be
 * written, and the final stage hands the record to the journal: the answer is released later, on
 * the same thread, when the journal calls gw_pipeline_recorded (after its fsync).
 *
 * Stages run from one table. A stage continues, decides the call (a refusal, or an answer made
 * without forwarding), or waits for the upstream. Every call, decided at any stage or forwarded,
 * passes the final stage exactly once. Adding a stage is a row in pipeline.c's table and its
 * function (stages.c, or waits.c for one that waits). The transport only fills call->in, hands over
 * the body, and writes call->reply when told.
 */
#ifndef GW_PIPELINE_H
#define GW_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>

struct gw_access;
struct gw_apispec;
struct gw_budget;
struct gw_call;
struct gw_idem;
struct gw_loop;
struct gw_limiter;
struct gw_redis_shared;
struct gw_upstream;

struct gw_pipeline;

/* A record sink of the final stage: sees every call once, complete, before its answer goes. */
typedef void (*gw_pipeline_record_fn)(const struct gw_call *call, void *arg);

/*
 * A durable record sink (the audit log). All three run on the pipeline's thread.
 *   ready:  may a call be forwarded now? false (why filled) refuses it before signing.
 *   submit: takes the record of a finished call (reading the call before it returns). hold: the
 *           answer waits; GW_OK then promises one gw_pipeline_recorded for the call, later.
 *           Without hold only the record is queued, and the answer goes at once.
 */
struct gw_pipeline_journal {
    bool (*ready)(void *arg, char *why, size_t whylen);
    int (*submit)(struct gw_call *call, bool hold, void *arg); /* 0 when taken */
    bool fail_open; /* an unrecorded call keeps its answer (and a warning line is logged) */
    void *arg;
};

/* Safe retries (gateway/retry/): only read-only actions and calls carrying a ClientToken. */
struct gw_pipeline_retries {
    bool enabled;             /* false: one attempt per call */
    unsigned max_attempts;    /* 3: attempts per call, the first included */
    long base_ms;             /* 50: the first retry waits up to this (full jitter) */
    long cap_ms;              /* 1000: no wait is longer */
    double budget_ratio;      /* 0.1: retries per call over the window, per worker */
    unsigned budget_min;      /* 10: retries allowed per window whatever the calls */
    unsigned budget_window_s; /* 10 */
};

/* The parts a pipeline uses: all borrowed, and must outlive it. */
struct gw_pipeline_parts {
    const struct gw_apispec *spec;
    struct gw_access *access; /* callers, policies and the vault: who may call what, signed how */
    struct gw_upstream *upstream;
    struct gw_limiter *limiter;   /* rate limits (per worker, like upstream); NULL: none */
    const char *endpoint_suffix;  /* "tencentcloudapi.com" */
    size_t max_body_bytes;        /* a declared Content-Length above it is refused */
    size_t max_response_bytes;    /* quoted in ResponseSizeLimitExceeded */
    long upstream_timeout_ms;     /* quoted in InternalError.UpstreamTimeout */
    struct gw_budget *budget;     /* the memory budget: new calls refused while spent; or NULL */
    bool log_calls;               /* write one log line per call to stderr */
    gw_pipeline_record_fn record; /* another sink (audit, metrics, tests), or NULL */
    void *record_arg;
    const struct gw_pipeline_journal *journal; /* the audit log, or NULL */
    struct gw_loop *loop; /* the worker's loop: retry and idempotency timers; NULL: neither */
    struct gw_idem *idem; /* the ClientToken table shared by the workers; NULL: idempotency off */
    /* limits.backend "redis": ClientTokens are shared through the limiter's connection too. */
    struct gw_redis_shared *redis_state; /* NULL: this gateway's table alone */
    const char *redis_key_prefix;        /* limits.redis.key_prefix */
    struct gw_pipeline_retries retries;
    long deadline_ms;     /* a call's deadline from its arrival; 0: upstream_timeout_ms */
    long max_deadline_ms; /* the most X-Tcgw-Timeout-Ms may ask; 0: deadline_ms */
};

/* Returns a new pipeline (free with gw_pipeline_free), or NULL when out of memory. */
struct gw_pipeline *gw_pipeline_new(const struct gw_pipeline_parts *parts);

/* Accepts NULL. */
void gw_pipeline_free(struct gw_pipeline *p);

/*
 * Runs the stages that need only the head (call->in). Returns true when the body is wanted. False
 * means the call is decided already: the transport discards the body (counting it in
 * call->bytes_in) and still calls gw_pipeline_run, which goes straight to the final stage.
 */
bool gw_pipeline_begin(struct gw_pipeline *p, struct gw_call *call);

/*
 * Runs the rest once the body is in call->body. Exactly once, when call->reply is ready,
 * call->in.answered(call, call->in.transport) runs: before this returns (a call decided without
 * forwarding), or later on the upstream thread. Before a call waits (for a rate-limit token, or
 * the upstream), call->in.will_wait(call, transport) runs on the calling thread, so the transport
 * can suspend before the answer can come; it may run more than once for one call (one suspension).
 * The call is borrowed until answered runs.
 *
 * With a journal, a call the journal holds is answered after gw_pipeline_recorded (will_wait runs
 * first, also for a call decided without forwarding).
 */
void gw_pipeline_run(struct gw_pipeline *p, struct gw_call *call);

/*
 * The journal is done with a held call: recorded, or not (then, unless fail_open, the answer is
 * replaced by InternalError.AuditUnavailable). Runs call->in.answered.
 */
void gw_pipeline_recorded(struct gw_pipeline *p, struct gw_call *call, bool recorded);

/*
 * On the pipeline's thread, as the gateway stops: calls waiting to be sent again are answered now
 * with their latest result. Idempotent.
 */
void gw_pipeline_stop(struct gw_pipeline *p);

/* Whether calls can be forwarded now (readiness); why says what is wrong when not. */
bool gw_pipeline_ready(struct gw_pipeline *p, char *why, size_t whylen);

#endif
