#include "metrics/metrics.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "apispec/apispec.h"
#include "core/call.h"

#define CACHE_LINE 64
#define TABLE_CELLS (2 * GW_METRICS_MAX_SERIES) /* at most half full: short probes */
#define CODE_MAX 64
#define KNOWN_MAX (GW_CALL_SERVICE_MAX + 1 + GW_CALL_ACTION_MAX)
#define LIMIT_CODE "RequestLimitExceeded"

/* Upper bounds of the upstream latency histogram, in seconds (+Inf follows). */
static const double latency_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                        0.5,   1,    2.5,   5,    10,  30};
#define LATENCY_BUCKETS (sizeof latency_bounds / sizeof latency_bounds[0] + 1)

/* One label set of tcgw_calls_total. The key is written before used is published. */
struct series {
    _Atomic uint64_t count;
    _Atomic bool used;
    unsigned char decision; /* enum gw_decision */
    char service[GW_CALL_SERVICE_MAX + 1];
    char action[GW_CALL_ACTION_MAX + 1];
    char caller[GW_CALL_NAME_MAX + 1];
    char code[CODE_MAX + 1];
};

/* One worker's counters: written by that worker alone, read by scrapes. */
struct gw_metrics_slot {
    const struct gw_metrics *registry;
    size_t series_used; /* the writer's own count */
    struct series overflow;
    _Atomic uint64_t limit_refusals;
    _Atomic uint64_t retries;
    _Atomic uint64_t latency[LATENCY_BUCKETS];
    _Atomic uint64_t latency_sum_us;
    _Atomic int64_t skew_s;
    _Atomic int64_t skew_seen_at; /* 0: no Date seen */
    struct series table[TABLE_CELLS];
};

struct gw_metrics {
    unsigned count;
    struct gw_metrics_slot **slots;
    char **known; /* "service.Action", sorted */
    size_t known_count;
    char version[64];
};

/* ---- setup ------------------------------------------------------------------------------- */

struct known_list {
    char **names;
    size_t count, cap;
    bool failed;
};

static bool add_known(void *ctx, const char *service, const char *action)
{
    struct known_list *k = ctx;
    if (k->count == k->cap) {
        size_t cap = k->cap > 0 ? k->cap * 2 : 64;
        char **grown = realloc(k->names, cap * sizeof *grown);
        if (grown == NULL) {
            k->failed = true;
            return false;
        }
        k->names = grown;
        k->cap = cap;
    }
    char name[KNOWN_MAX + 2];
    snprintf(name, sizeof name, "%s.%s", service, action);
    if ((k->names[k->count] = strdup(name)) == NULL) {
        k->failed = true;
        return false;
    }
    k->count++;
    return true;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

enum gw_err gw_metrics_new(unsigned workers, const struct gw_apispec *spec, const char *version,
                           struct gw_metrics **out)
{
    enum gw_err err = GW_ERR_NOMEM;
    struct known_list k = {NULL, 0, 0, false};
    struct gw_metrics *m = calloc(1, sizeof *m);
    if (m == NULL || workers == 0 || (m->slots = calloc(workers, sizeof *m->slots)) == NULL) {
        err = m != NULL && workers == 0 ? GW_ERR_INVALID : GW_ERR_NOMEM;
        goto out;
    }
    m->count = workers;
    snprintf(m->version, sizeof m->version, "%s", version != NULL ? version : "unknown");
    /* Each slot on cache lines of its own: workers never write a line another one writes. */
    size_t size = (sizeof(struct gw_metrics_slot) + CACHE_LINE - 1) / CACHE_LINE * CACHE_LINE;
    for (unsigned i = 0; i < workers; i++) {
        if ((m->slots[i] = aligned_alloc(CACHE_LINE, size)) == NULL) {
            goto out;
        }
        memset(m->slots[i], 0, size);
        m->slots[i]->registry = m;
    }
    if (spec != NULL) {
        gw_apispec_each_action(spec, add_known, &k);
        if (k.failed) {
            goto out;
        }
        if (k.count > 0) {
            qsort(k.names, k.count, sizeof *k.names, compare_names);
        }
    }
    m->known = k.names;
    m->known_count = k.count;
    k.names = NULL;
    k.count = 0;
    *out = m;
    m = NULL;
    err = GW_OK;
out:
    for (size_t i = 0; i < k.count; i++) {
        free(k.names[i]);
    }
    free(k.names);
    gw_metrics_free(m);
    return err;
}

void gw_metrics_free(struct gw_metrics *m)
{
    if (m == NULL) {
        return;
    }
    for (unsigned i = 0; m->slots != NULL && i < m->count; i++) {
        free(m->slots[i]);
    }
    for (size_t i = 0; i < m->known_count; i++) {
        free(m->known[i]);
    }
    free(m->known);
    free(m->slots);
    free(m);
}

struct gw_metrics_slot *gw_metrics_slot(struct gw_metrics *m, unsigned i)
{
    return i < m->count ? m->slots[i] : NULL;
}

/* ---- counting (a worker's thread) -------------------------------------------------------- */

/* The single writer's increment: no read-modify-write instruction, no lock. */
static void bump(_Atomic uint64_t *c, uint64_t by)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + by,
                          memory_order_relaxed);
}

static bool is_known(const struct gw_metrics *m, const char *service, const char *action)
{
    char name[KNOWN_MAX + 2];
    const char *key = name;
    if (service[0] == '\0' || action[0] == '\0' || m->known_count == 0) {
        return false;
    }
    snprintf(name, sizeof name, "%s.%s", service, action);
    return bsearch(&key, m->known, m->known_count, sizeof *m->known, compare_names) != NULL;
}

/* The first n-byte needle in [p, end), or NULL. */
static const char *find(const char *p, const char *end, const char *needle, size_t n)
{
    for (; p + n <= end; p++) {
        if (memcmp(p, needle, n) == 0) {
            return p;
        }
    }
    return NULL;
}

/* Tencent's error code in an upstream answer ("OK" when none), copied only if it looks like one. */
static void upstream_code(const char *body, size_t len, char code[CODE_MAX + 1])
{
    static const char error_key[] = "\"Error\"";
    static const char code_key[] = "\"Code\"";
    snprintf(code, CODE_MAX + 1, "OK");
    if (body == NULL) {
        return;
    }
    const char *end = body + len;
    const char *e = find(body, end, error_key, sizeof error_key - 1);
    if (e == NULL) {
        return;
    }
    const char *c = find(e, end, code_key, sizeof code_key - 1);
    if (c == NULL) {
        return;
    }
    c += sizeof code_key - 1;
    while (c < end && (*c == ' ' || *c == ':' || *c == '\t' || *c == '\n' || *c == '\r')) {
        c++;
    }
    if (c == end || *c != '"') {
        return;
    }
    c++;
    size_t n = 0;
    while (c + n < end && n < CODE_MAX &&
           ((c[n] >= 'A' && c[n] <= 'Z') || (c[n] >= 'a' && c[n] <= 'z') ||
            (c[n] >= '0' && c[n] <= '9') || c[n] == '.' || c[n] == '_')) {
        n++;
    }
    if (n > 0 && c + n < end && c[n] == '"') {
        memcpy(code, c, n);
        code[n] = '\0';
    } else {
        snprintf(code, CODE_MAX + 1, "other");
    }
}

static uint64_t hash_key(const struct series *k)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    const char *parts[] = {k->service, k->action, k->caller, k->code};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        for (const char *c = parts[i]; *c != '\0'; c++) {
            h = (h ^ (unsigned char)*c) * 1099511628211ULL;
        }
        h = (h ^ 0xff) * 1099511628211ULL;
    }
    return (h ^ k->decision) * 1099511628211ULL;
}

static bool same_key(const struct series *a, const struct series *b)
{
    return a->decision == b->decision && strcmp(a->service, b->service) == 0 &&
           strcmp(a->action, b->action) == 0 && strcmp(a->caller, b->caller) == 0 &&
           strcmp(a->code, b->code) == 0;
}

/* The series of key in the slot: found, claimed, or the overflow series once the slot is full. */
static struct series *series_of(struct gw_metrics_slot *s, const struct series *key)
{
    size_t i = (size_t)(hash_key(key) % TABLE_CELLS);
    for (size_t probe = 0; probe < TABLE_CELLS; probe++, i = (i + 1) % TABLE_CELLS) {
        struct series *e = &s->table[i];
        if (!atomic_load_explicit(&e->used, memory_order_relaxed)) {
            if (s->series_used >= GW_METRICS_MAX_SERIES) {
                break;
            }
            e->decision = key->decision;
            memcpy(e->service, key->service, sizeof e->service);
            memcpy(e->action, key->action, sizeof e->action);
            memcpy(e->caller, key->caller, sizeof e->caller);
            memcpy(e->code, key->code, sizeof e->code);
            atomic_store_explicit(&e->used, true, memory_order_release);
            s->series_used++;
            return e;
        }
        if (same_key(e, key)) {
            return e;
        }
    }
    if (!atomic_load_explicit(&s->overflow.used, memory_order_relaxed)) {
        strcpy(s->overflow.service, "other");
        strcpy(s->overflow.action, "other");
        strcpy(s->overflow.caller, "other");
        strcpy(s->overflow.code, "other");
        atomic_store_explicit(&s->overflow.used, true, memory_order_release);
    }
    return &s->overflow;
}

static bool reached(const struct timespec *t)
{
    return t->tv_sec != 0 || t->tv_nsec != 0;
}

void gw_metrics_record_at(struct gw_metrics_slot *s, const struct gw_call *call, int64_t now)
{
    struct series key;
    memset(&key, 0, sizeof key);
    bool known = is_known(s->registry, call->service, call->action);
    snprintf(key.service, sizeof key.service, "%s", known ? call->service : "other");
    snprintf(key.action, sizeof key.action, "%s", known ? call->action : "other");
    snprintf(key.caller, sizeof key.caller, "%s", call->caller[0] != '\0' ? call->caller : "none");
    key.decision = (unsigned char)call->decision;
    if (call->error_code != NULL) {
        snprintf(key.code, sizeof key.code, "%s", call->error_code);
    } else if (call->outcome == GW_UPSTREAM_ANSWERED) {
        upstream_code(call->reply.body, call->reply.len, key.code);
    } else {
        snprintf(key.code, sizeof key.code, "OK");
    }
    bump(&series_of(s, &key)->count, 1);

    if (call->error_code != NULL && strcmp(call->error_code, LIMIT_CODE) == 0 &&
        !reached(&call->times.upstream_start)) {
        bump(&s->limit_refusals, 1);
    }
    if (call->retry.attempts > 1) {
        bump(&s->retries, call->retry.attempts - 1);
    }
    if (reached(&call->times.upstream_start) && reached(&call->times.upstream_end)) {
        double ms = gw_call_ms(&call->times.upstream_start, &call->times.upstream_end);
        size_t b = 0;
        while (b < LATENCY_BUCKETS - 1 && ms > latency_bounds[b] * 1000.0) {
            b++;
        }
        bump(&s->latency[b], 1);
        bump(&s->latency_sum_us, ms > 0 ? (uint64_t)(ms * 1000.0) : 0);
    }
    if (call->upstream_date > 0) {
        atomic_store_explicit(&s->skew_s, call->upstream_date - now, memory_order_relaxed);
        atomic_store_explicit(&s->skew_seen_at, now, memory_order_relaxed);
    }
}

void gw_metrics_record(const struct gw_call *call, void *slot)
{
    gw_metrics_record_at(slot, call, (int64_t)time(NULL));
}

bool gw_metrics_clock_skew(const struct gw_metrics *m, int64_t *skew_s, int64_t *seen_at)
{
    bool found = false;
    for (unsigned i = 0; i < m->count; i++) {
        int64_t at = atomic_load_explicit(&m->slots[i]->skew_seen_at, memory_order_relaxed);
        if (at > 0 && (!found || at > *seen_at)) {
            *seen_at = at;
            *skew_s = atomic_load_explicit(&m->slots[i]->skew_s, memory_order_relaxed);
            found = true;
        }
    }
    return found;
}

/* ---- exposition (any thread) ------------------------------------------------------------- */

static const char *decision_label(unsigned char d)
{
    return d == GW_DECISION_ALLOW ? "allow" : d == GW_DECISION_DENY ? "deny" : "none";
}

static int compare_series(const void *a, const void *b)
{
    const struct series *x = *(const struct series *const *)a;
    const struct series *y = *(const struct series *const *)b;
    int c;
    if ((c = strcmp(x->service, y->service)) != 0 || (c = strcmp(x->action, y->action)) != 0 ||
        (c = strcmp(x->caller, y->caller)) != 0 || (c = strcmp(x->code, y->code)) != 0) {
        return c;
    }
    return (int)x->decision - (int)y->decision;
}

/* A label value as the text format wants it: backslash, double quote and newline escaped. */
static enum gw_err put_label(struct gw_buf *out, const char *name, const char *value, bool first)
{
    enum gw_err err;
    if ((err = gw_buf_printf(out, "%s%s=\"", first ? "" : ",", name)) != GW_OK) {
        return err;
    }
    for (const char *c = value; *c != '\0'; c++) {
        const char *esc = *c == '\\' ? "\\\\" : *c == '"' ? "\\\"" : *c == '\n' ? "\\n" : NULL;
        if ((err = esc != NULL ? gw_buf_append(out, esc, 2) : gw_buf_append(out, c, 1)) != GW_OK) {
            return err;
        }
    }
    return gw_buf_append(out, "\"", 1);
}

static enum gw_err put_calls(const struct gw_metrics *m, struct gw_buf *out)
{
    enum gw_err err;
    size_t cap = (size_t)m->count * (GW_METRICS_MAX_SERIES + 1), n = 0;
    const struct series **all = malloc(cap * sizeof *all);
    uint64_t *counts = malloc(cap * sizeof *counts);
    if (all == NULL || counts == NULL) {
        err = GW_ERR_NOMEM;
        goto out;
    }
    for (unsigned w = 0; w < m->count; w++) {
        const struct gw_metrics_slot *s = m->slots[w];
        for (size_t i = 0; i <= TABLE_CELLS && n < cap; i++) {
            const struct series *e = i < TABLE_CELLS ? &s->table[i] : &s->overflow;
            if (atomic_load_explicit(&e->used, memory_order_acquire)) {
                all[n++] = e;
            }
        }
    }
    if (n > 0) {
        qsort(all, n, sizeof *all, compare_series);
    }
    /* Equal label sets of several workers add up into one sample. */
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t c = atomic_load_explicit(&((struct series *)all[i])->count, memory_order_relaxed);
        if (kept > 0 && compare_series(&all[kept - 1], &all[i]) == 0) {
            counts[kept - 1] += c;
            continue;
        }
        all[kept] = all[i];
        counts[kept++] = c;
    }
    if ((err = gw_buf_printf(out, "# HELP tcgw_calls_total Calls answered, by service, action, "
                                  "caller, policy decision and result code.\n"
                                  "# TYPE tcgw_calls_total counter\n")) != GW_OK) {
        goto out;
    }
    for (size_t i = 0; i < kept; i++) {
        const struct series *e = all[i];
        if ((err = gw_buf_printf(out, "tcgw_calls_total{")) != GW_OK ||
            (err = put_label(out, "service", e->service, true)) != GW_OK ||
            (err = put_label(out, "action", e->action, false)) != GW_OK ||
            (err = put_label(out, "caller", e->caller, false)) != GW_OK ||
            (err = put_label(out, "decision", decision_label(e->decision), false)) != GW_OK ||
            (err = put_label(out, "code", e->code, false)) != GW_OK ||
            (err = gw_buf_printf(out, "} %llu\n", (unsigned long long)counts[i])) != GW_OK) {
            goto out;
        }
    }
    err = GW_OK;
out:
    free(all);
    free(counts);
    return err;
}

static uint64_t sum_over(const struct gw_metrics *m, size_t offset)
{
    uint64_t total = 0;
    for (unsigned w = 0; w < m->count; w++) {
        const char *base = (const char *)m->slots[w];
        total += atomic_load_explicit((_Atomic uint64_t *)(uintptr_t)(base + offset),
                                      memory_order_relaxed);
    }
    return total;
}

static enum gw_err put_one(struct gw_buf *out, const char *name, const char *type, const char *help,
                           uint64_t value)
{
    return gw_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help, name, type, name,
                         (unsigned long long)value);
}

static enum gw_err put_latency(const struct gw_metrics *m, struct gw_buf *out)
{
    enum gw_err err;
    uint64_t cumulative = 0;
    if ((err = gw_buf_printf(out, "# HELP tcgw_upstream_latency_seconds Time from handing a call "
                                  "to the upstream to its outcome.\n"
                                  "# TYPE tcgw_upstream_latency_seconds histogram\n")) != GW_OK) {
        return err;
    }
    for (size_t b = 0; b < LATENCY_BUCKETS; b++) {
        cumulative +=
            sum_over(m, offsetof(struct gw_metrics_slot, latency) + b * sizeof(_Atomic uint64_t));
        if (b < LATENCY_BUCKETS - 1) {
            err = gw_buf_printf(out, "tcgw_upstream_latency_seconds_bucket{le=\"%g\"} %llu\n",
                                latency_bounds[b], (unsigned long long)cumulative);
        } else {
            err = gw_buf_printf(out, "tcgw_upstream_latency_seconds_bucket{le=\"+Inf\"} %llu\n",
                                (unsigned long long)cumulative);
        }
        if (err != GW_OK) {
            return err;
        }
    }
    uint64_t sum_us = sum_over(m, offsetof(struct gw_metrics_slot, latency_sum_us));
    return gw_buf_printf(out,
                         "tcgw_upstream_latency_seconds_sum %.6f\n"
                         "tcgw_upstream_latency_seconds_count %llu\n",
                         (double)sum_us / 1e6, (unsigned long long)cumulative);
}

enum gw_err gw_metrics_format(const struct gw_metrics *m, const struct gw_metrics_gauges *g,
                              struct gw_buf *out)
{
    enum gw_err err;
    int64_t skew = 0, seen = 0;
    if ((err = gw_buf_printf(out,
                             "# HELP tcgw_build_info The gateway's version.\n"
                             "# TYPE tcgw_build_info gauge\n"
                             "tcgw_build_info{version=\"%s\"} 1\n",
                             m->version)) != GW_OK ||
        (err = put_calls(m, out)) != GW_OK ||
        (err = put_one(out, "tcgw_limit_refusals_total", "counter",
                       "Calls refused with RequestLimitExceeded by the gateway's rate limits.",
                       sum_over(m, offsetof(struct gw_metrics_slot, limit_refusals)))) != GW_OK ||
        (err = put_latency(m, out)) != GW_OK ||
        (err = put_one(out, "tcgw_upstream_retries_total", "counter",
                       "Attempts made again to the upstream (safe retries).",
                       sum_over(m, offsetof(struct gw_metrics_slot, retries)))) != GW_OK ||
        (err = put_one(out, "tcgw_calls_in_flight", "gauge",
                       "Calls waiting for the upstream or for their audit record.",
                       g->in_flight)) != GW_OK ||
        (err = put_one(out, "tcgw_ready", "gauge", "1 when /readyz answers 200.",
                       g->ready ? 1 : 0)) != GW_OK ||
        (err = put_one(out, "tcgw_access_generation", "gauge",
                       "Generation of the callers and policies in force (each reload adds one).",
                       g->access_generation)) != GW_OK) {
        return err;
    }
    if (gw_metrics_clock_skew(m, &skew, &seen) &&
        (err = gw_buf_printf(out,
                             "# HELP tcgw_clock_skew_seconds The Date of the last upstream answer "
                             "minus this host's clock.\n"
                             "# TYPE tcgw_clock_skew_seconds gauge\n"
                             "tcgw_clock_skew_seconds %lld\n",
                             (long long)skew)) != GW_OK) {
        return err;
    }
    if (g->shared_limits >= 0 &&
        (err = put_one(out, "tcgw_limits_shared_up", "gauge",
                       "1 while every worker reaches the Redis server of the shared limits.",
                       (uint64_t)g->shared_limits)) != GW_OK) {
        return err;
    }
    if (g->audit &&
        ((err = put_one(out, "tcgw_audit_records_total", "counter",
                        "Call records committed to the audit log.", g->audit_records)) != GW_OK ||
         (err = put_one(out, "tcgw_audit_fsyncs_total", "counter",
                        "Write and fdatasync rounds that committed records (group commits).",
                        g->audit_batches)) != GW_OK ||
         (err = put_one(out, "tcgw_audit_max_batch_records", "gauge",
                        "Most records committed by one fdatasync.", g->audit_max_batch)) != GW_OK ||
         (err = put_one(out, "tcgw_audit_failures_total", "counter",
                        "Audit write rounds that failed.", g->audit_failures)) != GW_OK ||
         (err = put_one(out, "tcgw_audit_unrecorded_total", "counter",
                        "Calls handed back without their record written.", g->audit_unrecorded)) !=
             GW_OK ||
         (err = put_one(out, "tcgw_audit_lost_total", "counter",
                        "Records dropped from the backlog while the disk failed.",
                        g->audit_lost)) != GW_OK ||
         (err = put_one(out, "tcgw_audit_queue_records", "gauge",
                        "Records handed to the audit writer and not yet on disk.",
                        g->audit_queued)) != GW_OK)) {
        return err;
    }
    return GW_OK;
}
