/*
 * Loading: the walk over a directory of descriptions, reading each file, load errors, and the
 * checks across files (duplicates, nothing found). One description is parsed in describe.c.
 */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "apispec/apispec_internal.h"
#include "core/buf.h"

enum gw_err apispec_load_fail(struct loader *ld, enum gw_err err, const char *fmt, ...)
{
    if (ld->msg == NULL || ld->msglen == 0) {
        return err;
    }
    int n = 0;
    if (ld->file != NULL) {
        n = snprintf(ld->msg, ld->msglen, "%s: ", ld->file);
    }
    if (n >= 0 && (size_t)n < ld->msglen) {
        va_list ap;
        va_start(ap, fmt);
        int m = vsnprintf(ld->msg + n, ld->msglen - (size_t)n, fmt, ap);
        va_end(ap);
        if (m >= 0 && (size_t)m < ld->msglen - (size_t)n) {
            return err;
        }
    }
    apispec_mark_cut(ld->msg, ld->msglen);
    return err;
}

enum gw_err apispec_nomem(struct loader *ld)
{
    return apispec_load_fail(ld, GW_ERR_NOMEM, "out of memory");
}

static enum gw_err load_file(struct loader *ld, const char *path)
{
    enum gw_err err;
    struct gw_buf b;
    json_t *root = NULL;
    json_error_t jerr;
    char chunk[8192];
    size_t n;

    gw_buf_init(&b, GW_APISPEC_MAX_FILE_BYTES);
    ld->file = path;
    if (++ld->n_files > GW_APISPEC_MAX_FILES) {
        err = apispec_load_fail(ld, GW_ERR_TOO_LARGE, "more than %d descriptions",
                                GW_APISPEC_MAX_FILES);
        goto out;
    }
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        err = apispec_load_fail(ld, GW_ERR_IO, "cannot open: %s", strerror(errno));
        goto out;
    }
    err = GW_OK;
    while (err == GW_OK && (n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        err = gw_buf_append(&b, chunk, n);
    }
    if (err == GW_OK && ferror(f)) {
        err = GW_ERR_IO;
    }
    fclose(f);
    if (err != GW_OK) {
        err = apispec_load_fail(ld, err, "cannot read: %s",
                                err == GW_ERR_TOO_LARGE ? "larger than 32 MiB" : gw_err_str(err));
        goto out;
    }
    root = json_loadb(b.data != NULL ? b.data : "", b.len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        err = apispec_load_fail(ld, GW_ERR_INVALID, "line %d, column %d: not valid JSON: %s",
                                jerr.line, jerr.column, jerr.text);
        goto out;
    }
    if ((err = apispec_parse_description(ld, root)) != GW_OK) {
        goto out;
    }
    err = GW_OK;
out:
    ld->file = NULL;
    json_decref(root);
    gw_buf_free(&b);
    return err;
}

static int cmp_cstr(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool is_description_name(const char *name)
{
    static const char suffix[] = ".api.json";
    size_t n = strlen(name), s = sizeof suffix - 1;
    return strcmp(name, "api.json") == 0 || (n > s && strcmp(name + n - s, suffix) == 0);
}

/* Loads the descriptions below dir in name order, so errors and duplicates are reproducible. */
static enum gw_err walk(struct loader *ld, const char *dir, unsigned depth)
{
    enum gw_err err;
    DIR *d = NULL;
    char **names = NULL;
    size_t n = 0, cap = 0;
    char path[GW_APISPEC_MAX_PATH];
    struct dirent *e;

    if (depth > GW_APISPEC_MAX_DIR_DEPTH) {
        err = apispec_load_fail(ld, GW_ERR_TOO_LARGE,
                                "%s: directories nested more than %d levels deep", dir,
                                GW_APISPEC_MAX_DIR_DEPTH);
        goto out;
    }
    if ((d = opendir(dir)) == NULL) {
        err =
            apispec_load_fail(ld, GW_ERR_IO, "%s: cannot open directory: %s", dir, strerror(errno));
        goto out;
    }
    for (errno = 0; (e = readdir(d)) != NULL; errno = 0) {
        if (e->d_name[0] == '.') {
            continue;
        }
        if (n == cap) {
            size_t c = cap ? cap * 2 : 16;
            char **p = realloc(names, c * sizeof *p);
            if (p == NULL) {
                err = apispec_nomem(ld);
                goto out;
            }
            names = p;
            cap = c;
        }
        if ((names[n] = strdup(e->d_name)) == NULL) {
            err = apispec_nomem(ld);
            goto out;
        }
        n++;
    }
    if (errno != 0) {
        err =
            apispec_load_fail(ld, GW_ERR_IO, "%s: cannot read directory: %s", dir, strerror(errno));
        goto out;
    }
    if (n > 0) {
        qsort(names, n, sizeof names[0], cmp_cstr);
    }
    for (size_t i = 0; i < n; i++) {
        int len = snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (len < 0 || (size_t)len >= sizeof path) {
            err = apispec_load_fail(ld, GW_ERR_TOO_LARGE, "%s: path too long", dir);
            goto out;
        }
        struct stat st;
        if (stat(path, &st) != 0) {
            err = apispec_load_fail(ld, GW_ERR_IO, "%s: %s", path, strerror(errno));
            goto out;
        }
        if (S_ISDIR(st.st_mode)) {
            /* A symbolic link back to a directory being walked would loop until the depth limit. */
            for (unsigned k = 0; k <= depth; k++) {
                if (ld->dirs[k].dev == st.st_dev && ld->dirs[k].ino == st.st_ino) {
                    err = apispec_load_fail(ld, GW_ERR_INVALID, "%s: directory loop", path);
                    goto out;
                }
            }
            if (depth + 1 < sizeof ld->dirs / sizeof ld->dirs[0]) {
                ld->dirs[depth + 1].dev = st.st_dev;
                ld->dirs[depth + 1].ino = st.st_ino;
            }
            err = walk(ld, path, depth + 1);
        } else if (S_ISREG(st.st_mode) && is_description_name(names[i])) {
            err = load_file(ld, path);
        } else {
            err = GW_OK;
        }
        if (err != GW_OK) {
            goto out;
        }
    }
    err = GW_OK;
out:
    for (size_t i = 0; i < n; i++) {
        free(names[i]);
    }
    free(names);
    if (d != NULL) {
        closedir(d);
    }
    return err;
}

enum gw_err gw_apispec_load_dir(const char *dir, struct gw_apispec **out, char *msg, size_t msglen)
{
    enum gw_err err;
    struct loader ld = {.msg = msg, .msglen = msglen};
    struct stat st;

    if (msg != NULL && msglen > 0) {
        msg[0] = '\0';
    }
    if ((ld.spec = calloc(1, sizeof *ld.spec)) == NULL) {
        err = apispec_nomem(&ld);
        goto out;
    }
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        err = apispec_load_fail(&ld, GW_ERR_IO, "%s: not a directory", dir);
        goto out;
    }
    ld.dirs[0].dev = st.st_dev;
    ld.dirs[0].ino = st.st_ino;
    if ((err = walk(&ld, dir, 0)) != GW_OK) {
        goto out;
    }
    if (ld.spec->n_versions == 0) {
        err = apispec_load_fail(&ld, GW_ERR_INVALID,
                                "%s: no API description (api.json or *.api.json)", dir);
        goto out;
    }
    qsort(ld.spec->versions, ld.spec->n_versions, sizeof ld.spec->versions[0], apispec_cmp_version);
    for (size_t i = 1; i < ld.spec->n_versions; i++) {
        const struct version *a = &ld.spec->versions[i - 1], *b = &ld.spec->versions[i];
        if (apispec_cmp_version(a, b) == 0) {
            err = apispec_load_fail(&ld, GW_ERR_INVALID, "%s and %s both describe %s version %s",
                                    a->file, b->file, a->service, a->version);
            goto out;
        }
    }
    *out = ld.spec;
    ld.spec = NULL;
    err = GW_OK;
out:
    gw_apispec_free(ld.spec);
    return err;
}
