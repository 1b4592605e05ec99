/*
 * The pipeline's stages that wait, and the callbacks that resume the call: rate limits, ClientToken
 * idempotency (this gateway's, and Redis across replicas), forwarding, and safe retries.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apispec/apispec.h"
#include "core/call.h"
#include "core/loop.h"
#include "idem/idem.h"
#include "idem/shared.h"
#include "limits/limiter.h"
#include "pipeline/pipeline_int.h"
#include "retry/retry.h"
#include "upstream/upstream.h"

/* A retry is not started with less than this left before the call's deadline. */
#define RETRY_MIN_LEFT_NS (100 * NS_PER_MS)

static void limited(struct gw_call *call, void *arg);

/* Rate limits: refused here, nothing is sent; a call may wait for its token (or for Redis). */
enum step pipeline_stage_limit(struct gw_pipeline *p, struct gw_call *call)
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

/* Whether the action's description has a ClientToken parameter. */
static bool takes_client_token(const struct gw_pipeline *p, const struct gw_call *call)
{
    const char *const path[] = {"ClientToken"};
    struct gw_apispec_param param;
    return gw_apispec_find_param(p->parts.spec, call->service, call->action, path, 1, &param);
}

/* A new random ClientToken in params, and the body re-serialised from them (the bytes signed). */
static enum gw_err add_client_token(struct gw_call *call)
{
    enum gw_err err;
    unsigned char raw[16];
    char hex[2 * sizeof raw + 1];
    char token[sizeof "tcgw-" + sizeof hex];
    char *text = NULL;
    randombytes_buf(raw, sizeof raw);
    sodium_bin2hex(hex, sizeof hex, raw, sizeof raw);
    snprintf(token, sizeof token, "tcgw-%s", hex); /* 37 printable ASCII characters */
    if (json_object_set_new(call->params, "ClientToken", json_string(token)) != 0 ||
        (text = json_dumps(call->params, JSON_COMPACT)) == NULL) {
        err = GW_ERR_NOMEM;
        goto out;
    }
    size_t n = strlen(text);
    if (n > call->body.max) {
        err = GW_ERR_TOO_LARGE;
        goto out;
    }
    gw_buf_reset(&call->body);
    if ((err = gw_buf_append(&call->body, text, n)) != GW_OK) {
        goto out;
    }
    err = GW_OK;
out:
    free(text);
    return err;
}

/* The first call's answer, for a repeat of its ClientToken (stolen from answer). */
static void take_answer(struct gw_call *call, struct gw_idem_answer *answer)
{
    call->reply.status = answer->status;
    call->reply.body = answer->body;
    call->reply.len = answer->len;
    call->reply.charged = 0;
    answer->body = NULL;
    call->idem.replayed = true;
}

static void refuse_duplicated(struct gw_call *call, const char *token)
{
    gw_call_refuse(call, "FailedOperation.DuplicatedRequest",
                   "The ClientToken \"%.64s\" was already used by caller \"%s\" for %s.%s with "
                   "other parameters. Use a new ClientToken for a different request. The call "
                   "was not sent to Tencent Cloud.",
                   token, call->caller, call->service, call->action);
}

/* A repeat whose first call did not end within the repeat's deadline. */
static void refuse_still_in_flight(struct gw_call *call)
{
    gw_call_refuse(call, "InternalError.UpstreamTimeout",
                   "This call repeats the ClientToken of a call still under way, which did "
                   "not end within this call's deadline (%ld ms). That call may still be "
                   "applied: repeat this one with the same ClientToken to get its answer.",
                   call->retry.deadline_ms);
}

/*
 * ClientToken idempotency, for actions that take one: a call without one gets a generated token;
 * a repeat of a token waits for the first call's answer, or has it replayed; the same token with
 * other parameters is refused, as Tencent does.
 */
enum step pipeline_stage_idempotency(struct gw_pipeline *p, struct gw_call *call)
{
    if (p->idem_port == NULL || !takes_client_token(p, call)) {
        return STEP_NEXT;
    }
    json_t *t = json_object_get(call->params, "ClientToken");
    if (t == NULL) {
        enum gw_err err = add_client_token(call);
        if (err == GW_ERR_TOO_LARGE) {
            gw_call_refuse(call, "RequestSizeLimitExceeded",
                           "With the ClientToken the gateway (tcgw) adds, the body would be longer "
                           "than max_body_bytes (%zu). The call was not sent to Tencent Cloud.",
                           call->body.max);
            return STEP_DECIDED;
        }
        if (err != GW_OK) {
            gw_call_refuse(call, "InternalError",
                           "tcgw could not add a ClientToken (%s); nothing was sent.",
                           gw_err_str(err));
            return STEP_DECIDED;
        }
        call->idem.generated = true; /* unique: no repeat can join it */
        return STEP_NEXT;
    }
    const char *token = json_string_value(t);
    char *canonical = json_dumps(call->params, JSON_COMPACT | JSON_SORT_KEYS);
    if (token == NULL || canonical == NULL) {
        free(canonical);
        gw_call_refuse(call, "InternalError",
                       "tcgw could not read the ClientToken; nothing was "
                       "sent.");
        return STEP_DECIDED;
    }
    struct gw_idem_key key;
    gw_idem_key_make(call->caller, call->service, call->action, token, canonical, strlen(canonical),
                     &key);
    free(canonical);
    struct gw_idem_answer replay = {0};
    int64_t deadline = call->retry.deadline_ns > 0 ? call->retry.deadline_ns : INT64_MAX;
    switch (gw_idem_begin(p->idem_port, &key, call, pipeline_mono_ns(), deadline, &call->idem.entry,
                          &replay)) {
    case GW_IDEM_FIRST:
        /* First here; with Redis, first on all replicas? pipeline_idem_shared_done() goes on. */
        if (p->idem_shared != NULL &&
            gw_idem_shared_claim(p->idem_shared, call, &key, call->retry.deadline_ns) == GW_OK) {
            if (call->in.will_wait != NULL) {
                call->in.will_wait(call, call->in.transport);
            }
            return STEP_WAIT;
        }
        return STEP_NEXT;
    case GW_IDEM_REPLAY:
        take_answer(call, &replay);
        return STEP_DECIDED;
    case GW_IDEM_WAIT:
        if (call->in.will_wait != NULL) {
            call->in.will_wait(call, call->in.transport);
        }
        return STEP_WAIT; /* the port's until pipeline_idem_ready() runs: touch nothing */
    case GW_IDEM_CONFLICT:
        refuse_duplicated(call, token);
        return STEP_DECIDED;
    case GW_IDEM_FULL:
        gw_call_refuse(call, "RequestLimitExceeded",
                       "The gateway (tcgw) holds as many ClientTokens as it may "
                       "(idempotency.max_entries). The call was not sent to Tencent Cloud; retry "
                       "shortly.");
        return STEP_DECIDED;
    case GW_IDEM_NOMEM:
    default:
        gw_call_refuse(call, "InternalError",
                       "tcgw ran out of memory for the ClientToken; nothing was sent.");
        return STEP_DECIDED;
    }
}

static void forwarded(struct gw_call *call, void *arg);

enum step pipeline_stage_forward(struct gw_pipeline *p, struct gw_call *call)
{
    if (call->in.will_wait != NULL) {
        call->in.will_wait(call, call->in.transport);
    }
    int64_t now = pipeline_mono_ns();
    if (call->retry.deadline_ns > 0) {
        int64_t left = call->retry.deadline_ns - now;
        if (left < NS_PER_MS) {
            gw_call_refuse(call, "InternalError.UpstreamTimeout",
                           "The call's deadline (%ld ms) passed before the gateway (tcgw) could "
                           "send it. %s",
                           call->retry.deadline_ms,
                           call->retry.maybe_sent
                               ? "An earlier attempt may have reached Tencent Cloud: retry with "
                                 "the same ClientToken."
                               : "The call was not sent to Tencent Cloud; it is safe to retry.");
            return STEP_DECIDED;
        }
        call->retry.timeout_ms = (long)((left + NS_PER_MS - 1) / NS_PER_MS);
    }
    if (call->retry.attempts == 0) {
        gw_retry_budget_call(p->retry_budget, now / NS_PER_S);
    }
    call->retry.attempts++;
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

/* Whether sending the call again is harmless: it only reads, or carries a ClientToken. */
static bool retry_safe(const struct gw_call *call)
{
    return gw_retry_read_only(call->action) ||
           json_is_string(json_object_get(call->params, "ClientToken"));
}

static void retry_arm(struct gw_pipeline *p, int64_t now)
{
    int64_t first = -1;
    for (struct gw_call *c = p->retrying; c != NULL; c = c->retry.next) {
        if (first < 0 || c->retry.due_ns < first) {
            first = c->retry.due_ns;
        }
    }
    if (first < 0) {
        gw_loop_timer_set(p->retry_timer, -1);
        return;
    }
    int64_t wait = first - now;
    gw_loop_timer_set(p->retry_timer, wait <= 0 ? 0 : (long)((wait + NS_PER_MS - 1) / NS_PER_MS));
}

/*
 * Safe retries: a failed attempt of a call that may be sent again waits (full jitter) and goes
 * back to signing, while attempts, the deadline and the worker's retry budget allow. Otherwise
 * the latest result stands.
 */
enum step pipeline_stage_retry(struct gw_pipeline *p, struct gw_call *call)
{
    const struct gw_pipeline_retries *cfg = &p->parts.retries;
    switch (call->outcome) {
    case GW_UPSTREAM_NONE:
    case GW_UPSTREAM_CONNECT:
    case GW_UPSTREAM_TLS:
    case GW_UPSTREAM_NOT_SENT:
        break;
    case GW_UPSTREAM_ANSWERED:
    case GW_UPSTREAM_TIMEOUT:
    case GW_UPSTREAM_TOO_LARGE:
    case GW_UPSTREAM_FAILED:
    case GW_UPSTREAM_ABORTED:
    default:
        call->retry.maybe_sent = true;
        break;
    }
    if (p->retry_timer == NULL) {
        return STEP_NEXT;
    }
    enum gw_retry_why why = gw_retry_classify(call->outcome, call->http_status, call->response.data,
                                              call->response.len);
    if (why == GW_RETRY_NO) {
        return STEP_NEXT;
    }
    if (!retry_safe(call)) {
        call->retry.no_retry = "unsafe";
        return STEP_NEXT;
    }
    if (call->retry.attempts >= cfg->max_attempts) {
        call->retry.no_retry = "attempts";
        return STEP_NEXT;
    }
    int64_t now = pipeline_mono_ns();
    long delay =
        gw_retry_backoff_ms(call->retry.attempts, cfg->base_ms, cfg->cap_ms, randombytes_random());
    int64_t due = now + (int64_t)delay * NS_PER_MS;
    if (call->retry.deadline_ns > 0 && due + RETRY_MIN_LEFT_NS > call->retry.deadline_ns) {
        call->retry.no_retry = "deadline";
        return STEP_NEXT;
    }
    if (!gw_retry_budget_take(p->retry_budget, now / NS_PER_S)) {
        call->retry.no_retry = "budget";
        return STEP_NEXT;
    }
    call->retry.last_why = gw_retry_why_name(why);
    call->retry.due_ns = due;
    call->retry.next = p->retrying;
    p->retrying = call;
    retry_arm(p, now);
    /* pipeline_retry_due() sends it again; gw_pipeline_stop answers with this result */
    return STEP_WAIT;
}

static void forwarded(struct gw_call *call, void *arg)
{
    struct gw_pipeline *p = arg;
    gw_call_stamp(&call->times.upstream_end);
    pipeline_run_from(p, call);
}

/* A call that waited in the limit stage: refused meanwhile, or on to the next stage. */
static void limited(struct gw_call *call, void *arg)
{
    struct gw_pipeline *p = arg;
    if (call->error_code != NULL) {
        pipeline_finish(p, call);
    } else {
        pipeline_run_from(p, call);
    }
}

/* A call that waited for the first call with its ClientToken (answer NULL: its deadline came). */
void pipeline_idem_ready(struct gw_call *call, struct gw_idem_answer *answer, void *arg)
{
    struct gw_pipeline *p = arg;
    if (answer != NULL) {
        take_answer(call, answer);
    } else {
        refuse_still_in_flight(call);
    }
    pipeline_finish(p, call);
}

/*
 * The first call with its ClientToken on this gateway, once Redis said what the other replicas
 * know of the token: go on (claimed, or Redis away), or finish with the answer or refusal, which
 * the calls waiting here get too.
 */
void pipeline_idem_shared_done(struct gw_call *call, enum gw_idem_shared_step step,
                               struct gw_idem_answer *answer, void *arg)
{
    struct gw_pipeline *p = arg;
    switch (step) {
    case GW_IDEM_SHARED_CLAIMED:
    case GW_IDEM_SHARED_FAILED:
        pipeline_run_from(p, call);
        return;
    case GW_IDEM_SHARED_REPLAY:
        take_answer(call, answer);
        break;
    case GW_IDEM_SHARED_CONFLICT:
        refuse_duplicated(call, json_string_value(json_object_get(call->params, "ClientToken")));
        break;
    case GW_IDEM_SHARED_TIMEOUT:
        refuse_still_in_flight(call);
        break;
    case GW_IDEM_SHARED_BUSY:
        gw_call_refuse(call, "RequestLimitExceeded",
                       "The gateway (tcgw) has as many calls waiting for a ClientToken in use on "
                       "another gateway as it may. The call was not sent to Tencent Cloud; retry "
                       "shortly.");
        break;
    case GW_IDEM_SHARED_STOPPING:
    default:
        call->reply.close = true;
        gw_call_refuse(call, "ServiceUnavailable",
                       "The gateway (tcgw) is shutting down. The call was not sent to Tencent "
                       "Cloud; it is safe to retry.");
        break;
    }
    pipeline_finish(p, call);
}

/* Retries that are due: the results of the attempt before go, and the call is signed again. */
void pipeline_retry_due(void *arg)
{
    struct gw_pipeline *p = arg;
    int64_t now = pipeline_mono_ns();
    struct gw_call *due = NULL;
    for (struct gw_call **c = &p->retrying; *c != NULL;) {
        struct gw_call *call = *c;
        if (call->retry.due_ns <= now) {
            *c = call->retry.next;
            call->retry.next = due;
            due = call;
        } else {
            c = &call->retry.next;
        }
    }
    retry_arm(p, now);
    while (due != NULL) {
        struct gw_call *call = due;
        due = call->retry.next;
        call->retry.next = NULL;
        char why[256] = "";
        if (!pipeline_journal_ready(p, why, sizeof why)) {
            /* Fail closed: no attempt is sent that the audit log could not record. The caller
             * gets the last attempt's outcome, as when the attempts run out. */
            call->retry.no_retry = "audit_unavailable";
            call->stage = pipeline_stage_index(pipeline_stage_outcome);
            pipeline_run_from(p, call);
            continue;
        }
        gw_buf_reset(&call->response);
        call->http_status = 0;
        call->outcome = GW_UPSTREAM_NONE;
        call->upstream_detail[0] = '\0';
        call->stage = pipeline_stage_index(pipeline_stage_sign);
        pipeline_run_from(p, call);
    }
}
