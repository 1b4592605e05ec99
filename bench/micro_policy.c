/*
 * micro_policy: decisions per second of gw_policy_decide, for a policy of 1 statement and of 100.
 *
 *   tcgw-bench-micro-policy [--seconds S]
 *
 * Built with the project (bench/CMakeLists.txt: <build>/bench/tcgw-bench-micro-policy), or by hand
 * against a built tree (Release for figures worth quoting):
 *
 *   cc -std=c11 -O2 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -I gateway bench/micro_policy.c \
 *      build/libtcgw_core.a -lsodium -lcrypto -lmicrohttpd -lcurl -ljansson -lpthread \
 *      -o /tmp/micro_policy
 *
 * The call is the seed ModifyProxyConfiguration of the other benchmarks, its integers sent as
 * strings. Three sets, written to a temporary directory and loaded as the gateway loads them:
 *
 *   1        capacity-bot's resize statement alone (three conditions, one _if_exist)
 *   100      99 statements that name the action but whose string_like on ProxyId fails, then
 *            resize: every statement is evaluated, the worst case for 100
 *   100-other  99 statements for other actions, then resize: the action check skips them
 *
 * Each line:
 *
 *   micro_policy: set=<name> statements=<n> decisions=<count> wall_s=<s> cpu_s=<s>
 *                 decisions_per_cpu_s=<r> decisions_per_wall_s=<r>
 *
 * decisions_per_cpu_s divides by the CPU time of the deciding thread (CLOCK_THREAD_CPUTIME_ID),
 * a per-core figure that other load on the machine does not lower. Exit status 1 when a set fails
 * to load or a decision is not the expected allow.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/errors.h"
#include "policy/policy.h"

#define BODY "{\"ProxyId\": \"link-4ftf12sb\", \"Concurrent\": \"2\", \"Bandwidth\": \"10\"}"
#define BATCH 1024 /* decisions between two clock reads */

#define RESIZE                                                                                     \
    "{\"sid\": \"resize\", \"effect\": \"allow\", \"action\": "                                    \
    "[\"gaap:ModifyProxyConfiguration\"], \"resource\": [\"*\"], \"condition\": {"                 \
    "\"string_like\": {\"gaap:ProxyId\": [\"link-*\"]}, "                                          \
    "\"numeric_less_than_equal\": {\"gaap:Bandwidth\": 100, \"gaap:Concurrent\": 10}, "            \
    "\"numeric_equal_if_exist\": {\"gaap:BillingType\": 0}}}"

static double now_s(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Writes "<dir>/<name>.json": n - 1 filler statements (naming the action or not), then resize. */
static int write_policy(const char *dir, const char *name, int n, int filler_names_action)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.json", dir, name);
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        fprintf(stderr, "micro_policy: %s: %s\n", path, strerror(errno));
        return -1;
    }
    fprintf(f, "{\"version\": \"2.0\", \"statement\": [\n");
    for (int i = 1; i < n; i++) {
        if (filler_names_action) {
            fprintf(f,
                    "{\"sid\": \"f%d\", \"effect\": \"allow\", \"action\": "
                    "\"gaap:ModifyProxyConfiguration\", \"resource\": \"*\", \"condition\": "
                    "{\"string_like\": {\"gaap:ProxyId\": \"link-%04d*\"}, "
                    "\"numeric_less_than_equal\": {\"gaap:Bandwidth\": %d}}},\n",
                    i, i, i);
        } else {
            fprintf(f,
                    "{\"sid\": \"f%d\", \"effect\": \"allow\", \"action\": \"gaap:Describe%d*\", "
                    "\"resource\": \"*\"},\n",
                    i, i);
        }
    }
    fprintf(f, "%s]}\n", RESIZE);
    return fclose(f) == 0 ? 0 : -1;
}

static int run(const struct gw_policy_set *set, const char *name, int statements, double seconds,
               const json_t *params)
{
    const struct gw_policy *p = gw_policy_set_find(set, name);
    struct gw_policy_request req = {.service = "gaap",
                                    .action = "ModifyProxyConfiguration",
                                    .region = "ap-guangzhou",
                                    .params = params,
                                    .caller = "capacity-bot",
                                    .caller_attributes = NULL,
                                    .peer = "10.0.0.1"};
    struct gw_policy_decision d;
    if (p == NULL) {
        fprintf(stderr, "micro_policy: no policy %s\n", name);
        return 1;
    }
    gw_policy_decide(&p, 1, &req, &d, NULL);
    if (d.decision != GW_DECISION_ALLOW || strcmp(d.statement + strlen(name), ".json#resize")) {
        fprintf(stderr, "micro_policy: %s: expected an allow by resize, got %s\n", name, d.reason);
        return 1;
    }
    unsigned long long count = 0;
    unsigned allowed = 0;
    double wall0 = now_s(CLOCK_MONOTONIC), cpu0 = now_s(CLOCK_THREAD_CPUTIME_ID), wall = wall0;
    while (wall - wall0 < seconds) {
        for (int i = 0; i < BATCH; i++) {
            gw_policy_decide(&p, 1, &req, &d, NULL);
            allowed += d.decision == GW_DECISION_ALLOW;
        }
        count += BATCH;
        wall = now_s(CLOCK_MONOTONIC);
    }
    double cpu = now_s(CLOCK_THREAD_CPUTIME_ID) - cpu0;
    wall -= wall0;
    if (allowed != (unsigned)count) {
        fprintf(stderr, "micro_policy: %s: a decision changed\n", name);
        return 1;
    }
    printf("micro_policy: set=%s statements=%d decisions=%llu wall_s=%.3f cpu_s=%.3f "
           "decisions_per_cpu_s=%.0f decisions_per_wall_s=%.0f\n",
           name, statements, count, wall, cpu, (double)count / cpu, (double)count / wall);
    return 0;
}

int main(int argc, char **argv)
{
    double seconds = 2;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
            seconds = strtod(argv[++i], NULL);
        } else {
            fprintf(stderr, "usage: micro_policy [--seconds S]\n");
            return 2;
        }
    }
    if (!(seconds > 0 && seconds < 3600)) {
        fprintf(stderr, "micro_policy: --seconds above 0\n");
        return 2;
    }
    int rc = 1;
    char dir[] = "/tmp/tcgw-micro-policy-XXXXXX", msg[512] = "";
    struct gw_policy_set *set = NULL;
    json_t *params = json_loads(BODY, 0, NULL);
    if (mkdtemp(dir) == NULL || params == NULL) {
        fprintf(stderr, "micro_policy: mkdtemp: %s\n", strerror(errno));
        json_decref(params);
        return 1;
    }
    if (write_policy(dir, "1", 1, 1) != 0 || write_policy(dir, "100", 100, 1) != 0 ||
        write_policy(dir, "100-other", 100, 0) != 0) {
        goto out;
    }
    if (gw_policy_set_load(dir, NULL, &set, msg, sizeof msg) != GW_OK) {
        fprintf(stderr, "micro_policy: %s\n", msg);
        goto out;
    }
    rc = run(set, "1", 1, seconds, params) || run(set, "100", 100, seconds, params) ||
         run(set, "100-other", 100, seconds, params);
out:
    gw_policy_set_free(set);
    json_decref(params);
    const char *names[] = {"1", "100", "100-other"};
    for (size_t i = 0; i < 3; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s.json", dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
    return rc;
}
