/*
 * ship: copies of committed audit lines, sent on by a thread of their own, to a syslog collector
 * (RFC 5424 over TCP with octet-counting framing, RFC 6587; optionally TLS) or to standard
 * output. The local file is the source of truth: a shipper never slows the writer. Its queue is
 * bounded; when it is full the oldest line is dropped and counted (a collector can tell the gap
 * from the records' "seq"). A lost connection is retried with exponential backoff (100 ms
 * doubling to 5 s); a line is taken off the queue only once it was written to the socket.
 */
#ifndef GW_AUDIT_SHIP_H
#define GW_AUDIT_SHIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/errors.h"

struct gw_audit_ship;

struct gw_audit_ship_options {
    const char *address; /* syslog collector host or address; NULL: standard output */
    uint16_t port;
    bool tls;
    const char *ca_file;  /* TLS: CA certificates; NULL: the system's */
    size_t queue_records; /* lines held while the collector is away */
};

/* Starts the shipper's thread. *out is new: stop it with gw_audit_ship_stop. */
enum gw_err gw_audit_ship_start(const struct gw_audit_ship_options *o, struct gw_audit_ship **out,
                                char *msg, size_t msglen) GW_MUST_CHECK;

/* Queues a copy of one line (without its newline). Never blocks on the collector. */
void gw_audit_ship_push(struct gw_audit_ship *s, const char *line, size_t len);

/* Counters: lines sent and lines dropped because the queue was full. */
void gw_audit_ship_counts(struct gw_audit_ship *s, uint64_t *sent, uint64_t *dropped);

/* Sends what is queued for up to drain_ms, then stops and frees. Accepts NULL. */
void gw_audit_ship_stop(struct gw_audit_ship *s, long drain_ms);

#endif
