/* query: what a loaded description holds, for modules that reason about calls before any arrives.
 */
#include <string.h>

#include "apispec/apispec_internal.h"

void gw_apispec_each_action(const struct gw_apispec *spec, gw_apispec_action_fn fn, void *ctx)
{
    for (size_t v = 0; spec != NULL && v < spec->n_versions; v++) {
        const struct version *ver = &spec->versions[v];
        for (size_t a = 0; a < ver->n_actions; a++) {
            if (!fn(ctx, ver->service, ver->actions[a].name)) {
                return;
            }
        }
    }
}

static enum gw_apispec_type type_of(enum kind kind)
{
    switch (kind) {
    case KIND_STRING:
        return GW_APISPEC_TYPE_STRING;
    case KIND_INT64:
    case KIND_UINT64:
    case KIND_INTEGER:
        return GW_APISPEC_TYPE_INTEGER;
    case KIND_FLOAT:
        return GW_APISPEC_TYPE_FLOAT;
    case KIND_BOOL:
        return GW_APISPEC_TYPE_BOOL;
    case KIND_OBJECT:
        return GW_APISPEC_TYPE_OBJECT;
    case KIND_NONE:
    default:
        return GW_APISPEC_TYPE_OTHER;
    }
}

/* The member at path below input, following objects (and the object items of lists). */
static bool find_in(const struct object *input, const char *const *path, size_t n,
                    struct gw_apispec_param *out)
{
    const struct object *o = input;
    bool list = false;
    for (size_t i = 0; i < n; i++) {
        const struct member *m = o != NULL ? apispec_find_member(o, path[i]) : NULL;
        if (m == NULL) {
            return false;
        }
        list = list || m->list;
        if (i + 1 == n) {
            out->type = type_of(m->kind);
            out->list = list;
            return true;
        }
        o = m->kind == KIND_OBJECT ? m->object : NULL;
    }
    return false;
}

bool gw_apispec_find_param(const struct gw_apispec *spec, const char *service, const char *action,
                           const char *const *path, size_t n, struct gw_apispec_param *out)
{
    for (size_t v = 0; spec != NULL && n > 0 && v < spec->n_versions; v++) {
        const struct version *ver = &spec->versions[v];
        if (strcmp(ver->service, service) != 0) {
            continue;
        }
        const struct action *a = apispec_find_action(ver, action);
        struct gw_apispec_param found;
        if (a != NULL && find_in(a->input, path, n, &found)) {
            *out = found;
            return true;
        }
    }
    return false;
}
