/*
 * audit: the durable, tamper-evident record of every call (see README, "Audit log").
 *
 * Threads. Workers encode a finished call's record on their own thread and hand it to the audit
 * writer (gw_audit_port_submit), which runs on a thread of its own: it takes every record queued
 * while it was busy, chains them, writes them with one write(2) and one fdatasync(2) (group
 * commit), then hands the calls back to their workers: each worker's completed calls go on its
 * port's queue and its loop is woken once per batch (gw_loop_wake); the worker then drains the
 * port (gw_audit_port_drain) and releases the answers. A waiting call holds no thread.
 *
 * Failure. When a batch cannot be written or synced, the file is cut back to its last good
 * length, the writer is unhealthy (gw_audit_ready is false, with the reason) and retries every
 * 200 ms, reopening the file when it was removed. Held calls wait up to hold_ms for a retry to
 * succeed, then come back unrecorded; their records stay queued (up to a bound) and are written
 * once the disk takes them again.
 */
#ifndef GW_AUDIT_H
#define GW_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/errors.h"

struct gw_call;
struct gw_loop;
struct gw_audit;
struct gw_audit_port;

struct gw_audit_options {
    const char *path;                  /* the log file */
    const char *signing_key_file;      /* Ed25519 secret key (tcgw audit keygen), mode 0600 */
    const char *const *sensitive_keys; /* parameter keys whose values are HMACed; NULL-terminated,
                                          NULL or empty: the defaults */
    size_t max_file_bytes;             /* rotate past this size; 0: never */
    long sign_interval_ms;             /* seal the chain head at least this often when it moved */
    long hold_ms;                      /* how long a forwarded call waits for a failing disk */
    bool fail_open;                    /* answer calls whose record cannot be written */
    bool to_stdout;                    /* also write each committed line to standard output */
    const char *syslog_address;        /* NULL: no syslog shipping */
    uint16_t syslog_port;
    bool syslog_tls;
    const char *syslog_ca_file;
    size_t syslog_queue_records;
};

/* Counters, for the stop line, /readyz and the benchmark. */
struct gw_audit_stats {
    uint64_t records;    /* call records committed */
    uint64_t batches;    /* write+fdatasync rounds that committed at least one record */
    uint64_t max_batch;  /* most records in one round */
    uint64_t seals;      /* signed lines written (genesis and seal) */
    uint64_t rotations;  /* files closed and begun anew */
    uint64_t failures;   /* rounds that failed */
    uint64_t unrecorded; /* calls handed back without their record written */
    uint64_t lost;       /* records dropped from the backlog while the disk failed */
    uint64_t queued;     /* records handed to the writer and not yet on disk (nor dropped) */
    uint64_t shipped;    /* lines sent to syslog */
    uint64_t ship_dropped;
};

/*
 * Loads the signing key, opens (or continues) the log and starts the writer (and shippers).
 * *out is new: gw_audit_close. On failure msg says why.
 */
enum gw_err gw_audit_open(const struct gw_audit_options *o, struct gw_audit **out, char *msg,
                          size_t msglen) GW_MUST_CHECK;

/*
 * Writes every queued record (retrying a failing disk for up to 2 s), seals the chain, stops the
 * threads, logs the counters and frees. Every port must be closed. Accepts NULL.
 */
void gw_audit_close(struct gw_audit *a);

/* From any thread (SIGHUP): seal the current file and reopen the path (after logrotate). */
void gw_audit_reopen(struct gw_audit *a);

/* From any thread: true while records are being written; otherwise why says what fails. */
bool gw_audit_ready(struct gw_audit *a, char *why, size_t whylen);

bool gw_audit_fail_open(const struct gw_audit *a);

void gw_audit_stats(struct gw_audit *a, struct gw_audit_stats *out);

/* A worker's record queue and completion queue; woken through loop. Owned by the audit. */
struct gw_audit_port *gw_audit_port_new(struct gw_audit *a, struct gw_loop *loop);

/* A completed call: recorded false when its record could not be written in time. */
typedef void (*gw_audit_done_fn)(struct gw_call *call, bool recorded, void *arg);

/*
 * On the port's worker: encodes the call's record and queues it. hold: the call comes back
 * through gw_audit_port_drain once its record is durable (or hold_ms passed on a failing disk);
 * otherwise only the record is queued. GW_ERR_NOMEM when the record could not be made.
 */
enum gw_err gw_audit_port_submit(struct gw_audit_port *p, struct gw_call *call,
                                 bool hold) GW_MUST_CHECK;

/* On the port's worker, after its loop was woken: hands back each completed call. */
void gw_audit_port_drain(struct gw_audit_port *p, gw_audit_done_fn fn, void *arg);

/*
 * On the port's worker, with its loop stopped: waits up to timeout_ms until every held call
 * came back, hands them back, and closes the port (calls still out are dropped when they come).
 */
void gw_audit_port_close(struct gw_audit_port *p, long timeout_ms, gw_audit_done_fn fn, void *arg);

#endif
