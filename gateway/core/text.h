/* text: the one character-class check for names and tokens the gateway accepts from outside. */
#ifndef GW_TEXT_H
#define GW_TEXT_H

#include <stdbool.h>
#include <stddef.h>

#define GW_TEXT_DIGITS "0123456789"
#define GW_TEXT_LOWER "abcdefghijklmnopqrstuvwxyz"
#define GW_TEXT_UPPER "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
#define GW_TEXT_ALNUM GW_TEXT_UPPER GW_TEXT_LOWER GW_TEXT_DIGITS

/*
 * True when s[0..n) is not empty and every byte is one of allowed (a NUL is never allowed).
 * allowed is a NUL-terminated set such as GW_TEXT_ALNUM "_-".
 */
bool gw_text_all_in(const char *s, size_t n, const char *allowed);

/*
 * True when s is NUL-terminated within max bytes, not empty, and printable ASCII (0x20..0x7e):
 * safe to quote in a message or a log field.
 */
bool gw_text_is_printable(const char *s, size_t max);

#endif
