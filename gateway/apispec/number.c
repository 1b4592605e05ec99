/*
 * The grammar of numbers that callers send as strings, as Tencent's own examples do
 * ("Bandwidth": "10").
 *
 * Integers: a canonical decimal, that is "0" or an optional '-' and digits without a leading
 * zero. Each value has exactly one spelling, so the gateway, the simulator (tests/sim/gaap.c,
 * which follows the same rule) and Tencent cannot read different numbers from one string, and
 * a string that a lenient parser would read as octal ("010") or that has a sign on zero ("-0")
 * is refused rather than guessed at. No '+', spaces, fraction, exponent or other base. The '-'
 * is part of the grammar for every kind: on an unsigned kind a negative value is out of range,
 * exactly as the JSON number -1 is.
 */
#include <string.h>

#include "apispec/apispec_internal.h"
#include "core/text.h"

bool apispec_parse_integer(const char *s, size_t n, struct intval *x)
{
    size_t i = 0;
    x->neg = false;
    x->overflow = false;
    x->mag = 0;
    if (n > 0 && s[0] == '-') {
        x->neg = true;
        i = 1;
    }
    if (!gw_text_all_in(s + i, n - i, GW_TEXT_DIGITS)) {
        return false; /* also "" and "-" */
    }
    if (s[i] == '0' && (n - i > 1 || x->neg)) {
        return false; /* "010", "00", "-0", "-01": not canonical */
    }
    for (; i < n; i++) {
        uint64_t d = (uint64_t)(s[i] - '0');
        if (x->mag > (UINT64_MAX - d) / 10) {
            x->overflow = true;
        } else {
            x->mag = x->mag * 10 + d;
        }
    }
    return true;
}

static uint64_t magnitude(int64_t v)
{
    return v < 0 ? (uint64_t)(-(v + 1)) + 1 : (uint64_t)v;
}

void apispec_intval_of(int64_t v, struct intval *x)
{
    x->neg = v < 0;
    x->overflow = false;
    x->mag = magnitude(v);
}

int apispec_intval_cmp(const struct intval *x, int64_t b)
{
    uint64_t bm = magnitude(b);
    if (x->neg != (b < 0)) {
        return x->neg ? -1 : 1;
    }
    if (x->mag == bm) {
        return 0;
    }
    return (x->mag < bm) != x->neg ? -1 : 1;
}

bool apispec_intval_fits(const struct intval *x, enum kind kind)
{
    if (x->overflow) {
        return false;
    }
    switch (kind) {
    case KIND_UINT64:
        return !x->neg;
    case KIND_INTEGER:
        /* A kind tcgw does not model: the union of int64 and uint64, to refuse no valid value. */
        return !x->neg || x->mag <= (uint64_t)INT64_MAX + 1;
    case KIND_INT64:
        return x->mag <= (x->neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX);
    default:
        return false;
    }
}

bool apispec_is_decimal_number(const char *s, size_t n)
{
    size_t i = 0, start;
    if (i < n && s[i] == '-') {
        i++;
    }
    for (start = i; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
    }
    if (i == start) {
        return false;
    }
    if (i < n && s[i] == '.') {
        for (start = ++i; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
        }
        if (i == start) {
            return false;
        }
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) {
            i++;
        }
        for (start = i; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
        }
        if (i == start) {
            return false;
        }
    }
    return i == n;
}
