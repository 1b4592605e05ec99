#include "core/pipeline.h"

#include <stdlib.h>
#include <time.h>

struct gw_pipeline {
    struct gw_pipeline_parts parts;
};

/* The done callback a forwarded call carries through the upstream stage. */
struct forward {
    gw_pipeline_done_fn done;
    void *arg;
};

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
    free(p);
}

static bool stage_validate(struct gw_pipeline *p, struct gw_call *call)
{
    struct gw_apispec_verdict verdict;
    if (gw_apispec_check(p->parts.spec, call->service, call->version, call->action, call->params,
                         &verdict)) {
        return true;
    }
    gw_call_refuse(call, verdict.code, "%s", verdict.message);
    return false;
}

static bool stage_sign(struct gw_pipeline *p, struct gw_call *call)
{
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
    enum gw_err err =
        gw_vault_sign(p->parts.vault, p->parts.credential, &req, &call->authorization);
    if (err != GW_OK) {
        gw_call_refuse(call, "InternalError",
                       "tcgw could not sign the call (%s); nothing was sent to Tencent Cloud.",
                       gw_err_str(err));
        return false;
    }
    return true;
}

bool gw_pipeline_prepare(struct gw_pipeline *p, struct gw_call *call)
{
    return stage_validate(p, call) && stage_sign(p, call);
}

static void forwarded(struct gw_call *call, void *arg)
{
    struct forward f = *(struct forward *)arg;
    free(arg);
    f.done(call, f.arg);
}

enum gw_err gw_pipeline_forward(struct gw_pipeline *p, struct gw_call *call,
                                gw_pipeline_done_fn done, void *arg)
{
    enum gw_err err;
    struct forward *f = malloc(sizeof *f);
    if (f == NULL) {
        err = GW_ERR_NOMEM;
        goto out;
    }
    f->done = done;
    f->arg = arg;
    if ((err = gw_upstream_submit(p->parts.upstream, call, forwarded, f)) != GW_OK) {
        goto out;
    }
    f = NULL;
    err = GW_OK;
out:
    if (err == GW_ERR_STOPPED) {
        gw_call_refuse(call, "ServiceUnavailable",
                       "The gateway (tcgw) is shutting down. The call was not sent to Tencent "
                       "Cloud; it is safe to retry.");
    } else if (err != GW_OK) {
        gw_call_refuse(call, "InternalError",
                       "tcgw could not queue the call to Tencent Cloud (%s); nothing was sent.",
                       gw_err_str(err));
    }
    free(f);
    return err;
}
