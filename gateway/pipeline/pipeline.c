#include "pipeline/pipeline.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "access/access.h"
#include "core/call.h"
#include "core/loop.h"
#include "idem/idem.h"
#include "idem/shared.h"
#include "pipeline/outcome.h"
#include "pipeline/pipeline_int.h"
#include "pipeline/record.h"
#include "retry/retry.h"

int64_t pipeline_mono_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * NS_PER_S + t.tv_nsec;
}

struct stage {
    const char *name;
    stage_fn run;
    bool needs_body; /* gw_pipeline_begin stops before the first such stage */
};

/* Fail closed: no call is sent that the audit log could not record. */
/* True when a call may be sent: no audit log, fail_open, or the log can be written (else why). */
bool pipeline_journal_ready(const struct gw_pipeline *p, char *why, size_t whylen)
{
    const struct gw_pipeline_journal *j = p->parts.journal;
    return j == NULL || j->fail_open || j->ready(j->arg, why, whylen);
}

static const struct stage stages[] = {
    {"admit", pipeline_stage_admit, false},
    {"request_head", pipeline_stage_request_head, false},
    {"deadline", pipeline_stage_deadline, false},
    {"request_body", pipeline_stage_request_body, true},
    {"identify", pipeline_stage_identify, true},
    {"validate", pipeline_stage_validate, true},
    {"placeholders", pipeline_stage_placeholders, true},
    {"policy", pipeline_stage_policy, true},
    {"limit", pipeline_stage_limit, true},
    {"idempotency", pipeline_stage_idempotency, true},
    {"audit_ready", pipeline_stage_audit_ready, true},
    {"inject", pipeline_stage_inject, true},
    {"sign", pipeline_stage_sign, true},
    {"forward", pipeline_stage_forward, true},
    {"retry", pipeline_stage_retry, true},
    {"outcome", pipeline_stage_outcome, true},
    {"redact", pipeline_stage_redact, true},
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
        gw_record_log_line(call, STDERR_FILENO);
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

/* The first call with a ClientToken: its answer goes to the calls waiting and stays to replay. */
static void idem_complete(struct gw_pipeline *p, struct gw_call *call)
{
    if (call->idem.entry == NULL) {
        return;
    }
    const struct gw_call_reply *r = &call->reply;
    /*
     * Replayed only when Tencent gave a definite answer. Otherwise (not sent, a transport failure,
     * 5xx, throttling, InternalError, a refusal of the gateway's) the token is freed: a repeat is
     * sent again, which the token makes safe upstream.
     */
    bool keep = call->error_code == NULL && call->outcome == GW_UPSTREAM_ANSWERED &&
                r->body != NULL &&
                gw_retry_classify(call->outcome, call->http_status, r->body, r->len) == GW_RETRY_NO;
    gw_idem_shared_finish(p->idem_shared, call, r->status, r->body, r->body ? r->len : 0, keep);
    gw_idem_complete(p->parts.idem, call->idem.entry, r->status, r->body, r->body ? r->len : 0,
                     keep, pipeline_mono_ns());
    call->idem.entry = NULL;
}

void pipeline_finish(struct gw_pipeline *p, struct gw_call *call)
{
    call->stage = STAGE_COUNT;
    stage_reply(call);
    idem_complete(p, call);
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
void pipeline_run_from(struct gw_pipeline *p, struct gw_call *call)
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
    pipeline_finish(p, call);
}

unsigned pipeline_stage_index(stage_fn fn)
{
    unsigned i = 0;
    while (i < STAGE_COUNT && stages[i].run != fn) {
        i++;
    }
    return i;
}

void gw_pipeline_stop(struct gw_pipeline *p)
{
    if (p == NULL) {
        return;
    }
    if (p->retry_timer != NULL) {
        gw_loop_timer_set(p->retry_timer, -1);
    }
    gw_idem_shared_stop(p->idem_shared); /* calls polling a token in use elsewhere are answered */
    while (p->retrying != NULL) {
        struct gw_call *call = p->retrying;
        p->retrying = call->retry.next;
        call->retry.next = NULL;
        call->retry.no_retry = "stopping";
        pipeline_run_from(p, call); /* from the outcome stage: the latest result is the answer */
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
    pipeline_run_from(p, call);
}

struct gw_pipeline *gw_pipeline_new(const struct gw_pipeline_parts *parts)
{
    struct gw_pipeline *p = calloc(1, sizeof *p);
    if (p == NULL) {
        return NULL;
    }
    p->parts = *parts;
    if (parts->loop != NULL && parts->idem != NULL &&
        (p->idem_port = gw_idem_port_new(parts->idem, parts->loop, pipeline_idem_ready, p)) ==
            NULL) {
        gw_pipeline_free(p);
        return NULL;
    }
    if (p->idem_port != NULL && parts->limiter != NULL && parts->redis_state != NULL) {
        struct gw_idem_shared_options so = {
            .limiter = parts->limiter,
            .state = parts->redis_state,
            .key_prefix = parts->redis_key_prefix,
            .window_ms = gw_idem_window_ms(parts->idem),
            .done = pipeline_idem_shared_done,
            .arg = p,
        };
        if (gw_idem_shared_new(&so, parts->loop, &p->idem_shared) != GW_OK) {
            gw_pipeline_free(p);
            return NULL;
        }
    }
    if (parts->loop != NULL && parts->retries.enabled && parts->retries.max_attempts > 1) {
        const struct gw_pipeline_retries *r = &parts->retries;
        p->retry_budget = gw_retry_budget_new(r->budget_ratio, r->budget_min, r->budget_window_s);
        p->retry_timer = gw_loop_timer_new(parts->loop, pipeline_retry_due, p);
        if (p->retry_budget == NULL || p->retry_timer == NULL) {
            gw_pipeline_free(p);
            return NULL;
        }
    }
    return p;
}

void gw_pipeline_free(struct gw_pipeline *p)
{
    if (p != NULL) {
        gw_pipeline_stop(p);
        gw_access_release(p->snapshot);
        gw_idem_shared_free(p->idem_shared);
        gw_idem_port_free(p->idem_port);
        gw_loop_timer_free(p->retry_timer);
        gw_retry_budget_free(p->retry_budget);
    }
    free(p);
}
