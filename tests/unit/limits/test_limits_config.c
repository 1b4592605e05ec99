/* Unit tests for the "limits" section of the configuration: defaults, a full section, and
 * refusals that name the key and the fix. */
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

static char dir[] = "/tmp/tcgw-limits-config-XXXXXX";
static char path[256];

static int make_dir(void **state)
{
    (void)state;
    if (mkdtemp(dir) == NULL) {
        return -1;
    }
    snprintf(path, sizeof path, "%s/c.json", dir);
    return 0;
}

static int remove_dir(void **state)
{
    (void)state;
    unlink(path);
    return rmdir(dir);
}

static enum gw_err load(const char *text, struct gw_config **cfg, char *msg, size_t msglen)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return gw_config_load(path, cfg, msg, msglen);
}

static void test_defaults_off(void **state)
{
    (void)state;
    struct gw_config *cfg = NULL;
    char msg[512];
    assert_int_equal(load("{}", &cfg, msg, sizeof msg), GW_OK);
    assert_false(cfg->limits.enabled);
    assert_true(cfg->limits.default_rate == 20);
    assert_true(cfg->limits.fair_share);
    assert_int_equal(cfg->limits.max_wait_ms, 0);
    assert_string_equal(cfg->limits.backend, "local");
    assert_string_equal(cfg->limits.redis.address, "127.0.0.1");
    assert_int_equal(cfg->limits.redis.port, 6379);
    assert_int_equal(cfg->limits.redis.replicas, 1);
    assert_int_equal(cfg->limits.redis.timeout_ms, 50);
    gw_config_free(cfg);
}

static void test_full_section(void **state)
{
    (void)state;
    struct gw_config *cfg = NULL;
    char msg[512] = "";
    assert_int_equal(
        load("{\"limits\": {\"default_rate\": 2.5, \"default_burst\": 4,"
             " \"actions\": {\"gaap.ModifyProxyConfiguration\": 10,"
             "               \"gaap.DescribeProxies\": {\"rate\": 5, \"burst\": 1}},"
             " \"services\": {\"gaap\": 15}, \"callers\": {\"bot\": {\"rate\": 0.5}},"
             " \"fair_share\": false, \"max_wait_ms\": 200, \"max_buckets\": 1024,"
             " \"backend\": \"redis\", \"redis\": {\"address\": \"10.0.0.1\", \"port\": 6380,"
             " \"replicas\": 3, \"timeout_ms\": 20, \"key_prefix\": \"gw1\"}}}",
             &cfg, msg, sizeof msg),
        GW_OK);
    assert_true(cfg->limits.enabled);
    assert_true(cfg->limits.default_rate == 2.5 && cfg->limits.default_burst == 4);
    assert_string_equal(cfg->limits.actions[0].name, "gaap.ModifyProxyConfiguration");
    assert_true(cfg->limits.actions[0].rate == 10 && cfg->limits.actions[0].burst == 0);
    assert_string_equal(cfg->limits.actions[1].name, "gaap.DescribeProxies");
    assert_true(cfg->limits.actions[1].rate == 5 && cfg->limits.actions[1].burst == 1);
    assert_null(cfg->limits.actions[2].name);
    assert_string_equal(cfg->limits.services[0].name, "gaap");
    assert_string_equal(cfg->limits.callers[0].name, "bot");
    assert_true(cfg->limits.callers[0].rate == 0.5);
    assert_false(cfg->limits.fair_share);
    assert_int_equal(cfg->limits.max_wait_ms, 200);
    assert_int_equal(cfg->limits.max_buckets, 1024);
    assert_string_equal(cfg->limits.backend, "redis");
    assert_string_equal(cfg->limits.redis.address, "10.0.0.1");
    assert_int_equal(cfg->limits.redis.port, 6380);
    assert_int_equal(cfg->limits.redis.replicas, 3);
    assert_int_equal(cfg->limits.redis.timeout_ms, 20);
    assert_string_equal(cfg->limits.redis.key_prefix, "gw1");
    gw_config_free(cfg);

    assert_int_equal(load("{\"limits\": {\"enabled\": false}}", &cfg, msg, sizeof msg), GW_OK);
    assert_false(cfg->limits.enabled);
    gw_config_free(cfg);
}

static void expect_refused(const char *text, const char *words)
{
    struct gw_config *cfg = NULL;
    char msg[512] = "";
    assert_int_equal(load(text, &cfg, msg, sizeof msg), GW_ERR_INVALID);
    assert_null(cfg);
    if (strstr(msg, words) == NULL) {
        fail_msg("\"%s\" not in: %s", words, msg);
    }
}

static void test_refusals(void **state)
{
    (void)state;
    expect_refused("{\"limits\": {\"default_rate\": 0}}", "\"default_rate\" must be a number");
    expect_refused("{\"limits\": {\"default_rate\": \"20\"}}", "\"default_rate\" must be");
    expect_refused("{\"limits\": {\"actions\": {\"gaap.X\": -1}}}", "\"actions\" must be");
    expect_refused("{\"limits\": {\"actions\": {\"gaap.X\": {\"rate\": 1, \"burst\": 0.5}}}}",
                   "B at least 1");
    expect_refused("{\"limits\": {\"actions\": {\"gaap.X\": {\"rate\": 1, \"brust\": 2}}}}",
                   "\"actions\" must be");
    expect_refused("{\"limits\": {\"callers\": {\"a b\": 1}}}", "\"callers\" must be");
    expect_refused("{\"limits\": {\"backend\": \"memcached\"}}", "\"backend\" must be \"local\"");
    expect_refused("{\"limits\": {\"max_wait_ms\": 60000}}", "\"max_wait_ms\" must be");
    expect_refused("{\"limits\": {\"redis\": {\"replicas\": 0}}}", "\"replicas\" must be");
    expect_refused("{\"limits\": {\"rate\": 5}}", "is not a known key of \"limits\"");
}

int main(void)
{
    unsetenv("TCGW_MASTER_KEY_FILE");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_off),
        cmocka_unit_test(test_full_section),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, make_dir, remove_dir);
}
