#include "pipeline/outcome.h"

void gw_outcome_refuse(struct gw_call *call, long timeout_ms, size_t max_response_bytes)
{
    switch (call->outcome) {
    case GW_UPSTREAM_CONNECT:
        gw_call_refuse(call, "InternalError.UpstreamUnreachable",
                       "The gateway (tcgw) could not connect to %s. The call was not sent to "
                       "Tencent Cloud; it is safe to retry.",
                       call->host);
        break;
    case GW_UPSTREAM_TLS:
        gw_call_refuse(call, "InternalError.UpstreamTLSFailure",
                       "The gateway (tcgw) refused the TLS connection to %s: its certificate or "
                       "handshake failed verification. The call was not sent to Tencent Cloud.",
                       call->host);
        break;
    case GW_UPSTREAM_TIMEOUT:
        gw_call_refuse(call, "InternalError.UpstreamTimeout",
                       "The gateway (tcgw) got no complete answer from %s within %ld ms. The call "
                       "may have reached Tencent Cloud: retry with the same ClientToken.",
                       call->host, timeout_ms);
        break;
    case GW_UPSTREAM_TOO_LARGE:
        gw_call_refuse(call, "ResponseSizeLimitExceeded",
                       "The answer from %s was larger than the gateway's limit of %zu bytes "
                       "(upstream.max_response_bytes); narrow the query, e.g. with Limit.",
                       call->host, max_response_bytes);
        break;
    case GW_UPSTREAM_NOT_SENT:
        gw_call_refuse(call, "ServiceUnavailable",
                       "The gateway (tcgw) is shutting down. The call was not sent to Tencent "
                       "Cloud; it is safe to retry.");
        break;
    case GW_UPSTREAM_ABORTED:
        gw_call_refuse(call, "ServiceUnavailable",
                       "The gateway (tcgw) shut down while waiting for %s. The call may have "
                       "reached Tencent Cloud: retry with the same ClientToken.",
                       call->host);
        break;
    case GW_UPSTREAM_NONE:
    case GW_UPSTREAM_ANSWERED:
    case GW_UPSTREAM_FAILED:
    default:
        gw_call_refuse(call, "InternalError.UpstreamFailure",
                       "The gateway (tcgw) failed while talking to %s. The call may have reached "
                       "Tencent Cloud: retry with the same ClientToken.",
                       call->host);
        break;
    }
}

const char *gw_outcome_name(enum gw_upstream_outcome outcome)
{
    switch (outcome) {
    case GW_UPSTREAM_NONE:
        return "none";
    case GW_UPSTREAM_ANSWERED:
        return "answered";
    case GW_UPSTREAM_CONNECT:
        return "connect";
    case GW_UPSTREAM_TLS:
        return "tls";
    case GW_UPSTREAM_TIMEOUT:
        return "timeout";
    case GW_UPSTREAM_TOO_LARGE:
        return "too_large";
    case GW_UPSTREAM_NOT_SENT:
        return "not_sent";
    case GW_UPSTREAM_ABORTED:
        return "aborted";
    case GW_UPSTREAM_FAILED:
    default:
        return "failed";
    }
}
