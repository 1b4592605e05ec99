/* identify: who is calling. See identify.h. */

#include "identity/identify.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "identity/identify_int.h"

#define TOKEN_FORM "Bearer <the 43-character token `tcgw callers add` printed>"

/* ---- Refusals ---------------------------------------------------------------------------- */

enum gw_err identify_refuse(struct gw_identity *out, enum gw_err err, const char *code,
                            const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->message, sizeof out->message, fmt, ap);
    va_end(ap);
    /* A certificate's name or a header name quoted: the message stays one plain line. */
    for (char *c = out->message; *c != '\0'; c++) {
        if ((unsigned char)*c < 0x20 || *c == 0x7f) {
            *c = '?';
        }
    }
    out->caller = NULL;
    out->method = GW_IDENTITY_NONE;
    out->code = code;
    return err;
}

enum gw_err identify_as(struct gw_identity *out, const struct gw_caller *caller,
                        enum gw_identity_method method)
{
    out->caller = caller;
    out->method = method;
    out->code = NULL;
    out->message[0] = '\0';
    return GW_OK;
}

/* "Bearer tokens, ..." for the methods the listener takes, into buf. */
static const char *accepted(unsigned accept, char *buf, size_t len)
{
    static const struct {
        unsigned bit;
        const char *how;
    } methods[] = {
        {GW_ACCEPT_TOKEN, "Authorization: Bearer <token> (tcgw callers add NAME)"},
        {GW_ACCEPT_SDK_KEY, "a TC3-HMAC-SHA256 signature made with a gateway-issued SDK key "
                            "(tcgw callers add NAME --sdk-key)"},
        {GW_ACCEPT_CERT, "a client certificate mapped to a caller (tcgw callers add NAME "
                         "--certificate URI_OR_CN)"},
    };
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof methods / sizeof *methods; i++) {
        if ((accept & methods[i].bit) == 0) {
            continue;
        }
        int w = snprintf(buf + n, len - n, "%s%s", n > 0 ? ", or " : "", methods[i].how);
        if (w < 0 || (size_t)w >= len - n) {
            break;
        }
        n += (size_t)w;
    }
    if (n == 0) {
        snprintf(buf, len, "no identity method (see the listener's configuration)");
    }
    return buf;
}

enum gw_err identify_refuse_method(struct gw_identity *out, unsigned accept, const char *what)
{
    char how[GW_CALL_MESSAGE_MAX];
    return identify_refuse(out, GW_ERR_CRYPTO, "AuthFailure.InvalidAuthorization",
                           "%s: this listener accepts %s.", what,
                           accepted(accept, how, sizeof how));
}

/* ---- Bearer tokens ----------------------------------------------------------------------- */

static bool is_base64url(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_')) {
            return false;
        }
    }
    return true;
}

static enum gw_err by_token(const struct gw_identify_input *in, const char *token,
                            const struct gw_callers *callers, struct gw_vault *vault,
                            struct gw_identity *out)
{
    unsigned char hash[GW_VAULT_TOKEN_HASH_LEN];
    size_t n = strlen(token);

    if ((in->accept & GW_ACCEPT_TOKEN) == 0) {
        return identify_refuse_method(out, in->accept, "Bearer tokens are not accepted here");
    }
    if (n != GW_CALLERS_TOKEN_LEN || !is_base64url(token, n)) {
        return identify_refuse(out, GW_ERR_CRYPTO, "AuthFailure.InvalidAuthorization",
                               "The Authorization header must be " TOKEN_FORM
                               ": %d characters from A-Z a-z 0-9 - _.",
                               GW_CALLERS_TOKEN_LEN);
    }
    if (vault == NULL ||
        gw_vault_token_hash(vault, (const unsigned char *)token, n, hash) != GW_OK) {
        return identify_refuse(out, GW_ERR_INTERNAL, "InternalError",
                               "tcgw could not check the token (its key store is unavailable).");
    }
    const struct gw_caller *caller = gw_callers_by_token_hash(callers, hash);
    sodium_memzero(hash, sizeof hash);
    if (caller == NULL) {
        return identify_refuse(
            out, GW_ERR_CRYPTO, "AuthFailure.InvalidAuthorization",
            "The token is not known to this gateway: use the token `tcgw callers add` "
            "printed for your caller, or ask the operator for one.");
    }
    return identify_as(out, caller, GW_IDENTITY_TOKEN);
}

/* ---- The rules ----------------------------------------------------------------------------- */

enum gw_err gw_identify(const struct gw_identify_input *in, const struct gw_callers *callers,
                        struct gw_vault *vault, struct gw_replay *replay, struct gw_identity *out)
{
    const char *auth = in->header != NULL ? in->header(in->transport, "Authorization") : NULL;

    if (auth != NULL) {
        if (in->header_count != NULL && in->header_count(in->transport, "Authorization") > 1) {
            return identify_refuse(out, GW_ERR_CRYPTO, "AuthFailure.InvalidAuthorization",
                                   "The request carries several Authorization headers: send one.");
        }
        size_t n = strnlen(auth, GW_IDENTIFY_MAX_AUTHORIZATION + 1);
        if (n > GW_IDENTIFY_MAX_AUTHORIZATION) {
            return identify_refuse(out, GW_ERR_CRYPTO, "AuthFailure.InvalidAuthorization",
                                   "The Authorization header is longer than %d bytes.",
                                   GW_IDENTIFY_MAX_AUTHORIZATION);
        }
        if (strncasecmp(auth, "Bearer ", 7) == 0) {
            return by_token(in, auth + 7, callers, vault, out);
        }
        if (strncmp(auth, IDENTIFY_TC3 " ", sizeof IDENTIFY_TC3) == 0) {
            return identify_by_sdk_key(in, auth + sizeof IDENTIFY_TC3, callers, vault, replay, out);
        }
        return identify_refuse_method(out, in->accept,
                                      "The Authorization header must be Bearer or TC3-HMAC-SHA256");
    }
    /*
     * Without an Authorization header the certificate is the identity: one the TLS layer refused
     * (or none, on a listener that takes certificates) is named. A caller that sends a token or
     * signature to a listener that takes those too needs no certificate.
     */
    if (in->cert_error != NULL) {
        return identify_refuse(out, GW_ERR_CRYPTO, "AuthFailure.InvalidAuthorization",
                               "The client certificate was refused: %s.", in->cert_error);
    }
    if (in->cert_name != NULL && (in->accept & GW_ACCEPT_CERT) != 0) {
        const struct gw_caller *caller = gw_callers_by_certificate(callers, in->cert_name);
        if (caller == NULL) {
            return identify_refuse(
                out, GW_ERR_CRYPTO, "AuthFailure.InvalidAuthorization",
                "The client certificate's name %.*s is not mapped to a caller: ask the "
                "operator to map it (tcgw callers add NAME --certificate ...).",
                GW_CALLERS_CERT_NAME_MAX, in->cert_name);
        }
        return identify_as(out, caller, GW_IDENTITY_CERT);
    }
    if (in->unauthenticated_caller != NULL) {
        const struct gw_caller *caller = gw_callers_find(callers, in->unauthenticated_caller);
        if (caller == NULL) {
            return identify_refuse(
                out, GW_ERR_NOT_FOUND, "InternalError",
                "The listener's unauthenticated_caller is not in tcgw's callers file: "
                "the operator must add it (tcgw callers add NAME).");
        }
        return identify_as(out, caller, GW_IDENTITY_LISTENER);
    }
    return identify_refuse_method(out, in->accept, "The request does not say who is calling");
}

/* The path of a request target: an absolute-form target ("http://host/x") is signed as "/x". */
static const char *target_path(const char *target)
{
    const char *scheme_end = strstr(target, "://");
    if (target[0] == '/' || scheme_end == NULL) {
        return target;
    }
    const char *path = strchr(scheme_end + 3, '/');
    return path != NULL ? path : "/";
}

enum gw_err gw_identify_call(struct gw_call *call, const struct gw_callers *callers,
                             struct gw_vault *vault, struct gw_replay *replay, int64_t now)
{
    struct gw_identity id;
    struct gw_identify_input in = {
        .accept = call->in.accept,
        .unauthenticated_caller = call->in.unauthenticated_caller,
        .cert_name = call->in.cert_name,
        .cert_error = call->in.cert_error,
        .header = call->in.header,
        .transport = call->in.transport,
        .method = call->in.method != NULL ? call->in.method : "",
        .path = target_path(call->in.target != NULL ? call->in.target : ""),
        .service = call->service,
        .body = (const unsigned char *)call->body.data,
        .body_len = call->body.len,
        .now = now,
    };
    enum gw_err err = gw_identify(&in, callers, vault, replay, &id);
    if (err != GW_OK) {
        gw_call_refuse(call, id.code, "%s", id.message);
        return err;
    }
    /* Caller names are vault names, at most GW_VAULT_MAX_NAME == GW_CALL_NAME_MAX characters. */
    snprintf(call->caller, sizeof call->caller, "%s", id.caller->name);
    call->caller_entry = id.caller;
    call->identity = id.method;
    return GW_OK;
}
