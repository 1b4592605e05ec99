/*
 * Unit tests for record: the per-call log line is one key=value line ending in '\n', quoted values
 * cannot break out of their quotes or the line, milliseconds read as "%.3f" would write them, and
 * a line that would be too long is cut but still ends the line.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pipeline/record.h"

static struct gw_call *seed_call(void)
{
    struct gw_call *call = gw_call_new(1024, 1024);
    assert_non_null(call);
    snprintf(call->service, sizeof call->service, "gaap");
    snprintf(call->action, sizeof call->action, "DescribeProxies");
    snprintf(call->caller, sizeof call->caller, "billing");
    snprintf(call->in.peer, sizeof call->in.peer, "127.0.0.1");
    call->identity = GW_IDENTITY_TOKEN;
    call->decision = GW_DECISION_ALLOW;
    call->reply.status = 200;
    call->bytes_in = 73;
    call->bytes_out = 1234567;
    call->times.received = (struct timespec){100, 0};
    call->times.answered = (struct timespec){101, 234567890}; /* 1234.567890 ms */
    call->times.upstream_start = (struct timespec){100, 999999999};
    call->times.upstream_end = (struct timespec){101, 4999}; /* 0.005 ms (5000 ns rounded) */
    return call;
}

static void test_fields_in_order(void **state)
{
    (void)state;
    struct gw_call *call = seed_call();
    char line[GW_RECORD_LINE_MAX];
    size_t n = gw_record_format(call, line);
    char expected[1024];
    snprintf(expected, sizeof expected,
             "level=info event=call request_id=%s peer=127.0.0.1 service=gaap "
             "action=DescribeProxies caller=billing identity=token decision=allow statement=- "
             "credential=- upstream=%s status=200 error=- bytes_in=73 bytes_out=1234567 "
             "ms=1234.568 upstream_ms=0.005\n",
             call->request_id, "none");
    assert_int_equal(n, strlen(expected));
    assert_memory_equal(line, expected, n);
    assert_int_equal(line[n - 1], '\n');
    gw_call_free(call);
}

static void test_quoted_values_stay_inside(void **state)
{
    (void)state;
    struct gw_call *call = seed_call();
    snprintf(call->policy_reason, sizeof call->policy_reason,
             "value \"x\"\nlevel=error event=forged\r\x7f");
    call->retry.attempts = 3;
    call->retry.last_why = "timeout";
    call->idem.generated = true;
    char line[GW_RECORD_LINE_MAX];
    size_t n = gw_record_format(call, line);
    line[n] = '\0';
    assert_non_null(strstr(line, " reason=\"value 'x' level=error event=forged  \""));
    assert_null(strchr(line, '\r'));
    assert_ptr_equal(strchr(line, '\n'), line + n - 1);
    assert_non_null(strstr(line, " attempts=3 retry_why=timeout client_token=generated\n"));
    assert_null(strstr(line, "detail="));
    gw_call_free(call);
}

static void test_unreached_steps_read_zero(void **state)
{
    (void)state;
    struct gw_call *call = seed_call();
    memset(&call->times.upstream_start, 0, sizeof call->times.upstream_start);
    call->error_code = "UnauthorizedOperation";
    char line[GW_RECORD_LINE_MAX];
    size_t n = gw_record_format(call, line);
    line[n] = '\0';
    assert_non_null(strstr(line, " error=UnauthorizedOperation "));
    assert_non_null(strstr(line, " upstream_ms=0.000\n"));
    gw_call_free(call);
}

static void test_long_line_is_cut_and_ended(void **state)
{
    (void)state;
    struct gw_call *call = seed_call();
    memset(call->policy_reason, 'r', sizeof call->policy_reason - 1);
    call->policy_reason[sizeof call->policy_reason - 1] = '\0';
    memset(call->upstream_detail, 'd', sizeof call->upstream_detail - 1);
    call->upstream_detail[sizeof call->upstream_detail - 1] = '\0';
    char line[GW_RECORD_LINE_MAX];
    size_t n = gw_record_format(call, line);
    assert_true(n <= GW_RECORD_LINE_MAX);
    assert_int_equal(line[n - 1], '\n');
    assert_null(memchr(line, '\n', n - 1));
    gw_call_free(call);
}

static void test_one_write_per_line(void **state)
{
    (void)state;
    struct gw_call *call = seed_call();
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    gw_record_log_line(call, fds[1]);
    gw_record_log_line(call, fds[1]);
    close(fds[1]);
    char got[2 * GW_RECORD_LINE_MAX];
    size_t len = 0;
    ssize_t r;
    while ((r = read(fds[0], got + len, sizeof got - len)) > 0) {
        len += (size_t)r;
    }
    close(fds[0]);
    char one[GW_RECORD_LINE_MAX];
    size_t n = gw_record_format(call, one);
    assert_int_equal(len, 2 * n);
    assert_memory_equal(got, one, n);
    assert_memory_equal(got + n, one, n);
    gw_call_free(call);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fields_in_order),
        cmocka_unit_test(test_quoted_values_stay_inside),
        cmocka_unit_test(test_unreached_steps_read_zero),
        cmocka_unit_test(test_long_line_is_cut_and_ended),
        cmocka_unit_test(test_one_write_per_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
