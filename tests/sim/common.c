#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

enum sim_err sim_fault_set(struct sim_fault *f, const char *code, const char *fmt, ...)
{
    va_list ap;

    f->code = code;
    va_start(ap, fmt);
    (void)vsnprintf(f->message, sizeof(f->message), fmt, ap);
    va_end(ap);
    return SIM_FAULT;
}

const struct sim_header *sim_header_find(const struct sim_header *h, size_t n, const char *name,
                                         size_t *count)
{
    const struct sim_header *first = NULL;
    size_t seen = 0;
    size_t i;

    for (i = 0; i < n; i++) {
        if (strcmp(h[i].name, name) == 0) {
            if (first == NULL) {
                first = &h[i];
            }
            seen++;
        }
    }
    if (count != NULL) {
        *count = seen;
    }
    return first;
}

bool sim_uuid(char out[SIM_REQUEST_ID_LEN + 1])
{
    unsigned char b[16];
    char hex[33];

    if (RAND_bytes(b, (int)sizeof(b)) != 1) {
        return false;
    }
    b[6] = (unsigned char)((b[6] & 0x0fu) | 0x40u); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3fu) | 0x80u); /* RFC 4122 variant */
    sim_hex(b, sizeof(b), hex);
    (void)snprintf(out, SIM_REQUEST_ID_LEN + 1, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12,
                   hex + 16, hex + 20);
    return true;
}

void sim_hex(const unsigned char *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    size_t i;

    for (i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 0x0f];
    }
    out[2 * n] = '\0';
}

enum sim_err sim_read_file(const char *path, size_t max, char **out, size_t *len)
{
    enum sim_err err = SIM_EIO;
    char *data = NULL;
    size_t used = 0;
    struct stat st;
    int fd;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return SIM_EIO;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        goto out;
    }
    if (st.st_size < 0 || (uint64_t)st.st_size > max) {
        err = SIM_ETOOBIG;
        goto out;
    }
    data = malloc((size_t)st.st_size + 1);
    if (data == NULL) {
        err = SIM_ENOMEM;
        goto out;
    }
    while (used < (size_t)st.st_size) {
        ssize_t r = read(fd, data + used, (size_t)st.st_size - used);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            goto out;
        }
        used += (size_t)r;
    }
    data[used] = '\0';
    *out = data;
    *len = used;
    data = NULL;
    err = SIM_OK;
out:
    free(data);
    (void)close(fd);
    return err;
}

bool sim_parse_u64(const char *s, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    size_t i;

    if (n == 0 || n > 18 || (n > 1 && s[0] == '0')) {
        return false;
    }
    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
        v = v * 10u + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return true;
}

static char ascii_lower(char c)
{
    if (c >= 'A' && c <= 'Z') {
        return (char)(c - 'A' + 'a');
    }
    return c;
}

bool sim_ieq(const char *a, const char *b)
{
    while (*a != '\0' && *b != '\0') {
        if (ascii_lower(*a) != ascii_lower(*b)) {
            return false;
        }
        a++;
        b++;
    }
    return *a == *b;
}

int64_t sim_now(void)
{
    return (int64_t)time(NULL);
}

uint64_t sim_mono_ns(void)
{
    struct timespec ts;

    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
