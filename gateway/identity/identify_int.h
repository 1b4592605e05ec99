/*
 * identify_int.h: what the files of the identify module share. Nothing outside gateway/identity/
 * includes it: the module's interface is identify.h.
 *
 *   identify.c  the rules (which method decides), refusals, bearer tokens and certificates
 *   sdk_key.c   TC3-HMAC-SHA256 signatures made with gateway-issued SDK keys: the Authorization
 *               header, the canonical request and string to sign, the replay check
 */
#ifndef GW_IDENTIFY_INT_H
#define GW_IDENTIFY_INT_H

#include "identity/identify.h"

#define IDENTIFY_TC3 "TC3-HMAC-SHA256"

/*
 * Refuses: fills out's code and message (control characters replaced, so it stays one line),
 * clears its caller, and returns err.
 */
enum gw_err identify_refuse(struct gw_identity *out, enum gw_err err, const char *code,
                            const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Refuses with AuthFailure.InvalidAuthorization: "<what>: this listener accepts <methods>." */
enum gw_err identify_refuse_method(struct gw_identity *out, unsigned accept, const char *what);

/* Names caller, identified by method, in out; returns GW_OK. */
enum gw_err identify_as(struct gw_identity *out, const struct gw_caller *caller,
                        enum gw_identity_method method);

/*
 * Identifies the caller of a request whose Authorization header is value after
 * "TC3-HMAC-SHA256 ": the signature verified as Tencent Cloud verifies it, over the bytes
 * received, with the SDK key's SecretKey from the vault; a replay is refused.
 */
enum gw_err identify_by_sdk_key(const struct gw_identify_input *in, const char *value,
                                const struct gw_callers *callers, struct gw_vault *vault,
                                struct gw_replay *replay, struct gw_identity *out);

#endif
