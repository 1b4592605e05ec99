/*
 * idem: ClientToken idempotency, shared by every worker of one gateway (local to the process).
 *
 * A table keyed by (caller, service, action, ClientToken) holds one entry per token in use: in
 * flight while the first call with it is under way, then done, with a copy of the answer that is
 * replayed to repeats for replay_window_s. A repeat while the first is in flight waits (on its own
 * worker, holding no thread) and is handed the first call's answer: one upstream call. The same
 * token with other parameters is a conflict (Tencent's FailedOperation.DuplicatedRequest). The
 * table holds at most max_entries; when full, new tokens are refused rather than an entry in
 * flight forgotten.
 *
 * The table is striped: one mutex per stripe of buckets, held for a lookup or an update only.
 * With limits.backend "redis", idem/shared.h coordinates the first calls of several gateways
 * through Redis; this table still joins the repeats that reach the same gateway.
 *
 * Each worker has a port: a waiting call's answer is queued on its port by whichever thread
 * completes the first call, and the port's eventfd wakes its loop, which hands the call back.
 */
#ifndef GW_IDEM_H
#define GW_IDEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/errors.h"

struct gw_call;
struct gw_loop;
struct gw_idem;
struct gw_idem_port;
struct gw_idem_entry;

#define GW_IDEM_HASH_BYTES 32
#define GW_IDEM_TOKEN_MAX 64 /* Tencent's limit on ClientToken */

/* Where a token belongs (hash of caller, service, action, token) and what it was used with. */
struct gw_idem_key {
    unsigned char slot[GW_IDEM_HASH_BYTES];
    unsigned char params[GW_IDEM_HASH_BYTES];
};

/* An answer handed over: body is new (malloc'ed; the receiver frees it), len bytes. */
struct gw_idem_answer {
    unsigned status;
    char *body;
    size_t len;
};

/*
 * A waiting call's turn, on its port's loop thread: answer is the first call's (stolen: take its
 * body), or NULL when the call's deadline passed first.
 */
typedef void (*gw_idem_ready_fn)(struct gw_call *call, struct gw_idem_answer *answer, void *arg);

enum gw_idem_step {
    GW_IDEM_FIRST,    /* the first call with this token: go on, then gw_idem_complete */
    GW_IDEM_REPLAY,   /* done before: *replay holds its answer */
    GW_IDEM_WAIT,     /* in flight: the call comes back through the port's ready function */
    GW_IDEM_CONFLICT, /* the token was used with other parameters */
    GW_IDEM_FULL,     /* max_entries tokens are in use */
    GW_IDEM_NOMEM,
};

/* Returns a new table, or NULL when out of memory. replay_window_s 0: no replay after the end. */
struct gw_idem *gw_idem_new(size_t max_entries, long replay_window_s);

/* Every port must be freed first. Accepts NULL. */
void gw_idem_free(struct gw_idem *idem);

/* Entries in the table (in flight and done, expired ones not yet swept). */
size_t gw_idem_count(struct gw_idem *idem);

/* The replay window, in milliseconds (0: no replay after the end). */
int64_t gw_idem_window_ms(const struct gw_idem *idem);

/*
 * Fills *out for a token: slot from caller, service, action and token (NUL-separated), params
 * from canonical (the call's parameters as canonical JSON, len bytes).
 */
void gw_idem_key_make(const char *caller, const char *service, const char *action,
                      const char *token, const char *canonical, size_t len,
                      struct gw_idem_key *out);

/* A worker's port on loop (its thread); ready runs there. NULL when out of memory. */
struct gw_idem_port *gw_idem_port_new(struct gw_idem *idem, struct gw_loop *loop,
                                      gw_idem_ready_fn ready, void *arg);

/* On the port's thread (or with its loop stopped): calls still waiting are dropped, unanswered
 * (their transport is gone). Accepts NULL. */
void gw_idem_port_free(struct gw_idem_port *port);

/*
 * On the port's thread: looks up key at now_ns (CLOCK_MONOTONIC). FIRST sets *owned (give it back
 * with gw_idem_complete); REPLAY fills *replay; WAIT keeps call until its answer or deadline_ns.
 */
enum gw_idem_step gw_idem_begin(struct gw_idem_port *port, const struct gw_idem_key *key,
                                struct gw_call *call, int64_t now_ns, int64_t deadline_ns,
                                struct gw_idem_entry **owned, struct gw_idem_answer *replay);

/*
 * The first call with a token ended with this answer (copied): calls waiting get copies. keep:
 * the entry stays for replays (the call may have been applied); otherwise it goes, and the token
 * may be used again (the call was certainly not sent).
 */
void gw_idem_complete(struct gw_idem *idem, struct gw_idem_entry *entry, unsigned status,
                      const char *body, size_t len, bool keep, int64_t now_ns);

#endif
