#include "http/watch.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

struct gw_watch_entry {
    struct gw_watch_entry *prev, *next;
    int fd;
    bool armed;
    struct timespec deadline; /* CLOCK_MONOTONIC */
};

struct gw_watch {
    pthread_mutex_t lock; /* guards the list, every entry, stopping and expired */
    pthread_cond_t wake;
    pthread_t thread;
    struct gw_watch_entry *head;
    long timeout_ms;
    bool stopping;
    unsigned long expired;
};

static struct timespec after_ms(long ms)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    t.tv_sec += ms / 1000;
    t.tv_nsec += (ms % 1000) * 1000000L;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    return t;
}

static bool passed(const struct timespec *deadline, const struct timespec *now)
{
    return now->tv_sec > deadline->tv_sec ||
           (now->tv_sec == deadline->tv_sec && now->tv_nsec >= deadline->tv_nsec);
}

static void *loop(void *arg)
{
    struct gw_watch *w = arg;
    /* Checked a few times per timeout: a deadline is kept to within a quarter of it. */
    long period_ms = w->timeout_ms / 4 < 250 ? w->timeout_ms / 4 : 250;
    if (period_ms < 10) {
        period_ms = 10;
    }
    pthread_mutex_lock(&w->lock);
    while (!w->stopping) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        for (struct gw_watch_entry *e = w->head; e != NULL; e = e->next) {
            if (e->armed && passed(&e->deadline, &now)) {
                /* The entry is removed before libmicrohttpd closes the socket, so fd is still
                 * this connection's: the lock makes removal and this shutdown exclusive. */
                shutdown(e->fd, SHUT_RDWR);
                e->armed = false;
                w->expired++;
            }
        }
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += period_ms * 1000000L;
        while (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&w->wake, &w->lock, &until);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

enum gw_err gw_watch_start(long request_timeout_ms, struct gw_watch **out)
{
    struct gw_watch *w = calloc(1, sizeof *w);
    if (w == NULL) {
        return GW_ERR_NOMEM;
    }
    w->timeout_ms = request_timeout_ms;
    if (pthread_mutex_init(&w->lock, NULL) != 0) {
        free(w);
        return GW_ERR_INTERNAL;
    }
    if (pthread_cond_init(&w->wake, NULL) != 0) {
        pthread_mutex_destroy(&w->lock);
        free(w);
        return GW_ERR_INTERNAL;
    }
    if (pthread_create(&w->thread, NULL, loop, w) != 0) {
        pthread_cond_destroy(&w->wake);
        pthread_mutex_destroy(&w->lock);
        free(w);
        return GW_ERR_INTERNAL;
    }
    *out = w;
    return GW_OK;
}

void gw_watch_stop(struct gw_watch *w)
{
    if (w == NULL) {
        return;
    }
    pthread_mutex_lock(&w->lock);
    w->stopping = true;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
    while (w->head != NULL) {
        struct gw_watch_entry *e = w->head;
        w->head = e->next;
        free(e);
    }
    pthread_cond_destroy(&w->wake);
    pthread_mutex_destroy(&w->lock);
    free(w);
}

struct gw_watch_entry *gw_watch_add(struct gw_watch *w, int fd)
{
    struct gw_watch_entry *e = calloc(1, sizeof *e);
    if (e == NULL) {
        return NULL;
    }
    e->fd = fd;
    e->armed = true;
    e->deadline = after_ms(w->timeout_ms);
    pthread_mutex_lock(&w->lock);
    e->next = w->head;
    if (w->head != NULL) {
        w->head->prev = e;
    }
    w->head = e;
    pthread_mutex_unlock(&w->lock);
    return e;
}

void gw_watch_remove(struct gw_watch *w, struct gw_watch_entry *e)
{
    if (e == NULL) {
        return;
    }
    pthread_mutex_lock(&w->lock);
    if (e->prev != NULL) {
        e->prev->next = e->next;
    } else {
        w->head = e->next;
    }
    if (e->next != NULL) {
        e->next->prev = e->prev;
    }
    pthread_mutex_unlock(&w->lock);
    free(e);
}

void gw_watch_arm(struct gw_watch *w, struct gw_watch_entry *e)
{
    if (e == NULL) {
        return;
    }
    struct timespec deadline = after_ms(w->timeout_ms);
    pthread_mutex_lock(&w->lock);
    e->deadline = deadline;
    e->armed = true;
    pthread_mutex_unlock(&w->lock);
}

void gw_watch_disarm(struct gw_watch *w, struct gw_watch_entry *e)
{
    if (e == NULL) {
        return;
    }
    pthread_mutex_lock(&w->lock);
    e->armed = false;
    pthread_mutex_unlock(&w->lock);
}

unsigned long gw_watch_expired(struct gw_watch *w)
{
    pthread_mutex_lock(&w->lock);
    unsigned long n = w->expired;
    pthread_mutex_unlock(&w->lock);
    return n;
}
