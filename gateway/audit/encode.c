#include "audit/encode.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/call.h"
#include "pipeline/outcome.h"

const char *const gw_audit_default_sensitive[] = {
    "Password", "LoginPassword", "SecretKey", "SecretId", "Token", "PrivateKey", "Passphrase", NULL,
};

/* Sensitive string values quoted in free text are replaced when at least this long. */
#define SCRUB_MIN_BYTES 4
/* Sensitive string values remembered for scrubbing free text, per record. */
#define SCRUB_MAX 16

struct gw_audit_redactor {
    unsigned char *key; /* sodium_malloc */
    char *names[GW_AUDIT_SENSITIVE_MAX];
    size_t count;
};

enum gw_err gw_audit_redactor_new(const unsigned char key[GW_AUDIT_HMAC_KEY_BYTES],
                                  const char *const *keys, size_t n, struct gw_audit_redactor **out)
{
    enum gw_err err = GW_ERR_NOMEM;
    struct gw_audit_redactor *r = calloc(1, sizeof *r);
    if (r == NULL || (r->key = sodium_malloc(GW_AUDIT_HMAC_KEY_BYTES)) == NULL) {
        goto out;
    }
    memcpy(r->key, key, GW_AUDIT_HMAC_KEY_BYTES);
    if (n == 0) {
        keys = gw_audit_default_sensitive;
        while (keys[n] != NULL) {
            n++;
        }
    }
    if (n > GW_AUDIT_SENSITIVE_MAX) {
        err = GW_ERR_TOO_LARGE;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if ((r->names[i] = strdup(keys[i])) == NULL) {
            goto out;
        }
        r->count++;
    }
    *out = r;
    r = NULL;
    err = GW_OK;
out:
    gw_audit_redactor_free(r);
    return err;
}

void gw_audit_redactor_free(struct gw_audit_redactor *r)
{
    if (r == NULL) {
        return;
    }
    sodium_free(r->key);
    for (size_t i = 0; i < r->count; i++) {
        free(r->names[i]);
    }
    free(r);
}

bool gw_audit_redactor_is_sensitive(const struct gw_audit_redactor *r, const char *name)
{
    for (size_t i = 0; i < r->count; i++) {
        if (strcasecmp(r->names[i], name) == 0) {
            return true;
        }
    }
    return false;
}

void gw_audit_redactor_hmac(const struct gw_audit_redactor *r, const json_t *v,
                            char out[GW_AUDIT_HMAC_TEXT])
{
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS);
    const char *t = text != NULL ? text : "";
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, r->key, GW_AUDIT_HMAC_KEY_BYTES);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)t, strlen(t));
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_memzero(&st, sizeof st);
    if (text != NULL) {
        sodium_memzero(text, strlen(text));
        free(text);
    }
    memcpy(out, "hmac-sha256:", 12);
    sodium_bin2hex(out + 12, 65, mac, sizeof mac);
}

void gw_audit_time_now(char out[32])
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    unsigned long us = (unsigned long)(ts.tv_nsec / 1000) % 1000000ul;
    out[n++] = '.';
    for (int i = 5; i >= 0; i--) {
        out[n + (size_t)i] = (char)('0' + us % 10);
        us /= 10;
    }
    out[n + 6] = 'Z';
    out[n + 7] = '\0';
}

/* ---- text ------------------------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (n bytes left), or 0 when it is not one. */
static size_t utf8_char(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    unsigned min;
    unsigned cp;
    if (c < 0x80) {
        return 1;
    } else if (c >= 0xc2 && c <= 0xdf) {
        len = 2, cp = c & 0x1fu, min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3, cp = c & 0x0fu, min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4, cp = c & 0x07u, min = 0x10000;
    } else {
        return 0;
    }
    if (n < len) {
        return 0;
    }
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (s[i] & 0x3fu);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
        return 0;
    }
    return len;
}

/* The longest prefix of s (at most max bytes) that ends on a character boundary. s is UTF-8. */
static size_t utf8_cut(const char *s, size_t len, size_t max)
{
    if (len <= max) {
        return len;
    }
    size_t cut = max;
    while (cut > 0 && ((unsigned char)s[cut] & 0xc0) == 0x80) {
        cut--;
    }
    return cut;
}

/* The sensitive string values of one record, to keep them out of its free text. */
struct scrub {
    const char *values[SCRUB_MAX];
    size_t lens[SCRUB_MAX];
    size_t count;
};

static void scrub_add(struct scrub *s, const json_t *v)
{
    if (json_is_string(v) && json_string_length(v) >= SCRUB_MIN_BYTES && s->count < SCRUB_MAX) {
        s->values[s->count] = json_string_value(v);
        s->lens[s->count] = json_string_length(v);
        s->count++;
    }
}

/*
 * Free text as a JSON string value, or null when empty: invalid UTF-8 bytes become '?', control
 * characters spaces, and any sensitive value quoted "[sensitive]".
 */
static json_t *text_value(const char *in, const struct scrub *s)
{
    size_t n = strnlen(in, GW_CALL_MESSAGE_MAX);
    if (n == 0) {
        return json_null();
    }
    char buf[GW_CALL_MESSAGE_MAX * 2];
    size_t o = 0;
    for (size_t i = 0; i < n && o + 16 < sizeof buf;) {
        bool hit = false;
        for (size_t k = 0; k < s->count && !hit; k++) {
            if (s->lens[k] <= n - i && memcmp(in + i, s->values[k], s->lens[k]) == 0) {
                memcpy(buf + o, "[sensitive]", 11);
                o += 11;
                i += s->lens[k];
                hit = true;
            }
        }
        if (hit) {
            continue;
        }
        size_t len = utf8_char((const unsigned char *)in + i, n - i);
        if (len == 0) {
            buf[o++] = '?';
            i++;
        } else if (len == 1) {
            unsigned char c = (unsigned char)in[i++];
            buf[o++] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
        } else {
            memcpy(buf + o, in + i, len);
            o += len;
            i += len;
        }
    }
    return json_stringn(buf, o);
}

/* A name or other short field: null when empty. */
static json_t *name_value(const char *in)
{
    static const struct scrub none = {.count = 0};
    return text_value(in, &none);
}

/* ---- parameters ------------------------------------------------------------------------- */

struct redact {
    const struct gw_audit_redactor *r;
    struct scrub *scrub;
    bool clipped; /* a string or a nesting was cut */
};

static json_t *redact_value(struct redact *rd, const json_t *v, size_t depth);

static json_t *hmac_value(struct redact *rd, const json_t *v)
{
    char text[GW_AUDIT_HMAC_TEXT];
    gw_audit_redactor_hmac(rd->r, v, text);
    scrub_add(rd->scrub, v);
    return json_string(text);
}

static json_t *redact_object(struct redact *rd, const json_t *v, size_t depth)
{
    json_t *copy = json_object();
    const char *key;
    json_t *item;
    if (copy == NULL) {
        return NULL;
    }
    json_object_foreach ((json_t *)v, key, item) {
        json_t *c = gw_audit_redactor_is_sensitive(rd->r, key) ? hmac_value(rd, item)
                                                               : redact_value(rd, item, depth + 1);
        if (c == NULL || json_object_set_new(copy, key, c) != 0) {
            json_decref(copy);
            return NULL;
        }
    }
    return copy;
}

static json_t *redact_value(struct redact *rd, const json_t *v, size_t depth)
{
    if (depth >= GW_AUDIT_DEPTH_MAX && (json_is_object(v) || json_is_array(v))) {
        rd->clipped = true;
        return json_string("(nested too deep: not recorded)");
    }
    if (json_is_object(v)) {
        return redact_object(rd, v, depth);
    }
    if (json_is_array(v)) {
        json_t *copy = json_array();
        size_t i;
        json_t *item;
        json_array_foreach (v, i, item) {
            if (copy == NULL || json_array_append_new(copy, redact_value(rd, item, depth + 1))) {
                json_decref(copy);
                return NULL;
            }
        }
        return copy;
    }
    if (json_is_string(v) && json_string_length(v) > GW_AUDIT_STRING_MAX) {
        rd->clipped = true;
        const char *s = json_string_value(v);
        size_t cut = utf8_cut(s, json_string_length(v), GW_AUDIT_STRING_MAX);
        char tail[64];
        int t = snprintf(tail, sizeof tail, "...(clipped: %zu bytes)", json_string_length(v));
        char *buf = malloc(cut + (size_t)t + 1);
        if (buf == NULL) {
            return NULL;
        }
        memcpy(buf, s, cut);
        memcpy(buf + cut, tail, (size_t)t + 1);
        json_t *out = json_stringn(buf, cut + (size_t)t);
        free(buf);
        return out;
    }
    return json_deep_copy(v);
}

/* Adds "params" (and when cut, "params_truncated" and "params_prefix") to rec. */
static int add_params(json_t *rec, const struct gw_call *call, const struct gw_audit_redactor *r,
                      struct scrub *scrub, bool prefix_allowed)
{
    if (call->params == NULL) {
        return json_object_set_new(rec, "params", json_null());
    }
    struct redact rd = {.r = r, .scrub = scrub, .clipped = false};
    json_t *copy = redact_value(&rd, call->params, 0);
    if (copy == NULL) {
        return -1;
    }
    char *text = json_dumps(copy, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
    if (text == NULL) {
        json_decref(copy);
        return -1;
    }
    size_t len = strlen(text);
    int rc;
    if (len <= GW_AUDIT_PARAMS_MAX) {
        rc = json_object_set_new(rec, "params", copy);
        copy = NULL;
        if (rc == 0 && rd.clipped) {
            rc = json_object_set_new(rec, "params_truncated", json_true());
        }
    } else {
        /* The redacted encoding's start, as a string: sensitive values are HMACs there too. */
        size_t keep = prefix_allowed ? utf8_cut(text, len, GW_AUDIT_PREFIX_KEEP) : 0;
        rc = json_object_set_new(rec, "params", json_null());
        rc = rc ? rc : json_object_set_new(rec, "params_truncated", json_true());
        rc = rc ? rc : json_object_set_new(rec, "params_bytes", json_integer((json_int_t)len));
        if (rc == 0 && keep > 0) {
            rc = json_object_set_new(rec, "params_prefix", json_stringn(text, keep));
        }
    }
    json_decref(copy);
    free(text);
    return rc;
}

/* ---- the record ------------------------------------------------------------------------- */

static const char *identity_name(enum gw_identity_method m)
{
    switch (m) {
    case GW_IDENTITY_TOKEN:
        return "token";
    case GW_IDENTITY_SDK_KEY:
        return "sdk_key";
    case GW_IDENTITY_CERT:
        return "certificate";
    case GW_IDENTITY_LISTENER:
        return "listener";
    case GW_IDENTITY_NONE:
    default:
        return NULL;
    }
}

static const char *decision_name(enum gw_decision d)
{
    switch (d) {
    case GW_DECISION_ALLOW:
        return "allow";
    case GW_DECISION_DENY:
        return "deny";
    case GW_DECISION_NONE:
    default:
        return "none";
    }
}

/* Tencent's RequestId and error code, from an answer Tencent gave. */
static void tencent_facts(const struct gw_call *call, json_t *rec)
{
    const struct gw_call_reply *r = &call->reply;
    json_t *rid = json_null();
    json_t *code = NULL;
    if (call->outcome == GW_UPSTREAM_ANSWERED && call->error_code == NULL && r->body != NULL) {
        json_t *doc = json_loadb(r->body, r->len, 0, NULL);
        json_t *resp = json_object_get(doc, "Response");
        const char *id = json_string_value(json_object_get(resp, "RequestId"));
        const char *c = json_string_value(json_object_get(json_object_get(resp, "Error"), "Code"));
        if (id != NULL) {
            json_decref(rid);
            rid = name_value(id);
        }
        if (c != NULL) {
            code = name_value(c);
        }
        json_decref(doc);
    }
    json_object_set_new(rec, "tc_request_id", rid);
    if (code != NULL) {
        json_object_set_new(rec, "error_code", code);
        json_object_set_new(rec, "error_source", json_string("tencent"));
    } else if (call->error_code != NULL) {
        json_object_set_new(rec, "error_code", name_value(call->error_code));
        json_object_set_new(rec, "error_source", json_string("gateway"));
    } else {
        json_object_set_new(rec, "error_code", json_null());
        json_object_set_new(rec, "error_source", json_null());
    }
}

static json_int_t micros(const struct timespec *a, const struct timespec *b)
{
    return (json_int_t)(gw_call_ms(a, b) * 1000.0);
}

static json_t *build(const struct gw_call *call, const struct gw_audit_redactor *r,
                     bool prefix_allowed)
{
    struct scrub scrub = {.count = 0};
    char now[32];
    gw_audit_time_now(now);
    json_t *rec = json_object();
    if (rec == NULL) {
        return NULL;
    }
    const char *identity = identity_name(call->identity);
    json_int_t total = micros(&call->times.received, &call->times.answered);
    json_int_t upstream = micros(&call->times.upstream_start, &call->times.upstream_end);
    int rc = json_object_set_new(rec, "type", json_string("call"));
    rc |= json_object_set_new(rec, "time", json_string(now));
    rc |= json_object_set_new(rec, "request_id", name_value(call->request_id));
    tencent_facts(call, rec);
    rc |= json_object_set_new(rec, "caller", name_value(call->caller));
    rc |= json_object_set_new(rec, "identity", identity ? json_string(identity) : json_null());
    rc |= json_object_set_new(rec, "peer", name_value(call->in.peer));
    rc |= json_object_set_new(rec, "listener_port", json_integer(call->in.listener_port));
    rc |= json_object_set_new(rec, "service", name_value(call->service));
    rc |= json_object_set_new(rec, "action", name_value(call->action));
    rc |= json_object_set_new(rec, "version", name_value(call->version));
    rc |= json_object_set_new(rec, "region", name_value(call->region));
    rc |= add_params(rec, call, r, &scrub, prefix_allowed);
    rc |= json_object_set_new(rec, "decision", json_string(decision_name(call->decision)));
    rc |= json_object_set_new(rec, "statement", name_value(call->statement));
    rc |= json_object_set_new(rec, "reason", text_value(call->policy_reason, &scrub));
    rc |= json_object_set_new(rec, "credential", name_value(call->credential));
    rc |= json_object_set_new(rec, "outcome", json_string(gw_outcome_name(call->outcome)));
    rc |= json_object_set_new(rec, "upstream_status",
                              call->outcome == GW_UPSTREAM_ANSWERED
                                  ? json_integer((json_int_t)call->http_status)
                                  : json_null());
    rc |= json_object_set_new(rec, "http_status", json_integer(call->reply.status));
    rc |= json_object_set_new(rec, "error_message",
                              call->error_code != NULL ? text_value(call->error_message, &scrub)
                                                       : json_null());
    rc |= json_object_set_new(rec, "upstream_detail", text_value(call->upstream_detail, &scrub));
    rc |= json_object_set_new(rec, "latency_us",
                              json_pack("{s:I,s:I,s:I}", "gateway", total - upstream, "upstream",
                                        upstream, "total", total));
    rc |= json_object_set_new(rec, "bytes",
                              json_pack("{s:I,s:I}", "in", (json_int_t)call->bytes_in, "out",
                                        (json_int_t)call->bytes_out));
    if (rc != 0) {
        json_decref(rec);
        return NULL;
    }
    return rec;
}

enum gw_err gw_audit_encode_call(const struct gw_call *call, const struct gw_audit_redactor *r,
                                 char **out, size_t *len)
{
    const size_t body_max = GW_AUDIT_LINE_MAX - GW_AUDIT_PREFIX_MAX - 1;
    for (int attempt = 0; attempt < 2; attempt++) {
        json_t *rec = build(call, r, attempt == 0);
        char *text = rec != NULL ? json_dumps(rec, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        json_decref(rec);
        if (text == NULL) {
            return GW_ERR_NOMEM;
        }
        size_t n = strlen(text);
        if (n - 1 <= body_max) {
            /* The chain prefix supplies the opening brace. */
            memmove(text, text + 1, n);
            *out = text;
            *len = n - 1;
            return GW_OK;
        }
        free(text); /* by construction only a parameter prefix can make it too long */
    }
    return GW_ERR_NOMEM;
}
