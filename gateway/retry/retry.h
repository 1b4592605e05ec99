/*
 * retry: the pure parts of safe retries. Which calls may be sent again (a read-only action, or a
 * write carrying a ClientToken), which results are worth another attempt, how long to wait before
 * it (exponential backoff with full jitter), and a retry budget that keeps retries to a fraction
 * of calls over a sliding window, so retries cannot multiply an outage.
 *
 * Nothing here sends anything or reads a clock: the pipeline passes the instants in.
 */
#ifndef GW_RETRY_H
#define GW_RETRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/call.h"
#include "core/errors.h"

/* Why a result is worth another attempt; GW_RETRY_NO when it is not. */
enum gw_retry_why {
    GW_RETRY_NO = 0,
    GW_RETRY_CONNECT,   /* not sent: connect failure (or a timeout before the request went out) */
    GW_RETRY_FAILED,    /* the connection failed or was reset after the request went out */
    GW_RETRY_TIMEOUT,   /* no complete answer within the attempt's timeout */
    GW_RETRY_5XX,       /* HTTP 5xx */
    GW_RETRY_THROTTLED, /* Tencent answered RequestLimitExceeded(.*) */
    GW_RETRY_INTERNAL,  /* Tencent answered InternalError(.*) */
};

/*
 * Whether action only reads: its name starts with Describe, Inquiry, Inquire, Get, List, Query or
 * Check followed by an upper-case letter (DescribeProxies, InquiryPriceCreateProxy). Such calls
 * change nothing, so sending them twice is harmless.
 */
bool gw_retry_read_only(const char *action);

/*
 * Classifies the result of one attempt: outcome, HTTP status and the answer's body (Tencent's
 * {"Response":{"Error":{"Code":...}}}). A body that is not JSON with status 200 is not retried.
 */
enum gw_retry_why gw_retry_classify(enum gw_upstream_outcome outcome, long http_status,
                                    const char *body, size_t len);

/* A short name for logs: "connect", "failed", "timeout", "5xx", "throttled", "internal", "no". */
const char *gw_retry_why_name(enum gw_retry_why why);

/*
 * The wait before retry number `retry` (1 for the first retry): full jitter, a uniformly random
 * delay in [0, min(cap_ms, base_ms * 2^(retry-1))], from random (any 32 random bits).
 */
long gw_retry_backoff_ms(unsigned retry, long base_ms, long cap_ms, uint32_t random);

/* The retry budget of one worker: a sliding window of per-second counts. */
#define GW_RETRY_WINDOW_MAX 60

struct gw_retry_budget;

/*
 * Returns a new budget (free with gw_retry_budget_free), or NULL when out of memory. Over the last
 * window_s seconds (1..GW_RETRY_WINDOW_MAX), retries are allowed while retries < min_retries +
 * ratio * calls (first attempts).
 */
struct gw_retry_budget *gw_retry_budget_new(double ratio, unsigned min_retries, unsigned window_s);

/* Accepts NULL. */
void gw_retry_budget_free(struct gw_retry_budget *b);

/* Counts a first attempt at now_s (any monotonic seconds). */
void gw_retry_budget_call(struct gw_retry_budget *b, int64_t now_s);

/* Takes one retry from the budget at now_s: true when allowed (and counted). */
bool gw_retry_budget_take(struct gw_retry_budget *b, int64_t now_s);

#endif
