/*
 * metrics: the gateway's counters, and their Prometheus text exposition (format 0.0.4).
 *
 * Cheap on the hot path: each worker counts into a slot of its own (separate allocations, so no
 * cache line is shared), with no lock and no atomic read-modify-write: a slot has one writer, its
 * worker, which publishes each counter with a relaxed store. A scrape (any thread) adds the
 * slots up. Label values are bounded: actions and services are those of the API descriptions
 * (anything else is "other"), callers those of the callers file, codes the gateway's own or
 * Tencent's; and a slot holds at most GW_METRICS_MAX_SERIES series, past which calls count in one
 * series whose labels are all "other".
 *
 * Fed by the pipeline's record sink (gw_metrics_record, one slot per worker as its argument).
 */
#ifndef GW_METRICS_H
#define GW_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/errors.h"

#define GW_METRICS_MAX_SERIES 1024 /* label sets of tcgw_calls_total per worker */
#define GW_METRICS_MAX_TEXT ((size_t)16 << 20)

struct gw_apispec;
struct gw_call;

struct gw_metrics;
struct gw_metrics_slot;

/* Values from outside the pipeline, read at scrape time by whoever owns them. */
struct gw_metrics_gauges {
    uint64_t in_flight; /* calls waiting for the upstream or their audit record */
    bool ready;
    uint64_t access_generation;
    int shared_limits; /* -1: no Redis backend; 0: Redis unreachable; 1: shared */
    bool audit;        /* the audit fields below are set */
    uint64_t audit_records;
    uint64_t audit_batches; /* one fdatasync each */
    uint64_t audit_max_batch;
    uint64_t audit_failures;
    uint64_t audit_unrecorded;
    uint64_t audit_lost;
    uint64_t audit_queued; /* the audit writer's queue depth */
};

/*
 * A registry of `workers` slots. spec (borrowed, read here only) gives the known actions;
 * version is copied into tcgw_build_info. *out is new (gw_metrics_free).
 */
enum gw_err gw_metrics_new(unsigned workers, const struct gw_apispec *spec, const char *version,
                           struct gw_metrics **out) GW_MUST_CHECK;

/* Accepts NULL. */
void gw_metrics_free(struct gw_metrics *m);

/* The slot of worker i (< workers): borrowed. */
struct gw_metrics_slot *gw_metrics_slot(struct gw_metrics *m, unsigned i);

/* A gw_pipeline_record_fn: counts one finished call into slot (on its worker's thread). */
void gw_metrics_record(const struct gw_call *call, void *slot);

/* As gw_metrics_record, at wall-clock time now (Unix seconds), for tests. */
void gw_metrics_record_at(struct gw_metrics_slot *slot, const struct gw_call *call, int64_t now);

/*
 * The last clock skew seen (the upstream's Date minus this host's clock, in seconds, whole
 * seconds as Date has), and when it was seen (Unix seconds). False when no answer had a Date.
 */
bool gw_metrics_clock_skew(const struct gw_metrics *m, int64_t *skew_s, int64_t *seen_at);

/* Appends the exposition of every metric to out (any thread). GW_ERR_NOMEM, GW_ERR_TOO_LARGE. */
enum gw_err gw_metrics_format(const struct gw_metrics *m, const struct gw_metrics_gauges *g,
                              struct gw_buf *out) GW_MUST_CHECK;

#endif
