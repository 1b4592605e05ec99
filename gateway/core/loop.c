#include "core/loop.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define MAX_EVENTS 64

struct gw_loop_watch {
    struct gw_loop *loop;
    int fd;
    gw_loop_fd_fn fn; /* NULL once unwatched: its events of this turn are dropped */
    void *arg;
    struct gw_loop_watch *next_dead;
};

/* A loop has a handful of timers (libmicrohttpd's, libcurl's, the request deadlines): a list. */
struct gw_loop_timer {
    struct gw_loop_timer *next;
    struct gw_loop *loop;
    gw_loop_fn fn;
    void *arg;
    int64_t due_ms; /* -1: not armed */
};

struct gw_loop {
    int epfd;
    int wakefd;
    gw_loop_fn wake;
    void *wake_arg;
    atomic_bool stopping;
    int64_t now_ms;
    struct gw_loop_timer *timers;
    struct gw_loop_watch *dead; /* unwatched this turn: freed when the turn's events are done */
};

static int64_t monotonic_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

enum gw_err gw_loop_new(gw_loop_fn wake, void *wake_arg, struct gw_loop **out)
{
    struct gw_loop *loop = calloc(1, sizeof *loop);
    if (loop == NULL) {
        return GW_ERR_NOMEM;
    }
    loop->wake = wake;
    loop->wake_arg = wake_arg;
    atomic_init(&loop->stopping, false);
    loop->now_ms = monotonic_ms();
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    loop->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    /* The wake fd's events carry a NULL watch: the loop reads it itself. */
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (loop->epfd < 0 || loop->wakefd < 0 ||
        epoll_ctl(loop->epfd, EPOLL_CTL_ADD, loop->wakefd, &ev) != 0) {
        gw_loop_free(loop);
        return GW_ERR_INTERNAL;
    }
    *out = loop;
    return GW_OK;
}

static void free_dead(struct gw_loop *loop)
{
    while (loop->dead != NULL) {
        struct gw_loop_watch *w = loop->dead;
        loop->dead = w->next_dead;
        free(w);
    }
}

void gw_loop_free(struct gw_loop *loop)
{
    if (loop == NULL) {
        return;
    }
    free_dead(loop);
    if (loop->epfd >= 0) {
        close(loop->epfd);
    }
    if (loop->wakefd >= 0) {
        close(loop->wakefd);
    }
    free(loop);
}

void gw_loop_wake(struct gw_loop *loop)
{
    uint64_t one = 1;
    /* A full counter (EAGAIN) still wakes the loop: nothing to do on failure. */
    ssize_t n = write(loop->wakefd, &one, sizeof one);
    (void)n;
}

void gw_loop_stop(struct gw_loop *loop)
{
    atomic_store(&loop->stopping, true);
    gw_loop_wake(loop);
}

/* Milliseconds until the first due timer, -1 when none is armed. */
static int next_timeout(const struct gw_loop *loop)
{
    int64_t first = -1;
    for (const struct gw_loop_timer *t = loop->timers; t != NULL; t = t->next) {
        if (t->due_ms >= 0 && (first < 0 || t->due_ms < first)) {
            first = t->due_ms;
        }
    }
    if (first < 0) {
        return -1;
    }
    int64_t wait = first - monotonic_ms();
    return wait <= 0 ? 0 : (wait > 60000 ? 60000 : (int)wait);
}

/* Fires every due timer once; a callback may re-arm or arm others (they wait for the next turn). */
static void run_timers(struct gw_loop *loop)
{
    int64_t now = loop->now_ms;
    for (;;) {
        struct gw_loop_timer *due = NULL;
        for (struct gw_loop_timer *t = loop->timers; t != NULL; t = t->next) {
            if (t->due_ms >= 0 && t->due_ms <= now) {
                due = t;
                break;
            }
        }
        if (due == NULL) {
            return;
        }
        due->due_ms = -1;
        due->fn(due->arg);
    }
}

enum gw_err gw_loop_run(struct gw_loop *loop)
{
    struct epoll_event events[MAX_EVENTS];
    while (!atomic_load(&loop->stopping)) {
        int n = epoll_wait(loop->epfd, events, MAX_EVENTS, next_timeout(loop));
        if (n < 0 && errno != EINTR) {
            return GW_ERR_INTERNAL;
        }
        loop->now_ms = monotonic_ms();
        for (int i = 0; i < n; i++) {
            struct gw_loop_watch *w = events[i].data.ptr;
            if (w == NULL) {
                uint64_t count;
                ssize_t r = read(loop->wakefd, &count, sizeof count);
                (void)r;
                if (loop->wake != NULL) {
                    loop->wake(loop->wake_arg);
                }
                continue;
            }
            if (w->fn != NULL) {
                w->fn(w->arg, w->fd, events[i].events);
            }
        }
        run_timers(loop);
        free_dead(loop);
    }
    atomic_store(&loop->stopping, false); /* it may run again */
    return GW_OK;
}

struct gw_loop_watch *gw_loop_watch(struct gw_loop *loop, int fd, uint32_t events, gw_loop_fd_fn fn,
                                    void *arg)
{
    struct gw_loop_watch *w = calloc(1, sizeof *w);
    if (w == NULL) {
        return NULL;
    }
    w->loop = loop;
    w->fd = fd;
    w->fn = fn;
    w->arg = arg;
    struct epoll_event ev = {.events = events, .data.ptr = w};
    if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        free(w);
        return NULL;
    }
    return w;
}

bool gw_loop_rewatch(struct gw_loop_watch *w, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = w};
    return epoll_ctl(w->loop->epfd, EPOLL_CTL_MOD, w->fd, &ev) == 0;
}

void gw_loop_unwatch(struct gw_loop_watch *w)
{
    if (w == NULL) {
        return;
    }
    /* The fd may be closed already (libcurl closes before telling): epoll dropped it then. */
    epoll_ctl(w->loop->epfd, EPOLL_CTL_DEL, w->fd, NULL);
    w->fn = NULL;
    w->next_dead = w->loop->dead;
    w->loop->dead = w;
}

struct gw_loop_timer *gw_loop_timer_new(struct gw_loop *loop, gw_loop_fn fn, void *arg)
{
    struct gw_loop_timer *t = calloc(1, sizeof *t);
    if (t == NULL) {
        return NULL;
    }
    t->loop = loop;
    t->fn = fn;
    t->arg = arg;
    t->due_ms = -1;
    t->next = loop->timers;
    loop->timers = t;
    return t;
}

void gw_loop_timer_set(struct gw_loop_timer *t, long ms)
{
    t->due_ms = ms < 0 ? -1 : monotonic_ms() + ms;
}

void gw_loop_timer_free(struct gw_loop_timer *t)
{
    if (t == NULL) {
        return;
    }
    for (struct gw_loop_timer **p = &t->loop->timers; *p != NULL; p = &(*p)->next) {
        if (*p == t) {
            *p = t->next;
            break;
        }
    }
    free(t);
}

int64_t gw_loop_now_ms(const struct gw_loop *loop)
{
    return loop->now_ms;
}
