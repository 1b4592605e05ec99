/* sdk_key: TC3-HMAC-SHA256 signatures made with gateway-issued SDK keys. See identify_int.h. */

/*
 * SHA-256 by OpenSSL's low-level functions, as vault/tc3.c hashes (it says why): a context on
 * the stack, no lock, no allocation, on every worker at once.
 */
#define OPENSSL_SUPPRESS_DEPRECATED

#include <openssl/sha.h>
#include <sodium.h>
#include <stdbool.h>
#include <string.h>

#include "identity/identify_int.h"
#include "vault/tc3.h"

#define TC3_FORM                                                                                   \
    "TC3-HMAC-SHA256 Credential=SECRETID/YYYY-MM-DD/SERVICE/tc3_request, "                         \
    "SignedHeaders=content-type;host, Signature=<64 hex digits>"
#define MAX_TIMESTAMP_DIGITS 11 /* up to 99999999999: beyond 9999-12-31 is refused anyway */

/* The parts of "TC3-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...". */
struct tc3_auth {
    char secret_id[GW_VAULT_MAX_SECRET_ID + 1];
    char date[GW_TC3_DATE_LEN + 1];
    char service[GW_TC3_MAX_SERVICE + 1];
    const char *signed_headers; /* into the header value */
    size_t signed_headers_len;
    char signature[GW_TC3_HEX_LEN + 1];
};

/* Bounded text built in place; over says it did not fit (then the text is unusable). */
struct text {
    char *p;
    size_t len;
    size_t max;
    bool over;
};

static void put(struct text *t, const void *s, size_t n)
{
    if (t->over || n > t->max - t->len) {
        t->over = true;
        return;
    }
    memcpy(t->p + t->len, s, n);
    t->len += n;
}

static void put_str(struct text *t, const char *s)
{
    put(t, s, strlen(s));
}

/* Lowercase ASCII letters (Tencent lowercases signed header values). */
static void put_lower(struct text *t, const char *s, size_t n)
{
    if (t->over || n > t->max - t->len) {
        t->over = true;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        t->p[t->len + i] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    }
    t->len += n;
}

static void put_sha256_hex(struct text *t, const void *p, size_t n)
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    char hex[2 * SHA256_DIGEST_LENGTH + 1];
    SHA256_CTX c;
    (void)SHA256_Init(&c);
    if (n > 0) {
        (void)SHA256_Update(&c, p, n);
    }
    (void)SHA256_Final(md, &c);
    sodium_bin2hex(hex, sizeof hex, md, sizeof md);
    put(t, hex, 2 * SHA256_DIGEST_LENGTH);
}

/* Copies the n bytes at s into out[max + 1] when 1..max long and each byte is allowed. */
static bool take_field(const char *s, size_t n, char *out, size_t max, bool (*allowed)(char))
{
    if (n == 0 || n > max) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (!allowed(s[i])) {
            return false;
        }
    }
    memcpy(out, s, n);
    out[n] = '\0';
    return true;
}

static bool id_char(char c)
{
    return c > ' ' && c < 0x7f && c != '/' && c != ',';
}

static bool digit_or_dash(char c)
{
    return (c >= '0' && c <= '9') || c == '-';
}

static bool service_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

static bool hex_char(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* If *p starts with lit, moves past it and returns true. */
static bool eat(const char **p, const char *lit)
{
    size_t n = strlen(lit);
    if (strncmp(*p, lit, n) != 0) {
        return false;
    }
    *p += n;
    return true;
}

/* The bytes from *p up to the first of stops (or the end); *p moves to that stop. */
static size_t span(const char **p, const char *stops)
{
    size_t n = strcspn(*p, stops);
    *p += n;
    return n;
}

/*
 * Parses v (after "TC3-HMAC-SHA256 ") strictly, in the SDKs' order and spacing (", " between
 * parts; any number of spaces is allowed after each comma). On failure says which part is wrong.
 */
static enum gw_err parse_tc3(const char *v, struct tc3_auth *a, struct gw_identity *out)
{
    const char *p = v;
    const char *s;
    size_t n;

    if (!eat(&p, "Credential=")) {
        goto malformed;
    }
    s = p;
    n = span(&p, "/,");
    if (!take_field(s, n, a->secret_id, GW_VAULT_MAX_SECRET_ID, id_char) || !eat(&p, "/")) {
        return identify_refuse(
            out, GW_ERR_CRYPTO, "AuthFailure.InvalidAuthorization",
            "The SecretId in the Authorization header's Credential must be 1 to %d "
            "printable characters (the form is " TC3_FORM ").",
            GW_VAULT_MAX_SECRET_ID);
    }
    s = p;
    n = span(&p, "/,");
    if (!take_field(s, n, a->date, GW_TC3_DATE_LEN, digit_or_dash) || n != GW_TC3_DATE_LEN ||
        a->date[4] != '-' || a->date[7] != '-' || !eat(&p, "/")) {
        return identify_refuse(
            out, GW_ERR_CRYPTO, "AuthFailure.InvalidAuthorization",
            "The date in the Authorization header's Credential must be YYYY-MM-DD "
            "(the form is " TC3_FORM ").");
    }
    s = p;
    n = span(&p, "/,");
    if (!take_field(s, n, a->service, GW_TC3_MAX_SERVICE, service_char) || !eat(&p, "/")) {
        return identify_refuse(
            out, GW_ERR_CRYPTO, "AuthFailure.InvalidAuthorization",
            "The service in the Authorization header's Credential must be a service "
            "name such as cvm (the form is " TC3_FORM ").");
    }
    if (!eat(&p, "tc3_request,")) {
        goto malformed;
    }
    while (*p == ' ') {
        p++;
    }
    if (!eat(&p, "SignedHeaders=")) {
        goto malformed;
    }
    a->signed_headers = p;
    a->signed_headers_len = span(&p, ", ");
    if (!eat(&p, ",")) {
        goto malformed;
    }
    while (*p == ' ') {
        p++;
    }
    if (!eat(&p, "Signature=")) {
        goto malformed;
    }
    s = p;
    n = strlen(p);
    if (n != GW_TC3_HEX_LEN || !take_field(s, n, a->signature, GW_TC3_HEX_LEN, hex_char)) {
        return identify_refuse(
            out, GW_ERR_CRYPTO, "AuthFailure.InvalidAuthorization",
            "The Signature in the Authorization header must be %d lowercase hex digits "
            "and end the header (the form is " TC3_FORM ").",
            GW_TC3_HEX_LEN);
    }
    return GW_OK;
malformed:
    return identify_refuse(out, GW_ERR_CRYPTO, "AuthFailure.InvalidAuthorization",
                           "The Authorization header must be " TC3_FORM ".");
}

/* The timestamp of X-TC-Timestamp: decimal digits, no sign, no leading zero. */
static enum gw_err parse_timestamp(const struct gw_identify_input *in, int64_t *ts,
                                   const char **text, struct gw_identity *out)
{
    const char *v = in->header(in->transport, "X-TC-Timestamp");
    if (v == NULL || v[0] == '\0') {
        return identify_refuse(
            out, GW_ERR_CRYPTO, "MissingParameter",
            "The X-TC-Timestamp header is missing: a TC3 signature needs the Unix time "
            "it was made, in seconds.");
    }
    size_t n = strlen(v);
    bool ok = n <= MAX_TIMESTAMP_DIGITS && (v[0] != '0' || n == 1);
    int64_t t = 0;
    for (size_t i = 0; ok && i < n; i++) {
        ok = v[i] >= '0' && v[i] <= '9';
        t = t * 10 + (v[i] - '0');
    }
    if (!ok) {
        return identify_refuse(
            out, GW_ERR_CRYPTO, "InvalidParameterValue",
            "The X-TC-Timestamp header must be the Unix time in seconds, in decimal "
            "digits.");
    }
    *ts = t;
    *text = v;
    return GW_OK;
}

static bool header_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/*
 * The length of a Host value without its ":port": what an SDK signs when it takes the URL's
 * hostname (the Node SDK does), while its Host header carries the port. "[::1]:8080" -> "[::1]".
 */
static size_t hostname_len(const char *v, size_t n)
{
    size_t i = n;
    while (i > 0 && v[i - 1] >= '0' && v[i - 1] <= '9') {
        i--;
    }
    if (i == n || i == 0 || v[i - 1] != ':') {
        return n;
    }
    const char *close = memchr(v, ']', n);
    if (memchr(v, ':', i - 1) != NULL && (close == NULL || close != v + i - 2)) {
        return n; /* a bare IPv6 address: its last group is not a port */
    }
    return i - 1;
}

/* The first label of the Host received ("127" for 127.0.0.1:8080, "gaap" for gaap.x.com). */
static bool is_host_label(const struct gw_identify_input *in, const char *label)
{
    const char *host = in->header(in->transport, "host");
    if (host == NULL) {
        return false;
    }
    size_t n = strcspn(host, ".:");
    return n > 0 && strlen(label) == n && strncmp(host, label, n) == 0;
}

/*
 * Appends "name:value\n" for each signed header to cr, the value trimmed and lowercased, after
 * checking the list: lowercase names, strictly ascending (so sorted and each once), content-type
 * and host among them, each carried by the request.
 */
static enum gw_err put_signed_headers(const struct gw_identify_input *in, const struct tc3_auth *a,
                                      bool host_without_port, struct text *cr,
                                      struct gw_identity *out)
{
    const char *p = a->signed_headers;
    const char *end = p + a->signed_headers_len;
    char prev[GW_IDENTIFY_MAX_HEADER_NAME + 1] = "";
    char name[GW_IDENTIFY_MAX_HEADER_NAME + 1];
    bool content_type = false, host = false;
    size_t count = 0;

    for (;;) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        size_t n = (size_t)((semi != NULL ? semi : end) - p);
        if (!take_field(p, n, name, GW_IDENTIFY_MAX_HEADER_NAME, header_name_char)) {
            return identify_refuse(
                out, GW_ERR_CRYPTO, "AuthFailure.InvalidAuthorization",
                "SignedHeaders in the Authorization header must be lowercase header "
                "names separated by ';', such as content-type;host.");
        }
        if (++count > GW_IDENTIFY_MAX_SIGNED_HEADERS || strcmp(prev, name) >= 0) {
            return identify_refuse(out, GW_ERR_CRYPTO, "AuthFailure.InvalidAuthorization",
                                   "SignedHeaders in the Authorization header must list at most %d "
                                   "header names, sorted, each once.",
                                   GW_IDENTIFY_MAX_SIGNED_HEADERS);
        }
        content_type |= strcmp(name, "content-type") == 0;
        host |= strcmp(name, "host") == 0;
        const char *v = in->header(in->transport, name);
        if (v == NULL) {
            return identify_refuse(
                out, GW_ERR_CRYPTO, "AuthFailure.SignatureFailure",
                "SignedHeaders names %s, which the request does not carry: sign the "
                "headers you send.",
                name);
        }
        size_t vn = strlen(v);
        while (vn > 0 && (v[0] == ' ' || v[0] == '\t')) {
            v++;
            vn--;
        }
        while (vn > 0 && (v[vn - 1] == ' ' || v[vn - 1] == '\t')) {
            vn--;
        }
        if (host_without_port && strcmp(name, "host") == 0) {
            vn = hostname_len(v, vn);
        }
        put(cr, name, n);
        put(cr, ":", 1);
        put_lower(cr, v, vn);
        put(cr, "\n", 1);
        memcpy(prev, name, n + 1);
        if (semi == NULL) {
            break;
        }
        p = semi + 1; /* a trailing ';' leaves an empty name, refused above */
    }
    if (!content_type || !host) {
        return identify_refuse(
            out, GW_ERR_CRYPTO, "AuthFailure.InvalidAuthorization",
            "SignedHeaders in the Authorization header must include content-type and "
            "host (the SDKs sign content-type;host).");
    }
    return GW_OK;
}

enum gw_err identify_by_sdk_key(const struct gw_identify_input *in, const char *value,
                                const struct gw_callers *callers, struct gw_vault *vault,
                                struct gw_replay *replay, struct gw_identity *out)
{
    enum gw_err err;
    struct tc3_auth a;
    int64_t ts = 0;
    const char *ts_text = "";
    char date[GW_TC3_DATE_LEN + 1] = "";
    char cr_bytes[GW_TC3_MAX_TEXT];
    char sts_bytes[GW_TC3_MAX_TEXT];
    struct text cr = {.p = cr_bytes, .max = sizeof cr_bytes};
    struct text sts = {.p = sts_bytes, .max = sizeof sts_bytes};
    unsigned char key[GW_REPLAY_KEY_LEN];

    if ((in->accept & GW_ACCEPT_SDK_KEY) == 0) {
        return identify_refuse_method(
            out, in->accept, "TC3-HMAC-SHA256 signatures (SDK keys) are not accepted here");
    }
    if ((err = parse_tc3(value, &a, out)) != GW_OK ||
        (err = parse_timestamp(in, &ts, &ts_text, out)) != GW_OK) {
        return err;
    }
    if (ts > in->now + GW_IDENTIFY_MAX_SKEW || ts < in->now - GW_IDENTIFY_MAX_SKEW) {
        return identify_refuse(
            out, GW_ERR_CRYPTO, "AuthFailure.SignatureExpire",
            "X-TC-Timestamp is %lld seconds %s the gateway's clock, more than the %d "
            "allowed: sign each call when it is sent, with a synchronised clock.",
            (long long)(ts > in->now ? ts - in->now : in->now - ts),
            ts > in->now ? "ahead of" : "behind", GW_IDENTIFY_MAX_SKEW);
    }
    if (gw_tc3_date(ts, date) != GW_OK || strcmp(date, a.date) != 0) {
        return identify_refuse(
            out, GW_ERR_CRYPTO, "AuthFailure.SignatureFailure",
            "The date in the Authorization header's Credential (%s) must be the UTC "
            "date of X-TC-Timestamp (%s).",
            a.date, date);
    }
    /*
     * An SDK names the service of its signature after the first label of its endpoint: pointed
     * at http://127.0.0.1:8080/gaap it signs for "127". The Host it signed binds the signature
     * to this gateway either way, and the service called is the one the request names.
     */
    if (in->service == NULL ||
        (strcmp(a.service, in->service) != 0 && !is_host_label(in, a.service))) {
        return identify_refuse(
            out, GW_ERR_CRYPTO, "AuthFailure.SignatureFailure",
            "The service in the Authorization header's Credential (%s) must be the "
            "service called (%s).",
            a.service, in->service != NULL ? in->service : "");
    }
    const struct gw_caller *caller = gw_callers_by_secret_id(callers, a.secret_id);
    if (caller == NULL) {
        return identify_refuse(
            out, GW_ERR_CRYPTO, "AuthFailure.SecretIdNotFound",
            "The SecretId is not an SDK key of this gateway: use the SecretId and "
            "SecretKey `tcgw callers add NAME --sdk-key` printed.");
    }

    /*
     * The canonical request, as Tencent Cloud builds it, over exactly the bytes received; when
     * that does not match and the Host carries a port, once more with the Host as a hostname.
     */
    for (int attempt = 0; attempt < 2; attempt++) {
        bool host_without_port = attempt == 1;
        cr.len = 0;
        sts.len = 0;
        put_str(&cr, in->method != NULL ? in->method : "");
        put(&cr, "\n", 1);
        put_str(&cr, in->path != NULL ? in->path : "");
        put(&cr, "\n\n", 2); /* the canonical query string: empty (queries are refused earlier) */
        if ((err = put_signed_headers(in, &a, host_without_port, &cr, out)) != GW_OK) {
            return err;
        }
        put(&cr, "\n", 1);
        put(&cr, a.signed_headers, a.signed_headers_len);
        put(&cr, "\n", 1);
        put_sha256_hex(&cr, in->body, in->body_len);
        if (cr.over) {
            return identify_refuse(
                out, GW_ERR_CRYPTO, "AuthFailure.InvalidAuthorization",
                "The signed headers are too long: together they may hold about %d "
                "bytes.",
                GW_TC3_MAX_TEXT - 256);
        }
        put_str(&sts, IDENTIFY_TC3 "\n");
        put_str(&sts, ts_text);
        put(&sts, "\n", 1);
        put_str(&sts, a.date);
        put(&sts, "/", 1);
        put_str(&sts, a.service);
        put_str(&sts, "/tc3_request\n");
        put_sha256_hex(&sts, cr.p, cr.len);
        if (sts.over) {
            return identify_refuse(out, GW_ERR_INTERNAL, "InternalError",
                                   "tcgw could not build the string to sign.");
        }
        err = vault != NULL ? gw_vault_verify(vault, caller->name, a.secret_id, a.date, a.service,
                                              sts.p, sts.len, a.signature)
                            : GW_ERR_INTERNAL;
        const char *host = in->header(in->transport, "host");
        if (err != GW_ERR_CRYPTO || host == NULL ||
            hostname_len(host, strlen(host)) == strlen(host)) {
            break;
        }
    }
    switch (err) {
    case GW_OK:
        break;
    case GW_ERR_CRYPTO:
        return identify_refuse(
            out, GW_ERR_CRYPTO, "AuthFailure.SignatureFailure",
            "The signature does not match: sign with the SecretKey issued with this "
            "SecretId, over the exact method, path, signed headers and body sent.");
    case GW_ERR_INVALID:
        return identify_refuse(out, GW_ERR_CRYPTO, "AuthFailure.InvalidAuthorization",
                               "The Authorization header must be " TC3_FORM ".");
    case GW_ERR_NOT_FOUND:
        return identify_refuse(
            out, GW_ERR_NOT_FOUND, "InternalError",
            "tcgw holds no key for this SDK key in its credential store: the operator "
            "must issue a new one (tcgw callers remove, then add --sdk-key).");
    default:
        return identify_refuse(
            out, GW_ERR_INTERNAL, "InternalError",
            "tcgw could not check the signature (its key store is unavailable).");
    }

    /* Kept past the last instant the skew check would take it, so a replay always meets it. */
    if (replay == NULL ||
        sodium_hex2bin(key, sizeof key, a.signature, 2 * sizeof key, NULL, NULL, NULL) != 0) {
        return identify_refuse(out, GW_ERR_INTERNAL, "InternalError",
                               "tcgw has no replay cache for signed calls.");
    }
    switch (gw_replay_check(replay, key, in->now, ts + GW_IDENTIFY_MAX_SKEW + GW_REPLAY_MARGIN)) {
    case GW_OK:
        return identify_as(out, caller, GW_IDENTITY_SDK_KEY);
    case GW_ERR_EXISTS:
        return identify_refuse(
            out, GW_ERR_CRYPTO, "AuthFailure.SignatureFailure",
            "This signed request was already received, and a signature is accepted "
            "once: sign each call anew (two identical calls signed in the same second "
            "carry the same signature).");
    case GW_ERR_BUSY:
        return identify_refuse(
            out, GW_ERR_BUSY, "RequestLimitExceeded",
            "tcgw is receiving more signed calls than it can remember to refuse their "
            "replays: retry in a few seconds.");
    default:
        return identify_refuse(out, GW_ERR_INTERNAL, "InternalError",
                               "tcgw could not record the signature.");
    }
}
