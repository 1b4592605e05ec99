/*
 * gw_apispec_check: one call's parameters against the description of its action. Nothing here
 * allocates: the path and the message live on the stack and in the caller's verdict.
 */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "apispec/apispec_internal.h"

/*
 * The functions that hold message buffers are kept out of line, so that the ones that recurse
 * (check_value, check_nested, check_object) have small frames: each level of a call's nesting
 * costs their frames only (see GW_APISPEC_MAX_DEPTH).
 */
#define LEAF __attribute__((noinline))

static LEAF bool check_string(struct check *c, const struct member *m, const json_t *j)
{
    if (!json_is_string(j)) {
        return apispec_wrong_type(c, m, j, true);
    }
    const char *s = json_string_value(j);
    size_t n = json_string_length(j);
    if (n > m->max_length) {
        return apispec_refuse(c, "InvalidParameterValue",
                              "Parameter \"%s\" must be at most %zu bytes long, got %zu bytes.",
                              c->path, m->max_length, n);
    }
    if (m->ascii) {
        for (size_t i = 0; i < n; i++) {
            unsigned char u = (unsigned char)s[i];
            if (u < 0x20 || u > 0x7e) {
                char got[RECEIVED_BUF];
                return apispec_refuse(c, "InvalidParameterValue",
                                      "Parameter \"%s\" must contain only printable ASCII "
                                      "characters; byte %zu of %s is not one.",
                                      c->path, i, apispec_received(got, j));
            }
        }
    }
    if (m->n_enums > 0) {
        for (size_t i = 0; i < m->n_enums; i++) {
            if (m->enums[i].len == n && memcmp(m->enums[i].s, s, n) == 0) {
                return true;
            }
        }
        return apispec_not_in_enum(c, m, j);
    }
    return true;
}

static LEAF bool check_int(struct check *c, const struct member *m, const json_t *j)
{
    struct intval x;
    char got[RECEIVED_BUF];

    if (json_is_integer(j)) {
        apispec_intval_of(json_integer_value(j), &x);
    } else if (!json_is_string(j) ||
               !apispec_parse_integer(json_string_value(j), json_string_length(j), &x)) {
        return apispec_wrong_type(c, m, j, true);
    }
    if (!apispec_intval_fits(&x, m->kind)) {
        return apispec_refuse(c, "InvalidParameterValue",
                              "Parameter \"%s\" must be an integer from %s, got %s.", c->path,
                              apispec_range_text(m->kind), apispec_received(got, j));
    }
    if (m->n_enums > 0) {
        for (size_t i = 0; i < m->n_enums; i++) {
            if (apispec_intval_cmp(&x, m->enums[i].i) == 0) {
                return true;
            }
        }
        return apispec_not_in_enum(c, m, j);
    }
    if (m->has_min && apispec_intval_cmp(&x, m->imin) < 0) {
        return apispec_refuse(c, "InvalidParameterValue",
                              "Parameter \"%s\" must be at least %" PRId64 ", got %s.", c->path,
                              m->imin, apispec_received(got, j));
    }
    if (m->has_max && apispec_intval_cmp(&x, m->imax) > 0) {
        return apispec_refuse(c, "InvalidParameterValue",
                              "Parameter \"%s\" must be at most %" PRId64 ", got %s.", c->path,
                              m->imax, apispec_received(got, j));
    }
    return true;
}

static LEAF bool check_float(struct check *c, const struct member *m, const json_t *j)
{
    double d;
    char got[RECEIVED_BUF];

    if (json_is_number(j)) {
        d = json_number_value(j);
    } else if (json_is_string(j) &&
               apispec_is_decimal_number(json_string_value(j), json_string_length(j))) {
        /* The grammar is locale-independent; the gateway never calls setlocale. */
        d = strtod(json_string_value(j), NULL);
    } else {
        return apispec_wrong_type(c, m, j, true);
    }
    if (!isfinite(d)) {
        return apispec_refuse(c, "InvalidParameterValue",
                              "Parameter \"%s\" is out of the range of a float, got %s.", c->path,
                              apispec_received(got, j));
    }
    if (m->n_enums > 0) {
        for (size_t i = 0; i < m->n_enums; i++) {
            if (m->enums[i].f == d) {
                return true;
            }
        }
        return apispec_not_in_enum(c, m, j);
    }
    if (m->has_min && d < m->fmin) {
        return apispec_refuse(c, "InvalidParameterValue",
                              "Parameter \"%s\" must be at least %.15g, got %s.", c->path, m->fmin,
                              apispec_received(got, j));
    }
    if (m->has_max && d > m->fmax) {
        return apispec_refuse(c, "InvalidParameterValue",
                              "Parameter \"%s\" must be at most %.15g, got %s.", c->path, m->fmax,
                              apispec_received(got, j));
    }
    return true;
}

static bool check_object(struct check *c, const struct object *o, const json_t *j, bool top);

/*
 * Checks the object j, one level below the current one. Descriptions may be recursive, so this
 * bound, not the description, is what keeps the recursion (check_value twice, for a list and its
 * item, and check_object: a few hundred bytes of stack per level) finite.
 */
static bool check_nested(struct check *c, const struct object *o, const json_t *j)
{
    if (c->depth >= GW_APISPEC_MAX_DEPTH) {
        return apispec_too_deep(c);
    }
    c->depth++;
    bool ok = check_object(c, o, j, false);
    c->depth--;
    return ok;
}

/* A special string (a placeholder) where no string is taken: it could never be replaced by one. */
static LEAF bool special_misplaced(struct check *c, const struct member *m, bool item)
{
    char want[EXPECTED_BUF];
    return apispec_refuse(c, "InvalidParameterValue",
                          "Parameter \"%s\" takes %s: a secret placeholder (or an escaped "
                          "{{tcgw:raw}} literal) may stand only for a string parameter.",
                          c->path, apispec_expected(want, m, item));
}

/* Checks the value of m (or, with item set, one item of list m) at the current path. */
static bool check_value(struct check *c, const struct member *m, const json_t *j, bool item)
{
    if (c->special != NULL && json_is_string(j) &&
        c->special(json_string_value(j), json_string_length(j))) {
        /* Its value rules are checked on what replaces it (gw_apispec_check_injected). */
        return m->kind == KIND_STRING && (item || !m->list) ? true : special_misplaced(c, m, item);
    }
    if (m->list && !item) {
        if (!json_is_array(j)) {
            return apispec_wrong_type(c, m, j, false);
        }
        size_t n = json_array_size(j);
        if (n > m->max_items) {
            return apispec_refuse(c, "InvalidParameterValue",
                                  "Parameter \"%s\" must have at most %zu items, got %zu.", c->path,
                                  m->max_items, n);
        }
        for (size_t i = 0; i < n; i++) {
            size_t old = apispec_path_push_index(c, i);
            bool ok = check_value(c, m, json_array_get(j, i), true);
            apispec_path_pop(c, old);
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
    case KIND_INTEGER:
        return check_int(c, m, j);
    case KIND_FLOAT:
        return check_float(c, m, j);
    case KIND_BOOL:
        return json_is_boolean(j) ? true : apispec_wrong_type(c, m, j, true);
    case KIND_OBJECT:
        return json_is_object(j) ? check_nested(c, m->object, j)
                                 : apispec_wrong_type(c, m, j, true);
    case KIND_NONE: /* load refuses these below an input */
    default:
        return apispec_refuse(c, "InternalError", "The gateway's description of \"%s\" is broken.",
                              c->path);
    }
}

static LEAF bool unknown_key(struct check *c, const struct object *o, const char *key, bool top)
{
    char echo[ECHO_BUF];
    const char *suggest = NULL;
    for (size_t i = 0; i < o->n_members && suggest == NULL; i++) {
        if (strcasecmp(o->members[i].name, key) == 0) {
            suggest = o->members[i].name;
        }
    }
    return apispec_refuse(c, "UnknownParameter", "Unknown parameter \"%s%s%s\": %s %s%s%s%s",
                          c->path, c->len ? "." : "", apispec_clip(echo, key, strlen(key)),
                          top ? c->action->name : o->name,
                          top ? "does not take it" : "has no such member",
                          suggest ? "; did you mean \"" : " (names are case-sensitive).",
                          suggest ? suggest : "", suggest ? "\"?" : "");
}

static LEAF bool missing(struct check *c, const struct member *m)
{
    char want[EXPECTED_BUF];
    size_t old = apispec_path_push(c, m->name);
    apispec_refuse(c, "MissingParameter", "Missing required parameter \"%s\": %s.", c->path,
                   apispec_expected(want, m, false));
    apispec_path_pop(c, old);
    return false;
}

static bool check_object(struct check *c, const struct object *o, const json_t *j, bool top)
{
    /* Jansson's iteration only reads the object; the casts are for its non-const API. */
    for (void *it = json_object_iter((json_t *)j); it != NULL;
         it = json_object_iter_next((json_t *)j, it)) {
        const char *key = json_object_iter_key(it);
        if (apispec_find_member(o, key) == NULL) {
            return unknown_key(c, o, key, top);
        }
    }
    for (size_t i = 0; i < o->n_members; i++) {
        const struct member *m = &o->members[i];
        const json_t *v = json_object_get(j, m->name);
        if (v == NULL) {
            continue;
        }
        size_t old = apispec_path_push(c, m->name);
        bool ok = check_value(c, m, v, false);
        apispec_path_pop(c, old);
        if (!ok) {
            return false;
        }
    }
    for (size_t i = 0; i < o->n_members; i++) {
        const struct member *m = &o->members[i];
        if (m->required && json_object_get(j, m->name) == NULL) {
            return missing(c, m);
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
        apispec_list_add(buf, &len, &full, g->members[i]->name);
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
            return apispec_refuse(c, "MissingParameter",
                                  "%s needs at least one of these parameters: %s.", a->name,
                                  group_text(list, grp));
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
                return apispec_refuse(c, "InvalidParameterValue",
                                      "Parameters \"%s\" and \"%s\" cannot be used together in "
                                      "%s; set only one of %s.",
                                      first, name, a->name, group_text(list, grp));
            }
            first = name;
        }
    }
    return true;
}

/* Refuses a call whose service or version has no description: NoSuchProduct or NoSuchVersion. */
static bool no_such_version(struct check *c, const struct gw_apispec *spec, const char *service,
                            const char *version)
{
    char e1[ECHO_BUF], e2[ECHO_BUF], list[LIST_BUF];
    size_t len = 0;
    bool full = false;
    list[0] = '\0';
    for (size_t i = 0; spec != NULL && i < spec->n_versions; i++) {
        if (strcmp(spec->versions[i].service, service) == 0) {
            apispec_list_add(list, &len, &full, spec->versions[i].version);
        }
    }
    if (len == 0) {
        return apispec_refuse(c, "NoSuchProduct",
                              "This gateway does not forward calls to service \"%s\": it has no "
                              "API description for it.",
                              apispec_clip(e1, service, strlen(service)));
    }
    return apispec_refuse(c, "NoSuchVersion",
                          "Service \"%s\" has no API version \"%s\" here; use one of: %s.",
                          apispec_clip(e1, service, strlen(service)),
                          apispec_clip(e2, version, strlen(version)), list);
}

bool gw_apispec_check(const struct gw_apispec *spec, const char *service, const char *version,
                      const char *action, const json_t *params, struct gw_apispec_verdict *verdict)
{
    return gw_apispec_check_sent(spec, service, version, action, params, NULL, verdict);
}

bool gw_apispec_check_sent(const struct gw_apispec *spec, const char *service, const char *version,
                           const char *action, const json_t *params, gw_apispec_special_fn special,
                           struct gw_apispec_verdict *verdict)
{
    struct gw_apispec_verdict scratch;
    struct check c;
    char e1[ECHO_BUF], got[RECEIVED_BUF];

    c.verdict = verdict != NULL ? verdict : &scratch;
    c.action = NULL;
    c.special = special;
    c.depth = 1;
    c.len = 0;
    c.path[0] = '\0';
    c.verdict->code = NULL;
    c.verdict->message[0] = '\0';
    service = service != NULL ? service : "";
    version = version != NULL ? version : "";
    action = action != NULL ? action : "";

    const struct version *v = spec != NULL ? apispec_find_version(spec, service, version) : NULL;
    if (v == NULL) {
        return no_such_version(&c, spec, service, version);
    }
    c.action = apispec_find_action(v, action);
    if (c.action == NULL) {
        return apispec_refuse(&c, "InvalidAction",
                              "Action \"%s\" is not available for %s version %s through this "
                              "gateway; check its name (case-sensitive).",
                              apispec_clip(e1, action, strlen(action)), v->service, v->version);
    }
    if (!json_is_object(params)) {
        return apispec_refuse(&c, "InvalidParameter",
                              "The parameters of %s must be a JSON object, got %s.", c.action->name,
                              params == NULL ? "nothing" : apispec_received(got, params));
    }
    if (!check_object(&c, c.action->input, params, true) || !check_groups(&c, params)) {
        return false;
    }
    return true;
}
