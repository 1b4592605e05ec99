/*
 * cli_secrets_read: reading the secrets `tcgw secrets put` and `put-value` take from standard
 * input, with read(2) straight into protected memory, and with echo off on a terminal; and
 * parsing the expiry of a temporary credential.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli_secrets_read.h"

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
int gw_cli_secrets_read_line(const char *what, char *dst, size_t max, size_t *len)
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
int gw_cli_secrets_read_all(const char *what, char *dst, size_t max, size_t *len)
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

/*
 * Reads the SecretKey line from the terminal with echo turned off. The prompt comes only once echo
 * is off, so nothing typed after it can be echoed (TCSAFLUSH drops anything typed before). If echo
 * cannot be turned off, nothing is read: the key would be shown as it is typed.
 */
int gw_cli_secrets_read_hidden(const char *prompt, const char *what,
                               gw_cli_secrets_reader_fn reader, char *dst, size_t max, size_t *len)
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
            reader == gw_cli_secrets_read_line ? "SecretId and the SecretKey, one per line,"
                                               : what);
out:
    restore_tty();
    while (handled > 0) {
        handled--;
        sigaction(fatal_signals[handled], &old[handled], NULL);
    }
    return rc;
}

/* Seconds since the epoch from "1733150000" or RFC 3339 ("2026-12-02T15:00:00Z", "...+08:00",
 * fractions of a second ignored). 0 when parsed. */
int gw_cli_secrets_parse_expiry(const char *text, int64_t *out)
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
