/*
 * tc3: the TC3-HMAC-SHA256 signature of Tencent Cloud API 3.0, as pure functions.
 *
 * Only POST with an empty query string is signed (the only shape the gateway sends). The signed
 * headers are content-type and host, plus x-tc-action when action is not NULL.
 * Inputs are checked, never trusted: host, content_type and action must be non-empty and free of
 * control characters (host and action also of spaces and commas), service is 1..GW_TC3_MAX_SERVICE
 * of [A-Za-z0-9._-], and the timestamp lies in 1970..9999 (GW_ERR_INVALID otherwise). Texts that
 * would exceed GW_TC3_MAX_TEXT give GW_ERR_TOO_LARGE. The payload is hashed, never copied, so it
 * has no bound. Functions that append to a gw_buf leave it unchanged on failure. Nothing here keeps
 * state or touches key storage: the vault owns keys and the derived-key cache. Nothing here takes
 * a lock or allocates (beyond growing the caller's gw_buf), so signers on many threads do not
 * slow each other down; secret intermediates are wiped with sodium_memzero.
 */
#ifndef GW_TC3_H
#define GW_TC3_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/errors.h"

#define GW_TC3_KEY_LEN 32     /* bytes of a derived signing key (HMAC-SHA256 output) */
#define GW_TC3_HEX_LEN 64     /* hex characters of a signature or payload hash */
#define GW_TC3_DATE_LEN 10    /* "YYYY-MM-DD" */
#define GW_TC3_MAX_TEXT 4096  /* bound for canonical request, string to sign, Authorization */
#define GW_TC3_MAX_SERVICE 64 /* characters of a service name ("gaap") */

/* What is signed. All strings are borrowed and NUL-terminated; payload is (pointer, length). */
struct gw_tc3_request {
    const char *service;      /* "gaap" */
    const char *host;         /* "gaap.tencentcloudapi.com", exactly the Host header sent */
    int64_t timestamp;        /* seconds since the epoch, the X-TC-Timestamp header sent */
    const char *content_type; /* exactly the Content-Type header sent */
    const unsigned char *payload;
    size_t payload_len;
    const char *action; /* X-TC-Action value to sign (lowercased when signed), or NULL */
};

/* Writes the UTC date of timestamp as "YYYY-MM-DD" plus NUL; GW_ERR_INVALID if out of range. */
enum gw_err gw_tc3_date(int64_t timestamp, char out[GW_TC3_DATE_LEN + 1]) GW_MUST_CHECK;

/* Appends the canonical request to out. */
enum gw_err gw_tc3_canonical_request(const struct gw_tc3_request *req,
                                     struct gw_buf *out) GW_MUST_CHECK;

/* Appends the string to sign (which embeds the hashed canonical request) to out. */
enum gw_err gw_tc3_string_to_sign(const struct gw_tc3_request *req,
                                  struct gw_buf *out) GW_MUST_CHECK;

/*
 * Derives the signing key HMAC(HMAC(HMAC("TC3"+secret_key, date), service), "tc3_request").
 * out is secret: the caller keeps it in protected memory and wipes it. Intermediates are wiped.
 * date must be "YYYY-MM-DD"; secret_key_len 1..512 (GW_ERR_TOO_LARGE above).
 */
enum gw_err gw_tc3_derive_key(const unsigned char *secret_key, size_t secret_key_len,
                              const char *date, const char *service,
                              unsigned char out[GW_TC3_KEY_LEN]) GW_MUST_CHECK;

/* Writes hex(HMAC-SHA256(signing_key, string_to_sign)) plus NUL. */
enum gw_err gw_tc3_signature(const unsigned char signing_key[GW_TC3_KEY_LEN],
                             const char *string_to_sign, size_t len,
                             char out[GW_TC3_HEX_LEN + 1]) GW_MUST_CHECK;

/*
 * Appends "TC3-HMAC-SHA256 Credential=<secret_id>/<date>/<service>/tc3_request,
 * SignedHeaders=<...>, Signature=<signature>" to out.
 */
enum gw_err gw_tc3_authorization(const char *secret_id, const struct gw_tc3_request *req,
                                 const char signature[GW_TC3_HEX_LEN + 1],
                                 struct gw_buf *out) GW_MUST_CHECK;

/*
 * The whole signature in one call: appends the Authorization value to out. Derives the key each
 * time (the vault caches derived keys instead). Used by tests and by tools, not the hot path.
 */
enum gw_err gw_tc3_sign(const char *secret_id, const unsigned char *secret_key,
                        size_t secret_key_len, const struct gw_tc3_request *req,
                        struct gw_buf *out) GW_MUST_CHECK;

#endif
