/*
 * One member of an object: its "type" and "member" (the kind of its value), "required", and the
 * extension keys that tcgw adds to the format (enum, min, max, max_length, max_items, ascii).
 *
 * The kinds of Tencent's descriptions. Every api.json of the Tencent Cloud CLI
 * (TencentCloud/tencentcloud-cli, tccli/services/<service>/<version>/api.json: 296 files at
 * release 3.1.155.1, and samples of its history back to 2018) uses only these:
 *   "type"     string, int, float, bool, binary, list, object
 *   "member"   with type string:  string, date, datetime, datetime_iso
 *              with type int:     int64, uint64
 *              with type float, bool, binary: float, bool, binary
 *              with type object:  the name of an object
 *              with type list:    the name of an object, or a scalar kind (string, int64, uint64,
 *                                 float and bool occur; the CLI's loader, tccli/loaders.py
 *                                 BASE_TYPE, takes all nine kinds above)
 * ("Timestamp" is only the CLI's display name for date, datetime and datetime_iso.)
 *
 * What the check makes of them: date, datetime and datetime_iso are formats that tcgw does not
 * model, and binary can only travel as a string in a JSON body, so all four are checked as
 * strings (any string passes; Tencent checks the format). A kind that is in none of these lists
 * (say a future "int32" or "timestamp") is checked as its "type" says: any string, any integer
 * of 64 bits (signed or not), any number, or a boolean. A member whose kind cannot be told even
 * so (an unknown "type", a list of an unknown kind, a missing object, a contradiction such as
 * type string with member int64) loads too, because outputs are never checked; the load fails
 * only when an action's input reaches it (apispec_member_problem).
 */
#include <stdio.h>
#include <string.h>

#include "apispec/apispec_internal.h"

/* Tencent's scalar kinds ("member"), and the "type" each belongs to. */
static const struct scalar {
    const char *name;
    const char *type;
    enum kind kind;
} scalars[] = {
    {"string", "string", KIND_STRING},   {"date", "string", KIND_STRING},
    {"datetime", "string", KIND_STRING}, {"datetime_iso", "string", KIND_STRING},
    {"binary", "binary", KIND_STRING},   {"int64", "int", KIND_INT64},
    {"uint64", "int", KIND_UINT64},      {"float", "float", KIND_FLOAT},
    {"bool", "bool", KIND_BOOL},
};

/* Tencent's scalar types, and how a value is checked when its kind is not one of the above. */
static const struct scalar_type {
    const char *name;
    enum kind unmodelled;
} scalar_types[] = {
    {"string", KIND_STRING}, {"binary", KIND_STRING}, {"int", KIND_INTEGER},
    {"float", KIND_FLOAT},   {"bool", KIND_BOOL},
};

static const struct scalar *find_scalar(const char *name)
{
    for (size_t i = 0; i < sizeof scalars / sizeof scalars[0]; i++) {
        if (strcmp(name, scalars[i].name) == 0) {
            return &scalars[i];
        }
    }
    return NULL;
}

static const struct scalar_type *find_scalar_type(const char *name)
{
    for (size_t i = 0; i < sizeof scalar_types / sizeof scalar_types[0]; i++) {
        if (strcmp(name, scalar_types[i].name) == 0) {
            return &scalar_types[i];
        }
    }
    return NULL;
}

static bool is_integer_kind(enum kind k)
{
    return k == KIND_INT64 || k == KIND_UINT64 || k == KIND_INTEGER;
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
        return apispec_load_fail(ld, GW_ERR_INVALID, "%s: \"%s\" must be a non-negative integer",
                                 where, key);
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
    case KIND_INTEGER:
        if (!json_is_integer(j)) {
            break;
        }
        ev->i = json_integer_value(j);
        if (m->kind == KIND_UINT64 && ev->i < 0) {
            return apispec_load_fail(ld, GW_ERR_INVALID,
                                     "%s: \"%s\" has a negative value for a uint64", where, key);
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
    case KIND_NONE:
    default:
        return apispec_load_fail(ld, GW_ERR_INVALID, "%s: \"%s\" does not apply to a %s member",
                                 where, key, m->type_name);
    }
    return apispec_load_fail(ld, GW_ERR_INVALID, "%s: \"%s\" must hold %s", where, key,
                             m->kind == KIND_STRING  ? "strings"
                             : m->kind == KIND_FLOAT ? "numbers"
                                                     : "integers");
}

/* Reads "min" or "max" into *has and *ev. */
static enum gw_err ext_bound(struct loader *ld, const struct member *m, const json_t *src,
                             const char *where, const char *key, bool *has, struct enum_value *ev)
{
    enum gw_err err;
    const json_t *j = json_object_get(src, key);
    memset(ev, 0, sizeof *ev);
    if (j == NULL) {
        return GW_OK;
    }
    if ((err = ext_number(ld, m, j, where, key, ev)) != GW_OK) {
        return err;
    }
    *has = true;
    return GW_OK;
}

static enum gw_err ext_enum(struct loader *ld, struct member *m, const json_t *j, const char *where)
{
    enum gw_err err;
    struct enum_value ev;
    if (!json_is_array(j) || json_array_size(j) == 0) {
        return apispec_load_fail(ld, GW_ERR_INVALID, "%s: \"enum\" must be a non-empty list",
                                 where);
    }
    struct enum_value *e = apispec_alloc_array(ld->spec, json_array_size(j), sizeof *e);
    if (e == NULL) {
        return apispec_nomem(ld);
    }
    for (size_t i = 0; i < json_array_size(j); i++) {
        memset(&ev, 0, sizeof ev);
        if ((err = ext_number(ld, m, json_array_get(j, i), where, "enum", &ev)) != GW_OK) {
            return err;
        }
        if (ev.s != NULL && (ev.s = apispec_memdup(ld->spec, ev.s, ev.len)) == NULL) {
            return apispec_nomem(ld);
        }
        e[i] = ev;
    }
    m->enums = e;
    m->n_enums = json_array_size(j);
    return GW_OK;
}

/* The tcgw extension keys of one member: enum, min, max, max_length, max_items, ascii. */
static enum gw_err parse_extensions(struct loader *ld, struct member *m, const json_t *src,
                                    const char *where)
{
    enum gw_err err;
    const json_t *j;
    struct enum_value lo, hi;

    m->max_length = SIZE_MAX;
    m->max_items = SIZE_MAX;
    if ((j = json_object_get(src, "enum")) != NULL && (err = ext_enum(ld, m, j, where)) != GW_OK) {
        return err;
    }
    bool numeric = is_integer_kind(m->kind) || m->kind == KIND_FLOAT;
    if ((json_object_get(src, "min") != NULL || json_object_get(src, "max") != NULL) && !numeric) {
        return apispec_load_fail(ld, GW_ERR_INVALID,
                                 "%s: \"min\" and \"max\" apply to int and float only", where);
    }
    if ((err = ext_bound(ld, m, src, where, "min", &m->has_min, &lo)) != GW_OK ||
        (err = ext_bound(ld, m, src, where, "max", &m->has_max, &hi)) != GW_OK) {
        return err;
    }
    m->imin = lo.i;
    m->fmin = lo.f;
    m->imax = hi.i;
    m->fmax = hi.f;
    if (m->has_min && m->has_max &&
        (m->kind == KIND_FLOAT ? m->fmin > m->fmax : m->imin > m->imax)) {
        return apispec_load_fail(ld, GW_ERR_INVALID, "%s: \"min\" is greater than \"max\"", where);
    }
    if (json_object_get(src, "max_length") != NULL && m->kind != KIND_STRING) {
        return apispec_load_fail(ld, GW_ERR_INVALID, "%s: \"max_length\" applies to strings only",
                                 where);
    }
    if ((err = ext_size(ld, src, "max_length", where, &m->max_length)) != GW_OK) {
        return err;
    }
    if (json_object_get(src, "max_items") != NULL && !m->list) {
        return apispec_load_fail(ld, GW_ERR_INVALID, "%s: \"max_items\" applies to lists only",
                                 where);
    }
    if ((err = ext_size(ld, src, "max_items", where, &m->max_items)) != GW_OK) {
        return err;
    }
    if ((j = json_object_get(src, "ascii")) != NULL) {
        if (!json_is_boolean(j) || m->kind != KIND_STRING) {
            return apispec_load_fail(ld, GW_ERR_INVALID,
                                     "%s: \"ascii\" must be true or false, on strings", where);
        }
        m->ascii = json_is_true(j);
    }
    return GW_OK;
}

/* Sets m->kind, m->list and m->object from type and elem, or m->problem when it cannot. */
static void resolve_kind(struct version *v, const char *type, const char *elem, struct member *m)
{
    const struct scalar *sc = find_scalar(elem);
    const struct scalar_type *st;

    m->kind = KIND_NONE;
    m->problem = PROBLEM_NONE;
    if (strcmp(type, "list") == 0 || strcmp(type, "object") == 0) {
        m->list = strcmp(type, "list") == 0;
        if (m->list && sc != NULL) {
            m->kind = sc->kind;
        } else if ((m->object = apispec_find_object(v, elem)) != NULL) {
            m->kind = KIND_OBJECT;
        } else {
            m->problem = PROBLEM_OBJECT;
        }
    } else if ((st = find_scalar_type(type)) != NULL) {
        if (sc != NULL && strcmp(sc->type, type) == 0) {
            m->kind = sc->kind;
        } else if (sc != NULL || apispec_find_object(v, elem) != NULL) {
            m->problem = PROBLEM_KIND;
        } else {
            /* A kind tcgw does not model: the value is checked as its type says (see above). */
            m->kind = st->unmodelled;
        }
    } else {
        m->problem = PROBLEM_TYPE;
    }
}

enum gw_err apispec_parse_member(struct loader *ld, struct version *v, const struct object *o,
                                 size_t index, const json_t *src, struct member *m)
{
    char where[GW_APISPEC_MAX_NAME * 2 + 64];
    snprintf(where, sizeof where, "objects.%s.members[%zu]", o->name, index);
    if (!json_is_object(src)) {
        return apispec_load_fail(ld, GW_ERR_INVALID, "%s is not a JSON object", where);
    }
    const char *name = json_string_value(json_object_get(src, "name"));
    if (name == NULL || !apispec_is_name(name, false)) {
        return apispec_load_fail(
            ld, GW_ERR_INVALID,
            "%s: \"name\" must be an identifier of 1 to %d letters, digits or _", where,
            GW_APISPEC_MAX_NAME);
    }
    snprintf(where, sizeof where, "objects.%s.members[%zu] (%s)", o->name, index, name);
    const char *type = json_string_value(json_object_get(src, "type"));
    const char *elem = json_string_value(json_object_get(src, "member"));
    if (type == NULL || elem == NULL) {
        return apispec_load_fail(ld, GW_ERR_INVALID, "%s: \"type\" and \"member\" must be strings",
                                 where);
    }
    const json_t *req = json_object_get(src, "required");
    if (req != NULL && !json_is_boolean(req)) {
        return apispec_load_fail(ld, GW_ERR_INVALID, "%s: \"required\" must be true or false",
                                 where);
    }
    m->required = json_is_true(req);
    resolve_kind(v, type, elem, m);
    if ((m->name = apispec_strdup(ld->spec, name)) == NULL ||
        (m->type_name = apispec_strdup(ld->spec, elem)) == NULL ||
        (m->problem != PROBLEM_NONE && (m->type = apispec_strdup(ld->spec, type)) == NULL)) {
        return apispec_nomem(ld);
    }
    if (m->problem != PROBLEM_NONE) {
        /* Extension keys need a kind; such a member is never checked, or the load fails. */
        m->max_length = SIZE_MAX;
        m->max_items = SIZE_MAX;
        return GW_OK;
    }
    return parse_extensions(ld, m, src, where);
}

enum gw_err apispec_member_problem(struct loader *ld, const struct object *o, size_t index,
                                   const struct member *m)
{
    char where[GW_APISPEC_MAX_NAME * 2 + 64];
    snprintf(where, sizeof where, "objects.%s.members[%zu] (%s)", o->name, index, m->name);
    switch (m->problem) {
    case PROBLEM_NONE:
        return GW_OK;
    case PROBLEM_TYPE:
        return apispec_load_fail(ld, GW_ERR_INVALID,
                                 "%s: type \"%s\" is not one of string, int, float, bool, binary, "
                                 "list, object (an input reaches it)",
                                 where, m->type);
    case PROBLEM_KIND:
        return apispec_load_fail(ld, GW_ERR_INVALID,
                                 "%s: member \"%s\" is not a known kind for type \"%s\" (an input "
                                 "reaches it)",
                                 where, m->type_name, m->type);
    case PROBLEM_OBJECT:
    default:
        return apispec_load_fail(ld, GW_ERR_INVALID,
                                 "%s: member \"%s\" is not a known object for type \"%s\"%s (an "
                                 "input reaches it)",
                                 where, m->type_name, m->type,
                                 strcmp(m->type, "list") == 0 ? " nor a scalar kind" : "");
    }
}
