/* Unit tests for retry: the read-only rule, classification of results, full-jitter backoff
 * bounds, and the sliding-window retry budget with an injected clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "retry/retry.h"

static void test_read_only(void **state)
{
    (void)state;
    assert_true(gw_retry_read_only("DescribeProxies"));
    assert_true(gw_retry_read_only("InquiryPriceCreateProxy"));
    assert_true(gw_retry_read_only("GetFoo"));
    assert_true(gw_retry_read_only("ListThings"));
    assert_false(gw_retry_read_only("ModifyProxyConfiguration"));
    assert_false(gw_retry_read_only("CreateCertificate"));
    assert_false(gw_retry_read_only("Describe")); /* no word after the verb */
    assert_false(gw_retry_read_only("Describeproxies"));
    assert_false(gw_retry_read_only("GetawayProxies"));
    assert_false(gw_retry_read_only(""));
    assert_false(gw_retry_read_only(NULL));
}

static enum gw_retry_why answered(long status, const char *body)
{
    return gw_retry_classify(GW_UPSTREAM_ANSWERED, status, body, body ? strlen(body) : 0);
}

static void test_classify(void **state)
{
    (void)state;
    assert_int_equal(answered(200, "{\"Response\":{\"RequestId\":\"x\"}}"), GW_RETRY_NO);
    assert_int_equal(answered(503, "busy"), GW_RETRY_5XX);
    assert_int_equal(answered(500, NULL), GW_RETRY_5XX);
    assert_int_equal(answered(404, "x"), GW_RETRY_NO);
    assert_int_equal(
        answered(200, "{\"Response\":{\"Error\":{\"Code\":\"RequestLimitExceeded\"}}}"),
        GW_RETRY_THROTTLED);
    assert_int_equal(
        answered(200,
                 "{\"Response\":{\"Error\":{\"Code\":\"RequestLimitExceeded.UinLimitExceeded\"}}}"),
        GW_RETRY_THROTTLED);
    assert_int_equal(answered(200, "{\"Response\":{\"Error\":{\"Code\":\"InternalError\"}}}"),
                     GW_RETRY_INTERNAL);
    assert_int_equal(
        answered(200, "{\"Response\":{\"Error\":{\"Code\":\"InternalError.DbError\"}}}"),
        GW_RETRY_INTERNAL);
    assert_int_equal(answered(200, "{\"Response\":{\"Error\":{\"Code\":\"InternalErrorish\"}}}"),
                     GW_RETRY_NO);
    assert_int_equal(answered(200, "{\"Response\":{\"Error\":{\"Code\":\"InvalidParameter\"}}}"),
                     GW_RETRY_NO);
    assert_int_equal(answered(200, "not json"), GW_RETRY_NO); /* malformed: not retried */
    assert_int_equal(gw_retry_classify(GW_UPSTREAM_CONNECT, 0, NULL, 0), GW_RETRY_CONNECT);
    assert_int_equal(gw_retry_classify(GW_UPSTREAM_FAILED, 0, NULL, 0), GW_RETRY_FAILED);
    assert_int_equal(gw_retry_classify(GW_UPSTREAM_TIMEOUT, 0, NULL, 0), GW_RETRY_TIMEOUT);
    assert_int_equal(gw_retry_classify(GW_UPSTREAM_TLS, 0, NULL, 0), GW_RETRY_NO);
    assert_int_equal(gw_retry_classify(GW_UPSTREAM_TOO_LARGE, 0, NULL, 0), GW_RETRY_NO);
    assert_int_equal(gw_retry_classify(GW_UPSTREAM_NOT_SENT, 0, NULL, 0), GW_RETRY_NO);
    assert_int_equal(gw_retry_classify(GW_UPSTREAM_ABORTED, 0, NULL, 0), GW_RETRY_NO);
    assert_string_equal(gw_retry_why_name(GW_RETRY_5XX), "5xx");
    assert_string_equal(gw_retry_why_name(GW_RETRY_NO), "no");
}

static void test_backoff(void **state)
{
    (void)state;
    /* The ceiling doubles from base and stops at cap; the delay is in [0, ceiling]. */
    assert_int_equal(gw_retry_backoff_ms(1, 50, 1000, 0), 0);
    assert_int_equal(gw_retry_backoff_ms(1, 50, 1000, 50), 50);
    assert_int_equal(gw_retry_backoff_ms(1, 50, 1000, 51), 0);
    assert_int_equal(gw_retry_backoff_ms(2, 50, 1000, 100), 100);
    assert_int_equal(gw_retry_backoff_ms(3, 50, 1000, 200), 200);
    assert_int_equal(gw_retry_backoff_ms(30, 50, 1000, 1000), 1000);
    assert_int_equal(gw_retry_backoff_ms(30, 50, 1000, 1001), 0);
    for (uint32_t r = 0; r < 100000; r += 7) {
        long d = gw_retry_backoff_ms(4, 50, 1000, r * 2654435761u);
        assert_true(d >= 0 && d <= 400);
    }
    assert_int_equal(gw_retry_backoff_ms(1, 0, 1000, 5), 0);
    assert_int_equal(gw_retry_backoff_ms(1, 50, 0, 5), 0);
}

static void test_budget(void **state)
{
    (void)state;
    struct gw_retry_budget *b = gw_retry_budget_new(0.1, 2, 10);
    assert_non_null(b);
    int64_t t = 1000;
    /* The floor: two retries with no calls. */
    assert_true(gw_retry_budget_take(b, t));
    assert_true(gw_retry_budget_take(b, t));
    assert_false(gw_retry_budget_take(b, t));
    /* 10% of calls on top: 30 calls allow 3 more. */
    for (int i = 0; i < 30; i++) {
        gw_retry_budget_call(b, t + 1);
    }
    int allowed = 0;
    while (gw_retry_budget_take(b, t + 2)) {
        allowed++;
    }
    assert_int_equal(allowed, 3);
    /* The window slides: ten seconds later the old counts are gone (floor again). */
    allowed = 0;
    while (gw_retry_budget_take(b, t + 13)) {
        allowed++;
    }
    assert_int_equal(allowed, 2);
    gw_retry_budget_free(b);
    gw_retry_budget_free(NULL);
    assert_false(gw_retry_budget_take(NULL, t));
    /* Out-of-range windows are clamped. */
    b = gw_retry_budget_new(1.0, 0, 0);
    gw_retry_budget_call(b, 5);
    assert_true(gw_retry_budget_take(b, 5));
    assert_false(gw_retry_budget_take(b, 5));
    assert_true(gw_retry_budget_take(b, 6) == false); /* one-second window: no calls at 6 */
    gw_retry_budget_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_only),
        cmocka_unit_test(test_classify),
        cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_budget),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
