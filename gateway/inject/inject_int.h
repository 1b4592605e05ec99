/* inject_int: what the inject module's files share; not part of its interface. */
#ifndef GW_INJECT_INT_H
#define GW_INJECT_INT_H

#include <stddef.h>

#include "inject/inject.h"
#include "inject/placeholder.h"

struct ref {
    enum gw_placeholder kind; /* GW_PLACEHOLDER_IS_SECRET or GW_PLACEHOLDER_IS_RAW */
    char name[GW_PLACEHOLDER_NAME_MAX + 1];
    char param[GW_INJECT_PATH_MAX]; /* member names only: "Certificates.Key" */
    char where[GW_INJECT_PATH_MAX]; /* with list indexes: "Certificates.0.Key" */
    const unsigned char *literal;   /* IS_RAW: the value after the escape, borrowed from params */
    size_t literal_len;
};

struct gw_inject {
    struct ref refs[GW_INJECT_MAX_STRINGS];
    size_t n;
    const char *names[GW_INJECT_MAX_STRINGS]; /* of the secrets, for the policy */
    const char *params[GW_INJECT_MAX_STRINGS];
    size_t n_secrets;
};

/* The length of s once gw_inject_json_escape has escaped it. */
size_t inject_escaped_len(const unsigned char *s, size_t n);

#endif
