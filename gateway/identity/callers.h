/*
 * callers: the callers file, the list of who may call the gateway and how each is identified.
 *
 *   {"callers": {
 *      "capacity-bot": {"token_sha": "<64 hex: keyed hash of its bearer token>",
 *                       "credential": "default",
 *                       "policies": ["capacity-bot"],
 *                       "attributes": {"team": "network"}},
 *      "billing": {"sdk_secret_id": "AKIDtcgw...", "credential": "default",
 *                  "policies": ["auditor"]},
 *      "mesh-bot": {"certificate": "spiffe://example.internal/mesh-bot",
 *                   "credential": "default", "policies": ["auditor"]}}}
 *
 * A caller has any of the three identities. The file holds no secret: a token is kept as its keyed
 * hash (vault.h: gw_vault_token_hash), an SDK key's SecretKey is in the encrypted store. Loaded
 * into an immutable registry; `tcgw callers` edits the file (atomic replace, under a lock).
 */
#ifndef GW_CALLERS_H
#define GW_CALLERS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/errors.h"
#include "vault/vault.h"

#define GW_CALLERS_MAX 1024
#define GW_CALLERS_MAX_POLICIES 16
#define GW_CALLERS_TOKEN_LEN 43      /* base64url (no padding) of 32 random bytes */
#define GW_CALLERS_SECRET_ID_LEN 36  /* "AKIDtcgw" + 28 random characters */
#define GW_CALLERS_SECRET_KEY_LEN 32 /* random characters [A-Za-z0-9] */
#define GW_CALLERS_CERT_NAME_MAX 256

struct gw_callers;

struct gw_caller {
    char name[GW_VAULT_MAX_NAME + 1];
    char credential[GW_VAULT_MAX_NAME + 1]; /* the credential its calls are signed with */
    const char *policies[GW_CALLERS_MAX_POLICIES];
    size_t policy_count;
    const json_t *attributes; /* an object of string values, or NULL */
    bool has_token;
    unsigned char token_hash[GW_VAULT_TOKEN_HASH_LEN];
    char sdk_secret_id[GW_VAULT_MAX_SECRET_ID + 1]; /* "" when none */
    char certificate[GW_CALLERS_CERT_NAME_MAX + 1]; /* "" when none */
};

/*
 * Loads the callers file (at most 1 MiB). A missing file is an empty registry. Unknown keys,
 * duplicate keys, wrong types, a name that is not a valid vault name, two callers with the same
 * token hash, SDK SecretId or certificate name: refused, msg saying "FILE:LINE: what to fix".
 * Each caller needs "credential"; "policies" (default none) and "attributes" are optional, and so
 * are its identities (a caller with none can still be a listener's unauthenticated_caller).
 * A file that group or others may write, or that another user owns, is refused (GW_ERR_PERM):
 * whoever can write it can make themselves any caller. GW_ERR_IO when it cannot be read,
 * GW_ERR_INVALID for its contents, GW_ERR_NOMEM. *out is new.
 */
enum gw_err gw_callers_load(const char *path, struct gw_callers **out, char *msg,
                            size_t msglen) GW_MUST_CHECK;

/* Accepts NULL. */
void gw_callers_free(struct gw_callers *callers);

size_t gw_callers_count(const struct gw_callers *callers);

/* The i-th caller in name order (0 <= i < count). */
const struct gw_caller *gw_callers_at(const struct gw_callers *callers, size_t i);

/* Look-ups; NULL when none matches. */
const struct gw_caller *gw_callers_find(const struct gw_callers *callers, const char *name);
/* Compares against every token hash in constant time (no early exit on a match). */
const struct gw_caller *gw_callers_by_token_hash(const struct gw_callers *callers,
                                                 const unsigned char hash[GW_VAULT_TOKEN_HASH_LEN]);
const struct gw_caller *gw_callers_by_secret_id(const struct gw_callers *callers,
                                                const char *secret_id);
const struct gw_caller *gw_callers_by_certificate(const struct gw_callers *callers,
                                                  const char *cert_name);

/* ---- Editing the file (`tcgw callers`) ---- */

/*
 * As gw_callers_load, for a read-modify-write of the file: first takes its writer lock (flock on
 * "<path>.lock", created with mode 0600), waiting while another writer holds it, and keeps it
 * until gw_callers_free. Without it, two editors that both read the old file would each save
 * their own change and the second would erase the first's. gw_callers_save then writes path.
 */
enum gw_err gw_callers_open_for_update(const char *path, struct gw_callers **out, char *msg,
                                       size_t msglen) GW_MUST_CHECK;

/*
 * Adds caller: its fields are copied (policies and attributes are borrowed only for the call;
 * attributes may be NULL). The rules of the file apply: GW_ERR_EXISTS when the name is taken;
 * GW_ERR_INVALID when a field breaks a rule or the token hash, SecretId or certificate name is
 * another caller's (msg says which and what to do). On failure the registry is unchanged.
 * Pointers to callers obtained before are invalid afterwards, on success.
 */
enum gw_err gw_callers_add(struct gw_callers *callers, const struct gw_caller *caller, char *msg,
                           size_t msglen) GW_MUST_CHECK;

/*
 * Removes the caller named name. GW_ERR_NOT_FOUND when there is none. Pointers to callers
 * obtained before are invalid afterwards, on success.
 */
enum gw_err gw_callers_remove(struct gw_callers *callers, const char *name) GW_MUST_CHECK;

/*
 * Writes the registry to the file it was opened from with gw_callers_open_for_update, replacing
 * it atomically (gw_file_replace: an existing file keeps its owner and mode, a new one gets 0600).
 * GW_ERR_INVALID for a registry that gw_callers_load opened (it holds no lock).
 */
enum gw_err gw_callers_save(const struct gw_callers *callers, char *msg,
                            size_t msglen) GW_MUST_CHECK;

#endif
