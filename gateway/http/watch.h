/*
 * watch: a deadline for receiving each whole request, head and body.
 *
 * libmicrohttpd's own timeout is an idle timeout: a client sending one byte every few seconds
 * never reaches it, and enough such clients take every connection slot. The watch keeps each
 * connection's socket and deadline; a timer of the worker's loop shuts the socket down once its
 * deadline passes, and libmicrohttpd then closes the connection as if the client had gone. A
 * connection is armed from its start and again after each answer, and disarmed while its call is
 * in the pipeline. Everything runs on the worker's loop: no lock.
 */
#ifndef GW_WATCH_H
#define GW_WATCH_H

#include "core/errors.h"

struct gw_loop;
struct gw_watch;
struct gw_watch_entry;

/* Returns a new watch on loop in *out (free with gw_watch_free). */
enum gw_err gw_watch_new(struct gw_loop *loop, long request_timeout_ms,
                         struct gw_watch **out) GW_MUST_CHECK;

/* Frees the watch and every entry still in it. Accepts NULL. */
void gw_watch_free(struct gw_watch *w);

/*
 * Watches fd from now on, armed. Returns the new entry (owned by the watch), or NULL when out of
 * memory: the connection is then not watched.
 */
struct gw_watch_entry *gw_watch_add(struct gw_watch *w, int fd);

/* Stops watching: before the socket is closed. Accepts NULL. */
void gw_watch_remove(struct gw_watch *w, struct gw_watch_entry *e);

/* Arms the deadline again from now (a new request may start), or disarms it. Accept NULL. */
void gw_watch_arm(struct gw_watch *w, struct gw_watch_entry *e);
void gw_watch_disarm(struct gw_watch_entry *e);

/* How many connections the watch has shut down. */
unsigned long gw_watch_expired(const struct gw_watch *w);

#endif
