/* metrics: counting per worker, adding up on scrape, bounded series, the text format. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/call.h"
#include "metrics/metrics.h"

static struct gw_call *make_call(const char *caller, enum gw_decision d, const char *code)
{
    struct gw_call *call = gw_call_new(1024, 1024);
    assert_non_null(call);
    snprintf(call->service, sizeof call->service, "gaap");
    snprintf(call->action, sizeof call->action, "DescribeProxies");
    snprintf(call->caller, sizeof call->caller, "%s", caller);
    call->decision = d;
    call->error_code = code;
    return call;
}

static char *format(struct gw_metrics *m, struct gw_buf *out)
{
    struct gw_metrics_gauges g = {.shared_limits = -1, .in_flight = 3};
    gw_buf_init(out, GW_METRICS_MAX_TEXT);
    assert_int_equal(gw_metrics_format(m, &g, out), GW_OK);
    return out->data;
}

static void test_counts_add_up_over_workers(void **state)
{
    (void)state;
    struct gw_metrics *m = NULL;
    struct gw_buf out;
    assert_int_equal(gw_metrics_new(2, NULL, "1.2.3", &m), GW_OK);
    struct gw_call *ok = make_call("app", GW_DECISION_ALLOW, NULL);
    struct gw_call *denied = make_call("app", GW_DECISION_DENY, "UnauthorizedOperation");
    struct gw_call *limited = make_call("app", GW_DECISION_ALLOW, "RequestLimitExceeded");
    gw_metrics_record_at(gw_metrics_slot(m, 0), ok, 1000);
    gw_metrics_record_at(gw_metrics_slot(m, 1), ok, 1000);
    gw_metrics_record_at(gw_metrics_slot(m, 1), denied, 1000);
    gw_metrics_record_at(gw_metrics_slot(m, 0), limited, 1000);
    const char *text = format(m, &out);
    /* Without API descriptions every action is unknown: "other". */
    assert_non_null(strstr(text,
                           "tcgw_calls_total{service=\"other\",action=\"other\",caller=\"app\","
                           "decision=\"allow\",code=\"OK\"} 2\n"));
    assert_non_null(strstr(text, "decision=\"deny\",code=\"UnauthorizedOperation\"} 1\n"));
    assert_non_null(strstr(text, "tcgw_limit_refusals_total 1\n"));
    assert_non_null(strstr(text, "tcgw_build_info{version=\"1.2.3\"} 1\n"));
    assert_non_null(strstr(text, "tcgw_calls_in_flight 3\n"));
    assert_non_null(strstr(text, "tcgw_upstream_latency_seconds_count 0\n"));
    assert_null(strstr(text, "tcgw_clock_skew_seconds"));
    assert_null(strstr(text, "tcgw_audit_records_total"));
    gw_buf_free(&out);
    gw_call_free(ok);
    gw_call_free(denied);
    gw_call_free(limited);
    gw_metrics_free(m);
}

static void test_series_are_bounded(void **state)
{
    (void)state;
    struct gw_metrics *m = NULL;
    struct gw_buf out;
    char name[32];
    assert_int_equal(gw_metrics_new(1, NULL, "x", &m), GW_OK);
    for (int i = 0; i < GW_METRICS_MAX_SERIES + 10; i++) {
        snprintf(name, sizeof name, "caller%d", i);
        struct gw_call *c = make_call(name, GW_DECISION_ALLOW, NULL);
        gw_metrics_record_at(gw_metrics_slot(m, 0), c, 1000);
        gw_call_free(c);
    }
    const char *text = format(m, &out);
    assert_non_null(strstr(text, "caller=\"other\",decision=\"none\",code=\"other\"} 10\n"));
    size_t lines = 0;
    for (const char *p = text; (p = strstr(p, "\ntcgw_calls_total{")) != NULL; p++) {
        lines++;
    }
    assert_int_equal(lines, GW_METRICS_MAX_SERIES + 1);
    gw_buf_free(&out);
    gw_metrics_free(m);
}

static void test_labels_escaped_and_upstream_codes(void **state)
{
    (void)state;
    struct gw_metrics *m = NULL;
    struct gw_buf out;
    assert_int_equal(gw_metrics_new(1, NULL, "x", &m), GW_OK);
    struct gw_call *c = make_call("a\"b\\c", GW_DECISION_ALLOW, NULL);
    static char answer[] = "{\"Response\":{\"Error\":{\"Code\": \"ResourceNotFound\"}}}";
    c->outcome = GW_UPSTREAM_ANSWERED;
    c->reply.body = answer;
    c->reply.len = strlen(answer);
    c->upstream_date = 1000 - 7;
    c->times.upstream_start.tv_sec = 10;
    c->times.upstream_end.tv_sec = 10;
    c->times.upstream_end.tv_nsec = 20 * 1000 * 1000; /* 20 ms */
    gw_metrics_record_at(gw_metrics_slot(m, 0), c, 1000);
    c->reply.body = NULL;
    const char *text = format(m, &out);
    assert_non_null(strstr(text, "caller=\"a\\\"b\\\\c\""));
    assert_non_null(strstr(text, "code=\"ResourceNotFound\"} 1\n"));
    assert_non_null(strstr(text, "tcgw_upstream_latency_seconds_bucket{le=\"0.01\"} 0\n"));
    assert_non_null(strstr(text, "tcgw_upstream_latency_seconds_bucket{le=\"0.025\"} 1\n"));
    assert_non_null(strstr(text, "tcgw_clock_skew_seconds -7\n"));
    int64_t skew = 0, seen = 0;
    assert_true(gw_metrics_clock_skew(m, &skew, &seen));
    assert_int_equal(skew, -7);
    assert_int_equal(seen, 1000);
    gw_buf_free(&out);
    gw_call_free(c);
    gw_metrics_free(m);
}

static void test_no_workers_is_invalid(void **state)
{
    (void)state;
    struct gw_metrics *m = NULL;
    assert_int_equal(gw_metrics_new(0, NULL, "x", &m), GW_ERR_INVALID);
    assert_null(m);
    gw_metrics_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counts_add_up_over_workers),
        cmocka_unit_test(test_series_are_bounded),
        cmocka_unit_test(test_labels_escaped_and_upstream_codes),
        cmocka_unit_test(test_no_workers_is_invalid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
