#include "core/config.h"

#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_BODY_BYTES ((size_t)1 << 20)
#define DEFAULT_RESPONSE_BYTES ((size_t)8 << 20)

struct gw_config *gw_config_defaults(void)
{
    struct gw_config *cfg = calloc(1, sizeof *cfg);
    if (cfg == NULL) {
        return NULL;
    }
    const char *key_env = getenv("TCGW_MASTER_KEY_FILE");
    cfg->listen_address = strdup("127.0.0.1");
    cfg->listen_port = 8080;
    cfg->threads = 2;
    cfg->max_connections = 1024;
    cfg->max_body_bytes = DEFAULT_BODY_BYTES;
    cfg->spec_dir = strdup("specs");
    cfg->master_key_file = strdup(key_env != NULL && key_env[0] != '\0' ? key_env : "master.key");
    cfg->credential_store = strdup("credentials.store");
    cfg->credential = strdup("default");
    cfg->upstream.endpoint_suffix = strdup("tencentcloudapi.com");
    cfg->upstream.connect_timeout_ms = 5000;
    cfg->upstream.timeout_ms = 30000;
    cfg->upstream.max_response_bytes = DEFAULT_RESPONSE_BYTES;
    cfg->upstream.max_host_connections = 64;
    if (cfg->listen_address == NULL || cfg->spec_dir == NULL || cfg->master_key_file == NULL ||
        cfg->credential_store == NULL || cfg->credential == NULL ||
        cfg->upstream.endpoint_suffix == NULL) {
        gw_config_free(cfg);
        return NULL;
    }
    return cfg;
}

void gw_config_free(struct gw_config *cfg)
{
    if (cfg == NULL) {
        return;
    }
    free(cfg->listen_address);
    free(cfg->spec_dir);
    free(cfg->master_key_file);
    free(cfg->credential_store);
    free(cfg->credential);
    free(cfg->upstream.endpoint_suffix);
    free(cfg->upstream.ca_file);
    for (size_t i = 0; i < GW_CONFIG_MAX_OVERRIDES; i++) {
        free(cfg->upstream.connect_to[i]);
        free(cfg->upstream.resolve[i]);
    }
    free(cfg);
}

/* The loader's state: where we are, for messages that name the file and the key. */
struct loader {
    const char *path;
    const char *dir; /* directory of path, for relative paths */
    char *msg;
    size_t msglen;
};

static enum gw_err fail(struct loader *ld, const char *key, const char *what)
{
    snprintf(ld->msg, ld->msglen, "%s: \"%s\" %s", ld->path, key, what);
    return GW_ERR_INVALID;
}

static enum gw_err take_string(struct loader *ld, const char *key, json_t *v, char **slot)
{
    if (!json_is_string(v) || json_string_length(v) == 0) {
        return fail(ld, key, "must be a non-empty string");
    }
    char *s = strdup(json_string_value(v));
    if (s == NULL) {
        return GW_ERR_NOMEM;
    }
    free(*slot);
    *slot = s;
    return GW_OK;
}

static enum gw_err take_path(struct loader *ld, const char *key, json_t *v, char **slot)
{
    if (!json_is_string(v) || json_string_length(v) == 0) {
        return fail(ld, key, "must be a non-empty path");
    }
    const char *p = json_string_value(v);
    char *s;
    if (p[0] == '/') {
        s = strdup(p);
    } else {
        size_t n = strlen(ld->dir) + 1 + strlen(p) + 1;
        s = malloc(n);
        if (s != NULL) {
            snprintf(s, n, "%s/%s", ld->dir, p);
        }
    }
    if (s == NULL) {
        return GW_ERR_NOMEM;
    }
    free(*slot);
    *slot = s;
    return GW_OK;
}

static enum gw_err take_uint(struct loader *ld, const char *key, json_t *v, json_int_t lo,
                             json_int_t hi, json_int_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
        char what[96];
        snprintf(what, sizeof what, "must be an integer from %lld to %lld", (long long)lo,
                 (long long)hi);
        return fail(ld, key, what);
    }
    *out = json_integer_value(v);
    return GW_OK;
}

static enum gw_err take_list(struct loader *ld, const char *key, json_t *v,
                             char *slots[GW_CONFIG_MAX_OVERRIDES])
{
    if (!json_is_array(v) || json_array_size(v) >= GW_CONFIG_MAX_OVERRIDES) {
        return fail(ld, key, "must be a list of at most 15 strings");
    }
    size_t i;
    json_t *item;
    json_array_foreach (v, i, item) {
        enum gw_err err = take_string(ld, key, item, &slots[i]);
        if (err != GW_OK) {
            return err;
        }
    }
    return GW_OK;
}

static enum gw_err load_upstream(struct loader *ld, json_t *obj, struct gw_config *cfg)
{
    const char *key;
    json_t *v;
    json_int_t n;
    enum gw_err err = GW_OK;
    if (!json_is_object(obj)) {
        return fail(ld, "upstream", "must be an object");
    }
    json_object_foreach (obj, key, v) {
        if (strcmp(key, "endpoint_suffix") == 0) {
            err = take_string(ld, key, v, &cfg->upstream.endpoint_suffix);
        } else if (strcmp(key, "ca_file") == 0) {
            err = take_path(ld, key, v, &cfg->upstream.ca_file);
        } else if (strcmp(key, "connect_timeout_ms") == 0) {
            if ((err = take_uint(ld, key, v, 1, 600000, &n)) == GW_OK) {
                cfg->upstream.connect_timeout_ms = (long)n;
            }
        } else if (strcmp(key, "timeout_ms") == 0) {
            if ((err = take_uint(ld, key, v, 1, 3600000, &n)) == GW_OK) {
                cfg->upstream.timeout_ms = (long)n;
            }
        } else if (strcmp(key, "max_response_bytes") == 0) {
            if ((err = take_uint(ld, key, v, 1024, (json_int_t)1 << 30, &n)) == GW_OK) {
                cfg->upstream.max_response_bytes = (size_t)n;
            }
        } else if (strcmp(key, "max_host_connections") == 0) {
            if ((err = take_uint(ld, key, v, 1, 10000, &n)) == GW_OK) {
                cfg->upstream.max_host_connections = (unsigned)n;
            }
        } else if (strcmp(key, "connect_to") == 0) {
            err = take_list(ld, key, v, cfg->upstream.connect_to);
        } else if (strcmp(key, "resolve") == 0) {
            err = take_list(ld, key, v, cfg->upstream.resolve);
        } else {
            err =
                fail(ld, key, "is not a known key of \"upstream\" (see README.md, Configuration)");
        }
        if (err != GW_OK) {
            return err;
        }
    }
    return GW_OK;
}

static enum gw_err load_top(struct loader *ld, json_t *root, struct gw_config *cfg)
{
    const char *key;
    json_t *v;
    json_int_t n;
    enum gw_err err = GW_OK;
    json_object_foreach (root, key, v) {
        if (strcmp(key, "listen_address") == 0) {
            err = take_string(ld, key, v, &cfg->listen_address);
        } else if (strcmp(key, "listen_port") == 0) {
            if ((err = take_uint(ld, key, v, 0, 65535, &n)) == GW_OK) {
                cfg->listen_port = (uint16_t)n;
            }
        } else if (strcmp(key, "threads") == 0) {
            if ((err = take_uint(ld, key, v, 1, 64, &n)) == GW_OK) {
                cfg->threads = (unsigned)n;
            }
        } else if (strcmp(key, "max_connections") == 0) {
            if ((err = take_uint(ld, key, v, 1, 100000, &n)) == GW_OK) {
                cfg->max_connections = (unsigned)n;
            }
        } else if (strcmp(key, "max_body_bytes") == 0) {
            if ((err = take_uint(ld, key, v, 2, (json_int_t)64 << 20, &n)) == GW_OK) {
                cfg->max_body_bytes = (size_t)n;
            }
        } else if (strcmp(key, "spec_dir") == 0) {
            err = take_path(ld, key, v, &cfg->spec_dir);
        } else if (strcmp(key, "master_key_file") == 0) {
            err = take_path(ld, key, v, &cfg->master_key_file);
        } else if (strcmp(key, "credential_store") == 0) {
            err = take_path(ld, key, v, &cfg->credential_store);
        } else if (strcmp(key, "credential") == 0) {
            err = take_string(ld, key, v, &cfg->credential);
        } else if (strcmp(key, "vault_keys_resident") == 0) {
            if (!json_is_boolean(v)) {
                err = fail(ld, key, "must be true or false");
            } else {
                cfg->vault_keys_resident = json_is_true(v);
            }
        } else if (strcmp(key, "upstream") == 0) {
            err = load_upstream(ld, v, cfg);
        } else {
            err = fail(ld, key, "is not a known key (see README.md, Configuration)");
        }
        if (err != GW_OK) {
            return err;
        }
    }
    return GW_OK;
}

/* Relative defaults are relative to the config file's directory too. */
static enum gw_err anchor_default(struct loader *ld, char **slot)
{
    if ((*slot)[0] == '/') {
        return GW_OK;
    }
    json_t *v = json_string(*slot);
    if (v == NULL) {
        return GW_ERR_NOMEM;
    }
    enum gw_err err = take_path(ld, "", v, slot);
    json_decref(v);
    return err;
}

enum gw_err gw_config_load(const char *path, struct gw_config **out, char *msg, size_t msglen)
{
    enum gw_err err;
    json_error_t jerr;
    char *dir = NULL;
    json_t *root = NULL;
    snprintf(msg, msglen, "out of memory");
    struct gw_config *cfg = gw_config_defaults();
    if (cfg == NULL) {
        err = GW_ERR_NOMEM;
        goto out;
    }
    /* The anchored default must be the default before the file is read. */
    dir = strdup(path);
    if (dir == NULL) {
        err = GW_ERR_NOMEM;
        goto out;
    }
    char *slash = strrchr(dir, '/');
    if (slash == NULL) {
        free(dir);
        dir = strdup(".");
        if (dir == NULL) {
            err = GW_ERR_NOMEM;
            goto out;
        }
    } else if (slash == dir) {
        slash[1] = '\0';
    } else {
        *slash = '\0';
    }
    struct loader ld = {.path = path, .dir = dir, .msg = msg, .msglen = msglen};
    /* A key path from the environment is relative to the working directory, not the file. */
    const char *key_env = getenv("TCGW_MASTER_KEY_FILE");
    bool key_from_env = key_env != NULL && key_env[0] != '\0';
    if ((err = anchor_default(&ld, &cfg->spec_dir)) != GW_OK ||
        (!key_from_env && (err = anchor_default(&ld, &cfg->master_key_file)) != GW_OK) ||
        (err = anchor_default(&ld, &cfg->credential_store)) != GW_OK) {
        goto out;
    }
    root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        snprintf(msg, msglen, "%s:%d: %s", path, jerr.line, jerr.text);
        err = jerr.line <= 0 ? GW_ERR_IO : GW_ERR_INVALID;
        goto out;
    }
    if (!json_is_object(root)) {
        snprintf(msg, msglen, "%s: the configuration must be a JSON object", path);
        err = GW_ERR_INVALID;
        goto out;
    }
    if ((err = load_top(&ld, root, cfg)) != GW_OK) {
        goto out;
    }
    *out = cfg;
    cfg = NULL;
    err = GW_OK;
out:
    json_decref(root);
    free(dir);
    gw_config_free(cfg);
    return err;
}
