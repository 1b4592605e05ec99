#include "audit/chain.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/file.h"

struct gw_audit_signer {
    unsigned char *sk; /* crypto_sign_SECRETKEYBYTES, sodium_malloc, no-access at rest */
    unsigned char pk[crypto_sign_PUBLICKEYBYTES];
};

#define SECRET_HEX (crypto_sign_SECRETKEYBYTES * 2)
#define PUBLIC_HEX (crypto_sign_PUBLICKEYBYTES * 2)

enum gw_err gw_audit_keygen(const char *secret_path, const char *public_path, char *msg,
                            size_t msglen)
{
    enum gw_err err;
    unsigned char *sk = sodium_malloc(crypto_sign_SECRETKEYBYTES);
    char *text = sodium_malloc(SECRET_HEX + 2);
    unsigned char pk[crypto_sign_PUBLICKEYBYTES];
    char pub[PUBLIC_HEX + 2];
    struct stat st;
    if (sk == NULL || text == NULL) {
        gw_say(msg, msglen, "out of memory");
        err = GW_ERR_NOMEM;
        goto out;
    }
    if (lstat(secret_path, &st) == 0 || lstat(public_path, &st) == 0) {
        gw_say(msg, msglen,
               "%s exists already: move it away first (a new key cannot verify old seals)",
               lstat(secret_path, &st) == 0 ? secret_path : public_path);
        err = GW_ERR_EXISTS;
        goto out;
    }
    crypto_sign_keypair(pk, sk);
    sodium_bin2hex(text, SECRET_HEX + 1, sk, crypto_sign_SECRETKEYBYTES);
    text[SECRET_HEX] = '\n';
    sodium_bin2hex(pub, PUBLIC_HEX + 1, pk, sizeof pk);
    pub[PUBLIC_HEX] = '\n';
    if ((err = gw_file_replace(secret_path, "audit signing key file", text, SECRET_HEX + 1, 0600,
                               msg, msglen)) != GW_OK ||
        (err = gw_file_replace(public_path, "audit public key file", pub, PUBLIC_HEX + 1, 0644, msg,
                               msglen)) != GW_OK) {
        goto out;
    }
    err = GW_OK;
out:
    sodium_free(sk);
    sodium_free(text);
    return err;
}

/* Reads a file of one hex line into out (n bytes). */
static enum gw_err read_hex(const char *path, const char *what, unsigned checks, unsigned char *out,
                            size_t n, char *msg, size_t msglen)
{
    enum gw_err err;
    int fd = -1;
    size_t cap = n * 2 + 4;
    char *text = sodium_malloc(cap);
    size_t got = 0;
    if (text == NULL) {
        gw_say(msg, msglen, "out of memory");
        err = GW_ERR_NOMEM;
        goto out;
    }
    if ((err = gw_file_open(path, what, checks, &fd, NULL, msg, msglen)) != GW_OK) {
        goto out;
    }
    if ((err = gw_file_read_upto(fd, text, cap, &got)) != GW_OK) {
        gw_say(msg, msglen, "cannot read %s %s: %s", what, path, strerror(errno));
        goto out;
    }
    while (got > 0 && (text[got - 1] == '\n' || text[got - 1] == '\r')) {
        got--;
    }
    size_t bin_len = 0;
    if (got != n * 2 || sodium_hex2bin(out, n, text, got, NULL, &bin_len, NULL) != 0 ||
        bin_len != n) {
        gw_say(msg, msglen,
               "%s %s is not one line of %zu hex digits: make it with 'tcgw audit keygen'", what,
               path, n * 2);
        err = GW_ERR_INVALID;
        goto out;
    }
    err = GW_OK;
out:
    if (fd >= 0) {
        close(fd);
    }
    sodium_free(text);
    return err;
}

enum gw_err gw_audit_signer_load(const char *path, struct gw_audit_signer **out, char *msg,
                                 size_t msglen)
{
    enum gw_err err;
    struct gw_audit_signer *s = calloc(1, sizeof *s);
    if (s == NULL || (s->sk = sodium_malloc(crypto_sign_SECRETKEYBYTES)) == NULL) {
        gw_say(msg, msglen, "out of memory");
        err = GW_ERR_NOMEM;
        goto out;
    }
    if ((err = read_hex(path, "audit signing key file", GW_FILE_PRIVATE, s->sk,
                        crypto_sign_SECRETKEYBYTES, msg, msglen)) != GW_OK) {
        goto out;
    }
    crypto_sign_ed25519_sk_to_pk(s->pk, s->sk);
    sodium_mprotect_noaccess(s->sk);
    *out = s;
    s = NULL;
    err = GW_OK;
out:
    gw_audit_signer_free(s);
    return err;
}

void gw_audit_signer_free(struct gw_audit_signer *s)
{
    if (s == NULL) {
        return;
    }
    sodium_free(s->sk); /* sodium_free lifts the protection itself */
    free(s);
}

void gw_audit_signer_public_hex(const struct gw_audit_signer *s, char out[65])
{
    sodium_bin2hex(out, 65, s->pk, sizeof s->pk);
}

void gw_audit_signer_hmac_key(const struct gw_audit_signer *s,
                              unsigned char out[GW_AUDIT_HMAC_KEY_BYTES])
{
    unsigned char seed[crypto_sign_SEEDBYTES];
    sodium_mprotect_readonly(s->sk);
    crypto_sign_ed25519_sk_to_seed(seed, s->sk);
    sodium_mprotect_noaccess(s->sk);
    crypto_kdf_derive_from_key(out, GW_AUDIT_HMAC_KEY_BYTES, 1, "tcgwaudt", seed);
    sodium_memzero(seed, sizeof seed);
}

enum gw_err gw_audit_public_key_load(const char *path, unsigned char pk[GW_AUDIT_PUBLIC_KEY_BYTES],
                                     char *msg, size_t msglen)
{
    return read_hex(path, "audit public key file", GW_FILE_REGULAR, pk, GW_AUDIT_PUBLIC_KEY_BYTES,
                    msg, msglen);
}

void gw_audit_hash_hex(const unsigned char h[GW_AUDIT_HASH_BYTES], char out[GW_AUDIT_HASH_HEX])
{
    sodium_bin2hex(out, GW_AUDIT_HASH_HEX, h, GW_AUDIT_HASH_BYTES);
}

void gw_audit_hash_line(const char *line, size_t len, unsigned char out[GW_AUDIT_HASH_BYTES])
{
    crypto_hash_sha256(out, (const unsigned char *)line, len);
}

static enum gw_err append_prefix(const struct gw_audit_chain *c, struct gw_buf *b)
{
    char hex[GW_AUDIT_HASH_HEX];
    gw_audit_hash_hex(c->head, hex);
    return gw_buf_printf(b, "{\"v\":1,\"seq\":%llu,\"prev\":\"%s\",",
                         (unsigned long long)c->next_seq, hex);
}

/* The line that starts at offset start of b is complete but for its newline: hash it, end it. */
static enum gw_err finish_line(struct gw_audit_chain *c, struct gw_buf *b, size_t start)
{
    gw_audit_hash_line(b->data + start, b->len - start, c->head);
    c->next_seq++;
    return gw_buf_append(b, "\n", 1);
}

enum gw_err gw_audit_chain_append(struct gw_audit_chain *c, const char *body, size_t len,
                                  struct gw_buf *b)
{
    enum gw_err err;
    size_t start = b->len;
    if ((err = append_prefix(c, b)) != GW_OK || (err = gw_buf_append(b, body, len)) != GW_OK) {
        return err;
    }
    return finish_line(c, b, start);
}

enum gw_err gw_audit_chain_append_signed(struct gw_audit_chain *c, const char *fields,
                                         const struct gw_audit_signer *s, struct gw_buf *b)
{
    enum gw_err err;
    size_t start = b->len;
    unsigned char sig[crypto_sign_BYTES];
    char hex[crypto_sign_BYTES * 2 + 1];
    if ((err = append_prefix(c, b)) != GW_OK || (err = gw_buf_append_str(b, fields)) != GW_OK) {
        return err;
    }
    sodium_mprotect_readonly(s->sk);
    crypto_sign_detached(sig, NULL, (const unsigned char *)b->data + start, b->len - start, s->sk);
    sodium_mprotect_noaccess(s->sk);
    sodium_bin2hex(hex, sizeof hex, sig, sizeof sig);
    if ((err = gw_buf_printf(b, GW_AUDIT_SIG_FIELD "%s\"}", hex)) != GW_OK) {
        return err;
    }
    return finish_line(c, b, start);
}

bool gw_audit_check_signature(const char *line, size_t len,
                              const unsigned char pk[GW_AUDIT_PUBLIC_KEY_BYTES])
{
    const size_t field = sizeof GW_AUDIT_SIG_FIELD - 1;
    const size_t tail = field + crypto_sign_BYTES * 2 + 2; /* ,"sig":"<hex>"} */
    unsigned char sig[crypto_sign_BYTES];
    size_t got = 0;
    if (len < tail || memcmp(line + len - tail, GW_AUDIT_SIG_FIELD, field) != 0 ||
        memcmp(line + len - 2, "\"}", 2) != 0 ||
        sodium_hex2bin(sig, sizeof sig, line + len - tail + field, crypto_sign_BYTES * 2, NULL,
                       &got, NULL) != 0 ||
        got != sizeof sig) {
        return false;
    }
    return crypto_sign_verify_detached(sig, (const unsigned char *)line, len - tail, pk) == 0;
}

/* The last line of the file is at most this long to be read back (longer: not ours). */
#define TAIL_MAX (GW_AUDIT_LINE_MAX * 2)

enum gw_err gw_audit_file_tail(int fd, struct gw_audit_chain *c, bool *found, size_t *torn_bytes)
{
    struct stat st;
    if (fstat(fd, &st) != 0) {
        return GW_ERR_IO;
    }
    size_t size = (size_t)st.st_size;
    size_t want = size < TAIL_MAX ? size : TAIL_MAX;
    char *buf = malloc(want + 1);
    if (buf == NULL) {
        return GW_ERR_NOMEM;
    }
    ssize_t got = pread(fd, buf, want, (off_t)(size - want));
    if (got != (ssize_t)want) {
        free(buf);
        return GW_ERR_IO;
    }
    /* The end of the last complete line, and where that line starts. */
    size_t end = want;
    while (end > 0 && buf[end - 1] != '\n') {
        end--;
    }
    *torn_bytes = want - end;
    *found = false;
    if (end > 0) {
        size_t start = end - 1;
        while (start > 0 && buf[start - 1] != '\n') {
            start--;
        }
        if (start > 0 || want == size) {
            gw_audit_hash_line(buf + start, end - 1 - start, c->head);
            json_t *doc = json_loadb(buf + start, end - 1 - start, 0, NULL);
            json_t *seq = json_object_get(doc, "seq");
            c->next_seq = json_is_integer(seq) ? (uint64_t)json_integer_value(seq) + 1 : 0;
            json_decref(doc);
            *found = true;
        }
    }
    free(buf);
    return GW_OK;
}
