/* tcgw audit: the audit log's signing keys and its verification. */
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/chain.h"
#include "audit/verify.h"
#include "cli/cli.h"
#include "core/config.h"

static const char usage_text[] =
    "usage: tcgw audit keygen [--config FILE | --secret-key FILE --public-key FILE]\n"
    "       tcgw audit verify [--public-key FILE | --config FILE] [--json] FILE...\n";

#define MAX_FILES 4096

static int keygen(int argc, char **argv)
{
    const char *config_path = NULL, *secret = NULL, *public = NULL;
    struct gw_config *cfg = NULL;
    char msg[512];
    int rc = 1;
    for (int i = 1; i < argc; i++) {
        const char *value = NULL;
        int m;
        if ((m = gw_cli_take_value(argc, argv, &i, "--config", &value)) != 0) {
            if (m < 0) {
                return gw_cli_usage_error("audit keygen", "--config needs a FILE", "", usage_text);
            }
            config_path = value;
        } else if ((m = gw_cli_take_value(argc, argv, &i, "--secret-key", &value)) != 0) {
            if (m < 0) {
                return gw_cli_usage_error("audit keygen", "--secret-key needs a FILE", "",
                                          usage_text);
            }
            secret = value;
        } else if ((m = gw_cli_take_value(argc, argv, &i, "--public-key", &value)) != 0) {
            if (m < 0) {
                return gw_cli_usage_error("audit keygen", "--public-key needs a FILE", "",
                                          usage_text);
            }
            public = value;
        } else {
            return gw_cli_usage_error("audit keygen", "unknown argument ", argv[i], usage_text);
        }
    }
    if ((secret == NULL) != (public == NULL)) {
        return gw_cli_usage_error("audit keygen", "--secret-key and --public-key go together", "",
                                  usage_text);
    }
    if (secret == NULL) {
        if (config_path == NULL) {
            return gw_cli_usage_error("audit keygen", "give --config or both key files", "",
                                      usage_text);
        }
        if (gw_config_load(config_path, &cfg, msg, sizeof msg) != GW_OK) {
            fprintf(stderr, "tcgw audit keygen: %s\n", msg);
            goto out;
        }
        secret = cfg->audit.signing_key_file;
        public = cfg->audit.public_key_file;
    }
    if (gw_audit_keygen(secret, public, msg, sizeof msg) != GW_OK) {
        fprintf(stderr, "tcgw audit keygen: %s\n", msg);
        goto out;
    }
    printf("wrote the audit signing key to %s (mode 0600) and its public key to %s\n"
           "give the public key to whoever verifies the log; keep the signing key on the "
           "gateway only\n",
           secret, public);
    rc = 0;
out:
    gw_config_free(cfg);
    return rc;
}

static int verify(int argc, char **argv)
{
    const char *config_path = NULL, *public = NULL;
    const char **files = calloc(MAX_FILES, sizeof *files);
    size_t n = 0;
    bool json = false;
    struct gw_config *cfg = NULL;
    unsigned char pk[GW_AUDIT_PUBLIC_KEY_BYTES];
    char msg[512];
    int rc = 1;
    if (files == NULL) {
        fputs("tcgw audit verify: out of memory\n", stderr);
        return 1;
    }
    for (int i = 1; i < argc; i++) {
        const char *value = NULL;
        int m;
        if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if ((m = gw_cli_take_value(argc, argv, &i, "--config", &value)) != 0) {
            if (m < 0) {
                rc = gw_cli_usage_error("audit verify", "--config needs a FILE", "", usage_text);
                goto out;
            }
            config_path = value;
        } else if ((m = gw_cli_take_value(argc, argv, &i, "--public-key", &value)) != 0) {
            if (m < 0) {
                rc =
                    gw_cli_usage_error("audit verify", "--public-key needs a FILE", "", usage_text);
                goto out;
            }
            public = value;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            rc = gw_cli_usage_error("audit verify", "unknown option ", argv[i], usage_text);
            goto out;
        } else if (n < MAX_FILES) {
            files[n++] = argv[i];
        }
    }
    if (n == 0) {
        rc = gw_cli_usage_error("audit verify", "give the log files, oldest first", "", usage_text);
        goto out;
    }
    if (public == NULL) {
        if (config_path != NULL) {
            if (gw_config_load(config_path, &cfg, msg, sizeof msg) != GW_OK) {
                fprintf(stderr, "tcgw audit verify: %s\n", msg);
                goto out;
            }
            public = cfg->audit.public_key_file;
        } else {
            public = "audit.pub";
        }
    }
    if (gw_audit_public_key_load(public, pk, msg, sizeof msg) != GW_OK) {
        fprintf(stderr, "tcgw audit verify: %s\n", msg);
        goto out;
    }
    struct gw_audit_verify_result r;
    gw_audit_verify(files, n, pk, stderr, &r);
    if (json) {
        json_t *doc =
            json_pack("{s:b,s:I,s:I,s:I,s:I,s:I,s:s,s:s?}", "ok", r.ok, "files",
                      (json_int_t)r.files, "records", (json_int_t)r.records, "seals",
                      (json_int_t)r.seals, "torn", (json_int_t)r.torn, "unsealed",
                      (json_int_t)r.unsealed, "head", r.head, "error", r.ok ? NULL : r.error);
        char *text = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;
        if (text != NULL) {
            puts(text);
        }
        free(text);
        json_decref(doc);
    } else if (r.ok) {
        printf("ok: %zu file%s, %llu call records, %llu signed lines, chain head %s%s\n", r.files,
               r.files == 1 ? "" : "s", (unsigned long long)r.records, (unsigned long long)r.seals,
               r.head, r.torn > 0 ? " (torn last line reported above)" : "");
    }
    if (!r.ok) {
        fprintf(stderr, "%s\n", r.error);
    }
    rc = r.ok ? 0 : 1;
out:
    free(files);
    gw_config_free(cfg);
    return rc;
}

int gw_cli_audit(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        fputs(usage_text, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (sodium_init() < 0) {
        fputs("tcgw audit: cannot initialise libsodium\n", stderr);
        return 1;
    }
    if (strcmp(argv[1], "keygen") == 0) {
        return keygen(argc - 1, argv + 1);
    }
    if (strcmp(argv[1], "verify") == 0) {
        return verify(argc - 1, argv + 1);
    }
    return gw_cli_usage_error("audit", "unknown command ", argv[1], usage_text);
}
