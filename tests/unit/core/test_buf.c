/* Unit tests for buf: the growable buffer with a mandatory maximum. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "core/buf.h"

static void test_append_up_to_the_limit(void **state)
{
    (void)state;
    struct gw_buf b;
    gw_buf_init(&b, 10);
    assert_int_equal(gw_buf_append(&b, "0123456789", 10), GW_OK);
    assert_int_equal(b.len, 10);
    assert_string_equal(b.data, "0123456789");
    assert_int_equal(gw_buf_append(&b, "x", 1), GW_ERR_TOO_LARGE);
    assert_int_equal(b.len, 10); /* unchanged by the refusal */
    assert_int_equal(gw_buf_append(&b, "", 0), GW_OK);
    gw_buf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
}

static void test_overflowing_sizes_are_refused(void **state)
{
    (void)state;
    struct gw_buf b;
    gw_buf_init(&b, SIZE_MAX);
    assert_int_equal(gw_buf_append(&b, "ab", 2), GW_OK);
    assert_int_equal(gw_buf_append(&b, "x", SIZE_MAX - 1), GW_ERR_TOO_LARGE);
    gw_buf_free(&b);
}

static void test_printf_and_reset(void **state)
{
    (void)state;
    struct gw_buf b;
    gw_buf_init(&b, 16);
    assert_int_equal(gw_buf_printf(&b, "%s-%d", "ab", 42), GW_OK);
    assert_string_equal(b.data, "ab-42");
    assert_int_equal(gw_buf_printf(&b, "%s", "0123456789abcdef"), GW_ERR_TOO_LARGE);
    assert_string_equal(b.data, "ab-42");
    gw_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    assert_int_equal(gw_buf_append_str(&b, "secret"), GW_OK);
    gw_buf_free_wipe(&b);
    assert_null(b.data);
}

static void test_growth_keeps_content(void **state)
{
    (void)state;
    struct gw_buf b;
    gw_buf_init(&b, 100000);
    for (int i = 0; i < 10000; i++) {
        assert_int_equal(gw_buf_append(&b, "0123456789", 10), GW_OK);
    }
    assert_int_equal(b.len, 100000);
    assert_memory_equal(b.data + 99990, "0123456789", 10);
    assert_int_equal(b.data[b.len], '\0');
    gw_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_up_to_the_limit),
        cmocka_unit_test(test_overflowing_sizes_are_refused),
        cmocka_unit_test(test_printf_and_reset),
        cmocka_unit_test(test_growth_keeps_content),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
