/*
 * store: the credential store format, bytes in and bytes out; files.c reads and writes the file.
 *
 * Store file: format 3's header (magic, key source, generation, Argon2id salt and cost, key
 * check: storekey.c describes it) is the AEAD's additional data; then a fresh 24-byte nonce, then
 * XChaCha20-Poly1305 (IETF) of the plaintext and its 16-byte tag. Format 3's plaintext is the token
 * hash's key (32 bytes), then the entries as below. Format 2 ("TCGWSTORE2", still read) had only
 * the magic as header and additional data, and the entries alone as plaintext.
 * Entries (all integers big-endian):
 *   count                   u32
 *   count times:            u8 kind (enum gw_vault_kind), then for kinds 0 and 1 (credential,
 *                           caller key): u16 name_len, name, u16 id_len, SecretId, u16 key_len,
 *                           SecretKey; for kind 2 (secret value): u16 name_len, name,
 *                           u32 value_len, value
 *                           for kind 3 (temporary credential): kind 0's fields, then
 *                           u16 token_len, token, u64 expires (seconds since the epoch); for
 *                           kind 4 (role): u16 name_len, name, u16 source_len, source,
 *                           u16 arn_len, RoleArn, u16 session_len, RoleSessionName,
 *                           u16 region_len, region, u32 DurationSeconds
 *                           (entries in strictly ascending (kind, name) order; kinds 0, 3 and 4
 *                           share one name space, the credentials')
 * Version 1 ("TCGWSTORE1", written before caller keys existed) is the same without the kind byte:
 * every entry a credential. It is still read, so existing stores open; a save writes version 3.
 * The version is the additional data, so a file cannot be passed off as the other version.
 * The plaintext is only ever built and parsed in key memory, never through stdio.
 */
#include <stdlib.h>
#include <string.h>

#include "vault/vault_int.h"

/* ---- Parsing ---- */

struct cursor {
    const unsigned char *p;
    size_t left;
};

static bool take(struct cursor *c, size_t n, const unsigned char **out)
{
    if (n > c->left) {
        return false;
    }
    *out = c->p;
    c->p += n;
    c->left -= n;
    return true;
}

static bool take_u16(struct cursor *c, size_t *v)
{
    const unsigned char *b;
    if (!take(c, 2, &b)) {
        return false;
    }
    *v = ((size_t)b[0] << 8) | b[1];
    return true;
}

static bool take_field(struct cursor *c, size_t max, const unsigned char **p, size_t *n)
{
    return take_u16(c, n) && *n <= max && take(c, *n, p);
}

static bool take_field32(struct cursor *c, size_t max, const unsigned char **p, size_t *n)
{
    const unsigned char *b;
    if (!take(c, 4, &b)) {
        return false;
    }
    *n = ((size_t)b[0] << 24) | ((size_t)b[1] << 16) | ((size_t)b[2] << 8) | b[3];
    return *n <= max && take(c, *n, p);
}

/* The rest of a secret value's entry (kind 2), after its kind byte. */
static enum gw_err parse_value(struct gw_vault *vault, struct cursor *cur, char *prev, char *why,
                               size_t whylen, bool *damaged)
{
    const unsigned char *name_p, *val_p;
    size_t name_n, val_n;
    char name[GW_VAULT_MAX_NAME + 1];
    *damaged = true;
    if (!take_field(cur, GW_VAULT_MAX_NAME, &name_p, &name_n) ||
        !take_field32(cur, GW_VAULT_MAX_VALUE, &val_p, &val_n)) {
        return GW_ERR_INVALID;
    }
    memcpy(name, name_p, name_n);
    name[name_n] = '\0';
    if (memchr(name_p, '\0', name_n) != NULL || (prev[0] != '\0' && strcmp(prev, name) >= 0)) {
        return GW_ERR_INVALID;
    }
    *damaged = false;
    enum gw_err err = gw_vault_put_value(vault, name, val_p, val_n, why, whylen);
    if (err == GW_OK) {
        memcpy(prev, name, name_n + 1);
    }
    return err;
}

#define STORE_KIND_TEMPORARY 3
#define STORE_KIND_ROLE 4

static bool take_u64(struct cursor *c, int64_t *v)
{
    const unsigned char *b;
    uint64_t u = 0;
    if (!take(c, 8, &b)) {
        return false;
    }
    for (size_t i = 0; i < 8; i++) {
        u = (u << 8) | b[i];
    }
    if (u > INT64_MAX) {
        return false;
    }
    *v = (int64_t)u;
    return true;
}

/* A field of at most max bytes into a NUL-terminated string dst[max + 1], without NUL inside. */
static bool take_text(struct cursor *c, size_t max, char *dst)
{
    const unsigned char *p;
    size_t n;
    if (!take_field(c, max, &p, &n) || memchr(p, '\0', n) != NULL) {
        return false;
    }
    memcpy(dst, p, n);
    dst[n] = '\0';
    return true;
}

/*
 * The rest of a temporary credential's (kind 3) or a role's (kind 4) entry, after its kind byte.
 * *damaged when the bytes themselves are wrong; otherwise why says which rule an entry broke.
 */
static enum gw_err parse_cred_kind(struct gw_vault *vault, unsigned kind, struct cursor *cur,
                                   char *prev, char *why, size_t whylen, bool *damaged)
{
    enum gw_err err;
    char name[GW_VAULT_MAX_NAME + 1];
    *damaged = true;
    if (!take_text(cur, GW_VAULT_MAX_NAME, name) || (prev[0] != '\0' && strcmp(prev, name) >= 0) ||
        vault_find(vault, GW_VAULT_CREDENTIAL, name) != NULL) {
        return GW_ERR_INVALID; /* out of order, or a name kind 0 or 3 holds already */
    }
    if (kind == STORE_KIND_TEMPORARY) {
        const unsigned char *id_p, *key_p, *tok_p;
        size_t id_n, key_n, tok_n;
        int64_t expires;
        if (!take_field(cur, GW_VAULT_MAX_SECRET_ID, &id_p, &id_n) ||
            !take_field(cur, GW_VAULT_MAX_SECRET_KEY, &key_p, &key_n) ||
            !take_field(cur, GW_VAULT_MAX_TOKEN, &tok_p, &tok_n) || !take_u64(cur, &expires)) {
            return GW_ERR_INVALID;
        }
        *damaged = false;
        err = gw_vault_put_temporary(vault, name, (const char *)id_p, id_n, (const char *)key_p,
                                     key_n, (const char *)tok_p, tok_n, expires, why, whylen);
    } else {
        char source[GW_VAULT_MAX_NAME + 1], arn[GW_VAULT_MAX_ROLE_ARN + 1];
        char session[GW_VAULT_MAX_SESSION_NAME + 1], region[GW_VAULT_MAX_REGION + 1];
        const unsigned char *b;
        if (!take_text(cur, GW_VAULT_MAX_NAME, source) ||
            !take_text(cur, GW_VAULT_MAX_ROLE_ARN, arn) ||
            !take_text(cur, GW_VAULT_MAX_SESSION_NAME, session) ||
            !take_text(cur, GW_VAULT_MAX_REGION, region) || !take(cur, 4, &b)) {
            return GW_ERR_INVALID;
        }
        struct gw_vault_role_def def = {
            .source = source,
            .role_arn = arn,
            .session_name = session,
            .region = region,
            .duration =
                ((unsigned)b[0] << 24) | ((unsigned)b[1] << 16) | ((unsigned)b[2] << 8) | b[3],
        };
        *damaged = false;
        err = gw_vault_put_role(vault, name, &def, why, whylen);
    }
    if (err == GW_OK) {
        memcpy(prev, name, strlen(name) + 1);
    }
    return err;
}

/*
 * Parses the plaintext (key memory) into vault, which is empty. with_kinds: version 2; version 1
 * has credentials only.
 */
static enum gw_err parse_plain(struct gw_vault *vault, bool with_kinds, const unsigned char *pt,
                               size_t len, const char *path, char *msg, size_t msglen)
{
    enum gw_err err;
    struct cursor cur = {pt, len};
    const unsigned char *b;
    char prev[GW_VAULT_MAX_NAME + 1] = "";
    unsigned prev_kind = GW_VAULT_CREDENTIAL;
    char why[160];

    if (!take(&cur, 4, &b)) {
        goto damaged;
    }
    uint32_t count = ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | b[3];
    if (count > GW_VAULT_MAX_ENTRIES + GW_VAULT_MAX_CALLER_KEYS + GW_VAULT_MAX_VALUES) {
        goto damaged;
    }
    for (uint32_t i = 0; i < count; i++) {
        const unsigned char *name_p, *id_p, *key_p;
        size_t name_n, id_n, key_n;
        char name[GW_VAULT_MAX_NAME + 1];
        unsigned kind = GW_VAULT_CREDENTIAL;
        if (with_kinds) {
            if (!take(&cur, 1, &b)) {
                goto damaged;
            }
            kind = b[0];
        }
        if (kind > STORE_KIND_ROLE || kind < prev_kind) {
            goto damaged;
        }
        if (kind != prev_kind) {
            prev[0] = '\0'; /* names start again in the next kind */
        }
        if (kind == GW_VAULT_SECRET_VALUE || kind == STORE_KIND_TEMPORARY ||
            kind == STORE_KIND_ROLE) {
            bool bad;
            prev_kind = kind;
            err = kind == GW_VAULT_SECRET_VALUE
                      ? parse_value(vault, &cur, prev, why, sizeof why, &bad)
                      : parse_cred_kind(vault, kind, &cur, prev, why, sizeof why, &bad);
            if (err != GW_OK) {
                if (bad) {
                    goto damaged;
                }
                if (err == GW_ERR_INVALID) {
                    gw_say(msg, msglen, "credential store %s is damaged: entry %u: %s", path,
                           (unsigned)i, why);
                } else {
                    gw_say(msg, msglen, "%s", why);
                }
                return err;
            }
            continue;
        }
        if (!take_field(&cur, GW_VAULT_MAX_NAME, &name_p, &name_n) ||
            !take_field(&cur, GW_VAULT_MAX_SECRET_ID, &id_p, &id_n) ||
            !take_field(&cur, GW_VAULT_MAX_SECRET_KEY, &key_p, &key_n)) {
            goto damaged;
        }
        memcpy(name, name_p, name_n);
        name[name_n] = '\0';
        /* Strictly ascending within a kind: no duplicates, and the order put gives. */
        if (memchr(name_p, '\0', name_n) != NULL || (prev[0] != '\0' && strcmp(prev, name) >= 0)) {
            goto damaged;
        }
        /* Through vault_put, so a store obeys exactly the rules a new entry does (limits too). */
        if ((err = vault_put(vault, (enum gw_vault_kind)kind, name, (const char *)id_p, id_n,
                             (const char *)key_p, key_n, why, sizeof why)) != GW_OK) {
            if (err == GW_ERR_INVALID) {
                gw_say(msg, msglen, "credential store %s is damaged: entry %u: %s", path,
                       (unsigned)i, why);
            } else {
                gw_say(msg, msglen, "%s", why);
            }
            return err;
        }
        memcpy(prev, name, name_n + 1);
        prev_kind = kind;
    }
    if (cur.left != 0) {
        goto damaged;
    }
    return GW_OK;
damaged:
    gw_say(msg, msglen,
           "credential store %s is damaged although it decrypted: restore it from a backup", path);
    return GW_ERR_INVALID;
}

/* Why a store did not decrypt, as precisely as the header lets us say. */
static void say_undecryptable(const struct gw_vault *vault, const unsigned char *file,
                              const char *path, char *msg, size_t msglen)
{
    bool pass = vault->hdr.source == GW_VAULT_KEY_PASSPHRASE;
    if (vault->hdr.format < 3) {
        gw_say(msg, msglen, "cannot decrypt %s: wrong master key or the file was modified", path);
    } else if (!vault_header_key_matches(vault, file)) {
        gw_say(msg, msglen,
               pass ? "cannot open %s: wrong passphrase (or its header was modified)"
                    : "cannot open %s: wrong master key file for this store (or its header was "
                      "modified): give the key file it was saved with",
               path);
    } else {
        gw_say(msg, msglen,
               "credential store %s is damaged or was modified (the %s is right, the contents "
               "fail authentication): restore it from a backup",
               path, pass ? "passphrase" : "master key");
    }
}

enum gw_err vault_store_decode(struct gw_vault *vault, const unsigned char *file, size_t len,
                               const char *path, char *msg, size_t msglen)
{
    enum gw_err err;
    unsigned char *pt = NULL;

    if (len > VAULT_STORE_MAX) {
        gw_say(msg, msglen, "credential store %s is too large", path);
        return GW_ERR_TOO_LARGE;
    }
    /* vault->hdr was parsed from file (storekey.c), and the master key made from it. */
    unsigned format = vault->hdr.format;
    size_t hdr_len = format == 3 ? VAULT_HEADER_LEN : VAULT_HEADER_LEN_V2;
    size_t ad_len = format == 3 ? VAULT_HEADER3_AD_LEN : VAULT_STORE_MAGIC_LEN;
    size_t prefix = format == 3 ? VAULT_PLAIN_PREFIX_LEN : 0;
    if (len < hdr_len + prefix + VAULT_PLAIN_MIN + VAULT_TAG_LEN) {
        gw_say(msg, msglen, "credential store %s is truncated: restore it from a backup", path);
        return GW_ERR_INVALID;
    }
    size_t ct_len = len - hdr_len;
    size_t pt_cap = ct_len - VAULT_TAG_LEN;
    unsigned long long pt_len = 0;
    if ((pt = vault_mem_alloc(pt_cap)) == NULL) {
        gw_say(msg, msglen, "out of memory");
        return GW_ERR_NOMEM;
    }
    vault_mem_readonly(vault->master);
    int rc = crypto_aead_xchacha20poly1305_ietf_decrypt(pt, &pt_len, NULL, file + hdr_len, ct_len,
                                                        file, ad_len, file + ad_len, vault->master);
    vault_mem_noaccess(vault->master);
    if (rc != 0 || pt_len != pt_cap) {
        say_undecryptable(vault, file, path, msg, msglen);
        err = GW_ERR_CRYPTO;
        goto out;
    }
    /* The token hash's key: kept in the store since format 3, derived from the key before. */
    if (format == 3) {
        if ((vault->token_key = vault_mem_alloc(GW_VAULT_TOKEN_HASH_LEN)) != NULL) {
            memcpy(vault->token_key, pt, GW_VAULT_TOKEN_HASH_LEN);
            vault_mem_readonly(vault->token_key);
        }
    } else {
        vault->token_key = vault_token_key_new(vault->master);
    }
    if (vault->token_key == NULL) {
        gw_say(msg, msglen, "out of memory");
        err = GW_ERR_NOMEM;
        goto out;
    }
    err = parse_plain(vault, format >= 2, pt + prefix, pt_cap - prefix, path, msg, msglen);
out:
    vault_mem_free(pt); /* wipes the plaintext */
    return err;
}

/* ---- Building ---- */

static void put_u16(unsigned char *p, size_t *n, size_t v)
{
    p[(*n)++] = (unsigned char)(v >> 8);
    p[(*n)++] = (unsigned char)v;
}

/* Appends entry c of kind to pt at *n (room checked by the caller). */
static enum gw_err put_entry(unsigned char *pt, size_t *n, size_t kind, struct cred *c)
{
    struct secret *s;
    size_t name_n = strlen(c->name);
    pt[(*n)++] = (unsigned char)kind;
    put_u16(pt, n, name_n);
    memcpy(pt + *n, c->name, name_n);
    *n += name_n;
    /* The lock: signers that derive a key change the same secret's protection. */
    pthread_mutex_lock(&c->lock);
    if (vault_secret_open(c, false, &s) != GW_OK) {
        pthread_mutex_unlock(&c->lock);
        return GW_ERR_INTERNAL;
    }
    put_u16(pt, n, s->id_len);
    memcpy(pt + *n, s->id, s->id_len);
    *n += s->id_len;
    put_u16(pt, n, s->key_len);
    memcpy(pt + *n, s->key, s->key_len);
    *n += s->key_len;
    vault_secret_close(c);
    pthread_mutex_unlock(&c->lock);
    return GW_OK;
}

static void put_text(unsigned char *pt, size_t *n, const char *v)
{
    size_t len = strlen(v);
    put_u16(pt, n, len);
    memcpy(pt + *n, v, len);
    *n += len;
}

/* Appends temporary credential c (kind 3) to pt at *n (room checked by the caller). */
static enum gw_err put_temporary(unsigned char *pt, size_t *n, struct cred *c)
{
    enum gw_err err;
    if ((err = put_entry(pt, n, STORE_KIND_TEMPORARY, c)) != GW_OK) {
        return err;
    }
    put_u16(pt, n, c->token_len);
    memcpy(pt + *n, c->token, c->token_len);
    *n += c->token_len;
    uint64_t e = (uint64_t)c->expires;
    for (int shift = 56; shift >= 0; shift -= 8) {
        pt[(*n)++] = (unsigned char)(e >> shift);
    }
    return GW_OK;
}

/* Appends role c (kind 4) to pt at *n (room checked by the caller). Its keys are not stored. */
static void put_role(unsigned char *pt, size_t *n, const struct cred *c)
{
    struct gw_vault_role_def def;
    vault_role_def(c->role, &def);
    pt[(*n)++] = (unsigned char)STORE_KIND_ROLE;
    put_text(pt, n, c->name);
    put_text(pt, n, def.source);
    put_text(pt, n, def.role_arn);
    put_text(pt, n, def.session_name);
    put_text(pt, n, def.region);
    pt[(*n)++] = (unsigned char)(def.duration >> 24);
    pt[(*n)++] = (unsigned char)(def.duration >> 16);
    pt[(*n)++] = (unsigned char)(def.duration >> 8);
    pt[(*n)++] = (unsigned char)def.duration;
}

/* Appends secret value v (kind 2) to pt at *n (room checked by the caller). */
static void put_value(unsigned char *pt, size_t *n, struct value *v)
{
    size_t name_n = strlen(v->name);
    pt[(*n)++] = (unsigned char)GW_VAULT_SECRET_VALUE;
    put_u16(pt, n, name_n);
    memcpy(pt + *n, v->name, name_n);
    *n += name_n;
    pt[(*n)++] = (unsigned char)(v->len >> 24);
    pt[(*n)++] = (unsigned char)(v->len >> 16);
    pt[(*n)++] = (unsigned char)(v->len >> 8);
    pt[(*n)++] = (unsigned char)v->len;
    pthread_mutex_lock(&v->lock);
    vault_mem_readonly(v->bytes);
    memcpy(pt + *n, v->bytes, v->len);
    vault_mem_noaccess(v->bytes);
    pthread_mutex_unlock(&v->lock);
    *n += v->len;
}

/* Serialises the entries, kind by kind, into new key memory (version 2). */
static enum gw_err build_plain(const struct gw_vault *vault, unsigned char **out, size_t *out_len)
{
    enum gw_err err;
    size_t len = VAULT_PLAIN_MIN;
    size_t total = 0;
    for (size_t k = 0; k < VAULT_KINDS; k++) {
        const struct vault_table *t = &vault->tables[k];
        for (size_t i = 0; i < t->count; i++) {
            /* Every type fits in a temporary entry's bound (roles' fields are smaller). */
            len += 7 + strlen(t->entries[i]->name) + GW_VAULT_MAX_SECRET_ID +
                   GW_VAULT_MAX_SECRET_KEY + 2 + t->entries[i]->token_len + 8 +
                   (t->entries[i]->type == GW_VAULT_ROLE ? 2 * GW_VAULT_MAX_ROLE_ARN : 0);
        }
        total += t->count;
    }
    for (size_t i = 0; i < vault->values.count; i++) {
        len += 7 + strlen(vault->values.entries[i]->name) + vault->values.entries[i]->len;
    }
    total += vault->values.count;
    /* len is an upper bound (ids and keys at their maximum); the true length is counted below. */
    unsigned char *pt = vault_mem_alloc(len);
    if (pt == NULL) {
        return GW_ERR_NOMEM;
    }
    size_t n = 0;
    uint32_t count = (uint32_t)total;
    pt[n++] = (unsigned char)(count >> 24);
    pt[n++] = (unsigned char)(count >> 16);
    pt[n++] = (unsigned char)(count >> 8);
    pt[n++] = (unsigned char)count;
    /* Tables are in name order and kinds in enum order: the order parse_plain requires. */
    for (size_t k = 0; k < VAULT_KINDS; k++) {
        const struct vault_table *t = &vault->tables[k];
        for (size_t i = 0; i < t->count; i++) {
            if (t->entries[i]->type != GW_VAULT_STATIC) {
                continue; /* kinds 3 and 4, below */
            }
            if ((err = put_entry(pt, &n, k, t->entries[i])) != GW_OK) {
                vault_mem_free(pt);
                return err;
            }
        }
    }
    for (size_t i = 0; i < vault->values.count; i++) {
        put_value(pt, &n, vault->values.entries[i]);
    }
    const struct vault_table *creds = &vault->tables[GW_VAULT_CREDENTIAL];
    for (size_t i = 0; i < creds->count; i++) {
        if (creds->entries[i]->type == GW_VAULT_TEMPORARY &&
            (err = put_temporary(pt, &n, creds->entries[i])) != GW_OK) {
            vault_mem_free(pt);
            return err;
        }
    }
    for (size_t i = 0; i < creds->count; i++) {
        if (creds->entries[i]->type == GW_VAULT_ROLE) {
            put_role(pt, &n, creds->entries[i]);
        }
    }
    *out = pt;
    *out_len = n;
    return GW_OK;
}

enum gw_err vault_store_encode(const struct gw_vault *vault, uint64_t generation,
                               unsigned char **out, size_t *out_len)
{
    enum gw_err err;
    unsigned char *entries = NULL;
    unsigned char *pt = NULL;
    unsigned char *file = NULL;
    size_t entries_len = 0;
    unsigned long long ct_len = 0;

    if ((err = build_plain(vault, &entries, &entries_len)) != GW_OK) {
        goto out;
    }
    /* Format 3's plaintext: the token hash's key, then the entries. */
    size_t pt_len = VAULT_PLAIN_PREFIX_LEN + entries_len;
    if ((pt = vault_mem_alloc(pt_len)) == NULL ||
        (file = malloc(VAULT_HEADER_LEN + pt_len + VAULT_TAG_LEN)) == NULL) {
        err = GW_ERR_NOMEM;
        goto out;
    }
    memcpy(pt, vault->token_key, VAULT_PLAIN_PREFIX_LEN);
    memcpy(pt + VAULT_PLAIN_PREFIX_LEN, entries, entries_len);
    vault_header_write(vault, generation, file);
    randombytes_buf(file + VAULT_HEADER3_AD_LEN, VAULT_NONCE_LEN);
    vault_mem_readonly(vault->master);
    int rc = crypto_aead_xchacha20poly1305_ietf_encrypt(file + VAULT_HEADER_LEN, &ct_len, pt,
                                                        pt_len, file, VAULT_HEADER3_AD_LEN, NULL,
                                                        file + VAULT_HEADER3_AD_LEN, vault->master);
    vault_mem_noaccess(vault->master);
    if (rc != 0 || ct_len != pt_len + VAULT_TAG_LEN) {
        err = GW_ERR_INTERNAL;
        goto out;
    }
    *out = file;
    *out_len = VAULT_HEADER_LEN + (size_t)ct_len;
    file = NULL;
    err = GW_OK;
out:
    vault_mem_free(entries); /* wipes the plaintext */
    vault_mem_free(pt);
    free(file);
    return err;
}
