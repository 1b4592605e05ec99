/*
 * outcome: an upstream exchange that ended without an answer, as a Tencent-format refusal.
 *
 * Every message says whether the call was sent, so the caller knows whether a retry is safe.
 * libcurl's own words (call->upstream_detail) can name internal addresses: they go to the log
 * line, never into the message.
 */
#ifndef GW_OUTCOME_H
#define GW_OUTCOME_H

#include <stddef.h>

#include "core/call.h"

/*
 * Records the refusal for call->outcome on the call (any outcome but GW_UPSTREAM_ANSWERED):
 * InternalError.UpstreamUnreachable, .UpstreamTLSFailure, .UpstreamTimeout, .UpstreamFailure,
 * ResponseSizeLimitExceeded or ServiceUnavailable. timeout_ms and max_response_bytes are quoted.
 */
void gw_outcome_refuse(struct gw_call *call, long timeout_ms, size_t max_response_bytes);

/* A short static name of the outcome for logs and records: "answered", "connect", ... */
const char *gw_outcome_name(enum gw_upstream_outcome outcome);

#endif
