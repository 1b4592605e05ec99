/*
 * loop: one event loop (epoll) per worker thread. Everything a worker does, receiving calls,
 * talking to the upstream and answering, is a callback of its loop, so a call never crosses a
 * thread and nothing on the hot path takes a lock.
 *
 * Only gw_loop_wake and gw_loop_stop may be called from another thread.
 */
#ifndef GW_LOOP_H
#define GW_LOOP_H

#include <stdbool.h>
#include <stdint.h>

#include "core/errors.h"

struct gw_loop;
struct gw_loop_watch;
struct gw_loop_timer;

/* An fd is ready: events are EPOLLIN, EPOLLOUT, EPOLLERR, EPOLLHUP bits. */
typedef void (*gw_loop_fd_fn)(void *arg, int fd, uint32_t events);

/* A timer is due, or the loop was woken (gw_loop_wake). */
typedef void (*gw_loop_fn)(void *arg);

/* Returns a new loop in *out; wake runs on the loop's thread after each gw_loop_wake. */
enum gw_err gw_loop_new(gw_loop_fn wake, void *wake_arg, struct gw_loop **out) GW_MUST_CHECK;

/* Frees the loop; every watch and timer must be gone. Accepts NULL. */
void gw_loop_free(struct gw_loop *loop);

/*
 * Runs callbacks until gw_loop_stop (called before, it makes the next run return at once); the
 * loop may be run again afterwards. Returns GW_OK, or GW_ERR_INTERNAL if epoll fails.
 */
enum gw_err gw_loop_run(struct gw_loop *loop) GW_MUST_CHECK;

/* From any thread: makes the loop run its wake callback soon. */
void gw_loop_wake(struct gw_loop *loop);

/* From any thread: makes gw_loop_run return after the current callback. */
void gw_loop_stop(struct gw_loop *loop);

/*
 * Watches fd for events (EPOLLIN and/or EPOLLOUT; level-triggered). Returns a new watch owned by
 * the caller (remove it with gw_loop_unwatch before closing fd), or NULL on failure.
 */
struct gw_loop_watch *gw_loop_watch(struct gw_loop *loop, int fd, uint32_t events, gw_loop_fd_fn fn,
                                    void *arg);

/* Changes the events watched. Returns false if epoll refuses. */
bool gw_loop_rewatch(struct gw_loop_watch *w, uint32_t events);

/* Stops watching and frees the watch. Accepts NULL. */
void gw_loop_unwatch(struct gw_loop_watch *w);

/* Returns a new, unarmed timer (free with gw_loop_timer_free), or NULL when out of memory. */
struct gw_loop_timer *gw_loop_timer_new(struct gw_loop *loop, gw_loop_fn fn, void *arg);

/* Arms the timer to fire once after ms (0: on the next turn), or disarms it with ms < 0. */
void gw_loop_timer_set(struct gw_loop_timer *t, long ms);

/* Accepts NULL. */
void gw_loop_timer_free(struct gw_loop_timer *t);

/* The loop's idea of now, CLOCK_MONOTONIC milliseconds, updated once per turn. */
int64_t gw_loop_now_ms(const struct gw_loop *loop);

#endif
