/* log: key=value lines as JSON objects. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/log.h"

static void expect(const char *line, const char *json)
{
    struct gw_buf out;
    gw_buf_init(&out, 1 << 16);
    assert_int_equal(gw_log_json_line(line, strlen(line), 1700000000123, &out), GW_OK);
    assert_string_equal(out.data, json);
    gw_buf_free(&out);
}

static void test_fields_become_members(void **state)
{
    (void)state;
    expect("level=info event=call request_id=ab-12 status=200 ms=1.250 caller=- "
           "detail=\"Could not resolve: x\"\n",
           "{\"time\":\"2023-11-14T22:13:20.123Z\",\"level\":\"info\",\"event\":\"call\","
           "\"request_id\":\"ab-12\",\"status\":200,\"ms\":1.25,\"caller\":\"-\","
           "\"detail\":\"Could not resolve: x\"}\n");
}

static void test_numbers_only_when_json_numbers(void **state)
{
    (void)state;
    expect("level=info event=x a=007 b=-3 c=1. d=1e5 e=12ab",
           "{\"time\":\"2023-11-14T22:13:20.123Z\",\"level\":\"info\",\"event\":\"x\","
           "\"a\":\"007\",\"b\":-3,\"c\":\"1.\",\"d\":\"1e5\",\"e\":\"12ab\"}\n");
}

static void test_other_lines_are_messages(void **state)
{
    (void)state;
    expect("tcgw: audit: cannot open \"x\"\n",
           "{\"time\":\"2023-11-14T22:13:20.123Z\",\"level\":\"error\",\"event\":\"message\","
           "\"message\":\"tcgw: audit: cannot open \\\"x\\\"\"}\n");
    expect("level=info event=x broken",
           "{\"time\":\"2023-11-14T22:13:20.123Z\",\"level\":\"error\",\"event\":\"message\","
           "\"message\":\"level=info event=x broken\"}\n");
    expect("level=info detail=\"unterminated",
           "{\"time\":\"2023-11-14T22:13:20.123Z\",\"level\":\"error\",\"event\":\"message\","
           "\"message\":\"level=info detail=\\\"unterminated\"}\n");
}

static void test_bytes_that_are_not_utf8(void **state)
{
    (void)state;
    expect("level=info event=x name=\"a\xff\x01\"",
           "{\"time\":\"2023-11-14T22:13:20.123Z\",\"level\":\"info\",\"event\":\"x\","
           "\"name\":\"a?\\u0001\"}\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fields_become_members),
        cmocka_unit_test(test_numbers_only_when_json_numbers),
        cmocka_unit_test(test_other_lines_are_messages),
        cmocka_unit_test(test_bytes_that_are_not_utf8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
