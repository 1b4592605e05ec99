#include "admin/admin.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "access/access.h"
#include "audit/audit.h"
#include "core/buf.h"
#include "identity/callers.h"
#include "limits/limiter.h"
#include "metrics/metrics.h"
#include "sts/sts.h"
#include "worker/worker.h"

#define JSON_TYPE "application/json"
#define METRICS_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define MAX_CONNECTIONS 32u
#define CONNECTION_TIMEOUT_S 10u

struct gw_admin {
    struct MHD_Daemon *daemon;
    struct gw_admin_options o;
    uint16_t port;
    atomic_bool stopping;
};

/* Adds one check to checks and, when it fails, its reason to reasons. */
static void add_check(json_t *checks, json_t *reasons, const char *name, bool ok, json_t *detail,
                      const char *why)
{
    json_t *c = detail != NULL ? detail : json_object();
    json_object_set_new(c, "ok", json_boolean(ok));
    if (!ok) {
        json_object_set_new(c, "reason", json_string(why));
        json_array_append_new(reasons, json_sprintf("%s: %s", name, why));
    }
    json_object_set_new(checks, name, c);
}

/* Every readiness check; returns whether all pass. */
static bool judge(struct gw_admin *a, json_t *checks, json_t *reasons)
{
    char why[256] = "";
    bool ready = true;

    bool stopping = atomic_load(&a->stopping);
    add_check(checks, reasons, "stopping", !stopping, NULL, "the gateway is stopping");
    ready = ready && !stopping;

    struct gw_access_snapshot *snap = gw_access_current(a->o.access);
    json_t *access =
        json_pack("{s:I,s:I,s:I}", "generation", (json_int_t)gw_access_snapshot_generation(snap),
                  "callers", (json_int_t)gw_callers_count(gw_access_callers(snap)), "statements",
                  (json_int_t)gw_access_statement_count(snap));
    gw_access_release(snap);
    add_check(checks, reasons, "access", true, access, NULL);

    if (a->o.audit != NULL) {
        bool ok = gw_audit_ready(a->o.audit, why, sizeof why);
        add_check(checks, reasons, "audit", ok, NULL, why);
        ready = ready && ok;
    }
    if (a->o.redis != NULL) {
        bool ok = gw_limiter_shared_ok(a->o.redis);
        add_check(checks, reasons, "shared_limits", ok, NULL,
                  "Redis is unreachable from some worker: limits are local, divided by "
                  "limits.redis.replicas");
        ready = ready && ok;
    }
    if (a->o.sts != NULL) {
        bool ok = gw_sts_ready(a->o.sts, why, sizeof why);
        add_check(checks, reasons, "roles", ok, NULL, why);
        ready = ready && ok;
    }

    int64_t skew = 0, seen = 0;
    if (gw_metrics_clock_skew(a->o.metrics, &skew, &seen)) {
        int64_t off_ms = (skew < 0 ? -skew : skew) * 1000;
        bool ok = off_ms <= a->o.max_clock_skew_ms;
        snprintf(why, sizeof why,
                 "Tencent Cloud's clock (the Date of its last answer) is %lld s %s this host's: "
                 "signatures fail past 300 s; fix this host's time (NTP)",
                 (long long)(skew < 0 ? -skew : skew), skew < 0 ? "behind" : "ahead of");
        add_check(checks, reasons, "clock", ok,
                  json_pack("{s:I,s:I,s:I}", "skew_seconds", (json_int_t)skew, "max_skew_ms",
                            (json_int_t)a->o.max_clock_skew_ms, "seen_seconds_ago",
                            (json_int_t)((int64_t)time(NULL) - seen)),
                  why);
        ready = ready && ok;
    } else {
        add_check(checks, reasons, "clock", true,
                  json_pack("{s:s}", "detail", "no upstream answer with a Date yet"), NULL);
    }
    return ready;
}

static enum MHD_Result send_text(struct MHD_Connection *c, unsigned status, const char *type,
                                 char *text, size_t len)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        free(text);
        return MHD_NO;
    }
    enum MHD_Result ret = MHD_NO;
    if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type) == MHD_YES &&
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store") == MHD_YES) {
        ret = MHD_queue_response(c, status, resp);
    }
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result send_json(struct MHD_Connection *c, unsigned status, json_t *doc)
{
    char *text = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (text == NULL) {
        return MHD_NO;
    }
    return send_text(c, status, JSON_TYPE, text, strlen(text));
}

static enum MHD_Result answer_ready(struct gw_admin *a, struct MHD_Connection *c)
{
    json_t *checks = json_object(), *reasons = json_array();
    if (checks == NULL || reasons == NULL) {
        json_decref(checks);
        json_decref(reasons);
        return MHD_NO;
    }
    bool ready = judge(a, checks, reasons);
    return send_json(c, ready ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE,
                     json_pack("{s:s,s:o,s:o}", "status", ready ? "ready" : "unready", "checks",
                               checks, "reasons", reasons));
}

static enum MHD_Result answer_metrics(struct gw_admin *a, struct MHD_Connection *c)
{
    struct gw_metrics_gauges g = {.shared_limits = -1};
    struct gw_buf out;
    json_t *checks = json_object(), *reasons = json_array();
    if (checks != NULL && reasons != NULL) {
        g.ready = judge(a, checks, reasons);
    }
    json_decref(checks);
    json_decref(reasons);
    g.in_flight = gw_workers_in_flight(a->o.workers);
    g.access_generation = gw_access_generation(a->o.access);
    if (a->o.redis != NULL) {
        g.shared_limits = gw_limiter_shared_ok(a->o.redis) ? 1 : 0;
    }
    if (a->o.audit != NULL) {
        struct gw_audit_stats s;
        gw_audit_stats(a->o.audit, &s);
        g.audit = true;
        g.audit_records = s.records;
        g.audit_batches = s.batches;
        g.audit_max_batch = s.max_batch;
        g.audit_failures = s.failures;
        g.audit_unrecorded = s.unrecorded;
        g.audit_lost = s.lost;
        g.audit_queued = s.queued;
    }
    gw_buf_init(&out, GW_METRICS_MAX_TEXT);
    if (gw_metrics_format(a->o.metrics, &g, &out) != GW_OK) {
        gw_buf_free(&out);
        return MHD_NO;
    }
    size_t len = 0, charged = 0;
    char *text = gw_buf_steal(&out, &len, &charged);
    if (text == NULL) {
        return MHD_NO;
    }
    return send_text(c, MHD_HTTP_OK, METRICS_TYPE, text, len);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    struct gw_admin *a = cls;
    (void)version;
    (void)upload_data;
    if (*con_cls == NULL) {
        *con_cls = a; /* the head: answer once the (ignored) body is in */
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    if (strcmp(url, "/healthz") == 0 && get) {
        return send_json(c, MHD_HTTP_OK, json_pack("{s:s}", "status", "ok"));
    }
    if (strcmp(url, "/readyz") == 0 && get) {
        return answer_ready(a, c);
    }
    if (strcmp(url, "/metrics") == 0 && get) {
        return answer_metrics(a, c);
    }
    if (strcmp(url, "/healthz") == 0 || strcmp(url, "/readyz") == 0 ||
        strcmp(url, "/metrics") == 0) {
        return send_json(c, MHD_HTTP_METHOD_NOT_ALLOWED,
                         json_pack("{s:s}", "error", "only GET is served here"));
    }
    return send_json(c, MHD_HTTP_NOT_FOUND,
                     json_pack("{s:s}", "error", "not found: GET /healthz, /readyz or /metrics"));
}

static bool parse_address(const char *address, uint16_t port, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, address, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        return true;
    }
    if (inet_pton(AF_INET6, address, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        return true;
    }
    return false;
}

enum gw_err gw_admin_start(const struct gw_admin_options *o, struct gw_admin **out, char *msg,
                           size_t msglen)
{
    enum gw_err err;
    struct sockaddr_storage ss;
    struct gw_admin *a = calloc(1, sizeof *a);
    if (a == NULL) {
        snprintf(msg, msglen, "out of memory");
        return GW_ERR_NOMEM;
    }
    a->o = *o;
    atomic_init(&a->stopping, false);
    if (!parse_address(o->address, o->port, &ss)) {
        snprintf(msg, msglen, "admin: listen_address \"%s\" is not a numeric IPv4 or IPv6 address",
                 o->address);
        err = GW_ERR_INVALID;
        goto out;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6) {
        flags |= MHD_USE_IPv6;
    }
    a->daemon =
        MHD_start_daemon(flags, 0, NULL, NULL, on_request, a, MHD_OPTION_SOCK_ADDR,
                         (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT, MAX_CONNECTIONS,
                         MHD_OPTION_CONNECTION_TIMEOUT, CONNECTION_TIMEOUT_S, MHD_OPTION_END);
    if (a->daemon == NULL) {
        snprintf(msg, msglen,
                 "admin: cannot listen on %s port %u (in use, or not an address of this host)",
                 o->address, (unsigned)o->port);
        err = GW_ERR_IO;
        goto out;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(a->daemon, MHD_DAEMON_INFO_BIND_PORT);
    a->port = info != NULL ? info->port : o->port;
    *out = a;
    a = NULL;
    err = GW_OK;
out:
    gw_admin_stop(a);
    return err;
}

uint16_t gw_admin_port(const struct gw_admin *a)
{
    return a->port;
}

void gw_admin_set_stopping(struct gw_admin *a)
{
    if (a != NULL) {
        atomic_store(&a->stopping, true);
    }
}

void gw_admin_stop(struct gw_admin *a)
{
    if (a == NULL) {
        return;
    }
    if (a->daemon != NULL) {
        MHD_stop_daemon(a->daemon);
    }
    free(a);
}
