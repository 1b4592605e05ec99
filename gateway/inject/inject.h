/*
 * inject: secret values put into a call's parameters in place of the placeholders the caller sent
 * (the syntax: inject/placeholder.h), so that a caller can make calls such as GAAP
 * CreateCertificate with a private key it never holds.
 *
 * Three steps, each a pipeline stage (pipeline.c orders them):
 *   scan    after the API description accepted the call as sent: finds the placeholders and
 *           escaped literals in the parsed parameters, refuses misspelt ones, and names the
 *           secrets and parameters for the policy (tcgw:SecretName, tcgw:SecretParameter);
 *   apply   after the policy allowed the call: checks each value against its parameter's rules
 *           (gw_apispec_check_injected), then writes the body that is signed and sent: the
 *           caller's bytes, with only the placeholder and escaped strings replaced, into key
 *           memory (a secure gw_buf) that is wiped when freed;
 *   redact  after the answer came back: replaces each injected value found in the answer (as
 *           sent, and JSON-escaped) with its placeholder, so that an upstream that echoes a value
 *           cannot hand it to the caller.
 * The parsed parameters (call->params), which the log line and the audit record are built from,
 * keep the placeholders: no value ever reaches them, nor a message.
 */
#ifndef GW_INJECT_H
#define GW_INJECT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"
#include "core/call.h"
#include "core/errors.h"

struct gw_apispec;
struct gw_vault;

#define GW_INJECT_MAX_STRINGS 32  /* placeholders and escaped literals in one call */
#define GW_INJECT_PATH_MAX 256    /* bytes of a parameter's path ("Certificates.0.Key") */
#define GW_INJECT_REDACT_MIN 8    /* shorter values are not searched for in answers (see redact) */
#define GW_INJECT_REDACT_CHUNK 16 /* redact finds any run of 2 * 16 - 1 bytes of a value */

/* The placeholders of one call: new from gw_inject_scan. */
struct gw_inject;

/* Why a step refused the call: code is a static Tencent error code. */
struct gw_inject_verdict {
    const char *code;
    char message[GW_CALL_MESSAGE_MAX];
};

/*
 * Finds the placeholders and escaped literals in params (a JSON object, borrowed: it must outlive
 * *out). GW_OK with *out NULL when there are none (the call is sent as received), or *out new.
 * GW_ERR_INVALID with v set (InvalidParameterValue) for a string that starts with "{{tcgw:" but
 * is neither a placeholder nor an escape, a path longer than GW_INJECT_PATH_MAX, more than
 * GW_INJECT_MAX_STRINGS of them, or nesting deeper than the API descriptions allow.
 * GW_ERR_NOMEM.
 */
enum gw_err gw_inject_scan(const json_t *params, struct gw_inject **out,
                           struct gw_inject_verdict *v) GW_MUST_CHECK;

/*
 * The secrets the call names, one per placeholder in document order (a name may repeat), and the
 * parameter each stands in, as a policy key names it: member names without list indexes
 * ("CertificateKey", "Certificates.Key"). Sets *names and *params (borrowed from inj; NULL when
 * inj is NULL) and returns how many.
 */
size_t gw_inject_secrets(const struct gw_inject *inj, const char *const **names,
                         const char *const **params);

/*
 * Writes into out (a gw_buf_init_secure buffer, empty) the body to sign and send: body (len
 * bytes, the JSON text inj was scanned from) with each placeholder replaced by its secret value
 * from vault, JSON-escaped, and each escape by its literal; every other byte is the caller's.
 * Before writing, each value is checked against its parameter's rules in spec (length, ascii,
 * enumeration) for service, version and action. Refusals, with v set, nothing written to out:
 *   GW_ERR_NOT_FOUND  ResourceNotFound: no secret value of that name in the vault
 *   GW_ERR_INVALID    InvalidParameterValue: a value breaks its parameter's rules
 *   GW_ERR_TOO_LARGE  RequestSizeLimitExceeded: the body would be longer than out's maximum
 *   GW_ERR_INTERNAL   InternalError: the body does not match the scan (a bug), or key memory
 *   GW_ERR_NOMEM      InternalError: out of memory
 * No message quotes a value: they name the secret, the parameter and lengths.
 */
enum gw_err gw_inject_apply(const struct gw_inject *inj, struct gw_vault *vault,
                            const struct gw_apispec *spec, const char *service, const char *version,
                            const char *action, const char *body, size_t len, struct gw_buf *out,
                            struct gw_inject_verdict *v) GW_MUST_CHECK;

/*
 * Defence in depth: replaces, in response, each run of a secret value injected by apply (values
 * of at least GW_INJECT_REDACT_MIN bytes) with its placeholder "{{tcgw:secret/NAME}}": the whole
 * value, and also a part of it (an upstream error message that quotes a cut value), down to any
 * run of 2 * GW_INJECT_REDACT_CHUNK - 1 bytes. Searched in three forms: the value's bytes, its
 * JSON escaping as apply writes it, and that with '/' escaped as "\/". Shorter runs, and a value
 * re-encoded otherwise (\u escapes of other characters, base64, a hash) are not found: the
 * upstream is trusted not to transform the secrets it is given. The old answer's bytes are wiped.
 * scratch, a secure buffer whose bytes are no longer needed (the body apply wrote, once sent), is
 * reused for those forms and left empty; NULL (or not secure) makes one. Sets *count to the runs
 * replaced. GW_ERR_NOMEM, GW_ERR_INTERNAL (key memory); on failure
 * the answer must not be sent.
 */
enum gw_err gw_inject_redact(const struct gw_inject *inj, struct gw_vault *vault,
                             struct gw_buf *response, struct gw_buf *scratch,
                             size_t *count) GW_MUST_CHECK;

/* Accepts NULL. */
void gw_inject_free(struct gw_inject *inj);

/*
 * Appends s (n bytes) to out as the inside of a JSON string: '"', '\\' and control characters
 * escaped (\n, \r, \t, \b, \f, else \u00XX), every other byte as it is. For apply and redact;
 * public for the tests.
 */
enum gw_err gw_inject_json_escape(struct gw_buf *out, const unsigned char *s,
                                  size_t n) GW_MUST_CHECK;

#endif
