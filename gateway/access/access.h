/*
 * access: who may call, and what: the callers file, the policy directory and the vault (caller
 * keys and the credentials callers are bound to), loaded together into one immutable snapshot.
 *
 * Workers read the current snapshot without a lock: a call takes a reference when it is
 * identified and gives it back in the final stage, so it is judged and signed under the set it
 * started with. Reload (SIGHUP) builds a complete new snapshot and checks it whole (every
 * caller's policies exist, every caller's credential and SDK key are in the store) before it is
 * swapped in; a snapshot that fails leaves the previous one in force. The old snapshot is freed
 * when its last call is answered.
 */
#ifndef GW_ACCESS_H
#define GW_ACCESS_H

#include <stddef.h>
#include <stdint.h>

#include "core/errors.h"

struct gw_apispec;
struct gw_caller;
struct gw_callers;
struct gw_policy;
struct gw_replay;
struct gw_vault;

struct gw_access;
struct gw_access_snapshot;

/* Where a snapshot is read from. Strings are copied. */
struct gw_access_sources {
    const char *callers_file;
    const char *policy_dir;
    const char *master_key_file;
    const char *credential_store;
    /*
     * The store's passphrase when its header asks for one (else NULL): copied into key memory,
     * no-access except while a snapshot opens the store (every reload derives the key again,
     * with the salt of the store then on disk, so a rekey to a new salt is followed by SIGHUP).
     */
    const unsigned char *passphrase;
    size_t passphrase_len;
    const struct gw_apispec *spec; /* borrowed: must outlive the access */
};

/* Loads the first snapshot. On failure msg says what to fix, naming the file. *out is new. */
enum gw_err gw_access_open(const struct gw_access_sources *src, struct gw_access **out, char *msg,
                           size_t msglen) GW_MUST_CHECK;

/*
 * Builds a new snapshot from the same sources and swaps it in. On failure the current snapshot
 * stays and msg says why. Callable from any thread; reloads are serialised.
 */
enum gw_err gw_access_reload(struct gw_access *access, char *msg, size_t msglen) GW_MUST_CHECK;

/* Frees the access (once no worker uses it; snapshots still held stay valid). Accepts NULL. */
void gw_access_free(struct gw_access *access);

/* Counts swaps: a reader that saw another generation takes the new snapshot. */
uint64_t gw_access_generation(const struct gw_access *access);

/* Returns the current snapshot with a reference taken (takes a short lock: not per call). */
struct gw_access_snapshot *gw_access_current(struct gw_access *access);

/* Takes another reference (lock-free). */
void gw_access_hold(struct gw_access_snapshot *snap);

/* Gives a reference back; the last one frees the snapshot. Accepts NULL. */
void gw_access_release(struct gw_access_snapshot *snap);

/* Replay protection for SDK-signed calls: shared by every snapshot. */
struct gw_replay *gw_access_replay(struct gw_access *access);

/* What a snapshot holds (borrowed for as long as the reference is held). */
const struct gw_callers *gw_access_callers(const struct gw_access_snapshot *snap);
struct gw_vault *gw_access_vault(const struct gw_access_snapshot *snap);
uint64_t gw_access_snapshot_generation(const struct gw_access_snapshot *snap);
size_t gw_access_statement_count(const struct gw_access_snapshot *snap);

/* The policies bound to caller (a caller of this snapshot): sets *out, returns how many. */
size_t gw_access_policies(const struct gw_access_snapshot *snap, const struct gw_caller *caller,
                          const struct gw_policy *const **out);

#endif
