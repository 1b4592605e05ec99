/*
 * sign: TC3 signatures with a credential, and checks of the signatures callers make with their
 * caller keys: the same computation with the same derived-key cache. A use of a cached signing
 * key takes no lock and changes no memory protection (keymem.c explains how that stays safe). A
 * miss takes the entry's lock and opens its secret only to derive the key (and, for a key that is
 * not cached, to use it there).
 */
#include <string.h>

#include "core/text.h"
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

/* ---- A signing key, from the cache or derived ---- */

/* What is done with a signing key: sign a request, or check a signature. */
typedef enum gw_err (*key_use_fn)(const struct derived *d, void *arg);

/*
 * The path of a miss, under c's lock: derives the key for (day, service) and publishes it when
 * it is cacheable and a slot is free; otherwise uses it here and wipes it.
 */
static enum gw_err use_key_locked(struct gw_vault *vault, struct cred *c, bool cacheable,
                                  int64_t day, const char *date, const char *service,
                                  key_use_fn use, void *arg)
{
    enum gw_err err;
    struct secret *s;
    const struct derived *published = NULL;

    pthread_mutex_lock(&c->lock);
    /* Another thread may have published it while this one waited for the lock. */
    if (cacheable && (published = vault_key_find(c, day, service)) != NULL) {
        pthread_mutex_unlock(&c->lock);
        count(vault, true);
        return use(published, arg);
    }
    count(vault, false);
    vault_keys_retire(vault, c);
    if ((err = vault_secret_open(c, true, &s)) != GW_OK) {
        goto out;
    }
    if ((err = vault_key_derive(s, day, date, service)) == GW_OK &&
        (!cacheable || (published = vault_key_publish(c, &s->scratch)) == NULL)) {
        /* Not for the cache: a key for this use alone. */
        err = use(&s->scratch, arg);
    }
    sodium_memzero(&s->scratch, sizeof s->scratch);
    vault_secret_close(c);
out:
    pthread_mutex_unlock(&c->lock);
    if (published != NULL) {
        /* Published, so safe to use after the unlock exactly as a hit is. */
        err = use(published, arg);
    }
    return err;
}

/*
 * Calls use with c's signing key for (day, date, service): the cached one when there is one,
 * else a derived one. date is day's "YYYY-MM-DD" and service has been checked.
 */
static enum gw_err use_key(struct gw_vault *vault, struct cred *c, int64_t day, const char *date,
                           const char *service, key_use_fn use, void *arg)
{
    const struct derived *d;
    /*
     * Read before the key is looked up, and only today's and tomorrow's keys come from the cache:
     * the condition under which keymem.c never frees a key a signer still uses. Older or later
     * dates (a clock far off, a replayed timestamp) are served correctly, only without the cache.
     */
    int64_t today = vault_today(vault);
    bool cacheable = day >= today && day <= today + 1;

    if (cacheable && (d = vault_key_find(c, day, service)) != NULL) {
        count(vault, true);
        return use(d, arg);
    }
    return use_key_locked(vault, c, cacheable, day, date, service, use, arg);
}

/* ---- Signing with a credential ---- */

struct signing {
    const struct gw_tc3_request *req;
    const struct gw_buf *sts;
    struct gw_buf *auth;
};

/* Appends the Authorization value for the string to sign, signed with d, to auth. */
static enum gw_err sign_with(const struct derived *d, void *arg)
{
    const struct signing *sg = arg;
    enum gw_err err;
    char sig[GW_TC3_HEX_LEN + 1];
    if ((err = gw_tc3_signature(d->key, sg->sts->data, sg->sts->len, sig)) != GW_OK) {
        return err;
    }
    return gw_tc3_authorization(d->id, sg->req, sig, sg->auth);
}

enum gw_err gw_vault_sign_token(struct gw_vault *vault, const char *name,
                                const struct gw_tc3_request *req, struct gw_buf *out,
                                struct gw_buf *token)
{
    enum gw_err err;
    struct cred *c;
    char date[GW_TC3_DATE_LEN + 1];
    struct gw_buf sts, auth;
    gw_buf_init(&sts, GW_TC3_MAX_TEXT);
    gw_buf_init(&auth, GW_TC3_MAX_TEXT);

    if (vault == NULL || name == NULL || req == NULL || out == NULL) {
        return GW_ERR_INVALID;
    }
    /* Credentials only: a caller key never signs a call to Tencent Cloud. */
    if ((c = vault_find(vault, GW_VAULT_CREDENTIAL, name)) == NULL) {
        return GW_ERR_NOT_FOUND;
    }
    if (c->type == GW_VAULT_ROLE) {
        /* The keys installed last (role.c: why they stay valid while this call uses them). */
        if ((c = vault_role_current(c->role)) == NULL) {
            return GW_ERR_EXPIRED;
        }
    }
    if (c->type == GW_VAULT_TEMPORARY) {
        if (token == NULL) {
            return GW_ERR_INVALID;
        }
        /* Refused before use: Tencent would refuse it anyway, after the call had travelled. */
        if (vault->now() >= c->expires - GW_VAULT_EXPIRY_MARGIN) {
            return GW_ERR_EXPIRED;
        }
    }
    /* Also checks the service and the timestamp (1970..9999), so day is not negative. */
    if ((err = gw_tc3_string_to_sign(req, &sts)) != GW_OK ||
        (err = gw_tc3_date(req->timestamp, date)) != GW_OK) {
        goto out;
    }
    struct signing sg = {req, &sts, &auth};
    err = use_key(vault, c, req->timestamp / VAULT_DAY_SECONDS, date, req->service, sign_with, &sg);
    if (err != GW_OK) {
        goto out;
    }
    /* Room for both first, so that neither out nor token changes on failure. */
    if ((err = gw_buf_reserve(out, auth.len)) != GW_OK ||
        (c->token != NULL && (err = gw_buf_reserve(token, c->token_len)) != GW_OK) ||
        (err = gw_buf_append(out, auth.data, auth.len)) != GW_OK) {
        goto out;
    }
    if (c->token != NULL) {
        /* Read-only key memory, valid as long as c (role.c): no lock, no protection change. */
        err = gw_buf_append(token, c->token, c->token_len);
    }
out:
    gw_buf_free(&sts);
    gw_buf_free(&auth);
    return err;
}

enum gw_err gw_vault_sign(struct gw_vault *vault, const char *name,
                          const struct gw_tc3_request *req, struct gw_buf *out)
{
    return gw_vault_sign_token(vault, name, req, out, NULL);
}

/* ---- Checking a caller's signature ---- */

struct checking {
    const char *sts;
    size_t sts_len;
    const char *signature; /* GW_TC3_HEX_LEN characters, checked */
    const char *secret_id;
    size_t secret_id_len; /* at most GW_VAULT_MAX_SECRET_ID + 1 */
};

/*
 * 0 when (given, n) is d's SecretId, else not 0. The bytes are compared in constant time, over
 * the SecretId's length whatever n is (a different length is a mismatch too, decided after).
 */
static int id_differs(const struct derived *d, const char *given, size_t n)
{
    char padded[GW_VAULT_MAX_SECRET_ID];
    memset(padded, 0, sizeof padded);
    memcpy(padded, given, n < sizeof padded ? n : sizeof padded);
    int differs = sodium_memcmp(padded, d->id, d->id_len) != 0;
    return differs | (n != d->id_len);
}

/* GW_OK when the signature made with d over the string to sign, and the SecretId, both match. */
static enum gw_err check_with(const struct derived *d, void *arg)
{
    const struct checking *ck = arg;
    enum gw_err err;
    char want[GW_TC3_HEX_LEN + 1];
    if ((err = gw_tc3_signature(d->key, ck->sts, ck->sts_len, want)) != GW_OK) {
        return err;
    }
    /* Both compared, whatever the first gave: no early exit. */
    int sig_differs = sodium_memcmp(want, ck->signature, GW_TC3_HEX_LEN) != 0;
    int ids_differ = id_differs(d, ck->secret_id, ck->secret_id_len);
    /* The right signature for a text the caller chose: worth nothing to keep. */
    sodium_memzero(want, sizeof want);
    return (sig_differs | ids_differ) == 0 ? GW_OK : GW_ERR_CRYPTO;
}

/*
 * Day number (days since 1970-01-01) of a "YYYY-MM-DD" date, or -1 when it is malformed, not a
 * real date (2025-02-30), or outside what gw_tc3_date writes (1970..9999).
 */
static int64_t day_of(const char *date)
{
    char again[GW_TC3_DATE_LEN + 1];
    int64_t y = 0, m = 0, d = 0;
    if (strnlen(date, GW_TC3_DATE_LEN + 1) != GW_TC3_DATE_LEN) {
        return -1;
    }
    for (size_t i = 0; i < GW_TC3_DATE_LEN; i++) {
        char ch = date[i];
        if (i == 4 || i == 7) {
            if (ch != '-') {
                return -1;
            }
            continue;
        }
        if (ch < '0' || ch > '9') {
            return -1;
        }
        int64_t *field = i < 4 ? &y : i < 7 ? &m : &d;
        *field = *field * 10 + (ch - '0');
    }
    if (m < 1 || m > 12 || d < 1 || d > 31) {
        return -1;
    }
    /* Days from the civil date (the proleptic Gregorian calendar), as in Hinnant's algorithms. */
    int64_t ya = y - (m <= 2);
    int64_t era = (ya >= 0 ? ya : ya - 399) / 400;
    int64_t yoe = ya - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    int64_t day = era * 146097 + doe - 719468;
    /* Back to a date: a day past the month's end (or a year out of range) does not come back. */
    if (day < 0 || gw_tc3_date(day * VAULT_DAY_SECONDS, again) != GW_OK ||
        memcmp(again, date, GW_TC3_DATE_LEN) != 0) {
        return -1;
    }
    return day;
}

/* A service name as the credential scope holds it: 1..GW_TC3_MAX_SERVICE of [A-Za-z0-9._-]. */
static bool service_valid(const char *service)
{
    size_t n = strnlen(service, GW_TC3_MAX_SERVICE + 1);
    return n > 0 && n <= GW_TC3_MAX_SERVICE && gw_text_all_in(service, n, GW_TEXT_ALNUM "._-");
}

enum gw_err gw_vault_verify(struct gw_vault *vault, const char *caller, const char *secret_id,
                            const char *date, const char *service, const char *string_to_sign,
                            size_t string_to_sign_len, const char signature[GW_TC3_HEX_LEN + 1])
{
    struct cred *c;
    int64_t day;

    if (vault == NULL || caller == NULL || secret_id == NULL || date == NULL || service == NULL ||
        string_to_sign == NULL || signature == NULL) {
        return GW_ERR_INVALID;
    }
    /* Caller keys only: a credential never stands for a caller. */
    if ((c = vault_find(vault, GW_VAULT_CALLER_KEY, caller)) == NULL) {
        return GW_ERR_NOT_FOUND;
    }
    if ((day = day_of(date)) < 0 || !service_valid(service) ||
        string_to_sign_len > GW_TC3_MAX_TEXT) {
        return GW_ERR_INVALID;
    }
    /* A signature's length is no secret: one of another length cannot match. */
    if (strnlen(signature, GW_TC3_HEX_LEN + 1) != GW_TC3_HEX_LEN) {
        return GW_ERR_CRYPTO;
    }
    struct checking ck = {
        .sts = string_to_sign,
        .sts_len = string_to_sign_len,
        .signature = signature,
        .secret_id = secret_id,
        .secret_id_len = strnlen(secret_id, GW_VAULT_MAX_SECRET_ID + 1),
    };
    return use_key(vault, c, day, date, service, check_with, &ck);
}
