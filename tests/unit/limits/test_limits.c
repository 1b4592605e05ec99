/* Unit tests for limits: GCRA bucket math with an injected clock (rate, burst, refill, exact
 * refusals and retry times), rule resolution, fair shares between callers of one credential,
 * borrowing of idle shares, quotas, scaling, and a full table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "limits/limits.h"

#define MS 1000000LL
#define SEC 1000000000LL
#define T0 (1000 * SEC) /* an arbitrary start: a monotonic clock is far from 0 */

static struct gw_limits *make(const struct gw_limits_options *o)
{
    struct gw_limits *l = NULL;
    assert_int_equal(gw_limits_new(o, &l), GW_OK);
    return l;
}

static struct gw_limits_request req(const char *caller, const char *const *sharers, size_t n)
{
    struct gw_limits_request r = {.credential = "default",
                                  .service = "gaap",
                                  .action = "DescribeProxies",
                                  .caller = caller,
                                  .sharers = sharers,
                                  .sharer_count = n};
    return r;
}

static int take_n(struct gw_limits *l, const struct gw_limits_request *r, int64_t now, int n)
{
    int ok = 0;
    struct gw_limits_verdict v;
    for (int i = 0; i < n; i++) {
        ok += gw_limits_take(l, r, 1, now, &v);
    }
    return ok;
}

static void test_burst_then_exact_refusal(void **state)
{
    (void)state;
    struct gw_limits_options o = {.default_rate = 20};
    struct gw_limits *l = make(&o);
    struct gw_limits_request r = req("a", NULL, 0);
    struct gw_limits_verdict v;
    /* A full bucket: exactly the burst (the rate by default) at one instant. */
    for (int i = 0; i < 20; i++) {
        assert_true(gw_limits_take(l, &r, 1, T0, &v));
        assert_int_equal(v.refused, GW_LIMITS_OK);
    }
    assert_false(gw_limits_take(l, &r, 1, T0, &v));
    assert_int_equal(v.refused, GW_LIMITS_CAP);
    assert_int_equal(v.retry_ns, 50 * MS); /* one token every 50 ms */
    /* 1 ns early is still refused, and says 1 ns. */
    assert_false(gw_limits_take(l, &r, 1, T0 + 50 * MS - 1, &v));
    assert_int_equal(v.retry_ns, 1);
    /* A refused call took nothing: the token is there at 50 ms, and only one. */
    assert_true(gw_limits_take(l, &r, 1, T0 + 50 * MS, &v));
    assert_false(gw_limits_take(l, &r, 1, T0 + 50 * MS, &v));
    gw_limits_free(l);
}

static void test_refill_and_steady_rate(void **state)
{
    (void)state;
    struct gw_limits_options o = {.default_rate = 10, .default_burst = 5};
    struct gw_limits *l = make(&o);
    struct gw_limits_request r = req("a", NULL, 0);
    assert_int_equal(take_n(l, &r, T0, 10), 5); /* burst 5 */
    /* Half a second refills 5 tokens, never more than the burst. */
    assert_int_equal(take_n(l, &r, T0 + 500 * MS, 10), 5);
    assert_int_equal(take_n(l, &r, T0 + 100 * SEC, 10), 5);
    /* Steady: one call every ms for 3 s admits rate * 3 s + burst at most. */
    int ok = 0;
    for (int64_t t = 0; t < 3 * SEC; t += MS) {
        ok += take_n(l, &r, T0 + 200 * SEC + t, 1);
    }
    assert_true(ok <= 10 * 3 + 5);
    assert_true(ok >= 10 * 3);
    gw_limits_free(l);
}

static void test_fractional_rate(void **state)
{
    (void)state;
    struct gw_limits_options o = {.default_rate = 0.5};
    struct gw_limits *l = make(&o);
    struct gw_limits_request r = req("a", NULL, 0);
    struct gw_limits_verdict v;
    assert_true(gw_limits_take(l, &r, 1, T0, &v)); /* burst at least 1 */
    assert_false(gw_limits_take(l, &r, 1, T0 + SEC, &v));
    assert_int_equal(v.retry_ns, SEC);
    assert_true(gw_limits_take(l, &r, 1, T0 + 2 * SEC, &v));
    gw_limits_free(l);
}

static void test_rules(void **state)
{
    (void)state;
    struct gw_limits_rate actions[] = {{"gaap.DescribeProxies", 5, 2}};
    struct gw_limits_rate services[] = {{"gaap", 7, 0}};
    struct gw_limits_rate callers[] = {{"bot", 1, 3}};
    struct gw_limits_options o = {.actions = actions,
                                  .action_count = 1,
                                  .services = services,
                                  .service_count = 1,
                                  .callers = callers,
                                  .caller_count = 1};
    struct gw_limits *l = make(&o);
    struct gw_limits_rule rule;
    struct gw_limits_request r = req("bot", NULL, 0);
    gw_limits_rule(l, &r, 1, &rule);
    assert_true(rule.rate == 5 && rule.burst == 2);
    assert_true(rule.quota_rate == 1 && rule.quota_burst == 3);
    r.action = "DescribeAccessRegionsByDestRegion";
    r.caller = "other";
    gw_limits_rule(l, &r, 1, &rule);
    assert_true(rule.rate == 7 && rule.burst == 7 && rule.quota_rate == 0);
    r.service = "cvm";
    gw_limits_rule(l, &r, 0.5, &rule); /* the default, scaled */
    assert_true(rule.rate == 10 && rule.burst == 10);
    gw_limits_free(l);

    /* Tencent's published limit for ModifyProxyConfiguration applies without a rule. */
    struct gw_limits_options none = {.default_rate = 100};
    l = make(&none);
    r = req("a", NULL, 0);
    r.action = "ModifyProxyConfiguration";
    gw_limits_rule(l, &r, 1, &rule);
    assert_true(rule.rate == 20 && rule.burst == 20);
    gw_limits_free(l);
}

static void test_invalid_options(void **state)
{
    (void)state;
    struct gw_limits *l = NULL;
    struct gw_limits_rate bad[] = {{"gaap", -1, 0}};
    struct gw_limits_options o = {.services = bad, .service_count = 1};
    assert_int_equal(gw_limits_new(&o, &l), GW_ERR_INVALID);
    struct gw_limits_rate half_burst[] = {{"gaap", 1, 0.5}};
    o.services = half_burst;
    assert_int_equal(gw_limits_new(&o, &l), GW_ERR_INVALID);
    assert_null(l);
}

static void test_quota(void **state)
{
    (void)state;
    struct gw_limits_rate callers[] = {{"bot", 2, 0}};
    struct gw_limits_options o = {.callers = callers, .caller_count = 1};
    struct gw_limits *l = make(&o);
    struct gw_limits_request r = req("bot", NULL, 0);
    struct gw_limits_verdict v;
    assert_int_equal(take_n(l, &r, T0, 5), 2);
    assert_false(gw_limits_take(l, &r, 1, T0, &v));
    assert_int_equal(v.refused, GW_LIMITS_QUOTA);
    assert_int_equal(v.retry_ns, 500 * MS);
    /* The quota spans actions; another caller is not held by it. */
    r.action = "DescribeAccessRegionsByDestRegion";
    assert_int_equal(take_n(l, &r, T0, 1), 0);
    r.caller = "other";
    assert_int_equal(take_n(l, &r, T0, 1), 1);
    gw_limits_free(l);
}

static void test_cap_refusal_gives_quota_back(void **state)
{
    (void)state;
    struct gw_limits_rate callers[] = {{"bot", 100, 0}};
    struct gw_limits_options o = {.default_rate = 1, .callers = callers, .caller_count = 1};
    struct gw_limits *l = make(&o);
    struct gw_limits_request r = req("bot", NULL, 0);
    /* 1/s cap: 100 tries take one cap token, and give back the 99 quota tokens they took. */
    assert_int_equal(take_n(l, &r, T0, 100), 1);
    r.action = "DescribeAccessRegionsByDestRegion";
    assert_int_equal(take_n(l, &r, T0, 100), 1);
    gw_limits_free(l);
}

/* Two callers of one credential: 20/s, shares 10/s (burst 10) each. */
static void test_shares_noisy_cannot_starve_quiet(void **state)
{
    (void)state;
    struct gw_limits_options o = {.default_rate = 20, .fair_share = true};
    struct gw_limits *l = make(&o);
    const char *sharers[] = {"noisy", "quiet"};
    struct gw_limits_request noisy = req("noisy", sharers, 2);
    struct gw_limits_request quiet = req("quiet", sharers, 2);
    struct gw_limits_verdict v;
    int noisy_ok = 0, quiet_ok = 0, quiet_asked = 0;
    /* 10 s: noisy asks 100/s (every 10 ms), quiet 5/s (every 200 ms). */
    for (int64_t t = 0; t < 10 * SEC; t += 10 * MS) {
        noisy_ok += gw_limits_take(l, &noisy, 1, T0 + t, &v);
        if (t % (200 * MS) == 0) {
            quiet_asked++;
            quiet_ok += gw_limits_take(l, &quiet, 1, T0 + t, &v);
        }
    }
    assert_int_equal(quiet_ok, quiet_asked); /* below its share: every call admitted */
    assert_true(noisy_ok + quiet_ok <= 20 * 10 + 20);
    /* Work-conserving: noisy gets its share and most of what quiet leaves unused. */
    assert_true(noisy_ok >= 10 * 10 + 40);
    gw_limits_free(l);
}

static void test_shares_both_saturating_split_equally(void **state)
{
    (void)state;
    struct gw_limits_options o = {.default_rate = 20, .fair_share = true};
    struct gw_limits *l = make(&o);
    const char *sharers[] = {"a", "b"};
    struct gw_limits_request a = req("a", sharers, 2);
    struct gw_limits_request b = req("b", sharers, 2);
    struct gw_limits_verdict v;
    int a_ok = 0, b_ok = 0;
    /* a asks 10 times as often as b, both far above their share (a 1000/s, b 100/s). */
    for (int64_t t = 0; t < 10 * SEC; t += MS) {
        a_ok += gw_limits_take(l, &a, 1, T0 + t, &v);
        if (t % (10 * MS) == 0) {
            b_ok += gw_limits_take(l, &b, 1, T0 + t, &v);
        }
    }
    assert_true(b_ok >= 10 * 10);    /* at least its share */
    assert_true(a_ok + b_ok <= 220); /* never above the cap */
    assert_true(a_ok + b_ok >= 200); /* and the cap is used */
    gw_limits_free(l);
}

static void test_borrow_only_from_idle_share(void **state)
{
    (void)state;
    struct gw_limits_options o = {.default_rate = 20, .fair_share = true};
    struct gw_limits *l = make(&o);
    const char *sharers[] = {"a", "b"};
    struct gw_limits_request a = req("a", sharers, 2);
    struct gw_limits_request b = req("b", sharers, 2);
    struct gw_limits_verdict v;
    assert_int_equal(take_n(l, &a, T0, 10), 10);   /* a's own share (burst 10) */
    assert_true(gw_limits_take(l, &a, 1, T0, &v)); /* b's share is full: lent */
    assert_true(v.borrowed);
    assert_false(gw_limits_take(l, &a, 1, T0, &v)); /* b's share is no longer full */
    assert_int_equal(v.refused, GW_LIMITS_SHARE);
    /* b keeps the rest of its burst. */
    assert_int_equal(take_n(l, &b, T0, 10), 9);
    gw_limits_free(l);
}

static void test_without_fair_share_one_bucket(void **state)
{
    (void)state;
    struct gw_limits_options o = {.default_rate = 20, .fair_share = false};
    struct gw_limits *l = make(&o);
    const char *sharers[] = {"a", "b"};
    struct gw_limits_request a = req("a", sharers, 2);
    struct gw_limits_request b = req("b", sharers, 2);
    assert_int_equal(take_n(l, &a, T0, 25), 20);
    assert_int_equal(take_n(l, &b, T0, 5), 0); /* starved: what fair_share prevents */
    gw_limits_free(l);
}

static void test_credentials_and_actions_are_separate(void **state)
{
    (void)state;
    struct gw_limits_options o = {.default_rate = 2};
    struct gw_limits *l = make(&o);
    struct gw_limits_request r = req("a", NULL, 0);
    assert_int_equal(take_n(l, &r, T0, 5), 2);
    r.credential = "other";
    assert_int_equal(take_n(l, &r, T0, 5), 2);
    r.action = "DescribeAccessRegionsByDestRegion";
    assert_int_equal(take_n(l, &r, T0, 5), 2);
    gw_limits_free(l);
}

static void test_table_full(void **state)
{
    (void)state;
    struct gw_limits_options o = {.default_rate = 2, .max_buckets = 64};
    struct gw_limits *l = make(&o);
    struct gw_limits_verdict v;
    char name[32];
    int full = 0;
    for (int i = 0; i < 200; i++) {
        snprintf(name, sizeof name, "cred%d", i);
        struct gw_limits_request r = req("a", NULL, 0);
        r.credential = name;
        if (!gw_limits_take(l, &r, 1, T0, &v)) {
            assert_int_equal(v.refused, GW_LIMITS_FULL);
            full++;
        }
    }
    assert_int_equal(full, 200 - 64);
    gw_limits_free(l);
}

int main(void)
{
    if (sodium_init() < 0) {
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_then_exact_refusal),
        cmocka_unit_test(test_refill_and_steady_rate),
        cmocka_unit_test(test_fractional_rate),
        cmocka_unit_test(test_rules),
        cmocka_unit_test(test_invalid_options),
        cmocka_unit_test(test_quota),
        cmocka_unit_test(test_cap_refusal_gives_quota_back),
        cmocka_unit_test(test_shares_noisy_cannot_starve_quiet),
        cmocka_unit_test(test_shares_both_saturating_split_equally),
        cmocka_unit_test(test_borrow_only_from_idle_share),
        cmocka_unit_test(test_without_fair_share_one_bucket),
        cmocka_unit_test(test_credentials_and_actions_are_separate),
        cmocka_unit_test(test_table_full),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
