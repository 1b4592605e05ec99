/* load: the arena, reading policy files and directories, and the set built from them. */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/file.h"
#include "policy/policy_internal.h"

/* ---- arena ----------------------------------------------------------------------------------- */

#define BLOCK_BYTES ((size_t)16 << 10)
#define ALIGN 16

struct policy_block {
    struct policy_block *next;
    size_t used;
    size_t cap;
    _Alignas(ALIGN) unsigned char data[];
};

void *policy_alloc(struct policy_arena *a, size_t size)
{
    size = (size + ALIGN - 1) & ~(size_t)(ALIGN - 1);
    struct policy_block *b = a->head;
    if (b == NULL || b->cap - b->used < size) {
        size_t cap = size > BLOCK_BYTES ? size : BLOCK_BYTES;
        b = calloc(1, sizeof *b + cap);
        if (b == NULL) {
            return NULL;
        }
        b->cap = cap;
        b->next = a->head;
        a->head = b;
    }
    void *p = b->data + b->used;
    b->used += size;
    return p;
}

void *policy_alloc_array(struct policy_arena *a, size_t n, size_t size)
{
    if (size != 0 && n > ((size_t)1 << 30) / size) {
        return NULL;
    }
    return policy_alloc(a, n * size > 0 ? n * size : 1);
}

char *policy_strndup(struct policy_arena *a, const char *s, size_t n)
{
    char *p = policy_alloc(a, n + 1);
    if (p != NULL) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

void policy_arena_free(struct policy_arena *a)
{
    while (a->head != NULL) {
        struct policy_block *next = a->head->next;
        free(a->head);
        a->head = next;
    }
}

/* ---- problems -------------------------------------------------------------------------------- */

void policy_problem(struct policy_report *r, int line, const char *fmt, ...)
{
    char what[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    /* What a file says is quoted back to a terminal or a log: one line of printable bytes. */
    for (char *p = what; *p != '\0'; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            *p = '?';
        }
    }
    r->problems++;
    if (r->out != NULL) {
        if (line > 0) {
            fprintf(r->out, "%s:%d: %s\n", r->path, line, what);
        } else {
            fprintf(r->out, "%s: %s\n", r->path, what);
        }
    }
    if (r->problems == 1 && r->msg != NULL && r->msglen > 0) {
        if (line > 0) {
            snprintf(r->msg, r->msglen, "%s:%d: %s", r->path, line, what);
        } else {
            snprintf(r->msg, r->msglen, "%s: %s", r->path, what);
        }
    }
}

/* ---- files ----------------------------------------------------------------------------------- */

enum gw_err policy_read_file(const char *path, char **text, size_t *len, struct policy_report *r)
{
    enum gw_err err;
    char msg[512] = "";
    int fd = -1;
    char *buf = NULL;
    size_t got = 0;
    if ((err = gw_file_open(path, "policy file", GW_FILE_REGULAR, &fd, NULL, msg, sizeof msg)) !=
        GW_OK) {
        if (err == GW_ERR_NOT_FOUND) {
            policy_problem(r, 0, "no such file");
        } else {
            policy_problem(r, 0, "cannot open: %s", msg[0] != '\0' ? msg : gw_err_str(err));
        }
        goto out;
    }
    if ((buf = malloc(POLICY_MAX_FILE_BYTES + 1)) == NULL) {
        err = GW_ERR_NOMEM;
        goto out;
    }
    /* One byte more than the maximum tells a file at the limit from a larger one. */
    if ((err = gw_file_read_upto(fd, buf, POLICY_MAX_FILE_BYTES + 1, &got)) != GW_OK) {
        policy_problem(r, 0, "cannot read: %s", strerror(errno));
        goto out;
    }
    if (got > POLICY_MAX_FILE_BYTES) {
        policy_problem(r, 0, "larger than %zu KiB; split the policy into several files",
                       POLICY_MAX_FILE_BYTES >> 10);
        err = GW_ERR_TOO_LARGE;
        goto out;
    }
    buf[got] = '\0';
    *text = buf;
    *len = got;
    buf = NULL;
    err = GW_OK;
out:
    if (fd >= 0) {
        close(fd);
    }
    free(buf);
    return err;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool is_policy_file(const char *dir, const struct dirent *e)
{
    size_t n = strlen(e->d_name);
    if (e->d_name[0] == '.' || n <= 5 || strcmp(e->d_name + n - 5, ".json") != 0) {
        return false;
    }
    if (e->d_type != DT_UNKNOWN) {
        return e->d_type == DT_REG || e->d_type == DT_LNK; /* a link is refused when opened */
    }
    char path[4096];
    struct stat st;
    int len = snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    return len > 0 && (size_t)len < sizeof path && lstat(path, &st) == 0 &&
           (S_ISREG(st.st_mode) || S_ISLNK(st.st_mode));
}

enum gw_err policy_list_dir(const char *dir, char ***names, size_t *n, struct policy_report *r)
{
    enum gw_err err;
    DIR *d = opendir(dir);
    char **list = NULL;
    size_t count = 0;
    if (d == NULL) {
        policy_problem(r, 0, "cannot read the policy directory: %s", strerror(errno));
        err = GW_ERR_IO;
        goto out;
    }
    if ((list = calloc(POLICY_MAX_FILES, sizeof *list)) == NULL) {
        err = GW_ERR_NOMEM;
        goto out;
    }
    const struct dirent *e;
    errno = 0;
    while ((e = readdir(d)) != NULL) {
        if (!is_policy_file(dir, e)) {
            continue;
        }
        if (count == POLICY_MAX_FILES) {
            policy_problem(r, 0, "more than %d policy files; merge some", POLICY_MAX_FILES);
            err = GW_ERR_TOO_LARGE;
            goto out;
        }
        if ((list[count] = strdup(e->d_name)) == NULL) {
            err = GW_ERR_NOMEM;
            goto out;
        }
        count++;
    }
    if (errno != 0) {
        policy_problem(r, 0, "cannot read the policy directory: %s", strerror(errno));
        err = GW_ERR_IO;
        goto out;
    }
    qsort(list, count, sizeof *list, cmp_name);
    *names = list;
    *n = count;
    list = NULL;
    err = GW_OK;
out:
    for (size_t i = 0; list != NULL && i < count; i++) {
        free(list[i]);
    }
    free(list);
    if (d != NULL) {
        closedir(d);
    }
    return err;
}

/* ---- the set --------------------------------------------------------------------------------- */

static int cmp_policy(const void *a, const void *b)
{
    return strcmp((*(const struct gw_policy *const *)a)->name,
                  (*(const struct gw_policy *const *)b)->name);
}

static int cmp_policy_key(const void *key, const void *elem)
{
    return strcmp(key, (*(const struct gw_policy *const *)elem)->name);
}

static enum gw_err load_file(struct gw_policy_set *set, const char *dir, const char *file,
                             const struct gw_apispec *spec, const struct gw_policy **out, char *msg,
                             size_t msglen)
{
    enum gw_err err;
    char path[4096];
    char *text = NULL;
    size_t len = 0;
    struct gw_policy *policy = NULL;
    int n = snprintf(path, sizeof path, "%s/%s", dir, file);
    if (n < 0 || (size_t)n >= sizeof path) {
        gw_say(msg, msglen, "%s/%s: path too long", dir, file);
        return GW_ERR_INVALID;
    }
    struct policy_report r = {.path = path, .msg = msg, .msglen = msglen};
    if ((err = policy_read_file(path, &text, &len, &r)) != GW_OK) {
        goto out;
    }
    r.text = text;
    r.len = len;
    if ((err = policy_parse(&set->arena, &r, file, text, len, spec, &policy)) != GW_OK) {
        goto out;
    }
    if (r.problems > 0) {
        err = GW_ERR_INVALID;
        goto out;
    }
    *out = policy;
    err = GW_OK;
out:
    if (err == GW_ERR_NOMEM) {
        gw_say(msg, msglen, "%s: out of memory", path);
    }
    free(text);
    return err;
}

enum gw_err gw_policy_set_load(const char *dir, const struct gw_apispec *spec,
                               struct gw_policy_set **out, char *msg, size_t msglen)
{
    enum gw_err err;
    struct gw_policy_set *set = NULL;
    char **names = NULL;
    size_t n = 0;
    struct policy_report r = {.path = dir, .msg = msg, .msglen = msglen};
    if ((err = policy_list_dir(dir, &names, &n, &r)) != GW_OK) {
        goto out;
    }
    if ((set = calloc(1, sizeof *set)) == NULL) {
        err = GW_ERR_NOMEM;
        goto out;
    }
    set->policies = policy_alloc_array(&set->arena, n, sizeof *set->policies);
    if (set->policies == NULL) {
        err = GW_ERR_NOMEM;
        goto out;
    }
    const struct gw_policy **policies = set->policies;
    for (size_t i = 0; i < n; i++) {
        if ((err = load_file(set, dir, names[i], spec, &policies[i], msg, msglen)) != GW_OK) {
            goto out;
        }
        set->n_statements += policies[i]->n_statements;
    }
    set->n_policies = n;
    /* Sorted by name, not by file name: "a-b.json" comes before "a.json", "a" before "a-b". */
    qsort(policies, n, sizeof policies[0], cmp_policy);
    *out = set;
    set = NULL;
    err = GW_OK;
out:
    if (err == GW_ERR_NOMEM) {
        gw_say(msg, msglen, "%s: out of memory", dir);
    }
    for (size_t i = 0; i < n; i++) {
        free(names[i]);
    }
    free(names);
    gw_policy_set_free(set);
    return err;
}

void gw_policy_set_free(struct gw_policy_set *set)
{
    if (set == NULL) {
        return;
    }
    policy_arena_free(&set->arena);
    free(set);
}

const struct gw_policy *gw_policy_set_find(const struct gw_policy_set *set, const char *name)
{
    if (set == NULL || name == NULL || set->n_policies == 0) {
        return NULL;
    }
    const struct gw_policy *const *p =
        bsearch(name, set->policies, set->n_policies, sizeof set->policies[0], cmp_policy_key);
    return p != NULL ? *p : NULL;
}

size_t gw_policy_set_statements(const struct gw_policy_set *set)
{
    return set != NULL ? set->n_statements : 0;
}
