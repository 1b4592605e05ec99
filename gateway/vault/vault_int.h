/*
 * vault_int.h: what the files of the vault module share. Nothing outside gateway/vault/ includes
 * it: the module's interface is vault.h.
 *
 *   vault.c   the credential table: open, put, look-ups, free
 *   keymem.c  key memory: the only file that allocates it or changes its protection, and the
 *             derived-key cache that lives in it
 *   store.c   the store format: plaintext layout and encryption; bytes in, bytes out, no files
 *   files.c   the vault's files: master key, reading and replacing the store, the writer lock
 *   sign.c    signing with a credential
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

/* Store file sizes; store.c describes the layout. */
#define VAULT_STORE_MAGIC "TCGWSTORE1"
#define VAULT_STORE_MAGIC_LEN 10
#define VAULT_NONCE_LEN crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define VAULT_TAG_LEN crypto_aead_xchacha20poly1305_ietf_ABYTES
#define VAULT_HEADER_LEN (VAULT_STORE_MAGIC_LEN + VAULT_NONCE_LEN)
#define VAULT_ENTRY_MAX                                                                            \
    (2 + GW_VAULT_MAX_NAME + 2 + GW_VAULT_MAX_SECRET_ID + 2 + GW_VAULT_MAX_SECRET_KEY)
#define VAULT_PLAIN_MIN 4
#define VAULT_PLAIN_MAX (VAULT_PLAIN_MIN + GW_VAULT_MAX_ENTRIES * VAULT_ENTRY_MAX)
#define VAULT_STORE_MIN (VAULT_HEADER_LEN + VAULT_PLAIN_MIN + VAULT_TAG_LEN)
#define VAULT_STORE_MAX (VAULT_HEADER_LEN + VAULT_PLAIN_MAX + VAULT_TAG_LEN)

/* Derived signing keys kept per credential: a few (date, service) pairs cover a day's traffic. */
#define VAULT_CACHE_SLOTS 4

/* A signing key derived for one (date, service). last_used == 0 marks an empty slot. */
struct cache_slot {
    uint64_t last_used;
    char date[GW_TC3_DATE_LEN + 1];
    char service[GW_TC3_MAX_SERVICE + 1];
    unsigned char key[GW_TC3_KEY_LEN];
};

/* Everything secret about one credential: one region of key memory, no-access at rest. */
struct secret {
    size_t id_len;
    size_t key_len;
    uint64_t tick; /* LRU clock for the cache */
    char id[GW_VAULT_MAX_SECRET_ID + 1];
    unsigned char key[GW_VAULT_MAX_SECRET_KEY];
    struct cache_slot cache[VAULT_CACHE_SLOTS];
};

struct cred {
    char name[GW_VAULT_MAX_NAME + 1];
    char id_tail[5]; /* shown by `secrets list`; not secret */
    /*
     * Why a mutex: the protection of sec is one state shared by all threads, so unprotecting,
     * using and re-protecting it must not interleave. The section is a few microseconds (two
     * mprotect calls and one to four HMACs) and the lock is per credential, not global.
     */
    pthread_mutex_t lock;
    struct secret *sec;
};

struct gw_vault {
    unsigned char *master; /* key memory, GW_VAULT_MASTER_KEY_LEN bytes, no-access at rest */
    struct cred **creds;   /* count entries, ascending by name; pointers because of the mutexes */
    size_t count;
    _Atomic uint64_t hits;
    _Atomic uint64_t misses;
    bool resident;      /* credential memory stays accessible between uses (keep_resident) */
    int lock_fd;        /* the store's writer lock (gw_vault_open_for_update), or -1 */
    char *locked_store; /* the store path that lock_fd guards, or NULL */
};

/* ---- vault.c ---- */

/* Formats a message into msg (size msglen) when msg is not NULL. */
void vault_say(char *msg, size_t msglen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The credential called name, or NULL. Borrowed from vault. */
struct cred *vault_find(const struct gw_vault *vault, const char *name);

/* ---- keymem.c ---- */

/*
 * n bytes of key memory: guard pages, locked in RAM, out of core dumps; readable and writable.
 * New (vault_mem_free), or NULL when out of memory.
 */
void *vault_mem_alloc(size_t n);

/* Wipes and frees key memory, whatever its protection. Accepts NULL. */
void vault_mem_free(void *p);

/* Makes key memory no-access, or read-only. Both stop the process if the kernel refuses. */
void vault_mem_noaccess(void *p);
void vault_mem_readonly(void *p);

/*
 * A new credential (vault_cred_free) holding copies of id and key, which the caller has checked;
 * its memory is no-access unless vault->resident. NULL when out of memory.
 */
struct cred *vault_cred_new(const struct gw_vault *vault, const char *name, const char *id,
                            size_t id_len, const char *key, size_t key_len);

/* Replaces c's SecretId and SecretKey, dropping the keys derived from the old key. */
enum gw_err vault_cred_set(const struct gw_vault *vault, struct cred *c, const char *id,
                           size_t id_len, const char *key, size_t key_len) GW_MUST_CHECK;

/* Wipes and frees a credential. Accepts NULL. */
void vault_cred_free(struct cred *c);

/*
 * Locks c and makes its secret readable and writable; returns it (borrowed), or NULL, with c
 * unlocked again, when the protection cannot be changed. Every non-NULL return is paired with
 * vault_cred_close.
 */
struct secret *vault_cred_open(const struct gw_vault *vault, struct cred *c);

/* Puts c's secret back to no-access (unless resident) and unlocks c. */
void vault_cred_close(const struct gw_vault *vault, struct cred *c);

/*
 * The signing key for (date, service) from s's cache, derived into the least recently used slot
 * on a miss; counts the hit or miss in vault. *key is borrowed from s: valid until
 * vault_cred_close. GW_ERR_INVALID as gw_tc3_derive_key.
 */
enum gw_err vault_cache_key(struct gw_vault *vault, struct secret *s, const char *date,
                            const char *service, const unsigned char **key) GW_MUST_CHECK;

/* ---- store.c ---- */

/*
 * Decrypts a whole store file (file, len) with vault's master key and adds its credentials to
 * vault, which is empty. path only names the file in msg. GW_ERR_INVALID: truncated, not a
 * store, or damaged inside; GW_ERR_CRYPTO: wrong master key or a modified file.
 */
enum gw_err vault_store_decode(struct gw_vault *vault, const unsigned char *file, size_t len,
                               const char *path, char *msg, size_t msglen) GW_MUST_CHECK;

/*
 * Serialises and encrypts vault with a fresh nonce. *out is new (free()); it holds nothing in
 * clear. GW_ERR_NOMEM or GW_ERR_INTERNAL.
 */
enum gw_err vault_store_encode(const struct gw_vault *vault, unsigned char **out,
                               size_t *out_len) GW_MUST_CHECK;

/* ---- files.c ---- */

/* Reads the master key file into new key memory, left no-access. */
enum gw_err vault_master_load(const char *path, unsigned char **out, char *msg,
                              size_t msglen) GW_MUST_CHECK;

/*
 * Checks that the store at path may be used (a regular file, private, ours), without reading it.
 * A missing store passes: it is an empty one.
 */
enum gw_err vault_store_check(const char *path, char *msg, size_t msglen) GW_MUST_CHECK;

/* Reads the store at path into vault, which is empty. A missing file leaves it empty. */
enum gw_err vault_store_load(struct gw_vault *vault, const char *path, char *msg,
                             size_t msglen) GW_MUST_CHECK;

/* Takes the writer lock of the store at path ("<path>.lock"); *fd is the held lock. */
enum gw_err vault_store_lock(const char *path, int *fd, char *msg, size_t msglen) GW_MUST_CHECK;

#endif
