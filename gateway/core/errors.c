#include "core/errors.h"

#include <stdarg.h>

#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

const char *gw_err_str(enum gw_err err)
{
    switch (err) {
    case GW_OK:
        return "ok";
    case GW_ERR_NOMEM:
        return "out of memory";
    case GW_ERR_IO:
        return "input/output error";
    case GW_ERR_INVALID:
        return "malformed input";
    case GW_ERR_TOO_LARGE:
        return "input too large";
    case GW_ERR_NOT_FOUND:
        return "not found";
    case GW_ERR_EXISTS:
        return "already exists";
    case GW_ERR_CRYPTO:
        return "authentication failed (wrong key or tampered data)";
    case GW_ERR_PERM:
        return "file permissions too open";
    case GW_ERR_INTERNAL:
        return "internal error";
    case GW_ERR_STOPPED:
        return "shutting down";
    case GW_ERR_BUDGET:
        return "memory budget spent";
    case GW_ERR_BUSY:
        return "too much work under way";
    case GW_ERR_EXPIRED:
        return "temporary credentials expired";
    default:
        return "unknown error";
    }
}

/*
 * Random bytes for request ids, drawn from the kernel a batch at a time: one system call per
 * RANDOM_BATCH / 16 calls instead of one per call. Ids need to be unique and unguessable, not
 * secret, and a worker's thread owns its batch.
 */
#define RANDOM_BATCH 512
static _Thread_local unsigned char random_batch[RANDOM_BATCH];
static _Thread_local size_t random_left;

void gw_request_id_generate(char out[GW_REQUEST_ID_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char r[16];
    if (random_left < sizeof r) {
        randombytes_buf(random_batch, sizeof random_batch);
        random_left = sizeof random_batch;
    }
    random_left -= sizeof r;
    memcpy(r, random_batch + random_left, sizeof r); /* each byte is used once */
    r[6] = (unsigned char)((r[6] & 0x0f) | 0x40);    /* version 4 */
    r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);    /* RFC 4122 variant */
    size_t o = 0;
    for (size_t i = 0; i < sizeof r; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) {
            out[o++] = '-';
        }
        out[o++] = hex[r[i] >> 4];
        out[o++] = hex[r[i] & 0x0f];
    }
    out[o] = '\0';
}

char *gw_error_body(const char *code, const char *message, const char *request_id, size_t *len)
{
    char *out = NULL;
    json_t *root = json_pack("{s:{s:{s:s,s:s},s:s}}", "Response", "Error", "Code", code, "Message",
                             message, "RequestId", request_id);
    if (root == NULL) {
        /* Only invalid UTF-8 in message makes json_pack fail short of memory. */
        root = json_pack("{s:{s:{s:s,s:s},s:s}}", "Response", "Error", "Code", code, "Message",
                         "(message withheld: not valid UTF-8)", "RequestId", request_id);
    }
    if (root == NULL) {
        goto out;
    }
    out = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (out != NULL) {
        *len = strlen(out);
    }
out:
    json_decref(root);
    return out;
}

void gw_say(char *msg, size_t msglen, const char *fmt, ...)
{
    if (msg == NULL || msglen == 0) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, msglen, fmt, ap);
    va_end(ap);
}
