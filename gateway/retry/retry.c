#include "retry/retry.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static bool starts_word(const char *s, const char *prefix)
{
    size_t n = strlen(prefix);
    return strncmp(s, prefix, n) == 0 && s[n] >= 'A' && s[n] <= 'Z';
}

bool gw_retry_read_only(const char *action)
{
    static const char *const reads[] = {"Describe", "Inquiry", "Inquire", "Get",
                                        "List",     "Query",   "Check"};
    if (action == NULL) {
        return false;
    }
    for (size_t i = 0; i < sizeof reads / sizeof reads[0]; i++) {
        if (starts_word(action, reads[i])) {
            return true;
        }
    }
    return false;
}

static bool code_is(const char *code, const char *family)
{
    size_t n = strlen(family);
    return strncmp(code, family, n) == 0 && (code[n] == '\0' || code[n] == '.');
}

/* Tencent's error code in an answer's body, or NULL. */
static enum gw_retry_why classify_body(const char *body, size_t len)
{
    enum gw_retry_why why = GW_RETRY_NO;
    json_t *doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
    const char *code = json_string_value(
        json_object_get(json_object_get(json_object_get(doc, "Response"), "Error"), "Code"));
    if (code != NULL) {
        if (code_is(code, "RequestLimitExceeded")) {
            why = GW_RETRY_THROTTLED;
        } else if (code_is(code, "InternalError")) {
            why = GW_RETRY_INTERNAL;
        }
    }
    json_decref(doc);
    return why;
}

enum gw_retry_why gw_retry_classify(enum gw_upstream_outcome outcome, long http_status,
                                    const char *body, size_t len)
{
    switch (outcome) {
    case GW_UPSTREAM_ANSWERED:
        if (http_status >= 500 && http_status <= 599) {
            return GW_RETRY_5XX;
        }
        if (http_status != 200 || body == NULL || len == 0) {
            return GW_RETRY_NO;
        }
        return classify_body(body, len);
    case GW_UPSTREAM_CONNECT:
        return GW_RETRY_CONNECT;
    case GW_UPSTREAM_FAILED:
        return GW_RETRY_FAILED;
    case GW_UPSTREAM_TIMEOUT:
        return GW_RETRY_TIMEOUT;
    case GW_UPSTREAM_NONE:
    case GW_UPSTREAM_TLS:       /* a certificate problem does not heal in milliseconds */
    case GW_UPSTREAM_TOO_LARGE: /* nor does an answer's size */
    case GW_UPSTREAM_NOT_SENT:  /* the gateway is stopping */
    case GW_UPSTREAM_ABORTED:
    default:
        return GW_RETRY_NO;
    }
}

const char *gw_retry_why_name(enum gw_retry_why why)
{
    switch (why) {
    case GW_RETRY_CONNECT:
        return "connect";
    case GW_RETRY_FAILED:
        return "failed";
    case GW_RETRY_TIMEOUT:
        return "timeout";
    case GW_RETRY_5XX:
        return "5xx";
    case GW_RETRY_THROTTLED:
        return "throttled";
    case GW_RETRY_INTERNAL:
        return "internal";
    case GW_RETRY_NO:
    default:
        return "no";
    }
}

long gw_retry_backoff_ms(unsigned retry, long base_ms, long cap_ms, uint32_t random)
{
    if (base_ms <= 0 || cap_ms <= 0) {
        return 0;
    }
    long ceiling = base_ms;
    for (unsigned i = 1; i < retry && ceiling < cap_ms; i++) {
        ceiling *= 2;
    }
    if (ceiling > cap_ms) {
        ceiling = cap_ms;
    }
    /* Uniform in [0, ceiling]: the modulo bias is at most ceiling / 2^32, negligible. */
    return (long)(random % ((uint32_t)ceiling + 1u));
}

struct gw_retry_budget {
    double ratio;
    unsigned min_retries;
    unsigned window_s;
    int64_t second[GW_RETRY_WINDOW_MAX]; /* the second each slot counts */
    uint32_t calls[GW_RETRY_WINDOW_MAX];
    uint32_t retries[GW_RETRY_WINDOW_MAX];
};

struct gw_retry_budget *gw_retry_budget_new(double ratio, unsigned min_retries, unsigned window_s)
{
    if (window_s < 1) {
        window_s = 1;
    }
    if (window_s > GW_RETRY_WINDOW_MAX) {
        window_s = GW_RETRY_WINDOW_MAX;
    }
    struct gw_retry_budget *b = calloc(1, sizeof *b);
    if (b == NULL) {
        return NULL;
    }
    b->ratio = ratio < 0 ? 0 : ratio;
    b->min_retries = min_retries;
    b->window_s = window_s;
    for (unsigned i = 0; i < GW_RETRY_WINDOW_MAX; i++) {
        b->second[i] = INT64_MIN;
    }
    return b;
}

void gw_retry_budget_free(struct gw_retry_budget *b)
{
    free(b);
}

/* The slot of now_s, emptied when it last counted an older second. */
static unsigned slot(struct gw_retry_budget *b, int64_t now_s)
{
    int64_t w = (int64_t)b->window_s;
    unsigned i = (unsigned)(((now_s % w) + w) % w);
    if (b->second[i] != now_s) {
        b->second[i] = now_s;
        b->calls[i] = 0;
        b->retries[i] = 0;
    }
    return i;
}

void gw_retry_budget_call(struct gw_retry_budget *b, int64_t now_s)
{
    if (b == NULL) {
        return;
    }
    unsigned i = slot(b, now_s);
    if (b->calls[i] < UINT32_MAX) {
        b->calls[i]++;
    }
}

bool gw_retry_budget_take(struct gw_retry_budget *b, int64_t now_s)
{
    if (b == NULL) {
        return false;
    }
    unsigned cur = slot(b, now_s);
    double calls = 0, retries = 0;
    for (unsigned i = 0; i < b->window_s; i++) {
        if (b->second[i] > now_s - (int64_t)b->window_s && b->second[i] <= now_s) {
            calls += b->calls[i];
            retries += b->retries[i];
        }
    }
    if (retries >= (double)b->min_retries + b->ratio * calls) {
        return false;
    }
    if (b->retries[cur] < UINT32_MAX) {
        b->retries[cur]++;
    }
    return true;
}
