/*
 * audit_int.h: what the files of the audit writer share. Nothing outside gateway/audit/ includes
 * it: the module's interface is audit.h.
 *
 *   audit.c    the writer thread: its rounds (group commit, retries, the bounded backlog),
 *              health and counters, open and close
 *   logfile.c  the log file: signed lines (genesis, seal), durable batches, opening, putting
 *              aside, rotating and reopening; marks the writer healthy or not
 *   port.c     the workers' ports: submitting records, and the per-worker completion queues the
 *              writer hands calls back on, waking their loops
 */
#ifndef GW_AUDIT_INT_H
#define GW_AUDIT_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "audit/audit.h"
#include "audit/chain.h"
#include "core/buf.h"

#define PORTS_MAX 128

/* One record on its way: queued, pending (being written) or done (back at its port). */
struct entry {
    struct entry *next;
    struct gw_audit_port *port; /* NULL: nobody waits for it */
    struct gw_call *call;       /* NULL once handed back (or never held) */
    struct entry *back; /* a held call's way back, made at submit: handing back never fails */
    char *body;
    size_t len;
    int64_t deadline_ms;
    bool recorded;
};

struct list {
    struct entry *head;
    struct entry **tail;
    size_t count;
};

struct gw_audit {
    char *path;
    struct gw_audit_options o;
    struct gw_audit_signer *signer;
    struct gw_audit_redactor *redactor;
    struct gw_audit_ship *ship[2]; /* syslog, stdout */

    pthread_t thread;
    bool running;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct list in; /* submitted, not yet taken by the writer */
    bool stop;
    bool reopen;
    struct gw_audit_port *ports[PORTS_MAX];
    size_t port_count;

    /* The writer's own. */
    int fd;
    off_t size;
    struct gw_audit_chain chain;
    uint64_t unsealed; /* call records since the last signed line */
    int64_t last_seal_ms;
    int64_t next_retry_ms;
    struct list pending;
    struct gw_buf batch;

    atomic_bool healthy;
    pthread_mutex_t why_mu;
    char why[256];

    _Atomic uint64_t records, batches, max_batch, seals, rotations, failures, unrecorded, lost;
    _Atomic uint64_t submitted; /* records handed to the writer */
};

/* audit.c */
int64_t audit_now_ms(void); /* CLOCK_MONOTONIC */
void audit_list_init(struct list *l);
void audit_list_push(struct list *l, struct entry *e);
/* A condition variable whose timed waits take CLOCK_MONOTONIC deadlines. */
void audit_cond_init_monotonic(pthread_cond_t *cv);

/* logfile.c: the writer's own, called on its thread (and by gw_audit_open before it starts). */
enum gw_err audit_append_seal(struct gw_audit *a, const char *reason);
bool audit_write_batch(struct gw_audit *a);
bool audit_open_new(struct gw_audit *a, const char *reason, const char *prev_file,
                    size_t torn_bytes);
bool audit_open_at_start(struct gw_audit *a);
bool audit_seal_now(struct gw_audit *a, const char *reason);
void audit_rotate(struct gw_audit *a);
void audit_reopen(struct gw_audit *a);

/* port.c */
/* Hands a held call back to its port (writer only); recorded: its record is durable. */
void audit_hand_back(struct gw_audit *a, struct entry *e, bool recorded);
/* Wakes the loops of the ports handed calls this round, and any gw_audit_port_close waiting. */
void audit_wake_ports(struct gw_audit *a);
/* Frees every port and the calls left on it (at close, once the writer stopped). */
void audit_ports_free(struct gw_audit *a);

#endif
