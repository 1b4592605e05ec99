/*
 * micro_vault: signatures per second of gw_vault_sign, on 1..N threads signing with one credential
 * at once (the share-nothing workers all sign with the gateway's credential).
 *
 *   micro_vault [--seconds S] [--threads N] [--days-ago D]
 *
 * Built by hand against a built tree (Release for figures worth quoting):
 *
 *   cc -std=c11 -O2 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -I gateway bench/micro_vault.c \
 *      build/libtcgw_core.a -lsodium -lcrypto -lmicrohttpd -lcurl -ljansson -lpthread \
 *      -o /tmp/micro_vault
 *
 * Prints one line per thread and a total:
 *
 *   micro_vault: threads=<n> sigs=<count> wall_s=<s> cpu_s=<s> sigs_per_cpu_s=<r>
 *                sigs_per_wall_s=<r>
 *
 * sigs_per_cpu_s divides by the CPU time the signing threads used (CLOCK_THREAD_CPUTIME_ID): a
 * per-core figure that other load on the machine does not lower, as long as the threads do not
 * wait on each other (a mutex that sleeps shows up as a lower sigs_per_wall_s instead).
 * Timestamps are today's (the cache serves the current date), one second apart from call to call
 * so that every string to sign differs; --days-ago D dates them D days back instead, which the
 * vault signs without its cache. The first signature is checked against gw_tc3_sign.
 * Exit status 1 when a signature fails.
 *
 * Instructions per signature, a figure that a busy machine does not blur:
 *
 *   valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out /tmp/micro_vault --seconds 2
 *   callgrind_annotate --tree=caller /tmp/cg.out | grep -B3 '\*  ???:gw_vault_sign'
 *
 * then gw_vault_sign's inclusive count from run() divided by its calls. Valgrind hides SHA-NI, so
 * under it OpenSSL hashes with its AVX2 code (about 2,000 instructions per 64-byte block; a
 * signature hashes 11 blocks with the request below); natively, with SHA-NI, far fewer.
 */
#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/errors.h"
#include "vault/tc3.h"
#include "vault/vault.h"

#define BODY "{\"ProxyId\": \"link-4ftf12sb\", \"Concurrent\": \"2\", \"Bandwidth\": \"10\"}"
#define SECRET_ID "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE"
#define SECRET_KEY "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE"
#define BATCH 256 /* signatures between two clock reads */
#define MAX_THREADS 64

struct worker {
    struct gw_vault *vault;
    int64_t day_start; /* today 00:00:00 UTC */
    int64_t span;      /* seconds of today so far, at least 1 */
    double seconds;
    unsigned long long sigs;
    double cpu_s;
    double wall_s;
    int failed;
    pthread_t thread;
};

static double now_s(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct gw_tc3_request request(int64_t timestamp)
{
    struct gw_tc3_request req = {
        .service = "gaap",
        .host = "gaap.tencentcloudapi.com",
        .timestamp = timestamp,
        .content_type = "application/json",
        .payload = (const unsigned char *)BODY,
        .payload_len = sizeof BODY - 1,
        .action = "ModifyProxyConfiguration",
    };
    return req;
}

static void *run(void *arg)
{
    struct worker *w = arg;
    struct gw_buf auth;
    gw_buf_init(&auth, GW_TC3_MAX_TEXT);
    double wall0 = now_s(CLOCK_MONOTONIC);
    double cpu0 = now_s(CLOCK_THREAD_CPUTIME_ID);
    unsigned long long i = 0;
    do {
        for (int b = 0; b < BATCH; b++, i++) {
            struct gw_tc3_request req = request(w->day_start + (int64_t)(i % (uint64_t)w->span));
            gw_buf_reset(&auth);
            if (gw_vault_sign(w->vault, "default", &req, &auth) != GW_OK || auth.len == 0) {
                w->failed = 1;
                goto out;
            }
        }
    } while (now_s(CLOCK_MONOTONIC) - wall0 < w->seconds);
out:
    w->cpu_s = now_s(CLOCK_THREAD_CPUTIME_ID) - cpu0;
    w->wall_s = now_s(CLOCK_MONOTONIC) - wall0;
    w->sigs = i;
    gw_buf_free(&auth);
    return NULL;
}

/* The vault's first signature must be Tencent's: the same bytes gw_tc3_sign gives. */
static int check_once(struct gw_vault *vault, int64_t timestamp)
{
    struct gw_tc3_request req = request(timestamp);
    struct gw_buf got, want;
    gw_buf_init(&got, GW_TC3_MAX_TEXT);
    gw_buf_init(&want, GW_TC3_MAX_TEXT);
    int bad = gw_vault_sign(vault, "default", &req, &got) != GW_OK ||
              gw_tc3_sign(SECRET_ID, (const unsigned char *)SECRET_KEY, sizeof SECRET_KEY - 1, &req,
                          &want) != GW_OK ||
              got.len != want.len || memcmp(got.data, want.data, got.len) != 0;
    gw_buf_free(&got);
    gw_buf_free(&want);
    return bad;
}

static struct gw_vault *open_vault(const char *dir)
{
    char key_path[256], store_path[256], msg[512];
    struct gw_vault *v = NULL;
    snprintf(key_path, sizeof key_path, "%s/master.key", dir);
    snprintf(store_path, sizeof store_path, "%s/credentials.store", dir);
    if (gw_vault_keygen(key_path, msg, sizeof msg) != GW_OK ||
        gw_vault_open(key_path, store_path, &v, msg, sizeof msg) != GW_OK) {
        fprintf(stderr, "micro_vault: %s\n", msg);
        return NULL;
    }
    unlink(key_path);
    if (gw_vault_put(v, "default", SECRET_ID, sizeof SECRET_ID - 1, SECRET_KEY,
                     sizeof SECRET_KEY - 1, msg, sizeof msg) != GW_OK) {
        fprintf(stderr, "micro_vault: %s\n", msg);
        gw_vault_free(v);
        return NULL;
    }
    return v;
}

int main(int argc, char **argv)
{
    double seconds = 3.0;
    unsigned threads = 1;
    long days_ago = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
            seconds = strtod(argv[++i], NULL);
        } else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
            threads = (unsigned)strtoul(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--days-ago") == 0 && i + 1 < argc) {
            days_ago = strtol(argv[++i], NULL, 10);
        } else {
            fprintf(stderr, "usage: micro_vault [--seconds S] [--threads N] [--days-ago D]\n");
            return 2;
        }
    }
    if (threads == 0 || threads > MAX_THREADS || !(seconds > 0) || days_ago < 0 ||
        days_ago > 3650) {
        fprintf(stderr, "micro_vault: --threads 1..%d, --seconds above 0, --days-ago 0..3650\n",
                MAX_THREADS);
        return 2;
    }
    if (sodium_init() < 0) {
        fprintf(stderr, "micro_vault: sodium_init failed\n");
        return 1;
    }
    char dir[] = "/tmp/micro-vault.XXXXXX";
    if (mkdtemp(dir) == NULL) {
        fprintf(stderr, "micro_vault: mkdtemp: %s\n", strerror(errno));
        return 1;
    }
    struct gw_vault *vault = open_vault(dir);
    rmdir(dir);
    if (vault == NULL) {
        return 1;
    }
    int64_t real_now = (int64_t)time(NULL);
    int64_t span = real_now % 86400 + 1;
    int64_t day_start = real_now - real_now % 86400 - (int64_t)days_ago * 86400;
    int64_t now = day_start + span - 1;
    if (check_once(vault, now) != 0) {
        fprintf(stderr, "micro_vault: the vault's signature differs from gw_tc3_sign\n");
        gw_vault_free(vault);
        return 1;
    }

    static struct worker workers[MAX_THREADS];
    for (unsigned t = 0; t < threads; t++) {
        workers[t] = (struct worker){
            .vault = vault, .day_start = day_start, .span = span, .seconds = seconds};
        if (pthread_create(&workers[t].thread, NULL, run, &workers[t]) != 0) {
            fprintf(stderr, "micro_vault: cannot start thread %u\n", t);
            return 1;
        }
    }
    unsigned long long sigs = 0;
    double cpu = 0, wall = 0;
    int failed = 0;
    for (unsigned t = 0; t < threads; t++) {
        struct worker *w = &workers[t];
        pthread_join(w->thread, NULL);
        printf("micro_vault: thread=%u sigs=%llu wall_s=%.3f cpu_s=%.3f sigs_per_cpu_s=%.0f\n", t,
               w->sigs, w->wall_s, w->cpu_s, (double)w->sigs / w->cpu_s);
        sigs += w->sigs;
        cpu += w->cpu_s;
        wall = w->wall_s > wall ? w->wall_s : wall;
        failed |= w->failed;
    }
    printf("micro_vault: threads=%u sigs=%llu wall_s=%.3f cpu_s=%.3f sigs_per_cpu_s=%.0f "
           "sigs_per_wall_s=%.0f\n",
           threads, sigs, wall, cpu, (double)sigs / cpu, (double)sigs / wall);
    gw_vault_free(vault);
    if (failed) {
        fprintf(stderr, "micro_vault: a signature failed\n");
        return 1;
    }
    return 0;
}
