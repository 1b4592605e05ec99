#include "http/server.h"

#include <arpa/inet.h>
#include <gnutls/gnutls.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/budget.h"
#include "core/call.h"
#include "core/loop.h"
#include "http/framing.h"
#include "http/peer.h"
#include "http/watch.h"
#include "pipeline/pipeline.h"

struct gw_server {
    struct MHD_Daemon *daemon;
    struct gw_loop *loop;
    struct gw_loop_watch *mhd_ready; /* libmicrohttpd's own epoll fd, watched by the loop */
    struct gw_loop_timer *mhd_timer; /* libmicrohttpd's next timeout */
    atomic_size_t unanswered;        /* calls handed upstream whose answer is not queued yet */
    atomic_bool stopping; /* new calls are answered ServiceUnavailable: set from any thread */
    bool quiesced;        /* no longer accepting (on the loop's thread) */
    struct gw_pipeline *pipeline;
    struct gw_watch *watch;
    struct gw_server_options opts;
    uint16_t port;
    bool tls;        /* an HTTPS listener */
    char *client_ca; /* HTTPS: the CA certificates (libmicrohttpd keeps a pointer to them) */
};

/*
 * TLS 1.2 and 1.3 only, GnuTLS's default suites otherwise. Renegotiation is not offered, and
 * TLS 1.3 post-handshake authentication is not enabled: a connection's client certificate cannot
 * change after its handshake, which is why it is judged once per connection.
 */
#define TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

/*
 * libmicrohttpd's memory per connection (read buffer, parsed head, answer head), cleared for
 * every request and when its read buffer shrinks: 8 KiB holds a head of up to 4 KiB with room
 * for the answer's head (an SDK's signed head is under 1 KiB), and costs a quarter of the
 * clearing per call and of the memory per connection of libmicrohttpd's default, 32 KiB. A
 * larger head is answered 431 by libmicrohttpd.
 */
#define CONNECTION_MEMORY_BYTES (8 * 1024)

enum exchange_state {
    RECEIVING, /* the body is arriving */
    RUNNING,   /* the pipeline has the call */
    FINISHED,  /* call->reply is ready: write it */
};

/* Per-connection state, owned by MHD's socket_context slot: from a connection's start to its
 * close. NULL when out of memory at the start (the connection is then not watched). */
struct link {
    struct gw_watch_entry *watch;
    bool peer_judged;       /* HTTPS: the client certificate was judged (on the first request) */
    const char *cert_error; /* static: why it is refused, or NULL */
    char cert_name[GW_PEER_NAME_MAX + 1]; /* the verified name, "" when refused */
};

/* Per-request state, owned by MHD's con_cls slot, freed in on_completed. */
struct exchange {
    struct gw_call *call;
    struct MHD_Connection *connection;
    struct gw_server *server;
    enum exchange_state state;
    bool want_body;        /* the pipeline wants the body; otherwise it is counted and dropped */
    bool suspended;        /* the call waits for the upstream: resumed when answered */
    bool unanswered;       /* counted in gw_server.unanswered */
    bool head_decided;     /* decided from the head: its body is not read */
    size_t raw_target_len; /* the request target as received, before any decoding */
};

/* A reply body on its way to a caller: its memory stays charged until it is sent. */
struct held_reply {
    char *body;
    size_t charged;
    struct gw_budget *budget;
};

static void release_reply(void *cls)
{
    struct held_reply *h = cls;
    gw_call_reply_free(h->body, h->charged, h->budget);
    free(h);
}

static enum MHD_Result queue_reply(struct gw_server *srv, struct exchange *ex)
{
    struct gw_call_reply *r = &ex->call->reply;
    struct held_reply *h = malloc(sizeof *h);
    if (r->body == NULL || h == NULL) {
        free(h);
        return MHD_NO; /* out of memory: close rather than answer wrongly */
    }
    h->body = r->body;
    h->charged = r->charged;
    h->budget = srv->opts.budget;
    struct MHD_Response *resp =
        MHD_create_response_from_buffer_with_free_callback_cls(r->len, r->body, release_reply, h);
    if (resp == NULL) {
        free(h);
        return MHD_NO;
    }
    r->body = NULL; /* the response owns it now */
    r->charged = 0;
    bool close = r->close || atomic_load_explicit(&srv->stopping, memory_order_relaxed);
    enum MHD_Result ret = MHD_NO;
    if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, GW_CALL_CONTENT_TYPE) ==
            MHD_YES &&
        MHD_add_response_header(resp, "X-Tcgw-Request-Id", ex->call->request_id) == MHD_YES &&
        (r->allow == NULL ||
         MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->allow) == MHD_YES) &&
        (!close || MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close") == MHD_YES)) {
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

/* GET /readyz: 200 while calls can be forwarded, 503 with the reason otherwise (the audit log). */
static enum MHD_Result answer_ready(struct gw_server *srv, struct MHD_Connection *connection)
{
    char why[256] = "";
    bool stopping = atomic_load_explicit(&srv->stopping, memory_order_relaxed);
    bool ready = !stopping && gw_pipeline_ready(srv->pipeline, why, sizeof why);
    json_t *doc = ready ? json_pack("{s:s}", "status", "ready")
                        : json_pack("{s:s,s:s}", "status", "unready", "reason",
                                    stopping ? "the gateway is stopping" : why);
    char *text = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (text == NULL) {
        return MHD_NO;
    }
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        free(text);
        return MHD_NO;
    }
    enum MHD_Result ret = MHD_NO;
    if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, GW_CALL_CONTENT_TYPE) ==
        MHD_YES) {
        ret = MHD_queue_response(connection, ready ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE,
                                 resp);
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

/* Before the call is handed to the upstream. */
static void on_will_wait(struct gw_call *call, void *transport)
{
    struct exchange *ex = transport;
    (void)call;
    if (ex->suspended) {
        return; /* suspended already: it waited for a rate-limit token, or it was forwarded
                   and now waits for its audit record as well */
    }
    ex->suspended = true;
    ex->unanswered = true;
    atomic_fetch_add(&ex->server->unanswered, 1);
    MHD_suspend_connection(ex->connection);
}

/* The reply is ready: decided without forwarding (while running) or after the upstream. */
static void on_answered(struct gw_call *call, void *transport)
{
    struct exchange *ex = transport;
    (void)call;
    ex->state = FINISHED;
    if (ex->suspended) {
        /* In external-event mode nothing wakes libmicrohttpd: run it on the loop's next turn. */
        MHD_resume_connection(ex->connection);
        gw_loop_timer_set(ex->server->mhd_timer, 0);
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

static struct link *link_of(struct MHD_Connection *connection)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return info != NULL ? info->socket_context : NULL;
}

static struct gw_watch_entry *watch_entry(struct MHD_Connection *connection)
{
    struct link *l = link_of(connection);
    return l != NULL ? l->watch : NULL;
}

/* HTTPS: what the connection's client certificate proves, judged on its first request. */
static void judge_peer(struct MHD_Connection *connection, struct gw_call_inbound *in)
{
    struct link *l = link_of(connection);
    if (l == NULL) {
        in->cert_error = "the gateway had no memory left to check the client certificate";
        return;
    }
    if (!l->peer_judged) {
        const union MHD_ConnectionInfo *info =
            MHD_get_connection_info(connection, MHD_CONNECTION_INFO_GNUTLS_SESSION);
        l->cert_error = gw_peer_verify(info != NULL ? info->tls_session : NULL, l->cert_name);
        l->peer_judged = true;
    }
    in->cert_error = l->cert_error;
    in->cert_name = l->cert_error == NULL ? l->cert_name : NULL;
}

/*
 * libmicrohttpd's first word on a request: the target as received (it decodes the one it hands
 * the request handler). The exchange starts here; the request handler fills it in.
 */
static void *on_target(void *cls, const char *uri, struct MHD_Connection *connection)
{
    struct exchange *ex = calloc(1, sizeof *ex);
    (void)cls;
    if (ex != NULL) {
        ex->connection = connection;
        ex->raw_target_len = strlen(uri);
    }
    return ex;
}

static bool exchange_start(struct gw_server *srv, struct exchange *ex, const char *method,
                           const char *url, const char *version)
{
    struct MHD_Connection *connection = ex->connection;
    ex->call = gw_call_new(srv->opts.max_body_bytes, srv->opts.max_response_bytes);
    if (ex->call == NULL) {
        return false;
    }
    if (srv->opts.budget != NULL) {
        gw_call_charge(ex->call, srv->opts.budget);
    }
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
    in->stopping = atomic_load_explicit(&srv->stopping, memory_order_relaxed);
    in->accept = srv->opts.accept;
    in->unauthenticated_caller = srv->opts.unauthenticated_caller;
    in->listener_port = srv->port;
    if (srv->tls && (srv->opts.accept & GW_ACCEPT_CERT) != 0) {
        judge_peer(connection, in);
    }
    peer_address(connection, in->peer);
    gw_framing_check(connection, method, ex->raw_target_len, version, in);
    return true;
}

static void receive(struct exchange *ex, const char *data, size_t n)
{
    struct gw_call *call = ex->call;
    call->bytes_in += n;
    if (!ex->want_body || call->in.body_too_large || call->in.over_budget) {
        return; /* read and dropped, so the caller still gets an answer */
    }
    enum gw_err err = gw_buf_append(&call->body, data, n);
    if (err != GW_OK) {
        call->in.body_too_large = err != GW_ERR_BUDGET;
        call->in.over_budget = err == GW_ERR_BUDGET;
        gw_buf_free(&call->body); /* what was kept is of no use any more */
    }
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *connection, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    struct gw_server *srv = cls;
    struct exchange *ex = *con_cls;

    if (ex == NULL) {
        return MHD_NO; /* out of memory when the request began */
    }
    if (ex->call == NULL) {
        if (strcmp(method, "GET") == 0 && strcmp(url, "/healthz") == 0) {
            return answer_health(connection);
        }
        if (strcmp(method, "GET") == 0 && strcmp(url, "/readyz") == 0) {
            return answer_ready(srv, connection);
        }
        if (!exchange_start(srv, ex, method, url, version)) {
            return MHD_NO;
        }
        ex->want_body = gw_pipeline_begin(srv->pipeline, ex->call);
        if (ex->want_body) {
            return MHD_YES;
        }
        /* Decided from the head: answer now, and close rather than read a body of no use (it
         * may never end: an unsupported coding, a declared size past the limit). */
        ex->state = RUNNING;
        gw_watch_disarm(watch_entry(connection));
        ex->head_decided = true;
        gw_pipeline_run(srv->pipeline, ex->call);
        if (ex->suspended) {
            return MHD_YES; /* waits for its audit record; resumed when answered */
        }
        ex->call->reply.close = ex->call->reply.close || ex->call->in.has_body;
        return queue_reply(srv, ex);
    }

    switch (ex->state) {
    case RECEIVING:
        if (*upload_data_size > 0) {
            receive(ex, upload_data, *upload_data_size);
            *upload_data_size = 0;
            return MHD_YES;
        }
        ex->state = RUNNING;
        gw_watch_disarm(watch_entry(connection));
        gw_pipeline_run(srv->pipeline, ex->call);
        if (ex->suspended) {
            return MHD_YES; /* resumed when the answer is ready; the call is not ours till then */
        }
        return queue_reply(srv, ex); /* decided without forwarding: answered already */
    case RUNNING:
        return MHD_YES; /* a spurious call while suspended: nothing to do yet */
    case FINISHED:
        settle(srv, ex);
        if (ex->head_decided) {
            ex->call->reply.close = ex->call->reply.close || ex->call->in.has_body;
        }
        return queue_reply(srv, ex);
    default:
        return MHD_NO;
    }
}

static void on_completed(void *cls, struct MHD_Connection *connection, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct gw_server *srv = cls;
    struct exchange *ex = *con_cls;
    (void)toe;
    if (ex == NULL) {
        gw_watch_arm(srv->watch, watch_entry(connection));
        return;
    }
    settle(srv, ex);
    gw_call_free(ex->call);
    free(ex);
    *con_cls = NULL;
    gw_watch_arm(srv->watch, watch_entry(connection)); /* the next request's deadline */
}

static void on_connection(void *cls, struct MHD_Connection *connection, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    struct gw_server *srv = cls;
    struct link *l;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *info =
            MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
        if ((l = calloc(1, sizeof *l)) != NULL && info != NULL) {
            l->watch = gw_watch_add(srv->watch, info->connect_fd);
        }
        *socket_context = l;
    } else {
        l = *socket_context;
        if (l != NULL) {
            gw_watch_remove(srv->watch, l->watch); /* before the socket is closed */
            free(l);
        }
        *socket_context = NULL;
    }
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

/* Runs libmicrohttpd for what is ready, then sets the loop's timer to its next timeout. */
static void run_mhd(void *arg)
{
    struct gw_server *srv = arg;
    MHD_run(srv->daemon);
    MHD_UNSIGNED_LONG_LONG ms = 0;
    if (MHD_get_timeout(srv->daemon, &ms) == MHD_YES) {
        gw_loop_timer_set(srv->mhd_timer, ms > 60000 ? 60000L : (long)ms);
    } else {
        gw_loop_timer_set(srv->mhd_timer, -1);
    }
}

/*
 * Loads the TLS material once with GnuTLS, as libmicrohttpd will, to say which file is wrong:
 * libmicrohttpd only fails to start.
 */
static enum gw_err check_tls(const struct gw_server_options *o, char *msg, size_t msglen)
{
    enum gw_err err = GW_ERR_INVALID;
    gnutls_certificate_credentials_t cred = NULL;
    gnutls_datum_t cert = {(unsigned char *)o->tls_cert_pem, (unsigned)strlen(o->tls_cert_pem)};
    gnutls_datum_t key = {(unsigned char *)o->tls_key_pem, (unsigned)strlen(o->tls_key_pem)};
    gnutls_datum_t ca = {(unsigned char *)o->tls_client_ca_pem,
                         (unsigned)strlen(o->tls_client_ca_pem)};
    if (gnutls_certificate_allocate_credentials(&cred) < 0) {
        snprintf(msg, msglen, "out of memory");
        return GW_ERR_NOMEM;
    }
    int ret = gnutls_certificate_set_x509_key_mem(cred, &cert, &key, GNUTLS_X509_FMT_PEM);
    if (ret < 0) {
        snprintf(msg, msglen,
                 "tls: cert_file and key_file do not load as a PEM certificate chain and its "
                 "private key (%s)",
                 gnutls_strerror(ret));
        goto out;
    }
    ret = gnutls_certificate_set_x509_trust_mem(cred, &ca, GNUTLS_X509_FMT_PEM);
    if (ret <= 0) {
        snprintf(msg, msglen, "tls: client_ca_file holds no PEM certificate (%s)",
                 ret < 0 ? gnutls_strerror(ret) : "none found");
        goto out;
    }
    err = GW_OK;
out:
    gnutls_certificate_free_credentials(cred);
    return err;
}

static void on_mhd_ready(void *arg, int fd, uint32_t events)
{
    (void)fd;
    (void)events;
    run_mhd(arg);
}

enum gw_err gw_server_start(const struct gw_server_options *opts, struct gw_loop *loop,
                            struct gw_pipeline *pipeline, struct gw_server **out, char *msg,
                            size_t msglen)
{
    enum gw_err err;
    struct sockaddr_storage ss;
    struct gw_server *srv = calloc(1, sizeof *srv);
    if (srv == NULL) {
        snprintf(msg, msglen, "out of memory");
        return GW_ERR_NOMEM;
    }
    srv->opts = *opts;
    srv->loop = loop;
    srv->pipeline = pipeline;
    atomic_init(&srv->unanswered, 0);
    atomic_init(&srv->stopping, false);
    if ((err = gw_watch_new(loop, opts->request_timeout_ms, &srv->watch)) != GW_OK ||
        (srv->mhd_timer = gw_loop_timer_new(loop, run_mhd, srv)) == NULL) {
        snprintf(msg, msglen, "out of memory");
        err = GW_ERR_NOMEM;
        goto out;
    }
    if (!parse_address(opts->address, opts->port, &ss)) {
        snprintf(msg, msglen, "listen_address \"%s\" is not a numeric IPv4 or IPv6 address",
                 opts->address);
        err = GW_ERR_INVALID;
        goto out;
    }
    /* No thread of libmicrohttpd's own: the worker's loop runs it. */
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6) {
        flags |= MHD_USE_IPv6;
    }
    struct MHD_OptionItem tls_options[] = {
        {MHD_OPTION_HTTPS_MEM_CERT, 0, (void *)opts->tls_cert_pem},
        {MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)opts->tls_key_pem},
        {MHD_OPTION_HTTPS_MEM_TRUST, 0, NULL}, /* requests a client certificate */
        {MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)TLS_PRIORITIES},
        {MHD_OPTION_END, 0, NULL},
    };
    srv->tls =
        opts->tls_cert_pem != NULL || opts->tls_key_pem != NULL || opts->tls_client_ca_pem != NULL;
    if (srv->tls) {
        if (opts->tls_cert_pem == NULL || opts->tls_key_pem == NULL ||
            opts->tls_client_ca_pem == NULL) {
            snprintf(msg, msglen, "tls: a certificate, its key and client CAs are all needed");
            err = GW_ERR_INVALID;
            goto out;
        }
        if ((err = check_tls(opts, msg, msglen)) != GW_OK) {
            goto out;
        }
        if ((srv->client_ca = strdup(opts->tls_client_ca_pem)) == NULL) {
            snprintf(msg, msglen, "out of memory");
            err = GW_ERR_NOMEM;
            goto out;
        }
        tls_options[2].ptr_value = srv->client_ca;
        flags |= MHD_USE_TLS;
    } else {
        tls_options[0].option = MHD_OPTION_END;
    }
    /* Every worker listens on the same port (SO_REUSEPORT): the kernel spreads connections. */
    srv->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, srv, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned int)1, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned int)opts->max_connections, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        (unsigned int)opts->max_connections_per_address, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)CONNECTION_MEMORY_BYTES, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)60,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv, MHD_OPTION_NOTIFY_CONNECTION, on_connection,
        srv, MHD_OPTION_URI_LOG_CALLBACK, on_target, srv, MHD_OPTION_ARRAY, tls_options,
        MHD_OPTION_END);
    /* The certificate and key were read; only the CA copy stays referenced. */
    srv->opts.tls_cert_pem = NULL;
    srv->opts.tls_key_pem = NULL;
    srv->opts.tls_client_ca_pem = srv->client_ca;
    if (srv->daemon == NULL) {
        snprintf(msg, msglen,
                 "cannot listen on %s port %u (in use, or not an address of this host)",
                 opts->address, (unsigned)opts->port);
        err = GW_ERR_IO;
        goto out;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = info != NULL ? info->port : opts->port;
    info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_EPOLL_FD);
    if (info == NULL || (srv->mhd_ready = gw_loop_watch(loop, info->epoll_fd, EPOLLIN, on_mhd_ready,
                                                        srv)) == NULL) {
        snprintf(msg, msglen, "cannot watch libmicrohttpd's events");
        err = GW_ERR_INTERNAL;
        goto out;
    }
    gw_loop_timer_set(srv->mhd_timer, 0);
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
    atomic_store(&server->stopping, true);
    if (server->quiesced) {
        return;
    }
    server->quiesced = true;
    MHD_socket fd = MHD_quiesce_daemon(server->daemon);
    if (fd != MHD_INVALID_SOCKET) {
        close(fd);
    }
}

void gw_server_refuse_new_calls(struct gw_server *server)
{
    atomic_store(&server->stopping, true);
}

size_t gw_server_unanswered(const struct gw_server *server)
{
    return atomic_load(&((struct gw_server *)server)->unanswered);
}

void gw_server_stop(struct gw_server *server)
{
    if (server == NULL) {
        return;
    }
    gw_loop_unwatch(server->mhd_ready);
    if (server->daemon != NULL) {
        MHD_stop_daemon(server->daemon); /* closes every connection: their calls are freed */
    }
    gw_loop_timer_free(server->mhd_timer);
    gw_watch_free(server->watch); /* after the daemon: no connection is left to watch */
    free(server->client_ca);
    free(server);
}
