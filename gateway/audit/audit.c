#include "audit/audit.h"

#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "audit/audit_int.h"
#include "audit/chain.h"
#include "audit/encode.h"
#include "audit/ship.h"
#include "core/file.h"

#define RETRY_MS 200                      /* between attempts on a failing disk */
#define BATCH_BYTES_MAX ((size_t)8 << 20) /* one write(2) */
#define BACKLOG_MAX ((size_t)100000)      /* records kept while the disk fails */
#define STOP_RETRY_MS 2000

int64_t audit_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void audit_list_init(struct list *l)
{
    l->head = NULL;
    l->tail = &l->head;
    l->count = 0;
}

void audit_list_push(struct list *l, struct entry *e)
{
    e->next = NULL;
    *l->tail = e;
    l->tail = &e->next;
    l->count++;
}

/* Moves all of from to the end of to. */
static void list_splice(struct list *to, struct list *from)
{
    if (from->head == NULL) {
        return;
    }
    *to->tail = from->head;
    to->tail = from->tail;
    to->count += from->count;
    audit_list_init(from);
}

static void entry_free(struct entry *e)
{
    if (e != NULL) {
        free(e->back);
        free(e->body);
        free(e);
    }
}

/* ---- health -------------------------------------------------------------------------------- */

bool gw_audit_ready(struct gw_audit *a, char *why, size_t whylen)
{
    if (atomic_load(&a->healthy)) {
        return true;
    }
    pthread_mutex_lock(&a->why_mu);
    gw_say(why, whylen, "%s", a->why);
    pthread_mutex_unlock(&a->why_mu);
    return false;
}

bool gw_audit_fail_open(const struct gw_audit *a)
{
    return a->o.fail_open;
}

void gw_audit_stats(struct gw_audit *a, struct gw_audit_stats *out)
{
    memset(out, 0, sizeof *out);
    out->records = atomic_load(&a->records);
    out->batches = atomic_load(&a->batches);
    out->max_batch = atomic_load(&a->max_batch);
    out->seals = atomic_load(&a->seals);
    out->rotations = atomic_load(&a->rotations);
    out->failures = atomic_load(&a->failures);
    out->unrecorded = atomic_load(&a->unrecorded);
    out->lost = atomic_load(&a->lost);
    uint64_t submitted = atomic_load(&a->submitted);
    out->queued = submitted > out->records + out->lost ? submitted - out->records - out->lost : 0;
    if (a->ship[0] != NULL) {
        gw_audit_ship_counts(a->ship[0], &out->shipped, &out->ship_dropped);
    }
}

/* ---- rounds -------------------------------------------------------------------------------- */

/* Writes as many pending records as fit one batch. Returns false when the disk failed. */
static bool commit_some(struct gw_audit *a, bool *more)
{
    struct stat st;
    if (a->fd >= 0 && fstat(a->fd, &st) == 0 && st.st_nlink == 0) {
        /* The file was removed: what we write there would be lost. Start a new one. */
        fprintf(stderr, "level=warning event=audit_file_removed file=%s\n", a->path);
        if (!audit_open_new(a, "removed", NULL, 0)) {
            return false;
        }
    }
    if (a->fd < 0 && !audit_open_new(a, "reopen", NULL, 0)) {
        return false;
    }
    struct gw_audit_chain saved = a->chain;
    gw_buf_reset(&a->batch);
    size_t n = 0;
    struct entry *e = a->pending.head;
    for (; e != NULL && a->batch.len < BATCH_BYTES_MAX; e = e->next, n++) {
        if (gw_audit_chain_append(&a->chain, e->body, e->len, &a->batch) != GW_OK) {
            break;
        }
    }
    bool seal =
        a->o.sign_interval_ms > 0 && audit_now_ms() - a->last_seal_ms >= a->o.sign_interval_ms;
    if (seal) {
        uint64_t before = a->unsealed;
        a->unsealed += n;
        if (audit_append_seal(a, "interval") != GW_OK) {
            seal = false;
        }
        a->unsealed = before;
    }
    if (!audit_write_batch(a)) {
        a->chain = saved;
        return false;
    }
    a->unsealed = seal ? 0 : a->unsealed + n;
    if (seal) {
        a->last_seal_ms = audit_now_ms();
    }
    atomic_fetch_add(&a->records, n);
    atomic_fetch_add(&a->batches, 1);
    if (n > atomic_load(&a->max_batch)) {
        atomic_store(&a->max_batch, n);
    }
    for (size_t i = 0; i < n; i++) {
        e = a->pending.head;
        a->pending.head = e->next;
        a->pending.count--;
        if (e->call != NULL) {
            audit_hand_back(a, e, true);
        }
        entry_free(e);
    }
    if (a->pending.head == NULL) {
        a->pending.tail = &a->pending.head;
    }
    *more = a->pending.head != NULL;
    if (a->o.max_file_bytes > 0 && (size_t)a->size >= a->o.max_file_bytes) {
        audit_rotate(a);
    }
    return true;
}

/* While the disk fails: calls past their hold come back unrecorded; the backlog is bounded. */
static void expire(struct gw_audit *a, bool all)
{
    int64_t now = audit_now_ms();
    for (struct entry *e = a->pending.head; e != NULL; e = e->next) {
        if (e->call != NULL && (all || now >= e->deadline_ms)) {
            audit_hand_back(a, e, false);
        }
    }
    while (a->pending.count > BACKLOG_MAX && a->pending.head->call == NULL) {
        struct entry *e = a->pending.head;
        a->pending.head = e->next;
        a->pending.count--;
        entry_free(e);
        if (atomic_fetch_add(&a->lost, 1) % 1000 == 0) {
            fprintf(stderr, "level=error event=audit_records_lost lost=%llu backlog=%zu\n",
                    (unsigned long long)atomic_load(&a->lost), BACKLOG_MAX);
        }
    }
    if (a->pending.head == NULL) {
        a->pending.tail = &a->pending.head;
    }
}

/* One round: write what is pending, or wait for the next retry. */
static void round_once(struct gw_audit *a, bool force)
{
    bool healthy = atomic_load(&a->healthy);
    int64_t now = audit_now_ms();
    if (!healthy && !force && now < a->next_retry_ms) {
        expire(a, false);
        return;
    }
    bool more = a->pending.head != NULL;
    if (!healthy && !more && a->fd >= 0) {
        /* Nothing waits, but readiness must recover by itself: a seal probes the disk. */
        if (!audit_seal_now(a, "retry")) {
            a->next_retry_ms = audit_now_ms() + RETRY_MS;
        }
        return;
    }
    while (more) {
        if (!commit_some(a, &more)) {
            a->next_retry_ms = audit_now_ms() + RETRY_MS;
            expire(a, false);
            return;
        }
    }
    if (a->unsealed > 0 && a->o.sign_interval_ms > 0 &&
        audit_now_ms() - a->last_seal_ms >= a->o.sign_interval_ms) {
        if (!audit_seal_now(a, "interval")) {
            a->next_retry_ms = audit_now_ms() + RETRY_MS;
        }
    } else if (!healthy && a->fd < 0) {
        if (!audit_open_new(a, "reopen", NULL, 0)) {
            a->next_retry_ms =
                audit_now_ms() + RETRY_MS; /* not again at once: the writer would spin */
        }
    }
}

/* How long the writer may sleep. */
static int64_t next_wake_ms(struct gw_audit *a)
{
    int64_t when = audit_now_ms() + 1000;
    if (a->unsealed > 0 && a->o.sign_interval_ms > 0) {
        int64_t seal = a->last_seal_ms + a->o.sign_interval_ms;
        when = seal < when ? seal : when;
    }
    if (!atomic_load(&a->healthy)) {
        when = a->next_retry_ms < when ? a->next_retry_ms : when;
        for (struct entry *e = a->pending.head; e != NULL; e = e->next) {
            if (e->call != NULL && e->deadline_ms < when) {
                when = e->deadline_ms;
            }
        }
    }
    return when;
}

static void *writer(void *arg)
{
    struct gw_audit *a = arg;
    pthread_mutex_lock(&a->mu);
    for (;;) {
        while (a->in.head == NULL && !a->stop && !a->reopen) {
            int64_t wake = next_wake_ms(a);
            if (wake <= audit_now_ms()) {
                break;
            }
            struct timespec ts = {.tv_sec = (time_t)(wake / 1000),
                                  .tv_nsec = (long)(wake % 1000) * 1000000};
            pthread_cond_timedwait(&a->cv, &a->mu, &ts);
        }
        struct list in = a->in;
        audit_list_init(&a->in);
        bool stop = a->stop;
        bool want_reopen = a->reopen;
        a->reopen = false;
        pthread_mutex_unlock(&a->mu);

        list_splice(&a->pending, &in);
        if (want_reopen) {
            audit_reopen(a);
        }
        round_once(a, want_reopen);
        audit_wake_ports(a);

        pthread_mutex_lock(&a->mu);
        if (stop && a->in.head == NULL) {
            break;
        }
    }
    pthread_mutex_unlock(&a->mu);
    /* Stopping: what is left gets a last chance, then the chain is sealed. */
    int64_t give_up = audit_now_ms() + STOP_RETRY_MS;
    while (a->pending.head != NULL && audit_now_ms() < give_up) {
        round_once(a, true);
        if (a->pending.head != NULL) {
            struct timespec ts = {.tv_sec = 0, .tv_nsec = RETRY_MS * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    expire(a, true);
    audit_wake_ports(a);
    if (a->fd >= 0) {
        audit_seal_now(a, "stop");
    }
    if (a->pending.count > 0) {
        fprintf(stderr,
                "level=error event=audit_records_lost lost=%zu note=\"not written at stop\"\n",
                a->pending.count);
    }
    return NULL;
}

/* ---- life ---------------------------------------------------------------------------------- */

void audit_cond_init_monotonic(pthread_cond_t *cv)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(cv, &attr);
    pthread_condattr_destroy(&attr);
}

enum gw_err gw_audit_open(const struct gw_audit_options *o, struct gw_audit **out, char *msg,
                          size_t msglen)
{
    enum gw_err err = GW_ERR_NOMEM;
    unsigned char hkey[GW_AUDIT_HMAC_KEY_BYTES];
    struct gw_audit *a = calloc(1, sizeof *a);
    if (a == NULL || (a->path = strdup(o->path)) == NULL) {
        gw_say(msg, msglen, "out of memory");
        free(a);
        return GW_ERR_NOMEM;
    }
    a->o = *o;
    a->fd = -1;
    audit_list_init(&a->in);
    audit_list_init(&a->pending);
    gw_buf_init(&a->batch, BATCH_BYTES_MAX + 2 * GW_AUDIT_LINE_MAX);
    pthread_mutex_init(&a->mu, NULL);
    pthread_mutex_init(&a->why_mu, NULL);
    audit_cond_init_monotonic(&a->cv);
    atomic_init(&a->healthy, true);
    if ((err = gw_audit_signer_load(o->signing_key_file, &a->signer, msg, msglen)) != GW_OK) {
        goto out;
    }
    size_t n = 0;
    while (o->sensitive_keys != NULL && o->sensitive_keys[n] != NULL) {
        n++;
    }
    gw_audit_signer_hmac_key(a->signer, hkey);
    err = gw_audit_redactor_new(hkey, o->sensitive_keys, n, &a->redactor);
    sodium_memzero(hkey, sizeof hkey);
    if (err != GW_OK) {
        gw_say(msg, msglen, "audit: too many sensitive keys, or out of memory");
        goto out;
    }
    /* The shippers first: the genesis line goes to the collector too. */
    if (o->syslog_address != NULL) {
        struct gw_audit_ship_options so = {
            .address = o->syslog_address,
            .port = o->syslog_port,
            .tls = o->syslog_tls,
            .ca_file = o->syslog_ca_file,
            .queue_records = o->syslog_queue_records,
        };
        if ((err = gw_audit_ship_start(&so, &a->ship[0], msg, msglen)) != GW_OK) {
            goto out;
        }
    }
    if (o->to_stdout) {
        struct gw_audit_ship_options so = {.address = NULL, .queue_records = 100000};
        if ((err = gw_audit_ship_start(&so, &a->ship[1], msg, msglen)) != GW_OK) {
            goto out;
        }
    }
    if (!audit_open_at_start(a)) {
        gw_audit_ready(a, msg, msglen);
        err = GW_ERR_IO;
        goto out;
    }
    if (pthread_create(&a->thread, NULL, writer, a) != 0) {
        gw_say(msg, msglen, "cannot start the audit writer thread");
        err = GW_ERR_INTERNAL;
        goto out;
    }
    a->running = true;
    *out = a;
    a = NULL;
    err = GW_OK;
out:
    gw_audit_close(a);
    return err;
}

void gw_audit_reopen(struct gw_audit *a)
{
    pthread_mutex_lock(&a->mu);
    a->reopen = true;
    pthread_cond_signal(&a->cv);
    pthread_mutex_unlock(&a->mu);
}

void gw_audit_close(struct gw_audit *a)
{
    if (a == NULL) {
        return;
    }
    if (a->running) {
        pthread_mutex_lock(&a->mu);
        a->stop = true;
        pthread_cond_signal(&a->cv);
        pthread_mutex_unlock(&a->mu);
        pthread_join(a->thread, NULL);
        struct gw_audit_stats s;
        gw_audit_stats(a, &s);
        fprintf(stderr,
                "level=info event=audit_stats records=%llu batches=%llu records_per_fsync=%.2f "
                "max_batch=%llu seals=%llu rotations=%llu failures=%llu unrecorded=%llu "
                "lost=%llu\n",
                (unsigned long long)s.records, (unsigned long long)s.batches,
                s.batches > 0 ? (double)s.records / (double)s.batches : 0.0,
                (unsigned long long)s.max_batch, (unsigned long long)s.seals,
                (unsigned long long)s.rotations, (unsigned long long)s.failures,
                (unsigned long long)s.unrecorded, (unsigned long long)s.lost);
    }
    for (int s = 0; s < 2; s++) {
        gw_audit_ship_stop(a->ship[s], 2000);
    }
    if (a->fd >= 0) {
        close(a->fd);
    }
    while (a->pending.head != NULL) {
        struct entry *e = a->pending.head;
        a->pending.head = e->next;
        entry_free(e);
    }
    while (a->in.head != NULL) {
        struct entry *e = a->in.head;
        a->in.head = e->next;
        entry_free(e);
    }
    audit_ports_free(a);
    gw_buf_free(&a->batch);
    gw_audit_redactor_free(a->redactor);
    gw_audit_signer_free(a->signer);
    pthread_mutex_destroy(&a->mu);
    pthread_mutex_destroy(&a->why_mu);
    pthread_cond_destroy(&a->cv);
    free(a->path);
    free(a);
}
