/* tcgw secrets put|put-role|put-value|list: manages the encrypted credential store. */
#include <errno.h>
#include <jansson.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cli_secrets_read.h"
#include "core/config.h"
#include "vault/vault.h"

static const char usage_text[] =
    "usage: tcgw secrets put NAME [--temporary] [--config FILE | --key FILE --store FILE]\n"
    "                             [--passphrase-fd N]\n"
    "       tcgw secrets put-role NAME --source CRED --role-arn ARN --session-name NAME\n"
    "                             [--duration SECONDS] [--region REGION] [--config FILE | ...]\n"
    "       tcgw secrets put-value NAME [--config FILE | --key FILE --store FILE]\n"
    "                              [--passphrase-fd N]\n"
    "       tcgw secrets list [--config FILE | --key FILE --store FILE] [--passphrase-fd N] "
    "[--json]\n"
    "put reads the SecretId, then the SecretKey, one per line from standard input; with\n"
    "--temporary also the session token and the expiry (RFC 3339, e.g. 2026-12-02T15:00:00Z,\n"
    "or seconds since the epoch), two more lines.\n"
    "put-role stores a role: the gateway assumes it through STS AssumeRole with credential CRED\n"
    "(allowed sts:AssumeRole only) and refreshes its temporary keys in the background;\n"
    "--duration is DurationSeconds (default 3600, 10 to 43200), --region the STS call's region\n"
    "(default ap-guangzhou).\n"
    "put-value reads a secret value that calls may name as {{tcgw:secret/NAME}}: all of\n"
    "standard input up to end of file (Ctrl-D), several lines allowed (a PEM key), at most 64 "
    "KiB;\n"
    "one final newline is dropped. On a terminal it is not shown as it is typed.\n"
    "A store protected by a passphrase asks for it on the terminal, or reads it from file\n"
    "descriptor N (--passphrase-fd N).\n";

struct args {
    const char *verb; /* "put", "put-role", "put-value" or "list" */
    const char *name;
    bool temporary;                                                   /* put --temporary */
    const char *source, *role_arn, *session_name, *region, *duration; /* put-role */
    const char *config_path;
    const char *key_path;
    const char *store_path;
    int passphrase_fd; /* -1: the terminal, if the store needs a passphrase */
    bool json;
};

/* Returns 0 when the arguments are good, 2 after printing a usage error, -1 for --help. */
static int parse_args(int argc, char **argv, struct args *a)
{
    static const char *const file_opts[] = {"--config", "--key", "--store"};
    int positional = 0;
    bool only_positional = false;

    memset(a, 0, sizeof *a);
    a->passphrase_fd = -1;
    if (argc < 2) {
        return gw_cli_usage_error("secrets", "say put or list", "", usage_text);
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        return -1;
    }
    if (strcmp(argv[1], "put") != 0 && strcmp(argv[1], "put-value") != 0 &&
        strcmp(argv[1], "put-role") != 0 && strcmp(argv[1], "list") != 0) {
        return gw_cli_usage_error(
            "secrets", "unknown subcommand: say put, put-role, put-value or list", "", usage_text);
    }
    a->verb = argv[1];
    for (int i = 2; i < argc; i++) {
        const char *arg = argv[i];
        const char **slots[] = {&a->config_path, &a->key_path, &a->store_path};
        int matched = 0;
        if (!only_positional && arg[0] == '-' && arg[1] != '\0') {
            if (strcmp(arg, "--") == 0) {
                only_positional = true;
                continue;
            }
            if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
                return -1;
            }
            if (strcmp(arg, "--json") == 0) {
                a->json = true;
                continue;
            }
            const char *fd_value = NULL;
            int fm = gw_cli_take_value(argc, argv, &i, "--passphrase-fd", &fd_value);
            if (fm != 0) {
                if (fm < 0 || gw_cli_parse_fd("secrets", fd_value, &a->passphrase_fd) != 0) {
                    return gw_cli_usage_error("secrets", "give a number to ", "--passphrase-fd",
                                              usage_text);
                }
                continue;
            }
            if (strcmp(arg, "--temporary") == 0 && strcmp(a->verb, "put") == 0) {
                a->temporary = true;
                continue;
            }
            if (strcmp(a->verb, "put-role") == 0) {
                static const char *const role_opts[] = {"--source", "--role-arn", "--session-name",
                                                        "--region", "--duration"};
                const char **role_slots[] = {&a->source, &a->role_arn, &a->session_name, &a->region,
                                             &a->duration};
                for (size_t k = 0; k < sizeof role_opts / sizeof *role_opts && matched == 0; k++) {
                    const char *value = NULL;
                    matched = gw_cli_take_value(argc, argv, &i, role_opts[k], &value);
                    if (matched < 0 || (matched > 0 && *role_slots[k] != NULL)) {
                        return gw_cli_usage_error("secrets", "give one value to ", role_opts[k],
                                                  usage_text);
                    }
                    if (matched > 0) {
                        *role_slots[k] = value;
                    }
                }
                if (matched > 0) {
                    continue;
                }
            }
            for (size_t k = 0; k < sizeof file_opts / sizeof *file_opts && matched == 0; k++) {
                const char *value = NULL;
                matched = gw_cli_take_value(argc, argv, &i, file_opts[k], &value);
                if (matched < 0 || (matched > 0 && *slots[k] != NULL)) {
                    return gw_cli_usage_error("secrets", "give one FILE to ", file_opts[k],
                                              usage_text);
                }
                if (matched > 0) {
                    *slots[k] = value;
                }
            }
            if (matched == 0) {
                return gw_cli_usage_error("secrets", "unknown option ", arg, usage_text);
            }
            continue;
        }
        positional++;
        if (strcmp(a->verb, "list") != 0 && positional == 1) {
            a->name = arg;
        }
    }

    if (strcmp(a->verb, "put-value") == 0) {
        if (positional != 1) {
            return gw_cli_usage_error("secrets",
                                      positional == 0
                                          ? "put-value needs the value's NAME"
                                          : "put-value takes only NAME: the value is read from "
                                            "standard input, never from the command line",
                                      "", usage_text);
        }
        if (!gw_vault_name_valid(a->name)) {
            fprintf(stderr,
                    "tcgw secrets: a secret value NAME is 1 to %d characters from "
                    "A-Z a-z 0-9 . _ -\n%s",
                    GW_VAULT_MAX_NAME, usage_text);
            return 2;
        }
        if (a->json) {
            return gw_cli_usage_error("secrets", "--json is for list only", "", usage_text);
        }
    } else if (strcmp(a->verb, "put-role") == 0) {
        if (positional != 1 || !gw_vault_name_valid(a->name)) {
            return gw_cli_usage_error("secrets", "put-role needs one role NAME (A-Z a-z 0-9 . _ -)",
                                      "", usage_text);
        }
        if (a->source == NULL || a->role_arn == NULL || a->session_name == NULL) {
            return gw_cli_usage_error("secrets",
                                      "put-role needs --source, --role-arn and --session-name", "",
                                      usage_text);
        }
        if (a->json) {
            return gw_cli_usage_error("secrets", "--json is for list only", "", usage_text);
        }
    } else if (strcmp(a->verb, "put") == 0) {
        if (positional == 0) {
            return gw_cli_usage_error("secrets", "put needs the credential NAME", "", usage_text);
        }
        if (positional > 1) {
            return gw_cli_usage_error(
                "secrets",
                "put takes only NAME: the SecretId and SecretKey are read from "
                "standard input, never from the command line",
                "", usage_text);
        }
        if (!gw_vault_name_valid(a->name)) {
            fprintf(stderr,
                    "tcgw secrets: a credential NAME is 1 to %d characters from "
                    "A-Z a-z 0-9 . _ -\n%s",
                    GW_VAULT_MAX_NAME, usage_text);
            return 2;
        }
        if (a->json) {
            return gw_cli_usage_error("secrets", "--json is for list only", "", usage_text);
        }
    } else if (positional > 0) {
        return gw_cli_usage_error("secrets", "list takes no arguments besides the options", "",
                                  usage_text);
    }
    return 0;
}

/* ---- Subcommands ---- */

/*
 * The secrets are read first and the store after, under its writer lock: a put that waits for the
 * operator to type never holds the lock, and one that holds it reads the store as the previous
 * writer left it.
 */
#define EXPIRY_MAX 40

/* tcgw secrets put-role: no secret in it, so nothing is read from standard input. */
static int put_role(const struct args *a, const struct gw_vault_master *master,
                    const char *store_path)
{
    char msg[512];
    struct gw_vault *vault = NULL;
    int rc = 1;
    unsigned long duration = 3600;
    if (a->duration != NULL) {
        char *end = NULL;
        errno = 0;
        duration = strtoul(a->duration, &end, 10);
        if (errno != 0 || end == a->duration || *end != '\0' || duration > GW_VAULT_MAX_DURATION) {
            fprintf(stderr, "tcgw secrets: --duration must be seconds from %d to %d\n",
                    GW_VAULT_MIN_DURATION, GW_VAULT_MAX_DURATION);
            return 2;
        }
    }
    struct gw_vault_role_def def = {
        .source = a->source,
        .role_arn = a->role_arn,
        .session_name = a->session_name,
        .region = a->region != NULL ? a->region : "ap-guangzhou",
        .duration = (unsigned)duration,
    };
    if (gw_vault_open_master(master, store_path, GW_VAULT_OPEN_UPDATE, &vault, msg, sizeof msg) !=
        GW_OK) {
        fprintf(stderr, "tcgw secrets: %s; nothing was stored\n", msg);
        goto out;
    }
    bool existed = gw_vault_has(vault, a->name);
    if (gw_vault_put_role(vault, a->name, &def, msg, sizeof msg) != GW_OK ||
        gw_vault_save(vault, store_path, msg, sizeof msg) != GW_OK) {
        fprintf(stderr, "tcgw secrets: %s; nothing was stored\n", msg);
        goto out;
    }
    printf("%s role '%s' (source %s, %s, session %s, %u s, region %s) in %s\n",
           existed ? "replaced" : "stored", a->name, def.source, def.role_arn, def.session_name,
           def.duration, def.region, store_path);
    if (!gw_vault_has(vault, def.source)) {
        fprintf(stderr,
                "tcgw secrets: warning: no credential '%s' yet: store it with `tcgw secrets put "
                "%s` before the gateway assumes the role\n",
                def.source, def.source);
    }
    rc = 0;
out:
    gw_vault_free(vault);
    return rc;
}

static int put(const struct args *a, const struct gw_vault_master *master, const char *store_path)
{
    char msg[512];
    size_t id_len = 0, key_len = 0;
    int rc = 1;
    bool tty = isatty(STDIN_FILENO) == 1;
    struct gw_vault *vault = NULL;

    size_t token_len = 0, expiry_len = 0;
    int64_t expires = 0;
    /* One protected region for all values: the only place they live in this process. */
    char *id = sodium_malloc(GW_VAULT_MAX_SECRET_ID + 1 + GW_VAULT_MAX_SECRET_KEY + 1 +
                             GW_VAULT_MAX_TOKEN + 1 + EXPIRY_MAX + 1);
    if (id == NULL) {
        fputs("tcgw secrets: out of memory\n", stderr);
        return 1;
    }
    char *key = id + GW_VAULT_MAX_SECRET_ID + 1;
    char *token = key + GW_VAULT_MAX_SECRET_KEY + 1;
    char *expiry = token + GW_VAULT_MAX_TOKEN + 1;

    if (tty) {
        fprintf(stderr, "SecretId for '%s': ", a->name);
    }
    if (gw_cli_secrets_read_line("SecretId", id, GW_VAULT_MAX_SECRET_ID, &id_len) != 0) {
        goto out;
    }
    if ((tty ? gw_cli_secrets_read_hidden("SecretKey (not shown): ", "SecretKey",
                                          gw_cli_secrets_read_line, key, GW_VAULT_MAX_SECRET_KEY,
                                          &key_len)
             : gw_cli_secrets_read_line("SecretKey", key, GW_VAULT_MAX_SECRET_KEY, &key_len)) !=
        0) {
        goto out;
    }
    if (a->temporary) {
        if ((tty ? gw_cli_secrets_read_hidden("Token (not shown): ", "Token",
                                              gw_cli_secrets_read_line, token, GW_VAULT_MAX_TOKEN,
                                              &token_len)
                 : gw_cli_secrets_read_line("Token", token, GW_VAULT_MAX_TOKEN, &token_len)) != 0) {
            goto out;
        }
        if (tty) {
            fprintf(stderr, "Expiry (RFC 3339 or epoch seconds): ");
        }
        if (gw_cli_secrets_read_line("expiry", expiry, EXPIRY_MAX, &expiry_len) != 0) {
            goto out;
        }
        expiry[expiry_len] = '\0';
        if (gw_cli_secrets_parse_expiry(expiry, &expires) != 0) {
            fprintf(stderr,
                    "tcgw secrets: the expiry must be RFC 3339 (2026-12-02T15:00:00Z, or with "
                    "+08:00) or seconds since the epoch; nothing was stored\n");
            goto out;
        }
    }

    if (gw_vault_open_master(master, store_path, GW_VAULT_OPEN_UPDATE, &vault, msg, sizeof msg) !=
        GW_OK) {
        fprintf(stderr, "tcgw secrets: %s; nothing was stored\n", msg);
        goto out;
    }
    bool existed = gw_vault_has(vault, a->name);
    if ((a->temporary
             ? gw_vault_put_temporary(vault, a->name, id, id_len, key, key_len, token, token_len,
                                      expires, msg, sizeof msg)
             : gw_vault_put(vault, a->name, id, id_len, key, key_len, msg, sizeof msg)) != GW_OK) {
        fprintf(stderr, "tcgw secrets: %s; nothing was stored\n", msg);
        goto out;
    }
    if (gw_vault_save(vault, store_path, msg, sizeof msg) != GW_OK) {
        fprintf(stderr, "tcgw secrets: %s; nothing was stored\n", msg);
        goto out;
    }
    /* The tail is of the SecretId just stored: four characters, not secret. */
    size_t t = id_len < 4 ? id_len : 4;
    printf("%s %scredential '%s' (SecretId ...%.*s) in %s\n", existed ? "replaced" : "stored",
           a->temporary ? "temporary " : "", a->name, (int)t, id + id_len - t, store_path);
    if (a->temporary && expires <= (int64_t)time(NULL)) {
        fprintf(stderr, "tcgw secrets: warning: '%s' has expired already: it signs nothing\n",
                a->name);
    }
    rc = 0;
out:
    gw_vault_free(vault); /* releases the lock */
    sodium_free(id);      /* zeroes both values */
    return rc;
}

/* As put, for a secret value: read first, then the store under its writer lock. */
static int put_value(const struct args *a, const struct gw_vault_master *master,
                     const char *store_path)
{
    char msg[512];
    size_t len = 0;
    int rc = 1;
    bool tty = isatty(STDIN_FILENO) == 1;
    struct gw_vault *vault = NULL;
    char *value = sodium_malloc(GW_VAULT_MAX_VALUE + 1);
    if (value == NULL) {
        fputs("tcgw secrets: out of memory\n", stderr);
        return 1;
    }
    if ((tty ? gw_cli_secrets_read_hidden(
                   "Secret value (not shown; end with Ctrl-D on a line of its own): ",
                   "secret value", gw_cli_secrets_read_all, value, GW_VAULT_MAX_VALUE, &len)
             : gw_cli_secrets_read_all("secret value", value, GW_VAULT_MAX_VALUE, &len)) != 0) {
        goto out;
    }
    if (gw_vault_open_master(master, store_path, GW_VAULT_OPEN_UPDATE, &vault, msg, sizeof msg) !=
        GW_OK) {
        fprintf(stderr, "tcgw secrets: %s; nothing was stored\n", msg);
        goto out;
    }
    bool existed = gw_vault_has_value(vault, a->name);
    if (gw_vault_put_value(vault, a->name, (const unsigned char *)value, len, msg, sizeof msg) !=
            GW_OK ||
        gw_vault_save(vault, store_path, msg, sizeof msg) != GW_OK) {
        fprintf(stderr, "tcgw secrets: %s; nothing was stored\n", msg);
        goto out;
    }
    printf("%s secret value '%s' (%zu bytes) in %s; calls name it as {{tcgw:secret/%s}}\n",
           existed ? "replaced" : "stored", a->name, len, store_path, a->name);
    rc = 0;
out:
    gw_vault_free(vault);
    sodium_free(value); /* zeroes it */
    return rc;
}

/*
 * Prints [{"name":..,"secret_id_tail":..},...] for credentials, then {"name":..,"value_bytes":..}
 * for secret values. Names, tails and lengths only: nothing secret.
 */
static int list_json(const struct gw_vault *vault)
{
    char name[GW_VAULT_MAX_NAME + 1];
    char *text = NULL;
    int rc = 1;
    json_t *arr = json_array();
    if (arr == NULL) {
        goto out;
    }
    for (size_t i = 0; i < gw_vault_count(vault); i++) {
        struct gw_vault_info info;
        json_t *o;
        if (gw_vault_info(vault, i, &info) != GW_OK) {
            goto out;
        }
        if (info.type == GW_VAULT_ROLE) {
            o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:I}", "name", info.name, "type", "role",
                          "source", info.source, "role_arn", info.role_arn, "session_name",
                          info.session_name, "region", info.region, "duration_seconds",
                          (json_int_t)info.duration);
        } else if (info.type == GW_VAULT_TEMPORARY) {
            o = json_pack("{s:s,s:s,s:s,s:I}", "name", info.name, "type", "temporary",
                          "secret_id_tail", info.id_tail, "expires", (json_int_t)info.expires);
        } else {
            o = json_pack("{s:s,s:s}", "name", info.name, "secret_id_tail", info.id_tail);
        }
        if (json_array_append_new(arr, o) != 0) {
            goto out;
        }
    }
    for (size_t i = 0; i < gw_vault_value_count(vault); i++) {
        size_t len = 0;
        if (gw_vault_value_describe(vault, i, name, &len) != GW_OK ||
            json_array_append_new(
                arr, json_pack("{s:s,s:I}", "name", name, "value_bytes", (json_int_t)len)) != 0) {
            goto out;
        }
    }
    if ((text = json_dumps(arr, JSON_INDENT(2) | JSON_PRESERVE_ORDER)) == NULL) {
        goto out;
    }
    printf("%s\n", text);
    rc = 0;
out:
    if (rc != 0) {
        fputs("tcgw secrets: out of memory\n", stderr);
    }
    free(text);
    json_decref(arr);
    return rc;
}

static int list(const struct gw_vault *vault, const struct args *a, const char *store_path)
{
    char name[GW_VAULT_MAX_NAME + 1];
    size_t n = gw_vault_count(vault);

    if (a->json) {
        return list_json(vault);
    }
    if (n == 0 && gw_vault_value_count(vault) == 0) {
        printf("no credentials in %s\n", store_path);
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        struct gw_vault_info info;
        if (gw_vault_info(vault, i, &info) != GW_OK) {
            return 1;
        }
        if (info.type == GW_VAULT_ROLE) {
            printf("%-16s  role %s via %s (session %s, %u s, %s)\n", info.name, info.role_arn,
                   info.source, info.session_name, info.duration, info.region);
        } else if (info.type == GW_VAULT_TEMPORARY) {
            char when[32] = "?";
            time_t t = (time_t)info.expires;
            struct tm tm;
            if (gmtime_r(&t, &tm) != NULL) {
                strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
            }
            printf("%-16s  SecretId ...%s, temporary, expire%s %s\n", info.name, info.id_tail,
                   info.expires <= (int64_t)time(NULL) ? "d" : "s", when);
        } else {
            printf("%-16s  SecretId ...%s\n", info.name, info.id_tail);
        }
    }
    for (size_t i = 0; i < gw_vault_value_count(vault); i++) {
        size_t len = 0;
        if (gw_vault_value_describe(vault, i, name, &len) != GW_OK) {
            return 1;
        }
        printf("%-16s  secret value, %zu bytes ({{tcgw:secret/%s}})\n", name, len, name);
    }
    return 0;
}

int gw_cli_secrets(int argc, char **argv)
{
    struct args a;
    struct gw_config *cfg = NULL;
    struct gw_vault *vault = NULL;
    struct gw_cli_master cm = {0};
    char msg[512];
    int rc = parse_args(argc, argv, &a);

    if (rc < 0) {
        fputs(usage_text, stdout);
        return 0;
    }
    if (rc != 0) {
        return rc;
    }
    rc = 1;

    /* --key and --store win; then the config file; then the defaults, as `tcgw serve` uses. */
    if (a.config_path != NULL) {
        if (gw_config_load(a.config_path, &cfg, msg, sizeof msg) != GW_OK) {
            fprintf(stderr, "tcgw secrets: %s\n", msg);
            goto out;
        }
    } else if ((cfg = gw_config_defaults()) == NULL) {
        fputs("tcgw secrets: out of memory\n", stderr);
        goto out;
    }
    const char *key_path = a.key_path != NULL ? a.key_path : cfg->master_key_file;
    const char *store_path = a.store_path != NULL ? a.store_path : cfg->credential_store;

    /* A passphrase is read once, here, and serves both opens of a put. */
    if (gw_cli_master_get("secrets", key_path, store_path, a.passphrase_fd, &cm) != 0) {
        goto out;
    }
    /* For put too: a wrong key or a damaged store is reported before any secret is typed. */
    if (gw_vault_open_master(&cm.master, store_path, 0, &vault, msg, sizeof msg) != GW_OK) {
        fprintf(stderr, "tcgw secrets: %s\n", msg);
        goto out;
    }
    if (strcmp(a.verb, "put") == 0) {
        gw_vault_free(vault);
        vault = NULL;
        rc = put(&a, &cm.master, store_path);
    } else if (strcmp(a.verb, "put-role") == 0) {
        gw_vault_free(vault);
        vault = NULL;
        rc = put_role(&a, &cm.master, store_path);
    } else if (strcmp(a.verb, "put-value") == 0) {
        gw_vault_free(vault);
        vault = NULL;
        rc = put_value(&a, &cm.master, store_path);
    } else {
        rc = list(vault, &a, store_path);
    }
out:
    gw_vault_free(vault);
    gw_cli_master_free(&cm);
    gw_config_free(cfg);
    return rc;
}
