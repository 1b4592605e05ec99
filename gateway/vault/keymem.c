/*
 * keymem: the memory that holds key bytes. Only this file allocates it or changes its protection:
 * the master key and the token hash's key derived from it, each entry's (credential's or caller
 * key's) SecretId and SecretKey, the signing keys derived from them, and the store's plaintext
 * while it is built or parsed.
 *
 * Key memory is sodium_malloc'ed (guard pages, locked in RAM, excluded from core dumps, wiped when
 * freed). The master key and every credential's secret are no-access at rest: readable only while
 * the store is decrypted or encrypted, or a signing key derived. A derived signing key signs only
 * for its UTC date and service, so it is kept read-only for the signers of that day and wiped once
 * the day has passed.
 *
 * Signing keys without a lock or an mprotect
 *
 * Signers (every worker thread at once) find a key with acquire loads of c->keys and use it with
 * no lock and no protection change: a published struct derived is read-only and never written
 * again. A writer (a signer that missed, rarely) takes c->lock, derives the key inside the
 * credential's secret, copies it into fresh key memory, makes that read-only and stores the
 * pointer with memory_order_release. Its writes and the mprotect come before that store, so a
 * signer whose acquire load sees the pointer sees the whole key (one that sees NULL takes the
 * lock instead). Writers order among themselves through the mutex, so their own loads are
 * relaxed. A slot is emptied with a release store too, although nothing needs its ordering:
 * readers that loaded the old pointer are protected by time, not by the store. The hit and miss
 * counters are relaxed: they order nothing.
 *
 * Why freeing is safe. A writer wipes and frees a key only when its day is at least two days
 * before today by the vault's clock, read under the lock at time t1 (vault_keys_retire). A signer
 * uses a published key only for a day not before today by the same clock, read at the start of
 * its call at time t0, before its load (gw_vault_sign). So a key can be freed while a signer uses
 * it only if day >= today(t0) and day <= today(t1) - 2, that is today(t1) >= today(t0) + 2: more
 * than 24 hours between a signer's clock read and its last read of the key, which is a few
 * microseconds of computation with no blocking call. That takes a thread stalled for a day, or the
 * system clock stepped forward by more than a day inside those microseconds. A key is never
 * replaced while it may be in use: when every slot holds a live key, the signature uses a key
 * derived for that call alone. gw_vault_put, gw_vault_remove and gw_vault_free, which drop keys
 * at once, must not run while other threads sign or verify (vault.h). Checking a caller's
 * signature (gw_vault_verify) takes its keys exactly as signing does, under the same rules.
 *
 * The token hash's key is derived once at open and made read-only: never written again, it needs
 * no ordering beyond the thread that opened the vault handing it to the others.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vault/vault_int.h"

static _Atomic uint64_t protections; /* mprotect calls on key memory, for tests */

static void counted(void)
{
    atomic_fetch_add_explicit(&protections, 1, memory_order_relaxed);
}

uint64_t vault_mem_protections(void)
{
    return atomic_load_explicit(&protections, memory_order_relaxed);
}

static atomic_bool mlock_warned;
static atomic_bool mlock_required;

void gw_vault_require_locked_memory(bool required)
{
    atomic_store_explicit(&mlock_required, required, memory_order_relaxed);
}

bool gw_vault_memory_lockable(void)
{
    void *p = sodium_malloc(1);
    bool ok = p != NULL && sodium_mlock(p, 1) == 0;
    sodium_free(p);
    return ok;
}

void *vault_mem_alloc(size_t n)
{
    void *p = sodium_malloc(n);
    /*
     * sodium_malloc locks the region in RAM but ignores a failure (RLIMIT_MEMLOCK too low): then
     * keys could be swapped to disk. Lock again to learn the result, and say so once; where the
     * configuration requires locked memory, such memory is not used at all.
     */
    if (p != NULL && sodium_mlock(p, n) != 0) {
        bool required = atomic_load_explicit(&mlock_required, memory_order_relaxed);
        if (!atomic_exchange_explicit(&mlock_warned, true, memory_order_relaxed)) {
            fprintf(stderr,
                    "level=%s event=mlock result=failed detail=\"cannot lock key memory in RAM "
                    "(raise RLIMIT_MEMLOCK: ulimit -l, LimitMEMLOCK=, docker --ulimit memlock): "
                    "%s\"\n",
                    required ? "error" : "warn",
                    required ? "require_locked_memory is true, so no key is held"
                             : "keys may be written to swap");
        }
        if (required) {
            sodium_free(p);
            return NULL;
        }
    }
    return p;
}

void vault_mem_free(void *p)
{
    sodium_free(p); /* makes the region writable, zeroes it, unmaps it; accepts NULL */
}

unsigned char *vault_token_key_new(unsigned char *master)
{
    unsigned char *k = vault_mem_alloc(GW_VAULT_TOKEN_HASH_LEN);
    if (k == NULL) {
        return NULL;
    }
    /* crypto_kdf wants a crypto_kdf_KEYBYTES key: the master key is exactly that. */
    _Static_assert(crypto_kdf_KEYBYTES == GW_VAULT_MASTER_KEY_LEN, "master key size");
    _Static_assert(sizeof VAULT_TOKEN_KEY_CONTEXT - 1 == crypto_kdf_CONTEXTBYTES, "kdf context");
    _Static_assert(GW_VAULT_TOKEN_HASH_LEN >= crypto_kdf_BYTES_MIN &&
                       GW_VAULT_TOKEN_HASH_LEN <= crypto_kdf_BYTES_MAX &&
                       GW_VAULT_TOKEN_HASH_LEN >= crypto_generichash_KEYBYTES_MIN &&
                       GW_VAULT_TOKEN_HASH_LEN <= crypto_generichash_KEYBYTES_MAX,
                   "token key size");
    vault_mem_readonly(master);
    int rc = crypto_kdf_derive_from_key(k, GW_VAULT_TOKEN_HASH_LEN, VAULT_TOKEN_KEY_ID,
                                        VAULT_TOKEN_KEY_CONTEXT, master);
    vault_mem_noaccess(master);
    if (rc != 0) {
        vault_mem_free(k);
        return NULL;
    }
    vault_mem_readonly(k);
    return k;
}

/*
 * Key memory goes back to no-access after every use. If the kernel refuses, keys would stay
 * readable: that is not a state to run on, so the process stops.
 */
void vault_mem_noaccess(void *p)
{
    counted();
    if (sodium_mprotect_noaccess(p) != 0) {
        fputs("tcgw: cannot make key memory inaccessible again; stopping\n", stderr);
        abort();
    }
}

/* Stops the process if the memory cannot be made readable: the read would fault anyway. */
void vault_mem_readonly(void *p)
{
    counted();
    if (sodium_mprotect_readonly(p) != 0) {
        fputs("tcgw: cannot make key memory readable; stopping\n", stderr);
        abort();
    }
}

/* Fills a writable secret with the given values. */
static void secret_fill(struct secret *s, const char *id, size_t id_len, const char *key,
                        size_t key_len)
{
    sodium_memzero(s, sizeof *s);
    memcpy(s->id, id, id_len);
    s->id[id_len] = '\0';
    s->id_len = id_len;
    memcpy(s->key, key, key_len);
    s->key_len = key_len;
}

static void make_tail(const char *id, size_t id_len, char tail[5])
{
    size_t n = id_len < 4 ? id_len : 4;
    memcpy(tail, id + id_len - n, n);
    tail[n] = '\0';
}

/* Empties every slot of c and frees its keys: only when no other thread signs with c. */
static void drop_keys(struct cred *c)
{
    for (size_t i = 0; i < VAULT_KEY_SLOTS; i++) {
        struct derived *d = atomic_load_explicit(&c->keys[i], memory_order_relaxed);
        atomic_store_explicit(&c->keys[i], NULL, memory_order_relaxed);
        vault_mem_free(d);
    }
}

struct cred *vault_cred_new(const char *name, const char *id, size_t id_len, const char *key,
                            size_t key_len)
{
    struct cred *c = calloc(1, sizeof *c);
    if (c == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < VAULT_KEY_SLOTS; i++) {
        atomic_init(&c->keys[i], NULL);
    }
    if (pthread_mutex_init(&c->lock, NULL) != 0) {
        free(c);
        return NULL;
    }
    if ((c->sec = vault_mem_alloc(sizeof *c->sec)) == NULL) {
        vault_cred_free(c);
        return NULL;
    }
    memcpy(c->name, name, strlen(name) + 1);
    make_tail(id, id_len, c->id_tail);
    secret_fill(c->sec, id, id_len, key, key_len);
    vault_mem_noaccess(c->sec);
    return c;
}

enum gw_err vault_cred_set(struct cred *c, const char *id, size_t id_len, const char *key,
                           size_t key_len)
{
    enum gw_err err = GW_OK;
    pthread_mutex_lock(&c->lock);
    counted();
    if (sodium_mprotect_readwrite(c->sec) != 0) {
        err = GW_ERR_INTERNAL;
        goto out;
    }
    /* Keys derived from the old SecretKey must not sign again. */
    drop_keys(c);
    secret_fill(c->sec, id, id_len, key, key_len);
    make_tail(id, id_len, c->id_tail);
    vault_mem_noaccess(c->sec);
out:
    pthread_mutex_unlock(&c->lock);
    return err;
}

struct cred *vault_cred_new_temporary(const char *name, const char *id, size_t id_len,
                                      const char *key, size_t key_len, const char *token,
                                      size_t token_len, int64_t expires)
{
    struct cred *c = vault_cred_new(name, id, id_len, key, key_len);
    if (c == NULL) {
        return NULL;
    }
    /*
     * The token goes out with every call, so it stays read-only rather than no-access (as a
     * published signing key does): key memory all the same, out of core dumps and wiped.
     */
    if ((c->token = vault_mem_alloc(token_len + 1)) == NULL) {
        vault_cred_free(c);
        return NULL;
    }
    memcpy(c->token, token, token_len);
    c->token[token_len] = '\0';
    c->token_len = token_len;
    vault_mem_readonly(c->token);
    c->type = GW_VAULT_TEMPORARY;
    c->expires = expires;
    return c;
}

struct cred *vault_cred_copy(struct cred *c)
{
    struct secret *s;
    struct cred *copy = NULL;
    pthread_mutex_lock(&c->lock);
    if (vault_secret_open(c, false, &s) == GW_OK) {
        copy = vault_cred_new_temporary(c->name, s->id, s->id_len, (const char *)s->key, s->key_len,
                                        c->token, c->token_len, c->expires);
        vault_secret_close(c);
    }
    pthread_mutex_unlock(&c->lock);
    if (copy != NULL) {
        copy->issued = c->issued;
    }
    return copy;
}

void vault_cred_free(struct cred *c)
{
    if (c == NULL) {
        return;
    }
    drop_keys(c);
    vault_mem_free(c->token);
    vault_role_free(c->role);
    vault_mem_free(c->sec);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

enum gw_err vault_secret_open(struct cred *c, bool writable, struct secret **s)
{
    counted();
    if ((writable ? sodium_mprotect_readwrite(c->sec) : sodium_mprotect_readonly(c->sec)) != 0) {
        return GW_ERR_INTERNAL;
    }
    *s = c->sec;
    return GW_OK;
}

void vault_secret_close(struct cred *c)
{
    vault_mem_noaccess(c->sec);
}

int64_t vault_today(const struct gw_vault *vault)
{
    int64_t t = vault->now();
    /* Rounded down, also for a clock before 1970, so that the comparisons in sign.c hold. */
    return t >= 0 ? t / VAULT_DAY_SECONDS : -(-(t + 1) / VAULT_DAY_SECONDS) - 1;
}

const struct derived *vault_key_find(const struct cred *c, int64_t day, const char *service)
{
    for (size_t i = 0; i < VAULT_KEY_SLOTS; i++) {
        /* Pairs with the release store in vault_key_publish: the key is complete when seen. */
        const struct derived *d = atomic_load_explicit(&c->keys[i], memory_order_acquire);
        if (d != NULL && d->day == day && strcmp(d->service, service) == 0) {
            return d;
        }
    }
    return NULL;
}

enum gw_err vault_key_derive(struct secret *s, int64_t day, const char *date, const char *service)
{
    enum gw_err err;
    size_t service_len = strlen(service);
    struct derived *d = &s->scratch;

    /* gw_tc3_string_to_sign has checked the service, so it fits. */
    if (service_len > GW_TC3_MAX_SERVICE) {
        return GW_ERR_INVALID;
    }
    if ((err = gw_tc3_derive_key(s->key, s->key_len, date, service, d->key)) != GW_OK) {
        return err;
    }
    d->day = day;
    memcpy(d->service, service, service_len + 1);
    memcpy(d->id, s->id, s->id_len + 1);
    d->id_len = s->id_len;
    return GW_OK;
}

void vault_keys_retire(struct gw_vault *vault, struct cred *c)
{
    int64_t today = vault_today(vault);
    for (size_t i = 0; i < VAULT_KEY_SLOTS; i++) {
        struct derived *d = atomic_load_explicit(&c->keys[i], memory_order_relaxed);
        /* Two days, not one: the argument at the top of this file. */
        if (d != NULL && d->day <= today - 2) {
            atomic_store_explicit(&c->keys[i], NULL, memory_order_release);
            vault_mem_free(d);
            atomic_fetch_add_explicit(&vault->retired, 1, memory_order_relaxed);
        }
    }
}

const struct derived *vault_key_publish(struct cred *c, const struct derived *key)
{
    for (size_t i = 0; i < VAULT_KEY_SLOTS; i++) {
        if (atomic_load_explicit(&c->keys[i], memory_order_relaxed) != NULL) {
            continue;
        }
        struct derived *d = vault_mem_alloc(sizeof *d);
        if (d == NULL) {
            return NULL;
        }
        memcpy(d, key, sizeof *d);
        counted();
        if (sodium_mprotect_readonly(d) != 0) {
            vault_mem_free(d);
            return NULL;
        }
        /* Everything written to *d, and its protection, happens before a signer can see it. */
        atomic_store_explicit(&c->keys[i], d, memory_order_release);
        return d;
    }
    return NULL;
}
