/*
 * role: credentials that are roles (GW_VAULT_ROLE). A role holds no key of its own: the STS
 * refresher (gateway/sts/) assumes it with its source credential and installs the temporary keys
 * STS answers here, and signers use whichever keys were installed last.
 *
 * Swapping keys without a lock on the signing path
 *
 * A role's keys are a temporary struct cred of their own (SecretId, SecretKey, token, expiry and
 * their own derived-key cache), immutable once installed except for that cache (keymem.c). The
 * role points at it with one atomic pointer, current. A signer loads it with an acquire load and
 * signs with it as with any credential; the refresher builds the new cred completely, then
 * publishes it with a release store, so a signer that sees the pointer sees the whole cred.
 *
 * The keys replaced are retired, not freed: a signer may have loaded the old pointer just before
 * the store. They are freed by gw_vault_roles_reap once ROLE_RETIRE_GRACE seconds have passed on
 * the monotonic clock since the swap. The rule is keymem.c's, with a shorter but monotonic wait:
 * a signer uses the pointer it loaded only for the signature it is making (a few microseconds of
 * computation, no blocking call, memory locked in RAM), so freeing under it would take a thread
 * stalled for the whole grace between its load and its last read. The monotonic clock cannot be
 * stepped, so a clock change cannot shorten the wait. A reference count would make freeing exact,
 * at the price of two atomic read-modify-writes on one shared cache line per signature on every
 * worker: the contention the derived-key cache exists to avoid. gw_vault_free frees everything at
 * once: by then no snapshot, so no signer, holds the vault.
 *
 * At most ROLE_RETIRED_MAX keys wait to be freed per role; an install that finds the list full
 * (refreshes faster than the grace, which the minimum duration prevents) fails and is retried.
 *
 * Everything else about a role (definition, schedule, status) is read and written under its
 * mutex by the refresher, readiness checks and `secrets list`: never by signers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/text.h"
#include "vault/vault_int.h"

#define ROLE_RETIRE_GRACE 30 /* seconds between a swap and freeing the keys it replaced */
#define ROLE_RETIRED_MAX 16

struct retired {
    struct cred *keys;
    int64_t at; /* monotonic seconds of the swap */
};

struct role {
    char source[GW_VAULT_MAX_NAME + 1];
    char role_arn[GW_VAULT_MAX_ROLE_ARN + 1];
    char session_name[GW_VAULT_MAX_SESSION_NAME + 1];
    char region[GW_VAULT_MAX_REGION + 1];
    unsigned duration;
    _Atomic(struct cred *) current; /* NULL until the first install */
    pthread_mutex_t lock;           /* everything below */
    struct retired retired[ROLE_RETIRED_MAX];
    size_t nretired;
    bool failed;       /* the latest refresh failed */
    int64_t failed_at; /* by the vault's clock */
    char last_error[160];
};

static int64_t mono_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec;
}

/* ---- Definitions ---- */

static enum gw_err check_field(const char *what, const char *v, size_t max, const char *chars,
                               char *msg, size_t msglen)
{
    size_t n = v == NULL ? 0 : strnlen(v, max + 1);
    if (n == 0 || n > max) {
        gw_say(msg, msglen, "the role's %s must be 1 to %zu characters", what, max);
        return GW_ERR_INVALID;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (chars != NULL ? strchr(chars, c) == NULL : (c < 0x21 || c > 0x7e)) {
            gw_say(msg, msglen, "the role's %s has a character that is not allowed there", what);
            return GW_ERR_INVALID;
        }
    }
    return GW_OK;
}

enum gw_err vault_role_check(const struct gw_vault_role_def *def, char *msg, size_t msglen)
{
    enum gw_err err;
    if (def == NULL) {
        gw_say(msg, msglen, "no role definition");
        return GW_ERR_INVALID;
    }
    if (!gw_vault_name_valid(def->source) || def->source[0] == '\0') {
        gw_say(msg, msglen, "the role's source must name a credential (A-Z a-z 0-9 . _ -)");
        return GW_ERR_INVALID;
    }
    if ((err = check_field("RoleArn", def->role_arn, GW_VAULT_MAX_ROLE_ARN, NULL, msg, msglen)) !=
            GW_OK ||
        (err = check_field("RoleSessionName", def->session_name, GW_VAULT_MAX_SESSION_NAME,
                           GW_TEXT_ALNUM "_+=,.@-", msg, msglen)) != GW_OK ||
        (err = check_field("region", def->region, GW_VAULT_MAX_REGION, GW_TEXT_ALNUM "-", msg,
                           msglen)) != GW_OK) {
        return err;
    }
    if (strnlen(def->session_name, 3) < 2) {
        gw_say(msg, msglen, "the role's RoleSessionName must be at least 2 characters");
        return GW_ERR_INVALID;
    }
    if (def->duration < GW_VAULT_MIN_DURATION || def->duration > GW_VAULT_MAX_DURATION) {
        gw_say(msg, msglen, "the role's DurationSeconds must be from %d to %d",
               GW_VAULT_MIN_DURATION, GW_VAULT_MAX_DURATION);
        return GW_ERR_INVALID;
    }
    return GW_OK;
}

struct cred *vault_role_new(const char *name, const struct gw_vault_role_def *def)
{
    struct cred *c = calloc(1, sizeof *c);
    struct role *r = calloc(1, sizeof *r);
    if (c == NULL || r == NULL || pthread_mutex_init(&c->lock, NULL) != 0) {
        free(c);
        free(r);
        return NULL;
    }
    if (pthread_mutex_init(&r->lock, NULL) != 0) {
        pthread_mutex_destroy(&c->lock);
        free(c);
        free(r);
        return NULL;
    }
    for (size_t i = 0; i < VAULT_KEY_SLOTS; i++) {
        atomic_init(&c->keys[i], NULL);
    }
    atomic_init(&r->current, NULL);
    snprintf(r->source, sizeof r->source, "%s", def->source);
    snprintf(r->role_arn, sizeof r->role_arn, "%s", def->role_arn);
    snprintf(r->session_name, sizeof r->session_name, "%s", def->session_name);
    snprintf(r->region, sizeof r->region, "%s", def->region);
    r->duration = def->duration;
    snprintf(c->name, sizeof c->name, "%s", name);
    c->type = GW_VAULT_ROLE;
    c->role = r;
    return c;
}

void vault_role_free(struct role *r)
{
    if (r == NULL) {
        return;
    }
    vault_cred_free(atomic_load_explicit(&r->current, memory_order_relaxed));
    for (size_t i = 0; i < r->nretired; i++) {
        vault_cred_free(r->retired[i].keys);
    }
    pthread_mutex_destroy(&r->lock);
    free(r);
}

void vault_role_def(const struct role *r, struct gw_vault_role_def *def)
{
    def->source = r->source;
    def->role_arn = r->role_arn;
    def->session_name = r->session_name;
    def->region = r->region;
    def->duration = r->duration;
}

struct cred *vault_role_current(const struct role *r)
{
    /* Pairs with the release store in install(): the keys are complete when seen. */
    return atomic_load_explicit(&((struct role *)r)->current, memory_order_acquire);
}

/* ---- The refresher's side ---- */

/* The i-th role of vault's credentials, or NULL. */
static struct cred *role_at(const struct gw_vault *vault, size_t i)
{
    const struct vault_table *t = &vault->tables[GW_VAULT_CREDENTIAL];
    for (size_t k = 0; k < t->count; k++) {
        if (t->entries[k]->type == GW_VAULT_ROLE && i-- == 0) {
            return t->entries[k];
        }
    }
    return NULL;
}

size_t gw_vault_role_count(const struct gw_vault *vault)
{
    size_t n = 0;
    for (size_t k = 0; vault != NULL && k < vault->tables[GW_VAULT_CREDENTIAL].count; k++) {
        n += vault->tables[GW_VAULT_CREDENTIAL].entries[k]->type == GW_VAULT_ROLE;
    }
    return n;
}

static void fill_info(const struct cred *c, struct gw_vault_info *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", c->name);
    out->type = c->type;
    if (c->type != GW_VAULT_ROLE) {
        memcpy(out->id_tail, c->id_tail, sizeof out->id_tail);
        out->expires = c->expires;
        return;
    }
    struct role *r = c->role;
    struct cred *cur = vault_role_current(r);
    pthread_mutex_lock(&r->lock);
    if (cur != NULL) {
        memcpy(out->id_tail, cur->id_tail, sizeof out->id_tail);
        out->expires = cur->expires;
    }
    snprintf(out->source, sizeof out->source, "%s", r->source);
    snprintf(out->role_arn, sizeof out->role_arn, "%s", r->role_arn);
    snprintf(out->session_name, sizeof out->session_name, "%s", r->session_name);
    snprintf(out->region, sizeof out->region, "%s", r->region);
    out->duration = r->duration;
    pthread_mutex_unlock(&r->lock);
}

enum gw_err gw_vault_info(const struct gw_vault *vault, size_t i, struct gw_vault_info *out)
{
    if (vault == NULL || out == NULL || i >= vault->tables[GW_VAULT_CREDENTIAL].count) {
        return GW_ERR_NOT_FOUND;
    }
    fill_info(vault->tables[GW_VAULT_CREDENTIAL].entries[i], out);
    return GW_OK;
}

enum gw_err gw_vault_role_get(const struct gw_vault *vault, size_t i, struct gw_vault_info *out)
{
    const struct cred *c = vault == NULL ? NULL : role_at(vault, i);
    if (c == NULL || out == NULL) {
        return GW_ERR_NOT_FOUND;
    }
    fill_info(c, out);
    return GW_OK;
}

int64_t gw_vault_refresh_point(int64_t issued, int64_t expires)
{
    if (expires <= issued) {
        return issued;
    }
    return issued + (expires - issued) * 2 / 3;
}

int64_t gw_vault_role_due(const struct gw_vault *vault, size_t i)
{
    struct cred *c = vault == NULL ? NULL : role_at(vault, i);
    if (c == NULL) {
        return INT64_MAX;
    }
    struct role *r = c->role;
    struct cred *cur = vault_role_current(r);
    pthread_mutex_lock(&r->lock);
    int64_t due = cur == NULL ? 0 : gw_vault_refresh_point(cur->issued, cur->expires);
    if (r->failed && r->failed_at + GW_VAULT_RETRY_SECONDS > due) {
        due = r->failed_at + GW_VAULT_RETRY_SECONDS;
        /* Retries do not wait past the last moment the current keys can be replaced in time. */
        if (cur != NULL && due > cur->expires - GW_VAULT_EXPIRY_MARGIN - 1) {
            due = cur->expires - GW_VAULT_EXPIRY_MARGIN - 1;
        }
    }
    pthread_mutex_unlock(&r->lock);
    return due;
}

/* With r->lock held: frees the retired keys whose grace has passed. */
static void reap_locked(struct role *r, int64_t mono)
{
    size_t kept = 0;
    for (size_t i = 0; i < r->nretired; i++) {
        if (mono - r->retired[i].at >= ROLE_RETIRE_GRACE) {
            vault_cred_free(r->retired[i].keys);
        } else {
            r->retired[kept++] = r->retired[i];
        }
    }
    r->nretired = kept;
}

/* With r->lock held: publishes keys (stolen) and retires the ones they replace. */
static enum gw_err install_locked(struct role *r, struct cred *keys)
{
    int64_t mono = mono_seconds();
    reap_locked(r, mono);
    if (r->nretired == ROLE_RETIRED_MAX) {
        vault_cred_free(keys);
        return GW_ERR_BUSY;
    }
    struct cred *old = atomic_exchange_explicit(&r->current, keys, memory_order_acq_rel);
    if (old != NULL) {
        r->retired[r->nretired].keys = old;
        r->retired[r->nretired].at = mono;
        r->nretired++;
    }
    return GW_OK;
}

enum gw_err gw_vault_role_install(struct gw_vault *vault, size_t i, const char *secret_id,
                                  size_t secret_id_len, const char *secret_key,
                                  size_t secret_key_len, const char *token, size_t token_len,
                                  int64_t expires, char *msg, size_t msglen)
{
    enum gw_err err;
    struct cred *c = vault == NULL ? NULL : role_at(vault, i);
    if (c == NULL) {
        gw_say(msg, msglen, "no such role");
        return GW_ERR_NOT_FOUND;
    }
    if ((err = vault_check_token(token, token_len, msg, msglen)) != GW_OK) {
        return err;
    }
    struct cred *keys = vault_cred_new_temporary(c->name, secret_id, secret_id_len, secret_key,
                                                 secret_key_len, token, token_len, expires);
    if (keys == NULL) {
        gw_say(msg, msglen, "out of memory");
        return GW_ERR_NOMEM;
    }
    keys->issued = vault->now();
    struct role *r = c->role;
    pthread_mutex_lock(&r->lock);
    if ((err = install_locked(r, keys)) == GW_OK) {
        r->failed = false;
        r->last_error[0] = '\0';
    } else {
        gw_say(msg, msglen, "too many replaced keys still waiting to be freed");
    }
    pthread_mutex_unlock(&r->lock);
    return err;
}

void gw_vault_role_failed(struct gw_vault *vault, size_t i, const char *why)
{
    struct cred *c = vault == NULL ? NULL : role_at(vault, i);
    if (c == NULL) {
        return;
    }
    struct role *r = c->role;
    pthread_mutex_lock(&r->lock);
    r->failed = true;
    r->failed_at = vault->now();
    snprintf(r->last_error, sizeof r->last_error, "%s", why != NULL ? why : "unknown");
    pthread_mutex_unlock(&r->lock);
}

void gw_vault_roles_reap(struct gw_vault *vault)
{
    int64_t mono = mono_seconds();
    struct cred *c;
    for (size_t i = 0; vault != NULL && (c = role_at(vault, i)) != NULL; i++) {
        pthread_mutex_lock(&c->role->lock);
        reap_locked(c->role, mono);
        pthread_mutex_unlock(&c->role->lock);
    }
}

bool gw_vault_roles_ok(const struct gw_vault *vault, char *why, size_t whylen)
{
    struct cred *c;
    int64_t now = vault == NULL ? 0 : vault->now();
    for (size_t i = 0; vault != NULL && (c = role_at(vault, i)) != NULL; i++) {
        struct role *r = c->role;
        struct cred *cur = vault_role_current(r);
        bool ok;
        pthread_mutex_lock(&r->lock);
        if (cur == NULL) {
            gw_say(why, whylen, "role %s has no temporary keys yet%s%s", c->name,
                   r->failed ? ": " : "", r->failed ? r->last_error : "");
            ok = false;
        } else if (now >= cur->expires - GW_VAULT_EXPIRY_MARGIN) {
            gw_say(why, whylen, "role %s: its temporary keys expired%s%s", c->name,
                   r->failed ? ": " : "", r->failed ? r->last_error : "");
            ok = false;
        } else if (r->failed) {
            gw_say(why, whylen,
                   "role %s cannot be refreshed (%s); its keys are used until they expire in "
                   "%lld s",
                   c->name, r->last_error, (long long)(cur->expires - now));
            ok = false;
        } else {
            ok = true;
        }
        pthread_mutex_unlock(&r->lock);
        if (!ok) {
            return false;
        }
    }
    return true;
}

void gw_vault_roles_adopt(struct gw_vault *to, const struct gw_vault *from)
{
    struct cred *c;
    for (size_t i = 0; to != NULL && from != NULL && (c = role_at(to, i)) != NULL; i++) {
        struct cred *old = vault_find(from, GW_VAULT_CREDENTIAL, c->name);
        if (old == NULL || old->type != GW_VAULT_ROLE) {
            continue;
        }
        struct role *a = c->role, *b = old->role;
        pthread_mutex_lock(&b->lock);
        bool same = strcmp(a->source, b->source) == 0 && strcmp(a->role_arn, b->role_arn) == 0 &&
                    strcmp(a->session_name, b->session_name) == 0 &&
                    strcmp(a->region, b->region) == 0 && a->duration == b->duration;
        struct cred *cur = same ? vault_role_current(b) : NULL;
        /* Copied under b's lock: the refresher retires (and later frees) only under it. */
        struct cred *copy = cur != NULL ? vault_cred_copy(cur) : NULL;
        pthread_mutex_unlock(&b->lock);
        if (copy == NULL) {
            continue;
        }
        pthread_mutex_lock(&a->lock);
        if (install_locked(a, copy) != GW_OK) {
            /* install_locked freed it; the refresher assumes the role instead. */
        }
        pthread_mutex_unlock(&a->lock);
    }
}
