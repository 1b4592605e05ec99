/*
 * pipeline_int: what the files of the pipeline share, and nothing outside gateway/pipeline/
 * includes. pipeline.c holds the stage table and runs it; stages.c the plain stages; waits.c the
 * stages that wait and the callbacks that resume the call.
 */
#ifndef GW_PIPELINE_INT_H
#define GW_PIPELINE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/call.h"
#include "idem/idem.h"
#include "idem/shared.h"
#include "pipeline/pipeline.h"

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

/* What a stage did with the call. */
enum step {
    STEP_NEXT,    /* go on with the next stage */
    STEP_DECIDED, /* the call has its refusal or its answer: go to the final stage */
    STEP_WAIT,    /* handed to the upstream: the pipeline resumes in forwarded() */
};

typedef enum step (*stage_fn)(struct gw_pipeline *p, struct gw_call *call);

/* CLOCK_MONOTONIC, in nanoseconds. */
int64_t pipeline_mono_ns(void);

/* The stages, in the order of the table in pipeline.c. */
enum step pipeline_stage_admit(struct gw_pipeline *p, struct gw_call *call);
enum step pipeline_stage_request_head(struct gw_pipeline *p, struct gw_call *call);
enum step pipeline_stage_deadline(struct gw_pipeline *p, struct gw_call *call);
enum step pipeline_stage_request_body(struct gw_pipeline *p, struct gw_call *call);
enum step pipeline_stage_identify(struct gw_pipeline *p, struct gw_call *call);
enum step pipeline_stage_validate(struct gw_pipeline *p, struct gw_call *call);
enum step pipeline_stage_placeholders(struct gw_pipeline *p, struct gw_call *call);
enum step pipeline_stage_policy(struct gw_pipeline *p, struct gw_call *call);
enum step pipeline_stage_limit(struct gw_pipeline *p, struct gw_call *call);
enum step pipeline_stage_idempotency(struct gw_pipeline *p, struct gw_call *call);
enum step pipeline_stage_audit_ready(struct gw_pipeline *p, struct gw_call *call);
enum step pipeline_stage_inject(struct gw_pipeline *p, struct gw_call *call);
enum step pipeline_stage_sign(struct gw_pipeline *p, struct gw_call *call);
enum step pipeline_stage_forward(struct gw_pipeline *p, struct gw_call *call);
enum step pipeline_stage_retry(struct gw_pipeline *p, struct gw_call *call);
enum step pipeline_stage_outcome(struct gw_pipeline *p, struct gw_call *call);
enum step pipeline_stage_redact(struct gw_pipeline *p, struct gw_call *call);

/* The index of a stage in the table (the table's length if it is not there). */
unsigned pipeline_stage_index(stage_fn fn);
/* Runs the stages from call->stage on, then the final stage, unless a stage waits. */
void pipeline_run_from(struct gw_pipeline *p, struct gw_call *call);
/* The final stage: reply, record, journal, then the transport's answered callback. */
void pipeline_finish(struct gw_pipeline *p, struct gw_call *call);
/* True when a call may be sent: no audit log, fail_open, or the log can be written (else why). */
bool pipeline_journal_ready(const struct gw_pipeline *p, char *why, size_t whylen);

/* The resume callbacks gw_pipeline_new registers (waits.c). */
void pipeline_idem_ready(struct gw_call *call, struct gw_idem_answer *answer, void *arg);
void pipeline_idem_shared_done(struct gw_call *call, enum gw_idem_shared_step step,
                               struct gw_idem_answer *answer, void *arg);
void pipeline_retry_due(void *arg);

#endif
