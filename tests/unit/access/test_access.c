/*
 * Unit tests for access: the snapshot of callers, policies and vault, its checks when it is built,
 * and reload (a broken file keeps the set in force; a held snapshot outlives the swap).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access/access.h"
#include "identity/callers.h"
#include "policy/policy.h"
#include "vault/vault.h"

#define ALLOW_ALL                                                                                  \
    "{\"version\": \"2.0\", \"statement\": [{\"sid\": \"any\", \"effect\": \"allow\", "            \
    "\"action\": \"*\", \"resource\": \"*\"}]}"
#define READER                                                                                     \
    "{\"version\": \"2.0\", \"statement\": [{\"sid\": \"reads\", \"effect\": \"allow\", "          \
    "\"action\": \"gaap:Describe*\", \"resource\": \"*\"}]}"

struct fixture {
    char dir[64];
    char key[128], store[128], callers[128], policies[128];
    struct gw_access_sources sources;
};

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_true(fputs(text, f) >= 0);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(path, 0600), 0);
}

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    char msg[512];
    struct gw_vault *vault = NULL;
    assert_non_null(fx);
    assert_true(sodium_init() >= 0);
    snprintf(fx->dir, sizeof fx->dir, "/tmp/tcgw-access-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->key, sizeof fx->key, "%s/master.key", fx->dir);
    snprintf(fx->store, sizeof fx->store, "%s/credentials.store", fx->dir);
    snprintf(fx->callers, sizeof fx->callers, "%s/callers.json", fx->dir);
    snprintf(fx->policies, sizeof fx->policies, "%s/policies", fx->dir);
    assert_int_equal(mkdir(fx->policies, 0700), 0);
    assert_int_equal(gw_vault_keygen(fx->key, msg, sizeof msg), GW_OK);
    assert_int_equal(gw_vault_open(fx->key, fx->store, &vault, msg, sizeof msg), GW_OK);
    assert_int_equal(
        gw_vault_put(vault, "default", "AKIDexample", 11, "secret", 6, msg, sizeof msg), GW_OK);
    assert_int_equal(gw_vault_save(vault, fx->store, msg, sizeof msg), GW_OK);
    gw_vault_free(vault);
    write_file(fx->policies, "allow-all.json", ALLOW_ALL);
    write_file(fx->policies, "reader.json", READER);
    write_file(fx->dir, "callers.json",
               "{\"callers\": {\"app\": {\"credential\": \"default\", \"policies\": "
               "[\"reader\"]}}}");
    fx->sources = (struct gw_access_sources){.callers_file = fx->callers,
                                             .policy_dir = fx->policies,
                                             .master_key_file = fx->key,
                                             .credential_store = fx->store,
                                             .spec = NULL};
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    static const char *const names[] = {"policies/allow-all.json",
                                        "policies/reader.json",
                                        "policies/broken.json",
                                        "policies",
                                        "callers.json",
                                        "credentials.store",
                                        "master.key"};
    char path[256];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", fx->dir, names[i]);
        remove(path);
    }
    rmdir(fx->dir);
    free(fx);
    return 0;
}

/* The caller's bound policies, as the pipeline's policy stage sees them. */
static const char *first_statement(const struct gw_access_snapshot *snap, const char *caller,
                                   const char *action)
{
    static char statement[GW_POLICY_STATEMENT_MAX + 1];
    const struct gw_caller *c = gw_callers_find(gw_access_callers(snap), caller);
    assert_non_null(c);
    const struct gw_policy *const *policies = NULL;
    size_t n = gw_access_policies(snap, c, &policies);
    struct gw_policy_request req = {
        .service = "gaap", .action = action, .region = "", .caller = caller, .peer = "127.0.0.1"};
    struct gw_policy_decision d;
    gw_policy_decide(policies, n, &req, &d, NULL);
    snprintf(statement, sizeof statement, "%s%s", d.decision == GW_DECISION_ALLOW ? "+" : "-",
             d.statement);
    return statement;
}

static void test_reload_swaps_and_a_held_snapshot_stays(void **state)
{
    struct fixture *fx = *state;
    char msg[512];
    struct gw_access *access = NULL;
    assert_int_equal(gw_access_open(&fx->sources, &access, msg, sizeof msg), GW_OK);
    assert_int_equal(gw_access_generation(access), 1);

    struct gw_access_snapshot *held = gw_access_current(access); /* a call in flight */
    assert_string_equal(first_statement(held, "app", "ModifyProxyConfiguration"), "-");
    assert_string_equal(first_statement(held, "app", "DescribeProxies"), "+reader.json#reads");

    write_file(fx->dir, "callers.json",
               "{\"callers\": {\"app\": {\"credential\": \"default\", \"policies\": "
               "[\"allow-all\"]}}}");
    assert_int_equal(gw_access_reload(access, msg, sizeof msg), GW_OK);
    assert_int_equal(gw_access_generation(access), 2);
    struct gw_access_snapshot *now = gw_access_current(access);
    assert_int_equal(gw_access_snapshot_generation(now), 2);
    assert_string_equal(first_statement(now, "app", "ModifyProxyConfiguration"),
                        "+allow-all.json#any");
    /* The call that started before the reload is still judged by the set it started with. */
    assert_int_equal(gw_access_snapshot_generation(held), 1);
    assert_string_equal(first_statement(held, "app", "ModifyProxyConfiguration"), "-");
    gw_access_release(held);
    gw_access_release(now);
    gw_access_free(access);
}

static void expect_reload_refused(struct fixture *fx, struct gw_access *access, const char *in)
{
    char msg[512] = "";
    assert_int_not_equal(gw_access_reload(access, msg, sizeof msg), GW_OK);
    if (strstr(msg, in) == NULL) {
        fail_msg("the refusal should name %s: %s", in, msg);
    }
    assert_int_equal(gw_access_generation(access), 1);
    struct gw_access_snapshot *snap = gw_access_current(access);
    assert_string_equal(first_statement(snap, "app", "DescribeProxies"), "+reader.json#reads");
    gw_access_release(snap);
    (void)fx;
}

static void test_a_broken_set_is_refused_whole(void **state)
{
    struct fixture *fx = *state;
    char msg[512];
    struct gw_access *access = NULL;
    assert_int_equal(gw_access_open(&fx->sources, &access, msg, sizeof msg), GW_OK);

    /* A policy file with a duplicate key. */
    write_file(fx->policies, "broken.json",
               "{\"version\": \"2.0\", \"version\": \"2.0\", \"statement\": []}");
    expect_reload_refused(fx, access, "broken.json");
    char path[256];
    snprintf(path, sizeof path, "%s/broken.json", fx->policies);
    assert_int_equal(remove(path), 0);

    /* A caller bound to a policy that does not exist. */
    write_file(fx->dir, "callers.json",
               "{\"callers\": {\"app\": {\"credential\": \"default\", \"policies\": "
               "[\"nope\"]}}}");
    expect_reload_refused(fx, access, "nope");

    /* A caller bound to a credential the store does not hold. */
    write_file(fx->dir, "callers.json",
               "{\"callers\": {\"app\": {\"credential\": \"other\", \"policies\": "
               "[\"reader\"]}}}");
    expect_reload_refused(fx, access, "other");

    /* A callers file that is not JSON. */
    write_file(fx->dir, "callers.json", "{\"callers\": ");
    expect_reload_refused(fx, access, "callers.json");
    gw_access_free(access);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reload_swaps_and_a_held_snapshot_stays, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_broken_set_is_refused_whole, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
