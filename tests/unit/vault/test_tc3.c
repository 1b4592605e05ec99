/*
 * Unit tests for gateway/vault/tc3.c: every known-answer vector of tests/data/tc3-vectors.json with
 * its intermediates, and bad input. test_tc3_reference.c checks that file against ../shared.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <limits.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vault/tc3.h"

#define OFFICIAL_FILE "tc3-official.json"
#define SDK_FILE "tc3-sdk.json"

/* tests/data/tc3-vectors.json, found from TCGW_SOURCE_DIR or from tests/ (ctest's directory). */
static json_t *load_vectors(void)
{
    char path[PATH_MAX];
    const char *src = getenv("TCGW_SOURCE_DIR");
    if (src != NULL) {
        snprintf(path, sizeof path, "%s/tests/data/tc3-vectors.json", src);
    } else {
        snprintf(path, sizeof path, "data/tc3-vectors.json");
    }
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    if (root == NULL) {
        fail_msg("cannot load %s: %s (line %d)", path, jerr.text, jerr.line);
    }
    return root;
}

static const char *str(json_t *v, const char *key)
{
    json_t *f = json_object_get(v, key);
    if (f == NULL || json_is_null(f)) {
        return NULL;
    }
    assert_true(json_is_string(f));
    return json_string_value(f);
}

static const char *need(json_t *v, const char *key)
{
    const char *s = str(v, key);
    if (s == NULL) {
        fail_msg("vector %s has no \"%s\"", str(v, "name"), key);
    }
    return s;
}

static struct gw_tc3_request request_of(json_t *v)
{
    json_t *payload = json_object_get(v, "payload");
    json_t *ts = json_object_get(v, "timestamp");
    assert_true(json_is_string(payload));
    assert_true(json_is_integer(ts));
    struct gw_tc3_request req = {
        .service = need(v, "service"),
        .host = need(v, "host"),
        .timestamp = (int64_t)json_integer_value(ts),
        .content_type = need(v, "contentType"),
        .payload = (const unsigned char *)json_string_value(payload),
        .payload_len = json_string_length(payload),
        .action = str(v, "action"),
    };
    return req;
}

static void sha256_hex(const void *p, size_t n, char out[GW_TC3_HEX_LEN + 1])
{
    unsigned char md[32];
    unsigned int len = 0;
    assert_int_equal(EVP_Digest(p, n, md, &len, EVP_sha256(), NULL), 1);
    for (size_t i = 0; i < 32; i++) {
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    }
}

static const char *last_line(const char *s)
{
    const char *nl = strrchr(s, '\n');
    return nl == NULL ? s : nl + 1;
}

static void check_vector(json_t *v)
{
    const char *name = need(v, "name");
    struct gw_tc3_request req = request_of(v);
    const char *secret_id = need(v, "secretId");
    const char *secret_key = need(v, "secretKey");
    char date[GW_TC3_DATE_LEN + 1];
    char hex[GW_TC3_HEX_LEN + 1];
    char sig[GW_TC3_HEX_LEN + 1];
    unsigned char key[GW_TC3_KEY_LEN];
    struct gw_buf b;
    gw_buf_init(&b, GW_TC3_MAX_TEXT);

    print_message("vector %s\n", name);

    assert_int_equal(gw_tc3_date(req.timestamp, date), GW_OK);
    assert_string_equal(date, need(v, "date"));

    /* The vector's own intermediates agree with each other. */
    sha256_hex(req.payload, req.payload_len, hex);
    assert_string_equal(last_line(need(v, "canonical_request")), hex);
    if (str(v, "hashed_payload") != NULL) {
        assert_string_equal(str(v, "hashed_payload"), hex);
    }
    const char *cr = need(v, "canonical_request");
    sha256_hex(cr, strlen(cr), hex);
    assert_string_equal(hex, need(v, "hashed_canonical_request"));

    /* Canonical request. */
    assert_int_equal(gw_tc3_canonical_request(&req, &b), GW_OK);
    assert_string_equal(b.data, cr);
    gw_buf_reset(&b);

    /* String to sign, which embeds the hashed canonical request. */
    assert_int_equal(gw_tc3_string_to_sign(&req, &b), GW_OK);
    assert_string_equal(b.data, need(v, "string_to_sign"));
    assert_string_equal(last_line(b.data), need(v, "hashed_canonical_request"));

    /* Signing key. */
    assert_int_equal(gw_tc3_derive_key((const unsigned char *)secret_key, strlen(secret_key), date,
                                       req.service, key),
                     GW_OK);
    if (str(v, "signing_key_hex") != NULL) {
        for (size_t i = 0; i < GW_TC3_KEY_LEN; i++) {
            snprintf(hex + 2 * i, 3, "%02x", key[i]);
        }
        assert_string_equal(hex, str(v, "signing_key_hex"));
    }

    /* Signature. */
    assert_int_equal(gw_tc3_signature(key, b.data, b.len, sig), GW_OK);
    assert_string_equal(sig, need(v, "signature"));
    if (str(v, "published_signature") != NULL) {
        assert_string_equal(sig, str(v, "published_signature"));
    }
    gw_buf_reset(&b);

    /* Authorization, in two steps and in one call. */
    assert_int_equal(gw_tc3_authorization(secret_id, &req, sig, &b), GW_OK);
    assert_string_equal(b.data, need(v, "authorization"));
    gw_buf_reset(&b);
    assert_int_equal(
        gw_tc3_sign(secret_id, (const unsigned char *)secret_key, strlen(secret_key), &req, &b),
        GW_OK);
    assert_string_equal(b.data, need(v, "authorization"));

    gw_buf_free(&b);
}

static void test_vectors(void **state)
{
    (void)state;
    json_t *root = load_vectors();
    json_t *vectors = json_object_get(root, "vectors");
    assert_true(json_is_array(vectors));
    size_t i, official = 0, sdk = 0, with_action = 0, with_key = 0;
    json_t *v;
    json_array_foreach (vectors, i, v) {
        assert_non_null(str(v, "source"));
        const char *file = str(json_object_get(v, "from"), "file");
        assert_non_null(file);
        official += strcmp(file, OFFICIAL_FILE) == 0;
        sdk += strcmp(file, SDK_FILE) == 0;
        with_action += str(v, "action") != NULL;
        with_key += str(v, "signing_key_hex") != NULL;
        check_vector(v);
    }
    assert_int_equal(official, 3);
    assert_int_equal(sdk, 11);
    assert_int_equal(with_action, 1);
    assert_int_equal(with_key, 3);
    json_decref(root);
}

/* ---- Bad input ---- */

static const unsigned char body[] = "{}";

static struct gw_tc3_request base_request(void)
{
    struct gw_tc3_request req = {
        .service = "gaap",
        .host = "gaap.tencentcloudapi.com",
        .timestamp = 1700000000,
        .content_type = "application/json",
        .payload = body,
        .payload_len = 2,
        .action = "DescribeProxies",
    };
    return req;
}

/* Every function that takes a request refuses it, and leaves out untouched. */
static void expect_refused(const struct gw_tc3_request *req, enum gw_err want)
{
    struct gw_buf b;
    char sig[GW_TC3_HEX_LEN + 1];
    gw_buf_init(&b, GW_TC3_MAX_TEXT);
    memset(sig, 'a', GW_TC3_HEX_LEN);
    sig[GW_TC3_HEX_LEN] = '\0';
    assert_int_equal(gw_tc3_canonical_request(req, &b), want);
    assert_int_equal(b.len, 0);
    assert_int_equal(gw_tc3_string_to_sign(req, &b), want);
    assert_int_equal(b.len, 0);
    assert_int_equal(gw_tc3_sign("AKIDEXAMPLE", (const unsigned char *)"k", 1, req, &b), want);
    assert_int_equal(b.len, 0);
    if (want == GW_ERR_INVALID) {
        assert_int_equal(gw_tc3_authorization("AKIDEXAMPLE", req, sig, &b), want);
        assert_int_equal(b.len, 0);
    }
    gw_buf_free(&b);
}

static void test_control_characters(void **state)
{
    (void)state;
    static const char *const bad_hosts[] = {
        "gaap.tencentcloudapi.com\r\nX-Evil: 1",
        "gaap\n.com",
        "gaap\x01.com",
        "gaap\x7f.com",
        "gaap\t.com",
        "gaap .com",
        "gaap,com",
        "\rgaap.com",
        "gaap.com\n",
        " gaap.com",
        "gaap.com,",
        "",
        NULL,
    };
    static const char *const bad_actions[] = {
        "Describe\nProxies", "Describe\rProxies", "Describe\x1bProxies", "Describe Proxies", "",
    };
    static const char *const bad_types[] = {
        "application/json\r\nX-Evil: 1", "application/json\n", "application/\x7fjson", "", NULL,
    };
    static const char *const bad_services[] = {"gaap/x", "ga ap", "gaap\n", "", "g,aap", NULL};
    struct gw_tc3_request req;

    for (size_t i = 0; i < sizeof bad_hosts / sizeof *bad_hosts; i++) {
        req = base_request();
        req.host = bad_hosts[i];
        expect_refused(&req, GW_ERR_INVALID);
    }
    for (size_t i = 0; i < sizeof bad_actions / sizeof *bad_actions; i++) {
        req = base_request();
        req.action = bad_actions[i];
        expect_refused(&req, GW_ERR_INVALID);
    }
    for (size_t i = 0; i < sizeof bad_types / sizeof *bad_types; i++) {
        req = base_request();
        req.content_type = bad_types[i];
        expect_refused(&req, GW_ERR_INVALID);
    }
    for (size_t i = 0; i < sizeof bad_services / sizeof *bad_services; i++) {
        req = base_request();
        req.service = bad_services[i];
        expect_refused(&req, GW_ERR_INVALID);
    }
    /* A length without bytes. */
    req = base_request();
    req.payload = NULL;
    req.payload_len = 5;
    expect_refused(&req, GW_ERR_INVALID);
    expect_refused(NULL, GW_ERR_INVALID);
}

static void test_timestamp_range(void **state)
{
    (void)state;
    static const struct {
        int64_t t;
        const char *date;
    } good[] = {
        {0, "1970-01-01"},          {951782400, "2000-02-29"},
        {1709251199, "2024-02-29"}, {1709251200, "2024-03-01"},
        {4107542400, "2100-03-01"}, {INT64_C(253402300799), "9999-12-31"},
    };
    static const int64_t bad[] = {-1, INT64_MIN, INT64_C(253402300800), INT64_MAX};
    char date[GW_TC3_DATE_LEN + 1];

    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        assert_int_equal(gw_tc3_date(good[i].t, date), GW_OK);
        assert_string_equal(date, good[i].date);
    }
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        memcpy(date, "untouched!", sizeof date);
        assert_int_equal(gw_tc3_date(bad[i], date), GW_ERR_INVALID);
        assert_string_equal(date, "untouched!");
        struct gw_tc3_request req = base_request();
        req.timestamp = bad[i];
        struct gw_buf b;
        gw_buf_init(&b, GW_TC3_MAX_TEXT);
        /* The canonical request has no time in it; everything after it does. */
        assert_int_equal(gw_tc3_string_to_sign(&req, &b), GW_ERR_INVALID);
        assert_int_equal(gw_tc3_sign("AKIDEXAMPLE", (const unsigned char *)"k", 1, &req, &b),
                         GW_ERR_INVALID);
        assert_int_equal(b.len, 0);
        gw_buf_free(&b);
    }
}

static void test_sizes(void **state)
{
    (void)state;
    struct gw_buf b;
    gw_buf_init(&b, GW_TC3_MAX_TEXT);

    /* A payload far beyond GW_TC3_MAX_TEXT is fine: it is hashed, never copied. */
    size_t big_len = 8u << 20;
    unsigned char *big = malloc(big_len);
    assert_non_null(big);
    memset(big, 'x', big_len);
    struct gw_tc3_request req = base_request();
    req.payload = big;
    req.payload_len = big_len;
    char hex[GW_TC3_HEX_LEN + 1];
    sha256_hex(big, big_len, hex);
    assert_int_equal(gw_tc3_canonical_request(&req, &b), GW_OK);
    assert_string_equal(last_line(b.data), hex);
    assert_true(b.len < 300);
    gw_buf_reset(&b);
    assert_int_equal(gw_tc3_sign("AKIDEXAMPLE", (const unsigned char *)"k", 1, &req, &b), GW_OK);
    gw_buf_reset(&b);
    free(big);

    /* An oversized host is refused, as is an oversized action or content type. */
    size_t n = GW_TC3_MAX_TEXT + 10;
    char *huge = malloc(n + 1);
    assert_non_null(huge);
    memset(huge, 'a', n);
    huge[n] = '\0';
    req = base_request();
    req.host = huge;
    expect_refused(&req, GW_ERR_TOO_LARGE);
    req = base_request();
    req.action = huge;
    expect_refused(&req, GW_ERR_TOO_LARGE);
    req = base_request();
    req.content_type = huge;
    expect_refused(&req, GW_ERR_TOO_LARGE);
    /* A service name has its own, much smaller bound. */
    req = base_request();
    huge[GW_TC3_MAX_SERVICE] = '\0';
    req.service = huge;
    assert_int_equal(gw_tc3_canonical_request(&req, &b), GW_OK);
    gw_buf_reset(&b);
    huge[GW_TC3_MAX_SERVICE] = 'a';
    huge[GW_TC3_MAX_SERVICE + 1] = '\0';
    expect_refused(&req, GW_ERR_INVALID);
    free(huge);

    /* A caller's buffer that is too small stays as it was. */
    struct gw_buf small;
    gw_buf_init(&small, 20);
    assert_int_equal(gw_buf_append_str(&small, "kept"), GW_OK);
    req = base_request();
    assert_int_equal(gw_tc3_canonical_request(&req, &small), GW_ERR_TOO_LARGE);
    assert_int_equal(gw_tc3_string_to_sign(&req, &small), GW_ERR_TOO_LARGE);
    assert_int_equal(gw_tc3_sign("AKIDEXAMPLE", (const unsigned char *)"k", 1, &req, &small),
                     GW_ERR_TOO_LARGE);
    assert_string_equal(small.data, "kept");
    gw_buf_free(&small);

    /* An empty payload may come as NULL. */
    req = base_request();
    req.payload = NULL;
    req.payload_len = 0;
    assert_int_equal(gw_tc3_canonical_request(&req, &b), GW_OK);
    assert_string_equal(last_line(b.data),
                        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    gw_buf_free(&b);

    /* A string to sign longer than any the gateway builds. */
    char *sts = calloc(GW_TC3_MAX_TEXT + 2, 1);
    unsigned char key[GW_TC3_KEY_LEN] = {0};
    char sig[GW_TC3_HEX_LEN + 1];
    assert_non_null(sts);
    memset(sts, 's', GW_TC3_MAX_TEXT + 1);
    assert_int_equal(gw_tc3_signature(key, sts, GW_TC3_MAX_TEXT + 1, sig), GW_ERR_TOO_LARGE);
    free(sts);
}

static void test_action_case(void **state)
{
    (void)state;
    struct gw_buf a, b;
    gw_buf_init(&a, GW_TC3_MAX_TEXT);
    gw_buf_init(&b, GW_TC3_MAX_TEXT);
    struct gw_tc3_request req = base_request();
    assert_int_equal(gw_tc3_canonical_request(&req, &a), GW_OK);
    assert_non_null(
        strstr(a.data, "\nx-tc-action:describeproxies\n\ncontent-type;host;x-tc-action\n"));
    req.action = "DESCRIBEPROXIES";
    assert_int_equal(gw_tc3_canonical_request(&req, &b), GW_OK);
    assert_string_equal(a.data, b.data);
    /* Without an action, x-tc-action is neither a header nor signed. */
    gw_buf_reset(&b);
    req.action = NULL;
    assert_int_equal(gw_tc3_canonical_request(&req, &b), GW_OK);
    assert_null(strstr(b.data, "x-tc-action"));
    gw_buf_free(&a);
    gw_buf_free(&b);
}

static void test_key_and_signature_args(void **state)
{
    (void)state;
    unsigned char key[GW_TC3_KEY_LEN];
    unsigned char big[513];
    memset(big, 'k', sizeof big);
    static const char *const bad_dates[] = {"2019-2-25", "2019/02/25", "2019-02-250",
                                            "",          "2019-02-2x", NULL};

    for (size_t i = 0; i < sizeof bad_dates / sizeof *bad_dates; i++) {
        assert_int_equal(gw_tc3_derive_key(big, 8, bad_dates[i], "gaap", key), GW_ERR_INVALID);
    }
    assert_int_equal(gw_tc3_derive_key(big, 8, "2019-02-25", "ga/ap", key), GW_ERR_INVALID);
    assert_int_equal(gw_tc3_derive_key(big, 0, "2019-02-25", "gaap", key), GW_ERR_INVALID);
    assert_int_equal(gw_tc3_derive_key(NULL, 8, "2019-02-25", "gaap", key), GW_ERR_INVALID);
    assert_int_equal(gw_tc3_derive_key(big, 513, "2019-02-25", "gaap", key), GW_ERR_TOO_LARGE);
    assert_int_equal(gw_tc3_derive_key(big, 512, "2019-02-25", "gaap", key), GW_OK);

    /* Authorization: a SecretId that would break the header, or a signature that is not hex. */
    struct gw_tc3_request req = base_request();
    struct gw_buf b;
    gw_buf_init(&b, GW_TC3_MAX_TEXT);
    char sig[GW_TC3_HEX_LEN + 1];
    memset(sig, '0', GW_TC3_HEX_LEN);
    sig[GW_TC3_HEX_LEN] = '\0';
    static const char *const bad_ids[] = {
        "AKID EXAMPLE", "AKID/EXAMPLE", "AKID,EXAMPLE",
        "AKID\r\nX: y", "/AKID",        "AKID/",
        "\nAKID",       "AKID\x7f",     "",
        NULL,
    };
    for (size_t i = 0; i < sizeof bad_ids / sizeof *bad_ids; i++) {
        assert_int_equal(gw_tc3_authorization(bad_ids[i], &req, sig, &b), GW_ERR_INVALID);
    }
    sig[5] = 'A';
    assert_int_equal(gw_tc3_authorization("AKIDEXAMPLE", &req, sig, &b), GW_ERR_INVALID);
    sig[5] = '0';
    sig[GW_TC3_HEX_LEN - 1] = '\0';
    assert_int_equal(gw_tc3_authorization("AKIDEXAMPLE", &req, sig, &b), GW_ERR_INVALID);
    assert_int_equal(gw_tc3_authorization("AKIDEXAMPLE", &req, NULL, &b), GW_ERR_INVALID);
    assert_int_equal(b.len, 0);
    assert_int_equal(gw_tc3_signature(NULL, "x", 1, sig), GW_ERR_INVALID);
    gw_buf_free(&b);
}

/* ---- The hand-made parts against libc and OpenSSL ---- */

/* Every day of 1970..9999, at its first and last second, against gmtime_r. */
static void test_date_every_day(void **state)
{
    (void)state;
    char date[GW_TC3_DATE_LEN + 1];
    char want[48]; /* room for any int, so the compiler sees no truncation */
    for (int64_t day = 0; day <= INT64_C(253402300799) / 86400; day++) {
        time_t t = (time_t)(day * 86400);
        struct tm tm;
        assert_non_null(gmtime_r(&t, &tm));
        snprintf(want, sizeof want, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
        assert_int_equal(gw_tc3_date(day * 86400, date), GW_OK);
        if (strcmp(date, want) != 0) {
            fail_msg("day %lld: %s, want %s", (long long)day, date, want);
        }
        assert_int_equal(gw_tc3_date(day * 86400 + 86399, date), GW_OK);
        if (strcmp(date, want) != 0) {
            fail_msg("end of day %lld: %s, want %s", (long long)day, date, want);
        }
    }
}

/* HMAC-SHA256 by OpenSSL's one-shot HMAC(), which tc3.c does not use. */
static void hmac_ref(const unsigned char *key, size_t key_len, const void *data, size_t n,
                     unsigned char out[GW_TC3_KEY_LEN])
{
    unsigned int len = 0;
    assert_non_null(HMAC(EVP_sha256(), key, (int)key_len, data, n, out, &len));
    assert_int_equal(len, GW_TC3_KEY_LEN);
}

/*
 * The key derivation for every SecretKey length 1..512 (so "TC3" + key below, at and above one
 * 64-byte block, where the HMAC key is hashed first), against HMAC().
 */
static void test_derive_key_lengths(void **state)
{
    (void)state;
    unsigned char secret[3 + 512];
    unsigned char k1[GW_TC3_KEY_LEN], k2[GW_TC3_KEY_LEN], want[GW_TC3_KEY_LEN];
    unsigned char got[GW_TC3_KEY_LEN];
    memcpy(secret, "TC3", 3);
    for (size_t i = 0; i < 512; i++) {
        secret[3 + i] = (unsigned char)(i * 131 + 7);
    }
    for (size_t n = 1; n <= 512; n++) {
        hmac_ref(secret, 3 + n, "2024-02-29", 10, k1);
        hmac_ref(k1, sizeof k1, "gaap", 4, k2);
        hmac_ref(k2, sizeof k2, "tc3_request", 11, want);
        assert_int_equal(gw_tc3_derive_key(secret + 3, n, "2024-02-29", "gaap", got), GW_OK);
        if (memcmp(got, want, sizeof want) != 0) {
            fail_msg("derived key differs for a SecretKey of %zu bytes", n);
        }
    }
}

/* The signature for every string length 0..300 (every SHA-256 padding case), against HMAC(). */
static void test_signature_lengths(void **state)
{
    (void)state;
    unsigned char key[GW_TC3_KEY_LEN];
    char text[301];
    char sig[GW_TC3_HEX_LEN + 1];
    char want[GW_TC3_HEX_LEN + 1];
    unsigned char mac[GW_TC3_KEY_LEN];
    for (size_t i = 0; i < sizeof key; i++) {
        key[i] = (unsigned char)(0xa5 ^ i);
    }
    for (size_t i = 0; i < sizeof text; i++) {
        text[i] = (char)('!' + i % 90);
    }
    for (size_t n = 0; n <= 300; n++) {
        hmac_ref(key, sizeof key, text, n, mac);
        for (size_t i = 0; i < sizeof mac; i++) {
            snprintf(want + 2 * i, 3, "%02x", mac[i]);
        }
        assert_int_equal(gw_tc3_signature(key, text, n, sig), GW_OK);
        assert_string_equal(sig, want);
    }
    assert_int_equal(gw_tc3_signature(key, NULL, 0, sig), GW_ERR_INVALID);
}

/* The timestamp is written in plain decimal, at both ends of its range. */
static void test_timestamp_text(void **state)
{
    (void)state;
    static const struct {
        int64_t t;
        const char *head;
    } cases[] = {
        {0, "TC3-HMAC-SHA256\n0\n1970-01-01/gaap/tc3_request\n"},
        {9, "TC3-HMAC-SHA256\n9\n1970-01-01/gaap/tc3_request\n"},
        {1700000000, "TC3-HMAC-SHA256\n1700000000\n2023-11-14/gaap/tc3_request\n"},
        {INT64_C(253402300799), "TC3-HMAC-SHA256\n253402300799\n9999-12-31/gaap/tc3_request\n"},
    };
    struct gw_buf b;
    gw_buf_init(&b, GW_TC3_MAX_TEXT);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        struct gw_tc3_request req = base_request();
        req.timestamp = cases[i].t;
        gw_buf_reset(&b);
        assert_int_equal(gw_tc3_string_to_sign(&req, &b), GW_OK);
        assert_int_equal(strncmp(b.data, cases[i].head, strlen(cases[i].head)), 0);
        assert_int_equal(b.len, strlen(cases[i].head) + GW_TC3_HEX_LEN);
    }
    gw_buf_free(&b);
}

/* Texts of exactly GW_TC3_MAX_TEXT bytes are built; one byte more is GW_ERR_TOO_LARGE. */
static void test_text_bounds(void **state)
{
    (void)state;
    struct gw_buf b;
    gw_buf_init(&b, 2 * GW_TC3_MAX_TEXT);
    char *long_str = malloc(GW_TC3_MAX_TEXT + 1);
    assert_non_null(long_str);

    /* The canonical request, grown through its host. */
    struct gw_tc3_request req = base_request();
    req.host = "h";
    assert_int_equal(gw_tc3_canonical_request(&req, &b), GW_OK);
    size_t room = GW_TC3_MAX_TEXT - b.len;
    memset(long_str, 'h', room + 2);
    long_str[room + 1] = '\0';
    req.host = long_str;
    gw_buf_reset(&b);
    assert_int_equal(gw_tc3_canonical_request(&req, &b), GW_OK);
    assert_int_equal(b.len, GW_TC3_MAX_TEXT);
    gw_buf_reset(&b);
    assert_int_equal(gw_tc3_string_to_sign(&req, &b), GW_OK);
    long_str[room + 1] = 'h';
    long_str[room + 2] = '\0';
    gw_buf_reset(&b);
    assert_int_equal(gw_tc3_canonical_request(&req, &b), GW_ERR_TOO_LARGE);
    assert_int_equal(gw_tc3_string_to_sign(&req, &b), GW_ERR_TOO_LARGE);
    assert_int_equal(b.len, 0);

    /* The Authorization value, grown through the SecretId. */
    char sig[GW_TC3_HEX_LEN + 1];
    memset(sig, 'f', GW_TC3_HEX_LEN);
    sig[GW_TC3_HEX_LEN] = '\0';
    req = base_request();
    assert_int_equal(gw_tc3_authorization("A", &req, sig, &b), GW_OK);
    room = GW_TC3_MAX_TEXT - b.len;
    memset(long_str, 'A', room + 2);
    long_str[room + 1] = '\0';
    gw_buf_reset(&b);
    assert_int_equal(gw_tc3_authorization(long_str, &req, sig, &b), GW_OK);
    assert_int_equal(b.len, GW_TC3_MAX_TEXT);
    long_str[room + 1] = 'A';
    long_str[room + 2] = '\0';
    gw_buf_reset(&b);
    assert_int_equal(gw_tc3_authorization(long_str, &req, sig, &b), GW_ERR_TOO_LARGE);
    assert_int_equal(b.len, 0);

    free(long_str);
    gw_buf_free(&b);
}

/* A signature argument must be exactly 64 lowercase hex digits. */
static void test_signature_argument(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "0123456789abcdef", /* short */
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg",
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde/",
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde:",
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde`",
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdefa", /* 65 */
        /* split so that the hex escape ends before the 'f' */
        ("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd\x80"
         "f"),
    };
    struct gw_tc3_request req = base_request();
    struct gw_buf b;
    gw_buf_init(&b, GW_TC3_MAX_TEXT);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(gw_tc3_authorization("AKIDEXAMPLE", &req, bad[i], &b), GW_ERR_INVALID);
        assert_int_equal(b.len, 0);
    }
    assert_int_equal(gw_tc3_authorization("AKIDEXAMPLE", &req,
                                          "0123456789abcdef0123456789abcdef"
                                          "0123456789abcdef0123456789abcdef",
                                          &b),
                     GW_OK);
    gw_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),           cmocka_unit_test(test_control_characters),
        cmocka_unit_test(test_timestamp_range),   cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_action_case),       cmocka_unit_test(test_key_and_signature_args),
        cmocka_unit_test(test_date_every_day),    cmocka_unit_test(test_derive_key_lengths),
        cmocka_unit_test(test_signature_lengths), cmocka_unit_test(test_timestamp_text),
        cmocka_unit_test(test_text_bounds),       cmocka_unit_test(test_signature_argument),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
