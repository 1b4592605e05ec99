/*
 * encode: one call's audit record, as the JSON fields that follow the chain's own. Runs on the
 * worker that finished the call (CPU only); the writer thread prefixes the chain fields
 * ({"v":1,"seq":N,"prev":"<hash>",) and hashes the line.
 *
 * Every record is bounded: a line is never longer than GW_AUDIT_LINE_MAX bytes, newline included.
 * Parameters are copied with the values under sensitive keys replaced by an HMAC (equal values
 * give equal HMACs), each string clipped at GW_AUDIT_STRING_MAX bytes, and the whole replaced by a
 * marked prefix when its encoding passes GW_AUDIT_PARAMS_MAX. Free text (messages, reasons) has
 * its control characters turned to spaces and any sensitive value it quotes replaced.
 */
#ifndef GW_AUDIT_ENCODE_H
#define GW_AUDIT_ENCODE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/errors.h"

struct gw_call;

#define GW_AUDIT_LINE_MAX 16384   /* one record line, chain fields and newline included */
#define GW_AUDIT_PREFIX_MAX 128   /* {"v":1,"seq":N,"prev":"<64 hex>", */
#define GW_AUDIT_PARAMS_MAX 8192  /* the encoded parameters; past it only a prefix is kept */
#define GW_AUDIT_PREFIX_KEEP 4096 /* bytes of that prefix */
#define GW_AUDIT_STRING_MAX 1024  /* one string value within the parameters */
#define GW_AUDIT_DEPTH_MAX 32     /* nesting kept within the parameters */
#define GW_AUDIT_HMAC_KEY_BYTES 32
/* "hmac-sha256:" and 64 hex digits, and a NUL. */
#define GW_AUDIT_HMAC_TEXT (12 + 64 + 1)
#define GW_AUDIT_SENSITIVE_MAX 64 /* sensitive key names */

struct gw_audit_redactor;

/* The sensitive keys when the config names none. */
extern const char *const gw_audit_default_sensitive[];

/*
 * Returns in *out a new redactor (free with gw_audit_redactor_free) that replaces values under
 * the n keys (compared without case, at any depth) by HMAC-SHA256 with key. n == 0 takes
 * gw_audit_default_sensitive. The key is copied into locked memory.
 */
enum gw_err gw_audit_redactor_new(const unsigned char key[GW_AUDIT_HMAC_KEY_BYTES],
                                  const char *const *keys, size_t n,
                                  struct gw_audit_redactor **out) GW_MUST_CHECK;

/* Accepts NULL; wipes the key. */
void gw_audit_redactor_free(struct gw_audit_redactor *r);

/* True when name is a sensitive key. */
bool gw_audit_redactor_is_sensitive(const struct gw_audit_redactor *r, const char *name);

/* Writes "hmac-sha256:<hex>" of v's compact JSON encoding (a string: its JSON text, quotes and
 * all) into out. */
void gw_audit_redactor_hmac(const struct gw_audit_redactor *r, const json_t *v,
                            char out[GW_AUDIT_HMAC_TEXT]);

/*
 * Encodes the call's record body: the fields after the chain prefix, ending with '}' (no
 * newline). *out is new (free()), *len its length, at most GW_AUDIT_LINE_MAX -
 * GW_AUDIT_PREFIX_MAX - 1. GW_ERR_NOMEM only.
 */
enum gw_err gw_audit_encode_call(const struct gw_call *call, const struct gw_audit_redactor *r,
                                 char **out, size_t *len) GW_MUST_CHECK;

/* Writes the current UTC time as RFC 3339 with microseconds: "2024-05-01T12:00:00.123456Z". */
void gw_audit_time_now(char out[32]);

#endif
