#include "http/watch.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "core/loop.h"

/* After the caller's end of stream, time for a request already sent to be read whole. */
#define HANGUP_GRACE_MS 100

struct gw_watch_entry {
    struct gw_watch_entry *prev, *next;
    struct gw_watch *watch;
    struct gw_loop_watch *hangup; /* the peer's end of stream, watched by the loop */
    int fd;
    bool armed;
    bool peer_gone;      /* the caller closed its side: no request can come any more */
    int64_t deadline_ms; /* the loop's clock */
};

struct gw_watch {
    struct gw_loop *loop;
    struct gw_loop_timer *timer;
    struct gw_watch_entry *head;
    long timeout_ms;
    long period_ms;
    int64_t next_check_ms; /* when the timer fires next */
    unsigned long expired;
};

static void expire(struct gw_watch *w, struct gw_watch_entry *e)
{
    /* libmicrohttpd sees the end of the stream and closes the connection itself. */
    shutdown(e->fd, SHUT_RDWR);
    e->armed = false;
    w->expired++;
}

/*
 * libmicrohttpd 0.9.75 watches its sockets edge-triggered and may read a request and the caller's
 * end of stream in one go without noticing the end: the socket would wait in CLOSE_WAIT until a
 * timeout. The loop tells of the end of stream instead. The caller may only have half-closed
 * after sending a whole request, and still read the answer: a connection still receiving gets a
 * short grace to complete its request (which disarms the deadline), one waiting for its answer is
 * closed once the answer is written (gw_watch_arm).
 */
static void on_hangup(void *arg, int fd, uint32_t events)
{
    struct gw_watch_entry *e = arg;
    (void)fd;
    (void)events;
    e->peer_gone = true;
    struct gw_watch *w = e->watch;
    int64_t grace = gw_loop_now_ms(w->loop) + HANGUP_GRACE_MS;
    if (e->armed && e->deadline_ms > grace) {
        e->deadline_ms = grace;
        if (w->next_check_ms > grace) { /* only ever earlier: hangups cannot postpone checks */
            w->next_check_ms = grace;
            gw_loop_timer_set(w->timer, HANGUP_GRACE_MS);
        }
    }
}

static void schedule(struct gw_watch *w, long ms)
{
    w->next_check_ms = gw_loop_now_ms(w->loop) + ms;
    gw_loop_timer_set(w->timer, ms);
}

static void check(void *arg)
{
    struct gw_watch *w = arg;
    int64_t now = gw_loop_now_ms(w->loop);
    for (struct gw_watch_entry *e = w->head; e != NULL; e = e->next) {
        if (e->armed && now >= e->deadline_ms) {
            expire(w, e);
        }
    }
    schedule(w, w->period_ms);
}

enum gw_err gw_watch_new(struct gw_loop *loop, long request_timeout_ms, struct gw_watch **out)
{
    struct gw_watch *w = calloc(1, sizeof *w);
    if (w == NULL) {
        return GW_ERR_NOMEM;
    }
    w->loop = loop;
    w->timeout_ms = request_timeout_ms;
    /* Checked a few times per timeout: a deadline is kept to within a quarter of it. */
    w->period_ms = request_timeout_ms / 4 < 250 ? request_timeout_ms / 4 : 250;
    if (w->period_ms < 10) {
        w->period_ms = 10;
    }
    if ((w->timer = gw_loop_timer_new(loop, check, w)) == NULL) {
        free(w);
        return GW_ERR_NOMEM;
    }
    schedule(w, w->period_ms);
    *out = w;
    return GW_OK;
}

void gw_watch_free(struct gw_watch *w)
{
    if (w == NULL) {
        return;
    }
    while (w->head != NULL) {
        struct gw_watch_entry *e = w->head;
        w->head = e->next;
        gw_loop_unwatch(e->hangup);
        free(e);
    }
    gw_loop_timer_free(w->timer);
    free(w);
}

struct gw_watch_entry *gw_watch_add(struct gw_watch *w, int fd)
{
    struct gw_watch_entry *e = calloc(1, sizeof *e);
    if (e == NULL) {
        return NULL;
    }
    e->fd = fd;
    e->watch = w;
    /* Edge-triggered: it fires once, when the caller's end of stream arrives. */
    e->hangup = gw_loop_watch(w->loop, fd, EPOLLRDHUP | EPOLLET, on_hangup, e);
    e->next = w->head;
    if (w->head != NULL) {
        w->head->prev = e;
    }
    w->head = e;
    gw_watch_arm(w, e);
    return e;
}

void gw_watch_remove(struct gw_watch *w, struct gw_watch_entry *e)
{
    if (e == NULL) {
        return;
    }
    if (e->prev != NULL) {
        e->prev->next = e->next;
    } else {
        w->head = e->next;
    }
    if (e->next != NULL) {
        e->next->prev = e->prev;
    }
    gw_loop_unwatch(e->hangup);
    free(e);
}

void gw_watch_arm(struct gw_watch *w, struct gw_watch_entry *e)
{
    if (e != NULL) {
        e->deadline_ms = gw_loop_now_ms(w->loop) + w->timeout_ms;
        e->armed = true;
        if (e->peer_gone) {
            expire(w, e); /* no further request can come */
        }
    }
}

void gw_watch_disarm(struct gw_watch_entry *e)
{
    if (e != NULL) {
        e->armed = false;
    }
}

unsigned long gw_watch_expired(const struct gw_watch *w)
{
    return w->expired;
}
