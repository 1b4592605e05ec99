/* Unit tests for idem: first call, replay, conflict, waiting calls handed the first answer on
 * their port's loop (from another thread too), a waiting call's deadline, a token freed when the
 * first call was not sent, the replay window, keys scoped per caller, and a full table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/loop.h"
#include "idem/idem.h"

#define MS 1000000LL
#define NEVER INT64_MAX

struct seen {
    struct gw_loop *loop;
    int calls;
    int timeouts;
    struct gw_call *last_call;
    char body[64];
    unsigned status;
    int stop_after;
};

static void ready(struct gw_call *call, struct gw_idem_answer *answer, void *arg)
{
    struct seen *s = arg;
    s->calls++;
    s->last_call = call;
    if (answer == NULL) {
        s->timeouts++;
    } else {
        snprintf(s->body, sizeof s->body, "%.*s", (int)answer->len, answer->body);
        s->status = answer->status;
        free(answer->body);
    }
    if (s->calls >= s->stop_after) {
        gw_loop_stop(s->loop);
    }
}

static void nothing(void *arg)
{
    (void)arg;
}

static int64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void key(const char *caller, const char *token, const char *params, struct gw_idem_key *k)
{
    gw_idem_key_make(caller, "gaap", "ModifyProxyConfiguration", token, params, strlen(params), k);
}

struct fixture {
    struct gw_idem *idem;
    struct gw_loop *loop;
    struct gw_idem_port *port;
    struct seen seen;
};

static void setup(struct fixture *f, size_t max, long window_s)
{
    memset(f, 0, sizeof *f);
    assert_int_equal(sodium_init() >= 0, 1);
    f->idem = gw_idem_new(max, window_s);
    assert_non_null(f->idem);
    assert_int_equal(gw_loop_new(nothing, NULL, &f->loop), GW_OK);
    f->seen.loop = f->loop;
    f->seen.stop_after = 1;
    f->port = gw_idem_port_new(f->idem, f->loop, ready, &f->seen);
    assert_non_null(f->port);
}

static void teardown(struct fixture *f)
{
    gw_idem_port_free(f->port);
    gw_loop_free(f->loop);
    gw_idem_free(f->idem);
}

static void test_first_wait_replay_conflict(void **state)
{
    (void)state;
    struct fixture f;
    setup(&f, 100, 60);
    struct gw_idem_key k, other, bot;
    key("local", "tok", "{\"A\":1}", &k);
    key("local", "tok", "{\"A\":2}", &other);
    key("bot", "tok", "{\"A\":1}", &bot);
    struct gw_idem_entry *e = NULL, *e2 = NULL;
    struct gw_idem_answer a = {0};
    struct gw_call *c1 = (struct gw_call *)&f, *c2 = (struct gw_call *)&k;
    assert_int_equal(gw_idem_begin(f.port, &k, c1, now_ns(), NEVER, &e, &a), GW_IDEM_FIRST);
    assert_non_null(e);
    assert_int_equal(gw_idem_begin(f.port, &k, c2, now_ns(), NEVER, &e2, &a), GW_IDEM_WAIT);
    assert_int_equal(gw_idem_begin(f.port, &other, c2, now_ns(), NEVER, &e2, &a), GW_IDEM_CONFLICT);
    /* Another caller's token of the same spelling is another entry. */
    assert_int_equal(gw_idem_begin(f.port, &bot, c2, now_ns(), NEVER, &e2, &a), GW_IDEM_FIRST);
    assert_int_equal(gw_idem_count(f.idem), 2);
    gw_idem_complete(f.idem, e, 200, "first", 5, true, now_ns());
    assert_int_equal(gw_loop_run(f.loop), GW_OK);
    assert_int_equal(f.seen.calls, 1);
    assert_ptr_equal(f.seen.last_call, c2);
    assert_string_equal(f.seen.body, "first");
    assert_int_equal(f.seen.status, 200);
    assert_int_equal(gw_idem_begin(f.port, &k, c1, now_ns(), NEVER, &e, &a), GW_IDEM_REPLAY);
    assert_int_equal(a.len, 5);
    assert_memory_equal(a.body, "first", 5);
    free(a.body);
    assert_int_equal(gw_idem_begin(f.port, &other, c1, now_ns(), NEVER, &e, &a), GW_IDEM_CONFLICT);
    gw_idem_complete(f.idem, e2, 200, "bot", 3, true, now_ns());
    teardown(&f);
}

static void test_not_sent_frees_token(void **state)
{
    (void)state;
    struct fixture f;
    setup(&f, 100, 60);
    struct gw_idem_key k;
    key("local", "tok", "{}", &k);
    struct gw_idem_entry *e = NULL;
    struct gw_idem_answer a = {0};
    assert_int_equal(gw_idem_begin(f.port, &k, NULL, now_ns(), NEVER, &e, &a), GW_IDEM_FIRST);
    gw_idem_complete(f.idem, e, 200, "unsent", 6, false, now_ns());
    assert_int_equal(gw_idem_count(f.idem), 0);
    assert_int_equal(gw_idem_begin(f.port, &k, NULL, now_ns(), NEVER, &e, &a), GW_IDEM_FIRST);
    gw_idem_complete(f.idem, e, 200, "x", 1, true, now_ns());
    teardown(&f);
}

static void test_window_and_full(void **state)
{
    (void)state;
    struct fixture f;
    setup(&f, 16, 1);
    struct gw_idem_entry *e = NULL;
    struct gw_idem_answer a = {0};
    int64_t t = now_ns();
    for (int i = 0; i < 16; i++) {
        char tok[16];
        struct gw_idem_key k;
        snprintf(tok, sizeof tok, "t%d", i);
        key("local", tok, "{}", &k);
        assert_int_equal(gw_idem_begin(f.port, &k, NULL, t, NEVER, &e, &a), GW_IDEM_FIRST);
        gw_idem_complete(f.idem, e, 200, "x", 1, true, t);
    }
    struct gw_idem_key k16, k0;
    key("local", "t16", "{}", &k16);
    key("local", "t0", "{}", &k0);
    assert_int_equal(gw_idem_begin(f.port, &k16, NULL, t, NEVER, &e, &a), GW_IDEM_FULL);
    /* After the window, an expired entry is swept where it is looked up. */
    int64_t later = t + 1100 * MS;
    assert_int_equal(gw_idem_begin(f.port, &k0, NULL, later, NEVER, &e, &a), GW_IDEM_FIRST);
    gw_idem_complete(f.idem, e, 200, "y", 1, true, later);
    /*
     * And new tokens, which land in other buckets than the expired ones, are taken too: a full
     * table sweeps itself whole rather than refusing until each old bucket is looked up again.
     */
    for (int i = 0; i < 15; i++) {
        char tok[16];
        struct gw_idem_key k;
        snprintf(tok, sizeof tok, "new%d", i);
        key("local", tok, "{}", &k);
        assert_int_equal(gw_idem_begin(f.port, &k, NULL, later + MS, NEVER, &e, &a), GW_IDEM_FIRST);
        gw_idem_complete(f.idem, e, 200, "z", 1, true, later + MS);
    }
    teardown(&f);
}

static void test_waiter_deadline(void **state)
{
    (void)state;
    struct fixture f;
    setup(&f, 100, 60);
    struct gw_idem_key k;
    key("local", "slow", "{}", &k);
    struct gw_idem_entry *e = NULL, *unused = NULL;
    struct gw_idem_answer a = {0};
    struct gw_call *waiter = (struct gw_call *)&k;
    assert_int_equal(gw_idem_begin(f.port, &k, NULL, now_ns(), NEVER, &e, &a), GW_IDEM_FIRST);
    assert_int_equal(gw_idem_begin(f.port, &k, waiter, now_ns(), now_ns() + 30 * MS, &unused, &a),
                     GW_IDEM_WAIT);
    assert_int_equal(gw_loop_run(f.loop), GW_OK);
    assert_int_equal(f.seen.timeouts, 1);
    assert_ptr_equal(f.seen.last_call, waiter);
    /* The first call completes later: nobody is waiting any more. */
    gw_idem_complete(f.idem, e, 200, "late", 4, true, now_ns());
    assert_int_equal(f.seen.calls, 1);
    teardown(&f);
}

struct completer {
    struct gw_idem *idem;
    struct gw_idem_entry *e;
};

static void *complete_later(void *arg)
{
    struct completer *c = arg;
    struct timespec d = {0, 20 * MS};
    nanosleep(&d, NULL);
    gw_idem_complete(c->idem, c->e, 200, "other-thread", 12, true, now_ns());
    return NULL;
}

static void test_cross_thread_delivery(void **state)
{
    (void)state;
    struct fixture f;
    setup(&f, 100, 60);
    f.seen.stop_after = 3;
    struct gw_idem_key k;
    key("local", "x", "{}", &k);
    struct gw_idem_entry *e = NULL, *unused = NULL;
    struct gw_idem_answer a = {0};
    assert_int_equal(gw_idem_begin(f.port, &k, NULL, now_ns(), NEVER, &e, &a), GW_IDEM_FIRST);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(gw_idem_begin(f.port, &k, (struct gw_call *)((char *)&f.seen + i),
                                       now_ns(), NEVER, &unused, &a),
                         GW_IDEM_WAIT);
    }
    struct completer c = {f.idem, e};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, complete_later, &c), 0);
    assert_int_equal(gw_loop_run(f.loop), GW_OK);
    pthread_join(th, NULL);
    assert_int_equal(f.seen.calls, 3);
    assert_int_equal(f.seen.timeouts, 0);
    assert_string_equal(f.seen.body, "other-thread");
    teardown(&f);
}

static void test_port_free_with_waiters(void **state)
{
    (void)state;
    struct fixture f;
    setup(&f, 100, 60);
    struct gw_idem_key k;
    key("local", "z", "{}", &k);
    struct gw_idem_entry *e = NULL, *unused = NULL;
    struct gw_idem_answer a = {0};
    struct gw_idem_port *other = gw_idem_port_new(f.idem, f.loop, ready, &f.seen);
    assert_int_equal(gw_idem_begin(f.port, &k, NULL, now_ns(), NEVER, &e, &a), GW_IDEM_FIRST);
    assert_int_equal(gw_idem_begin(other, &k, (struct gw_call *)&k, now_ns(), NEVER, &unused, &a),
                     GW_IDEM_WAIT);
    gw_idem_port_free(other); /* its waiter is dropped: completing touches nothing freed */
    gw_idem_complete(f.idem, e, 200, "a", 1, true, now_ns());
    assert_int_equal(f.seen.calls, 0);
    teardown(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_wait_replay_conflict),
        cmocka_unit_test(test_not_sent_frees_token),
        cmocka_unit_test(test_window_and_full),
        cmocka_unit_test(test_waiter_deadline),
        cmocka_unit_test(test_cross_thread_delivery),
        cmocka_unit_test(test_port_free_with_waiters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
