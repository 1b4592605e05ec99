/*
 * Unit tests for recursive input objects. 12 of Tencent's 296 CLI descriptions have input
 * objects that contain themselves; the made-up services in data/recursive/ (Tencent's CLI format)
 * reproduce the three shapes they take:
 *   fakealarm  directly, through an object member (cls's EscalateNoticeInfo)
 *   fakeindex  through a second object, KeyValueInfo.Value -> ValueInfo.ChildNode -> KeyValueInfo
 *              (cls's JSON index fields)
 *   faketree   through a list of itself (billing's AllocationRuleExpression, ess's Permission)
 * Each loads; a call nested up to GW_APISPEC_MAX_DEPTH levels of objects passes; a deeper one is
 * refused with InvalidParameterValue naming its path and the limit; every other problem is still
 * found at any depth within the limit; and the check's stack stays bounded whatever the call.
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

#define PATH_LEN 4096
#define DATA_DIR "tests/unit/apispec/data/recursive"
#define LIMIT GW_APISPEC_MAX_DEPTH
/*
 * A check runs within this much stack at any depth: 32 levels take 8 KiB with gcc -O2, up to
 * 80 KiB unoptimized with clang and AddressSanitizer. 2000 levels would take 0.5 to 5 MiB.
 */
#define SMALL_STACK ((size_t)256 << 10)

#define ALARM "fakealarm", "2025-01-01", "CreateAlarmNotice"
#define INDEX "fakeindex", "2025-02-01", "CreateIndex"
#define TREE "faketree", "2025-03-01", "CreateAllocationRule"

static struct gw_apispec *spec; /* the three services of DATA_DIR */

/* ---------------------------------------------------------------------------------------------
 * Helpers.
 */

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

static struct gw_apispec *load_dir(const char *dir)
{
    char msg[512];
    struct gw_apispec *s = NULL;
    if (gw_apispec_load_dir(dir, &s, msg, sizeof msg) != GW_OK) {
        print_error("cannot load %s: %s\n", dir, msg);
        return NULL;
    }
    return s;
}

/*
 * Checks params (borrowed) and fails the test at file:line unless the verdict has code (NULL: the
 * call must pass) and a message containing sub1 and sub2 (when not NULL). Returns the verdict.
 */
static struct gw_apispec_verdict expect_at(const char *file, int line, const struct gw_apispec *s,
                                           const char *service, const char *version,
                                           const char *action, const json_t *params,
                                           const char *code, const char *sub1, const char *sub2)
{
    struct gw_apispec_verdict v;
    bool ok = gw_apispec_check(s, service, version, action, params, &v);
    if (ok != (code == NULL) || (code != NULL && strcmp(code, v.code) != 0)) {
        print_error("%s: expected %s, got %s: %s\n", action, code ? code : "(pass)",
                    ok ? "(pass)" : v.code, ok ? "" : v.message);
        _fail(file, line);
    }
    if (ok) {
        return v;
    }
    if ((sub1 != NULL && strstr(v.message, sub1) == NULL) ||
        (sub2 != NULL && strstr(v.message, sub2) == NULL)) {
        print_error("%s: message lacks \"%s\" / \"%s\": %s\n", action, sub1 ? sub1 : "",
                    sub2 ? sub2 : "", v.message);
        _fail(file, line);
    }
    if (!utf8_valid(v.message) || strlen(v.message) >= GW_APISPEC_MSG_MAX) {
        print_error("message is not valid UTF-8 or too long: %s\n", v.message);
        _fail(file, line);
    }
    return v;
}

#define PASS(svc, params) expect_at(__FILE__, __LINE__, spec, svc, params, NULL, NULL, NULL)
#define FAIL(svc, params, code, sub)                                                               \
    expect_at(__FILE__, __LINE__, spec, svc, params, code, sub, NULL)
#define FAIL2(svc, params, code, sub1, sub2)                                                       \
    expect_at(__FILE__, __LINE__, spec, svc, params, code, sub1, sub2)

/* The refusal of a call nested too deep, whose deepest accepted level ends at path. */
static const char *too_deep(char *buf, size_t n, const char *path)
{
    int k = snprintf(buf, n,
                     "Parameter \"%s\" is nested too deeply: objects may nest at most %d levels, "
                     "the parameters themselves being level 1.",
                     path, LIMIT);
    assert_true(k > 0 && (size_t)k < n);
    return buf;
}

/* The path as a refusal quotes it: whole, or its first 128 and last 256 bytes around "...". */
static const char *clipped(char *buf, size_t n, const char *path)
{
    size_t len = strlen(path);
    int k = len < 128 + 3 + 256 + 1 ? snprintf(buf, n, "%s", path)
                                    : snprintf(buf, n, "%.128s...%s", path, path + len - 256);
    assert_true(k > 0 && (size_t)k < n);
    return buf;
}

/* Appends s to buf[n] at *len; the buffers below are sized for the deepest paths. */
static void append(char *buf, size_t n, size_t *len, const char *s)
{
    int k = snprintf(buf + *len, n - *len, "%s", s);
    assert_true(k >= 0 && (size_t)k < n - *len);
    *len += (size_t)k;
}

/*
 * Calls built level by level, the parameters being level 1. Each returns a new call and sets
 * *deepest to its deepest object (borrowed from the call), so a test can add to it; path gets
 * that object's path.
 */

/* faketree: RuleDetail (level 2), then Children.0 for each level below. */
static json_t *tree_call(unsigned levels, json_t **deepest, char *path, size_t n)
{
    json_t *root = json_pack("{s:s}", "Name", "rule1");
    json_t *parent = root;
    size_t len = 0;
    path[0] = '\0';
    for (unsigned level = 2; level <= levels; level++) {
        json_t *e = json_pack("{s:s}", "RuleKey", "ownerUin");
        if (level == 2) {
            json_object_set_new(parent, "RuleDetail", e);
            append(path, n, &len, "RuleDetail");
        } else {
            json_object_set_new(parent, "Children", json_pack("[o]", e));
            append(path, n, &len, ".Children.0");
        }
        parent = e;
    }
    *deepest = parent;
    return root;
}

/* fakealarm: Notice (level 2), then EscalateNotice for each level below. */
static json_t *alarm_call(unsigned levels, json_t **deepest, char *path, size_t n)
{
    json_t *root = json_pack("{s:s}", "Name", "ops");
    json_t *parent = root;
    size_t len = 0;
    path[0] = '\0';
    for (unsigned level = 2; level <= levels; level++) {
        json_t *stage = json_pack("{s:[]}", "Receivers");
        json_object_set_new(parent, level == 2 ? "Notice" : "EscalateNotice", stage);
        append(path, n, &len, level == 2 ? "Notice" : ".EscalateNotice");
        parent = stage;
    }
    *deepest = parent;
    return root;
}

/*
 * fakeindex: a JSON index of fields levels. Rule (2), KeyValue (3), then per field a KeyValueInfo
 * and its ValueInfo: the deepest ValueInfo is at level 3 + 2 * fields.
 */
static json_t *index_call(unsigned fields, json_t **deepest, char *path, size_t n)
{
    json_t *root =
        json_pack("{s:s, s:{s:{s:b}}}", "TopicId", "t-1", "Rule", "KeyValue", "CaseSensitive", 0);
    json_t *parent = json_object_get(json_object_get(root, "Rule"), "KeyValue");
    size_t len = 0;
    path[0] = '\0';
    append(path, n, &len, "Rule.KeyValue");
    for (unsigned f = 1; f <= fields; f++) {
        json_t *value = json_pack("{s:s}", "Type", f < fields ? "json" : "long");
        json_t *kv = json_pack("{s:s, s:o}", "Key", "f", "Value", value);
        json_object_set_new(parent, f == 1 ? "KeyValues" : "ChildNode", json_pack("[o]", kv));
        append(path, n, &len, f == 1 ? ".KeyValues.0.Value" : ".ChildNode.0.Value");
        parent = value;
    }
    *deepest = parent;
    return root;
}

/* ---------------------------------------------------------------------------------------------
 * Loading.
 */

static int load_all(void **state)
{
    (void)state;
    char dir[PATH_LEN];
    source_path(dir, sizeof dir, DATA_DIR);
    spec = load_dir(dir);
    return spec != NULL ? 0 : -1;
}

static int free_all(void **state)
{
    (void)state;
    gw_apispec_free(spec);
    spec = NULL;
    return 0;
}

/* Each description loads on its own too, and every action is there. */
static void test_each_loads(void **state)
{
    (void)state;
    static const char *const services[] = {"fakealarm", "fakeindex", "faketree"};
    assert_int_equal(gw_apispec_action_count(spec), 3);
    for (size_t i = 0; i < sizeof services / sizeof services[0]; i++) {
        char rel[256], dir[PATH_LEN];
        snprintf(rel, sizeof rel, "%s/%s", DATA_DIR, services[i]);
        source_path(dir, sizeof dir, rel);
        struct gw_apispec *one = load_dir(dir);
        assert_non_null(one);
        assert_int_equal(gw_apispec_action_count(one), 1);
        gw_apispec_free(one);
    }
}

/* ---------------------------------------------------------------------------------------------
 * The depth limit.
 */

/* Every depth up to the limit passes, in each shape. */
static void test_within_depth(void **state)
{
    (void)state;
    char path[PATH_LEN];
    json_t *deepest;
    for (unsigned levels = 2; levels <= LIMIT; levels++) {
        json_t *call = tree_call(levels, &deepest, path, sizeof path);
        PASS(TREE, call);
        json_decref(call);
        call = alarm_call(levels, &deepest, path, sizeof path);
        PASS(ALARM, call);
        json_decref(call);
    }
    /* fakeindex nests two objects per field: 14 fields reach level 31, the deepest it can. */
    for (unsigned fields = 0; 3 + 2 * fields <= LIMIT; fields++) {
        json_t *call = index_call(fields, &deepest, path, sizeof path);
        PASS(INDEX, call);
        json_decref(call);
    }
    /* What cls documents for its JSON index (keys of at most 10 levels): level 23. */
    json_t *call = index_call(10, &deepest, path, sizeof path);
    PASS(INDEX, call);
    json_decref(call);
    /* Lists add no level: a wide list at the deepest level passes. */
    call = tree_call(LIMIT, &deepest, path, sizeof path);
    json_object_set_new(deepest, "RuleValue", json_pack("[s,s,s]", "a", "b", "c"));
    PASS(TREE, call);
    json_decref(call);
    /* A tree that is wide rather than deep: 32 levels, 3 children at every level but the last. */
    json_t *root = json_pack("{s:s}", "Name", "wide");
    json_t *level[LIMIT + 1];
    level[2] = json_pack("{s:s}", "RuleKey", "k");
    json_object_set_new(root, "RuleDetail", level[2]);
    for (unsigned l = 3; l <= LIMIT; l++) {
        json_t *kids = json_array();
        for (int k = 0; k < 3; k++) {
            json_array_append_new(kids, json_pack("{s:s}", "RuleKey", "k"));
        }
        json_object_set_new(level[l - 1], "Children", kids);
        level[l] = json_array_get(kids, 2);
    }
    PASS(TREE, root);
    json_decref(root);
}

/* One level more is refused, with the path of the object too deep and the limit. */
static void test_beyond_depth(void **state)
{
    (void)state;
    char path[PATH_LEN * 4], want[PATH_LEN + 256];
    json_t *deepest;

    /* faketree: the whole path fits in the message. */
    json_t *call = tree_call(LIMIT + 1, &deepest, path, sizeof path);
    struct gw_apispec_verdict v = FAIL(TREE, call, "InvalidParameterValue", "at most 32 levels");
    assert_string_equal(v.message, too_deep(want, sizeof want, path));
    json_decref(call);

    /* fakeindex: 15 fields put the last one's Value (a ValueInfo) at level 33. */
    call = index_call(15, &deepest, path, sizeof path);
    v = FAIL(INDEX, call, "InvalidParameterValue", "at most 32 levels");
    assert_string_equal(v.message, too_deep(want, sizeof want, path));
    json_decref(call);

    /*
     * fakealarm: "Notice" and 31 times ".EscalateNotice" is 471 bytes, more than a message
     * holds, so the path is quoted as its start, "..." and its end.
     */
    call = alarm_call(LIMIT + 1, &deepest, path, sizeof path);
    v = FAIL(ALARM, call, "InvalidParameterValue", "Parameter \"Notice.EscalateNotice.");
    assert_int_equal(strlen(path), 6 + 15 * (LIMIT - 1));
    char cut[PATH_LEN];
    assert_string_equal(v.message, too_deep(want, sizeof want, clipped(cut, sizeof cut, path)));
    assert_non_null(strstr(v.message, ".EscalateNotice.E...e.EscalateNotice"));
    json_decref(call);

    /* Much deeper calls get the same answer: nothing below the limit is examined. */
    static const unsigned deeper[] = {LIMIT + 2, 100, 1000};
    for (size_t i = 0; i < sizeof deeper / sizeof deeper[0]; i++) {
        char path33[PATH_LEN];
        json_t *d33;
        json_decref(tree_call(LIMIT + 1, &d33, path33, sizeof path33));
        call = tree_call(deeper[i], &deepest, path, sizeof path);
        v = FAIL(TREE, call, "InvalidParameterValue", NULL);
        assert_string_equal(v.message, too_deep(want, sizeof want, path33));
        json_decref(call);
    }
}

/* Every other problem is still found at the deepest levels within the limit. */
static void test_problems_deep(void **state)
{
    (void)state;
    char path[PATH_LEN], sub[PATH_LEN * 2];
    json_t *deepest;

    /* faketree, level 32: an unknown key, wrong types, a range, a missing member. */
    json_t *call = tree_call(LIMIT, &deepest, path, sizeof path);
    json_object_set_new(deepest, "Bogus", json_true());
    snprintf(sub, sizeof sub, "Unknown parameter \"%s.Bogus\": AllocationRuleExpression has no",
             path);
    FAIL(TREE, call, "UnknownParameter", sub);
    json_object_del(deepest, "Bogus");
    json_object_set_new(deepest, "weight", json_integer(1));
    FAIL(TREE, call, "UnknownParameter", "did you mean \"Weight\"?");
    json_object_del(deepest, "weight");
    json_object_set_new(deepest, "Weight", json_string("x"));
    snprintf(sub, sizeof sub, "\"%s.Weight\" must be an integer (uint64", path);
    FAIL(TREE, call, "InvalidParameter", sub);
    json_object_set_new(deepest, "Weight", json_integer(-1));
    snprintf(sub, sizeof sub, "\"%s.Weight\" must be an integer from 0 to", path);
    FAIL(TREE, call, "InvalidParameterValue", sub);
    json_object_del(deepest, "Weight");
    json_object_set_new(deepest, "RuleValue", json_pack("[s,i]", "a", 1));
    snprintf(sub, sizeof sub, "\"%s.RuleValue.1\" must be a string, got number 1", path);
    FAIL(TREE, call, "InvalidParameter", sub);
    json_object_del(deepest, "RuleValue");
    json_object_set_new(deepest, "Children", json_string("none"));
    snprintf(sub, sizeof sub, "\"%s.Children\" must be a list of AllocationRuleExpression", path);
    FAIL(TREE, call, "InvalidParameter", sub);
    /* A wrong type at level 33 is a wrong type: the value is not an object to enter. */
    json_object_set_new(deepest, "Children", json_pack("[n]"));
    snprintf(sub, sizeof sub, "\"%s.Children.0\" must be an object (AllocationRuleExpression)",
             path);
    FAIL(TREE, call, "InvalidParameter", sub);
    json_object_del(deepest, "Children");
    json_object_del(deepest, "RuleKey");
    snprintf(sub, sizeof sub, "Missing required parameter \"%s.RuleKey\": a string.", path);
    FAIL(TREE, call, "MissingParameter", sub);
    json_decref(call);

    /* fakealarm: a receiver at level 32, below the stage at level 31. */
    call = alarm_call(LIMIT - 1, &deepest, path, sizeof path);
    json_object_set_new(deepest, "Receivers", json_pack("[{s:[i]}]", "ReceiverIds", 7));
    snprintf(sub, sizeof sub, "\"%s.Receivers.0.ReceiverType\": a string.", path);
    FAIL(ALARM, call, "MissingParameter", sub);
    json_object_set_new(deepest, "Receivers",
                        json_pack("[{s:s, s:[s]}]", "ReceiverType", "Uin", "ReceiverIds", "x"));
    snprintf(sub, sizeof sub, "\"%s.Receivers.0.ReceiverIds.0\" must be an integer (int64", path);
    FAIL(ALARM, call, "InvalidParameter", sub);
    json_object_set_new(deepest, "Receivers",
                        json_pack("[{s:s, s:[s]}]", "ReceiverType", "Uin", "ReceiverIds", "7"));
    PASS(ALARM, call);
    json_object_set_new(deepest, "Interval", json_string("-1"));
    snprintf(sub, sizeof sub, "\"%s.Interval\" must be an integer from 0 to", path);
    FAIL(ALARM, call, "InvalidParameterValue", sub);
    json_decref(call);
    /* The same receiver one stage lower is at level 33. */
    call = alarm_call(LIMIT, &deepest, path, sizeof path);
    json_object_set_new(deepest, "Receivers", json_pack("[{s:s}]", "ReceiverType", "Uin"));
    FAIL2(ALARM, call, "InvalidParameterValue", "EscalateNotice.Receivers.0\" is nested too deeply",
          "at most 32 levels");
    json_decref(call);

    /* fakeindex: a KeyValueInfo at level 32 needs its Value, which would be at level 33. */
    call = index_call(14, &deepest, path, sizeof path);
    json_object_set_new(deepest, "Type", json_string("json"));
    json_object_set_new(deepest, "ChildNode", json_pack("[{s:s}]", "Key", "leaf"));
    snprintf(sub, sizeof sub,
             "Missing required parameter \"%s.ChildNode.0.Value\": an object "
             "(ValueInfo).",
             path);
    FAIL(INDEX, call, "MissingParameter", sub);
    json_object_set_new(json_array_get(json_object_get(deepest, "ChildNode"), 0), "Value",
                        json_object());
    snprintf(sub, sizeof sub, "\"%s.ChildNode.0.Value\" is nested too deeply", path);
    FAIL(INDEX, call, "InvalidParameterValue", sub);
    json_object_del(deepest, "ChildNode");
    json_object_set_new(deepest, "SqlFlag", json_string("true"));
    snprintf(sub, sizeof sub, "\"%s.SqlFlag\" must be a boolean", path);
    FAIL(INDEX, call, "InvalidParameter", sub);
    json_decref(call);
}

/*
 * The order of apispec.h holds across the limit: unknown keys of an object come before its
 * values, values come in the description's order (items in the caller's), so a shallow problem
 * found first wins over a branch that is too deep, and the other way round.
 */
static void test_order(void **state)
{
    (void)state;
    char path[PATH_LEN];
    json_t *deepest;
    json_t *call = tree_call(LIMIT + 5, &deepest, path, sizeof path);
    json_t *top = json_object_get(call, "RuleDetail");
    json_object_set_new(top, "Bogus", json_true());
    FAIL(TREE, call, "UnknownParameter", "\"RuleDetail.Bogus\"");
    json_object_del(top, "Bogus");
    /* Weight comes before Children in the description. */
    json_object_set_new(top, "Weight", json_real(1.5));
    FAIL(TREE, call, "InvalidParameter", "\"RuleDetail.Weight\" must be an integer");
    json_object_del(top, "Weight");
    /* A second child after the deep one: items in order, so the deep one is refused first... */
    json_array_append_new(json_object_get(top, "Children"), json_integer(1));
    FAIL(TREE, call, "InvalidParameterValue", "is nested too deeply");
    /* ...and before it, the bad item is. */
    json_array_insert_new(json_object_get(top, "Children"), 0, json_integer(2));
    FAIL(TREE, call, "InvalidParameter", "\"RuleDetail.Children.0\" must be an object");
    json_decref(call);
    /* Required members are checked after the values, so a too deep call lacking one is deep. */
    call = tree_call(LIMIT + 1, &deepest, path, sizeof path);
    json_object_del(call, "Name");
    FAIL(TREE, call, "InvalidParameterValue", "is nested too deeply");
    json_decref(call);
}

/* ---------------------------------------------------------------------------------------------
 * The stack: a check nests as deep as the limit, never as deep as the call.
 */

struct stack_job {
    const json_t *call;
    bool ok;
    struct gw_apispec_verdict v;
};

static void *stack_main(void *arg)
{
    struct stack_job *job = arg;
    job->ok = gw_apispec_check(spec, TREE, job->call, &job->v);
    return NULL;
}

/* Runs the check of call on a thread with only SMALL_STACK bytes of stack. */
static struct stack_job check_on_small_stack(const json_t *call)
{
    struct stack_job job = {.call = call, .ok = false};
    pthread_attr_t attr;
    pthread_t t;
    assert_int_equal(pthread_attr_init(&attr), 0);
    assert_int_equal(pthread_attr_setstacksize(&attr, SMALL_STACK), 0);
    assert_int_equal(pthread_create(&t, &attr, stack_main, &job), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(pthread_attr_destroy(&attr), 0);
    return job;
}

static void test_stack_bounded(void **state)
{
    (void)state;
    char path[PATH_LEN * 8];
    json_t *deepest;
    /* The deepest call accepted, with a problem at its bottom: all of the recursion. */
    json_t *call = tree_call(LIMIT, &deepest, path, sizeof path);
    struct stack_job job = check_on_small_stack(call);
    assert_true(job.ok);
    json_object_set_new(deepest, "Children", json_pack("[{s:i}]", "RuleKey", 1));
    job = check_on_small_stack(call);
    assert_false(job.ok);
    assert_string_equal(job.v.code, "InvalidParameterValue");
    json_decref(call);
    /* 2000 levels (Jansson parses JSON up to 2048 deep): refused, in the same stack. */
    call = tree_call(2000, &deepest, path, sizeof path);
    job = check_on_small_stack(call);
    assert_false(job.ok);
    assert_string_equal(job.v.code, "InvalidParameterValue");
    assert_non_null(strstr(job.v.message, "at most 32 levels"));
    json_decref(call);
}

/* ---------------------------------------------------------------------------------------------
 * Descriptions written in a test: names of the longest length, and what used to be refused.
 */

static void temp_dir(char out[PATH_LEN])
{
    snprintf(out, PATH_LEN, "/tmp/tcgw-test-apispec-rec-XXXXXX");
    assert_non_null(mkdtemp(out));
}

/* Loads text as dir/api.json in a new temp dir, which it removes again. */
static struct gw_apispec *load_text(const char *text)
{
    char dir[PATH_LEN], file[PATH_LEN + 16];
    temp_dir(dir);
    snprintf(file, sizeof file, "%s/api.json", dir);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    assert_true(fputs(text, f) >= 0);
    assert_int_equal(fclose(f), 0);
    struct gw_apispec *s = load_dir(dir);
    assert_int_equal(unlink(file), 0);
    assert_int_equal(rmdir(dir), 0);
    return s;
}

/*
 * A member name of 128 bytes (the longest a name may be) that lists its own object: a path at
 * the limit is over 4 KiB, and the message quotes its start and its end around "...".
 */
static void test_long_names(void **state)
{
    (void)state;
    char name[129], text[1024], path[PATH_LEN * 2], cut[PATH_LEN], want[PATH_LEN];
    size_t len = 0;
    memset(name, 'N', 128);
    name[127] = 'Z';
    name[128] = '\0';
    snprintf(text, sizeof text,
             "{\"metadata\": {\"serviceShortName\": \"s\", \"apiVersion\": \"1\"}, "
             "\"actions\": {\"A\": {\"input\": \"R\"}}, \"objects\": {\"R\": {\"members\": ["
             "{\"name\": \"%s\", \"type\": \"list\", \"member\": \"R\"}]}}}",
             name);
    struct gw_apispec *s = load_text(text);
    assert_non_null(s);
    /* The object at each level is item 5 of its parent's list; items 0 to 4 are empty. */
    json_t *root = json_object(), *parent = root;
    path[0] = '\0';
    for (unsigned level = 2; level <= LIMIT + 1; level++) {
        json_t *kid = json_object();
        json_object_set_new(parent, name, json_pack("[{},{},{},{},{},o]", kid));
        append(path, sizeof path, &len, level == 2 ? "" : ".");
        append(path, sizeof path, &len, name);
        /* At the last level, item 0 is as deep as item 5, and comes first. */
        append(path, sizeof path, &len, level == LIMIT + 1 ? ".0" : ".5");
        parent = kid;
    }
    assert_int_equal(strlen(path), 32 * 130 + 31);
    struct gw_apispec_verdict v = expect_at(__FILE__, __LINE__, s, "s", "1", "A", root,
                                            "InvalidParameterValue", "at most 32 levels", NULL);
    assert_string_equal(v.message, too_deep(want, sizeof want, clipped(cut, sizeof cut, path)));
    json_decref(root);
    /* One level less passes, and a wrong value at its bottom is found. */
    root = json_object();
    parent = root;
    for (unsigned level = 2; level <= LIMIT; level++) {
        json_t *kid = json_object();
        json_object_set_new(parent, name, json_pack("[o]", kid));
        parent = kid;
    }
    expect_at(__FILE__, __LINE__, s, "s", "1", "A", root, NULL, NULL, NULL);
    json_object_set_new(parent, name, json_string("x"));
    expect_at(__FILE__, __LINE__, s, "s", "1", "A", root, "InvalidParameter", "Parameter \"NNN",
              NULL);
    json_decref(root);
    gw_apispec_free(s);
}

/* A description of objects O0 .. O<n-1>, each with a member X of the next; the last is empty. */
static char *chain_description(size_t n, bool list)
{
    size_t cap = 256 + n * 96;
    char *text = malloc(cap);
    assert_non_null(text);
    size_t len = (size_t)snprintf(text, cap,
                                  "{\"metadata\": {\"serviceShortName\": \"s\", \"apiVersion\": "
                                  "\"1\"}, \"actions\": {\"A\": {\"input\": \"O0\"}}, "
                                  "\"objects\": {");
    for (size_t i = 0; i + 1 < n; i++) {
        len += (size_t)snprintf(text + len, cap - len,
                                "\"O%zu\": {\"members\": [{\"name\": \"X\", \"type\": \"%s\", "
                                "\"member\": \"O%zu\"}]}, ",
                                i, list ? "list" : "object", i + 1);
    }
    snprintf(text + len, cap - len, "\"O%zu\": {\"members\": []}}}", n - 1);
    return text;
}

/* {"X": {"X": ... {}}} with levels objects in all. */
static json_t *chain_call(unsigned levels)
{
    json_t *root = json_object(), *parent = root;
    for (unsigned level = 2; level <= levels; level++) {
        json_t *kid = json_object();
        json_object_set_new(parent, "X", kid);
        parent = kid;
    }
    return root;
}

struct load_job {
    const char *text;
    struct gw_apispec *spec;
};

static void *load_main(void *arg)
{
    struct load_job *job = arg;
    char dir[PATH_LEN], file[PATH_LEN + 16], msg[512];
    snprintf(dir, sizeof dir, "/tmp/tcgw-test-apispec-chain-XXXXXX");
    if (mkdtemp(dir) == NULL) {
        return NULL;
    }
    snprintf(file, sizeof file, "%s/api.json", dir);
    FILE *f = fopen(file, "w");
    if (f != NULL) {
        fputs(job->text, f);
        fclose(f);
        if (gw_apispec_load_dir(dir, &job->spec, msg, sizeof msg) != GW_OK) {
            job->spec = NULL;
        }
    }
    unlink(file);
    rmdir(dir);
    return NULL;
}

/* What the loader used to refuse now loads; the check bounds the depth instead. */
static void test_formerly_refused(void **state)
{
    (void)state;
    /* An object that contains itself directly, and one that does through another and a list. */
    struct gw_apispec *s =
        load_text("{\"metadata\": {\"serviceShortName\": \"s\", \"apiVersion\": \"1\"}, "
                  "\"actions\": {\"A\": {\"input\": \"R\"}}, \"objects\": {"
                  "\"R\": {\"members\": [{\"name\": \"X\", \"type\": \"object\", \"member\": "
                  "\"R\"}, {\"name\": \"Y\", \"type\": \"object\", \"member\": \"Q\"}]},"
                  "\"Q\": {\"members\": [{\"name\": \"Z\", \"type\": \"list\", \"member\": "
                  "\"R\"}]}}}");
    assert_non_null(s);
    json_t *call = json_loads("{\"X\": {\"X\": {}, \"Y\": {\"Z\": [{\"X\": {}}, {}]}}}", 0, NULL);
    expect_at(__FILE__, __LINE__, s, "s", "1", "A", call, NULL, NULL, NULL);
    json_decref(call);
    call = json_loads("{\"X\": {\"Y\": {\"Z\": [{}, {\"W\": 1}]}}}", 0, NULL);
    expect_at(__FILE__, __LINE__, s, "s", "1", "A", call, "UnknownParameter",
              "\"X.Y.Z.1.W\": R has no such member", NULL);
    json_decref(call);
    gw_apispec_free(s);

    /* Objects nested 40 deep without recursion (the loader refused 17): the limit is the call's. */
    char *text = chain_description(40, false);
    s = load_text(text);
    free(text);
    assert_non_null(s);
    call = chain_call(LIMIT);
    expect_at(__FILE__, __LINE__, s, "s", "1", "A", call, NULL, NULL, NULL);
    json_decref(call);
    call = chain_call(LIMIT + 1);
    char path[PATH_LEN], want[PATH_LEN];
    size_t len = 0;
    path[0] = '\0';
    for (unsigned level = 2; level <= LIMIT + 1; level++) {
        append(path, sizeof path, &len, level == 2 ? "X" : ".X");
    }
    struct gw_apispec_verdict v =
        expect_at(__FILE__, __LINE__, s, "s", "1", "A", call, "InvalidParameterValue", NULL, NULL);
    assert_string_equal(v.message, too_deep(want, sizeof want, path));
    json_decref(call);
    gw_apispec_free(s);

    /*
     * A chain of 50000 objects loads on a thread of 1 MiB: the loader's walk over what an input
     * reaches keeps its own stack, so a long description cannot exhaust the thread's.
     */
    text = chain_description(50000, true);
    struct load_job job = {.text = text, .spec = NULL};
    pthread_attr_t attr;
    pthread_t t;
    assert_int_equal(pthread_attr_init(&attr), 0);
    assert_int_equal(pthread_attr_setstacksize(&attr, (size_t)1 << 20), 0);
    assert_int_equal(pthread_create(&t, &attr, load_main, &job), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(pthread_attr_destroy(&attr), 0);
    free(text);
    assert_non_null(job.spec);
    assert_int_equal(gw_apispec_action_count(job.spec), 1);
    gw_apispec_free(job.spec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_loads),   cmocka_unit_test(test_within_depth),
        cmocka_unit_test(test_beyond_depth), cmocka_unit_test(test_problems_deep),
        cmocka_unit_test(test_order),        cmocka_unit_test(test_stack_bounded),
        cmocka_unit_test(test_long_names),   cmocka_unit_test(test_formerly_refused),
    };
    return cmocka_run_group_tests_name("apispec_recursive", tests, load_all, free_all) == 0 ? 0 : 1;
}
