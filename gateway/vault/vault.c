/*
 * vault: the tables of entries, one per kind (credentials, caller keys; secret values are in
 * values.c). Opening a vault (master
 * key, token hash key, then store), adding and removing entries, the look-ups `secrets list` and
 * the pipeline need, the token hash, and freeing. vault_int.h says where the rest is.
 */
#include "vault/vault.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/file.h"
#include "core/text.h"
#include "vault/vault_int.h"

#define NAME_CHARS GW_TEXT_ALNUM "._-"

/* ---- Opening and freeing ---- */

static int64_t wall_clock(void)
{
    return (int64_t)time(NULL);
}

/* A zeroed vault, aligned for its counter shards (a cache line each). NULL when out of memory. */
static struct gw_vault *vault_new(void)
{
    struct gw_vault *vault = aligned_alloc(_Alignof(struct gw_vault), sizeof *vault);
    if (vault == NULL) {
        return NULL;
    }
    memset(vault, 0, sizeof *vault);
    for (size_t i = 0; i < VAULT_STAT_SHARDS; i++) {
        atomic_init(&vault->stats[i].hits, 0);
        atomic_init(&vault->stats[i].misses, 0);
    }
    atomic_init(&vault->retired, 0);
    vault->now = wall_clock;
    vault->lock_fd = -1;
    return vault;
}

/* The header of a store that does not exist yet: a key file's, generation 0. */
static void empty_header(struct vault_header *hdr)
{
    memset(hdr, 0, sizeof *hdr);
    hdr->format = 3;
    hdr->source = GW_VAULT_KEY_FILE;
}

enum gw_err gw_vault_open_master(const struct gw_vault_master *m, const char *store_path,
                                 unsigned flags, struct gw_vault **out, char *msg, size_t msglen)
{
    enum gw_err err;
    struct gw_vault *vault = NULL;
    unsigned char *file = NULL;
    size_t len = 0, hdr_len = 0;
    uint64_t seen = 0;

    if (sodium_init() < 0) {
        gw_say(msg, msglen, "cannot initialise libsodium");
        return GW_ERR_INTERNAL;
    }
    if (m == NULL || store_path == NULL || *store_path == '\0' || out == NULL) {
        gw_say(msg, msglen, "a master key and a credential store file are both needed");
        return GW_ERR_INVALID;
    }
    if ((vault = vault_new()) == NULL) {
        gw_say(msg, msglen, "out of memory");
        return GW_ERR_NOMEM;
    }
    if ((flags & GW_VAULT_OPEN_UPDATE) != 0) {
        /*
         * A store we would refuse to read is refused before its lock file is made: a lock file
         * created by the wrong user would stand in the way of the right one.
         */
        if ((err = vault_store_check(store_path, msg, msglen)) != GW_OK ||
            (err = vault_store_lock(store_path, &vault->lock_fd, msg, msglen)) != GW_OK) {
            goto out;
        }
        if ((vault->locked_store = strdup(store_path)) == NULL) {
            gw_say(msg, msglen, "out of memory");
            err = GW_ERR_NOMEM;
            goto out;
        }
    }
    if ((err = vault_generation_read(store_path, &seen, msg, msglen)) != GW_OK) {
        goto out;
    }
    vault->seen = seen;
    err = vault_store_read(store_path, &file, &len, msg, msglen);
    if (err == GW_ERR_NOT_FOUND) {
        /* So that the first `secrets put` can create it (with a key file). */
        empty_header(&vault->hdr);
        if ((flags & VAULT_OPEN_NO_KEY) != 0) {
            err = GW_OK;
            goto done;
        }
        if (m->key_file == NULL || *m->key_file == '\0') {
            gw_say(msg, msglen,
                   "credential store %s does not exist: create it with 'tcgw store init "
                   "--passphrase' (or give a master key file)",
                   store_path);
            err = GW_ERR_NOT_FOUND;
            goto out;
        }
        if ((err = vault_master_load(m->key_file, &vault->master, msg, msglen)) != GW_OK) {
            goto out;
        }
        /* Now, while the master key is at hand: hashing a token must never need it. */
        if ((vault->token_key = vault_token_key_new(vault->master)) == NULL) {
            gw_say(msg, msglen, "out of memory");
            err = GW_ERR_NOMEM;
            goto out;
        }
        err = GW_OK;
        goto done;
    }
    if (err != GW_OK) {
        goto out;
    }
    if ((err = vault_header_parse(file, len, store_path, &vault->hdr, &hdr_len, msg, msglen)) !=
            GW_OK ||
        (err = vault_master_make(vault, m, &vault->hdr, store_path, msg, msglen)) != GW_OK ||
        (err = vault_store_decode(vault, file, len, store_path, msg, msglen)) != GW_OK) {
        goto out;
    }
    if (vault->hdr.generation < seen && (flags & GW_VAULT_OPEN_ACCEPT_ROLLBACK) == 0) {
        gw_say(msg, msglen,
               "credential store %s is generation %llu, older than generation %llu saved here "
               "before (%s.generation): an older copy was put back. If you restored a backup on "
               "purpose, run 'tcgw store accept-rollback'; otherwise restore the newest store",
               store_path, (unsigned long long)vault->hdr.generation, (unsigned long long)seen,
               store_path);
        err = GW_ERR_CRYPTO;
        goto out;
    }
    err = GW_OK;
done:
    *out = vault;
    vault = NULL;
out:
    free(file);
    gw_vault_free(vault);
    return err;
}

enum gw_err gw_vault_open(const char *key_path, const char *store_path, struct gw_vault **out,
                          char *msg, size_t msglen)
{
    if (key_path == NULL || *key_path == '\0') {
        gw_say(msg, msglen, "a master key file and a credential store file are both needed");
        return GW_ERR_INVALID;
    }
    struct gw_vault_master m = {.key_file = key_path};
    return gw_vault_open_master(&m, store_path, 0, out, msg, msglen);
}

enum gw_err gw_vault_open_for_update(const char *key_path, const char *store_path,
                                     struct gw_vault **out, char *msg, size_t msglen)
{
    if (key_path == NULL || *key_path == '\0') {
        gw_say(msg, msglen, "a master key file and a credential store file are both needed");
        return GW_ERR_INVALID;
    }
    struct gw_vault_master m = {.key_file = key_path};
    return gw_vault_open_master(&m, store_path, GW_VAULT_OPEN_UPDATE, out, msg, msglen);
}

void gw_vault_free(struct gw_vault *vault)
{
    if (vault == NULL) {
        return;
    }
    for (size_t k = 0; k < VAULT_KINDS; k++) {
        struct vault_table *t = &vault->tables[k];
        for (size_t i = 0; i < t->count; i++) {
            vault_cred_free(t->entries[i]);
        }
        free(t->entries);
    }
    vault_values_free(vault);
    vault_mem_free(vault->master);
    vault_mem_free(vault->token_key);
    gw_file_unlock(vault->lock_fd);
    free(vault->locked_store);
    free(vault);
}

/* ---- Rules for names and values ---- */

bool gw_vault_name_valid(const char *name)
{
    if (name == NULL) {
        return false;
    }
    size_t n = strnlen(name, GW_VAULT_MAX_NAME + 1);
    return n <= GW_VAULT_MAX_NAME && gw_text_all_in(name, n, NAME_CHARS);
}

/* Checks a SecretId or SecretKey without ever echoing it. */
static enum gw_err check_value(const char *what, const char *v, size_t len, size_t max, char *msg,
                               size_t msglen)
{
    if (v == NULL || len == 0) {
        gw_say(msg, msglen, "%s is empty", what);
        return GW_ERR_INVALID;
    }
    if (len > max) {
        gw_say(msg, msglen, "%s is longer than %zu characters", what, max);
        return GW_ERR_INVALID;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c == '\r') {
            gw_say(msg, msglen, "%s contains a carriage return (Windows line ending?): remove it",
                   what);
            return GW_ERR_INVALID;
        }
        if (c == ' ' || c == '\t') {
            gw_say(msg, msglen, "%s contains whitespace: it must be one word", what);
            return GW_ERR_INVALID;
        }
        if (c < 0x21 || c > 0x7e) {
            gw_say(msg, msglen, "%s contains a character that is not printable ASCII", what);
            return GW_ERR_INVALID;
        }
    }
    return GW_OK;
}

/* ---- The tables ---- */

/* What each kind is called in messages, and how many a store holds. */
static const struct {
    const char *what;
    size_t max;
} kinds[VAULT_KINDS] = {
    [GW_VAULT_CREDENTIAL] = {"credential", GW_VAULT_MAX_ENTRIES},
    [GW_VAULT_CALLER_KEY] = {"caller key", GW_VAULT_MAX_CALLER_KEYS},
};

static bool kind_valid(enum gw_vault_kind kind)
{
    return kind == GW_VAULT_CREDENTIAL || kind == GW_VAULT_CALLER_KEY;
}

/* Index of name in t, or of where it would go (*found says which). */
static size_t find_pos(const struct vault_table *t, const char *name, bool *found)
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

struct cred *vault_find(const struct gw_vault *vault, enum gw_vault_kind kind, const char *name)
{
    bool found;
    if (vault == NULL || name == NULL || !kind_valid(kind)) {
        return NULL;
    }
    const struct vault_table *t = &vault->tables[kind];
    size_t i = find_pos(t, name, &found);
    return found ? t->entries[i] : NULL;
}

enum gw_err vault_put(struct gw_vault *vault, enum gw_vault_kind kind, const char *name,
                      const char *id, size_t id_len, const char *key, size_t key_len, char *msg,
                      size_t msglen)
{
    enum gw_err err;
    struct cred *c = NULL;
    bool found;

    if (vault == NULL || !kind_valid(kind)) {
        gw_say(msg, msglen, vault == NULL ? "no vault" : "unknown kind of entry");
        return GW_ERR_INVALID;
    }
    const char *what = kinds[kind].what;
    if (!gw_vault_name_valid(name)) {
        gw_say(msg, msglen, "%s name must be 1 to %d characters from A-Z a-z 0-9 . _ -", what,
               GW_VAULT_MAX_NAME);
        return GW_ERR_INVALID;
    }
    if ((err = check_value("SecretId", id, id_len, GW_VAULT_MAX_SECRET_ID, msg, msglen)) != GW_OK ||
        (err = check_value("SecretKey", key, key_len, GW_VAULT_MAX_SECRET_KEY, msg, msglen)) !=
            GW_OK) {
        return err;
    }

    struct vault_table *t = &vault->tables[kind];
    size_t pos = find_pos(t, name, &found);
    if (found && t->entries[pos]->type != GW_VAULT_STATIC) {
        /* A temporary credential or a role becomes a static one: a new entry. */
        if ((c = vault_cred_new(name, id, id_len, key, key_len)) == NULL) {
            goto nomem;
        }
        return vault_put_cred(vault, c, msg, msglen);
    }
    if (found) {
        if ((err = vault_cred_set(t->entries[pos], id, id_len, key, key_len)) != GW_OK) {
            gw_say(msg, msglen, "cannot unprotect key memory");
        }
        return err;
    }
    if (t->count >= kinds[kind].max) {
        gw_say(msg, msglen, "a credential store holds at most %zu %ss", kinds[kind].max, what);
        return GW_ERR_TOO_LARGE;
    }
    struct cred **grown = realloc(t->entries, (t->count + 1) * sizeof *grown);
    if (grown == NULL) {
        goto nomem;
    }
    t->entries = grown;
    c = vault_cred_new(name, id, id_len, key, key_len);
    if (c == NULL) {
        goto nomem;
    }
    memmove(&t->entries[pos + 1], &t->entries[pos], (t->count - pos) * sizeof *grown);
    t->entries[pos] = c;
    t->count++;
    return GW_OK;
nomem:
    gw_say(msg, msglen, "out of memory");
    return GW_ERR_NOMEM;
}

enum gw_err vault_put_cred(struct gw_vault *vault, struct cred *c, char *msg, size_t msglen)
{
    bool found;
    struct vault_table *t = &vault->tables[GW_VAULT_CREDENTIAL];
    size_t pos = find_pos(t, c->name, &found);
    if (found) {
        /* Not while other threads use the vault (vault.h): nobody holds the old entry. */
        vault_cred_free(t->entries[pos]);
        t->entries[pos] = c;
        return GW_OK;
    }
    if (t->count >= GW_VAULT_MAX_ENTRIES) {
        vault_cred_free(c);
        gw_say(msg, msglen, "a credential store holds at most %d credentials",
               GW_VAULT_MAX_ENTRIES);
        return GW_ERR_TOO_LARGE;
    }
    struct cred **grown = realloc(t->entries, (t->count + 1) * sizeof *grown);
    if (grown == NULL) {
        vault_cred_free(c);
        gw_say(msg, msglen, "out of memory");
        return GW_ERR_NOMEM;
    }
    t->entries = grown;
    memmove(&t->entries[pos + 1], &t->entries[pos], (t->count - pos) * sizeof *grown);
    t->entries[pos] = c;
    t->count++;
    return GW_OK;
}

enum gw_err vault_check_token(const char *token, size_t len, char *msg, size_t msglen)
{
    return check_value("session token", token, len, GW_VAULT_MAX_TOKEN, msg, msglen);
}

enum gw_err gw_vault_put_temporary(struct gw_vault *vault, const char *name, const char *secret_id,
                                   size_t secret_id_len, const char *secret_key,
                                   size_t secret_key_len, const char *token, size_t token_len,
                                   int64_t expires, char *msg, size_t msglen)
{
    enum gw_err err;
    struct cred *c;
    if (vault == NULL || !gw_vault_name_valid(name) || name[0] == '\0') {
        gw_say(msg, msglen, "credential name must be 1 to %d characters from A-Z a-z 0-9 . _ -",
               GW_VAULT_MAX_NAME);
        return GW_ERR_INVALID;
    }
    if ((err = check_value("SecretId", secret_id, secret_id_len, GW_VAULT_MAX_SECRET_ID, msg,
                           msglen)) != GW_OK ||
        (err = check_value("SecretKey", secret_key, secret_key_len, GW_VAULT_MAX_SECRET_KEY, msg,
                           msglen)) != GW_OK ||
        (err = vault_check_token(token, token_len, msg, msglen)) != GW_OK) {
        return err;
    }
    if (expires <= 0) {
        gw_say(msg, msglen, "the expiry must be a time after 1970");
        return GW_ERR_INVALID;
    }
    if ((c = vault_cred_new_temporary(name, secret_id, secret_id_len, secret_key, secret_key_len,
                                      token, token_len, expires)) == NULL) {
        gw_say(msg, msglen, "out of memory");
        return GW_ERR_NOMEM;
    }
    return vault_put_cred(vault, c, msg, msglen);
}

enum gw_err gw_vault_put_role(struct gw_vault *vault, const char *name,
                              const struct gw_vault_role_def *def, char *msg, size_t msglen)
{
    enum gw_err err;
    struct cred *c;
    if (vault == NULL || !gw_vault_name_valid(name) || name[0] == '\0') {
        gw_say(msg, msglen, "credential name must be 1 to %d characters from A-Z a-z 0-9 . _ -",
               GW_VAULT_MAX_NAME);
        return GW_ERR_INVALID;
    }
    if ((err = vault_role_check(def, msg, msglen)) != GW_OK) {
        return err;
    }
    if (strcmp(def->source, name) == 0) {
        gw_say(msg, msglen, "a role cannot be its own source");
        return GW_ERR_INVALID;
    }
    if ((c = vault_role_new(name, def)) == NULL) {
        gw_say(msg, msglen, "out of memory");
        return GW_ERR_NOMEM;
    }
    return vault_put_cred(vault, c, msg, msglen);
}

enum gw_err gw_vault_put(struct gw_vault *vault, const char *name, const char *secret_id,
                         size_t secret_id_len, const char *secret_key, size_t secret_key_len,
                         char *msg, size_t msglen)
{
    return vault_put(vault, GW_VAULT_CREDENTIAL, name, secret_id, secret_id_len, secret_key,
                     secret_key_len, msg, msglen);
}

enum gw_err gw_vault_put_caller_key(struct gw_vault *vault, const char *caller,
                                    const char *secret_id, size_t secret_id_len,
                                    const char *secret_key, size_t secret_key_len, char *msg,
                                    size_t msglen)
{
    return vault_put(vault, GW_VAULT_CALLER_KEY, caller, secret_id, secret_id_len, secret_key,
                     secret_key_len, msg, msglen);
}

enum gw_err gw_vault_remove(struct gw_vault *vault, enum gw_vault_kind kind, const char *name)
{
    bool found;
    if (vault != NULL && name != NULL && kind == GW_VAULT_SECRET_VALUE) {
        return vault_value_remove(vault, name);
    }
    if (vault == NULL || name == NULL || !kind_valid(kind)) {
        return GW_ERR_INVALID;
    }
    struct vault_table *t = &vault->tables[kind];
    size_t pos = find_pos(t, name, &found);
    if (!found) {
        return GW_ERR_NOT_FOUND;
    }
    /*
     * Freed at once, signing keys included: as gw_vault_put's replacement, only while no other
     * thread uses the vault (vault.h), so no signer can hold one of them (keymem.c).
     */
    vault_cred_free(t->entries[pos]);
    memmove(&t->entries[pos], &t->entries[pos + 1], (t->count - pos - 1) * sizeof *t->entries);
    t->count--;
    return GW_OK;
}

size_t gw_vault_count(const struct gw_vault *vault)
{
    return vault == NULL ? 0 : vault->tables[GW_VAULT_CREDENTIAL].count;
}

bool gw_vault_has(const struct gw_vault *vault, const char *name)
{
    return vault_find(vault, GW_VAULT_CREDENTIAL, name) != NULL;
}

bool gw_vault_has_caller_key(const struct gw_vault *vault, const char *caller)
{
    return vault_find(vault, GW_VAULT_CALLER_KEY, caller) != NULL;
}

enum gw_err gw_vault_describe(const struct gw_vault *vault, size_t i,
                              char name[GW_VAULT_MAX_NAME + 1], char id_tail[5])
{
    if (vault == NULL || i >= vault->tables[GW_VAULT_CREDENTIAL].count) {
        return GW_ERR_NOT_FOUND;
    }
    const struct cred *c = vault->tables[GW_VAULT_CREDENTIAL].entries[i];
    memcpy(name, c->name, strlen(c->name) + 1);
    memcpy(id_tail, c->id_tail, sizeof c->id_tail);
    return GW_OK;
}

/* ---- Token hash ---- */

enum gw_err gw_vault_token_hash(const struct gw_vault *vault, const unsigned char *token,
                                size_t token_len, unsigned char out[GW_VAULT_TOKEN_HASH_LEN])
{
    unsigned char hash[GW_VAULT_TOKEN_HASH_LEN];
    if (vault == NULL || vault->token_key == NULL || out == NULL ||
        (token == NULL && token_len > 0)) {
        return GW_ERR_INVALID;
    }
    /*
     * token_key is read-only and never written after open: any number of threads read it at once,
     * with no lock and no protection change. Into hash first, so out is untouched on failure.
     */
    if (crypto_generichash(hash, sizeof hash, token, token_len, vault->token_key,
                           GW_VAULT_TOKEN_HASH_LEN) != 0) {
        sodium_memzero(hash, sizeof hash);
        return GW_ERR_INTERNAL;
    }
    memcpy(out, hash, sizeof hash);
    sodium_memzero(hash, sizeof hash);
    return GW_OK;
}
