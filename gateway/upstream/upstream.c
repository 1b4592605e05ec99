#include "upstream/upstream.h"
#include "upstream/upstream_internal.h"

#include <curl/curl.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/loop.h"
#include "upstream/headers.h"
#include "upstream/socks.h"

/*
 * Connections are not reused once idle this long, or once this old. Both stay below the time after
 * which a server may drop a kept-alive connection (libcurl's own idle default is 118 s), so a call
 * rarely goes out on a connection the other side is closing: such a call fails as "may have been
 * applied" (the body is never sent twice), and the caller has to find out.
 */
#define MAX_IDLE_S 30L
#define MAX_LIFETIME_S 50L

/* Transfers (with their easy handles) kept for reuse, so a call builds neither from nothing. */
#define MAX_SPARE_TRANSFERS 256

/*
 * One transfer: its easy handle is configured once, when the transfer is made, with everything
 * that is the same for every call; a call sets only its URL, timeout, body and headers. Owned by
 * the upstream module: in its running list from submit until done, then spare or freed.
 */
struct transfer {
    struct transfer *prev, *next;
    struct gw_upstream *up;
    CURL *easy;
    struct gw_call *call;
    gw_upstream_done_fn done;
    void *arg;
    bool too_large;
    unsigned attempts; /* times curl was about to send the request (on_prereq) */
    long timeout_ms;
    int64_t deadline_ms;             /* loop time: see on_deadline */
    struct upstream_headers headers; /* the call's, wiped when it ends */
    char errbuf[CURL_ERROR_SIZE];
};

/* Everything runs on the loop's thread: no lock. */
struct gw_upstream {
    CURLM *multi;
    struct gw_loop *loop;
    struct gw_loop_timer *timer;    /* libcurl's next timeout */
    struct gw_loop_timer *deadline; /* the first transfer's deadline, at deadline_ms */
    int64_t deadline_ms;            /* 0: not armed */
    struct curl_slist *connect_to;
    struct curl_slist *resolve;
    char *ca_file;
    long connect_timeout_ms;
    long timeout_ms;
    unsigned max_in_flight;
    long max_connections; /* upstream.max_host_connections: the cap while HTTP/1.1 is spoken */
    long h2_connections;  /* the cap while the upstream speaks HTTP/2 */
    long connections;     /* the cap libcurl has now */
    bool h2_seen;         /* a connection settled on HTTP/2 */
    bool h1_seen;         /* one settled on HTTP/1.1, at h1_seen_ms (loop time) */
    int64_t h1_seen_ms;
    unsigned in_flight;
    bool stopping;
    struct transfer *running;
    struct transfer *spare[MAX_SPARE_TRANSFERS];
    unsigned spares;
    struct upstream_socks *socks; /* libcurl's sockets on the loop */
    char last_date[40];           /* the latest answer's Date text, and its value */
    int64_t last_date_s;
};

static void transfer_destroy(struct transfer *t)
{
    if (t == NULL) {
        return;
    }
    curl_easy_cleanup(t->easy);
    upstream_headers_free(&t->headers);
    free(t);
}

/* Done with a call: the transfer is kept for the next one, or freed when enough are kept. */
static void transfer_release(struct gw_upstream *up, struct transfer *t)
{
    upstream_headers_wipe(&t->headers);
    t->call = NULL;
    if (up->spares < MAX_SPARE_TRANSFERS) {
        up->spare[up->spares++] = t;
    } else {
        transfer_destroy(t);
    }
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
 * Connections per host, adapted to what the upstream speaks. Over HTTP/2 a connection carries up
 * to H2_STREAMS calls (libcurl's own limit per connection), but libcurl 7.88 opens a new
 * connection for every call that finds its connections full while another one is still being set
 * up: a burst of 2,000 calls made over a thousand connections of one or two calls each, and kept
 * them. So once connections' TLS handshakes settle on HTTP/2 (ALPN), libcurl may open only enough
 * connections for max_in_flight calls; the calls past them wait inside libcurl (they are in
 * flight, so bounded by max_in_flight) for a stream to end. The cap is one for every host of a
 * worker, so a connection on HTTP/1.1 (one call at a time) in the last H1_HOLD_MS keeps it at
 * upstream.max_host_connections.
 */
#define H2_STREAMS 100
#define H1_HOLD_MS 60000

static void set_connection_cap(struct gw_upstream *up)
{
    bool h1_recent = up->h1_seen && gw_loop_now_ms(up->loop) - up->h1_seen_ms < (int64_t)H1_HOLD_MS;
    long cap = up->h2_seen && !h1_recent ? up->h2_connections : up->max_connections;
    if (cap != up->connections &&
        curl_multi_setopt(up->multi, CURLMOPT_MAX_HOST_CONNECTIONS, cap) == CURLM_OK) {
        up->connections = cap;
    }
}

/* What the transfer's connection speaks: HTTP/2 when its TLS handshake chose "h2". */
static bool speaks_h2(CURL *easy)
{
    struct curl_tlssessioninfo *tls = NULL;
    const unsigned char *alpn = NULL;
    unsigned alpn_len = 0;
    if (curl_easy_getinfo(easy, CURLINFO_TLS_SSL_PTR, &tls) != CURLE_OK || tls == NULL ||
        tls->backend != CURLSSLBACKEND_OPENSSL || tls->internals == NULL) {
        return false;
    }
    SSL_get0_alpn_selected(tls->internals, &alpn, &alpn_len);
    return alpn_len == 2 && memcmp(alpn, "h2", 2) == 0;
}

/*
 * Whether Tencent may hold the call: libcurl was about to send it at least once (on_prereq). How
 * much of it went out is not told reliably: what libcurl could not write at once is sent later
 * and not counted in CURLINFO_REQUEST_SIZE.
 */
static bool may_have_arrived(const struct transfer *t)
{
    return t->attempts > 0;
}

/*
 * Runs each time curl is about to send the request, once its connection is up. A second time
 * means curl retries on its own, on a new connection, after a reused one closed without an
 * answer: refused, whatever happened to the first attempt. At most once, always.
 */
static int on_prereq(void *clientp, char *primary_ip, char *local_ip, int primary_port,
                     int local_port)
{
    struct transfer *t = clientp;
    struct gw_upstream *up = t->up;
    (void)primary_ip;
    (void)local_ip;
    (void)primary_port;
    (void)local_port;
    if (t->attempts > 0) {
        return CURL_PREREQFUNC_ABORT;
    }
    t->attempts++;
    /* The socket is connected now: libcurl closes it through its close-socket callback. */
    curl_socket_t fd = CURL_SOCKET_BAD;
    if (curl_easy_getinfo(t->easy, CURLINFO_ACTIVESOCKET, &fd) == CURLE_OK) {
        upstream_socks_carried(up->socks, fd);
    }
    /* libcurl takes no option inside its callbacks: drive() applies it on return. */
    if (speaks_h2(t->easy)) {
        up->h2_seen = true;
    } else {
        up->h1_seen_ms = gw_loop_now_ms(up->loop);
        up->h1_seen = true;
    }
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
    case CURLE_ABORTED_BY_CALLBACK: /* curl wanted to send the call again: on_prereq refused */
    case CURLE_GOT_NOTHING:         /* the server read the call and closed without an answer */
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
        return GW_UPSTREAM_FAILED;
    default:
        return GW_UPSTREAM_FAILED;
    }
}

/*
 * The Date header of the answer, in Unix seconds; 0 when absent or unreadable (the clock check).
 * Answers in the same second carry the same text: it is parsed once per second, not per answer.
 */
static int64_t answer_date(struct gw_upstream *up, CURL *easy)
{
    struct curl_header *h = NULL;
    if (curl_easy_header(easy, "Date", 0, CURLH_HEADER, -1, &h) != CURLHE_OK || h == NULL) {
        return 0;
    }
    if (strcmp(h->value, up->last_date) != 0) {
        time_t when = curl_getdate(h->value, NULL);
        snprintf(up->last_date, sizeof up->last_date, "%s", h->value);
        up->last_date_s = when > 0 ? (int64_t)when : 0;
    }
    return up->last_date_s;
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
        call->upstream_date = answer_date(up, t->easy);
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
    transfer_release(up, t);
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

static void drive(void *arg, curl_socket_t fd, int flags)
{
    struct gw_upstream *up = arg;
    int still_running = 0;
    CURLMcode mc = curl_multi_socket_action(up->multi, fd, flags, &still_running);
    set_connection_cap(up);
    if (mc != CURLM_OK) {
        /* Not expected short of memory exhaustion: the transfers' own timeouts still apply. */
        fprintf(stderr, "level=error event=upstream_loop error=\"%s\"\n", curl_multi_strerror(mc));
    }
    take_done(up);
}

static void on_timer(void *arg)
{
    drive(arg, CURL_SOCKET_TIMEOUT, 0);
}

static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    struct gw_upstream *up = userp;
    (void)multi;
    gw_loop_timer_set(up->timer, timeout_ms);
    return 0;
}

/*
 * Every transfer ends by its timeout, counted from when it was submitted. libcurl 7.88 does not
 * check the timeout of a transfer waiting for a free connection (the host's connections all busy,
 * or an HTTP/2 connection still being set up): it waits until one comes free, however long, so
 * behind a stalled upstream a call could outlive its timeout many times over. The loop ends such
 * a transfer DEADLINE_GRACE_MS after its timeout; libcurl's own timer, set a turn after
 * submission, ends every other one first. Never sent: "not sent", safe to retry.
 */
#define DEADLINE_GRACE_MS 50

static void arm_deadline(struct gw_upstream *up, int64_t at_ms)
{
    if (up->deadline_ms != 0 && up->deadline_ms <= at_ms) {
        return;
    }
    int64_t now = gw_loop_now_ms(up->loop);
    up->deadline_ms = at_ms;
    gw_loop_timer_set(up->deadline, at_ms > now ? (long)(at_ms - now) : 0);
}

static void on_deadline(void *arg)
{
    struct gw_upstream *up = arg;
    int64_t now = gw_loop_now_ms(up->loop);
    int64_t next = 0;
    struct transfer *due = NULL;
    up->deadline_ms = 0;
    /* Taken out of the running list first: a done callback may submit again. */
    for (struct transfer *t = up->running, *after; t != NULL; t = after) {
        after = t->next;
        if (t->deadline_ms > now) {
            next = next == 0 || t->deadline_ms < next ? t->deadline_ms : next;
            continue;
        }
        curl_multi_remove_handle(up->multi, t->easy);
        unlink_running(up, t);
        t->next = due;
        due = t;
    }
    while (due != NULL) {
        struct transfer *t = due;
        due = t->next;
        snprintf(t->errbuf, sizeof t->errbuf,
                 t->attempts == 0 ? "timed out after %ld ms before the request was sent"
                                  : "timed out after %ld ms",
                 t->timeout_ms);
        finish(up, t, CURLE_OPERATION_TIMEDOUT);
    }
    if (next != 0) {
        arm_deadline(up, next);
    }
}

/*
 * libcurl's buffers, kept by each easy handle, so paid once per call in flight. The answer's:
 * 4 KiB (its default, 16 KiB, would mostly sit empty: answers are read a TLS record at a time
 * whatever its size). The request's: libcurl copies every HTTPS request into it before sending,
 * whatever the body's source; 16 KiB is libcurl's least, a quarter of its default.
 */
#define DOWNLOAD_BUFFER_BYTES 4096L
#define UPLOAD_BUFFER_BYTES 16384L

/* A new transfer, its easy handle set up with what every call shares; NULL when out of memory. */
static struct transfer *transfer_new(struct gw_upstream *up)
{
    struct transfer *t = calloc(1, sizeof *t);
    CURL *e = t != NULL ? curl_easy_init() : NULL;
    if (e == NULL) {
        free(t);
        return NULL;
    }
    t->easy = e;
    t->up = up;
    /*
     * The body is borrowed from the call and goes out with the head in one write: the signed
     * bytes are the bytes sent, their length known (Content-Length, never chunked). curl could
     * send it again on a new connection when a reused one dies: on_prereq refuses that.
     */
    if (curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https") != CURLE_OK ||
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
        curl_easy_setopt(e, CURLOPT_MAXAGE_CONN, MAX_IDLE_S) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_MAXLIFETIME_CONN, MAX_LIFETIME_S) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_POST, 1L) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, on_prereq) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_PREREQDATA, t) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_BUFFERSIZE, DOWNLOAD_BUFFER_BYTES) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_UPLOAD_BUFFERSIZE, UPLOAD_BUFFER_BYTES) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_WRITEDATA, t) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_PRIVATE, t) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, upstream_socks_on_open) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, up->socks) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, upstream_socks_on_close) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, up->socks) != CURLE_OK ||
        (up->ca_file != NULL && curl_easy_setopt(e, CURLOPT_CAINFO, up->ca_file) != CURLE_OK) ||
        (up->connect_to != NULL &&
         curl_easy_setopt(e, CURLOPT_CONNECT_TO, up->connect_to) != CURLE_OK) ||
        (up->resolve != NULL && curl_easy_setopt(e, CURLOPT_RESOLVE, up->resolve) != CURLE_OK)) {
        transfer_destroy(t);
        return NULL;
    }
    return t;
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
    t = up->spares > 0 ? up->spare[--up->spares] : transfer_new(up);
    if (t == NULL) {
        return GW_ERR_NOMEM;
    }
    t->call = call;
    t->done = done;
    t->arg = arg;
    t->too_large = false;
    t->attempts = 0;
    t->errbuf[0] = '\0';
    if ((err = upstream_headers_build(&t->headers, call)) != GW_OK) {
        goto out;
    }
    int n = snprintf(url, sizeof url, "https://%s/", call->host);
    if (n < 0 || (size_t)n >= sizeof url) {
        err = GW_ERR_INVALID;
        goto out;
    }
    CURL *e = t->easy;
    /* A call's deadline may leave less than the configured timeout (retries, deadlines). */
    long timeout_ms = call->retry.timeout_ms > 0 && call->retry.timeout_ms < up->timeout_ms
                          ? call->retry.timeout_ms
                          : up->timeout_ms;
    t->timeout_ms = timeout_ms;
    t->deadline_ms = gw_loop_now_ms(up->loop) + timeout_ms + DEADLINE_GRACE_MS;
    if (curl_easy_setopt(e, CURLOPT_URL, url) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)call->body.len) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, call->body.len > 0 ? call->body.data : "") !=
            CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, upstream_headers_list(&t->headers)) != CURLE_OK) {
        err = GW_ERR_INTERNAL;
        goto out;
    }
    /* libcurl starts it from its timer callback, on the next turn of the loop. */
    if (curl_multi_add_handle(up->multi, e) != CURLM_OK) {
        err = GW_ERR_INTERNAL;
        goto out;
    }
    t->next = up->running;
    t->prev = NULL;
    if (up->running != NULL) {
        up->running->prev = t;
    }
    up->running = t;
    up->in_flight++;
    arm_deadline(up, t->deadline_ms);
    t = NULL;
    err = GW_OK;
out:
    if (t != NULL) {
        transfer_release(up, t);
    }
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
        transfer_destroy(up->spare[i]);
    }
    upstream_socks_free(up->socks); /* after the connections closed */
    gw_loop_timer_free(up->timer);
    gw_loop_timer_free(up->deadline);
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
    up->max_connections = (long)opts->max_host_connections;
    up->h2_connections = (long)(up->max_in_flight / H2_STREAMS + 1);
    if (up->h2_connections > up->max_connections) {
        up->h2_connections = up->max_connections;
    }
    up->connections = up->max_connections; /* until a handshake tells (H2_STREAMS) */
    up->multi = curl_multi_init();
    up->timer = gw_loop_timer_new(loop, on_timer, up);
    up->deadline = gw_loop_timer_new(loop, on_deadline, up);
    up->socks = upstream_socks_new(loop, drive, up);
    /*
     * The connection cache must outlive the transfers: by default libcurl sizes it to the handles
     * currently added, and each call's handle is removed when it ends, so connections (and their
     * TLS handshakes) would be thrown away and made again.
     */
    if (up->multi == NULL || up->timer == NULL || up->deadline == NULL || up->socks == NULL ||
        curl_multi_setopt(up->multi, CURLMOPT_SOCKETFUNCTION, upstream_socks_on_socket) !=
            CURLM_OK ||
        curl_multi_setopt(up->multi, CURLMOPT_SOCKETDATA, up->socks) != CURLM_OK ||
        curl_multi_setopt(up->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer) != CURLM_OK ||
        curl_multi_setopt(up->multi, CURLMOPT_TIMERDATA, up) != CURLM_OK ||
        curl_multi_setopt(up->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX) != CURLM_OK ||
        curl_multi_setopt(up->multi, CURLMOPT_MAX_HOST_CONNECTIONS, up->connections) != CURLM_OK ||
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
