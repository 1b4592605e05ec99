#include "server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

#include <microhttpd.h>
#include <openssl/evp.h>

#include "faults.h"
#include "sign_check.h"

#define HEALTH_PATH "/_sim/health"
#define MAX_HEADERS 128
#define THREADS 2u
#define CONNECTION_TIMEOUT_S 30u
#define CONNECTION_MEMORY ((size_t)64 << 10)

struct sim_server {
    struct MHD_Daemon *daemon;
    struct sim_server_config cfg;
};

/* Per-connection state (the fault mode counts requests per connection): MHD's socket context. */
struct conn_state {
    unsigned requests;
};

/* Per-request state, owned by MHD's request slot and freed in on_completed. */
struct request {
    unsigned char *body;
    size_t len;
    size_t cap;
    size_t seen; /* bytes received, including those dropped past the limit */
    bool too_big;
};

struct header_list {
    struct sim_header *h;
    size_t n;
    bool overflow;
    bool nomem;
};

static void body_append(struct request *r, const char *data, size_t n)
{
    r->seen += n;
    if (r->too_big) {
        return;
    }
    if (n > SIM_MAX_BODY_BYTES - r->len) {
        r->too_big = true;
        return;
    }
    if (r->len + n > r->cap) {
        size_t cap = r->cap == 0 ? 4096 : r->cap;
        unsigned char *nb;
        while (cap < r->len + n) {
            cap *= 2;
        }
        if (cap > SIM_MAX_BODY_BYTES) {
            cap = SIM_MAX_BODY_BYTES;
        }
        nb = realloc(r->body, cap);
        if (nb == NULL) {
            r->too_big = true; /* answered as too large: the simulator cannot hold it */
            return;
        }
        r->body = nb;
        r->cap = cap;
    }
    memcpy(r->body + r->len, data, n);
    r->len += n;
}

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                      size_t key_size, const char *value, size_t value_size)
{
    struct header_list *l = cls;
    struct sim_header *h;
    size_t i;

    (void)kind;
    if (l->n == MAX_HEADERS) {
        l->overflow = true;
        return MHD_NO;
    }
    h = &l->h[l->n];
    h->name = malloc(key_size + 1);
    h->value = malloc(value_size + 1);
    if (h->name == NULL || h->value == NULL) {
        free(h->name);
        free(h->value);
        l->nomem = true;
        return MHD_NO;
    }
    for (i = 0; i < key_size; i++) {
        char c = key[i];
        h->name[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    h->name[key_size] = '\0';
    if (value != NULL) {
        memcpy(h->value, value, value_size);
    }
    h->value[value != NULL ? value_size : 0] = '\0';
    l->n++;
    return MHD_YES;
}

static void headers_free(struct header_list *l)
{
    size_t i;

    for (i = 0; i < l->n; i++) {
        free(l->h[i].name);
        free(l->h[i].value);
    }
    free(l->h);
}

/* The value of a header that must appear at most once; *v is NULL when absent. */
static enum sim_err single(const struct header_list *l, const char *name, const char **v,
                           struct sim_fault *f)
{
    size_t count = 0;
    const struct sim_header *h = sim_header_find(l->h, l->n, name, &count);

    if (count > 1) {
        return sim_fault_set(f, "InvalidParameter", "the %s header is given more than once", name);
    }
    *v = h != NULL ? h->value : NULL;
    return SIM_OK;
}

static bool is_json_content_type(const char *ct)
{
    static const char media[] = "application/json";
    size_t n = sizeof(media) - 1;
    char head[sizeof(media)];

    while (*ct == ' ' || *ct == '\t') {
        ct++;
    }
    if (strlen(ct) < n) {
        return false;
    }
    memcpy(head, ct, n);
    head[n] = '\0';
    return sim_ieq(head, media) && (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

/* Runs the checks in the order server.h lists; fills resp on success, f on a refusal. */
static enum sim_err process(const struct sim_server *s, const char *url, const char *method,
                            const struct request *r, const struct header_list *l, json_t *resp,
                            struct sim_fault *f, struct sim_sign_debug *dbg)
{
    enum sim_err err;
    const char *ct = NULL;
    const char *action = NULL;
    const char *version = NULL;
    const char *ts_text = NULL;
    const char *ignored = NULL;
    const char *host = NULL;
    bool sts = false;
    uint64_t ts;
    int index;
    json_t *params = NULL;
    json_error_t jerr;
    struct sim_sign_input in;
    struct sim_principal who;
    char secret_id[SIM_SIGN_SECRET_ID_MAX];

    if (r->too_big) {
        return sim_fault_set(f, "RequestSizeLimitExceeded",
                             "the request body is %zu bytes; the limit is %zu", r->seen,
                             SIM_MAX_BODY_BYTES);
    }
    if (strcmp(method, "POST") != 0 || strcmp(url, "/") != 0) {
        return sim_fault_set(f, "UnsupportedProtocol",
                             "only POST / with a JSON body is served here (not %.16s %.64s)",
                             method, url);
    }
    if ((err = single(l, "content-type", &ct, f)) != SIM_OK ||
        (err = single(l, "x-tc-action", &action, f)) != SIM_OK ||
        (err = single(l, "x-tc-version", &version, f)) != SIM_OK ||
        (err = single(l, "x-tc-timestamp", &ts_text, f)) != SIM_OK ||
        (err = single(l, "x-tc-region", &ignored, f)) != SIM_OK ||
        (err = single(l, "host", &host, f)) != SIM_OK) {
        return err;
    }
    /* One port, two services: the Host header chooses (sts.h). */
    sts = s->cfg.sts != NULL && sim_sts_host(host);
    if (ct == NULL || !is_json_content_type(ct)) {
        return sim_fault_set(f, "InvalidParameter",
                             "Content-Type must be application/json (optionally with "
                             "\"; charset=utf-8\")");
    }
    if (action == NULL || action[0] == '\0') {
        return sim_fault_set(f, "MissingParameter", "the X-TC-Action header is required");
    }
    if (version == NULL || version[0] == '\0') {
        return sim_fault_set(f, "MissingParameter", "the X-TC-Version header is required");
    }
    if (ts_text == NULL || ts_text[0] == '\0') {
        return sim_fault_set(f, "MissingParameter", "the X-TC-Timestamp header is required");
    }
    if (sts) {
        if (strcmp(version, SIM_STS_VERSION) != 0) {
            return sim_fault_set(f, "NoSuchVersion",
                                 "sts has no API version \"%.32s\": use " SIM_STS_VERSION, version);
        }
        index = 0;
    } else if (strcmp(version, SIM_GAAP_VERSION) != 0) {
        return sim_fault_set(f, "NoSuchVersion",
                             "gaap has no API version \"%.32s\": use " SIM_GAAP_VERSION, version);
    }
    index = sts ? 0 : sim_gaap_action_index(action);
    if (index < 0) {
        return sim_fault_set(f, "InvalidAction",
                             "gaap " SIM_GAAP_VERSION
                             " has no action \"%.64s\" (or the simulator does not implement it)",
                             action);
    }
    if (!sim_parse_u64(ts_text, strlen(ts_text), &ts)) {
        return sim_fault_set(f, "InvalidParameterValue",
                             "X-TC-Timestamp must be the current Unix time in decimal seconds");
    }

    in.credentials = sim_credentials_keys(s->cfg.credentials);
    in.headers = l->h;
    in.nheaders = l->n;
    in.body = r->body != NULL ? r->body : (const unsigned char *)"";
    in.body_len = r->len;
    in.timestamp = (int64_t)ts;
    in.now = sim_now();
    in.max_skew = s->cfg.max_skew;
    in.service = sts ? SIM_STS_SERVICE : NULL;
    in.sts = s->cfg.sts;
    memset(&who, 0, sizeof who); /* STS's temporary keys act for the default account */
    if ((err = sim_sign_check(&in, f, dbg, secret_id)) != SIM_OK) {
        return err;
    }
    /* A long-lived key answers to its entry's permissions; STS is not a GAAP action. */
    if (!sts && json_object_get(in.credentials, secret_id) != NULL &&
        (err = sim_credentials_authorize(s->cfg.credentials, secret_id, action, &who, f)) !=
            SIM_OK) {
        return err;
    }

    if (!sts && !sim_ratelimit_take(s->cfg.limits, (size_t)index, sim_mono_ns())) {
        return sim_fault_set(f, "RequestLimitExceeded",
                             "%s is limited per second: slow down and retry later", action);
    }

    if (r->len == 0) {
        params = json_object();
        if (params == NULL) {
            return SIM_ENOMEM;
        }
    } else {
        params = json_loadb((const char *)r->body, r->len, JSON_REJECT_DUPLICATES, &jerr);
        if (params == NULL) {
            return sim_fault_set(f, "InvalidParameter",
                                 "the body is not valid JSON (line %d, column %d: %s)", jerr.line,
                                 jerr.column, jerr.text);
        }
    }
    if (!json_is_object(params)) {
        err = sim_fault_set(f, "InvalidParameter", "the body must be a JSON object");
    } else if (sts) {
        err = sim_sts_call(s->cfg.sts, action, params, sim_now(), resp, f);
    } else {
        err = sim_gaap_call(s->cfg.gaap, &who, index, params, sim_now(), resp, f);
    }
    json_decref(params);
    return err;
}

static json_t *error_response(const struct sim_fault *f, const char *rid)
{
    return json_pack("{s:{s:{s:s,s:s},s:s}}", "Response", "Error", "Code", f->code, "Message",
                     f->message, "RequestId", rid);
}

static json_t *body_base64(const unsigned char *p, size_t n)
{
    char *text;
    json_t *v;

    if (n > (size_t)INT32_MAX / 2) {
        return json_null();
    }
    text = malloc(4 * ((n + 2) / 3) + 1);
    if (text == NULL) {
        return NULL;
    }
    (void)EVP_EncodeBlock((unsigned char *)text, p, (int)n);
    v = json_string(text);
    free(text);
    return v;
}

/* Builds the record line for one request; NULL when out of memory. fault: NULL, or the fault
 * mode that ends this request (see server.h). */
static json_t *make_record(const char *url, const char *method, const struct request *r,
                           const struct header_list *l, const struct sim_fault *f,
                           const struct sim_sign_debug *dbg, const char *rid, const char *fault)
{
    json_t *rec = json_object();
    json_t *headers = json_object();
    const struct sim_header *host = sim_header_find(l->h, l->n, "host", NULL);
    const struct sim_header *action = sim_header_find(l->h, l->n, "x-tc-action", NULL);
    json_t *body = NULL;
    struct timeval tv;
    size_t i;

    if (rec == NULL || headers == NULL) {
        goto fail;
    }
    for (i = 0; i < l->n; i++) {
        const json_t *prev = json_object_get(headers, l->h[i].name);
        json_t *v;
        if (prev != NULL) {
            /* repeated header: keep every value, joined as HTTP would fold them */
            size_t plen = json_string_length(prev);
            size_t vlen = strlen(l->h[i].value);
            char *joined = malloc(plen + 2 + vlen + 1);
            if (joined == NULL) {
                goto fail;
            }
            memcpy(joined, json_string_value(prev), plen);
            memcpy(joined + plen, ", ", 2);
            memcpy(joined + plen + 2, l->h[i].value, vlen + 1);
            v = json_string(joined);
            free(joined);
        } else {
            v = json_string(l->h[i].value);
        }
        if (v == NULL) {
            v = json_null(); /* not UTF-8 */
        }
        if (json_object_set_new(headers, l->h[i].name, v) != 0) {
            goto fail;
        }
    }
    (void)gettimeofday(&tv, NULL);
    if (!r->too_big) {
        body = json_stringn(r->body != NULL ? (const char *)r->body : "", r->len);
    }
    if (json_object_set_new(rec, "method", json_string(method)) != 0 ||
        json_object_set_new(rec, "path", json_string(url)) != 0 ||
        json_object_set_new(rec, "host", host != NULL ? json_string(host->value) : json_null()) !=
            0 ||
        json_object_set_new(rec, "headers", json_incref(headers)) != 0 ||
        json_object_set_new(rec, "body", body != NULL ? json_incref(body) : json_null()) != 0 ||
        json_object_set_new(rec, "body_bytes", json_integer((json_int_t)r->seen)) != 0 ||
        json_object_set_new(rec, "action",
                            action != NULL ? json_string(action->value) : json_null()) != 0 ||
        json_object_set_new(rec, "error_code",
                            f->code != NULL ? json_string(f->code) : json_null()) != 0 ||
        json_object_set_new(rec, "request_id", json_string(rid)) != 0 ||
        json_object_set_new(rec, "received_at",
                            json_real((double)tv.tv_sec + (double)tv.tv_usec / 1e6)) != 0) {
        goto fail;
    }
    if (fault != NULL && json_object_set_new(rec, "fault", json_string(fault)) != 0) {
        goto fail;
    }
    if (body == NULL && !r->too_big &&
        json_object_set_new(rec, "body_b64", body_base64(r->body, r->len)) != 0) {
        goto fail;
    }
    if (dbg->canonical_request != NULL &&
        json_object_set_new(rec, "sign_debug",
                            json_pack("{s:s,s:s}", "canonical_request", dbg->canonical_request,
                                      "string_to_sign", dbg->string_to_sign)) != 0) {
        goto fail;
    }
    json_decref(body);
    json_decref(headers);
    return rec;
fail:
    json_decref(body);
    json_decref(headers);
    json_decref(rec);
    return NULL;
}

/*
 * TCGW_SIM_DATE_SKEW_S=N: the Date header says now + N seconds (a clock that is off, for the
 * gateway's clock check); libmicrohttpd adds none of its own when one is set.
 */
static bool add_skewed_date(struct MHD_Response *resp)
{
    const char *skew = getenv("TCGW_SIM_DATE_SKEW_S");
    if (skew == NULL || skew[0] == '\0') {
        return true;
    }
    time_t when = time(NULL) + (time_t)strtol(skew, NULL, 10);
    struct tm tm;
    char date[64];
    if (gmtime_r(&when, &tm) == NULL ||
        strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm) == 0) {
        return false;
    }
    return MHD_add_response_header(resp, MHD_HTTP_HEADER_DATE, date) == MHD_YES;
}

static enum MHD_Result reply(struct MHD_Connection *conn, const char *text, size_t len,
                             const char *content_type)
{
    struct MHD_Response *resp;
    enum MHD_Result ret;

    resp = MHD_create_response_from_buffer(len, (void *)(uintptr_t)text, MHD_RESPMEM_MUST_COPY);
    if (resp == NULL) {
        return MHD_NO;
    }
    if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type) != MHD_YES ||
        !add_skewed_date(resp)) {
        MHD_destroy_response(resp);
        return MHD_NO;
    }
    ret = MHD_queue_response(conn, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result answer(struct sim_server *s, struct MHD_Connection *conn, const char *url,
                              const char *method, struct request *r)
{
    enum MHD_Result ret = MHD_NO;
    enum sim_err err;
    struct header_list l = {0};
    struct sim_fault f = {0};
    struct sim_sign_debug dbg = {0};
    char rid[SIM_REQUEST_ID_LEN + 1];
    json_t *resp = NULL;
    json_t *out = NULL;
    json_t *rec = NULL;
    char *text = NULL;
    bool close_now = false;
    enum sim_faults_kind planned = SIM_FAULTS_NONE; /* faults.h: this test's fault plan */

    if (strcmp(method, "GET") == 0 && strcmp(url, HEALTH_PATH) == 0) {
        return reply(conn, "ok", 2, "text/plain");
    }
    if (s->cfg.sts != NULL && sim_sts_control(s->cfg.sts, method, url)) {
        return reply(conn, "ok", 2, "text/plain");
    }
    planned = sim_faults_take(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-TC-Action"));
    close_now = planned == SIM_FAULTS_RESET;
    if (!sim_uuid(rid)) {
        return MHD_NO;
    }
    if (s->cfg.close_after_read > 0) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        struct conn_state *cs = ci != NULL ? ci->socket_context : NULL;
        if (cs == NULL) {
            return MHD_NO; /* out of memory when the connection came: a fault mode must be exact */
        }
        cs->requests++;
        close_now = close_now || cs->requests == s->cfg.close_after_read;
    }
    l.h = calloc(MAX_HEADERS, sizeof(*l.h));
    resp = json_object();
    if (l.h == NULL || resp == NULL) {
        goto out;
    }
    (void)MHD_get_connection_values_n(conn, MHD_HEADER_KIND, collect_header, &l);
    if (l.nomem) {
        goto out;
    }
    if (l.overflow) {
        err = sim_fault_set(&f, "RequestSizeLimitExceeded", "more than %d headers", MAX_HEADERS);
    } else if (planned == SIM_FAULTS_THROTTLE) {
        err = sim_fault_set(&f, "RequestLimitExceeded", "throttled by the fault plan");
    } else if (planned == SIM_FAULTS_NONE || planned == SIM_FAULTS_RESET) {
        err = process(s, url, method, r, &l, resp, &f, &dbg);
    } else {
        err = SIM_OK; /* 5xx, malformed: not processed */
    }
    if (err != SIM_OK && err != SIM_FAULT) {
        (void)sim_fault_set(&f, "InternalError", "the simulator ran out of memory");
    }
    if (f.code != NULL) {
        out = error_response(&f, rid);
    } else if (json_object_set_new(resp, "RequestId", json_string(rid)) == 0) {
        out = json_pack("{s:O}", "Response", resp);
    }
    if (out == NULL) {
        goto out;
    }
    text = json_dumps(out, JSON_COMPACT);
    rec = make_record(url, method, r, &l, &f, &dbg, rid,
                      planned != SIM_FAULTS_NONE ? sim_faults_name(planned)
                      : close_now                ? "close-after-read"
                                                 : NULL);
    if (text == NULL || rec == NULL) {
        goto out;
    }
    if (sim_records_write(s->cfg.records, rec) != SIM_OK) {
        (void)fprintf(stderr, "tcgw-sim: cannot write the request record\n");
        goto out; /* a test must never see an answer without its record */
    }
    if (close_now) {
        goto out; /* MHD_NO: MHD closes the connection without answering */
    }
    if (planned == SIM_FAULTS_5XX || planned == SIM_FAULTS_MALFORMED) {
        ret = sim_faults_reply(conn, planned);
        goto out;
    }
    ret = reply(conn, text, strlen(text), "application/json");
out:
    free(text);
    json_decref(rec);
    json_decref(out);
    json_decref(resp);
    sim_sign_debug_free(&dbg);
    headers_free(&l);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    struct request *r = *req_cls;

    (void)version;
    if (r == NULL) {
        r = calloc(1, sizeof(*r));
        if (r == NULL) {
            return MHD_NO;
        }
        *req_cls = r;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        body_append(r, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    return answer(cls, conn, url, method, r);
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    (void)cls;
    (void)conn;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        *socket_context = calloc(1, sizeof(struct conn_state)); /* NULL is handled in answer */
    } else if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        free(*socket_context);
        *socket_context = NULL;
    }
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct request *r = *req_cls;

    (void)cls;
    (void)conn;
    (void)toe;
    if (r != NULL) {
        free(r->body);
        free(r);
        *req_cls = NULL;
    }
}

enum sim_err sim_server_start(const struct sim_server_config *cfg, struct sim_server **out,
                              uint16_t *port, char *errbuf, size_t errlen)
{
    struct sim_server *s;
    struct sockaddr_in sin;
    struct sockaddr_in6 sin6;
    const struct sockaddr *sa;
    unsigned int flags =
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_TLS | MHD_USE_ERROR_LOG;
    const union MHD_DaemonInfo *info;

    memset(&sin, 0, sizeof(sin));
    memset(&sin6, 0, sizeof(sin6));
    if (inet_pton(AF_INET, cfg->listen_addr, &sin.sin_addr) == 1) {
        sin.sin_family = AF_INET;
        sin.sin_port = htons(cfg->port);
        sa = (const struct sockaddr *)&sin;
    } else if (inet_pton(AF_INET6, cfg->listen_addr, &sin6.sin6_addr) == 1) {
        sin6.sin6_family = AF_INET6;
        sin6.sin6_port = htons(cfg->port);
        sa = (const struct sockaddr *)&sin6;
        flags |= MHD_USE_IPv6;
    } else {
        (void)snprintf(errbuf, errlen, "--listen %s is not a numeric IP address", cfg->listen_addr);
        return SIM_EINVALID;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return SIM_ENOMEM;
    }
    s->cfg = *cfg;
    s->daemon = MHD_start_daemon(
        flags, cfg->port, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, sa,
        MHD_OPTION_HTTPS_MEM_KEY, cfg->key_pem, MHD_OPTION_HTTPS_MEM_CERT, cfg->cert_pem,
        MHD_OPTION_THREAD_POOL_SIZE, THREADS, MHD_OPTION_CONNECTION_TIMEOUT, CONNECTION_TIMEOUT_S,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, CONNECTION_MEMORY, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, s, MHD_OPTION_NOTIFY_CONNECTION, on_connection, s, MHD_OPTION_END);
    if (s->daemon == NULL) {
        (void)snprintf(errbuf, errlen,
                       "cannot start the HTTPS server on %s port %u (address in use, or a bad "
                       "certificate/key)",
                       cfg->listen_addr, (unsigned)cfg->port);
        free(s);
        return SIM_EIO;
    }
    info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    if (info == NULL || info->port == 0) {
        (void)snprintf(errbuf, errlen, "cannot learn the bound port");
        sim_server_stop(s);
        return SIM_EIO;
    }
    *port = info->port;
    *out = s;
    return SIM_OK;
}

void sim_server_stop(struct sim_server *s)
{
    if (s == NULL) {
        return;
    }
    MHD_stop_daemon(s->daemon);
    free(s);
}
