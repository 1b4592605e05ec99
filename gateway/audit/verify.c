#include "audit/verify.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "audit/encode.h"

struct state {
    bool have_prev;
    struct gw_audit_chain chain;
    char pk_hex[65];
    const unsigned char *pk;
    FILE *warn;
    struct gw_audit_verify_result *r;
};

/* Checks one line (without its newline). Returns false with r->error set. */
static bool check_line(struct state *st, const char *path, size_t line_no, const char *line,
                       size_t len, const char **type_out)
{
    struct gw_audit_verify_result *r = st->r;
    json_error_t jerr;
    json_t *doc = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
    bool ok = false;
    const char *type = json_string_value(json_object_get(doc, "type"));
    json_t *seq = json_object_get(doc, "seq");
    const char *prev = json_string_value(json_object_get(doc, "prev"));
    char expect[GW_AUDIT_PREFIX_MAX];
    char head_hex[GW_AUDIT_HASH_HEX];
    gw_audit_hash_hex(st->chain.head, head_hex);
    if (doc == NULL || !json_is_object(doc)) {
        snprintf(r->error, sizeof r->error, "%s:%zu: not a JSON object (%s)", path, line_no,
                 doc == NULL ? jerr.text : "another JSON value");
        goto out;
    }
    if (json_integer_value(json_object_get(doc, "v")) != 1 || !json_is_integer(seq) ||
        json_integer_value(seq) < 0 || prev == NULL || type == NULL) {
        snprintf(r->error, sizeof r->error,
                 "%s:%zu: not an audit record of schema v1 (needs \"v\":1, \"seq\", \"prev\", "
                 "\"type\")",
                 path, line_no);
        goto out;
    }
    uint64_t n = (uint64_t)json_integer_value(seq);
    int e =
        snprintf(expect, sizeof expect, "{\"v\":1,\"seq\":%" PRIu64 ",\"prev\":\"%s\",", n, prev);
    if (e < 0 || (size_t)e >= sizeof expect || strlen(prev) != 64 || len < (size_t)e ||
        memcmp(line, expect, (size_t)e) != 0) {
        snprintf(r->error, sizeof r->error,
                 "%s:%zu: the line does not begin with the canonical chain prefix", path, line_no);
        goto out;
    }
    bool is_genesis = strcmp(type, "genesis") == 0;
    bool is_seal = strcmp(type, "seal") == 0;
    if (!is_genesis && !is_seal && strcmp(type, "call") != 0) {
        snprintf(r->error, sizeof r->error, "%s:%zu: unknown record type \"%.32s\"", path, line_no,
                 type);
        goto out;
    }
    if (line_no == 1 && !is_genesis) {
        snprintf(r->error, sizeof r->error,
                 "%s:1: the file does not begin with a genesis line (its beginning was cut off)",
                 path);
        goto out;
    }
    if (st->have_prev && n != st->chain.next_seq) {
        snprintf(r->error, sizeof r->error,
                 "%s:%zu: seq is %" PRIu64 " where %" PRIu64
                 " was expected: lines were removed, added or moved before this one",
                 path, line_no, n, st->chain.next_seq);
        goto out;
    }
    if (st->have_prev && strcmp(prev, head_hex) != 0) {
        snprintf(r->error, sizeof r->error,
                 "%s:%zu: prev does not match the hash of the line before: that line was edited, "
                 "or lines were removed or reordered%s",
                 path, line_no,
                 line_no == 1 ? " (or the files are not given oldest first, or one is missing)"
                              : "");
        goto out;
    }
    if (is_genesis || is_seal) {
        if (!gw_audit_check_signature(line, len, st->pk)) {
            snprintf(r->error, sizeof r->error,
                     "%s:%zu: the %s's signature does not verify under the public key: the line "
                     "was edited, or it was signed by another key",
                     path, line_no, type);
            goto out;
        }
        const char *key = json_string_value(json_object_get(doc, "key"));
        if (is_genesis && (key == NULL || strcmp(key, st->pk_hex) != 0)) {
            snprintf(r->error, sizeof r->error,
                     "%s:%zu: the genesis names another signing key than the public key given",
                     path, line_no);
            goto out;
        }
    }
    gw_audit_hash_line(line, len, st->chain.head);
    st->chain.next_seq = n + 1;
    st->have_prev = true;
    *type_out = is_genesis ? "genesis" : is_seal ? "seal" : "call";
    ok = true;
out:
    json_decref(doc);
    return ok;
}

static bool check_file(struct state *st, const char *path)
{
    struct gw_audit_verify_result *r = st->r;
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(r->error, sizeof r->error, "%s: cannot open: %s", path, strerror(errno));
        return false;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    size_t line_no = 0;
    size_t unsealed_from = 0;
    bool ok = true;
    while (ok && (got = getline(&line, &cap, f)) > 0) {
        line_no++;
        size_t len = (size_t)got;
        if (line[len - 1] != '\n') {
            r->torn++;
            if (st->warn != NULL) {
                fprintf(st->warn,
                        "%s:%zu: warning: torn last line (%zu bytes, no newline): a write cut "
                        "short by a crash; it is not a record and no call was answered on it\n",
                        path, line_no, len);
            }
            break;
        }
        if (len - 1 > GW_AUDIT_LINE_MAX) {
            snprintf(r->error, sizeof r->error, "%s:%zu: longer than any record (%zu bytes)", path,
                     line_no, len);
            ok = false;
            break;
        }
        const char *type = NULL;
        ok = check_line(st, path, line_no, line, len - 1, &type);
        if (ok && strcmp(type, "call") == 0) {
            r->records++;
            if (r->unsealed++ == 0) {
                unsealed_from = line_no;
            }
        } else if (ok) {
            r->seals++;
            r->unsealed = 0;
        }
    }
    if (ok && line_no == 0) {
        snprintf(r->error, sizeof r->error, "%s: empty: an audit log begins with a genesis line",
                 path);
        ok = false;
    }
    if (ok && r->unsealed > 0 && st->warn != NULL) {
        fprintf(st->warn,
                "%s:%zu: warning: the last %" PRIu64
                " records (from this line on) are not sealed yet: their chain is intact but no "
                "signature covers them (the gateway is running, or stopped without its final "
                "seal)\n",
                path, unsealed_from, r->unsealed);
    }
    free(line);
    fclose(f);
    return ok;
}

void gw_audit_verify(const char *const *paths, size_t n,
                     const unsigned char pk[GW_AUDIT_PUBLIC_KEY_BYTES], FILE *warn,
                     struct gw_audit_verify_result *out)
{
    memset(out, 0, sizeof *out);
    struct state st = {.have_prev = false, .pk = pk, .warn = warn, .r = out};
    sodium_bin2hex(st.pk_hex, sizeof st.pk_hex, pk, GW_AUDIT_PUBLIC_KEY_BYTES);
    out->ok = true;
    for (size_t i = 0; i < n && out->ok; i++) {
        out->ok = check_file(&st, paths[i]);
        out->files++;
    }
    gw_audit_hash_hex(st.chain.head, out->head);
}
