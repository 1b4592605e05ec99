#include "worker/worker.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "audit/audit.h"
#include "core/loop.h"
#include "metrics/metrics.h"

/* What the main thread asks a worker to do, on the worker's own thread. */
enum command {
    CMD_QUIESCE = 1 << 0,
    CMD_STOP_UPSTREAM = 1 << 1,
};

/* A worker's listeners, in gw_workers_options order. */
enum listener {
    PLAIN,
    TLS,
    LISTENERS,
};

struct worker {
    struct gw_loop *loop;
    struct gw_upstream *upstream;
    struct gw_limiter *limiter; /* NULL without rate limits */
    struct gw_pipeline *pipeline;
    struct gw_server *servers[LISTENERS]; /* NULL for a listener not configured */
    struct gw_audit_port *audit;          /* this worker's audit queues, or NULL */
    struct gw_audit *audit_log;
    struct gw_pipeline_journal journal;
    pthread_t thread;
    bool running;
    atomic_int commands;
    atomic_bool upstream_stopped;
};

struct gw_workers {
    struct worker *w;
    unsigned count;
    uint16_t ports[LISTENERS]; /* 0 for a listener not configured */
};

/* The audit writer is done with a call: its answer may go. */
static void on_recorded(struct gw_call *call, bool recorded, void *arg)
{
    struct worker *wk = arg;
    gw_pipeline_recorded(wk->pipeline, call, recorded);
}

static bool journal_ready(void *arg, char *why, size_t whylen)
{
    struct worker *wk = arg;
    return gw_audit_ready(wk->audit_log, why, whylen);
}

static int journal_submit(struct gw_call *call, bool hold, void *arg)
{
    struct worker *wk = arg;
    return gw_audit_port_submit(wk->audit, call, hold) == GW_OK ? 0 : -1;
}

static void on_wake(void *arg)
{
    struct worker *wk = arg;
    if (wk->audit != NULL) {
        gw_audit_port_drain(wk->audit, on_recorded, wk);
    }
    int cmd = atomic_exchange(&wk->commands, 0);
    for (int l = 0; l < LISTENERS && (cmd & CMD_QUIESCE) != 0; l++) {
        if (wk->servers[l] != NULL) {
            gw_server_quiesce(wk->servers[l]);
        }
    }
    if ((cmd & CMD_STOP_UPSTREAM) != 0) {
        gw_upstream_stop(wk->upstream);
        gw_limiter_stop(wk->limiter);
        gw_pipeline_stop(wk->pipeline); /* calls waiting for a retry are answered */
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

/* Starts one listener of a worker on port (0: a free one, for the first worker). */
static enum gw_err listener_start(struct worker *wk, const struct gw_server_options *opts,
                                  unsigned count, uint16_t port, struct gw_server **out, char *msg,
                                  size_t msglen)
{
    struct gw_server_options so = *opts;
    so.port = port;
    /* Limits for all workers together, split evenly: the kernel spreads connections evenly. */
    so.max_connections = (opts->max_connections + count - 1) / count;
    so.max_connections_per_address = (opts->max_connections_per_address + count - 1) / count;
    return gw_server_start(&so, wk->loop, wk->pipeline, out, msg, msglen);
}

static enum gw_err worker_init(struct worker *wk, const struct gw_workers_options *o,
                               uint16_t ports[LISTENERS], char *msg, size_t msglen)
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
    if (o->limits != NULL && (err = gw_limiter_new(o->limits, wk->loop, &wk->limiter)) != GW_OK) {
        snprintf(msg, msglen, "cannot set up the rate limits (%s)", gw_err_str(err));
        return err;
    }
    struct gw_pipeline_parts parts = o->parts;
    parts.upstream = wk->upstream;
    parts.limiter = wk->limiter;
    parts.loop = wk->loop;
    if (o->audit != NULL) {
        if ((wk->audit = gw_audit_port_new(o->audit, wk->loop)) == NULL) {
            snprintf(msg, msglen, "out of memory");
            return GW_ERR_NOMEM;
        }
        wk->audit_log = o->audit;
        wk->journal = (struct gw_pipeline_journal){
            .ready = journal_ready,
            .submit = journal_submit,
            .fail_open = gw_audit_fail_open(o->audit),
            .arg = wk,
        };
        parts.journal = &wk->journal;
    }
    if ((wk->pipeline = gw_pipeline_new(&parts)) == NULL) {
        snprintf(msg, msglen, "out of memory");
        return GW_ERR_NOMEM;
    }
    const struct gw_server_options *listeners[LISTENERS] = {o->plain, o->tls};
    for (int l = 0; l < LISTENERS; l++) {
        if (listeners[l] == NULL) {
            continue;
        }
        if ((err = listener_start(wk, listeners[l], o->count, ports[l], &wk->servers[l], msg,
                                  msglen)) != GW_OK) {
            return err;
        }
        ports[l] = gw_server_port(wk->servers[l]);
    }
    return GW_OK;
}

static void worker_free(struct worker *wk)
{
    /* Transfers end first (their calls are answered), then the connections that own the calls. */
    gw_upstream_stop(wk->upstream);
    gw_limiter_stop(wk->limiter);   /* calls waiting for a token are answered too */
    gw_pipeline_stop(wk->pipeline); /* and calls waiting for a retry */
    /* Calls waiting for their audit record come back (recorded, or after the hold). */
    gw_audit_port_close(wk->audit, 10000, on_recorded, wk);
    for (int l = 0; l < LISTENERS; l++) {
        gw_server_stop(wk->servers[l]);
    }
    gw_upstream_free(wk->upstream);
    gw_limiter_free(wk->limiter);
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
    if (opts->plain == NULL && opts->tls == NULL) {
        snprintf(msg, msglen, "no listener is configured");
        return GW_ERR_INVALID;
    }
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
    /* The first worker's servers find the ports (0 picks one); the others share them. */
    w->ports[PLAIN] = opts->plain != NULL ? opts->plain->port : 0;
    w->ports[TLS] = opts->tls != NULL ? opts->tls->port : 0;
    for (unsigned i = 0; i < count; i++) {
        if (opts->metrics != NULL) {
            o.parts.record = gw_metrics_record;
            o.parts.record_arg = gw_metrics_slot(opts->metrics, i);
        }
        if ((err = worker_init(&w->w[i], &o, w->ports, msg, msglen)) != GW_OK) {
            goto out;
        }
    }
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
    return w->w[0].servers[PLAIN] != NULL ? w->ports[PLAIN] : 0;
}

uint16_t gw_workers_tls_port(const struct gw_workers *w)
{
    return w->w[0].servers[TLS] != NULL ? w->ports[TLS] : 0;
}

void gw_workers_quiesce(struct gw_workers *w)
{
    /* New calls are refused from this instant; the loops stop accepting on their next turn. */
    for (unsigned i = 0; i < w->count; i++) {
        for (int l = 0; l < LISTENERS; l++) {
            if (w->w[i].servers[l] != NULL) {
                gw_server_refuse_new_calls(w->w[i].servers[l]);
            }
        }
    }
    command(w, CMD_QUIESCE);
}

static size_t unanswered(const struct gw_workers *w)
{
    size_t n = 0;
    for (unsigned i = 0; i < w->count; i++) {
        for (int l = 0; l < LISTENERS; l++) {
            if (w->w[i].servers[l] != NULL) {
                n += gw_server_unanswered(w->w[i].servers[l]);
            }
        }
    }
    return n;
}

size_t gw_workers_in_flight(const struct gw_workers *w)
{
    return unanswered(w);
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
