/*
 * tcgw-bench-micro: microbenchmarks of the gateway's hot functions, linked against tcgw_core.
 *
 *   tcgw-bench-micro [--seconds S] [--threads N] [--spec-dir DIR] [--only NAME[,NAME...]]
 *
 * Each benchmark calls one public function in a loop for about S seconds (default 2) on each of
 * N threads (default 1) and prints one line per benchmark:
 *
 *   micro: <name> threads=<n> ops=<count> wall_s=<s> cpu_s=<s> ops_per_cpu_s=<r> ops_per_wall_s=<r>
 *
 * ops_per_cpu_s divides by the CPU time the benchmark's threads used (CLOCK_THREAD_CPUTIME_ID),
 * so it is a per-core figure that other load on a shared machine does not lower; ops_per_wall_s
 * is the aggregate over the threads. Benchmarks:
 *
 *   tc3_full         gw_tc3_derive_key + gw_tc3_string_to_sign + gw_tc3_signature: a whole TC3
 *                    signature with the key derived each time (what a signer without cache does)
 *   tc3_cached_key   gw_tc3_string_to_sign + gw_tc3_signature with a derived key reused
 *   vault_sign       gw_vault_sign (the gateway's signing stage: derived-key cache, key memory
 *                    made readable for the HMACs and no-access again, Authorization header)
 *   vault_sign_resident  the same with gw_vault_keep_resident (no mprotect per signature), where
 *                    the vault still has that function
 *   apispec_check    gw_apispec_check of the seed ModifyProxyConfiguration call against DIR
 *   json_parse_check json_loadb of the seed body + gw_apispec_check + json_decref
 *
 * The vault uses a throwaway master key in a temporary directory and Tencent's documented
 * example credential. Exit status 1 when a function fails.
 */
#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "apispec/apispec.h"
#include "core/buf.h"
#include "core/errors.h"
#include "vault/tc3.h"
#include "vault/vault.h"

#define SEED_BODY "{\"ProxyId\": \"link-4ftf12sb\", \"Concurrent\": \"2\", \"Bandwidth\": \"10\"}"
#define DEV_SECRET_ID "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE"
#define DEV_SECRET_KEY "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE"
#define BATCH 64 /* operations between two clock reads */

struct ctx {
    struct gw_vault *vault;
    struct gw_vault *vault_resident;
    struct gw_apispec *spec;
    json_t *params;
};

struct worker {
    const struct ctx *ctx;
    int (*fn)(const struct ctx *ctx, unsigned long long i);
    double seconds;
    unsigned long long ops;
    double cpu_s;
    int failed;
    pthread_t thread;
};

static double now_s(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t base_time; /* set once in main: a second of today, UTC */

static struct gw_tc3_request seed_request(unsigned long long i)
{
    struct gw_tc3_request req = {
        .service = "gaap",
        .host = "gaap.tencentcloudapi.com",
        /*
         * Today (the vault caches derived keys for today and tomorrow only, as the gateway signs
         * with the current time), one second apart from call to call within the same day: every
         * string to sign differs, the derived key does not.
         */
        .timestamp = base_time + (int64_t)(i % 60),
        .content_type = "application/json",
        .payload = (const unsigned char *)SEED_BODY,
        .payload_len = sizeof SEED_BODY - 1,
        .action = NULL,
    };
    return req;
}

static int bench_tc3_full(const struct ctx *ctx, unsigned long long i)
{
    (void)ctx;
    struct gw_tc3_request req = seed_request(i);
    char date[GW_TC3_DATE_LEN + 1];
    unsigned char key[GW_TC3_KEY_LEN];
    char sig[GW_TC3_HEX_LEN + 1];
    struct gw_buf sts;
    gw_buf_init(&sts, GW_TC3_MAX_TEXT);
    int rc = gw_tc3_date(req.timestamp, date) != GW_OK ||
             gw_tc3_derive_key((const unsigned char *)DEV_SECRET_KEY, sizeof DEV_SECRET_KEY - 1,
                               date, req.service, key) != GW_OK ||
             gw_tc3_string_to_sign(&req, &sts) != GW_OK ||
             gw_tc3_signature(key, sts.data, sts.len, sig) != GW_OK;
    gw_buf_free(&sts);
    sodium_memzero(key, sizeof key);
    return rc;
}

static int bench_tc3_cached_key(const struct ctx *ctx, unsigned long long i)
{
    (void)ctx;
    static _Thread_local unsigned char key[GW_TC3_KEY_LEN];
    static _Thread_local int have_key;
    struct gw_tc3_request req = seed_request(i);
    char sig[GW_TC3_HEX_LEN + 1];
    if (!have_key) {
        char date[GW_TC3_DATE_LEN + 1];
        if (gw_tc3_date(req.timestamp, date) != GW_OK ||
            gw_tc3_derive_key((const unsigned char *)DEV_SECRET_KEY, sizeof DEV_SECRET_KEY - 1,
                              date, req.service, key) != GW_OK) {
            return 1;
        }
        have_key = 1;
    }
    struct gw_buf sts;
    gw_buf_init(&sts, GW_TC3_MAX_TEXT);
    int rc = gw_tc3_string_to_sign(&req, &sts) != GW_OK ||
             gw_tc3_signature(key, sts.data, sts.len, sig) != GW_OK;
    gw_buf_free(&sts);
    return rc;
}

static int vault_sign_with(struct gw_vault *vault, unsigned long long i)
{
    struct gw_tc3_request req = seed_request(i);
    struct gw_buf auth;
    gw_buf_init(&auth, GW_TC3_MAX_TEXT);
    int rc = gw_vault_sign(vault, "default", &req, &auth) != GW_OK || auth.len == 0;
    gw_buf_free(&auth);
    return rc;
}

static int bench_vault_sign(const struct ctx *ctx, unsigned long long i)
{
    return vault_sign_with(ctx->vault, i);
}

#ifdef TCGW_BENCH_HAVE_KEEP_RESIDENT
static int bench_vault_sign_resident(const struct ctx *ctx, unsigned long long i)
{
    return vault_sign_with(ctx->vault_resident, i);
}
#endif

static int bench_apispec_check(const struct ctx *ctx, unsigned long long i)
{
    (void)i;
    struct gw_apispec_verdict verdict;
    return !gw_apispec_check(ctx->spec, "gaap", "2018-05-29", "ModifyProxyConfiguration",
                             ctx->params, &verdict);
}

static int bench_json_parse_check(const struct ctx *ctx, unsigned long long i)
{
    (void)i;
    struct gw_apispec_verdict verdict;
    json_error_t jerr;
    json_t *params = json_loadb(SEED_BODY, sizeof SEED_BODY - 1, JSON_REJECT_DUPLICATES, &jerr);
    if (params == NULL) {
        return 1;
    }
    int rc = !gw_apispec_check(ctx->spec, "gaap", "2018-05-29", "ModifyProxyConfiguration",
                               params, &verdict);
    json_decref(params);
    return rc;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    double cpu0 = now_s(CLOCK_THREAD_CPUTIME_ID);
    double end = now_s(CLOCK_MONOTONIC) + w->seconds;
    unsigned long long i = 0;
    do {
        for (int b = 0; b < BATCH; b++, i++) {
            if (w->fn(w->ctx, i) != 0) {
                w->failed = 1;
                goto out;
            }
        }
    } while (now_s(CLOCK_MONOTONIC) < end);
out:
    w->ops = i;
    w->cpu_s = now_s(CLOCK_THREAD_CPUTIME_ID) - cpu0;
    return NULL;
}

static int run(const char *name, int (*fn)(const struct ctx *, unsigned long long),
               const struct ctx *ctx, double seconds, unsigned threads)
{
    struct worker w[64];
    if (threads < 1 || threads > 64) {
        return 1;
    }
    /* A short warm-up outside the measure: caches, the derived-key cache, lazy allocations. */
    for (unsigned long long i = 0; i < 100; i++) {
        if (fn(ctx, i) != 0) {
            fprintf(stderr, "tcgw-bench-micro: %s failed\n", name);
            return 1;
        }
    }
    double wall0 = now_s(CLOCK_MONOTONIC);
    for (unsigned t = 0; t < threads; t++) {
        w[t] = (struct worker){.ctx = ctx, .fn = fn, .seconds = seconds};
        if (pthread_create(&w[t].thread, NULL, worker_main, &w[t]) != 0) {
            return 1;
        }
    }
    unsigned long long ops = 0;
    double cpu = 0.0;
    int failed = 0;
    for (unsigned t = 0; t < threads; t++) {
        pthread_join(w[t].thread, NULL);
        ops += w[t].ops;
        cpu += w[t].cpu_s;
        failed |= w[t].failed;
    }
    double wall = now_s(CLOCK_MONOTONIC) - wall0;
    if (failed) {
        fprintf(stderr, "tcgw-bench-micro: %s failed\n", name);
        return 1;
    }
    printf("micro: %s threads=%u ops=%llu wall_s=%.3f cpu_s=%.3f ops_per_cpu_s=%.0f "
           "ops_per_wall_s=%.0f\n",
           name, threads, ops, wall, cpu, cpu > 0 ? (double)ops / cpu : 0.0,
           wall > 0 ? (double)ops / wall : 0.0);
    fflush(stdout);
    return 0;
}

static int wanted(const char *only, const char *name)
{
    if (only == NULL) {
        return 1;
    }
    size_t n = strlen(name);
    for (const char *p = only; (p = strstr(p, name)) != NULL; p += n) {
        if ((p == only || p[-1] == ',') && (p[n] == '\0' || p[n] == ',')) {
            return 1;
        }
    }
    return 0;
}

static bool keep_resident(struct gw_vault *v)
{
#ifdef TCGW_BENCH_HAVE_KEEP_RESIDENT
    return gw_vault_keep_resident(v) == GW_OK;
#else
    (void)v;
    return false;
#endif
}

static struct gw_vault *open_vault(const char *dir, const char *tag, int resident)
{
    char key_path[4200], store_path[4200], msg[512];
    struct gw_vault *v = NULL;
    snprintf(key_path, sizeof key_path, "%s/%s.key", dir, tag);
    snprintf(store_path, sizeof store_path, "%s/%s.store", dir, tag);
    if (gw_vault_keygen(key_path, msg, sizeof msg) != GW_OK ||
        gw_vault_open(key_path, store_path, &v, msg, sizeof msg) != GW_OK) {
        fprintf(stderr, "tcgw-bench-micro: vault: %s\n", msg);
        return NULL;
    }
    if (gw_vault_put(v, "default", DEV_SECRET_ID, sizeof DEV_SECRET_ID - 1, DEV_SECRET_KEY,
                     sizeof DEV_SECRET_KEY - 1, msg, sizeof msg) != GW_OK ||
        (resident && !keep_resident(v))) {
        fprintf(stderr, "tcgw-bench-micro: vault: %s\n", msg);
        gw_vault_free(v);
        return NULL;
    }
    unlink(key_path);
    return v;
}

int main(int argc, char **argv)
{
    double seconds = 2.0;
    unsigned threads = 1;
    const char *spec_dir = "specs";
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
            seconds = strtod(argv[++i], NULL);
        } else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
            threads = (unsigned)strtoul(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--spec-dir") == 0 && i + 1 < argc) {
            spec_dir = argv[++i];
        } else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc) {
            only = argv[++i];
        } else {
            fprintf(stderr,
                    "usage: tcgw-bench-micro [--seconds S] [--threads N] [--spec-dir DIR] "
                    "[--only NAME,...]\n");
            return 2;
        }
    }
    time_t now = time(NULL);
    base_time = (int64_t)now - (int64_t)(now % 86400); /* midnight UTC */
    base_time += (int64_t)(now % 86400) < 86400 - 120 ? (int64_t)(now % 86400) : 0;
    if (sodium_init() < 0) {
        fprintf(stderr, "tcgw-bench-micro: sodium_init failed\n");
        return 1;
    }
    char dir[] = "/tmp/tcgw-bench-micro.XXXXXX";
    if (mkdtemp(dir) == NULL) {
        fprintf(stderr, "tcgw-bench-micro: mkdtemp: %s\n", strerror(errno));
        return 1;
    }
    struct ctx ctx = {0};
    char msg[GW_APISPEC_MSG_MAX] = "";
    json_error_t jerr;
    int rc = 1;
    ctx.vault = open_vault(dir, "noaccess", 0);
#ifdef TCGW_BENCH_HAVE_KEEP_RESIDENT
    ctx.vault_resident = open_vault(dir, "resident", 1);
    if (ctx.vault_resident == NULL) {
        goto out;
    }
#endif
    if (ctx.vault == NULL) {
        goto out;
    }
    if (gw_apispec_load_dir(spec_dir, &ctx.spec, msg, sizeof msg) != GW_OK) {
        fprintf(stderr, "tcgw-bench-micro: specs: %s\n", msg);
        goto out;
    }
    ctx.params = json_loadb(SEED_BODY, sizeof SEED_BODY - 1, JSON_REJECT_DUPLICATES, &jerr);
    if (ctx.params == NULL) {
        goto out;
    }
    static const struct {
        const char *name;
        int (*fn)(const struct ctx *, unsigned long long);
    } benches[] = {
        {"tc3_full", bench_tc3_full},
        {"tc3_cached_key", bench_tc3_cached_key},
        {"vault_sign", bench_vault_sign},
#ifdef TCGW_BENCH_HAVE_KEEP_RESIDENT
        {"vault_sign_resident", bench_vault_sign_resident},
#endif
        {"apispec_check", bench_apispec_check},
        {"json_parse_check", bench_json_parse_check},
    };
    rc = 0;
    for (size_t b = 0; b < sizeof benches / sizeof benches[0]; b++) {
        if (wanted(only, benches[b].name)) {
            rc |= run(benches[b].name, benches[b].fn, &ctx, seconds, threads);
        }
    }
out:
    json_decref(ctx.params);
    gw_apispec_free(ctx.spec);
    gw_vault_free(ctx.vault);
    gw_vault_free(ctx.vault_resident);
    rmdir(dir);
    return rc;
}
