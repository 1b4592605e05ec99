/*
 * Unit tests for the inject module: the placeholder syntax, the scan of a call's parameters
 * (names, parameter paths, refusals), the splice of values into the caller's bytes (exact output,
 * escapes, every refusal code), JSON escaping, and redaction of values echoed in answers.
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

#include "apispec/apispec.h"
#include "inject/inject.h"
#include "inject/placeholder.h"
#include "vault/vault.h"

#define PEM                                                                                        \
    "-----BEGIN "                                                                                  \
    "KEY-----\nCANARYtextNOTaKEYjustTESTtext0SCANARYcanaryCANARY/0\"q\\uote\"\n-----END KEY-----"

struct fixture {
    char dir[64];
    struct gw_vault *vault;
    struct gw_apispec *spec;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    char key[128], store[128], msg[512], specs[4096];
    snprintf(f->dir, sizeof f->dir, "/tmp/tcgw-inject-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(key, sizeof key, "%s/m.key", f->dir);
    snprintf(store, sizeof store, "%s/s.store", f->dir);
    assert_int_equal(gw_vault_keygen(key, msg, sizeof msg), GW_OK);
    assert_int_equal(gw_vault_open(key, store, &f->vault, msg, sizeof msg), GW_OK);
    assert_int_equal(gw_vault_put_value(f->vault, "edge-key", (const unsigned char *)PEM,
                                        strlen(PEM), msg, sizeof msg),
                     GW_OK);
    assert_int_equal(
        gw_vault_put_value(f->vault, "short", (const unsigned char *)"abc", 3, msg, sizeof msg),
        GW_OK);
    static char big[20000];
    memset(big, 'k', sizeof big);
    assert_int_equal(gw_vault_put_value(f->vault, "big", (const unsigned char *)big, sizeof big,
                                        msg, sizeof msg),
                     GW_OK);
    const char *src = getenv("TCGW_SOURCE_DIR");
    snprintf(specs, sizeof specs, "%s/specs", src != NULL ? src : "..");
    assert_int_equal(gw_apispec_load_dir(specs, &f->spec, msg, sizeof msg), GW_OK);
    unlink(key);
    rmdir(f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    gw_vault_free(f->vault);
    gw_apispec_free(f->spec);
    free(f);
    return 0;
}

/* ---- syntax ---------------------------------------------------------------------------------- */

static void test_placeholder_syntax(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        enum gw_placeholder want;
        const char *name;
    } cases[] = {
        {"{{tcgw:secret/edge-key}}", GW_PLACEHOLDER_IS_SECRET, "edge-key"},
        {"{{tcgw:secret/A.b_c-9}}", GW_PLACEHOLDER_IS_SECRET, "A.b_c-9"},
        {"{{tcgw:raw}}{{tcgw:secret/x}}", GW_PLACEHOLDER_IS_RAW, NULL},
        {"{{tcgw:raw}}{{tcgw:", GW_PLACEHOLDER_IS_RAW, NULL},
        /* The escape only in front of what would be reserved: else the policy would judge
         * "{{tcgw:raw}}link-prod" while "link-prod" is sent. */
        {"{{tcgw:raw}}", GW_PLACEHOLDER_MALFORMED, NULL},
        {"{{tcgw:raw}}link-prod", GW_PLACEHOLDER_MALFORMED, NULL},
        {"{{tcgw:raw}}{{tcgw", GW_PLACEHOLDER_MALFORMED, NULL},
        {"", GW_PLACEHOLDER_NONE, NULL},
        {"plain", GW_PLACEHOLDER_NONE, NULL},
        {"{{tcgw", GW_PLACEHOLDER_NONE, NULL},
        {" {{tcgw:secret/x}}", GW_PLACEHOLDER_NONE, NULL},
        {"{{TCGW:secret/x}}", GW_PLACEHOLDER_NONE, NULL},
        {"{{tcgw:", GW_PLACEHOLDER_MALFORMED, NULL},
        {"{{tcgw:secret/}}", GW_PLACEHOLDER_MALFORMED, NULL},
        {"{{tcgw:secret/x}} ", GW_PLACEHOLDER_MALFORMED, NULL},
        {"{{tcgw:secret/a b}}", GW_PLACEHOLDER_MALFORMED, NULL},
        {"{{tcgw:secret/a/b}}", GW_PLACEHOLDER_MALFORMED, NULL},
        {"{{tcgw:secrets/x}}", GW_PLACEHOLDER_MALFORMED, NULL},
        {"{{tcgw:Raw}}x", GW_PLACEHOLDER_MALFORMED, NULL},
        {"{{tcgw:secret/"
         "0123456789012345678901234567890123456789012345678901234567890123}}",
         GW_PLACEHOLDER_IS_SECRET,
         "0123456789012345678901234567890123456789012345678901234567890123"},
        {"{{tcgw:secret/"
         "01234567890123456789012345678901234567890123456789012345678901234}}",
         GW_PLACEHOLDER_MALFORMED, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char name[GW_PLACEHOLDER_NAME_MAX + 1] = "";
        enum gw_placeholder got = gw_placeholder_parse(cases[i].s, strlen(cases[i].s), name);
        if (got != cases[i].want) {
            print_error("case %zu \"%s\": got %d\n", i, cases[i].s, (int)got);
            fail();
        }
        if (cases[i].name != NULL) {
            assert_string_equal(name, cases[i].name);
        }
        assert_int_equal(gw_placeholder_special(cases[i].s, strlen(cases[i].s)),
                         cases[i].want != GW_PLACEHOLDER_NONE);
    }
}

/* ---- scan ------------------------------------------------------------------------------------ */

static json_t *parse(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, &e);
    assert_non_null(j);
    return j;
}

static void test_scan_names_and_paths(void **state)
{
    (void)state;
    struct gw_inject *inj = NULL;
    struct gw_inject_verdict v;
    const char *const *names, *const *params;
    json_t *p = parse("{\"A\":\"{{tcgw:secret/one}}\",\"L\":[{\"K\":\"x\"},"
                      "{\"K\":\"{{tcgw:secret/two}}\"}],\"R\":\"{{tcgw:raw}}{{tcgw:secret/no}}\","
                      "\"N\":5,\"S\":\"plain\",\"{{tcgw:secret/key}}\":1}");
    assert_int_equal(gw_inject_scan(p, &inj, &v), GW_OK);
    assert_non_null(inj);
    assert_int_equal(gw_inject_secrets(inj, &names, &params), 2);
    assert_string_equal(names[0], "one");
    assert_string_equal(params[0], "A");
    assert_string_equal(names[1], "two");
    assert_string_equal(params[1], "L.K"); /* no list index: as policy keys name it */
    gw_inject_free(inj);
    json_decref(p);

    /* Nothing special: no state, the call goes as received. */
    inj = (struct gw_inject *)1;
    p = parse("{\"A\":\"{{tcgw\",\"B\":[1,\"x\"]}");
    assert_int_equal(gw_inject_scan(p, &inj, &v), GW_OK);
    assert_null(inj);
    assert_int_equal(gw_inject_secrets(NULL, &names, &params), 0);
    json_decref(p);
}

static void test_scan_refusals(void **state)
{
    (void)state;
    struct gw_inject *inj = NULL;
    struct gw_inject_verdict v;
    json_t *p = parse("{\"Outer\":{\"Key\":\"{{tcgw:secrets/x}}\"}}");
    assert_int_equal(gw_inject_scan(p, &inj, &v), GW_ERR_INVALID);
    assert_string_equal(v.code, "InvalidParameterValue");
    assert_non_null(strstr(v.message, "\"Outer.Key\""));
    json_decref(p);

    json_t *many = json_array();
    for (int i = 0; i <= GW_INJECT_MAX_STRINGS; i++) {
        json_array_append_new(many, json_string("{{tcgw:secret/k}}"));
    }
    p = json_pack("{s:o}", "L", many);
    assert_int_equal(gw_inject_scan(p, &inj, &v), GW_ERR_INVALID);
    assert_string_equal(v.code, "InvalidParameterValue");
    assert_non_null(strstr(v.message, "at most 32"));
    json_decref(p);
}

/* ---- apply ----------------------------------------------------------------------------------- */

/* Scans body and applies it for gaap CreateCertificate; returns the error, *out the body. */
static enum gw_err apply(struct fixture *f, const char *body, size_t max, struct gw_buf *out,
                         struct gw_inject_verdict *v)
{
    struct gw_inject *inj = NULL;
    json_t *p = parse(body);
    assert_int_equal(gw_inject_scan(p, &inj, v), GW_OK);
    gw_buf_init_secure(out, max);
    enum gw_err err = gw_inject_apply(inj, f->vault, f->spec, "gaap", "2018-05-29",
                                      "CreateCertificate", body, strlen(body), out, v);
    gw_inject_free(inj);
    json_decref(p);
    return err;
}

static void test_apply_splices_only_the_placeholders(void **state)
{
    struct fixture *f = *state;
    struct gw_buf out;
    struct gw_inject_verdict v;
    /* Escaped spelling of a placeholder, odd spacing, a number as a string, a raw literal. */
    const char *body = "{ \"CertificateType\" : \"2\" ,\"CertificateContent\":\"c\\/d\","
                       "\"CertificateKey\"\n:\"\\u007b{tcgw:secret\\/edge-key}}\","
                       "\"CertificateAlias\":\"{{tcgw:raw}}{{tcgw:\\u0072aw}}\\n\"}";
    assert_int_equal(apply(f, body, 1 << 20, &out, &v), GW_OK);
    const char *want = "{ \"CertificateType\" : \"2\" ,\"CertificateContent\":\"c\\/d\","
                       "\"CertificateKey\"\n:\"-----BEGIN KEY-----\\nCANARYtextNOTaKEYjustTESTtext0"
                       "SCANARYcanaryCANARY/0\\\"q\\\\uote\\\"\\n-----END KEY-----\","
                       "\"CertificateAlias\":\"{{tcgw:\\u0072aw}}\\n\"}";
    assert_int_equal(out.len, strlen(want));
    assert_memory_equal(out.data, want, out.len);
    /* What was sent parses to the value itself. */
    json_t *sent = json_loadb(out.data, out.len, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(sent, "CertificateKey")), PEM);
    assert_string_equal(json_string_value(json_object_get(sent, "CertificateAlias")),
                        "{{tcgw:raw}}\n");
    json_decref(sent);
    gw_buf_free(&out);
}

static void test_apply_refusals(void **state)
{
    struct fixture *f = *state;
    struct gw_buf out;
    struct gw_inject_verdict v;

    assert_int_equal(apply(f,
                           "{\"CertificateType\":2,\"CertificateContent\":\"c\","
                           "\"CertificateKey\":\"{{tcgw:secret/nope}}\"}",
                           1 << 20, &out, &v),
                     GW_ERR_NOT_FOUND);
    assert_string_equal(v.code, "ResourceNotFound");
    assert_non_null(strstr(v.message, "\"nope\""));
    assert_int_equal(out.len, 0);

    /* 20000 bytes into CertificateKey (max_length 16384): the message gives lengths only. */
    assert_int_equal(apply(f,
                           "{\"CertificateType\":2,\"CertificateContent\":\"c\","
                           "\"CertificateKey\":\"{{tcgw:secret/big}}\"}",
                           1 << 20, &out, &v),
                     GW_ERR_INVALID);
    assert_string_equal(v.code, "InvalidParameterValue");
    assert_non_null(strstr(v.message, "at most 16384 bytes"));
    assert_non_null(strstr(v.message, "holds 20000 bytes"));
    assert_null(strstr(v.message, "kkkk"));
    assert_int_equal(out.len, 0);

    /* The same value fits CertificateContent (64 KiB), but not the body's maximum. */
    assert_int_equal(apply(f,
                           "{\"CertificateType\":1,"
                           "\"CertificateContent\":\"{{tcgw:secret/big}}\"}",
                           1000, &out, &v),
                     GW_ERR_TOO_LARGE);
    assert_string_equal(v.code, "RequestSizeLimitExceeded");
    assert_null(out.data); /* wiped and freed */

    /* A literal is checked after its escape is taken off, like a value. */
    char alias[300];
    snprintf(alias, sizeof alias,
             "{\"CertificateType\":1,\"CertificateContent\":\"c\","
             "\"CertificateAlias\":\"{{tcgw:raw}}{{tcgw:%0122d\"}",
             0);
    assert_int_equal(apply(f, alias, 1 << 20, &out, &v), GW_ERR_INVALID);
    assert_non_null(strstr(v.message, "at most 128 bytes"));
}

/* ---- escaping and redaction ------------------------------------------------------------------ */

static void test_json_escape(void **state)
{
    (void)state;
    struct gw_buf b;
    gw_buf_init(&b, 1024);
    const unsigned char in[] = "a\"b\\c\n\r\t\b\f\x01\x1f/\xc3\xa9";
    assert_int_equal(gw_inject_json_escape(&b, in, sizeof in - 1), GW_OK);
    assert_string_equal(b.data, "a\\\"b\\\\c\\n\\r\\t\\b\\f\\u0001\\u001f/\xc3\xa9");
    gw_buf_free(&b);
}

static struct gw_inject *scan_text(const char *text)
{
    struct gw_inject *inj = NULL;
    struct gw_inject_verdict v;
    json_t *p = parse(text);
    assert_int_equal(gw_inject_scan(p, &inj, &v), GW_OK);
    json_decref(p); /* the names are copied: redact needs no params */
    return inj;
}

static void redact_case(struct fixture *f, struct gw_inject *inj, const char *answer,
                        const char *want, size_t want_count)
{
    struct gw_buf resp;
    size_t count = 99;
    gw_buf_init(&resp, 1 << 20);
    assert_int_equal(gw_buf_append_str(&resp, answer), GW_OK);
    assert_int_equal(gw_inject_redact(inj, f->vault, &resp, NULL, &count), GW_OK);
    if (strcmp(resp.data, want) != 0) {
        print_error("answer %s\n  got %s\n want %s\n", answer, resp.data, want);
        fail();
    }
    assert_int_equal(count, want_count);
    gw_buf_free(&resp);
}

static void test_redact(void **state)
{
    struct fixture *f = *state;
    struct gw_inject *inj =
        scan_text("{\"K\":\"{{tcgw:secret/edge-key}}\",\"S\":\"{{tcgw:secret/short}}\"}");
    const char *ph = "{{tcgw:secret/edge-key}}";
    char want[512], answer[512];

    /* JSON-escaped, as an upstream's JSON holds it */
    snprintf(
        answer, sizeof answer, "{\"Echo\":\"%s\",\"Id\":\"abc\"}",
        "-----BEGIN KEY-----\\nCANARYtextNOTaKEYjustTESTtext0SCANARYcanaryCANARY/0\\\"q\\\\uote\\\""
        "\\n-----END KEY-----");
    snprintf(want, sizeof want, "{\"Echo\":\"%s\",\"Id\":\"abc\"}", ph);
    redact_case(f, inj, answer, want, 1);
    /* with '/' escaped */
    snprintf(answer, sizeof answer, "[\"%s\"]",
             "-----BEGIN "
             "KEY-----\\nCANARYtextNOTaKEYjustTESTtext0SCANARYcanaryCANARY\\/0\\\"q\\\\uote\\\""
             "\\n-----END KEY-----");
    snprintf(want, sizeof want, "[\"%s\"]", ph);
    redact_case(f, inj, answer, want, 1);
    /* raw, twice */
    snprintf(answer, sizeof answer, "%s|%s", PEM, PEM);
    snprintf(want, sizeof want, "%s|%s", ph, ph);
    redact_case(f, inj, answer, want, 2);
    /* cut: an error message quoting the first 40 bytes */
    redact_case(f, inj, "{\"Message\":\"key -----BEGIN KEY-----\\nCANARYtextNOTaKEYjus\"}",
                "{\"Message\":\"key {{tcgw:secret/edge-key}}\"}", 1);
    /* a run with no whole aligned chunk (bytes 1 to 30: under 2 * 16 - 1) is left alone */
    redact_case(f, inj, "<----BEGIN KEY-----\nCANARYtext>", "<----BEGIN KEY-----\nCANARYtext>", 0);
    /* values under GW_INJECT_REDACT_MIN bytes are never searched ("abc" is "short") */
    redact_case(f, inj, "{\"abc\":1}", "{\"abc\":1}", 0);
    gw_inject_free(inj);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_placeholder_syntax),
        cmocka_unit_test(test_scan_names_and_paths),
        cmocka_unit_test(test_scan_refusals),
        cmocka_unit_test(test_apply_splices_only_the_placeholders),
        cmocka_unit_test(test_apply_refusals),
        cmocka_unit_test(test_json_escape),
        cmocka_unit_test(test_redact),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
