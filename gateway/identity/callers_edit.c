/* callers_edit: editing the callers file under its writer lock. See callers.h. */
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"
#include "identity/callers.h"
#include "identity/callers_int.h"

/*
 * Opens the file for update: the writer lock PATH.lock is taken first, held until
 * gw_callers_free, and the file read under it.
 */
enum gw_err gw_callers_open_for_update(const char *path, struct gw_callers **out, char *msg,
                                       size_t msglen)
{
    enum gw_err err;
    char lock_path[PATH_MAX];
    char *own_path = NULL;
    int lock_fd = -1;

    gw_say(msg, msglen, "out of memory");
    if ((size_t)snprintf(lock_path, sizeof lock_path, "%s.lock", path) >= sizeof lock_path) {
        gw_say(msg, msglen, "%s: the path is too long", path);
        err = GW_ERR_INVALID;
        goto out;
    }
    if ((own_path = strdup(path)) == NULL) {
        err = GW_ERR_NOMEM;
        goto out;
    }
    if ((err = gw_file_lock(lock_path, "callers lock file", &lock_fd, msg, msglen)) != GW_OK) {
        goto out;
    }
    if ((err = gw_callers_load(path, out, msg, msglen)) != GW_OK) {
        goto out;
    }
    (*out)->path = own_path;
    (*out)->lock_fd = lock_fd;
    own_path = NULL;
    lock_fd = -1;
out:
    if (err != GW_OK) {
        callers_plain_line(msg, msglen);
    }
    free(own_path);
    gw_file_unlock(lock_fd);
    return err;
}

/* The file's object for caller c: the keys it has, in the order the file documents them. */
static json_t *caller_object(const struct gw_caller *c)
{
    char hex[GW_VAULT_TOKEN_HASH_LEN * 2 + 1];
    json_t *obj = json_object();
    json_t *policies = json_array();
    bool ok = obj != NULL && policies != NULL;

    if (ok && c->has_token) {
        sodium_bin2hex(hex, sizeof hex, c->token_hash, sizeof c->token_hash);
        ok = json_object_set_new(obj, "token_sha", json_string(hex)) == 0;
    }
    if (ok && c->sdk_secret_id[0] != '\0') {
        ok = json_object_set_new(obj, "sdk_secret_id", json_string(c->sdk_secret_id)) == 0;
    }
    if (ok && c->certificate[0] != '\0') {
        ok = json_object_set_new(obj, "certificate", json_string(c->certificate)) == 0;
    }
    ok = ok && json_object_set_new(obj, "credential", json_string(c->credential)) == 0;
    for (size_t i = 0; ok && i < c->policy_count && i < GW_CALLERS_MAX_POLICIES; i++) {
        ok = c->policies[i] != NULL &&
             json_array_append_new(policies, json_string(c->policies[i])) == 0;
    }
    ok = ok && json_object_set(obj, "policies", policies) == 0;
    if (ok && c->attributes != NULL) {
        /* Cast: Jansson has no const copy, and a deep copy leaves the original untouched. */
        ok = json_object_set_new(obj, "attributes", json_deep_copy((json_t *)c->attributes)) == 0;
    }
    json_decref(policies);
    if (!ok) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

/*
 * Builds the index of an edited copy of the document and, on success only, makes the copy the
 * registry's document: on failure the registry is as it was (its index points into its own
 * document, which was never touched).
 */
static enum gw_err commit(struct gw_callers *callers, json_t *edited, const struct source *src)
{
    enum gw_err err = callers_build(src, edited, callers);
    if (err != GW_OK) {
        json_decref(edited);
        return err;
    }
    json_decref(callers->root);
    callers->root = edited;
    return GW_OK;
}

enum gw_err gw_callers_add(struct gw_callers *callers, const struct gw_caller *caller, char *msg,
                           size_t msglen)
{
    enum gw_err err;
    const char *path = callers->path != NULL ? callers->path : WHAT;
    struct source src = {.path = path, .msg = msg, .msglen = msglen};
    json_t *edited = NULL;
    json_t *obj = NULL;

    if (!gw_vault_name_valid(caller->name)) {
        err = callers_fail(
            &src, caller->name, NULL,
            "is not a valid caller name: use 1 to 64 characters from A-Z a-z 0-9 . _ -");
        goto out;
    }
    if (gw_callers_find(callers, caller->name) != NULL) {
        gw_say(msg, msglen,
               "%s: caller \"%s\" exists already: `tcgw callers remove %s` first to replace it",
               path, caller->name, caller->name);
        err = GW_ERR_EXISTS;
        goto out;
    }
    if (gw_callers_count(callers) >= GW_CALLERS_MAX) {
        gw_say(msg, msglen, "%s: holds %d callers already, the most it may", path, GW_CALLERS_MAX);
        err = GW_ERR_TOO_LARGE;
        goto out;
    }
    edited = json_deep_copy(callers->root);
    obj = caller_object(caller);
    if (edited == NULL || obj == NULL ||
        json_object_set_new(json_object_get(edited, "callers"), caller->name, obj) != 0) {
        json_decref(edited);
        gw_say(msg, msglen, "out of memory");
        err = GW_ERR_NOMEM;
        goto out;
    }
    obj = NULL; /* stolen, even when setting failed */
    if ((err = commit(callers, edited, &src)) != GW_OK) {
        if (err == GW_ERR_NOMEM) {
            gw_say(msg, msglen, "out of memory");
        }
        goto out;
    }
    err = GW_OK;
out:
    if (err != GW_OK) {
        callers_plain_line(msg, msglen);
    }
    return err;
}

enum gw_err gw_callers_remove(struct gw_callers *callers, const char *name)
{
    char msg[256];
    struct source src = {.path = WHAT, .msg = msg, .msglen = sizeof msg};

    if (gw_callers_find(callers, name) == NULL) {
        return GW_ERR_NOT_FOUND;
    }
    json_t *edited = json_deep_copy(callers->root);
    if (edited == NULL || json_object_del(json_object_get(edited, "callers"), name) != 0) {
        json_decref(edited);
        return GW_ERR_NOMEM;
    }
    /* Removing a caller breaks no rule: only memory can fail. */
    return commit(callers, edited, &src);
}

enum gw_err gw_callers_save(const struct gw_callers *callers, char *msg, size_t msglen)
{
    enum gw_err err;
    char *text = NULL;

    if (callers->path == NULL || callers->lock_fd < 0) {
        gw_say(msg, msglen, "the callers registry was not opened for update");
        return GW_ERR_INVALID;
    }
    text = json_dumps(callers->root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (text == NULL) {
        gw_say(msg, msglen, "out of memory");
        return GW_ERR_NOMEM;
    }
    size_t len = strlen(text);
    text[len] = '\n'; /* json_dumps leaves room for its NUL: the file ends with a line break */
    err = gw_file_replace(callers->path, WHAT, text, len + 1, 0600, msg, msglen);
    free(text);
    return err;
}
