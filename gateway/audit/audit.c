#include "audit/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "audit/chain.h"
#include "audit/encode.h"
#include "audit/ship.h"
#include "core/file.h"
#include "core/loop.h"

#define RETRY_MS 200                      /* between attempts on a failing disk */
#define BATCH_BYTES_MAX ((size_t)8 << 20) /* one write(2) */
#define BACKLOG_MAX ((size_t)100000)      /* records kept while the disk fails */
#define PORTS_MAX 128
#define STOP_RETRY_MS 2000
#define NAME_BYTES 4096 /* a path, or a file name put aside */

/* One record on its way: queued, pending (being written) or done (back at its port). */
struct entry {
    struct entry *next;
    struct gw_audit_port *port; /* NULL: nobody waits for it */
    struct gw_call *call;       /* NULL once handed back (or never held) */
    char *body;
    size_t len;
    int64_t deadline_ms;
    bool recorded;
};

struct list {
    struct entry *head;
    struct entry **tail;
    size_t count;
};

struct gw_audit_port {
    struct gw_audit *audit;
    struct gw_loop *loop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct list done;
    size_t outstanding; /* held calls not yet handed back to the worker */
    bool closed;
    bool wake; /* writer-only: woken at the end of this round */
};

struct gw_audit {
    char *path;
    struct gw_audit_options o;
    struct gw_audit_signer *signer;
    struct gw_audit_redactor *redactor;
    struct gw_audit_ship *ship[2]; /* syslog, stdout */

    pthread_t thread;
    bool running;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct list in; /* submitted, not yet taken by the writer */
    bool stop;
    bool reopen;
    struct gw_audit_port *ports[PORTS_MAX];
    size_t port_count;

    /* The writer's own. */
    int fd;
    off_t size;
    struct gw_audit_chain chain;
    uint64_t unsealed; /* call records since the last signed line */
    int64_t last_seal_ms;
    int64_t next_retry_ms;
    struct list pending;
    struct gw_buf batch;

    atomic_bool healthy;
    pthread_mutex_t why_mu;
    char why[256];

    _Atomic uint64_t records, batches, max_batch, seals, rotations, failures, unrecorded, lost;
    _Atomic uint64_t submitted; /* records handed to the writer */
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void list_init(struct list *l)
{
    l->head = NULL;
    l->tail = &l->head;
    l->count = 0;
}

static void list_push(struct list *l, struct entry *e)
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
    list_init(from);
}

static void entry_free(struct entry *e)
{
    if (e != NULL) {
        free(e->body);
        free(e);
    }
}

/* ---- health -------------------------------------------------------------------------------- */

static void set_unhealthy(struct gw_audit *a, const char *what, int errnum)
{
    char why[256];
    snprintf(why, sizeof why, "%s %s: %s", what, a->path, strerror(errnum));
    pthread_mutex_lock(&a->why_mu);
    bool changed = strcmp(why, a->why) != 0 || atomic_load(&a->healthy);
    snprintf(a->why, sizeof a->why, "%s", why);
    pthread_mutex_unlock(&a->why_mu);
    atomic_store(&a->healthy, false);
    atomic_fetch_add(&a->failures, 1);
    if (changed) {
        fprintf(stderr, "level=error event=audit_failing detail=\"%s\" fail_open=%s note=\"%s\"\n",
                why, a->o.fail_open ? "true" : "false",
                a->o.fail_open ? "calls are answered without their audit record"
                               : "calls are refused until records can be written again");
        fflush(stderr);
    }
}

static void set_healthy(struct gw_audit *a)
{
    if (!atomic_load(&a->healthy)) {
        atomic_store(&a->healthy, true);
        fprintf(stderr, "level=info event=audit_recovered file=%s\n", a->path);
        fflush(stderr);
    }
}

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

/* ---- the file ------------------------------------------------------------------------------ */

/* Appends the fields of a signed line (genesis or seal) made from obj, then signs it. */
static enum gw_err append_signed(struct gw_audit *a, json_t *obj)
{
    enum gw_err err = GW_ERR_NOMEM;
    char *text = obj != NULL ? json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(obj);
    if (text != NULL) {
        size_t n = strlen(text);
        text[n - 1] = '\0'; /* no closing brace: the signature comes last */
        err = gw_audit_chain_append_signed(&a->chain, text + 1, a->signer, &a->batch);
        free(text);
    }
    if (err == GW_OK) {
        atomic_fetch_add(&a->seals, 1);
    }
    return err;
}

static enum gw_err append_seal(struct gw_audit *a, const char *reason)
{
    char now[32];
    gw_audit_time_now(now);
    json_t *o = json_pack("{s:s,s:s,s:s,s:I}", "type", "seal", "time", now, "reason", reason,
                          "records", (json_int_t)a->unsealed);
    return append_signed(a, o);
}

static enum gw_err append_genesis(struct gw_audit *a, const char *reason, const char *prev_file,
                                  size_t torn_bytes)
{
    char now[32];
    char key[65];
    char *copy = strdup(a->path);
    if (copy == NULL) {
        return GW_ERR_NOMEM;
    }
    gw_audit_time_now(now);
    gw_audit_signer_public_hex(a->signer, key);
    json_t *o =
        json_pack("{s:s,s:s,s:s,s:s,s:s?,s:I,s:s,s:s}", "type", "genesis", "time", now, "reason",
                  reason, "file", basename(copy), "prev_file", prev_file, "torn_bytes",
                  (json_int_t)torn_bytes, "key", key, "gateway", "tcgw audit v1");
    free(copy);
    return append_signed(a, o);
}

/* Committed lines go on to the shippers. */
static void ship_batch(struct gw_audit *a)
{
    for (int s = 0; s < 2; s++) {
        if (a->ship[s] == NULL) {
            continue;
        }
        const char *p = a->batch.data;
        const char *end = p + a->batch.len;
        while (p < end) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            gw_audit_ship_push(a->ship[s], p, (size_t)(nl - p));
            p = nl + 1;
        }
    }
}

/* Writes the batch buffer durably at the end of the file; on failure cuts the file back. */
static bool write_batch(struct gw_audit *a)
{
    if (a->batch.len == 0) {
        return true;
    }
    if (a->fd < 0) {
        set_unhealthy(a, "no open file for", EBADF);
        return false;
    }
    const char *what = "cannot write";
    enum gw_err err = gw_file_write_all(a->fd, a->batch.data, a->batch.len);
    if (err == GW_OK) {
        what = "cannot sync";
        err = fdatasync(a->fd) == 0 ? GW_OK : GW_ERR_IO;
    }
    if (err != GW_OK) {
        int e = errno;
        /* No torn or unsynced line stays behind a good one: cut back to the last good length. */
        if (ftruncate(a->fd, a->size) != 0) {
            close(a->fd);
            a->fd = -1;
        }
        set_unhealthy(a, what, e);
        return false;
    }
    a->size += (off_t)a->batch.len;
    set_healthy(a);
    ship_batch(a);
    return true;
}

/* A name for a file put aside: path.YYYYmmddTHHMMSS.uuuuuuZ (sorts in time order). */
static void aside_name(const char *path, char *out, size_t n)
{
    char now[32];
    gw_audit_time_now(now);
    char compact[32];
    size_t j = 0;
    for (size_t i = 0; now[i] != '\0' && j + 1 < sizeof compact; i++) {
        if (now[i] != '-' && now[i] != ':') {
            compact[j++] = now[i];
        }
    }
    compact[j] = '\0';
    snprintf(out, n, "%s.%s", path, compact);
}

/*
 * Opens path as a new file (or one that exists empty, as logrotate's "create" leaves it) and
 * writes its genesis line durably. The chain continues from a->chain.
 */
static bool open_new(struct gw_audit *a, const char *reason, const char *prev_file,
                     size_t torn_bytes)
{
    int fd = open(a->path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0640);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        int e = errno;
        if (fd >= 0) {
            close(fd);
        }
        set_unhealthy(a, "cannot open", e);
        return false;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        set_unhealthy(a, "not a regular file:", EINVAL);
        return false;
    }
    if (a->fd >= 0) {
        close(a->fd);
    }
    a->fd = fd;
    a->size = st.st_size;
    struct gw_audit_chain saved = a->chain;
    gw_buf_reset(&a->batch);
    if (append_genesis(a, reason, prev_file, torn_bytes) != GW_OK || !write_batch(a)) {
        a->chain = saved;
        return false;
    }
    if (gw_file_sync_dir(a->path) != GW_OK) {
        set_unhealthy(a, "cannot sync the directory of", errno);
        return false;
    }
    a->unsealed = 0;
    a->last_seal_ms = now_ms();
    fprintf(stderr, "level=info event=audit_file file=%s reason=%s seq=%llu\n", a->path, reason,
            (unsigned long long)a->chain.next_seq - 1);
    fflush(stderr);
    return true;
}

/* Puts the file at path aside under a new name (basename in prev, for the next genesis). */
static bool put_aside(struct gw_audit *a, char *prev, size_t n)
{
    char aside[NAME_BYTES];
    aside_name(a->path, aside, sizeof aside);
    if (rename(a->path, aside) != 0) {
        set_unhealthy(a, "cannot rename", errno);
        return false;
    }
    const char *slash = strrchr(aside, '/');
    const char *base = slash != NULL ? slash + 1 : aside;
    size_t len = strnlen(base, n - 1);
    memcpy(prev, base, len);
    prev[len] = '\0';
    return true;
}

/*
 * At start: a log that ends cleanly is continued (a genesis line marks the restart); one that
 * ends in a torn line (a crash mid-write) is put aside untouched and a new file starts.
 */
static bool open_at_start(struct gw_audit *a)
{
    memset(&a->chain, 0, sizeof a->chain);
    int fd = open(a->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno != ENOENT) {
            set_unhealthy(a, "cannot open", errno);
            return false;
        }
        return open_new(a, "start", NULL, 0);
    }
    bool found = false;
    size_t torn = 0;
    enum gw_err err = gw_audit_file_tail(fd, &a->chain, &found, &torn);
    close(fd);
    if (err != GW_OK) {
        set_unhealthy(a, "cannot read the end of", errno != 0 ? errno : EIO);
        return false;
    }
    if (torn == 0) {
        return open_new(a, found ? "restart" : "start", NULL, 0);
    }
    char prev[NAME_BYTES];
    return put_aside(a, prev, sizeof prev) && open_new(a, "restart", prev, torn);
}

/* Seals the current file into the batch and writes it. */
static bool seal_now(struct gw_audit *a, const char *reason)
{
    struct gw_audit_chain saved = a->chain;
    gw_buf_reset(&a->batch);
    if (append_seal(a, reason) != GW_OK || !write_batch(a)) {
        a->chain = saved;
        return false;
    }
    a->unsealed = 0;
    a->last_seal_ms = now_ms();
    return true;
}

static void rotate(struct gw_audit *a)
{
    char prev[NAME_BYTES];
    if (!seal_now(a, "rotate") || !put_aside(a, prev, sizeof prev)) {
        return;
    }
    close(a->fd);
    a->fd = -1;
    atomic_fetch_add(&a->rotations, 1);
    open_new(a, "rotate", prev, 0);
}

/* SIGHUP: the file may have been renamed away (logrotate "create"): seal it and reopen path. */
static void reopen(struct gw_audit *a)
{
    struct stat now, mine;
    if (a->fd >= 0) {
        seal_now(a, "reopen");
    }
    if (a->fd >= 0 && stat(a->path, &now) == 0 && fstat(a->fd, &mine) == 0 &&
        now.st_dev == mine.st_dev && now.st_ino == mine.st_ino) {
        return; /* still the same file */
    }
    if (stat(a->path, &now) == 0 && now.st_size > 0) {
        char prev[NAME_BYTES];
        if (!put_aside(a, prev, sizeof prev)) { /* not ours: never write into it */
            return;
        }
    }
    if (a->fd >= 0) {
        atomic_fetch_add(&a->rotations, 1);
    }
    open_new(a, "reopen", NULL, 0);
}

/* ---- rounds -------------------------------------------------------------------------------- */

static void hand_back(struct gw_audit *a, struct entry *e, bool recorded)
{
    struct gw_audit_port *p = e->port;
    struct entry *back = calloc(1, sizeof *back);
    if (back == NULL) {
        return; /* out of memory: the call stays suspended until the port closes */
    }
    back->call = e->call;
    back->recorded = recorded;
    e->call = NULL;
    if (!recorded) {
        atomic_fetch_add(&a->unrecorded, 1);
    }
    pthread_mutex_lock(&p->mu);
    if (p->closed) {
        free(back);
    } else {
        list_push(&p->done, back);
        p->wake = true;
    }
    pthread_mutex_unlock(&p->mu);
}

static void wake_ports(struct gw_audit *a)
{
    pthread_mutex_lock(&a->mu);
    size_t n = a->port_count;
    pthread_mutex_unlock(&a->mu);
    for (size_t i = 0; i < n; i++) {
        struct gw_audit_port *p = a->ports[i];
        pthread_mutex_lock(&p->mu);
        if (p->wake && !p->closed) {
            gw_loop_wake(p->loop);
        }
        p->wake = false;
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
}

/* Writes as many pending records as fit one batch. Returns false when the disk failed. */
static bool commit_some(struct gw_audit *a, bool *more)
{
    struct stat st;
    if (a->fd >= 0 && fstat(a->fd, &st) == 0 && st.st_nlink == 0) {
        /* The file was removed: what we write there would be lost. Start a new one. */
        fprintf(stderr, "level=warning event=audit_file_removed file=%s\n", a->path);
        if (!open_new(a, "removed", NULL, 0)) {
            return false;
        }
    }
    if (a->fd < 0 && !open_new(a, "reopen", NULL, 0)) {
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
    bool seal = a->o.sign_interval_ms > 0 && now_ms() - a->last_seal_ms >= a->o.sign_interval_ms;
    if (seal) {
        uint64_t before = a->unsealed;
        a->unsealed += n;
        if (append_seal(a, "interval") != GW_OK) {
            seal = false;
        }
        a->unsealed = before;
    }
    if (!write_batch(a)) {
        a->chain = saved;
        return false;
    }
    a->unsealed = seal ? 0 : a->unsealed + n;
    if (seal) {
        a->last_seal_ms = now_ms();
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
            hand_back(a, e, true);
        }
        entry_free(e);
    }
    if (a->pending.head == NULL) {
        a->pending.tail = &a->pending.head;
    }
    *more = a->pending.head != NULL;
    if (a->o.max_file_bytes > 0 && (size_t)a->size >= a->o.max_file_bytes) {
        rotate(a);
    }
    return true;
}

/* While the disk fails: calls past their hold come back unrecorded; the backlog is bounded. */
static void expire(struct gw_audit *a, bool all)
{
    int64_t now = now_ms();
    for (struct entry *e = a->pending.head; e != NULL; e = e->next) {
        if (e->call != NULL && (all || now >= e->deadline_ms)) {
            hand_back(a, e, false);
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
    int64_t now = now_ms();
    if (!healthy && !force && now < a->next_retry_ms) {
        expire(a, false);
        return;
    }
    bool more = a->pending.head != NULL;
    if (!healthy && !more && a->fd >= 0) {
        /* Nothing waits, but readiness must recover by itself: a seal probes the disk. */
        if (!seal_now(a, "retry")) {
            a->next_retry_ms = now_ms() + RETRY_MS;
        }
        return;
    }
    while (more) {
        if (!commit_some(a, &more)) {
            a->next_retry_ms = now_ms() + RETRY_MS;
            expire(a, false);
            return;
        }
    }
    if (a->unsealed > 0 && a->o.sign_interval_ms > 0 &&
        now_ms() - a->last_seal_ms >= a->o.sign_interval_ms) {
        if (!seal_now(a, "interval")) {
            a->next_retry_ms = now_ms() + RETRY_MS;
        }
    } else if (!healthy && a->fd < 0) {
        if (!open_new(a, "reopen", NULL, 0)) {
            a->next_retry_ms = now_ms() + RETRY_MS; /* not again at once: the writer would spin */
        }
    }
}

/* How long the writer may sleep. */
static int64_t next_wake_ms(struct gw_audit *a)
{
    int64_t when = now_ms() + 1000;
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
            if (wake <= now_ms()) {
                break;
            }
            struct timespec ts = {.tv_sec = (time_t)(wake / 1000),
                                  .tv_nsec = (long)(wake % 1000) * 1000000};
            pthread_cond_timedwait(&a->cv, &a->mu, &ts);
        }
        struct list in = a->in;
        list_init(&a->in);
        bool stop = a->stop;
        bool want_reopen = a->reopen;
        a->reopen = false;
        pthread_mutex_unlock(&a->mu);

        list_splice(&a->pending, &in);
        if (want_reopen) {
            reopen(a);
        }
        round_once(a, want_reopen);
        wake_ports(a);

        pthread_mutex_lock(&a->mu);
        if (stop && a->in.head == NULL) {
            break;
        }
    }
    pthread_mutex_unlock(&a->mu);
    /* Stopping: what is left gets a last chance, then the chain is sealed. */
    int64_t give_up = now_ms() + STOP_RETRY_MS;
    while (a->pending.head != NULL && now_ms() < give_up) {
        round_once(a, true);
        if (a->pending.head != NULL) {
            struct timespec ts = {.tv_sec = 0, .tv_nsec = RETRY_MS * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    expire(a, true);
    wake_ports(a);
    if (a->fd >= 0) {
        seal_now(a, "stop");
    }
    if (a->pending.count > 0) {
        fprintf(stderr,
                "level=error event=audit_records_lost lost=%zu note=\"not written at stop\"\n",
                a->pending.count);
    }
    return NULL;
}

/* ---- ports --------------------------------------------------------------------------------- */

static void cond_init_monotonic(pthread_cond_t *cv);

struct gw_audit_port *gw_audit_port_new(struct gw_audit *a, struct gw_loop *loop)
{
    struct gw_audit_port *p = calloc(1, sizeof *p);
    if (p == NULL) {
        return NULL;
    }
    p->audit = a;
    p->loop = loop;
    pthread_mutex_init(&p->mu, NULL);
    cond_init_monotonic(&p->cv); /* gw_audit_port_close waits on it with a monotonic deadline */
    list_init(&p->done);
    pthread_mutex_lock(&a->mu);
    if (a->port_count == PORTS_MAX) {
        pthread_mutex_unlock(&a->mu);
        free(p);
        return NULL;
    }
    a->ports[a->port_count++] = p;
    pthread_mutex_unlock(&a->mu);
    return p;
}

enum gw_err gw_audit_port_submit(struct gw_audit_port *p, struct gw_call *call, bool hold)
{
    struct gw_audit *a = p->audit;
    struct entry *e = calloc(1, sizeof *e);
    if (e == NULL || gw_audit_encode_call(call, a->redactor, &e->body, &e->len) != GW_OK) {
        free(e);
        return GW_ERR_NOMEM;
    }
    if (hold) {
        e->port = p;
        e->call = call;
        e->deadline_ms = now_ms() + a->o.hold_ms;
        pthread_mutex_lock(&p->mu);
        p->outstanding++;
        pthread_mutex_unlock(&p->mu);
    }
    atomic_fetch_add(&a->submitted, 1);
    pthread_mutex_lock(&a->mu);
    bool idle = a->in.head == NULL;
    list_push(&a->in, e);
    if (idle) {
        pthread_cond_signal(&a->cv);
    }
    pthread_mutex_unlock(&a->mu);
    return GW_OK;
}

void gw_audit_port_drain(struct gw_audit_port *p, gw_audit_done_fn fn, void *arg)
{
    pthread_mutex_lock(&p->mu);
    struct list done = p->done;
    list_init(&p->done);
    p->outstanding -= done.count;
    pthread_mutex_unlock(&p->mu);
    while (done.head != NULL) {
        struct entry *e = done.head;
        done.head = e->next;
        fn(e->call, e->recorded, arg);
        free(e);
    }
}

void gw_audit_port_close(struct gw_audit_port *p, long timeout_ms, gw_audit_done_fn fn, void *arg)
{
    if (p == NULL) {
        return;
    }
    int64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        gw_audit_port_drain(p, fn, arg);
        pthread_mutex_lock(&p->mu);
        bool waiting = p->outstanding > 0 && now_ms() < deadline;
        if (waiting && p->done.head == NULL) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_nsec += 20 * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&p->cv, &p->mu, &ts);
        }
        if (!waiting) {
            p->closed = true;
            pthread_mutex_unlock(&p->mu);
            break;
        }
        pthread_mutex_unlock(&p->mu);
    }
    gw_audit_port_drain(p, fn, arg);
}

/* ---- life ---------------------------------------------------------------------------------- */

static void cond_init_monotonic(pthread_cond_t *cv)
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
    list_init(&a->in);
    list_init(&a->pending);
    gw_buf_init(&a->batch, BATCH_BYTES_MAX + 2 * GW_AUDIT_LINE_MAX);
    pthread_mutex_init(&a->mu, NULL);
    pthread_mutex_init(&a->why_mu, NULL);
    cond_init_monotonic(&a->cv);
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
    if (!open_at_start(a)) {
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
    for (size_t i = 0; i < a->port_count; i++) {
        struct entry *e = a->ports[i]->done.head;
        while (e != NULL) {
            struct entry *next = e->next;
            free(e);
            e = next;
        }
        pthread_mutex_destroy(&a->ports[i]->mu);
        pthread_cond_destroy(&a->ports[i]->cv);
        free(a->ports[i]);
    }
    gw_buf_free(&a->batch);
    gw_audit_redactor_free(a->redactor);
    gw_audit_signer_free(a->signer);
    pthread_mutex_destroy(&a->mu);
    pthread_mutex_destroy(&a->why_mu);
    pthread_cond_destroy(&a->cv);
    free(a->path);
    free(a);
}
