/*
 * keymem: the memory that holds key bytes. Only this file allocates it or changes its protection:
 * the master key, each credential's SecretId and SecretKey with the signing keys derived from it,
 * and the store's plaintext while it is built or parsed.
 *
 * Key memory is sodium_malloc'ed (guard pages, locked in RAM, excluded from core dumps, wiped when
 * freed) and no-access at rest, so a stray read between uses faults instead of leaking.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vault/vault_int.h"

void *vault_mem_alloc(size_t n)
{
    return sodium_malloc(n);
}

void vault_mem_free(void *p)
{
    sodium_free(p); /* makes the region writable, zeroes it, unmaps it; accepts NULL */
}

/*
 * Key memory goes back to no-access after every use. If the kernel refuses, keys would stay
 * readable: that is not a state to run on, so the process stops.
 */
void vault_mem_noaccess(void *p)
{
    if (sodium_mprotect_noaccess(p) != 0) {
        fputs("tcgw: cannot make key memory inaccessible again; stopping\n", stderr);
        abort();
    }
}

/* Stops the process if the memory cannot be made readable: the read would fault anyway. */
void vault_mem_readonly(void *p)
{
    if (sodium_mprotect_readonly(p) != 0) {
        fputs("tcgw: cannot make key memory readable; stopping\n", stderr);
        abort();
    }
}

/* Fills a writable secret with the given values and an empty cache. */
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

struct cred *vault_cred_new(const struct gw_vault *vault, const char *name, const char *id,
                            size_t id_len, const char *key, size_t key_len)
{
    struct cred *c = calloc(1, sizeof *c);
    if (c == NULL) {
        return NULL;
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
    if (!vault->resident) {
        vault_mem_noaccess(c->sec);
    }
    return c;
}

enum gw_err vault_cred_set(const struct gw_vault *vault, struct cred *c, const char *id,
                           size_t id_len, const char *key, size_t key_len)
{
    struct secret *s = vault_cred_open(vault, c);
    if (s == NULL) {
        return GW_ERR_INTERNAL;
    }
    /* A fresh secret also empties the cache: keys derived from the old key must not sign. */
    secret_fill(s, id, id_len, key, key_len);
    make_tail(id, id_len, c->id_tail);
    vault_cred_close(vault, c);
    return GW_OK;
}

void vault_cred_free(struct cred *c)
{
    if (c == NULL) {
        return;
    }
    vault_mem_free(c->sec);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

struct secret *vault_cred_open(const struct gw_vault *vault, struct cred *c)
{
    pthread_mutex_lock(&c->lock);
    if (!vault->resident && sodium_mprotect_readwrite(c->sec) != 0) {
        pthread_mutex_unlock(&c->lock);
        return NULL;
    }
    return c->sec;
}

void vault_cred_close(const struct gw_vault *vault, struct cred *c)
{
    if (!vault->resident) {
        vault_mem_noaccess(c->sec);
    }
    pthread_mutex_unlock(&c->lock);
}

enum gw_err vault_cache_key(struct gw_vault *vault, struct secret *s, const char *date,
                            const char *service, const unsigned char **key)
{
    enum gw_err err;
    size_t service_len = strlen(service);
    struct cache_slot *victim = &s->cache[0];

    s->tick++;
    for (size_t i = 0; i < VAULT_CACHE_SLOTS; i++) {
        struct cache_slot *slot = &s->cache[i];
        if (slot->last_used != 0 && strcmp(slot->date, date) == 0 &&
            strcmp(slot->service, service) == 0) {
            slot->last_used = s->tick;
            atomic_fetch_add_explicit(&vault->hits, 1, memory_order_relaxed);
            *key = slot->key;
            return GW_OK;
        }
        if (slot->last_used < victim->last_used) {
            victim = slot;
        }
    }
    atomic_fetch_add_explicit(&vault->misses, 1, memory_order_relaxed);
    /* gw_tc3_string_to_sign has checked the service, so it fits the slot. */
    if (service_len > GW_TC3_MAX_SERVICE) {
        return GW_ERR_INVALID;
    }
    sodium_memzero(victim, sizeof *victim);
    if ((err = gw_tc3_derive_key(s->key, s->key_len, date, service, victim->key)) != GW_OK) {
        return err;
    }
    memcpy(victim->date, date, GW_TC3_DATE_LEN + 1);
    memcpy(victim->service, service, service_len + 1);
    victim->last_used = s->tick;
    *key = victim->key;
    return GW_OK;
}

void gw_vault_cache_stats(const struct gw_vault *vault, uint64_t *hits, uint64_t *misses)
{
    *hits = vault == NULL ? 0 : atomic_load(&vault->hits);
    *misses = vault == NULL ? 0 : atomic_load(&vault->misses);
}

enum gw_err gw_vault_keep_resident(struct gw_vault *vault)
{
    for (size_t i = 0; i < vault->count; i++) {
        if (sodium_mprotect_readwrite(vault->creds[i]->sec) != 0) {
            for (size_t j = 0; j < i; j++) {
                vault_mem_noaccess(vault->creds[j]->sec);
            }
            return GW_ERR_INTERNAL;
        }
    }
    vault->resident = true;
    return GW_OK;
}
