/* The loaded structure: its arena, lookups by name, and the small public accessors. */
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#include "apispec/apispec_internal.h"

#define ARENA_ALIGN (alignof(max_align_t))
#define ARENA_HEADER ((sizeof(struct arena_block) + ARENA_ALIGN - 1) & ~(ARENA_ALIGN - 1))
#define ARENA_BLOCK ((size_t)64 << 10)

void *apispec_alloc(struct gw_apispec *spec, size_t size)
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

void *apispec_alloc_array(struct gw_apispec *spec, size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / 4 / size) {
        return NULL;
    }
    return apispec_alloc(spec, n * size);
}

char *apispec_memdup(struct gw_apispec *spec, const char *s, size_t n)
{
    char *p = apispec_alloc(spec, n + 1);
    if (p != NULL) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

char *apispec_strdup(struct gw_apispec *spec, const char *s)
{
    return apispec_memdup(spec, s, strlen(s));
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

int apispec_cmp_object(const void *a, const void *b)
{
    return strcmp(((const struct object *)a)->name, ((const struct object *)b)->name);
}

static int cmp_object_key(const void *key, const void *elem)
{
    return strcmp(key, ((const struct object *)elem)->name);
}

int apispec_cmp_action(const void *a, const void *b)
{
    return strcmp(((const struct action *)a)->name, ((const struct action *)b)->name);
}

static int cmp_action_key(const void *key, const void *elem)
{
    return strcmp(key, ((const struct action *)elem)->name);
}

int apispec_cmp_member_ptr(const void *a, const void *b)
{
    return strcmp((*(const struct member *const *)a)->name,
                  (*(const struct member *const *)b)->name);
}

static int cmp_member_key(const void *key, const void *elem)
{
    return strcmp(key, (*(const struct member *const *)elem)->name);
}

int apispec_cmp_version(const void *a, const void *b)
{
    const struct version *x = a, *y = b;
    int c = strcmp(x->service, y->service);
    return c != 0 ? c : strcmp(x->version, y->version);
}

struct object *apispec_find_object(const struct version *v, const char *name)
{
    return bsearch(name, v->objects, v->n_objects, sizeof v->objects[0], cmp_object_key);
}

const struct member *apispec_find_member(const struct object *o, const char *name)
{
    const struct member *const *m =
        bsearch(name, o->by_name, o->n_members, sizeof o->by_name[0], cmp_member_key);
    return m == NULL ? NULL : *m;
}

const struct action *apispec_find_action(const struct version *v, const char *name)
{
    return bsearch(name, v->actions, v->n_actions, sizeof v->actions[0], cmp_action_key);
}

const struct version *apispec_find_version(const struct gw_apispec *spec, const char *service,
                                           const char *version)
{
    struct version key;
    memset(&key, 0, sizeof key);
    key.service = service;
    key.version = version;
    return bsearch(&key, spec->versions, spec->n_versions, sizeof spec->versions[0],
                   apispec_cmp_version);
}
