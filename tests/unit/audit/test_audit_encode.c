/* Unit tests for gateway/audit/encode.c: the record's bounds, hostile values, sensitive HMACs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/encode.h"
#include "core/call.h"

static const unsigned char KEY[GW_AUDIT_HMAC_KEY_BYTES] = {1, 2, 3};
static const char SECRET[] = "correct-horse-battery-staple";

static struct gw_audit_redactor *redactor(void)
{
    const char *keys[] = {"Password", "ApiToken"};
    struct gw_audit_redactor *r = NULL;
    assert_int_equal(gw_audit_redactor_new(KEY, keys, 2, &r), GW_OK);
    return r;
}

static struct gw_call *call_with(const char *params_json)
{
    struct gw_call *call = gw_call_new(1 << 20, 1 << 20);
    assert_non_null(call);
    snprintf(call->service, sizeof call->service, "cvm");
    snprintf(call->action, sizeof call->action, "RunInstances");
    snprintf(call->version, sizeof call->version, "2017-03-12");
    if (params_json != NULL) {
        json_error_t e;
        call->params = json_loads(params_json, JSON_DECODE_ANY, &e);
        assert_non_null(call->params);
    }
    return call;
}

/* Encodes and checks the invariants every record keeps; returns the parsed record (new). */
static json_t *encode(const struct gw_call *call, const struct gw_audit_redactor *r, char **text)
{
    char *body = NULL;
    size_t len = 0;
    assert_int_equal(gw_audit_encode_call(call, r, &body, &len), GW_OK);
    assert_int_equal(strlen(body), len);
    assert_true(len <= GW_AUDIT_LINE_MAX - GW_AUDIT_PREFIX_MAX - 1);
    assert_null(memchr(body, '\n', len)); /* one line, whatever the values */
    assert_null(memchr(body, '\r', len));
    char *line = malloc(len + 2);
    line[0] = '{';
    memcpy(line + 1, body, len + 1);
    json_error_t e;
    json_t *doc = json_loads(line, JSON_REJECT_DUPLICATES, &e);
    assert_non_null(doc);
    assert_string_equal(json_string_value(json_object_get(doc, "type")), "call");
    free(body);
    if (text != NULL) {
        *text = line;
    } else {
        free(line);
    }
    return doc;
}

static void test_fields(void **state)
{
    (void)state;
    struct gw_audit_redactor *r = redactor();
    struct gw_call *call = call_with("{\"ImageId\":\"img-1\",\"Count\":2}");
    snprintf(call->caller, sizeof call->caller, "ci");
    call->identity = GW_IDENTITY_TOKEN;
    call->decision = GW_DECISION_ALLOW;
    snprintf(call->statement, sizeof call->statement, "p.json#s1");
    snprintf(call->credential, sizeof call->credential, "prod");
    json_t *doc = encode(call, r, NULL);
    assert_string_equal(json_string_value(json_object_get(doc, "caller")), "ci");
    assert_string_equal(json_string_value(json_object_get(doc, "identity")), "token");
    assert_string_equal(json_string_value(json_object_get(doc, "decision")), "allow");
    assert_string_equal(json_string_value(json_object_get(doc, "statement")), "p.json#s1");
    assert_string_equal(json_string_value(json_object_get(doc, "credential")), "prod");
    assert_true(json_is_null(json_object_get(doc, "region")));
    assert_int_equal(json_integer_value(json_object_get(json_object_get(doc, "params"), "Count")),
                     2);
    const char *t = json_string_value(json_object_get(doc, "time"));
    assert_int_equal(strlen(t), 27);
    assert_int_equal(t[26], 'Z');
    json_decref(doc);
    gw_call_free(call);
    gw_audit_redactor_free(r);
}

static void test_sensitive_values_are_hmacs(void **state)
{
    (void)state;
    struct gw_audit_redactor *r = redactor();
    char params[512];
    snprintf(params, sizeof params,
             "{\"LoginSettings\":{\"password\":\"%s\"},\"Other\":{\"Password\":\"%s\"},"
             "\"ApiToken\":[\"%s\"],\"Name\":\"x\"}",
             SECRET, SECRET, SECRET);
    struct gw_call *call = call_with(params);
    call->decision = GW_DECISION_DENY;
    /* A refusal message and a reason that quote the value must not carry it either. */
    snprintf(call->policy_reason, sizeof call->policy_reason, "denied: Password=%s", SECRET);
    gw_call_refuse(call, "UnauthorizedOperation", "Password %s is not allowed", SECRET);
    char *text = NULL;
    json_t *doc = encode(call, r, &text);
    assert_null(strstr(text, SECRET));
    assert_null(strstr(text, "horse"));
    json_t *p = json_object_get(doc, "params");
    const char *a =
        json_string_value(json_object_get(json_object_get(p, "LoginSettings"), "password"));
    const char *b = json_string_value(json_object_get(json_object_get(p, "Other"), "Password"));
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(strncmp(a, "hmac-sha256:", 12), 0);
    assert_int_equal(strlen(a), GW_AUDIT_HMAC_TEXT - 1);
    assert_string_equal(a, b); /* equal values correlate */
    assert_true(json_is_string(json_object_get(p, "ApiToken")));
    assert_string_equal(json_string_value(json_object_get(p, "Name")), "x");
    assert_non_null(strstr(json_string_value(json_object_get(doc, "reason")), "[sensitive]"));
    /* Another key gives another HMAC; another value too. */
    unsigned char other_key[GW_AUDIT_HMAC_KEY_BYTES] = {9};
    struct gw_audit_redactor *r2 = NULL;
    const char *keys[] = {"Password"};
    assert_int_equal(gw_audit_redactor_new(other_key, keys, 1, &r2), GW_OK);
    char h1[GW_AUDIT_HMAC_TEXT], h2[GW_AUDIT_HMAC_TEXT], h3[GW_AUDIT_HMAC_TEXT];
    json_t *v = json_string(SECRET), *w = json_string("another");
    gw_audit_redactor_hmac(r, v, h1);
    gw_audit_redactor_hmac(r2, v, h2);
    gw_audit_redactor_hmac(r, w, h3);
    assert_string_equal(h1, a);
    assert_string_not_equal(h1, h2);
    assert_string_not_equal(h1, h3);
    json_decref(v);
    json_decref(w);
    free(text);
    json_decref(doc);
    gw_call_free(call);
    gw_audit_redactor_free(r);
    gw_audit_redactor_free(r2);
}

static void test_default_sensitive_keys(void **state)
{
    (void)state;
    struct gw_audit_redactor *r = NULL;
    assert_int_equal(gw_audit_redactor_new(KEY, NULL, 0, &r), GW_OK);
    assert_true(gw_audit_redactor_is_sensitive(r, "password"));
    assert_true(gw_audit_redactor_is_sensitive(r, "SecretKey"));
    assert_false(gw_audit_redactor_is_sensitive(r, "ImageId"));
    gw_audit_redactor_free(r);
}

static void test_hostile_text(void **state)
{
    (void)state;
    struct gw_audit_redactor *r = redactor();
    struct gw_call *call = call_with("{\"Name\":\"a\\nb\\\"}\\n{\\\"type\\\":\\\"call\\\"\"}");
    /* Free text from C buffers: quotes, newlines, control bytes and invalid UTF-8. */
    gw_call_refuse(call, "InvalidParameter", "bad \"x\"\n{\"v\":1}\r\x01 \xff\xfe \xc3");
    snprintf(call->upstream_detail, sizeof call->upstream_detail, "line1\nline2\x7f\xed\xa0\x80");
    snprintf(call->in.peer, sizeof call->in.peer, "1.2.3.4\n");
    char *text = NULL;
    json_t *doc = encode(call, r, &text);
    const char *m = json_string_value(json_object_get(doc, "error_message"));
    assert_non_null(m);
    assert_null(strchr(m, '\n'));
    assert_non_null(strstr(m, "bad \"x\""));
    assert_non_null(strchr(m, '?')); /* invalid bytes replaced */
    assert_string_equal(json_string_value(json_object_get(json_object_get(doc, "params"), "Name")),
                        "a\nb\"}\n{\"type\":\"call\"");
    free(text);
    json_decref(doc);
    gw_call_free(call);
    gw_audit_redactor_free(r);
}

static void test_megabyte_value_is_clipped(void **state)
{
    (void)state;
    struct gw_audit_redactor *r = redactor();
    size_t n = 3 * 349525; /* about 1 MiB of whole characters */
    char *big = malloc(n + 64);
    memcpy(big, "{\"Blob\":\"", 9);
    for (size_t i = 0; i < n; i++) {
        big[9 + i] = i % 3 == 0 ? '\xc3' : i % 3 == 1 ? '\xa9' : 'a'; /* UTF-8 é then a */
    }
    memcpy(big + 9 + n, "\"}", 3);
    struct gw_call *call = call_with(big);
    json_t *doc = encode(call, r, NULL);
    assert_true(json_is_true(json_object_get(doc, "params_truncated")));
    const char *blob = json_string_value(json_object_get(json_object_get(doc, "params"), "Blob"));
    assert_non_null(blob); /* a valid string: cut on a character boundary */
    assert_true(strlen(blob) < GW_AUDIT_STRING_MAX + 64);
    assert_non_null(strstr(blob, "(clipped: 1048575 bytes)"));
    json_decref(doc);
    gw_call_free(call);
    free(big);
    gw_audit_redactor_free(r);
}

static void test_many_parameters_keep_a_prefix(void **state)
{
    (void)state;
    struct gw_audit_redactor *r = redactor();
    json_t *p = json_object();
    char key[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof key, "K%d", i);
        json_object_set_new(p, key, json_string("\"\"\"\"\"\"\"\"\""));
        if (i == 10) {
            json_object_set_new(p, "Password", json_string(SECRET));
        }
    }
    struct gw_call *call = call_with(NULL);
    call->params = p;
    gw_call_refuse(call, "X", "%s", "\x01\x02\x03\x04\x05\x06\x07\x08\x0b\x0c\x0e\x0f\x10");
    char *text = NULL;
    json_t *doc = encode(call, r, &text);
    assert_true(json_is_null(json_object_get(doc, "params")));
    assert_true(json_is_true(json_object_get(doc, "params_truncated")));
    assert_true(json_integer_value(json_object_get(doc, "params_bytes")) > GW_AUDIT_PARAMS_MAX);
    const char *prefix = json_string_value(json_object_get(doc, "params_prefix"));
    assert_non_null(prefix);
    assert_true(strlen(prefix) <= GW_AUDIT_PREFIX_KEEP);
    assert_null(strstr(text, SECRET));
    free(text);
    json_decref(doc);
    gw_call_free(call);
    gw_audit_redactor_free(r);
}

static void test_deep_nesting(void **state)
{
    (void)state;
    struct gw_audit_redactor *r = redactor();
    char deep[4096] = "";
    for (int i = 0; i < 200; i++) {
        strcat(deep, "[");
    }
    for (int i = 0; i < 200; i++) {
        strcat(deep, "]");
    }
    struct gw_call *call = call_with(deep);
    json_t *doc = encode(call, r, NULL);
    assert_true(json_is_true(json_object_get(doc, "params_truncated")));
    json_decref(doc);
    gw_call_free(call);
    gw_audit_redactor_free(r);
}

int main(void)
{
    if (sodium_init() < 0) {
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fields),
        cmocka_unit_test(test_sensitive_values_are_hmacs),
        cmocka_unit_test(test_default_sensitive_keys),
        cmocka_unit_test(test_hostile_text),
        cmocka_unit_test(test_megabyte_value_is_clipped),
        cmocka_unit_test(test_many_parameters_keep_a_prefix),
        cmocka_unit_test(test_deep_nesting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
