/*
 * micro_limits: the cost of the limit stage's local check, gw_limits_take, per call.
 *
 *   tcgw-bench-micro-limits [--seconds S]
 *
 * Cases (every call admitted: the rate is far above what is asked, so each is a full take):
 *
 *   cap          one caller, no shares: one table lookup and one CAS
 *   shares       two callers of one credential (fair_share): share, then cap
 *   quota        shares and a caller quota: three buckets
 *   threads=4    the shares case from 4 threads on the same buckets (CAS contention)
 *
 * Each line: micro_limits: case=<name> threads=<n> takes=<count> ns_per_take=<r> (per thread,
 * by CLOCK_THREAD_CPUTIME_ID: other load on the machine does not inflate it).
 */
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "limits/limits.h"

static double seconds = 1.0;

struct job {
    struct gw_limits *limits;
    const struct gw_limits_request *req;
    long long takes;
    double cpu_s;
    int failed;
};

static double now_s(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *run(void *arg)
{
    struct job *j = arg;
    struct gw_limits_verdict v;
    double wall0 = now_s(CLOCK_MONOTONIC), cpu0 = now_s(CLOCK_THREAD_CPUTIME_ID);
    while (now_s(CLOCK_MONOTONIC) - wall0 < seconds) {
        for (int i = 0; i < 1024; i++) {
            struct timespec t;
            clock_gettime(CLOCK_MONOTONIC, &t);
            int64_t now = (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
            j->failed += !gw_limits_take(j->limits, j->req, 1, now, &v);
        }
        j->takes += 1024;
    }
    j->cpu_s = now_s(CLOCK_THREAD_CPUTIME_ID) - cpu0;
    return NULL;
}

static int bench(const char *name, const struct gw_limits_options *o,
                 const struct gw_limits_request *req, int threads)
{
    struct gw_limits *l = NULL;
    if (gw_limits_new(o, &l) != GW_OK) {
        return 1;
    }
    struct job jobs[8];
    pthread_t tid[8];
    for (int i = 0; i < threads; i++) {
        jobs[i] = (struct job){.limits = l, .req = req};
        pthread_create(&tid[i], NULL, run, &jobs[i]);
    }
    long long takes = 0;
    double cpu = 0;
    int failed = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(tid[i], NULL);
        takes += jobs[i].takes;
        cpu += jobs[i].cpu_s;
        failed += jobs[i].failed;
    }
    printf("micro_limits: case=%s threads=%d takes=%lld ns_per_take=%.1f refused=%d\n", name,
           threads, takes, cpu * 1e9 / (double)takes, failed);
    gw_limits_free(l);
    return failed != 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--seconds") == 0) {
        seconds = atof(argv[2]);
    }
    if (sodium_init() < 0) {
        return 1;
    }
    const char *sharers[] = {"app", "other"};
    struct gw_limits_request req = {.credential = "default",
                                    .service = "gaap",
                                    .action = "ModifyProxyConfiguration",
                                    .caller = "app",
                                    .sharers = sharers,
                                    .sharer_count = 1};
    struct gw_limits_rate big[] = {{"gaap.ModifyProxyConfiguration", 1e6, 1e9}};
    struct gw_limits_rate quota[] = {{"app", 1e6, 1e9}};
    struct gw_limits_options o = {.actions = big, .action_count = 1};
    int rc = bench("cap", &o, &req, 1);
    o.fair_share = true;
    req.sharer_count = 2;
    rc |= bench("shares", &o, &req, 1);
    o.callers = quota;
    o.caller_count = 1;
    rc |= bench("quota", &o, &req, 1);
    o.callers = NULL;
    o.caller_count = 0;
    rc |= bench("shares", &o, &req, 4);
    return rc;
}
