/* callers: the callers file and the registry loaded from it. See callers.h. */
#include "identity/callers.h"

#include <errno.h>
#include <limits.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/file.h"
#include "core/jsonpos.h"
#include "identity/callers_int.h"

/* A callers file larger than this is refused before it is parsed. */
#define MAX_CALLERS_BYTES ((size_t)1 << 20)
#define MAX_ATTRIBUTES 64
#define MAX_ATTRIBUTE_VALUE 1024

/* ---- Messages -------------------------------------------------------------------------- */

/* "FILE:LINE" of the path steps[0..n), or "FILE" when the line is unknown. */
static void locate(const struct source *src, const struct gw_jsonpos_step *steps, size_t n,
                   char *out, size_t outlen)
{
    int line = gw_jsonpos_line(src->text, src->len, steps, n);
    if (line > 0) {
        snprintf(out, outlen, "%s:%d", src->path, line);
    } else {
        snprintf(out, outlen, "%s", src->path);
    }
}

/* See callers_int.h. */
enum gw_err callers_fail(const struct source *src, const char *name, const char *field,
                         const char *what)
{
    const struct gw_jsonpos_step steps[3] = {{"callers", 0}, {name, 0}, {field, 0}};
    char where[PATH_MAX + 32];
    char who[GW_VAULT_MAX_NAME * 2 + 64] = "";

    locate(src, steps, name == NULL ? 1 : field == NULL ? 2 : 3, where, sizeof where);
    if (name != NULL && field != NULL) {
        snprintf(who, sizeof who, "caller \"%.*s\": \"%.*s\" ", GW_VAULT_MAX_NAME, name,
                 GW_VAULT_MAX_NAME, field);
    } else if (name != NULL) {
        snprintf(who, sizeof who, "caller \"%.*s\" ", GW_VAULT_MAX_NAME, name);
    }
    gw_say(src->msg, src->msglen, "%s: %s%s", where, who, what);
    return GW_ERR_INVALID;
}

/* See callers_int.h. */
void callers_plain_line(char *msg, size_t msglen)
{
    for (size_t i = 0; msg != NULL && i < msglen && msg[i] != '\0'; i++) {
        if ((unsigned char)msg[i] < 0x20 || msg[i] == 0x7f) {
            msg[i] = '?';
        }
    }
}

/* ---- Field rules ----------------------------------------------------------------------- */

static const char *const caller_keys[] = {"token_sha",  "sdk_secret_id", "certificate",
                                          "credential", "policies",      "attributes"};
#define CALLER_KEYS_LIST "token_sha, sdk_secret_id, certificate, credential, policies, attributes"

/* printable ASCII without spaces, and neither '/' nor ',' (they delimit it in Credential=). */
static bool secret_id_valid(const char *s, size_t len)
{
    if (len == 0 || len > GW_VAULT_MAX_SECRET_ID) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c >= 0x7f || c == '/' || c == ',') {
            return false;
        }
    }
    return true;
}

/* A URI SAN or a CN: 1..GW_CALLERS_CERT_NAME_MAX bytes, no control characters, not padded. */
static bool cert_name_valid(const char *s, size_t len)
{
    if (len == 0 || len > GW_CALLERS_CERT_NAME_MAX || s[0] == ' ' || s[len - 1] == ' ') {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f) {
            return false;
        }
    }
    return true;
}

/* Exactly 2 * n lowercase hex digits into out[n]. */
static bool hex_decode(const char *s, size_t len, unsigned char *out, size_t n)
{
    if (len != 2 * n) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return false;
        }
    }
    return sodium_hex2bin(out, n, s, len, NULL, NULL, NULL) == 0;
}

/* A string field's value and length, or NULL when the value is not a string. */
static const char *string_of(const json_t *v, size_t *len)
{
    if (!json_is_string(v)) {
        return NULL;
    }
    *len = json_string_length(v);
    return json_string_value(v);
}

static enum gw_err take_policies(const struct source *src, const char *name, json_t *v,
                                 struct gw_caller *c)
{
    size_t i;
    json_t *item;
    if (!json_is_array(v) || json_array_size(v) > GW_CALLERS_MAX_POLICIES) {
        char what[128];
        snprintf(what, sizeof what, "must be a list of at most %d policy names",
                 GW_CALLERS_MAX_POLICIES);
        return callers_fail(src, name, "policies", what);
    }
    json_array_foreach (v, i, item) {
        const char *p = json_string_value(item);
        if (p == NULL || strlen(p) != json_string_length(item) || !gw_vault_name_valid(p)) {
            return callers_fail(
                src, name, "policies",
                "must list policy names: 1 to 64 characters from A-Z a-z 0-9 . _ - (the "
                "file policies/NAME.json)");
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(c->policies[j], p) == 0) {
                return callers_fail(src, name, "policies", "names a policy twice: list each once");
            }
        }
        c->policies[i] = p;
    }
    c->policy_count = json_array_size(v);
    return GW_OK;
}

static enum gw_err take_attributes(const struct source *src, const char *name, json_t *v,
                                   struct gw_caller *c)
{
    const char *key;
    json_t *value;
    if (!json_is_object(v) || json_object_size(v) > MAX_ATTRIBUTES) {
        return callers_fail(src, name, "attributes",
                            "must be an object of at most 64 string values");
    }
    json_object_foreach (v, key, value) {
        if (!gw_vault_name_valid(key)) {
            return callers_fail(src, name, "attributes",
                                "must have keys of 1 to 64 characters from A-Z a-z 0-9 . _ -");
        }
        size_t len;
        const char *s = string_of(value, &len);
        if (s == NULL || len > MAX_ATTRIBUTE_VALUE || strlen(s) != len) {
            return callers_fail(src, name, "attributes",
                                "must have string values of at most 1024 bytes (no NUL)");
        }
    }
    c->attributes = v;
    return GW_OK;
}

/* Fills c from the object v of caller name. */
static enum gw_err take_caller(const struct source *src, const char *name, json_t *v,
                               struct gw_caller *c)
{
    enum gw_err err;
    const char *key;
    json_t *value;
    size_t len;
    const char *s;

    if (!gw_vault_name_valid(name)) {
        return callers_fail(
            src, name, NULL,
            "is not a valid caller name: use 1 to 64 characters from A-Z a-z 0-9 . _ -");
    }
    if (!json_is_object(v)) {
        return callers_fail(src, name, NULL, "must be an object");
    }
    memcpy(c->name, name, strlen(name) + 1);
    json_object_foreach (v, key, value) {
        size_t k = 0;
        while (k < sizeof caller_keys / sizeof *caller_keys && strcmp(caller_keys[k], key) != 0) {
            k++;
        }
        s = string_of(value, &len);
        switch (k) {
        case 0: /* token_sha */
            if (s == NULL || !hex_decode(s, len, c->token_hash, sizeof c->token_hash)) {
                return callers_fail(
                    src, name, key,
                    "must be 64 lowercase hex digits (the keyed hash `tcgw callers add` "
                    "wrote; the token itself is never stored)");
            }
            c->has_token = true;
            break;
        case 1: /* sdk_secret_id */
            if (s == NULL || !secret_id_valid(s, len)) {
                return callers_fail(
                    src, name, key,
                    "must be a SecretId: 1 to 128 printable characters, no space, '/' or "
                    "','");
            }
            memcpy(c->sdk_secret_id, s, len + 1);
            break;
        case 2: /* certificate */
            if (s == NULL || !cert_name_valid(s, len)) {
                return callers_fail(
                    src, name, key,
                    "must be a certificate's URI SAN or CN: 1 to 256 characters, no "
                    "control characters or surrounding spaces");
            }
            memcpy(c->certificate, s, len + 1);
            break;
        case 3: /* credential */
            if (s == NULL || strlen(s) != len || !gw_vault_name_valid(s)) {
                return callers_fail(
                    src, name, key,
                    "must name a credential of the store: 1 to 64 characters from A-Z "
                    "a-z 0-9 . _ -");
            }
            memcpy(c->credential, s, len + 1);
            break;
        case 4:
            if ((err = take_policies(src, name, value, c)) != GW_OK) {
                return err;
            }
            break;
        case 5:
            if ((err = take_attributes(src, name, value, c)) != GW_OK) {
                return err;
            }
            break;
        default:
            return callers_fail(src, name, key,
                                "is not a known key of a caller (known: " CALLER_KEYS_LIST ")");
        }
    }
    if (c->credential[0] == '\0') {
        return callers_fail(
            src, name, NULL,
            "needs \"credential\": the name of the credential its calls are signed with");
    }
    return GW_OK;
}

/* ---- The registry ---------------------------------------------------------------------- */

static int by_name(const void *a, const void *b)
{
    return strcmp(((const struct gw_caller *)a)->name, ((const struct gw_caller *)b)->name);
}

static int by_secret_id(const void *a, const void *b)
{
    return strcmp((*(const struct gw_caller *const *)a)->sdk_secret_id,
                  (*(const struct gw_caller *const *)b)->sdk_secret_id);
}

static int by_cert(const void *a, const void *b)
{
    return strcmp((*(const struct gw_caller *const *)a)->certificate,
                  (*(const struct gw_caller *const *)b)->certificate);
}

/* Two callers that share an identity: the later in the file's order is named at its line. */
static enum gw_err fail_shared(const struct source *src, const struct gw_caller *a,
                               const struct gw_caller *b, const char *field, const char *fix)
{
    char what[256];
    snprintf(what, sizeof what, "is that of caller \"%s\" too: %s", a->name, fix);
    return callers_fail(src, b->name, field, what);
}

/* Which of a and b comes later in the file (the one to blame): the later name, lacking lines. */
static void order_pair(const struct gw_caller **a, const struct gw_caller **b)
{
    if (strcmp((*a)->name, (*b)->name) > 0) {
        const struct gw_caller *t = *a;
        *a = *b;
        *b = t;
    }
}

static enum gw_err check_unique(const struct source *src, struct gw_callers *r)
{
    for (size_t i = 1; i < r->id_count; i++) {
        const struct gw_caller *a = r->by_id[i - 1], *b = r->by_id[i];
        if (strcmp(a->sdk_secret_id, b->sdk_secret_id) == 0) {
            order_pair(&a, &b);
            return fail_shared(src, a, b, "sdk_secret_id",
                               "each SDK key identifies one caller (tcgw callers add NAME "
                               "--sdk-key makes a new one)");
        }
    }
    for (size_t i = 1; i < r->cert_count; i++) {
        const struct gw_caller *a = r->by_cert[i - 1], *b = r->by_cert[i];
        if (strcmp(a->certificate, b->certificate) == 0) {
            order_pair(&a, &b);
            return fail_shared(src, a, b, "certificate",
                               "each certificate name identifies one caller");
        }
    }
    /* At most GW_CALLERS_MAX squared comparisons, at load only. */
    for (size_t i = 0; i < r->count; i++) {
        for (size_t j = i + 1; j < r->count && r->items[i].has_token; j++) {
            if (r->items[j].has_token && memcmp(r->items[i].token_hash, r->items[j].token_hash,
                                                GW_VAULT_TOKEN_HASH_LEN) == 0) {
                return fail_shared(src, &r->items[i], &r->items[j], "token_sha",
                                   "each token identifies one caller (tcgw callers remove, then "
                                   "add, gives a new token)");
            }
        }
    }
    return GW_OK;
}

static void clear_index(struct gw_callers *r)
{
    free(r->items);
    free(r->by_id);
    free(r->by_cert);
    r->items = NULL;
    r->by_id = r->by_cert = NULL;
    r->count = r->id_count = r->cert_count = 0;
}

/* See callers_int.h. */
enum gw_err callers_build(const struct source *src, json_t *root, struct gw_callers *r)
{
    enum gw_err err;
    struct gw_callers built = {.root = root, .lock_fd = -1};
    const char *key;
    json_t *value;
    json_t *callers = NULL;

    if (!json_is_object(root)) {
        gw_say(src->msg, src->msglen,
               "%s: the callers file must be a JSON object {\"callers\": {...}}", src->path);
        return GW_ERR_INVALID;
    }
    json_object_foreach (root, key, value) {
        if (strcmp(key, "callers") != 0) {
            char where[PATH_MAX + 32];
            locate(src, &(const struct gw_jsonpos_step){key, 0}, 1, where, sizeof where);
            gw_say(src->msg, src->msglen,
                   "%s: \"%.64s\" is not a known key: the file holds one object, \"callers\"",
                   where, key);
            return GW_ERR_INVALID;
        }
        callers = value;
    }
    if (callers == NULL) {
        callers = json_object(); /* {} is an empty registry too */
        if (callers == NULL || json_object_set_new(root, "callers", callers) != 0) {
            return GW_ERR_NOMEM;
        }
    }
    if (!json_is_object(callers)) {
        return callers_fail(src, NULL, NULL,
                            "\"callers\" must be an object: {\"NAME\": {...}, ...}");
    }
    size_t n = json_object_size(callers);
    if (n > GW_CALLERS_MAX) {
        char what[96];
        snprintf(what, sizeof what, "\"callers\" holds more than %d callers", GW_CALLERS_MAX);
        return callers_fail(src, NULL, NULL, what);
    }
    built.items = calloc(n + 1, sizeof *built.items);
    built.by_id = calloc(n + 1, sizeof *built.by_id);
    built.by_cert = calloc(n + 1, sizeof *built.by_cert);
    if (built.items == NULL || built.by_id == NULL || built.by_cert == NULL) {
        err = GW_ERR_NOMEM;
        goto out;
    }
    json_object_foreach (callers, key, value) {
        if ((err = take_caller(src, key, value, &built.items[built.count])) != GW_OK) {
            goto out;
        }
        built.count++;
    }
    qsort(built.items, built.count, sizeof *built.items, by_name);
    for (size_t i = 1; i < built.count; i++) {
        /* Keys differ (JSON_REJECT_DUPLICATES), but one with a NUL reads as its prefix. */
        if (strcmp(built.items[i - 1].name, built.items[i].name) == 0) {
            err = callers_fail(src, built.items[i].name, NULL,
                               "is named twice: name each caller once");
            goto out;
        }
    }
    for (size_t i = 0; i < built.count; i++) {
        if (built.items[i].sdk_secret_id[0] != '\0') {
            built.by_id[built.id_count++] = &built.items[i];
        }
        if (built.items[i].certificate[0] != '\0') {
            built.by_cert[built.cert_count++] = &built.items[i];
        }
    }
    qsort(built.by_id, built.id_count, sizeof *built.by_id, by_secret_id);
    qsort(built.by_cert, built.cert_count, sizeof *built.by_cert, by_cert);
    if ((err = check_unique(src, &built)) != GW_OK) {
        goto out;
    }
    clear_index(r);
    r->items = built.items;
    r->count = built.count;
    r->by_id = built.by_id;
    r->id_count = built.id_count;
    r->by_cert = built.by_cert;
    r->cert_count = built.cert_count;
    built.items = NULL;
    built.by_id = built.by_cert = NULL;
    err = GW_OK;
out:
    clear_index(&built);
    return err;
}

/*
 * Reads path into *text (new, NUL-terminated). GW_ERR_NOT_FOUND when it does not exist. A file
 * others may write, or another user's, is refused.
 */
static enum gw_err read_text(const char *path, char **text, size_t *len, char *msg, size_t msglen)
{
    enum gw_err err;
    int fd = -1;
    struct stat st;
    char *buf = NULL;
    size_t got = 0;

    if ((err = gw_file_open(path, WHAT, GW_FILE_REGULAR, &fd, &st, msg, msglen)) != GW_OK) {
        goto out;
    }
    if (st.st_uid != geteuid() && st.st_uid != 0) {
        gw_say(msg, msglen,
               "%s %s belongs to uid %u, but tcgw runs as uid %u: whoever owns it can make "
               "themselves any caller; run 'chown %u %s'",
               WHAT, path, (unsigned)st.st_uid, (unsigned)geteuid(), (unsigned)geteuid(), path);
        err = GW_ERR_PERM;
        goto out;
    }
    if ((st.st_mode & 022) != 0) {
        gw_say(msg, msglen,
               "%s %s may be written by group or others (mode %03o): whoever can write it can "
               "make themselves any caller; run 'chmod go-w %s'",
               WHAT, path, (unsigned)(st.st_mode & 0777), path);
        err = GW_ERR_PERM;
        goto out;
    }
    if ((buf = malloc(MAX_CALLERS_BYTES + 1)) == NULL) {
        err = GW_ERR_NOMEM;
        gw_say(msg, msglen, "out of memory");
        goto out;
    }
    if ((err = gw_file_read_upto(fd, buf, MAX_CALLERS_BYTES + 1, &got)) != GW_OK) {
        gw_say(msg, msglen, "cannot read %s %s: %s", WHAT, path, strerror(errno));
        goto out;
    }
    if (got > MAX_CALLERS_BYTES) {
        gw_say(msg, msglen, "%s: larger than %zu bytes: is this the callers file?", path,
               MAX_CALLERS_BYTES);
        err = GW_ERR_INVALID;
        goto out;
    }
    buf[got] = '\0';
    *text = buf;
    *len = got;
    buf = NULL;
    err = GW_OK;
out:
    free(buf);
    if (fd >= 0) {
        close(fd);
    }
    return err;
}

enum gw_err gw_callers_load(const char *path, struct gw_callers **out, char *msg, size_t msglen)
{
    enum gw_err err;
    json_error_t jerr;
    char *text = NULL;
    size_t len = 0;
    struct gw_callers *r = calloc(1, sizeof *r);

    gw_say(msg, msglen, "out of memory");
    if (r == NULL) {
        return GW_ERR_NOMEM;
    }
    r->lock_fd = -1;
    err = read_text(path, &text, &len, msg, msglen);
    if (err == GW_ERR_NOT_FOUND) {
        r->root = json_pack("{s:{}}", "callers");
    } else if (err == GW_OK) {
        r->root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
        if (r->root == NULL) {
            gw_say(msg, msglen, "%s:%d: %s (fix the JSON, each key once)", path, jerr.line,
                   jerr.text);
            err = GW_ERR_INVALID;
            goto out;
        }
    } else {
        goto out;
    }
    if (r->root == NULL) {
        gw_say(msg, msglen, "out of memory");
        err = GW_ERR_NOMEM;
        goto out;
    }
    struct source src = {.path = path, .text = text, .len = len, .msg = msg, .msglen = msglen};
    if ((err = callers_build(&src, r->root, r)) != GW_OK) {
        if (err == GW_ERR_NOMEM) {
            gw_say(msg, msglen, "out of memory");
        }
        goto out;
    }
    *out = r;
    r = NULL;
    err = GW_OK;
out:
    if (err != GW_OK) {
        callers_plain_line(msg, msglen);
    }
    free(text);
    gw_callers_free(r);
    return err;
}

void gw_callers_free(struct gw_callers *callers)
{
    if (callers == NULL) {
        return;
    }
    clear_index(callers);
    json_decref(callers->root);
    free(callers->path);
    gw_file_unlock(callers->lock_fd);
    free(callers);
}

size_t gw_callers_count(const struct gw_callers *callers)
{
    return callers != NULL ? callers->count : 0;
}

const struct gw_caller *gw_callers_at(const struct gw_callers *callers, size_t i)
{
    return callers != NULL && i < callers->count ? &callers->items[i] : NULL;
}

const struct gw_caller *gw_callers_find(const struct gw_callers *callers, const char *name)
{
    if (callers == NULL || name == NULL || strlen(name) > GW_VAULT_MAX_NAME) {
        return NULL;
    }
    struct gw_caller key;
    memcpy(key.name, name, strlen(name) + 1);
    return bsearch(&key, callers->items, callers->count, sizeof *callers->items, by_name);
}

const struct gw_caller *gw_callers_by_token_hash(const struct gw_callers *callers,
                                                 const unsigned char hash[GW_VAULT_TOKEN_HASH_LEN])
{
    if (callers == NULL) {
        return NULL;
    }
    /*
     * Every hash is compared, whatever matched before, and the match is selected with masks: the
     * time taken says nothing about which caller, or whether any, holds the token.
     */
    uintptr_t found = 0;
    for (size_t i = 0; i < callers->count; i++) {
        const struct gw_caller *c = &callers->items[i];
        unsigned diff = 0;
        for (size_t j = 0; j < GW_VAULT_TOKEN_HASH_LEN; j++) {
            diff |= (unsigned)(c->token_hash[j] ^ hash[j]);
        }
        /* 1 when equal and the caller has a token, else 0; no branch on either. */
        uintptr_t equal = (uintptr_t)(((diff - 1u) >> 8) & 1u & (unsigned)c->has_token);
        found |= (uintptr_t)c & ((uintptr_t)0 - equal);
    }
    return (const struct gw_caller *)found;
}

const struct gw_caller *gw_callers_by_secret_id(const struct gw_callers *callers,
                                                const char *secret_id)
{
    if (callers == NULL || secret_id == NULL || strlen(secret_id) > GW_VAULT_MAX_SECRET_ID) {
        return NULL;
    }
    struct gw_caller key;
    const struct gw_caller *k = &key;
    memcpy(key.sdk_secret_id, secret_id, strlen(secret_id) + 1);
    const struct gw_caller *const *hit =
        bsearch(&k, callers->by_id, callers->id_count, sizeof *callers->by_id, by_secret_id);
    return hit != NULL ? *hit : NULL;
}

const struct gw_caller *gw_callers_by_certificate(const struct gw_callers *callers,
                                                  const char *cert_name)
{
    if (callers == NULL || cert_name == NULL || strlen(cert_name) > GW_CALLERS_CERT_NAME_MAX) {
        return NULL;
    }
    struct gw_caller key;
    const struct gw_caller *k = &key;
    memcpy(key.certificate, cert_name, strlen(cert_name) + 1);
    const struct gw_caller *const *hit =
        bsearch(&k, callers->by_cert, callers->cert_count, sizeof *callers->by_cert, by_cert);
    return hit != NULL ? *hit : NULL;
}
