#include "pipeline/record.h"

#include "pipeline/outcome.h"

static const char *identity_name(enum gw_identity_method m)
{
    switch (m) {
    case GW_IDENTITY_TOKEN:
        return "token";
    case GW_IDENTITY_SDK_KEY:
        return "sdk_key";
    case GW_IDENTITY_CERT:
        return "certificate";
    case GW_IDENTITY_LISTENER:
        return "listener";
    case GW_IDENTITY_NONE:
        break;
    }
    return "-";
}

static const char *decision_name(enum gw_decision d)
{
    return d == GW_DECISION_ALLOW ? "allow" : d == GW_DECISION_DENY ? "deny" : "-";
}

/* A quoted value: its double quotes and control characters become single quotes and spaces. */
static void put_quoted(FILE *out, const char *name, const char *value)
{
    if (value[0] == '\0') {
        return;
    }
    fprintf(out, " %s=\"", name);
    for (const char *c = value; *c != '\0'; c++) {
        char ch = *c == '"' ? '\'' : ((unsigned char)*c < 0x20 || *c == 0x7f) ? ' ' : *c;
        fputc(ch, out);
    }
    fputc('"', out);
}

void gw_record_log_line(const struct gw_call *call, FILE *out)
{
    flockfile(out);
    fprintf(out,
            "level=info event=call request_id=%s peer=%s service=%s action=%s caller=%s "
            "identity=%s decision=%s statement=%s credential=%s upstream=%s status=%u error=%s "
            "bytes_in=%zu bytes_out=%zu ms=%.3f upstream_ms=%.3f",
            call->request_id, call->in.peer[0] ? call->in.peer : "-",
            call->service[0] ? call->service : "-", call->action[0] ? call->action : "-",
            call->caller[0] ? call->caller : "-", identity_name(call->identity),
            decision_name(call->decision), call->statement[0] ? call->statement : "-",
            call->credential[0] ? call->credential : "-", gw_outcome_name(call->outcome),
            call->reply.status, call->error_code != NULL ? call->error_code : "-", call->bytes_in,
            call->bytes_out, gw_call_ms(&call->times.received, &call->times.answered),
            gw_call_ms(&call->times.upstream_start, &call->times.upstream_end));
    put_quoted(out, "reason", call->policy_reason);
    put_quoted(out, "detail", call->upstream_detail);
    /* Only when there is something to say: retries, and what idempotency did. */
    if (call->retry.attempts > 1) {
        fprintf(out, " attempts=%u retry_why=%s", call->retry.attempts,
                call->retry.last_why != NULL ? call->retry.last_why : "-");
    }
    if (call->retry.no_retry != NULL) {
        fprintf(out, " no_retry=%s", call->retry.no_retry);
    }
    if (call->idem.generated || call->idem.replayed) {
        fprintf(out, " client_token=%s", call->idem.replayed ? "repeat" : "generated");
    }
    fputc('\n', out);
    funlockfile(out);
}
