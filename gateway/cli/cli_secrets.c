/* tcgw secrets put|put-role|put-value|list: manages the encrypted credential store. */
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
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

/* ---- Reading the secrets from standard input ---- */

static struct termios saved_tty;
static volatile sig_atomic_t tty_changed;

/* Signals that end the process while echo is off; each handler puts echo back first. */
static const int fatal_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
#define FATAL_SIGNALS (sizeof fatal_signals / sizeof *fatal_signals)

/* Puts echo back if the user interrupts while it is off, then dies of the same signal. */
static void restore_tty_and_die(int sig)
{
    if (tty_changed) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tty);
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

/* tcsetattr, again after EINTR (TCSAFLUSH waits for output to drain, and a signal can cut it). */
static int set_tty(const struct termios *t)
{
    int rc;
    while ((rc = tcsetattr(STDIN_FILENO, TCSAFLUSH, t)) != 0 && errno == EINTR) {
    }
    return rc;
}

/* Puts the saved terminal settings back; says how to do it by hand when that fails. */
static void restore_tty(void)
{
    if (!tty_changed) {
        return;
    }
    if (set_tty(&saved_tty) != 0) {
        fprintf(stderr,
                "tcgw secrets: cannot restore the terminal (%s): run 'stty sane' if typing is "
                "not shown\n",
                strerror(errno));
    }
    tty_changed = 0;
}

/*
 * Reads one line from fd 0 with read(2) straight into dst (protected memory the caller owns), so
 * no stdio buffer ever holds a secret. Returns 0, or -1 after printing why.
 */
static int read_line(const char *what, char *dst, size_t max, size_t *len)
{
    size_t n = 0;
    for (;;) {
        char *slot = n < max ? dst + n : dst + max; /* dst has max + 1 bytes */
        ssize_t r = read(STDIN_FILENO, slot, 1);
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            fprintf(stderr, "tcgw secrets: cannot read the %s from standard input: %s\n", what,
                    strerror(errno));
            return -1;
        }
        if (r == 0 || *slot == '\n') {
            *slot = '\0';
            break;
        }
        if (n >= max) {
            *slot = '\0';
            fprintf(stderr, "tcgw secrets: the %s is longer than %zu characters\n", what, max);
            return -1;
        }
        n++;
    }
    if (n == 0) {
        fprintf(stderr,
                "tcgw secrets: no %s on standard input: give the SecretId on the first line and "
                "the SecretKey on the second\n",
                what);
        return -1;
    }
    *len = n;
    return 0;
}

/*
 * Reads all of fd 0, up to end of file, with read(2) straight into dst (protected memory of
 * max + 1 bytes the caller owns). Drops one final "\n" (and the "\r" of a final "\r\n").
 * Returns 0, or -1 after printing why.
 */
static int read_all(const char *what, char *dst, size_t max, size_t *len)
{
    size_t n = 0;
    for (;;) {
        ssize_t r = read(STDIN_FILENO, dst + n, max + 1 - n);
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            fprintf(stderr, "tcgw secrets: cannot read the %s from standard input: %s\n", what,
                    strerror(errno));
            return -1;
        }
        if (r == 0) {
            break;
        }
        n += (size_t)r;
        if (n > max) {
            fprintf(stderr, "tcgw secrets: the %s is longer than %zu bytes\n", what, max);
            return -1;
        }
    }
    if (n > 0 && dst[n - 1] == '\n') {
        n--;
        if (n > 0 && dst[n - 1] == '\r') {
            n--;
        }
    }
    if (n == 0) {
        fprintf(stderr, "tcgw secrets: no %s on standard input\n", what);
        return -1;
    }
    *len = n;
    return 0;
}

typedef int (*reader_fn)(const char *what, char *dst, size_t max, size_t *len);

/*
 * Reads the SecretKey line from the terminal with echo turned off. The prompt comes only once echo
 * is off, so nothing typed after it can be echoed (TCSAFLUSH drops anything typed before). If echo
 * cannot be turned off, nothing is read: the key would be shown as it is typed.
 */
static int read_hidden(const char *prompt, const char *what, reader_fn reader, char *dst,
                       size_t max, size_t *len)
{
    struct termios quiet, now;
    struct sigaction sa, old[FATAL_SIGNALS];
    size_t handled = 0;
    int rc = -1;
    int e = 0;

    if (tcgetattr(STDIN_FILENO, &saved_tty) != 0) {
        e = errno;
        goto refuse;
    }
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = restore_tty_and_die;
    sigemptyset(&sa.sa_mask);
    for (; handled < FATAL_SIGNALS; handled++) {
        if (sigaction(fatal_signals[handled], &sa, &old[handled]) != 0) {
            e = errno;
            goto refuse;
        }
    }
    quiet = saved_tty;
    quiet.c_lflag &= ~(tcflag_t)ECHO;
    quiet.c_lflag |= ECHONL;
    tty_changed = 1;
    /* tcsetattr succeeds when any one change took: read back that echo really is off. */
    if (set_tty(&quiet) != 0 || tcgetattr(STDIN_FILENO, &now) != 0) {
        e = errno;
        goto refuse;
    }
    if ((now.c_lflag & ECHO) != 0) {
        e = ENOTSUP;
        goto refuse;
    }
    fputs(prompt, stderr);
    rc = reader(what, dst, max, len);
    goto out;
refuse:
    fprintf(stderr,
            "tcgw secrets: cannot turn off echo on this terminal (%s), so the %s would be shown "
            "as you type it; nothing was read. Pipe the %s into standard input instead\n",
            strerror(e), what,
            reader == read_line ? "SecretId and the SecretKey, one per line," : what);
out:
    restore_tty();
    while (handled > 0) {
        handled--;
        sigaction(fatal_signals[handled], &old[handled], NULL);
    }
    return rc;
}

/* ---- Subcommands ---- */

/*
 * The secrets are read first and the store after, under its writer lock: a put that waits for the
 * operator to type never holds the lock, and one that holds it reads the store as the previous
 * writer left it.
 */
#define EXPIRY_MAX 40

/* Seconds since the epoch from "1733150000" or RFC 3339 ("2026-12-02T15:00:00Z", "...+08:00",
 * fractions of a second ignored). 0 when parsed. */
static int parse_expiry(const char *text, int64_t *out)
{
    size_t n = strlen(text);
    if (n > 0 && strspn(text, "0123456789") == n) {
        if (n > 12) {
            return -1;
        }
        *out = (int64_t)strtoll(text, NULL, 10);
        return *out > 0 ? 0 : -1;
    }
    int y, mo, d, h, mi, sec, used = 0;
    if (sscanf(text, "%4d-%2d-%2d%*1[Tt ]%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &used) != 6 ||
        used != 19 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) {
        return -1;
    }
    const char *p = text + used;
    if (*p == '.') {
        p++;
        if (strspn(p, "0123456789") == 0) {
            return -1;
        }
        p += strspn(p, "0123456789");
    }
    int64_t offset = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om, k = 0;
        if (sscanf(p + 1, "%2d:%2d%n", &oh, &om, &k) != 2 || k != 5 || oh > 23 || om > 59) {
            return -1;
        }
        offset = (int64_t)(oh * 3600 + om * 60) * (*p == '+' ? 1 : -1);
        p += 6;
    } else {
        return -1;
    }
    if (*p != '\0') {
        return -1;
    }
    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = mo - 1,
                    .tm_mday = d,
                    .tm_hour = h,
                    .tm_min = mi,
                    .tm_sec = sec};
    time_t t = timegm(&tm);
    if (t == (time_t)-1 || tm.tm_mday != d) {
        return -1;
    }
    *out = (int64_t)t - offset;
    return *out > 0 ? 0 : -1;
}

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
    if (read_line("SecretId", id, GW_VAULT_MAX_SECRET_ID, &id_len) != 0) {
        goto out;
    }
    if ((tty ? read_hidden("SecretKey (not shown): ", "SecretKey", read_line, key,
                           GW_VAULT_MAX_SECRET_KEY, &key_len)
             : read_line("SecretKey", key, GW_VAULT_MAX_SECRET_KEY, &key_len)) != 0) {
        goto out;
    }
    if (a->temporary) {
        if ((tty ? read_hidden("Token (not shown): ", "Token", read_line, token, GW_VAULT_MAX_TOKEN,
                               &token_len)
                 : read_line("Token", token, GW_VAULT_MAX_TOKEN, &token_len)) != 0) {
            goto out;
        }
        if (tty) {
            fprintf(stderr, "Expiry (RFC 3339 or epoch seconds): ");
        }
        if (read_line("expiry", expiry, EXPIRY_MAX, &expiry_len) != 0) {
            goto out;
        }
        expiry[expiry_len] = '\0';
        if (parse_expiry(expiry, &expires) != 0) {
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
    if ((tty ? read_hidden("Secret value (not shown; end with Ctrl-D on a line of its own): ",
                           "secret value", read_all, value, GW_VAULT_MAX_VALUE, &len)
             : read_all("secret value", value, GW_VAULT_MAX_VALUE, &len)) != 0) {
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
