/* Unit tests for idem/shared's pure parts: the record's key (names made safe, bounded, the hash
 * telling tokens apart) and the claim script's replies read back (claimed, pending, conflict,
 * done with its answer, and every malformed reply refused). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <hiredis/hiredis.h>
#include <stdlib.h>
#include <string.h>

#include "idem/shared.h"

static void key_of(const char *token, struct gw_idem_key *k)
{
    gw_idem_key_make("app", "gaap", "ModifyProxyConfiguration", token, "{}", 2, k);
}

static void test_key_format(void **state)
{
    (void)state;
    struct gw_idem_key k;
    char out[GW_IDEM_SHARED_KEY_MAX];
    key_of("tok", &k);
    assert_int_equal(
        gw_idem_shared_key("tcgw", "app", "gaap", "ModifyProxyConfiguration", &k, out, sizeof out),
        GW_OK);
    const char *head = "tcgw:idem:app:gaap:ModifyProxyConfiguration:";
    assert_memory_equal(out, head, strlen(head));
    assert_int_equal(strlen(out), strlen(head) + 2 * GW_IDEM_HASH_BYTES);
    for (const char *c = out + strlen(head); *c != '\0'; c++) {
        assert_non_null(strchr("0123456789abcdef", *c));
    }
    /* Another token: another key. */
    struct gw_idem_key k2;
    char out2[GW_IDEM_SHARED_KEY_MAX];
    key_of("tok2", &k2);
    assert_int_equal(gw_idem_shared_key("tcgw", "app", "gaap", "ModifyProxyConfiguration", &k2,
                                        out2, sizeof out2),
                     GW_OK);
    assert_string_not_equal(out, out2);
}

static void test_key_names_made_safe(void **state)
{
    (void)state;
    struct gw_idem_key k;
    char out[GW_IDEM_SHARED_KEY_MAX];
    key_of("tok", &k);
    assert_int_equal(gw_idem_shared_key("p", "a:b c", "s\n", "x\x7f", &k, out, sizeof out), GW_OK);
    assert_memory_equal(out, "p:idem:a_b_c:s_:x_:", strlen("p:idem:a_b_c:s_:x_:"));
}

static void test_key_too_large(void **state)
{
    (void)state;
    struct gw_idem_key k;
    char out[GW_IDEM_SHARED_KEY_MAX];
    char small[40];
    char big[GW_IDEM_SHARED_KEY_MAX + 8];
    key_of("tok", &k);
    memset(small, 'x', sizeof small);
    assert_int_equal(gw_idem_shared_key("tcgw", "app", "gaap", "Act", &k, small, sizeof small),
                     GW_ERR_TOO_LARGE);
    assert_int_equal(small[0], 'x'); /* untouched */
    memset(big, 'c', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(gw_idem_shared_key("tcgw", big, "gaap", "Act", &k, out, sizeof out),
                     GW_ERR_TOO_LARGE);
    assert_int_equal(gw_idem_shared_key(big, "app", "gaap", "Act", &k, out, sizeof out),
                     GW_ERR_TOO_LARGE);
}

/* Replies built by hand, as hiredis would hand them over. */
static redisReply integer(long long v)
{
    return (redisReply){.type = REDIS_REPLY_INTEGER, .integer = v};
}

static redisReply string(const char *s, size_t len)
{
    return (redisReply){.type = REDIS_REPLY_STRING, .str = (char *)s, .len = len};
}

static redisReply array(redisReply **elements, size_t n)
{
    return (redisReply){.type = REDIS_REPLY_ARRAY, .element = elements, .elements = n};
}

static void test_parse_states(void **state)
{
    (void)state;
    struct gw_idem_answer a = {0};
    long long codes[] = {1, 2, 3};
    enum gw_idem_shared_reply want[] = {GW_IDEM_SHARED_R_CLAIMED, GW_IDEM_SHARED_R_PENDING,
                                        GW_IDEM_SHARED_R_CONFLICT};
    for (size_t i = 0; i < 3; i++) {
        redisReply one = integer(codes[i]);
        redisReply *el[] = {&one};
        redisReply r = array(el, 1);
        assert_int_equal(gw_idem_shared_parse(&r, &a), want[i]);
    }
    assert_null(a.body);
}

static void test_parse_done(void **state)
{
    (void)state;
    static const char body[] = "{\"Response\":{}}\0tail"; /* bytes, NUL included */
    redisReply code = integer(4), st = string("200", 3), b = string(body, sizeof body - 1);
    redisReply *el[] = {&code, &st, &b};
    redisReply r = array(el, 3);
    struct gw_idem_answer a = {0};
    assert_int_equal(gw_idem_shared_parse(&r, &a), GW_IDEM_SHARED_R_DONE);
    assert_int_equal(a.status, 200);
    assert_int_equal(a.len, sizeof body - 1);
    assert_memory_equal(a.body, body, sizeof body - 1);
    free(a.body);
}

static void test_parse_bad(void **state)
{
    (void)state;
    struct gw_idem_answer a = {0};
    assert_int_equal(gw_idem_shared_parse(NULL, &a), GW_IDEM_SHARED_R_BAD);
    redisReply err = {.type = REDIS_REPLY_ERROR, .str = "NOSCRIPT", .len = 8};
    assert_int_equal(gw_idem_shared_parse(&err, &a), GW_IDEM_SHARED_R_BAD);
    redisReply empty = array(NULL, 0);
    assert_int_equal(gw_idem_shared_parse(&empty, &a), GW_IDEM_SHARED_R_BAD);
    redisReply nine = integer(9);
    redisReply *el1[] = {&nine};
    redisReply unknown = array(el1, 1);
    assert_int_equal(gw_idem_shared_parse(&unknown, &a), GW_IDEM_SHARED_R_BAD);
    /* done with a status that is not one, or a body over the maximum */
    const char *statuses[] = {"", "2x0", "1234", "99"};
    for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++) {
        redisReply code = integer(4), st = string(statuses[i], strlen(statuses[i])),
                   b = string("x", 1);
        redisReply *el[] = {&code, &st, &b};
        redisReply r = array(el, 3);
        assert_int_equal(gw_idem_shared_parse(&r, &a), GW_IDEM_SHARED_R_BAD);
    }
    char *huge = calloc(1, GW_IDEM_SHARED_MAX_ANSWER + 1);
    assert_non_null(huge);
    redisReply code = integer(4), st = string("200", 3),
               b = string(huge, GW_IDEM_SHARED_MAX_ANSWER + 1);
    redisReply *el[] = {&code, &st, &b};
    redisReply r = array(el, 3);
    assert_int_equal(gw_idem_shared_parse(&r, &a), GW_IDEM_SHARED_R_BAD);
    /* done without its answer */
    redisReply short_done = array(el, 2);
    assert_int_equal(gw_idem_shared_parse(&short_done, &a), GW_IDEM_SHARED_R_BAD);
    /* claimed with extra elements */
    redisReply one = integer(1);
    redisReply *el2[] = {&one, &one};
    redisReply extra = array(el2, 2);
    assert_int_equal(gw_idem_shared_parse(&extra, &a), GW_IDEM_SHARED_R_BAD);
    free(huge);
    assert_null(a.body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_format),    cmocka_unit_test(test_key_names_made_safe),
        cmocka_unit_test(test_key_too_large), cmocka_unit_test(test_parse_states),
        cmocka_unit_test(test_parse_done),    cmocka_unit_test(test_parse_bad),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
