#include "sign_check.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#define ALGORITHM "TC3-HMAC-SHA256"
#define SERVICE "gaap" /* unless the input names another */
#define SCOPE_TERMINATOR "tc3_request"
#define SIG_HEX_LEN 64
#define MAX_CREDENTIAL SIM_SIGN_SECRET_ID_MAX
#define MAX_SIGNED_HEADERS_TEXT 1024
#define MAX_SIGNED_HEADERS 32
#define MAX_SECRET_KEY 1024
/* The canonical request holds only signed header lines (bounded by MHD's header memory). */
#define MAX_CANONICAL ((size_t)64 << 10)

#define FAIL_SIG "AuthFailure.SignatureFailure"

struct auth_fields {
    char credential[MAX_CREDENTIAL];
    char signed_headers[MAX_SIGNED_HEADERS_TEXT];
    char signature[SIG_HEX_LEN + 1];
};

struct scope {
    char secret_id[MAX_CREDENTIAL];
    char date[16];
    char service[MAX_CREDENTIAL];
};

/* A bounded, NUL-terminated text builder for the canonical request and the string to sign. */
struct text {
    char *p;
    size_t len;
    size_t cap;
};

static enum sim_err text_add(struct text *t, const char *s, size_t n)
{
    if (n > MAX_CANONICAL || t->len > MAX_CANONICAL - n) {
        return SIM_ETOOBIG;
    }
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap == 0 ? 512 : t->cap;
        char *np;
        while (cap < t->len + n + 1) {
            cap *= 2;
        }
        np = realloc(t->p, cap);
        if (np == NULL) {
            return SIM_ENOMEM;
        }
        t->p = np;
        t->cap = cap;
    }
    memcpy(t->p + t->len, s, n);
    t->len += n;
    t->p[t->len] = '\0';
    return SIM_OK;
}

static enum sim_err text_str(struct text *t, const char *s)
{
    return text_add(t, s, strlen(s));
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t';
}

/* Narrows [*s, *s + *n) to drop leading and trailing blanks. */
static void trim(const char **s, size_t *n)
{
    while (*n > 0 && is_space(**s)) {
        (*s)++;
        (*n)--;
    }
    while (*n > 0 && is_space((*s)[*n - 1])) {
        (*n)--;
    }
}

/* Copies n bytes into a NUL-terminated field of size cap; false if it does not fit. */
static bool copy_field(char *dst, size_t cap, const char *s, size_t n)
{
    if (n >= cap) {
        return false;
    }
    memcpy(dst, s, n);
    dst[n] = '\0';
    return true;
}

/* Splits "TC3-HMAC-SHA256 Credential=.., SignedHeaders=.., Signature=.." into its three fields. */
static enum sim_err parse_authorization(const char *value, struct auth_fields *a,
                                        struct sim_fault *f)
{
    size_t alen = strlen(ALGORITHM);
    const char *p = value;
    bool have_cred = false;
    bool have_sh = false;
    bool have_sig = false;

    while (is_space(*p)) {
        p++;
    }
    if (strncmp(p, ALGORITHM, alen) != 0 || !is_space(p[alen])) {
        return sim_fault_set(f, FAIL_SIG,
                             "Authorization must start with \"" ALGORITHM " \" (the only "
                             "signature algorithm this API version accepts here)");
    }
    p += alen;
    while (*p != '\0') {
        const char *end = strchr(p, ',');
        size_t n = end != NULL ? (size_t)(end - p) : strlen(p);
        const char *part = p;
        const char *eq;
        size_t klen;
        const char *v;
        size_t vlen;

        trim(&part, &n);
        eq = memchr(part, '=', n);
        if (eq == NULL) {
            return sim_fault_set(f, FAIL_SIG,
                                 "Authorization is malformed: each part must be Name=value");
        }
        klen = (size_t)(eq - part);
        v = eq + 1;
        vlen = n - klen - 1;
        if (klen == 10 && memcmp(part, "Credential", 10) == 0 && !have_cred) {
            have_cred = copy_field(a->credential, sizeof(a->credential), v, vlen);
            if (!have_cred) {
                return sim_fault_set(f, FAIL_SIG, "Authorization Credential is too long");
            }
        } else if (klen == 13 && memcmp(part, "SignedHeaders", 13) == 0 && !have_sh) {
            have_sh = copy_field(a->signed_headers, sizeof(a->signed_headers), v, vlen);
            if (!have_sh) {
                return sim_fault_set(f, FAIL_SIG, "Authorization SignedHeaders is too long");
            }
        } else if (klen == 9 && memcmp(part, "Signature", 9) == 0 && !have_sig) {
            have_sig = copy_field(a->signature, sizeof(a->signature), v, vlen);
            if (!have_sig || vlen != SIG_HEX_LEN) {
                return sim_fault_set(f, FAIL_SIG,
                                     "Authorization Signature must be 64 lowercase hex digits");
            }
        } else {
            return sim_fault_set(f, FAIL_SIG,
                                 "Authorization has an unknown or repeated part \"%.*s\": expected "
                                 "Credential, SignedHeaders and Signature once each",
                                 (int)(klen > 40 ? 40 : klen), part);
        }
        if (end == NULL) {
            break;
        }
        p = end + 1;
    }
    if (!have_cred || !have_sh || !have_sig) {
        return sim_fault_set(f, FAIL_SIG,
                             "Authorization must contain Credential, SignedHeaders and Signature");
    }
    for (p = a->signature; *p != '\0'; p++) {
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))) {
            return sim_fault_set(f, FAIL_SIG,
                                 "Authorization Signature must be 64 lowercase hex digits");
        }
    }
    return SIM_OK;
}

/* Splits "<SecretId>/<date>/<service>/tc3_request". */
static enum sim_err parse_scope(const char *cred, struct scope *s, struct sim_fault *f)
{
    const char *p1 = strchr(cred, '/');
    const char *p2 = p1 != NULL ? strchr(p1 + 1, '/') : NULL;
    const char *p3 = p2 != NULL ? strchr(p2 + 1, '/') : NULL;

    if (p3 == NULL || strcmp(p3 + 1, SCOPE_TERMINATOR) != 0 || p1 == cred ||
        !copy_field(s->secret_id, sizeof(s->secret_id), cred, (size_t)(p1 - cred)) ||
        !copy_field(s->date, sizeof(s->date), p1 + 1, (size_t)(p2 - p1 - 1)) ||
        !copy_field(s->service, sizeof(s->service), p2 + 1, (size_t)(p3 - p2 - 1))) {
        return sim_fault_set(f, FAIL_SIG,
                             "Authorization Credential must be "
                             "<SecretId>/<YYYY-MM-DD>/<service>/" SCOPE_TERMINATOR);
    }
    return SIM_OK;
}

static bool valid_header_name(const char *s, size_t n)
{
    size_t i;

    if (n == 0) {
        return false;
    }
    for (i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_')) {
            return false;
        }
    }
    return true;
}

/* Appends "name:value\n" for each signed header, validating the list as it goes. */
static enum sim_err add_canonical_headers(const struct sim_sign_input *in, const char *list,
                                          struct text *t, struct sim_fault *f)
{
    const char *names[MAX_SIGNED_HEADERS];
    size_t lens[MAX_SIGNED_HEADERS];
    size_t count = 0;
    bool has_ct = false;
    bool has_host = false;
    const char *p = list;
    enum sim_err err;
    size_t i;
    size_t j;

    for (;;) {
        const char *end = strchr(p, ';');
        size_t n = end != NULL ? (size_t)(end - p) : strlen(p);

        if (!valid_header_name(p, n)) {
            return sim_fault_set(f, FAIL_SIG,
                                 "SignedHeaders must be lowercase header names separated by ';'");
        }
        if (count == MAX_SIGNED_HEADERS) {
            return sim_fault_set(f, FAIL_SIG, "SignedHeaders lists more than %d headers",
                                 MAX_SIGNED_HEADERS);
        }
        for (j = 0; j < count; j++) {
            if (lens[j] == n && memcmp(names[j], p, n) == 0) {
                return sim_fault_set(f, FAIL_SIG, "SignedHeaders names \"%.*s\" twice", (int)n, p);
            }
        }
        names[count] = p;
        lens[count] = n;
        count++;
        has_ct = has_ct || (n == 12 && memcmp(p, "content-type", 12) == 0);
        has_host = has_host || (n == 4 && memcmp(p, "host", 4) == 0);
        if (end == NULL) {
            break;
        }
        p = end + 1;
    }
    if (!has_ct || !has_host) {
        return sim_fault_set(f, FAIL_SIG, "SignedHeaders must include content-type and host");
    }
    for (i = 0; i < count; i++) {
        char name[MAX_SIGNED_HEADERS_TEXT];
        const struct sim_header *h;
        size_t seen = 0;
        const char *v;
        size_t vlen;
        size_t k;

        memcpy(name, names[i], lens[i]);
        name[lens[i]] = '\0';
        h = sim_header_find(in->headers, in->nheaders, name, &seen);
        if (h == NULL || seen != 1) {
            return sim_fault_set(f, FAIL_SIG,
                                 "signed header \"%s\" must be present exactly once in the request",
                                 name);
        }
        v = h->value;
        vlen = strlen(v);
        trim(&v, &vlen);
        if ((err = text_add(t, name, lens[i])) != SIM_OK || (err = text_str(t, ":")) != SIM_OK) {
            return err;
        }
        for (k = 0; k < vlen; k++) {
            char c = v[k];
            if (c >= 'A' && c <= 'Z') {
                c = (char)(c - 'A' + 'a');
            }
            if ((err = text_add(t, &c, 1)) != SIM_OK) {
                return err;
            }
        }
        if ((err = text_str(t, "\n")) != SIM_OK) {
            return err;
        }
    }
    return SIM_OK;
}

static bool hmac256(const unsigned char *key, size_t klen, const void *msg, size_t mlen,
                    unsigned char out[SHA256_DIGEST_LENGTH])
{
    unsigned int olen = 0;

    if (klen > (size_t)INT32_MAX) {
        return false;
    }
    return HMAC(EVP_sha256(), key, (int)klen, msg, mlen, out, &olen) != NULL &&
           olen == SHA256_DIGEST_LENGTH;
}

/* Derives the per-day signing key and signs; wipes every intermediate key. */
static enum sim_err compute_signature(const char *secret_key, const struct scope *s,
                                      const char *string_to_sign, char out[SIG_HEX_LEN + 1])
{
    enum sim_err err = SIM_ENOMEM;
    size_t sklen = strlen(secret_key);
    unsigned char *k0 = NULL;
    unsigned char k1[SHA256_DIGEST_LENGTH];
    unsigned char k2[SHA256_DIGEST_LENGTH];
    unsigned char k3[SHA256_DIGEST_LENGTH];
    unsigned char sig[SHA256_DIGEST_LENGTH];

    if (sklen > MAX_SECRET_KEY) {
        return SIM_EINVALID;
    }
    k0 = malloc(sklen + 3);
    if (k0 == NULL) {
        goto out;
    }
    memcpy(k0, "TC3", 3);
    memcpy(k0 + 3, secret_key, sklen);
    if (!hmac256(k0, sklen + 3, s->date, strlen(s->date), k1) ||
        !hmac256(k1, sizeof(k1), s->service, strlen(s->service), k2) ||
        !hmac256(k2, sizeof(k2), SCOPE_TERMINATOR, strlen(SCOPE_TERMINATOR), k3) ||
        !hmac256(k3, sizeof(k3), string_to_sign, strlen(string_to_sign), sig)) {
        err = SIM_EINVALID;
        goto out;
    }
    sim_hex(sig, sizeof(sig), out);
    err = SIM_OK;
out:
    if (k0 != NULL) {
        OPENSSL_cleanse(k0, sklen + 3);
    }
    free(k0);
    OPENSSL_cleanse(k1, sizeof(k1));
    OPENSSL_cleanse(k2, sizeof(k2));
    OPENSSL_cleanse(k3, sizeof(k3));
    OPENSSL_cleanse(sig, sizeof(sig));
    return err;
}

enum sim_err sim_sign_check(const struct sim_sign_input *in, struct sim_fault *f,
                            struct sim_sign_debug *dbg, char secret_id[SIM_SIGN_SECRET_ID_MAX])
{
    enum sim_err err;
    struct auth_fields a;
    struct scope s;
    struct text canon = {0};
    struct text sts = {0};
    const struct sim_header *auth;
    const json_t *key;
    size_t seen = 0;
    unsigned char digest[SHA256_DIGEST_LENGTH];
    char hex[SHA256_DIGEST_LENGTH * 2 + 1];
    char expected[SIG_HEX_LEN + 1];
    char date[16];
    char ts[32];
    struct tm tm;
    time_t t;
    int64_t skew;
    const char *service = in->service != NULL ? in->service : SERVICE;
    const char *secret_key = NULL;
    char temp_key[SIM_STS_KEY_MAX];

    auth = sim_header_find(in->headers, in->nheaders, "authorization", &seen);
    if (auth == NULL || seen != 1) {
        return sim_fault_set(f, FAIL_SIG,
                             auth == NULL ? "the Authorization header is missing"
                                          : "the Authorization header is given more than once");
    }
    if ((err = parse_authorization(auth->value, &a, f)) != SIM_OK) {
        return err;
    }
    skew = in->now - in->timestamp;
    if (skew > in->max_skew || -skew > in->max_skew) {
        return sim_fault_set(f, "AuthFailure.SignatureExpire",
                             "X-TC-Timestamp %lld is %lld seconds away from the server time %lld; "
                             "the limit is %lld: sign with the current time",
                             (long long)in->timestamp, (long long)(skew < 0 ? -skew : skew),
                             (long long)in->now, (long long)in->max_skew);
    }
    if ((err = parse_scope(a.credential, &s, f)) != SIM_OK) {
        return err;
    }
    key = json_object_get(in->credentials, s.secret_id);
    if (key != NULL && json_is_string(key)) {
        secret_key = json_string_value(key);
    } else {
        /* A temporary SecretId from the simulator's STS: only with its token, until expiry. */
        const struct sim_header *tok =
            sim_header_find(in->headers, in->nheaders, "x-tc-token", &seen);
        bool issued = false;
        if ((err = sim_sts_lookup(in->sts, s.secret_id, tok != NULL ? tok->value : NULL, in->now,
                                  temp_key, sizeof(temp_key), &issued, f)) != SIM_OK) {
            return err;
        }
        if (!issued) {
            return sim_fault_set(f, "AuthFailure.SecretIdNotFound",
                                 "the SecretId in the Credential is not known to this service");
        }
        secret_key = temp_key;
    }
    t = (time_t)in->timestamp;
    if (gmtime_r(&t, &tm) == NULL || strftime(date, sizeof(date), "%Y-%m-%d", &tm) == 0) {
        return sim_fault_set(f, FAIL_SIG, "X-TC-Timestamp has no UTC date");
    }
    if (strcmp(date, s.date) != 0) {
        return sim_fault_set(f, FAIL_SIG,
                             "the Credential date %s is not the UTC date of X-TC-Timestamp (%s)",
                             s.date, date);
    }
    if (strcmp(s.service, service) != 0) {
        return sim_fault_set(f, FAIL_SIG,
                             "the Credential service \"%.64s\" is wrong: this endpoint is \"%s\"",
                             s.service, service);
    }

    if ((err = text_str(&canon, "POST\n/\n\n")) != SIM_OK ||
        (err = add_canonical_headers(in, a.signed_headers, &canon, f)) != SIM_OK ||
        (err = text_str(&canon, "\n")) != SIM_OK ||
        (err = text_str(&canon, a.signed_headers)) != SIM_OK ||
        (err = text_str(&canon, "\n")) != SIM_OK) {
        goto out;
    }
    SHA256(in->body, in->body_len, digest);
    sim_hex(digest, sizeof(digest), hex);
    if ((err = text_str(&canon, hex)) != SIM_OK) {
        goto out;
    }

    SHA256((const unsigned char *)canon.p, canon.len, digest);
    sim_hex(digest, sizeof(digest), hex);
    (void)snprintf(ts, sizeof(ts), "%lld", (long long)in->timestamp);
    if ((err = text_str(&sts, ALGORITHM "\n")) != SIM_OK || (err = text_str(&sts, ts)) != SIM_OK ||
        (err = text_str(&sts, "\n")) != SIM_OK || (err = text_str(&sts, s.date)) != SIM_OK ||
        (err = text_str(&sts, "/")) != SIM_OK || (err = text_str(&sts, service)) != SIM_OK ||
        (err = text_str(&sts, "/" SCOPE_TERMINATOR "\n")) != SIM_OK ||
        (err = text_str(&sts, hex)) != SIM_OK) {
        goto out;
    }
    err = compute_signature(secret_key, &s, sts.p, expected);
    if (err == SIM_EINVALID) {
        err = sim_fault_set(f, "InternalError", "the simulator could not compute the signature");
        goto out;
    }
    if (err != SIM_OK) {
        goto out;
    }
    if (CRYPTO_memcmp(expected, a.signature, SIG_HEX_LEN) != 0) {
        err = sim_fault_set(f, FAIL_SIG,
                            "the signature does not match: compare your canonical request and "
                            "string to sign with the ones in the simulator's record");
        if (dbg != NULL) {
            dbg->canonical_request = canon.p;
            dbg->string_to_sign = sts.p;
            canon.p = NULL;
            sts.p = NULL;
        }
        goto out;
    }
    memcpy(secret_id, s.secret_id, sizeof(s.secret_id));
    err = SIM_OK;
out:
    if (err == SIM_ETOOBIG) {
        err = sim_fault_set(f, FAIL_SIG, "the signed headers are too large");
    }
    OPENSSL_cleanse(expected, sizeof(expected));
    OPENSSL_cleanse(temp_key, sizeof(temp_key));
    free(canon.p);
    free(sts.p);
    return err;
}

void sim_sign_debug_free(struct sim_sign_debug *dbg)
{
    if (dbg == NULL) {
        return;
    }
    free(dbg->canonical_request);
    free(dbg->string_to_sign);
    dbg->canonical_request = NULL;
    dbg->string_to_sign = NULL;
}
