/*
 * Unit tests for apispec: the shipped description of GAAP, a test description that uses every
 * type and extension, the number rule, load errors, and made-up services in Tencent's CLI format
 * (data/services/) that together use every kind of member Tencent's descriptions use. Tencent's
 * own description of GAAP, from ../shared, is tested in test_apispec_reference.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "apispec/apispec.h"

#define SVC "gaap"
#define VER "2018-05-29"
#define PATH_LEN 4096

/* ---------------------------------------------------------------------------------------------
 * Helpers.
 */

static struct gw_apispec *shipped;

static void source_path(char *out, size_t n, const char *rel)
{
    const char *src = getenv("TCGW_SOURCE_DIR");
    int len = snprintf(out, n, "%s/%s", src != NULL ? src : "..", rel);
    assert_true(len > 0 && (size_t)len < n);
}

static bool utf8_valid(const char *s)
{
    json_t *j = json_string(s); /* Jansson validates UTF-8 */
    bool ok = j != NULL;
    json_decref(j);
    return ok;
}

/*
 * Checks params_text against spec and fails the test at file:line unless the verdict has code
 * (NULL: the call must pass) and a message containing every non-NULL substring.
 */
static void expect_at(const char *file, int line, const struct gw_apispec *spec,
                      const char *service, const char *version, const char *action,
                      const char *params_text, const char *code, const char *sub1, const char *sub2)
{
    json_error_t jerr;
    json_t *params = json_loads(params_text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    struct gw_apispec_verdict v;
    if (params == NULL) {
        print_error("test input is not JSON: %s: %s\n", jerr.text, params_text);
        _fail(file, line);
    }
    bool ok = gw_apispec_check(spec, service, version, action, params, &v);
    json_decref(params);
    const char *got = ok ? "(pass)" : v.code;
    if (ok != (code == NULL) || (code != NULL && strcmp(code, v.code) != 0)) {
        print_error("%s %s: expected %s, got %s: %s\n", action, params_text, code ? code : "(pass)",
                    got, ok ? "" : v.message);
        _fail(file, line);
    }
    if (ok) {
        if (v.code != NULL) {
            print_error("a passing call left code %s\n", v.code);
            _fail(file, line);
        }
        return;
    }
    if ((sub1 != NULL && strstr(v.message, sub1) == NULL) ||
        (sub2 != NULL && strstr(v.message, sub2) == NULL)) {
        print_error("%s %s: message lacks \"%s\" / \"%s\": %s\n", action, params_text, sub1,
                    sub2 ? sub2 : "", v.message);
        _fail(file, line);
    }
    if (!utf8_valid(v.message) || strlen(v.message) >= GW_APISPEC_MSG_MAX) {
        print_error("message is not valid UTF-8 or too long: %s\n", v.message);
        _fail(file, line);
    }
}

#define PASS(action, text)                                                                         \
    expect_at(__FILE__, __LINE__, shipped, SVC, VER, action, text, NULL, NULL, NULL)
#define FAIL(action, text, code, sub)                                                              \
    expect_at(__FILE__, __LINE__, shipped, SVC, VER, action, text, code, sub, NULL)
#define FAIL2(action, text, code, sub1, sub2)                                                      \
    expect_at(__FILE__, __LINE__, shipped, SVC, VER, action, text, code, sub1, sub2)

static void mkdirs(const char *path)
{
    char tmp[PATH_LEN];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p != '\0'; p++) {
        if (*p == '/') {
            *p = '\0';
            assert_true(mkdir(tmp, 0700) == 0 || errno == EEXIST);
            *p = '/';
        }
    }
    assert_true(mkdir(tmp, 0700) == 0 || errno == EEXIST);
}

/* Writes content to dir/rel, creating the directories in between. */
static void write_file(const char *dir, const char *rel, const char *content)
{
    char path[PATH_LEN];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    char *slash = strrchr(path, '/');
    *slash = '\0';
    mkdirs(path);
    *slash = '/';
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(content, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

static void remove_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0) {
        return;
    }
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        assert_non_null(d);
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
                continue;
            }
            char child[PATH_LEN];
            snprintf(child, sizeof child, "%s/%s", path, e->d_name);
            remove_tree(child);
        }
        closedir(d);
        assert_int_equal(rmdir(path), 0);
    } else {
        assert_int_equal(unlink(path), 0);
    }
}

static void temp_dir(char out[PATH_LEN])
{
    snprintf(out, PATH_LEN, "/tmp/tcgw-test-apispec-XXXXXX");
    assert_non_null(mkdtemp(out));
}

/* A minimal valid description with one action, for load tests; service and version vary. */
static char *small_description(const char *service, const char *version)
{
    static char buf[1024];
    snprintf(buf, sizeof buf,
             "{\"metadata\":{\"serviceShortName\":\"%s\",\"apiVersion\":\"%s\"},"
             "\"actions\":{\"Ping\":{\"input\":\"PingRequest\",\"output\":\"PingResponse\"}},"
             "\"objects\":{\"PingRequest\":{\"members\":[]},\"PingResponse\":{\"members\":[]}}}",
             service, version);
    return buf;
}

/*
 * Writes files (pairs of relative path and content, NULL-terminated) into a new temp dir,
 * loads it and expects failure with a message that contains sub1 and sub2 (when not NULL).
 */
static void load_fails_at(const char *file, int line, const char *sub1, const char *sub2,
                          const char *const *files)
{
    char dir[PATH_LEN], msg[1024];
    temp_dir(dir);
    for (size_t i = 0; files[i] != NULL; i += 2) {
        write_file(dir, files[i], files[i + 1]);
    }
    struct gw_apispec *sentinel = (struct gw_apispec *)(uintptr_t)0x1;
    struct gw_apispec *spec = sentinel;
    enum gw_err err = gw_apispec_load_dir(dir, &spec, msg, sizeof msg);
    remove_tree(dir);
    if (err == GW_OK || spec != sentinel) {
        print_error("load succeeded or touched *out; expected an error with \"%s\"\n", sub1);
        if (err == GW_OK) {
            gw_apispec_free(spec);
        }
        _fail(file, line);
    }
    if ((sub1 != NULL && strstr(msg, sub1) == NULL) ||
        (sub2 != NULL && strstr(msg, sub2) == NULL)) {
        print_error("load error lacks \"%s\" / \"%s\": %s\n", sub1, sub2 ? sub2 : "", msg);
        _fail(file, line);
    }
}

#define LOAD_FAILS(sub1, sub2, ...)                                                                \
    do {                                                                                           \
        const char *const files_[] = {__VA_ARGS__, NULL};                                          \
        load_fails_at(__FILE__, __LINE__, sub1, sub2, files_);                                     \
    } while (0)

/* A description of one object "R" (input of action "A") with the given members JSON. */
static const char *one_object(const char *members, const char *action_extra)
{
    static char buf[4096];
    snprintf(buf, sizeof buf,
             "{\"metadata\":{\"serviceShortName\":\"t\",\"apiVersion\":\"1\"},"
             "\"actions\":{\"A\":{\"input\":\"R\"%s}},"
             "\"objects\":{\"R\":{\"members\":[%s]},"
             "\"O\":{\"members\":[{\"name\":\"N\",\"type\":\"string\",\"member\":\"string\"}]}}}",
             action_extra, members);
    return buf;
}

/* ---------------------------------------------------------------------------------------------
 * The shipped description.
 */

static int load_shipped(void **state)
{
    (void)state;
    char dir[PATH_LEN], msg[512];
    source_path(dir, sizeof dir, "specs");
    if (gw_apispec_load_dir(dir, &shipped, msg, sizeof msg) != GW_OK) {
        print_error("cannot load the shipped descriptions: %s\n", msg);
        return -1;
    }
    return 0;
}

static int free_shipped(void **state)
{
    (void)state;
    gw_apispec_free(shipped);
    shipped = NULL;
    return 0;
}

static void test_shipped_loads(void **state)
{
    (void)state;
    assert_int_equal(gw_apispec_action_count(shipped), 4);
    assert_int_equal(gw_apispec_action_count(NULL), 0);
    gw_apispec_free(NULL);
}

static void test_seed_call(void **state)
{
    (void)state;
    /* The example of Tencent's ModifyProxyConfiguration page: integers sent as strings. */
    PASS("ModifyProxyConfiguration",
         "{\"ProxyId\": \"link-4ftf12sb\", \"Concurrent\": \"2\", \"Bandwidth\": \"10\"}");
    PASS("ModifyProxyConfiguration", "{\"InstanceId\": \"link-p9888rix\", \"Bandwidth\": 20}");
    PASS("ModifyProxyConfiguration",
         "{\"ProxyId\": \"link-1\", \"Concurrent\": 1, \"ClientToken\": \"abc-123\", "
         "\"BillingType\": 1}");
    PASS("DescribeProxies", "{}");
    PASS("DescribeProxies",
         "{\"Offset\": 0, \"Limit\": 100, \"Filters\": [{\"Name\": \"ProjectId\", \"Values\": "
         "[\"0\"]}], \"TagSet\": [{\"TagKey\": \"k\", \"TagValue\": \"v\"}], \"Independent\": "
         "\"1\", \"Order\": \"asc\", \"OrderField\": \"concurrent_connections\"}");
    PASS("DescribeProxies", "{\"ProxyIds\": [\"link-1\"], \"InstanceIds\": [\"link-2\"]}");
    PASS("DescribeAccessRegionsByDestRegion",
         "{\"DestRegion\": \"SouthChina\", \"IPAddressVersion\": \"IPv6\", \"PackageType\": "
         "\"CrossBorder\"}");
}

static void test_service_version_action(void **state)
{
    (void)state;
    struct gw_apispec_verdict v;
    json_t *p = json_object();
    assert_false(gw_apispec_check(shipped, "cvm", VER, "DescribeProxies", p, &v));
    assert_string_equal(v.code, "NoSuchProduct");
    assert_non_null(strstr(v.message, "\"cvm\""));
    assert_false(gw_apispec_check(shipped, "GAAP", VER, "DescribeProxies", p, &v));
    assert_string_equal(v.code, "NoSuchProduct");
    assert_false(gw_apispec_check(shipped, SVC, "2019-01-01", "DescribeProxies", p, &v));
    assert_string_equal(v.code, "NoSuchVersion");
    assert_non_null(strstr(v.message, "\"2019-01-01\""));
    assert_non_null(strstr(v.message, VER)); /* says which version exists */
    /* A real GAAP action that the gateway does not describe, and a misspelt one. */
    assert_false(gw_apispec_check(shipped, SVC, VER, "DescribeRealServers", p, &v));
    assert_string_equal(v.code, "InvalidAction");
    assert_non_null(strstr(v.message, "\"DescribeRealServers\""));
    assert_false(gw_apispec_check(shipped, SVC, VER, "describeproxies", p, &v));
    assert_string_equal(v.code, "InvalidAction");
    /* NULL names, a NULL spec and a NULL verdict are refused, not crashed on. */
    assert_false(gw_apispec_check(shipped, NULL, NULL, NULL, p, &v));
    assert_string_equal(v.code, "NoSuchProduct");
    assert_false(gw_apispec_check(NULL, SVC, VER, "DescribeProxies", p, &v));
    assert_string_equal(v.code, "NoSuchProduct");
    assert_false(gw_apispec_check(shipped, SVC, VER, "Nope", p, NULL));
    assert_true(gw_apispec_check(shipped, SVC, VER, "DescribeProxies", p, NULL));
    /* Caller data in names is cut and made printable. */
    char longname[200];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    longname[3] = '\n';
    assert_false(gw_apispec_check(shipped, longname, VER, "DescribeProxies", p, &v));
    assert_null(strchr(v.message, '\n'));
    assert_non_null(strstr(v.message, "xxx?xxx"));
    assert_null(strstr(v.message, longname + 4));
    json_decref(p);
    /* The parameters must be an object. */
    FAIL("DescribeProxies", "[]", "InvalidParameter", "must be a JSON object, got a list");
    FAIL("DescribeProxies", "\"x\"", "InvalidParameter", "got string \"x\"");
    assert_false(gw_apispec_check(shipped, SVC, VER, "DescribeProxies", NULL, &v));
    assert_string_equal(v.code, "InvalidParameter");
}

static void test_unknown_parameter(void **state)
{
    (void)state;
    FAIL2("ModifyProxyConfiguration", "{\"ProxyId\": \"l\", \"Bandwidth\": 1, \"Region\": \"x\"}",
          "UnknownParameter", "\"Region\"", "ModifyProxyConfiguration does not take it");
    FAIL("ModifyProxyConfiguration", "{\"proxyid\": \"l\", \"Bandwidth\": 1}", "UnknownParameter",
         "did you mean \"ProxyId\"?");
    FAIL2("DescribeProxies",
          "{\"Filters\": [{\"Name\": \"a\", \"Values\": []}, {\"Nmae\": \"b\"}]}",
          "UnknownParameter", "\"Filters.1.Nmae\"", "Filter has no such member");
    FAIL("DescribeProxies", "{\"TagSet\": [{\"TagKey\": \"k\", \"TagValue\": \"v\", \"X\": 1}]}",
         "UnknownParameter", "\"TagSet.0.X\"");
    /* Unknown keys come first, before the type of other values. */
    FAIL("DescribeProxies", "{\"Limit\": \"bad\", \"Zzz\": 1}", "UnknownParameter", "\"Zzz\"");
    /* Long and non-ASCII keys are echoed cut, as valid UTF-8. */
    FAIL("DescribeProxies",
         "{\"\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9"
         "\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\": 1}",
         "UnknownParameter", "\xc3\xa9...\"");
    /* Output members are not input members. */
    FAIL("DescribeProxies", "{\"RequestId\": \"x\"}", "UnknownParameter", "\"RequestId\"");
}

static void test_invalid_parameter(void **state)
{
    (void)state;
    FAIL2("ModifyProxyConfiguration", "{\"ProxyId\": 7, \"Bandwidth\": 1}", "InvalidParameter",
          "\"ProxyId\" must be a string", "got number 7");
    FAIL2("ModifyProxyConfiguration", "{\"ProxyId\": null, \"Bandwidth\": 1}", "InvalidParameter",
          "must be a string", "got null");
    FAIL2("ModifyProxyConfiguration", "{\"ProxyId\": \"l\", \"Bandwidth\": true}",
          "InvalidParameter", "\"Bandwidth\" must be an integer (uint64", "got true");
    FAIL("ModifyProxyConfiguration", "{\"ProxyId\": \"l\", \"Bandwidth\": 2.0}", "InvalidParameter",
         "got number 2");
    FAIL("DescribeProxies", "{\"Filters\": {\"Name\": \"a\"}}", "InvalidParameter",
         "\"Filters\" must be a list of Filter objects, got an object");
    FAIL("DescribeProxies", "{\"Filters\": [\"a\"]}", "InvalidParameter",
         "\"Filters.0\" must be an object (Filter), got string \"a\"");
    FAIL2("DescribeProxies", "{\"Filters\": [{\"Name\": \"a\", \"Values\": [\"x\", 5]}]}",
          "InvalidParameter", "\"Filters.0.Values.1\" must be a string", "got number 5");
    FAIL("DescribeProxies", "{\"Filters\": [{\"Name\": \"a\", \"Values\": [null]}]}",
         "InvalidParameter", "\"Filters.0.Values.0\" must be a string, got null");
    FAIL("DescribeProxies", "{\"ProxyIds\": \"link-1\"}", "InvalidParameter",
         "a list of string values, got string \"link-1\"");
    FAIL("DescribeProxies", "{\"TagSet\": [[]]}", "InvalidParameter", "got a list");
    /* Strings that are not decimal integers. */
    const char *bad[] = {"2.5", " 2", "2 ",  "",   "0x10", "+2",  "-",        "--1",
                         "1e3", "１", "010", "00", "-0",   "-01", "2\\u0000", "0\\u0000"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[128];
        snprintf(text, sizeof text, "{\"Offset\": \"%s\"}", bad[i]);
        FAIL2("DescribeProxies", text, "InvalidParameter", "\"Offset\" must be an integer (uint64",
              "got string");
    }
}

static void test_integers(void **state)
{
    (void)state;
    PASS("DescribeProxies", "{\"Offset\": \"18446744073709551615\"}");
    PASS("DescribeProxies", "{\"Offset\": 9223372036854775807}");
    PASS("DescribeProxies", "{\"Offset\": \"0\", \"Limit\": \"7\"}");
    /* Canonical decimals only (see test_number_rule): no leading zeros, no sign on zero. */
    FAIL2("DescribeProxies", "{\"Offset\": \"0018446744073709551615\"}", "InvalidParameter",
          "without leading zeros", "got string \"0018446744073709551615\"");
    FAIL("DescribeProxies", "{\"Limit\": \"007\"}", "InvalidParameter",
         "\"Limit\" must be an integer");
    FAIL("DescribeProxies", "{\"Offset\": \"-0\"}", "InvalidParameter", "got string \"-0\"");
    FAIL2("DescribeProxies", "{\"Offset\": \"18446744073709551616\"}", "InvalidParameterValue",
          "\"Offset\" must be an integer from 0 to 18446744073709551615 (uint64)",
          "got string \"18446744073709551616\"");
    FAIL("DescribeProxies", "{\"Offset\": \"99999999999999999999999999999999\"}",
         "InvalidParameterValue", "from 0 to 18446744073709551615");
    FAIL("DescribeProxies", "{\"Offset\": -1}", "InvalidParameterValue", "got number -1");
    FAIL("DescribeProxies", "{\"Offset\": \"-1\"}", "InvalidParameterValue", "got string \"-1\"");
    /* Limit: max 100, as strings too. */
    PASS("DescribeProxies", "{\"Limit\": \"100\"}");
    FAIL2("DescribeProxies", "{\"Limit\": 101}", "InvalidParameterValue",
          "\"Limit\" must be at most 100", "got number 101");
    FAIL("DescribeProxies", "{\"Limit\": \"18446744073709551615\"}", "InvalidParameterValue",
         "must be at most 100");
    /* Bandwidth and Concurrent: min 1. */
    FAIL2("ModifyProxyConfiguration", "{\"ProxyId\": \"l\", \"Bandwidth\": \"0\"}",
          "InvalidParameterValue", "\"Bandwidth\" must be at least 1", "got string \"0\"");
    FAIL("ModifyProxyConfiguration", "{\"ProxyId\": \"l\", \"Concurrent\": 0}",
         "InvalidParameterValue", "\"Concurrent\" must be at least 1");
    /* int64 enums: BillingType and Independent in {0, 1}. */
    PASS("ModifyProxyConfiguration", "{\"ProxyId\": \"l\", \"Bandwidth\": 1, \"BillingType\": 0}");
    FAIL2("ModifyProxyConfiguration",
          "{\"ProxyId\": \"l\", \"Bandwidth\": 1, \"BillingType\": \"2\"}", "InvalidParameterValue",
          "\"BillingType\" must be one of 0, 1", "got string \"2\"");
    FAIL("ModifyProxyConfiguration", "{\"ProxyId\": \"l\", \"Bandwidth\": 1, \"BillingType\": -1}",
         "InvalidParameterValue", "must be one of 0, 1");
    FAIL("DescribeProxies", "{\"Independent\": 2}", "InvalidParameterValue", "one of 0, 1");
    FAIL("DescribeProxies", "{\"Independent\": \"9223372036854775808\"}", "InvalidParameterValue",
         "-9223372036854775808 to 9223372036854775807 (int64)");
}

static void test_missing_parameter(void **state)
{
    (void)state;
    FAIL2("DescribeAccessRegionsByDestRegion", "{}", "MissingParameter", "\"DestRegion\"",
          "a string");
    FAIL("DescribeAccessRegionsByDestRegion", "{\"IPAddressVersion\": \"IPv4\"}",
         "MissingParameter", "\"DestRegion\"");
    FAIL2("DescribeProxies", "{\"Filters\": [{\"Name\": \"a\", \"Values\": []}, {\"Values\": []}]}",
          "MissingParameter", "\"Filters.1.Name\"", "a string");
    FAIL2("DescribeProxies", "{\"Filters\": [{\"Name\": \"a\"}]}", "MissingParameter",
          "\"Filters.0.Values\"", "a list of string values");
    FAIL("DescribeProxies", "{\"TagSet\": [{\"TagKey\": \"k\"}]}", "MissingParameter",
         "\"TagSet.0.TagValue\"");
    /* Values are checked before required members: the wrong value is reported first. */
    FAIL("DescribeProxies", "{\"Filters\": [{\"Values\": [1]}]}", "InvalidParameter",
         "\"Filters.0.Values.0\"");
    /* require_one_of groups. */
    FAIL2("ModifyProxyConfiguration", "{\"ProxyId\": \"l\"}", "MissingParameter",
          "ModifyProxyConfiguration needs at least one of", "Bandwidth, Concurrent");
    FAIL("ModifyProxyConfiguration", "{\"Bandwidth\": 10}", "MissingParameter",
         "ProxyId, InstanceId");
    FAIL("ModifyProxyConfiguration", "{}", "MissingParameter", "Bandwidth, Concurrent");
}

static void test_invalid_parameter_value(void **state)
{
    (void)state;
    /* exclusive groups */
    FAIL2("ModifyProxyConfiguration",
          "{\"ProxyId\": \"l\", \"InstanceId\": \"l\", \"Bandwidth\": 1}", "InvalidParameterValue",
          "\"ProxyId\" and \"InstanceId\" cannot be used together",
          "set only one of ProxyId, InstanceId");
    FAIL("DescribeProxies", "{\"ProxyIds\": [\"a\"], \"Filters\": []}", "InvalidParameterValue",
         "\"ProxyIds\" and \"Filters\" cannot be used together");
    FAIL("DescribeProxies", "{\"InstanceIds\": [], \"Filters\": []}", "InvalidParameterValue",
         "\"InstanceIds\" and \"Filters\" cannot be used together");
    /* ClientToken: 64 bytes of printable ASCII at most. */
    char text[256], token[80];
    memset(token, 'a', 64);
    token[64] = '\0';
    snprintf(text, sizeof text, "{\"ProxyId\": \"l\", \"Bandwidth\": 1, \"ClientToken\": \"%s\"}",
             token);
    PASS("ModifyProxyConfiguration", text);
    snprintf(text, sizeof text, "{\"ProxyId\": \"l\", \"Bandwidth\": 1, \"ClientToken\": \"%sb\"}",
             token);
    FAIL2("ModifyProxyConfiguration", text, "InvalidParameterValue",
          "\"ClientToken\" must be at most 64 bytes long", "got 65 bytes");
    FAIL2("ModifyProxyConfiguration",
          "{\"ProxyId\": \"l\", \"Bandwidth\": 1, \"ClientToken\": \"t\\u00e9\"}",
          "InvalidParameterValue", "only printable ASCII", "byte 1 of");
    FAIL("ModifyProxyConfiguration",
         "{\"ProxyId\": \"l\", \"Bandwidth\": 1, \"ClientToken\": \"a\\tb\"}",
         "InvalidParameterValue", "string \"a?b\"");
    /* List sizes. */
    FAIL2("DescribeProxies",
          "{\"Filters\": [{\"Name\": \"a\", \"Values\": [\"1\",\"2\",\"3\",\"4\",\"5\",\"6\"]}]}",
          "InvalidParameterValue", "\"Filters.0.Values\" must have at most 5 items", "got 6");
    PASS("DescribeProxies",
         "{\"Filters\": [{\"Name\": \"a\", \"Values\": [\"1\",\"2\",\"3\",\"4\",\"5\"]}]}");
    FAIL("DescribeProxies", "{\"TagSet\": [{},{},{},{},{},{}]}", "InvalidParameterValue",
         "\"TagSet\" must have at most 5 items");
    char big[4096];
    size_t len = (size_t)snprintf(big, sizeof big, "{\"Filters\": [");
    for (int i = 0; i < 11; i++) {
        len += (size_t)snprintf(big + len, sizeof big - len, "%s{\"Name\": \"n\", \"Values\": []}",
                                i ? "," : "");
    }
    snprintf(big + len, sizeof big - len, "]}");
    FAIL("DescribeProxies", big, "InvalidParameterValue", "\"Filters\" must have at most 10 items");
    for (const char *key = "ProxyIds"; key != NULL;
         key = strcmp(key, "ProxyIds") == 0 ? "InstanceIds" : NULL) {
        for (int n = 100; n <= 101; n++) {
            len = (size_t)snprintf(big, sizeof big, "{\"%s\": [", key);
            for (int i = 0; i < n; i++) {
                len +=
                    (size_t)snprintf(big + len, sizeof big - len, "%s\"link-%d\"", i ? "," : "", i);
            }
            snprintf(big + len, sizeof big - len, "]}");
            if (n == 100) {
                PASS("DescribeProxies", big);
            } else {
                FAIL("DescribeProxies", big, "InvalidParameterValue", "at most 100 items, got 101");
            }
        }
    }
    /* String enums, case-sensitive. */
    FAIL2("DescribeProxies", "{\"Order\": \"ASC\"}", "InvalidParameterValue",
          "\"Order\" must be one of \"asc\", \"desc\"", "got string \"ASC\"");
    FAIL("DescribeProxies", "{\"OrderField\": \"name\"}", "InvalidParameterValue",
         "\"create_time\", \"proxy_id\", \"bandwidth\", \"concurrent_connections\"");
    FAIL("DescribeAccessRegionsByDestRegion",
         "{\"DestRegion\": \"x\", \"IPAddressVersion\": \"ipv4\"}", "InvalidParameterValue",
         "\"IPv4\", \"IPv6\"");
    FAIL("DescribeAccessRegionsByDestRegion", "{\"DestRegion\": \"x\", \"PackageType\": \"\"}",
         "InvalidParameterValue", "\"Thunder\", \"Accelerator\", \"CrossBorder\"; got string \"\"");
    /* Long values are echoed cut at 40 bytes, on a character boundary. */
    FAIL("DescribeProxies",
         "{\"Order\": \"\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9"
         "\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9x\\u00e9\"}",
         "InvalidParameterValue",
         "got string \"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
         "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
         "...\"");
}

/* ---------------------------------------------------------------------------------------------
 * A test description that uses every type and extension.
 */

static const char types_description[] =
    "{\"metadata\": {\"serviceShortName\": \"tcgwtest\", \"apiVersion\": \"2020-01-01\"},"
    " \"actions\": {"
    "  \"Types\": {\"input\": \"TypesRequest\", \"output\": \"Empty\"},"
    "  \"Groups\": {\"input\": \"GroupsRequest\", \"require_one_of\": [[\"A\", \"B\", \"C\"]],"
    "              \"exclusive\": [[\"A\", \"B\", \"C\"]]}},"
    " \"objects\": {"
    "  \"Empty\": {\"members\": []},"
    "  \"GroupsRequest\": {\"type\": \"object\", \"members\": ["
    "    {\"name\": \"A\", \"type\": \"string\", \"member\": \"string\"},"
    "    {\"name\": \"B\", \"type\": \"string\", \"member\": \"string\"},"
    "    {\"name\": \"C\", \"type\": \"string\", \"member\": \"string\"}]},"
    "  \"Inner\": {\"members\": ["
    "    {\"name\": \"Req\", \"type\": \"string\", \"member\": \"string\", \"required\": true},"
    "    {\"name\": \"Deep\", \"type\": \"object\", \"member\": \"Leaf\"}]},"
    "  \"Leaf\": {\"members\": ["
    "    {\"name\": \"N\", \"type\": \"int\", \"member\": \"uint64\", \"required\": true}]},"
    "  \"TypesRequest\": {\"members\": ["
    "    {\"name\": \"S\", \"type\": \"string\", \"member\": \"string\"},"
    "    {\"name\": \"D\", \"type\": \"string\", \"member\": \"datetime\"},"
    "    {\"name\": \"I\", \"type\": \"int\", \"member\": \"int64\"},"
    "    {\"name\": \"U\", \"type\": \"int\", \"member\": \"uint64\"},"
    "    {\"name\": \"F\", \"type\": \"float\", \"member\": \"float\"},"
    "    {\"name\": \"B\", \"type\": \"bool\", \"member\": \"bool\"},"
    "    {\"name\": \"Obj\", \"type\": \"object\", \"member\": \"Inner\"},"
    "    {\"name\": \"Objs\", \"type\": \"list\", \"member\": \"Inner\", \"max_items\": 3},"
    "    {\"name\": \"Is\", \"type\": \"list\", \"member\": \"int64\", \"min\": -5, \"max\": 5},"
    "    {\"name\": \"Us\", \"type\": \"list\", \"member\": \"uint64\"},"
    "    {\"name\": \"Fs\", \"type\": \"list\", \"member\": \"float\"},"
    "    {\"name\": \"Bs\", \"type\": \"list\", \"member\": \"bool\"},"
    "    {\"name\": \"Ss\", \"type\": \"list\", \"member\": \"string\", \"enum\": [\"x\", \"yy\"],"
    "     \"max_length\": 1},"
    "    {\"name\": \"FR\", \"type\": \"float\", \"member\": \"float\", \"min\": -1.5, \"max\": "
    "2.5},"
    "    {\"name\": \"FE\", \"type\": \"float\", \"member\": \"float\", \"enum\": [0.5, 1]},"
    "    {\"name\": \"IR\", \"type\": \"int\", \"member\": \"int64\", \"min\": -10, \"max\": 10},"
    "    {\"name\": \"UE\", \"type\": \"int\", \"member\": \"uint64\","
    "     \"enum\": [0, 9223372036854775807]},"
    "    {\"name\": \"Txt\", \"type\": \"string\", \"member\": \"string\", \"ascii\": true},"
    /* 30 values of 9 bytes with quotes: the listing in a message fills its buffer exactly. */
    "    {\"name\": \"Many\", \"type\": \"string\", \"member\": \"string\", \"enum\": ["
    "\"v000001\", \"v000002\", \"v000003\", \"v000004\", \"v000005\", \"v000006\", "
    "\"v000007\", \"v000008\", \"v000009\", \"v000010\", \"v000011\", \"v000012\", "
    "\"v000013\", \"v000014\", \"v000015\", \"v000016\", \"v000017\", \"v000018\", "
    "\"v000019\", \"v000020\", \"v000021\", \"v000022\", \"v000023\", \"v000024\", "
    "\"v000025\", \"v000026\", \"v000027\", \"v000028\", \"v000029\", \"v000030\""
    "    ]}]}}}";

static struct gw_apispec *types;

#define TPASS(text)                                                                                \
    expect_at(__FILE__, __LINE__, types, "tcgwtest", "2020-01-01", "Types", text, NULL, NULL, NULL)
#define TFAIL(text, code, sub)                                                                     \
    expect_at(__FILE__, __LINE__, types, "tcgwtest", "2020-01-01", "Types", text, code, sub, NULL)
#define GFAIL(text, code, sub)                                                                     \
    expect_at(__FILE__, __LINE__, types, "tcgwtest", "2020-01-01", "Groups", text, code, sub, NULL)

static int load_types(void **state)
{
    (void)state;
    char dir[PATH_LEN], msg[512];
    temp_dir(dir);
    write_file(dir, "tcgwtest.api.json", types_description);
    /* Found below subdirectories too; files with other names are skipped, even broken ones. */
    write_file(dir, "a/b/c/api.json", small_description("tcgwtest", "2021-06-01"));
    write_file(dir, "README.json", "not json");
    write_file(dir, "api.json.orig", "not json");
    write_file(dir, ".hidden/api.json", "not json");
    enum gw_err err = gw_apispec_load_dir(dir, &types, msg, sizeof msg);
    remove_tree(dir);
    if (err != GW_OK) {
        print_error("cannot load the test description: %s\n", msg);
        return -1;
    }
    return 0;
}

static int free_types(void **state)
{
    (void)state;
    gw_apispec_free(types);
    types = NULL;
    return 0;
}

static void test_types_all(void **state)
{
    (void)state;
    assert_int_equal(gw_apispec_action_count(types), 3);
    TPASS("{\"S\": \"s\", \"D\": \"2020-01-01 00:00:00\", \"I\": \"-9223372036854775808\", \"U\": "
          "\"18446744073709551615\", \"F\": \"-1.5e3\", \"B\": false, \"Obj\": {\"Req\": \"r\", "
          "\"Deep\": {\"N\": 1}}, \"Objs\": [{\"Req\": \"r\"}], \"Is\": [-5, \"5\"], \"Us\": [0], "
          "\"Fs\": [1, 2.5, \"3\"], \"Bs\": [true], \"Ss\": [\"x\"], \"FR\": 2.5, \"FE\": \"1\", "
          "\"IR\": -10, \"UE\": 9223372036854775807, \"Txt\": \" ~\"}");
    expect_at(__FILE__, __LINE__, types, "tcgwtest", "2021-06-01", "Ping", "{}", NULL, NULL, NULL);
    expect_at(__FILE__, __LINE__, types, "tcgwtest", "2022-01-01", "Ping", "{}", "NoSuchVersion",
              "2020-01-01, 2021-06-01", NULL);
    /* int64 bounds */
    TPASS("{\"I\": -9223372036854775808}");
    TPASS("{\"I\": \"9223372036854775807\"}");
    TFAIL("{\"I\": \"9223372036854775808\"}", "InvalidParameterValue",
          "from -9223372036854775808 to 9223372036854775807 (int64)");
    TFAIL("{\"I\": \"-9223372036854775809\"}", "InvalidParameterValue",
          "-9223372036854775808 to 9223372036854775807");
    TFAIL("{\"I\": 1.5}", "InvalidParameter", "\"I\" must be an integer (int64");
    /* uint64 */
    TFAIL("{\"U\": \"-1\"}", "InvalidParameterValue", "0 to 18446744073709551615");
    TFAIL("{\"U\": \"18446744073709551616\"}", "InvalidParameterValue", "(uint64)");
    TFAIL("{\"Us\": [1, -2]}", "InvalidParameterValue", "\"Us.1\" must be an integer from 0");
    /* int min/max, in lists too */
    TFAIL("{\"IR\": 11}", "InvalidParameterValue", "\"IR\" must be at most 10, got number 11");
    TFAIL("{\"IR\": \"-11\"}", "InvalidParameterValue", "\"IR\" must be at least -10");
    TFAIL("{\"IR\": \"-9223372036854775808\"}", "InvalidParameterValue", "at least -10");
    TFAIL("{\"Is\": [0, 6]}", "InvalidParameterValue", "\"Is.1\" must be at most 5");
    TFAIL("{\"Is\": [\"-6\"]}", "InvalidParameterValue", "\"Is.0\" must be at least -5");
    TPASS("{\"UE\": \"9223372036854775807\"}");
    TFAIL("{\"UE\": \"9223372036854775806\"}", "InvalidParameterValue",
          "one of 0, 9223372036854775807");
    /* floats */
    TPASS("{\"F\": 1}");
    TPASS("{\"F\": \"0.25\"}");
    TPASS("{\"F\": \"1E-3\"}");
    const char *badf[] = {"1.", ".5", "+1", "1e", " 1", "inf", "nan", "0x1p3", "1,5", ""};
    for (size_t i = 0; i < sizeof badf / sizeof badf[0]; i++) {
        char text[64];
        snprintf(text, sizeof text, "{\"F\": \"%s\"}", badf[i]);
        TFAIL(text, "InvalidParameter", "\"F\" must be a number (float");
    }
    TFAIL("{\"F\": \"1e999\"}", "InvalidParameterValue", "out of the range of a float");
    TFAIL("{\"F\": true}", "InvalidParameter", "got true");
    TFAIL("{\"FR\": 2.6}", "InvalidParameterValue", "\"FR\" must be at most 2.5, got number 2.6");
    TFAIL("{\"FR\": \"-1.51\"}", "InvalidParameterValue", "\"FR\" must be at least -1.5");
    TPASS("{\"FE\": 0.5}");
    TFAIL("{\"FE\": 0.6}", "InvalidParameterValue", "must be one of 0.5, 1");
    TFAIL("{\"Fs\": [1, \"x\"]}", "InvalidParameter", "\"Fs.1\" must be a number");
    /* bools are JSON booleans only */
    TFAIL("{\"B\": \"true\"}", "InvalidParameter", "\"B\" must be a boolean (true or false)");
    TFAIL("{\"B\": 1}", "InvalidParameter", "got number 1");
    TFAIL("{\"Bs\": [true, null]}", "InvalidParameter", "\"Bs.1\" must be a boolean");
    /* strings */
    TFAIL("{\"S\": {}}", "InvalidParameter", "\"S\" must be a string, got an object");
    TFAIL("{\"D\": 20200101}", "InvalidParameter", "\"D\" must be a string");
    TFAIL("{\"Ss\": [\"x\", \"yy\"]}", "InvalidParameterValue",
          "\"Ss.1\" must be at most 1 bytes long");
    TFAIL("{\"Ss\": [\"z\"]}", "InvalidParameterValue", "\"Ss.0\" must be one of \"x\", \"yy\"");
    TFAIL("{\"Txt\": \"a\\u007f\"}", "InvalidParameterValue", "printable ASCII");
    TFAIL("{\"Many\": \"v\"}", "InvalidParameterValue",
          "\"v000021\", \"v000022\", ...; got string \"v\"");
    /* objects, nested */
    TFAIL("{\"Obj\": []}", "InvalidParameter", "\"Obj\" must be an object (Inner), got a list");
    TFAIL("{\"Obj\": {}}", "MissingParameter", "\"Obj.Req\": a string");
    TFAIL("{\"Obj\": {\"Req\": \"r\", \"Deep\": {}}}", "MissingParameter",
          "\"Obj.Deep.N\": an integer (uint64");
    TFAIL("{\"Objs\": [{\"Req\": \"r\"}, {\"Req\": \"r\", \"Deep\": {\"N\": \"x\"}}]}",
          "InvalidParameter", "\"Objs.1.Deep.N\" must be an integer");
    TFAIL("{\"Objs\": [{\"Req\": \"r\", \"Deep\": {\"N\": 1, \"M\": 2}}]}", "UnknownParameter",
          "\"Objs.0.Deep.M\": Leaf has no such member");
    TFAIL("{\"Objs\": [{}, {}, {}, {}]}", "InvalidParameterValue", "at most 3 items");
    /* groups of three */
    GFAIL("{}", "MissingParameter", "at least one of these parameters: A, B, C");
    expect_at(__FILE__, __LINE__, types, "tcgwtest", "2020-01-01", "Groups", "{\"C\": \"c\"}", NULL,
              NULL, NULL);
    GFAIL("{\"C\": \"c\", \"A\": \"a\"}", "InvalidParameterValue",
          "\"A\" and \"C\" cannot be used together");
}

/*
 * The number rule, shared with the simulator (tests/sim/gaap.c): an integer is a JSON integer or
 * a canonical decimal string ("0", or an optional '-' and digits without a leading zero) within
 * its kind's range. A string outside the grammar is InvalidParameter (not an integer); a value
 * outside the range, a negative one for uint64 included, is InvalidParameterValue.
 */
static void test_number_rule(void **state)
{
    (void)state;
    static const char *const members[] = {"I", "U"}; /* int64, uint64 */
    char text[128];
    for (size_t i = 0; i < 2; i++) {
        const char *m = members[i];
        snprintf(text, sizeof text, "{\"%s\": 0}", m);
        TPASS(text);
        snprintf(text, sizeof text, "{\"%s\": \"0\"}", m);
        TPASS(text);
        snprintf(text, sizeof text, "{\"%s\": \"10\"}", m);
        TPASS(text);
        static const char *const bad[] = {"010", "00",  "-0",  "-00", "+1", "+0", " 1",
                                          "1 ",  "1_0", "1.0", "0x1", "",   "-",  "٣"};
        for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
            char sub[64];
            snprintf(text, sizeof text, "{\"%s\": \"%s\"}", m, bad[k]);
            snprintf(sub, sizeof sub, "\"%s\" must be an integer (%s", m,
                     i == 0 ? "int64" : "uint64");
            TFAIL(text, "InvalidParameter", sub);
        }
    }
    /* uint64: all of 0 to 2^64-1; a sign is out of range, as the JSON number -1 is. */
    TPASS("{\"U\": \"18446744073709551615\"}");
    TFAIL("{\"U\": \"18446744073709551616\"}", "InvalidParameterValue",
          "from 0 to 18446744073709551615 (uint64), got string \"18446744073709551616\"");
    TFAIL("{\"U\": \"-1\"}", "InvalidParameterValue", "(uint64), got string \"-1\"");
    TFAIL("{\"U\": -1}", "InvalidParameterValue", "(uint64), got number -1");
    TPASS("{\"Us\": [\"1\", 2, \"18446744073709551615\"]}");
    TFAIL("{\"Us\": [\"1\", \"01\"]}", "InvalidParameter", "\"Us.1\" must be an integer (uint64");
    /* int64: its minimum and maximum, as strings and as JSON numbers, and one beyond each. */
    TPASS("{\"I\": \"-9223372036854775808\"}");
    TPASS("{\"I\": \"9223372036854775807\"}");
    TPASS("{\"I\": -9223372036854775808}");
    TPASS("{\"I\": 9223372036854775807}");
    TPASS("{\"I\": \"-1\"}");
    TFAIL("{\"I\": \"9223372036854775808\"}", "InvalidParameterValue",
          "from -9223372036854775808 to 9223372036854775807 (int64), got string "
          "\"9223372036854775808\"");
    TFAIL("{\"I\": \"-9223372036854775809\"}", "InvalidParameterValue",
          "got string \"-9223372036854775809\"");
    /* Far beyond 64 bits: still a number, so out of range rather than malformed. */
    TFAIL("{\"I\": \"-123456789012345678901234567890\"}", "InvalidParameterValue", "(int64)");
    /* The JSON number 9223372036854775808 never gets here: request refuses the body. */
}

/* Many threads check against one spec at once; run under TSan to make this meaningful. */
static void *thread_main(void *arg)
{
    (void)arg;
    json_t *ok = json_loads("{\"Filters\": [{\"Name\": \"a\", \"Values\": [\"b\"]}]}", 0, NULL);
    json_t *bad = json_loads("{\"Filters\": [{\"Name\": \"a\", \"Values\": [1]}]}", 0, NULL);
    struct gw_apispec_verdict v;
    bool all = ok != NULL && bad != NULL;
    for (int i = 0; all && i < 2000; i++) {
        all = gw_apispec_check(shipped, SVC, VER, "DescribeProxies", ok, &v) &&
              !gw_apispec_check(shipped, SVC, VER, "DescribeProxies", bad, &v) &&
              strstr(v.message, "\"Filters.0.Values.0\"") != NULL;
    }
    json_decref(ok);
    json_decref(bad);
    return all ? arg : NULL;
}

static void test_threads(void **state)
{
    (void)state;
    pthread_t t[4];
    int tag = 1;
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(pthread_create(&t[i], NULL, thread_main, &tag), 0);
    }
    for (size_t i = 0; i < 4; i++) {
        void *r = NULL;
        assert_int_equal(pthread_join(t[i], &r), 0);
        assert_ptr_equal(r, &tag);
    }
}

/* ---------------------------------------------------------------------------------------------
 * Load errors.
 */

static void test_load_errors(void **state)
{
    (void)state;
    char msg[256], dir[PATH_LEN];
    struct gw_apispec *spec = NULL;

    /* Not a directory, nothing found, only other files. */
    assert_int_equal(gw_apispec_load_dir("/nonexistent/tcgw", &spec, msg, sizeof msg), GW_ERR_IO);
    assert_non_null(strstr(msg, "/nonexistent/tcgw: not a directory"));
    assert_null(spec);
    temp_dir(dir);
    assert_int_equal(gw_apispec_load_dir(dir, &spec, msg, sizeof msg), GW_ERR_INVALID);
    assert_non_null(strstr(msg, "no API description"));
    write_file(dir, "notes.txt", "x");
    write_file(dir, "sub/readme.json", "{}");
    assert_int_equal(gw_apispec_load_dir(dir, &spec, msg, sizeof msg), GW_ERR_INVALID);
    assert_non_null(strstr(msg, "no API description"));
    assert_null(spec);
    /* A NULL or empty message buffer is allowed. */
    assert_int_equal(gw_apispec_load_dir(dir, &spec, NULL, 0), GW_ERR_INVALID);
    assert_int_equal(gw_apispec_load_dir(dir, &spec, msg, 0), GW_ERR_INVALID);
    remove_tree(dir);

    /* Files: bad JSON (with its line), duplicate keys, wrong top-level shape. */
    LOAD_FAILS("/api.json: line 2", "not valid JSON", "api.json", "{\n\"metadata\": }");
    LOAD_FAILS("x.api.json: ", "duplicate", "x.api.json", "{\"metadata\": {}, \"metadata\": {}}");
    LOAD_FAILS("must be JSON objects", NULL, "api.json", "[]");
    LOAD_FAILS("metadata.serviceShortName", NULL, "api.json",
               "{\"metadata\": {\"apiVersion\": \"1\"}, \"objects\": {}, \"actions\": {}}");
    LOAD_FAILS("metadata.apiVersion", NULL, "api.json",
               "{\"metadata\": {\"serviceShortName\": \"s\", \"apiVersion\": \"1 2\"}, "
               "\"objects\": {}, \"actions\": {}}");
    LOAD_FAILS("\"actions\" is empty", NULL, "api.json",
               "{\"metadata\": {\"serviceShortName\": \"s\", \"apiVersion\": \"1\"}, "
               "\"objects\": {}, \"actions\": {}}");
    /* Actions whose input or output object does not exist. */
    LOAD_FAILS("actions.Ping: \"input\" must name an object", NULL, "api.json",
               "{\"metadata\": {\"serviceShortName\": \"s\", \"apiVersion\": \"1\"}, "
               "\"objects\": {}, \"actions\": {\"Ping\": {\"input\": \"PingRequest\"}}}");
    LOAD_FAILS("actions.A: \"output\" must name an object", NULL, "api.json",
               one_object("", ", \"output\": \"Nope\""));
    LOAD_FAILS("actions.A is not a JSON object", NULL, "api.json",
               "{\"metadata\": {\"serviceShortName\": \"s\", \"apiVersion\": \"1\"}, "
               "\"objects\": {}, \"actions\": {\"A\": 1}}");
    /* Members: dangling object types, unknown types and kinds, bad names, duplicates. */
    LOAD_FAILS("objects.R.members[0] (X): member \"Nope\" is not a known object", NULL, "api.json",
               one_object("{\"name\": \"X\", \"type\": \"list\", \"member\": \"Nope\"}", ""));
    LOAD_FAILS("member \"Nope\" is not a known object", NULL, "api.json",
               one_object("{\"name\": \"X\", \"type\": \"object\", \"member\": \"Nope\"}", ""));
    LOAD_FAILS("type \"lst\" is not one of", NULL, "api.json",
               one_object("{\"name\": \"X\", \"type\": \"lst\", \"member\": \"string\"}", ""));
    /* A kind of another type is a contradiction, not a kind tcgw merely does not model. */
    LOAD_FAILS("member \"float\" is not a known kind for type \"int\"", "input reaches it",
               "api.json",
               one_object("{\"name\": \"X\", \"type\": \"int\", \"member\": \"float\"}", ""));
    LOAD_FAILS("member \"O\" is not a known kind for type \"string\"", NULL, "api.json",
               one_object("{\"name\": \"X\", \"type\": \"string\", \"member\": \"O\"}", ""));
    LOAD_FAILS("\"type\" and \"member\" must be strings", NULL, "api.json",
               one_object("{\"name\": \"X\", \"type\": \"string\"}", ""));
    LOAD_FAILS("members[0]: \"name\" must be an identifier", NULL, "api.json",
               one_object("{\"name\": \"X Y\", \"type\": \"string\", \"member\": \"string\"}", ""));
    LOAD_FAILS("\"required\" must be true or false", NULL, "api.json",
               one_object("{\"name\": \"X\", \"type\": \"string\", \"member\": \"string\", "
                          "\"required\": \"yes\"}",
                          ""));
    LOAD_FAILS("objects.R: member X is listed twice", NULL, "api.json",
               one_object("{\"name\": \"X\", \"type\": \"string\", \"member\": \"string\"},"
                          "{\"name\": \"X\", \"type\": \"int\", \"member\": \"int64\"}",
                          ""));
    LOAD_FAILS("objects.R.members[0] is not a JSON object", NULL, "api.json", one_object("1", ""));
    LOAD_FAILS("objects.R: \"type\" must be \"object\"", NULL, "api.json",
               "{\"metadata\": {\"serviceShortName\": \"s\", \"apiVersion\": \"1\"}, "
               "\"objects\": {\"R\": {\"type\": \"list\", \"members\": []}}, "
               "\"actions\": {\"A\": {\"input\": \"R\"}}}");
    LOAD_FAILS("objects.R: \"members\" must be a list", NULL, "api.json",
               "{\"metadata\": {\"serviceShortName\": \"s\", \"apiVersion\": \"1\"}, "
               "\"objects\": {\"R\": {}}, \"actions\": {\"A\": {\"input\": \"R\"}}}");
    /* Extension keys: well-typed, and only where they apply. */
    LOAD_FAILS("(X): \"enum\" does not apply to a bool member", NULL, "api.json",
               one_object("{\"name\": \"X\", \"type\": \"bool\", \"member\": \"bool\", "
                          "\"enum\": [true]}",
                          ""));
    LOAD_FAILS("\"enum\" must hold integers", NULL, "api.json",
               one_object("{\"name\": \"X\", \"type\": \"int\", \"member\": \"int64\", "
                          "\"enum\": [\"1\"]}",
                          ""));
    LOAD_FAILS("\"enum\" must hold strings", NULL, "api.json",
               one_object("{\"name\": \"X\", \"type\": \"string\", \"member\": \"string\", "
                          "\"enum\": [1]}",
                          ""));
    LOAD_FAILS("\"enum\" must be a non-empty list", NULL, "api.json",
               one_object("{\"name\": \"X\", \"type\": \"string\", \"member\": \"string\", "
                          "\"enum\": []}",
                          ""));
    LOAD_FAILS("\"enum\" has a negative value for a uint64", NULL, "api.json",
               one_object("{\"name\": \"X\", \"type\": \"int\", \"member\": \"uint64\", "
                          "\"enum\": [-1]}",
                          ""));
    LOAD_FAILS("\"min\" and \"max\" apply to int and float only", NULL, "api.json",
               one_object("{\"name\": \"X\", \"type\": \"string\", \"member\": \"string\", "
                          "\"min\": 1}",
                          ""));
    LOAD_FAILS("\"max\" must hold integers", NULL, "api.json",
               one_object("{\"name\": \"X\", \"type\": \"int\", \"member\": \"int64\", "
                          "\"max\": 1.5}",
                          ""));
    LOAD_FAILS("\"min\" is greater than \"max\"", NULL, "api.json",
               one_object("{\"name\": \"X\", \"type\": \"float\", \"member\": \"float\", "
                          "\"min\": 2, \"max\": 1}",
                          ""));
    LOAD_FAILS("\"max_length\" applies to strings only", NULL, "api.json",
               one_object("{\"name\": \"X\", \"type\": \"int\", \"member\": \"int64\", "
                          "\"max_length\": 1}",
                          ""));
    LOAD_FAILS("\"max_length\" must be a non-negative integer", NULL, "api.json",
               one_object("{\"name\": \"X\", \"type\": \"string\", \"member\": \"string\", "
                          "\"max_length\": -1}",
                          ""));
    LOAD_FAILS("\"max_items\" applies to lists only", NULL, "api.json",
               one_object("{\"name\": \"X\", \"type\": \"string\", \"member\": \"string\", "
                          "\"max_items\": 1}",
                          ""));
    LOAD_FAILS("\"max_items\" must be a non-negative integer", NULL, "api.json",
               one_object("{\"name\": \"X\", \"type\": \"list\", \"member\": \"string\", "
                          "\"max_items\": \"5\"}",
                          ""));
    LOAD_FAILS("\"ascii\" must be true or false, on strings", NULL, "api.json",
               one_object("{\"name\": \"X\", \"type\": \"int\", \"member\": \"int64\", "
                          "\"ascii\": true}",
                          ""));
    LOAD_FAILS("\"enum\" does not apply to a O member", NULL, "api.json",
               one_object("{\"name\": \"X\", \"type\": \"object\", \"member\": \"O\", "
                          "\"enum\": [1]}",
                          ""));
    /* Groups name members of the input. */
    LOAD_FAILS("actions.A: \"require_one_of\"[0][1] is not a member of R", NULL, "api.json",
               one_object("{\"name\": \"X\", \"type\": \"string\", \"member\": \"string\"}",
                          ", \"require_one_of\": [[\"X\", \"Y\"]]"));
    LOAD_FAILS("\"exclusive\"[0] must be a list of at least 2 member names", NULL, "api.json",
               one_object("{\"name\": \"X\", \"type\": \"string\", \"member\": \"string\"}",
                          ", \"exclusive\": [[\"X\"]]"));
    LOAD_FAILS("\"exclusive\"[0] lists X twice", NULL, "api.json",
               one_object("{\"name\": \"X\", \"type\": \"string\", \"member\": \"string\"}",
                          ", \"exclusive\": [[\"X\", \"X\"]]"));
    LOAD_FAILS("\"require_one_of\" must be a list of lists", NULL, "api.json",
               one_object("", ", \"require_one_of\": {}"));
    /*
     * Members whose kind cannot be told fail the load when an input reaches them, at any depth
     * (outputs may have them: see test_kinds_output_only).
     */
    LOAD_FAILS(
        "objects.Q.members[0] (Y): type \"map\" is not one of", "(an input reaches it)", "api.json",
        "{\"metadata\": {\"serviceShortName\": \"s\", \"apiVersion\": \"1\"}, "
        "\"actions\": {\"A\": {\"input\": \"R\"}}, \"objects\": {"
        "\"R\": {\"members\": [{\"name\": \"X\", \"type\": \"list\", \"member\": \"Q\"}]},"
        "\"Q\": {\"members\": [{\"name\": \"Y\", \"type\": \"map\", \"member\": \"map\"}]}}}");
    LOAD_FAILS(
        "objects.Q.members[0] (Y): member \"Gone\" is not a known object for type \"object\"",
        "(an input reaches it)", "api.json",
        "{\"metadata\": {\"serviceShortName\": \"s\", \"apiVersion\": \"1\"}, "
        "\"actions\": {\"A\": {\"input\": \"R\"}}, \"objects\": {"
        "\"R\": {\"members\": [{\"name\": \"X\", \"type\": \"object\", \"member\": \"Q\"}]},"
        "\"Q\": {\"members\": [{\"name\": \"Y\", \"type\": \"object\", \"member\": "
        "\"Gone\"}]}}}");
    LOAD_FAILS("member \"int64\" is not a known kind for type \"string\"", NULL, "api.json",
               one_object("{\"name\": \"X\", \"type\": \"string\", \"member\": \"int64\"}", ""));
    LOAD_FAILS("member \"Nope\" is not a known object for type \"list\" nor a scalar kind", NULL,
               "api.json",
               one_object("{\"name\": \"X\", \"type\": \"list\", \"member\": \"Nope\"}", ""));
    /* An unmodelled kind still takes the extension keys of the type it is checked as. */
    LOAD_FAILS("\"max_length\" applies to strings only", NULL, "api.json",
               one_object("{\"name\": \"X\", \"type\": \"int\", \"member\": \"int32\", "
                          "\"max_length\": 1}",
                          ""));
    /*
     * Recursive input objects, and inputs nested deeper than the check accepts, load: the check
     * bounds the depth of each call instead (test_apispec_recursive.c).
     */
    /* Duplicate service and version: both files are named. */
    LOAD_FAILS("/a/api.json and ", "/b/c.api.json both describe s version 1", "a/api.json",
               small_description("s", "1"), "b/c.api.json", small_description("s", "1"));
    /* One bad file among good ones fails the whole load. */
    LOAD_FAILS("/b/api.json: ", "not valid JSON", "a/api.json", small_description("s", "1"),
               "b/api.json", "");
    /* Directories nested deeper than 8 levels. */
    LOAD_FAILS("nested more than 8 levels deep", NULL, "1/2/3/4/5/6/7/8/9/api.json",
               small_description("s", "1"));
    /* A symbolic link back up the tree is refused, not walked until the depth limit. */
    temp_dir(dir);
    write_file(dir, "a/api.json", small_description("s", "1"));
    char link[PATH_LEN + 16];
    snprintf(link, sizeof link, "%s/a/up", dir);
    assert_int_equal(symlink("..", link), 0);
    assert_int_equal(gw_apispec_load_dir(dir, &spec, msg, sizeof msg), GW_ERR_INVALID);
    assert_non_null(strstr(msg, "/a/up: directory loop"));
    remove_tree(dir);
    /* The same service in two versions is fine; a clean load leaves msg empty. */
    temp_dir(dir);
    write_file(dir, "1/2/3/4/5/6/7/8/api.json", small_description("s", "1"));
    write_file(dir, "v2.api.json", small_description("s", "2"));
    msg[0] = 'x';
    assert_int_equal(gw_apispec_load_dir(dir, &spec, msg, sizeof msg), GW_OK);
    assert_string_equal(msg, "");
    assert_int_equal(gw_apispec_action_count(spec), 2);
    gw_apispec_free(spec);
    remove_tree(dir);
}

/* ---------------------------------------------------------------------------------------------
 * Made-up services in Tencent's CLI format (data/services/<service>/<version>/api.json) that
 * together use every type and kind of member that Tencent's descriptions use, and kinds that
 * none uses yet. The files are the test: every one must load, and every member an input reaches
 * must be checked.
 */

#define KINDS_DIR "tests/unit/apispec/data"

static const char *const kinds_files[] = {
    "services/fakecdn/v20230301/api.json",
    "services/fakedb/v20220715/api.json",
    "services/fakeml/v20241130/api.json",
};

/* Every "type", and every scalar "member", of Tencent's descriptions (see member.c). */
static const char *const tencent_types[] = {"string", "int",  "float", "bool",
                                            "binary", "list", "object"};
static const char *const tencent_kinds[] = {
    "string", "date", "datetime", "datetime_iso", "binary", "int64", "uint64", "float", "bool"};

static struct gw_apispec *kinds;

static int load_kinds(void **state)
{
    (void)state;
    char dir[PATH_LEN], msg[512];
    source_path(dir, sizeof dir, KINDS_DIR "/services"); /* data/recursive has its own tests */
    if (gw_apispec_load_dir(dir, &kinds, msg, sizeof msg) != GW_OK) {
        print_error("the made-up services in Tencent's format do not load: %s\n", msg);
        return -1;
    }
    return 0;
}

static int free_kinds(void **state)
{
    (void)state;
    gw_apispec_free(kinds);
    kinds = NULL;
    return 0;
}

/*
 * One check per member that an input reaches, keyed "Object.Member": a value that must pass and
 * one that must be refused with code and a message containing sub.
 */
static const struct kind_case {
    const char *service, *version, *action, *key, *good, *bad, *code, *sub;
} kind_cases[] = {
#define CDN "fakecdn", "2023-03-01"
#define LOGS(x) "{\"Domain\": \"a\"" x "}"
    {CDN, "DescribeLogs", "DescribeLogsRequest.Domain", LOGS(""), "{\"Domain\": 1}",
     "InvalidParameter", "\"Domain\" must be a string, got number 1"},
    {CDN, "DescribeLogs", "DescribeLogsRequest.StartDate", LOGS(", \"StartDate\": \"2023-03-01\""),
     LOGS(", \"StartDate\": 20230301"), "InvalidParameter", "\"StartDate\" must be a string"},
    {CDN, "DescribeLogs", "DescribeLogsRequest.StartTime",
     LOGS(", \"StartTime\": \"2023-03-01 00:00:00\""), LOGS(", \"StartTime\": true"),
     "InvalidParameter", "\"StartTime\" must be a string, got true"},
    {CDN, "DescribeLogs", "DescribeLogsRequest.EndTime",
     LOGS(", \"EndTime\": \"2023-03-01T12:00:00+08:00\""), LOGS(", \"EndTime\": null"),
     "InvalidParameter", "\"EndTime\" must be a string, got null"},
    {CDN, "DescribeLogs", "DescribeLogsRequest.Days", LOGS(", \"Days\": [\"2023-03-01\"]"),
     LOGS(", \"Days\": [\"2023-03-01\", 1]"), "InvalidParameter", "\"Days.1\" must be a string"},
    {CDN, "DescribeLogs", "DescribeLogsRequest.Times", LOGS(", \"Times\": []"),
     LOGS(", \"Times\": \"2023-03-01 00:00:00\""), "InvalidParameter",
     "\"Times\" must be a list of datetime values"},
    {CDN, "DescribeLogs", "DescribeLogsRequest.IsoTimes",
     LOGS(", \"IsoTimes\": [\"2023-03-01T00:00:00Z\"]"), LOGS(", \"IsoTimes\": [{}]"),
     "InvalidParameter", "\"IsoTimes.0\" must be a string, got an object"},
    {CDN, "DescribeLogs", "DescribeLogsRequest.Paths", LOGS(", \"Paths\": [\"/\"]"),
     LOGS(", \"Paths\": [[]]"), "InvalidParameter", "\"Paths.0\" must be a string"},
    {CDN, "UploadCertificate", "UploadCertificateRequest.Certificate",
     "{\"Certificate\": \"TUlJQg==\"}", "{\"Certificate\": [77, 73]}", "InvalidParameter",
     "\"Certificate\" must be a string, got a list"},
    {CDN, "UploadCertificate", "UploadCertificateRequest.Chain",
     "{\"Certificate\": \"x\", \"Chain\": [\"y\"]}", "{\"Certificate\": \"x\", \"Chain\": [1]}",
     "InvalidParameter", "\"Chain.0\" must be a string"},
#undef LOGS
#define DB "fakedb", "2022-07-15", "CreateDatabase"
#define CREATE(x) "{\"Name\": \"d\"" x "}"
    {DB, "CreateDatabaseRequest.Name", CREATE(""), "{\"Name\": 5}", "InvalidParameter",
     "\"Name\" must be a string"},
    {DB, "CreateDatabaseRequest.Shards", CREATE(", \"Shards\": \"-3\""),
     CREATE(", \"Shards\": \"3.5\""), "InvalidParameter", "\"Shards\" must be an integer (int64"},
    {DB, "CreateDatabaseRequest.Capacity", CREATE(", \"Capacity\": \"18446744073709551615\""),
     CREATE(", \"Capacity\": -1"), "InvalidParameterValue", "(uint64), got number -1"},
    {DB, "CreateDatabaseRequest.Ratio", CREATE(", \"Ratio\": \"0.5\""),
     CREATE(", \"Ratio\": \"half\""), "InvalidParameter", "\"Ratio\" must be a number (float"},
    {DB, "CreateDatabaseRequest.Encrypted", CREATE(", \"Encrypted\": false"),
     CREATE(", \"Encrypted\": \"false\""), "InvalidParameter", "\"Encrypted\" must be a boolean"},
    {DB, "CreateDatabaseRequest.Spec", CREATE(", \"Spec\": {\"Cpu\": 2}"),
     CREATE(", \"Spec\": {\"Cpu\": 2, \"Gpu\": 1}"), "UnknownParameter",
     "\"Spec.Gpu\": DatabaseSpec has no such member"},
    {DB, "DatabaseSpec.Cpu", CREATE(", \"Spec\": {\"Cpu\": \"2\"}"), CREATE(", \"Spec\": {}"),
     "MissingParameter", "\"Spec.Cpu\": an integer (uint64"},
    {DB, "DatabaseSpec.Memory", CREATE(", \"Spec\": {\"Cpu\": 1, \"Memory\": 1.5}"),
     CREATE(", \"Spec\": {\"Cpu\": 1, \"Memory\": \"1e999\"}"), "InvalidParameterValue",
     "\"Spec.Memory\" is out of the range of a float"},
    {DB, "CreateDatabaseRequest.Tags", CREATE(", \"Tags\": [{\"Key\": \"k\"}]"),
     CREATE(", \"Tags\": {\"Key\": \"k\"}"), "InvalidParameter",
     "\"Tags\" must be a list of Tag objects"},
    {DB, "Tag.Key", CREATE(", \"Tags\": [{\"Key\": \"k\", \"Value\": \"v\"}]"),
     CREATE(", \"Tags\": [{\"Value\": \"v\"}]"), "MissingParameter", "\"Tags.0.Key\""},
    {DB, "Tag.Value", CREATE(", \"Tags\": [{\"Key\": \"k\", \"Value\": \"\"}]"),
     CREATE(", \"Tags\": [{\"Key\": \"k\", \"Value\": 1}]"), "InvalidParameter",
     "\"Tags.0.Value\" must be a string"},
    {DB, "CreateDatabaseRequest.Offsets", CREATE(", \"Offsets\": [-1, \"2\"]"),
     CREATE(", \"Offsets\": [\"9223372036854775808\"]"), "InvalidParameterValue",
     "\"Offsets.0\" must be an integer from -9223372036854775808"},
    {DB, "CreateDatabaseRequest.Sizes", CREATE(", \"Sizes\": [\"0\", 1]"),
     CREATE(", \"Sizes\": [\"010\"]"), "InvalidParameter", "\"Sizes.0\" must be an integer"},
    {DB, "CreateDatabaseRequest.Weights", CREATE(", \"Weights\": [0.5, \"1\"]"),
     CREATE(", \"Weights\": [true]"), "InvalidParameter", "\"Weights.0\" must be a number"},
    {DB, "CreateDatabaseRequest.Flags", CREATE(", \"Flags\": [true, false]"),
     CREATE(", \"Flags\": [1]"), "InvalidParameter", "\"Flags.0\" must be a boolean"},
#undef CREATE
/* Kinds that tcgw does not model: checked as their type says. */
#define ML "fakeml", "2024-11-30", "TrainModel"
    {ML, "TrainModelRequest.Deadline", "{\"Deadline\": \"1700000000\"}",
     "{\"Deadline\": 1700000000}", "InvalidParameter", "\"Deadline\" must be a string"},
    {ML, "TrainModelRequest.Epochs", "{\"Epochs\": \"10\"}", "{\"Epochs\": \"ten\"}",
     "InvalidParameter", "\"Epochs\" must be an integer (a JSON integer"},
    {ML, "TrainModelRequest.Epochs", "{\"Epochs\": \"18446744073709551615\"}",
     "{\"Epochs\": \"-9223372036854775809\"}", "InvalidParameterValue",
     "from -9223372036854775808 to 18446744073709551615 (64 bits)"},
    {ML, "TrainModelRequest.Epochs", "{\"Epochs\": -9223372036854775808}", "{\"Epochs\": \"010\"}",
     "InvalidParameter", "without leading zeros"},
    {ML, "TrainModelRequest.Rate", "{\"Rate\": \"0.01\"}", "{\"Rate\": \"fast\"}",
     "InvalidParameter", "\"Rate\" must be a number (float"},
    {ML, "TrainModelRequest.Verbose", "{\"Verbose\": true}", "{\"Verbose\": \"yes\"}",
     "InvalidParameter", "\"Verbose\" must be a boolean"},
    {ML, "TrainModelRequest.Weights", "{\"Weights\": \"AAEC\"}", "{\"Weights\": 1}",
     "InvalidParameter", "\"Weights\" must be a string"},
#undef ML
#undef DB
#undef CDN
};

static void test_kinds_load(void **state)
{
    (void)state;
    assert_int_equal(gw_apispec_action_count(kinds), 4);
    expect_at(__FILE__, __LINE__, kinds, "fakeml", "2024-11-30", "TrainModel", "{}", NULL, NULL,
              NULL);
    /* Output members are not input members. */
    expect_at(__FILE__, __LINE__, kinds, "fakeml", "2024-11-30", "TrainModel", "{\"Job\": {}}",
              "UnknownParameter", "\"Job\"", NULL);
}

static void test_kinds_checked(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof kind_cases / sizeof kind_cases[0]; i++) {
        const struct kind_case *k = &kind_cases[i];
        expect_at(__FILE__, __LINE__, kinds, k->service, k->version, k->action, k->good, NULL, NULL,
                  NULL);
        expect_at(__FILE__, __LINE__, kinds, k->service, k->version, k->action, k->bad, k->code,
                  k->sub, NULL);
    }
}

/* Adds the members of object (and of the objects it names) to reached: "Object.Member" -> kind. */
static void collect_reached(const json_t *objects, const char *object, json_t *seen,
                            json_t *reached)
{
    if (json_object_get(seen, object) != NULL) {
        return;
    }
    json_object_set_new(seen, object, json_true());
    const json_t *members = json_object_get(json_object_get(objects, object), "members");
    for (size_t i = 0; i < json_array_size(members); i++) {
        const json_t *m = json_array_get(members, i);
        const char *name = json_string_value(json_object_get(m, "name"));
        const char *elem = json_string_value(json_object_get(m, "member"));
        char key[512];
        snprintf(key, sizeof key, "%s.%s", object, name);
        json_object_set_new(reached, key, json_string(elem));
        if (json_object_get(objects, elem) != NULL) {
            collect_reached(objects, elem, seen, reached);
        }
    }
}

/*
 * The data files use every type and kind of Tencent's in the objects inputs reach, and date and
 * datetime_iso in output-only objects too; and kind_cases checks every member an input reaches,
 * so a member added to the data without a check fails here.
 */
static void test_kinds_coverage(void **state)
{
    (void)state;
    json_t *used = json_object(); /* "in:type", "in:kind", "out:kind" -> true */
    size_t unchecked = 0;
    for (size_t f = 0; f < sizeof kinds_files / sizeof kinds_files[0]; f++) {
        char path[PATH_LEN], rel[PATH_LEN];
        json_error_t jerr;
        snprintf(rel, sizeof rel, "%s/%s", KINDS_DIR, kinds_files[f]);
        source_path(path, sizeof path, rel);
        json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
        if (root == NULL) {
            print_error("%s: %s\n", path, jerr.text);
        }
        assert_non_null(root);
        const char *service = json_string_value(
            json_object_get(json_object_get(root, "metadata"), "serviceShortName"));
        const json_t *objects = json_object_get(root, "objects");
        json_t *seen = json_object(), *reached = json_object();
        const char *name, *key;
        json_t *value;
        json_object_foreach (json_object_get(root, "actions"), name, value) {
            collect_reached(objects, json_string_value(json_object_get(value, "input")), seen,
                            reached);
        }
        json_object_foreach ((json_t *)objects, name, value) {
            const json_t *members = json_object_get(value, "members");
            bool in = json_object_get(seen, name) != NULL;
            for (size_t i = 0; i < json_array_size(members); i++) {
                const json_t *m = json_array_get(members, i);
                char tag[256];
                snprintf(tag, sizeof tag, "%s:%s", in ? "in" : "out",
                         json_string_value(json_object_get(m, "type")));
                json_object_set_new(used, tag, json_true());
                snprintf(tag, sizeof tag, "%s:%s", in ? "in" : "out",
                         json_string_value(json_object_get(m, "member")));
                json_object_set_new(used, tag, json_true());
            }
        }
        json_object_foreach (reached, key, value) {
            bool found = false;
            for (size_t i = 0; i < sizeof kind_cases / sizeof kind_cases[0] && !found; i++) {
                found = strcmp(kind_cases[i].service, service) == 0 &&
                        strcmp(kind_cases[i].key, key) == 0;
            }
            if (!found) {
                print_error("%s: input member %s (%s) has no case in kind_cases\n", service, key,
                            json_string_value(value));
                unchecked++;
            }
        }
        json_decref(seen);
        json_decref(reached);
        json_decref(root);
    }
    size_t missing = 0;
    for (size_t i = 0; i < sizeof tencent_types / sizeof tencent_types[0]; i++) {
        char tag[64];
        snprintf(tag, sizeof tag, "in:%s", tencent_types[i]);
        if (json_object_get(used, tag) == NULL) {
            print_error("no input member of type %s in the data\n", tencent_types[i]);
            missing++;
        }
    }
    for (size_t i = 0; i < sizeof tencent_kinds / sizeof tencent_kinds[0]; i++) {
        char tag[64];
        snprintf(tag, sizeof tag, "in:%s", tencent_kinds[i]);
        if (json_object_get(used, tag) == NULL) {
            print_error("no input member of kind %s in the data\n", tencent_kinds[i]);
            missing++;
        }
    }
    static const char *const out_only[] = {"out:date", "out:datetime_iso", "out:binary",
                                           "out:percent"};
    for (size_t i = 0; i < sizeof out_only / sizeof out_only[0]; i++) {
        if (json_object_get(used, out_only[i]) == NULL) {
            print_error("no output-only member of %s in the data\n", out_only[i] + 4);
            missing++;
        }
    }
    json_decref(used);
    assert_int_equal(unchecked, 0);
    assert_int_equal(missing, 0);
}

/* Objects no input reaches load whatever their members' kinds; the same under an input do not. */
static void test_kinds_output_only(void **state)
{
    (void)state;
    static const char *const members[] = {
        "{\"name\": \"P\", \"type\": \"percent\", \"member\": \"percent\"}",
        "{\"name\": \"L\", \"type\": \"list\", \"member\": \"Layer\"}",
        "{\"name\": \"G\", \"type\": \"object\", \"member\": \"Gone\"}",
        "{\"name\": \"E\", \"type\": \"string\", \"member\": \"int64\"}",
        "{\"name\": \"S\", \"type\": \"string\", \"member\": \"R\"}",
        "{\"name\": \"T\", \"type\": \"string\", \"member\": \"datetime_iso\"}",
    };
    for (size_t i = 0; i < sizeof members / sizeof members[0]; i++) {
        char text[2048], dir[PATH_LEN], msg[512];
        struct gw_apispec *spec = NULL;
        snprintf(text, sizeof text,
                 "{\"metadata\": {\"serviceShortName\": \"s\", \"apiVersion\": \"1\"}, "
                 "\"actions\": {\"A\": {\"input\": \"R\", \"output\": \"Out\"}}, \"objects\": {"
                 "\"R\": {\"members\": [{\"name\": \"X\", \"type\": \"int\", \"member\": "
                 "\"int64\"}]}, \"Out\": {\"members\": [{\"name\": \"D\", \"type\": \"list\", "
                 "\"member\": \"Detail\"}]}, \"Detail\": {\"members\": [%s]}}}",
                 members[i]);
        temp_dir(dir);
        write_file(dir, "api.json", text);
        enum gw_err err = gw_apispec_load_dir(dir, &spec, msg, sizeof msg);
        remove_tree(dir);
        if (err != GW_OK) {
            print_error("output-only member %s: %s\n", members[i], msg);
        }
        assert_int_equal(err, GW_OK);
        expect_at(__FILE__, __LINE__, spec, "s", "1", "A", "{\"X\": \"-5\"}", NULL, NULL, NULL);
        gw_apispec_free(spec);
        /* The same member in the input: datetime_iso loads, the others cannot be checked. */
        const char *input = strstr(members[i], "datetime_iso") != NULL ? NULL : "input reaches it";
        snprintf(text, sizeof text,
                 "{\"metadata\": {\"serviceShortName\": \"s\", \"apiVersion\": \"1\"}, "
                 "\"actions\": {\"A\": {\"input\": \"R\"}}, \"objects\": {"
                 "\"R\": {\"members\": [%s]}}}",
                 members[i]);
        if (input != NULL) {
            const char *const files[] = {"api.json", text, NULL};
            load_fails_at(__FILE__, __LINE__, input, NULL, files);
        }
    }
}

int main(void)
{
    const struct CMUnitTest shipped_tests[] = {
        cmocka_unit_test(test_shipped_loads),
        cmocka_unit_test(test_seed_call),
        cmocka_unit_test(test_service_version_action),
        cmocka_unit_test(test_unknown_parameter),
        cmocka_unit_test(test_invalid_parameter),
        cmocka_unit_test(test_integers),
        cmocka_unit_test(test_missing_parameter),
        cmocka_unit_test(test_invalid_parameter_value),
        cmocka_unit_test(test_threads),
    };
    const struct CMUnitTest types_tests[] = {
        cmocka_unit_test(test_types_all),
        cmocka_unit_test(test_number_rule),
        cmocka_unit_test(test_load_errors),
    };
    int failed =
        cmocka_run_group_tests_name("apispec_shipped", shipped_tests, load_shipped, free_shipped);
    failed += cmocka_run_group_tests_name("apispec_types", types_tests, load_types, free_types);
    const struct CMUnitTest kinds_tests[] = {
        cmocka_unit_test(test_kinds_load),
        cmocka_unit_test(test_kinds_checked),
        cmocka_unit_test(test_kinds_coverage),
        cmocka_unit_test(test_kinds_output_only),
    };
    failed += cmocka_run_group_tests_name("apispec_kinds", kinds_tests, load_kinds, free_kinds);
    return failed == 0 ? 0 : 1;
}
