/*
 * server: the simulator's HTTPS front end (libmicrohttpd, TLS, epoll, small thread pool).
 *
 * Every answer to POST / is HTTP 200 with Tencent's body: {"Response":{...,"RequestId":".."}} on
 * success, {"Response":{"Error":{"Code":"..","Message":".."},"RequestId":".."}} on failure. Checks
 * run in this order, the first failure answering:
 *   body over SIM_MAX_BODY_BYTES            RequestSizeLimitExceeded
 *   not POST, or path not "/"               UnsupportedProtocol
 *   a common header given twice             InvalidParameter
 *   Content-Type not application/json[;..]  InvalidParameter
 *   X-TC-Action/-Version/-Timestamp absent  MissingParameter
 *   X-TC-Version not 2018-05-29             NoSuchVersion
 *   X-TC-Action not a simulated action      InvalidAction
 *   X-TC-Timestamp not a decimal            InvalidParameterValue
 *   signature (see sign_check.h)            AuthFailure.*
 *   CAM (see credentials.h)                 AuthFailure, AuthFailure.UnauthorizedOperation
 *   per-action rate                         RequestLimitExceeded
 *   body not a JSON object (empty = {})     InvalidParameter
 *   the action's own checks (see gaap.h)
 * A Host header starting "sts." goes to the simulator's STS instead (sts.h): version 2018-08-13,
 * action AssumeRole, service "sts" in the signature, no rate limit.
 * Each request is recorded (records.h) before its answer is queued. GET /_sim/health answers
 * "ok" without authentication and is not recorded.
 *
 * Fault mode close_after_read = N (N > 0): the Nth request on each connection (health checks not
 * counted) is read in full, checked and recorded as usual with "fault": "close-after-read" added
 * to its record, and then the connection is closed without an answer. This is what a server does
 * that dies, or drops an idle connection, right after reading a call: the client cannot know
 * whether the call was applied, and must not send it again on its own.
 */
#ifndef SIM_SERVER_H
#define SIM_SERVER_H

#include <stdint.h>

#include <jansson.h>

#include "common.h"
#include "credentials.h"
#include "gaap.h"
#include "ratelimit.h"
#include "records.h"
#include "sts.h"

struct sim_server_config {
    const char *listen_addr; /* numeric IPv4 or IPv6 address */
    uint16_t port;           /* 0: the kernel picks a free port */
    const char *cert_pem;    /* borrowed; must outlive the server */
    const char *key_pem;     /* borrowed; must outlive the server */
    int64_t max_skew;        /* seconds */
    struct sim_gaap *gaap;
    const struct sim_credentials *credentials;
    struct sim_records *records;
    struct sim_ratelimit *limits;
    unsigned close_after_read; /* 0: off; see the fault mode above */
    struct sim_sts *sts;       /* Host sts.*: AssumeRole (sts.h); NULL: gaap only */
};

struct sim_server;

/*
 * Starts listening and serving. *out is new (stop with sim_server_stop); *port receives the bound
 * port. On failure a message is written to errbuf.
 */
enum sim_err sim_server_start(const struct sim_server_config *cfg, struct sim_server **out,
                              uint16_t *port, char *errbuf, size_t errlen) SIM_MUST_CHECK;

/* Stops the daemon (finishing in-flight callbacks) and frees s. Accepts NULL. */
void sim_server_stop(struct sim_server *s);

#endif
