#include "limits/limiter.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "access/access.h"
#include "core/loop.h"
#include "identity/callers.h"
#include "limits/limits.h"
#include "limits/redis.h"

/* Calls one worker holds waiting for a token at once; more are refused at once. */
#define MAX_WAITING 4096
/* Takes one worker has sent to Redis without their reply yet; more are judged locally. */
#define MAX_PENDING 4096
#define NS_PER_MS 1000000LL

struct gw_limiter {
    struct gw_limits *limits;
    struct gw_loop *loop;
    int64_t max_wait_ns;
    double fallback_scale; /* 1/replicas while Redis is away; 1 without Redis */
    struct gw_redis *redis;
    struct gw_loop_timer *timer;
    struct gw_call *waiting; /* calls waiting for a token, linked by call->limit.next */
    size_t waiting_count;
    bool stopped;
};

static int64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* The request of a call: its credential's callers (from the call's snapshot) share its limit. */
static void request_of(const struct gw_call *call, const char *sharers[GW_LIMITS_MAX_SHARERS],
                       struct gw_limits_request *r)
{
    const struct gw_callers *callers = gw_access_callers(call->snapshot);
    size_t n = 0, listed = 0;
    for (size_t i = 0; i < gw_callers_count(callers); i++) {
        const struct gw_caller *c = gw_callers_at(callers, i);
        if (strcmp(c->credential, call->credential) != 0) {
            continue;
        }
        if (listed < GW_LIMITS_MAX_SHARERS) {
            sharers[listed++] = c->name;
        }
        n++;
    }
    *r = (struct gw_limits_request){
        .credential = call->credential,
        .service = call->service,
        .action = call->action,
        .caller = call->caller,
        .sharers = sharers,
        .sharer_count = n, /* the shares are 1/n; borrowing looks at the first listed only */
    };
}

static long long retry_ms(int64_t retry_ns)
{
    return (long long)((retry_ns + NS_PER_MS - 1) / NS_PER_MS);
}

/* RequestLimitExceeded that names the limit and when to retry. */
static void refuse(struct gw_limiter *lim, struct gw_call *call, enum gw_limits_step step,
                   int64_t retry_ns, const struct gw_limits_rule *rule, bool fallback,
                   size_t sharers)
{
    const char *note = fallback ? " (the shared limits in Redis are unreachable: this gateway "
                                  "keeps 1/limits.redis.replicas of each limit)"
                                : "";
    long long ms = retry_ms(retry_ns);
    switch (step) {
    case GW_LIMITS_QUOTA:
        gw_call_refuse(call, "RequestLimitExceeded",
                       "The gateway (tcgw) limits caller \"%s\" to %g calls per second (burst %g) "
                       "over all its calls (limits.callers)%s. Retry after %lld ms. The call was "
                       "not sent to Tencent Cloud.",
                       call->caller, rule->quota_rate, rule->quota_burst, note, ms);
        break;
    case GW_LIMITS_SHARE:
        gw_call_refuse(call, "RequestLimitExceeded",
                       "The gateway (tcgw) limits %s.%s with credential \"%s\" to %g calls per "
                       "second (burst %g), shared fairly by its %zu callers: the share of caller "
                       "\"%s\" (%g per second) is used and no other share is idle%s. Retry after "
                       "%lld ms. The call was not sent to Tencent Cloud.",
                       call->service, call->action, call->credential, rule->rate, rule->burst,
                       sharers, call->caller, rule->share_rate, note, ms);
        break;
    case GW_LIMITS_FULL:
        gw_call_refuse(call, "RequestLimitExceeded",
                       "The gateway (tcgw) has no room for another rate-limit bucket "
                       "(limits.max_buckets). Retry after %lld ms. The call was not sent to "
                       "Tencent Cloud.",
                       ms);
        break;
    case GW_LIMITS_CAP:
    default:
        gw_call_refuse(call, "RequestLimitExceeded",
                       "The gateway (tcgw) limits %s.%s with credential \"%s\" to %g calls per "
                       "second (burst %g)%s. Retry after %lld ms. The call was not sent to "
                       "Tencent Cloud.",
                       call->service, call->action, call->credential, rule->rate, rule->burst, note,
                       ms);
        break;
    }
    (void)lim;
}

static void arm(struct gw_limiter *lim, int64_t now)
{
    int64_t first = -1;
    for (struct gw_call *c = lim->waiting; c != NULL; c = c->limit.next) {
        if (first < 0 || c->limit.due_ns < first) {
            first = c->limit.due_ns;
        }
    }
    if (first < 0) {
        gw_loop_timer_set(lim->timer, -1);
        return;
    }
    int64_t wait = first - now;
    gw_loop_timer_set(lim->timer, wait <= 0 ? 0 : (long)((wait + NS_PER_MS - 1) / NS_PER_MS));
}

/* A refused call waits for its token when that comes within its deadline; else it is refused. */
static enum gw_limiter_step refused_or_wait(struct gw_limiter *lim, struct gw_call *call,
                                            enum gw_limits_step step, int64_t retry_ns,
                                            bool fallback)
{
    int64_t now = now_ns();
    if (!lim->stopped && step != GW_LIMITS_FULL && now + retry_ns <= call->limit.deadline_ns &&
        lim->waiting_count < MAX_WAITING) {
        call->limit.due_ns = now + retry_ns;
        call->limit.next = lim->waiting;
        lim->waiting = call;
        lim->waiting_count++;
        arm(lim, now);
        return GW_LIMITER_WAIT;
    }
    const char *sharers[GW_LIMITS_MAX_SHARERS];
    struct gw_limits_request r;
    struct gw_limits_rule rule;
    request_of(call, sharers, &r);
    gw_limits_rule(lim->limits, &r, fallback ? lim->fallback_scale : 1, &rule);
    refuse(lim, call, step, retry_ns, &rule, fallback, r.sharer_count);
    return GW_LIMITER_REFUSED;
}

static enum gw_limiter_step judge_local(struct gw_limiter *lim, struct gw_call *call)
{
    const char *sharers[GW_LIMITS_MAX_SHARERS];
    struct gw_limits_request r;
    struct gw_limits_verdict v;
    request_of(call, sharers, &r);
    bool fallback = lim->redis != NULL;
    call->limit.shared = false;
    if (gw_limits_take(lim->limits, &r, fallback ? lim->fallback_scale : 1, now_ns(), &v)) {
        return GW_LIMITER_PASS;
    }
    return refused_or_wait(lim, call, v.refused, v.retry_ns, fallback);
}

/* Judges call now: by Redis when it is reachable (the answer comes later), else locally. */
static enum gw_limiter_step judge(struct gw_limiter *lim, struct gw_call *call)
{
    if (lim->redis != NULL && gw_redis_ready(lim->redis)) {
        const char *sharers[GW_LIMITS_MAX_SHARERS];
        struct gw_limits_request r;
        struct gw_limits_rule rule;
        request_of(call, sharers, &r);
        gw_limits_rule(lim->limits, &r, 1, &rule);
        if (gw_redis_take(lim->redis, call, &r, &rule) == GW_OK) {
            call->limit.shared = true;
            return GW_LIMITER_WAIT;
        }
    }
    return judge_local(lim, call);
}

/* A waiting call's turn ended: it goes on, or finishes refused. */
static void settle(struct gw_call *call, enum gw_limiter_step step)
{
    if (step != GW_LIMITER_WAIT) {
        call->limit.resume(call, call->limit.resume_arg);
    }
}

static void refuse_stopping(struct gw_call *call)
{
    call->reply.close = true;
    gw_call_refuse(call, "ServiceUnavailable",
                   "The gateway (tcgw) is shutting down. The call was not sent to Tencent "
                   "Cloud; it is safe to retry.");
}

static void on_timer(void *arg)
{
    struct gw_limiter *lim = arg;
    int64_t now = now_ns();
    struct gw_call *list = lim->waiting;
    lim->waiting = NULL;
    lim->waiting_count = 0;
    while (list != NULL) {
        struct gw_call *call = list;
        list = call->limit.next;
        call->limit.next = NULL;
        if (call->limit.due_ns > now) {
            call->limit.next = lim->waiting;
            lim->waiting = call;
            lim->waiting_count++;
            continue;
        }
        settle(call, judge(lim, call));
    }
    arm(lim, now_ns());
}

static void on_redis(void *arg, struct gw_call *call, enum gw_redis_result result,
                     enum gw_limits_step step, int64_t retry_ns)
{
    struct gw_limiter *lim = arg;
    if (lim->stopped) {
        refuse_stopping(call);
        settle(call, GW_LIMITER_REFUSED);
        return;
    }
    switch (result) {
    case GW_REDIS_ADMITTED:
        settle(call, GW_LIMITER_PASS);
        break;
    case GW_REDIS_REFUSED:
        settle(call, refused_or_wait(lim, call, step, retry_ns, false));
        break;
    case GW_REDIS_FAILED:
    default:
        settle(call, judge_local(lim, call));
        break;
    }
}

enum gw_err gw_limiter_new(const struct gw_limiter_options *o, struct gw_loop *loop,
                           struct gw_limiter **out)
{
    enum gw_err err;
    struct gw_limiter *lim = calloc(1, sizeof *lim);
    if (lim == NULL) {
        return GW_ERR_NOMEM;
    }
    lim->limits = o->limits;
    lim->loop = loop;
    lim->max_wait_ns = (int64_t)o->max_wait_ms * NS_PER_MS;
    lim->fallback_scale = 1.0 / (o->replicas > 0 ? o->replicas : 1);
    if ((lim->timer = gw_loop_timer_new(loop, on_timer, lim)) == NULL) {
        err = GW_ERR_NOMEM;
        goto out;
    }
    if (o->redis_address != NULL) {
        struct gw_redis_options ro = {
            .address = o->redis_address,
            .port = o->redis_port,
            .timeout_ms = o->redis_timeout_ms,
            .key_prefix = o->redis_key_prefix,
            .max_pending = MAX_PENDING,
            .all = o->redis_state,
            .result = on_redis,
            .result_arg = lim,
        };
        if ((err = gw_redis_new(&ro, loop, &lim->redis)) != GW_OK) {
            goto out;
        }
    }
    *out = lim;
    lim = NULL;
    err = GW_OK;
out:
    gw_limiter_free(lim);
    return err;
}

enum gw_limiter_step gw_limiter_admit(struct gw_limiter *lim, struct gw_call *call,
                                      gw_call_event_fn resume, void *arg)
{
    if (lim->stopped) {
        refuse_stopping(call);
        return GW_LIMITER_REFUSED;
    }
    call->limit.resume = resume;
    call->limit.resume_arg = arg;
    call->limit.next = NULL;
    call->limit.deadline_ns = now_ns() + lim->max_wait_ns;
    if (call->retry.deadline_ns > 0 && call->retry.deadline_ns < call->limit.deadline_ns) {
        call->limit.deadline_ns = call->retry.deadline_ns; /* the call's own deadline first */
    }
    enum gw_limiter_step step = judge(lim, call);
    if (step == GW_LIMITER_WAIT) {
        /* Nothing resumes the call before the loop's next turn: suspending now is in time. */
        call->limit.waited = true;
        if (call->in.will_wait != NULL) {
            call->in.will_wait(call, call->in.transport);
        }
    }
    return step;
}

void gw_limiter_stop(struct gw_limiter *lim)
{
    if (lim == NULL || lim->stopped) {
        return;
    }
    lim->stopped = true;
    /* Takes pending in Redis report back (refused as the gateway stops) as the connection ends. */
    gw_redis_free(lim->redis);
    lim->redis = NULL;
    while (lim->waiting != NULL) {
        struct gw_call *call = lim->waiting;
        lim->waiting = call->limit.next;
        lim->waiting_count--;
        call->limit.next = NULL;
        refuse_stopping(call);
        settle(call, GW_LIMITER_REFUSED);
    }
    gw_loop_timer_set(lim->timer, -1);
}

void gw_limiter_free(struct gw_limiter *lim)
{
    if (lim == NULL) {
        return;
    }
    gw_limiter_stop(lim);
    gw_loop_timer_free(lim->timer);
    free(lim);
}

struct gw_redis *gw_limiter_redis(const struct gw_limiter *lim)
{
    return lim == NULL || lim->stopped ? NULL : lim->redis;
}

bool gw_limiter_shared_ok(const struct gw_redis_shared *state)
{
    return state == NULL || gw_redis_all_connected(state);
}
