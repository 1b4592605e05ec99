#include "core/config.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config_int.h"
#include "core/jsonpos.h"

/* A configuration file larger than this is refused before it is parsed. */
#define MAX_CONFIG_BYTES ((size_t)1 << 20)

/* The identity methods, as the accept lists name them. */
static const struct {
    const char *name;
    unsigned bit;
} methods[] = {
    {"token", GW_ACCEPT_TOKEN},
    {"sdk_key", GW_ACCEPT_SDK_KEY},
    {"certificate", GW_ACCEPT_CERT},
};

/* The loader's state: where we are, for messages that name the file, the line and the key. */
struct loader {
    const char *path;
    const char *dir;  /* directory of path, for relative paths */
    const char *text; /* the file's bytes (valid JSON once parsed), to find a key's line */
    size_t len;
    char *msg;
    size_t msglen;
};

/* ---- messages ---------------------------------------------------------------------------- */

/* "<file>:<line>: \"key\" what", the line being that of the key in its section. */
static enum gw_err fail(struct loader *ld, const struct section *sec, const char *key,
                        const char *what)
{
    const struct gw_jsonpos_step steps[2] = {{sec->name, 0}, {key, 0}};
    size_t n = sec->name != NULL ? 2 : 1;
    int line = gw_jsonpos_line(ld->text, ld->len, sec->name != NULL ? steps : steps + 1, n);
    if (line > 0) {
        snprintf(ld->msg, ld->msglen, "%s:%d: \"%s\" %s", ld->path, line, key, what);
    } else {
        snprintf(ld->msg, ld->msglen, "%s: \"%s\" %s", ld->path, key, what);
    }
    return GW_ERR_INVALID;
}

/* Edit distance of two short names, to suggest the key that was meant. */
static size_t distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t row[64];
    if (la >= 64 || lb >= 64) {
        return SIZE_MAX;
    }
    for (size_t j = 0; j <= lb; j++) {
        row[j] = j;
    }
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            best = up + 1 < best ? up + 1 : best;
            best = row[j - 1] + 1 < best ? row[j - 1] + 1 : best;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

static enum gw_err fail_unknown(struct loader *ld, const struct section *sec, const char *key)
{
    const char *best = NULL;
    size_t best_d = 3; /* farther than two edits is no suggestion */
    for (size_t i = 0; i < sec->count; i++) {
        size_t d = distance(key, sec->keys[i].name);
        if (d < best_d) {
            best = sec->keys[i].name;
            best_d = d;
        }
    }
    char what[256];
    char of[64] = "";
    char hint[96] = "";
    if (sec->name != NULL) {
        snprintf(of, sizeof of, " of \"%s\"", sec->name);
    }
    if (best != NULL) {
        snprintf(hint, sizeof hint, "did you mean \"%s\"? ", best);
    }
    snprintf(what, sizeof what, "is not a known key%s (%ssee README.md, Configuration)", of, hint);
    return fail(ld, sec, key, what);
}

/* "must be <rule> (<description>)". */
static enum gw_err fail_value(struct loader *ld, const struct section *sec, const struct key *k,
                              const char *rule)
{
    char what[256];
    snprintf(what, sizeof what, "must be %s (%s)", rule, k->description);
    return fail(ld, sec, k->name, what);
}

/* ---- values ------------------------------------------------------------------------------ */

static enum gw_err take_string(const json_t *v, char **slot)
{
    char *s = strdup(json_string_value(v));
    if (s == NULL) {
        return GW_ERR_NOMEM;
    }
    free(*slot);
    *slot = s;
    return GW_OK;
}

/* p made absolute against the file's directory. */
static enum gw_err take_path(struct loader *ld, const char *p, char **slot)
{
    char *s;
    if (p[0] == '/') {
        s = strdup(p);
    } else {
        size_t n = strlen(ld->dir) + 1 + strlen(p) + 1;
        s = malloc(n);
        if (s != NULL) {
            snprintf(s, n, "%s/%s", ld->dir, p);
        }
    }
    if (s == NULL) {
        return GW_ERR_NOMEM;
    }
    free(*slot);
    *slot = s;
    return GW_OK;
}

static bool is_text(const json_t *v)
{
    return json_is_string(v) && json_string_length(v) > 0;
}

static enum gw_err take_list(struct loader *ld, const struct section *sec, const struct key *k,
                             const json_t *v, char **slots)
{
    enum gw_err err;
    size_t i;
    json_t *item;
    if (!json_is_array(v) || json_array_size(v) >= GW_CONFIG_MAX_OVERRIDES) {
        return fail_value(ld, sec, k, "a list of at most 15 strings");
    }
    json_array_foreach (v, i, item) {
        if (!is_text(item)) {
            return fail_value(ld, sec, k, "a list of non-empty strings");
        }
        if ((err = take_string(item, &slots[i])) != GW_OK) {
            return err;
        }
    }
    return GW_OK;
}

/* A caller name: the rule of vault names, so that it can name an entry of the callers file. */
static bool is_name(const json_t *v)
{
    if (!json_is_string(v)) {
        return false;
    }
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (n == 0 || n > GW_CALL_NAME_MAX ||
        strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                  "0123456789._-") != n) {
        return false;
    }
    return true;
}

/* A list of identity method names, stored as GW_ACCEPT_* bits; k->max holds those allowed here. */
static enum gw_err take_accept(struct loader *ld, const struct section *sec, const struct key *k,
                               const json_t *v, unsigned *slot)
{
    size_t i;
    json_t *item;
    unsigned bits = 0;
    if (!json_is_array(v) || json_array_size(v) == 0) {
        return fail_value(ld, sec, k, "a non-empty list");
    }
    json_array_foreach (v, i, item) {
        unsigned bit = 0;
        for (size_t m = 0; m < sizeof methods / sizeof methods[0] && json_is_string(item); m++) {
            if (strcmp(json_string_value(item), methods[m].name) == 0) {
                bit = methods[m].bit;
            }
        }
        if (bit == GW_ACCEPT_CERT && ((unsigned)k->max & bit) == 0) {
            return fail(ld, sec, k->name,
                        "cannot hold \"certificate\": only the HTTPS listener verifies client "
                        "certificates (list it in \"tls\": {\"accept\": [...]})");
        }
        if (bit == 0 || ((unsigned)k->max & bit) == 0) {
            return fail_value(ld, sec, k, "a list of method names");
        }
        bits |= bit;
    }
    *slot = bits;
    return GW_OK;
}

static enum gw_err take_integer(struct loader *ld, const struct section *sec, const struct key *k,
                                const json_t *v, void *slot)
{
    json_int_t n = json_integer_value(v);
    if (!json_is_integer(v) || n < k->min || n > k->max) {
        char rule[96];
        snprintf(rule, sizeof rule, "an integer from %lld to %lld", (long long)k->min,
                 (long long)k->max);
        return fail_value(ld, sec, k, rule);
    }
    /* In range, so it fits the slot: the table's bounds lie within each kind's type. */
    switch (k->kind) {
    case KIND_U16:
        *(uint16_t *)slot = (uint16_t)n;
        break;
    case KIND_UNSIGNED:
        *(unsigned *)slot = (unsigned)n;
        break;
    case KIND_SIZE:
        *(size_t *)slot = (size_t)n;
        break;
    case KIND_LONG:
        *(long *)slot = (long)n;
        break;
    default:
        return GW_ERR_INTERNAL;
    }
    return GW_OK;
}

static enum gw_err load_section(struct loader *ld, const struct section *sec, json_t *obj,
                                struct gw_config *cfg);

static bool in_range(const json_t *v, double lo, double hi)
{
    return json_is_number(v) && isfinite(json_number_value(v)) && json_number_value(v) > lo &&
           json_number_value(v) <= hi;
}

/* A map of rates: each value a rate, or {"rate": R, "burst": B}; names as caller names. */
static enum gw_err take_rates(struct loader *ld, const struct section *sec, const struct key *k,
                              const json_t *v, struct gw_config_rate *slots)
{
    const char *name;
    json_t *item;
    size_t i = 0;
    if (!json_is_object(v) || json_object_size(v) >= GW_CONFIG_MAX_RATES) {
        return fail_value(ld, sec, k, "an object of at most 63 rates");
    }
    json_object_foreach ((json_t *)v, name, item) {
        json_t *name_json = json_string(name);
        bool named = name_json != NULL && is_name(name_json);
        json_decref(name_json);
        json_t *rate = json_is_object(item) ? json_object_get(item, "rate") : item;
        json_t *burst = json_is_object(item) ? json_object_get(item, "burst") : NULL;
        size_t keys = json_is_object(item) ? json_object_size(item) : 1;
        if (!named || !in_range(rate, 0, 1000000) ||
            (burst != NULL && (!in_range(burst, 0, 1000000) || json_number_value(burst) < 1)) ||
            keys != 1 + (burst != NULL)) {
            return fail_value(ld, sec, k,
                              "an object of names to a rate (calls per second, above 0) or to "
                              "{\"rate\": R, \"burst\": B} (B at least 1)");
        }
        if ((slots[i].name = strdup(name)) == NULL) {
            return GW_ERR_NOMEM;
        }
        slots[i].rate = json_number_value(rate);
        slots[i].burst = burst != NULL ? json_number_value(burst) : 0;
        i++;
    }
    return GW_OK;
}

static enum gw_err load_key(struct loader *ld, const struct section *sec, const struct key *k,
                            json_t *v, struct gw_config *cfg)
{
    void *slot = (char *)cfg + k->offset;
    switch (k->kind) {
    case KIND_STRING:
        return is_text(v) ? take_string(v, slot) : fail_value(ld, sec, k, "a non-empty string");
    case KIND_PATH:
        return is_text(v) ? take_path(ld, json_string_value(v), slot)
                          : fail_value(ld, sec, k, "a non-empty path");
    case KIND_BOOL:
        if (!json_is_boolean(v)) {
            return fail_value(ld, sec, k, "true or false");
        }
        *(bool *)slot = json_is_true(v);
        return GW_OK;
    case KIND_U16:
    case KIND_UNSIGNED:
    case KIND_SIZE:
    case KIND_LONG:
        return take_integer(ld, sec, k, v, slot);
    case KIND_LIST:
        return take_list(ld, sec, k, v, slot);
    case KIND_NAME:
        return is_name(v)
                   ? take_string(v, slot)
                   : fail_value(ld, sec, k, "a name of 1 to 64 letters, digits, '.', '_' or '-'");
    case KIND_ACCEPT:
        return take_accept(ld, sec, k, v, slot);
    case KIND_RATE:
        if (!in_range(v, (double)k->min, (double)k->max)) {
            char rule[96];
            snprintf(rule, sizeof rule, "a number above %lld, at most %lld", (long long)k->min,
                     (long long)k->max);
            return fail_value(ld, sec, k, rule);
        }
        *(double *)slot = json_number_value(v);
        return GW_OK;
    case KIND_RATES:
        return take_rates(ld, sec, k, v, slot);
    case KIND_REFUSED:
        return fail(ld, sec, k->name, k->description);
    case KIND_SECTION:
        if (!json_is_object(v)) {
            return fail(ld, sec, k->name, "must be an object");
        }
        if (k->min == 1) {
            *(bool *)slot = true;
        }
        return load_section(ld, k->section, v, cfg);
    default:
        return GW_ERR_INTERNAL;
    }
}

static enum gw_err load_section(struct loader *ld, const struct section *sec, json_t *obj,
                                struct gw_config *cfg)
{
    const char *name;
    json_t *v;
    json_object_foreach (obj, name, v) {
        const struct key *k = NULL;
        for (size_t i = 0; i < sec->count && k == NULL; i++) {
            if (strcmp(sec->keys[i].name, name) == 0) {
                k = &sec->keys[i];
            }
        }
        enum gw_err err = k != NULL ? load_key(ld, sec, k, v, cfg) : fail_unknown(ld, sec, name);
        if (err != GW_OK) {
            return err;
        }
    }
    return GW_OK;
}

/* ---- rules across keys ------------------------------------------------------------------- */

/* What one key alone cannot say: the HTTPS listener's files, and that something listens. */
static enum gw_err check_listeners(struct loader *ld, const struct gw_config *cfg)
{
    if (cfg->tls.enabled) {
        if (cfg->tls.cert_file == NULL) {
            return fail(ld, &gw_config_top_section, "tls",
                        "needs \"cert_file\" (PEM file of the server certificate chain)");
        }
        if (cfg->tls.key_file == NULL) {
            return fail(ld, &gw_config_top_section, "tls",
                        "needs \"key_file\" (PEM file of the server private key)");
        }
        if (cfg->tls.client_ca_file == NULL) {
            return fail(ld, &gw_config_top_section, "tls",
                        "needs \"client_ca_file\" (PEM file of the CA certificates that client "
                        "certificates must chain to)");
        }
    }
    if (!cfg->plain_listener && !cfg->tls.enabled) {
        return fail(ld, &gw_config_top_section, "plain_listener",
                    "may be false only with a \"tls\" section: otherwise nothing listens");
    }
    return GW_OK;
}

/* The log format is one of two names. */
static enum gw_err check_log_format(struct loader *ld, const struct gw_config *cfg)
{
    if (strcmp(cfg->log_format, "text") != 0 && strcmp(cfg->log_format, "json") != 0) {
        return fail(ld, &gw_config_top_section, "log_format",
                    "must be \"text\" (key=value lines) or \"json\" (one object per line)");
    }
    return GW_OK;
}

/* The limits' backend is one of two names. */
static enum gw_err check_limits(struct loader *ld, const struct gw_config *cfg)
{
    if (strcmp(cfg->limits.backend, "local") != 0 && strcmp(cfg->limits.backend, "redis") != 0) {
        return fail(ld, &gw_config_limits_section, "backend",
                    "must be \"local\" (buckets in this gateway) or \"redis\" (buckets shared "
                    "through limits.redis)");
    }
    return GW_OK;
}

/* ---- the file ---------------------------------------------------------------------------- */

/* Relative defaults are relative to the config file's directory too. */
static enum gw_err anchor_default(struct loader *ld, char **slot)
{
    if ((*slot)[0] == '/') {
        return GW_OK;
    }
    char *p = strdup(*slot);
    if (p == NULL) {
        return GW_ERR_NOMEM;
    }
    enum gw_err err = take_path(ld, p, slot);
    free(p);
    return err;
}

/* Reads the whole file into *out (new, NUL-terminated); at most MAX_CONFIG_BYTES. */
static enum gw_err read_file(const char *path, char **out, size_t *len, char *msg, size_t msglen)
{
    enum gw_err err;
    char *text = NULL;
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(msg, msglen, "%s: cannot open: %s", path, strerror(errno));
        err = GW_ERR_IO;
        goto out;
    }
    if ((text = malloc(MAX_CONFIG_BYTES + 1)) == NULL) {
        snprintf(msg, msglen, "out of memory");
        err = GW_ERR_NOMEM;
        goto out;
    }
    size_t n = fread(text, 1, MAX_CONFIG_BYTES + 1, f);
    if (ferror(f)) {
        snprintf(msg, msglen, "%s: cannot read: %s", path, strerror(errno));
        err = GW_ERR_IO;
        goto out;
    }
    if (n > MAX_CONFIG_BYTES) {
        snprintf(msg, msglen, "%s: larger than %zu bytes: is this the configuration file?", path,
                 MAX_CONFIG_BYTES);
        err = GW_ERR_INVALID;
        goto out;
    }
    text[n] = '\0';
    *out = text;
    *len = n;
    text = NULL;
    err = GW_OK;
out:
    free(text);
    if (f != NULL) {
        fclose(f);
    }
    return err;
}

enum gw_err gw_config_load(const char *path, struct gw_config **out, char *msg, size_t msglen)
{
    enum gw_err err;
    json_error_t jerr;
    char *dir = NULL;
    char *text = NULL;
    size_t len = 0;
    json_t *root = NULL;
    snprintf(msg, msglen, "out of memory");
    struct gw_config *cfg = gw_config_defaults();
    if (cfg == NULL) {
        err = GW_ERR_NOMEM;
        goto out;
    }
    /* The anchored default must be the default before the file is read. */
    dir = strdup(path);
    if (dir == NULL) {
        err = GW_ERR_NOMEM;
        goto out;
    }
    char *slash = strrchr(dir, '/');
    if (slash == NULL) {
        free(dir);
        dir = strdup(".");
        if (dir == NULL) {
            err = GW_ERR_NOMEM;
            goto out;
        }
    } else if (slash == dir) {
        slash[1] = '\0';
    } else {
        *slash = '\0';
    }
    struct loader ld = {.path = path, .dir = dir, .msg = msg, .msglen = msglen};
    /* A key path from the environment is relative to the working directory, not the file. */
    const char *key_env = getenv("TCGW_MASTER_KEY_FILE");
    bool key_from_env = key_env != NULL && key_env[0] != '\0';
    if ((err = anchor_default(&ld, &cfg->spec_dir)) != GW_OK ||
        (!key_from_env && (err = anchor_default(&ld, &cfg->master_key_file)) != GW_OK) ||
        (err = anchor_default(&ld, &cfg->credential_store)) != GW_OK ||
        (err = anchor_default(&ld, &cfg->callers_file)) != GW_OK ||
        (err = anchor_default(&ld, &cfg->policy_dir)) != GW_OK ||
        (err = anchor_default(&ld, &cfg->audit.file)) != GW_OK ||
        (err = anchor_default(&ld, &cfg->audit.signing_key_file)) != GW_OK ||
        (err = anchor_default(&ld, &cfg->audit.public_key_file)) != GW_OK) {
        goto out;
    }
    if ((err = read_file(path, &text, &len, msg, msglen)) != GW_OK) {
        goto out;
    }
    root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        snprintf(msg, msglen, "%s:%d: %s", path, jerr.line, jerr.text);
        err = GW_ERR_INVALID;
        goto out;
    }
    if (!json_is_object(root)) {
        snprintf(msg, msglen, "%s: the configuration must be a JSON object", path);
        err = GW_ERR_INVALID;
        goto out;
    }
    ld.text = text;
    ld.len = len;
    if ((err = load_section(&ld, &gw_config_top_section, root, cfg)) != GW_OK ||
        (err = check_listeners(&ld, cfg)) != GW_OK || (err = check_limits(&ld, cfg)) != GW_OK ||
        (err = check_log_format(&ld, cfg)) != GW_OK) {
        if (err == GW_ERR_NOMEM) {
            snprintf(msg, msglen, "out of memory");
        }
        goto out;
    }
    *out = cfg;
    cfg = NULL;
    err = GW_OK;
out:
    /* A key or a token quoted from the file goes to a terminal or a log: one plain line. */
    for (char *p = msg; err != GW_OK && msglen > 0 && *p != '\0'; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            *p = '?';
        }
    }
    json_decref(root);
    free(text);
    free(dir);
    gw_config_free(cfg);
    return err;
}
