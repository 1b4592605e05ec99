/*
 * server: the inbound HTTP transport (libmicrohttpd). It receives a request's head and body into
 * a call, hands the call to the pipeline, suspends the connection while the call waits for the
 * upstream, resumes it when the pipeline says the reply is ready, and writes call->reply. It knows
 * no stage: every check, refusal and record is the pipeline's.
 */
#ifndef GW_SERVER_H
#define GW_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/errors.h"
#include "pipeline/pipeline.h"

struct gw_budget;
struct gw_loop;
struct gw_server;

struct gw_server_options {
    const char *address; /* numeric IPv4 or IPv6 address to listen on */
    uint16_t port;       /* 0 picks a free port */
    unsigned threads;
    unsigned max_connections;
    size_t max_body_bytes;     /* the body buffer's maximum; more is counted, not kept */
    size_t max_response_bytes; /* the upstream answer buffer's maximum */
    long request_timeout_ms;   /* deadline to receive a whole request, head and body */
    unsigned max_connections_per_address;
    struct gw_budget *budget; /* memory budget for bodies and answers (borrowed), or NULL */
};

/*
 * Starts listening on loop (libmicrohttpd in external-event mode: the loop runs it). Several
 * servers, one per worker loop, may listen on the same address and port. The pipeline is borrowed
 * and must outlive the server; it must forward through an upstream of the same loop. *out is new.
 */
enum gw_err gw_server_start(const struct gw_server_options *opts, struct gw_loop *loop,
                            struct gw_pipeline *pipeline, struct gw_server **out, char *msg,
                            size_t msglen) GW_MUST_CHECK;

/* The port actually listened on. */
uint16_t gw_server_port(const struct gw_server *server);

/*
 * On the loop's thread: stops accepting new connections; calls in flight still get their answers.
 * Calls that arrive on open connections from now on are answered ServiceUnavailable (not sent),
 * and every answer closes its connection.
 */
void gw_server_quiesce(struct gw_server *server);

/*
 * From any thread, at once: calls that arrive from now on are answered ServiceUnavailable (not
 * sent) and every answer closes its connection. gw_server_quiesce also does this.
 */
void gw_server_refuse_new_calls(struct gw_server *server);

/* From any thread: how many calls wait for the upstream. */
size_t gw_server_unanswered(const struct gw_server *server);

/* After the loop stopped: closes every connection and frees the server. Accepts NULL. */
void gw_server_stop(struct gw_server *server);

#endif
