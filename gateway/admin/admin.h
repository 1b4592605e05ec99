/*
 * admin: the operator's listener, apart from the callers' one: GET /healthz (the process is
 * alive), GET /readyz (calls can be forwarded: every check and its reason in a JSON body, 503
 * when one fails) and GET /metrics (Prometheus text format, gateway/metrics). It is not on the
 * hot path: libmicrohttpd runs it on a thread of its own, and a scrape reads the workers'
 * counters without stopping them.
 *
 * Readiness checks: access (callers, policies and the vault are loaded), audit (records can be
 * written; only with an audit log), shared_limits (every worker reaches Redis; only with the
 * Redis backend), roles (every role credential has temporary keys from STS that are not
 * expired; only with roles), clock (Tencent's Date, from the last upstream answer, is within
 * max_clock_skew_ms of this host's clock: TC3 signatures fail past 5 minutes) and stopping.
 */
#ifndef GW_ADMIN_H
#define GW_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/errors.h"

struct gw_access;
struct gw_audit;
struct gw_metrics;
struct gw_redis_shared;
struct gw_sts;
struct gw_workers;

struct gw_admin;

/* What the admin listener reports on: all borrowed, and must outlive it. */
struct gw_admin_options {
    const char *address; /* numeric IPv4 or IPv6 address */
    uint16_t port;       /* 0 picks a free port */
    struct gw_access *access;
    struct gw_audit *audit;              /* NULL without an audit log */
    const struct gw_redis_shared *redis; /* NULL without the Redis backend */
    struct gw_sts *sts;                  /* roles' temporary keys (STS), or NULL */
    struct gw_metrics *metrics;
    struct gw_workers *workers; /* calls in flight */
    long max_clock_skew_ms;
};

/*
 * Starts listening (a thread of libmicrohttpd's own). *out is new (gw_admin_stop). On failure msg
 * says why: GW_ERR_INVALID (address), GW_ERR_IO (cannot listen), GW_ERR_NOMEM.
 */
enum gw_err gw_admin_start(const struct gw_admin_options *o, struct gw_admin **out, char *msg,
                           size_t msglen) GW_MUST_CHECK;

/* The port actually listened on. */
uint16_t gw_admin_port(const struct gw_admin *a);

/* From any thread: the gateway is stopping; /readyz answers 503 from now on. */
void gw_admin_set_stopping(struct gw_admin *a);

/* Stops the listener and frees. Accepts NULL. */
void gw_admin_stop(struct gw_admin *a);

#endif
