/*
 * Unit tests for loading and linting policies: each broken file of data/errors/ fails the load
 * with "FILE:LINE: what to fix" naming the exact line, the limits (size, statements, nesting), the
 * files a directory load takes and refuses, and lint reporting every problem of data/lint/ with
 * the shipped API descriptions.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "apispec/apispec.h"
#include "policy/policy.h"

#define PATH_LEN 4096
#define DIR_LEN 64 /* a temporary directory */

static struct gw_apispec *spec;

static void source_path(char *out, size_t n, const char *rel)
{
    const char *src = getenv("TCGW_SOURCE_DIR");
    int len = snprintf(out, n, "%s/%s", src != NULL ? src : "..", rel);
    assert_true(len > 0 && (size_t)len < n);
}

static int load_spec(void **state)
{
    (void)state;
    char dir[PATH_LEN], msg[512];
    source_path(dir, sizeof dir, "specs");
    if (gw_apispec_load_dir(dir, &spec, msg, sizeof msg) != GW_OK) {
        print_error("cannot load the shipped descriptions: %s\n", msg);
        return -1;
    }
    return 0;
}

static int free_spec(void **state)
{
    (void)state;
    gw_apispec_free(spec);
    return 0;
}

static void temp_dir(char out[DIR_LEN])
{
    snprintf(out, DIR_LEN, "/tmp/tcgw-policy-XXXXXX");
    assert_non_null(mkdtemp(out));
}

static void write_file(const char *dir, const char *name, const char *text, size_t len)
{
    char path[PATH_LEN];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static char *read_data(const char *rel, size_t *len)
{
    char path[PATH_LEN];
    source_path(path, sizeof path, rel);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fail_msg("%s: %s", path, strerror(errno));
    }
    char *buf = malloc(1 << 16);
    assert_non_null(buf);
    *len = fread(buf, 1, 1 << 16, f);
    fclose(f);
    return buf;
}

static void remove_tree(const char *dir)
{
    char cmd[PATH_LEN + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

/*
 * Loads a directory holding only file (name, text) and expects err with the message
 * "<dir>/<name>:<line>: " followed by text that contains sub. line 0: no line expected.
 */
static void load_fails_at(const char *where, int at, const char *name, const char *text, size_t len,
                          const struct gw_apispec *with, enum gw_err want, int line,
                          const char *sub)
{
    char dir[DIR_LEN], msg[1024] = "", prefix[PATH_LEN + 64];
    temp_dir(dir);
    write_file(dir, name, text, len);
    struct gw_policy_set *sentinel = (struct gw_policy_set *)(uintptr_t)0x1;
    struct gw_policy_set *set = sentinel;
    enum gw_err err = gw_policy_set_load(dir, with, &set, msg, sizeof msg);
    if (line > 0) {
        snprintf(prefix, sizeof prefix, "%s/%s:%d: ", dir, name, line);
    } else {
        snprintf(prefix, sizeof prefix, "%s/%s: ", dir, name);
    }
    remove_tree(dir);
    if (err != want || set != sentinel || strncmp(msg, prefix, strlen(prefix)) != 0 ||
        strstr(msg + strlen(prefix), sub) == NULL) {
        print_error("%s:%d: %s: got %s \"%s\", want %s \"%s...%s...\"\n", where, at, name,
                    gw_err_str(err), msg, gw_err_str(want), prefix, sub);
        if (err == GW_OK) {
            gw_policy_set_free(set);
        }
        _fail(where, at);
    }
}

static void data_fails_at(const char *where, int at, const char *name, int line, const char *sub)
{
    char rel[PATH_LEN];
    size_t len;
    snprintf(rel, sizeof rel, "tests/unit/policy/data/errors/%s", name);
    char *text = read_data(rel, &len);
    load_fails_at(where, at, name, text, len, spec, GW_ERR_INVALID, line, sub);
    free(text);
}

#define DATA_FAILS(name, line, sub) data_fails_at(__FILE__, __LINE__, name, line, sub)

/* ---------------------------------------------------------------------------------------------
 * Each broken file, its line and its fix.
 */

static void test_errors_name_the_line(void **state)
{
    (void)state;
    DATA_FAILS("duplicate-key.json", 7,
               "duplicate object key near '\"effect\"'; a key may appear "
               "only once");
    DATA_FAILS("deep.json", 7, "nested deeper than 8 levels");
    DATA_FAILS("wrong-type.json", 7, "\"action\" must be a string or a list of strings");
    DATA_FAILS("unknown-operator.json", 10,
               "unknown condition operator \"string_equals\"; known: string_equal,");
    DATA_FAILS("unknown-key.json", 11, "unknown condition key \"qcs:user_agent\"; keys are");
    DATA_FAILS("unknown-statement-key.json", 8, "unknown key \"Resource\" in statement 2");
    DATA_FAILS("bad-effect.json", 7, "\"effect\" must be \"allow\" or \"deny\"");
    DATA_FAILS("resource.json", 9,
               "\"resource\" must be \"*\": tcgw does not scope statements by resource; restrict "
               "the call's parameters with a condition instead");
    DATA_FAILS("version.json", 3, "\"version\" must be \"2.0\"");
    DATA_FAILS("unknown-top-key.json", 4,
               "unknown key \"Statement\"; a policy has \"version\" and \"statement\"");
    DATA_FAILS("unknown-action.json", 8,
               "action \"gaap:ModifyProxyConfig\" is not in the API description of gaap");
    DATA_FAILS("action-case.json", 6, "names are case-sensitive: write \"gaap:DescribeProxies\"");
    DATA_FAILS("bad-value.json", 11, "a value of ip_equal on \"qcs:ip\" must be an IPv4 or IPv6");
    DATA_FAILS("bad-number.json", 8, "must be a number, or a string holding a decimal number");
    DATA_FAILS("duplicate-sid.json", 5, "\"sid\" \"read\" names statement 1 already");
    DATA_FAILS("empty-values.json", 8, "the value of \"gaap:Order\" is an empty list");
    DATA_FAILS("index-key.json", 8, "a key names no list index");
    DATA_FAILS("not-json.json", 4, "expected near");
    DATA_FAILS("missing.json", 4, "statement 1 needs \"effect\"");
}

#define INLINE_FAILS(name, text, with, err, line, sub)                                             \
    load_fails_at(__FILE__, __LINE__, name, text, strlen(text), with, err, line, sub)

static void test_errors_inline(void **state)
{
    (void)state;
    /* Without API descriptions, an action is only checked for its form. */
    INLINE_FAILS("p.json",
                 "{\"version\":\"2.0\",\"statement\":[{\"effect\":\"allow\",\"action\":"
                 "\"gaap\",\"resource\":\"*\"}]}",
                 NULL, GW_ERR_INVALID, 1, "action \"gaap\" must be \"<service>:<Action>\"");
    INLINE_FAILS("p.json", "[]", NULL, GW_ERR_INVALID, 1, "a policy is a JSON object");
    INLINE_FAILS("p.json", "{\"version\":\"2.0\"}", NULL, GW_ERR_INVALID, 1,
                 "the policy needs \"statement\"");
    INLINE_FAILS("p.json", "{\"version\":\"2.0\",\"statement\":[]}", NULL, GW_ERR_INVALID, 1,
                 "\"statement\" must be a list of at least one statement");
    INLINE_FAILS("p.json",
                 "{\"statement\":[{\"effect\":\"allow\",\"action\":\"*\",\"resource\":"
                 "\"*\"}]}",
                 NULL, GW_ERR_INVALID, 1, "the policy needs \"version\": \"2.0\"");
    INLINE_FAILS("p.json",
                 "{\"version\":\"2.0\",\"statement\":[{\"sid\":\"12\",\"effect\":\"allow\","
                 "\"action\":\"*\",\"resource\":\"*\"}]}",
                 NULL, GW_ERR_INVALID, 1, "not only digits");
    INLINE_FAILS("p.json",
                 "{\"version\":\"2.0\",\"statement\":[{\"principal\":{},\"effect\":\"allow\","
                 "\"action\":\"*\",\"resource\":\"*\"}]}",
                 NULL, GW_ERR_INVALID, 1, "\"principal\" is not used");
    INLINE_FAILS("p.json",
                 "{\"version\":\"2.0\",\"statement\":[{\"effect\":\"allow\",\"action\":\"*\","
                 "\"resource\":\"*\",\"condition\":{\"string_equal\":{\"gaap:A\":{}}}}]}",
                 NULL, GW_ERR_INVALID, 1, "must be a value or a list of values");
    INLINE_FAILS("p.json",
                 "{\"version\":\"2.0\",\"statement\":[{\"effect\":\"allow\",\"action\":\"*\","
                 "\"resource\":\"*\",\"condition\":{\"bool_equal\":{\"gaap:A\":\"yes\"}}}]}",
                 NULL, GW_ERR_INVALID, 1, "must be true or false");
    INLINE_FAILS("p.json",
                 "{\"version\":\"2.0\",\"statement\":[{\"effect\":\"allow\",\"action\":\"*\","
                 "\"resource\":\"*\",\"condition\":{\"for_some_value:string_equal\":{\"gaap:A\":"
                 "\"x\"}}}]}",
                 NULL, GW_ERR_INVALID, 1, "unknown condition operator");
    INLINE_FAILS("p.json",
                 "{\"version\":\"2.0\",\"statement\":[{\"effect\":\"allow\",\"action\":\"*\","
                 "\"resource\":\"*\",\"condition\":{\"string_equal\":{\"gaap:A\":5}}}]}",
                 NULL, GW_ERR_INVALID, 1, "a value of string_equal on \"gaap:A\" must be a string");
    INLINE_FAILS("p.json",
                 "{\"version\":\"2.0\",\"statement\":[{\"effect\":\"allow\",\"action\":\"*\","
                 "\"resource\":\"*\",\"condition\":{\"string_equal\":{\"tcgw:callers\":\"x\"}}}]}",
                 NULL, GW_ERR_INVALID, 1, "unknown condition key \"tcgw:callers\"");
    /* A name that cannot make a statement id. */
    INLINE_FAILS("bad name.json",
                 "{\"version\":\"2.0\",\"statement\":[{\"effect\":\"allow\",\"action\":\"*\","
                 "\"resource\":\"*\"}]}",
                 NULL, GW_ERR_INVALID, 0, "a policy file is named \"<name>.json\"");
    /* Not UTF-8, and a NUL inside a string. */
    INLINE_FAILS("p.json", "{\"version\":\"2.0\xff\"}", NULL, GW_ERR_INVALID, 1,
                 "unable to decode byte 0xff");
    INLINE_FAILS("p.json",
                 "{\"version\":\"2.0\",\"statement\":[{\"effect\":\"allow\",\"action\":\"*\","
                 "\"resource\":\"*\",\"condition\":{\"string_equal\":{\"gaap:A\":\"a\\u0000\"}}}]}",
                 NULL, GW_ERR_INVALID, 1, "\\u0000 is not allowed");
}

/* ---------------------------------------------------------------------------------------------
 * Limits.
 */

static void test_limits(void **state)
{
    (void)state;
    /* 1001 statements */
    const char *one = "{\"effect\":\"allow\",\"action\":\"*\",\"resource\":\"*\"},\n";
    size_t cap = 64 + 1001 * strlen(one);
    char *text = malloc(cap);
    assert_non_null(text);
    size_t len = (size_t)snprintf(text, cap, "{\"version\":\"2.0\",\n\"statement\":[\n");
    for (int i = 0; i < 1001; i++) {
        len += (size_t)snprintf(text + len, cap - len, "%s", one);
    }
    text[len - 2] = ']';
    text[len - 1] = '}';
    load_fails_at(__FILE__, __LINE__, "many.json", text, len, NULL, GW_ERR_INVALID, 2,
                  "more than 1000 statements; split the policy into several files");
    /* 1000 load */
    char dir[DIR_LEN], msg[512] = "";
    len = (size_t)snprintf(text, cap, "{\"version\":\"2.0\",\n\"statement\":[\n");
    for (int i = 0; i < 1000; i++) {
        len += (size_t)snprintf(text + len, cap - len, "%s", one);
    }
    text[len - 2] = ']';
    text[len - 1] = '}';
    temp_dir(dir);
    write_file(dir, "many.json", text, len);
    struct gw_policy_set *set = NULL;
    assert_int_equal(gw_policy_set_load(dir, NULL, &set, msg, sizeof msg), GW_OK);
    assert_int_equal(gw_policy_set_statements(set), 1000);
    gw_policy_set_free(set);
    remove_tree(dir);
    free(text);

    /* Above 1 MiB, even as white space. */
    size_t big = ((size_t)1 << 20) + 1;
    text = malloc(big);
    assert_non_null(text);
    memset(text, ' ', big);
    memcpy(text, "{}", 2);
    load_fails_at(__FILE__, __LINE__, "big.json", text, big, NULL, GW_ERR_TOO_LARGE, 0,
                  "larger than 1024 KiB");
    free(text);

    /* A hostile depth is refused before Jansson parses it. */
    size_t deep = 100000;
    text = malloc(deep * 2);
    assert_non_null(text);
    memset(text, '[', deep);
    memset(text + deep, ']', deep);
    load_fails_at(__FILE__, __LINE__, "deep.json", text, deep * 2, NULL, GW_ERR_INVALID, 1,
                  "nested deeper than 8 levels");
    free(text);
}

/* ---------------------------------------------------------------------------------------------
 * Directories.
 */

static void test_directory(void **state)
{
    (void)state;
    char dir[DIR_LEN], msg[512] = "", path[PATH_LEN];
    const char *ok = "{\"version\":\"2.0\",\"statement\":[{\"effect\":\"allow\",\"action\":\"*\","
                     "\"resource\":\"*\"}]}";
    temp_dir(dir);
    write_file(dir, "a.json", ok, strlen(ok));
    write_file(dir, "a-b.json", ok, strlen(ok));
    write_file(dir, "notes.txt", "not a policy", 12);
    write_file(dir, ".hidden.json", "not a policy", 12);
    snprintf(path, sizeof path, "%s/sub.json", dir);
    assert_int_equal(mkdir(path, 0700), 0);
    struct gw_policy_set *set = NULL;
    assert_int_equal(gw_policy_set_load(dir, spec, &set, msg, sizeof msg), GW_OK);
    assert_int_equal(gw_policy_set_statements(set), 2);
    assert_non_null(gw_policy_set_find(set, "a"));
    assert_non_null(gw_policy_set_find(set, "a-b"));
    assert_null(gw_policy_set_find(set, "notes"));
    assert_null(gw_policy_set_find(set, ".hidden"));
    gw_policy_set_free(set);

    /* A symbolic link is refused, as every file the gateway trusts. */
    char target[PATH_LEN];
    snprintf(target, sizeof target, "%s/a.json", dir);
    snprintf(path, sizeof path, "%s/link.json", dir);
    assert_int_equal(symlink(target, path), 0);
    struct gw_policy_set *sentinel = (struct gw_policy_set *)(uintptr_t)0x1;
    set = sentinel;
    assert_int_not_equal(gw_policy_set_load(dir, spec, &set, msg, sizeof msg), GW_OK);
    assert_ptr_equal(set, sentinel);
    assert_non_null(strstr(msg, "link.json"));
    remove_tree(dir);

    /* An empty directory is an empty set (every call denied); a missing one an error. */
    temp_dir(dir);
    set = NULL;
    assert_int_equal(gw_policy_set_load(dir, spec, &set, msg, sizeof msg), GW_OK);
    assert_int_equal(gw_policy_set_statements(set), 0);
    assert_null(gw_policy_set_find(set, "a"));
    gw_policy_set_free(set);
    remove_tree(dir);
    set = sentinel;
    assert_int_equal(gw_policy_set_load("/nonexistent/tcgw", spec, &set, msg, sizeof msg),
                     GW_ERR_IO);
    assert_ptr_equal(set, sentinel);
    assert_non_null(strstr(msg, "/nonexistent/tcgw: cannot read the policy directory"));
}

/* A wildcard that matches nothing known still loads; lint says so. */
static void test_wildcards_load(void **state)
{
    (void)state;
    char dir[DIR_LEN], msg[512] = "";
    const char *text = "{\"version\":\"2.0\",\"statement\":[{\"effect\":\"allow\",\"action\":"
                       "[\"gaap:Delete*\",\"*:DescribeProxies\",\"cvm:*\"],\"resource\":\"*\"}]}";
    temp_dir(dir);
    write_file(dir, "w.json", text, strlen(text));
    struct gw_policy_set *set = NULL;
    assert_int_equal(gw_policy_set_load(dir, spec, &set, msg, sizeof msg), GW_OK);
    gw_policy_set_free(set);
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    assert_int_equal(gw_policy_lint(dir, spec, f), 2);
    fclose(f);
    char want[2 * PATH_LEN];
    snprintf(want, sizeof want,
             "%s/w.json:1: \"gaap:Delete*\" matches no action of the API descriptions\n"
             "%s/w.json:1: \"cvm:*\" matches no action of the API descriptions\n",
             dir, dir);
    assert_string_equal(out, want);
    free(out);
    remove_tree(dir);
}

/* ---------------------------------------------------------------------------------------------
 * Lint: every problem, with its line.
 */

static void test_lint_reports_all(void **state)
{
    (void)state;
    char path[PATH_LEN];
    source_path(path, sizeof path, "tests/unit/policy/data/lint/many.json");
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    int problems = gw_policy_lint(path, spec, f);
    fclose(f);
    static const struct {
        int line;
        const char *text;
    } want[] = {
        {56, "\"effect\" must be \"allow\" or \"deny\""},
        {10, "condition key \"gaap:Bandwith\": gaap:ModifyProxyConfiguration has no parameter "
             "Bandwith: the statement can never match; fix the key"},
        {11, "condition key \"gaap:Bandwidth\" is an integer: string_equal cannot compare it"},
        {19, "condition key \"gaap:ProxyIds\" is a list: write \"for_any_value:string_equal\" "
             "(some value must match) or \"for_all_value:string_equal\" (every value must)"},
        {27, "statement 3 can never match: no value of \"gaap:Bandwidth\" satisfies all its "
             "conditions on that key"},
        {34, "\"gaap:Delete*\" matches no action of the API descriptions"},
        {42, "condition key \"cvm:InstanceId\": no action of the statement is a cvm action, so "
             "calls never have it: the statement can never match; fix the key"},
        {50, "statement 6 can never match: no value of \"gaap:ProxyId\" satisfies all its "
             "conditions on that key"},
    };
    char expected[8192];
    size_t n = 0;
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        n += (size_t)snprintf(expected + n, sizeof expected - n, "%s:%d: %s\n", path, want[i].line,
                              want[i].text);
    }
    assert_string_equal(out, expected);
    assert_int_equal(problems, (int)(sizeof want / sizeof want[0]));
    free(out);

    /* Without descriptions: what the syntax forbids, and the contradictions. */
    f = open_memstream(&out, &len);
    assert_int_equal(gw_policy_lint(path, NULL, f), 3);
    fclose(f);
    free(out);

    /* A clean file, a directory of the error files (every one has a problem), a missing path. */
    source_path(path, sizeof path, "tests/unit/policy/data/lint/clean.json");
    f = open_memstream(&out, &len);
    assert_int_equal(gw_policy_lint(path, spec, f), 0);
    fclose(f);
    assert_string_equal(out, "");
    free(out);
    source_path(path, sizeof path, "tests/unit/policy/data/errors");
    f = open_memstream(&out, &len);
    assert_true(gw_policy_lint(path, spec, f) >= 19);
    fclose(f);
    free(out);
    f = open_memstream(&out, &len);
    assert_int_equal(gw_policy_lint("/nonexistent/tcgw.json", spec, f), -1);
    fclose(f);
    assert_non_null(strstr(out, "/nonexistent/tcgw.json: cannot read"));
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_errors_name_the_line),
        cmocka_unit_test(test_errors_inline),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_directory),
        cmocka_unit_test(test_wildcards_load),
        cmocka_unit_test(test_lint_reports_all),
    };
    return cmocka_run_group_tests(tests, load_spec, free_spec);
}
