#include "apispec/apispec.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "core/buf.h"

#define GW_APISPEC_MAX_DIR_DEPTH 8
#define GW_APISPEC_MAX_FILE_BYTES ((size_t)32 << 20)
#define GW_APISPEC_MAX_FILES 1024
#define GW_APISPEC_MAX_NESTING 16 /* object levels from an action's input down */
#define GW_APISPEC_MAX_NAME 128   /* bytes in any name of a description */
#define GW_APISPEC_MAX_PATH 4096  /* bytes in a file path while walking */

/* Caller data echoed in a message is cut to this many bytes. */
#define ECHO_MAX 40
#define ECHO_BUF (ECHO_MAX + 8)
#define RECEIVED_BUF (ECHO_BUF + 40)
#define LIST_BUF 256
#define EXPECTED_BUF (GW_APISPEC_MAX_NAME + 80)
/* A parameter path: at most MAX_NESTING levels of "Name.index." from the description. */
#define PATH_BUF ((GW_APISPEC_MAX_NESTING + 1) * (GW_APISPEC_MAX_NAME + 24))

/* ---------------------------------------------------------------------------------------------
 * The loaded structure. Everything lives in one arena owned by struct gw_apispec, so a failed
 * load and gw_apispec_free are one walk over a few blocks. Arrays are sorted by name for bsearch.
 */

enum kind { KIND_STRING, KIND_INT64, KIND_UINT64, KIND_FLOAT, KIND_BOOL, KIND_OBJECT };

struct enum_value {
    const char *s; /* KIND_STRING */
    size_t len;
    int64_t i; /* KIND_INT64, KIND_UINT64 */
    double f;  /* KIND_FLOAT */
};

struct object;

struct member {
    const char *name;
    const char *type_name; /* the description's "member", for messages: "string", "Filter" */
    struct object *object; /* KIND_OBJECT */
    enum kind kind;        /* of the value, or of each item of a list */
    bool list;
    bool required;
    bool ascii;
    bool has_min;
    bool has_max;
    int64_t imin, imax; /* integer kinds */
    double fmin, fmax;  /* KIND_FLOAT */
    size_t max_length;  /* SIZE_MAX: no limit */
    size_t max_items;   /* SIZE_MAX: no limit */
    const struct enum_value *enums;
    size_t n_enums; /* 0: any value */
};

enum mark { MARK_NEW, MARK_ACTIVE, MARK_DONE };

struct object {
    const char *name;
    struct member *members;        /* description order */
    const struct member **by_name; /* sorted by name */
    size_t n_members;
    const json_t *src; /* while loading only */
    enum mark mark;    /* while loading only: recursion check */
    unsigned height;   /* object levels from here down, 1 for flat objects */
};

struct group {
    const struct member **members;
    size_t n;
};

struct action {
    const char *name;
    struct object *input;
    const struct group *require_one_of;
    size_t n_require_one_of;
    const struct group *exclusive;
    size_t n_exclusive;
};

struct version {
    const char *service;
    const char *version;
    const char *file;
    struct action *actions; /* sorted by name */
    size_t n_actions;
    struct object *objects; /* sorted by name */
    size_t n_objects;
};

struct arena_block {
    struct arena_block *next;
    size_t used;
    size_t cap;
};

struct gw_apispec {
    struct arena_block *arena;
    struct version *versions; /* sorted by service, then version */
    size_t n_versions;
    size_t cap_versions;
    size_t n_actions;
};

#define ARENA_ALIGN (alignof(max_align_t))
#define ARENA_HEADER ((sizeof(struct arena_block) + ARENA_ALIGN - 1) & ~(ARENA_ALIGN - 1))
#define ARENA_BLOCK ((size_t)64 << 10)

/* Returns zeroed memory that lives as long as spec, or NULL. */
static void *arena_alloc(struct gw_apispec *spec, size_t size)
{
    if (size > SIZE_MAX / 2) {
        return NULL;
    }
    size = size == 0 ? ARENA_ALIGN : (size + ARENA_ALIGN - 1) & ~(ARENA_ALIGN - 1);
    struct arena_block *b = spec->arena;
    if (b == NULL || b->cap - b->used < size) {
        size_t cap = size > ARENA_BLOCK ? size : ARENA_BLOCK;
        b = malloc(ARENA_HEADER + cap);
        if (b == NULL) {
            return NULL;
        }
        b->next = spec->arena;
        b->used = 0;
        b->cap = cap;
        spec->arena = b;
    }
    unsigned char *p = (unsigned char *)b + ARENA_HEADER + b->used;
    b->used += size;
    memset(p, 0, size);
    return p;
}

static void *arena_array(struct gw_apispec *spec, size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / 4 / size) {
        return NULL;
    }
    return arena_alloc(spec, n * size);
}

/* Copies n bytes and a NUL. */
static char *arena_memdup(struct gw_apispec *spec, const char *s, size_t n)
{
    char *p = arena_alloc(spec, n + 1);
    if (p != NULL) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

static char *arena_strdup(struct gw_apispec *spec, const char *s)
{
    return arena_memdup(spec, s, strlen(s));
}

/* ---------------------------------------------------------------------------------------------
 * Text helpers shared by load errors and verdicts. Every message is built from valid UTF-8 pieces
 * (names are identifiers; echoed data goes through clip), so only a cut at the end can break it.
 */

/* Length of the valid UTF-8 sequence at s (n bytes available), or 0 when invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf;
    if (s[0] < 0x80) {
        return 1;
    } else if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        len = 2;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        len = 3;
        lo = s[0] == 0xe0 ? 0xa0 : 0x80;
        hi = s[0] == 0xed ? 0x9f : 0xbf;
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        len = 4;
        lo = s[0] == 0xf0 ? 0x90 : 0x80;
        hi = s[0] == 0xf4 ? 0x8f : 0xbf;
    } else {
        return 0;
    }
    if (n < len || s[1] < lo || s[1] > hi) {
        return 0;
    }
    for (size_t i = 2; i < len; i++) {
        if (s[i] < 0x80 || s[i] > 0xbf) {
            return 0;
        }
    }
    return len;
}

/*
 * Copies at most ECHO_MAX bytes of s (n bytes, caller data) into out as printable UTF-8: control
 * characters and invalid bytes become '?', and "..." marks a cut. Returns out.
 */
static const char *clip(char out[ECHO_BUF], const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, o = 0;
    while (i < n) {
        size_t len = utf8_seq(u + i, n - i);
        size_t w = len == 0 ? 1 : len;
        if (o + w > ECHO_MAX) {
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        if (len == 0 || (len == 1 && (u[i] < 0x20 || u[i] == 0x7f))) {
            out[o] = '?';
        } else {
            memcpy(out + o, s + i, len);
        }
        o += w;
        i += w;
    }
    out[o] = '\0';
    return out;
}

/* After a truncating vsnprintf into buf: ends buf at a character boundary with "...". */
static void mark_cut(char *buf, size_t cap)
{
    size_t len = strlen(buf);
    if (cap < 4) {
        buf[0] = '\0';
        return;
    }
    if (len > cap - 4) {
        len = cap - 4;
    }
    while (len > 0 && ((unsigned char)buf[len] & 0xc0) == 0x80) {
        len--;
    }
    memcpy(buf + len, "...", 4);
}

/* Appends ", item" (or item first) to a list held in buf[LIST_BUF]; "..." once it is full. */
static void list_add(char buf[LIST_BUF], size_t *len, bool *full, const char *item)
{
    if (*full) {
        return;
    }
    size_t n = strlen(item);
    size_t sep = *len == 0 ? 0 : 2;
    if (*len + sep + n + 6 > LIST_BUF) { /* keep room for ", ..." and NUL */
        memcpy(buf + *len, *len == 0 ? "..." : ", ...", *len == 0 ? 4 : 6);
        *len += *len == 0 ? 3 : 5;
        *full = true;
        return;
    }
    memcpy(buf + *len, ", ", sep);
    memcpy(buf + *len + sep, item, n + 1);
    *len += sep + n;
}

static bool is_name(const char *s, bool dots)
{
    size_t n = strlen(s);
    if (n == 0 || n > GW_APISPEC_MAX_NAME) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '_' || (dots && (c == '.' || c == '-'));
        if (!ok) {
            return false;
        }
    }
    return true;
}

/* ---------------------------------------------------------------------------------------------
 * Loading.
 */

struct loader {
    struct gw_apispec *spec;
    char *msg;
    size_t msglen;
    const char *file; /* the description being read, for messages */
    size_t n_files;
    struct {
        dev_t dev;
        ino_t ino;
    } dirs[GW_APISPEC_MAX_DIR_DEPTH + 2]; /* the directories being walked, outermost first */
};

static enum gw_err load_fail(struct loader *ld, enum gw_err err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Writes "file: what" into the caller's msg buffer and returns err. */
static enum gw_err load_fail(struct loader *ld, enum gw_err err, const char *fmt, ...)
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
    mark_cut(ld->msg, ld->msglen);
    return err;
}

static enum gw_err nomem(struct loader *ld)
{
    return load_fail(ld, GW_ERR_NOMEM, "out of memory");
}

static int cmp_object(const void *a, const void *b)
{
    return strcmp(((const struct object *)a)->name, ((const struct object *)b)->name);
}

static int cmp_object_key(const void *key, const void *elem)
{
    return strcmp(key, ((const struct object *)elem)->name);
}

static int cmp_action(const void *a, const void *b)
{
    return strcmp(((const struct action *)a)->name, ((const struct action *)b)->name);
}

static int cmp_action_key(const void *key, const void *elem)
{
    return strcmp(key, ((const struct action *)elem)->name);
}

static int cmp_member_ptr(const void *a, const void *b)
{
    return strcmp((*(const struct member *const *)a)->name,
                  (*(const struct member *const *)b)->name);
}

static int cmp_member_key(const void *key, const void *elem)
{
    return strcmp(key, (*(const struct member *const *)elem)->name);
}

static int cmp_version(const void *a, const void *b)
{
    const struct version *x = a, *y = b;
    int c = strcmp(x->service, y->service);
    return c != 0 ? c : strcmp(x->version, y->version);
}

static struct object *find_object(const struct version *v, const char *name)
{
    return bsearch(name, v->objects, v->n_objects, sizeof v->objects[0], cmp_object_key);
}

static const struct member *find_member(const struct object *o, const char *name)
{
    const struct member *const *m =
        bsearch(name, o->by_name, o->n_members, sizeof o->by_name[0], cmp_member_key);
    return m == NULL ? NULL : *m;
}

/* Reads a non-negative integer extension key into *out (absent: unchanged). */
static enum gw_err ext_size(struct loader *ld, const json_t *src, const char *key,
                            const char *where, size_t *out)
{
    const json_t *j = json_object_get(src, key);
    if (j == NULL) {
        return GW_OK;
    }
    if (!json_is_integer(j) || json_integer_value(j) < 0) {
        return load_fail(ld, GW_ERR_INVALID, "%s: \"%s\" must be a non-negative integer", where,
                         key);
    }
    *out = (size_t)json_integer_value(j);
    return GW_OK;
}

/* Reads one enum value, or the bound "min" or "max", of member m into *ev. */
static enum gw_err ext_number(struct loader *ld, const struct member *m, const json_t *j,
                              const char *where, const char *key, struct enum_value *ev)
{
    switch (m->kind) {
    case KIND_STRING:
        if (!json_is_string(j)) {
            break;
        }
        ev->s = json_string_value(j);
        ev->len = json_string_length(j);
        return GW_OK;
    case KIND_INT64:
    case KIND_UINT64:
        if (!json_is_integer(j)) {
            break;
        }
        ev->i = json_integer_value(j);
        if (m->kind == KIND_UINT64 && ev->i < 0) {
            return load_fail(ld, GW_ERR_INVALID, "%s: \"%s\" has a negative value for a uint64",
                             where, key);
        }
        return GW_OK;
    case KIND_FLOAT:
        if (!json_is_number(j)) {
            break;
        }
        ev->f = json_number_value(j);
        return GW_OK;
    case KIND_BOOL:
    case KIND_OBJECT:
    default:
        return load_fail(ld, GW_ERR_INVALID, "%s: \"%s\" does not apply to a %s member", where, key,
                         m->type_name);
    }
    return load_fail(ld, GW_ERR_INVALID, "%s: \"%s\" must hold %s", where, key,
                     m->kind == KIND_STRING  ? "strings"
                     : m->kind == KIND_FLOAT ? "numbers"
                                             : "integers");
}

/* The tcgw extension keys of one member: enum, min, max, max_length, max_items, ascii. */
static enum gw_err parse_extensions(struct loader *ld, struct member *m, const json_t *src,
                                    const char *where)
{
    enum gw_err err;
    struct gw_apispec *spec = ld->spec;
    const json_t *j;
    struct enum_value ev;

    m->max_length = SIZE_MAX;
    m->max_items = SIZE_MAX;
    if ((j = json_object_get(src, "enum")) != NULL) {
        if (!json_is_array(j) || json_array_size(j) == 0) {
            return load_fail(ld, GW_ERR_INVALID, "%s: \"enum\" must be a non-empty list", where);
        }
        struct enum_value *e = arena_array(spec, json_array_size(j), sizeof *e);
        if (e == NULL) {
            return nomem(ld);
        }
        for (size_t i = 0; i < json_array_size(j); i++) {
            memset(&ev, 0, sizeof ev);
            if ((err = ext_number(ld, m, json_array_get(j, i), where, "enum", &ev)) != GW_OK) {
                return err;
            }
            if (ev.s != NULL && (ev.s = arena_memdup(spec, ev.s, ev.len)) == NULL) {
                return nomem(ld);
            }
            e[i] = ev;
        }
        m->enums = e;
        m->n_enums = json_array_size(j);
    }
    bool numeric = m->kind == KIND_INT64 || m->kind == KIND_UINT64 || m->kind == KIND_FLOAT;
    if ((json_object_get(src, "min") != NULL || json_object_get(src, "max") != NULL) && !numeric) {
        return load_fail(ld, GW_ERR_INVALID, "%s: \"min\" and \"max\" apply to int and float only",
                         where);
    }
    memset(&ev, 0, sizeof ev);
    if ((j = json_object_get(src, "min")) != NULL) {
        if ((err = ext_number(ld, m, j, where, "min", &ev)) != GW_OK) {
            return err;
        }
        m->has_min = true;
        m->imin = ev.i;
        m->fmin = ev.f;
    }
    memset(&ev, 0, sizeof ev);
    if ((j = json_object_get(src, "max")) != NULL) {
        if ((err = ext_number(ld, m, j, where, "max", &ev)) != GW_OK) {
            return err;
        }
        m->has_max = true;
        m->imax = ev.i;
        m->fmax = ev.f;
    }
    if (m->has_min && m->has_max &&
        (m->kind == KIND_FLOAT ? m->fmin > m->fmax : m->imin > m->imax)) {
        return load_fail(ld, GW_ERR_INVALID, "%s: \"min\" is greater than \"max\"", where);
    }
    if (json_object_get(src, "max_length") != NULL && m->kind != KIND_STRING) {
        return load_fail(ld, GW_ERR_INVALID, "%s: \"max_length\" applies to strings only", where);
    }
    if ((err = ext_size(ld, src, "max_length", where, &m->max_length)) != GW_OK) {
        return err;
    }
    if (json_object_get(src, "max_items") != NULL && !m->list) {
        return load_fail(ld, GW_ERR_INVALID, "%s: \"max_items\" applies to lists only", where);
    }
    if ((err = ext_size(ld, src, "max_items", where, &m->max_items)) != GW_OK) {
        return err;
    }
    if ((j = json_object_get(src, "ascii")) != NULL) {
        if (!json_is_boolean(j) || m->kind != KIND_STRING) {
            return load_fail(ld, GW_ERR_INVALID, "%s: \"ascii\" must be true or false, on strings",
                             where);
        }
        m->ascii = json_is_true(j);
    }
    return GW_OK;
}

/* Maps a scalar type name (a "member" of a list, or of a scalar type) to its kind. */
static bool scalar_kind(const char *name, enum kind *k)
{
    static const struct {
        const char *name;
        enum kind kind;
    } scalars[] = {
        {"string", KIND_STRING}, {"datetime", KIND_STRING}, {"int64", KIND_INT64},
        {"uint64", KIND_UINT64}, {"float", KIND_FLOAT},     {"bool", KIND_BOOL},
    };
    for (size_t i = 0; i < sizeof scalars / sizeof scalars[0]; i++) {
        if (strcmp(name, scalars[i].name) == 0) {
            *k = scalars[i].kind;
            return true;
        }
    }
    return false;
}

static enum gw_err parse_member(struct loader *ld, struct version *v, const struct object *o,
                                size_t index, const json_t *src, struct member *m)
{
    char where[GW_APISPEC_MAX_NAME * 2 + 64];
    snprintf(where, sizeof where, "objects.%s.members[%zu]", o->name, index);
    if (!json_is_object(src)) {
        return load_fail(ld, GW_ERR_INVALID, "%s is not a JSON object", where);
    }
    const char *name = json_string_value(json_object_get(src, "name"));
    if (name == NULL || !is_name(name, false)) {
        return load_fail(ld, GW_ERR_INVALID,
                         "%s: \"name\" must be an identifier of 1 to %d letters, digits or _",
                         where, GW_APISPEC_MAX_NAME);
    }
    snprintf(where, sizeof where, "objects.%s.members[%zu] (%s)", o->name, index, name);
    const char *type = json_string_value(json_object_get(src, "type"));
    const char *elem = json_string_value(json_object_get(src, "member"));
    if (type == NULL || elem == NULL) {
        return load_fail(ld, GW_ERR_INVALID, "%s: \"type\" and \"member\" must be strings", where);
    }
    const json_t *req = json_object_get(src, "required");
    if (req != NULL && !json_is_boolean(req)) {
        return load_fail(ld, GW_ERR_INVALID, "%s: \"required\" must be true or false", where);
    }
    m->required = json_is_true(req);

    enum kind k = KIND_OBJECT;
    bool known;
    if (strcmp(type, "list") == 0) {
        m->list = true;
        known = scalar_kind(elem, &k) || (m->object = find_object(v, elem)) != NULL;
    } else if (strcmp(type, "object") == 0) {
        known = (m->object = find_object(v, elem)) != NULL;
    } else if (strcmp(type, "string") == 0) {
        known = scalar_kind(elem, &k) && k == KIND_STRING;
    } else if (strcmp(type, "int") == 0) {
        known = scalar_kind(elem, &k) && (k == KIND_INT64 || k == KIND_UINT64);
    } else if (strcmp(type, "float") == 0) {
        known = scalar_kind(elem, &k) && k == KIND_FLOAT;
    } else if (strcmp(type, "bool") == 0) {
        known = scalar_kind(elem, &k) && k == KIND_BOOL;
    } else {
        return load_fail(ld, GW_ERR_INVALID,
                         "%s: type \"%s\" is not one of string, int, float, bool, list, object",
                         where, type);
    }
    if (!known) {
        return load_fail(
            ld, GW_ERR_INVALID, "%s: member \"%s\" is not a known %s for type \"%s\"%s", where,
            elem, m->list || strcmp(type, "object") == 0 ? "object" : "kind", type,
            m->list ? " (nor a scalar: string, datetime, int64, uint64, float, bool)" : "");
    }
    m->kind = k;
    if ((m->name = arena_strdup(ld->spec, name)) == NULL ||
        (m->type_name = arena_strdup(ld->spec, elem)) == NULL) {
        return nomem(ld);
    }
    return parse_extensions(ld, m, src, where);
}

static enum gw_err parse_object(struct loader *ld, struct version *v, struct object *o)
{
    enum gw_err err;
    const json_t *src = o->src;
    if (!json_is_object(src)) {
        return load_fail(ld, GW_ERR_INVALID, "objects.%s is not a JSON object", o->name);
    }
    const json_t *type = json_object_get(src, "type");
    if (type != NULL && !(json_is_string(type) && strcmp(json_string_value(type), "object") == 0)) {
        return load_fail(ld, GW_ERR_INVALID, "objects.%s: \"type\" must be \"object\"", o->name);
    }
    const json_t *members = json_object_get(src, "members");
    if (!json_is_array(members)) {
        return load_fail(ld, GW_ERR_INVALID, "objects.%s: \"members\" must be a list", o->name);
    }
    size_t n = json_array_size(members);
    o->members = arena_array(ld->spec, n, sizeof o->members[0]);
    o->by_name = arena_array(ld->spec, n, sizeof o->by_name[0]);
    if (o->members == NULL || o->by_name == NULL) {
        return nomem(ld);
    }
    for (size_t i = 0; i < n; i++) {
        if ((err = parse_member(ld, v, o, i, json_array_get(members, i), &o->members[i])) !=
            GW_OK) {
            return err;
        }
        o->by_name[i] = &o->members[i];
    }
    o->n_members = n;
    qsort(o->by_name, n, sizeof o->by_name[0], cmp_member_ptr);
    for (size_t i = 1; i < n; i++) {
        if (strcmp(o->by_name[i - 1]->name, o->by_name[i]->name) == 0) {
            return load_fail(ld, GW_ERR_INVALID, "objects.%s: member %s is listed twice", o->name,
                             o->by_name[i]->name);
        }
    }
    return GW_OK;
}

/* Reads "require_one_of" or "exclusive": a list of groups of member names of the input. */
static enum gw_err parse_groups(struct loader *ld, const struct action *a, const json_t *src,
                                const char *key, size_t min_size, const struct group **out,
                                size_t *n_out)
{
    const json_t *j = json_object_get(src, key);
    if (j == NULL) {
        return GW_OK;
    }
    if (!json_is_array(j)) {
        return load_fail(ld, GW_ERR_INVALID, "actions.%s: \"%s\" must be a list of lists", a->name,
                         key);
    }
    size_t n = json_array_size(j);
    struct group *groups = arena_array(ld->spec, n, sizeof *groups);
    if (groups == NULL && n > 0) {
        return nomem(ld);
    }
    for (size_t g = 0; g < n; g++) {
        const json_t *names = json_array_get(j, g);
        size_t size = json_array_size(names);
        if (!json_is_array(names) || size < min_size) {
            return load_fail(ld, GW_ERR_INVALID,
                             "actions.%s: \"%s\"[%zu] must be a list of at least %zu member names",
                             a->name, key, g, min_size);
        }
        groups[g].members = arena_array(ld->spec, size, sizeof groups[g].members[0]);
        if (groups[g].members == NULL) {
            return nomem(ld);
        }
        for (size_t i = 0; i < size; i++) {
            const char *name = json_string_value(json_array_get(names, i));
            const struct member *m = name == NULL ? NULL : find_member(a->input, name);
            if (m == NULL) {
                return load_fail(ld, GW_ERR_INVALID,
                                 "actions.%s: \"%s\"[%zu][%zu] is not a member of %s", a->name, key,
                                 g, i, a->input->name);
            }
            for (size_t k = 0; k < i; k++) {
                if (groups[g].members[k] == m) {
                    return load_fail(ld, GW_ERR_INVALID, "actions.%s: \"%s\"[%zu] lists %s twice",
                                     a->name, key, g, m->name);
                }
            }
            groups[g].members[i] = m;
        }
        groups[g].n = size;
    }
    *out = groups;
    *n_out = n;
    return GW_OK;
}

static enum gw_err parse_action(struct loader *ld, struct version *v, struct action *a,
                                const json_t *src)
{
    enum gw_err err;
    if (!json_is_object(src)) {
        return load_fail(ld, GW_ERR_INVALID, "actions.%s is not a JSON object", a->name);
    }
    const char *input = json_string_value(json_object_get(src, "input"));
    if (input == NULL || (a->input = find_object(v, input)) == NULL) {
        return load_fail(ld, GW_ERR_INVALID,
                         "actions.%s: \"input\" must name an object of \"objects\"", a->name);
    }
    const json_t *output = json_object_get(src, "output");
    if (output != NULL &&
        (!json_is_string(output) || find_object(v, json_string_value(output)) == NULL)) {
        return load_fail(ld, GW_ERR_INVALID,
                         "actions.%s: \"output\" must name an object of \"objects\"", a->name);
    }
    if ((err = parse_groups(ld, a, src, "require_one_of", 1, &a->require_one_of,
                            &a->n_require_one_of)) != GW_OK) {
        return err;
    }
    return parse_groups(ld, a, src, "exclusive", 2, &a->exclusive, &a->n_exclusive);
}

/*
 * Computes o->height and refuses recursion: the check recurses along these same edges, so an
 * acyclic, shallow graph below every input bounds its stack. Objects reachable only from outputs
 * are never visited by the check, so they are not examined here.
 */
static enum gw_err object_height(struct loader *ld, struct object *o, unsigned level)
{
    enum gw_err err;
    if (o->mark == MARK_DONE) {
        if (level - 1 + o->height > GW_APISPEC_MAX_NESTING) {
            return load_fail(ld, GW_ERR_INVALID, "objects.%s is nested more than %d objects deep",
                             o->name, GW_APISPEC_MAX_NESTING);
        }
        return GW_OK;
    }
    if (o->mark == MARK_ACTIVE) {
        return load_fail(ld, GW_ERR_INVALID,
                         "objects.%s contains itself through its members; an input object must "
                         "not be recursive",
                         o->name);
    }
    if (level > GW_APISPEC_MAX_NESTING) {
        return load_fail(ld, GW_ERR_INVALID, "objects.%s is nested more than %d objects deep",
                         o->name, GW_APISPEC_MAX_NESTING);
    }
    o->mark = MARK_ACTIVE;
    unsigned below = 0;
    for (size_t i = 0; i < o->n_members; i++) {
        struct object *child = o->members[i].object;
        if (child == NULL) {
            continue;
        }
        if ((err = object_height(ld, child, level + 1)) != GW_OK) {
            return err;
        }
        if (child->height > below) {
            below = child->height;
        }
    }
    o->height = below + 1;
    o->mark = MARK_DONE;
    return GW_OK;
}

static enum gw_err get_ident(struct loader *ld, const json_t *meta, const char *key,
                             const char **out)
{
    const char *s = json_string_value(json_object_get(meta, key));
    if (s == NULL || !is_name(s, true)) {
        return load_fail(ld, GW_ERR_INVALID,
                         "metadata.%s must be 1 to %d letters, digits, '_', '.' or '-'", key,
                         GW_APISPEC_MAX_NAME);
    }
    if ((*out = arena_strdup(ld->spec, s)) == NULL) {
        return nomem(ld);
    }
    return GW_OK;
}

static enum gw_err parse_description(struct loader *ld, const json_t *root)
{
    enum gw_err err;
    struct gw_apispec *spec = ld->spec;
    struct version v;
    size_t i;
    void *it;

    memset(&v, 0, sizeof v);
    const json_t *meta = json_object_get(root, "metadata");
    const json_t *objects = json_object_get(root, "objects");
    const json_t *actions = json_object_get(root, "actions");
    if (!json_is_object(meta) || !json_is_object(objects) || !json_is_object(actions)) {
        return load_fail(ld, GW_ERR_INVALID,
                         "\"metadata\", \"objects\" and \"actions\" must be JSON objects");
    }
    if ((err = get_ident(ld, meta, "serviceShortName", &v.service)) != GW_OK ||
        (err = get_ident(ld, meta, "apiVersion", &v.version)) != GW_OK) {
        return err;
    }
    if ((v.file = arena_strdup(spec, ld->file)) == NULL) {
        return nomem(ld);
    }

    v.n_objects = json_object_size(objects);
    v.objects = arena_array(spec, v.n_objects, sizeof v.objects[0]);
    v.n_actions = json_object_size(actions);
    v.actions = arena_array(spec, v.n_actions, sizeof v.actions[0]);
    if (v.objects == NULL || v.actions == NULL) {
        return nomem(ld);
    }
    if (v.n_actions == 0) {
        return load_fail(ld, GW_ERR_INVALID, "\"actions\" is empty");
    }
    /* Jansson's iteration only reads; the casts are for its non-const API. */
    for (i = 0, it = json_object_iter((json_t *)objects); it != NULL;
         i++, it = json_object_iter_next((json_t *)objects, it)) {
        const char *key = json_object_iter_key(it);
        if (!is_name(key, false)) {
            return load_fail(ld, GW_ERR_INVALID,
                             "objects: a name is not an identifier of 1 to %d "
                             "letters, digits or _",
                             GW_APISPEC_MAX_NAME);
        }
        if ((v.objects[i].name = arena_strdup(spec, key)) == NULL) {
            return nomem(ld);
        }
        v.objects[i].src = json_object_iter_value(it);
    }
    qsort(v.objects, v.n_objects, sizeof v.objects[0], cmp_object);
    for (i = 0; i < v.n_objects; i++) {
        if ((err = parse_object(ld, &v, &v.objects[i])) != GW_OK) {
            return err;
        }
    }

    for (i = 0, it = json_object_iter((json_t *)actions); it != NULL;
         i++, it = json_object_iter_next((json_t *)actions, it)) {
        const char *key = json_object_iter_key(it);
        if (!is_name(key, false)) {
            return load_fail(ld, GW_ERR_INVALID,
                             "actions: a name is not an identifier of 1 to %d "
                             "letters, digits or _",
                             GW_APISPEC_MAX_NAME);
        }
        if ((v.actions[i].name = arena_strdup(spec, key)) == NULL) {
            return nomem(ld);
        }
        if ((err = parse_action(ld, &v, &v.actions[i], json_object_iter_value(it))) != GW_OK) {
            return err;
        }
    }
    qsort(v.actions, v.n_actions, sizeof v.actions[0], cmp_action);
    for (i = 0; i < v.n_actions; i++) {
        if ((err = object_height(ld, v.actions[i].input, 1)) != GW_OK) {
            return err;
        }
    }
    for (i = 0; i < v.n_objects; i++) {
        v.objects[i].src = NULL; /* the JSON tree is freed after loading */
    }

    if (spec->n_versions == spec->cap_versions) {
        size_t cap = spec->cap_versions ? spec->cap_versions * 2 : 8;
        struct version *p = realloc(spec->versions, cap * sizeof *p);
        if (p == NULL) {
            return nomem(ld);
        }
        spec->versions = p;
        spec->cap_versions = cap;
    }
    spec->versions[spec->n_versions++] = v;
    spec->n_actions += v.n_actions;
    return GW_OK;
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
        err = load_fail(ld, GW_ERR_TOO_LARGE, "more than %d descriptions", GW_APISPEC_MAX_FILES);
        goto out;
    }
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        err = load_fail(ld, GW_ERR_IO, "cannot open: %s", strerror(errno));
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
        err = load_fail(ld, err, "cannot read: %s",
                        err == GW_ERR_TOO_LARGE ? "larger than 32 MiB" : gw_err_str(err));
        goto out;
    }
    root = json_loadb(b.data != NULL ? b.data : "", b.len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        err = load_fail(ld, GW_ERR_INVALID, "line %d, column %d: not valid JSON: %s", jerr.line,
                        jerr.column, jerr.text);
        goto out;
    }
    if ((err = parse_description(ld, root)) != GW_OK) {
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
        err = load_fail(ld, GW_ERR_TOO_LARGE, "%s: directories nested more than %d levels deep",
                        dir, GW_APISPEC_MAX_DIR_DEPTH);
        goto out;
    }
    if ((d = opendir(dir)) == NULL) {
        err = load_fail(ld, GW_ERR_IO, "%s: cannot open directory: %s", dir, strerror(errno));
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
                err = nomem(ld);
                goto out;
            }
            names = p;
            cap = c;
        }
        if ((names[n] = strdup(e->d_name)) == NULL) {
            err = nomem(ld);
            goto out;
        }
        n++;
    }
    if (errno != 0) {
        err = load_fail(ld, GW_ERR_IO, "%s: cannot read directory: %s", dir, strerror(errno));
        goto out;
    }
    if (n > 0) {
        qsort(names, n, sizeof names[0], cmp_cstr);
    }
    for (size_t i = 0; i < n; i++) {
        int len = snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (len < 0 || (size_t)len >= sizeof path) {
            err = load_fail(ld, GW_ERR_TOO_LARGE, "%s: path too long", dir);
            goto out;
        }
        struct stat st;
        if (stat(path, &st) != 0) {
            err = load_fail(ld, GW_ERR_IO, "%s: %s", path, strerror(errno));
            goto out;
        }
        if (S_ISDIR(st.st_mode)) {
            /* A symbolic link back to a directory being walked would loop until the depth limit. */
            for (unsigned k = 0; k <= depth; k++) {
                if (ld->dirs[k].dev == st.st_dev && ld->dirs[k].ino == st.st_ino) {
                    err = load_fail(ld, GW_ERR_INVALID, "%s: directory loop", path);
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
        err = nomem(&ld);
        goto out;
    }
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        err = load_fail(&ld, GW_ERR_IO, "%s: not a directory", dir);
        goto out;
    }
    ld.dirs[0].dev = st.st_dev;
    ld.dirs[0].ino = st.st_ino;
    if ((err = walk(&ld, dir, 0)) != GW_OK) {
        goto out;
    }
    if (ld.spec->n_versions == 0) {
        err =
            load_fail(&ld, GW_ERR_INVALID, "%s: no API description (api.json or *.api.json)", dir);
        goto out;
    }
    qsort(ld.spec->versions, ld.spec->n_versions, sizeof ld.spec->versions[0], cmp_version);
    for (size_t i = 1; i < ld.spec->n_versions; i++) {
        const struct version *a = &ld.spec->versions[i - 1], *b = &ld.spec->versions[i];
        if (cmp_version(a, b) == 0) {
            err = load_fail(&ld, GW_ERR_INVALID, "%s and %s both describe %s version %s", a->file,
                            b->file, a->service, a->version);
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

void gw_apispec_free(struct gw_apispec *spec)
{
    if (spec == NULL) {
        return;
    }
    struct arena_block *b = spec->arena;
    while (b != NULL) {
        struct arena_block *next = b->next;
        free(b);
        b = next;
    }
    free(spec->versions);
    free(spec);
}

size_t gw_apispec_action_count(const struct gw_apispec *spec)
{
    return spec == NULL ? 0 : spec->n_actions;
}

/* ---------------------------------------------------------------------------------------------
 * Checking. Nothing here allocates: the path and the message live on the stack and in verdict.
 */

struct check {
    const struct action *action;
    struct gw_apispec_verdict *verdict;
    size_t len; /* of path */
    char path[PATH_BUF];
};

static bool refuse(struct check *c, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool refuse(struct check *c, const char *code, const char *fmt, ...)
{
    struct gw_apispec_verdict *v = c->verdict;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(v->message, sizeof v->message, fmt, ap);
    va_end(ap);
    if (n < 0) {
        snprintf(v->message, sizeof v->message, "The parameters are not valid.");
    } else if ((size_t)n >= sizeof v->message) {
        mark_cut(v->message, sizeof v->message);
    }
    v->code = code;
    return false;
}

/* Appends ".name" (or "name" first) to the path; returns the length to restore with path_pop. */
static size_t path_push(struct check *c, const char *name)
{
    size_t old = c->len;
    int n = snprintf(c->path + old, sizeof c->path - old, "%s%s", old ? "." : "", name);
    if (n > 0 && (size_t)n < sizeof c->path - old) {
        c->len += (size_t)n;
    } else {
        c->path[old] = '\0'; /* cannot happen: load bounds names and nesting */
    }
    return old;
}

static size_t path_push_index(struct check *c, size_t i)
{
    char index[24];
    snprintf(index, sizeof index, "%zu", i);
    return path_push(c, index);
}

static void path_pop(struct check *c, size_t old)
{
    c->len = old;
    c->path[old] = '\0';
}

/* "string "abc"", "number 2.5", "null", "an object"...: what the caller sent, for messages. */
static const char *received(char out[RECEIVED_BUF], const json_t *j)
{
    char echo[ECHO_BUF];
    switch (json_typeof(j)) {
    case JSON_STRING:
        snprintf(out, RECEIVED_BUF, "string \"%s\"",
                 clip(echo, json_string_value(j), json_string_length(j)));
        break;
    case JSON_INTEGER:
        snprintf(out, RECEIVED_BUF, "number %" JSON_INTEGER_FORMAT, json_integer_value(j));
        break;
    case JSON_REAL:
        snprintf(out, RECEIVED_BUF, "number %.15g", json_real_value(j));
        break;
    case JSON_TRUE:
        snprintf(out, RECEIVED_BUF, "true");
        break;
    case JSON_FALSE:
        snprintf(out, RECEIVED_BUF, "false");
        break;
    case JSON_NULL:
        snprintf(out, RECEIVED_BUF, "null");
        break;
    case JSON_OBJECT:
        snprintf(out, RECEIVED_BUF, "an object");
        break;
    case JSON_ARRAY:
        snprintf(out, RECEIVED_BUF, "a list");
        break;
    default:
        snprintf(out, RECEIVED_BUF, "an unknown value");
        break;
    }
    return out;
}

static const char *kind_text(enum kind k)
{
    switch (k) {
    case KIND_STRING:
        return "a string";
    case KIND_INT64:
        return "an integer (int64: a JSON integer or a string of decimal digits)";
    case KIND_UINT64:
        return "an integer (uint64: a JSON integer or a string of decimal digits)";
    case KIND_FLOAT:
        return "a number (float: a JSON number or a decimal string)";
    case KIND_BOOL:
        return "a boolean (true or false)";
    case KIND_OBJECT:
        return "an object";
    default:
        return "a value";
    }
}

/* What a value of m (or, with item set, an item of list m) must be, for messages. */
static const char *expected(char buf[EXPECTED_BUF], const struct member *m, bool item)
{
    if (m->list && !item) {
        snprintf(buf, EXPECTED_BUF, "a list of %s %s", m->type_name,
                 m->kind == KIND_OBJECT ? "objects" : "values");
    } else if (m->kind == KIND_OBJECT) {
        snprintf(buf, EXPECTED_BUF, "an object (%s)", m->type_name);
    } else {
        snprintf(buf, EXPECTED_BUF, "%s", kind_text(m->kind));
    }
    return buf;
}

static bool wrong_type(struct check *c, const struct member *m, const json_t *j, bool item)
{
    char want[EXPECTED_BUF], got[RECEIVED_BUF];
    return refuse(c, "InvalidParameter", "Parameter \"%s\" must be %s, got %s.", c->path,
                  expected(want, m, item), received(got, j));
}

/* Lists the enum values of m for a message. */
static const char *enum_text(char buf[LIST_BUF], const struct member *m)
{
    char item[ECHO_BUF + 32];
    size_t len = 0;
    bool full = false;
    buf[0] = '\0';
    for (size_t i = 0; i < m->n_enums; i++) {
        const struct enum_value *e = &m->enums[i];
        switch (m->kind) {
        case KIND_STRING: {
            char echo[ECHO_BUF];
            snprintf(item, sizeof item, "\"%s\"", clip(echo, e->s, e->len));
            break;
        }
        case KIND_INT64:
        case KIND_UINT64:
            snprintf(item, sizeof item, "%" PRId64, e->i);
            break;
        case KIND_FLOAT:
            snprintf(item, sizeof item, "%.15g", e->f);
            break;
        case KIND_BOOL:
        case KIND_OBJECT:
        default:
            snprintf(item, sizeof item, "?");
            break;
        }
        list_add(buf, &len, &full, item);
    }
    return buf;
}

static bool not_in_enum(struct check *c, const struct member *m, const json_t *j)
{
    char list[LIST_BUF], got[RECEIVED_BUF];
    return refuse(c, "InvalidParameterValue", "Parameter \"%s\" must be one of %s; got %s.",
                  c->path, enum_text(list, m), received(got, j));
}

static bool check_string(struct check *c, const struct member *m, const json_t *j)
{
    if (!json_is_string(j)) {
        return wrong_type(c, m, j, true);
    }
    const char *s = json_string_value(j);
    size_t n = json_string_length(j);
    if (n > m->max_length) {
        return refuse(c, "InvalidParameterValue",
                      "Parameter \"%s\" must be at most %zu bytes long, got %zu bytes.", c->path,
                      m->max_length, n);
    }
    if (m->ascii) {
        for (size_t i = 0; i < n; i++) {
            unsigned char u = (unsigned char)s[i];
            if (u < 0x20 || u > 0x7e) {
                char got[RECEIVED_BUF];
                return refuse(c, "InvalidParameterValue",
                              "Parameter \"%s\" must contain only printable ASCII characters; "
                              "byte %zu of %s is not one.",
                              c->path, i, received(got, j));
            }
        }
    }
    if (m->n_enums > 0) {
        for (size_t i = 0; i < m->n_enums; i++) {
            if (m->enums[i].len == n && memcmp(m->enums[i].s, s, n) == 0) {
                return true;
            }
        }
        return not_in_enum(c, m, j);
    }
    return true;
}

/* An integer of either kind: magnitude and sign, so that all of int64 and uint64 fit. */
struct intval {
    bool neg;
    bool overflow; /* more than 64 bits of magnitude */
    uint64_t mag;
};

/* Parses "-?[0-9]+" exactly (n bytes); false when s is not such a string. */
static bool parse_decimal(const char *s, size_t n, struct intval *x)
{
    size_t i = 0;
    x->neg = false;
    x->overflow = false;
    x->mag = 0;
    if (n > 0 && s[0] == '-') {
        x->neg = true;
        i = 1;
    }
    if (i == n) {
        return false;
    }
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
        uint64_t d = (uint64_t)(s[i] - '0');
        if (x->mag > (UINT64_MAX - d) / 10) {
            x->overflow = true;
        } else {
            x->mag = x->mag * 10 + d;
        }
    }
    if (x->mag == 0 && !x->overflow) {
        x->neg = false; /* "-0" is zero */
    }
    return true;
}

static uint64_t magnitude(int64_t v)
{
    return v < 0 ? (uint64_t)(-(v + 1)) + 1 : (uint64_t)v;
}

/* Compares x with b: negative, zero or positive as x <, = or > b. */
static int intval_cmp(const struct intval *x, int64_t b)
{
    uint64_t bm = magnitude(b);
    if (x->neg != (b < 0)) {
        return x->neg ? -1 : 1;
    }
    if (x->mag == bm) {
        return 0;
    }
    return (x->mag < bm) != x->neg ? -1 : 1;
}

static bool check_int(struct check *c, const struct member *m, const json_t *j)
{
    struct intval x;
    char got[RECEIVED_BUF];

    if (json_is_integer(j)) {
        json_int_t i = json_integer_value(j);
        x.neg = i < 0;
        x.overflow = false;
        x.mag = magnitude(i);
    } else if (!json_is_string(j) ||
               !parse_decimal(json_string_value(j), json_string_length(j), &x)) {
        return wrong_type(c, m, j, true);
    }
    bool in_range;
    if (m->kind == KIND_UINT64) {
        in_range = !x.overflow && !x.neg;
    } else {
        in_range = !x.overflow && x.mag <= (x.neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX);
    }
    if (!in_range) {
        return refuse(c, "InvalidParameterValue",
                      "Parameter \"%s\" must be an integer from %s, got %s.", c->path,
                      m->kind == KIND_UINT64
                          ? "0 to 18446744073709551615 (uint64)"
                          : "-9223372036854775808 to 9223372036854775807 (int64)",
                      received(got, j));
    }
    if (m->n_enums > 0) {
        for (size_t i = 0; i < m->n_enums; i++) {
            if (intval_cmp(&x, m->enums[i].i) == 0) {
                return true;
            }
        }
        return not_in_enum(c, m, j);
    }
    if (m->has_min && intval_cmp(&x, m->imin) < 0) {
        return refuse(c, "InvalidParameterValue",
                      "Parameter \"%s\" must be at least %" PRId64 ", got %s.", c->path, m->imin,
                      received(got, j));
    }
    if (m->has_max && intval_cmp(&x, m->imax) > 0) {
        return refuse(c, "InvalidParameterValue",
                      "Parameter \"%s\" must be at most %" PRId64 ", got %s.", c->path, m->imax,
                      received(got, j));
    }
    return true;
}

/* Accepts "-?[0-9]+(.[0-9]+)?([eE][+-]?[0-9]+)?" exactly (n bytes): no spaces, hex, inf or nan. */
static bool is_decimal_number(const char *s, size_t n)
{
    size_t i = 0, start;
    if (i < n && s[i] == '-') {
        i++;
    }
    for (start = i; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
    }
    if (i == start) {
        return false;
    }
    if (i < n && s[i] == '.') {
        for (start = ++i; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
        }
        if (i == start) {
            return false;
        }
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) {
            i++;
        }
        for (start = i; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
        }
        if (i == start) {
            return false;
        }
    }
    return i == n;
}

static bool check_float(struct check *c, const struct member *m, const json_t *j)
{
    double d;
    char got[RECEIVED_BUF];

    if (json_is_number(j)) {
        d = json_number_value(j);
    } else if (json_is_string(j) &&
               is_decimal_number(json_string_value(j), json_string_length(j))) {
        /* The grammar above is locale-independent; the gateway never calls setlocale. */
        d = strtod(json_string_value(j), NULL);
    } else {
        return wrong_type(c, m, j, true);
    }
    if (!isfinite(d)) {
        return refuse(c, "InvalidParameterValue",
                      "Parameter \"%s\" is out of the range of a float, got %s.", c->path,
                      received(got, j));
    }
    if (m->n_enums > 0) {
        for (size_t i = 0; i < m->n_enums; i++) {
            if (m->enums[i].f == d) {
                return true;
            }
        }
        return not_in_enum(c, m, j);
    }
    if (m->has_min && d < m->fmin) {
        return refuse(c, "InvalidParameterValue",
                      "Parameter \"%s\" must be at least %.15g, got %s.", c->path, m->fmin,
                      received(got, j));
    }
    if (m->has_max && d > m->fmax) {
        return refuse(c, "InvalidParameterValue", "Parameter \"%s\" must be at most %.15g, got %s.",
                      c->path, m->fmax, received(got, j));
    }
    return true;
}

static bool check_object(struct check *c, const struct object *o, const json_t *j, bool top);

/* Checks the value of m (or, with item set, one item of list m) at the current path. */
static bool check_value(struct check *c, const struct member *m, const json_t *j, bool item)
{
    if (m->list && !item) {
        if (!json_is_array(j)) {
            return wrong_type(c, m, j, false);
        }
        size_t n = json_array_size(j);
        if (n > m->max_items) {
            return refuse(c, "InvalidParameterValue",
                          "Parameter \"%s\" must have at most %zu items, got %zu.", c->path,
                          m->max_items, n);
        }
        for (size_t i = 0; i < n; i++) {
            size_t old = path_push_index(c, i);
            bool ok = check_value(c, m, json_array_get(j, i), true);
            path_pop(c, old);
            if (!ok) {
                return false;
            }
        }
        return true;
    }
    switch (m->kind) {
    case KIND_STRING:
        return check_string(c, m, j);
    case KIND_INT64:
    case KIND_UINT64:
        return check_int(c, m, j);
    case KIND_FLOAT:
        return check_float(c, m, j);
    case KIND_BOOL:
        return json_is_boolean(j) ? true : wrong_type(c, m, j, true);
    case KIND_OBJECT:
        return json_is_object(j) ? check_object(c, m->object, j, false) : wrong_type(c, m, j, true);
    default:
        return refuse(c, "InternalError", "The gateway's description of \"%s\" is broken.",
                      c->path);
    }
}

static bool unknown_key(struct check *c, const struct object *o, const char *key, bool top)
{
    char echo[ECHO_BUF];
    const char *suggest = NULL;
    for (size_t i = 0; i < o->n_members && suggest == NULL; i++) {
        if (strcasecmp(o->members[i].name, key) == 0) {
            suggest = o->members[i].name;
        }
    }
    return refuse(c, "UnknownParameter", "Unknown parameter \"%s%s%s\": %s %s%s%s%s", c->path,
                  c->len ? "." : "", clip(echo, key, strlen(key)), top ? c->action->name : o->name,
                  top ? "does not take it" : "has no such member",
                  suggest ? "; did you mean \"" : " (names are case-sensitive).",
                  suggest ? suggest : "", suggest ? "\"?" : "");
}

static bool check_object(struct check *c, const struct object *o, const json_t *j, bool top)
{
    /* Jansson's iteration only reads the object; the casts are for its non-const API. */
    for (void *it = json_object_iter((json_t *)j); it != NULL;
         it = json_object_iter_next((json_t *)j, it)) {
        const char *key = json_object_iter_key(it);
        if (find_member(o, key) == NULL) {
            return unknown_key(c, o, key, top);
        }
    }
    for (size_t i = 0; i < o->n_members; i++) {
        const struct member *m = &o->members[i];
        const json_t *v = json_object_get(j, m->name);
        if (v == NULL) {
            continue;
        }
        size_t old = path_push(c, m->name);
        bool ok = check_value(c, m, v, false);
        path_pop(c, old);
        if (!ok) {
            return false;
        }
    }
    for (size_t i = 0; i < o->n_members; i++) {
        const struct member *m = &o->members[i];
        if (m->required && json_object_get(j, m->name) == NULL) {
            char want[EXPECTED_BUF];
            size_t old = path_push(c, m->name);
            refuse(c, "MissingParameter", "Missing required parameter \"%s\": %s.", c->path,
                   expected(want, m, false));
            path_pop(c, old);
            return false;
        }
    }
    return true;
}

static const char *group_text(char buf[LIST_BUF], const struct group *g)
{
    size_t len = 0;
    bool full = false;
    buf[0] = '\0';
    for (size_t i = 0; i < g->n; i++) {
        list_add(buf, &len, &full, g->members[i]->name);
    }
    return buf;
}

static bool check_groups(struct check *c, const json_t *params)
{
    const struct action *a = c->action;
    char list[LIST_BUF];

    for (size_t g = 0; g < a->n_require_one_of; g++) {
        const struct group *grp = &a->require_one_of[g];
        size_t i = 0;
        while (i < grp->n && json_object_get(params, grp->members[i]->name) == NULL) {
            i++;
        }
        if (i == grp->n) {
            return refuse(c, "MissingParameter", "%s needs at least one of these parameters: %s.",
                          a->name, group_text(list, grp));
        }
    }
    for (size_t g = 0; g < a->n_exclusive; g++) {
        const struct group *grp = &a->exclusive[g];
        const char *first = NULL;
        for (size_t i = 0; i < grp->n; i++) {
            const char *name = grp->members[i]->name;
            if (json_object_get(params, name) == NULL) {
                continue;
            }
            if (first != NULL) {
                return refuse(c, "InvalidParameterValue",
                              "Parameters \"%s\" and \"%s\" cannot be used together in %s; set "
                              "only one of %s.",
                              first, name, a->name, group_text(list, grp));
            }
            first = name;
        }
    }
    return true;
}

static const struct version *find_version(const struct gw_apispec *spec, const char *service,
                                          const char *version)
{
    struct version key;
    memset(&key, 0, sizeof key);
    key.service = service;
    key.version = version;
    return bsearch(&key, spec->versions, spec->n_versions, sizeof spec->versions[0], cmp_version);
}

bool gw_apispec_check(const struct gw_apispec *spec, const char *service, const char *version,
                      const char *action, const json_t *params, struct gw_apispec_verdict *verdict)
{
    struct gw_apispec_verdict scratch;
    struct check c;
    char e1[ECHO_BUF], e2[ECHO_BUF], list[LIST_BUF], got[RECEIVED_BUF];

    c.verdict = verdict != NULL ? verdict : &scratch;
    c.action = NULL;
    c.len = 0;
    c.path[0] = '\0';
    c.verdict->code = NULL;
    c.verdict->message[0] = '\0';
    service = service != NULL ? service : "";
    version = version != NULL ? version : "";
    action = action != NULL ? action : "";

    const struct version *v = spec != NULL ? find_version(spec, service, version) : NULL;
    if (v == NULL) {
        size_t len = 0;
        bool full = false;
        list[0] = '\0';
        for (size_t i = 0; spec != NULL && i < spec->n_versions; i++) {
            if (strcmp(spec->versions[i].service, service) == 0) {
                list_add(list, &len, &full, spec->versions[i].version);
            }
        }
        if (len == 0) {
            return refuse(&c, "NoSuchProduct",
                          "This gateway does not forward calls to service \"%s\": it has no API "
                          "description for it.",
                          clip(e1, service, strlen(service)));
        }
        return refuse(&c, "NoSuchVersion",
                      "Service \"%s\" has no API version \"%s\" here; use one of: %s.",
                      clip(e1, service, strlen(service)), clip(e2, version, strlen(version)), list);
    }
    c.action = bsearch(action, v->actions, v->n_actions, sizeof v->actions[0], cmp_action_key);
    if (c.action == NULL) {
        return refuse(&c, "InvalidAction",
                      "Action \"%s\" is not available for %s version %s through this gateway; "
                      "check its name (case-sensitive).",
                      clip(e1, action, strlen(action)), v->service, v->version);
    }
    if (!json_is_object(params)) {
        return refuse(&c, "InvalidParameter", "The parameters of %s must be a JSON object, got %s.",
                      c.action->name, params == NULL ? "nothing" : received(got, params));
    }
    if (!check_object(&c, c.action->input, params, true) || !check_groups(&c, params)) {
        return false;
    }
    return true;
}
