#include "limits/redis.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>

#include "core/call.h"
#include "core/loop.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define CONNECT_TIMEOUT_MS 1000 /* to connect and load the script */
#define KEY_MAX 256
#define MAX_KEYS (3 + GW_LIMITS_MAX_SHARERS)
#define ARGS 6

/*
 * GCRA over Redis's clock, in microseconds; the same rule as gw_limits_take. A bucket's key holds
 * its TAT and expires once the bucket is full again (a missing key is a full bucket).
 * KEYS: cap, quota, own share, the other shares (lent from only when full).
 * ARGV: cap interval and tolerance, quota's (interval 0: none), share's (interval 0: none).
 * Returns {1, 0, 0} when admitted, {0, retry_us, step} when refused (1 quota, 2 share, 3 cap).
 */
static const char script[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
    "local function tat_of(k)\n"
    "  local v = redis.call('GET', k)\n"
    "  if v then return tonumber(v) end\n"
    "  return 0\n"
    "end\n"
    "local function check(k, T, tau)\n"
    "  local tat = tat_of(k)\n"
    "  if tat < now then tat = now end\n"
    "  if tat - now > tau then return nil, tat - tau - now end\n"
    "  return tat + T, 0\n"
    "end\n"
    "local function put(k, tat)\n"
    "  redis.call('SET', k, string.format('%d', tat), 'PX', math.floor((tat - now) / 1000) + "
    "1000)\n"
    "end\n"
    "local capT, capTau = tonumber(ARGV[1]), tonumber(ARGV[2])\n"
    "local qT, qTau = tonumber(ARGV[3]), tonumber(ARGV[4])\n"
    "local sT, sTau = tonumber(ARGV[5]), tonumber(ARGV[6])\n"
    "local q_new, s_new, s_key, r\n"
    "if qT > 0 then\n"
    "  q_new, r = check(KEYS[2], qT, qTau)\n"
    "  if not q_new then return {0, r, 1} end\n"
    "end\n"
    "if sT > 0 then\n"
    "  s_new, r = check(KEYS[3], sT, sTau)\n"
    "  s_key = KEYS[3]\n"
    "  if not s_new then\n"
    "    for i = 4, #KEYS do\n"
    "      if tat_of(KEYS[i]) <= now then s_new = now + sT; s_key = KEYS[i]; break end\n"
    "    end\n"
    "    if not s_new then return {0, r, 2} end\n"
    "  end\n"
    "end\n"
    "local c_new\n"
    "c_new, r = check(KEYS[1], capT, capTau)\n"
    "if not c_new then return {0, r, 3} end\n"
    "put(KEYS[1], c_new)\n"
    "if q_new then put(KEYS[2], q_new) end\n"
    "if s_new then put(s_key, s_new) end\n"
    "return {1, 0, 0}\n";

struct pending {
    struct gw_call *call;
    int64_t sent_ms;
    gw_redis_reply_fn reply; /* a command's (gw_redis_command); NULL: a take */
    void *reply_arg;
};

struct gw_redis {
    struct gw_redis_options o;
    struct gw_loop *loop;
    redisAsyncContext *ac; /* NULL while disconnected */
    struct gw_loop_watch *watch;
    uint32_t events;
    struct gw_loop_timer *timer;
    bool ready;   /* connected, script loaded */
    bool counted; /* counted in o.all->connected */
    bool drop;    /* drop the connection on the timer (not inside a hiredis callback) */
    const char *why;
    int64_t started_ms;   /* when the current connection attempt began */
    int64_t reconnect_ms; /* when to connect again while disconnected */
    long backoff_ms;
    struct pending *ring;
    size_t head, count;
    char sha[2 * SHA_DIGEST_LENGTH + 1];
};

static int64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

void gw_redis_shared_init(struct gw_redis_shared *all, unsigned workers, const char *address,
                          uint16_t port)
{
    atomic_init(&all->connected, 0);
    atomic_init(&all->fallback_logged, false);
    atomic_init(&all->idem_fallback_logged, false);
    all->workers = workers;
    snprintf(all->where, sizeof all->where, "address=%s port=%u", address, (unsigned)port);
}

bool gw_redis_all_connected(const struct gw_redis_shared *all)
{
    return atomic_load(&((struct gw_redis_shared *)all)->connected) == all->workers;
}

/* ---- the adapter: hiredis's event hooks on the worker's loop --------------------------------- */

static void on_fd(void *arg, int fd, uint32_t events)
{
    struct gw_redis *r = arg;
    (void)fd;
    if (r->ac != NULL && (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0) {
        redisAsyncHandleRead(r->ac);
    }
    if (r->ac != NULL && (events & EPOLLOUT) != 0) {
        redisAsyncHandleWrite(r->ac);
    }
}

static void watch_events(struct gw_redis *r, uint32_t events)
{
    if (r->ac == NULL || events == r->events) {
        return;
    }
    r->events = events;
    if (r->watch == NULL) {
        r->watch = gw_loop_watch(r->loop, r->ac->c.fd, events, on_fd, r);
        if (r->watch == NULL) {
            r->drop = true;
            r->why = "cannot watch the connection";
            gw_loop_timer_set(r->timer, 0);
        }
    } else if (!gw_loop_rewatch(r->watch, events)) {
        r->drop = true;
        r->why = "cannot watch the connection";
        gw_loop_timer_set(r->timer, 0);
    }
}

static void add_read(void *arg)
{
    struct gw_redis *r = arg;
    watch_events(r, r->events | EPOLLIN);
}

static void del_read(void *arg)
{
    struct gw_redis *r = arg;
    watch_events(r, r->events & ~(uint32_t)EPOLLIN);
}

static void add_write(void *arg)
{
    struct gw_redis *r = arg;
    watch_events(r, r->events | EPOLLOUT);
}

static void del_write(void *arg)
{
    struct gw_redis *r = arg;
    watch_events(r, r->events & ~(uint32_t)EPOLLOUT);
}

static void cleanup(void *arg)
{
    struct gw_redis *r = arg;
    gw_loop_unwatch(r->watch);
    r->watch = NULL;
    r->events = 0;
}

/* ---- connection state ------------------------------------------------------------------------ */

static void set_ready(struct gw_redis *r)
{
    r->ready = true;
    r->backoff_ms = BACKOFF_MIN_MS;
    if (!r->counted) {
        r->counted = true;
        struct gw_redis_shared *all = r->o.all;
        if (atomic_fetch_add(&all->connected, 1) + 1 == all->workers) {
            atomic_store(&all->fallback_logged, false);
            atomic_store(&all->idem_fallback_logged, false);
            fprintf(stderr,
                    "level=info event=limits_backend backend=redis state=shared %s workers=%u\n",
                    all->where, all->workers);
            fflush(stderr);
        }
    }
}

static void set_down(struct gw_redis *r, const char *why)
{
    r->ready = false;
    struct gw_redis_shared *all = r->o.all;
    if (r->counted) {
        r->counted = false;
        atomic_fetch_sub(&all->connected, 1);
    }
    if (!atomic_exchange(&all->fallback_logged, true)) {
        fprintf(stderr,
                "level=warning event=limits_backend backend=redis state=fallback %s "
                "reason=\"%s\" note=\"each gateway keeps 1/limits.redis.replicas of each limit "
                "until Redis answers again\"\n",
                all->where, why);
        fflush(stderr);
    }
}

/* Every take still waiting reports FAILED, oldest first. */
static void fail_pending(struct gw_redis *r)
{
    while (r->count > 0) {
        struct pending p = r->ring[r->head];
        r->head = (r->head + 1) % r->o.max_pending;
        r->count--;
        if (p.reply != NULL) {
            p.reply(p.reply_arg, p.call, NULL);
        } else if (p.call != NULL) {
            r->o.result(r->o.result_arg, p.call, GW_REDIS_FAILED, GW_LIMITS_OK, 0);
        }
    }
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    struct gw_redis *r = ac->data;
    (void)status;
    if (r != NULL && r->ac == ac) {
        r->ac = NULL; /* hiredis frees it */
        set_down(r, ac->errstr[0] != '\0' ? "connection lost" : "disconnected");
        r->reconnect_ms = now_ms() + r->backoff_ms;
        gw_loop_timer_set(r->timer, 0);
    }
}

/* A connection that could not be made: hiredis frees it (without on_disconnect). */
static void on_connect(const redisAsyncContext *ac, int status)
{
    struct gw_redis *r = ac->data;
    if (status == REDIS_OK || r == NULL || r->ac != ac) {
        return;
    }
    r->ac = NULL;
    set_down(r, "cannot connect");
    r->reconnect_ms = now_ms() + r->backoff_ms;
    r->backoff_ms = r->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : r->backoff_ms * 2;
    gw_loop_timer_set(r->timer, 0);
}

/* Ends the connection now (not from inside a hiredis callback). */
static void drop(struct gw_redis *r, const char *why)
{
    redisAsyncContext *ac = r->ac;
    r->drop = false;
    if (ac != NULL) {
        r->ac = NULL;
        ac->data = NULL;
        redisAsyncFree(ac); /* replies still expected come back NULL: their calls fail */
        set_down(r, why);
    }
    fail_pending(r);
    r->reconnect_ms = now_ms() + r->backoff_ms;
    r->backoff_ms = r->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : r->backoff_ms * 2;
}

static void on_script_loaded(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct gw_redis *r = privdata;
    const redisReply *rep = reply;
    if (ac->data == NULL || r->ac != ac) {
        return;
    }
    if (rep == NULL || rep->type != REDIS_REPLY_STRING || strcmp(rep->str, r->sha) != 0) {
        r->drop = true;
        r->why = "SCRIPT LOAD failed";
        gw_loop_timer_set(r->timer, 0);
        return;
    }
    set_ready(r);
}

static void connect_now(struct gw_redis *r)
{
    redisAsyncContext *ac = redisAsyncConnect(r->o.address, r->o.port);
    r->started_ms = now_ms();
    if (ac == NULL || ac->err != 0) {
        if (ac != NULL) {
            redisAsyncFree(ac);
        }
        set_down(r, "cannot connect");
        r->reconnect_ms = r->started_ms + r->backoff_ms;
        r->backoff_ms = r->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : r->backoff_ms * 2;
        return;
    }
    ac->data = r;
    ac->ev.data = r;
    ac->ev.addRead = add_read;
    ac->ev.delRead = del_read;
    ac->ev.addWrite = add_write;
    ac->ev.delWrite = del_write;
    ac->ev.cleanup = cleanup;
    r->ac = ac;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    /* Queued now, sent once connected: its answer says the connection is ready. */
    if (redisAsyncCommand(ac, on_script_loaded, r, "SCRIPT LOAD %s", script) != REDIS_OK) {
        drop(r, "cannot send SCRIPT LOAD");
    }
}

static void arm(struct gw_redis *r)
{
    int64_t now = now_ms(), due = -1;
    if (r->ac == NULL) {
        due = r->reconnect_ms;
    } else if (!r->ready) {
        due = r->started_ms + CONNECT_TIMEOUT_MS;
    }
    if (r->count > 0) {
        int64_t d = r->ring[r->head].sent_ms + r->o.timeout_ms;
        due = due < 0 || d < due ? d : due;
    }
    gw_loop_timer_set(r->timer, due < 0 ? -1 : (due <= now ? 0 : (long)(due - now)));
}

static void on_timer(void *arg)
{
    struct gw_redis *r = arg;
    int64_t now = now_ms();
    if (r->drop) {
        drop(r, r->why);
    } else if (r->count > 0 && now - r->ring[r->head].sent_ms >= r->o.timeout_ms) {
        drop(r, "no answer within limits.redis.timeout_ms");
    } else if (r->ac != NULL && !r->ready && now - r->started_ms >= CONNECT_TIMEOUT_MS) {
        drop(r, "no connection within 1 s");
    }
    if (r->ac == NULL && now >= r->reconnect_ms) {
        connect_now(r);
    }
    arm(r);
}

/* ---- takes ----------------------------------------------------------------------------------- */

/* Every reply, in order: a take's, or a command's. */
static void on_take(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct gw_redis *r = privdata;
    const redisReply *rep = reply;
    if (ac->data == NULL || r == NULL || r->count == 0) {
        return; /* dropped by us: fail_pending reports the take */
    }
    struct pending p = r->ring[r->head];
    r->head = (r->head + 1) % r->o.max_pending;
    r->count--;
    if (p.reply != NULL) {
        p.reply(p.reply_arg, p.call, rep); /* its own script: an error reply is its concern */
        arm(r);
        return;
    }
    if (p.call == NULL) {
        arm(r); /* a command whose reply nobody reads */
        return;
    }
    if (rep == NULL || rep->type != REDIS_REPLY_ARRAY || rep->elements != 3 ||
        rep->element[0]->type != REDIS_REPLY_INTEGER ||
        rep->element[1]->type != REDIS_REPLY_INTEGER ||
        rep->element[2]->type != REDIS_REPLY_INTEGER) {
        /* NOSCRIPT (a flushed script cache) or worse: reconnect, which loads it again. */
        r->drop = true;
        r->why = rep != NULL && rep->type == REDIS_REPLY_ERROR ? "error reply" : "bad reply";
        gw_loop_timer_set(r->timer, 0);
        r->o.result(r->o.result_arg, p.call, GW_REDIS_FAILED, GW_LIMITS_OK, 0);
        return;
    }
    if (rep->element[0]->integer == 1) {
        r->o.result(r->o.result_arg, p.call, GW_REDIS_ADMITTED, GW_LIMITS_OK, 0);
        return;
    }
    long long step = rep->element[2]->integer;
    enum gw_limits_step s = step == 1   ? GW_LIMITS_QUOTA
                            : step == 2 ? GW_LIMITS_SHARE
                                        : GW_LIMITS_CAP;
    int64_t retry_ns = (int64_t)rep->element[1]->integer * 1000;
    r->o.result(r->o.result_arg, p.call, GW_REDIS_REFUSED, s, retry_ns);
    arm(r);
}

/* Queues a command; its reply (or failure) is the ring's next. reply NULL and call set: a take. */
static enum gw_err queue_command(struct gw_redis *r, int argc, const char **argv,
                                 const size_t *argvlen, gw_redis_reply_fn reply, void *arg,
                                 struct gw_call *call)
{
    if (redisAsyncCommandArgv(r->ac, on_take, r, argc, argv, argvlen) != REDIS_OK) {
        return GW_ERR_NOMEM;
    }
    size_t slot = (r->head + r->count) % r->o.max_pending;
    r->ring[slot] =
        (struct pending){.call = call, .sent_ms = now_ms(), .reply = reply, .reply_arg = arg};
    r->count++;
    if (r->count == 1) {
        arm(r);
    }
    return GW_OK;
}

static int64_t interval_us(double rate)
{
    int64_t t = gw_limits_interval_ns(rate) / 1000;
    return t < 1 ? 1 : t;
}

enum gw_err gw_redis_take(struct gw_redis *r, struct gw_call *call,
                          const struct gw_limits_request *req, const struct gw_limits_rule *rule)
{
    if (!r->ready || r->ac == NULL || r->count >= r->o.max_pending) {
        return GW_ERR_BUSY;
    }
    char keys[MAX_KEYS][KEY_MAX];
    char args[ARGS][24];
    const char *argv[3 + MAX_KEYS + ARGS];
    size_t argvlen[3 + MAX_KEYS + ARGS];
    size_t nkeys = 0;
    const char *p = r->o.key_prefix;
    bool sharing = rule->share_rate < rule->rate;
    snprintf(keys[nkeys++], KEY_MAX, "%s:c:%s:%s.%s", p, req->credential, req->service,
             req->action);
    snprintf(keys[nkeys++], KEY_MAX, "%s:q:%s", p, req->caller);
    snprintf(keys[nkeys++], KEY_MAX, "%s:s:%s:%s.%s:%s", p, req->credential, req->service,
             req->action, req->caller);
    if (sharing) {
        size_t n =
            req->sharer_count < GW_LIMITS_MAX_SHARERS ? req->sharer_count : GW_LIMITS_MAX_SHARERS;
        size_t start = n > 0 ? (size_t)now_ms() % n : 0;
        for (size_t j = 0; j < n; j++) {
            const char *other = req->sharers[(start + j) % n];
            if (strcmp(other, req->caller) != 0) {
                snprintf(keys[nkeys++], KEY_MAX, "%s:s:%s:%s.%s:%s", p, req->credential,
                         req->service, req->action, other);
            }
        }
    }
    int64_t cap_t = interval_us(rule->rate);
    int64_t q_t = rule->quota_rate > 0 ? interval_us(rule->quota_rate) : 0;
    int64_t s_t = sharing ? interval_us(rule->share_rate) : 0;
    long long values[ARGS] = {
        (long long)cap_t, (long long)((rule->burst - 1) * (double)cap_t),
        (long long)q_t,   (long long)(q_t > 0 ? (rule->quota_burst - 1) * (double)q_t : 0),
        (long long)s_t,   (long long)(s_t > 0 ? (rule->share_burst - 1) * (double)s_t : 0),
    };
    char numkeys[24];
    snprintf(numkeys, sizeof numkeys, "%zu", nkeys);
    size_t argc = 0;
    argv[argc++] = "EVALSHA";
    argv[argc++] = r->sha;
    argv[argc++] = numkeys;
    for (size_t i = 0; i < nkeys; i++) {
        argv[argc++] = keys[i];
    }
    for (size_t i = 0; i < ARGS; i++) {
        snprintf(args[i], sizeof args[i], "%lld", values[i]);
        argv[argc++] = args[i];
    }
    for (size_t i = 0; i < argc; i++) {
        argvlen[i] = strlen(argv[i]);
    }
    return queue_command(r, (int)argc, argv, argvlen, NULL, NULL, call);
}

enum gw_err gw_redis_command(struct gw_redis *r, int argc, const char **argv, const size_t *argvlen,
                             gw_redis_reply_fn reply, void *arg, struct gw_call *call)
{
    if (r == NULL || !r->ready || r->ac == NULL || r->count >= r->o.max_pending) {
        return GW_ERR_BUSY;
    }
    return queue_command(r, argc, argv, argvlen, reply, arg, call);
}

bool gw_redis_ready(const struct gw_redis *r)
{
    return r != NULL && r->ready && r->ac != NULL;
}

enum gw_err gw_redis_new(const struct gw_redis_options *o, struct gw_loop *loop,
                         struct gw_redis **out)
{
    struct gw_redis *r = calloc(1, sizeof *r);
    if (r == NULL) {
        return GW_ERR_NOMEM;
    }
    r->o = *o;
    r->loop = loop;
    r->backoff_ms = BACKOFF_MIN_MS;
    r->ring = calloc(o->max_pending > 0 ? o->max_pending : 1, sizeof *r->ring);
    r->timer = gw_loop_timer_new(loop, on_timer, r);
    if (r->ring == NULL || r->timer == NULL || o->max_pending == 0) {
        gw_loop_timer_free(r->timer);
        free(r->ring);
        free(r);
        return GW_ERR_NOMEM;
    }
    unsigned char digest[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)script, sizeof script - 1, digest);
    for (size_t i = 0; i < SHA_DIGEST_LENGTH; i++) {
        snprintf(r->sha + 2 * i, 3, "%02x", digest[i]);
    }
    gw_loop_timer_set(r->timer, 0); /* connect on the loop */
    *out = r;
    return GW_OK;
}

void gw_redis_free(struct gw_redis *r)
{
    if (r == NULL) {
        return;
    }
    redisAsyncContext *ac = r->ac;
    if (ac != NULL) {
        r->ac = NULL;
        ac->data = NULL;
        redisAsyncFree(ac);
    }
    if (r->counted) {
        r->counted = false;
        atomic_fetch_sub(&r->o.all->connected, 1);
    }
    fail_pending(r);
    gw_loop_unwatch(r->watch);
    gw_loop_timer_free(r->timer);
    free(r->ring);
    free(r);
}
