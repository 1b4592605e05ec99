/*
 * sign_check: verifies a TC3-HMAC-SHA256 Authorization header the way Tencent's API front end
 * does, with its own small implementation (OpenSSL SHA-256 and HMAC), independent of the gateway.
 *
 * The canonical request is built from what was received: method POST, URI "/", empty query, one
 * "name:value\n" line per name in SignedHeaders (in the order given), value trimmed and lowercased
 * (Tencent's documented rule; it is why the x-tc-action value appears lowercased), then the
 * SignedHeaders text, then the hex SHA-256 of the exact body bytes. The Host line uses the Host
 * header received, so a gateway that signs one host and sends another is caught.
 */
#ifndef SIM_SIGN_CHECK_H
#define SIM_SIGN_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common.h"
#include "sts.h"

struct sim_sign_input {
    const json_t *credentials; /* {"SecretId": "SecretKey", ...}, borrowed */
    const struct sim_header *headers;
    size_t nheaders;
    const unsigned char *body;
    size_t body_len;
    int64_t timestamp; /* X-TC-Timestamp, already parsed by the caller */
    int64_t now;
    int64_t max_skew;    /* seconds; |now - timestamp| beyond this is AuthFailure.SignatureExpire */
    const char *service; /* the credential scope's service; NULL: "gaap" */
    struct sim_sts *sts; /* temporary keys it issued are accepted too; may be NULL */
};

/* What the simulator computed, for the request record when a signature does not match. */
struct sim_sign_debug {
    char *canonical_request; /* new, or NULL */
    char *string_to_sign;    /* new, or NULL */
};

/* Room for the SecretId of a valid signature, NUL included. */
#define SIM_SIGN_SECRET_ID_MAX 512

/*
 * Checks the request's Authorization header. Returns SIM_OK when it is valid, with the SecretId
 * that signed it copied into secret_id; SIM_FAULT with f set to AuthFailure.SignatureFailure,
 * AuthFailure.SignatureExpire or AuthFailure.SecretIdNotFound; SIM_ENOMEM when out of memory. On
 * a signature mismatch dbg receives the canonical request and the string to sign (caller frees
 * with sim_sign_debug_free).
 */
enum sim_err sim_sign_check(const struct sim_sign_input *in, struct sim_fault *f,
                            struct sim_sign_debug *dbg,
                            char secret_id[SIM_SIGN_SECRET_ID_MAX]) SIM_MUST_CHECK;

/* Frees what sim_sign_check stored in dbg. Accepts an empty struct. */
void sim_sign_debug_free(struct sim_sign_debug *dbg);

#endif
