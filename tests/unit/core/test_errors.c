/* Unit tests for errors: Tencent-format error bodies and request ids. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"

static void expect_body(const char *code, const char *message, const char *want_message)
{
    char rid[GW_REQUEST_ID_LEN + 1];
    gw_request_id_generate(rid);
    size_t len = 0;
    char *body = gw_error_body(code, message, rid, &len);
    assert_non_null(body);
    assert_int_equal(strlen(body), len);
    json_t *root = json_loadb(body, len, 0, NULL);
    assert_non_null(root);
    json_t *resp = json_object_get(root, "Response");
    json_t *error = json_object_get(resp, "Error");
    assert_int_equal(json_object_size(root), 1);
    assert_int_equal(json_object_size(resp), 2);
    assert_string_equal(json_string_value(json_object_get(error, "Code")), code);
    const char *got = json_string_value(json_object_get(error, "Message"));
    assert_non_null(got);
    if (strstr(got, want_message) == NULL) {
        fail_msg("message \"%s\" lacks \"%s\"", got, want_message);
    }
    assert_string_equal(json_string_value(json_object_get(resp, "RequestId")), rid);
    json_decref(root);
    free(body);
}

static void test_error_body_is_tencent_format(void **state)
{
    (void)state;
    expect_body("MissingParameter", "The parameter DestRegion is required.",
                "DestRegion is required");
}

static void test_error_message_is_escaped(void **state)
{
    (void)state;
    expect_body("InvalidRequest", "bad \"quote\" and \\ and \n newline",
                "bad \"quote\" and \\ and \n newline");
    expect_body("InvalidRequest", "bad utf-8 \xff\xfe", "not valid UTF-8");
}

static void test_request_ids_are_fresh_uuids(void **state)
{
    (void)state;
    char a[GW_REQUEST_ID_LEN + 1], b[GW_REQUEST_ID_LEN + 1];
    gw_request_id_generate(a);
    gw_request_id_generate(b);
    assert_int_equal(strlen(a), GW_REQUEST_ID_LEN);
    assert_string_not_equal(a, b);
    assert_int_equal(a[14], '4');
    assert_int_equal(a[8], '-');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_body_is_tencent_format),
        cmocka_unit_test(test_error_message_is_escaped),
        cmocka_unit_test(test_request_ids_are_fresh_uuids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
