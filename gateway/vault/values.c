/*
 * values: secret values (GW_VAULT_SECRET_VALUE), the named byte strings the gateway injects into
 * call parameters. Each lives in key memory of its own, no-access except while
 * gw_vault_value_use hands it to its callback. A value's protection is one state shared by every
 * thread, so users take turns under the value's lock (injection is rare next to signing, and a
 * use is a copy: the turn is short).
 */
#include <stdlib.h>
#include <string.h>

#include "vault/vault_int.h"

/* True when s[0..n) is UTF-8 (no overlongs, surrogates or code points past U+10FFFF), no NUL. */
static bool utf8_without_nul(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        size_t more;
        uint32_t cp;
        if (c == 0) {
            return false;
        }
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            more = 1;
            cp = c & 0x1fu;
        } else if (c >= 0xe0 && c <= 0xef) {
            more = 2;
            cp = c & 0x0fu;
        } else if (c >= 0xf0 && c <= 0xf4) {
            more = 3;
            cp = c & 0x07u;
        } else {
            return false;
        }
        if (more > n - i - 1) {
            return false;
        }
        for (size_t k = 1; k <= more; k++) {
            if ((s[i + k] & 0xc0) != 0x80) {
                return false;
            }
            cp = (cp << 6) | (s[i + k] & 0x3fu);
        }
        if ((more == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (more == 3 && (cp < 0x10000 || cp > 0x10ffff))) {
            return false;
        }
        i += more + 1;
    }
    return true;
}

static size_t find_pos(const struct vault_values *t, const char *name, bool *found)
{
    size_t lo = 0, hi = t->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(t->entries[mid]->name, name);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    *found = false;
    return lo;
}

struct value *vault_value_find(const struct gw_vault *vault, const char *name)
{
    bool found;
    if (vault == NULL || name == NULL) {
        return NULL;
    }
    size_t i = find_pos(&vault->values, name, &found);
    return found ? vault->values.entries[i] : NULL;
}

static void value_free(struct value *v)
{
    if (v == NULL) {
        return;
    }
    vault_mem_free(v->bytes); /* wipes, whatever the protection */
    pthread_mutex_destroy(&v->lock);
    free(v);
}

/* New key memory holding a copy of value, no-access. NULL when out of memory. */
static unsigned char *bytes_new(const unsigned char *value, size_t len)
{
    unsigned char *b = vault_mem_alloc(len);
    if (b == NULL) {
        return NULL;
    }
    memcpy(b, value, len);
    vault_mem_noaccess(b);
    return b;
}

enum gw_err gw_vault_put_value(struct gw_vault *vault, const char *name, const unsigned char *value,
                               size_t len, char *msg, size_t msglen)
{
    bool found;
    struct value *v = NULL;

    if (vault == NULL) {
        gw_say(msg, msglen, "no vault");
        return GW_ERR_INVALID;
    }
    if (!gw_vault_name_valid(name)) {
        gw_say(msg, msglen, "secret value name must be 1 to %d characters from A-Z a-z 0-9 . _ -",
               GW_VAULT_MAX_NAME);
        return GW_ERR_INVALID;
    }
    if (value == NULL || len == 0) {
        gw_say(msg, msglen, "the secret value is empty");
        return GW_ERR_INVALID;
    }
    if (len > GW_VAULT_MAX_VALUE) {
        gw_say(msg, msglen, "the secret value is longer than %d bytes", GW_VAULT_MAX_VALUE);
        return GW_ERR_INVALID;
    }
    if (!utf8_without_nul(value, len)) {
        gw_say(msg, msglen,
               "the secret value must be UTF-8 text without NUL bytes: it travels in a JSON "
               "string (store binary data encoded, as the API expects it, e.g. base64)");
        return GW_ERR_INVALID;
    }
    struct vault_values *t = &vault->values;
    size_t pos = find_pos(t, name, &found);
    if (found) {
        unsigned char *b = bytes_new(value, len);
        if (b == NULL) {
            goto nomem;
        }
        /* Not while other threads use the vault (vault.h): nobody holds the old bytes. */
        vault_mem_free(t->entries[pos]->bytes);
        t->entries[pos]->bytes = b;
        t->entries[pos]->len = len;
        return GW_OK;
    }
    if (t->count >= GW_VAULT_MAX_VALUES) {
        gw_say(msg, msglen, "a credential store holds at most %d secret values",
               GW_VAULT_MAX_VALUES);
        return GW_ERR_TOO_LARGE;
    }
    struct value **grown = realloc(t->entries, (t->count + 1) * sizeof *grown);
    if (grown == NULL) {
        goto nomem;
    }
    t->entries = grown;
    if ((v = calloc(1, sizeof *v)) == NULL) {
        goto nomem;
    }
    if (pthread_mutex_init(&v->lock, NULL) != 0) {
        free(v);
        goto nomem;
    }
    if ((v->bytes = bytes_new(value, len)) == NULL) {
        value_free(v);
        goto nomem;
    }
    memcpy(v->name, name, strlen(name) + 1);
    v->len = len;
    memmove(&t->entries[pos + 1], &t->entries[pos], (t->count - pos) * sizeof *grown);
    t->entries[pos] = v;
    t->count++;
    return GW_OK;
nomem:
    gw_say(msg, msglen, "out of memory");
    return GW_ERR_NOMEM;
}

enum gw_err vault_value_remove(struct gw_vault *vault, const char *name)
{
    bool found;
    struct vault_values *t = &vault->values;
    size_t pos = find_pos(t, name, &found);
    if (!found) {
        return GW_ERR_NOT_FOUND;
    }
    value_free(t->entries[pos]);
    memmove(&t->entries[pos], &t->entries[pos + 1], (t->count - pos - 1) * sizeof *t->entries);
    t->count--;
    return GW_OK;
}

void vault_values_free(struct gw_vault *vault)
{
    for (size_t i = 0; i < vault->values.count; i++) {
        value_free(vault->values.entries[i]);
    }
    free(vault->values.entries);
    vault->values.entries = NULL;
    vault->values.count = 0;
}

bool gw_vault_has_value(const struct gw_vault *vault, const char *name)
{
    return vault_value_find(vault, name) != NULL;
}

size_t gw_vault_value_count(const struct gw_vault *vault)
{
    return vault == NULL ? 0 : vault->values.count;
}

enum gw_err gw_vault_value_describe(const struct gw_vault *vault, size_t i,
                                    char name[GW_VAULT_MAX_NAME + 1], size_t *len)
{
    if (vault == NULL || i >= vault->values.count) {
        return GW_ERR_NOT_FOUND;
    }
    const struct value *v = vault->values.entries[i];
    memcpy(name, v->name, strlen(v->name) + 1);
    *len = v->len;
    return GW_OK;
}

enum gw_err gw_vault_value_length(const struct gw_vault *vault, const char *name, size_t *len)
{
    const struct value *v = vault_value_find(vault, name);
    if (v == NULL) {
        return GW_ERR_NOT_FOUND;
    }
    *len = v->len;
    return GW_OK;
}

enum gw_err gw_vault_value_use(struct gw_vault *vault, const char *name, gw_vault_value_fn fn,
                               void *arg)
{
    struct value *v = vault_value_find(vault, name);
    if (v == NULL || fn == NULL) {
        return v == NULL ? GW_ERR_NOT_FOUND : GW_ERR_INVALID;
    }
    pthread_mutex_lock(&v->lock);
    vault_mem_readonly(v->bytes);
    enum gw_err err = fn(arg, v->bytes, v->len);
    vault_mem_noaccess(v->bytes);
    pthread_mutex_unlock(&v->lock);
    return err;
}
