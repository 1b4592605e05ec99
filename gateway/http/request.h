/*
 * request: turns the inbound HTTP request into a call, or refuses it.
 *
 * The service comes from the Host header (<service>.tencentcloudapi.com,
 * <service>.<region>.tencentcloudapi.com, <service>.intl.tencentcloudapi.com, any port), from an
 * absolute-form target (POST http://gaap.tencentcloudapi.com/), or from a path /<service>/ when
 * the Host names no service (then the upstream host is <service>.<suffix>). Caller-supplied
 * Authorization, X-TC-Timestamp and X-TC-Token are not read, so they are never passed on.
 *
 * Besides the X-TC-* headers that are part of the call, exactly these headers are passed on to
 * Tencent Cloud, because the official SDKs send them and none is signed: X-TC-TraceId and
 * X-TC-RequestClient (printable ASCII, at most GW_CALL_TRACE_MAX characters each).
 */
#ifndef GW_REQUEST_H
#define GW_REQUEST_H

#include <stdbool.h>
#include <stddef.h>

#include "core/call.h"

/* The raw inbound request. Strings are borrowed; NULL means the header was absent. */
struct gw_request_input {
    const char *method;
    const char *target; /* the request target as received: "/", "/gaap/", "http://host/" */
    const char *host;
    const char *content_type;
    const char *action;         /* X-TC-Action */
    const char *version;        /* X-TC-Version */
    const char *region;         /* X-TC-Region */
    const char *language;       /* X-TC-Language */
    const char *trace_id;       /* X-TC-TraceId, passed on */
    const char *request_client; /* X-TC-RequestClient, passed on */
    const char *content_length; /* Content-Length */
    size_t max_body_bytes;      /* a Content-Length above it is refused; 0: not checked */
    bool has_query; /* the target had a query string (the server strips it from target) */
};

/*
 * Checks the method and headers and fills call->service, host, action, version, region and
 * language, trace_id and request_client. endpoint_suffix is "tencentcloudapi.com". Returns true,
 * or false with the refusal recorded on the call (UnsupportedProtocol, InvalidRequest,
 * MissingParameter, InvalidAction, NoSuchVersion, InvalidParameterValue,
 * RequestSizeLimitExceeded). A CONNECT is refused with HTTP 405 and "Allow: POST" (a proxy client
 * must not take any 2xx for an open tunnel). Runs before the body is read, so a bad request costs
 * no upload.
 */
bool gw_request_check_head(const struct gw_request_input *in, const char *endpoint_suffix,
                           struct gw_call *call);

/*
 * Parses call->body as the JSON parameters into call->params. Returns true, or false with the
 * refusal recorded: RequestSizeLimitExceeded when call->in.body_too_large, InvalidRequest for
 * malformed JSON or a body that is not an object, InvalidParameterValue for an integer beyond
 * int64 inside the object.
 */
bool gw_request_parse_body(struct gw_call *call);

#endif
