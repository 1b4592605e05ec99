#include "core/log.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The pipe's reader: one per process. */
static struct {
    bool running;
    int read_fd;
    int saved_fd; /* the real stderr */
    pthread_t thread;
} json_log = {false, -1, -1, 0};

static bool is_key_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.';
}

/* A JSON number as RFC 8259 writes it: -?(0|[1-9][0-9]*)(\.[0-9]+)? (no exponent here). */
static bool is_number(const char *v, size_t n)
{
    size_t i = 0;
    if (i < n && v[i] == '-') {
        i++;
    }
    if (i >= n || v[i] < '0' || v[i] > '9' || (v[i] == '0' && i + 1 < n && v[i + 1] != '.')) {
        return false;
    }
    while (i < n && v[i] >= '0' && v[i] <= '9') {
        i++;
    }
    if (i < n && v[i] == '.') {
        i++;
        if (i >= n) {
            return false;
        }
        while (i < n && v[i] >= '0' && v[i] <= '9') {
            i++;
        }
    }
    return i == n && n <= 24;
}

/* A string value; bytes that are not UTF-8 become '?' rather than lose the line. */
static json_t *text_value(const char *v, size_t n)
{
    json_t *s = json_stringn(v, n);
    if (s != NULL) {
        return s;
    }
    char *copy = malloc(n + 1);
    if (copy == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        copy[i] = (unsigned char)v[i] < 0x80 ? v[i] : '?';
    }
    s = json_stringn(copy, n);
    free(copy);
    return s;
}

static json_t *value_of(const char *v, size_t n, bool quoted)
{
    if (!quoted && is_number(v, n)) {
        char num[32];
        memcpy(num, v, n);
        num[n] = '\0';
        if (memchr(v, '.', n) != NULL) {
            return json_real(strtod(num, NULL));
        }
        errno = 0;
        long long i = strtoll(num, NULL, 10);
        if (errno == 0) {
            return json_integer((json_int_t)i);
        }
    }
    return text_value(v, n);
}

/* The fields of a key=value line into doc; false when the line is not one. */
static bool parse_fields(const char *p, const char *end, json_t *doc)
{
    while (p < end) {
        while (p < end && *p == ' ') {
            p++;
        }
        if (p == end) {
            break;
        }
        const char *key = p;
        while (p < end && is_key_char(*p)) {
            p++;
        }
        if (p == key || p == end || *p != '=') {
            return false;
        }
        size_t key_len = (size_t)(p - key);
        p++;
        const char *v = p;
        bool quoted = p < end && *p == '"';
        if (quoted) {
            v = ++p;
            while (p < end && *p != '"') {
                p++;
            }
            if (p == end) {
                return false;
            }
        } else {
            while (p < end && *p != ' ') {
                p++;
            }
        }
        char name[64];
        if (key_len >= sizeof name) {
            return false;
        }
        memcpy(name, key, key_len);
        name[key_len] = '\0';
        json_object_set_new(doc, name, value_of(v, (size_t)(p - v), quoted));
        if (quoted) {
            p++;
        }
    }
    return true;
}

enum gw_err gw_log_json_line(const char *line, size_t len, int64_t time_ms, struct gw_buf *out)
{
    enum gw_err err = GW_ERR_NOMEM;
    char stamp[40];
    time_t secs = (time_t)(time_ms / 1000);
    struct tm tm;
    json_t *doc = NULL;
    char *text = NULL;
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) {
        len--;
    }
    if (gmtime_r(&secs, &tm) == NULL ||
        strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
        stamp[0] = '\0';
    }
    size_t used = strlen(stamp);
    snprintf(stamp + used, sizeof stamp - used, ".%03dZ", (int)(time_ms % 1000));
    if ((doc = json_pack("{s:s}", "time", stamp)) == NULL) {
        goto out;
    }
    bool fields = len > 6 && memcmp(line, "level=", 6) == 0 && parse_fields(line, line + len, doc);
    if (!fields) {
        json_decref(doc);
        doc = json_pack("{s:s,s:s,s:s,s:o}", "time", stamp, "level", "error", "event", "message",
                        "message", text_value(line, len));
        if (doc == NULL) {
            goto out;
        }
    }
    if ((text = json_dumps(doc, JSON_COMPACT | JSON_ENSURE_ASCII)) == NULL) {
        goto out;
    }
    if ((err = gw_buf_append(out, text, strlen(text))) != GW_OK ||
        (err = gw_buf_append(out, "\n", 1)) != GW_OK) {
        goto out;
    }
    err = GW_OK;
out:
    free(text);
    json_decref(doc);
    return err;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return;
        }
        p += w;
        n -= (size_t)w;
    }
}

static void emit(const char *line, size_t len)
{
    struct gw_buf out;
    gw_buf_init(&out, 4 * GW_LOG_LINE_MAX + 256);
    if (gw_log_json_line(line, len, now_ms(), &out) == GW_OK) {
        write_all(json_log.saved_fd, out.data, out.len);
    }
    gw_buf_free(&out);
}

/* Reads the pipe until every writer is gone, one JSON object per line. */
static void *reader(void *arg)
{
    static char line[GW_LOG_LINE_MAX];
    size_t len = 0;
    char chunk[4096];
    (void)arg;
    for (;;) {
        ssize_t n = read(json_log.read_fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        for (ssize_t i = 0; i < n; i++) {
            if (chunk[i] == '\n' || len == sizeof line) {
                emit(line, len);
                len = 0;
                if (chunk[i] == '\n') {
                    continue;
                }
            }
            line[len++] = chunk[i];
        }
    }
    if (len > 0) {
        emit(line, len);
    }
    return NULL;
}

enum gw_err gw_log_start_json(void)
{
    int fds[2] = {-1, -1};
    if (json_log.running) {
        return GW_OK;
    }
    fflush(stderr);
    if (pipe(fds) != 0) {
        return GW_ERR_IO;
    }
    json_log.read_fd = fds[0];
    if ((json_log.saved_fd = dup(STDERR_FILENO)) < 0 || dup2(fds[1], STDERR_FILENO) < 0) {
        goto fail;
    }
    close(fds[1]); /* stderr is the pipe's only writer now */
    fds[1] = -1;
    if (pthread_create(&json_log.thread, NULL, reader, NULL) != 0) {
        dup2(json_log.saved_fd, STDERR_FILENO);
        goto fail;
    }
    json_log.running = true;
    return GW_OK;
fail:
    if (fds[1] >= 0) {
        close(fds[1]);
    }
    close(json_log.read_fd);
    if (json_log.saved_fd >= 0) {
        close(json_log.saved_fd);
    }
    json_log.read_fd = json_log.saved_fd = -1;
    return GW_ERR_INTERNAL;
}

void gw_log_stop(void)
{
    if (!json_log.running) {
        return;
    }
    fflush(stderr);
    dup2(json_log.saved_fd, STDERR_FILENO); /* closes the pipe's last writer: the reader ends */
    pthread_join(json_log.thread, NULL);
    close(json_log.read_fd);
    close(json_log.saved_fd);
    json_log.read_fd = json_log.saved_fd = -1;
    json_log.running = false;
}
