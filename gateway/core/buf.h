/* buf: a growable byte buffer with a mandatory maximum size. */
#ifndef GW_BUF_H
#define GW_BUF_H

#include <stdbool.h>
#include <stddef.h>

#include "core/errors.h"

struct gw_budget;

/* Bytes are kept NUL-terminated (the NUL is not counted in len) so text can be used as a C string.
 */
struct gw_buf {
    char *data;
    size_t len;
    size_t cap;
    size_t max;               /* len never exceeds max */
    struct gw_budget *budget; /* where cap is charged, or NULL */
    bool strict; /* growth past the budget fails (GW_ERR_BUDGET) instead of overdrawing */
    bool secure; /* sodium_malloc'ed: growth copies and wipes, free wipes (gw_buf_init_secure) */
};

/* Initialises an empty buffer that will refuse to grow beyond max bytes. Allocates nothing. */
void gw_buf_init(struct gw_buf *b, size_t max);

/*
 * As gw_buf_init, for bytes that hold a secret: memory from sodium_malloc (guard pages, locked,
 * out of core dumps); growing copies into a new region and wipes the old one; gw_buf_free and
 * gw_buf_reset's successor wipe. Never gw_buf_steal such a buffer: its memory is not free()'s.
 */
void gw_buf_init_secure(struct gw_buf *b, size_t max);

/*
 * Charges the buffer's memory (its capacity) to budget from now on, until it is freed or stolen.
 * strict: growth that does not fit fails with GW_ERR_BUDGET; otherwise it overdraws. Call it on
 * an empty buffer.
 */
void gw_buf_charge(struct gw_buf *b, struct gw_budget *budget, bool strict);

/*
 * Takes the bytes out (not from a secure buffer: it returns NULL): returns data (new: the caller
 * frees it, and gives *charged bytes back to the budget when it does) and its length; the buffer is
 * empty and usable afterwards. Returns NULL with *len and *charged 0 when the buffer holds nothing.
 */
char *gw_buf_steal(struct gw_buf *b, size_t *len, size_t *charged);

/*
 * Makes room for n more bytes at once (GW_ERR_TOO_LARGE past max), so that appends up to that
 * do not grow the buffer: for secure buffers, one allocation instead of a copy per doubling.
 */
enum gw_err gw_buf_reserve(struct gw_buf *b, size_t n) GW_MUST_CHECK;

/* Appends n bytes. Returns GW_ERR_TOO_LARGE (buffer unchanged) when len + n would exceed max. */
enum gw_err gw_buf_append(struct gw_buf *b, const void *p, size_t n) GW_MUST_CHECK;

/* Appends a NUL-terminated string. */
enum gw_err gw_buf_append_str(struct gw_buf *b, const char *s) GW_MUST_CHECK;

/* Appends printf-formatted text. */
enum gw_err gw_buf_printf(struct gw_buf *b, const char *fmt, ...) GW_MUST_CHECK
    __attribute__((format(printf, 2, 3)));

/* Empties the buffer, keeping its memory. */
void gw_buf_reset(struct gw_buf *b);

/* Frees the memory; the buffer is empty and usable again afterwards. Accepts a zeroed buffer. */
void gw_buf_free(struct gw_buf *b);

/* Wipes the bytes with sodium_memzero, then frees them: for buffers that held a secret. */
void gw_buf_free_wipe(struct gw_buf *b);

#endif
