/*
 * cli_passphrase: reading a store's passphrase, from a file descriptor (--passphrase-fd N) or
 * from the terminal (/dev/tty, echo off), never from argv or the environment; and finding out
 * which master key a store needs before opening it.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "cli/cli.h"
#include "vault/vault.h"

static struct termios saved;
static volatile sig_atomic_t tty_fd = -1;

static const int fatal_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
#define FATAL_SIGNALS (sizeof fatal_signals / sizeof *fatal_signals)

/* Puts echo back if the user interrupts while it is off, then dies of the same signal. */
static void restore_and_die(int sig)
{
    if (tty_fd >= 0) {
        tcsetattr(tty_fd, TCSAFLUSH, &saved);
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Reads up to max bytes of fd into dst until end of file or (line) a newline. 0 or -1. */
static int read_from(int fd, bool line, unsigned char *dst, size_t max, size_t *len)
{
    size_t n = 0;
    for (;;) {
        unsigned char c;
        ssize_t r = read(fd, &c, 1);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            return -1;
        }
        if (r == 0 || (line && c == '\n')) {
            break;
        }
        if (n >= max) {
            errno = EMSGSIZE;
            return -1;
        }
        dst[n++] = c;
    }
    /* One final newline (and a CR before it) is not part of a passphrase read from a file. */
    if (n > 0 && dst[n - 1] == '\n') {
        n--;
    }
    if (n > 0 && dst[n - 1] == '\r') {
        n--;
    }
    *len = n;
    return 0;
}

/* One line from the terminal tty with echo off, after prompt. 0, or -1 after printing why. */
static int read_tty(const char *verb, int tty, const char *prompt, unsigned char *dst, size_t max,
                    size_t *len)
{
    struct termios quiet, now;
    struct sigaction sa, old[FATAL_SIGNALS];
    size_t handled = 0;
    int rc = -1;

    if (tcgetattr(tty, &saved) != 0) {
        fprintf(stderr, "tcgw %s: cannot use the terminal: %s\n", verb, strerror(errno));
        return -1;
    }
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = restore_and_die;
    sigemptyset(&sa.sa_mask);
    for (; handled < FATAL_SIGNALS; handled++) {
        if (sigaction(fatal_signals[handled], &sa, &old[handled]) != 0) {
            goto out;
        }
    }
    quiet = saved;
    quiet.c_lflag &= ~(tcflag_t)ECHO;
    quiet.c_lflag |= ECHONL;
    tty_fd = tty;
    if (tcsetattr(tty, TCSAFLUSH, &quiet) != 0 || tcgetattr(tty, &now) != 0 ||
        (now.c_lflag & ECHO) != 0) {
        fprintf(stderr,
                "tcgw %s: cannot turn off echo on the terminal; nothing was read: give the "
                "passphrase with --passphrase-fd N instead\n",
                verb);
        goto out;
    }
    if (write(tty, prompt, strlen(prompt)) < 0 || read_from(tty, true, dst, max, len) != 0) {
        fprintf(stderr, "tcgw %s: cannot read the passphrase from the terminal: %s\n", verb,
                strerror(errno));
        goto out;
    }
    rc = 0;
out:
    if (tty_fd >= 0) {
        tcsetattr(tty, TCSAFLUSH, &saved);
        tty_fd = -1;
    }
    while (handled > 0) {
        handled--;
        sigaction(fatal_signals[handled], &old[handled], NULL);
    }
    return rc;
}

int gw_cli_passphrase_read(const char *verb, int fd, const char *what, bool confirm,
                           unsigned char **out, size_t *out_len)
{
    size_t len = 0, len2 = 0;
    int rc = 1;
    int tty = -1;
    char prompt[160];
    if (sodium_init() < 0) {
        fprintf(stderr, "tcgw %s: cannot initialise libsodium\n", verb);
        return 1;
    }
    unsigned char *pass = sodium_malloc(2 * (GW_VAULT_MAX_PASSPHRASE + 1));
    if (pass == NULL) {
        fprintf(stderr, "tcgw %s: out of memory\n", verb);
        return 1;
    }
    unsigned char *again = pass + GW_VAULT_MAX_PASSPHRASE + 1;
    if (fd >= 0) {
        if (read_from(fd, false, pass, GW_VAULT_MAX_PASSPHRASE, &len) != 0) {
            fprintf(stderr, "tcgw %s: cannot read the %s from file descriptor %d: %s\n", verb, what,
                    fd, errno == EMSGSIZE ? "longer than 1024 bytes" : strerror(errno));
            goto out;
        }
        close(fd); /* read once: nothing else in this process may read it again */
    } else {
        if ((tty = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0) {
            fprintf(stderr,
                    "tcgw %s: the %s is needed and there is no terminal to ask for it: give it "
                    "on a file descriptor with --passphrase-fd N (never on the command line)\n",
                    verb, what);
            goto out;
        }
        snprintf(prompt, sizeof prompt, "%c%s (not shown): ", what[0] - ('a' - 'A'), what + 1);
        if (read_tty(verb, tty, prompt, pass, GW_VAULT_MAX_PASSPHRASE, &len) != 0) {
            goto out;
        }
        if (confirm) {
            snprintf(prompt, sizeof prompt, "Again, to confirm: ");
            if (read_tty(verb, tty, prompt, again, GW_VAULT_MAX_PASSPHRASE, &len2) != 0) {
                goto out;
            }
            if (len2 != len || sodium_memcmp(pass, again, len) != 0) {
                fprintf(stderr, "tcgw %s: the two %ss differ; nothing was changed\n", verb, what);
                goto out;
            }
        }
    }
    if (len == 0) {
        fprintf(stderr, "tcgw %s: the %s is empty\n", verb, what);
        goto out;
    }
    sodium_memzero(again, GW_VAULT_MAX_PASSPHRASE + 1);
    *out = pass;
    *out_len = len;
    pass = NULL;
    rc = 0;
out:
    if (tty >= 0) {
        close(tty);
    }
    sodium_free(pass); /* wipes it */
    return rc;
}

int gw_cli_parse_fd(const char *verb, const char *value, int *fd)
{
    char *end = NULL;
    long v = value != NULL ? strtol(value, &end, 10) : -1;
    if (value == NULL || end == value || *end != '\0' || v < 0 || v > 1000000) {
        fprintf(stderr, "tcgw %s: a file descriptor is a number (0 for standard input)\n", verb);
        return 2;
    }
    *fd = (int)v;
    return 0;
}

int gw_cli_master_get(const char *verb, const char *key_path, const char *store_path,
                      int passphrase_fd, struct gw_cli_master *out)
{
    enum gw_vault_key_source source = GW_VAULT_KEY_FILE;
    char msg[512];
    memset(out, 0, sizeof *out);
    out->master.key_file = key_path;
    enum gw_err err = gw_vault_store_info(store_path, &source, NULL, msg, sizeof msg);
    if (err != GW_OK && err != GW_ERR_NOT_FOUND) {
        fprintf(stderr, "tcgw %s: %s\n", verb, msg);
        return 1;
    }
    if (err == GW_OK && source == GW_VAULT_KEY_PASSPHRASE) {
        if (gw_cli_passphrase_read(verb, passphrase_fd, "passphrase", false, &out->passphrase,
                                   &out->master.passphrase_len) != 0) {
            return 1;
        }
        out->master.passphrase = out->passphrase;
    } else if (passphrase_fd >= 0) {
        close(passphrase_fd); /* not needed: the store has a key file */
    }
    return 0;
}

void gw_cli_master_free(struct gw_cli_master *m)
{
    sodium_free(m->passphrase);
    memset(m, 0, sizeof *m);
}
