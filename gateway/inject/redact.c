/*
 * inject, redacting: the secret values a call sent, wherever the answer echoes them (as sent, or
 * JSON-escaped), replaced by their placeholders before the answer reaches the caller. See
 * inject.h.
 */
#include "inject/inject.h"
#include "inject/inject_int.h"

#include <sodium.h>
#include <stdint.h>
#include <string.h>

#include "core/buf.h"
#include "vault/vault.h"

/* ---- redact ---------------------------------------------------------------------------------- */

/* The first occurrence of needle in hay at or after from, or SIZE_MAX. */
static size_t find(const char *hay, size_t hay_len, size_t from, const unsigned char *needle,
                   size_t n)
{
    while (from + n <= hay_len) {
        const char *p = memchr(hay + from, needle[0], hay_len - n + 1 - from);
        if (p == NULL) {
            return SIZE_MAX;
        }
        size_t at = (size_t)(p - hay);
        if (memcmp(p, needle, n) == 0) {
            return at;
        }
        from = at + 1;
    }
    return SIZE_MAX;
}

/* Replaces resp[s, e) with with; the old bytes are wiped. */
static enum gw_err replace_span(struct gw_buf *resp, size_t s, size_t e, const char *with)
{
    enum gw_err err;
    struct gw_buf fresh;
    gw_buf_init(&fresh, SIZE_MAX / 2);
    gw_buf_charge(&fresh, resp->budget, false);
    if ((err = gw_buf_append(&fresh, resp->data, s)) != GW_OK ||
        (err = gw_buf_append_str(&fresh, with)) != GW_OK ||
        (err = gw_buf_append(&fresh, resp->data + e, resp->len - e)) != GW_OK) {
        gw_buf_free_wipe(&fresh);
        return err;
    }
    fresh.max = resp->max > fresh.len ? resp->max : fresh.len;
    gw_buf_free_wipe(resp);
    *resp = fresh;
    return GW_OK;
}

/*
 * Finds, at or after from, the first run of the answer that holds a whole chunk of form (aligned
 * at a multiple of GW_INJECT_REDACT_CHUNK in form) and extends it both ways while the answer and
 * form agree: [*s, *e). So a cut echo is found too, when it holds at least one whole chunk (a
 * run of 2 * GW_INJECT_REDACT_CHUNK - 1 bytes of the value suffices). False when there is none.
 */
static bool find_run(const struct gw_buf *resp, size_t from, const unsigned char *form, size_t len,
                     size_t *s, size_t *e)
{
    size_t chunk = len < GW_INJECT_REDACT_CHUNK ? len : GW_INJECT_REDACT_CHUNK;
    size_t best = SIZE_MAX, best_off = 0;
    const unsigned char *a = (const unsigned char *)resp->data;
    for (size_t off = 0; off + chunk <= len; off += chunk) {
        size_t at = find(resp->data, resp->len, from, form + off, chunk);
        if (at < best) {
            best = at;
            best_off = off;
        }
    }
    if (best == SIZE_MAX) {
        return false;
    }
    size_t l = 0, r = 0;
    while (l < best && l < best_off && a[best - l - 1] == form[best_off - l - 1]) {
        l++;
    }
    while (best + chunk + r < resp->len && best_off + chunk + r < len &&
           a[best + chunk + r] == form[best_off + chunk + r]) {
        r++;
    }
    *s = best - l;
    *e = best + chunk + r;
    return true;
}

/* A form a value may take in an answer. */
struct form {
    const unsigned char *p;
    size_t len;
};

/*
 * Replaces every run of a form found in *resp (find_run) with with. Where runs of several forms
 * are found, the one that starts first, and of those the longest, is taken: a run of the wrong
 * form stops at the first character the forms spell differently.
 */
static enum gw_err replace_all(struct gw_buf *resp, const struct form *forms, size_t n,
                               const char *with, size_t *count)
{
    enum gw_err err;
    size_t from = 0;
    while (from < resp->len) {
        size_t best_s = SIZE_MAX, best_e = 0, s, e;
        for (size_t i = 0; i < n; i++) {
            if (find_run(resp, from, forms[i].p, forms[i].len, &s, &e) &&
                (s < best_s || (s == best_s && e > best_e))) {
                best_s = s;
                best_e = e;
            }
        }
        if (best_s == SIZE_MAX) {
            break;
        }
        if ((err = replace_span(resp, best_s, best_e, with)) != GW_OK) {
            return err;
        }
        (*count)++;
        from = best_s + strlen(with);
    }
    return GW_OK;
}

struct redact_ctx {
    struct gw_buf *scratch; /* secure */
    struct gw_buf *resp;
    const char *with;
    size_t count;
};

static enum gw_err redact_value(void *arg, const unsigned char *value, size_t len)
{
    struct redact_ctx *c = arg;
    enum gw_err err;
    struct gw_buf *forms_buf = c->scratch; /* the escaped form, then the slash-escaped one */
    if (len < GW_INJECT_REDACT_MIN) {
        return GW_OK;
    }
    size_t esc_len = inject_escaped_len(value, len), slashes = 0;
    for (size_t i = 0; i < len; i++) {
        slashes += value[i] == '/';
    }
    sodium_memzero(forms_buf->data, forms_buf->cap); /* wipes the previous value's forms */
    gw_buf_reset(forms_buf);
    /* Reserved whole, so that the two forms never move while they are pointed at. */
    if ((err = gw_buf_reserve(forms_buf, 2 * esc_len + slashes)) != GW_OK ||
        (err = gw_inject_json_escape(forms_buf, value, len)) != GW_OK) {
        goto out;
    }
    /* Some encoders escape '/' (PEM's base64 holds many). */
    for (size_t i = 0; i < esc_len; i++) {
        char ch = forms_buf->data[i];
        if ((err = ch == '/' ? gw_buf_append(forms_buf, "\\/", 2)
                             : gw_buf_append(forms_buf, &ch, 1)) != GW_OK) {
            goto out;
        }
    }
    const unsigned char *esc = (const unsigned char *)forms_buf->data;
    struct form forms[] = {
        {value, len},
        {esc, esc_len},
        {esc + esc_len, esc_len + slashes},
    };
    err = replace_all(c->resp, forms, sizeof forms / sizeof forms[0], c->with, &c->count);
out:
    sodium_memzero(forms_buf->data, forms_buf->cap);
    gw_buf_reset(forms_buf);
    return err;
}

enum gw_err gw_inject_redact(const struct gw_inject *inj, struct gw_vault *vault,
                             struct gw_buf *response, struct gw_buf *scratch, size_t *count)
{
    enum gw_err err = GW_OK;
    struct gw_buf own;
    *count = 0;
    if (inj == NULL || response->data == NULL || response->len == 0) {
        return GW_OK;
    }
    gw_buf_init_secure(&own, SIZE_MAX / 2);
    if (scratch == NULL || !scratch->secure) {
        scratch = &own;
    }
    if (scratch->data == NULL && (err = gw_buf_reserve(scratch, 256)) != GW_OK) {
        return err;
    }
    for (size_t i = 0; i < inj->n_secrets; i++) {
        bool seen = false;
        for (size_t k = 0; k < i && !seen; k++) {
            seen = strcmp(inj->names[k], inj->names[i]) == 0;
        }
        if (seen) {
            continue;
        }
        char with[GW_PLACEHOLDER_MAX + 1];
        snprintf(with, sizeof with, GW_PLACEHOLDER_SECRET "%s}}", inj->names[i]);
        struct redact_ctx c = {scratch, response, with, 0};
        if ((err = gw_vault_value_use(vault, inj->names[i], redact_value, &c)) != GW_OK) {
            break;
        }
        *count += c.count;
    }
    gw_buf_free(&own);
    return err;
}
