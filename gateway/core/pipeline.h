/*
 * pipeline: the one place that knows the order of the stages a call goes through.
 *
 *   gw_pipeline_prepare: spec check -> sign        (CPU only, on the server thread)
 *   gw_pipeline_forward: upstream -> done          (waits on the upstream thread only)
 *
 * The request stage (HTTP head and body) runs before, in the server, because it reads the
 * transport. Adding a stage (identity, policy, limits, audit) is an edit to pipeline.c alone.
 */
#ifndef GW_PIPELINE_H
#define GW_PIPELINE_H

#include <stdbool.h>

#include "apispec/apispec.h"
#include "core/call.h"
#include "upstream/upstream.h"
#include "vault/vault.h"

struct gw_pipeline;

/* The parts a pipeline uses: all borrowed, and must outlive it. */
struct gw_pipeline_parts {
    const struct gw_apispec *spec;
    struct gw_vault *vault;
    const char *credential; /* name of the credential that signs */
    struct gw_upstream *upstream;
};

/* Returns a new pipeline (free with gw_pipeline_free), or NULL when out of memory. */
struct gw_pipeline *gw_pipeline_new(const struct gw_pipeline_parts *parts);

/* Accepts NULL. */
void gw_pipeline_free(struct gw_pipeline *p);

/*
 * Runs the synchronous stages on a call whose request stage passed. Returns true when the call is
 * signed and may be forwarded, false when it was refused (the refusal is on the call).
 */
bool gw_pipeline_prepare(struct gw_pipeline *p, struct gw_call *call);

/* Called once when a forwarded call has its outcome, on the upstream thread. */
typedef void (*gw_pipeline_done_fn)(struct gw_call *call, void *arg);

/*
 * Forwards a prepared call. On GW_OK, done(call, arg) runs later on the upstream thread. On an
 * error, done is never called and the refusal is on the call.
 */
enum gw_err gw_pipeline_forward(struct gw_pipeline *p, struct gw_call *call,
                                gw_pipeline_done_fn done, void *arg) GW_MUST_CHECK;

#endif
