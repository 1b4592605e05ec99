/* tc3: TC3-HMAC-SHA256 request signing (Tencent Cloud API 3.0). See tc3.h. */
#include "vault/tc3.h"

#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>
#include <time.h>

#define ALGORITHM "TC3-HMAC-SHA256"

/* The last second of 9999-12-31 UTC: beyond it the date no longer has four digits. */
#define MAX_TIMESTAMP INT64_C(253402300799)

/* Why: the first HMAC key ("TC3" + SecretKey) is built on the stack, so it needs a bound. */
#define MAX_SECRET_KEY 512

/* Text that goes into a header line: no control characters (CR, LF, NUL, DEL, ...). */
static int text_ok(const char *s)
{
    if (s == NULL || *s == '\0') {
        return 0;
    }
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if (*p < 0x20 || *p == 0x7f) {
            return 0;
        }
    }
    return 1;
}

/* A token that may also contain no space or ',' (it sits inside the Authorization value). */
static int token_ok(const char *s, const char *also_refused)
{
    if (!text_ok(s)) {
        return 0;
    }
    for (const char *p = s; *p != '\0'; p++) {
        if (*p == ' ' || *p == ',' || strchr(also_refused, *p) != NULL) {
            return 0;
        }
    }
    return 1;
}

/* The service is one path segment of the credential scope: letters, digits, '.', '_', '-'. */
static int service_ok(const char *s)
{
    if (s == NULL || *s == '\0' || strnlen(s, GW_TC3_MAX_SERVICE + 1) > GW_TC3_MAX_SERVICE) {
        return 0;
    }
    for (const char *p = s; *p != '\0'; p++) {
        int c = (unsigned char)*p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-')) {
            return 0;
        }
    }
    return 1;
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

static enum gw_err check_request(const struct gw_tc3_request *req)
{
    if (req == NULL || !service_ok(req->service) || !token_ok(req->host, "") ||
        !text_ok(req->content_type) || (req->payload == NULL && req->payload_len > 0)) {
        return GW_ERR_INVALID;
    }
    if (req->action != NULL && !token_ok(req->action, "")) {
        return GW_ERR_INVALID;
    }
    return GW_OK;
}

static void hex_encode(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0x0f];
    }
    out[2 * n] = '\0';
}

static enum gw_err sha256_hex(const void *p, size_t n, char out[GW_TC3_HEX_LEN + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    static const unsigned char empty[1] = {0};
    if (EVP_Digest(n > 0 ? p : empty, n, md, &md_len, EVP_sha256(), NULL) != 1 ||
        md_len != GW_TC3_KEY_LEN) {
        return GW_ERR_INTERNAL;
    }
    hex_encode(md, md_len, out);
    return GW_OK;
}

/* out = HMAC-SHA256(key, data). */
static enum gw_err hmac256(const unsigned char *key, size_t key_len, const void *data, size_t n,
                           unsigned char out[GW_TC3_KEY_LEN])
{
    unsigned int len = 0;
    if (key_len > INT_MAX) {
        return GW_ERR_TOO_LARGE;
    }
    if (HMAC(EVP_sha256(), key, (int)key_len, data, n, out, &len) == NULL ||
        len != GW_TC3_KEY_LEN) {
        OPENSSL_cleanse(out, GW_TC3_KEY_LEN);
        return GW_ERR_INTERNAL;
    }
    return GW_OK;
}

enum gw_err gw_tc3_date(int64_t timestamp, char out[GW_TC3_DATE_LEN + 1])
{
    if (timestamp < 0 || timestamp > MAX_TIMESTAMP) {
        return GW_ERR_INVALID;
    }
    time_t t = (time_t)timestamp;
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL) {
        return GW_ERR_INVALID;
    }
    int year = tm.tm_year + 1900;
    int mon = tm.tm_mon + 1;
    int day = tm.tm_mday;
    if (year < 0 || year > 9999) {
        return GW_ERR_INVALID;
    }
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

/* Builds the canonical request into cr, which the caller initialised with max GW_TC3_MAX_TEXT. */
static enum gw_err build_canonical(const struct gw_tc3_request *req, struct gw_buf *cr)
{
    enum gw_err err;
    char payload_hash[GW_TC3_HEX_LEN + 1];

    if ((err = check_request(req)) != GW_OK) {
        return err;
    }
    if ((err = sha256_hex(req->payload, req->payload_len, payload_hash)) != GW_OK) {
        return err;
    }
    if ((err = gw_buf_append_str(cr, "POST\n/\n\ncontent-type:")) != GW_OK ||
        (err = gw_buf_append_str(cr, req->content_type)) != GW_OK ||
        (err = gw_buf_append_str(cr, "\nhost:")) != GW_OK ||
        (err = gw_buf_append_str(cr, req->host)) != GW_OK ||
        (err = gw_buf_append_str(cr, "\n")) != GW_OK) {
        return err;
    }
    if (req->action != NULL) {
        if ((err = gw_buf_append_str(cr, "x-tc-action:")) != GW_OK) {
            return err;
        }
        for (const char *p = req->action; *p != '\0'; p++) {
            char c = (*p >= 'A' && *p <= 'Z') ? (char)(*p - 'A' + 'a') : *p;
            if ((err = gw_buf_append(cr, &c, 1)) != GW_OK) {
                return err;
            }
        }
        if ((err = gw_buf_append_str(cr, "\n")) != GW_OK) {
            return err;
        }
    }
    if ((err = gw_buf_append_str(cr, "\n")) != GW_OK ||
        (err = gw_buf_append_str(cr, signed_headers(req))) != GW_OK ||
        (err = gw_buf_append_str(cr, "\n")) != GW_OK ||
        (err = gw_buf_append(cr, payload_hash, GW_TC3_HEX_LEN)) != GW_OK) {
        return err;
    }
    return GW_OK;
}

enum gw_err gw_tc3_canonical_request(const struct gw_tc3_request *req, struct gw_buf *out)
{
    enum gw_err err;
    struct gw_buf cr;
    gw_buf_init(&cr, GW_TC3_MAX_TEXT);

    if ((err = build_canonical(req, &cr)) != GW_OK) {
        goto out;
    }
    /* One append: out is left unchanged when it cannot take the whole text. */
    err = gw_buf_append(out, cr.data, cr.len);
out:
    gw_buf_free(&cr);
    return err;
}

enum gw_err gw_tc3_string_to_sign(const struct gw_tc3_request *req, struct gw_buf *out)
{
    enum gw_err err;
    char date[GW_TC3_DATE_LEN + 1];
    char cr_hash[GW_TC3_HEX_LEN + 1];
    struct gw_buf cr, sts;
    gw_buf_init(&cr, GW_TC3_MAX_TEXT);
    gw_buf_init(&sts, GW_TC3_MAX_TEXT);

    if ((err = build_canonical(req, &cr)) != GW_OK) {
        goto out;
    }
    if ((err = gw_tc3_date(req->timestamp, date)) != GW_OK) {
        goto out;
    }
    if ((err = sha256_hex(cr.data, cr.len, cr_hash)) != GW_OK) {
        goto out;
    }
    if ((err = gw_buf_printf(&sts, ALGORITHM "\n%lld\n%s/%s/tc3_request\n%s",
                             (long long)req->timestamp, date, req->service, cr_hash)) != GW_OK) {
        goto out;
    }
    err = gw_buf_append(out, sts.data, sts.len);
out:
    gw_buf_free(&cr);
    gw_buf_free(&sts);
    return err;
}

enum gw_err gw_tc3_derive_key(const unsigned char *secret_key, size_t secret_key_len,
                              const char *date, const char *service,
                              unsigned char out[GW_TC3_KEY_LEN])
{
    enum gw_err err;
    unsigned char k0[3 + MAX_SECRET_KEY];
    unsigned char k1[GW_TC3_KEY_LEN];
    unsigned char k2[GW_TC3_KEY_LEN];
    unsigned char k3[GW_TC3_KEY_LEN];
    static const char tc3_request[] = "tc3_request";

    if (secret_key == NULL || secret_key_len == 0 || !date_ok(date) || !service_ok(service)) {
        return GW_ERR_INVALID;
    }
    if (secret_key_len > MAX_SECRET_KEY) {
        return GW_ERR_TOO_LARGE;
    }
    memcpy(k0, "TC3", 3);
    memcpy(k0 + 3, secret_key, secret_key_len);
    if ((err = hmac256(k0, 3 + secret_key_len, date, strlen(date), k1)) != GW_OK ||
        (err = hmac256(k1, sizeof k1, service, strlen(service), k2)) != GW_OK ||
        (err = hmac256(k2, sizeof k2, tc3_request, sizeof tc3_request - 1, k3)) != GW_OK) {
        goto out;
    }
    memcpy(out, k3, GW_TC3_KEY_LEN);
    err = GW_OK;
out:
    OPENSSL_cleanse(k0, sizeof k0);
    OPENSSL_cleanse(k1, sizeof k1);
    OPENSSL_cleanse(k2, sizeof k2);
    OPENSSL_cleanse(k3, sizeof k3);
    return err;
}

enum gw_err gw_tc3_signature(const unsigned char signing_key[GW_TC3_KEY_LEN],
                             const char *string_to_sign, size_t len, char out[GW_TC3_HEX_LEN + 1])
{
    enum gw_err err;
    unsigned char mac[GW_TC3_KEY_LEN];

    if (signing_key == NULL || string_to_sign == NULL) {
        return GW_ERR_INVALID;
    }
    if (len > GW_TC3_MAX_TEXT) {
        return GW_ERR_TOO_LARGE;
    }
    if ((err = hmac256(signing_key, GW_TC3_KEY_LEN, string_to_sign, len, mac)) != GW_OK) {
        return err;
    }
    hex_encode(mac, sizeof mac, out);
    OPENSSL_cleanse(mac, sizeof mac);
    return GW_OK;
}

static int signature_ok(const char *sig)
{
    for (size_t i = 0; i < GW_TC3_HEX_LEN; i++) {
        if (!((sig[i] >= '0' && sig[i] <= '9') || (sig[i] >= 'a' && sig[i] <= 'f'))) {
            return 0;
        }
    }
    return sig[GW_TC3_HEX_LEN] == '\0';
}

enum gw_err gw_tc3_authorization(const char *secret_id, const struct gw_tc3_request *req,
                                 const char signature[GW_TC3_HEX_LEN + 1], struct gw_buf *out)
{
    enum gw_err err;
    char date[GW_TC3_DATE_LEN + 1];
    struct gw_buf a;
    gw_buf_init(&a, GW_TC3_MAX_TEXT);

    if (!token_ok(secret_id, "/") || signature == NULL || !signature_ok(signature)) {
        err = GW_ERR_INVALID;
        goto out;
    }
    if ((err = check_request(req)) != GW_OK) {
        goto out;
    }
    if ((err = gw_tc3_date(req->timestamp, date)) != GW_OK) {
        goto out;
    }
    if ((err = gw_buf_printf(&a,
                             ALGORITHM " Credential=%s/%s/%s/tc3_request, SignedHeaders=%s, "
                                       "Signature=%s",
                             secret_id, date, req->service, signed_headers(req), signature)) !=
        GW_OK) {
        goto out;
    }
    err = gw_buf_append(out, a.data, a.len);
out:
    gw_buf_free(&a);
    return err;
}

enum gw_err gw_tc3_sign(const char *secret_id, const unsigned char *secret_key,
                        size_t secret_key_len, const struct gw_tc3_request *req, struct gw_buf *out)
{
    enum gw_err err;
    char date[GW_TC3_DATE_LEN + 1];
    char sig[GW_TC3_HEX_LEN + 1];
    unsigned char key[GW_TC3_KEY_LEN];
    struct gw_buf sts;
    gw_buf_init(&sts, GW_TC3_MAX_TEXT);

    if (req == NULL) {
        err = GW_ERR_INVALID;
        goto out;
    }
    if ((err = gw_tc3_string_to_sign(req, &sts)) != GW_OK) {
        goto out;
    }
    if ((err = gw_tc3_date(req->timestamp, date)) != GW_OK) {
        goto out;
    }
    if ((err = gw_tc3_derive_key(secret_key, secret_key_len, date, req->service, key)) != GW_OK) {
        goto out;
    }
    if ((err = gw_tc3_signature(key, sts.data, sts.len, sig)) != GW_OK) {
        goto out;
    }
    err = gw_tc3_authorization(secret_id, req, sig, out);
out:
    OPENSSL_cleanse(key, sizeof key);
    gw_buf_free(&sts);
    return err;
}
