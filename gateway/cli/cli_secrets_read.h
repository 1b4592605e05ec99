/* cli_secrets_read: standard-input readers for `tcgw secrets`; internal to cli_secrets*.c. */
#ifndef GW_CLI_SECRETS_READ_H
#define GW_CLI_SECRETS_READ_H

#include <stddef.h>
#include <stdint.h>

/*
 * Reads one line from fd 0 with read(2) straight into dst (protected memory of max + 1 bytes the
 * caller owns), so no stdio buffer ever holds a secret. Returns 0, or -1 after printing why.
 */
int gw_cli_secrets_read_line(const char *what, char *dst, size_t max, size_t *len);

/*
 * Reads all of fd 0, up to end of file, into dst (max + 1 bytes); drops one final "\n" (and the
 * "\r" of a final "\r\n"). Returns 0, or -1 after printing why.
 */
int gw_cli_secrets_read_all(const char *what, char *dst, size_t max, size_t *len);

typedef int (*gw_cli_secrets_reader_fn)(const char *what, char *dst, size_t max, size_t *len);

/*
 * Prints prompt and runs reader on the terminal with echo turned off (restored after, and on a
 * fatal signal). Reads nothing if echo cannot be turned off. Returns 0, or -1 after printing why.
 */
int gw_cli_secrets_read_hidden(const char *prompt, const char *what,
                               gw_cli_secrets_reader_fn reader, char *dst, size_t max, size_t *len);

/*
 * Seconds since the epoch from "1733150000" or RFC 3339 ("2026-12-02T15:00:00Z", "...+08:00",
 * fractions of a second ignored) into *out. Returns 0 when parsed, else -1.
 */
int gw_cli_secrets_parse_expiry(const char *text, int64_t *out);

#endif
