/*
 * server: the inbound HTTP transport (libmicrohttpd). It receives a request's head and body into
 * a call, hands the call to the pipeline, suspends the connection while the call waits for the
 * upstream, resumes it when the pipeline says the reply is ready, and writes call->reply. It knows
 * no stage: every check, refusal and record is the pipeline's.
 *
 * A server is one listener: plain HTTP, or HTTPS that requests a client certificate. Each call
 * carries its listener's identity rules (accept, unauthenticated_caller, listener_port) and, on
 * HTTPS whose accept has GW_ACCEPT_CERT, what the client certificate proved (cert_name) or why it
 * is refused (cert_error, "no client certificate was presented" among the reasons): the
 * certificate is judged once per connection (http/peer.h), when its first request arrives, and
 * a refusal is the identity stage's to word, so the caller gets a Tencent-format answer rather
 * than a failed handshake.
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

    /* The listener's identity rules, given to every call (struct gw_call_inbound). */
    unsigned accept;                    /* GW_ACCEPT_* bits */
    const char *unauthenticated_caller; /* borrowed, must outlive the server; or NULL */

    /*
     * HTTPS: all three set (NUL-terminated PEM), or all NULL for plain HTTP. The certificate and
     * key are read during gw_server_start only (the caller may wipe them afterwards); the CA
     * certificates are copied. A client certificate is requested, not required: a connection
     * without one, or with one that fails verification, is served, and its calls carry why.
     */
    const char *tls_cert_pem;      /* the server's certificate chain */
    const char *tls_key_pem;       /* the server's private key */
    const char *tls_client_ca_pem; /* CA certificates a client certificate must chain to */
};

/*
 * Starts listening on loop (libmicrohttpd in external-event mode: the loop runs it). Several
 * servers, one per worker loop, may listen on the same address and port. The pipeline is borrowed
 * and must outlive the server; it must forward through an upstream of the same loop. *out is new.
 * GW_ERR_INVALID: a bad address, or TLS material that does not load (msg says which);
 * GW_ERR_IO: cannot listen; GW_ERR_NOMEM; GW_ERR_INTERNAL.
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
