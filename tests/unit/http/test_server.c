/* Unit tests for the server's answers: upstream bytes unchanged, or a Tencent-format error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "http/server.h"

static json_t *answer_json(struct gw_call *call, unsigned *status)
{
    size_t len = 0;
    char *body = gw_server_answer(call, 1500, 4096, status, &len);
    assert_non_null(body);
    json_t *root = json_loadb(body, len, 0, NULL);
    assert_non_null(root);
    free(body);
    return root;
}

static void expect_error(struct gw_call *call, const char *code, const char *words)
{
    unsigned status = 0;
    json_t *root = answer_json(call, &status);
    assert_int_equal(status, 200); /* the official SDKs read errors from HTTP 200 bodies */
    const char *got = json_string_value(
        json_object_get(json_object_get(json_object_get(root, "Response"), "Error"), "Code"));
    const char *message = json_string_value(
        json_object_get(json_object_get(json_object_get(root, "Response"), "Error"), "Message"));
    const char *rid =
        json_string_value(json_object_get(json_object_get(root, "Response"), "RequestId"));
    assert_non_null(got);
    assert_string_equal(got, code);
    assert_non_null(message);
    if (strstr(message, words) == NULL) {
        fail_msg("message \"%s\" lacks \"%s\"", message, words);
    }
    assert_string_equal(rid, call->request_id);
    json_decref(root);
}

static struct gw_call *new_call(void)
{
    struct gw_call *call = gw_call_new(1024, 4096);
    assert_non_null(call);
    strcpy(call->host, "gaap.tencentcloudapi.com");
    return call;
}

static void test_upstream_answer_is_returned_unchanged(void **state)
{
    (void)state;
    struct gw_call *call = new_call();
    const char body[] = "{\"Response\": {\"RequestId\": \"x\"}}\n";
    call->outcome = GW_UPSTREAM_ANSWERED;
    call->http_status = 503;
    assert_int_equal(gw_buf_append(&call->response, body, sizeof body - 1), GW_OK);
    unsigned status = 0;
    size_t len = 0;
    char *out = gw_server_answer(call, 1500, 4096, &status, &len);
    assert_int_equal(status, 503);
    assert_int_equal(len, sizeof body - 1);
    assert_memory_equal(out, body, len);
    free(out);
    gw_call_free(call);
}

static void test_refusal_becomes_tencent_error(void **state)
{
    (void)state;
    struct gw_call *call = new_call();
    gw_call_refuse(call, "MissingParameter", "The parameter %s is required.", "DestRegion");
    expect_error(call, "MissingParameter", "DestRegion is required");
    gw_call_free(call);
}

static void test_upstream_failures_name_the_gateway(void **state)
{
    (void)state;
    struct {
        enum gw_upstream_outcome outcome;
        const char *code;
        const char *words;
    } cases[] = {
        {GW_UPSTREAM_CONNECT, "InternalError.UpstreamUnreachable", "could not connect"},
        {GW_UPSTREAM_TLS, "InternalError.UpstreamTLSFailure", "refused the TLS connection"},
        {GW_UPSTREAM_TIMEOUT, "InternalError.UpstreamTimeout", "within 1500 ms"},
        {GW_UPSTREAM_TOO_LARGE, "ResponseSizeLimitExceeded", "limit of 4096 bytes"},
        {GW_UPSTREAM_FAILED, "InternalError.UpstreamFailure", "tcgw"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct gw_call *call = new_call();
        call->outcome = cases[i].outcome;
        strcpy(call->upstream_detail, "detail from libcurl");
        expect_error(call, cases[i].code, cases[i].words);
        gw_call_free(call);
    }
}

static void test_error_message_is_escaped(void **state)
{
    (void)state;
    struct gw_call *call = new_call();
    gw_call_refuse(call, "InvalidRequest", "bad \"quote\" and \\ and \n newline");
    expect_error(call, "InvalidRequest", "bad \"quote\" and \\ and \n newline");
    gw_call_free(call);
    call = new_call();
    gw_call_refuse(call, "InvalidRequest", "bad utf-8 \xff\xfe");
    expect_error(call, "InvalidRequest", "not valid UTF-8");
    gw_call_free(call);
}

static void test_request_ids_are_fresh_uuids(void **state)
{
    (void)state;
    struct gw_call *a = new_call();
    struct gw_call *b = new_call();
    assert_int_equal(strlen(a->request_id), GW_REQUEST_ID_LEN);
    assert_string_not_equal(a->request_id, b->request_id);
    assert_int_equal(a->request_id[14], '4');
    assert_int_equal(a->request_id[8], '-');
    gw_call_free(a);
    gw_call_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_upstream_answer_is_returned_unchanged),
        cmocka_unit_test(test_refusal_becomes_tencent_error),
        cmocka_unit_test(test_upstream_failures_name_the_gateway),
        cmocka_unit_test(test_error_message_is_escaped),
        cmocka_unit_test(test_request_ids_are_fresh_uuids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
