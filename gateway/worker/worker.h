/*
 * worker: the gateway's threads. Each worker owns one event loop and, on it, an HTTP server per
 * listener (libmicrohttpd, sharing each listening port with the other workers: plain HTTP, and
 * HTTPS with client certificates when configured), one upstream (a curl multi handle) and one
 * pipeline that every listener of the worker feeds. A call is accepted, checked, signed, forwarded,
 * resumed and answered on one thread: no lock, no wake-up and no queue on its way. The workers
 * share only read-only parts (API descriptions, the vault) and atomic counters (the memory budget).
 */
#ifndef GW_WORKER_H
#define GW_WORKER_H

#include <stdbool.h>
#include <stdint.h>

#include "core/errors.h"
#include "http/server.h"
#include "limits/limiter.h"
#include "pipeline/pipeline.h"
#include "upstream/upstream.h"

struct gw_audit;
struct gw_metrics;
struct gw_workers;

struct gw_workers_options {
    unsigned count; /* threads, at least 1 */
    /* The listeners: either may be NULL, not both. Borrowed during gw_workers_start only.
     * Each one's max_connections and max_connections_per_address are for all workers together. */
    const struct gw_server_options *plain; /* plain HTTP */
    const struct gw_server_options *tls;   /* HTTPS (its tls_* fields set) */
    struct gw_upstream_options upstream;   /* per worker */
    struct gw_pipeline_parts parts; /* .upstream, .limiter, .journal are ignored: per worker */
    const struct gw_limiter_options *limits; /* rate limits (each worker a limiter), or NULL */
    struct gw_audit *audit;     /* the audit log, or NULL: each worker gets a port and a journal */
    struct gw_metrics *metrics; /* or NULL: worker i counts into slot i (the pipeline's record
                                   sink, replacing parts.record) */
};

/* Starts the workers. On failure msg says why. *out is new: free with gw_workers_stop. */
enum gw_err gw_workers_start(const struct gw_workers_options *opts, struct gw_workers **out,
                             char *msg, size_t msglen) GW_MUST_CHECK;

/* The port every worker's plain listener listens on; 0 when there is none. */
uint16_t gw_workers_port(const struct gw_workers *w);

/* The port every worker's HTTPS listener listens on; 0 when there is none. */
uint16_t gw_workers_tls_port(const struct gw_workers *w);

/* From any thread: calls of every listener waiting for the upstream or their audit record. */
size_t gw_workers_in_flight(const struct gw_workers *w);

/* Stops accepting on every listener; new calls on open connections are refused as not sent (see
 * gw_server). */
void gw_workers_quiesce(struct gw_workers *w);

/* Waits up to timeout_ms until no call of any listener waits for the upstream. Returns false if
 * some still do. */
bool gw_workers_drain(struct gw_workers *w, long timeout_ms);

/* Ends every upstream transfer still running (their calls are answered), then waits up to
 * timeout_ms for those answers to be queued. */
void gw_workers_stop_upstreams(struct gw_workers *w, long timeout_ms);

/* Stops the loops, joins the threads, closes every connection and frees. Accepts NULL. */
void gw_workers_stop(struct gw_workers *w);

#endif
