#include "core/text.h"

#include <string.h>

bool gw_text_all_in(const char *s, size_t n, const char *allowed)
{
    if (n == 0) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\0' || strchr(allowed, s[i]) == NULL) {
            return false;
        }
    }
    return true;
}

bool gw_text_is_printable(const char *s, size_t max)
{
    size_t n = 0;
    for (; s[n] != '\0'; n++) {
        unsigned char c = (unsigned char)s[n];
        if (c < 0x20 || c >= 0x7f || n >= max) {
            return false;
        }
    }
    return n > 0;
}
