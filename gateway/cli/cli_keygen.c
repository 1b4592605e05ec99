/* tcgw keygen: writes a new master key file. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/config.h"
#include "vault/vault.h"

static const char usage_text[] = "usage: tcgw keygen [--config FILE | --key FILE]\n";

int gw_cli_keygen(int argc, char **argv)
{
    const char *config_path = NULL;
    const char *key_path = NULL;
    struct gw_config *cfg = NULL;
    char msg[512];
    int rc = 1;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *value = NULL;
        int m;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(usage_text, stdout);
            return 0;
        }
        if ((m = gw_cli_take_value(argc, argv, &i, "--config", &value)) != 0) {
            if (m < 0 || config_path != NULL) {
                return gw_cli_usage_error("keygen", "--config needs one FILE", "", usage_text);
            }
            config_path = value;
        } else if ((m = gw_cli_take_value(argc, argv, &i, "--key", &value)) != 0) {
            if (m < 0 || key_path != NULL) {
                return gw_cli_usage_error("keygen", "--key needs one FILE", "", usage_text);
            }
            key_path = value;
        } else if (a[0] == '-') {
            return gw_cli_usage_error("keygen", "unknown option ", a, usage_text);
        } else {
            return gw_cli_usage_error("keygen", "takes no arguments besides the options", "",
                                      usage_text);
        }
    }

    /* --key wins; then the config file; then the defaults ($TCGW_MASTER_KEY_FILE or master.key). */
    if (key_path == NULL) {
        if (config_path != NULL) {
            if (gw_config_load(config_path, &cfg, msg, sizeof msg) != GW_OK) {
                fprintf(stderr, "tcgw keygen: %s\n", msg);
                goto out;
            }
        } else if ((cfg = gw_config_defaults()) == NULL) {
            fputs("tcgw keygen: out of memory\n", stderr);
            goto out;
        }
        key_path = cfg->master_key_file;
    }

    if (gw_vault_keygen(key_path, msg, sizeof msg) != GW_OK) {
        fprintf(stderr, "tcgw keygen: %s\n", msg);
        goto out;
    }
    printf("wrote a new master key to %s (mode 0600)\n"
           "keep a copy somewhere safe: without it the credential store cannot be decrypted\n",
           key_path);
    rc = 0;
out:
    gw_config_free(cfg);
    return rc;
}
