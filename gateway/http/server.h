/*
 * server: the inbound HTTP endpoint (libmicrohttpd). It reads the request into a call, runs the
 * pipeline, suspends the connection while the call is upstream, and turns the finished call into
 * the answer: the upstream's status and body unchanged, or a Tencent-format error. It is the only
 * module that writes replies.
 */
#ifndef GW_SERVER_H
#define GW_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/call.h"
#include "core/errors.h"
#include "core/pipeline.h"

struct gw_server;

struct gw_server_options {
    const char *address; /* numeric IPv4 or IPv6 address to listen on */
    uint16_t port;       /* 0 picks a free port */
    unsigned threads;
    unsigned max_connections;
    size_t max_body_bytes;
    size_t max_response_bytes;
    const char *endpoint_suffix; /* "tencentcloudapi.com" */
    long upstream_timeout_ms;    /* quoted in timeout errors */
};

/* Starts listening. The pipeline is borrowed and must outlive the server. *out is new. */
enum gw_err gw_server_start(const struct gw_server_options *opts, struct gw_pipeline *pipeline,
                            struct gw_server **out, char *msg, size_t msglen) GW_MUST_CHECK;

/* The port actually listened on. */
uint16_t gw_server_port(const struct gw_server *server);

/* Stops accepting new connections; calls in flight still get their answers. */
void gw_server_quiesce(struct gw_server *server);

/*
 * Waits up to timeout_ms until every call handed upstream has its answer queued. Returns false if
 * some still wait.
 */
bool gw_server_drain(struct gw_server *server, long timeout_ms);

/* Closes every connection and frees the server. Accepts NULL. */
void gw_server_stop(struct gw_server *server);

/*
 * The answer for a finished call: sets *status, *len and returns a new body (free with free();
 * an upstream body is taken from the call, not copied),
 * or NULL when out of memory. A refusal or a failed upstream exchange gives HTTP 200 with a
 * Tencent-format error body, as Tencent answers and as the official SDKs read it.
 */
char *gw_server_answer(struct gw_call *call, long upstream_timeout_ms, size_t max_response_bytes,
                       unsigned *status, size_t *len);

#endif
