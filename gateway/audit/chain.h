/*
 * chain: the audit log's lines and their hash chain. A line is
 *
 *   {"v":1,"seq":N,"prev":"<SHA-256 hex of the previous line>",<fields>}\n
 *
 * where the hash of a line is SHA-256 over its bytes without the newline. Each file starts with a
 * genesis line whose prev is the last hash of the file before it (64 zeros for the first file
 * ever); seal lines, written periodically and when a file is closed, carry an Ed25519 signature
 * ("sig", the last field) over the line's bytes before ",\"sig\":". A seal signs the chain head
 * (its prev), so every line before it is covered.
 *
 * The secret signing key lives only here, in sodium_malloc memory that is no-access except while
 * signing.
 */
#ifndef GW_AUDIT_CHAIN_H
#define GW_AUDIT_CHAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "audit/encode.h"
#include "core/buf.h"
#include "core/errors.h"

#define GW_AUDIT_HASH_BYTES 32
#define GW_AUDIT_HASH_HEX (GW_AUDIT_HASH_BYTES * 2 + 1)
#define GW_AUDIT_PUBLIC_KEY_BYTES 32
#define GW_AUDIT_SIG_FIELD ",\"sig\":\""

struct gw_audit_signer;

/* The chain's state: the last line's sequence number and hash. A value: copy it to roll back. */
struct gw_audit_chain {
    uint64_t next_seq;
    unsigned char head[GW_AUDIT_HASH_BYTES];
};

/*
 * Writes a new key pair: the secret key (mode 0600) and the public key (mode 0644), each one line
 * of hex. GW_ERR_EXISTS when either file exists (nothing is written then).
 */
enum gw_err gw_audit_keygen(const char *secret_path, const char *public_path, char *msg,
                            size_t msglen) GW_MUST_CHECK;

/* Loads the secret key file (refused when group or others may read it). *out is new. */
enum gw_err gw_audit_signer_load(const char *path, struct gw_audit_signer **out, char *msg,
                                 size_t msglen) GW_MUST_CHECK;

/* Accepts NULL; wipes the key. */
void gw_audit_signer_free(struct gw_audit_signer *s);

/* The public key, hex. */
void gw_audit_signer_public_hex(const struct gw_audit_signer *s, char out[65]);

/*
 * The key of the parameter HMACs: crypto_kdf subkey 1, context "tcgwaudt", of the signing key's
 * seed. Wipe it after use.
 */
void gw_audit_signer_hmac_key(const struct gw_audit_signer *s,
                              unsigned char out[GW_AUDIT_HMAC_KEY_BYTES]);

/* Loads a public key file (one line of 64 hex digits). */
enum gw_err gw_audit_public_key_load(const char *path, unsigned char pk[GW_AUDIT_PUBLIC_KEY_BYTES],
                                     char *msg, size_t msglen) GW_MUST_CHECK;

/* Hex of a hash. */
void gw_audit_hash_hex(const unsigned char h[GW_AUDIT_HASH_BYTES], char out[GW_AUDIT_HASH_HEX]);

/* SHA-256 of a line (without its newline). */
void gw_audit_hash_line(const char *line, size_t len, unsigned char out[GW_AUDIT_HASH_BYTES]);

/*
 * Appends one line to b: the chain prefix, body (the fields and the closing brace, as
 * gw_audit_encode_call makes it) and a newline; advances the chain. On failure b may hold a
 * partial line: the caller resets it.
 */
enum gw_err gw_audit_chain_append(struct gw_audit_chain *c, const char *body, size_t len,
                                  struct gw_buf *b) GW_MUST_CHECK;

/*
 * Appends a signed line: the chain prefix, fields (without braces), the signature and a newline.
 */
enum gw_err gw_audit_chain_append_signed(struct gw_audit_chain *c, const char *fields,
                                         const struct gw_audit_signer *s,
                                         struct gw_buf *b) GW_MUST_CHECK;

/*
 * Checks a signed line's signature (line without its newline). Returns false when the line has
 * no signature in the last field or it does not verify under pk.
 */
bool gw_audit_check_signature(const char *line, size_t len,
                              const unsigned char pk[GW_AUDIT_PUBLIC_KEY_BYTES]);

/*
 * Reads the end of an existing log file: the hash and sequence number of its last complete line
 * (*found false when it has none) and the bytes after it (a torn line, 0 when it ends with a
 * newline).
 */
enum gw_err gw_audit_file_tail(int fd, struct gw_audit_chain *c, bool *found,
                               size_t *torn_bytes) GW_MUST_CHECK;

#endif
