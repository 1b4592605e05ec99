/* tcgw store init|rekey|accept-rollback|info: the credential store's master key and history. */
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/config.h"
#include "vault/vault.h"

static const char usage_text[] =
    "usage: tcgw store init [--passphrase [--passphrase-fd N] [--kdf COST]]\n"
    "                       [--config FILE | --key FILE --store FILE]\n"
    "       tcgw store rekey (--new-key FILE | --new-passphrase [--new-passphrase-fd N]\n"
    "                        [--kdf COST]) [--passphrase-fd N] [--config FILE | --key FILE --store "
    "FILE]\n"
    "       tcgw store accept-rollback [--passphrase-fd N] [--config FILE | --key FILE --store "
    "FILE]\n"
    "       tcgw store info [--config FILE | --store FILE]\n"
    "init creates an empty store protected by the master key file (made if missing), or with\n"
    "--passphrase by a passphrase (Argon2id). rekey re-encrypts the store under a new key file or\n"
    "passphrase. Passphrases come from the terminal (not shown) or a file descriptor, never from\n"
    "the command line. COST: interactive, moderate (default), sensitive, or insecure-test-only\n"
    "(for tests only).\n";

struct args {
    const char *verb;
    const char *config_path;
    const char *key_path;
    const char *store_path;
    const char *new_key;
    const char *kdf;
    bool passphrase;
    bool new_passphrase;
    int passphrase_fd;
    int new_passphrase_fd;
};

static int parse_args(int argc, char **argv, struct args *a)
{
    memset(a, 0, sizeof *a);
    a->passphrase_fd = -1;
    a->new_passphrase_fd = -1;
    if (argc < 2) {
        return gw_cli_usage_error("store", "say init, rekey, accept-rollback or info", "",
                                  usage_text);
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        return -1;
    }
    a->verb = argv[1];
    if (strcmp(a->verb, "init") != 0 && strcmp(a->verb, "rekey") != 0 &&
        strcmp(a->verb, "accept-rollback") != 0 && strcmp(a->verb, "info") != 0) {
        return gw_cli_usage_error("store",
                                  "unknown subcommand: say init, rekey, accept-rollback "
                                  "or info",
                                  "", usage_text);
    }
    for (int i = 2; i < argc; i++) {
        const char *arg = argv[i];
        const char *v = NULL;
        int m;
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            return -1;
        }
        if (strcmp(arg, "--passphrase") == 0) {
            a->passphrase = true;
        } else if (strcmp(arg, "--new-passphrase") == 0) {
            a->new_passphrase = true;
        } else if ((m = gw_cli_take_value(argc, argv, &i, "--config", &v)) != 0) {
            a->config_path = m > 0 ? v : NULL;
            if (m < 0) {
                return gw_cli_usage_error("store", "give one FILE to ", "--config", usage_text);
            }
        } else if ((m = gw_cli_take_value(argc, argv, &i, "--key", &v)) != 0) {
            a->key_path = m > 0 ? v : NULL;
            if (m < 0) {
                return gw_cli_usage_error("store", "give one FILE to ", "--key", usage_text);
            }
        } else if ((m = gw_cli_take_value(argc, argv, &i, "--store", &v)) != 0) {
            a->store_path = m > 0 ? v : NULL;
            if (m < 0) {
                return gw_cli_usage_error("store", "give one FILE to ", "--store", usage_text);
            }
        } else if ((m = gw_cli_take_value(argc, argv, &i, "--new-key", &v)) != 0) {
            a->new_key = m > 0 ? v : NULL;
            if (m < 0) {
                return gw_cli_usage_error("store", "give one FILE to ", "--new-key", usage_text);
            }
        } else if ((m = gw_cli_take_value(argc, argv, &i, "--kdf", &v)) != 0) {
            a->kdf = m > 0 ? v : NULL;
            if (m < 0) {
                return gw_cli_usage_error("store", "give a COST to ", "--kdf", usage_text);
            }
        } else if ((m = gw_cli_take_value(argc, argv, &i, "--passphrase-fd", &v)) != 0) {
            if (m < 0 || gw_cli_parse_fd("store", v, &a->passphrase_fd) != 0) {
                return gw_cli_usage_error("store", "give a number to ", "--passphrase-fd",
                                          usage_text);
            }
        } else if ((m = gw_cli_take_value(argc, argv, &i, "--new-passphrase-fd", &v)) != 0) {
            if (m < 0 || gw_cli_parse_fd("store", v, &a->new_passphrase_fd) != 0) {
                return gw_cli_usage_error("store", "give a number to ", "--new-passphrase-fd",
                                          usage_text);
            }
            a->new_passphrase = true;
        } else if (arg[0] == '-') {
            return gw_cli_usage_error("store", "unknown option ", arg, usage_text);
        } else {
            return gw_cli_usage_error("store", "takes no arguments besides the options", "",
                                      usage_text);
        }
    }
    bool rekey = strcmp(a->verb, "rekey") == 0;
    if (rekey && (a->new_key != NULL) == a->new_passphrase) {
        return gw_cli_usage_error("store", "rekey needs one of --new-key FILE or --new-passphrase",
                                  "", usage_text);
    }
    if (!rekey && (a->new_key != NULL || a->new_passphrase)) {
        return gw_cli_usage_error("store", "--new-key and --new-passphrase are for rekey", "",
                                  usage_text);
    }
    if (a->kdf != NULL && !a->new_passphrase && !(a->passphrase && strcmp(a->verb, "init") == 0)) {
        return gw_cli_usage_error("store", "--kdf is for a new passphrase", "", usage_text);
    }
    return 0;
}

static int kdf_of(const struct args *a, struct gw_vault_kdf *kdf)
{
    if (gw_vault_kdf_named(a->kdf != NULL ? a->kdf : "moderate", kdf) != GW_OK) {
        return gw_cli_usage_error("store",
                                  "--kdf is interactive, moderate, sensitive or "
                                  "insecure-test-only",
                                  "", usage_text);
    }
    return 0;
}

static int init(const struct args *a, const char *key_path, const char *store_path)
{
    char msg[512];
    struct gw_vault *vault = NULL;
    unsigned char *pass = NULL;
    size_t len = 0;
    struct gw_vault_kdf kdf;
    int rc = 1;

    if (a->passphrase) {
        if ((rc = kdf_of(a, &kdf)) != 0) {
            return rc;
        }
        rc = 1;
        if (gw_cli_passphrase_read("store", a->passphrase_fd, "new passphrase", true, &pass,
                                   &len) != 0) {
            return 1;
        }
        if (gw_vault_init_passphrase(store_path, pass, len, &kdf, msg, sizeof msg) != GW_OK) {
            fprintf(stderr, "tcgw store: %s\n", msg);
            goto out;
        }
        printf("created credential store %s, protected by a passphrase (Argon2id, %s cost)\n"
               "without the passphrase the store cannot be decrypted: keep it somewhere safe\n",
               store_path, a->kdf != NULL ? a->kdf : "moderate");
        rc = 0;
        goto out;
    }
    enum gw_vault_key_source src;
    enum gw_err err = gw_vault_store_info(store_path, &src, NULL, msg, sizeof msg);
    if (err != GW_ERR_NOT_FOUND) {
        fprintf(stderr, "tcgw store: %s\n",
                err == GW_OK ? "the credential store exists already: use 'tcgw store rekey' to "
                               "change its master key"
                             : msg);
        goto out;
    }
    bool made = false;
    if (access(key_path, F_OK) != 0) {
        if (gw_vault_keygen(key_path, msg, sizeof msg) != GW_OK) {
            fprintf(stderr, "tcgw store: %s\n", msg);
            goto out;
        }
        made = true;
    }
    if (gw_vault_open_for_update(key_path, store_path, &vault, msg, sizeof msg) != GW_OK ||
        gw_vault_save(vault, store_path, msg, sizeof msg) != GW_OK) {
        fprintf(stderr, "tcgw store: %s\n", msg);
        goto out;
    }
    printf("created credential store %s, protected by the master key file %s%s\n"
           "keep a copy of the key file somewhere safe: without it the store cannot be "
           "decrypted\n",
           store_path, key_path, made ? " (new, mode 0600)" : "");
    rc = 0;
out:
    gw_vault_free(vault);
    sodium_free(pass);
    return rc;
}

static int rekey(const struct args *a, const char *key_path, const char *store_path)
{
    char msg[512];
    struct gw_cli_master cm = {0};
    struct gw_vault *vault = NULL;
    unsigned char *pass = NULL;
    size_t len = 0;
    struct gw_vault_kdf kdf = {0};
    bool made_key = false;
    int rc = 1;

    if (a->new_passphrase && (rc = kdf_of(a, &kdf)) != 0) {
        return rc;
    }
    rc = 1;
    if (gw_cli_master_get("store", key_path, store_path, a->passphrase_fd, &cm) != 0) {
        goto out;
    }
    /* The new passphrase is read before the lock is taken: typing must not hold up writers. */
    if (a->new_passphrase && gw_cli_passphrase_read("store", a->new_passphrase_fd, "new passphrase",
                                                    true, &pass, &len) != 0) {
        goto out;
    }
    if (gw_vault_open_master(&cm.master, store_path, GW_VAULT_OPEN_UPDATE, &vault, msg,
                             sizeof msg) != GW_OK) {
        fprintf(stderr, "tcgw store: %s; nothing was changed\n", msg);
        goto out;
    }
    enum gw_vault_key_source old_source = gw_vault_source(vault);
    if (a->new_key != NULL && access(a->new_key, F_OK) != 0) {
        if (gw_vault_keygen(a->new_key, msg, sizeof msg) != GW_OK) {
            fprintf(stderr, "tcgw store: %s; nothing was changed\n", msg);
            goto out;
        }
        made_key = true;
    }
    struct gw_vault_master to = {.key_file = a->new_key, .passphrase = pass, .passphrase_len = len};
    if (gw_vault_rekey(vault, &to, &kdf, msg, sizeof msg) != GW_OK) {
        fprintf(stderr, "tcgw store: %s; nothing was changed\n", msg);
        goto out;
    }
    uint64_t before = gw_vault_generation(vault);
    enum gw_err err = gw_vault_save(vault, store_path, msg, sizeof msg);
    if (err != GW_OK && gw_vault_generation(vault) == before) {
        fprintf(stderr, "tcgw store: %s; nothing was changed (the store is as it was)\n", msg);
        goto out;
    }
    if (err != GW_OK) {
        fprintf(stderr, "tcgw store: %s\n", msg); /* saved: only the generation file failed */
    }
    made_key = false; /* the store needs it now */
    printf("re-encrypted %s under the new %s (generation %llu)\n", store_path,
           a->new_key != NULL ? "master key file" : "passphrase",
           (unsigned long long)gw_vault_generation(vault));
    if (a->new_key != NULL) {
        printf("point master_key_file (or --key, TCGW_MASTER_KEY_FILE) at %s, or move it over the "
               "old one, then send SIGHUP to a running gateway.\n",
               a->new_key);
    }
    if (old_source == GW_VAULT_KEY_FILE && a->new_key != NULL &&
        strcmp(a->new_key, key_path) != 0) {
        printf("the old key file %s no longer opens this store; it still opens older backups: "
               "destroy it (shred) once those are retired.\n",
               key_path);
    } else if (old_source == GW_VAULT_KEY_FILE) {
        printf("the old key file %s no longer opens this store; it still opens older backups.\n",
               key_path);
    } else {
        printf("the old passphrase no longer opens this store; it still opens older backups.\n");
    }
    rc = err == GW_OK ? 0 : 1;
out:
    if (made_key) {
        unlink(a->new_key); /* made for a store that was not rewritten: useless */
    }
    gw_vault_free(vault);
    gw_cli_master_free(&cm);
    sodium_free(pass);
    return rc;
}

static int accept_rollback(const struct args *a, const char *key_path, const char *store_path)
{
    char msg[512];
    struct gw_cli_master cm = {0};
    struct gw_vault *vault = NULL;
    int rc = 1;
    if (gw_cli_master_get("store", key_path, store_path, a->passphrase_fd, &cm) != 0) {
        goto out;
    }
    if (gw_vault_open_master(&cm.master, store_path,
                             GW_VAULT_OPEN_UPDATE | GW_VAULT_OPEN_ACCEPT_ROLLBACK, &vault, msg,
                             sizeof msg) != GW_OK) {
        fprintf(stderr, "tcgw store: %s\n", msg);
        goto out;
    }
    uint64_t was = gw_vault_generation(vault);
    if (gw_vault_save(vault, store_path, msg, sizeof msg) != GW_OK) {
        fprintf(stderr, "tcgw store: %s\n", msg);
        goto out;
    }
    printf("accepted %s (it was generation %llu); saved again as generation %llu, so that every "
           "older copy stays refused\n",
           store_path, (unsigned long long)was, (unsigned long long)gw_vault_generation(vault));
    rc = 0;
out:
    gw_vault_free(vault);
    gw_cli_master_free(&cm);
    return rc;
}

static int info(const char *store_path)
{
    char msg[512];
    enum gw_vault_key_source src;
    uint64_t gen = 0;
    if (gw_vault_store_info(store_path, &src, &gen, msg, sizeof msg) != GW_OK) {
        fprintf(stderr, "tcgw store: %s\n", msg);
        return 1;
    }
    printf("%s: protected by a %s, generation %llu\n", store_path,
           src == GW_VAULT_KEY_PASSPHRASE ? "passphrase (Argon2id)" : "master key file",
           (unsigned long long)gen);
    return 0;
}

int gw_cli_store(int argc, char **argv)
{
    struct args a;
    struct gw_config *cfg = NULL;
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
    if (a.config_path != NULL) {
        if (gw_config_load(a.config_path, &cfg, msg, sizeof msg) != GW_OK) {
            fprintf(stderr, "tcgw store: %s\n", msg);
            goto out;
        }
    } else if ((cfg = gw_config_defaults()) == NULL) {
        fputs("tcgw store: out of memory\n", stderr);
        goto out;
    }
    const char *key_path = a.key_path != NULL ? a.key_path : cfg->master_key_file;
    const char *store_path = a.store_path != NULL ? a.store_path : cfg->credential_store;
    if (strcmp(a.verb, "init") == 0) {
        rc = init(&a, key_path, store_path);
    } else if (strcmp(a.verb, "rekey") == 0) {
        rc = rekey(&a, key_path, store_path);
    } else if (strcmp(a.verb, "accept-rollback") == 0) {
        rc = accept_rollback(&a, key_path, store_path);
    } else {
        rc = info(store_path);
    }
out:
    gw_config_free(cfg);
    return rc;
}
