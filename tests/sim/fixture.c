#include "fixture.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define MAX_CODE_LEN 64

const char *const sim_fixture_account_states[] = {
    "NotEnterprise", "Violation", "ProtocolNotConfirmed", "BalanceInsufficient", NULL};

static const char *const object_keys[] = {"Regions", "AccessRegionsByDestRegion", "Accounts",
                                          "ProxyErrors", NULL};

static bool has_string(const json_t *o, const char *k)
{
    return json_is_string(json_object_get(o, k));
}

static bool has_int(const json_t *o, const char *k)
{
    return json_is_integer(json_object_get(o, k));
}

static bool int_array(const json_t *a)
{
    size_t i;
    const json_t *e;

    if (!json_is_array(a)) {
        return false;
    }
    json_array_foreach (a, i, e) {
        if (!json_is_integer(e)) {
            return false;
        }
    }
    return true;
}

/* Tencent's code form: "Word" or "Word.Word..." of ASCII letters and digits, starting upper. */
static bool valid_code(const char *s)
{
    size_t n = strlen(s);
    size_t i;
    bool part_start = true;

    if (n == 0 || n > MAX_CODE_LEN) {
        return false;
    }
    for (i = 0; i < n; i++) {
        char c = s[i];
        if (part_start) {
            if (c < 'A' || c > 'Z') {
                return false;
            }
            part_start = false;
        } else if (c == '.') {
            part_start = true;
        } else if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))) {
            return false;
        }
    }
    return !part_start;
}

/* Adds one file's object to the merged root; refuses a key two files give. */
static enum sim_err merge_file(json_t *root, const json_t *doc, const char *path, char *errbuf,
                               size_t errlen)
{
    const char *key;
    const json_t *v;
    size_t k;

    json_object_foreach ((json_t *)doc, key, v) {
        bool known = strcmp(key, "Proxies") == 0;
        for (k = 0; object_keys[k] != NULL; k++) {
            known = known || strcmp(key, object_keys[k]) == 0;
        }
        if (!known) {
            (void)snprintf(errbuf, errlen,
                           "%s: unknown key \"%.64s\" (expected Proxies, Regions, "
                           "AccessRegionsByDestRegion, Accounts or ProxyErrors)",
                           path, key);
            return SIM_EINVALID;
        }
        if (strcmp(key, "Proxies") == 0) {
            if (!json_is_array(v)) {
                (void)snprintf(errbuf, errlen, "%s: \"Proxies\" must be an array", path);
                return SIM_EINVALID;
            }
            if (json_array_extend(json_object_get(root, "Proxies"), (json_t *)v) != 0) {
                return SIM_ENOMEM;
            }
            continue;
        }
        if (!json_is_object(v)) {
            (void)snprintf(errbuf, errlen, "%s: \"%s\" must be an object", path, key);
            return SIM_EINVALID;
        }
        {
            json_t *into = json_object_get(root, key);
            const char *name;
            json_t *item;
            json_object_foreach ((json_t *)v, name, item) {
                if (json_object_get(into, name) != NULL) {
                    (void)snprintf(errbuf, errlen,
                                   "%s: %s.%.64s is already given by an earlier "
                                   "fixture file",
                                   path, key, name);
                    return SIM_EINVALID;
                }
                if (json_object_set(into, name, item) != 0) {
                    return SIM_ENOMEM;
                }
            }
        }
    }
    return SIM_OK;
}

static enum sim_err validate_proxies(const json_t *proxies, char *errbuf, size_t errlen)
{
    static const char *const str_fields[] = {"ProxyId",          "ProxyName", "AccessRegion",
                                             "RealServerRegion", "Status",    NULL};
    static const char *const int_fields[] = {"Bandwidth", "Concurrent", "Scalarable",
                                             "ProjectId", "CreateTime", NULL};
    const json_t *v;
    const json_t *other;
    size_t i;
    size_t k;

    if (json_array_size(proxies) > SIM_FIXTURE_MAX_PROXIES) {
        (void)snprintf(errbuf, errlen, "\"Proxies\" holds at most %d proxies",
                       SIM_FIXTURE_MAX_PROXIES);
        return SIM_EINVALID;
    }
    json_array_foreach (proxies, i, v) {
        for (k = 0; str_fields[k] != NULL; k++) {
            if (!has_string(v, str_fields[k])) {
                (void)snprintf(errbuf, errlen, "Proxies[%zu].%s must be a string", i,
                               str_fields[k]);
                return SIM_EINVALID;
            }
        }
        for (k = 0; int_fields[k] != NULL; k++) {
            if (!has_int(v, int_fields[k])) {
                (void)snprintf(errbuf, errlen, "Proxies[%zu].%s must be an integer", i,
                               int_fields[k]);
                return SIM_EINVALID;
            }
        }
        if (json_object_get(v, "ProxyType") != NULL && !has_int(v, "ProxyType")) {
            (void)snprintf(errbuf, errlen, "Proxies[%zu].ProxyType must be an integer", i);
            return SIM_EINVALID;
        }
        json_array_foreach (proxies, k, other) {
            if (k < i &&
                json_equal(json_object_get(other, "ProxyId"), json_object_get(v, "ProxyId"))) {
                (void)snprintf(errbuf, errlen, "Proxies[%zu].ProxyId repeats Proxies[%zu]", i, k);
                return SIM_EINVALID;
            }
        }
    }
    return SIM_OK;
}

static enum sim_err validate_access(const json_t *access, char *errbuf, size_t errlen)
{
    const char *key;
    const json_t *v;
    const json_t *e;
    size_t i;

    json_object_foreach ((json_t *)access, key, v) {
        if (!json_is_array(v)) {
            (void)snprintf(errbuf, errlen, "AccessRegionsByDestRegion.%s must be an array", key);
            return SIM_EINVALID;
        }
        json_array_foreach (v, i, e) {
            if (!has_string(e, "RegionId") || !int_array(json_object_get(e, "BandwidthList")) ||
                !int_array(json_object_get(e, "ConcurrentList"))) {
                (void)snprintf(errbuf, errlen,
                               "AccessRegionsByDestRegion.%s[%zu] needs RegionId, BandwidthList "
                               "and ConcurrentList",
                               key, i);
                return SIM_EINVALID;
            }
        }
    }
    return SIM_OK;
}

static enum sim_err validate_accounts(const json_t *accounts, char *errbuf, size_t errlen)
{
    const char *name;
    const char *state;
    const json_t *v;
    const json_t *flag;
    size_t k;

    if (json_object_size(accounts) > SIM_FIXTURE_MAX_ACCOUNTS) {
        (void)snprintf(errbuf, errlen, "\"Accounts\" holds at most %d accounts",
                       SIM_FIXTURE_MAX_ACCOUNTS);
        return SIM_EINVALID;
    }
    json_object_foreach ((json_t *)accounts, name, v) {
        if (!json_is_object(v)) {
            (void)snprintf(errbuf, errlen, "Accounts.%.64s must be an object of states", name);
            return SIM_EINVALID;
        }
        json_object_foreach ((json_t *)v, state, flag) {
            bool known = false;
            for (k = 0; sim_fixture_account_states[k] != NULL; k++) {
                known = known || strcmp(state, sim_fixture_account_states[k]) == 0;
            }
            if (!known || !json_is_boolean(flag)) {
                (void)snprintf(errbuf, errlen,
                               "Accounts.%.64s.%.64s: an account state is one of NotEnterprise, "
                               "Violation, ProtocolNotConfirmed, BalanceInsufficient, and is "
                               "true or false",
                               name, state);
                return SIM_EINVALID;
            }
        }
    }
    return SIM_OK;
}

static bool proxy_exists(const json_t *proxies, const char *id)
{
    size_t i;
    const json_t *p;

    json_array_foreach (proxies, i, p) {
        if (strcmp(json_string_value(json_object_get(p, "ProxyId")), id) == 0) {
            return true;
        }
    }
    return false;
}

static enum sim_err validate_proxy_errors(const json_t *errors, const json_t *proxies, char *errbuf,
                                          size_t errlen)
{
    const char *id;
    const json_t *v;

    json_object_foreach ((json_t *)errors, id, v) {
        const json_t *code = json_object_get(v, "Code");
        const json_t *msg = json_object_get(v, "Message");
        if (!proxy_exists(proxies, id)) {
            (void)snprintf(errbuf, errlen, "ProxyErrors.%.64s names no proxy of the fixture", id);
            return SIM_EINVALID;
        }
        if (!json_is_object(v) || json_object_size(v) != 2 || !json_is_string(code) ||
            !valid_code(json_string_value(code)) || !json_is_string(msg) ||
            json_string_length(msg) == 0 || json_string_length(msg) >= SIM_FAULT_MSG_MAX) {
            (void)snprintf(errbuf, errlen,
                           "ProxyErrors.%.64s must be {\"Code\": \"Word.Word\", \"Message\": "
                           "\"...\"} (a message of 1 to %d bytes)",
                           id, SIM_FAULT_MSG_MAX - 1);
            return SIM_EINVALID;
        }
    }
    return SIM_OK;
}

static enum sim_err validate(const json_t *root, char *errbuf, size_t errlen)
{
    enum sim_err err;
    json_t *accounts = json_object_get(root, "Accounts");

    if (json_array_size(json_object_get(root, "Proxies")) == 0 &&
        json_object_size(json_object_get(root, "AccessRegionsByDestRegion")) == 0) {
        (void)snprintf(errbuf, errlen,
                       "the fixture has neither \"Proxies\" nor \"AccessRegionsByDestRegion\"");
        return SIM_EINVALID;
    }
    if ((err = validate_proxies(json_object_get(root, "Proxies"), errbuf, errlen)) != SIM_OK ||
        (err = validate_access(json_object_get(root, "AccessRegionsByDestRegion"), errbuf,
                               errlen)) != SIM_OK ||
        (err = validate_accounts(accounts, errbuf, errlen)) != SIM_OK ||
        (err = validate_proxy_errors(json_object_get(root, "ProxyErrors"),
                                     json_object_get(root, "Proxies"), errbuf, errlen)) != SIM_OK) {
        return err;
    }
    if (json_object_get(accounts, SIM_FIXTURE_DEFAULT_ACCOUNT) == NULL &&
        json_object_set_new(accounts, SIM_FIXTURE_DEFAULT_ACCOUNT, json_object()) != 0) {
        return SIM_ENOMEM;
    }
    return SIM_OK;
}

enum sim_err sim_fixture_load(const char *const *paths, size_t n, json_t **out, char *errbuf,
                              size_t errlen)
{
    enum sim_err err = SIM_ENOMEM;
    json_t *root = NULL;
    json_t *doc = NULL;
    json_error_t jerr;
    size_t i;
    size_t k;

    if (n == 0 || n > SIM_FIXTURE_MAX_FILES) {
        (void)snprintf(errbuf, errlen, "give 1 to %d fixture files", SIM_FIXTURE_MAX_FILES);
        return SIM_EINVALID;
    }
    root = json_object();
    if (root == NULL || json_object_set_new(root, "Proxies", json_array()) != 0) {
        goto out;
    }
    for (k = 0; object_keys[k] != NULL; k++) {
        if (json_object_set_new(root, object_keys[k], json_object()) != 0) {
            goto out;
        }
    }
    for (i = 0; i < n; i++) {
        doc = json_load_file(paths[i], JSON_REJECT_DUPLICATES, &jerr);
        if (doc == NULL) {
            (void)snprintf(errbuf, errlen, "%s:%d:%d: %s", paths[i], jerr.line, jerr.column,
                           jerr.text);
            err = SIM_EINVALID;
            goto out;
        }
        if (!json_is_object(doc)) {
            (void)snprintf(errbuf, errlen, "%s: the fixture must be a JSON object", paths[i]);
            err = SIM_EINVALID;
            goto out;
        }
        if ((err = merge_file(root, doc, paths[i], errbuf, errlen)) != SIM_OK) {
            goto out;
        }
        json_decref(doc);
        doc = NULL;
    }
    if ((err = validate(root, errbuf, errlen)) != SIM_OK) {
        goto out;
    }
    *out = root;
    root = NULL;
    err = SIM_OK;
out:
    json_decref(doc);
    json_decref(root);
    return err;
}
