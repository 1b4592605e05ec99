#include "core/call.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "vault/tc3.h"

struct gw_call *gw_call_new(size_t max_body_bytes, size_t max_response_bytes)
{
    struct gw_call *call = calloc(1, sizeof *call);
    if (call == NULL) {
        return NULL;
    }
    gw_request_id_generate(call->request_id);
    clock_gettime(CLOCK_MONOTONIC, &call->started);
    gw_buf_init(&call->body, max_body_bytes);
    gw_buf_init(&call->authorization, GW_TC3_MAX_TEXT);
    gw_buf_init(&call->response, max_response_bytes);
    return call;
}

void gw_call_free(struct gw_call *call)
{
    if (call == NULL) {
        return;
    }
    gw_buf_free(&call->body);
    gw_buf_free(&call->authorization);
    gw_buf_free(&call->response);
    json_decref(call->params);
    free(call);
}

void gw_call_refuse(struct gw_call *call, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(call->error_message, sizeof call->error_message, fmt, ap);
    va_end(ap);
    call->error_code = code;
}
