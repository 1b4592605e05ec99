/* tc3: TC3-HMAC-SHA256 request signing (Tencent Cloud API 3.0). See tc3.h. */

/*
 * Why OpenSSL's low-level SHA256_Init/Update/Final, deprecated since 3.0: they run the same
 * assembly as EVP (SHA-NI where the CPU has it) on a context that lives on the stack, so a
 * signature takes no lock and allocates nothing. The one-shots used before (HMAC(), EVP_Digest())
 * fetch the algorithm under a lock and allocate contexts on every call: as many instructions as
 * the hashing itself, and two signing threads got less done per CPU-second than one.
 * libsodium's SHA-256 is lock-free too but portable C: the same code on it signed 290k times per
 * CPU-second on the bench machine, against 1M on these. sha256_*() and SHA256_CTX below are the
 * only names of the hash to change should these calls ever go (the tests pass on either).
 * HMAC (RFC 2104) is built on it here.
 */
#define OPENSSL_SUPPRESS_DEPRECATED

#include "vault/tc3.h"

#include <openssl/sha.h>
#include <sodium.h>
#include <stdbool.h>
#include <string.h>

#define ALGORITHM "TC3-HMAC-SHA256"

/* The last second of 9999-12-31 UTC: beyond it the date no longer has four digits. */
#define MAX_TIMESTAMP INT64_C(253402300799)

/* Why: the first HMAC key ("TC3" + SecretKey) is built on the stack, so it needs a bound. */
#define MAX_SECRET_KEY 512

#define DAY_SECONDS 86400

/* ---- SHA-256 and HMAC-SHA256 ---- */

/*
 * OpenSSL's SHA256_Init/Update/Final only ever return 1 (they check nothing that can fail), so
 * their results are not tested.
 */
static void sha256_init(SHA256_CTX *c)
{
    (void)SHA256_Init(c);
}

static void sha256_update(SHA256_CTX *c, const void *p, size_t n)
{
    (void)SHA256_Update(c, p, n);
}

static void sha256_final(SHA256_CTX *c, unsigned char out[GW_TC3_KEY_LEN])
{
    (void)SHA256_Final(out, c);
}

/* out = SHA-256(p[0..n)); p may be NULL when n is 0. */
static void sha256(const void *p, size_t n, unsigned char out[GW_TC3_KEY_LEN])
{
    SHA256_CTX c;
    sha256_init(&c);
    if (n > 0) {
        sha256_update(&c, p, n);
    }
    sha256_final(&c, out);
    /* The state may come from a key (an HMAC key longer than a block). */
    sodium_memzero(&c, sizeof c);
}

/* Both halves of an HMAC under way; secret while the key is. */
struct hmac {
    SHA256_CTX inner;
    SHA256_CTX outer;
};

static void hmac_init(struct hmac *h, const unsigned char *key, size_t key_len)
{
    unsigned char pad[SHA256_CBLOCK] = {0};
    if (key_len > sizeof pad) {
        sha256(key, key_len, pad);
    } else {
        memcpy(pad, key, key_len);
    }
    for (size_t i = 0; i < sizeof pad; i++) {
        pad[i] ^= 0x36;
    }
    sha256_init(&h->inner);
    sha256_update(&h->inner, pad, sizeof pad);
    for (size_t i = 0; i < sizeof pad; i++) {
        pad[i] ^= 0x36 ^ 0x5c;
    }
    sha256_init(&h->outer);
    sha256_update(&h->outer, pad, sizeof pad);
    sodium_memzero(pad, sizeof pad);
}

/* Writes the MAC and wipes h. */
static void hmac_final(struct hmac *h, unsigned char out[GW_TC3_KEY_LEN])
{
    unsigned char inner[GW_TC3_KEY_LEN];
    sha256_final(&h->inner, inner);
    sha256_update(&h->outer, inner, sizeof inner);
    sha256_final(&h->outer, out);
    sodium_memzero(inner, sizeof inner);
    sodium_memzero(h, sizeof *h);
}

/* out = HMAC-SHA256(key, data). */
static void hmac256(const unsigned char *key, size_t key_len, const void *data, size_t n,
                    unsigned char out[GW_TC3_KEY_LEN])
{
    struct hmac h;
    hmac_init(&h, key, key_len);
    sha256_update(&h.inner, data, n);
    hmac_final(&h, out);
}

/* ---- Texts ---- */

/*
 * A text built in an array of max bytes: a bounded blob with a cursor. A write that does not fit
 * writes nothing and marks the text over (GW_ERR_TOO_LARGE); later writes are ignored.
 */
struct text {
    char *p;
    size_t len;
    size_t max;
    bool over;
};

static struct text text_in(char *p, size_t max)
{
    return (struct text){.p = p, .len = 0, .max = max, .over = false};
}

/* Returns where n bytes may be written and counts them, or NULL when they do not fit. */
static char *take(struct text *t, size_t n)
{
    if (t->over || n > t->max - t->len) {
        t->over = true;
        return NULL;
    }
    char *at = t->p + t->len;
    t->len += n;
    return at;
}

static void put(struct text *t, const void *s, size_t n)
{
    char *at = take(t, n);
    if (at != NULL) {
        memcpy(at, s, n);
    }
}

/* A string literal, its length known at compile time. */
#define PUT_LIT(t, lit) put((t), (lit), sizeof(lit) - 1)

/* s[0..n) with A-Z lowercased. */
static void put_lower(struct text *t, const char *s, size_t n)
{
    char *at = take(t, n);
    for (size_t i = 0; at != NULL && i < n; i++) {
        char c = s[i];
        at[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
}

static void hex_encode(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0x0f];
    }
}

/* The lowercase hex of a digest. */
static void put_hex(struct text *t, const unsigned char md[GW_TC3_KEY_LEN])
{
    char *at = take(t, GW_TC3_HEX_LEN);
    if (at != NULL) {
        hex_encode(md, GW_TC3_KEY_LEN, at);
    }
}

/* v >= 0 in decimal. */
static void put_decimal(struct text *t, int64_t v)
{
    char d[20];
    size_t i = sizeof d;
    uint64_t u = (uint64_t)v;
    do {
        d[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    put(t, d + i, sizeof d - i);
}

/* ---- Checks ---- */

enum text_kind {
    TEXT,  /* goes into a header line: no control characters (CR, LF, NUL, DEL, ...) */
    TOKEN, /* sits inside the Authorization value: also no space or ',' */
    ID,    /* the SecretId, a segment of the credential scope: also no '/' */
};

/*
 * The length of s when it is non-empty and of its kind, else 0. Why strlen first and no early
 * exit: a counted loop with no branch per character is one the compiler can vectorise, and these
 * checks run on every signature.
 */
static size_t checked_len(const char *s, enum text_kind kind)
{
    if (s == NULL) {
        return 0;
    }
    size_t n = strlen(s);
    int token = kind != TEXT;
    int id = kind == ID;
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        bad |= (c < 0x20) | (c == 0x7f) | (token & ((c == ' ') | (c == ','))) | (id & (c == '/'));
    }
    return bad ? 0 : n;
}

/*
 * The length of a service name, one path segment of the credential scope: 1..GW_TC3_MAX_SERVICE
 * letters, digits, '.', '_', '-'. 0 when refused.
 */
static size_t service_len(const char *s)
{
    if (s == NULL) {
        return 0;
    }
    size_t n = strnlen(s, GW_TC3_MAX_SERVICE + 1);
    int ok = n > 0 && n <= GW_TC3_MAX_SERVICE;
    for (size_t i = 0; ok && i < n; i++) {
        unsigned c = (unsigned char)s[i];
        ok = ((c | 0x20) - 'a' < 26) | (c - '0' < 10) | (c == '.') | (c == '_') | (c == '-');
    }
    return ok ? n : 0;
}

static int date_ok(const char *d)
{
    if (d == NULL || strlen(d) != GW_TC3_DATE_LEN) {
        return 0;
    }
    for (size_t i = 0; i < GW_TC3_DATE_LEN; i++) {
        int want_dash = (i == 4 || i == 7);
        if (want_dash ? d[i] != '-' : (d[i] < '0' || d[i] > '9')) {
            return 0;
        }
    }
    return 1;
}

/* The lengths of a checked request's strings (action: 0 when NULL). */
struct lens {
    size_t service;
    size_t host;
    size_t content_type;
    size_t action;
};

static enum gw_err check_request(const struct gw_tc3_request *req, struct lens *n)
{
    if (req == NULL || (req->payload == NULL && req->payload_len > 0)) {
        return GW_ERR_INVALID;
    }
    n->service = service_len(req->service);
    n->host = checked_len(req->host, TOKEN);
    n->content_type = checked_len(req->content_type, TEXT);
    n->action = req->action != NULL ? checked_len(req->action, TOKEN) : 0;
    if (n->service == 0 || n->host == 0 || n->content_type == 0 ||
        (req->action != NULL && n->action == 0)) {
        return GW_ERR_INVALID;
    }
    return GW_OK;
}

/* Exactly GW_TC3_HEX_LEN lowercase hex digits; no branch per digit (they are random). */
static int signature_ok(const char *sig)
{
    if (strnlen(sig, GW_TC3_HEX_LEN + 1) != GW_TC3_HEX_LEN) {
        return 0;
    }
    int ok = 1;
    for (size_t i = 0; i < GW_TC3_HEX_LEN; i++) {
        unsigned c = (unsigned char)sig[i];
        ok &= (c - '0' < 10) | (c - 'a' < 6);
    }
    return ok;
}

/* ---- The signature ---- */

enum gw_err gw_tc3_date(int64_t timestamp, char out[GW_TC3_DATE_LEN + 1])
{
    if (timestamp < 0 || timestamp > MAX_TIMESTAMP) {
        return GW_ERR_INVALID;
    }
    /*
     * The civil date of a day count (H. Hinnant's civil_from_days), in years that start on
     * March 1st so that the leap day comes last. Not gmtime_r: glibc takes its time zone lock
     * on every call, which signers on several threads would queue for.
     */
    uint32_t z = (uint32_t)(timestamp / DAY_SECONDS) + 719468; /* days since 0000-03-01 */
    uint32_t era = z / 146097;                                 /* 400-year cycles */
    uint32_t doe = z - era * 146097;                           /* day of the era, 0..146096 */
    uint32_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* 0..399 */
    uint32_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);               /* 0..365 */
    uint32_t mp = (5 * doy + 2) / 153; /* month from March, 0..11 */
    uint32_t day = doy - (153 * mp + 2) / 5 + 1;
    uint32_t mon = mp < 10 ? mp + 3 : mp - 9;
    uint32_t year = era * 400 + yoe + (mon <= 2);

    /* Digits by hand: exact width with no snprintf truncation to reason about. */
    out[0] = (char)('0' + year / 1000);
    out[1] = (char)('0' + year / 100 % 10);
    out[2] = (char)('0' + year / 10 % 10);
    out[3] = (char)('0' + year % 10);
    out[4] = '-';
    out[5] = (char)('0' + mon / 10);
    out[6] = (char)('0' + mon % 10);
    out[7] = '-';
    out[8] = (char)('0' + day / 10);
    out[9] = (char)('0' + day % 10);
    out[10] = '\0';
    return GW_OK;
}

static const char *signed_headers(const struct gw_tc3_request *req)
{
    return req->action != NULL ? "content-type;host;x-tc-action" : "content-type;host";
}

/* Writes the canonical request of a request that check_request accepted, with lengths n. */
static void put_canonical(const struct gw_tc3_request *req, const struct lens *n, struct text *t)
{
    unsigned char payload_hash[GW_TC3_KEY_LEN];

    sha256(req->payload, req->payload_len, payload_hash);
    PUT_LIT(t, "POST\n/\n\ncontent-type:");
    put(t, req->content_type, n->content_type);
    PUT_LIT(t, "\nhost:");
    put(t, req->host, n->host);
    if (req->action != NULL) {
        PUT_LIT(t, "\nx-tc-action:");
        put_lower(t, req->action, n->action);
        PUT_LIT(t, "\n\ncontent-type;host;x-tc-action\n");
    } else {
        PUT_LIT(t, "\n\ncontent-type;host\n");
    }
    put_hex(t, payload_hash);
}

/* Writes the string to sign into sts. */
static enum gw_err put_string_to_sign(const struct gw_tc3_request *req, struct text *sts)
{
    enum gw_err err;
    struct lens n;
    char date[GW_TC3_DATE_LEN + 1];
    char cr_bytes[GW_TC3_MAX_TEXT];
    struct text cr = text_in(cr_bytes, sizeof cr_bytes);
    unsigned char cr_hash[GW_TC3_KEY_LEN];

    if ((err = check_request(req, &n)) != GW_OK) {
        return err;
    }
    put_canonical(req, &n, &cr);
    if (cr.over) {
        return GW_ERR_TOO_LARGE;
    }
    if ((err = gw_tc3_date(req->timestamp, date)) != GW_OK) {
        return err;
    }
    sha256(cr.p, cr.len, cr_hash);
    PUT_LIT(sts, ALGORITHM "\n");
    put_decimal(sts, req->timestamp);
    PUT_LIT(sts, "\n");
    put(sts, date, GW_TC3_DATE_LEN);
    PUT_LIT(sts, "/");
    put(sts, req->service, n.service);
    PUT_LIT(sts, "/tc3_request\n");
    put_hex(sts, cr_hash);
    return sts->over ? GW_ERR_TOO_LARGE : GW_OK;
}

enum gw_err gw_tc3_canonical_request(const struct gw_tc3_request *req, struct gw_buf *out)
{
    enum gw_err err;
    struct lens n;
    char bytes[GW_TC3_MAX_TEXT];
    struct text cr = text_in(bytes, sizeof bytes);

    if ((err = check_request(req, &n)) != GW_OK) {
        return err;
    }
    put_canonical(req, &n, &cr);
    if (cr.over) {
        return GW_ERR_TOO_LARGE;
    }
    /* One append: out is left unchanged when it cannot take the whole text. */
    return gw_buf_append(out, cr.p, cr.len);
}

enum gw_err gw_tc3_string_to_sign(const struct gw_tc3_request *req, struct gw_buf *out)
{
    enum gw_err err;
    char bytes[GW_TC3_MAX_TEXT];
    struct text sts = text_in(bytes, sizeof bytes);

    if ((err = put_string_to_sign(req, &sts)) != GW_OK) {
        return err;
    }
    return gw_buf_append(out, sts.p, sts.len);
}

enum gw_err gw_tc3_derive_key(const unsigned char *secret_key, size_t secret_key_len,
                              const char *date, const char *service,
                              unsigned char out[GW_TC3_KEY_LEN])
{
    unsigned char k0[3 + MAX_SECRET_KEY];
    unsigned char k1[GW_TC3_KEY_LEN];
    unsigned char k2[GW_TC3_KEY_LEN];
    static const char tc3_request[] = "tc3_request";
    size_t service_n = service_len(service);

    if (secret_key == NULL || secret_key_len == 0 || !date_ok(date) || service_n == 0) {
        return GW_ERR_INVALID;
    }
    if (secret_key_len > MAX_SECRET_KEY) {
        return GW_ERR_TOO_LARGE;
    }
    memcpy(k0, "TC3", 3);
    memcpy(k0 + 3, secret_key, secret_key_len);
    hmac256(k0, 3 + secret_key_len, date, GW_TC3_DATE_LEN, k1);
    hmac256(k1, sizeof k1, service, service_n, k2);
    hmac256(k2, sizeof k2, tc3_request, sizeof tc3_request - 1, out);
    sodium_memzero(k0, 3 + secret_key_len);
    sodium_memzero(k1, sizeof k1);
    sodium_memzero(k2, sizeof k2);
    return GW_OK;
}

enum gw_err gw_tc3_signature(const unsigned char signing_key[GW_TC3_KEY_LEN],
                             const char *string_to_sign, size_t len, char out[GW_TC3_HEX_LEN + 1])
{
    unsigned char mac[GW_TC3_KEY_LEN];

    if (signing_key == NULL || string_to_sign == NULL) {
        return GW_ERR_INVALID;
    }
    if (len > GW_TC3_MAX_TEXT) {
        return GW_ERR_TOO_LARGE;
    }
    hmac256(signing_key, GW_TC3_KEY_LEN, string_to_sign, len, mac);
    hex_encode(mac, sizeof mac, out);
    out[GW_TC3_HEX_LEN] = '\0';
    sodium_memzero(mac, sizeof mac);
    return GW_OK;
}

enum gw_err gw_tc3_authorization(const char *secret_id, const struct gw_tc3_request *req,
                                 const char signature[GW_TC3_HEX_LEN + 1], struct gw_buf *out)
{
    enum gw_err err;
    struct lens n;
    char date[GW_TC3_DATE_LEN + 1];
    char bytes[GW_TC3_MAX_TEXT];
    struct text a = text_in(bytes, sizeof bytes);
    size_t id_len = checked_len(secret_id, ID);

    if (id_len == 0 || signature == NULL || !signature_ok(signature)) {
        return GW_ERR_INVALID;
    }
    if ((err = check_request(req, &n)) != GW_OK ||
        (err = gw_tc3_date(req->timestamp, date)) != GW_OK) {
        return err;
    }
    PUT_LIT(&a, ALGORITHM " Credential=");
    put(&a, secret_id, id_len);
    PUT_LIT(&a, "/");
    put(&a, date, GW_TC3_DATE_LEN);
    PUT_LIT(&a, "/");
    put(&a, req->service, n.service);
    PUT_LIT(&a, "/tc3_request, SignedHeaders=");
    put(&a, signed_headers(req), strlen(signed_headers(req)));
    PUT_LIT(&a, ", Signature=");
    put(&a, signature, GW_TC3_HEX_LEN);
    if (a.over) {
        return GW_ERR_TOO_LARGE;
    }
    return gw_buf_append(out, a.p, a.len);
}

enum gw_err gw_tc3_sign(const char *secret_id, const unsigned char *secret_key,
                        size_t secret_key_len, const struct gw_tc3_request *req, struct gw_buf *out)
{
    enum gw_err err;
    char date[GW_TC3_DATE_LEN + 1];
    char sig[GW_TC3_HEX_LEN + 1];
    unsigned char key[GW_TC3_KEY_LEN];
    char bytes[GW_TC3_MAX_TEXT];
    struct text sts = text_in(bytes, sizeof bytes);

    /* Also refuses a NULL request. */
    if ((err = put_string_to_sign(req, &sts)) != GW_OK) {
        return err;
    }
    if ((err = gw_tc3_date(req->timestamp, date)) != GW_OK) {
        return err;
    }
    if ((err = gw_tc3_derive_key(secret_key, secret_key_len, date, req->service, key)) != GW_OK) {
        goto out;
    }
    if ((err = gw_tc3_signature(key, sts.p, sts.len, sig)) != GW_OK) {
        goto out;
    }
    err = gw_tc3_authorization(secret_id, req, sig, out);
out:
    sodium_memzero(key, sizeof key);
    return err;
}
