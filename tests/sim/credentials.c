#include "credentials.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LIST 1000

struct sim_credentials {
    json_t *keys; /* SecretId -> SecretKey */
    json_t
        *entries; /* SecretId -> {"Account", and "Actions", "ProxyIds", "AuthFailure" if given} */
};

static bool string_list(const json_t *v)
{
    size_t i;
    const json_t *e;

    if (!json_is_array(v) || json_array_size(v) > MAX_LIST) {
        return false;
    }
    json_array_foreach (v, i, e) {
        if (!json_is_string(e) || json_string_length(e) == 0) {
            return false;
        }
    }
    return true;
}

static bool in_list(const json_t *list, const char *s)
{
    size_t i;
    const json_t *e;

    json_array_foreach (list, i, e) {
        if (strcmp(json_string_value(e), s) == 0) {
            return true;
        }
    }
    return false;
}

/* Checks one object-form entry; the problem goes to errbuf. */
static bool valid_entry(const char *path, const char *id, const json_t *v, char *errbuf,
                        size_t errlen)
{
    static const char *const keys[] = {"SecretKey", "Account",     "Actions",
                                       "ProxyIds",  "AuthFailure", NULL};
    const char *k;
    const json_t *item;
    const json_t *account = json_object_get(v, "Account");
    const json_t *refusal = json_object_get(v, "AuthFailure");
    const json_t *actions = json_object_get(v, "Actions");
    const json_t *proxies = json_object_get(v, "ProxyIds");
    size_t i;

    json_object_foreach ((json_t *)v, k, item) {
        bool known = false;
        (void)item;
        for (i = 0; keys[i] != NULL; i++) {
            known = known || strcmp(k, keys[i]) == 0;
        }
        if (!known) {
            (void)snprintf(errbuf, errlen,
                           "%s: %.64s has an unknown key \"%.64s\" (expected SecretKey, Account, "
                           "Actions, ProxyIds, AuthFailure)",
                           path, id, k);
            return false;
        }
    }
    if (!json_is_string(json_object_get(v, "SecretKey")) ||
        json_string_length(json_object_get(v, "SecretKey")) == 0) {
        (void)snprintf(errbuf, errlen, "%s: %.64s needs a non-empty \"SecretKey\" string", path,
                       id);
        return false;
    }
    if ((account != NULL && (!json_is_string(account) || json_string_length(account) == 0)) ||
        (refusal != NULL && (!json_is_string(refusal) || json_string_length(refusal) == 0 ||
                             json_string_length(refusal) >= SIM_FAULT_MSG_MAX)) ||
        (actions != NULL && !string_list(actions)) || (proxies != NULL && !string_list(proxies))) {
        (void)snprintf(errbuf, errlen,
                       "%s: %.64s: Account and AuthFailure must be non-empty strings, Actions and "
                       "ProxyIds arrays of non-empty strings",
                       path, id);
        return false;
    }
    return true;
}

/* The entry kept for a SecretId: Account (filled in) and the optional keys as given. */
static json_t *entry_of(const json_t *v)
{
    static const char *const kept[] = {"Actions", "ProxyIds", "AuthFailure", NULL};
    const json_t *account = json_object_get(v, "Account");
    json_t *e = json_object();
    size_t i;

    if (e == NULL || json_object_set_new(e, "Account",
                                         account != NULL ? json_incref((json_t *)account)
                                                         : json_string("default")) != 0) {
        json_decref(e);
        return NULL;
    }
    for (i = 0; kept[i] != NULL; i++) {
        json_t *x = json_object_get(v, kept[i]);
        if (x != NULL && json_object_set(e, kept[i], x) != 0) {
            json_decref(e);
            return NULL;
        }
    }
    return e;
}

enum sim_err sim_credentials_load(const char *path, struct sim_credentials **out, char *errbuf,
                                  size_t errlen)
{
    enum sim_err err = SIM_ENOMEM;
    struct sim_credentials *c = NULL;
    json_error_t jerr;
    json_t *doc = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    const char *id;
    json_t *v;

    if (doc == NULL) {
        (void)snprintf(errbuf, errlen, "%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
        return SIM_EINVALID;
    }
    if (!json_is_object(doc) || json_object_size(doc) > SIM_CREDENTIALS_MAX) {
        (void)snprintf(errbuf, errlen,
                       "%s must be a JSON object {\"SecretId\": \"SecretKey\" or {\"SecretKey\": "
                       "...}} of at most %d keys",
                       path, SIM_CREDENTIALS_MAX);
        err = SIM_EINVALID;
        goto out;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL || (c->keys = json_object()) == NULL || (c->entries = json_object()) == NULL) {
        goto out;
    }
    json_object_foreach (doc, id, v) {
        json_t *key = v;
        json_t *entry;
        if (id[0] == '\0' || strchr(id, '/') != NULL) {
            (void)snprintf(errbuf, errlen, "%s: a SecretId must be non-empty and contain no '/'",
                           path);
            err = SIM_EINVALID;
            goto out;
        }
        if (json_is_object(v)) {
            if (!valid_entry(path, id, v, errbuf, errlen)) {
                err = SIM_EINVALID;
                goto out;
            }
            key = json_object_get(v, "SecretKey");
        } else if (!json_is_string(v) || json_string_length(v) == 0) {
            (void)snprintf(errbuf, errlen,
                           "%s: %.64s must map to a non-empty SecretKey string or an object "
                           "with one",
                           path, id);
            err = SIM_EINVALID;
            goto out;
        }
        entry = entry_of(json_is_object(v) ? v : NULL);
        if (entry == NULL || json_object_set_new(c->entries, id, entry) != 0 ||
            json_object_set(c->keys, id, key) != 0) {
            goto out;
        }
    }
    *out = c;
    c = NULL;
    err = SIM_OK;
out:
    sim_credentials_free(c);
    json_decref(doc);
    return err;
}

void sim_credentials_free(struct sim_credentials *c)
{
    if (c == NULL) {
        return;
    }
    json_decref(c->keys);
    json_decref(c->entries);
    free(c);
}

const json_t *sim_credentials_keys(const struct sim_credentials *c)
{
    return c->keys;
}

const char *sim_credentials_unknown_account(const struct sim_credentials *c, const json_t *accounts)
{
    const char *id;
    const json_t *e;

    json_object_foreach (c->entries, id, e) {
        const char *account = json_string_value(json_object_get(e, "Account"));
        if (json_object_get(accounts, account) == NULL) {
            return account;
        }
    }
    return NULL;
}

enum sim_err sim_credentials_authorize(const struct sim_credentials *c, const char *secret_id,
                                       const char *action, struct sim_principal *who,
                                       struct sim_fault *f)
{
    const json_t *e = json_object_get(c->entries, secret_id);
    const json_t *refusal = json_object_get(e, "AuthFailure");
    const json_t *actions = json_object_get(e, "Actions");

    if (e == NULL) {
        return sim_fault_set(f, "AuthFailure.SecretIdNotFound",
                             "the SecretId in the Credential is not known to this service");
    }
    if (refusal != NULL) {
        return sim_fault_set(f, "AuthFailure", "%s", json_string_value(refusal));
    }
    if (actions != NULL && !in_list(actions, action)) {
        return sim_fault_set(f, "AuthFailure.UnauthorizedOperation",
                             "the sub-account %s is not authorized for gaap:%s: ask the root "
                             "account to grant it in CAM",
                             secret_id, action);
    }
    who->secret_id = json_object_iter_key(json_object_iter_at(c->entries, secret_id));
    who->account = json_string_value(json_object_get(e, "Account"));
    who->proxy_ids = json_object_get(e, "ProxyIds");
    return SIM_OK;
}
