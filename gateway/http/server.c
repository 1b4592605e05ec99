#include "http/server.h"

#include "core/call.h"

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

struct gw_server {
    struct MHD_Daemon *daemon;
    atomic_size_t unanswered; /* calls handed upstream whose answer is not queued yet */
    struct gw_pipeline *pipeline;
    struct gw_server_options opts;
    uint16_t port;
};

enum exchange_state {
    RECEIVING, /* the body is arriving */
    RUNNING,   /* the pipeline has the call */
    FINISHED,  /* call->reply is ready: write it */
};

/* Per-connection state, owned by MHD's con_cls slot, freed in on_completed. */
struct exchange {
    struct gw_call *call;
    struct MHD_Connection *connection;
    struct gw_server *server;
    enum exchange_state state;
    bool want_body;  /* the pipeline wants the body; otherwise it is counted and dropped */
    bool suspended;  /* written on the connection's thread only, before the upstream has the call */
    bool unanswered; /* counted in gw_server.unanswered */
};

static enum MHD_Result queue_reply(struct exchange *ex)
{
    struct gw_call_reply *r = &ex->call->reply;
    if (r->body == NULL) {
        return MHD_NO; /* out of memory: close rather than answer wrongly */
    }
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(r->len, r->body, MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        return MHD_NO;
    }
    r->body = NULL; /* the response owns it now */
    enum MHD_Result ret = MHD_NO;
    if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, GW_CALL_CONTENT_TYPE) ==
            MHD_YES &&
        MHD_add_response_header(resp, "X-Tcgw-Request-Id", ex->call->request_id) == MHD_YES &&
        (r->allow == NULL ||
         MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->allow) == MHD_YES)) {
        ret = MHD_queue_response(ex->connection, r->status, resp);
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

static const char *lookup_header(void *transport, const char *name)
{
    struct exchange *ex = transport;
    return MHD_lookup_connection_value(ex->connection, MHD_HEADER_KIND, name);
}

/* The call no longer waits for its answer: it is being answered, or its connection is gone. */
static void settle(struct gw_server *srv, struct exchange *ex)
{
    if (ex->unanswered) {
        ex->unanswered = false;
        atomic_fetch_sub(&srv->unanswered, 1);
    }
}

/* On the connection's thread, before the call is handed to the upstream thread. */
static void on_will_wait(struct gw_call *call, void *transport)
{
    struct exchange *ex = transport;
    (void)call;
    ex->suspended = true;
    ex->unanswered = true;
    atomic_fetch_add(&ex->server->unanswered, 1);
    MHD_suspend_connection(ex->connection);
}

/* The reply is ready: on the connection's thread (decided without forwarding) or the upstream's. */
static void on_answered(struct gw_call *call, void *transport)
{
    struct exchange *ex = transport;
    (void)call;
    ex->state = FINISHED;
    if (ex->suspended) {
        MHD_resume_connection(ex->connection); /* the only thing another thread may do here */
    }
}

static void peer_address(struct MHD_Connection *c, char out[GW_CALL_PEER_MAX])
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    out[0] = '\0';
    if (info == NULL || info->client_addr == NULL) {
        return;
    }
    const struct sockaddr *sa = info->client_addr;
    if (sa->sa_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out,
                  GW_CALL_PEER_MAX);
    } else if (sa->sa_family == AF_INET6) {
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, out,
                  GW_CALL_PEER_MAX);
    }
}

static struct exchange *exchange_new(struct gw_server *srv, struct MHD_Connection *connection,
                                     const char *method, const char *url)
{
    struct exchange *ex = calloc(1, sizeof *ex);
    if (ex == NULL) {
        return NULL;
    }
    ex->call = gw_call_new(srv->opts.max_body_bytes, srv->opts.max_response_bytes);
    if (ex->call == NULL) {
        free(ex);
        return NULL;
    }
    ex->connection = connection;
    ex->server = srv;
    ex->state = RECEIVING;
    struct gw_call_inbound *in = &ex->call->in;
    in->method = method;
    in->target = url;
    in->has_query = MHD_get_connection_values(connection, MHD_GET_ARGUMENT_KIND, NULL, NULL) > 0;
    in->header = lookup_header;
    in->transport = ex;
    in->will_wait = on_will_wait;
    in->answered = on_answered;
    peer_address(connection, in->peer);
    return ex;
}

static void receive(struct exchange *ex, const char *data, size_t n)
{
    struct gw_call *call = ex->call;
    call->bytes_in += n;
    if (!ex->want_body || call->in.body_too_large) {
        return; /* read and dropped, so the caller still gets an answer */
    }
    if (gw_buf_append(&call->body, data, n) != GW_OK) {
        call->in.body_too_large = true;
        gw_buf_free(&call->body); /* what was kept is of no use any more */
    }
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
        if ((ex = exchange_new(srv, connection, method, url)) == NULL) {
            return MHD_NO;
        }
        *con_cls = ex;
        ex->want_body = gw_pipeline_begin(srv->pipeline, ex->call);
        return MHD_YES;
    }

    switch (ex->state) {
    case RECEIVING:
        if (*upload_data_size > 0) {
            receive(ex, upload_data, *upload_data_size);
            *upload_data_size = 0;
            return MHD_YES;
        }
        ex->state = RUNNING;
        gw_pipeline_run(srv->pipeline, ex->call);
        if (ex->suspended) {
            return MHD_YES; /* resumed when the answer is ready; the call is not ours till then */
        }
        return queue_reply(ex); /* decided without forwarding: answered already */
    case RUNNING:
        return MHD_YES; /* a spurious call while suspended: nothing to do yet */
    case FINISHED:
        settle(srv, ex);
        return queue_reply(ex);
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
