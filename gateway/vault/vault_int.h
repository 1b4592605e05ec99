/*
 * vault_int.h: what the files of the vault module share. Nothing outside gateway/vault/ includes
 * it but the module's unit tests, which look inside (clock, protection count, slots): the
 * module's interface is vault.h.
 *
 *   vault.c   the tables of credentials and caller keys: open, put, remove, look-ups, the
 *             token hash, free
 *   keymem.c  key memory: the only file that allocates it or changes its protection, and the
 *             signing keys derived into it, published to signers without a lock
 *   store.c   the store format: plaintext layout and encryption; bytes in, bytes out, no files
 *   files.c   the vault's files: master key, reading and replacing the store, the writer lock
 *   sign.c    signing with a credential, checking a caller's signature, and the cache's counters
 */
#ifndef GW_VAULT_INT_H
#define GW_VAULT_INT_H

#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vault/vault.h"

/* Store file sizes; store.c and storekey.c describe the layout. */
#define VAULT_STORE_MAGIC "TCGWSTORE3"       /* the format written: header of storekey.c */
#define VAULT_STORE_MAGIC_V2 "TCGWSTORE2"    /* still read: nonce only, no generation */
#define VAULT_STORE_MAGIC_V1 "TCGWSTORE1"    /* still read: credentials only, no kinds */
#define VAULT_STORE_MAGIC_PREFIX "TCGWSTORE" /* any other version: a newer tcgw's store */
#define VAULT_STORE_MAGIC_LEN 10
#define VAULT_NONCE_LEN crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define VAULT_TAG_LEN crypto_aead_xchacha20poly1305_ietf_ABYTES
#define VAULT_SALT_LEN crypto_pwhash_SALTBYTES
#define VAULT_CHECK_LEN 16
/* Format 3: magic, source, generation, salt, opslimit, memlimit, key check; then the nonce. */
#define VAULT_HEADER3_AD_LEN                                                                       \
    (VAULT_STORE_MAGIC_LEN + 1 + 8 + VAULT_SALT_LEN + 8 + 8 + VAULT_CHECK_LEN)
#define VAULT_HEADER_LEN (VAULT_HEADER3_AD_LEN + VAULT_NONCE_LEN)
#define VAULT_HEADER_LEN_V2 (VAULT_STORE_MAGIC_LEN + VAULT_NONCE_LEN) /* and format 1 */
/* Format 3's plaintext starts with the token hash's key, then the entries as in format 2. */
#define VAULT_PLAIN_PREFIX_LEN GW_VAULT_TOKEN_HASH_LEN
#define VAULT_ENTRY_MAX                                                                            \
    (1 + 2 + GW_VAULT_MAX_NAME + 2 + GW_VAULT_MAX_SECRET_ID + 2 + GW_VAULT_MAX_SECRET_KEY)
#define VAULT_VALUE_ENTRY_MAX (1 + 2 + GW_VAULT_MAX_NAME + 4 + GW_VAULT_MAX_VALUE)
/* Kind 3 (temporary credential): a credential's fields, then a token and a u64 expiry. Kind 4
 * (role) is smaller than that. */
#define VAULT_TEMP_ENTRY_MAX (VAULT_ENTRY_MAX + 2 + GW_VAULT_MAX_TOKEN + 8)
#define VAULT_PLAIN_MIN 4
#define VAULT_PLAIN_MAX                                                                            \
    (VAULT_PLAIN_MIN + GW_VAULT_MAX_ENTRIES * VAULT_TEMP_ENTRY_MAX +                               \
     GW_VAULT_MAX_CALLER_KEYS * VAULT_ENTRY_MAX + GW_VAULT_MAX_VALUES * VAULT_VALUE_ENTRY_MAX)
#define VAULT_STORE_MIN (VAULT_HEADER_LEN_V2 + VAULT_PLAIN_MIN + VAULT_TAG_LEN)
#define VAULT_STORE_MAX                                                                            \
    (VAULT_HEADER_LEN + VAULT_PLAIN_PREFIX_LEN + VAULT_PLAIN_MAX + VAULT_TAG_LEN)

/* Bounds on the Argon2id cost a header may ask for: beyond them it was modified (or is not ours).
 */
#define VAULT_OPSLIMIT_MAX 64ull
#define VAULT_MEMLIMIT_MAX (4ull << 30)

/*
 * The store's header as read or to be written (storekey.c). Formats 1 and 2 read as generation 0,
 * key file.
 */
struct vault_header {
    unsigned format; /* 1, 2 or 3 */
    enum gw_vault_key_source source;
    uint64_t generation; /* of the store read; a save writes generation + 1 */
    unsigned char salt[VAULT_SALT_LEN];
    uint64_t opslimit; /* Argon2id cost: passphrase stores only, else 0 */
    uint64_t memlimit;
};

/* The kinds of entry that hold a SecretId and SecretKey (struct cred): one table each. Secret
 * values (GW_VAULT_SECRET_VALUE) have a table of their own (struct value). */
#define VAULT_KINDS 2

/* The subkey of the master key that keys gw_vault_token_hash (crypto_kdf: id and context). */
#define VAULT_TOKEN_KEY_ID 1
#define VAULT_TOKEN_KEY_CONTEXT "tcgwtokn"

/*
 * Signing keys cached per entry (credential or caller key): (date, service) pairs. A day's traffic
 * with the gateway's credential uses one service or a few; yesterday's keys stay until the day
 * after (see keymem.c), so eight slots hold four services. A credential that needs more signs
 * without caching the extra keys (correct, only slower).
 */
#define VAULT_KEY_SLOTS 8

#define VAULT_DAY_SECONDS 86400

/*
 * A signing key derived for one (day, service), with the SecretId it signs for: all a signature
 * needs. Derived inside a struct secret, then copied into key memory of its own to be published
 * in a cred's slots: read-only from then on, never written again until it is wiped and freed
 * (keymem.c says when that is safe).
 */
struct derived {
    int64_t day; /* the UTC date, as days since 1970-01-01 */
    size_t id_len;
    char service[GW_TC3_MAX_SERVICE + 1];
    char id[GW_VAULT_MAX_SECRET_ID + 1];
    unsigned char key[GW_TC3_KEY_LEN];
};

/*
 * An entry's SecretId and SecretKey, and room to derive a signing key: one region of key
 * memory, no-access at rest. scratch is zero outside a derivation.
 */
struct secret {
    size_t id_len;
    size_t key_len;
    char id[GW_VAULT_MAX_SECRET_ID + 1];
    unsigned char key[GW_VAULT_MAX_SECRET_KEY];
    struct derived scratch;
};

struct role;

/*
 * An entry of the vault: a credential, or a caller key (the same shape; only the table it is in
 * differs, and with it who may use it: gw_vault_sign or gw_vault_verify). A credential is static,
 * temporary (token and expires set) or a role (role set, sec NULL; the keys it signs with are
 * role->current, a temporary struct cred of its own).
 */
struct cred {
    enum gw_vault_cred_type type;
    int64_t expires; /* temporary: seconds since the epoch; else 0 */
    int64_t issued;  /* temporary keys of a role: when installed (the refresh schedule) */
    char *token;     /* temporary: key memory, read-only, token_len + 1 bytes; else NULL */
    size_t token_len;
    struct role *role; /* GW_VAULT_ROLE: role.c */
    char name[GW_VAULT_MAX_NAME + 1];
    char id_tail[5]; /* shown by `secrets list`; not secret */
    /*
     * Taken by writers only: whoever changes sec's protection (deriving a key, saving, replacing
     * the credential) or the slots. The protection of sec is one state shared by all threads, so
     * opening and closing it must not interleave. Signers with a cached key never take it.
     */
    pthread_mutex_t lock;
    struct secret *sec;
    /*
     * Published signing keys, read without a lock (acquire loads), written under lock (release
     * stores). An empty slot is NULL.
     */
    _Atomic(struct derived *) keys[VAULT_KEY_SLOTS];
};

/* Hit and miss counters, one cache line per shard so signing threads do not share a line. */
#define VAULT_STAT_SHARDS 16
struct vault_stat_shard {
    _Alignas(64) _Atomic uint64_t hits;
    _Atomic uint64_t misses;
};

/* The entries of one kind, ascending by name; pointers because of the mutexes. */
struct vault_table {
    struct cred **entries;
    size_t count;
};

/* A secret value (GW_VAULT_SECRET_VALUE): bytes in key memory, no-access at rest. */
struct value {
    char name[GW_VAULT_MAX_NAME + 1];
    size_t len;
    pthread_mutex_t lock; /* whoever changes bytes' protection: users take turns */
    unsigned char *bytes; /* key memory, len bytes */
};

struct vault_values {
    struct value **entries; /* ascending by name */
    size_t count;
};

struct gw_vault {
    struct vault_stat_shard stats[VAULT_STAT_SHARDS]; /* first: the allocation is aligned */
    unsigned char *master; /* key memory, GW_VAULT_MASTER_KEY_LEN bytes, no-access at rest */
    /*
     * Key memory, GW_VAULT_TOKEN_HASH_LEN bytes: the token hash's key, derived from the master key
     * at open and read-only from then on (every request with a bearer token reads it, so no
     * protection change per use; sodium_malloc keeps it out of core dumps all the same).
     */
    unsigned char *token_key;
    struct vault_table tables[VAULT_KINDS]; /* indexed by enum gw_vault_kind */
    struct vault_values values;             /* GW_VAULT_SECRET_VALUE */
    int64_t (*now)(void);     /* the wall clock, seconds since the epoch; tests replace it */
    _Atomic uint64_t retired; /* signing keys wiped because their day had passed */
    struct vault_header hdr;  /* how the master key is made, and the generation */
    uint64_t seen;            /* the generation file's value at open (0 when none) */
    int lock_fd;              /* the store's writer lock (gw_vault_open_for_update), or -1 */
    char *locked_store;       /* the store path that lock_fd guards, or NULL */
};

/* ---- vault.c ---- */

/* The entry of that kind called name, or NULL. Borrowed from vault. */
struct cred *vault_find(const struct gw_vault *vault, enum gw_vault_kind kind, const char *name);

/*
 * gw_vault_put for an entry of either kind: adds or replaces it after checking name and values
 * (msg says what is wrong, never echoing a value).
 */
enum gw_err vault_put(struct gw_vault *vault, enum gw_vault_kind kind, const char *name,
                      const char *id, size_t id_len, const char *key, size_t key_len, char *msg,
                      size_t msglen) GW_MUST_CHECK;

/* ---- values.c ---- */

/* The value called name, or NULL. Borrowed from vault. */
struct value *vault_value_find(const struct gw_vault *vault, const char *name);

/* Removes value name (GW_ERR_NOT_FOUND when absent). */
enum gw_err vault_value_remove(struct gw_vault *vault, const char *name) GW_MUST_CHECK;

/* Wipes and frees every value. */
void vault_values_free(struct gw_vault *vault);

/* ---- keymem.c ---- */

/*
 * n bytes of key memory: guard pages, locked in RAM, out of core dumps; readable and writable.
 * New (vault_mem_free), or NULL when out of memory.
 */
void *vault_mem_alloc(size_t n);

/* Wipes and frees key memory, whatever its protection. Accepts NULL. */
void vault_mem_free(void *p);

/*
 * Derives the token hash's key from the master key (made readable for the derivation only) into
 * new key memory, left read-only. NULL when out of memory.
 */
unsigned char *vault_token_key_new(unsigned char *master);

/* Makes key memory no-access, or read-only. Both stop the process if the kernel refuses. */
void vault_mem_noaccess(void *p);
void vault_mem_readonly(void *p);

/*
 * Protection changes keymem.c has made since the process started (every mprotect of key memory,
 * on any thread). For tests: a signature with a cached key must add none.
 */
uint64_t vault_mem_protections(void);

/*
 * A new credential (vault_cred_free) holding copies of id and key, which the caller has checked;
 * its secret is no-access and it has no signing keys yet. NULL when out of memory.
 */
struct cred *vault_cred_new(const char *name, const char *id, size_t id_len, const char *key,
                            size_t key_len);

/*
 * Replaces c's SecretId and SecretKey and wipes the keys derived from the old key. Takes c->lock.
 * Not while other threads sign with c (gw_vault_put's rule): a signer may hold a key it drops.
 */
enum gw_err vault_cred_set(struct cred *c, const char *id, size_t id_len, const char *key,
                           size_t key_len) GW_MUST_CHECK;

/* Wipes and frees a credential and its signing keys. Accepts NULL. */
void vault_cred_free(struct cred *c);

/*
 * With c->lock held: makes c's secret readable (and writable if asked) and points *s at it
 * (borrowed until vault_secret_close). GW_ERR_INTERNAL, the secret still no-access, if the kernel
 * refuses.
 */
enum gw_err vault_secret_open(struct cred *c, bool writable, struct secret **s) GW_MUST_CHECK;

/* With c->lock held: makes c's secret no-access again (or stops the process). */
void vault_secret_close(struct cred *c);

/* Today, as days since 1970-01-01 UTC, by vault's clock. */
int64_t vault_today(const struct gw_vault *vault);

/*
 * The signing path without a lock: c's published key for (day, service), or NULL. Changes no
 * protection. Borrowed; it stays valid for the signature being made only if the caller read
 * vault_today no later than this call and day is not before it (keymem.c explains why).
 */
const struct derived *vault_key_find(const struct cred *c, int64_t day, const char *service);

/*
 * Derives the signing key for (date, service) from s, open for writing, into s->scratch, with day
 * (date's number) and s's SecretId. The caller wipes scratch before closing s. GW_ERR_INVALID as
 * gw_tc3_derive_key.
 */
enum gw_err vault_key_derive(struct secret *s, int64_t day, const char *date,
                             const char *service) GW_MUST_CHECK;

/* With c->lock held: wipes and frees c's keys whose day is two or more days before vault_today. */
void vault_keys_retire(struct gw_vault *vault, struct cred *c);

/*
 * With c->lock held: copies key into new key memory, makes it read-only and publishes it in a
 * free slot of c. Returns the published key (borrowed from c, as vault_key_find's), or NULL when
 * no slot is free or key memory is short: the caller signs without the cache.
 */
const struct derived *vault_key_publish(struct cred *c, const struct derived *key);

/*
 * A new temporary credential (copies of id, key and token, which the caller has checked). NULL
 * when out of memory.
 */
struct cred *vault_cred_new_temporary(const char *name, const char *id, size_t id_len,
                                      const char *key, size_t key_len, const char *token,
                                      size_t token_len, int64_t expires);

/*
 * A new temporary credential with the same SecretId, SecretKey, token and times as c (made
 * readable under c's lock for the copy), for gw_vault_roles_adopt. NULL when out of memory.
 */
struct cred *vault_cred_copy(struct cred *c);

/* ---- role.c ---- */

/* A new role entry (type GW_VAULT_ROLE, no keys yet) with a copy of def, checked. */
struct cred *vault_role_new(const char *name, const struct gw_vault_role_def *def);

/* Checks a role definition: msg says which field is wrong. */
enum gw_err vault_role_check(const struct gw_vault_role_def *def, char *msg,
                             size_t msglen) GW_MUST_CHECK;

/* Frees a role's state: its current and retired keys. Only when no thread uses it. */
void vault_role_free(struct role *r);

/* The role's definition, borrowed (for store.c and gw_vault_info). */
void vault_role_def(const struct role *r, struct gw_vault_role_def *def);

/* The keys a role signs with now (acquire load), or NULL: keep the use short (role.c). */
struct cred *vault_role_current(const struct role *r);

/* Checks a token: 1..GW_VAULT_MAX_TOKEN printable ASCII characters without spaces. */
enum gw_err vault_check_token(const char *token, size_t len, char *msg,
                              size_t msglen) GW_MUST_CHECK;

/* Adds or replaces a credential-table entry with c (stolen; freed on failure). */
enum gw_err vault_put_cred(struct gw_vault *vault, struct cred *c, char *msg,
                           size_t msglen) GW_MUST_CHECK;

/* ---- store.c ---- */

/*
 * Decrypts a whole store file (file, len) with vault's master key and adds its entries to
 * vault, which is empty (both formats: store.c). path only names the file in msg. GW_ERR_INVALID:
 * truncated, not a store, or damaged inside; GW_ERR_CRYPTO: wrong master key or a modified file.
 */
enum gw_err vault_store_decode(struct gw_vault *vault, const unsigned char *file, size_t len,
                               const char *path, char *msg, size_t msglen) GW_MUST_CHECK;

/*
 * Serialises and encrypts vault with a fresh nonce, in format 3 with that generation. *out is new
 * (free()); it holds nothing in clear. GW_ERR_NOMEM or GW_ERR_INTERNAL.
 */
enum gw_err vault_store_encode(const struct gw_vault *vault, uint64_t generation,
                               unsigned char **out, size_t *out_len) GW_MUST_CHECK;

/* ---- storekey.c ---- */

/* gw_vault_open_master, inside the module: a missing store opens without any master key. */
#define VAULT_OPEN_NO_KEY 0x100u

/*
 * Parses the header of a store file (file, len): its format, and for format 3 the fields of struct
 * vault_header; *hdr_len is where the ciphertext's nonce ends. GW_ERR_INVALID with msg naming path:
 * not a store, a newer tcgw's, truncated, or limits out of bounds.
 */
enum gw_err vault_header_parse(const unsigned char *file, size_t len, const char *path,
                               struct vault_header *hdr, size_t *hdr_len, char *msg,
                               size_t msglen) GW_MUST_CHECK;

/* Writes the format-3 header fields (VAULT_HEADER3_AD_LEN bytes) for vault's master key. */
void vault_header_write(const struct gw_vault *vault, uint64_t generation,
                        unsigned char out[VAULT_HEADER3_AD_LEN]);

/*
 * True when the key check in a format-3 header matches vault's master key: a failure then means
 * the wrong key or passphrase, not a damaged store.
 */
bool vault_header_key_matches(const struct gw_vault *vault, const unsigned char *file);

/*
 * Makes vault's master key for hdr (a passphrase store: Argon2id over the passphrase with hdr's
 * salt and limits; a key-file store: the key file). New key memory in vault->master, left
 * no-access.
 */
enum gw_err vault_master_make(struct gw_vault *vault, const struct gw_vault_master *m,
                              const struct vault_header *hdr, const char *store_path, char *msg,
                              size_t msglen) GW_MUST_CHECK;

/* The generation recorded in "<store_path>.generation", or 0 when there is no such file. */
enum gw_err vault_generation_read(const char *store_path, uint64_t *gen, char *msg,
                                  size_t msglen) GW_MUST_CHECK;

/* Replaces "<store_path>.generation" atomically with gen. */
enum gw_err vault_generation_write(const char *store_path, uint64_t gen, char *msg,
                                   size_t msglen) GW_MUST_CHECK;

/* ---- files.c ---- */

/* Reads the master key file into new key memory, left no-access. */
enum gw_err vault_master_load(const char *path, unsigned char **out, char *msg,
                              size_t msglen) GW_MUST_CHECK;

/*
 * Checks that the store at path may be used (a regular file, private, ours), without reading it.
 * A missing store passes: it is an empty one.
 */
enum gw_err vault_store_check(const char *path, char *msg, size_t msglen) GW_MUST_CHECK;

/*
 * Reads the whole store file at path: *file is new (free()) and *len its length. GW_ERR_NOT_FOUND
 * when there is none.
 */
enum gw_err vault_store_read(const char *path, unsigned char **file, size_t *len, char *msg,
                             size_t msglen) GW_MUST_CHECK;

/* Takes the writer lock of the store at path ("<path>.lock"); *fd is the held lock. */
enum gw_err vault_store_lock(const char *path, int *fd, char *msg, size_t msglen) GW_MUST_CHECK;

#endif
