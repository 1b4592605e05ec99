/* tcgw callers add|list|remove: edits the callers file (and the SDK keys in the credential store).
 */
#include <jansson.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/config.h"
#include "core/file.h"
#include "identity/callers.h"
#include "vault/vault.h"

static const char usage_text[] =
    "usage: tcgw callers add NAME [--token] [--sdk-key] [--certificate URI_OR_CN]\n"
    "                        [--credential NAME] [--policy NAME]... [--attribute KEY=VALUE]...\n"
    "                        [--json] [--config FILE]\n"
    "       tcgw callers list [--json] [--config FILE]\n"
    "       tcgw callers remove NAME [--config FILE]\n"
    "add gives the caller a bearer token unless --sdk-key or --certificate is given (--token\n"
    "adds one as well); the token, or the SDK key's SecretKey, is printed once and never again.\n"
    "--credential (default: the configuration's \"credential\", \"default\") must be in the\n"
    "credential store.\n";

#define SECRET_ID_PREFIX "AKIDtcgw"
#define TOKEN_BYTES 32
#define MAX_ATTRIBUTE_VALUE 1024

struct args {
    const char *verb; /* "add", "list" or "remove" */
    const char *name;
    const char *config_path;
    const char *credential;
    const char *certificate;
    const char *policies[GW_CALLERS_MAX_POLICIES];
    size_t policy_count;
    json_t *attributes; /* owned */
    bool token;
    bool sdk_key;
    bool json;
};

/* Adds "--attribute KEY=VALUE" to a->attributes. Returns 0, or 2 after a usage error. */
static int take_attribute(struct args *a, const char *kv)
{
    const char *eq = strchr(kv, '=');
    char key[GW_VAULT_MAX_NAME + 1];
    size_t n = eq != NULL ? (size_t)(eq - kv) : 0;
    if (eq == NULL || n == 0 || n > GW_VAULT_MAX_NAME) {
        return gw_cli_usage_error("callers", "--attribute takes KEY=VALUE", "", usage_text);
    }
    memcpy(key, kv, n);
    key[n] = '\0';
    if (!gw_vault_name_valid(key) || strlen(eq + 1) > MAX_ATTRIBUTE_VALUE) {
        return gw_cli_usage_error("callers",
                                  "--attribute KEY is 1 to 64 characters from A-Z a-z 0-9 . _ - "
                                  "and VALUE at most 1024 bytes",
                                  "", usage_text);
    }
    if (json_object_get(a->attributes, key) != NULL) {
        return gw_cli_usage_error("callers", "give each --attribute KEY once", "", usage_text);
    }
    if (json_object_set_new(a->attributes, key, json_string(eq + 1)) != 0) {
        return gw_cli_usage_error("callers", "--attribute VALUE must be UTF-8 text", "",
                                  usage_text);
    }
    return 0;
}

/* Returns 0 when the arguments are good, 2 after printing a usage error, -1 for --help. */
static int parse_args(int argc, char **argv, struct args *a)
{
    int positional = 0;
    bool only_positional = false;

    if (argc < 2) {
        return gw_cli_usage_error("callers", "say add, list or remove", "", usage_text);
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        return -1;
    }
    if (strcmp(argv[1], "add") != 0 && strcmp(argv[1], "list") != 0 &&
        strcmp(argv[1], "remove") != 0) {
        return gw_cli_usage_error("callers", "unknown subcommand: say add, list or remove", "",
                                  usage_text);
    }
    a->verb = argv[1];
    bool add = strcmp(a->verb, "add") == 0;
    for (int i = 2; i < argc; i++) {
        const char *arg = argv[i];
        const char *value = NULL;
        int m;
        if (only_positional || arg[0] != '-' || arg[1] == '\0') {
            if (++positional == 1) {
                a->name = arg;
            }
            continue;
        }
        if (strcmp(arg, "--") == 0) {
            only_positional = true;
        } else if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            return -1;
        } else if (strcmp(arg, "--json") == 0 && strcmp(a->verb, "remove") != 0) {
            a->json = true;
        } else if (add && strcmp(arg, "--token") == 0) {
            a->token = true;
        } else if (add && strcmp(arg, "--sdk-key") == 0) {
            a->sdk_key = true;
        } else if ((m = gw_cli_take_value(argc, argv, &i, "--config", &value)) != 0) {
            if (m < 0 || a->config_path != NULL) {
                return gw_cli_usage_error("callers", "give one FILE to ", arg, usage_text);
            }
            a->config_path = value;
        } else if (add && (m = gw_cli_take_value(argc, argv, &i, "--credential", &value)) != 0) {
            if (m < 0 || a->credential != NULL) {
                return gw_cli_usage_error("callers", "give one NAME to ", arg, usage_text);
            }
            a->credential = value;
        } else if (add && (m = gw_cli_take_value(argc, argv, &i, "--certificate", &value)) != 0) {
            if (m < 0 || a->certificate != NULL) {
                return gw_cli_usage_error("callers", "give one URI_OR_CN to ", arg, usage_text);
            }
            a->certificate = value;
        } else if (add && (m = gw_cli_take_value(argc, argv, &i, "--policy", &value)) != 0) {
            if (m < 0 || a->policy_count >= GW_CALLERS_MAX_POLICIES) {
                return gw_cli_usage_error("callers", "give NAME to each of at most 16 ", arg,
                                          usage_text);
            }
            a->policies[a->policy_count++] = value;
        } else if (add && (m = gw_cli_take_value(argc, argv, &i, "--attribute", &value)) != 0) {
            if (m < 0) {
                return gw_cli_usage_error("callers", "give KEY=VALUE to ", arg, usage_text);
            }
            if ((m = take_attribute(a, value)) != 0) {
                return m;
            }
        } else {
            return gw_cli_usage_error("callers", "unknown option ", arg, usage_text);
        }
    }
    if (strcmp(a->verb, "list") == 0) {
        if (positional > 0) {
            return gw_cli_usage_error("callers", "list takes no arguments besides the options", "",
                                      usage_text);
        }
        return 0;
    }
    if (positional != 1) {
        return gw_cli_usage_error("callers",
                                  positional == 0 ? "say which caller: NAME" : "give one NAME", "",
                                  usage_text);
    }
    if (!gw_vault_name_valid(a->name)) {
        fprintf(stderr,
                "tcgw callers: a caller NAME is 1 to %d characters from A-Z a-z 0-9 . _ -\n%s",
                GW_VAULT_MAX_NAME, usage_text);
        return 2;
    }
    if (add && a->credential != NULL && !gw_vault_name_valid(a->credential)) {
        return gw_cli_usage_error("callers",
                                  "--credential NAME is 1 to 64 characters from A-Z a-z 0-9 . _ -",
                                  "", usage_text);
    }
    if (add && a->certificate != NULL &&
        (strlen(a->certificate) > GW_CALLERS_CERT_NAME_MAX || a->certificate[0] == ' ')) {
        return gw_cli_usage_error("callers",
                                  "--certificate is a certificate's URI SAN or CN, at most 256 "
                                  "characters",
                                  "", usage_text);
    }
    if (add && !a->sdk_key && a->certificate == NULL) {
        a->token = true; /* the default identity */
    }
    return 0;
}

/* ---- Secrets: made here, printed once, wiped ---- */

/* Where the secrets of one add live: sodium_malloc'ed, wiped when freed. */
struct secrets {
    char token[sodium_base64_ENCODED_LEN(TOKEN_BYTES, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
    char secret_id[GW_CALLERS_SECRET_ID_LEN + 1];
    char secret_key[GW_CALLERS_SECRET_KEY_LEN + 1];
    unsigned char raw[TOKEN_BYTES];
    char out[1024]; /* what is printed */
};

static void random_alnum(char *out, size_t n)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    for (size_t i = 0; i < n; i++) {
        out[i] = alphabet[randombytes_uniform(sizeof alphabet - 1)];
    }
    out[n] = '\0';
}

/*
 * Prints the secrets with write(2) straight from protected memory: stdio would leave a copy in
 * its buffer. Returns 0, or 1 after saying why.
 */
static int print_secrets(const struct args *a, struct secrets *s, const char *path)
{
    size_t n = 0;
    int w;
    fflush(stdout);
    if (a->json) {
        w = snprintf(s->out, sizeof s->out, "{\"name\": \"%s\"", a->name);
        n += w > 0 ? (size_t)w : 0;
        if (a->token) {
            w = snprintf(s->out + n, sizeof s->out - n, ", \"token\": \"%s\"", s->token);
            n += w > 0 ? (size_t)w : 0;
        }
        if (a->sdk_key) {
            w = snprintf(s->out + n, sizeof s->out - n,
                         ", \"secret_id\": \"%s\", \"secret_key\": \"%s\"", s->secret_id,
                         s->secret_key);
            n += w > 0 ? (size_t)w : 0;
        }
        w = snprintf(s->out + n, sizeof s->out - n, "}\n");
        n += w > 0 ? (size_t)w : 0;
    } else {
        w = snprintf(s->out, sizeof s->out, "added caller '%s' to %s\n", a->name, path);
        n += w > 0 ? (size_t)w : 0;
        if (a->token) {
            w = snprintf(s->out + n, sizeof s->out - n,
                         "token: %s\n"
                         "  the caller sends \"Authorization: Bearer <token>\"; it is shown only "
                         "now (tcgw keeps a keyed hash)\n",
                         s->token);
            n += w > 0 ? (size_t)w : 0;
        }
        if (a->sdk_key) {
            w = snprintf(s->out + n, sizeof s->out - n,
                         "SecretId:  %s\nSecretKey: %s\n"
                         "  give both to the caller's Tencent Cloud SDK, pointed at this gateway; "
                         "the SecretKey is shown only now\n",
                         s->secret_id, s->secret_key);
            n += w > 0 ? (size_t)w : 0;
        }
        if (a->certificate != NULL) {
            w = snprintf(s->out + n, sizeof s->out - n, "certificate: %s\n", a->certificate);
            n += w > 0 ? (size_t)w : 0;
        }
    }
    if (n >= sizeof s->out) {
        fputs("tcgw callers: internal error: output too long\n", stderr);
        return 1;
    }
    if (gw_file_write_all(STDOUT_FILENO, s->out, n) != GW_OK) {
        perror("tcgw callers: cannot print the new caller's secret");
        return 1;
    }
    return 0;
}

/* ---- Subcommands ---- */

/* Saves the vault, and says so on failure. */
static int save_vault(struct gw_vault *vault, const struct gw_config *cfg, const char *what)
{
    char msg[512];
    if (gw_vault_save(vault, cfg->credential_store, msg, sizeof msg) != GW_OK) {
        fprintf(stderr, "tcgw callers: %s; %s\n", msg, what);
        return 1;
    }
    return 0;
}

/*
 * Locks: the callers file's first, then the store's, in every verb, so two runs never wait for
 * each other in a circle. The store is saved before the callers file: a failure in between
 * leaves a caller key without a caller (unusable, and removed again here), never a caller whose
 * SDK key the store lacks.
 */
/* Opens the credential store with its key file, or a passphrase asked on the terminal. */
static enum gw_err open_store(const struct gw_config *cfg, unsigned flags, struct gw_vault **out,
                              char *msg, size_t msglen)
{
    struct gw_cli_master cm;
    if (gw_cli_master_get("callers", cfg->master_key_file, cfg->credential_store, -1, &cm) != 0) {
        gw_cli_master_free(&cm);
        snprintf(msg, msglen, "the credential store %s cannot be opened", cfg->credential_store);
        return GW_ERR_INVALID;
    }
    enum gw_err err =
        gw_vault_open_master(&cm.master, cfg->credential_store, flags, out, msg, msglen);
    gw_cli_master_free(&cm);
    return err;
}

static int add(const struct args *a, const struct gw_config *cfg)
{
    char msg[512];
    int rc = 1;
    struct gw_callers *callers = NULL;
    struct gw_vault *vault = NULL;
    struct gw_caller c;
    bool key_saved = false;
    const char *credential = a->credential != NULL ? a->credential : cfg->credential;
    struct secrets *s = sodium_malloc(sizeof *s);

    if (s == NULL) {
        fputs("tcgw callers: out of memory\n", stderr);
        return 1;
    }
    if (gw_callers_open_for_update(cfg->callers_file, &callers, msg, sizeof msg) != GW_OK) {
        fprintf(stderr, "tcgw callers: %s; nothing was added\n", msg);
        goto out;
    }
    if (gw_callers_find(callers, a->name) != NULL) {
        fprintf(stderr,
                "tcgw callers: caller '%s' exists already in %s: run `tcgw callers remove %s` "
                "first to replace it\n",
                a->name, cfg->callers_file, a->name);
        goto out;
    }
    if (a->certificate != NULL && gw_callers_by_certificate(callers, a->certificate) != NULL) {
        fprintf(stderr, "tcgw callers: the certificate name is mapped to caller '%s' already\n",
                gw_callers_by_certificate(callers, a->certificate)->name);
        goto out;
    }
    if (open_store(cfg, a->sdk_key ? GW_VAULT_OPEN_UPDATE : 0, &vault, msg, sizeof msg) != GW_OK) {
        fprintf(stderr, "tcgw callers: %s; nothing was added\n", msg);
        goto out;
    }
    if (!gw_vault_has(vault, credential)) {
        fprintf(stderr,
                "tcgw callers: the credential store %s has no credential '%s': add it with "
                "`tcgw secrets put %s`, or name another with --credential; nothing was added\n",
                cfg->credential_store, credential, credential);
        goto out;
    }

    memset(&c, 0, sizeof c);
    memcpy(c.name, a->name, strlen(a->name) + 1);
    memcpy(c.credential, credential, strlen(credential) + 1);
    memcpy(c.policies, a->policies, sizeof c.policies);
    c.policy_count = a->policy_count;
    c.attributes = json_object_size(a->attributes) > 0 ? a->attributes : NULL;
    if (a->certificate != NULL) {
        memcpy(c.certificate, a->certificate, strlen(a->certificate) + 1);
    }
    if (a->token) {
        randombytes_buf(s->raw, sizeof s->raw);
        sodium_bin2base64(s->token, sizeof s->token, s->raw, sizeof s->raw,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        if (gw_vault_token_hash(vault, (const unsigned char *)s->token, strlen(s->token),
                                c.token_hash) != GW_OK) {
            fputs("tcgw callers: cannot hash the token with the master key; nothing was added\n",
                  stderr);
            goto out;
        }
        c.has_token = true;
    }
    if (a->sdk_key) {
        memcpy(s->secret_id, SECRET_ID_PREFIX, sizeof SECRET_ID_PREFIX - 1);
        random_alnum(s->secret_id + sizeof SECRET_ID_PREFIX - 1,
                     GW_CALLERS_SECRET_ID_LEN - (sizeof SECRET_ID_PREFIX - 1));
        random_alnum(s->secret_key, GW_CALLERS_SECRET_KEY_LEN);
        memcpy(c.sdk_secret_id, s->secret_id, sizeof s->secret_id);
    }
    /* In memory first: the file's rules are checked before anything is written. */
    if (gw_callers_add(callers, &c, msg, sizeof msg) != GW_OK) {
        fprintf(stderr, "tcgw callers: %s; nothing was added\n", msg);
        goto out;
    }
    if (a->sdk_key) {
        if (gw_vault_put_caller_key(vault, a->name, s->secret_id, strlen(s->secret_id),
                                    s->secret_key, strlen(s->secret_key), msg,
                                    sizeof msg) != GW_OK) {
            fprintf(stderr, "tcgw callers: %s; nothing was added\n", msg);
            goto out;
        }
        if (save_vault(vault, cfg, "nothing was added") != 0) {
            goto out;
        }
        key_saved = true;
    }
    if (gw_callers_save(callers, msg, sizeof msg) != GW_OK) {
        fprintf(stderr, "tcgw callers: %s; nothing was added\n", msg);
        goto out;
    }
    key_saved = false;
    rc = print_secrets(a, s, cfg->callers_file);
out:
    if (key_saved && gw_vault_remove(vault, GW_VAULT_CALLER_KEY, a->name) == GW_OK) {
        (void)save_vault(vault, cfg, "the unused SDK key stays in the store (harmless)");
    }
    sodium_memzero(&c, sizeof c);
    gw_vault_free(vault); /* releases the store's lock */
    gw_callers_free(callers);
    sodium_free(s); /* wipes the token and keys */
    return rc;
}

static int remove_caller(const struct args *a, const struct gw_config *cfg)
{
    char msg[512];
    int rc = 1;
    struct gw_callers *callers = NULL;
    struct gw_vault *vault = NULL;

    if (gw_callers_open_for_update(cfg->callers_file, &callers, msg, sizeof msg) != GW_OK) {
        fprintf(stderr, "tcgw callers: %s; nothing was removed\n", msg);
        goto out;
    }
    const struct gw_caller *c = gw_callers_find(callers, a->name);
    if (c == NULL) {
        fprintf(stderr, "tcgw callers: there is no caller '%s' in %s\n", a->name,
                cfg->callers_file);
        goto out;
    }
    bool had_key = c->sdk_secret_id[0] != '\0';
    bool key_removed = false;
    /* The mapping goes first: once saved, the caller is refused even if the store fails. */
    if (gw_callers_remove(callers, a->name) != GW_OK ||
        gw_callers_save(callers, msg, sizeof msg) != GW_OK) {
        fprintf(stderr, "tcgw callers: %s; nothing was removed\n", msg);
        goto out;
    }
    if (had_key) {
        if (open_store(cfg, GW_VAULT_OPEN_UPDATE, &vault, msg, sizeof msg) != GW_OK) {
            fprintf(stderr,
                    "tcgw callers: removed caller '%s', but its SDK key stays in the store (no "
                    "longer usable): %s\n",
                    a->name, msg);
            goto out;
        }
        key_removed = gw_vault_remove(vault, GW_VAULT_CALLER_KEY, a->name) == GW_OK;
        if (key_removed &&
            save_vault(vault, cfg, "its SDK key stays in the store (no longer usable)") != 0) {
            goto out;
        }
    }
    printf("removed caller '%s' from %s%s\n", a->name, cfg->callers_file,
           key_removed ? " and its SDK key from the credential store"
           : had_key   ? " (its SDK key was not in the credential store)"
                       : "");
    rc = 0;
out:
    gw_vault_free(vault);
    gw_callers_free(callers);
    return rc;
}

/* The identity methods of c, as words. */
static json_t *methods_of(const struct gw_caller *c)
{
    json_t *m = json_array();
    if (m != NULL && c->has_token) {
        json_array_append_new(m, json_string("token"));
    }
    if (m != NULL && c->sdk_secret_id[0] != '\0') {
        json_array_append_new(m, json_string("sdk_key"));
    }
    if (m != NULL && c->certificate[0] != '\0') {
        json_array_append_new(m, json_string("certificate"));
    }
    return m;
}

/* Names, methods, credential, policies: never a hash or a key (the SecretId by its tail). */
static int list(const struct args *a, const struct gw_config *cfg)
{
    char msg[512];
    int rc = 1;
    struct gw_callers *callers = NULL;
    json_t *arr = json_array();
    char *text = NULL;

    if (gw_callers_load(cfg->callers_file, &callers, msg, sizeof msg) != GW_OK) {
        fprintf(stderr, "tcgw callers: %s\n", msg);
        goto out;
    }
    size_t n = gw_callers_count(callers);
    for (size_t i = 0; i < n && arr != NULL; i++) {
        const struct gw_caller *c = gw_callers_at(callers, i);
        json_t *policies = json_array();
        for (size_t j = 0; policies != NULL && j < c->policy_count; j++) {
            json_array_append_new(policies, json_string(c->policies[j]));
        }
        size_t idl = strlen(c->sdk_secret_id);
        json_t *o = json_pack("{s:s,s:o,s:s,s:o*}", "name", c->name, "methods", methods_of(c),
                              "credential", c->credential, "policies", policies);
        if (o == NULL || json_array_append_new(arr, o) != 0) {
            goto nomem;
        }
        if (c->certificate[0] != '\0') {
            json_object_set_new(o, "certificate", json_string(c->certificate));
        }
        if (idl > 0) {
            json_object_set_new(o, "secret_id_tail", json_string(c->sdk_secret_id + idl - 4));
        }
        if (c->attributes != NULL) {
            json_object_set_new(o, "attributes", json_deep_copy((json_t *)c->attributes));
        }
    }
    if (arr == NULL) {
        goto nomem;
    }
    if (a->json) {
        if ((text = json_dumps(arr, JSON_INDENT(2) | JSON_PRESERVE_ORDER)) == NULL) {
            goto nomem;
        }
        printf("%s\n", text);
        rc = 0;
        goto out;
    }
    if (n == 0) {
        printf("no callers in %s\n", cfg->callers_file);
    }
    size_t i;
    json_t *o;
    json_array_foreach (arr, i, o) {
        const struct gw_caller *c = gw_callers_at(callers, i);
        char methods[128] = "";
        char policies[GW_CALLERS_MAX_POLICIES * (GW_VAULT_MAX_NAME + 1) + 8] = "";
        size_t k = 0;
        json_t *m;
        json_array_foreach (json_object_get(o, "methods"), k, m) {
            strcat(methods, k > 0 ? "," : "");
            strcat(methods, json_string_value(m));
        }
        for (size_t j = 0; j < c->policy_count; j++) {
            strcat(policies, j > 0 ? "," : "");
            strcat(policies, c->policies[j]);
        }
        printf("%-20s  %-25s  credential=%s  policies=%s", c->name,
               methods[0] != '\0' ? methods : "(listener default only)", c->credential,
               policies[0] != '\0' ? policies : "(none)");
        if (c->certificate[0] != '\0') {
            printf("  certificate=%s", c->certificate);
        }
        if (c->sdk_secret_id[0] != '\0') {
            printf("  SecretId=...%s", c->sdk_secret_id + strlen(c->sdk_secret_id) - 4);
        }
        printf("\n");
    }
    rc = 0;
    goto out;
nomem:
    fputs("tcgw callers: out of memory\n", stderr);
out:
    free(text);
    json_decref(arr);
    gw_callers_free(callers);
    return rc;
}

int gw_cli_callers(int argc, char **argv)
{
    struct args a;
    struct gw_config *cfg = NULL;
    char msg[512];
    int rc;

    memset(&a, 0, sizeof a);
    if ((a.attributes = json_object()) == NULL || sodium_init() < 0) {
        fputs("tcgw callers: cannot initialise\n", stderr);
        json_decref(a.attributes);
        return 1;
    }
    rc = parse_args(argc, argv, &a);
    if (rc < 0) {
        fputs(usage_text, stdout);
        rc = 0;
        goto out;
    }
    if (rc != 0) {
        goto out;
    }
    rc = 1;
    if (a.config_path != NULL) {
        if (gw_config_load(a.config_path, &cfg, msg, sizeof msg) != GW_OK) {
            fprintf(stderr, "tcgw callers: %s\n", msg);
            goto out;
        }
    } else if ((cfg = gw_config_defaults()) == NULL) {
        fputs("tcgw callers: out of memory\n", stderr);
        goto out;
    }
    if (strcmp(a.verb, "add") == 0) {
        rc = add(&a, cfg);
    } else if (strcmp(a.verb, "remove") == 0) {
        rc = remove_caller(&a, cfg);
    } else {
        rc = list(&a, cfg);
    }
out:
    json_decref(a.attributes);
    gw_config_free(cfg);
    return rc;
}
