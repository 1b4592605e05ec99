/*
 * identify: who is calling. One function looks at what a listener received (its Authorization
 * header, a verified client certificate, or nothing) and names the caller of the callers file
 * and how it proved it, or refuses the call with a Tencent error code and a message that says
 * what to fix. A message never repeats a token, a signature or any other value of the
 * Authorization header.
 *
 * Which rule applies:
 *   1. an Authorization header decides when present (a certificate is then not looked at):
 *      "Bearer <token>" (GW_ACCEPT_TOKEN), "TC3-HMAC-SHA256 ..." signed with a gateway-issued
 *      SDK key (GW_ACCEPT_SDK_KEY), verified as Tencent Cloud verifies it, replays refused;
 *   2. else a client certificate the TLS layer refused, or none where one is expected
 *      (cert_error): AuthFailure.InvalidAuthorization;
 *   3. else a verified certificate's name (GW_ACCEPT_CERT) mapped in the callers file;
 *   4. else the listener's unauthenticated_caller, when it has one;
 *   5. else AuthFailure.InvalidAuthorization naming the methods the listener accepts.
 *
 * The replay cache is shared by every worker: a fixed table allocated once, lock-striped, whose
 * entries expire by time. When the place a signature would go is full of unexpired signatures
 * the call is refused (RequestLimitExceeded) rather than an entry forgotten: forgetting one
 * would let that signed request be replayed.
 */
#ifndef GW_IDENTIFY_H
#define GW_IDENTIFY_H

#include <stddef.h>
#include <stdint.h>

#include "core/call.h"
#include "core/errors.h"
#include "identity/callers.h"
#include "vault/vault.h"

#define GW_IDENTIFY_MAX_SKEW 300           /* seconds X-TC-Timestamp may differ from now */
#define GW_IDENTIFY_MAX_AUTHORIZATION 2048 /* bytes of an Authorization header */
#define GW_IDENTIFY_MAX_SIGNED_HEADERS 16  /* names in SignedHeaders */
#define GW_IDENTIFY_MAX_HEADER_NAME 64     /* bytes of one signed header's name */
#define GW_REPLAY_KEY_LEN 16               /* bytes of a signature kept: its first 128 bits */
#define GW_REPLAY_DEFAULT_SLOTS (1u << 20) /* 20 MiB; ~1700 signed calls/s sustained */
#define GW_REPLAY_MARGIN 60 /* seconds a signature is kept past its last acceptable instant */

/* The replay cache. */
struct gw_replay;

/*
 * A cache of slots signatures (rounded up to a power of two, at least 4096), 20 bytes each.
 * Entries live until their signature's timestamp + GW_IDENTIFY_MAX_SKEW + GW_REPLAY_MARGIN, so
 * the cache holds whatever was accepted in the last ~11 minutes; it refuses new signatures only
 * near full (about half the slots live, by the probe window's luck). *out is new.
 */
enum gw_err gw_replay_new(size_t slots, struct gw_replay **out) GW_MUST_CHECK;

/* Accepts NULL. */
void gw_replay_free(struct gw_replay *replay);

/*
 * Records key as seen until expires (seconds since the epoch). GW_OK: not seen before (now
 * recorded); GW_ERR_EXISTS: seen, and its entry has not expired at now; GW_ERR_BUSY: no room.
 * Thread-safe.
 */
enum gw_err gw_replay_check(struct gw_replay *replay, const unsigned char key[GW_REPLAY_KEY_LEN],
                            int64_t now, int64_t expires) GW_MUST_CHECK;

/* Optional: how many headers of that name (case-insensitive) the request carries. */
typedef size_t (*gw_identify_count_fn)(void *transport, const char *name);

/* What the identity stage looks at. All borrowed. */
struct gw_identify_input {
    unsigned accept;                    /* GW_ACCEPT_* bits of the listener */
    const char *unauthenticated_caller; /* the caller an unidentified call is, or NULL */
    const char *cert_name;              /* a verified client certificate's name, or NULL */
    const char *cert_error;             /* why a client certificate was refused, or NULL */
    gw_call_header_fn header;           /* header lookup, case-insensitive */
    gw_identify_count_fn header_count;  /* NULL: several Authorization headers go unnoticed */
    void *transport;                    /* for header and header_count */
    const char *method;                 /* "POST", signed as received */
    const char *path;                   /* the request target's path, "/" for the SDKs */
    const char *service;                /* the service the request stage derived */
    const unsigned char *body;          /* may be NULL when body_len is 0 */
    size_t body_len;
    int64_t now; /* wall clock, seconds since the epoch */
};

/* The answer. */
struct gw_identity {
    const struct gw_caller *caller; /* borrowed from the registry; NULL when refused */
    enum gw_identity_method method; /* GW_IDENTITY_NONE when refused */
    const char *code;               /* static Tencent error code when refused, else NULL */
    char message[GW_CALL_MESSAGE_MAX];
};

/*
 * Identifies the call described by in. Returns GW_OK with out->caller and out->method set, or
 * sets out->code and out->message and returns: GW_ERR_CRYPTO when the caller's proof of identity
 * is missing, malformed, wrong, expired or replayed (AuthFailure.*, MissingParameter,
 * InvalidParameterValue); GW_ERR_BUSY when the replay cache has no room (RequestLimitExceeded);
 * GW_ERR_NOT_FOUND when the gateway's own configuration is inconsistent (InternalError: an
 * unauthenticated_caller or an SDK key that the files do not hold); GW_ERR_INTERNAL or
 * GW_ERR_NOMEM for other gateway-side failures (InternalError). vault may be NULL when the
 * listener accepts neither tokens nor SDK keys, replay only when it does not accept SDK keys.
 * Thread-safe; allocates nothing.
 */
enum gw_err gw_identify(const struct gw_identify_input *in, const struct gw_callers *callers,
                        struct gw_vault *vault, struct gw_replay *replay,
                        struct gw_identity *out) GW_MUST_CHECK;

/*
 * The identity stage over a call: runs gw_identify on call->in, the request stage's service and
 * the body, then writes call->caller, call->caller_entry and call->identity, or refuses the call
 * (gw_call_refuse).
 * Returns what gw_identify returned.
 */
enum gw_err gw_identify_call(struct gw_call *call, const struct gw_callers *callers,
                             struct gw_vault *vault, struct gw_replay *replay,
                             int64_t now) GW_MUST_CHECK;

#endif
