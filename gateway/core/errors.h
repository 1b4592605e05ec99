/* errors: internal result codes, and the Tencent-format error body that callers see. */
#ifndef GW_ERRORS_H
#define GW_ERRORS_H

#include <stddef.h>

#define GW_MUST_CHECK __attribute__((warn_unused_result))

/* Result of every fallible function in the gateway. */
enum gw_err {
    GW_OK = 0,
    GW_ERR_NOMEM,     /* an allocation failed */
    GW_ERR_IO,        /* a file or socket operation failed */
    GW_ERR_INVALID,   /* the input is malformed */
    GW_ERR_TOO_LARGE, /* the input exceeds a named maximum */
    GW_ERR_NOT_FOUND, /* the named thing does not exist */
    GW_ERR_EXISTS,    /* the thing to create exists already */
    GW_ERR_CRYPTO,    /* authentication failed: wrong key or tampered data */
    GW_ERR_PERM,      /* a key file is readable by group or others */
    GW_ERR_INTERNAL,  /* a library call failed unexpectedly */
    GW_ERR_STOPPED,   /* the component is shutting down and takes no more work */
    GW_ERR_BUDGET,    /* the process-wide memory budget is spent */
    GW_ERR_BUSY,      /* as much work is under way as allowed: try again later */
    GW_ERR_EXPIRED,   /* temporary credentials expired, or none yet: nothing was signed */
};

/*
 * Writes a printf-formatted message into msg[msglen] (the "char *msg, size_t msglen" pair many
 * functions take to say why they failed). Does nothing when msg is NULL or msglen 0.
 */
void gw_say(char *msg, size_t msglen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Returns a static, human-readable name for err. */
const char *gw_err_str(enum gw_err err);

/* Length of a RequestId: a lowercase UUID v4, 36 characters. */
#define GW_REQUEST_ID_LEN 36

/* Writes a fresh random RequestId and a terminating NUL into out. */
void gw_request_id_generate(char out[GW_REQUEST_ID_LEN + 1]);

/*
 * Builds {"Response":{"Error":{"Code":code,"Message":message},"RequestId":request_id}}.
 * Returns a new NUL-terminated string (caller frees with free()) and stores its length in
 * *len, or returns NULL when out of memory. message is escaped as JSON, never interpreted.
 */
char *gw_error_body(const char *code, const char *message, const char *request_id, size_t *len);

#endif
