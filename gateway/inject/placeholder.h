/*
 * placeholder: the syntax by which a caller names a secret value it does not hold.
 *
 * A JSON string parameter whose whole decoded value is
 *
 *     {{tcgw:secret/NAME}}          NAME: 1 to 64 of A-Z a-z 0-9 . _ -  (a vault name)
 *
 * is a placeholder: the gateway sends the secret value NAME in its place. Only the whole string
 * counts ("key: {{tcgw:secret/x}}" is no placeholder, and is refused, below), so a value is
 * never pieced together from text the caller controls around a secret.
 *
 * Every string starting with "{{tcgw:" is reserved for the gateway. A real value that starts so
 * is sent escaped: "{{tcgw:raw}}" followed by the value, which the gateway sends without the
 * escape ("{{tcgw:raw}}{{tcgw:secret/x}}" sends the literal text "{{tcgw:secret/x}}";
 * "{{tcgw:raw}}" alone sends ""). Any other string starting with "{{tcgw:" (a misspelt
 * placeholder such as "{{tcgw:secrets/x}}") is refused rather than sent as it is. Strings not
 * starting with "{{tcgw:" are never touched. Object keys are never placeholders.
 */
#ifndef GW_PLACEHOLDER_H
#define GW_PLACEHOLDER_H

#include <stdbool.h>
#include <stddef.h>

#define GW_PLACEHOLDER_PREFIX "{{tcgw:"        /* reserved: every gateway string starts so */
#define GW_PLACEHOLDER_SECRET "{{tcgw:secret/" /* then NAME, then "}}" */
#define GW_PLACEHOLDER_RAW "{{tcgw:raw}}"      /* then a literal value */
#define GW_PLACEHOLDER_NAME_MAX 64
/* The longest placeholder: prefix, name, "}}". */
#define GW_PLACEHOLDER_MAX (sizeof GW_PLACEHOLDER_SECRET - 1 + GW_PLACEHOLDER_NAME_MAX + 2)

enum gw_placeholder {
    GW_PLACEHOLDER_NONE,      /* an ordinary string: sent as it is */
    GW_PLACEHOLDER_IS_SECRET, /* {{tcgw:secret/NAME}} */
    GW_PLACEHOLDER_IS_RAW,    /* {{tcgw:raw}}literal */
    GW_PLACEHOLDER_MALFORMED, /* starts with {{tcgw: but is neither: refused */
};

/*
 * Classifies the decoded string s (n bytes). For a secret, copies NAME and a NUL into name
 * (when not NULL). Allocation-free.
 */
enum gw_placeholder gw_placeholder_parse(const char *s, size_t n,
                                         char name[GW_PLACEHOLDER_NAME_MAX + 1]);

/* True when s (n bytes) is rewritten before sending: a placeholder, an escape or malformed. */
bool gw_placeholder_special(const char *s, size_t n);

#endif
