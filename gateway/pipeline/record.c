#include "pipeline/record.h"

#include "pipeline/outcome.h"

void gw_record_log_line(const struct gw_call *call, FILE *out)
{
    const char *detail = call->upstream_detail;
    fprintf(out,
            "level=info event=call request_id=%s peer=%s service=%s action=%s upstream=%s "
            "status=%u error=%s bytes_in=%zu bytes_out=%zu ms=%.3f upstream_ms=%.3f%s%s%s\n",
            call->request_id, call->in.peer[0] ? call->in.peer : "-",
            call->service[0] ? call->service : "-", call->action[0] ? call->action : "-",
            gw_outcome_name(call->outcome), call->reply.status,
            call->error_code != NULL ? call->error_code : "-", call->bytes_in, call->bytes_out,
            gw_call_ms(&call->times.received, &call->times.answered),
            gw_call_ms(&call->times.upstream_start, &call->times.upstream_end),
            detail[0] ? " detail=\"" : "", detail, detail[0] ? "\"" : "");
}
