/* cli: the command-line verbs. Each returns the process exit code: 0 ok, 1 failure, 2 usage. */
#ifndef GW_CLI_H
#define GW_CLI_H

/* tcgw serve [--config FILE] [--listen ADDR] [--port N]: runs the gateway until SIGINT/SIGTERM. */
int gw_cli_serve(int argc, char **argv);

/* tcgw keygen [--config FILE | --key FILE]: writes a new master key file (mode 0600). */
int gw_cli_keygen(int argc, char **argv);

/*
 * tcgw secrets put NAME [--config FILE | --key FILE --store FILE]
 *     reads the SecretId then the SecretKey, one per line, from standard input (never argv)
 * tcgw secrets list [--config FILE | --key FILE --store FILE] [--json]
 *     shows each credential's name and the last four characters of its SecretId
 * Without --config or --key, the key file is $TCGW_MASTER_KEY_FILE.
 */
int gw_cli_secrets(int argc, char **argv);

#endif
