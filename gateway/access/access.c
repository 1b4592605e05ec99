#include "access/access.h"

#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "identity/callers.h"
#include "identity/identify.h"
#include "policy/policy.h"
#include "vault/vault.h"

/* The policies of one caller, resolved to pointers when the snapshot is built. */
struct bound {
    const struct gw_policy *policies[GW_CALLERS_MAX_POLICIES];
    size_t count;
};

struct gw_access_snapshot {
    atomic_uint_fast64_t refs;
    uint64_t generation;
    struct gw_callers *callers;
    struct gw_policy_set *policies;
    struct gw_vault *vault;
    struct bound *bound; /* parallel to gw_callers_at order (by name) */
};

struct gw_access {
    char *callers_file;
    char *policy_dir;
    char *master_key_file;
    char *credential_store;
    unsigned char *passphrase; /* sodium_malloc'ed, no-access at rest; or NULL */
    size_t passphrase_len;
    const struct gw_apispec *spec;
    struct gw_replay *replay;
    pthread_mutex_t reload_lock; /* one reload at a time */
    pthread_mutex_t lock;        /* guards current against a swap between load and hold */
    struct gw_access_snapshot *current;
    atomic_uint_fast64_t generation;
};

static void snapshot_free(struct gw_access_snapshot *snap)
{
    if (snap == NULL) {
        return;
    }
    free(snap->bound);
    gw_vault_free(snap->vault);
    gw_policy_set_free(snap->policies);
    gw_callers_free(snap->callers);
    free(snap);
}

/* Every caller's policies exist, its credential is in the store, and its SDK key too. */
static enum gw_err bind_callers(struct gw_access_snapshot *snap, const struct gw_access *access,
                                char *msg, size_t msglen)
{
    size_t n = gw_callers_count(snap->callers);
    snap->bound = calloc(n > 0 ? n : 1, sizeof *snap->bound);
    if (snap->bound == NULL) {
        return GW_ERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        const struct gw_caller *c = gw_callers_at(snap->callers, i);
        for (size_t k = 0; k < c->policy_count; k++) {
            const struct gw_policy *pol = gw_policy_set_find(snap->policies, c->policies[k]);
            if (pol == NULL) {
                snprintf(msg, msglen,
                         "%s: caller \"%s\" is bound to policy \"%s\", but %s has no %s.json",
                         access->callers_file, c->name, c->policies[k], access->policy_dir,
                         c->policies[k]);
                return GW_ERR_INVALID;
            }
            snap->bound[i].policies[snap->bound[i].count++] = pol;
        }
        if (!gw_vault_has(snap->vault, c->credential)) {
            snprintf(msg, msglen,
                     "%s: caller \"%s\" signs with credential \"%s\", which %s does not hold "
                     "(tcgw secrets put %s)",
                     access->callers_file, c->name, c->credential, access->credential_store,
                     c->credential);
            return GW_ERR_INVALID;
        }
        if (c->sdk_secret_id[0] != '\0' && !gw_vault_has_caller_key(snap->vault, c->name)) {
            snprintf(msg, msglen,
                     "%s: caller \"%s\" has an SDK key whose SecretKey %s does not hold "
                     "(tcgw callers remove %s, then add it again)",
                     access->callers_file, c->name, access->credential_store, c->name);
            return GW_ERR_INVALID;
        }
    }
    return GW_OK;
}

static enum gw_err snapshot_build(const struct gw_access *access, struct gw_access_snapshot **out,
                                  char *msg, size_t msglen)
{
    enum gw_err err = GW_ERR_NOMEM;
    struct gw_access_snapshot *snap = calloc(1, sizeof *snap);
    if (snap == NULL) {
        goto out;
    }
    atomic_init(&snap->refs, 1);
    struct gw_vault_master master = {.key_file = access->master_key_file,
                                     .passphrase = access->passphrase,
                                     .passphrase_len = access->passphrase_len};
    if (access->passphrase != NULL) {
        sodium_mprotect_readonly(access->passphrase);
    }
    err = gw_vault_open_master(&master, access->credential_store, 0, &snap->vault, msg, msglen);
    if (access->passphrase != NULL) {
        sodium_mprotect_noaccess(access->passphrase);
    }
    if (err != GW_OK) {
        goto out;
    }
    if ((err = gw_callers_load(access->callers_file, &snap->callers, msg, msglen)) != GW_OK) {
        goto out;
    }
    if ((err = gw_policy_set_load(access->policy_dir, access->spec, &snap->policies, msg,
                                  msglen)) != GW_OK) {
        goto out;
    }
    if ((err = bind_callers(snap, access, msg, msglen)) != GW_OK) {
        goto out;
    }
    *out = snap;
    snap = NULL;
    err = GW_OK;
out:
    if (err == GW_ERR_NOMEM) {
        snprintf(msg, msglen, "out of memory");
    }
    snapshot_free(snap);
    return err;
}

static char *copy(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

enum gw_err gw_access_open(const struct gw_access_sources *src, struct gw_access **out, char *msg,
                           size_t msglen)
{
    enum gw_err err = GW_ERR_NOMEM;
    struct gw_access *access = calloc(1, sizeof *access);
    if (access == NULL) {
        goto out;
    }
    pthread_mutex_init(&access->lock, NULL);
    pthread_mutex_init(&access->reload_lock, NULL);
    access->callers_file = copy(src->callers_file);
    access->policy_dir = copy(src->policy_dir);
    access->master_key_file = copy(src->master_key_file);
    access->credential_store = copy(src->credential_store);
    access->spec = src->spec;
    if (src->passphrase != NULL) {
        if ((access->passphrase = sodium_malloc(src->passphrase_len + 1)) == NULL) {
            snprintf(msg, msglen, "out of memory");
            goto out;
        }
        memcpy(access->passphrase, src->passphrase, src->passphrase_len);
        access->passphrase_len = src->passphrase_len;
        sodium_mprotect_noaccess(access->passphrase);
    }
    if (access->callers_file == NULL || access->policy_dir == NULL ||
        access->master_key_file == NULL || access->credential_store == NULL ||
        gw_replay_new(GW_REPLAY_DEFAULT_SLOTS, &access->replay) != GW_OK) {
        snprintf(msg, msglen, "out of memory");
        goto out;
    }
    if ((err = snapshot_build(access, &access->current, msg, msglen)) != GW_OK) {
        goto out;
    }
    access->current->generation = 1;
    atomic_init(&access->generation, 1);
    *out = access;
    access = NULL;
    err = GW_OK;
out:
    gw_access_free(access);
    return err;
}

enum gw_err gw_access_reload(struct gw_access *access, char *msg, size_t msglen)
{
    struct gw_access_snapshot *fresh = NULL;
    pthread_mutex_lock(&access->reload_lock);
    uint64_t next = atomic_load(&access->generation) + 1;
    /* Built outside the swap lock: reading files must not hold up a worker taking a snapshot. */
    enum gw_err err = snapshot_build(access, &fresh, msg, msglen);
    if (err != GW_OK) {
        pthread_mutex_unlock(&access->reload_lock);
        return err;
    }
    /* Roles defined as before keep their temporary keys: no call waits for STS after a reload. */
    struct gw_access_snapshot *prev = gw_access_current(access);
    gw_vault_roles_adopt(fresh->vault, prev->vault);
    gw_access_release(prev);
    pthread_mutex_lock(&access->lock);
    struct gw_access_snapshot *old = access->current;
    fresh->generation = next;
    access->current = fresh;
    atomic_store(&access->generation, next);
    pthread_mutex_unlock(&access->lock);
    pthread_mutex_unlock(&access->reload_lock);
    gw_access_release(old); /* the access's own reference */
    return GW_OK;
}

void gw_access_free(struct gw_access *access)
{
    if (access == NULL) {
        return;
    }
    gw_access_release(access->current);
    gw_replay_free(access->replay);
    pthread_mutex_destroy(&access->lock);
    pthread_mutex_destroy(&access->reload_lock);
    free(access->callers_file);
    free(access->policy_dir);
    free(access->master_key_file);
    free(access->credential_store);
    sodium_free(access->passphrase); /* wipes it */
    free(access);
}

uint64_t gw_access_generation(const struct gw_access *access)
{
    return atomic_load(&((struct gw_access *)access)->generation);
}

struct gw_access_snapshot *gw_access_current(struct gw_access *access)
{
    pthread_mutex_lock(&access->lock);
    struct gw_access_snapshot *snap = access->current;
    gw_access_hold(snap);
    pthread_mutex_unlock(&access->lock);
    return snap;
}

void gw_access_hold(struct gw_access_snapshot *snap)
{
    atomic_fetch_add_explicit(&snap->refs, 1, memory_order_relaxed);
}

void gw_access_release(struct gw_access_snapshot *snap)
{
    if (snap != NULL && atomic_fetch_sub_explicit(&snap->refs, 1, memory_order_acq_rel) == 1) {
        snapshot_free(snap);
    }
}

struct gw_replay *gw_access_replay(struct gw_access *access)
{
    return access->replay;
}

const struct gw_callers *gw_access_callers(const struct gw_access_snapshot *snap)
{
    return snap->callers;
}

struct gw_vault *gw_access_vault(const struct gw_access_snapshot *snap)
{
    return snap->vault;
}

uint64_t gw_access_snapshot_generation(const struct gw_access_snapshot *snap)
{
    return snap->generation;
}

size_t gw_access_statement_count(const struct gw_access_snapshot *snap)
{
    return gw_policy_set_statements(snap->policies);
}

size_t gw_access_policies(const struct gw_access_snapshot *snap, const struct gw_caller *caller,
                          const struct gw_policy *const **out)
{
    /* Callers are in name order: find the caller's index by bisection. */
    size_t lo = 0;
    size_t hi = gw_callers_count(snap->callers);
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct gw_caller *c = gw_callers_at(snap->callers, mid);
        int cmp = strcmp(c->name, caller->name);
        if (cmp == 0) {
            *out = snap->bound[mid].policies;
            return snap->bound[mid].count;
        }
        if (cmp < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    *out = NULL;
    return 0;
}
