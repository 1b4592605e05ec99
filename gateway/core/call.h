/*
 * call: one gateway call, from the inbound request to the reply. Each pipeline stage reads it and
 * annotates it; the audit record and the reply are written from it alone. This struct is the one
 * shared record of the design, so its fields are visible to every stage.
 */
#ifndef GW_CALL_H
#define GW_CALL_H

#include <jansson.h>
#include <stdint.h>
#include <time.h>

#include "core/buf.h"
#include "core/errors.h"

#define GW_CALL_MESSAGE_MAX 512
#define GW_CALL_HOST_MAX 253
#define GW_CALL_SERVICE_MAX 32
#define GW_CALL_ACTION_MAX 64
#define GW_CALL_VERSION_MAX 10 /* YYYY-MM-DD */
#define GW_CALL_REGION_MAX 32
#define GW_CALL_LANGUAGE_MAX 8 /* zh-CN, en-US */
#define GW_CALL_CONTENT_TYPE "application/json"

/* How the upstream exchange ended. */
enum gw_upstream_outcome {
    GW_UPSTREAM_NONE = 0,  /* not attempted */
    GW_UPSTREAM_ANSWERED,  /* an HTTP answer came back: status and body are set */
    GW_UPSTREAM_CONNECT,   /* could not resolve, connect or finish the TLS handshake in time */
    GW_UPSTREAM_TLS,       /* TLS handshake or certificate verification failed */
    GW_UPSTREAM_TIMEOUT,   /* the connect or total timeout passed */
    GW_UPSTREAM_TOO_LARGE, /* the answer exceeded max_response_bytes */
    GW_UPSTREAM_FAILED,    /* any other transfer failure */
    GW_UPSTREAM_NOT_SENT,  /* the gateway stopped before the transfer began */
    GW_UPSTREAM_ABORTED,   /* the gateway stopped while the transfer was under way */
};

struct gw_call {
    char request_id[GW_REQUEST_ID_LEN + 1]; /* the gateway's own id, for its errors and logs */
    struct timespec started;                /* CLOCK_MONOTONIC at arrival */

    /* Set by the request stage. */
    struct gw_buf body; /* the caller's body bytes, forwarded unchanged */
    char service[GW_CALL_SERVICE_MAX + 1];
    char host[GW_CALL_HOST_MAX + 1]; /* the upstream host, also signed */
    char action[GW_CALL_ACTION_MAX + 1];
    char version[GW_CALL_VERSION_MAX + 1];
    char region[GW_CALL_REGION_MAX + 1];     /* "" when the caller sent none */
    char language[GW_CALL_LANGUAGE_MAX + 1]; /* "" when the caller sent none */
    json_t *params;                          /* the parsed body, owned */

    /* Set by the signing stage. */
    int64_t timestamp;
    struct gw_buf authorization;

    /* Set by the upstream stage. */
    enum gw_upstream_outcome outcome;
    long http_status;
    struct gw_buf response;    /* the upstream body, returned unchanged */
    char upstream_detail[256]; /* libcurl's words on a failure: for the log, not the caller */

    /* Set by whichever stage refuses the call; error_code NULL means no refusal. */
    const char *error_code; /* static string */
    char error_message[GW_CALL_MESSAGE_MAX];
};

/* Returns a new call with a fresh request id and bounded buffers, or NULL when out of memory. */
struct gw_call *gw_call_new(size_t max_body_bytes, size_t max_response_bytes);

/* Frees the call and everything it owns. Accepts NULL. */
void gw_call_free(struct gw_call *call);

/* Records a refusal: code is a static Tencent error code; the message is printf-formatted. */
void gw_call_refuse(struct gw_call *call, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
