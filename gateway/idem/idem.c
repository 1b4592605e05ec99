#include "idem/idem.h"

#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "core/loop.h"

#define STRIPES 64
#define BUCKETS 1024 /* per stripe */
#define NS_PER_S 1000000000LL
#define NS_PER_MS 1000000LL

struct wait;

struct gw_idem_entry {
    unsigned char slot[GW_IDEM_HASH_BYTES];
    unsigned char params[GW_IDEM_HASH_BYTES];
    unsigned stripe;
    bool in_flight;
    int64_t expires_ns; /* done: replayed until then */
    unsigned status;
    char *body;
    size_t len;
    struct wait *waiters; /* in flight: calls waiting for its answer */
    struct gw_idem_entry *next;
};

/* A call waiting for the first call's answer. Owned by its port; linked in an entry meanwhile. */
struct wait {
    struct gw_call *call;
    struct gw_idem_port *port;
    struct gw_idem_entry *entry; /* while linked there (under the stripe's lock) */
    unsigned stripe;             /* of entry: fixed */
    int64_t deadline_ns;
    bool delivered; /* under the stripe's lock: unlinked from entry, answer set, queued */
    struct gw_idem_answer answer;
    struct wait *next_in_entry;
    struct wait *next_ready; /* in the port's ready queue (under the port's lock) */
    struct wait *prev_pending, *next_pending; /* the port's own list: its thread only */
};

struct stripe {
    pthread_mutex_t lock;
    struct gw_idem_entry *buckets[BUCKETS];
};

struct gw_idem {
    size_t max_entries;
    int64_t window_ns;
    atomic_size_t count;
    _Atomic int64_t last_full_sweep_ns; /* when a full table was last swept whole */
    struct stripe stripes[STRIPES];
};

struct gw_idem_port {
    struct gw_idem *idem;
    struct gw_loop *loop;
    gw_idem_ready_fn ready;
    void *arg;
    int efd;
    struct gw_loop_watch *watch;
    struct gw_loop_timer *timer;
    pthread_mutex_t lock;
    struct wait *ready_queue; /* delivered answers, under lock */
    struct wait *pending;     /* every wait of this port not yet handed back */
};

static int64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * NS_PER_S + t.tv_nsec;
}

struct gw_idem *gw_idem_new(size_t max_entries, long replay_window_s)
{
    struct gw_idem *idem = calloc(1, sizeof *idem);
    if (idem == NULL) {
        return NULL;
    }
    idem->max_entries = max_entries;
    idem->window_ns = (int64_t)(replay_window_s < 0 ? 0 : replay_window_s) * NS_PER_S;
    atomic_init(&idem->count, 0);
    for (size_t i = 0; i < STRIPES; i++) {
        pthread_mutex_init(&idem->stripes[i].lock, NULL);
    }
    return idem;
}

static void entry_free(struct gw_idem_entry *e)
{
    if (e != NULL) {
        free(e->body);
        free(e);
    }
}

void gw_idem_free(struct gw_idem *idem)
{
    if (idem == NULL) {
        return;
    }
    for (size_t i = 0; i < STRIPES; i++) {
        for (size_t b = 0; b < BUCKETS; b++) {
            struct gw_idem_entry *e = idem->stripes[i].buckets[b];
            while (e != NULL) {
                struct gw_idem_entry *next = e->next;
                entry_free(e);
                e = next;
            }
        }
        pthread_mutex_destroy(&idem->stripes[i].lock);
    }
    free(idem);
}

size_t gw_idem_count(struct gw_idem *idem)
{
    return atomic_load(&idem->count);
}

int64_t gw_idem_window_ms(const struct gw_idem *idem)
{
    return idem->window_ns / NS_PER_MS;
}

void gw_idem_key_make(const char *caller, const char *service, const char *action,
                      const char *token, const char *canonical, size_t len, struct gw_idem_key *out)
{
    crypto_generichash_state st;
    const char *parts[] = {caller, service, action, token};
    crypto_generichash_init(&st, NULL, 0, GW_IDEM_HASH_BYTES);
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        /* With the NUL: ("ab", "c") and ("a", "bc") differ. */
        crypto_generichash_update(&st, (const unsigned char *)parts[i], strlen(parts[i]) + 1);
    }
    crypto_generichash_final(&st, out->slot, GW_IDEM_HASH_BYTES);
    crypto_generichash(out->params, GW_IDEM_HASH_BYTES, (const unsigned char *)canonical, len, NULL,
                       0);
}

static void where(const unsigned char slot[GW_IDEM_HASH_BYTES], unsigned *stripe, unsigned *bucket)
{
    uint64_t h;
    memcpy(&h, slot, sizeof h);
    *stripe = (unsigned)(h % STRIPES);
    *bucket = (unsigned)((h / STRIPES) % BUCKETS);
}

/* Under the stripe's lock: drops the done entries of a chain whose window passed. */
static void sweep(struct gw_idem *idem, struct gw_idem_entry **chain, int64_t now)
{
    while (*chain != NULL) {
        struct gw_idem_entry *e = *chain;
        if (!e->in_flight && e->expires_ns <= now) {
            *chain = e->next;
            entry_free(e);
            atomic_fetch_sub(&idem->count, 1);
        } else {
            chain = &e->next;
        }
    }
}

/*
 * The table is full: drops every expired entry, one stripe at a time (no stripe lock held by the
 * caller). Expired entries are otherwise dropped only when a token lands in their bucket, so a
 * full table would keep refusing new tokens long after its entries expired. At most once per
 * 100 ms, so a table full of live entries does not make every call sweep it.
 */
static void sweep_all(struct gw_idem *idem, int64_t now)
{
    int64_t last = atomic_load(&idem->last_full_sweep_ns);
    if (now - last < 100000000 ||
        !atomic_compare_exchange_strong(&idem->last_full_sweep_ns, &last, now)) {
        return;
    }
    for (unsigned s = 0; s < STRIPES; s++) {
        struct stripe *st = &idem->stripes[s];
        pthread_mutex_lock(&st->lock);
        for (unsigned b = 0; b < BUCKETS; b++) {
            sweep(idem, &st->buckets[b], now);
        }
        pthread_mutex_unlock(&st->lock);
    }
}

static bool copy_answer(unsigned status, const char *body, size_t len, struct gw_idem_answer *out)
{
    char *copy = malloc(len + 1);
    if (copy == NULL) {
        return false;
    }
    if (len > 0) {
        memcpy(copy, body, len);
    }
    copy[len] = '\0';
    *out = (struct gw_idem_answer){.status = status, .body = copy, .len = len};
    return true;
}

static void arm(struct gw_idem_port *port)
{
    int64_t first = -1;
    for (struct wait *w = port->pending; w != NULL; w = w->next_pending) {
        if (first < 0 || w->deadline_ns < first) {
            first = w->deadline_ns;
        }
    }
    if (first < 0) {
        gw_loop_timer_set(port->timer, -1);
        return;
    }
    int64_t wait = first - now_ns();
    gw_loop_timer_set(port->timer, wait <= 0 ? 0 : (long)((wait + NS_PER_MS - 1) / NS_PER_MS));
}

static void pending_unlink(struct gw_idem_port *port, struct wait *w)
{
    if (w->prev_pending != NULL) {
        w->prev_pending->next_pending = w->next_pending;
    } else {
        port->pending = w->next_pending;
    }
    if (w->next_pending != NULL) {
        w->next_pending->prev_pending = w->prev_pending;
    }
    w->prev_pending = w->next_pending = NULL;
}

enum gw_idem_step gw_idem_begin(struct gw_idem_port *port, const struct gw_idem_key *key,
                                struct gw_call *call, int64_t now, int64_t deadline_ns,
                                struct gw_idem_entry **owned, struct gw_idem_answer *replay)
{
    struct gw_idem *idem = port->idem;
    unsigned s, b;
    enum gw_idem_step step;
    if (atomic_load(&idem->count) >= idem->max_entries) {
        sweep_all(idem, now);
    }
    where(key->slot, &s, &b);
    struct stripe *st = &idem->stripes[s];
    pthread_mutex_lock(&st->lock);
    sweep(idem, &st->buckets[b], now);
    struct gw_idem_entry *e = st->buckets[b];
    while (e != NULL && sodium_memcmp(e->slot, key->slot, GW_IDEM_HASH_BYTES) != 0) {
        e = e->next;
    }
    if (e != NULL) {
        if (sodium_memcmp(e->params, key->params, GW_IDEM_HASH_BYTES) != 0) {
            step = GW_IDEM_CONFLICT;
        } else if (!e->in_flight) {
            step = copy_answer(e->status, e->body, e->len, replay) ? GW_IDEM_REPLAY : GW_IDEM_NOMEM;
        } else {
            struct wait *w = calloc(1, sizeof *w);
            if (w == NULL) {
                step = GW_IDEM_NOMEM;
                goto out;
            }
            w->call = call;
            w->port = port;
            w->entry = e;
            w->stripe = s;
            w->deadline_ns = deadline_ns;
            w->next_in_entry = e->waiters;
            e->waiters = w;
            w->next_pending = port->pending;
            if (port->pending != NULL) {
                port->pending->prev_pending = w;
            }
            port->pending = w;
            step = GW_IDEM_WAIT;
        }
        goto out;
    }
    if (atomic_load(&idem->count) >= idem->max_entries) {
        step = GW_IDEM_FULL;
        goto out;
    }
    if ((e = calloc(1, sizeof *e)) == NULL) {
        step = GW_IDEM_NOMEM;
        goto out;
    }
    memcpy(e->slot, key->slot, sizeof e->slot);
    memcpy(e->params, key->params, sizeof e->params);
    e->stripe = s;
    e->in_flight = true;
    e->next = st->buckets[b];
    st->buckets[b] = e;
    atomic_fetch_add(&idem->count, 1);
    *owned = e;
    step = GW_IDEM_FIRST;
out:
    pthread_mutex_unlock(&st->lock);
    if (step == GW_IDEM_WAIT) {
        arm(port);
    }
    return step;
}

/* Under the entry's stripe lock: queues w's answer on its port and wakes the port's loop. */
static void deliver(struct wait *w)
{
    struct gw_idem_port *port = w->port;
    w->delivered = true;
    w->entry = NULL;
    pthread_mutex_lock(&port->lock);
    w->next_ready = port->ready_queue;
    port->ready_queue = w;
    pthread_mutex_unlock(&port->lock);
    uint64_t one = 1;
    ssize_t n = write(port->efd, &one, sizeof one);
    (void)n; /* EAGAIN: the counter is already non-zero, the loop will wake */
}

void gw_idem_complete(struct gw_idem *idem, struct gw_idem_entry *e, unsigned status,
                      const char *body, size_t len, bool keep, int64_t now)
{
    if (e == NULL) {
        return;
    }
    struct stripe *st = &idem->stripes[e->stripe];
    pthread_mutex_lock(&st->lock);
    struct wait *w = e->waiters;
    e->waiters = NULL;
    while (w != NULL) {
        struct wait *next = w->next_in_entry;
        if (!copy_answer(status, body, len, &w->answer)) {
            w->answer = (struct gw_idem_answer){0};
        }
        deliver(w);
        w = next;
    }
    bool kept = false;
    if (keep && idem->window_ns > 0) {
        struct gw_idem_answer a;
        if (copy_answer(status, body, len, &a)) {
            e->status = a.status;
            e->body = a.body;
            e->len = a.len;
            e->in_flight = false;
            e->expires_ns = now + idem->window_ns;
            kept = true;
        }
    }
    if (!kept) {
        unsigned s, b;
        where(e->slot, &s, &b);
        struct gw_idem_entry **chain = &st->buckets[b];
        while (*chain != NULL && *chain != e) {
            chain = &(*chain)->next;
        }
        if (*chain == e) {
            *chain = e->next;
        }
        entry_free(e);
        atomic_fetch_sub(&idem->count, 1);
    }
    pthread_mutex_unlock(&st->lock);
}

/* The port's eventfd: hands back each call whose answer came. */
static void on_ready(void *arg, int fd, uint32_t events)
{
    struct gw_idem_port *port = arg;
    (void)events;
    uint64_t n;
    if (read(fd, &n, sizeof n) < 0 && errno != EAGAIN) {
        return;
    }
    pthread_mutex_lock(&port->lock);
    struct wait *w = port->ready_queue;
    port->ready_queue = NULL;
    pthread_mutex_unlock(&port->lock);
    while (w != NULL) {
        struct wait *next = w->next_ready;
        pending_unlink(port, w);
        struct gw_idem_answer a = w->answer;
        struct gw_call *call = w->call;
        free(w);
        port->ready(call, a.body != NULL ? &a : NULL, port->arg);
        w = next;
    }
    arm(port);
}

/* Waits whose deadline passed: unlinked from their entry (unless just delivered), refused. */
static void on_timer(void *arg)
{
    struct gw_idem_port *port = arg;
    struct gw_idem *idem = port->idem;
    int64_t now = now_ns();
    struct wait *expired = NULL;
    for (struct wait *w = port->pending, *next; w != NULL; w = next) {
        next = w->next_pending;
        if (w->deadline_ns > now) {
            continue;
        }
        bool removed = false;
        struct stripe *st = &idem->stripes[w->stripe];
        pthread_mutex_lock(&st->lock);
        if (!w->delivered && w->entry != NULL) {
            /* The entry outlives its waiters: it is freed only after they are delivered. */
            struct wait **p = &w->entry->waiters;
            while (*p != NULL && *p != w) {
                p = &(*p)->next_in_entry;
            }
            if (*p == w) {
                *p = w->next_in_entry;
                w->entry = NULL;
                removed = true;
            }
        }
        pthread_mutex_unlock(&st->lock);
        if (removed) {
            pending_unlink(port, w);
            w->next_ready = expired;
            expired = w;
        }
    }
    while (expired != NULL) {
        struct wait *next = expired->next_ready;
        struct gw_call *call = expired->call;
        free(expired);
        port->ready(call, NULL, port->arg);
        expired = next;
    }
    arm(port);
}

struct gw_idem_port *gw_idem_port_new(struct gw_idem *idem, struct gw_loop *loop,
                                      gw_idem_ready_fn ready, void *arg)
{
    struct gw_idem_port *port = calloc(1, sizeof *port);
    if (port == NULL) {
        return NULL;
    }
    port->idem = idem;
    port->loop = loop;
    port->ready = ready;
    port->arg = arg;
    pthread_mutex_init(&port->lock, NULL);
    port->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (port->efd < 0 ||
        (port->watch = gw_loop_watch(loop, port->efd, EPOLLIN, on_ready, port)) == NULL ||
        (port->timer = gw_loop_timer_new(loop, on_timer, port)) == NULL) {
        gw_idem_port_free(port);
        return NULL;
    }
    return port;
}

void gw_idem_port_free(struct gw_idem_port *port)
{
    if (port == NULL) {
        return;
    }
    struct gw_idem *idem = port->idem;
    /* No entry may point at this port afterwards. */
    for (size_t i = 0; i < STRIPES && port->pending != NULL; i++) {
        struct stripe *st = &idem->stripes[i];
        pthread_mutex_lock(&st->lock);
        for (size_t b = 0; b < BUCKETS; b++) {
            for (struct gw_idem_entry *e = st->buckets[b]; e != NULL; e = e->next) {
                struct wait **p = &e->waiters;
                while (*p != NULL) {
                    if ((*p)->port == port) {
                        *p = (*p)->next_in_entry;
                    } else {
                        p = &(*p)->next_in_entry;
                    }
                }
            }
        }
        pthread_mutex_unlock(&st->lock);
    }
    while (port->pending != NULL) {
        struct wait *w = port->pending;
        port->pending = w->next_pending;
        free(w->answer.body);
        free(w);
    }
    gw_loop_timer_free(port->timer);
    gw_loop_unwatch(port->watch);
    if (port->efd >= 0) {
        close(port->efd);
    }
    pthread_mutex_destroy(&port->lock);
    free(port);
}
