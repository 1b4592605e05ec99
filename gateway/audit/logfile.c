#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit/audit.h"
#include "audit/audit_int.h"
#include "audit/chain.h"
#include "audit/encode.h"
#include "audit/ship.h"
#include "core/file.h"

#define NAME_BYTES 4096 /* a path, or a file name put aside */

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

enum gw_err audit_append_seal(struct gw_audit *a, const char *reason)
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
bool audit_write_batch(struct gw_audit *a)
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
bool audit_open_new(struct gw_audit *a, const char *reason, const char *prev_file,
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
    if (append_genesis(a, reason, prev_file, torn_bytes) != GW_OK || !audit_write_batch(a)) {
        a->chain = saved;
        return false;
    }
    if (gw_file_sync_dir(a->path) != GW_OK) {
        set_unhealthy(a, "cannot sync the directory of", errno);
        return false;
    }
    a->unsealed = 0;
    a->last_seal_ms = audit_now_ms();
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
bool audit_open_at_start(struct gw_audit *a)
{
    memset(&a->chain, 0, sizeof a->chain);
    int fd = open(a->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno != ENOENT) {
            set_unhealthy(a, "cannot open", errno);
            return false;
        }
        return audit_open_new(a, "start", NULL, 0);
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
        return audit_open_new(a, found ? "restart" : "start", NULL, 0);
    }
    char prev[NAME_BYTES];
    return put_aside(a, prev, sizeof prev) && audit_open_new(a, "restart", prev, torn);
}

/* Seals the current file into the batch and writes it. */
bool audit_seal_now(struct gw_audit *a, const char *reason)
{
    struct gw_audit_chain saved = a->chain;
    gw_buf_reset(&a->batch);
    if (audit_append_seal(a, reason) != GW_OK || !audit_write_batch(a)) {
        a->chain = saved;
        return false;
    }
    a->unsealed = 0;
    a->last_seal_ms = audit_now_ms();
    return true;
}

void audit_rotate(struct gw_audit *a)
{
    char prev[NAME_BYTES];
    if (!audit_seal_now(a, "rotate") || !put_aside(a, prev, sizeof prev)) {
        return;
    }
    close(a->fd);
    a->fd = -1;
    atomic_fetch_add(&a->rotations, 1);
    audit_open_new(a, "rotate", prev, 0);
}

/* SIGHUP: the file may have been renamed away (logrotate "create"): seal it and reopen path. */
void audit_reopen(struct gw_audit *a)
{
    struct stat now, mine;
    if (a->fd >= 0) {
        audit_seal_now(a, "reopen");
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
    audit_open_new(a, "reopen", NULL, 0);
}
