#include "pipeline/pipeline.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "access/access.h"
#include "apispec/apispec.h"
#include "core/budget.h"
#include "core/call.h"
#include "core/loop.h"
#include "http/request.h"
#include "idem/idem.h"
#include "idem/shared.h"
#include "identity/callers.h"
#include "identity/identify.h"
#include "inject/inject.h"
#include "inject/placeholder.h"
#include "limits/limiter.h"
#include "pipeline/outcome.h"
#include "pipeline/record.h"
#include "policy/policy.h"
#include "retry/retry.h"
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
    struct gw_idem_port *idem_port;       /* this worker's end of parts.idem, or NULL */
    struct gw_idem_shared *idem_shared;   /* ClientTokens across replicas (Redis), or NULL */
    struct gw_retry_budget *retry_budget; /* this worker's retry budget, or NULL */
    struct gw_loop_timer *retry_timer;    /* due retries; NULL when retries are off */
    struct gw_call *retrying;             /* calls waiting to be sent again, by retry.next */
};

#define NS_PER_MS 1000000LL
#define NS_PER_S 1000000000LL
/* A retry is not started with less than this left before the call's deadline. */
#define RETRY_MIN_LEFT_NS (100 * NS_PER_MS)

static int64_t mono_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * NS_PER_S + t.tv_nsec;
}

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

/* The call's deadline: the configured one, or a shorter one the caller asks for. */
static enum step stage_deadline(struct gw_pipeline *p, struct gw_call *call)
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
    int64_t start =
        r->tv_sec != 0 || r->tv_nsec != 0 ? (int64_t)r->tv_sec * NS_PER_S + r->tv_nsec : mono_ns();
    call->retry.deadline_ms = ms;
    call->retry.deadline_ns = start + (int64_t)ms * NS_PER_MS;
    return STEP_NEXT;
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
static enum step stage_idempotency(struct gw_pipeline *p, struct gw_call *call)
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
    switch (
        gw_idem_begin(p->idem_port, &key, call, mono_ns(), deadline, &call->idem.entry, &replay)) {
    case GW_IDEM_FIRST:
        /* First here; with Redis, also first on every replica? idem_shared_done() goes on. */
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
        return STEP_WAIT; /* the port's until idem_ready() runs: touch nothing */
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

/* Fail closed: no call is sent that the audit log could not record. */
/* True when a call may be sent: no audit log, fail_open, or the log can be written (else why). */
static bool journal_ready(const struct gw_pipeline *p, char *why, size_t whylen)
{
    const struct gw_pipeline_journal *j = p->parts.journal;
    return j == NULL || j->fail_open || j->ready(j->arg, why, whylen);
}

static enum step stage_audit_ready(struct gw_pipeline *p, struct gw_call *call)
{
    char why[256] = "";
    if (journal_ready(p, why, sizeof why)) {
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

static void forwarded(struct gw_call *call, void *arg);

static enum step stage_forward(struct gw_pipeline *p, struct gw_call *call)
{
    if (call->in.will_wait != NULL) {
        call->in.will_wait(call, call->in.transport);
    }
    int64_t now = mono_ns();
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
static enum step stage_retry(struct gw_pipeline *p, struct gw_call *call)
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
    int64_t now = mono_ns();
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
    return STEP_WAIT; /* retry_due() sends it again; gw_pipeline_stop answers with this result */
}

static enum step stage_outcome(struct gw_pipeline *p, struct gw_call *call)
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
    {"deadline", stage_deadline, false},
    {"request_body", stage_request_body, true},
    {"identify", stage_identify, true},
    {"validate", stage_validate, true},
    {"placeholders", stage_placeholders, true},
    {"policy", stage_policy, true},
    {"limit", stage_limit, true},
    {"idempotency", stage_idempotency, true},
    {"audit_ready", stage_audit_ready, true},
    {"inject", stage_inject, true},
    {"sign", stage_sign, true},
    {"forward", stage_forward, true},
    {"retry", stage_retry, true},
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
                     keep, mono_ns());
    call->idem.entry = NULL;
}

static void finish(struct gw_pipeline *p, struct gw_call *call)
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

/* A call that waited for the first call with its ClientToken (answer NULL: its deadline came). */
static void idem_ready(struct gw_call *call, struct gw_idem_answer *answer, void *arg)
{
    struct gw_pipeline *p = arg;
    if (answer != NULL) {
        take_answer(call, answer);
    } else {
        refuse_still_in_flight(call);
    }
    finish(p, call);
}

/*
 * The first call with its ClientToken on this gateway, once Redis said what the other replicas
 * know of the token: go on (claimed, or Redis away), or finish with the answer or refusal, which
 * the calls waiting here get too.
 */
static void idem_shared_done(struct gw_call *call, enum gw_idem_shared_step step,
                             struct gw_idem_answer *answer, void *arg)
{
    struct gw_pipeline *p = arg;
    switch (step) {
    case GW_IDEM_SHARED_CLAIMED:
    case GW_IDEM_SHARED_FAILED:
        run_from(p, call);
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
    finish(p, call);
}

static unsigned stage_index(stage_fn fn)
{
    unsigned i = 0;
    while (i < STAGE_COUNT && stages[i].run != fn) {
        i++;
    }
    return i;
}

/* Retries that are due: the results of the attempt before go, and the call is signed again. */
static void retry_due(void *arg)
{
    struct gw_pipeline *p = arg;
    int64_t now = mono_ns();
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
        if (!journal_ready(p, why, sizeof why)) {
            /* Fail closed: no attempt is sent that the audit log could not record. The caller
             * gets the last attempt's outcome, as when the attempts run out. */
            call->retry.no_retry = "audit_unavailable";
            call->stage = stage_index(stage_outcome);
            run_from(p, call);
            continue;
        }
        gw_buf_reset(&call->response);
        call->http_status = 0;
        call->outcome = GW_UPSTREAM_NONE;
        call->upstream_detail[0] = '\0';
        call->stage = stage_index(stage_sign);
        run_from(p, call);
    }
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
        run_from(p, call); /* from the outcome stage: the latest result is the answer */
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
    if (p == NULL) {
        return NULL;
    }
    p->parts = *parts;
    if (parts->loop != NULL && parts->idem != NULL &&
        (p->idem_port = gw_idem_port_new(parts->idem, parts->loop, idem_ready, p)) == NULL) {
        gw_pipeline_free(p);
        return NULL;
    }
    if (p->idem_port != NULL && parts->limiter != NULL && parts->redis_state != NULL) {
        struct gw_idem_shared_options so = {
            .limiter = parts->limiter,
            .state = parts->redis_state,
            .key_prefix = parts->redis_key_prefix,
            .window_ms = gw_idem_window_ms(parts->idem),
            .done = idem_shared_done,
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
        p->retry_timer = gw_loop_timer_new(parts->loop, retry_due, p);
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
