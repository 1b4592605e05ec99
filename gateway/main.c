/* tcgw: Tencent Cloud API credentials gateway. main only dispatches to the CLI verbs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include "cli/cli.h"

static void usage(FILE *f)
{
    fputs("usage: tcgw serve [--config FILE] [--listen ADDR] [--port N]\n"
          "       tcgw keygen [--config FILE | --key FILE]\n"
          "       tcgw secrets put NAME [--config FILE | --key FILE --store FILE]\n"
          "       tcgw secrets list [--config FILE | --key FILE --store FILE] [--json]\n"
          "       tcgw store init|rekey|accept-rollback|info [options] (tcgw store --help)\n"
          "       tcgw callers add NAME [--token] [--sdk-key] [--certificate URI_OR_CN]\n"
          "                        [--credential NAME] [--policy NAME]... [--attribute K=V]...\n"
          "                        [--json] [--config FILE]\n"
          "       tcgw callers list [--json] [--config FILE]\n"
          "       tcgw callers remove NAME [--config FILE]\n"
          "       tcgw policy lint [--config FILE] [PATH]\n"
          "       tcgw policy check --caller NAME --action SERVICE:ACTION [--region R]\n"
          "                         [--params JSON] [--peer IP] [--config FILE] [--json]\n"
          "       tcgw audit keygen [--config FILE | --secret-key FILE --public-key FILE]\n"
          "       tcgw audit verify [--public-key FILE | --config FILE] [--json] FILE...\n",
          f);
}

int main(int argc, char **argv)
{
    /* Secrets live in this process: no core dumps, no ptrace by other users. */
    struct rlimit no_core = {0, 0};
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0 || setrlimit(RLIMIT_CORE, &no_core) != 0) {
        fputs("tcgw: cannot disable core dumps; refusing to handle secrets\n", stderr);
        return 1;
    }
    /* libcurl would write TLS session keys there, making captured signed calls readable. */
    if (getenv("SSLKEYLOGFILE") != NULL) {
        unsetenv("SSLKEYLOGFILE");
        fputs("tcgw: ignoring SSLKEYLOGFILE: TLS session keys are never written out\n", stderr);
    }

    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *verb = argv[1];
    if (strcmp(verb, "serve") == 0) {
        return gw_cli_serve(argc - 1, argv + 1);
    }
    if (strcmp(verb, "keygen") == 0) {
        return gw_cli_keygen(argc - 1, argv + 1);
    }
    if (strcmp(verb, "secrets") == 0) {
        return gw_cli_secrets(argc - 1, argv + 1);
    }
    if (strcmp(verb, "store") == 0) {
        return gw_cli_store(argc - 1, argv + 1);
    }
    if (strcmp(verb, "policy") == 0) {
        return gw_cli_policy(argc - 1, argv + 1);
    }
    if (strcmp(verb, "callers") == 0) {
        return gw_cli_callers(argc - 1, argv + 1);
    }
    if (strcmp(verb, "audit") == 0) {
        return gw_cli_audit(argc - 1, argv + 1);
    }
    if (strcmp(verb, "help") == 0 || strcmp(verb, "--help") == 0 || strcmp(verb, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "tcgw: unknown command '%s'\n", verb);
    usage(stderr);
    return 2;
}
