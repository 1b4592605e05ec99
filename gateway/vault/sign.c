/*
 * sign: TC3 signatures with a credential. A signature with a cached signing key takes no lock and
 * changes no memory protection (keymem.c explains how that stays safe). A miss takes the
 * credential's lock and opens its secret only to derive the key (and, for a key that is not
 * cached, to sign with it there).
 */
#include <string.h>

#include "vault/vault_int.h"

/*
 * Hit and miss counters: each thread counts into a shard of its own (threads share a shard only
 * beyond VAULT_STAT_SHARDS), so signers on different cores do not fight over one cache line.
 */
static _Atomic unsigned next_shard;
static _Thread_local unsigned my_shard; /* shard + 1; 0 until the thread's first count */

static void count(struct gw_vault *vault, bool hit)
{
    if (my_shard == 0) {
        unsigned n = atomic_fetch_add_explicit(&next_shard, 1, memory_order_relaxed);
        my_shard = n % VAULT_STAT_SHARDS + 1;
    }
    struct vault_stat_shard *sh = &vault->stats[my_shard - 1];
    atomic_fetch_add_explicit(hit ? &sh->hits : &sh->misses, 1, memory_order_relaxed);
}

void gw_vault_cache_stats(const struct gw_vault *vault, uint64_t *hits, uint64_t *misses)
{
    uint64_t h = 0, m = 0;
    for (size_t i = 0; vault != NULL && i < VAULT_STAT_SHARDS; i++) {
        h += atomic_load_explicit(&vault->stats[i].hits, memory_order_relaxed);
        m += atomic_load_explicit(&vault->stats[i].misses, memory_order_relaxed);
    }
    *hits = h;
    *misses = m;
}

/* Appends the Authorization value for sts, signed with d, to auth. */
static enum gw_err sign_with(const struct derived *d, const struct gw_tc3_request *req,
                             const struct gw_buf *sts, struct gw_buf *auth)
{
    enum gw_err err;
    char sig[GW_TC3_HEX_LEN + 1];
    if ((err = gw_tc3_signature(d->key, sts->data, sts->len, sig)) != GW_OK) {
        return err;
    }
    return gw_tc3_authorization(d->id, req, sig, auth);
}

/*
 * The path of a miss, under c's lock: derives the key for (day, service) and publishes it when
 * it is cacheable and a slot is free; otherwise signs with it here and wipes it.
 */
static enum gw_err sign_locked(struct gw_vault *vault, struct cred *c, bool cacheable, int64_t day,
                               const char *date, const struct gw_tc3_request *req,
                               const struct gw_buf *sts, struct gw_buf *auth)
{
    enum gw_err err;
    struct secret *s;
    const struct derived *use = NULL;

    pthread_mutex_lock(&c->lock);
    /* Another signer may have published it while this one waited for the lock. */
    if (cacheable && (use = vault_key_find(c, day, req->service)) != NULL) {
        pthread_mutex_unlock(&c->lock);
        count(vault, true);
        return sign_with(use, req, sts, auth);
    }
    count(vault, false);
    vault_keys_retire(vault, c);
    if ((err = vault_secret_open(c, true, &s)) != GW_OK) {
        goto out;
    }
    if ((err = vault_key_derive(s, day, date, req->service)) == GW_OK &&
        (!cacheable || (use = vault_key_publish(c, &s->scratch)) == NULL)) {
        /* Not for the cache: a key for this signature alone. */
        err = sign_with(&s->scratch, req, sts, auth);
    }
    sodium_memzero(&s->scratch, sizeof s->scratch);
    vault_secret_close(c);
out:
    pthread_mutex_unlock(&c->lock);
    if (use != NULL) {
        /* Published, so safe to use after the unlock exactly as a hit is. */
        err = sign_with(use, req, sts, auth);
    }
    return err;
}

enum gw_err gw_vault_sign(struct gw_vault *vault, const char *name,
                          const struct gw_tc3_request *req, struct gw_buf *out)
{
    enum gw_err err;
    struct cred *c;
    const struct derived *d;
    char date[GW_TC3_DATE_LEN + 1];
    struct gw_buf sts, auth;
    gw_buf_init(&sts, GW_TC3_MAX_TEXT);
    gw_buf_init(&auth, GW_TC3_MAX_TEXT);

    if (vault == NULL || name == NULL || req == NULL || out == NULL) {
        return GW_ERR_INVALID;
    }
    if ((c = vault_find(vault, name)) == NULL) {
        return GW_ERR_NOT_FOUND;
    }
    /* Also checks the service and the timestamp (1970..9999), so day is not negative. */
    if ((err = gw_tc3_string_to_sign(req, &sts)) != GW_OK ||
        (err = gw_tc3_date(req->timestamp, date)) != GW_OK) {
        goto out;
    }
    int64_t day = req->timestamp / VAULT_DAY_SECONDS;
    /*
     * Read before the key is looked up, and only today's and tomorrow's keys come from the cache:
     * the condition under which keymem.c never frees a key a signer still uses. Older or later
     * dates (a clock far off, a replayed timestamp) are signed correctly, only without the cache.
     */
    int64_t today = vault_today(vault);
    bool cacheable = day >= today && day <= today + 1;

    if (cacheable && (d = vault_key_find(c, day, req->service)) != NULL) {
        count(vault, true);
        err = sign_with(d, req, &sts, &auth);
    } else {
        err = sign_locked(vault, c, cacheable, day, date, req, &sts, &auth);
    }
    if (err != GW_OK) {
        goto out;
    }
    /* Appended only once complete, so out is unchanged on failure. */
    err = gw_buf_append(out, auth.data, auth.len);
out:
    gw_buf_free(&sts);
    gw_buf_free(&auth);
    return err;
}
