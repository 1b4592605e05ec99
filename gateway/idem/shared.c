#include "idem/shared.h"

#include <hiredis/hiredis.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/call.h"
#include "core/loop.h"
#include "limits/limiter.h"
#include "limits/redis.h"

_Static_assert(sizeof(((struct gw_call *)0)->idem.slot) == GW_IDEM_HASH_BYTES,
               "the call holds its token's slot hash");
_Static_assert(sizeof(((struct gw_call *)0)->idem.params) == GW_IDEM_HASH_BYTES,
               "the call holds its parameters' hash");

#define NS_PER_MS 1000000LL
#define POLL_FIRST_MS 50
#define POLL_MAX_MS 500
/* A lease outlives its call's deadline by this much: the finish has time to arrive. */
#define LEASE_MARGIN_MS 5000
/* The lease of a call without a deadline. */
#define LEASE_DEFAULT_MS (300 * 1000)
#define HEX (2 * GW_IDEM_HASH_BYTES + 1)

/*
 * KEYS[1] the record; ARGV: parameters' hash, owner, lease in ms.
 * Returns {1} claimed, {2} pending elsewhere, {3} other parameters, {4, status, body} done.
 */
static const char claim_script[] =
    "local r = redis.call('HMGET', KEYS[1], 's', 'p', 'st', 'b')\n"
    "if not r[1] then\n"
    "  redis.call('HSET', KEYS[1], 's', 'pending', 'p', ARGV[1], 'o', ARGV[2])\n"
    "  redis.call('PEXPIRE', KEYS[1], ARGV[3])\n"
    "  return {1}\n"
    "end\n"
    "if r[2] ~= ARGV[1] then return {3} end\n"
    "if r[1] == 'pending' then return {2} end\n"
    "return {4, r[3] or '0', r[4] or ''}\n";

/*
 * KEYS[1] the record; ARGV: owner, "done" or "free", status, body, window in ms. Only the owner
 * of the claim changes it (a lease that ended may have passed it to another call).
 */
static const char finish_script[] =
    "if redis.call('HGET', KEYS[1], 'o') ~= ARGV[1] then return 0 end\n"
    "if ARGV[2] == 'done' then\n"
    "  redis.call('HSET', KEYS[1], 's', 'done', 'st', ARGV[3], 'b', ARGV[4])\n"
    "  redis.call('PEXPIRE', KEYS[1], ARGV[5])\n"
    "else\n"
    "  redis.call('DEL', KEYS[1])\n"
    "end\n"
    "return 1\n";

struct gw_idem_shared {
    struct gw_idem_shared_options o;
    char *prefix;
    struct gw_loop_timer *timer;
    struct gw_call *polling; /* linked by idem.next */
    size_t polling_count;
    bool stopped;
};

static int64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* ---- pure parts ----------------------------------------------------------------------------- */

static size_t put_name(char *out, size_t at, size_t outlen, const char *name)
{
    for (size_t i = 0; name[i] != '\0'; i++, at++) {
        unsigned char c = (unsigned char)name[i];
        if (at + 1 < outlen) {
            out[at] = (char)(c < 0x21 || c > 0x7e || c == ':' ? '_' : c);
        }
    }
    return at;
}

enum gw_err gw_idem_shared_key(const char *prefix, const char *caller, const char *service,
                               const char *action, const struct gw_idem_key *key, char *out,
                               size_t outlen)
{
    char buf[GW_IDEM_SHARED_KEY_MAX];
    char hex[HEX];
    const char *names[] = {caller, service, action};
    int n = snprintf(buf, sizeof buf, "%s:idem", prefix);
    if (n < 0 || (size_t)n >= sizeof buf) {
        return GW_ERR_TOO_LARGE;
    }
    size_t at = (size_t)n;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (at + 1 < sizeof buf) {
            buf[at] = ':';
        }
        at = put_name(buf, at + 1, sizeof buf, names[i]);
    }
    sodium_bin2hex(hex, sizeof hex, key->slot, GW_IDEM_HASH_BYTES);
    if (at + 1 + strlen(hex) + 1 > sizeof buf || at + 1 + strlen(hex) + 1 > outlen) {
        return GW_ERR_TOO_LARGE;
    }
    buf[at] = ':';
    memcpy(buf + at + 1, hex, strlen(hex) + 1);
    memcpy(out, buf, at + 1 + strlen(hex) + 1);
    return GW_OK;
}

static bool is_int(const redisReply *r, long long v)
{
    return r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer == v;
}

enum gw_idem_shared_reply gw_idem_shared_parse(const struct redisReply *reply,
                                               struct gw_idem_answer *answer)
{
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements < 1) {
        return GW_IDEM_SHARED_R_BAD;
    }
    const redisReply *first = reply->element[0];
    if (reply->elements == 1 && is_int(first, 1)) {
        return GW_IDEM_SHARED_R_CLAIMED;
    }
    if (reply->elements == 1 && is_int(first, 2)) {
        return GW_IDEM_SHARED_R_PENDING;
    }
    if (reply->elements == 1 && is_int(first, 3)) {
        return GW_IDEM_SHARED_R_CONFLICT;
    }
    if (reply->elements != 3 || !is_int(first, 4) ||
        reply->element[1]->type != REDIS_REPLY_STRING ||
        reply->element[2]->type != REDIS_REPLY_STRING) {
        return GW_IDEM_SHARED_R_BAD;
    }
    const redisReply *st = reply->element[1], *b = reply->element[2];
    unsigned long status = 0;
    if (st->len < 1 || st->len > 3) {
        return GW_IDEM_SHARED_R_BAD;
    }
    for (size_t i = 0; i < st->len; i++) {
        if (st->str[i] < '0' || st->str[i] > '9') {
            return GW_IDEM_SHARED_R_BAD;
        }
        status = status * 10 + (unsigned long)(st->str[i] - '0');
    }
    if (status < 100 || b->len > GW_IDEM_SHARED_MAX_ANSWER) {
        return GW_IDEM_SHARED_R_BAD;
    }
    char *body = malloc(b->len + 1);
    if (body == NULL) {
        return GW_IDEM_SHARED_R_NOMEM;
    }
    if (b->len > 0) {
        memcpy(body, b->str, b->len);
    }
    body[b->len] = '\0';
    *answer = (struct gw_idem_answer){.status = (unsigned)status, .body = body, .len = b->len};
    return GW_IDEM_SHARED_R_DONE;
}

/* ---- one worker's side ---------------------------------------------------------------------- */

static void log_fallback(struct gw_idem_shared *s, const char *why)
{
    struct gw_redis_shared *all = s->o.state;
    if (all != NULL && !atomic_exchange(&all->idem_fallback_logged, true)) {
        fprintf(stderr,
                "level=warning event=idempotency_backend backend=redis state=fallback %s "
                "reason=\"%s\" note=\"each gateway checks ClientTokens alone until Redis answers "
                "again\"\n",
                all->where, why);
        fflush(stderr);
    }
}

static void arm(struct gw_idem_shared *s)
{
    int64_t first = -1;
    for (struct gw_call *c = s->polling; c != NULL; c = c->idem.next) {
        if (first < 0 || c->idem.due_ns < first) {
            first = c->idem.due_ns;
        }
    }
    if (first < 0) {
        gw_loop_timer_set(s->timer, -1);
        return;
    }
    int64_t wait = first - now_ns();
    gw_loop_timer_set(s->timer, wait <= 0 ? 0 : (long)((wait + NS_PER_MS - 1) / NS_PER_MS));
}

static enum gw_err record_key(const struct gw_idem_shared *s, const struct gw_call *call,
                              char out[GW_IDEM_SHARED_KEY_MAX])
{
    struct gw_idem_key key;
    memcpy(key.slot, call->idem.slot, sizeof key.slot);
    memcpy(key.params, call->idem.params, sizeof key.params);
    return gw_idem_shared_key(s->prefix, call->caller, call->service, call->action, &key, out,
                              GW_IDEM_SHARED_KEY_MAX);
}

static void on_claim(void *arg, struct gw_call *call, const struct redisReply *reply);

/* Sends call's claim. GW_OK: on_claim runs later. */
static enum gw_err send_claim(struct gw_idem_shared *s, struct gw_call *call)
{
    enum gw_err err;
    struct gw_redis *conn = gw_limiter_redis(s->o.limiter);
    char key[GW_IDEM_SHARED_KEY_MAX], params[HEX], lease[24];
    if ((err = record_key(s, call, key)) != GW_OK) {
        return err;
    }
    sodium_bin2hex(params, sizeof params, call->idem.params, GW_IDEM_HASH_BYTES);
    int64_t now = now_ns();
    int64_t left_ms = call->idem.wait_deadline_ns > 0
                          ? (call->idem.wait_deadline_ns - now + NS_PER_MS - 1) / NS_PER_MS
                          : LEASE_DEFAULT_MS;
    snprintf(lease, sizeof lease, "%lld",
             (long long)((left_ms > 0 ? left_ms : 0) + LEASE_MARGIN_MS));
    const char *argv[] = {"EVAL", claim_script, "1", key, params, call->idem.owner, lease};
    size_t lens[sizeof argv / sizeof argv[0]];
    for (size_t i = 0; i < sizeof argv / sizeof argv[0]; i++) {
        lens[i] = strlen(argv[i]);
    }
    return gw_redis_command(conn, (int)(sizeof argv / sizeof argv[0]), argv, lens, on_claim, s,
                            call);
}

static void poll_later(struct gw_idem_shared *s, struct gw_call *call)
{
    int64_t now = now_ns();
    int64_t due = now + call->idem.poll_ms * NS_PER_MS;
    if (call->idem.wait_deadline_ns > 0 && due > call->idem.wait_deadline_ns) {
        due = call->idem.wait_deadline_ns;
    }
    call->idem.due_ns = due;
    long next = call->idem.poll_ms + call->idem.poll_ms / 2;
    call->idem.poll_ms = next > POLL_MAX_MS ? POLL_MAX_MS : next;
    call->idem.next = s->polling;
    s->polling = call;
    s->polling_count++;
    arm(s);
}

static void on_claim(void *arg, struct gw_call *call, const struct redisReply *reply)
{
    struct gw_idem_shared *s = arg;
    struct gw_idem_answer answer = {0};
    if (reply == NULL && (s->stopped || gw_limiter_redis(s->o.limiter) == NULL)) {
        s->o.done(call, GW_IDEM_SHARED_STOPPING, NULL, s->o.arg);
        return;
    }
    switch (gw_idem_shared_parse(reply, &answer)) {
    case GW_IDEM_SHARED_R_CLAIMED:
        call->idem.shared = true;
        s->o.done(call, GW_IDEM_SHARED_CLAIMED, NULL, s->o.arg);
        break;
    case GW_IDEM_SHARED_R_CONFLICT:
        s->o.done(call, GW_IDEM_SHARED_CONFLICT, NULL, s->o.arg);
        break;
    case GW_IDEM_SHARED_R_DONE:
        s->o.done(call, GW_IDEM_SHARED_REPLAY, &answer, s->o.arg);
        free(answer.body); /* NULL when taken */
        break;
    case GW_IDEM_SHARED_R_PENDING:
        if (call->idem.wait_deadline_ns > 0 && now_ns() >= call->idem.wait_deadline_ns) {
            s->o.done(call, GW_IDEM_SHARED_TIMEOUT, NULL, s->o.arg);
        } else if (s->stopped) {
            s->o.done(call, GW_IDEM_SHARED_STOPPING, NULL, s->o.arg);
        } else if (s->polling_count >= GW_IDEM_SHARED_MAX_POLLING) {
            s->o.done(call, GW_IDEM_SHARED_BUSY, NULL, s->o.arg);
        } else {
            poll_later(s, call);
        }
        break;
    case GW_IDEM_SHARED_R_NOMEM:
    case GW_IDEM_SHARED_R_BAD:
    default:
        log_fallback(s, reply == NULL
                            ? "no answer within limits.redis.timeout_ms"
                            : (reply->type == REDIS_REPLY_ERROR ? "error reply" : "bad reply"));
        s->o.done(call, GW_IDEM_SHARED_FAILED, NULL, s->o.arg);
        break;
    }
}

/* Calls whose turn to ask again came: asked, or ended by their deadline. */
static void on_timer(void *arg)
{
    struct gw_idem_shared *s = arg;
    int64_t now = now_ns();
    struct gw_call *due = NULL;
    for (struct gw_call **c = &s->polling; *c != NULL;) {
        struct gw_call *call = *c;
        if (call->idem.due_ns <= now) {
            *c = call->idem.next;
            s->polling_count--;
            call->idem.next = due;
            due = call;
        } else {
            c = &call->idem.next;
        }
    }
    arm(s);
    while (due != NULL) {
        struct gw_call *call = due;
        due = call->idem.next;
        call->idem.next = NULL;
        if (call->idem.wait_deadline_ns > 0 && now >= call->idem.wait_deadline_ns) {
            s->o.done(call, GW_IDEM_SHARED_TIMEOUT, NULL, s->o.arg);
        } else if (send_claim(s, call) != GW_OK) {
            log_fallback(s, "not connected, or too many commands pending");
            s->o.done(call, GW_IDEM_SHARED_FAILED, NULL, s->o.arg);
        }
    }
}

enum gw_err gw_idem_shared_claim(struct gw_idem_shared *s, struct gw_call *call,
                                 const struct gw_idem_key *key, int64_t deadline_ns)
{
    enum gw_err err;
    if (s->stopped) {
        return GW_ERR_STOPPED;
    }
    unsigned char raw[16];
    randombytes_buf(raw, sizeof raw);
    sodium_bin2hex(call->idem.owner, sizeof call->idem.owner, raw, sizeof raw);
    memcpy(call->idem.slot, key->slot, sizeof call->idem.slot);
    memcpy(call->idem.params, key->params, sizeof call->idem.params);
    call->idem.wait_deadline_ns = deadline_ns;
    call->idem.poll_ms = POLL_FIRST_MS;
    call->idem.next = NULL;
    call->idem.shared = false;
    if ((err = send_claim(s, call)) != GW_OK) {
        log_fallback(s, err == GW_ERR_BUSY ? "not connected, or too many commands pending"
                                           : gw_err_str(err));
    }
    return err;
}

void gw_idem_shared_finish(struct gw_idem_shared *s, struct gw_call *call, unsigned status,
                           const char *body, size_t len, bool keep)
{
    if (s == NULL || !call->idem.shared) {
        return;
    }
    call->idem.shared = false;
    struct gw_redis *conn = gw_limiter_redis(s->o.limiter);
    char key[GW_IDEM_SHARED_KEY_MAX], st[16], window[24];
    if (conn == NULL || record_key(s, call, key) != GW_OK) {
        return; /* the gateway stops: the lease ends the record */
    }
    bool done = keep && body != NULL && len <= GW_IDEM_SHARED_MAX_ANSWER;
    /* Window 0: kept just long enough for the calls polling it on other replicas. */
    snprintf(st, sizeof st, "%u", status);
    snprintf(window, sizeof window, "%lld",
             (long long)(s->o.window_ms > 0 ? s->o.window_ms : 2 * POLL_MAX_MS));
    const char *argv[] = {"EVAL", finish_script,    "1",
                          key,    call->idem.owner, done ? "done" : "free",
                          st,     done ? body : "", window};
    size_t lens[sizeof argv / sizeof argv[0]];
    for (size_t i = 0; i < sizeof argv / sizeof argv[0]; i++) {
        /* The body is bytes, not a string. */
        lens[i] = i == 7 ? (done ? len : 0) : strlen(argv[i]);
    }
    /* Nobody waits for the reply; when Redis is away the lease ends the record instead. */
    if (gw_redis_command(conn, (int)(sizeof argv / sizeof argv[0]), argv, lens, NULL, NULL, NULL) !=
        GW_OK) {
        log_fallback(s, "not connected, or too many commands pending");
    }
}

enum gw_err gw_idem_shared_new(const struct gw_idem_shared_options *o, struct gw_loop *loop,
                               struct gw_idem_shared **out)
{
    enum gw_err err;
    struct gw_idem_shared *s = calloc(1, sizeof *s);
    if (s == NULL) {
        return GW_ERR_NOMEM;
    }
    s->o = *o;
    if ((s->prefix = strdup(o->key_prefix != NULL ? o->key_prefix : "tcgw")) == NULL ||
        (s->timer = gw_loop_timer_new(loop, on_timer, s)) == NULL) {
        err = GW_ERR_NOMEM;
        goto out;
    }
    *out = s;
    s = NULL;
    err = GW_OK;
out:
    gw_idem_shared_free(s);
    return err;
}

void gw_idem_shared_stop(struct gw_idem_shared *s)
{
    if (s == NULL || s->stopped) {
        return;
    }
    s->stopped = true;
    while (s->polling != NULL) {
        struct gw_call *call = s->polling;
        s->polling = call->idem.next;
        s->polling_count--;
        call->idem.next = NULL;
        s->o.done(call, GW_IDEM_SHARED_STOPPING, NULL, s->o.arg);
    }
    if (s->timer != NULL) {
        gw_loop_timer_set(s->timer, -1);
    }
}

void gw_idem_shared_free(struct gw_idem_shared *s)
{
    if (s == NULL) {
        return;
    }
    gw_idem_shared_stop(s);
    gw_loop_timer_free(s->timer);
    free(s->prefix);
    free(s);
}
