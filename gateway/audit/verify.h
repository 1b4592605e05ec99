/*
 * verify: checks audit log files as one series, in the order given (oldest first): every line
 * parses, starts with the canonical chain prefix, continues the sequence and the hash chain
 * (across files: a file's genesis names the previous file's last hash), and every signed line
 * (genesis, seal) verifies under the public key. Needs only the public key.
 *
 * A torn last line (no newline: a crash mid-write; never acknowledged to a caller) and records
 * after the last seal (intact chain, not yet signed) are warnings; anything else is an error
 * that names the first bad line, FILE:LINE.
 */
#ifndef GW_AUDIT_VERIFY_H
#define GW_AUDIT_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "audit/chain.h"

struct gw_audit_verify_result {
    bool ok;
    size_t files;
    uint64_t records;             /* call records */
    uint64_t seals;               /* signed lines */
    size_t torn;                  /* files that end in a torn line */
    uint64_t unsealed;            /* call records after the last signed line of the series */
    char error[1024];             /* "FILE:LINE: what", when !ok */
    char head[GW_AUDIT_HASH_HEX]; /* the hash of the last line */
};

/* Verifies paths[0..n) in order; warnings go to warn (may be NULL) as they are found. */
void gw_audit_verify(const char *const *paths, size_t n,
                     const unsigned char pk[GW_AUDIT_PUBLIC_KEY_BYTES], FILE *warn,
                     struct gw_audit_verify_result *out);

#endif
