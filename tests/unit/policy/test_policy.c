/*
 * Unit tests for policy decisions: a table of calls against the policies of data/decide/ (every
 * operator, _if_exist, for_any_value and for_all_value, absent and list parameters, nested paths,
 * numbers sent as strings, CIDRs, context keys, wildcards, explicit deny), the statement names and
 * the exact reason and refusal texts, explain, threads, and the shipped example policies.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apispec/apispec.h"
#include "policy/policy.h"

#define PATH_LEN 4096

static struct gw_policy_set *decide_set;

static void source_path(char *out, size_t n, const char *rel)
{
    const char *src = getenv("TCGW_SOURCE_DIR");
    int len = snprintf(out, n, "%s/%s", src != NULL ? src : "..", rel);
    assert_true(len > 0 && (size_t)len < n);
}

static int load_decide(void **state)
{
    (void)state;
    char dir[PATH_LEN], msg[512] = "";
    source_path(dir, sizeof dir, "tests/unit/policy/data/decide");
    if (gw_policy_set_load(dir, NULL, &decide_set, msg, sizeof msg) != GW_OK) {
        print_error("cannot load %s: %s\n", dir, msg);
        return -1;
    }
    return 0;
}

static int free_decide(void **state)
{
    (void)state;
    gw_policy_set_free(decide_set);
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * The decision table.
 */

struct row {
    int line;
    const char *policies; /* names, comma-separated; NULL: "ops" */
    const char *action;   /* "t:StringEqual" */
    const char *params;   /* JSON object, or NULL */
    const char *peer;
    const char *region;
    const char *caller;
    const char *attrs; /* JSON object, or NULL */
    enum gw_decision want;
    const char *statement; /* the statement expected, or NULL when any */
};

#define ALLOW GW_DECISION_ALLOW
#define DENY GW_DECISION_DENY
#define ROW(...)                                                                                   \
    {                                                                                              \
        .line = __LINE__, __VA_ARGS__                                                              \
    }

static const struct row rows[] = {
    /* string_equal: values OR together; case-sensitive; a number is not a string */
    ROW(.action = "t:StringEqual", .params = "{\"Name\":\"a\"}", .want = ALLOW,
        .statement = "ops.json#string-equal"),
    ROW(.action = "t:StringEqual", .params = "{\"Name\":\"b\"}", .want = ALLOW),
    ROW(.action = "t:StringEqual", .params = "{\"Name\":\"A\"}", .want = DENY,
        .statement = "ops.json#string-equal"),
    ROW(.action = "t:StringEqual", .params = "{\"Name\":\"ab\"}", .want = DENY),
    ROW(.action = "t:StringEqual", .params = "{\"Name\":5}", .want = DENY),
    ROW(.action = "t:StringEqual", .params = "{}", .want = DENY),
    ROW(.action = "t:StringEqual", .params = NULL, .want = DENY),
    ROW(.action = "t:StringEqual", .params = "{\"Name\":null}", .want = DENY),
    /* string_not_equal: none of the values; absent does not match */
    ROW(.action = "t:StringNotEqual", .params = "{\"Name\":\"c\"}", .want = ALLOW),
    ROW(.action = "t:StringNotEqual", .params = "{\"Name\":\"a\"}", .want = DENY),
    ROW(.action = "t:StringNotEqual", .params = "{\"Name\":\"b\"}", .want = DENY),
    ROW(.action = "t:StringNotEqual", .params = "{}", .want = DENY),
    ROW(.action = "t:StringNotEqual", .params = "{\"Name\":1}", .want = DENY),
    /* string_like: * and ? */
    ROW(.action = "t:StringLike", .params = "{\"Name\":\"link-4ftf12sb\"}", .want = ALLOW),
    ROW(.action = "t:StringLike", .params = "{\"Name\":\"link-\"}", .want = ALLOW),
    ROW(.action = "t:StringLike", .params = "{\"Name\":\"xyz\"}", .want = ALLOW),
    ROW(.action = "t:StringLike", .params = "{\"Name\":\"xz\"}", .want = DENY),
    ROW(.action = "t:StringLike", .params = "{\"Name\":\"xyyz\"}", .want = DENY),
    ROW(.action = "t:StringLike", .params = "{\"Name\":\"plink-1\"}", .want = DENY),
    ROW(.action = "t:StringLike", .params = "{\"Name\":\"LINK-1\"}", .want = DENY),
    /* numeric_equal: JSON numbers and decimal strings, integers exactly */
    ROW(.action = "t:NumericEqual", .params = "{\"N\":5}", .want = ALLOW),
    ROW(.action = "t:NumericEqual", .params = "{\"N\":\"5\"}", .want = ALLOW),
    ROW(.action = "t:NumericEqual", .params = "{\"N\":7}", .want = ALLOW),
    ROW(.action = "t:NumericEqual", .params = "{\"N\":5.0}", .want = ALLOW),
    ROW(.action = "t:NumericEqual", .params = "{\"N\":\"2.5\"}", .want = ALLOW),
    ROW(.action = "t:NumericEqual", .params = "{\"N\":\"25e-1\"}", .want = ALLOW),
    ROW(.action = "t:NumericEqual", .params = "{\"N\":6}", .want = DENY),
    ROW(.action = "t:NumericEqual", .params = "{\"N\":\"five\"}", .want = DENY),
    ROW(.action = "t:NumericEqual", .params = "{\"N\":\" 5\"}", .want = DENY),
    ROW(.action = "t:NumericEqual", .params = "{\"N\":\"0x5\"}", .want = DENY),
    ROW(.action = "t:NumericEqual", .params = "{\"N\":true}", .want = DENY),
    ROW(.action = "t:NumericEqual", .params = "{\"N\":\"18446744073709551621\"}", .want = DENY),
    ROW(.action = "t:NumericNotEqual", .params = "{\"N\":6}", .want = ALLOW),
    ROW(.action = "t:NumericNotEqual", .params = "{\"N\":\"5\"}", .want = DENY),
    ROW(.action = "t:NumericNotEqual", .params = "{\"N\":\"abc\"}", .want = DENY),
    ROW(.action = "t:NumericNotEqual", .params = "{}", .want = DENY),
    /* the four comparisons, at and around their bound */
    ROW(.action = "t:LessThan", .params = "{\"N\":9}", .want = ALLOW),
    ROW(.action = "t:LessThan", .params = "{\"N\":\"-3\"}", .want = ALLOW),
    ROW(.action = "t:LessThan", .params = "{\"N\":9.99}", .want = ALLOW),
    ROW(.action = "t:LessThan", .params = "{\"N\":10}", .want = DENY),
    ROW(.action = "t:LessThanEqual", .params = "{\"N\":\"10\"}", .want = ALLOW),
    ROW(.action = "t:LessThanEqual", .params = "{\"N\":11}", .want = DENY),
    ROW(.action = "t:LessThanEqual", .params = "{\"N\":\"10.5\"}", .want = DENY),
    ROW(.action = "t:GreaterThan", .params = "{\"N\":-9}", .want = ALLOW),
    ROW(.action = "t:GreaterThan", .params = "{\"N\":-10}", .want = DENY),
    ROW(.action = "t:GreaterThan", .params = "{\"N\":\"-11\"}", .want = DENY),
    ROW(.action = "t:GreaterThanEqual", .params = "{\"N\":10}", .want = ALLOW),
    ROW(.action = "t:GreaterThanEqual", .params = "{\"N\":\"9223372036854775808\"}", .want = ALLOW),
    ROW(.action = "t:GreaterThanEqual", .params = "{\"N\":9}", .want = DENY),
    /* ip_equal: IPv4 and IPv6 CIDRs, single addresses, IPv4-mapped IPv6 callers */
    ROW(.action = "t:IpEqual", .peer = "10.1.2.3", .want = ALLOW),
    ROW(.action = "t:IpEqual", .peer = "11.1.2.3", .want = DENY),
    ROW(.action = "t:IpEqual", .peer = "192.168.1.7", .want = ALLOW),
    ROW(.action = "t:IpEqual", .peer = "192.168.1.8", .want = DENY),
    ROW(.action = "t:IpEqual", .peer = "2001:db8:1::5", .want = ALLOW),
    ROW(.action = "t:IpEqual", .peer = "2001:db9::5", .want = DENY),
    ROW(.action = "t:IpEqual", .peer = "::ffff:10.9.9.9", .want = ALLOW),
    ROW(.action = "t:IpEqual", .peer = "", .want = DENY),
    ROW(.action = "t:IpEqual", .peer = "not-an-address", .want = DENY),
    ROW(.action = "t:IpNotEqual", .peer = "11.0.0.1", .want = ALLOW),
    ROW(.action = "t:IpNotEqual", .peer = "10.0.0.1", .want = DENY),
    ROW(.action = "t:IpNotEqual", .peer = "::1", .want = DENY),
    ROW(.action = "t:IpNotEqual", .peer = "::2", .want = ALLOW),
    ROW(.action = "t:IpNotEqual", .peer = "", .want = DENY),
    /* bool_equal: true/false and their strings */
    ROW(.action = "t:BoolEqual", .params = "{\"Flag\":true}", .want = ALLOW),
    ROW(.action = "t:BoolEqual", .params = "{\"Flag\":\"true\"}", .want = ALLOW),
    ROW(.action = "t:BoolEqual", .params = "{\"Flag\":false}", .want = DENY),
    ROW(.action = "t:BoolEqual", .params = "{\"Flag\":\"TRUE\"}", .want = DENY),
    ROW(.action = "t:BoolEqual", .params = "{\"Flag\":1}", .want = DENY),
    /* _if_exist: absent passes, present must match */
    ROW(.action = "t:IfExist", .params = "{}", .want = ALLOW),
    ROW(.action = "t:IfExist", .params = "{\"Name\":\"a\"}", .want = ALLOW),
    ROW(.action = "t:IfExist", .params = "{\"Name\":\"b\"}", .want = DENY),
    ROW(.action = "t:NumericIfExist", .params = "{\"Other\":1}", .want = ALLOW),
    ROW(.action = "t:NumericIfExist", .params = "{\"N\":\"100\"}", .want = ALLOW),
    ROW(.action = "t:NumericIfExist", .params = "{\"N\":\"101\"}", .want = DENY),
    /* for_any_value: some value; nothing does not match */
    ROW(.action = "t:Any", .params = "{\"Ids\":[\"z\",\"b\"]}", .want = ALLOW),
    ROW(.action = "t:Any", .params = "{\"Ids\":[\"z\",\"y\"]}", .want = DENY),
    ROW(.action = "t:Any", .params = "{\"Ids\":[]}", .want = DENY),
    ROW(.action = "t:Any", .params = "{}", .want = DENY),
    ROW(.action = "t:Any", .params = "{\"Ids\":\"a\"}", .want = ALLOW),
    ROW(.action = "t:Any", .params = "{\"Ids\":[1,\"a\"]}", .want = ALLOW),
    /* for_all_value: every value; nothing matches (CAM) */
    ROW(.action = "t:All", .params = "{\"Ids\":[\"link-1\",\"link-2\"]}", .want = ALLOW),
    ROW(.action = "t:All", .params = "{\"Ids\":[\"link-1\",\"lb-2\"]}", .want = DENY),
    ROW(.action = "t:All", .params = "{\"Ids\":[]}", .want = ALLOW),
    ROW(.action = "t:All", .params = "{}", .want = ALLOW),
    ROW(.action = "t:All", .params = "{\"Ids\":[\"link-1\",2]}", .want = DENY),
    ROW(.action = "t:All", .params = "{\"Ids\":[[\"link-1\"]]}", .want = DENY),
    ROW(.action = "t:AnyIfExist", .params = "{}", .want = ALLOW),
    ROW(.action = "t:AnyIfExist", .params = "{\"Ids\":[\"b\"]}", .want = DENY),
    ROW(.action = "t:AllNumeric", .params = "{\"Ns\":[1,\"2\",9]}", .want = ALLOW),
    ROW(.action = "t:AllNumeric", .params = "{\"Ns\":[1,\"20\"]}", .want = DENY),
    /* paths through lists of objects: Filters.Name is every Name */
    ROW(.action = "t:Filters",
        .params = "{\"Filters\":[{\"Name\":\"ProxyId\",\"Values\":[\"link-1\",\"link-2\"]},"
                  "{\"Name\":\"ProxyName\",\"Values\":[\"link-x\"]}]}",
        .want = ALLOW),
    ROW(.action = "t:Filters",
        .params = "{\"Filters\":[{\"Name\":\"ProxyId\",\"Values\":[\"link-1\"]},"
                  "{\"Name\":\"Status\",\"Values\":[\"link-2\"]}]}",
        .want = DENY),
    ROW(.action = "t:Filters",
        .params = "{\"Filters\":[{\"Name\":\"ProxyId\",\"Values\":[\"link-1\",\"lb-2\"]}]}",
        .want = DENY),
    ROW(.action = "t:Filters", .params = "{}", .want = ALLOW),
    /* nested objects */
    ROW(.action = "t:Nested", .params = "{\"Obj\":{\"Inner\":{\"Value\":\"x\"}}}", .want = ALLOW),
    ROW(.action = "t:Nested", .params = "{\"Obj\":{\"Inner\":{\"Value\":\"y\"}}}", .want = DENY),
    ROW(.action = "t:Nested", .params = "{\"Obj\":{\"Inner\":\"x\"}}", .want = DENY),
    ROW(.action = "t:Nested", .params = "{\"Obj\":{\"Inner\":{\"Value\":{\"x\":1}}}}",
        .want = DENY),
    /* context keys */
    ROW(.action = "t:Region", .region = "ap-guangzhou", .want = ALLOW),
    ROW(.action = "t:Region", .region = "ap-shanghai", .want = DENY),
    ROW(.action = "t:Region", .region = "", .want = DENY),
    ROW(.action = "t:Caller", .caller = "bot", .want = ALLOW),
    ROW(.action = "t:Caller", .caller = "bot2", .want = DENY),
    ROW(.action = "t:Attr", .attrs = "{\"team\":\"network\"}", .want = ALLOW),
    ROW(.action = "t:Attr", .attrs = "{\"team\":\"billing\"}", .want = DENY),
    ROW(.action = "t:Attr", .attrs = "{}", .want = DENY),
    ROW(.action = "t:Attr", .attrs = NULL, .want = DENY),
    /* a plain operator on a list resolves against the call */
    ROW(.action = "t:PlainOnList", .params = "{\"Ids\":\"a\"}", .want = ALLOW),
    ROW(.action = "t:PlainOnList", .params = "{\"Ids\":[\"a\"]}", .want = DENY),
    ROW(.action = "t:PlainOnList", .params = "{\"Ids\":[\"a\",\"b\"]}", .want = DENY),
    /* conditions AND together */
    ROW(.action = "t:Two", .params = "{\"A\":\"x\",\"B\":4}", .want = ALLOW),
    ROW(.action = "t:Two", .params = "{\"A\":\"x\",\"B\":5}", .want = DENY),
    ROW(.action = "t:Two", .params = "{\"A\":\"y\",\"B\":4}", .want = DENY),
    /* a deny whose condition cannot be evaluated applies */
    ROW(.action = "t:Unsure", .params = "{\"N\":2}", .want = ALLOW,
        .statement = "ops.json#unsure-allow"),
    ROW(.action = "t:Unsure", .params = "{\"N\":1}", .want = DENY,
        .statement = "ops.json#unsure-deny"),
    ROW(.action = "t:Unsure", .params = "{\"N\":\"one\"}", .want = DENY,
        .statement = "ops.json#unsure-deny"),
    ROW(.action = "t:Unsure", .params = "{}", .want = ALLOW),
    /* a key of another service is absent from this one's calls */
    ROW(.action = "t:OtherService", .params = "{\"Name\":\"a\"}", .want = DENY),
    /* actions: exact, case-sensitive, wildcards, services */
    ROW(.action = "t:stringEqual", .params = "{\"Name\":\"a\"}", .want = DENY, .statement = ""),
    ROW(.action = "u:StringEqual", .params = "{\"Name\":\"a\"}", .want = DENY, .statement = ""),
    ROW(.policies = "wild", .action = "t:DescribeThings", .want = ALLOW,
        .statement = "wild.json#describe"),
    ROW(.policies = "wild", .action = "t:Describe", .want = ALLOW),
    ROW(.policies = "wild", .action = "t:describeThings", .want = DENY),
    ROW(.policies = "wild", .action = "tt:DescribeThings", .want = DENY),
    ROW(.policies = "wild", .action = "cvm:GetZoneInfo", .want = ALLOW,
        .statement = "wild.json#any-service-get"),
    ROW(.policies = "wild", .action = "cvm:GetZone", .want = DENY),
    ROW(.policies = "everything", .action = "cvm:RunInstances", .want = ALLOW,
        .statement = "everything.json#1"),
    /* no policies at all: deny by default */
    ROW(.policies = "", .action = "t:StringEqual", .params = "{\"Name\":\"a\"}", .want = DENY,
        .statement = ""),
    /* explicit deny beats any allow, in whatever order the policies come */
    ROW(.policies = "everything,deny", .action = "t:DeleteAll", .want = DENY,
        .statement = "deny.json#no-delete"),
    ROW(.policies = "deny,everything", .action = "t:DeleteAll", .want = DENY,
        .statement = "deny.json#no-delete"),
    ROW(.policies = "everything,deny", .action = "t:CreateAll", .want = ALLOW,
        .statement = "everything.json#1"),
    ROW(.policies = "deny", .action = "t:Guarded", .params = "{\"Mode\":\"safe\"}", .want = ALLOW,
        .statement = "deny.json#1"),
    ROW(.policies = "deny", .action = "t:Guarded", .params = "{\"Mode\":\"dangerous\"}",
        .want = DENY, .statement = "deny.json#3"),
    ROW(.policies = "deny", .action = "t:Guarded", .params = "{}", .want = ALLOW),
};

static void pick(const struct gw_policy_set *set, const char *names, const struct gw_policy **out,
                 size_t *n)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", names);
    *n = 0;
    for (char *save = NULL, *s = strtok_r(buf, ",", &save); s != NULL;
         s = strtok_r(NULL, ",", &save)) {
        out[*n] = gw_policy_set_find(set, s);
        if (out[*n] == NULL) {
            fail_msg("no policy %s", s);
        }
        (*n)++;
    }
}

static json_t *parse_or_null(const char *text)
{
    if (text == NULL) {
        return NULL;
    }
    json_error_t jerr;
    json_t *j = json_loads(text, 0, &jerr);
    if (j == NULL) {
        fail_msg("bad test JSON %s: %s", text, jerr.text);
    }
    return j;
}

static void decide_row(const struct gw_policy_set *set, const struct row *r,
                       struct gw_policy_decision *d)
{
    const struct gw_policy *policies[8];
    size_t n;
    char service[64];
    pick(set, r->policies != NULL ? r->policies : "ops", policies, &n);
    const char *colon = strchr(r->action, ':');
    snprintf(service, sizeof service, "%.*s", (int)(colon - r->action), r->action);
    json_t *params = parse_or_null(r->params);
    json_t *attrs = parse_or_null(r->attrs);
    struct gw_policy_request req = {
        .service = service,
        .action = colon + 1,
        .region = r->region != NULL ? r->region : "",
        .params = params,
        .caller = r->caller != NULL ? r->caller : "bot",
        .caller_attributes = attrs,
        .peer = r->peer != NULL ? r->peer : "",
    };
    gw_policy_decide(policies, n, &req, d, NULL);
    json_decref(params);
    json_decref(attrs);
}

static void test_decision_table(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const struct row *r = &rows[i];
        struct gw_policy_decision d;
        decide_row(decide_set, r, &d);
        if (d.decision != r->want || (r->statement != NULL && strcmp(d.statement, r->statement))) {
            print_error("test_policy.c:%d: %s %s: got %s by \"%s\" (%s), want %s by \"%s\"\n",
                        r->line, r->action, r->params != NULL ? r->params : "",
                        d.decision == ALLOW ? "allow" : "deny", d.statement, d.reason,
                        r->want == ALLOW ? "allow" : "deny",
                        r->statement != NULL ? r->statement : "(any)");
            failures++;
        }
        if (d.decision == DENY && d.refused[0] == '\0') {
            print_error("test_policy.c:%d: a deny without a refusal text\n", r->line);
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

/* ---------------------------------------------------------------------------------------------
 * Reasons and refusals, word for word.
 */

static void expect_texts(const struct row *r, const char *statement, const char *reason,
                         const char *refused)
{
    struct gw_policy_decision d;
    decide_row(decide_set, r, &d);
    assert_int_equal(d.decision, r->want);
    assert_string_equal(d.statement, statement);
    assert_string_equal(d.reason, reason);
    assert_string_equal(d.refused, refused);
}

static void test_reason_texts(void **state)
{
    (void)state;
    const struct row failed =
        ROW(.action = "t:Two", .params = "{\"A\":\"x\",\"B\":\"50\"}", .want = DENY);
    expect_texts(&failed, "ops.json#two",
                 "denied by default: ops.json#two does not apply: numeric_less_than t:B with B=50 "
                 "fails",
                 "t:Two with B=50 is not allowed for caller bot (numeric_less_than t:B)");

    const struct row absent = ROW(.action = "t:Two", .params = "{\"B\":1}", .want = DENY);
    expect_texts(&absent, "ops.json#two",
                 "denied by default: ops.json#two does not apply: string_equal t:A without A "
                 "fails",
                 "t:Two without A is not allowed for caller bot (string_equal t:A)");

    const struct row none = ROW(.action = "t:Nothing", .want = DENY);
    expect_texts(&none, "", "no allow statement names t:Nothing",
                 "t:Nothing is not allowed for caller bot");

    const struct row unbound =
        ROW(.policies = "", .action = "t:Nothing", .caller = "lonely", .want = DENY);
    expect_texts(&unbound, "", "no policy is bound to caller lonely",
                 "t:Nothing is not allowed for caller lonely");

    const struct row ip = ROW(.action = "t:IpEqual", .peer = "8.8.8.8", .want = DENY);
    expect_texts(&ip, "ops.json#ip-equal",
                 "denied by default: ops.json#ip-equal does not apply: ip_equal qcs:ip from "
                 "8.8.8.8 fails",
                 "t:IpEqual from 8.8.8.8 is not allowed for caller bot (ip_equal qcs:ip)");

    /* The caller's attribute value goes to the log, not to the caller. */
    const struct row attr =
        ROW(.action = "t:Attr", .attrs = "{\"team\":\"billing\"}", .want = DENY);
    expect_texts(&attr, "ops.json#attr",
                 "denied by default: ops.json#attr does not apply: string_equal tcgw:caller/team "
                 "with caller attribute team=billing fails",
                 "t:Attr with caller attribute team is not allowed for caller bot (string_equal "
                 "tcgw:caller/team)");

    const struct row unsure =
        ROW(.action = "t:PlainOnList", .params = "{\"Ids\":[\"a\"]}", .want = DENY);
    expect_texts(&unsure, "ops.json#plain-on-list",
                 "denied by default: ops.json#plain-on-list does not apply: string_equal t:Ids "
                 "with Ids=a cannot be evaluated",
                 "t:PlainOnList with Ids=a is not allowed for caller bot (string_equal t:Ids)");

    const struct row deny = ROW(.policies = "deny", .action = "t:Guarded",
                                .params = "{\"Mode\":\"dangerous\"}", .want = DENY);
    expect_texts(&deny, "deny.json#3",
                 "denied by deny.json#3: string_equal t:Mode with Mode=dangerous",
                 "t:Guarded with Mode=dangerous is denied for caller bot (string_equal t:Mode)");

    const struct row deny_all = ROW(.policies = "deny", .action = "t:DeleteAll", .want = DENY);
    expect_texts(&deny_all, "deny.json#no-delete", "denied by deny.json#no-delete",
                 "t:DeleteAll is denied for caller bot");

    const struct row allow =
        ROW(.action = "t:StringEqual", .params = "{\"Name\":\"a\"}", .want = ALLOW);
    expect_texts(&allow, "ops.json#string-equal", "allowed by ops.json#string-equal", "");
}

/* A long or unprintable value is cut and cleaned before it is quoted. */
static void test_reason_quotes_safely(void **state)
{
    (void)state;
    const struct row r = ROW(.action = "t:StringEqual",
                             .params = "{\"Name\":\"\\u0001\\n0123456789012345678901234567890123"
                                       "4567890123456789\"}",
                             .want = DENY);
    struct gw_policy_decision d;
    decide_row(decide_set, &r, &d);
    assert_string_equal(d.refused, "t:StringEqual with Name=??01234567890123456789012345678901234"
                                   "... is not allowed for caller bot (string_equal t:Name)");
}

/* ---------------------------------------------------------------------------------------------
 * Explain.
 */

static void test_explain(void **state)
{
    (void)state;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    const struct gw_policy *p = gw_policy_set_find(decide_set, "deny");
    assert_non_null(p);
    json_t *params = json_pack("{s:s}", "Mode", "dangerous");
    struct gw_policy_request req = {.service = "t",
                                    .action = "Guarded",
                                    .region = "",
                                    .params = params,
                                    .caller = "bot",
                                    .peer = ""};
    struct gw_policy_decision d;
    gw_policy_decide(&p, 1, &req, &d, f);
    fclose(f);
    json_decref(params);
    assert_string_equal(text, "deny.json#1 (allow): for t:Guarded\n"
                              "    -> applies\n"
                              "deny.json#no-delete (deny): not for t:Guarded\n"
                              "deny.json#3 (deny): for t:Guarded\n"
                              "    string_equal t:Mode on \"dangerous\": holds\n"
                              "    -> applies\n"
                              "decision: deny (explicit): denied by deny.json#3: string_equal "
                              "t:Mode with Mode=dangerous\n");
    free(text);
}

/* ---------------------------------------------------------------------------------------------
 * The set.
 */

static void test_set(void **state)
{
    (void)state;
    assert_non_null(gw_policy_set_find(decide_set, "ops"));
    assert_null(gw_policy_set_find(decide_set, "ops.json"));
    assert_null(gw_policy_set_find(decide_set, "nope"));
    assert_null(gw_policy_set_find(NULL, "ops"));
    /* ops 28, wild 2, everything 1, deny 3 */
    assert_int_equal(gw_policy_set_statements(decide_set), 34);
    assert_int_equal(gw_policy_set_statements(NULL), 0);
    gw_policy_set_free(NULL);
}

/* ---------------------------------------------------------------------------------------------
 * Threads: one set, many deciders, the same answers.
 */

struct thread_arg {
    int failures;
};

static void *decide_thread(void *arg)
{
    struct thread_arg *a = arg;
    for (int round = 0; round < 200; round++) {
        for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
            struct gw_policy_decision d;
            decide_row(decide_set, &rows[i], &d);
            a->failures += d.decision != rows[i].want;
        }
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    pthread_t t[4];
    struct thread_arg args[4] = {{0}};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_create(&t[i], NULL, decide_thread, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_int_equal(args[i].failures, 0);
    }
}

/* ---------------------------------------------------------------------------------------------
 * The shipped examples, with the shipped API descriptions.
 */

static void test_shipped(void **state)
{
    (void)state;
    char specs[PATH_LEN], dir[PATH_LEN], msg[512] = "";
    struct gw_apispec *spec = NULL;
    struct gw_policy_set *set = NULL;
    source_path(specs, sizeof specs, "specs");
    source_path(dir, sizeof dir, "policies");
    assert_int_equal(gw_apispec_load_dir(specs, &spec, msg, sizeof msg), GW_OK);
    if (gw_policy_set_load(dir, spec, &set, msg, sizeof msg) != GW_OK) {
        fail_msg("%s", msg);
    }
    /* Clean under lint. */
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    int problems = gw_policy_lint(dir, spec, f);
    fclose(f);
    if (problems != 0) {
        fail_msg("lint of the shipped policies: %d problems:\n%s", problems, out);
    }
    free(out);

    const struct gw_policy *bot = gw_policy_set_find(set, "capacity-bot");
    const struct gw_policy *auditor = gw_policy_set_find(set, "auditor");
    assert_non_null(bot);
    assert_non_null(auditor);
    struct {
        const struct gw_policy *p;
        const char *action, *params;
        enum gw_decision want;
        const char *statement, *refused;
    } cases[] = {
        {bot, "ModifyProxyConfiguration",
         "{\"ProxyId\":\"link-4ftf12sb\",\"Bandwidth\":\"10\",\"Concurrent\":\"2\"}", ALLOW,
         "capacity-bot.json#resize", ""},
        {bot, "ModifyProxyConfiguration", "{\"ProxyId\":\"link-1\",\"Concurrent\":10}", ALLOW,
         "capacity-bot.json#resize", ""},
        {bot, "ModifyProxyConfiguration", "{\"ProxyId\":\"link-1\",\"Bandwidth\":200}", DENY,
         "capacity-bot.json#resize",
         "gaap:ModifyProxyConfiguration with Bandwidth=200 is not allowed for caller "
         "capacity-bot (numeric_less_than_equal_if_exist gaap:Bandwidth)"},
        {bot, "ModifyProxyConfiguration", "{\"ProxyId\":\"lb-1\",\"Bandwidth\":10}", DENY,
         "capacity-bot.json#resize",
         "gaap:ModifyProxyConfiguration with ProxyId=lb-1 is not allowed for caller capacity-bot "
         "(string_like gaap:ProxyId)"},
        {bot, "ModifyProxyConfiguration",
         "{\"ProxyId\":\"link-1\",\"Bandwidth\":10,\"BillingType\":1}", DENY,
         "capacity-bot.json#resize", NULL},
        {bot, "ModifyProxyConfiguration",
         "{\"ProxyId\":\"link-1\",\"Bandwidth\":10,\"BillingType\":\"0\"}", ALLOW,
         "capacity-bot.json#resize", ""},
        {bot, "ModifyProxyConfiguration",
         "{\"ProxyId\":\"link-1\",\"InstanceId\":\"link-2\",\"Bandwidth\":10}", DENY,
         "capacity-bot.json#no-instance-id", NULL},
        {bot, "DescribeProxies", "{}", ALLOW, "capacity-bot.json#read", ""},
        {auditor, "DescribeProxies", "{\"ProxyIds\":[\"link-1\"]}", ALLOW, "auditor.json#read", ""},
        {auditor, "ModifyProxyConfiguration", "{\"ProxyId\":\"link-1\"}", DENY, "",
         "gaap:ModifyProxyConfiguration is not allowed for caller capacity-bot"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *params = json_loads(cases[i].params, 0, NULL);
        struct gw_policy_request req = {.service = "gaap",
                                        .action = cases[i].action,
                                        .region = "",
                                        .params = params,
                                        .caller = "capacity-bot",
                                        .peer = "10.0.0.1"};
        struct gw_policy_decision d;
        gw_policy_decide(&cases[i].p, 1, &req, &d, NULL);
        json_decref(params);
        if (d.decision != cases[i].want || strcmp(d.statement, cases[i].statement) != 0 ||
            (cases[i].refused != NULL && strcmp(d.refused, cases[i].refused) != 0)) {
            fail_msg("case %zu: %s by %s: %s / %s", i, d.decision == ALLOW ? "allow" : "deny",
                     d.statement, d.reason, d.refused);
        }
    }
    gw_policy_set_free(set);
    gw_apispec_free(spec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decision_table),
        cmocka_unit_test(test_reason_texts),
        cmocka_unit_test(test_reason_quotes_safely),
        cmocka_unit_test(test_explain),
        cmocka_unit_test(test_set),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_shipped),
    };
    return cmocka_run_group_tests(tests, load_decide, free_decide);
}
