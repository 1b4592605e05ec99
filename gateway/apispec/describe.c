/*
 * One description (one service and version): metadata, objects, actions and their groups, and
 * the walk over what each action's input reaches, which holds the members the check will check
 * to a kind it can check. Members themselves are read in member.c.
 */
#include <stdlib.h>
#include <string.h>

#include "apispec/apispec_internal.h"
#include "core/text.h"

bool apispec_is_name(const char *s, bool dots)
{
    size_t n = strlen(s);
    return n <= GW_APISPEC_MAX_NAME &&
           gw_text_all_in(s, n, dots ? GW_TEXT_ALNUM "_.-" : GW_TEXT_ALNUM "_");
}

static enum gw_err parse_object(struct loader *ld, struct version *v, struct object *o)
{
    enum gw_err err;
    const json_t *src = o->src;
    if (!json_is_object(src)) {
        return apispec_load_fail(ld, GW_ERR_INVALID, "objects.%s is not a JSON object", o->name);
    }
    const json_t *type = json_object_get(src, "type");
    if (type != NULL && !(json_is_string(type) && strcmp(json_string_value(type), "object") == 0)) {
        return apispec_load_fail(ld, GW_ERR_INVALID, "objects.%s: \"type\" must be \"object\"",
                                 o->name);
    }
    const json_t *members = json_object_get(src, "members");
    if (!json_is_array(members)) {
        return apispec_load_fail(ld, GW_ERR_INVALID, "objects.%s: \"members\" must be a list",
                                 o->name);
    }
    size_t n = json_array_size(members);
    o->members = apispec_alloc_array(ld->spec, n, sizeof o->members[0]);
    o->by_name = apispec_alloc_array(ld->spec, n, sizeof o->by_name[0]);
    if (o->members == NULL || o->by_name == NULL) {
        return apispec_nomem(ld);
    }
    for (size_t i = 0; i < n; i++) {
        if ((err = apispec_parse_member(ld, v, o, i, json_array_get(members, i), &o->members[i])) !=
            GW_OK) {
            return err;
        }
        o->by_name[i] = &o->members[i];
    }
    o->n_members = n;
    qsort(o->by_name, n, sizeof o->by_name[0], apispec_cmp_member_ptr);
    for (size_t i = 1; i < n; i++) {
        if (strcmp(o->by_name[i - 1]->name, o->by_name[i]->name) == 0) {
            return apispec_load_fail(ld, GW_ERR_INVALID, "objects.%s: member %s is listed twice",
                                     o->name, o->by_name[i]->name);
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
        return apispec_load_fail(ld, GW_ERR_INVALID, "actions.%s: \"%s\" must be a list of lists",
                                 a->name, key);
    }
    size_t n = json_array_size(j);
    struct group *groups = apispec_alloc_array(ld->spec, n, sizeof *groups);
    if (groups == NULL && n > 0) {
        return apispec_nomem(ld);
    }
    for (size_t g = 0; g < n; g++) {
        const json_t *names = json_array_get(j, g);
        size_t size = json_array_size(names);
        if (!json_is_array(names) || size < min_size) {
            return apispec_load_fail(
                ld, GW_ERR_INVALID,
                "actions.%s: \"%s\"[%zu] must be a list of at least %zu member names", a->name, key,
                g, min_size);
        }
        groups[g].members = apispec_alloc_array(ld->spec, size, sizeof groups[g].members[0]);
        if (groups[g].members == NULL) {
            return apispec_nomem(ld);
        }
        for (size_t i = 0; i < size; i++) {
            const char *name = json_string_value(json_array_get(names, i));
            const struct member *m = name == NULL ? NULL : apispec_find_member(a->input, name);
            if (m == NULL) {
                return apispec_load_fail(ld, GW_ERR_INVALID,
                                         "actions.%s: \"%s\"[%zu][%zu] is not a member of %s",
                                         a->name, key, g, i, a->input->name);
            }
            for (size_t k = 0; k < i; k++) {
                if (groups[g].members[k] == m) {
                    return apispec_load_fail(ld, GW_ERR_INVALID,
                                             "actions.%s: \"%s\"[%zu] lists %s twice", a->name, key,
                                             g, m->name);
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
        return apispec_load_fail(ld, GW_ERR_INVALID, "actions.%s is not a JSON object", a->name);
    }
    const char *input = json_string_value(json_object_get(src, "input"));
    if (input == NULL || (a->input = apispec_find_object(v, input)) == NULL) {
        return apispec_load_fail(ld, GW_ERR_INVALID,
                                 "actions.%s: \"input\" must name an object of \"objects\"",
                                 a->name);
    }
    const json_t *output = json_object_get(src, "output");
    if (output != NULL &&
        (!json_is_string(output) || apispec_find_object(v, json_string_value(output)) == NULL)) {
        return apispec_load_fail(ld, GW_ERR_INVALID,
                                 "actions.%s: \"output\" must name an object of \"objects\"",
                                 a->name);
    }
    if ((err = parse_groups(ld, a, src, "require_one_of", 1, &a->require_one_of,
                            &a->n_require_one_of)) != GW_OK) {
        return err;
    }
    return parse_groups(ld, a, src, "exclusive", 2, &a->exclusive, &a->n_exclusive);
}

/*
 * Walks every object that an action's input reaches, depth first and in the description's order,
 * and refuses members whose kind the check cannot tell (apispec_member_problem). Objects may
 * contain themselves, directly or through others: each is visited once, and the check bounds
 * how deep a call may nest instead (GW_APISPEC_MAX_DEPTH). The walk keeps its own stack, one
 * frame per object at most, so a long chain of objects in a description cannot exhaust the
 * thread's. Objects reachable only from outputs are never visited by the check, so they are not
 * examined here.
 */
static enum gw_err walk_inputs(struct loader *ld, struct version *v)
{
    enum gw_err err;
    struct frame {
        struct object *o;
        size_t next; /* member to examine next */
    } *stack = NULL;

    if (v->n_objects == 0) {
        return GW_OK; /* no action either: parse_action refuses an input that names nothing */
    }
    if ((stack = calloc(v->n_objects, sizeof *stack)) == NULL) {
        return apispec_nomem(ld);
    }
    for (size_t a = 0; a < v->n_actions; a++) {
        struct object *input = v->actions[a].input;
        size_t top = 0;
        if (input->reached) {
            continue;
        }
        input->reached = true;
        stack[top++] = (struct frame){input, 0};
        while (top > 0) {
            struct frame *f = &stack[top - 1];
            if (f->next == f->o->n_members) {
                top--;
                continue;
            }
            size_t i = f->next++;
            if ((err = apispec_member_problem(ld, f->o, i, &f->o->members[i])) != GW_OK) {
                goto out;
            }
            struct object *child = f->o->members[i].object;
            if (child != NULL && !child->reached) {
                child->reached = true; /* pushed once at most: top stays below n_objects */
                stack[top++] = (struct frame){child, 0};
            }
        }
    }
    err = GW_OK;
out:
    free(stack);
    return err;
}

static enum gw_err get_ident(struct loader *ld, const json_t *meta, const char *key,
                             const char **out)
{
    const char *s = json_string_value(json_object_get(meta, key));
    if (s == NULL || !apispec_is_name(s, true)) {
        return apispec_load_fail(ld, GW_ERR_INVALID,
                                 "metadata.%s must be 1 to %d letters, digits, '_', '.' or '-'",
                                 key, GW_APISPEC_MAX_NAME);
    }
    if ((*out = apispec_strdup(ld->spec, s)) == NULL) {
        return apispec_nomem(ld);
    }
    return GW_OK;
}

/* Names the objects of v from the JSON object objects and parses them, in name order. */
static enum gw_err parse_objects(struct loader *ld, struct version *v, const json_t *objects)
{
    enum gw_err err;
    size_t i;
    void *it;

    /* Jansson's iteration only reads; the casts are for its non-const API. */
    for (i = 0, it = json_object_iter((json_t *)objects); it != NULL;
         i++, it = json_object_iter_next((json_t *)objects, it)) {
        const char *key = json_object_iter_key(it);
        if (!apispec_is_name(key, false)) {
            return apispec_load_fail(ld, GW_ERR_INVALID,
                                     "objects: a name is not an identifier of 1 to %d "
                                     "letters, digits or _",
                                     GW_APISPEC_MAX_NAME);
        }
        if ((v->objects[i].name = apispec_strdup(ld->spec, key)) == NULL) {
            return apispec_nomem(ld);
        }
        v->objects[i].src = json_object_iter_value(it);
    }
    qsort(v->objects, v->n_objects, sizeof v->objects[0], apispec_cmp_object);
    for (i = 0; i < v->n_objects; i++) {
        if ((err = parse_object(ld, v, &v->objects[i])) != GW_OK) {
            return err;
        }
    }
    return GW_OK;
}

/* Parses the actions of v from the JSON object actions, then walks what their inputs reach. */
static enum gw_err parse_actions(struct loader *ld, struct version *v, const json_t *actions)
{
    enum gw_err err;
    size_t i;
    void *it;

    for (i = 0, it = json_object_iter((json_t *)actions); it != NULL;
         i++, it = json_object_iter_next((json_t *)actions, it)) {
        const char *key = json_object_iter_key(it);
        if (!apispec_is_name(key, false)) {
            return apispec_load_fail(ld, GW_ERR_INVALID,
                                     "actions: a name is not an identifier of 1 to %d "
                                     "letters, digits or _",
                                     GW_APISPEC_MAX_NAME);
        }
        if ((v->actions[i].name = apispec_strdup(ld->spec, key)) == NULL) {
            return apispec_nomem(ld);
        }
        if ((err = parse_action(ld, v, &v->actions[i], json_object_iter_value(it))) != GW_OK) {
            return err;
        }
    }
    qsort(v->actions, v->n_actions, sizeof v->actions[0], apispec_cmp_action);
    return walk_inputs(ld, v);
}

enum gw_err apispec_parse_description(struct loader *ld, const json_t *root)
{
    enum gw_err err;
    struct gw_apispec *spec = ld->spec;
    struct version v;

    memset(&v, 0, sizeof v);
    const json_t *meta = json_object_get(root, "metadata");
    const json_t *objects = json_object_get(root, "objects");
    const json_t *actions = json_object_get(root, "actions");
    if (!json_is_object(meta) || !json_is_object(objects) || !json_is_object(actions)) {
        return apispec_load_fail(ld, GW_ERR_INVALID,
                                 "\"metadata\", \"objects\" and \"actions\" must be JSON objects");
    }
    if ((err = get_ident(ld, meta, "serviceShortName", &v.service)) != GW_OK ||
        (err = get_ident(ld, meta, "apiVersion", &v.version)) != GW_OK) {
        return err;
    }
    if ((v.file = apispec_strdup(spec, ld->file)) == NULL) {
        return apispec_nomem(ld);
    }

    v.n_objects = json_object_size(objects);
    v.objects = apispec_alloc_array(spec, v.n_objects, sizeof v.objects[0]);
    v.n_actions = json_object_size(actions);
    v.actions = apispec_alloc_array(spec, v.n_actions, sizeof v.actions[0]);
    if (v.objects == NULL || v.actions == NULL) {
        return apispec_nomem(ld);
    }
    if (v.n_actions == 0) {
        return apispec_load_fail(ld, GW_ERR_INVALID, "\"actions\" is empty");
    }
    if ((err = parse_objects(ld, &v, objects)) != GW_OK ||
        (err = parse_actions(ld, &v, actions)) != GW_OK) {
        return err;
    }
    for (size_t i = 0; i < v.n_objects; i++) {
        v.objects[i].src = NULL; /* the JSON tree is freed after loading */
    }

    if (spec->n_versions == spec->cap_versions) {
        size_t cap = spec->cap_versions ? spec->cap_versions * 2 : 8;
        struct version *p = realloc(spec->versions, cap * sizeof *p);
        if (p == NULL) {
            return apispec_nomem(ld);
        }
        spec->versions = p;
        spec->cap_versions = cap;
    }
    spec->versions[spec->n_versions++] = v;
    spec->n_actions += v.n_actions;
    return GW_OK;
}
