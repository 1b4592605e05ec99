/*
 * Unit tests for the secret-injection keys of the policy module: tcgw:SecretName and
 * tcgw:SecretParameter (lists: every placeholder of the call), and the rule that a call with
 * placeholders is allowed only by an allow statement with a for_all_value string_equal or
 * string_like condition on tcgw:SecretName. A decision table against data/secrets/, the refusal
 * texts, and the load errors for operators a list cannot take.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "policy/policy.h"

#define PATH_LEN 4096
#define MAX_SECRETS 4

static struct gw_policy_set *set;

static void source_path(char *out, size_t n, const char *rel)
{
    const char *src = getenv("TCGW_SOURCE_DIR");
    int len = snprintf(out, n, "%s/%s", src != NULL ? src : "..", rel);
    assert_true(len > 0 && (size_t)len < n);
}

static int load(void **state)
{
    (void)state;
    char dir[PATH_LEN], msg[512] = "";
    source_path(dir, sizeof dir, "tests/unit/policy/data/secrets");
    if (gw_policy_set_load(dir, NULL, &set, msg, sizeof msg) != GW_OK) {
        print_error("cannot load %s: %s\n", dir, msg);
        return -1;
    }
    return 0;
}

static int unload(void **state)
{
    (void)state;
    gw_policy_set_free(set);
    return 0;
}

struct row {
    int line;
    const char *action;              /* "gaap:CreateCertificate" */
    const char *names[MAX_SECRETS];  /* the secrets the call's placeholders name */
    const char *params[MAX_SECRETS]; /* where each stands */
    enum gw_decision want;
    const char *statement; /* expected, or NULL */
};

#define ALLOW GW_DECISION_ALLOW
#define DENY GW_DECISION_DENY
#define ROW(...)                                                                                   \
    {                                                                                              \
        .line = __LINE__, __VA_ARGS__                                                              \
    }

static const struct row rows[] = {
    /* for_all_value:string_equal on both keys: every name listed, every parameter listed */
    ROW(.action = "gaap:CreateCertificate", .names = {"edge-key"}, .params = {"CertificateKey"},
        .want = ALLOW, .statement = "secrets.json#certs"),
    ROW(.action = "gaap:CreateCertificate", .names = {"edge-key", "backup-key"},
        .params = {"CertificateKey", "CertificateKey"}, .want = ALLOW),
    /* one name not listed: for_all_value fails, nothing else may allow a secret */
    ROW(.action = "gaap:CreateCertificate", .names = {"edge-key", "db-root"},
        .params = {"CertificateKey", "CertificateKey"}, .want = DENY,
        .statement = "secrets.json#certs"),
    ROW(.action = "gaap:CreateCertificate", .names = {"Edge-key"}, .params = {"CertificateKey"},
        .want = DENY),
    /* the right secret in another parameter */
    ROW(.action = "gaap:CreateCertificate", .names = {"edge-key"}, .params = {"CertificateContent"},
        .want = DENY),
    /* no placeholders: for_all_value holds on an empty list */
    ROW(.action = "gaap:CreateCertificate", .want = ALLOW, .statement = "secrets.json#certs"),
    /* string_like */
    ROW(.action = "t:Like", .names = {"db-root", "db-ro"}, .params = {"A", "B"}, .want = ALLOW,
        .statement = "secrets.json#like"),
    ROW(.action = "t:Like", .names = {"db-root", "edge-key"}, .params = {"A", "B"}, .want = DENY),
    /* for_any_value, string_not_equal and no condition at all never allow a secret */
    ROW(.action = "t:AnyOnly", .names = {"edge-key"}, .params = {"A"}, .want = DENY),
    ROW(.action = "t:AnyOnly", .want = DENY), /* absent: for_any_value fails */
    ROW(.action = "t:NotEqual", .names = {"edge-key"}, .params = {"A"}, .want = DENY),
    ROW(.action = "t:NotEqual", .want = ALLOW),
    ROW(.action = "t:Plain", .names = {"edge-key"}, .params = {"A"}, .want = DENY,
        .statement = "secrets.json#plain"),
    ROW(.action = "t:Plain", .want = ALLOW, .statement = "secrets.json#plain"),
    /* a deny on for_any_value beats the allows */
    ROW(.action = "t:Like", .names = {"db-a", "prod-db"}, .params = {"A", "B"}, .want = DENY,
        .statement = "secrets.json#no-prod"),
    ROW(.action = "gaap:CreateCertificate", .names = {"prod-key"}, .params = {"CertificateKey"},
        .want = DENY, .statement = "secrets.json#no-prod"),
};

static size_t count_of(const char *const *list)
{
    size_t n = 0;
    while (n < MAX_SECRETS && list[n] != NULL) {
        n++;
    }
    return n;
}

static void decide_row(const struct row *r, struct gw_policy_decision *d)
{
    char service[32];
    const char *colon = strchr(r->action, ':');
    snprintf(service, sizeof service, "%.*s", (int)(colon - r->action), r->action);
    const struct gw_policy *p = gw_policy_set_find(set, "secrets");
    assert_non_null(p);
    struct gw_policy_request req = {
        .service = service,
        .action = colon + 1,
        .region = "",
        .params = NULL,
        .caller = "bot",
        .peer = "",
        .secret_names = r->names,
        .secret_params = r->params,
        .n_secrets = count_of(r->names),
    };
    assert_int_equal(count_of(r->params), req.n_secrets);
    gw_policy_decide(&p, 1, &req, d, NULL);
}

static void test_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct gw_policy_decision d;
        decide_row(&rows[i], &d);
        if (d.decision != rows[i].want ||
            (rows[i].statement != NULL && strcmp(d.statement, rows[i].statement) != 0)) {
            print_error("row at line %d: got %s by \"%s\" (%s)\n", rows[i].line,
                        d.decision == ALLOW ? "allow" : "deny", d.statement, d.reason);
            fail();
        }
    }
}

static void test_refusal_texts(void **state)
{
    (void)state;
    struct gw_policy_decision d;
    /* An allow that applies but says nothing of secrets: the refusal names the key to add. */
    decide_row(&rows[12], &d);
    assert_string_equal(d.refused, "t:Plain with secret edge-key is not allowed for caller bot "
                                   "(no statement allows tcgw:SecretName)");
    assert_non_null(strstr(d.reason, "no for_all_value condition on tcgw:SecretName"));
    /* A name the statement does not list: named, with the key. */
    decide_row(&rows[2], &d);
    assert_string_equal(d.refused, "gaap:CreateCertificate with secret db-root is not allowed "
                                   "for caller bot (for_all_value:string_equal tcgw:SecretName)");
    /* Another parameter. */
    decide_row(&rows[4], &d);
    assert_non_null(strstr(d.refused, "with a secret in CertificateContent"));
    assert_non_null(strstr(d.refused, "tcgw:SecretParameter"));
}

/* Writes text as the only policy of a new directory and loads it; returns the error. */
static enum gw_err load_text(const char *text, char *msg, size_t msglen)
{
    char dir[] = "/tmp/tcgw-policy-secrets-XXXXXX";
    char file[PATH_LEN];
    struct gw_policy_set *s = NULL;
    assert_non_null(mkdtemp(dir));
    snprintf(file, sizeof file, "%s/p.json", dir);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    enum gw_err err = gw_policy_set_load(dir, NULL, &s, msg, msglen);
    gw_policy_set_free(s);
    unlink(file);
    rmdir(dir);
    return err;
}

static void test_list_keys_need_a_qualifier(void **state)
{
    (void)state;
    char msg[512];
    static const char *const bad[] = {
        "{\"version\":\"2.0\",\"statement\":[{\"effect\":\"allow\",\"action\":\"t:A\","
        "\"resource\":\"*\",\"condition\":{\"string_equal\":{\"tcgw:SecretName\":\"k\"}}}]}",
        "{\"version\":\"2.0\",\"statement\":[{\"effect\":\"allow\",\"action\":\"t:A\","
        "\"resource\":\"*\",\"condition\":{\"for_all_value:numeric_equal\":"
        "{\"tcgw:SecretParameter\":1}}}]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        msg[0] = '\0';
        assert_int_equal(load_text(bad[i], msg, sizeof msg), GW_ERR_INVALID);
        assert_non_null(strstr(msg, "is a list"));
        assert_non_null(strstr(msg, "p.json:1:"));
    }
    assert_int_equal(load_text("{\"version\":\"2.0\",\"statement\":[{\"effect\":\"deny\","
                               "\"action\":\"*\",\"resource\":\"*\",\"condition\":"
                               "{\"for_any_value:string_like_if_exist\":"
                               "{\"tcgw:SecretParameter\":\"Password\"}}}]}",
                               msg, sizeof msg),
                     GW_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_refusal_texts),
        cmocka_unit_test(test_list_keys_need_a_qualifier),
    };
    return cmocka_run_group_tests(tests, load, unload);
}
