/*
 * Unit tests for outcome: every way an upstream exchange can end without an answer becomes a
 * Tencent code whose message says whether the call was sent, and never carries libcurl's words.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "pipeline/outcome.h"

#define DETAIL "Failed to connect to 10.1.2.3 port 443 after 3 ms: Connection refused"

static void test_every_outcome_has_its_code_and_says_if_sent(void **state)
{
    (void)state;
    struct {
        enum gw_upstream_outcome outcome;
        const char *code;
        const char *words;
        const char *sent;
        const char *name;
    } cases[] = {
        {GW_UPSTREAM_CONNECT, "InternalError.UpstreamUnreachable", "could not connect", "not sent",
         "connect"},
        {GW_UPSTREAM_TLS, "InternalError.UpstreamTLSFailure", "refused the TLS connection",
         "not sent", "tls"},
        {GW_UPSTREAM_TIMEOUT, "InternalError.UpstreamTimeout", "within 1500 ms", "may have reached",
         "timeout"},
        {GW_UPSTREAM_TOO_LARGE, "ResponseSizeLimitExceeded", "limit of 4096 bytes", "narrow",
         "too_large"},
        {GW_UPSTREAM_FAILED, "InternalError.UpstreamFailure", "failed while talking",
         "may have reached", "failed"},
        {GW_UPSTREAM_NOT_SENT, "ServiceUnavailable", "shutting down", "not sent", "not_sent"},
        {GW_UPSTREAM_ABORTED, "ServiceUnavailable", "shut down while waiting", "may have reached",
         "aborted"},
        {GW_UPSTREAM_NONE, "InternalError.UpstreamFailure", "failed while talking",
         "may have reached", "none"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct gw_call *call = gw_call_new(1024, 4096);
        assert_non_null(call);
        strcpy(call->host, "gaap.tencentcloudapi.com");
        strcpy(call->upstream_detail, DETAIL);
        call->outcome = cases[i].outcome;
        gw_outcome_refuse(call, 1500, 4096);
        assert_non_null(call->error_code);
        assert_string_equal(call->error_code, cases[i].code);
        if (strstr(call->error_message, cases[i].words) == NULL ||
            strstr(call->error_message, cases[i].sent) == NULL) {
            fail_msg("outcome %s: \"%s\" lacks \"%s\" or \"%s\"", cases[i].name,
                     call->error_message, cases[i].words, cases[i].sent);
        }
        assert_null(strstr(call->error_message, "10.1.2.3"));
        assert_null(strstr(call->error_message, "Connection refused"));
        assert_string_equal(gw_outcome_name(cases[i].outcome), cases[i].name);
        gw_call_free(call);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_outcome_has_its_code_and_says_if_sent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
