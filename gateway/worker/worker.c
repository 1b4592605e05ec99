#include "worker/worker.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "core/loop.h"

/* What the main thread asks a worker to do, on the worker's own thread. */
enum command {
    CMD_QUIESCE = 1 << 0,
    CMD_STOP_UPSTREAM = 1 << 1,
};

struct worker {
    struct gw_loop *loop;
    struct gw_upstream *upstream;
    struct gw_pipeline *pipeline;
    struct gw_server *server;
    pthread_t thread;
    bool running;
    atomic_int commands;
    atomic_bool upstream_stopped;
};

struct gw_workers {
    struct worker *w;
    unsigned count;
    uint16_t port;
};

static void on_wake(void *arg)
{
    struct worker *wk = arg;
    int cmd = atomic_exchange(&wk->commands, 0);
    if ((cmd & CMD_QUIESCE) != 0) {
        gw_server_quiesce(wk->server);
    }
    if ((cmd & CMD_STOP_UPSTREAM) != 0) {
        gw_upstream_stop(wk->upstream);
        atomic_store(&wk->upstream_stopped, true);
    }
}

static void *run(void *arg)
{
    struct worker *wk = arg;
    if (gw_loop_run(wk->loop) != GW_OK) {
        fprintf(stderr, "level=error event=worker_loop error=\"epoll failed\"\n");
    }
    return NULL;
}

static enum gw_err worker_init(struct worker *wk, const struct gw_workers_options *o, uint16_t port,
                               char *msg, size_t msglen)
{
    enum gw_err err;
    atomic_init(&wk->commands, 0);
    atomic_init(&wk->upstream_stopped, false);
    if ((err = gw_loop_new(on_wake, wk, &wk->loop)) != GW_OK) {
        snprintf(msg, msglen, "cannot create an event loop");
        return err;
    }
    if ((err = gw_upstream_new(&o->upstream, wk->loop, &wk->upstream, msg, msglen)) != GW_OK) {
        return err;
    }
    struct gw_pipeline_parts parts = o->parts;
    parts.upstream = wk->upstream;
    if ((wk->pipeline = gw_pipeline_new(&parts)) == NULL) {
        snprintf(msg, msglen, "out of memory");
        return GW_ERR_NOMEM;
    }
    struct gw_server_options so = o->server;
    so.port = port;
    /* Limits for all workers together, split evenly: the kernel spreads connections evenly. */
    so.max_connections = (o->server.max_connections + o->count - 1) / o->count;
    so.max_connections_per_address =
        (o->server.max_connections_per_address + o->count - 1) / o->count;
    return gw_server_start(&so, wk->loop, wk->pipeline, &wk->server, msg, msglen);
}

static void worker_free(struct worker *wk)
{
    /* Transfers end first (their calls are answered), then the connections that own the calls. */
    gw_upstream_stop(wk->upstream);
    gw_server_stop(wk->server);
    gw_upstream_free(wk->upstream);
    gw_pipeline_free(wk->pipeline);
    gw_loop_free(wk->loop);
}

static void command(struct gw_workers *w, int cmd)
{
    for (unsigned i = 0; i < w->count; i++) {
        atomic_fetch_or(&w->w[i].commands, cmd);
        gw_loop_wake(w->w[i].loop);
    }
}

enum gw_err gw_workers_start(const struct gw_workers_options *opts, struct gw_workers **out,
                             char *msg, size_t msglen)
{
    enum gw_err err;
    struct gw_workers *w = calloc(1, sizeof *w);
    unsigned count = opts->count > 0 ? opts->count : 1;
    if (w == NULL || (w->w = calloc(count, sizeof *w->w)) == NULL) {
        free(w);
        snprintf(msg, msglen, "out of memory");
        return GW_ERR_NOMEM;
    }
    w->count = count;
    struct gw_workers_options o = *opts;
    o.count = count;
    /* The first server finds the port (0 picks one); the others share it. */
    uint16_t port = opts->server.port;
    for (unsigned i = 0; i < count; i++) {
        if ((err = worker_init(&w->w[i], &o, port, msg, msglen)) != GW_OK) {
            goto out;
        }
        port = gw_server_port(w->w[i].server);
    }
    w->port = port;
    for (unsigned i = 0; i < count; i++) {
        if (pthread_create(&w->w[i].thread, NULL, run, &w->w[i]) != 0) {
            snprintf(msg, msglen, "cannot start worker thread %u", i);
            err = GW_ERR_INTERNAL;
            goto out;
        }
        w->w[i].running = true;
    }
    *out = w;
    w = NULL;
    err = GW_OK;
out:
    gw_workers_stop(w);
    return err;
}

uint16_t gw_workers_port(const struct gw_workers *w)
{
    return w->port;
}

void gw_workers_quiesce(struct gw_workers *w)
{
    /* New calls are refused from this instant; the loops stop accepting on their next turn. */
    for (unsigned i = 0; i < w->count; i++) {
        gw_server_refuse_new_calls(w->w[i].server);
    }
    command(w, CMD_QUIESCE);
}

static size_t unanswered(const struct gw_workers *w)
{
    size_t n = 0;
    for (unsigned i = 0; i < w->count; i++) {
        n += gw_server_unanswered(w->w[i].server);
    }
    return n;
}

bool gw_workers_drain(struct gw_workers *w, long timeout_ms)
{
    struct timespec ten_ms = {.tv_sec = 0, .tv_nsec = 10 * 1000 * 1000};
    for (long waited = 0; waited < timeout_ms; waited += 10) {
        if (unanswered(w) == 0) {
            /* An answer counted as given is queued; give the loops a moment to write it. */
            nanosleep(&ten_ms, NULL);
            return true;
        }
        nanosleep(&ten_ms, NULL);
    }
    return false;
}

void gw_workers_stop_upstreams(struct gw_workers *w, long timeout_ms)
{
    command(w, CMD_STOP_UPSTREAM);
    struct timespec ten_ms = {.tv_sec = 0, .tv_nsec = 10 * 1000 * 1000};
    for (unsigned i = 0; i < w->count; i++) {
        for (long waited = 0; waited < timeout_ms && !atomic_load(&w->w[i].upstream_stopped);
             waited += 10) {
            nanosleep(&ten_ms, NULL);
        }
    }
    gw_workers_drain(w, timeout_ms);
}

void gw_workers_stop(struct gw_workers *w)
{
    if (w == NULL) {
        return;
    }
    for (unsigned i = 0; i < w->count; i++) {
        if (w->w[i].running) {
            gw_loop_stop(w->w[i].loop);
            pthread_join(w->w[i].thread, NULL);
        }
    }
    /* The loops are done: each worker's parts are freed from here, the server first (its
     * connections' calls may be borrowed by the upstream only while the loop ran). */
    for (unsigned i = 0; i < w->count; i++) {
        if (w->w[i].loop != NULL) {
            worker_free(&w->w[i]);
        }
    }
    free(w->w);
    free(w);
}
