/*
 * callers_int.h: what the files of the callers registry share. Nothing outside gateway/identity/
 * includes it: the registry's interface is callers.h.
 *
 *   callers.c       reading and validating the callers file, building the indexes, look-ups
 *   callers_edit.c  editing: open for update (the writer lock), add, remove, save
 */
#ifndef GW_CALLERS_INT_H
#define GW_CALLERS_INT_H

#include <jansson.h>
#include <stddef.h>

#include "identity/callers.h"

#define WHAT "callers file"

struct gw_callers {
    json_t *root;            /* the document: owns the policy strings and attribute objects */
    struct gw_caller *items; /* sorted by name */
    size_t count;
    const struct gw_caller **by_id; /* callers with a SecretId, sorted by it */
    size_t id_count;
    const struct gw_caller **by_cert; /* callers with a certificate name, sorted by it */
    size_t cert_count;
    char *path;  /* for gw_callers_save: set by gw_callers_open_for_update */
    int lock_fd; /* the writer lock, or -1 */
};

/* Where the document came from, for messages "FILE:LINE: ...". */
struct source {
    const char *path;
    const char *text; /* the file's bytes, to find a key's line; NULL after an edit */
    size_t len;
    char *msg;
    size_t msglen;
};

/*
 * Writes "FILE:LINE: caller \"NAME\": \"FIELD\" what" (or less, as given: name and field may be
 * NULL), the line being that of the deepest key named. Returns GW_ERR_INVALID.
 */
enum gw_err callers_fail(const struct source *src, const char *name, const char *field,
                         const char *what);

/* A name, key or value quoted from the file goes to a terminal or a log: one plain line. */
void callers_plain_line(char *msg, size_t msglen);

/*
 * Checks the document root and builds the callers and their indexes into r (whose old index is
 * replaced only on success). r->root is not touched.
 */
enum gw_err callers_build(const struct source *src, json_t *root, struct gw_callers *r);

#endif
