#include "http/server.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http/request.h"

struct gw_server {
    struct MHD_Daemon *daemon;
    atomic_size_t unanswered; /* calls handed upstream whose answer is not queued yet */
    struct gw_pipeline *pipeline;
    struct gw_server_options opts;
    uint16_t port;
};

enum exchange_state {
    RECEIVING, /* the body is arriving */
    WAITING,   /* suspended while the call is upstream */
    FINISHED,  /* the call has its outcome or refusal: answer it */
};

/* Per-connection state, owned by MHD's con_cls slot, freed in on_completed. */
struct exchange {
    struct gw_call *call;
    struct MHD_Connection *connection;
    enum exchange_state state;
    bool unanswered; /* counted in gw_server.unanswered */
    bool is_connect; /* a proxy client's CONNECT: any 2xx would mean "tunnel established" */
};

/*
 * The gateway's own failures. libcurl's detail (which can name internal addresses) goes to the
 * log line of the call, not to the caller.
 */
static void explain_upstream_failure(struct gw_call *call, long timeout_ms, size_t max_bytes)
{
    switch (call->outcome) {
    case GW_UPSTREAM_CONNECT:
        gw_call_refuse(call, "InternalError.UpstreamUnreachable",
                       "The gateway (tcgw) could not connect to %s. The call was not sent to "
                       "Tencent Cloud; it is safe to retry.",
                       call->host);
        break;
    case GW_UPSTREAM_TLS:
        gw_call_refuse(call, "InternalError.UpstreamTLSFailure",
                       "The gateway (tcgw) refused the TLS connection to %s: its certificate or "
                       "handshake failed verification. The call was not sent to Tencent Cloud.",
                       call->host);
        break;
    case GW_UPSTREAM_TIMEOUT:
        gw_call_refuse(call, "InternalError.UpstreamTimeout",
                       "The gateway (tcgw) got no complete answer from %s within %ld ms. The call "
                       "may have reached Tencent Cloud: retry with the same ClientToken.",
                       call->host, timeout_ms);
        break;
    case GW_UPSTREAM_TOO_LARGE:
        gw_call_refuse(call, "ResponseSizeLimitExceeded",
                       "The answer from %s was larger than the gateway's limit of %zu bytes "
                       "(upstream.max_response_bytes); narrow the query, e.g. with Limit.",
                       call->host, max_bytes);
        break;
    case GW_UPSTREAM_NOT_SENT:
        gw_call_refuse(call, "ServiceUnavailable",
                       "The gateway (tcgw) is shutting down. The call was not sent to Tencent "
                       "Cloud; it is safe to retry.");
        break;
    case GW_UPSTREAM_ABORTED:
        gw_call_refuse(call, "ServiceUnavailable",
                       "The gateway (tcgw) shut down while waiting for %s. The call may have "
                       "reached Tencent Cloud: retry with the same ClientToken.",
                       call->host);
        break;
    case GW_UPSTREAM_NONE:
    case GW_UPSTREAM_ANSWERED:
    case GW_UPSTREAM_FAILED:
    default:
        gw_call_refuse(call, "InternalError.UpstreamFailure",
                       "The gateway (tcgw) failed while talking to %s. The call may have reached "
                       "Tencent Cloud: retry with the same ClientToken.",
                       call->host);
        break;
    }
}

char *gw_server_answer(struct gw_call *call, long upstream_timeout_ms, size_t max_response_bytes,
                       unsigned *status, size_t *len)
{
    if (call->error_code == NULL && call->outcome == GW_UPSTREAM_ANSWERED) {
        char *body = call->response.data;
        *len = call->response.len;
        *status = (unsigned)call->http_status;
        if (body == NULL) {
            body = calloc(1, 1);
        }
        gw_buf_init(&call->response, call->response.max); /* the body is the caller's now */
        return body;
    }
    if (call->error_code == NULL) {
        explain_upstream_failure(call, upstream_timeout_ms, max_response_bytes);
    }
    *status = MHD_HTTP_OK;
    return gw_error_body(call->error_code, call->error_message, call->request_id, len);
}

static const char *outcome_name(enum gw_upstream_outcome outcome)
{
    switch (outcome) {
    case GW_UPSTREAM_NONE:
        return "none";
    case GW_UPSTREAM_ANSWERED:
        return "answered";
    case GW_UPSTREAM_CONNECT:
        return "connect";
    case GW_UPSTREAM_TLS:
        return "tls";
    case GW_UPSTREAM_TIMEOUT:
        return "timeout";
    case GW_UPSTREAM_TOO_LARGE:
        return "too_large";
    case GW_UPSTREAM_NOT_SENT:
        return "not_sent";
    case GW_UPSTREAM_ABORTED:
        return "aborted";
    default:
        return "failed";
    }
}

/*
 * One line per call. Every field is either checked by the request stage to a narrow alphabet
 * (service, action) or produced by the gateway itself, so no caller text can forge a line.
 */
static void log_call(const struct gw_call *call, unsigned status)
{
    struct timespec now;
    gw_call_stamp(&now);
    double ms = (double)(now.tv_sec - call->times.received.tv_sec) * 1e3 +
                (double)(now.tv_nsec - call->times.received.tv_nsec) / 1e6;
    fprintf(stderr,
            "level=info event=call request_id=%s service=%s action=%s upstream=%s status=%u "
            "error=%s ms=%.3f%s%s%s\n",
            call->request_id, call->service[0] ? call->service : "-",
            call->action[0] ? call->action : "-", outcome_name(call->outcome), status,
            call->error_code != NULL ? call->error_code : "-", ms,
            call->upstream_detail[0] ? " detail=\"" : "", call->upstream_detail,
            call->upstream_detail[0] ? "\"" : "");
}

static enum MHD_Result queue_answer(struct gw_server *srv, struct exchange *ex)
{
    unsigned status = 0;
    size_t len = 0;
    char *body = gw_server_answer(ex->call, srv->opts.upstream_timeout_ms,
                                  srv->opts.max_response_bytes, &status, &len);
    if (body == NULL) {
        return MHD_NO;
    }
    if (ex->is_connect) {
        status = MHD_HTTP_METHOD_NOT_ALLOWED;
    }
    log_call(ex->call, status);
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        free(body);
        return MHD_NO;
    }
    enum MHD_Result ret = MHD_NO;
    if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, GW_CALL_CONTENT_TYPE) ==
            MHD_YES &&
        MHD_add_response_header(resp, "X-Tcgw-Request-Id", ex->call->request_id) == MHD_YES &&
        (!ex->is_connect ||
         MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "POST") == MHD_YES)) {
        ret = MHD_queue_response(ex->connection, status, resp);
    }
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result answer_health(struct MHD_Connection *connection)
{
    static const char ok[] = "{\"status\":\"ok\"}";
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(sizeof ok - 1, (void *)ok, MHD_RESPMEM_PERSISTENT);
    if (resp == NULL) {
        return MHD_NO;
    }
    enum MHD_Result ret = MHD_NO;
    if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, GW_CALL_CONTENT_TYPE) ==
        MHD_YES) {
        ret = MHD_queue_response(connection, MHD_HTTP_OK, resp);
    }
    MHD_destroy_response(resp);
    return ret;
}

static const char *header(struct MHD_Connection *c, const char *name)
{
    return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
}

/* Runs on the upstream thread: the only thing it may do with the connection is resume it. */
static void on_forwarded(struct gw_call *call, void *arg)
{
    struct exchange *ex = arg;
    struct MHD_Connection *connection = ex->connection;
    (void)call;
    ex->state = FINISHED;
    MHD_resume_connection(connection);
}

/* The call no longer waits for its answer: it is being answered, or its connection is gone. */
static void settle(struct gw_server *srv, struct exchange *ex)
{
    if (ex->unanswered) {
        ex->unanswered = false;
        atomic_fetch_sub(&srv->unanswered, 1);
    }
}

/* The first callback of a request: the head is known, no body has been read. */
static bool begin(struct gw_server *srv, struct exchange *ex, const char *method, const char *url)
{
    struct MHD_Connection *c = ex->connection;
    struct gw_request_input in = {
        .method = method,
        .target = url,
        .host = header(c, MHD_HTTP_HEADER_HOST),
        .content_type = header(c, MHD_HTTP_HEADER_CONTENT_TYPE),
        .action = header(c, "X-TC-Action"),
        .version = header(c, "X-TC-Version"),
        .region = header(c, "X-TC-Region"),
        .language = header(c, "X-TC-Language"),
        .has_query = MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, NULL, NULL) > 0,
    };
    if (!gw_request_check_head(&in, srv->opts.endpoint_suffix, ex->call)) {
        return false;
    }
    const char *length = header(c, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (length != NULL && strtoull(length, NULL, 10) > srv->opts.max_body_bytes) {
        gw_call_refuse(ex->call, "RequestSizeLimitExceeded",
                       "The body is larger than the gateway's limit of %zu bytes.",
                       srv->opts.max_body_bytes);
        return false;
    }
    return true;
}

/* The whole body has arrived and nothing was refused yet: check, sign and forward. */
static enum MHD_Result dispatch(struct gw_server *srv, struct exchange *ex)
{
    if (!gw_request_parse_body(ex->call) || !gw_pipeline_prepare(srv->pipeline, ex->call)) {
        ex->state = FINISHED;
        return queue_answer(srv, ex);
    }
    /* Suspend before forwarding, so the resume from the upstream thread can never come first. */
    ex->state = WAITING;
    ex->unanswered = true;
    atomic_fetch_add(&srv->unanswered, 1);
    MHD_suspend_connection(ex->connection);
    if (gw_pipeline_forward(srv->pipeline, ex->call, on_forwarded, ex) != GW_OK) {
        ex->state = FINISHED;
        MHD_resume_connection(ex->connection);
    }
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *connection, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    struct gw_server *srv = cls;
    struct exchange *ex = *con_cls;
    (void)version;

    if (ex == NULL) {
        if (strcmp(method, "GET") == 0 && strcmp(url, "/healthz") == 0) {
            return answer_health(connection);
        }
        ex = calloc(1, sizeof *ex);
        if (ex == NULL) {
            return MHD_NO;
        }
        ex->call = gw_call_new(srv->opts.max_body_bytes, srv->opts.max_response_bytes);
        if (ex->call == NULL) {
            free(ex);
            return MHD_NO;
        }
        ex->connection = connection;
        ex->state = RECEIVING;
        ex->is_connect = strcmp(method, MHD_HTTP_METHOD_CONNECT) == 0;
        *con_cls = ex;
        if (!begin(srv, ex, method, url)) {
            ex->state = FINISHED;
            return queue_answer(srv, ex);
        }
        return MHD_YES;
    }

    switch (ex->state) {
    case RECEIVING:
        if (*upload_data_size > 0) {
            /* Past the limit the rest is read and dropped, so the caller still gets an answer. */
            if (ex->call->error_code == NULL &&
                gw_buf_append(&ex->call->body, upload_data, *upload_data_size) != GW_OK) {
                gw_call_refuse(ex->call, "RequestSizeLimitExceeded",
                               "The body is larger than the gateway's limit of %zu bytes.",
                               srv->opts.max_body_bytes);
            }
            *upload_data_size = 0;
            return MHD_YES;
        }
        if (ex->call->error_code != NULL) {
            ex->state = FINISHED;
            return queue_answer(srv, ex);
        }
        return dispatch(srv, ex);
    case WAITING:
        return MHD_YES; /* a spurious call while suspended: nothing to do yet */
    case FINISHED:
        settle(srv, ex);
        return queue_answer(srv, ex);
    default:
        return MHD_NO;
    }
}

static void on_completed(void *cls, struct MHD_Connection *connection, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct gw_server *srv = cls;
    struct exchange *ex = *con_cls;
    (void)connection;
    (void)toe;
    if (ex == NULL) {
        return;
    }
    settle(srv, ex);
    gw_call_free(ex->call);
    free(ex);
    *con_cls = NULL;
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

enum gw_err gw_server_start(const struct gw_server_options *opts, struct gw_pipeline *pipeline,
                            struct gw_server **out, char *msg, size_t msglen)
{
    enum gw_err err;
    struct sockaddr_storage ss;
    struct gw_server *srv = calloc(1, sizeof *srv);
    if (srv == NULL) {
        snprintf(msg, msglen, "out of memory");
        return GW_ERR_NOMEM;
    }
    srv->opts = *opts;
    srv->pipeline = pipeline;
    if (!parse_address(opts->address, opts->port, &ss)) {
        snprintf(msg, msglen, "listen_address \"%s\" is not a numeric IPv4 or IPv6 address",
                 opts->address);
        err = GW_ERR_INVALID;
        goto out;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ITC | MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6) {
        flags |= MHD_USE_IPv6;
    }
    srv->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, srv, MHD_OPTION_SOCK_ADDR,
                                   (struct sockaddr *)&ss, MHD_OPTION_THREAD_POOL_SIZE,
                                   (unsigned int)(opts->threads > 1 ? opts->threads : 0),
                                   MHD_OPTION_CONNECTION_LIMIT, (unsigned int)opts->max_connections,
                                   MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)60,
                                   MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv, MHD_OPTION_END);
    if (srv->daemon == NULL) {
        snprintf(msg, msglen,
                 "cannot listen on %s port %u (in use, or not an address of this host)",
                 opts->address, (unsigned)opts->port);
        err = GW_ERR_IO;
        goto out;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = info != NULL ? info->port : opts->port;
    *out = srv;
    srv = NULL;
    err = GW_OK;
out:
    gw_server_stop(srv);
    return err;
}

uint16_t gw_server_port(const struct gw_server *server)
{
    return server->port;
}

void gw_server_quiesce(struct gw_server *server)
{
    MHD_socket fd = MHD_quiesce_daemon(server->daemon);
    if (fd != MHD_INVALID_SOCKET) {
        close(fd);
    }
}

bool gw_server_drain(struct gw_server *server, long timeout_ms)
{
    struct timespec ten_ms = {.tv_sec = 0, .tv_nsec = 10 * 1000 * 1000};
    for (long waited = 0; waited < timeout_ms; waited += 10) {
        if (atomic_load(&server->unanswered) == 0) {
            /* Queued answers are written by the server threads right after this. */
            nanosleep(&ten_ms, NULL);
            return true;
        }
        nanosleep(&ten_ms, NULL);
    }
    return false;
}

void gw_server_stop(struct gw_server *server)
{
    if (server == NULL) {
        return;
    }
    if (server->daemon != NULL) {
        MHD_stop_daemon(server->daemon);
    }
    free(server);
}
