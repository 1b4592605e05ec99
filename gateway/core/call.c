#include "core/call.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/budget.h"

struct gw_call *gw_call_new(size_t max_body_bytes, size_t max_response_bytes)
{
    struct gw_call *call = calloc(1, sizeof *call);
    if (call == NULL) {
        return NULL;
    }
    gw_request_id_generate(call->request_id);
    gw_call_stamp(&call->times.received);
    gw_buf_init(&call->body, max_body_bytes);
    gw_buf_init(&call->authorization, GW_CALL_AUTHORIZATION_MAX);
    gw_buf_init(&call->token, GW_CALL_TOKEN_MAX);
    gw_buf_init(&call->response, max_response_bytes);
    return call;
}

void gw_call_free(struct gw_call *call)
{
    if (call == NULL) {
        return;
    }
    gw_buf_free(&call->body); /* wipes it when the inject stage put secrets in it */
    gw_buf_free(&call->authorization);
    /* A session token is a bearer secret: wiped (a heap copy per call, as libcurl's header is). */
    if (call->token.data != NULL) {
        sodium_memzero(call->token.data, call->token.len);
    }
    gw_buf_free(&call->token);
    if (call->inject_free != NULL) {
        call->inject_free(call->inject);
    }
    gw_buf_free(&call->response);
    gw_call_reply_free(call->reply.body, call->reply.charged, call->response.budget);
    json_decref(call->params);
    free(call);
}

void gw_call_charge(struct gw_call *call, struct gw_budget *budget)
{
    gw_buf_charge(&call->body, budget, true);
    gw_buf_charge(&call->response, budget, false);
}

void gw_call_reply_free(char *body, size_t charged, struct gw_budget *budget)
{
    if (budget != NULL && charged > 0) {
        gw_budget_give(budget, charged);
    }
    free(body);
}

void gw_call_refuse(struct gw_call *call, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(call->error_message, sizeof call->error_message, fmt, ap);
    va_end(ap);
    call->error_code = code;
}

const char *gw_call_header(const struct gw_call *call, const char *name)
{
    if (call->in.header == NULL) {
        return NULL;
    }
    return call->in.header(call->in.transport, name);
}

double gw_call_ms(const struct timespec *a, const struct timespec *b)
{
    if ((a->tv_sec == 0 && a->tv_nsec == 0) || (b->tv_sec == 0 && b->tv_nsec == 0)) {
        return 0;
    }
    return (double)(b->tv_sec - a->tv_sec) * 1e3 + (double)(b->tv_nsec - a->tv_nsec) / 1e6;
}

void gw_call_stamp(struct timespec *t)
{
    clock_gettime(CLOCK_MONOTONIC, t);
}
