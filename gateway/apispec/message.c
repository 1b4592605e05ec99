/*
 * Pieces of the messages of load errors and verdicts. Every message is built from valid UTF-8
 * pieces (names are identifiers; echoed data goes through apispec_clip), so only a cut at the
 * end can break it, and apispec_mark_cut mends that.
 */
#include <string.h>

#include "apispec/apispec_internal.h"

/* Length of the valid UTF-8 sequence at s (n bytes available), or 0 when invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf;
    if (s[0] < 0x80) {
        return 1;
    } else if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        len = 2;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        len = 3;
        lo = s[0] == 0xe0 ? 0xa0 : 0x80;
        hi = s[0] == 0xed ? 0x9f : 0xbf;
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        len = 4;
        lo = s[0] == 0xf0 ? 0x90 : 0x80;
        hi = s[0] == 0xf4 ? 0x8f : 0xbf;
    } else {
        return 0;
    }
    if (n < len || s[1] < lo || s[1] > hi) {
        return 0;
    }
    for (size_t i = 2; i < len; i++) {
        if (s[i] < 0x80 || s[i] > 0xbf) {
            return 0;
        }
    }
    return len;
}

const char *apispec_clip(char out[ECHO_BUF], const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, o = 0;
    while (i < n) {
        size_t len = utf8_seq(u + i, n - i);
        size_t w = len == 0 ? 1 : len;
        if (o + w > ECHO_MAX) {
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        if (len == 0 || (len == 1 && (u[i] < 0x20 || u[i] == 0x7f))) {
            out[o] = '?';
        } else {
            memcpy(out + o, s + i, len);
        }
        o += w;
        i += w;
    }
    out[o] = '\0';
    return out;
}

void apispec_mark_cut(char *buf, size_t cap)
{
    size_t len = strlen(buf);
    if (cap < 4) {
        buf[0] = '\0';
        return;
    }
    if (len > cap - 4) {
        len = cap - 4;
    }
    while (len > 0 && ((unsigned char)buf[len] & 0xc0) == 0x80) {
        len--;
    }
    memcpy(buf + len, "...", 4);
}

void apispec_list_add(char buf[LIST_BUF], size_t *len, bool *full, const char *item)
{
    if (*full) {
        return;
    }
    size_t n = strlen(item);
    size_t sep = *len == 0 ? 0 : 2;
    if (*len + sep + n + 6 > LIST_BUF) { /* keep room for ", ..." and NUL */
        memcpy(buf + *len, *len == 0 ? "..." : ", ...", *len == 0 ? 4 : 6);
        *len += *len == 0 ? 3 : 5;
        *full = true;
        return;
    }
    memcpy(buf + *len, ", ", sep);
    memcpy(buf + *len + sep, item, n + 1);
    *len += sep + n;
}
