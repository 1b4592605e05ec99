/* tcgw keygen: writes a new master key file. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "config.h"
#include "vault.h"

static const char usage_text[] = "usage: tcgw keygen [--config FILE | --key FILE]\n";

/*
 * Prints "tcgw keygen: <what><option>" and the usage; returns the usage exit code. Only an
 * option's name is repeated, never a value (which could be a pasted secret).
 */
static int usage_error(const char *what, const char *option)
{
    int n = (int)strcspn(option, "=");
    fprintf(stderr, "tcgw keygen: %s%.*s\n%s", what, n, option, usage_text);
    return 2;
}

/*
 * Matches "--name VALUE" or "--name=VALUE" at argv[*i]. Returns 1 (and advances *i past a
 * separate value) when it matched, 0 when argv[*i] is another option, -1 when the value is missing.
 */
static int take_value(int argc, char **argv, int *i, const char *name, const char **out)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, n) != 0) {
        return 0;
    }
    if (a[n] == '=') {
        *out = a + n + 1;
        return **out != '\0' ? 1 : -1;
    }
    if (a[n] != '\0') {
        return 0;
    }
    if (*i + 1 >= argc || argv[*i + 1][0] == '\0') {
        return -1;
    }
    *out = argv[++*i];
    return 1;
}

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
        if ((m = take_value(argc, argv, &i, "--config", &value)) != 0) {
            if (m < 0 || config_path != NULL) {
                return usage_error("--config needs one FILE", "");
            }
            config_path = value;
        } else if ((m = take_value(argc, argv, &i, "--key", &value)) != 0) {
            if (m < 0 || key_path != NULL) {
                return usage_error("--key needs one FILE", "");
            }
            key_path = value;
        } else if (a[0] == '-') {
            return usage_error("unknown option ", a);
        } else {
            return usage_error("takes no arguments besides the options", "");
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
