/* Unit tests for request: the HTTP head and body checks that turn a request into a call. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "http/request.h"

#define SUFFIX "tencentcloudapi.com"

static struct gw_request_input seed_head(void)
{
    struct gw_request_input in = {
        .method = "POST",
        .target = "/",
        .host = "gaap.tencentcloudapi.com",
        .content_type = "application/json",
        .action = "ModifyProxyConfiguration",
        .version = "2018-05-29",
    };
    return in;
}

static struct gw_call *check(const struct gw_request_input *in, bool expect_ok)
{
    struct gw_call *call = gw_call_new(1024, 1024);
    assert_non_null(call);
    bool ok = gw_request_check_head(in, SUFFIX, call);
    if (ok != expect_ok) {
        fail_msg("expected %s, got %s (%s)", expect_ok ? "accept" : "refuse",
                 ok ? "accept" : "refuse", call->error_message);
    }
    assert_int_equal(ok, call->error_code == NULL);
    return call;
}

static void expect_refusal(const struct gw_request_input *in, const char *code, const char *words)
{
    struct gw_call *call = check(in, false);
    assert_string_equal(call->error_code, code);
    if (strstr(call->error_message, words) == NULL) {
        fail_msg("message \"%s\" lacks \"%s\"", call->error_message, words);
    }
    gw_call_free(call);
}

static void expect_service_host(const struct gw_request_input *in, const char *service,
                                const char *host)
{
    struct gw_call *call = check(in, true);
    assert_string_equal(call->service, service);
    assert_string_equal(call->host, host);
    gw_call_free(call);
}

static void test_seed_head_is_accepted(void **state)
{
    (void)state;
    struct gw_request_input in = seed_head();
    in.region = "ap-guangzhou";
    in.language = "en-US";
    struct gw_call *call = check(&in, true);
    assert_string_equal(call->service, "gaap");
    assert_string_equal(call->host, "gaap.tencentcloudapi.com");
    assert_string_equal(call->action, "ModifyProxyConfiguration");
    assert_string_equal(call->version, "2018-05-29");
    assert_string_equal(call->region, "ap-guangzhou");
    assert_string_equal(call->language, "en-US");
    gw_call_free(call);
}

static void test_service_from_host_forms(void **state)
{
    (void)state;
    struct gw_request_input in = seed_head();
    in.host = "GAAP.TencentCloudAPI.com:443";
    expect_service_host(&in, "gaap", "gaap.tencentcloudapi.com");
    in.host = "gaap.ap-guangzhou.tencentcloudapi.com";
    expect_service_host(&in, "gaap", "gaap.ap-guangzhou.tencentcloudapi.com");
    in.host = "gaap.intl.tencentcloudapi.com:8080";
    expect_service_host(&in, "gaap", "gaap.intl.tencentcloudapi.com");
}

static void test_service_from_path_and_absolute_target(void **state)
{
    (void)state;
    struct gw_request_input in = seed_head();
    in.host = "127.0.0.1:8080";
    in.target = "/gaap/";
    expect_service_host(&in, "gaap", "gaap.tencentcloudapi.com");
    in.target = "/gaap";
    expect_service_host(&in, "gaap", "gaap.tencentcloudapi.com");
    in.target = "http://gaap.tencentcloudapi.com/";
    expect_service_host(&in, "gaap", "gaap.tencentcloudapi.com");
    in.target = "https://gaap.ap-shanghai.tencentcloudapi.com";
    expect_service_host(&in, "gaap", "gaap.ap-shanghai.tencentcloudapi.com");
    /* Host and path naming the same service is fine. */
    in.host = "gaap.tencentcloudapi.com";
    in.target = "/gaap/";
    expect_service_host(&in, "gaap", "gaap.tencentcloudapi.com");
}

static void test_service_unknown_or_conflicting(void **state)
{
    (void)state;
    struct gw_request_input in = seed_head();
    in.host = "127.0.0.1:8080";
    expect_refusal(&in, "InvalidRequest", "Cannot tell which service");
    in.host = "gaap.evil.example.com";
    expect_refusal(&in, "InvalidRequest", "Cannot tell which service");
    in.host = "gaap.a.b.tencentcloudapi.com"; /* two labels between service and suffix */
    expect_refusal(&in, "InvalidRequest", "Cannot tell which service");
    in.host = "gaap.tencentcloudapi.com.evil.com";
    expect_refusal(&in, "InvalidRequest", "Cannot tell which service");
    in.host = "gaap.tencentcloudapi.com";
    in.target = "/cvm/";
    expect_refusal(&in, "InvalidRequest", "path names service cvm");
    in.target = "/gaap/extra";
    expect_refusal(&in, "InvalidRequest", "The path must be");
    in.target = "/?Action=DescribeProxies";
    expect_refusal(&in, "InvalidRequest", "Query strings");
    in.target = "/";
    in.has_query = true; /* libmicrohttpd hands over the path without its query */
    expect_refusal(&in, "InvalidRequest", "Query strings");
    in.has_query = false;
    in.target = "/GAAP/";
    expect_refusal(&in, "InvalidRequest", "The path must be");
}

static void test_method_and_content_type(void **state)
{
    (void)state;
    struct gw_request_input in = seed_head();
    in.method = "GET";
    expect_refusal(&in, "UnsupportedProtocol", "only POST");
    in = seed_head();
    in.content_type = NULL;
    expect_refusal(&in, "InvalidRequest", "application/json");
    in.content_type = "application/x-www-form-urlencoded";
    expect_refusal(&in, "InvalidRequest", "application/json");
    in.content_type = "application/jsonx";
    expect_refusal(&in, "InvalidRequest", "application/json");
    in.content_type = "application/json; charset=latin1";
    expect_refusal(&in, "InvalidRequest", "application/json");
    in.content_type = "Application/JSON; charset=UTF-8";
    gw_call_free(check(&in, true));
}

static void test_action_and_version_headers(void **state)
{
    (void)state;
    struct gw_request_input in = seed_head();
    in.action = NULL;
    expect_refusal(&in, "MissingParameter", "X-TC-Action");
    in.action = "";
    expect_refusal(&in, "MissingParameter", "X-TC-Action");
    in.action = "Describe Proxies";
    expect_refusal(&in, "InvalidAction", "X-TC-Action");
    in.action = "DescribeProxies\r\nX-Evil: 1";
    expect_refusal(&in, "InvalidAction", "X-TC-Action");
    in = seed_head();
    in.version = NULL;
    expect_refusal(&in, "MissingParameter", "X-TC-Version");
    in.version = "2018-5-29";
    expect_refusal(&in, "NoSuchVersion", "2018-05-29");
    in.version = "2018-05-29\n";
    expect_refusal(&in, "NoSuchVersion", "2018-05-29");
}

static void test_region_and_language_headers(void **state)
{
    (void)state;
    struct gw_request_input in = seed_head();
    in.region = "ap guangzhou";
    expect_refusal(&in, "InvalidParameterValue", "X-TC-Region");
    in.region = "ap-guangzhou\r\nX: y";
    expect_refusal(&in, "InvalidParameterValue", "X-TC-Region");
    in = seed_head();
    in.language = "fr-FR";
    expect_refusal(&in, "InvalidParameterValue", "X-TC-Language");
}

static struct gw_call *with_body(const char *body)
{
    struct gw_call *call = gw_call_new(1024, 1024);
    assert_non_null(call);
    assert_int_equal(gw_buf_append_str(&call->body, body), GW_OK);
    return call;
}

static void test_body_parsing(void **state)
{
    (void)state;
    struct gw_call *call = with_body("{\"ProxyId\": \"link-4ftf12sb\", \"Concurrent\": \"2\"}");
    assert_true(gw_request_parse_body(call));
    assert_string_equal(json_string_value(json_object_get(call->params, "ProxyId")),
                        "link-4ftf12sb");
    gw_call_free(call);

    call = with_body("");
    assert_true(gw_request_parse_body(call));
    assert_int_equal(json_object_size(call->params), 0);
    gw_call_free(call);

    const char *bad[] = {
        "{", "[1,2]", "\"text\"", "{\"a\":1} trailing", "{\"a\":1,\"a\":2}", "{\"a\":\"\\u0000\"}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        call = with_body(bad[i]);
        assert_false(gw_request_parse_body(call));
        assert_string_equal(call->error_code, "InvalidRequest");
        gw_call_free(call);
    }
    call = with_body("[1]");
    assert_false(gw_request_parse_body(call));
    assert_non_null(strstr(call->error_message, "must be a JSON object"));
    gw_call_free(call);
    call = with_body("{\"a\":1,\"a\":2}");
    assert_false(gw_request_parse_body(call));
    assert_non_null(strstr(call->error_message, "duplicate"));
    gw_call_free(call);
    call = with_body("{\"Offset\": 18446744073709551615}");
    assert_false(gw_request_parse_body(call));
    assert_string_equal(call->error_code, "InvalidParameterValue");
    assert_non_null(strstr(call->error_message, "as decimal strings"));
    gw_call_free(call);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seed_head_is_accepted),
        cmocka_unit_test(test_service_from_host_forms),
        cmocka_unit_test(test_service_from_path_and_absolute_target),
        cmocka_unit_test(test_service_unknown_or_conflicting),
        cmocka_unit_test(test_method_and_content_type),
        cmocka_unit_test(test_action_and_version_headers),
        cmocka_unit_test(test_region_and_language_headers),
        cmocka_unit_test(test_body_parsing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
