/* Unit tests for jsonpos: the line where a path of keys and list indices starts in JSON text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core/jsonpos.h"

#define N(steps) (sizeof(steps) / sizeof(steps)[0])
#define KEY(k)                                                                                     \
    {                                                                                              \
        (k), 0                                                                                     \
    }
#define ITEM(i)                                                                                    \
    {                                                                                              \
        NULL, (i)                                                                                  \
    }

static int line_of(const char *text, const struct gw_jsonpos_step *steps, size_t n)
{
    return gw_jsonpos_line(text, strlen(text), steps, n);
}

static int nearest_of(const char *text, const struct gw_jsonpos_step *steps, size_t n)
{
    return gw_jsonpos_nearest(text, strlen(text), steps, n);
}

/* A configuration-like document: objects in objects. */
static const char config[] = "{\n"                                     /* 1 */
                             "    \"listen_port\": 8080,\n"            /* 2 */
                             "    \"tls\": {\n"                        /* 3 */
                             "        \"accept\": [\"token\",\n"       /* 4 */
                             "                   \"sdk_key\"],\n"      /* 5 */
                             "        \"key_file\": \"k.pem\"\n"       /* 6 */
                             "    },\n"                                /* 7 */
                             "    \"upstream\": {\"timeout_ms\": 5}\n" /* 8 */
                             "}\n";

static void test_nested_objects(void **state)
{
    (void)state;
    const struct gw_jsonpos_step port[] = {KEY("listen_port")};
    const struct gw_jsonpos_step tls[] = {KEY("tls")};
    const struct gw_jsonpos_step key_file[] = {KEY("tls"), KEY("key_file")};
    const struct gw_jsonpos_step timeout[] = {KEY("upstream"), KEY("timeout_ms")};
    const struct gw_jsonpos_step second[] = {KEY("tls"), KEY("accept"), ITEM(1)};

    assert_int_equal(line_of(config, port, N(port)), 2);
    assert_int_equal(line_of(config, tls, N(tls)), 3);
    assert_int_equal(line_of(config, key_file, N(key_file)), 6);
    assert_int_equal(line_of(config, timeout, N(timeout)), 8);
    assert_int_equal(line_of(config, second, N(second)), 5);
    /* No step: the top value. */
    assert_int_equal(line_of(config, NULL, 0), 1);
    assert_int_equal(line_of("\n\n  {}", NULL, 0), 3);
}

static void test_missing_steps(void **state)
{
    (void)state;
    const struct gw_jsonpos_step absent[] = {KEY("tls"), KEY("cert_file")};
    const struct gw_jsonpos_step too_deep[] = {KEY("tls"), KEY("key_file"), KEY("x")};
    const struct gw_jsonpos_step third[] = {KEY("tls"), KEY("accept"), ITEM(2)};
    const struct gw_jsonpos_step nowhere[] = {KEY("nowhere"), KEY("key_file")};
    const struct gw_jsonpos_step item_of_object[] = {KEY("tls"), ITEM(1)};

    /* gw_jsonpos_line: 0 unless every step is found. */
    assert_int_equal(line_of(config, absent, N(absent)), 0);
    assert_int_equal(line_of(config, too_deep, N(too_deep)), 0);
    assert_int_equal(line_of(config, third, N(third)), 0);
    assert_int_equal(line_of(config, nowhere, N(nowhere)), 0);
    assert_int_equal(line_of(config, item_of_object, N(item_of_object)), 0);

    /* gw_jsonpos_nearest: the last step that was found, or the top value. */
    assert_int_equal(nearest_of(config, absent, N(absent)), 3);
    assert_int_equal(nearest_of(config, too_deep, N(too_deep)), 6);
    assert_int_equal(nearest_of(config, third, N(third)), 4);
    assert_int_equal(nearest_of(config, nowhere, N(nowhere)), 1);
    assert_int_equal(nearest_of(config, item_of_object, N(item_of_object)), 3);
    assert_int_equal(nearest_of("\n[1]", absent, N(absent)), 2);

    /* A key step on a list, an index step past the end, an empty text. */
    const struct gw_jsonpos_step key[] = {KEY("a")};
    const struct gw_jsonpos_step item[] = {ITEM(0)};
    assert_int_equal(line_of("[{\"a\": 1}]", key, N(key)), 0);
    assert_int_equal(line_of("[]", item, N(item)), 0);
    assert_int_equal(line_of("", key, N(key)), 0);
    assert_int_equal(nearest_of("", key, N(key)), 1);
    assert_int_equal(nearest_of("\n\n", key, N(key)), 3);
}

/* A policy-like document: lists of objects holding lists. */
static const char policy[] = "{\"statement\": [\n"                   /* 1 */
                             "  {\"effect\": \"allow\",\n"           /* 2 */
                             "   \"action\": \"gaap:Describe*\"},\n" /* 3 */
                             "  {\"effect\": \"deny\",\n"            /* 4 */
                             "   \"action\": [\"gaap:Create*\",\n"   /* 5 */
                             "              \"gaap:Delete*\",\n"     /* 6 */
                             "              [[1,\n"                  /* 7 */
                             "                2]]]}\n"               /* 8 */
                             "]}\n";

static void test_lists(void **state)
{
    (void)state;
    const struct gw_jsonpos_step st1[] = {KEY("statement"), ITEM(1)};
    const struct gw_jsonpos_step st1_action1[] = {KEY("statement"), ITEM(1), KEY("action"),
                                                  ITEM(1)};
    const struct gw_jsonpos_step st1_inner[] = {KEY("statement"), ITEM(1), KEY("action"),
                                                ITEM(2),          ITEM(0), ITEM(1)};
    const struct gw_jsonpos_step st2[] = {KEY("statement"), ITEM(2)};

    assert_int_equal(line_of(policy, st1, N(st1)), 4);
    assert_int_equal(line_of(policy, st1_action1, N(st1_action1)), 6);
    assert_int_equal(line_of(policy, st1_inner, N(st1_inner)), 8);
    assert_int_equal(line_of(policy, st2, N(st2)), 0);
    assert_int_equal(nearest_of(policy, st2, N(st2)), 1);

    const struct gw_jsonpos_step top_item[] = {ITEM(2)};
    assert_int_equal(line_of("[1,\n{},\n\n  \"x\"]", top_item, N(top_item)), 4);
}

/* A bare value stands for a list of one: its item 0 is the value itself, no other item exists. */
static void test_bare_value_is_a_list_of_one(void **state)
{
    (void)state;
    const struct gw_jsonpos_step item0[] = {KEY("statement"), ITEM(0), KEY("action"), ITEM(0)};
    const struct gw_jsonpos_step item1[] = {KEY("statement"), ITEM(0), KEY("action"), ITEM(1)};
    const char *bare = "{\"statement\": [{\"action\":\n\n\"gaap:Describe*\"}]}";

    assert_int_equal(line_of(policy, item0, N(item0)), 3);
    assert_int_equal(line_of(bare, item0, N(item0)), 3);
    assert_int_equal(line_of(bare, item1, N(item1)), 0);
    assert_int_equal(nearest_of(bare, item1, N(item1)), 1);
    /* A single statement object, not in a list: still statement 0. */
    const struct gw_jsonpos_step effect[] = {KEY("statement"), ITEM(0), KEY("effect")};
    assert_int_equal(line_of("{\"statement\":\n{\n\"effect\": 1}}", effect, N(effect)), 3);
}

/* Keys are compared as written: escapes are not decoded (documented in jsonpos.h). */
static void test_keys_written_with_escapes(void **state)
{
    (void)state;
    const char *text = "{\"tls\": {\n"
                       "\"key\\u005ffile\": 1,\n"
                       "\"a\\\"b\": 2,\n"
                       "\"c\\\\\": 3}}";
    const struct gw_jsonpos_step decoded[] = {KEY("tls"), KEY("key_file")};
    const struct gw_jsonpos_step written[] = {KEY("tls"), KEY("key\\u005ffile")};
    const struct gw_jsonpos_step quote[] = {KEY("tls"), KEY("a\\\"b")};
    const struct gw_jsonpos_step backslash[] = {KEY("tls"), KEY("c\\\\")};
    const struct gw_jsonpos_step quote_decoded[] = {KEY("tls"), KEY("a\"b")};

    assert_int_equal(line_of(text, decoded, N(decoded)), 0);
    assert_int_equal(nearest_of(text, decoded, N(decoded)), 1);
    assert_int_equal(line_of(text, written, N(written)), 2);
    assert_int_equal(line_of(text, quote, N(quote)), 3);
    assert_int_equal(line_of(text, backslash, N(backslash)), 4);
    assert_int_equal(line_of(text, quote_decoded, N(quote_decoded)), 0);
}

/* Braces, brackets, quotes, colons and commas inside strings are not structure. */
static void test_strings_holding_structure(void **state)
{
    (void)state;
    const char *text = "{\"a\": \"}{][\\\"\",\n"
                       "\"b\": [\"]\", \"\\\"]\", {\"}\": \"{\"}],\n"
                       "\"c}\\\"\": {\"x\": \",:\\\\\"},\n"
                       "\"target\": {\"in\": [\"\\\\\", \"[\", \"x\"]}}";
    const struct gw_jsonpos_step target[] = {KEY("target"), KEY("in"), ITEM(2)};
    const struct gw_jsonpos_step b2[] = {KEY("b"), ITEM(2), KEY("}")};
    const struct gw_jsonpos_step odd_key[] = {KEY("c}\\\""), KEY("x")};

    assert_int_equal(line_of(text, target, N(target)), 4);
    assert_int_equal(line_of(text, b2, N(b2)), 2);
    assert_int_equal(line_of(text, odd_key, N(odd_key)), 3);
}

/* The first of two equal keys is found, and a key of the same name deeper down is not. */
static void test_duplicate_keys(void **state)
{
    (void)state;
    const char *text = "{\"x\": {\"a\": 0},\n"
                       "\"a\": {\"b\": 1},\n"
                       "\"a\": {\"b\": 2,\n"
                       "\"c\": 3}}";
    const struct gw_jsonpos_step a[] = {KEY("a")};
    const struct gw_jsonpos_step b[] = {KEY("a"), KEY("b")};
    const struct gw_jsonpos_step c[] = {KEY("a"), KEY("c")};

    assert_int_equal(line_of(text, a, N(a)), 2);
    assert_int_equal(line_of(text, b, N(b)), 2);
    /* Only the first "a" is searched. */
    assert_int_equal(line_of(text, c, N(c)), 0);
    assert_int_equal(nearest_of(text, c, N(c)), 2);
}

static void test_line_breaks_and_space(void **state)
{
    (void)state;
    const char *text = "\r\n\t{ \"a\"\r\n :\r\n\t[ 1 ,\r\n\r\n true , null,-2.5e3 ] ,\"b\" : 0 }";
    const struct gw_jsonpos_step a3[] = {KEY("a"), ITEM(3)};
    const struct gw_jsonpos_step b[] = {KEY("b")};

    assert_int_equal(line_of(text, a3, N(a3)), 6);
    assert_int_equal(line_of(text, b, N(b)), 6);
    assert_int_equal(line_of(text, NULL, 0), 2);
}

static void test_null_text(void **state)
{
    (void)state;
    const struct gw_jsonpos_step a[] = {KEY("a")};
    assert_int_equal(gw_jsonpos_line(NULL, 0, a, N(a)), 0);
    assert_int_equal(gw_jsonpos_nearest(NULL, 0, a, N(a)), 0);
    assert_int_equal(gw_jsonpos_line(NULL, 0, NULL, 0), 0);
    assert_int_equal(gw_jsonpos_too_deep(NULL, 0, 0), 0);
}

/* Runs every function on text[0..len) copied to an allocation of exactly len bytes (no NUL). */
static void scan_exact(const char *text, size_t len, const struct gw_jsonpos_step *steps, size_t n,
                       int *line, int *nearest)
{
    char *copy = malloc(len > 0 ? len : 1);
    assert_non_null(copy);
    memcpy(copy, text, len);
    *line = gw_jsonpos_line(copy, len, steps, n);
    *nearest = gw_jsonpos_nearest(copy, len, steps, n);
    assert_true(*nearest >= 1);
    assert_true(gw_jsonpos_too_deep(copy, len, 2) >= 0);
    free(copy);
}

/*
 * Every prefix of a document: nothing is read past len (AddressSanitizer watches the copy), and a
 * path found in a prefix is found on the line the whole text gives.
 */
static void test_truncated_text(void **state)
{
    (void)state;
    const struct gw_jsonpos_step paths[][6] = {
        {KEY("statement"), ITEM(1), KEY("action"), ITEM(2), ITEM(0), ITEM(1)},
        {KEY("statement"), ITEM(0), KEY("action"), ITEM(0)},
        {KEY("statement"), ITEM(1), KEY("effect")},
    };
    const size_t lengths[] = {6, 4, 3};
    const char *texts[] = {policy, config, "{\"a\\\"\": \"\\\\\", \"b\\\\\"\\\": [\"\\u00\"]}"};

    for (size_t t = 0; t < sizeof texts / sizeof texts[0]; t++) {
        size_t len = strlen(texts[t]);
        for (size_t p = 0; p < sizeof paths / sizeof paths[0]; p++) {
            int full = gw_jsonpos_line(texts[t], len, paths[p], lengths[p]);
            for (size_t cut = 0; cut <= len; cut++) {
                int line, nearest;
                scan_exact(texts[t], cut, paths[p], lengths[p], &line, &nearest);
                if (line != 0 && line != full) {
                    fail_msg("text %zu, path %zu, cut at %zu: line %d, whole text %d", t, p, cut,
                             line, full);
                }
            }
        }
    }
}

/* Malformed text: some line or 0, no crash, no read outside the bytes given. */
static void test_malformed_text(void **state)
{
    (void)state;
    const char *texts[] = {
        "{",
        "}",
        "]]]}}}",
        "{\"",
        "{\"a",
        "{\"a\"",
        "{\"a\":",
        "{\"a\" 1}",
        "{\"a\":}",
        "{,}",
        "{\"a\\",
        "\"",
        "\\",
        "[,,,]",
        "[1 2 3]",
        "{\"a\":1 \"a\":2}",
        "{\"x\":{\"a\":1}}}}, \"a\": 1}",
        "{\"a\":[}]}",
        "{\"a\":\"\\\"",
        "\n\n{\"b\":\n[\n",
        "{:::}",
        "{\"a\"::[[]]}",
        "nul",
        "{\"a\"\n:\n[\n\"",
    };
    const struct gw_jsonpos_step a[] = {KEY("a"), ITEM(0)};
    const struct gw_jsonpos_step b[] = {KEY("b"), ITEM(3), KEY("c")};

    int line, nearest;
    for (size_t t = 0; t < sizeof texts / sizeof texts[0]; t++) {
        scan_exact(texts[t], strlen(texts[t]), a, N(a), &line, &nearest);
        scan_exact(texts[t], strlen(texts[t]), b, N(b), &line, &nearest);
        assert_int_equal(line, 0);
    }

    /* A NUL byte where a value stands is skipped as part of it, not taken for an end. */
    static const char nul_in_list[] = "{\"a\": [\0, 1],\n\"b\": 1}";
    static const char nul_in_item[] = "[[\0],\n1]";
    const struct gw_jsonpos_step b_only[] = {KEY("b")};
    const struct gw_jsonpos_step item1[] = {ITEM(1)};
    scan_exact(nul_in_list, sizeof nul_in_list - 1, b_only, N(b_only), &line, &nearest);
    assert_int_equal(line, 2);
    scan_exact(nul_in_item, sizeof nul_in_item - 1, item1, N(item1), &line, &nearest);
    assert_int_equal(line, 2);

    /* A key cut short is not taken for a shorter one; a key needs its ':'. */
    const struct gw_jsonpos_step a_only[] = {KEY("a")};
    scan_exact("{\"ab", 4, a_only, N(a_only), &line, &nearest);
    assert_int_equal(line, 0);
    scan_exact("{\"a\\\"", 5, a_only, N(a_only), &line, &nearest);
    assert_int_equal(line, 0);
    scan_exact("{\"a\"", 4, a_only, N(a_only), &line, &nearest);
    assert_int_equal(line, 0);
    scan_exact("{\"a\":", 5, a_only, N(a_only), &line, &nearest);
    assert_int_equal(line, 1);
}

static void test_too_deep(void **state)
{
    (void)state;
    const char *text = "{\"a\": [\n"
                       "  {\"b\": \"[[[[{{{{\\\"[[[[\"},\n"
                       "  [[\n"
                       "   [1]]]]}";
    assert_int_equal(gw_jsonpos_too_deep(text, strlen(text), 5), 0);
    assert_int_equal(gw_jsonpos_too_deep(text, strlen(text), 4), 4);
    assert_int_equal(gw_jsonpos_too_deep(text, strlen(text), 3), 3);
    assert_int_equal(gw_jsonpos_too_deep(text, strlen(text), 2), 2);
    assert_int_equal(gw_jsonpos_too_deep(text, strlen(text), 1), 1);
    assert_int_equal(gw_jsonpos_too_deep(text, strlen(text), 0), 1);
    assert_int_equal(gw_jsonpos_too_deep("", 0, 0), 0);
    /* Closing more than was opened does not let a later opening go unseen. */
    assert_int_equal(gw_jsonpos_too_deep("]]]]\n[[", 7, 1), 2);
    /* A string left open to the end, ending in a backslash: nothing read past len. */
    int line, nearest;
    scan_exact("[\"[[[\\", 6, NULL, 0, &line, &nearest);
    assert_int_equal(gw_jsonpos_too_deep("[\"[[[\\", 6, 1), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nested_objects),
        cmocka_unit_test(test_missing_steps),
        cmocka_unit_test(test_lists),
        cmocka_unit_test(test_bare_value_is_a_list_of_one),
        cmocka_unit_test(test_keys_written_with_escapes),
        cmocka_unit_test(test_strings_holding_structure),
        cmocka_unit_test(test_duplicate_keys),
        cmocka_unit_test(test_line_breaks_and_space),
        cmocka_unit_test(test_null_text),
        cmocka_unit_test(test_truncated_text),
        cmocka_unit_test(test_malformed_text),
        cmocka_unit_test(test_too_deep),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
