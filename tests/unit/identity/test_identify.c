/*
 * Unit tests for gateway/identity/identify.c and replay.c: every rule and every refusal, and the
 * TC3 verifier against signatures made by Tencent's own SDK (tests/data/tc3-vectors.json).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "identity/callers.h"
#include "identity/identify.h"
#include "vault/tc3.h"
#include "vault/vault.h"

#define SDK_ID "AKIDtcgwAAAAAAAAAAAAAAAAAAAAAEXAMPLE"
#define SDK_KEY "abcdefghijklmnopqrstuvwxyz012345"
#define TOKEN "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" /* 43 base64url characters */
#define NOW INT64_C(1732838400)                             /* 2024-11-29T00:00:00Z */
#define HOST "gaap.tencentcloudapi.com"
#define BODY "{\"ProxyId\":\"link-4ftf12sb\"}"
#define MAX_HEADERS 12

/* ---- A request: headers by name, as a transport would give them ---- */

struct header {
    const char *name;
    char value[4096];
};

struct request {
    struct header h[MAX_HEADERS];
    size_t n;
    char body[4096];
    size_t body_len;
    char service[32];
    char path[64];
    int64_t now;
    /* How to sign it (sign()). */
    const char *signed_headers;
    const char *secret_id;
    const char *secret_key;
    const char *date;               /* NULL: the timestamp's */
    const char *credential_service; /* NULL: service */
};

static const char *lookup(void *transport, const char *name)
{
    struct request *r = transport;
    for (size_t i = 0; i < r->n; i++) {
        if (strcasecmp(r->h[i].name, name) == 0) {
            return r->h[i].value;
        }
    }
    return NULL;
}

static size_t count(void *transport, const char *name)
{
    struct request *r = transport;
    size_t c = 0;
    for (size_t i = 0; i < r->n; i++) {
        c += strcasecmp(r->h[i].name, name) == 0;
    }
    return c;
}

static void set(struct request *r, const char *name, const char *value)
{
    for (size_t i = 0; i < r->n; i++) {
        if (strcasecmp(r->h[i].name, name) == 0) {
            snprintf(r->h[i].value, sizeof r->h[i].value, "%s", value);
            return;
        }
    }
    assert_true(r->n < MAX_HEADERS);
    r->h[r->n].name = name;
    snprintf(r->h[r->n].value, sizeof r->h[r->n].value, "%s", value);
    r->n++;
}

static void unset(struct request *r, const char *name)
{
    for (size_t i = 0; i < r->n; i++) {
        if (strcasecmp(r->h[i].name, name) == 0) {
            r->h[i] = r->h[--r->n];
            return;
        }
    }
}

static void set_body(struct request *r, const char *body)
{
    r->body_len = strlen(body);
    memcpy(r->body, body, r->body_len + 1);
}

static void sha256_hex(const void *p, size_t n, char out[65])
{
    unsigned char md[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(md, p, n);
    sodium_bin2hex(out, 65, md, sizeof md);
}

/*
 * Signs r as Tencent's documentation says (written here independently of identify.c, with
 * libsodium's SHA-256): the canonical request over the signed headers, lowercased and trimmed.
 */
static void sign(struct request *r)
{
    char cr[8192], sts[1024], hash[65], body_hash[65], date[11], sig[GW_TC3_HEX_LEN + 1];
    char auth[2048];
    unsigned char key[GW_TC3_KEY_LEN];
    const char *ts = lookup(r, "X-TC-Timestamp");
    size_t n = 0;

    assert_non_null(ts);
    assert_int_equal(gw_tc3_date(strtoll(ts, NULL, 10), date), GW_OK);
    const char *d = r->date != NULL ? r->date : date;
    const char *svc = r->credential_service != NULL ? r->credential_service : r->service;
    n += (size_t)snprintf(cr + n, sizeof cr - n, "POST\n%s\n\n", r->path);
    char names[256];
    snprintf(names, sizeof names, "%s", r->signed_headers);
    for (char *save = NULL, *name = strtok_r(names, ";", &save); name != NULL;
         name = strtok_r(NULL, ";", &save)) {
        const char *v = lookup(r, name);
        assert_non_null(v);
        while (*v == ' ') {
            v++;
        }
        size_t vn = strlen(v);
        while (vn > 0 && v[vn - 1] == ' ') {
            vn--;
        }
        n += (size_t)snprintf(cr + n, sizeof cr - n, "%s:", name);
        for (size_t i = 0; i < vn; i++) {
            cr[n++] = (char)((v[i] >= 'A' && v[i] <= 'Z') ? v[i] + 32 : v[i]);
        }
        cr[n++] = '\n';
    }
    sha256_hex(r->body, r->body_len, body_hash);
    n += (size_t)snprintf(cr + n, sizeof cr - n, "\n%s\n%s", r->signed_headers, body_hash);
    sha256_hex(cr, n, hash);
    int m =
        snprintf(sts, sizeof sts, "TC3-HMAC-SHA256\n%s\n%s/%s/tc3_request\n%s", ts, d, svc, hash);
    assert_int_equal(
        gw_tc3_derive_key((const unsigned char *)r->secret_key, strlen(r->secret_key), d, svc, key),
        GW_OK);
    assert_int_equal(gw_tc3_signature(key, sts, (size_t)m, sig), GW_OK);
    snprintf(auth, sizeof auth,
             "TC3-HMAC-SHA256 Credential=%s/%s/%s/tc3_request, SignedHeaders=%s, Signature=%s",
             r->secret_id, d, svc, r->signed_headers, sig);
    set(r, "Authorization", auth);
}

/* A good SDK request at NOW, signed with SDK_ID/SDK_KEY. */
static void sdk_request(struct request *r)
{
    memset(r, 0, sizeof *r);
    snprintf(r->service, sizeof r->service, "gaap");
    snprintf(r->path, sizeof r->path, "/");
    r->now = NOW;
    set(r, "Host", HOST);
    set(r, "Content-Type", "application/json");
    set(r, "X-TC-Action", "DescribeProxies");
    set(r, "X-TC-Version", "2018-05-29");
    char ts[32];
    snprintf(ts, sizeof ts, "%lld", (long long)NOW);
    set(r, "X-TC-Timestamp", ts);
    set_body(r, BODY);
    r->signed_headers = "content-type;host";
    r->secret_id = SDK_ID;
    r->secret_key = SDK_KEY;
    sign(r);
}

/* ---- The fixture: a vault with a caller key, a callers file, a replay cache ---- */

struct fixture {
    char dir[64];
    char key[PATH_MAX];
    char store[PATH_MAX];
    char callers_path[PATH_MAX];
    char msg[512];
    struct gw_vault *vault;
    struct gw_callers *callers;
    struct gw_replay *replay;
    json_t *vectors_root;
};

static void write_callers(struct fixture *f, const char *text)
{
    FILE *fp = fopen(f->callers_path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
    gw_callers_free(f->callers);
    f->callers = NULL;
    if (gw_callers_load(f->callers_path, &f->callers, f->msg, sizeof f->msg) != GW_OK) {
        fail_msg("callers: %s", f->msg);
    }
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    unsigned char hash[GW_VAULT_TOKEN_HASH_LEN];
    char hex[2 * GW_VAULT_TOKEN_HASH_LEN + 1];
    char text[2048];

    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "/tmp/tcgw-identify-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->key, sizeof f->key, "%s/master.key", f->dir);
    snprintf(f->store, sizeof f->store, "%s/credentials.store", f->dir);
    snprintf(f->callers_path, sizeof f->callers_path, "%s/callers.json", f->dir);
    assert_int_equal(gw_vault_keygen(f->key, f->msg, sizeof f->msg), GW_OK);
    assert_int_equal(gw_vault_open(f->key, f->store, &f->vault, f->msg, sizeof f->msg), GW_OK);
    assert_int_equal(gw_vault_put_caller_key(f->vault, "sdk-bot", SDK_ID, strlen(SDK_ID), SDK_KEY,
                                             strlen(SDK_KEY), f->msg, sizeof f->msg),
                     GW_OK);
    assert_int_equal(
        gw_vault_token_hash(f->vault, (const unsigned char *)TOKEN, strlen(TOKEN), hash), GW_OK);
    sodium_bin2hex(hex, sizeof hex, hash, sizeof hash);
    snprintf(text, sizeof text,
             "{\"callers\": {\n"
             " \"token-bot\": {\"token_sha\": \"%s\", \"credential\": \"default\"},\n"
             " \"sdk-bot\": {\"sdk_secret_id\": \"" SDK_ID "\", \"credential\": \"default\"},\n"
             " \"orphan\": {\"sdk_secret_id\": \"AKIDtcgwORPHAN\", \"credential\": \"default\"},\n"
             " \"mesh-bot\": {\"certificate\": \"spiffe://example.internal/mesh-bot\",\n"
             "                \"credential\": \"default\"},\n"
             " \"anonymous\": {\"credential\": \"default\"}}}\n",
             hex);
    write_callers(f, text);
    assert_int_equal(gw_replay_new(0, &f->replay), GW_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[PATH_MAX];
    gw_replay_free(f->replay);
    gw_callers_free(f->callers);
    gw_vault_free(f->vault);
    json_decref(f->vectors_root);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static struct gw_identify_input input_of(struct request *r, unsigned accept)
{
    struct gw_identify_input in = {
        .accept = accept,
        .header = lookup,
        .header_count = count,
        .transport = r,
        .method = "POST",
        .path = r->path,
        .service = r->service,
        .body = (const unsigned char *)r->body,
        .body_len = r->body_len,
        .now = r->now,
    };
    return in;
}

#define ALL (GW_ACCEPT_TOKEN | GW_ACCEPT_SDK_KEY | GW_ACCEPT_CERT)

/* Identifies in; checks the outcome, and that the message repeats no secret. */
static void expect(struct fixture *f, const struct gw_identify_input *in, enum gw_err want_err,
                   const char *want_code, const char *want_text)
{
    struct gw_identity id;
    memset(&id, 0x5a, sizeof id);
    enum gw_err err = gw_identify(in, f->callers, f->vault, f->replay, &id);
    if (err != want_err || (want_code == NULL) != (id.code == NULL) ||
        (want_code != NULL && strcmp(want_code, id.code) != 0)) {
        fail_msg("got %s %s \"%s\", wanted %s %s", gw_err_str(err), id.code ? id.code : "(none)",
                 id.code ? id.message : "", gw_err_str(want_err), want_code ? want_code : "(none)");
    }
    if (want_code == NULL) {
        assert_non_null(id.caller);
        assert_string_equal(id.caller->name, want_text);
        return;
    }
    assert_null(id.caller);
    assert_int_equal(id.method, GW_IDENTITY_NONE);
    if (want_text != NULL && strstr(id.message, want_text) == NULL) {
        fail_msg("message \"%s\" lacks \"%s\"", id.message, want_text);
    }
    const char *auth = in->header != NULL ? in->header(in->transport, "Authorization") : NULL;
    assert_null(strstr(id.message, TOKEN));
    assert_null(strstr(id.message, SDK_KEY));
    if (auth != NULL) {
        const char *sig = strstr(auth, "Signature=");
        if (sig != NULL && strlen(sig + 10) > 8) {
            assert_null(strstr(id.message, sig + 10));
        }
        if (strncmp(auth, "Bearer ", 7) == 0 && strlen(auth) > 12) {
            assert_null(strstr(id.message, auth + 7));
        }
    }
}

static enum gw_identity_method method_of(struct fixture *f, const struct gw_identify_input *in)
{
    struct gw_identity id;
    assert_int_equal(gw_identify(in, f->callers, f->vault, f->replay, &id), GW_OK);
    return id.method;
}

/* ---- Bearer tokens ---- */

static void test_token(void **state)
{
    struct fixture *f = *state;
    struct request r;
    memset(&r, 0, sizeof r);
    snprintf(r.service, sizeof r.service, "gaap");
    snprintf(r.path, sizeof r.path, "/");
    r.now = NOW;

    set(&r, "Authorization", "Bearer " TOKEN);
    struct gw_identify_input in = input_of(&r, GW_ACCEPT_TOKEN);
    expect(f, &in, GW_OK, NULL, "token-bot");
    assert_int_equal(method_of(f, &in), GW_IDENTITY_TOKEN);
    /* The scheme is case-insensitive (RFC 9110); a token may be used again and again. */
    set(&r, "Authorization", "bearer " TOKEN);
    expect(f, &in, GW_OK, NULL, "token-bot");

    /* Unknown: one character changed. */
    set(&r, "Authorization", "Bearer " TOKEN "");
    r.h[0].value[10] = 'B';
    expect(f, &in, GW_ERR_CRYPTO, "AuthFailure.InvalidAuthorization", "not known to this gateway");

    /* Malformed: too short, too long, not base64url, two spaces. */
    const char *bad[] = {"Bearer AAAA", "Bearer " TOKEN "A",
                         "Bearer AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA+",
                         "Bearer  AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "Bearer "};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        set(&r, "Authorization", bad[i]);
        expect(f, &in, GW_ERR_CRYPTO, "AuthFailure.InvalidAuthorization", "43 characters");
    }

    /* A listener that takes no tokens names what it takes. */
    set(&r, "Authorization", "Bearer " TOKEN);
    in.accept = GW_ACCEPT_SDK_KEY;
    expect(f, &in, GW_ERR_CRYPTO, "AuthFailure.InvalidAuthorization",
           "Bearer tokens are not accepted here: this listener accepts a TC3-HMAC-SHA256");
}

/* ---- TC3 signatures ---- */

static void test_sdk_key(void **state)
{
    struct fixture *f = *state;
    struct request r;
    sdk_request(&r);
    struct gw_identify_input in = input_of(&r, ALL);
    expect(f, &in, GW_OK, NULL, "sdk-bot");

    sdk_request(&r);
    set_body(&r, "{}");
    sign(&r);
    in = input_of(&r, ALL);
    assert_int_equal(method_of(f, &in), GW_IDENTITY_SDK_KEY);
}

static void test_sdk_replay(void **state)
{
    struct fixture *f = *state;
    struct request r;
    sdk_request(&r);
    struct gw_identify_input in = input_of(&r, GW_ACCEPT_SDK_KEY);
    expect(f, &in, GW_OK, NULL, "sdk-bot");
    expect(f, &in, GW_ERR_CRYPTO, "AuthFailure.SignatureFailure", "already received");
    /* Still refused at the last second the timestamp is acceptable. */
    r.now = NOW + GW_IDENTIFY_MAX_SKEW;
    in = input_of(&r, GW_ACCEPT_SDK_KEY);
    expect(f, &in, GW_ERR_CRYPTO, "AuthFailure.SignatureFailure", "already received");
    /* The same call signed a second later is a new signature. */
    r.now = NOW;
    set(&r, "X-TC-Timestamp", "1732838401");
    sign(&r);
    in = input_of(&r, GW_ACCEPT_SDK_KEY);
    expect(f, &in, GW_OK, NULL, "sdk-bot");
}

static void test_sdk_skew(void **state)
{
    struct fixture *f = *state;
    struct request r;
    const int64_t skews[] = {300, -300, 301, -301};
    for (size_t i = 0; i < 4; i++) {
        char body[32];
        sdk_request(&r);
        snprintf(body, sizeof body, "{\"Skew\":%zu}", i); /* each a new signature */
        set_body(&r, body);
        sign(&r);
        r.now = NOW + skews[i];
        struct gw_identify_input in = input_of(&r, GW_ACCEPT_SDK_KEY);
        if (skews[i] == 300 || skews[i] == -300) {
            expect(f, &in, GW_OK, NULL, "sdk-bot");
        } else {
            expect(f, &in, GW_ERR_CRYPTO, "AuthFailure.SignatureExpire", "301 seconds");
        }
    }
}

static void test_sdk_host_port_and_extra_headers(void **state)
{
    struct fixture *f = *state;
    struct request r;

    /* An SDK pointed at http://127.0.0.1:8080 signs the Host it sends, port included. */
    sdk_request(&r);
    set(&r, "Host", "127.0.0.1:8080");
    sign(&r);
    struct gw_identify_input in = input_of(&r, GW_ACCEPT_SDK_KEY);
    expect(f, &in, GW_OK, NULL, "sdk-bot");

    /* Extra signed headers, values lowercased and trimmed as Tencent does. */
    sdk_request(&r);
    set(&r, "X-TC-Region", "  AP-Guangzhou ");
    r.signed_headers = "content-type;host;x-tc-action;x-tc-region";
    sign(&r);
    in = input_of(&r, GW_ACCEPT_SDK_KEY);
    expect(f, &in, GW_OK, NULL, "sdk-bot");

    /* A path other than "/" is signed as received. */
    sdk_request(&r);
    snprintf(r.path, sizeof r.path, "/v3/");
    sign(&r);
    in = input_of(&r, GW_ACCEPT_SDK_KEY);
    expect(f, &in, GW_OK, NULL, "sdk-bot");
}

/*
 * An SDK pointed at the gateway (endpoint "127.0.0.1:8080/gaap") signs the URL's hostname, while
 * its Host header carries the port, and names the service after the endpoint's first label.
 */
static void test_sdk_pointed_at_the_gateway(void **state)
{
    struct fixture *f = *state;
    struct request r;
    static const struct {
        const char *signed_host, *sent_host, *credential_service, *code;
    } cases[] = {
        {"127.0.0.1", "127.0.0.1:8080", "127", NULL},
        {"127.0.0.1", "127.0.0.1:8080", "gaap", NULL},
        {"[::1]", "[::1]:8080", "gaap", NULL},
        {"localhost", "localhost:8080", "localhost", NULL},
        {"127.0.0.1", "127.0.0.1:8080", "128", "AuthFailure.SignatureFailure"},
        {"127.0.0.2", "127.0.0.1:8080", "127", "AuthFailure.SignatureFailure"},
        {"127.0.0.1:9090", "127.0.0.1:8080", "127", "AuthFailure.SignatureFailure"},
        {"127.0.0.1", "127.0.0.1:80a", "127", "AuthFailure.SignatureFailure"},
        {"::1", "::1", "gaap", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sdk_request(&r);
        snprintf(r.path, sizeof r.path, "/gaap/");
        r.credential_service = cases[i].credential_service;
        set(&r, "Host", cases[i].signed_host);
        char ts[32];
        snprintf(ts, sizeof ts, "%lld", (long long)(NOW + (long long)i)); /* no replays */
        set(&r, "X-TC-Timestamp", ts);
        sign(&r);
        set(&r, "Host", cases[i].sent_host);
        struct gw_identify_input in = input_of(&r, GW_ACCEPT_SDK_KEY);
        if (cases[i].code == NULL) {
            expect(f, &in, GW_OK, NULL, "sdk-bot");
        } else {
            expect(f, &in, GW_ERR_CRYPTO, cases[i].code, NULL);
        }
    }
}

static void test_sdk_refusals(void **state)
{
    struct fixture *f = *state;
    struct request r;
    struct gw_identify_input in;
    char auth[4096];

    /* The body, a signed header, the path or the key differ from what was signed. */
    sdk_request(&r);
    set_body(&r, "{\"ProxyId\":\"link-other\"}");
    in = input_of(&r, GW_ACCEPT_SDK_KEY);
    expect(f, &in, GW_ERR_CRYPTO, "AuthFailure.SignatureFailure", "does not match");
    sdk_request(&r);
    set(&r, "Content-Type", "application/json; charset=utf-8");
    in = input_of(&r, GW_ACCEPT_SDK_KEY);
    expect(f, &in, GW_ERR_CRYPTO, "AuthFailure.SignatureFailure", "does not match");
    sdk_request(&r);
    snprintf(r.path, sizeof r.path, "/x");
    in = input_of(&r, GW_ACCEPT_SDK_KEY);
    expect(f, &in, GW_ERR_CRYPTO, "AuthFailure.SignatureFailure", "does not match");
    sdk_request(&r);
    r.secret_key = "abcdefghijklmnopqrstuvwxyz012346";
    sign(&r);
    in = input_of(&r, GW_ACCEPT_SDK_KEY);
    expect(f, &in, GW_ERR_CRYPTO, "AuthFailure.SignatureFailure", "does not match");

    /* Credential: a date that is not the timestamp's, another service, an unknown SecretId. */
    sdk_request(&r);
    r.date = "2024-11-28";
    sign(&r);
    in = input_of(&r, GW_ACCEPT_SDK_KEY);
    expect(f, &in, GW_ERR_CRYPTO, "AuthFailure.SignatureFailure",
           "(2024-11-28) must be the UTC date of X-TC-Timestamp (2024-11-29)");
    sdk_request(&r);
    r.credential_service = "cvm";
    sign(&r);
    in = input_of(&r, GW_ACCEPT_SDK_KEY);
    expect(f, &in, GW_ERR_CRYPTO, "AuthFailure.SignatureFailure",
           "(cvm) must be the service called (gaap)");
    sdk_request(&r);
    r.secret_id = "AKIDtcgwUNKNOWN";
    sign(&r);
    in = input_of(&r, GW_ACCEPT_SDK_KEY);
    expect(f, &in, GW_ERR_CRYPTO, "AuthFailure.SecretIdNotFound",
           "tcgw callers add NAME --sdk-key");
    /* Known to the callers file, but the store has no key for it: the gateway's fault. */
    sdk_request(&r);
    r.secret_id = "AKIDtcgwORPHAN";
    sign(&r);
    in = input_of(&r, GW_ACCEPT_SDK_KEY);
    expect(f, &in, GW_ERR_NOT_FOUND, "InternalError", "holds no key");

    /* X-TC-Timestamp: absent, not decimal, a leading zero. */
    sdk_request(&r);
    unset(&r, "X-TC-Timestamp");
    in = input_of(&r, GW_ACCEPT_SDK_KEY);
    expect(f, &in, GW_ERR_CRYPTO, "MissingParameter", "X-TC-Timestamp");
    const char *bad_ts[] = {"1732838400.0", "+1732838400", "01732838400", "17328x8400",
                            "999999999999"};
    for (size_t i = 0; i < sizeof bad_ts / sizeof *bad_ts; i++) {
        sdk_request(&r);
        set(&r, "X-TC-Timestamp", bad_ts[i]);
        in = input_of(&r, GW_ACCEPT_SDK_KEY);
        expect(f, &in, GW_ERR_CRYPTO, "InvalidParameterValue", "X-TC-Timestamp");
    }

    /* SignedHeaders: without host or content-type, unsorted, uppercase, repeated, empty
     * names, a header the request lacks. */
    const char *bad_signed[] = {"content-type",
                                "host",
                                "host;content-type",
                                "Content-Type;host",
                                "content-type;content-type;host",
                                "content-type;;host",
                                "content-type;host;",
                                ""};
    for (size_t i = 0; i < sizeof bad_signed / sizeof *bad_signed; i++) {
        sdk_request(&r);
        const char *a = lookup(&r, "Authorization");
        const char *sh = strstr(a, "SignedHeaders=");
        const char *comma = strchr(sh, ',');
        snprintf(auth, sizeof auth, "%.*sSignedHeaders=%s%s", (int)(sh - a), a, bad_signed[i],
                 comma);
        set(&r, "Authorization", auth);
        in = input_of(&r, GW_ACCEPT_SDK_KEY);
        expect(f, &in, GW_ERR_CRYPTO, "AuthFailure.InvalidAuthorization", "SignedHeaders");
    }
    sdk_request(&r);
    r.signed_headers = "content-type;host;x-tc-region";
    set(&r, "X-TC-Region", "ap-guangzhou");
    sign(&r);
    unset(&r, "X-TC-Region");
    in = input_of(&r, GW_ACCEPT_SDK_KEY);
    expect(f, &in, GW_ERR_CRYPTO, "AuthFailure.SignatureFailure",
           "names x-tc-region, which the request does not carry");

    /* The header's form. */
    sdk_request(&r);
    const char *good = lookup(&r, "Authorization");
    char sig[65];
    snprintf(sig, sizeof sig, "%s", strstr(good, "Signature=") + 10);
    struct {
        const char *fmt; /* %s: the good signature */
        const char *text;
    } forms[] = {
        {"TC3-HMAC-SHA256 Credential=" SDK_ID "/2024-11-29/gaap/tc3_request, "
         "SignedHeaders=content-type;host, Signature=%s ",
         "64 lowercase hex digits"},
        {"TC3-HMAC-SHA256 Credential=" SDK_ID "/2024-11-29/gaap/tc3_request, "
         "SignedHeaders=content-type;host, Signature=%.63s",
         "64 lowercase hex digits"},
        {"TC3-HMAC-SHA256 Credential=" SDK_ID "/2024-11-29/gaap/tc3_request, "
         "SignedHeaders=content-type;host, Signature=%.10sABCDEF0123456789ABCDEF0123456789ABCDEF"
         "0123456789ABCDEF",
         "64 lowercase hex digits"},
        {"TC3-HMAC-SHA256 Credential=" SDK_ID "/2024-11-29/gaap/tc3_request "
         "SignedHeaders=content-type;host, Signature=%s",
         "must be TC3-HMAC-SHA256 Credential="},
        {"TC3-HMAC-SHA256 Credential=" SDK_ID "/2024-11-29/gaap/tc3_requesx, "
         "SignedHeaders=content-type;host, Signature=%s",
         "must be TC3-HMAC-SHA256 Credential="},
        {"TC3-HMAC-SHA256 Signature=%s", "must be TC3-HMAC-SHA256 Credential="},
        {"TC3-HMAC-SHA256 Credential=/2024-11-29/gaap/tc3_request, "
         "SignedHeaders=content-type;host, Signature=%s",
         "The SecretId"},
        {"TC3-HMAC-SHA256 Credential=" SDK_ID "/2024-1-29/gaap/tc3_request, "
         "SignedHeaders=content-type;host, Signature=%s",
         "The date"},
        {"TC3-HMAC-SHA256 Credential=" SDK_ID "/2024-11-29/ga*ap/tc3_request, "
         "SignedHeaders=content-type;host, Signature=%s",
         "The service"},
        {"TC3-HMAC-SHA256  Credential=" SDK_ID "/2024-11-29/gaap/tc3_request, "
         "SignedHeaders=content-type;host, Signature=%s",
         "must be TC3-HMAC-SHA256 Credential="},
        {"TC3-HMAC-SHA1 Credential=" SDK_ID "/2024-11-29/gaap/tc3_request, "
         "SignedHeaders=content-type;host, Signature=%s",
         "must be Bearer or TC3-HMAC-SHA256"},
        {"Basic %s", "must be Bearer or TC3-HMAC-SHA256"},
        {"", "must be Bearer or TC3-HMAC-SHA256"},
    };
    for (size_t i = 0; i < sizeof forms / sizeof *forms; i++) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        snprintf(auth, sizeof auth, forms[i].fmt, sig);
#pragma GCC diagnostic pop
        set(&r, "Authorization", auth);
        in = input_of(&r, GW_ACCEPT_SDK_KEY);
        expect(f, &in, GW_ERR_CRYPTO, "AuthFailure.InvalidAuthorization", forms[i].text);
    }
    /* Spaces after the commas are the SDKs' but not required: the signature still decides. */
    sdk_request(&r);
    snprintf(auth, sizeof auth,
             "TC3-HMAC-SHA256 Credential=" SDK_ID "/2024-11-29/gaap/tc3_request,"
             "SignedHeaders=content-type;host,Signature=%s",
             sig);
    set(&r, "Authorization", auth);
    in = input_of(&r, GW_ACCEPT_SDK_KEY);
    expect(f, &in, GW_OK, NULL, "sdk-bot");

    /* Too long, several, or on a listener that takes no SDK keys. */
    sdk_request(&r);
    memset(auth, 'A', 3000);
    memcpy(auth, "Bearer ", 7);
    auth[3000] = '\0';
    set(&r, "Authorization", auth);
    in = input_of(&r, ALL);
    expect(f, &in, GW_ERR_CRYPTO, "AuthFailure.InvalidAuthorization", "longer than 2048 bytes");
    sdk_request(&r);
    r.h[r.n].name = "authorization";
    snprintf(r.h[r.n].value, sizeof r.h[r.n].value, "Bearer " TOKEN);
    r.n++;
    in = input_of(&r, ALL);
    expect(f, &in, GW_ERR_CRYPTO, "AuthFailure.InvalidAuthorization", "several Authorization");
    sdk_request(&r);
    in = input_of(&r, GW_ACCEPT_TOKEN | GW_ACCEPT_CERT);
    expect(f, &in, GW_ERR_CRYPTO, "AuthFailure.InvalidAuthorization",
           "TC3-HMAC-SHA256 signatures (SDK keys) are not accepted here: this listener accepts "
           "Authorization: Bearer <token> (tcgw callers add NAME), or a client certificate");
}

/* The replay cache full where a signature would go: refused, not forgotten. */
static void test_sdk_replay_cache_full(void **state)
{
    struct fixture *f = *state;
    struct request r;
    unsigned char key[GW_REPLAY_KEY_LEN];

    sdk_request(&r);
    const char *sig = strstr(lookup(&r, "Authorization"), "Signature=") + 10;
    assert_int_equal(sodium_hex2bin(key, sizeof key, sig, 32, NULL, NULL, NULL), 0);
    /* Same stripe and start slot (the first 9 bytes), other keys: the window fills up. */
    for (unsigned i = 0; i < 32; i++) {
        key[15] = (unsigned char)(key[15] ^ (i + 1));
        assert_int_equal(gw_replay_check(f->replay, key, NOW, NOW + 100), GW_OK);
        key[15] = (unsigned char)(key[15] ^ (i + 1));
    }
    struct gw_identify_input in = input_of(&r, GW_ACCEPT_SDK_KEY);
    expect(f, &in, GW_ERR_BUSY, "RequestLimitExceeded", "retry");
    r.now = NOW + 99;
    in = input_of(&r, GW_ACCEPT_SDK_KEY);
    expect(f, &in, GW_ERR_BUSY, "RequestLimitExceeded", "retry");
    /* Once those entries expire, their slots serve again (the signature is still in time). */
    r.now = NOW + 100;
    in = input_of(&r, GW_ACCEPT_SDK_KEY);
    expect(f, &in, GW_OK, NULL, "sdk-bot");
    expect(f, &in, GW_ERR_CRYPTO, "AuthFailure.SignatureFailure", "already received");
}

static void test_replay_cache(void **state)
{
    (void)state;
    struct gw_replay *r = NULL;
    unsigned char key[GW_REPLAY_KEY_LEN];
    memset(key, 7, sizeof key);

    assert_int_equal(gw_replay_new(1, &r), GW_OK);
    assert_int_equal(gw_replay_check(r, key, 1000, 1360), GW_OK);
    assert_int_equal(gw_replay_check(r, key, 1359, 1719), GW_ERR_EXISTS);
    /* Expired: seen anew (and recorded again). */
    assert_int_equal(gw_replay_check(r, key, 1360, 1720), GW_OK);
    assert_int_equal(gw_replay_check(r, key, 1361, 1721), GW_ERR_EXISTS);
    /* A window of 32 slots: the 33rd key that lands there is refused, and after expiry taken. */
    for (unsigned i = 1; i <= 32; i++) {
        key[15] = (unsigned char)i;
        assert_int_equal(gw_replay_check(r, key, 2000, i < 32 ? 3000 : 2500), GW_OK);
    }
    key[15] = 100;
    assert_int_equal(gw_replay_check(r, key, 2000, 3000), GW_ERR_BUSY);
    assert_int_equal(gw_replay_check(r, key, 2600, 3000), GW_OK);
    gw_replay_free(r);
    gw_replay_free(NULL);
}

struct race {
    struct gw_replay *replay;
    int ok;
};

static void *race_one(void *arg)
{
    struct race *race = arg;
    unsigned char key[GW_REPLAY_KEY_LEN];
    for (unsigned i = 0; i < 2000; i++) {
        memset(key, 0, sizeof key);
        memcpy(key, &i, sizeof i);
        key[8] = (unsigned char)(i * 7);
        if (gw_replay_check(race->replay, key, 100, 500) == GW_OK) {
            __atomic_fetch_add(&race->ok, 1, __ATOMIC_RELAXED);
        }
    }
    return NULL;
}

/* Four threads record the same 2000 signatures: each is accepted exactly once. */
static void test_replay_threads(void **state)
{
    (void)state;
    struct race race = {0};
    pthread_t t[4];
    assert_int_equal(gw_replay_new(GW_REPLAY_DEFAULT_SLOTS, &race.replay), GW_OK);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_create(&t[i], NULL, race_one, &race), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
    }
    assert_int_equal(race.ok, 2000);
    gw_replay_free(race.replay);
}

/* ---- Certificates and calls without identity ---- */

static void test_certificate(void **state)
{
    struct fixture *f = *state;
    struct request r;
    memset(&r, 0, sizeof r);
    struct gw_identify_input in = input_of(&r, GW_ACCEPT_CERT);

    in.cert_name = "spiffe://example.internal/mesh-bot";
    expect(f, &in, GW_OK, NULL, "mesh-bot");
    assert_int_equal(method_of(f, &in), GW_IDENTITY_CERT);

    in.cert_name = "spiffe://example.internal/stranger";
    expect(f, &in, GW_ERR_CRYPTO, "AuthFailure.InvalidAuthorization",
           "The client certificate's name spiffe://example.internal/stranger is not mapped to a "
           "caller");

    in.cert_error = "it has expired";
    expect(f, &in, GW_ERR_CRYPTO, "AuthFailure.InvalidAuthorization",
           "The client certificate was refused: it has expired");

    /* An Authorization header decides over a certificate. */
    in.cert_error = NULL;
    in.cert_name = "spiffe://example.internal/mesh-bot";
    in.accept = GW_ACCEPT_CERT | GW_ACCEPT_TOKEN;
    set(&r, "Authorization", "Bearer " TOKEN);
    expect(f, &in, GW_OK, NULL, "token-bot");

    /* A certificate refused (or absent) does not matter to a caller with a token. */
    in.cert_error = "no client certificate was presented";
    in.cert_name = NULL;
    expect(f, &in, GW_OK, NULL, "token-bot");
    in.cert_error = NULL;
    in.cert_name = "spiffe://example.internal/mesh-bot";

    /* A listener that takes no certificates does not look at one. */
    unset(&r, "Authorization");
    in.accept = GW_ACCEPT_TOKEN;
    expect(f, &in, GW_ERR_CRYPTO, "AuthFailure.InvalidAuthorization", "does not say who");
}

static void test_no_identity(void **state)
{
    struct fixture *f = *state;
    struct request r;
    memset(&r, 0, sizeof r);
    struct gw_identify_input in = input_of(&r, GW_ACCEPT_TOKEN | GW_ACCEPT_SDK_KEY);

    expect(f, &in, GW_ERR_CRYPTO, "AuthFailure.InvalidAuthorization",
           "The request does not say who is calling: this listener accepts Authorization: Bearer "
           "<token> (tcgw callers add NAME), or a TC3-HMAC-SHA256 signature made with a "
           "gateway-issued SDK key (tcgw callers add NAME --sdk-key).");
    in.accept = 0;
    expect(f, &in, GW_ERR_CRYPTO, "AuthFailure.InvalidAuthorization", "no identity method");

    in.unauthenticated_caller = "anonymous";
    expect(f, &in, GW_OK, NULL, "anonymous");
    assert_int_equal(method_of(f, &in), GW_IDENTITY_LISTENER);
    in.unauthenticated_caller = "ghost";
    expect(f, &in, GW_ERR_NOT_FOUND, "InternalError", "unauthenticated_caller");
    /* Without a header lookup at all. */
    in.header = NULL;
    in.unauthenticated_caller = "anonymous";
    expect(f, &in, GW_OK, NULL, "anonymous");
}

/* ---- The stage over a call ---- */

static void test_identify_call(void **state)
{
    struct fixture *f = *state;
    struct request r;
    sdk_request(&r);
    struct gw_call *call = gw_call_new(4096, 4096);
    assert_non_null(call);
    call->in.method = "POST";
    call->in.target = "/";
    call->in.header = lookup;
    call->in.transport = &r;
    call->in.accept = GW_ACCEPT_SDK_KEY;
    snprintf(call->service, sizeof call->service, "gaap");
    assert_int_equal(gw_buf_append(&call->body, r.body, r.body_len), GW_OK);
    assert_int_equal(gw_identify_call(call, f->callers, f->vault, f->replay, NOW), GW_OK);
    assert_string_equal(call->caller, "sdk-bot");
    assert_int_equal(call->identity, GW_IDENTITY_SDK_KEY);
    assert_null(call->error_code);
    gw_call_free(call);

    /* The replay, through the stage: a refusal recorded on the call. */
    call = gw_call_new(4096, 4096);
    call->in.method = "POST";
    call->in.target = "/";
    call->in.header = lookup;
    call->in.transport = &r;
    call->in.accept = GW_ACCEPT_SDK_KEY;
    snprintf(call->service, sizeof call->service, "gaap");
    assert_int_equal(gw_buf_append(&call->body, r.body, r.body_len), GW_OK);
    assert_int_equal(gw_identify_call(call, f->callers, f->vault, f->replay, NOW), GW_ERR_CRYPTO);
    assert_string_equal(call->error_code, "AuthFailure.SignatureFailure");
    assert_non_null(strstr(call->error_message, "already received"));
    assert_string_equal(call->caller, "");
    assert_int_equal(call->identity, GW_IDENTITY_NONE);
    gw_call_free(call);
}

/* The SDK key as `tcgw callers add --sdk-key` leaves it: saved in the store, read back. */
static void test_sdk_key_from_saved_store(void **state)
{
    struct fixture *f = *state;
    struct request r;
    assert_int_equal(gw_vault_save(f->vault, f->store, f->msg, sizeof f->msg), GW_OK);
    gw_vault_free(f->vault);
    f->vault = NULL;
    assert_int_equal(gw_vault_open(f->key, f->store, &f->vault, f->msg, sizeof f->msg), GW_OK);
    assert_true(gw_vault_has_caller_key(f->vault, "sdk-bot"));
    sdk_request(&r);
    struct gw_identify_input in = input_of(&r, GW_ACCEPT_SDK_KEY);
    expect(f, &in, GW_OK, NULL, "sdk-bot");
    /* And the token's keyed hash is the same with the master key read again. */
    memset(&r, 0, sizeof r);
    set(&r, "Authorization", "Bearer " TOKEN);
    in = input_of(&r, GW_ACCEPT_TOKEN);
    expect(f, &in, GW_OK, NULL, "token-bot");
}

/* ---- Signatures made by Tencent's SDK ---- */

static const char *vstr(json_t *v, const char *key)
{
    return json_string_value(json_object_get(v, key));
}

/*
 * Every vector of tests/data/tc3-vectors.json (the official documentation's and the Node SDK's
 * own signatures): with a caller key holding the vector's SecretId and SecretKey, the verifier
 * accepts exactly that Authorization header, and refuses it with one byte of the body changed.
 */
static void test_tencent_vectors(void **state)
{
    struct fixture *f = *state;
    char path[PATH_MAX];
    json_error_t jerr;
    const char *src = getenv("TCGW_SOURCE_DIR");
    snprintf(path, sizeof path, "%s/tests/data/tc3-vectors.json", src != NULL ? src : "..");
    if (src == NULL) {
        snprintf(path, sizeof path, "data/tc3-vectors.json"); /* ctest runs in tests/ */
    }
    f->vectors_root = json_load_file(path, 0, &jerr);
    if (f->vectors_root == NULL) {
        fail_msg("cannot load %s: %s", path, jerr.text);
    }
    json_t *vectors = json_object_get(f->vectors_root, "vectors");
    assert_true(json_array_size(vectors) >= 14);

    size_t i;
    json_t *v;
    json_array_foreach (vectors, i, v) {
        char text[1024];
        char ts[32];
        struct request r;
        memset(&r, 0, sizeof r);
        const char *id = vstr(v, "secretId");
        const char *key = vstr(v, "secretKey");
        json_int_t t = json_integer_value(json_object_get(v, "timestamp"));

        /* A caller holding the vector's key, alone in the callers file. */
        snprintf(text, sizeof text,
                 "{\"callers\": {\"vector\": {\"sdk_secret_id\": \"%s\", \"credential\": \"d\"}}}",
                 id);
        write_callers(f, text);
        /* Two vectors may carry one signature (the same request): a fresh cache for each. */
        gw_replay_free(f->replay);
        f->replay = NULL;
        assert_int_equal(gw_replay_new(0, &f->replay), GW_OK);
        assert_int_equal(gw_vault_put_caller_key(f->vault, "vector", id, strlen(id), key,
                                                 strlen(key), f->msg, sizeof f->msg),
                         GW_OK);

        snprintf(r.service, sizeof r.service, "%s", vstr(v, "service"));
        snprintf(r.path, sizeof r.path, "/");
        r.now = (int64_t)t;
        set(&r, "Host", vstr(v, "host"));
        set(&r, "Content-Type", vstr(v, "contentType"));
        if (vstr(v, "action") != NULL) {
            set(&r, "X-TC-Action", vstr(v, "action"));
        }
        snprintf(ts, sizeof ts, "%lld", (long long)t);
        set(&r, "X-TC-Timestamp", ts);
        set(&r, "Authorization", vstr(v, "authorization"));
        set_body(&r, vstr(v, "payload"));

        struct gw_identify_input in = input_of(&r, GW_ACCEPT_SDK_KEY);
        struct gw_identity id_out;
        enum gw_err err = gw_identify(&in, f->callers, f->vault, f->replay, &id_out);
        if (err != GW_OK) {
            fail_msg("vector %s: %s %s", vstr(v, "name"), id_out.code, id_out.message);
        }
        assert_string_equal(id_out.caller->name, "vector");

        /* One byte of the body changed (or added, for an empty body): refused. */
        if (r.body_len > 0) {
            r.body[r.body_len / 2] ^= 1;
        } else {
            set_body(&r, " ");
        }
        in = input_of(&r, GW_ACCEPT_SDK_KEY);
        err = gw_identify(&in, f->callers, f->vault, f->replay, &id_out);
        assert_int_equal(err, GW_ERR_CRYPTO);
        assert_string_equal(id_out.code, "AuthFailure.SignatureFailure");
        assert_int_equal(gw_vault_remove(f->vault, GW_VAULT_CALLER_KEY, "vector"), GW_OK);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_token, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sdk_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sdk_replay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sdk_skew, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sdk_host_port_and_extra_headers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sdk_pointed_at_the_gateway, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sdk_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sdk_replay_cache_full, setup, teardown),
        cmocka_unit_test(test_replay_cache),
        cmocka_unit_test(test_replay_threads),
        cmocka_unit_test_setup_teardown(test_certificate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_identity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_identify_call, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sdk_key_from_saved_store, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tencent_vectors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
