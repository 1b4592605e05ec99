#include "upstream/upstream.h"
#include "upstream/upstream_internal.h"

#include <curl/curl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>

#include "core/loop.h"

/*
 * Connections are not reused once idle this long, or once this old. Both stay below the time after
 * which a server may drop a kept-alive connection (libcurl's own idle default is 118 s), so a call
 * rarely goes out on a connection the other side is closing: such a call fails as "may have been
 * applied" (the body is never sent twice), and the caller has to find out.
 */
#define MAX_IDLE_S 30L
#define MAX_LIFETIME_S 50L

/* Easy handles kept for reuse, so a call does not build one (and its caches) from nothing. */
#define MAX_SPARE_HANDLES 256

/* One transfer in flight: owned by the upstream module from submit until done. */
struct transfer {
    struct transfer *prev, *next;
    CURL *easy;
    struct curl_slist *headers;
    struct gw_call *call;
    gw_upstream_done_fn done;
    void *arg;
    bool too_large;
    size_t sent;       /* body bytes handed to curl, over every attempt */
    unsigned attempts; /* times curl was about to send the request (on_prereq) */
    char errbuf[CURL_ERROR_SIZE];
};

/* Everything runs on the loop's thread: no lock. */
struct gw_upstream {
    CURLM *multi;
    struct gw_loop *loop;
    struct gw_loop_timer *timer; /* libcurl's next timeout */
    struct curl_slist *connect_to;
    struct curl_slist *resolve;
    char *ca_file;
    long connect_timeout_ms;
    long timeout_ms;
    unsigned max_in_flight;
    unsigned in_flight;
    bool stopping;
    struct transfer *running;
    CURL *spare[MAX_SPARE_HANDLES];
    unsigned spares;
};

static void transfer_free(struct gw_upstream *up, struct transfer *t)
{
    if (t == NULL) {
        return;
    }
    if (t->easy != NULL && up->spares < MAX_SPARE_HANDLES) {
        curl_easy_reset(t->easy);
        up->spare[up->spares++] = t->easy;
    } else {
        curl_easy_cleanup(t->easy);
    }
    curl_slist_free_all(t->headers);
    free(t);
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
    struct transfer *t = userdata;
    size_t n = size * nmemb;
    if (gw_buf_append(&t->call->response, data, n) != GW_OK) {
        t->too_large = true;
        return 0; /* makes curl abort the transfer with CURLE_WRITE_ERROR */
    }
    return n;
}

/*
 * Hands curl the signed body. There is no way back: the seek callback refuses, so when a reused
 * connection dies after the body went out, curl cannot rewind and send the call again on a new
 * connection (as it does with CURLOPT_POSTFIELDS); the transfer fails instead.
 */
static size_t on_read(char *buffer, size_t size, size_t nitems, void *userdata)
{
    struct transfer *t = userdata;
    const struct gw_buf *body = &t->call->body;
    size_t room = size * nitems;
    size_t n = body->len - t->sent < room ? body->len - t->sent : room;
    if (n > 0) {
        memcpy(buffer, body->data + t->sent, n);
    }
    t->sent += n;
    return n;
}

static int on_seek(void *userdata, curl_off_t offset, int origin)
{
    (void)userdata;
    (void)offset;
    (void)origin;
    return CURL_SEEKFUNC_CANTSEEK;
}

/* Whether Tencent may hold the whole call: some of the body left, or an empty one was sent. */
static bool may_have_arrived(const struct transfer *t)
{
    return t->sent > 0 || (t->call->body.len == 0 && t->attempts > 0);
}

/*
 * Runs each time curl is about to send the request. A second time means curl retries on its own,
 * on a new connection, after a reused one closed without an answer. That is harmless while the
 * server cannot have had the whole call (the connection died under the headers), and refused
 * otherwise, even when curl read the body but wrote none of it: at most once, always.
 */
static int on_prereq(void *clientp, char *primary_ip, char *local_ip, int primary_port,
                     int local_port)
{
    struct transfer *t = clientp;
    (void)primary_ip;
    (void)local_ip;
    (void)primary_port;
    (void)local_port;
    if (t->attempts > 0 && may_have_arrived(t)) {
        return CURL_PREREQFUNC_ABORT;
    }
    t->attempts++;
    return CURL_PREREQFUNC_OK;
}

static enum gw_upstream_outcome outcome_of(CURLcode rc, const struct transfer *t)
{
    switch (rc) {
    case CURLE_OK:
        return GW_UPSTREAM_ANSWERED;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
        return GW_UPSTREAM_CONNECT;
    case CURLE_OPERATION_TIMEDOUT:
        return GW_UPSTREAM_TIMEOUT;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
        return GW_UPSTREAM_TLS;
    case CURLE_WRITE_ERROR:
        return t->too_large ? GW_UPSTREAM_TOO_LARGE : GW_UPSTREAM_FAILED;
    case CURLE_SEND_FAIL_REWIND:    /* curl wanted to send the call again: on_seek refused */
    case CURLE_ABORTED_BY_CALLBACK: /* the same, caught by on_prereq */
    case CURLE_GOT_NOTHING:         /* the server read the call and closed without an answer */
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
        return GW_UPSTREAM_FAILED;
    default:
        return GW_UPSTREAM_FAILED;
    }
}

/* The Date header of the answer, in Unix seconds; 0 when absent or unreadable (the clock check). */
static int64_t answer_date(CURL *easy)
{
    struct curl_header *h = NULL;
    if (curl_easy_header(easy, "Date", 0, CURLH_HEADER, -1, &h) != CURLHE_OK || h == NULL) {
        return 0;
    }
    time_t when = curl_getdate(h->value, NULL);
    return when > 0 ? (int64_t)when : 0;
}

/* How a transfer ends when the gateway stops while it runs. */
#define STOPPED_WHILE_RUNNING ((CURLcode)-2)

static void unlink_running(struct gw_upstream *up, struct transfer *t)
{
    if (t->prev != NULL) {
        t->prev->next = t->next;
    } else {
        up->running = t->next;
    }
    if (t->next != NULL) {
        t->next->prev = t->prev;
    }
    up->in_flight--;
}

static void finish(struct gw_upstream *up, struct transfer *t, CURLcode rc)
{
    struct gw_call *call = t->call;
    if (rc == STOPPED_WHILE_RUNNING) {
        call->outcome = GW_UPSTREAM_ABORTED;
    } else {
        call->outcome = outcome_of(rc, t);
    }
    /* A timeout before the request ever went out (connect or TLS handshake) sent nothing. */
    if (call->outcome == GW_UPSTREAM_TIMEOUT && t->attempts == 0) {
        call->outcome = GW_UPSTREAM_CONNECT;
    }
    /*
     * "Not sent" is a promise that retrying is safe. A connect or TLS failure can also come from
     * curl's own second attempt, after the first one delivered the call: not sent, then, is false.
     */
    if ((call->outcome == GW_UPSTREAM_CONNECT || call->outcome == GW_UPSTREAM_TLS) &&
        may_have_arrived(t)) {
        call->outcome = GW_UPSTREAM_FAILED;
    }
    if (rc == CURLE_OK) {
        curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &call->http_status);
        call->upstream_date = answer_date(t->easy);
    } else if (rc != STOPPED_WHILE_RUNNING) {
        snprintf(call->upstream_detail, sizeof call->upstream_detail, "%s",
                 t->errbuf[0] != '\0' ? t->errbuf : curl_easy_strerror(rc));
        /* It goes into a quoted log field: keep it to one plain line. */
        for (char *p = call->upstream_detail; *p != '\0'; p++) {
            if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20 || *p == 0x7f) {
                *p = '?';
            }
        }
    }
    gw_upstream_done_fn done = t->done;
    void *arg = t->arg;
    transfer_free(up, t);
    done(call, arg);
}

/* Every transfer libcurl says is done ends here, on the loop's thread. */
static void take_done(struct gw_upstream *up)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(up->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE) {
            continue;
        }
        struct transfer *t = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&t);
        CURLcode rc = m->data.result;
        curl_multi_remove_handle(up->multi, t->easy);
        unlink_running(up, t);
        finish(up, t, rc);
    }
}

static void drive(struct gw_upstream *up, curl_socket_t fd, int flags)
{
    int still_running = 0;
    CURLMcode mc = curl_multi_socket_action(up->multi, fd, flags, &still_running);
    if (mc != CURLM_OK) {
        /* Not expected short of memory exhaustion: the transfers' own timeouts still apply. */
        fprintf(stderr, "level=error event=upstream_loop error=\"%s\"\n", curl_multi_strerror(mc));
    }
    take_done(up);
}

static void on_socket_ready(void *arg, int fd, uint32_t events)
{
    struct gw_upstream *up = arg;
    int flags = 0;
    if ((events & EPOLLIN) != 0) {
        flags |= CURL_CSELECT_IN;
    }
    if ((events & EPOLLOUT) != 0) {
        flags |= CURL_CSELECT_OUT;
    }
    if ((events & (EPOLLERR | EPOLLHUP)) != 0) {
        flags |= CURL_CSELECT_ERR;
    }
    drive(up, fd, flags);
}

static void on_timer(void *arg)
{
    drive(arg, CURL_SOCKET_TIMEOUT, 0);
}

/* libcurl says which of its sockets to watch for what: the loop watches them. */
static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    struct gw_upstream *up = userp;
    struct gw_loop_watch *w = socketp;
    (void)easy;
    if (what == CURL_POLL_REMOVE) {
        gw_loop_unwatch(w);
        curl_multi_assign(up->multi, fd, NULL);
        return 0;
    }
    uint32_t events =
        ((what & CURL_POLL_IN) != 0 ? EPOLLIN : 0) | ((what & CURL_POLL_OUT) != 0 ? EPOLLOUT : 0);
    if (w == NULL) {
        if ((w = gw_loop_watch(up->loop, fd, events, on_socket_ready, up)) == NULL) {
            return -1;
        }
        curl_multi_assign(up->multi, fd, w);
        return 0;
    }
    return gw_loop_rewatch(w, events) ? 0 : -1;
}

static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    struct gw_upstream *up = userp;
    (void)multi;
    gw_loop_timer_set(up->timer, timeout_ms);
    return 0;
}

static enum gw_err add_header(struct curl_slist **list, const char *name, const char *value)
{
    char line[GW_CALL_AUTHORIZATION_MAX + 64];
    int n = snprintf(line, sizeof line, "%s: %s", name, value);
    if (n < 0 || (size_t)n >= sizeof line || strpbrk(line, "\r\n") != NULL) {
        return GW_ERR_INVALID;
    }
    struct curl_slist *next = curl_slist_append(*list, line);
    if (next == NULL) {
        return GW_ERR_NOMEM;
    }
    *list = next;
    return GW_OK;
}

static enum gw_err build_headers(const struct gw_call *call, struct curl_slist **out)
{
    enum gw_err err;
    struct curl_slist *h = NULL;
    char timestamp[24];
    snprintf(timestamp, sizeof timestamp, "%lld", (long long)call->timestamp);
    if ((err = add_header(&h, "Content-Type", GW_CALL_CONTENT_TYPE)) != GW_OK ||
        (err = add_header(&h, "X-TC-Action", call->action)) != GW_OK ||
        (err = add_header(&h, "X-TC-Version", call->version)) != GW_OK ||
        (err = add_header(&h, "X-TC-Timestamp", timestamp)) != GW_OK ||
        (err = add_header(&h, "Authorization", call->authorization.data)) != GW_OK) {
        goto out;
    }
    /* Temporary keys: their token, unsigned, as Tencent's SDKs send it. */
    if (call->token.len > 0 && (err = add_header(&h, "X-TC-Token", call->token.data)) != GW_OK) {
        goto out;
    }
    if (call->region[0] != '\0' && (err = add_header(&h, "X-TC-Region", call->region)) != GW_OK) {
        goto out;
    }
    if (call->language[0] != '\0' &&
        (err = add_header(&h, "X-TC-Language", call->language)) != GW_OK) {
        goto out;
    }
    /* Tracing headers the caller sent, so Tencent's support can find the call; never made up. */
    if (call->trace_id[0] != '\0' &&
        (err = add_header(&h, "X-TC-TraceId", call->trace_id)) != GW_OK) {
        goto out;
    }
    if (call->request_client[0] != '\0' &&
        (err = add_header(&h, "X-TC-RequestClient", call->request_client)) != GW_OK) {
        goto out;
    }
    /* No "Expect: 100-continue" round trip, and nothing else curl would add on its own. */
    if ((err = add_header(&h, "Expect", "")) != GW_OK ||
        (err = add_header(&h, "Accept", "")) != GW_OK) {
        goto out;
    }
    *out = h;
    h = NULL;
    err = GW_OK;
out:
    curl_slist_free_all(h);
    return err;
}

enum gw_err gw_upstream_submit(struct gw_upstream *up, struct gw_call *call,
                               gw_upstream_done_fn done, void *arg)
{
    enum gw_err err;
    char url[GW_CALL_HOST_MAX + 16];
    struct transfer *t = NULL;
    if (up->stopping) {
        return GW_ERR_STOPPED;
    }
    if (up->in_flight >= up->max_in_flight) {
        return GW_ERR_BUSY;
    }
    if ((t = calloc(1, sizeof *t)) == NULL) {
        err = GW_ERR_NOMEM;
        goto out;
    }
    t->call = call;
    t->done = done;
    t->arg = arg;
    if ((err = build_headers(call, &t->headers)) != GW_OK) {
        goto out;
    }
    int n = snprintf(url, sizeof url, "https://%s/", call->host);
    if (n < 0 || (size_t)n >= sizeof url) {
        err = GW_ERR_INVALID;
        goto out;
    }
    t->easy = up->spares > 0 ? up->spare[--up->spares] : curl_easy_init();
    if (t->easy == NULL) {
        err = GW_ERR_NOMEM;
        goto out;
    }
    CURL *e = t->easy;
    /*
     * The body is borrowed from the call: the signed bytes are the bytes sent, read by on_read with
     * its length known (Content-Length, never chunked). An empty body has no bytes for curl to
     * fail to rewind, so curl would repeat it on a retry: it gets a fresh connection, on which
     * curl never retries.
     */
    if (curl_easy_setopt(e, CURLOPT_URL, url) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https") != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "https") != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2) != CURLE_OK ||
        /* HTTP/2 where the upstream offers it (ALPN): many calls share one connection. */
        curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
        /* Where signed calls go is the configuration's business, not the environment's. */
        curl_easy_setopt(e, CURLOPT_PROXY, "") != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, up->connect_timeout_ms) != CURLE_OK ||
        /* A call's deadline may leave less than the configured timeout (retries, deadlines). */
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS,
                         call->retry.timeout_ms > 0 && call->retry.timeout_ms < up->timeout_ms
                             ? call->retry.timeout_ms
                             : up->timeout_ms) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_MAXAGE_CONN, MAX_IDLE_S) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_MAXLIFETIME_CONN, MAX_LIFETIME_S) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, call->body.len == 0 ? 1L : 0L) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_POST, 1L) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_READDATA, t) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, on_seek) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_SEEKDATA, t) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, on_prereq) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_PREREQDATA, t) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)call->body.len) != CURLE_OK ||
        /* libcurl's smallest upload buffer: its 64 KiB default, per call in flight, is memory a
         * call of at most max_body_bytes rarely needs. */
        curl_easy_setopt(e, CURLOPT_UPLOAD_BUFFERSIZE, 16384L) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_WRITEDATA, t) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_PRIVATE, t) != CURLE_OK ||
        (up->ca_file != NULL && curl_easy_setopt(e, CURLOPT_CAINFO, up->ca_file) != CURLE_OK) ||
        (up->connect_to != NULL &&
         curl_easy_setopt(e, CURLOPT_CONNECT_TO, up->connect_to) != CURLE_OK) ||
        (up->resolve != NULL && curl_easy_setopt(e, CURLOPT_RESOLVE, up->resolve) != CURLE_OK)) {
        err = GW_ERR_INTERNAL;
        goto out;
    }
    /* libcurl starts it from its timer callback, on the next turn of the loop. */
    if (curl_multi_add_handle(up->multi, e) != CURLM_OK) {
        err = GW_ERR_INTERNAL;
        goto out;
    }
    t->next = up->running;
    if (up->running != NULL) {
        up->running->prev = t;
    }
    up->running = t;
    up->in_flight++;
    t = NULL;
    err = GW_OK;
out:
    transfer_free(up, t);
    return err;
}

static enum gw_err copy_list(char *const *in, struct curl_slist **out)
{
    for (size_t i = 0; in != NULL && in[i] != NULL; i++) {
        struct curl_slist *next = curl_slist_append(*out, in[i]);
        if (next == NULL) {
            return GW_ERR_NOMEM;
        }
        *out = next;
    }
    return GW_OK;
}

static void upstream_free(struct gw_upstream *up)
{
    curl_multi_cleanup(up->multi); /* closes connections: their sockets are unwatched */
    for (unsigned i = 0; i < up->spares; i++) {
        curl_easy_cleanup(up->spare[i]);
    }
    gw_loop_timer_free(up->timer);
    curl_slist_free_all(up->connect_to);
    curl_slist_free_all(up->resolve);
    free(up->ca_file);
    free(up);
}

enum gw_err gw_upstream_new(const struct gw_upstream_options *opts, struct gw_loop *loop,
                            struct gw_upstream **out, char *msg, size_t msglen)
{
    enum gw_err err;
    if ((err = gw_upstream_check(opts, msg, msglen)) != GW_OK) {
        return err;
    }
    struct gw_upstream *up = calloc(1, sizeof *up);
    if (up == NULL) {
        snprintf(msg, msglen, "out of memory");
        return GW_ERR_NOMEM;
    }
    up->loop = loop;
    up->connect_timeout_ms = opts->connect_timeout_ms;
    up->timeout_ms = opts->timeout_ms;
    up->max_in_flight = opts->max_in_flight > 0 ? opts->max_in_flight : 1;
    up->multi = curl_multi_init();
    up->timer = gw_loop_timer_new(loop, on_timer, up);
    /*
     * The connection cache must outlive the transfers: by default libcurl sizes it to the handles
     * currently added, and each call's handle is removed when it ends, so connections (and their
     * TLS handshakes) would be thrown away and made again.
     */
    if (up->multi == NULL || up->timer == NULL ||
        curl_multi_setopt(up->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket) != CURLM_OK ||
        curl_multi_setopt(up->multi, CURLMOPT_SOCKETDATA, up) != CURLM_OK ||
        curl_multi_setopt(up->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer) != CURLM_OK ||
        curl_multi_setopt(up->multi, CURLMOPT_TIMERDATA, up) != CURLM_OK ||
        curl_multi_setopt(up->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX) != CURLM_OK ||
        curl_multi_setopt(up->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
                          (long)opts->max_host_connections) != CURLM_OK ||
        curl_multi_setopt(up->multi, CURLMOPT_MAXCONNECTS, (long)opts->max_host_connections * 4) !=
            CURLM_OK) {
        snprintf(msg, msglen, "cannot set up libcurl");
        err = GW_ERR_INTERNAL;
        goto out;
    }
    if (opts->ca_file != NULL && (up->ca_file = strdup(opts->ca_file)) == NULL) {
        snprintf(msg, msglen, "out of memory");
        err = GW_ERR_NOMEM;
        goto out;
    }
    if ((err = copy_list(opts->connect_to, &up->connect_to)) != GW_OK ||
        (err = copy_list(opts->resolve, &up->resolve)) != GW_OK) {
        snprintf(msg, msglen, "out of memory");
        goto out;
    }
    *out = up;
    up = NULL;
    err = GW_OK;
out:
    if (up != NULL) {
        upstream_free(up);
    }
    return err;
}

void gw_upstream_stop(struct gw_upstream *up)
{
    if (up == NULL || up->stopping) {
        return;
    }
    up->stopping = true;
    while (up->running != NULL) {
        struct transfer *t = up->running;
        curl_multi_remove_handle(up->multi, t->easy);
        unlink_running(up, t);
        finish(up, t, STOPPED_WHILE_RUNNING);
    }
}

unsigned gw_upstream_in_flight(const struct gw_upstream *up)
{
    return up->in_flight;
}

void gw_upstream_free(struct gw_upstream *up)
{
    if (up == NULL) {
        return;
    }
    gw_upstream_stop(up);
    upstream_free(up);
}
