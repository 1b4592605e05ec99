/* Unit tests for errors: Tencent-format error bodies and request ids. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>

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

static void expect_uuid4(const char *id)
{
    assert_int_equal(strlen(id), GW_REQUEST_ID_LEN);
    for (size_t i = 0; i < GW_REQUEST_ID_LEN; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            assert_int_equal(id[i], '-');
        } else {
            assert_non_null(strchr("0123456789abcdef", id[i]));
        }
    }
    assert_int_equal(id[14], '4');
    assert_non_null(strchr("89ab", id[19]));
}

static int compare_ids(const void *a, const void *b)
{
    return strcmp(a, b);
}

#define MANY_IDS 2000 /* several of the generator's batches */

static void *make_ids(void *arg)
{
    char(*ids)[GW_REQUEST_ID_LEN + 1] = arg;
    for (size_t i = 0; i < MANY_IDS; i++) {
        gw_request_id_generate(ids[i]);
    }
    return NULL;
}

static void test_request_ids_are_fresh_uuids(void **state)
{
    (void)state;
    /* Two threads, each with its own batch of random bytes: no id is made twice. */
    static char ids[2 * MANY_IDS][GW_REQUEST_ID_LEN + 1];
    pthread_t other;
    assert_int_equal(pthread_create(&other, NULL, make_ids, ids + MANY_IDS), 0);
    make_ids(ids);
    assert_int_equal(pthread_join(other, NULL), 0);
    for (size_t i = 0; i < 2 * MANY_IDS; i++) {
        expect_uuid4(ids[i]);
    }
    qsort(ids, 2 * MANY_IDS, sizeof ids[0], compare_ids);
    for (size_t i = 1; i < 2 * MANY_IDS; i++) {
        assert_string_not_equal(ids[i - 1], ids[i]);
    }
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
