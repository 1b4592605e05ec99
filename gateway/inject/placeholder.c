#include "inject/placeholder.h"

#include <string.h>

#define LIT_LEN(s) (sizeof s - 1)

static bool name_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

enum gw_placeholder gw_placeholder_parse(const char *s, size_t n,
                                         char name[GW_PLACEHOLDER_NAME_MAX + 1])
{
    if (n < LIT_LEN(GW_PLACEHOLDER_PREFIX) ||
        memcmp(s, GW_PLACEHOLDER_PREFIX, LIT_LEN(GW_PLACEHOLDER_PREFIX)) != 0) {
        return GW_PLACEHOLDER_NONE;
    }
    if (n >= LIT_LEN(GW_PLACEHOLDER_RAW) &&
        memcmp(s, GW_PLACEHOLDER_RAW, LIT_LEN(GW_PLACEHOLDER_RAW)) == 0) {
        /*
         * The escape is for a literal that would itself be read as reserved, and only that: an
         * escape in front of an ordinary value would make the policy judge one text ("{{tcgw:
         * raw}}link-prod") while another is sent ("link-prod").
         */
        const char *rest = s + LIT_LEN(GW_PLACEHOLDER_RAW);
        size_t rest_n = n - LIT_LEN(GW_PLACEHOLDER_RAW);
        if (rest_n < LIT_LEN(GW_PLACEHOLDER_PREFIX) ||
            memcmp(rest, GW_PLACEHOLDER_PREFIX, LIT_LEN(GW_PLACEHOLDER_PREFIX)) != 0) {
            return GW_PLACEHOLDER_MALFORMED;
        }
        return GW_PLACEHOLDER_IS_RAW;
    }
    size_t head = LIT_LEN(GW_PLACEHOLDER_SECRET);
    if (n < head + 3 || memcmp(s, GW_PLACEHOLDER_SECRET, head) != 0 || s[n - 2] != '}' ||
        s[n - 1] != '}') {
        return GW_PLACEHOLDER_MALFORMED;
    }
    size_t len = n - head - 2;
    if (len > GW_PLACEHOLDER_NAME_MAX) {
        return GW_PLACEHOLDER_MALFORMED;
    }
    for (size_t i = 0; i < len; i++) {
        if (!name_char(s[head + i])) {
            return GW_PLACEHOLDER_MALFORMED;
        }
    }
    if (name != NULL) {
        memcpy(name, s + head, len);
        name[len] = '\0';
    }
    return GW_PLACEHOLDER_IS_SECRET;
}

bool gw_placeholder_special(const char *s, size_t n)
{
    return gw_placeholder_parse(s, n, NULL) != GW_PLACEHOLDER_NONE;
}
