#include "limits/limits.h"

#include <math.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/call.h"

#define DEFAULT_BUCKETS ((size_t)1 << 16)
#define MAX_BUCKETS ((size_t)1 << 24)
#define MAX_PROBES 64 /* cells looked at for one key before the table counts as full */
#define NS_PER_S 1000000000.0

/* One bucket: its key (0: free) and its theoretical arrival time (0: full). */
struct cell {
    _Atomic uint64_t key;
    _Atomic int64_t tat;
};

struct rule {
    char *name;
    double rate, burst;
};

struct rules {
    struct rule *v;
    size_t n;
};

struct gw_limits {
    double default_rate, default_burst;
    struct rules actions, services, callers;
    bool fair_share;
    unsigned char hash_key[crypto_shorthash_KEYBYTES];
    size_t mask;
    struct cell *cells;
};

/* Tencent Cloud's published per-account limits that differ from the default, per action. */
static const struct {
    const char *service, *action;
    double rate;
} published[] = {
    {"gaap", "ModifyProxyConfiguration", 20},
};

int64_t gw_limits_interval_ns(double rate)
{
    double t = NS_PER_S / rate;
    return t < 1 ? 1 : (int64_t)t;
}

static bool valid_rate(double rate, double burst)
{
    return isfinite(rate) && rate > 0 && rate <= GW_LIMITS_MAX_RATE && isfinite(burst) &&
           (burst == 0 || (burst >= 1 && burst <= GW_LIMITS_MAX_RATE * 3600));
}

static void rules_free(struct rules *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->v[i].name);
    }
    free(r->v);
}

static enum gw_err rules_copy(const struct gw_limits_rate *from, size_t n, struct rules *to)
{
    if (n > GW_LIMITS_MAX_RULES) {
        return GW_ERR_INVALID;
    }
    if (n == 0) {
        return GW_OK;
    }
    if ((to->v = calloc(n, sizeof *to->v)) == NULL) {
        return GW_ERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        if (from[i].name == NULL || !valid_rate(from[i].rate, from[i].burst)) {
            return GW_ERR_INVALID;
        }
        if ((to->v[i].name = strdup(from[i].name)) == NULL) {
            return GW_ERR_NOMEM;
        }
        to->n = i + 1;
        to->v[i].rate = from[i].rate;
        to->v[i].burst = from[i].burst;
    }
    return GW_OK;
}

enum gw_err gw_limits_new(const struct gw_limits_options *o, struct gw_limits **out)
{
    enum gw_err err;
    struct gw_limits *l = calloc(1, sizeof *l);
    if (l == NULL) {
        return GW_ERR_NOMEM;
    }
    l->default_rate = o->default_rate > 0 ? o->default_rate : GW_LIMITS_DEFAULT_RATE;
    l->default_burst = o->default_burst;
    l->fair_share = o->fair_share;
    if (!valid_rate(l->default_rate, l->default_burst) || o->max_buckets > MAX_BUCKETS) {
        err = GW_ERR_INVALID;
        goto out;
    }
    if ((err = rules_copy(o->actions, o->action_count, &l->actions)) != GW_OK ||
        (err = rules_copy(o->services, o->service_count, &l->services)) != GW_OK ||
        (err = rules_copy(o->callers, o->caller_count, &l->callers)) != GW_OK) {
        goto out;
    }
    size_t want = o->max_buckets > 0 ? o->max_buckets : DEFAULT_BUCKETS;
    size_t size = MAX_PROBES;
    while (size < want) {
        size <<= 1;
    }
    l->mask = size - 1;
    if ((l->cells = calloc(size, sizeof *l->cells)) == NULL) {
        err = GW_ERR_NOMEM;
        goto out;
    }
    randombytes_buf(l->hash_key, sizeof l->hash_key);
    *out = l;
    l = NULL;
    err = GW_OK;
out:
    gw_limits_free(l);
    return err;
}

void gw_limits_free(struct gw_limits *l)
{
    if (l == NULL) {
        return;
    }
    rules_free(&l->actions);
    rules_free(&l->services);
    rules_free(&l->callers);
    free(l->cells);
    free(l);
}

/* ---- rules ------------------------------------------------------------------------------- */

static const struct rule *find(const struct rules *r, const char *a, const char *b)
{
    size_t la = strlen(a);
    for (size_t i = 0; i < r->n; i++) {
        const char *name = r->v[i].name;
        if (b == NULL
                ? strcmp(name, a) == 0
                : strncmp(name, a, la) == 0 && name[la] == '.' && strcmp(name + la + 1, b) == 0) {
            return &r->v[i];
        }
    }
    return NULL;
}

static double burst_of(double rate, double burst)
{
    double b = burst > 0 ? burst : rate;
    return b < 1 ? 1 : b;
}

void gw_limits_rule(const struct gw_limits *l, const struct gw_limits_request *r, double scale,
                    struct gw_limits_rule *out)
{
    double rate = l->default_rate, burst = l->default_burst;
    const struct rule *rule = find(&l->actions, r->service, r->action);
    if (rule == NULL) {
        rule = find(&l->services, r->service, NULL);
    }
    if (rule != NULL) {
        rate = rule->rate;
        burst = rule->burst;
    } else {
        for (size_t i = 0; i < sizeof published / sizeof published[0]; i++) {
            if (strcmp(published[i].service, r->service) == 0 &&
                strcmp(published[i].action, r->action) == 0) {
                rate = published[i].rate;
                burst = 0;
            }
        }
    }
    memset(out, 0, sizeof *out);
    out->rate = rate * scale;
    out->burst = burst_of(out->rate, burst * scale);
    size_t n = r->sharer_count > 0 ? r->sharer_count : 1;
    if (l->fair_share && n > 1) {
        out->share_rate = out->rate / (double)n;
        out->share_burst = burst_of(out->share_rate, out->burst / (double)n);
    } else {
        out->share_rate = out->rate;
        out->share_burst = out->burst;
    }
    const struct rule *quota = find(&l->callers, r->caller, NULL);
    if (quota != NULL) {
        out->quota_rate = quota->rate * scale;
        out->quota_burst = burst_of(out->quota_rate, quota->burst * scale);
    }
}

/* ---- the table --------------------------------------------------------------------------- */

/* The bucket named by the parts (NUL-separated, so "a" "bc" and "ab" "c" differ), or NULL. */
static struct cell *lookup(struct gw_limits *l, char kind, const char *const *parts, size_t n)
{
    /* Every part is a bounded name of the call (GW_CALL_*_MAX): the key always fits. */
    char key[1 + 4 * (GW_CALL_ACTION_MAX + 1) + 8];
    size_t len = 0;
    key[len++] = kind;
    for (size_t i = 0; i < n; i++) {
        size_t pl = strnlen(parts[i], GW_CALL_ACTION_MAX);
        memcpy(key + len, parts[i], pl);
        len += pl;
        key[len++] = '\0';
    }
    uint64_t h;
    crypto_shorthash((unsigned char *)&h, (const unsigned char *)key, len, l->hash_key);
    h = h == 0 ? 1 : h;
    for (size_t probe = 0; probe < MAX_PROBES; probe++) {
        struct cell *c = &l->cells[(h + probe) & l->mask];
        uint64_t k = atomic_load_explicit(&c->key, memory_order_acquire);
        if (k == h) {
            return c;
        }
        if (k == 0) {
            uint64_t expected = 0;
            if (atomic_compare_exchange_strong(&c->key, &expected, h) || expected == h) {
                return c;
            }
        }
    }
    return NULL;
}

struct bucket {
    struct cell *cell;
    int64_t interval, tolerance;
};

static void bucket_set(struct bucket *b, struct cell *c, double rate, double burst)
{
    b->cell = c;
    b->interval = gw_limits_interval_ns(rate);
    b->tolerance = (int64_t)((burst - 1) * (double)b->interval);
}

/* GCRA: takes one token at now, or says after how long one will be there. */
static bool bucket_take(const struct bucket *b, int64_t now, int64_t *retry)
{
    int64_t tat = atomic_load_explicit(&b->cell->tat, memory_order_relaxed);
    for (;;) {
        int64_t base = tat > now ? tat : now;
        if (base - now > b->tolerance) {
            *retry = base - b->tolerance - now;
            return false;
        }
        if (atomic_compare_exchange_weak(&b->cell->tat, &tat, base + b->interval)) {
            return true;
        }
    }
}

/* Takes one token only from a full bucket (one whose owner left it unused). */
static bool bucket_borrow(const struct bucket *b, int64_t now)
{
    int64_t tat = atomic_load_explicit(&b->cell->tat, memory_order_relaxed);
    while (tat <= now) {
        if (atomic_compare_exchange_weak(&b->cell->tat, &tat, now + b->interval)) {
            return true;
        }
    }
    return false;
}

static void bucket_give_back(const struct bucket *b)
{
    atomic_fetch_sub(&b->cell->tat, b->interval);
}

/* Borrows one token from another sharer's idle share; returns whether it found one. */
static bool borrow(struct gw_limits *l, const struct gw_limits_request *r,
                   const struct gw_limits_rule *rule, int64_t now, struct bucket *lent)
{
    size_t n = r->sharer_count < GW_LIMITS_MAX_SHARERS ? r->sharer_count : GW_LIMITS_MAX_SHARERS;
    /* Start at a different sharer each time, so no idle share is always drained first. */
    size_t start = (size_t)now % (n > 0 ? n : 1);
    for (size_t j = 0; j < n; j++) {
        const char *other = r->sharers[(start + j) % n];
        if (strcmp(other, r->caller) == 0) {
            continue;
        }
        const char *parts[] = {r->credential, r->service, r->action, other};
        struct cell *c = lookup(l, 's', parts, 4);
        if (c == NULL) {
            continue;
        }
        bucket_set(lent, c, rule->share_rate, rule->share_burst);
        if (bucket_borrow(lent, now)) {
            return true;
        }
    }
    return false;
}

bool gw_limits_take(struct gw_limits *l, const struct gw_limits_request *r, double scale,
                    int64_t now_ns, struct gw_limits_verdict *v)
{
    memset(v, 0, sizeof *v);
    gw_limits_rule(l, r, scale, &v->rule);
    const struct gw_limits_rule *rule = &v->rule;
    bool sharing = rule->share_rate < rule->rate;
    struct bucket quota = {0}, share = {0}, cap = {0};
    const char *quota_parts[] = {r->caller};
    const char *share_parts[] = {r->credential, r->service, r->action, r->caller};
    const char *cap_parts[] = {r->credential, r->service, r->action};
    struct cell *qc = rule->quota_rate > 0 ? lookup(l, 'q', quota_parts, 1) : NULL;
    struct cell *sc = sharing ? lookup(l, 's', share_parts, 4) : NULL;
    struct cell *cc = lookup(l, 'c', cap_parts, 3);
    if ((rule->quota_rate > 0 && qc == NULL) || (sharing && sc == NULL) || cc == NULL) {
        v->refused = GW_LIMITS_FULL;
        v->retry_ns = (int64_t)NS_PER_S;
        return false;
    }
    if (qc != NULL) {
        bucket_set(&quota, qc, rule->quota_rate, rule->quota_burst);
        if (!bucket_take(&quota, now_ns, &v->retry_ns)) {
            v->refused = GW_LIMITS_QUOTA;
            return false;
        }
    }
    if (sc != NULL) {
        bucket_set(&share, sc, rule->share_rate, rule->share_burst);
        if (!bucket_take(&share, now_ns, &v->retry_ns)) {
            if (!borrow(l, r, rule, now_ns, &share)) {
                v->refused = GW_LIMITS_SHARE;
                goto refused;
            }
            v->borrowed = true;
        }
    }
    bucket_set(&cap, cc, rule->rate, rule->burst);
    if (!bucket_take(&cap, now_ns, &v->retry_ns)) {
        v->refused = GW_LIMITS_CAP;
        if (share.cell != NULL) {
            bucket_give_back(&share);
        }
        goto refused;
    }
    return true;
refused:
    if (quota.cell != NULL) {
        bucket_give_back(&quota);
    }
    return false;
}
