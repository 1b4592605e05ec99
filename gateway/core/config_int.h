/*
 * config_int.h: what the two files of the configuration loader share. Nothing outside
 * gateway/core/config*.c includes it: the interface is config.h.
 *
 *   config_keys.c  the keys of the file, as data: every section's table of keys, and the
 *                  defaults and free of struct gw_config
 *   config.c       the table-driven loader: value kinds, messages, cross-checks, gw_config_load
 */
#ifndef GW_CONFIG_INT_H
#define GW_CONFIG_INT_H

#include <jansson.h>
#include <stddef.h>

#include "core/config.h"

/*
 * The keys of the file, as data: each section of the file is a table of keys, and each key says
 * how its value is checked and where in struct gw_config it lands. A new section is a new table
 * and one KIND_SECTION row (config_keys.c); the loader (config.c) does not change.
 */
enum kind {
    KIND_STRING,   /* char *, non-empty */
    KIND_PATH,     /* char *, non-empty, relative to the file's directory */
    KIND_BOOL,     /* bool */
    KIND_U16,      /* uint16_t */
    KIND_UNSIGNED, /* unsigned */
    KIND_SIZE,     /* size_t */
    KIND_LONG,     /* long */
    KIND_LIST,     /* char *[GW_CONFIG_MAX_OVERRIDES], NULL-terminated non-empty strings */
    KIND_NAME,     /* char *, a caller name: [A-Za-z0-9._-], 1..GW_CALL_NAME_MAX characters */
    KIND_ACCEPT,   /* unsigned, GW_ACCEPT_* bits from a list of method names; max: bits allowed */
    KIND_REFUSED,  /* a key that must not be in this section: description says why */
    KIND_SECTION,  /* a JSON object read with its own table; min 1: offset is its "present" flag */
    KIND_RATE,     /* double, a number from min to max */
    KIND_RATES,    /* struct gw_config_rate[GW_CONFIG_MAX_RATES]: {"name": rate or {rate, burst}} */
};

struct section;

struct key {
    const char *name;
    enum kind kind;
    size_t offset;                 /* of the slot in struct gw_config */
    json_int_t min, max;           /* integer kinds: the accepted range; see enum kind */
    const struct section *section; /* KIND_SECTION */
    const char *description;       /* a few words, for messages */
};

struct section {
    const char *name; /* NULL for the top level */
    const struct key *keys;
    size_t count;
};

/* The top level of the file: the table the loader starts from (config_keys.c). */
extern const struct section gw_config_top_section;
/* The "limits" section, which the loader's cross-checks name in their messages. */
extern const struct section gw_config_limits_section;

#endif
