/* Unit tests for config: defaults, loading, relative paths, and refusals that name the fix. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"

static char dir[] = "/tmp/tcgw-config-XXXXXX";

static int make_dir(void **state)
{
    (void)state;
    unsetenv("TCGW_MASTER_KEY_FILE");
    return mkdtemp(dir) == NULL ? -1 : 0;
}

static int remove_dir(void **state)
{
    (void)state;
    char path[256];
    snprintf(path, sizeof path, "%s/c.json", dir);
    unlink(path);
    return rmdir(dir);
}

static const char *write_config(const char *text)
{
    static char path[256];
    snprintf(path, sizeof path, "%s/c.json", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static void test_defaults(void **state)
{
    (void)state;
    struct gw_config *cfg = gw_config_defaults();
    assert_non_null(cfg);
    assert_string_equal(cfg->listen_address, "127.0.0.1");
    assert_int_equal(cfg->listen_port, 8080);
    assert_int_equal(cfg->max_body_bytes, 1 << 20);
    assert_string_equal(cfg->credential, "default");
    assert_null(cfg->upstream.ca_file);
    assert_null(cfg->upstream.connect_to[0]);
    assert_string_equal(cfg->callers_file, "callers.json");
    assert_string_equal(cfg->policy_dir, "policies");
    assert_int_equal(cfg->accept, GW_ACCEPT_TOKEN | GW_ACCEPT_SDK_KEY);
    assert_null(cfg->unauthenticated_caller);
    assert_true(cfg->plain_listener);
    assert_false(cfg->tls.enabled);
    assert_string_equal(cfg->tls.listen_address, "127.0.0.1");
    assert_int_equal(cfg->tls.listen_port, 8443);
    assert_int_equal(cfg->tls.accept, GW_ACCEPT_CERT);
    assert_null(cfg->tls.cert_file);
    gw_config_free(cfg);
}

static void test_load_full(void **state)
{
    (void)state;
    const char *path =
        write_config("{\"listen_address\": \"::1\", \"listen_port\": 0, \"threads\": 4,"
                     " \"max_body_bytes\": 4096, \"spec_dir\": \"specs\", \"master_key_file\": "
                     "\"/k/master.key\","
                     " \"credential_store\": \"creds.store\", \"credential\": \"prod\","
                     " \"upstream\": {\"ca_file\": \"ca.pem\", \"timeout_ms\": 1500,"
                     " \"connect_to\": [\"gaap.tencentcloudapi.com:443:127.0.0.1:9443\"]}}");
    struct gw_config *cfg = NULL;
    char msg[256] = "";
    assert_int_equal(gw_config_load(path, &cfg, msg, sizeof msg), GW_OK);
    assert_string_equal(cfg->listen_address, "::1");
    assert_int_equal(cfg->listen_port, 0);
    assert_int_equal(cfg->threads, 4);
    assert_int_equal(cfg->max_body_bytes, 4096);
    char expect[300];
    snprintf(expect, sizeof expect, "%s/specs", dir);
    assert_string_equal(cfg->spec_dir, expect);
    assert_string_equal(cfg->master_key_file, "/k/master.key");
    snprintf(expect, sizeof expect, "%s/creds.store", dir);
    assert_string_equal(cfg->credential_store, expect);
    snprintf(expect, sizeof expect, "%s/ca.pem", dir);
    assert_string_equal(cfg->upstream.ca_file, expect);
    assert_int_equal(cfg->upstream.timeout_ms, 1500);
    assert_string_equal(cfg->upstream.connect_to[0], "gaap.tencentcloudapi.com:443:127.0.0.1:9443");
    assert_null(cfg->upstream.connect_to[1]);
    assert_string_equal(cfg->credential, "prod");
    gw_config_free(cfg);
}

static void test_relative_defaults_follow_the_file(void **state)
{
    (void)state;
    const char *path = write_config("{}");
    struct gw_config *cfg = NULL;
    char msg[256];
    assert_int_equal(gw_config_load(path, &cfg, msg, sizeof msg), GW_OK);
    char expect[300];
    snprintf(expect, sizeof expect, "%s/master.key", dir);
    assert_string_equal(cfg->master_key_file, expect);
    gw_config_free(cfg);

    setenv("TCGW_MASTER_KEY_FILE", "keys/m.key", 1);
    assert_int_equal(gw_config_load(path, &cfg, msg, sizeof msg), GW_OK);
    assert_string_equal(cfg->master_key_file, "keys/m.key"); /* relative to the working dir */
    gw_config_free(cfg);
    unsetenv("TCGW_MASTER_KEY_FILE");
}

static void expect_refused(const char *text, const char *words)
{
    const char *path = write_config(text);
    struct gw_config *cfg = NULL;
    char msg[256] = "";
    assert_int_not_equal(gw_config_load(path, &cfg, msg, sizeof msg), GW_OK);
    assert_null(cfg);
    if (strstr(msg, words) == NULL || strstr(msg, path) == NULL) {
        fail_msg("message \"%s\" lacks \"%s\" or the file name", msg, words);
    }
}

static void test_refusals(void **state)
{
    (void)state;
    expect_refused("{\"listen_port\": 70000}", "from 0 to 65535");
    expect_refused("{\"listen_port\": \"80\"}", "listen_port");
    expect_refused("{\"lisen_port\": 80}", "not a known key");
    expect_refused("{\"upstream\": {\"ca\": \"x\"}}", "not a known key of \"upstream\"");
    expect_refused("{\"upstream\": []}", "must be an object");
    expect_refused("{\"credential\": \"\"}", "non-empty");
    expect_refused("{\"listen_port\": 1,}", ":1:");
    expect_refused("{\"threads\": 1, \"threads\": 2}", "duplicate");
    expect_refused("[]", "must be a JSON object");
}

/* A key nobody reads is refused where it stands, with the key that was probably meant. */
static void test_unknown_key_in_a_section(void **state)
{
    (void)state;
    const char *text = "{\n"
                       "  \"listen_port\": 8080,\n"
                       "  \"upstream\": {\n"
                       "    \"timeout_ms\": 1000,\n"
                       "    \"ca_fle\": \"ca.pem\"\n"
                       "  }\n"
                       "}\n";
    expect_refused(text, ":5: \"ca_fle\" is not a known key of \"upstream\"");
    expect_refused(text, "did you mean \"ca_file\"?");
    /* Far from every key: no guess, still the way to the list. */
    expect_refused("{\"upstream\": {\"proxy\": \"x\"}}", "see README.md, Configuration");
    /* The same name at the top level is not a key of the section, nor the other way round. */
    expect_refused("{\"upstream\": {\"threads\": 2}}", "\"threads\" is not a known key of");
    expect_refused("{\"timeout_ms\": 2}", "\"timeout_ms\" is not a known key (");
    /* A key quoted back stays on one line, whatever it holds. */
    expect_refused("{\"a\\nb\": 1}", "\"a?b\" is not a known key");
}

static void test_values_out_of_bounds(void **state)
{
    (void)state;
    expect_refused("{\n\"threads\": 65}", ":2: \"threads\" must be an integer from 1 to 64");
    expect_refused("{\"threads\": 0}", "from 1 to 64");
    expect_refused("{\"listen_port\": -1}", "from 0 to 65535");
    expect_refused("{\"max_body_bytes\": 1}", "from 2 to 67108864");
    expect_refused("{\"max_connections\": 100001}", "from 1 to 100000");
    expect_refused("{\"upstream\": {\n\n  \"timeout_ms\": 0}}",
                   ":3: \"timeout_ms\" must be an integer from 1 to 3600000");
    expect_refused("{\"upstream\": {\"connect_timeout_ms\": 600001}}", "from 1 to 600000");
    expect_refused("{\"upstream\": {\"max_response_bytes\": 1023}}", "from 1024 to 1073741824");
    expect_refused("{\"upstream\": {\"max_host_connections\": 10001}}", "from 1 to 10000");
    expect_refused("{\"upstream\": {\"connect_to\": [\"a\", \"b\", \"c\", \"d\", \"e\", "
                   "\"f\", \"g\", \"h\", \"i\", \"j\", \"k\", \"l\", \"m\", \"n\", \"o\", \"p\"]}}",
                   "at most 15 strings");
    /* Wrong types say what the key is for. */
    expect_refused("{\"upstream\": {\"timeout_ms\": \"5\"}}", "time allowed for a whole call");
    expect_refused("{\"upstream\": {\"timeout_ms\": 1.5}}", "an integer");
    expect_refused("{\"upstream\": {\"resolve\": \"a:1:127.0.0.1\"}}", "a list of");
    expect_refused("{\"upstream\": {\"resolve\": [\"\"]}}", "non-empty strings");
    expect_refused("{\"upstream\": {\"ca_file\": 1}}", "non-empty path");

    /* The bounds themselves are accepted. */
    const char *path =
        write_config("{\"threads\": 64, \"listen_port\": 65535, \"max_body_bytes\": 2,"
                     " \"upstream\": {\"timeout_ms\": 3600000,"
                     " \"max_response_bytes\": 1073741824}}");
    struct gw_config *cfg = NULL;
    char msg[256] = "";
    assert_int_equal(gw_config_load(path, &cfg, msg, sizeof msg), GW_OK);
    assert_int_equal(cfg->threads, 64);
    assert_int_equal(cfg->listen_port, 65535);
    assert_int_equal(cfg->max_body_bytes, 2);
    assert_int_equal(cfg->upstream.timeout_ms, 3600000);
    assert_int_equal(cfg->upstream.max_response_bytes, (size_t)1 << 30);
    gw_config_free(cfg);
}

static struct gw_config *load_ok(const char *text)
{
    const char *path = write_config(text);
    struct gw_config *cfg = NULL;
    char msg[256] = "";
    if (gw_config_load(path, &cfg, msg, sizeof msg) != GW_OK) {
        fail_msg("refused: %s", msg);
    }
    return cfg;
}

static void test_identity_keys(void **state)
{
    (void)state;
    struct gw_config *cfg = load_ok("{}");
    char expect[300];
    snprintf(expect, sizeof expect, "%s/callers.json", dir);
    assert_string_equal(cfg->callers_file, expect);
    snprintf(expect, sizeof expect, "%s/policies", dir);
    assert_string_equal(cfg->policy_dir, expect);
    assert_false(cfg->tls.enabled);
    gw_config_free(cfg);

    cfg = load_ok("{\"callers_file\": \"/etc/tcgw/c.json\", \"policy_dir\": \"pol\","
                  " \"accept\": [\"token\"], \"unauthenticated_caller\": \"side-car_1.x\"}");
    assert_string_equal(cfg->callers_file, "/etc/tcgw/c.json");
    snprintf(expect, sizeof expect, "%s/pol", dir);
    assert_string_equal(cfg->policy_dir, expect);
    assert_int_equal(cfg->accept, GW_ACCEPT_TOKEN);
    assert_string_equal(cfg->unauthenticated_caller, "side-car_1.x");
    gw_config_free(cfg);

    cfg = load_ok("{\"accept\": [\"sdk_key\", \"sdk_key\"]}");
    assert_int_equal(cfg->accept, GW_ACCEPT_SDK_KEY);
    gw_config_free(cfg);
}

static void test_identity_refusals(void **state)
{
    (void)state;
    expect_refused("{\n\"accept\": [\"certificate\"]}",
                   ":2: \"accept\" cannot hold \"certificate\": only the HTTPS listener");
    expect_refused("{\"accept\": [\"token\", \"password\"]}",
                   "\"accept\" must be a list of method names (identity methods of the plain "
                   "listener: \"token\", \"sdk_key\")");
    expect_refused("{\"accept\": []}", "\"accept\" must be a non-empty list");
    expect_refused("{\"accept\": \"token\"}", "\"accept\" must be a non-empty list");
    expect_refused("{\"accept\": [1]}", "a list of method names");
    expect_refused("{\"unauthenticated_caller\": \"\"}", "a name of 1 to 64 letters");
    expect_refused("{\"unauthenticated_caller\": \"a b\"}", "a name of 1 to 64 letters");
    expect_refused("{\"unauthenticated_caller\": \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                   "aaaaaaaaaaaaaaaaaaa\"}",
                   "\"unauthenticated_caller\" must be a name");
    expect_refused("{\"unauthenticated_caller\": 7}", "the caller a call without identity is");
    expect_refused("{\"callers_file\": \"\"}", "non-empty path");
    expect_refused("{\"policy_dir\": false}", "non-empty path");
    expect_refused("{\"plain_listener\": 0}", "true or false");
    expect_refused("{\"plain_listener\": false}",
                   "\"plain_listener\" may be false only with a \"tls\" section");
}

#define TLS_FILES                                                                                  \
    "\"cert_file\": \"s.pem\", \"key_file\": \"s.key\", \"client_ca_file\": \"ca.pem\""

static void test_tls_section(void **state)
{
    (void)state;
    struct gw_config *cfg = load_ok("{\"tls\": {" TLS_FILES "}}");
    char expect[300];
    assert_true(cfg->tls.enabled);
    assert_true(cfg->plain_listener);
    assert_string_equal(cfg->tls.listen_address, "127.0.0.1");
    assert_int_equal(cfg->tls.listen_port, 8443);
    assert_int_equal(cfg->tls.accept, GW_ACCEPT_CERT);
    snprintf(expect, sizeof expect, "%s/s.pem", dir);
    assert_string_equal(cfg->tls.cert_file, expect);
    snprintf(expect, sizeof expect, "%s/s.key", dir);
    assert_string_equal(cfg->tls.key_file, expect);
    snprintf(expect, sizeof expect, "%s/ca.pem", dir);
    assert_string_equal(cfg->tls.client_ca_file, expect);
    gw_config_free(cfg);

    cfg = load_ok(
        "{\"plain_listener\": false, \"tls\": {\"listen_address\": \"::1\","
        " \"listen_port\": 0, \"accept\": [\"certificate\", \"token\", \"sdk_key\"], " TLS_FILES
        "}}");
    assert_false(cfg->plain_listener);
    assert_string_equal(cfg->tls.listen_address, "::1");
    assert_int_equal(cfg->tls.listen_port, 0);
    assert_int_equal(cfg->tls.accept, GW_ACCEPT_CERT | GW_ACCEPT_TOKEN | GW_ACCEPT_SDK_KEY);
    gw_config_free(cfg);

    /* A listener that takes only tokens over TLS is allowed: the certificate is then unused. */
    cfg = load_ok("{\"tls\": {\"accept\": [\"token\"], " TLS_FILES "}}");
    assert_int_equal(cfg->tls.accept, GW_ACCEPT_TOKEN);
    gw_config_free(cfg);
}

/* Idempotency, retries and deadlines: off without their sections, each key read, bounds. */
static void test_resilience_sections(void **state)
{
    (void)state;
    struct gw_config *cfg = load_ok("{}");
    assert_false(cfg->idempotency.enabled);
    assert_false(cfg->retries.enabled);
    assert_int_equal(cfg->idempotency.replay_window_s, 300);
    assert_int_equal(cfg->idempotency.max_entries, 65536);
    assert_int_equal(cfg->retries.max_attempts, 3);
    assert_int_equal(cfg->retries.base_ms, 50);
    assert_int_equal(cfg->retries.cap_ms, 1000);
    assert_true(cfg->retries.budget_ratio > 0.099 && cfg->retries.budget_ratio < 0.101);
    assert_int_equal(cfg->retries.budget_min, 10);
    assert_int_equal(cfg->retries.budget_window_s, 10);
    assert_int_equal(cfg->deadlines.default_ms, 0);
    assert_int_equal(cfg->deadlines.max_ms, 0);
    gw_config_free(cfg);

    cfg = load_ok("{\"idempotency\": {\"replay_window_s\": 60, \"max_entries\": 100},"
                  " \"retries\": {\"max_attempts\": 5, \"base_ms\": 10, \"cap_ms\": 200,"
                  " \"budget_ratio\": 0.2, \"budget_min\": 1, \"budget_window_s\": 30},"
                  " \"deadlines\": {\"default_ms\": 2000, \"max_ms\": 9000}}");
    assert_true(cfg->idempotency.enabled);
    assert_true(cfg->retries.enabled);
    assert_int_equal(cfg->idempotency.replay_window_s, 60);
    assert_int_equal(cfg->idempotency.max_entries, 100);
    assert_int_equal(cfg->retries.max_attempts, 5);
    assert_int_equal(cfg->retries.base_ms, 10);
    assert_int_equal(cfg->retries.cap_ms, 200);
    assert_true(cfg->retries.budget_ratio > 0.199 && cfg->retries.budget_ratio < 0.201);
    assert_int_equal(cfg->retries.budget_min, 1);
    assert_int_equal(cfg->retries.budget_window_s, 30);
    assert_int_equal(cfg->deadlines.default_ms, 2000);
    assert_int_equal(cfg->deadlines.max_ms, 9000);
    gw_config_free(cfg);

    cfg = load_ok("{\"retries\": {\"enabled\": false}, \"idempotency\": {\"enabled\": false}}");
    assert_false(cfg->retries.enabled);
    assert_false(cfg->idempotency.enabled);
    gw_config_free(cfg);

    const char *bad[] = {
        "{\"retries\": {\"max_attempts\": 11}}",
        "{\"retries\": {\"max_attempts\": 0}}",
        "{\"retries\": {\"budget_ratio\": 2}}",
        "{\"retries\": {\"budget_window_s\": 61}}",
        "{\"retries\": {\"attempts\": 3}}",
        "{\"idempotency\": {\"max_entries\": 1}}",
        "{\"idempotency\": {\"replay_window_s\": -1}}",
        "{\"deadlines\": {\"max_ms\": -1}}",
        "{\"deadlines\": {\"default\": 5}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct gw_config *c = NULL;
        char msg[512];
        assert_int_equal(gw_config_load(write_config(bad[i]), &c, msg, sizeof msg), GW_ERR_INVALID);
        assert_null(c);
    }
}

static void test_tls_refusals(void **state)
{
    (void)state;
    expect_refused("{\n\"tls\": {}}", ":2: \"tls\" needs \"cert_file\"");
    expect_refused("{\"tls\": {\"cert_file\": \"s.pem\", \"client_ca_file\": \"ca.pem\"}}",
                   "\"tls\" needs \"key_file\"");
    expect_refused("{\"tls\": {\"cert_file\": \"s.pem\", \"key_file\": \"s.key\"}}",
                   "\"tls\" needs \"client_ca_file\" (PEM file of the CA certificates");
    expect_refused("{\"tls\": {\n\"unauthenticated_caller\": \"x\", " TLS_FILES "}}",
                   ":2: \"unauthenticated_caller\" is not allowed in \"tls\"");
    expect_refused("{\"tls\": {\"accept\": [], " TLS_FILES "}}", "non-empty list");
    expect_refused("{\"tls\": {\"accept\": [\"cert\"], " TLS_FILES "}}",
                   "\"accept\" must be a list of method names (identity methods of the HTTPS "
                   "listener: \"certificate\"");
    expect_refused("{\"tls\": {\"listen_port\": 65536, " TLS_FILES "}}", "from 0 to 65535");
    expect_refused("{\"tls\": {\"cert_file\": \"\", \"key_file\": \"s.key\"}}", "non-empty path");
    expect_refused("{\"tls\": {\"key_fil\": \"k.pem\"}}",
                   "not a known key of \"tls\" (did you mean \"key_file\"?");
    expect_refused("{\"tls\": true}", "\"tls\" must be an object");
}

static void test_missing_file(void **state)
{
    (void)state;
    struct gw_config *cfg = NULL;
    char msg[256] = "";
    assert_int_equal(gw_config_load("/nonexistent/tcgw.json", &cfg, msg, sizeof msg), GW_ERR_IO);
    assert_non_null(strstr(msg, "/nonexistent/tcgw.json"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_load_full),
        cmocka_unit_test(test_relative_defaults_follow_the_file),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_unknown_key_in_a_section),
        cmocka_unit_test(test_values_out_of_bounds),
        cmocka_unit_test(test_identity_keys),
        cmocka_unit_test(test_identity_refusals),
        cmocka_unit_test(test_tls_section),
        cmocka_unit_test(test_tls_refusals),
        cmocka_unit_test(test_resilience_sections),
        cmocka_unit_test(test_missing_file),
    };
    return cmocka_run_group_tests(tests, make_dir, remove_dir);
}
