/*
 * upstream: forwards signed calls to Tencent Cloud over verified TLS with libcurl.
 *
 * One upstream per worker: a curl multi handle driven by curl_multi_socket_action on the worker's
 * event loop, so a call is submitted, sent, answered and completed on one thread, and nothing
 * waits on a socket. When a transfer ends, the outcome, status and body are stored on the call
 * and the done callback runs. HTTP/2 is used where the upstream offers it (many calls on one
 * connection); HTTP/1.1 otherwise, up to max_host_connections. Only https is spoken,
 * certificates and host names are verified, redirects are not followed, and the answer's size is
 * capped while it arrives.
 *
 * At most once: a call is never sent twice by this module. When a kept-alive connection closes
 * after the call went out and before an answer came, the outcome is GW_UPSTREAM_FAILED (it may
 * have been applied), never a silent resend on a new connection. GW_UPSTREAM_CONNECT and
 * GW_UPSTREAM_TLS ("not sent") are only reported when libcurl never got as far as sending.
 * Connections are not reused once idle for 30 s or 50 s old, to keep that case rare.
 */
#ifndef GW_UPSTREAM_H
#define GW_UPSTREAM_H

#include "core/call.h"
#include "core/errors.h"

struct gw_upstream;

struct gw_upstream_options {
    const char *ca_file; /* NULL: the system's trust store */
    long connect_timeout_ms;
    long timeout_ms;
    unsigned max_host_connections;
    unsigned max_in_flight;  /* calls submitted and not done; more get GW_ERR_BUSY */
    char *const *connect_to; /* CURLOPT_CONNECT_TO entries, NULL-terminated; may be NULL */
    char *const *resolve;    /* CURLOPT_RESOLVE entries, NULL-terminated; may be NULL */
};

struct gw_loop;

/* Called once per submitted call, on the loop's thread, after the call's result is stored. */
typedef void (*gw_upstream_done_fn)(struct gw_call *call, void *arg);

/*
 * Checks opts and creates an upstream that runs on loop. On success *out is new: free it with
 * gw_upstream_free. GW_ERR_INVALID, with a message naming the setting, the entry and the expected
 * form, when ca_file is not a readable regular file with at least one PEM certificate, a connect_to
 * entry is not HOST:PORT:CONNECT-TO-HOST:CONNECT-TO-PORT, or a resolve entry is not
 * [+]HOST:PORT:ADDRESS[,ADDRESS] with numeric addresses; *out is then untouched.
 */
enum gw_err gw_upstream_new(const struct gw_upstream_options *opts, struct gw_loop *loop,
                            struct gw_upstream **out, char *msg, size_t msglen) GW_MUST_CHECK;

/*
 * On the loop's thread: starts call, POST https://<call->host>/ with call->body as the exact bytes,
 * the signed headers (call->authorization, call->timestamp) and the X-TC-* headers. The call is
 * borrowed until done runs (never before this returns). On an error return done is never called:
 * GW_ERR_STOPPED after gw_upstream_stop, GW_ERR_BUSY with max_in_flight calls under way,
 * GW_ERR_INVALID for a header value with CR or LF.
 */
enum gw_err gw_upstream_submit(struct gw_upstream *up, struct gw_call *call,
                               gw_upstream_done_fn done, void *arg) GW_MUST_CHECK;

/*
 * On the loop's thread (or once the loop has stopped): ends every transfer still running
 * (GW_UPSTREAM_ABORTED), each with its done call. Submitting afterwards fails with
 * GW_ERR_STOPPED, so the server may still be running. Accepts NULL; a second call does nothing.
 */
void gw_upstream_stop(struct gw_upstream *up);

/* Calls submitted and not done. */
unsigned gw_upstream_in_flight(const struct gw_upstream *up);

/* Stops (if not yet stopped) and frees, on the loop's thread or after it stopped. Accepts NULL. */
void gw_upstream_free(struct gw_upstream *up);

#endif
