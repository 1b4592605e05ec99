/* cli: the command-line verbs. Each returns the process exit code: 0 ok, 1 failure, 2 usage. */
#ifndef GW_CLI_H
#define GW_CLI_H

#include <stdbool.h>
#include <stddef.h>

#include "vault/vault.h"

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

/*
 * tcgw callers add NAME [--token] [--sdk-key] [--certificate URI_OR_CN] [--credential NAME]
 *                       [--policy NAME]... [--attribute KEY=VALUE]... [--json] [--config FILE]
 *     adds a caller to the callers file; prints its new token or SDK key once on stdout
 * tcgw callers list [--json] [--config FILE]
 *     shows each caller's name, identity methods, credential and policies (no hash, no key)
 * tcgw callers remove NAME [--config FILE]
 *     removes a caller, and its SDK key from the credential store
 * The files are the config file's callers_file, master_key_file and credential_store.
 */
int gw_cli_callers(int argc, char **argv);

/*
 * tcgw policy lint [--config FILE] [PATH]
 *     prints every problem of the policy files as "FILE:LINE: what to fix", checked against the
 *     configured API descriptions; PATH (a file or a directory) defaults to the policy directory.
 *     Exit 0 when clean, 1 with problems.
 * tcgw policy check --caller NAME --action SERVICE:ACTION [--region R] [--params JSON] [--peer IP]
 *                   [--config FILE] [--json]
 *     decides one call under the policies the callers file binds to NAME, as the gateway would,
 *     and prints each statement considered and why. Exit 0 when allowed, 1 when denied.
 */
int gw_cli_policy(int argc, char **argv);

/*
 * tcgw audit keygen [--config FILE | --secret-key FILE --public-key FILE]
 *     writes the Ed25519 key pair that seals the audit log (secret key mode 0600)
 * tcgw audit verify [--public-key FILE | --config FILE] [--json] FILE...
 *     checks log files, oldest first, as one chain; names the first bad line as FILE:LINE.
 *     Exit 0 when intact (a torn last line and an unsealed tail are warnings), 1 otherwise.
 */
int gw_cli_audit(int argc, char **argv);

/*
 * tcgw store init [--passphrase [--passphrase-fd N] [--kdf COST]] [--config FILE | --key FILE
 *                 --store FILE]
 * tcgw store rekey (--new-key FILE | --new-passphrase [--new-passphrase-fd N] [--kdf COST])
 *                  [--passphrase-fd N] [--config FILE | --key FILE --store FILE]
 * tcgw store accept-rollback [--passphrase-fd N] [--config FILE | --key FILE --store FILE]
 * tcgw store info [--config FILE | --store FILE]
 * Creates the credential store, changes its master key, accepts a restored older copy.
 */
int gw_cli_store(int argc, char **argv);

/*
 * Reads a passphrase: all of file descriptor fd (then closed; one final newline dropped), or,
 * when fd is -1, one line from the terminal (/dev/tty) with echo off, twice if confirm. *out is
 * new sodium_malloc memory (sodium_free wipes it). what names it in prompts and messages
 * ("passphrase"). Returns 0, or 1 after printing why.
 */
int gw_cli_passphrase_read(const char *verb, int fd, const char *what, bool confirm,
                           unsigned char **out, size_t *out_len);

/* Parses a --passphrase-fd value into *fd: 0, or 2 after printing a usage error. */
int gw_cli_parse_fd(const char *verb, const char *value, int *fd);

/* A store's master key as the CLI gathered it: the key file, or a passphrase it read. */
struct gw_cli_master {
    struct gw_vault_master master; /* what gw_vault_open_master takes */
    unsigned char *passphrase;     /* sodium_malloc'ed, or NULL */
};

/*
 * Looks at the store's header: a passphrase store gets its passphrase read (passphrase_fd, or the
 * terminal when -1); any other store (or none yet) uses key_path. Returns 0, or 1 after printing
 * why. Free with gw_cli_master_free (wipes the passphrase).
 */
int gw_cli_master_get(const char *verb, const char *key_path, const char *store_path,
                      int passphrase_fd, struct gw_cli_master *out);
void gw_cli_master_free(struct gw_cli_master *m);

/*
 * Shared by the verbs. Matches "--name VALUE" or "--name=VALUE" at argv[*i]: returns 1 (and
 * advances *i past a separate value) when it matched, 0 when argv[*i] is another option, -1 when
 * the value is missing. *out is borrowed from argv.
 */
int gw_cli_take_value(int argc, char **argv, int *i, const char *name, const char **out);

/*
 * Prints "tcgw <verb>: <what><option name>" and usage to stderr; returns 2. Only an option's name
 * is repeated, never its value or a stray argument (either could be a pasted secret).
 */
int gw_cli_usage_error(const char *verb, const char *what, const char *option, const char *usage);

#endif
