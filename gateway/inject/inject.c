/*
 * inject: scan and apply (inject.h; redacting is in redact.c). The body is rewritten by
 * splicing, not by re-serialising the parsed tree: a scanner walks the caller's JSON text
 * (already parsed and accepted, duplicate keys refused, so its strings are exactly those of
 * call->params), decodes each string in value position, and replaces only the placeholder and
 * escaped strings. Numbers keep their spelling, keys their order, whitespace stays: what the
 * caller signed for its own records is what is sent, except the values it could not hold. No
 * secret ever enters a Jansson value (its heap is not wiped): values go from the vault's key
 * memory straight into the body's.
 */
#include "inject/inject.h"
#include "inject/inject_int.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apispec/apispec.h"
#include "inject/placeholder.h"
#include "vault/vault.h"

#define LIT_LEN(s) (sizeof s - 1)
#define MAX_DEPTH 64 /* JSON levels scanned; validated calls nest far less */

static void say(struct gw_inject_verdict *v, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void say(struct gw_inject_verdict *v, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->message, sizeof v->message, fmt, ap);
    va_end(ap);
    v->code = code;
}

/* ---- scan ------------------------------------------------------------------------------------ */

struct walk {
    struct gw_inject *inj; /* allocated at the first special string */
    struct gw_inject_verdict *v;
    char param[GW_INJECT_PATH_MAX];
    char where[GW_INJECT_PATH_MAX];
    size_t param_len, where_len;
    bool too_long;
    bool nomem;
};

/* Appends ".seg" (or "seg" first) to a path; sets too_long when it does not fit. */
static size_t push(char *path, size_t *len, const char *seg, bool *too_long)
{
    size_t old = *len;
    size_t dot = old > 0 ? 1 : 0;
    size_t n = strlen(seg);
    if (dot + n >= GW_INJECT_PATH_MAX - old) {
        *too_long = true;
        path[old] = '\0';
        return old;
    }
    path[old] = '.'; /* overwritten by seg when there is no dot */
    memcpy(path + old + dot, seg, n + 1);
    *len = old + dot + n;
    return old;
}

static bool on_string(struct walk *w, const json_t *j)
{
    const char *s = json_string_value(j);
    size_t n = json_string_length(j);
    char name[GW_PLACEHOLDER_NAME_MAX + 1];
    enum gw_placeholder kind = gw_placeholder_parse(s, n, name);
    if (kind == GW_PLACEHOLDER_NONE) {
        return true;
    }
    if (kind == GW_PLACEHOLDER_MALFORMED) {
        say(w->v, "InvalidParameterValue",
            "Parameter \"%s\" starts with \"" GW_PLACEHOLDER_PREFIX "\", which tcgw reserves: "
            "send a secret placeholder as the whole value, exactly \"" GW_PLACEHOLDER_SECRET
            "NAME}}\" (NAME: 1 to %d of A-Z a-z 0-9 . _ -), or a literal value that starts so "
            "after \"" GW_PLACEHOLDER_RAW "\". Nothing was sent to Tencent Cloud.",
            w->where, GW_PLACEHOLDER_NAME_MAX);
        return false;
    }
    if (w->too_long) {
        say(w->v, "InvalidParameterValue",
            "A secret placeholder's parameter path is longer than %d bytes. Nothing was sent to "
            "Tencent Cloud.",
            GW_INJECT_PATH_MAX - 1);
        return false;
    }
    if (w->inj == NULL && (w->inj = calloc(1, sizeof *w->inj)) == NULL) {
        w->nomem = true;
        return false;
    }
    struct gw_inject *inj = w->inj;
    if (inj->n == GW_INJECT_MAX_STRINGS) {
        say(w->v, "InvalidParameterValue",
            "A call may hold at most %d secret placeholders and escaped literals. Nothing was "
            "sent to Tencent Cloud.",
            GW_INJECT_MAX_STRINGS);
        return false;
    }
    struct ref *r = &inj->refs[inj->n++];
    r->kind = kind;
    memcpy(r->param, w->param, w->param_len + 1);
    memcpy(r->where, w->where, w->where_len + 1);
    if (kind == GW_PLACEHOLDER_IS_SECRET) {
        memcpy(r->name, name, strlen(name) + 1);
        inj->names[inj->n_secrets] = r->name;
        inj->params[inj->n_secrets] = r->param;
        inj->n_secrets++;
    } else {
        r->literal = (const unsigned char *)s + LIT_LEN(GW_PLACEHOLDER_RAW);
        r->literal_len = n - LIT_LEN(GW_PLACEHOLDER_RAW);
    }
    return true;
}

static bool walk(struct walk *w, const json_t *j, unsigned depth)
{
    if (depth > MAX_DEPTH) {
        say(w->v, "InvalidParameterValue",
            "The parameters nest deeper than %d levels. Nothing was sent to Tencent Cloud.",
            MAX_DEPTH);
        return false;
    }
    if (json_is_string(j)) {
        return on_string(w, j);
    }
    if (json_is_object(j)) {
        const char *key;
        json_t *child;
        json_object_foreach ((json_t *)j, key, child) {
            bool was_long = w->too_long;
            size_t p_old = push(w->param, &w->param_len, key, &w->too_long);
            size_t w_old = push(w->where, &w->where_len, key, &w->too_long);
            bool ok = walk(w, child, depth + 1);
            w->param[p_old] = '\0';
            w->param_len = p_old;
            w->where[w_old] = '\0';
            w->where_len = w_old;
            w->too_long = was_long;
            if (!ok) {
                return false;
            }
        }
        return true;
    }
    if (json_is_array(j)) {
        for (size_t i = 0; i < json_array_size(j); i++) {
            char index[24];
            snprintf(index, sizeof index, "%zu", i);
            bool was_long = w->too_long;
            size_t w_old = push(w->where, &w->where_len, index, &w->too_long);
            bool ok = walk(w, json_array_get(j, i), depth + 1);
            w->where[w_old] = '\0';
            w->where_len = w_old;
            w->too_long = was_long;
            if (!ok) {
                return false;
            }
        }
        return true;
    }
    return true;
}

enum gw_err gw_inject_scan(const json_t *params, struct gw_inject **out,
                           struct gw_inject_verdict *v)
{
    struct walk w;
    memset(&w, 0, sizeof w);
    w.v = v;
    v->code = NULL;
    v->message[0] = '\0';
    if (!walk(&w, params, 0)) {
        free(w.inj);
        if (w.nomem) {
            say(v, "InternalError", "tcgw ran out of memory. Nothing was sent to Tencent Cloud.");
            return GW_ERR_NOMEM;
        }
        return GW_ERR_INVALID;
    }
    *out = w.inj;
    return GW_OK;
}

size_t gw_inject_secrets(const struct gw_inject *inj, const char *const **names,
                         const char *const **params)
{
    if (inj == NULL) {
        *names = NULL;
        *params = NULL;
        return 0;
    }
    *names = inj->names;
    *params = inj->params;
    return inj->n_secrets;
}

void gw_inject_free(struct gw_inject *inj)
{
    free(inj); /* holds names and paths only, never a value */
}

/* ---- JSON strings ---------------------------------------------------------------------------- */

enum gw_err gw_inject_json_escape(struct gw_buf *out, const unsigned char *s, size_t n)
{
    enum gw_err err;
    size_t run = 0; /* start of the bytes not yet appended */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        char esc[8];
        size_t esc_len = 2;
        if (c >= 0x20 && c != '"' && c != '\\') {
            continue;
        }
        esc[0] = '\\';
        switch (c) {
        case '"':
            esc[1] = '"';
            break;
        case '\\':
            esc[1] = '\\';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        default:
            snprintf(esc, sizeof esc, "\\u%04x", (unsigned)c);
            esc_len = 6;
            break;
        }
        if ((err = gw_buf_append(out, s + run, i - run)) != GW_OK ||
            (err = gw_buf_append(out, esc, esc_len)) != GW_OK) {
            return err;
        }
        run = i + 1;
    }
    return gw_buf_append(out, s + run, n - run);
}

size_t inject_escaped_len(const unsigned char *s, size_t n)
{
    size_t len = n;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"' || s[i] == '\\' || s[i] == '\n' || s[i] == '\r' || s[i] == '\t' ||
            s[i] == '\b' || s[i] == '\f') {
            len += 1;
        } else if (s[i] < 0x20) {
            len += 5;
        }
    }
    return len;
}

static int hex_digit(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

static unsigned read_hex4(const char *p)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        v = v * 16 + (unsigned)hex_digit(p[i]);
    }
    return v;
}

/*
 * Decodes the string token tok[0..n) (quotes included; valid JSON, as Jansson accepted it) into
 * out, at most cap bytes. Sets *complete when the whole string fit, and *raw_at to the offset in
 * tok just after the first `mark` decoded bytes (0 when fewer).
 */
static size_t decode(const char *tok, size_t n, char *out, size_t cap, bool *complete, size_t mark,
                     size_t *raw_at)
{
    size_t o = 0, i = 1; /* past the opening quote */
    *raw_at = 0;
    while (i < n - 1) {
        char buf[4];
        size_t len = 1;
        if (tok[i] != '\\') {
            buf[0] = tok[i++];
        } else {
            char e = tok[i + 1];
            i += 2;
            switch (e) {
            case 'b':
                buf[0] = '\b';
                break;
            case 'f':
                buf[0] = '\f';
                break;
            case 'n':
                buf[0] = '\n';
                break;
            case 'r':
                buf[0] = '\r';
                break;
            case 't':
                buf[0] = '\t';
                break;
            case 'u': {
                unsigned cp = read_hex4(tok + i);
                i += 4;
                if (cp >= 0xd800 && cp <= 0xdbff && i + 6 <= n - 1 && tok[i] == '\\' &&
                    tok[i + 1] == 'u') {
                    unsigned lo = read_hex4(tok + i + 2);
                    i += 6;
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                }
                if (cp < 0x80) {
                    buf[0] = (char)cp;
                } else if (cp < 0x800) {
                    buf[0] = (char)(0xc0 | (cp >> 6));
                    buf[1] = (char)(0x80 | (cp & 0x3f));
                    len = 2;
                } else if (cp < 0x10000) {
                    buf[0] = (char)(0xe0 | (cp >> 12));
                    buf[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
                    buf[2] = (char)(0x80 | (cp & 0x3f));
                    len = 3;
                } else {
                    buf[0] = (char)(0xf0 | (cp >> 18));
                    buf[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
                    buf[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
                    buf[3] = (char)(0x80 | (cp & 0x3f));
                    len = 4;
                }
                break;
            }
            default: /* '"', '\\', '/' */
                buf[0] = e;
                break;
            }
        }
        if (o + len > cap) {
            *complete = false;
            return o;
        }
        memcpy(out + o, buf, len);
        o += len;
        if (o == mark) {
            *raw_at = i;
        }
    }
    *complete = true;
    return o;
}

/* ---- apply ----------------------------------------------------------------------------------- */

struct check_ctx {
    const struct gw_apispec *spec;
    const char *service, *version, *action;
    const struct ref *r;
    struct gw_inject_verdict *v;
    size_t grow; /* bytes the values add to the body, at most */
};

/* Splits "A.B" into segments (pointers into copy, which is changed). Returns how many. */
static size_t split(char *copy, const char **seg, size_t max)
{
    size_t n = 0;
    for (char *p = copy; n < max;) {
        seg[n++] = p;
        char *dot = strchr(p, '.');
        if (dot == NULL) {
            break;
        }
        *dot = '\0';
        p = dot + 1;
    }
    return n;
}

static enum gw_err check_value(void *arg, const unsigned char *value, size_t len)
{
    struct check_ctx *c = arg;
    char copy[GW_INJECT_PATH_MAX];
    const char *seg[GW_INJECT_PATH_MAX / 2];
    char what[GW_PLACEHOLDER_NAME_MAX + 32];
    struct gw_apispec_verdict verdict;
    memcpy(copy, c->r->param, strlen(c->r->param) + 1);
    size_t n = split(copy, seg, sizeof seg / sizeof seg[0]);
    if (c->r->kind == GW_PLACEHOLDER_IS_SECRET) {
        snprintf(what, sizeof what, "secret \"%s\"", c->r->name);
    } else {
        snprintf(what, sizeof what, "the literal after " GW_PLACEHOLDER_RAW);
    }
    if (!gw_apispec_check_injected(c->spec, c->service, c->version, c->action, seg, n, c->r->where,
                                   what, value, len, &verdict)) {
        c->v->code = verdict.code;
        snprintf(c->v->message, sizeof c->v->message, "%s", verdict.message);
        return GW_ERR_INVALID;
    }
    return GW_OK;
}

struct splice_ctx {
    struct gw_buf *out;
};

static enum gw_err put_value(void *arg, const unsigned char *value, size_t len)
{
    struct splice_ctx *s = arg;
    return gw_inject_json_escape(s->out, value, len);
}

/* Writes body into out with the special strings replaced; counts the secrets put. */
static enum gw_err splice(struct gw_vault *vault, const char *body, size_t len, struct gw_buf *out,
                          size_t *secrets, char *failed, size_t failed_len)
{
    enum gw_err err;
    size_t i = 0;
    *secrets = 0;
    while (i < len) {
        const char *q = memchr(body + i, '"', len - i);
        size_t stop = q != NULL ? (size_t)(q - body) : len;
        if ((err = gw_buf_append(out, body + i, stop - i)) != GW_OK) {
            return err;
        }
        if (q == NULL) {
            break;
        }
        size_t end = stop + 1;
        while (end < len && body[end] != '"') {
            end += body[end] == '\\' ? 2 : 1;
        }
        if (end >= len) {
            return GW_ERR_INTERNAL; /* not the JSON that was parsed */
        }
        end++; /* past the closing quote */
        size_t k = end;
        while (k < len &&
               (body[k] == ' ' || body[k] == '\t' || body[k] == '\n' || body[k] == '\r')) {
            k++;
        }
        const char *tok = body + stop;
        size_t tok_len = end - stop;
        i = end;
        char dec[GW_PLACEHOLDER_MAX + 1];
        bool complete = true;
        size_t raw_at = 0;
        size_t n = k < len && body[k] == ':' ? 0 /* a key */
                                             : decode(tok, tok_len, dec, sizeof dec, &complete,
                                                      LIT_LEN(GW_PLACEHOLDER_RAW), &raw_at);
        char name[GW_PLACEHOLDER_NAME_MAX + 1];
        enum gw_placeholder kind = gw_placeholder_parse(dec, n, name);
        if (kind == GW_PLACEHOLDER_IS_SECRET && !complete) {
            kind = GW_PLACEHOLDER_MALFORMED; /* longer than any placeholder */
        }
        switch (kind) {
        case GW_PLACEHOLDER_NONE:
            err = gw_buf_append(out, tok, tok_len);
            break;
        case GW_PLACEHOLDER_IS_RAW:
            /* The caller's own bytes after the escape, closing quote included. */
            err = gw_buf_append(out, "\"", 1);
            if (err == GW_OK) {
                err = gw_buf_append(out, tok + raw_at, tok_len - raw_at);
            }
            break;
        case GW_PLACEHOLDER_IS_SECRET: {
            struct splice_ctx s = {out};
            if ((err = gw_buf_append(out, "\"", 1)) != GW_OK) {
                break;
            }
            err = gw_vault_value_use(vault, name, put_value, &s);
            if (err == GW_ERR_NOT_FOUND) {
                snprintf(failed, failed_len, "%s", name);
            }
            if (err == GW_OK) {
                err = gw_buf_append(out, "\"", 1);
                (*secrets)++;
            }
            break;
        }
        case GW_PLACEHOLDER_MALFORMED:
        default:
            err = GW_ERR_INTERNAL; /* the scan refuses these */
            break;
        }
        if (err != GW_OK) {
            return err;
        }
    }
    return GW_OK;
}

enum gw_err gw_inject_apply(const struct gw_inject *inj, struct gw_vault *vault,
                            const struct gw_apispec *spec, const char *service, const char *version,
                            const char *action, const char *body, size_t len, struct gw_buf *out,
                            struct gw_inject_verdict *v)
{
    enum gw_err err;
    v->code = NULL;
    v->message[0] = '\0';
    if (inj == NULL) {
        say(v, "InternalError", "tcgw has no placeholders to resolve; nothing was sent.");
        return GW_ERR_INTERNAL;
    }
    /* Every value is looked up and checked before a byte of the body is written. */
    size_t grow = 0;
    for (size_t i = 0; i < inj->n; i++) {
        const struct ref *r = &inj->refs[i];
        struct check_ctx c = {spec, service, version, action, r, v, 0};
        if (r->kind == GW_PLACEHOLDER_IS_RAW) {
            err = check_value(&c, r->literal, r->literal_len);
        } else {
            err = gw_vault_value_use(vault, r->name, check_value, &c);
        }
        if (err == GW_ERR_NOT_FOUND) {
            say(v, "ResourceNotFound",
                "Parameter \"%s\" names secret \"%s\", which this gateway does not hold (an "
                "operator stores it with: tcgw secrets put-value %s). Nothing was sent to Tencent "
                "Cloud.",
                r->where, r->name, r->name);
            return err;
        }
        if (err != GW_OK) {
            if (v->code == NULL) {
                say(v, "InternalError",
                    "tcgw could not read secret \"%s\" (%s); nothing was sent to Tencent Cloud.",
                    r->name, gw_err_str(err));
            }
            return err;
        }
        grow += c.grow;
    }
    /*
     * One region of key memory, sized at once: growing a secure buffer copies it into a new one
     * (a sodium_malloc each time, tens of microseconds). Three times the values: once the body is
     * sent, gw_inject_redact reuses the region for the forms it searches for. Past the maximum,
     * splice finds the exact answer.
     */
    if (grow <= (SIZE_MAX - len) / 3 && gw_buf_reserve(out, len + 3 * grow) == GW_ERR_NOMEM) {
        say(v, "InternalError", "tcgw ran out of memory. Nothing was sent to Tencent Cloud.");
        return GW_ERR_NOMEM;
    }
    size_t secrets = 0;
    char failed[GW_PLACEHOLDER_NAME_MAX + 1] = "";
    err = splice(vault, body, len, out, &secrets, failed, sizeof failed);
    if (err == GW_OK && secrets != inj->n_secrets) {
        err = GW_ERR_INTERNAL;
    }
    if (err != GW_OK) {
        gw_buf_free(out); /* wipes what was written */
    }
    switch (err) {
    case GW_OK:
        return GW_OK;
    case GW_ERR_TOO_LARGE:
        say(v, "RequestSizeLimitExceeded",
            "With its secret values in place the body would be longer than the gateway's limit "
            "of %zu bytes. Nothing was sent to Tencent Cloud.",
            out->max);
        return err;
    case GW_ERR_NOT_FOUND: /* removed since the check: a reload cannot do that to a snapshot */
        say(v, "ResourceNotFound",
            "This gateway does not hold secret \"%s\". Nothing was sent to Tencent Cloud.", failed);
        return err;
    case GW_ERR_NOMEM:
    case GW_ERR_BUDGET:
        say(v, "InternalError", "tcgw ran out of memory. Nothing was sent to Tencent Cloud.");
        return err;
    default:
        say(v, "InternalError",
            "tcgw could not put the secret values in place (%s). Nothing was sent to Tencent "
            "Cloud.",
            gw_err_str(err));
        return err;
    }
}
