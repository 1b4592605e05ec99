/*
 * Tests of apispec against Tencent's own files in ../shared (TCGW_SHARED_DIR): the full
 * description of GAAP 2018-05-29 in the Tencent Cloud CLI's format must load, all of its official
 * examples must pass it (and, for the actions the gateway ships, specs/gaap too), and mutations
 * of every example must be refused with the right code.
 *
 * When the reference directory is absent this program says so and exits 77, which ctest reports
 * as skipped: a missing reference must never look like a pass.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "apispec/apispec.h"

#define SVC "gaap"
#define VER "2018-05-29"
#define PATH_LEN 4096
#define EXIT_SKIP 77

static struct gw_apispec *shipped;
static const char *reference; /* Tencent's files: the reference directory */

/* Returns the reference directory of Tencent's files, or NULL when absent (why in why). */
static const char *reference_dir(char *why, size_t n)
{
    static char dir[PATH_LEN];
    const char *shared = getenv("TCGW_SHARED_DIR");
    struct stat st;
    snprintf(dir, sizeof dir, "%s/reference/tccli-gaap-v20180529",
             shared != NULL ? shared : "../../shared");
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(why, n, "%s is not a directory%s", dir,
                 shared == NULL ? " (TCGW_SHARED_DIR is not set)" : "");
        return NULL;
    }
    return dir;
}

static bool utf8_valid(const char *s)
{
    json_t *j = json_string(s); /* Jansson validates UTF-8 */
    bool ok = j != NULL;
    json_decref(j);
    return ok;
}

static int load_shipped(void **state)
{
    (void)state;
    char dir[PATH_LEN], msg[512];
    const char *src = getenv("TCGW_SOURCE_DIR");
    snprintf(dir, sizeof dir, "%s/specs", src != NULL ? src : "..");
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

struct example {
    char action[128];
    json_t *body; /* new */
};

/* Splits one example's HTTP request text: X-TC-Action header, then the body after a blank line. */
static bool parse_example(const char *text, struct example *ex)
{
    const char *body = strstr(text, "\n\n");
    size_t skip = 2;
    const char *crlf = strstr(text, "\r\n\r\n");
    if (crlf != NULL && (body == NULL || crlf < body)) {
        body = crlf;
        skip = 4;
    }
    if (body == NULL) {
        return false;
    }
    ex->action[0] = '\0';
    for (const char *line = text; line < body;) {
        const char *end = strchr(line, '\n');
        if (end == NULL || end > body) {
            end = body;
        }
        static const char header[] = "X-TC-Action:";
        if (strncasecmp(line, header, sizeof header - 1) == 0) {
            const char *v = line + sizeof header - 1;
            while (v < end && (*v == ' ' || *v == '\t')) {
                v++;
            }
            size_t n = (size_t)(end - v);
            while (n > 0 && (v[n - 1] == '\r' || v[n - 1] == ' ')) {
                n--;
            }
            if (n >= sizeof ex->action) {
                return false;
            }
            memcpy(ex->action, v, n);
            ex->action[n] = '\0';
        }
        line = end + 1;
    }
    json_error_t jerr;
    ex->body = json_loads(body + skip, JSON_REJECT_DUPLICATES, &jerr);
    return ex->action[0] != '\0' && ex->body != NULL;
}

static json_t *load_json(const char *dir, const char *name)
{
    char path[PATH_LEN];
    json_error_t jerr;
    int n = snprintf(path, sizeof path, "%s/%s", dir, name);
    assert_true(n > 0 && (size_t)n < sizeof path);
    json_t *j = json_load_file(path, 0, &jerr);
    if (j == NULL) {
        print_error("%s: %s\n", path, jerr.text);
    }
    return j;
}

static struct gw_apispec *load_tencent(const char *ref)
{
    char msg[512];
    struct gw_apispec *spec = NULL;
    if (gw_apispec_load_dir(ref, &spec, msg, sizeof msg) != GW_OK) {
        print_error("cannot load Tencent's description: %s\n", msg);
        return NULL;
    }
    return spec;
}

static bool check_quiet(const struct gw_apispec *spec, const char *action, const json_t *body,
                        const char *code, const char *sub)
{
    struct gw_apispec_verdict v;
    bool ok = gw_apispec_check(spec, SVC, VER, action, body, &v);
    if (code == NULL) {
        if (!ok) {
            print_error("%s: refused: %s %s\n", action, v.code, v.message);
        }
        return ok;
    }
    if (ok || strcmp(v.code, code) != 0 || (sub != NULL && strstr(v.message, sub) == NULL) ||
        !utf8_valid(v.message)) {
        print_error("%s: expected %s with \"%s\", got %s: %s\n", action, code, sub ? sub : "",
                    ok ? "(pass)" : v.code, ok ? "" : v.message);
        return false;
    }
    return true;
}

/*
 * Prints, and counts, the integers that an example sends as strings: Tencent accepts them, and so
 * does apispec, but a stricter checker would refuse these official examples.
 */
static size_t note_int_strings(const json_t *objects, const char *object, const json_t *value,
                               const char *action, const char *path)
{
    size_t found = 0;
    const json_t *members = json_object_get(json_object_get(objects, object), "members");
    for (size_t i = 0; i < json_array_size(members); i++) {
        const json_t *m = json_array_get(members, i);
        const char *name = json_string_value(json_object_get(m, "name"));
        const char *type = json_string_value(json_object_get(m, "type"));
        const char *elem = json_string_value(json_object_get(m, "member"));
        const json_t *v = json_object_get(value, name);
        if (v == NULL || name == NULL || type == NULL || elem == NULL) {
            continue;
        }
        bool list = strcmp(type, "list") == 0;
        for (size_t k = 0; k < (list ? json_array_size(v) : 1); k++) {
            const json_t *item = list ? json_array_get(v, k) : v;
            char sub[512];
            if (list) {
                snprintf(sub, sizeof sub, "%s%s%s.%zu", path, *path ? "." : "", name, k);
            } else {
                snprintf(sub, sizeof sub, "%s%s%s", path, *path ? "." : "", name);
            }
            if (json_object_get(objects, elem) != NULL) {
                found += note_int_strings(objects, elem, item, action, sub);
            } else if ((strcmp(elem, "int64") == 0 || strcmp(elem, "uint64") == 0) &&
                       json_is_string(item)) {
                print_message("[  NOTE    ] example %s: %s is an integer sent as the string \"%s\" "
                              "(accepted, as Tencent accepts it)\n",
                              action, sub, json_string_value(item));
                found++;
            }
        }
    }
    return found;
}

static void test_tencent_examples(void **state)
{
    (void)state;
    const char *ref = reference;
    struct gw_apispec *spec = load_tencent(ref);
    assert_non_null(spec);
    assert_int_equal(gw_apispec_action_count(spec), 102);
    json_t *examples = load_json(ref, "examples.json");
    assert_non_null(examples);
    json_t *actions = json_object_get(examples, "actions");
    assert_true(json_is_object(actions));

    json_t *api = load_json(ref, "api.json");
    assert_non_null(api);
    size_t total = 0, passed = 0, shipped_total = 0, shipped_passed = 0, int_strings = 0;
    const char *name;
    json_t *list;
    json_object_foreach (actions, name, list) {
        for (size_t i = 0; i < json_array_size(list); i++) {
            struct example ex;
            const char *input =
                json_string_value(json_object_get(json_array_get(list, i), "input"));
            total++;
            if (input == NULL || !parse_example(input, &ex)) {
                print_error("example %s[%zu]: cannot split its HTTP text\n", name, i);
                continue;
            }
            if (strcmp(ex.action, name) != 0) {
                print_error("example %s[%zu]: X-TC-Action says %s\n", name, i, ex.action);
            } else if (check_quiet(spec, ex.action, ex.body, NULL, NULL)) {
                passed++;
                const char *input_object = json_string_value(json_object_get(
                    json_object_get(json_object_get(api, "actions"), name), "input"));
                int_strings += note_int_strings(json_object_get(api, "objects"), input_object,
                                                ex.body, name, "");
            } else {
                print_error("example %s[%zu] refused by Tencent's own description\n", name, i);
            }
            /* The actions that the gateway ships must pass its stricter description too. */
            struct gw_apispec_verdict v;
            bool ours = gw_apispec_check(shipped, SVC, VER, ex.action, ex.body, &v);
            if (ours || strcmp(v.code, "InvalidAction") != 0) {
                shipped_total++;
                if (ours) {
                    shipped_passed++;
                } else {
                    print_error("example %s[%zu] refused by specs/: %s %s\n", name, i, v.code,
                                v.message);
                }
            }
            json_decref(ex.body);
        }
    }
    print_message("[  INFO    ] Tencent examples: %zu/%zu pass Tencent's description; %zu/%zu of "
                  "the shipped actions pass specs/gaap\n",
                  passed, total, shipped_passed, shipped_total);
    print_message("[  INFO    ] %zu integers in the examples are sent as strings\n", int_strings);
    assert_int_equal(total, 104);
    assert_int_equal(passed, 104);
    assert_int_equal(shipped_total, 4);
    assert_int_equal(shipped_passed, 4);
    json_decref(examples);
    json_decref(api);
    gw_apispec_free(spec);
}

/*
 * Mutations of every example: an unknown key at the top and inside each object value, null for
 * each present member, and each required top-level member removed.
 */
static void test_tencent_mutations(void **state)
{
    (void)state;
    const char *ref = reference;
    struct gw_apispec *spec = load_tencent(ref);
    assert_non_null(spec);
    json_t *examples = load_json(ref, "examples.json");
    json_t *api = load_json(ref, "api.json");
    assert_non_null(examples);
    assert_non_null(api);
    json_t *objects = json_object_get(api, "objects");

    size_t mutations = 0, failures = 0;
    const char *name;
    json_t *list;
    json_object_foreach (json_object_get(examples, "actions"), name, list) {
        const char *input = json_string_value(
            json_object_get(json_object_get(json_object_get(api, "actions"), name), "input"));
        json_t *members = json_object_get(json_object_get(objects, input), "members");
        for (size_t i = 0; i < json_array_size(list); i++) {
            struct example ex;
            const char *text = json_string_value(json_object_get(json_array_get(list, i), "input"));
            assert_true(text != NULL && parse_example(text, &ex));
            json_t *body = ex.body;
            char sub[256];

            json_t *m = json_deep_copy(body);
            json_object_set_new(m, "TcgwBogus", json_integer(1));
            failures += !check_quiet(spec, name, m, "UnknownParameter", "\"TcgwBogus\"");
            mutations++;
            json_decref(m);

            const char *key;
            json_t *val;
            json_object_foreach (body, key, val) {
                m = json_deep_copy(body);
                json_object_set_new(m, key, json_null());
                snprintf(sub, sizeof sub, "\"%s\" must be", key);
                failures += !check_quiet(spec, name, m, "InvalidParameter", sub);
                mutations++;
                json_decref(m);

                json_t *inner = json_is_object(val) ? val : json_array_get(val, 0);
                if (!json_is_object(inner)) {
                    continue;
                }
                m = json_deep_copy(body);
                json_t *target = json_object_get(m, key);
                json_object_set_new(json_is_object(target) ? target : json_array_get(target, 0),
                                    "TcgwBogus", json_true());
                snprintf(sub, sizeof sub, "\"%s%s.TcgwBogus\"", key,
                         json_is_object(val) ? "" : ".0");
                failures += !check_quiet(spec, name, m, "UnknownParameter", sub);
                mutations++;
                json_decref(m);
            }

            for (size_t k = 0; k < json_array_size(members); k++) {
                json_t *mem = json_array_get(members, k);
                const char *mname = json_string_value(json_object_get(mem, "name"));
                if (!json_is_true(json_object_get(mem, "required"))) {
                    continue;
                }
                m = json_deep_copy(body);
                if (json_object_del(m, mname) != 0) {
                    print_error("example %s[%zu] lacks required %s\n", name, i, mname);
                    failures++;
                } else {
                    snprintf(sub, sizeof sub, "Missing required parameter \"%s\"", mname);
                    failures += !check_quiet(spec, name, m, "MissingParameter", sub);
                    mutations++;
                }
                json_decref(m);
            }
            json_decref(body);
        }
    }
    print_message("[  INFO    ] %zu mutations of Tencent's examples, %zu not refused as expected\n",
                  mutations, failures);
    assert_int_equal(failures, 0);
    assert_true(mutations > 300);
    json_decref(examples);
    json_decref(api);
    gw_apispec_free(spec);
}

int main(void)
{
    char why[PATH_LEN + 64];
    reference = reference_dir(why, sizeof why);
    if (reference == NULL) {
        printf("SKIP: Tencent's reference files are not here: %s. These tests need "
               "TCGW_SHARED_DIR/reference/tccli-gaap-v20180529 (api.json, examples.json).\n",
               why);
        return EXIT_SKIP;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tencent_examples),
        cmocka_unit_test(test_tencent_mutations),
    };
    return cmocka_run_group_tests_name("apispec_reference", tests, load_shipped, free_shipped) == 0
               ? 0
               : 1;
}
