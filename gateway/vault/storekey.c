/*
 * storekey: the store's header and what it protects against. How the master key is made (a key
 * file, or a passphrase through Argon2id), the header that says so, the generation that orders
 * saves, the generation file that detects a rollback, and changing the master key (rekey).
 *
 * Store file, format 3 (all integers big-endian):
 *   "TCGWSTORE3"    10 bytes: magic and format version
 *   source           1 byte: 0 master key file, 1 passphrase (Argon2id v1.3)
 *   generation       u64: one more at every save, never lower than any generation saved before
 *   salt            16 bytes: crypto_pwhash salt (zero for a key file)
 *   opslimit        u64: Argon2id passes (0 for a key file)
 *   memlimit        u64: Argon2id memory in bytes (0 for a key file)
 *   key check       16 bytes: BLAKE2b-128 keyed with the master key over a fixed text, so that a
 *                   wrong key or passphrase is told apart from a damaged store
 *   nonce           24 bytes, fresh random per save
 *   ciphertext      XChaCha20-Poly1305 (IETF) of the plaintext, then its 16-byte tag; the
 *                   additional data is everything before the nonce (the 67 bytes above)
 * Plaintext: the token hash's key (32 bytes, so that it survives a rekey), then the entries in
 * format 2's layout (store.c).
 *
 * Generation file "<store>.generation": the decimal generation of the last store saved here and
 * a newline, replaced atomically after every save. A store older than it is refused at open: an
 * older copy of the store was put back. It cannot catch an attacker who replaces both files.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/file.h"
#include "vault/vault_int.h"

#define GEN_WHAT "credential store generation file"
#define CHECK_TEXT "tcgw store key check v3"
#define GEN_FILE_MAX 32

/* ---- Costs ---- */

enum gw_err gw_vault_kdf_named(const char *name, struct gw_vault_kdf *kdf)
{
    if (name == NULL) {
        return GW_ERR_INVALID;
    }
    if (strcmp(name, "interactive") == 0) {
        kdf->opslimit = crypto_pwhash_OPSLIMIT_INTERACTIVE;
        kdf->memlimit = crypto_pwhash_MEMLIMIT_INTERACTIVE;
    } else if (strcmp(name, "moderate") == 0) {
        kdf->opslimit = crypto_pwhash_OPSLIMIT_MODERATE;
        kdf->memlimit = crypto_pwhash_MEMLIMIT_MODERATE;
    } else if (strcmp(name, "sensitive") == 0) {
        kdf->opslimit = crypto_pwhash_OPSLIMIT_SENSITIVE;
        kdf->memlimit = crypto_pwhash_MEMLIMIT_SENSITIVE;
    } else if (strcmp(name, "insecure-test-only") == 0) {
        kdf->opslimit = crypto_pwhash_OPSLIMIT_MIN;
        kdf->memlimit = crypto_pwhash_MEMLIMIT_MIN;
    } else {
        return GW_ERR_INVALID;
    }
    return GW_OK;
}

static bool kdf_in_bounds(uint64_t ops, uint64_t mem)
{
    return ops >= crypto_pwhash_OPSLIMIT_MIN && ops <= VAULT_OPSLIMIT_MAX &&
           mem >= crypto_pwhash_MEMLIMIT_MIN && mem <= VAULT_MEMLIMIT_MAX && mem <= SIZE_MAX;
}

/* ---- Header ---- */

static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v = (v << 8) | p[i];
    }
    return v;
}

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (unsigned char)v;
        v >>= 8;
    }
}

enum gw_err vault_header_parse(const unsigned char *file, size_t len, const char *path,
                               struct vault_header *hdr, size_t *hdr_len, char *msg, size_t msglen)
{
    struct vault_header h;
    memset(&h, 0, sizeof h);
    size_t plen = sizeof VAULT_STORE_MAGIC_PREFIX - 1;
    if (len >= VAULT_STORE_MAGIC_LEN && memcmp(file, VAULT_STORE_MAGIC_PREFIX, plen) == 0 &&
        memcmp(file, VAULT_STORE_MAGIC, VAULT_STORE_MAGIC_LEN) != 0 &&
        memcmp(file, VAULT_STORE_MAGIC_V2, VAULT_STORE_MAGIC_LEN) != 0 &&
        memcmp(file, VAULT_STORE_MAGIC_V1, VAULT_STORE_MAGIC_LEN) != 0) {
        char v = (char)file[plen];
        if (v > '3' && v <= '9') {
            gw_say(msg, msglen,
                   "credential store %s is in format TCGWSTORE%c, written by a newer tcgw: "
                   "upgrade tcgw to open it (this one reads formats 1 to 3)",
                   path, v);
        } else {
            gw_say(msg, msglen,
                   "%s is not a tcgw credential store (format " VAULT_STORE_MAGIC
                   " or older), or its header was modified: restore it from a backup",
                   path);
        }
        return GW_ERR_INVALID;
    }
    if (len < VAULT_STORE_MIN) {
        gw_say(msg, msglen,
               "credential store %s is truncated (%zu bytes, at least %d needed): restore it "
               "from a backup, or delete it to start an empty store",
               path, len, (int)VAULT_STORE_MIN);
        return GW_ERR_INVALID;
    }
    if (memcmp(file, VAULT_STORE_MAGIC_V1, VAULT_STORE_MAGIC_LEN) == 0 ||
        memcmp(file, VAULT_STORE_MAGIC_V2, VAULT_STORE_MAGIC_LEN) == 0) {
        h.format = file[VAULT_STORE_MAGIC_LEN - 1] == '1' ? 1 : 2;
        h.source = GW_VAULT_KEY_FILE;
        *hdr = h;
        *hdr_len = VAULT_HEADER_LEN_V2;
        return GW_OK;
    }
    if (memcmp(file, VAULT_STORE_MAGIC, VAULT_STORE_MAGIC_LEN) != 0) {
        gw_say(msg, msglen,
               "%s is not a tcgw credential store (format " VAULT_STORE_MAGIC
               " or older), or its header was modified: restore it from a backup",
               path);
        return GW_ERR_INVALID;
    }
    if (len < VAULT_HEADER_LEN + VAULT_PLAIN_PREFIX_LEN + VAULT_PLAIN_MIN + VAULT_TAG_LEN) {
        gw_say(msg, msglen,
               "credential store %s is truncated (%zu bytes): restore it from a backup", path, len);
        return GW_ERR_INVALID;
    }
    const unsigned char *p = file + VAULT_STORE_MAGIC_LEN;
    h.format = 3;
    unsigned source = *p++;
    h.generation = get_u64(p);
    p += 8;
    memcpy(h.salt, p, VAULT_SALT_LEN);
    p += VAULT_SALT_LEN;
    h.opslimit = get_u64(p);
    h.memlimit = get_u64(p + 8);
    if (source == GW_VAULT_KEY_FILE) {
        h.source = GW_VAULT_KEY_FILE;
    } else if (source == GW_VAULT_KEY_PASSPHRASE && kdf_in_bounds(h.opslimit, h.memlimit)) {
        h.source = GW_VAULT_KEY_PASSPHRASE;
    } else {
        gw_say(msg, msglen,
               "credential store %s has a header this tcgw does not know (key source %u, cost "
               "%llu/%llu): it was modified, or written by a newer tcgw (upgrade tcgw)",
               path, source, (unsigned long long)h.opslimit, (unsigned long long)h.memlimit);
        return GW_ERR_INVALID;
    }
    *hdr = h;
    *hdr_len = VAULT_HEADER_LEN;
    return GW_OK;
}

/* The key check of master (readable for the call), VAULT_CHECK_LEN bytes. */
static void key_check(const unsigned char *master, unsigned char out[VAULT_CHECK_LEN])
{
    crypto_generichash(out, VAULT_CHECK_LEN, (const unsigned char *)CHECK_TEXT,
                       sizeof CHECK_TEXT - 1, master, GW_VAULT_MASTER_KEY_LEN);
}

void vault_header_write(const struct gw_vault *vault, uint64_t generation,
                        unsigned char out[VAULT_HEADER3_AD_LEN])
{
    unsigned char *p = out;
    bool pass = vault->hdr.source == GW_VAULT_KEY_PASSPHRASE;
    memcpy(p, VAULT_STORE_MAGIC, VAULT_STORE_MAGIC_LEN);
    p += VAULT_STORE_MAGIC_LEN;
    *p++ = (unsigned char)vault->hdr.source;
    put_u64(p, generation);
    p += 8;
    if (pass) {
        memcpy(p, vault->hdr.salt, VAULT_SALT_LEN);
    } else {
        memset(p, 0, VAULT_SALT_LEN);
    }
    p += VAULT_SALT_LEN;
    put_u64(p, pass ? vault->hdr.opslimit : 0);
    put_u64(p + 8, pass ? vault->hdr.memlimit : 0);
    p += 16;
    vault_mem_readonly(vault->master);
    key_check(vault->master, p);
    vault_mem_noaccess(vault->master);
}

bool vault_header_key_matches(const struct gw_vault *vault, const unsigned char *file)
{
    unsigned char check[VAULT_CHECK_LEN];
    vault_mem_readonly(vault->master);
    key_check(vault->master, check);
    vault_mem_noaccess(vault->master);
    return sodium_memcmp(check, file + VAULT_HEADER3_AD_LEN - VAULT_CHECK_LEN, VAULT_CHECK_LEN) ==
           0;
}

/* ---- The master key ---- */

/* Argon2id over passphrase with salt and cost into new key memory, left no-access. */
static enum gw_err derive(const unsigned char *passphrase, size_t len,
                          const unsigned char salt[VAULT_SALT_LEN], uint64_t ops, uint64_t mem,
                          unsigned char **out, char *msg, size_t msglen)
{
    unsigned char *key = vault_mem_alloc(GW_VAULT_MASTER_KEY_LEN);
    if (key == NULL) {
        gw_say(msg, msglen, "out of memory");
        return GW_ERR_NOMEM;
    }
    if (crypto_pwhash(key, GW_VAULT_MASTER_KEY_LEN, (const char *)passphrase, len, salt,
                      (unsigned long long)ops, (size_t)mem, crypto_pwhash_ALG_ARGON2ID13) != 0) {
        vault_mem_free(key);
        gw_say(msg, msglen,
               "cannot derive the master key from the passphrase: out of memory (Argon2id wants "
               "%llu MiB)",
               (unsigned long long)(mem >> 20));
        return GW_ERR_NOMEM;
    }
    vault_mem_noaccess(key);
    *out = key;
    return GW_OK;
}

enum gw_err vault_master_make(struct gw_vault *vault, const struct gw_vault_master *m,
                              const struct vault_header *hdr, const char *store_path, char *msg,
                              size_t msglen)
{
    if (hdr->source == GW_VAULT_KEY_PASSPHRASE) {
        if (m->passphrase == NULL) {
            gw_say(msg, msglen,
                   "credential store %s is protected by a passphrase: type it on a terminal or "
                   "give it on a file descriptor (--passphrase-fd N)",
                   store_path);
            return GW_ERR_INVALID;
        }
        return derive(m->passphrase, m->passphrase_len, hdr->salt, hdr->opslimit, hdr->memlimit,
                      &vault->master, msg, msglen);
    }
    if (m->key_file == NULL || *m->key_file == '\0') {
        gw_say(msg, msglen,
               "credential store %s is protected by a master key file, not a passphrase: give "
               "--key FILE (or master_key_file in the config)",
               store_path);
        return GW_ERR_INVALID;
    }
    return vault_master_load(m->key_file, &vault->master, msg, msglen);
}

/* ---- Generation file ---- */

static enum gw_err gen_path(const char *store_path, char *out, size_t outlen, char *msg,
                            size_t msglen)
{
    int n = snprintf(out, outlen, "%s.generation", store_path);
    if (n < 0 || (size_t)n >= outlen) {
        gw_say(msg, msglen, "credential store path %s is too long", store_path);
        return GW_ERR_TOO_LARGE;
    }
    return GW_OK;
}

enum gw_err vault_generation_read(const char *store_path, uint64_t *gen, char *msg, size_t msglen)
{
    enum gw_err err;
    char path[PATH_MAX];
    char text[GEN_FILE_MAX + 1];
    size_t got = 0;
    int fd = -1;

    if ((err = gen_path(store_path, path, sizeof path, msg, msglen)) != GW_OK) {
        return err;
    }
    err = gw_file_open(path, GEN_WHAT, GW_FILE_REGULAR, &fd, NULL, msg, msglen);
    if (err == GW_ERR_NOT_FOUND) {
        *gen = 0;
        return GW_OK;
    }
    if (err != GW_OK) {
        return err;
    }
    err = gw_file_read_upto(fd, text, GEN_FILE_MAX, &got);
    close(fd);
    if (err != GW_OK) {
        gw_say(msg, msglen, "cannot read %s: %s", path, strerror(errno));
        return GW_ERR_IO;
    }
    text[got] = '\0';
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (got == 0 || text[0] < '0' || text[0] > '9' || errno != 0 || end == NULL ||
        strcmp(end, "\n") != 0) {
        gw_say(msg, msglen,
               "%s is damaged (it should hold one number): if you trust the store, delete it; "
               "the next save writes it again",
               path);
        return GW_ERR_INVALID;
    }
    *gen = v;
    return GW_OK;
}

enum gw_err vault_generation_write(const char *store_path, uint64_t gen, char *msg, size_t msglen)
{
    enum gw_err err;
    char path[PATH_MAX];
    char text[GEN_FILE_MAX];
    if ((err = gen_path(store_path, path, sizeof path, msg, msglen)) != GW_OK) {
        return err;
    }
    int n = snprintf(text, sizeof text, "%llu\n", (unsigned long long)gen);
    return gw_file_replace(path, GEN_WHAT, text, (size_t)n, 0600, msg, msglen);
}

/* ---- Public ---- */

enum gw_err gw_vault_store_info(const char *store_path, enum gw_vault_key_source *source,
                                uint64_t *generation, char *msg, size_t msglen)
{
    enum gw_err err;
    unsigned char *file = NULL;
    size_t len = 0, hdr_len = 0;
    struct vault_header hdr;

    if (store_path == NULL || *store_path == '\0') {
        gw_say(msg, msglen, "no credential store file given");
        return GW_ERR_INVALID;
    }
    if ((err = vault_store_read(store_path, &file, &len, msg, msglen)) != GW_OK) {
        return err;
    }
    if ((err = vault_header_parse(file, len, store_path, &hdr, &hdr_len, msg, msglen)) != GW_OK) {
        goto out;
    }
    if (source != NULL) {
        *source = hdr.source;
    }
    if (generation != NULL) {
        *generation = hdr.generation;
    }
out:
    free(file);
    return err;
}

enum gw_err gw_vault_init_passphrase(const char *store_path, const unsigned char *passphrase,
                                     size_t passphrase_len, const struct gw_vault_kdf *kdf,
                                     char *msg, size_t msglen)
{
    enum gw_err err;
    struct gw_vault *vault = NULL;
    enum gw_vault_key_source src;
    struct gw_vault_master none = {0};

    if (passphrase == NULL || passphrase_len == 0) {
        gw_say(msg, msglen, "the passphrase is empty");
        return GW_ERR_INVALID;
    }
    err = gw_vault_store_info(store_path, &src, NULL, msg, msglen);
    if (err == GW_OK) {
        gw_say(msg, msglen,
               "credential store %s exists already: change its master key with 'tcgw store "
               "rekey' instead",
               store_path);
        return GW_ERR_EXISTS;
    }
    if (err != GW_ERR_NOT_FOUND) {
        return err;
    }
    /* An empty vault under the lock, then the new key; the save creates the store. */
    if ((err = gw_vault_open_master(&none, store_path, GW_VAULT_OPEN_UPDATE | VAULT_OPEN_NO_KEY,
                                    &vault, msg, msglen)) != GW_OK) {
        goto out;
    }
    if (gw_vault_store_info(store_path, &src, NULL, NULL, 0) != GW_ERR_NOT_FOUND) {
        gw_say(msg, msglen, "credential store %s was created meanwhile: nothing was done",
               store_path);
        err = GW_ERR_EXISTS;
        goto out;
    }
    struct gw_vault_master to = {.passphrase = passphrase, .passphrase_len = passphrase_len};
    if ((err = gw_vault_rekey(vault, &to, kdf, msg, msglen)) != GW_OK) {
        goto out;
    }
    if ((vault->token_key = vault_token_key_new(vault->master)) == NULL) {
        gw_say(msg, msglen, "out of memory");
        err = GW_ERR_NOMEM;
        goto out;
    }
    if ((err = gw_vault_save(vault, store_path, msg, msglen)) != GW_OK) {
        goto out;
    }
    err = GW_OK;
out:
    gw_vault_free(vault);
    return err;
}

enum gw_err gw_vault_rekey(struct gw_vault *vault, const struct gw_vault_master *to,
                           const struct gw_vault_kdf *kdf, char *msg, size_t msglen)
{
    enum gw_err err;
    unsigned char *key = NULL;
    struct vault_header hdr = vault->hdr;

    if (vault->locked_store == NULL) {
        gw_say(msg, msglen, "a rekey needs the store's writer lock (open it for update)");
        return GW_ERR_INVALID;
    }
    if (to->key_file != NULL) {
        if ((err = vault_master_load(to->key_file, &key, msg, msglen)) != GW_OK) {
            return err;
        }
        hdr.source = GW_VAULT_KEY_FILE;
        memset(hdr.salt, 0, sizeof hdr.salt);
        hdr.opslimit = 0;
        hdr.memlimit = 0;
    } else {
        if (to->passphrase == NULL || to->passphrase_len == 0 ||
            to->passphrase_len > GW_VAULT_MAX_PASSPHRASE) {
            gw_say(msg, msglen, "the new passphrase is empty or longer than %d bytes",
                   GW_VAULT_MAX_PASSPHRASE);
            return GW_ERR_INVALID;
        }
        if (kdf == NULL || !kdf_in_bounds(kdf->opslimit, kdf->memlimit)) {
            gw_say(msg, msglen, "the Argon2id cost is out of bounds");
            return GW_ERR_INVALID;
        }
        randombytes_buf(hdr.salt, sizeof hdr.salt);
        hdr.source = GW_VAULT_KEY_PASSPHRASE;
        hdr.opslimit = kdf->opslimit;
        hdr.memlimit = kdf->memlimit;
        if ((err = derive(to->passphrase, to->passphrase_len, hdr.salt, hdr.opslimit, hdr.memlimit,
                          &key, msg, msglen)) != GW_OK) {
            return err;
        }
    }
    vault_mem_free(vault->master); /* wipes the old key */
    vault->master = key;
    vault->hdr = hdr;
    return GW_OK;
}

enum gw_vault_key_source gw_vault_source(const struct gw_vault *vault)
{
    return vault->hdr.source;
}

uint64_t gw_vault_generation(const struct gw_vault *vault)
{
    return vault->hdr.generation;
}
