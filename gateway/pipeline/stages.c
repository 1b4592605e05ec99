/*
 * The pipeline's plain stages: each checks or changes the call and goes on or decides it, without
 * waiting (pipeline.c runs them from its table; waits.c holds the stages that wait).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "access/access.h"
#include "apispec/apispec.h"
#include "core/budget.h"
#include "core/call.h"
#include "http/request.h"
#include "identity/callers.h"
#include "identity/identify.h"
#include "inject/inject.h"
#include "inject/placeholder.h"
#include "pipeline/outcome.h"
#include "pipeline/pipeline_int.h"
#include "policy/policy.h"
#include "vault/tc3.h"
#include "vault/vault.h"

_Static_assert(GW_TC3_MAX_TEXT <= GW_CALL_AUTHORIZATION_MAX,
               "the call's Authorization buffer holds any header the signer makes");

/* What the transport found wrong, or why it takes no new call, comes before any header. */
enum step pipeline_stage_admit(struct gw_pipeline *p, struct gw_call *call)
{
    if (call->in.malformed != NULL) {
        call->reply.status = call->in.malformed_status;
        call->reply.close = true;
        gw_call_refuse(call, "InvalidRequest", "%s", call->in.malformed);
        return STEP_DECIDED;
    }
    if (call->in.stopping) {
        call->reply.close = true;
        gw_call_refuse(call, "ServiceUnavailable",
                       "The gateway (tcgw) is shutting down. The call was not sent to Tencent "
                       "Cloud; it is safe to retry.");
        return STEP_DECIDED;
    }
    if (p->parts.budget != NULL && gw_budget_spent(p->parts.budget)) {
        gw_call_refuse(
            call, "RequestLimitExceeded",
            "The gateway (tcgw) holds as much unread data as it may (memory_budget_bytes "
            "%zu); slow callers must read their answers first. The call was not sent to "
            "Tencent Cloud; retry shortly.",
            gw_budget_limit(p->parts.budget));
        return STEP_DECIDED;
    }
    return STEP_NEXT;
}

enum step pipeline_stage_request_head(struct gw_pipeline *p, struct gw_call *call)
{
    struct gw_request_input in = {
        .method = call->in.method,
        .target = call->in.target,
        .has_query = call->in.has_query,
        .host = gw_call_header(call, "Host"),
        .content_type = gw_call_header(call, "Content-Type"),
        .action = gw_call_header(call, "X-TC-Action"),
        .version = gw_call_header(call, "X-TC-Version"),
        .region = gw_call_header(call, "X-TC-Region"),
        .language = gw_call_header(call, "X-TC-Language"),
        .trace_id = gw_call_header(call, "X-TC-TraceId"),
        .request_client = gw_call_header(call, "X-TC-RequestClient"),
        .content_length = gw_call_header(call, "Content-Length"),
        .max_body_bytes = p->parts.max_body_bytes,
    };
    return gw_request_check_head(&in, p->parts.endpoint_suffix, call) ? STEP_NEXT : STEP_DECIDED;
}

/* The call's deadline: the configured one, or a shorter one the caller asks for. */
enum step pipeline_stage_deadline(struct gw_pipeline *p, struct gw_call *call)
{
    long ms = p->parts.deadline_ms > 0 ? p->parts.deadline_ms : p->parts.upstream_timeout_ms;
    long max = p->parts.max_deadline_ms > 0 ? p->parts.max_deadline_ms : ms;
    const char *h = gw_call_header(call, "X-Tcgw-Timeout-Ms");
    if (h != NULL) {
        long v = 0;
        size_t i = 0;
        for (; h[i] >= '0' && h[i] <= '9' && i < 9; i++) {
            v = v * 10 + (h[i] - '0');
        }
        if (i == 0 || h[i] != '\0' || v < 1) {
            gw_call_refuse(
                call, "InvalidParameterValue",
                "The header X-Tcgw-Timeout-Ms must be a whole number of milliseconds, "
                "1 or more (at most %ld counts). The call was not sent to Tencent Cloud.",
                max);
            return STEP_DECIDED;
        }
        ms = v < max || max <= 0 ? v : max;
    }
    if (ms <= 0) {
        return STEP_NEXT; /* no deadline */
    }
    const struct timespec *r = &call->times.received;
    int64_t start = r->tv_sec != 0 || r->tv_nsec != 0 ? (int64_t)r->tv_sec * NS_PER_S + r->tv_nsec
                                                      : pipeline_mono_ns();
    call->retry.deadline_ms = ms;
    call->retry.deadline_ns = start + (int64_t)ms * NS_PER_MS;
    return STEP_NEXT;
}

enum step pipeline_stage_request_body(struct gw_pipeline *p, struct gw_call *call)
{
    if (call->in.over_budget) {
        gw_call_refuse(call, "RequestLimitExceeded",
                       "The gateway (tcgw) had no memory left within memory_budget_bytes (%zu) to "
                       "receive the body. The call was not sent to Tencent Cloud; retry shortly.",
                       p->parts.budget != NULL ? gw_budget_limit(p->parts.budget) : (size_t)0);
        return STEP_DECIDED;
    }
    return gw_request_parse_body(call) ? STEP_NEXT : STEP_DECIDED;
}

/* The snapshot this worker judges new calls under. */
static struct gw_access_snapshot *current_snapshot(struct gw_pipeline *p)
{
    uint64_t generation = gw_access_generation(p->parts.access);
    if (p->snapshot == NULL || generation != p->generation) {
        gw_access_release(p->snapshot);
        p->snapshot = gw_access_current(p->parts.access);
        p->generation = gw_access_snapshot_generation(p->snapshot);
    }
    return p->snapshot;
}

enum step pipeline_stage_identify(struct gw_pipeline *p, struct gw_call *call)
{
    struct gw_access_snapshot *snap = current_snapshot(p);
    gw_access_hold(snap);
    call->snapshot = snap;
    enum gw_err err = gw_identify_call(call, gw_access_callers(snap), gw_access_vault(snap),
                                       gw_access_replay(p->parts.access), (int64_t)time(NULL));
    return err == GW_OK ? STEP_NEXT : STEP_DECIDED;
}

enum step pipeline_stage_validate(struct gw_pipeline *p, struct gw_call *call)
{
    struct gw_apispec_verdict verdict;
    /* As sent: a placeholder passes where a string goes; stage inject checks what replaces it. */
    if (!gw_apispec_check_sent(p->parts.spec, call->service, call->version, call->action,
                               call->params, gw_placeholder_special, &verdict)) {
        gw_call_refuse(call, verdict.code, "%s", verdict.message);
        return STEP_DECIDED;
    }
    return STEP_NEXT;
}

enum step pipeline_stage_policy(struct gw_pipeline *p, struct gw_call *call)
{
    (void)p;
    const struct gw_caller *caller = call->caller_entry;
    const struct gw_policy *const *policies = NULL;
    size_t n = gw_access_policies(call->snapshot, caller, &policies);
    struct gw_policy_request req = {
        .service = call->service,
        .action = call->action,
        .region = call->region,
        .params = call->params,
        .caller = caller->name,
        .caller_attributes = caller->attributes,
        .peer = call->in.peer,
    };
    req.n_secrets = gw_inject_secrets(call->inject, &req.secret_names, &req.secret_params);
    struct gw_policy_decision d;
    gw_policy_decide(policies, n, &req, &d, NULL);
    call->decision = d.decision;
    snprintf(call->statement, sizeof call->statement, "%s", d.statement);
    if (d.decision != GW_DECISION_ALLOW) {
        snprintf(call->policy_reason, sizeof call->policy_reason, "%s", d.reason);
        gw_call_refuse(call, "UnauthorizedOperation", "%s. Nothing was sent to Tencent Cloud.",
                       d.refused);
        return STEP_DECIDED;
    }
    /* Each caller is bound to one credential: it can never sign with another's. */
    snprintf(call->credential, sizeof call->credential, "%s", caller->credential);
    gw_call_stamp(&call->times.checked);
    return STEP_NEXT;
}

/* The secret placeholders of the call, named for the policy; misspelt ones are refused. */
enum step pipeline_stage_placeholders(struct gw_pipeline *p, struct gw_call *call)
{
    (void)p;
    struct gw_inject_verdict v;
    call->inject_free = gw_inject_free;
    if (gw_inject_scan(call->params, &call->inject, &v) != GW_OK) {
        gw_call_refuse(call, v.code, "%s", v.message);
        return STEP_DECIDED;
    }
    return STEP_NEXT;
}

/*
 * Puts the secret values in place of the placeholders, once the policy allowed them: the body
 * signed and sent becomes a copy in key memory (wiped when freed); params keeps the placeholders.
 */
enum step pipeline_stage_inject(struct gw_pipeline *p, struct gw_call *call)
{
    if (call->inject == NULL) {
        return STEP_NEXT; /* the caller's bytes go as received */
    }
    struct gw_inject_verdict v;
    struct gw_buf sent;
    gw_buf_init_secure(&sent,
                       call->body.max + GW_INJECT_MAX_STRINGS * 6 * (size_t)GW_VAULT_MAX_VALUE);
    gw_buf_charge(&sent, call->body.budget, true);
    if (gw_inject_apply(call->inject, gw_access_vault(call->snapshot), p->parts.spec, call->service,
                        call->version, call->action, call->body.data, call->body.len, &sent,
                        &v) != GW_OK) {
        gw_call_refuse(call, v.code, "%s", v.message);
        return STEP_DECIDED;
    }
    gw_buf_free(&call->body);
    call->body = sent;
    return STEP_NEXT;
}

enum step pipeline_stage_audit_ready(struct gw_pipeline *p, struct gw_call *call)
{
    char why[256] = "";
    if (pipeline_journal_ready(p, why, sizeof why)) {
        return STEP_NEXT;
    }
    gw_call_refuse(call, "InternalError.AuditUnavailable",
                   "The gateway (tcgw) cannot write its audit log (%s) and sends no call it cannot "
                   "record. The call was not sent to Tencent Cloud; retry once GET /readyz "
                   "answers 200.",
                   why);
    return STEP_DECIDED;
}

enum step pipeline_stage_sign(struct gw_pipeline *p, struct gw_call *call)
{
    (void)p;
    gw_buf_reset(&call->authorization); /* a retry signs again, with a new timestamp */
    call->timestamp = (int64_t)time(NULL);
    struct gw_tc3_request req = {
        .service = call->service,
        .host = call->host,
        .timestamp = call->timestamp,
        .content_type = GW_CALL_CONTENT_TYPE,
        .payload = (const unsigned char *)call->body.data,
        .payload_len = call->body.len,
        .action = NULL, /* sign content-type;host only, exactly as the official SDKs do */
    };
    enum gw_err err = gw_vault_sign_token(gw_access_vault(call->snapshot), call->credential, &req,
                                          &call->authorization, &call->token);
    if (err == GW_ERR_EXPIRED) {
        gw_call_refuse(call, "InternalError.CredentialExpired",
                       "The temporary keys of credential %s have expired (or its role has none "
                       "yet: STS did not answer). The call was not sent to Tencent Cloud; store "
                       "new keys (tcgw secrets put %s --temporary) and reload, or check the "
                       "gateway's log and GET /readyz for STS.",
                       call->credential, call->credential);
        return STEP_DECIDED;
    }
    if (err != GW_OK) {
        gw_call_refuse(call, "InternalError",
                       "tcgw could not sign the call (%s); nothing was sent to Tencent Cloud.",
                       gw_err_str(err));
        return STEP_DECIDED;
    }
    gw_call_stamp(&call->times.signed_at);
    return STEP_NEXT;
}

enum step pipeline_stage_outcome(struct gw_pipeline *p, struct gw_call *call)
{
    if (call->outcome != GW_UPSTREAM_ANSWERED) {
        gw_outcome_refuse(call,
                          call->retry.timeout_ms > 0 ? call->retry.timeout_ms
                                                     : p->parts.upstream_timeout_ms,
                          p->parts.max_response_bytes);
        const char *token = json_string_value(json_object_get(call->params, "ClientToken"));
        size_t n = strlen(call->error_message);
        if (call->idem.generated && call->retry.maybe_sent && token != NULL) {
            /* The caller cannot repeat a token it never saw: name it. */
            snprintf(call->error_message + n, sizeof call->error_message - n,
                     " The gateway (tcgw) added ClientToken \"%s\" to the call: repeat it with "
                     "that token.",
                     token);
        }
        return STEP_DECIDED;
    }
    return STEP_NEXT;
}

/*
 * Once the answer is in: the body that held secret values is wiped, and any of them the answer
 * holds is replaced by its placeholder before the caller reads it (inject.h: defence in depth).
 */
enum step pipeline_stage_redact(struct gw_pipeline *p, struct gw_call *call)
{
    (void)p;
    size_t count = 0;
    if (call->inject == NULL) {
        return STEP_NEXT;
    }
    /* The sent body's key memory holds the forms redact searches for, then goes. */
    enum gw_err err = gw_inject_redact(call->inject, gw_access_vault(call->snapshot),
                                       &call->response, &call->body, &count);
    gw_buf_free(&call->body);
    if (err != GW_OK) {
        gw_buf_free_wipe(&call->response);
        call->outcome = GW_UPSTREAM_ANSWERED;
        gw_call_refuse(call, "InternalError",
                       "Tencent Cloud answered, but tcgw could not check the answer for secret "
                       "values (out of memory), so it is withheld. The call may have been "
                       "applied: check before retrying.");
        return STEP_DECIDED;
    }
    return STEP_NEXT;
}
