#include "pipeline/pipeline.h"

#include <stdio.h>
#include <stdlib.h>
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
#include "limits/limiter.h"
#include "pipeline/outcome.h"
#include "pipeline/record.h"
#include "policy/policy.h"
#include "upstream/upstream.h"
#include "vault/tc3.h"
#include "vault/vault.h"

_Static_assert(GW_TC3_MAX_TEXT <= GW_CALL_AUTHORIZATION_MAX,
               "the call's Authorization buffer holds any header the signer makes");

struct gw_pipeline {
    struct gw_pipeline_parts parts;
    /*
     * This worker's reference to the current access snapshot: taken again only when a reload
     * changed the generation, so a call costs one atomic increment, not a lock.
     */
    struct gw_access_snapshot *snapshot;
    uint64_t generation;
};

/* What a stage did with the call. */
enum step {
    STEP_NEXT,    /* go on with the next stage */
    STEP_DECIDED, /* the call has its refusal or its answer: go to the final stage */
    STEP_WAIT,    /* handed to the upstream: the pipeline resumes in forwarded() */
};

typedef enum step (*stage_fn)(struct gw_pipeline *p, struct gw_call *call);

struct stage {
    const char *name;
    stage_fn run;
    bool needs_body; /* gw_pipeline_begin stops before the first such stage */
};

/* What the transport found wrong, or why it takes no new call, comes before any header. */
static enum step stage_admit(struct gw_pipeline *p, struct gw_call *call)
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

static enum step stage_request_head(struct gw_pipeline *p, struct gw_call *call)
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

static enum step stage_request_body(struct gw_pipeline *p, struct gw_call *call)
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

static enum step stage_identify(struct gw_pipeline *p, struct gw_call *call)
{
    struct gw_access_snapshot *snap = current_snapshot(p);
    gw_access_hold(snap);
    call->snapshot = snap;
    enum gw_err err = gw_identify_call(call, gw_access_callers(snap), gw_access_vault(snap),
                                       gw_access_replay(p->parts.access), (int64_t)time(NULL));
    return err == GW_OK ? STEP_NEXT : STEP_DECIDED;
}

static enum step stage_validate(struct gw_pipeline *p, struct gw_call *call)
{
    struct gw_apispec_verdict verdict;
    /* As sent: a placeholder passes where a string goes; stage_inject checks what replaces it. */
    if (!gw_apispec_check_sent(p->parts.spec, call->service, call->version, call->action,
                               call->params, gw_placeholder_special, &verdict)) {
        gw_call_refuse(call, verdict.code, "%s", verdict.message);
        return STEP_DECIDED;
    }
    return STEP_NEXT;
}

static enum step stage_policy(struct gw_pipeline *p, struct gw_call *call)
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
static enum step stage_placeholders(struct gw_pipeline *p, struct gw_call *call)
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
static enum step stage_inject(struct gw_pipeline *p, struct gw_call *call)
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

static void limited(struct gw_call *call, void *arg);

/* Rate limits: refused here, nothing is sent; a call may wait for its token (or for Redis). */
static enum step stage_limit(struct gw_pipeline *p, struct gw_call *call)
{
    if (p->parts.limiter == NULL) {
        return STEP_NEXT;
    }
    switch (gw_limiter_admit(p->parts.limiter, call, limited, p)) {
    case GW_LIMITER_PASS:
        return STEP_NEXT;
    case GW_LIMITER_WAIT:
        return STEP_WAIT; /* the limiter's until limited() runs: touch nothing */
    case GW_LIMITER_REFUSED:
    default:
        return STEP_DECIDED;
    }
}

/* Fail closed: no call is sent that the audit log could not record. */
static enum step stage_audit_ready(struct gw_pipeline *p, struct gw_call *call)
{
    const struct gw_pipeline_journal *j = p->parts.journal;
    char why[256] = "";
    if (j == NULL || j->fail_open || j->ready(j->arg, why, sizeof why)) {
        return STEP_NEXT;
    }
    gw_call_refuse(call, "InternalError.AuditUnavailable",
                   "The gateway (tcgw) cannot write its audit log (%s) and sends no call it cannot "
                   "record. The call was not sent to Tencent Cloud; retry once GET /readyz "
                   "answers 200.",
                   why);
    return STEP_DECIDED;
}

static enum step stage_sign(struct gw_pipeline *p, struct gw_call *call)
{
    (void)p;
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

static void forwarded(struct gw_call *call, void *arg);

static enum step stage_forward(struct gw_pipeline *p, struct gw_call *call)
{
    if (call->in.will_wait != NULL) {
        call->in.will_wait(call, call->in.transport);
    }
    gw_call_stamp(&call->times.upstream_start);
    enum gw_err err = gw_upstream_submit(p->parts.upstream, call, forwarded, p);
    if (err == GW_OK) {
        return STEP_WAIT; /* the call is the upstream's until forwarded() runs: touch nothing */
    }
    if (err == GW_ERR_STOPPED) {
        call->outcome = GW_UPSTREAM_NOT_SENT;
        return STEP_NEXT; /* the outcome stage words it */
    }
    if (err == GW_ERR_BUSY) {
        gw_call_refuse(call, "RequestLimitExceeded",
                       "The gateway (tcgw) has as many calls waiting for Tencent Cloud as it "
                       "allows (max_calls_in_flight). The call was not sent; retry shortly.");
        return STEP_DECIDED;
    }
    gw_call_refuse(call, "InternalError",
                   "tcgw could not queue the call to Tencent Cloud (%s); nothing was sent.",
                   gw_err_str(err));
    return STEP_DECIDED;
}

static enum step stage_outcome(struct gw_pipeline *p, struct gw_call *call)
{
    if (call->outcome != GW_UPSTREAM_ANSWERED) {
        gw_outcome_refuse(call, p->parts.upstream_timeout_ms, p->parts.max_response_bytes);
        return STEP_DECIDED;
    }
    return STEP_NEXT;
}

/*
 * Once the answer is in: the body that held secret values is wiped, and any of them the answer
 * holds is replaced by its placeholder before the caller reads it (inject.h: defence in depth).
 */
static enum step stage_redact(struct gw_pipeline *p, struct gw_call *call)
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

static const struct stage stages[] = {
    {"admit", stage_admit, false},
    {"request_head", stage_request_head, false},
    {"request_body", stage_request_body, true},
    {"identify", stage_identify, true},
    {"validate", stage_validate, true},
    {"placeholders", stage_placeholders, true},
    {"policy", stage_policy, true},
    {"limit", stage_limit, true},
    {"audit_ready", stage_audit_ready, true},
    {"inject", stage_inject, true},
    {"sign", stage_sign, true},
    {"forward", stage_forward, true},
    {"outcome", stage_outcome, true},
    {"redact", stage_redact, true},
};
#define STAGE_COUNT (sizeof stages / sizeof stages[0])

/*
 * The reply: the upstream's status and body unchanged, or a Tencent-format error with HTTP 200,
 * as Tencent answers and as the official SDKs read it (a stage may have set another status).
 * Out of memory leaves reply.body NULL; the transport then closes the connection.
 */
static void stage_reply(struct gw_call *call)
{
    struct gw_call_reply *r = &call->reply;
    if (r->body != NULL) {
        /* a stage answered without forwarding */
    } else if (call->error_code == NULL && call->outcome == GW_UPSTREAM_ANSWERED) {
        r->status = (unsigned)call->http_status;
        r->body = gw_buf_steal(&call->response, &r->len, &r->charged);
        if (r->body == NULL) {
            r->body = calloc(1, 1); /* an empty answer */
        }
    } else {
        if (call->error_code == NULL) {
            /* Unreachable by construction; a refusal must never go out without a code. */
            gw_call_refuse(call, "InternalError", "tcgw lost track of the call.");
        }
        if (r->status == 0) {
            r->status = 200;
        }
        r->body = gw_error_body(call->error_code, call->error_message, call->request_id, &r->len);
    }
    call->bytes_out = r->body != NULL ? r->len : 0;
    gw_call_stamp(&call->times.answered);
}

static void stage_record(struct gw_pipeline *p, const struct gw_call *call)
{
    if (p->parts.log_calls) {
        gw_record_log_line(call, stderr);
    }
    if (p->parts.record != NULL) {
        p->parts.record(call, p->parts.record_arg);
    }
}

static bool was_forwarded(const struct gw_call *call)
{
    return call->times.upstream_start.tv_sec != 0 || call->times.upstream_start.tv_nsec != 0;
}

/*
 * Hands the record to the journal. Returns true when the journal holds the call (its answer
 * waits for gw_pipeline_recorded). A forwarded call is always held; a refusal is held unless the
 * journal is failing (it was not sent: its answer goes now, its record is queued).
 */
static bool stage_journal(struct gw_pipeline *p, struct gw_call *call, bool *unrecorded)
{
    const struct gw_pipeline_journal *j = p->parts.journal;
    *unrecorded = false;
    if (j == NULL) {
        return false;
    }
    bool hold = was_forwarded(call) || j->ready(j->arg, NULL, 0);
    if (hold && call->in.will_wait != NULL) {
        call->in.will_wait(call, call->in.transport); /* idempotent after forwarding */
    }
    if (j->submit(call, hold, j->arg) != 0) {
        *unrecorded = true;
        return false;
    }
    return hold;
}

static void release(struct gw_call *call)
{
    /* The record has read the caller: the snapshot it points into may go now. */
    gw_access_release(call->snapshot);
    call->snapshot = NULL;
    call->caller_entry = NULL;
}

static void finish(struct gw_pipeline *p, struct gw_call *call)
{
    call->stage = STAGE_COUNT;
    stage_reply(call);
    stage_record(p, call);
    bool unrecorded = false;
    bool held = stage_journal(p, call, &unrecorded);
    release(call);
    if (held) {
        return; /* gw_pipeline_recorded answers it */
    }
    if (unrecorded) {
        gw_pipeline_recorded(p, call, false);
        return;
    }
    call->in.answered(call, call->in.transport);
}

void gw_pipeline_recorded(struct gw_pipeline *p, struct gw_call *call, bool recorded)
{
    const struct gw_pipeline_journal *j = p->parts.journal;
    if (!recorded) {
        bool fail_open = j != NULL && j->fail_open;
        /* In the record's place: typed fields only. */
        fprintf(stderr,
                "level=error event=audit_unrecorded request_id=%s caller=%s service=%s "
                "action=%s upstream=%s answer=%s\n",
                call->request_id, call->caller[0] ? call->caller : "-",
                call->service[0] ? call->service : "-", call->action[0] ? call->action : "-",
                gw_outcome_name(call->outcome), fail_open ? "released" : "withheld");
        if (!fail_open) {
            struct gw_call_reply *r = &call->reply;
            gw_call_reply_free(r->body, r->charged, p->parts.budget);
            r->body = NULL;
            r->charged = 0;
            r->allow = NULL;
            r->status = 0; /* a Tencent-format error: 200, as Tencent answers */
            if (was_forwarded(call)) {
                gw_call_refuse(call, "InternalError.AuditUnavailable",
                               "The gateway (tcgw) sent the call to Tencent Cloud (outcome: %s) "
                               "but could not write its audit record, so the answer is withheld. "
                               "Check the state of the resource before retrying.",
                               gw_outcome_name(call->outcome));
            } else {
                gw_call_refuse(call, "InternalError.AuditUnavailable",
                               "The gateway (tcgw) could not write the audit record of this call. "
                               "The call was not sent to Tencent Cloud; retry once GET /readyz "
                               "answers 200.");
            }
            stage_reply(call);
        }
    }
    call->in.answered(call, call->in.transport);
}

bool gw_pipeline_ready(struct gw_pipeline *p, char *why, size_t whylen)
{
    const struct gw_pipeline_journal *j = p->parts.journal;
    if (j == NULL || j->ready(j->arg, why, whylen)) {
        return true;
    }
    return false;
}

/* Runs the stages from call->stage on, then the final stage, unless a stage waits. */
static void run_from(struct gw_pipeline *p, struct gw_call *call)
{
    while (call->stage < STAGE_COUNT) {
        const struct stage *s = &stages[call->stage];
        call->stage++; /* before running: forwarded() resumes after the stage that waits */
        enum step step = s->run(p, call);
        if (step == STEP_WAIT) {
            return;
        }
        if (step == STEP_DECIDED) {
            break;
        }
    }
    finish(p, call);
}

static void forwarded(struct gw_call *call, void *arg)
{
    struct gw_pipeline *p = arg;
    gw_call_stamp(&call->times.upstream_end);
    run_from(p, call);
}

/* A call that waited in the limit stage: refused meanwhile, or on to the next stage. */
static void limited(struct gw_call *call, void *arg)
{
    struct gw_pipeline *p = arg;
    if (call->error_code != NULL) {
        finish(p, call);
    } else {
        run_from(p, call);
    }
}

bool gw_pipeline_begin(struct gw_pipeline *p, struct gw_call *call)
{
    call->stage = 0;
    while (call->stage < STAGE_COUNT && !stages[call->stage].needs_body) {
        const struct stage *s = &stages[call->stage];
        call->stage++;
        if (s->run(p, call) != STEP_NEXT) { /* head stages decide or go on; none waits */
            call->stage = STAGE_COUNT;
            return false;
        }
    }
    return true;
}

void gw_pipeline_run(struct gw_pipeline *p, struct gw_call *call)
{
    run_from(p, call);
}

struct gw_pipeline *gw_pipeline_new(const struct gw_pipeline_parts *parts)
{
    struct gw_pipeline *p = calloc(1, sizeof *p);
    if (p != NULL) {
        p->parts = *parts;
    }
    return p;
}

void gw_pipeline_free(struct gw_pipeline *p)
{
    if (p != NULL) {
        gw_access_release(p->snapshot);
    }
    free(p);
}
