#include "upstream/headers.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct header_field {
    const char *name;
    const char *value;
};

enum gw_err upstream_headers_build(struct upstream_headers *h, const struct gw_call *call)
{
    char timestamp[24];
    snprintf(timestamp, sizeof timestamp, "%lld", (long long)call->timestamp);
    struct header_field f[UPSTREAM_MAX_HEADERS];
    size_t n = 0;
    f[n++] = (struct header_field){"Content-Type", GW_CALL_CONTENT_TYPE};
    f[n++] = (struct header_field){"X-TC-Action", call->action};
    f[n++] = (struct header_field){"X-TC-Version", call->version};
    f[n++] = (struct header_field){"X-TC-Timestamp", timestamp};
    f[n++] = (struct header_field){"Authorization", call->authorization.data};
    /* Temporary keys: their token, unsigned, as Tencent's SDKs send it. */
    if (call->token.len > 0) {
        f[n++] = (struct header_field){"X-TC-Token", call->token.data};
    }
    if (call->region[0] != '\0') {
        f[n++] = (struct header_field){"X-TC-Region", call->region};
    }
    if (call->language[0] != '\0') {
        f[n++] = (struct header_field){"X-TC-Language", call->language};
    }
    /* Tracing headers the caller sent, so Tencent's support can find the call; never made up. */
    if (call->trace_id[0] != '\0') {
        f[n++] = (struct header_field){"X-TC-TraceId", call->trace_id};
    }
    if (call->request_client[0] != '\0') {
        f[n++] = (struct header_field){"X-TC-RequestClient", call->request_client};
    }
    /* No "Expect: 100-continue" round trip, and nothing else curl would add on its own. */
    f[n++] = (struct header_field){"Expect", ""};
    f[n++] = (struct header_field){"Accept", ""};

    size_t need = 0;
    for (size_t i = 0; i < n; i++) {
        if (strpbrk(f[i].value, "\r\n") != NULL) {
            return GW_ERR_INVALID;
        }
        need += strlen(f[i].name) + 2 + strlen(f[i].value) + 1;
    }
    if (need > h->text_cap) {
        char *bigger = malloc(need);
        if (bigger == NULL) {
            return GW_ERR_NOMEM;
        }
        free(h->text); /* wiped when its call ended */
        h->text = bigger;
        h->text_cap = need;
    }
    char *p = h->text;
    for (size_t i = 0; i < n; i++) {
        size_t name_len = strlen(f[i].name), value_len = strlen(f[i].value);
        h->line[i].data = p;
        h->line[i].next = i + 1 < n ? &h->line[i + 1] : NULL;
        memcpy(p, f[i].name, name_len);
        p += name_len;
        *p++ = ':';
        *p++ = ' ';
        memcpy(p, f[i].value, value_len);
        p += value_len;
        *p++ = '\0';
    }
    h->text_len = (size_t)(p - h->text);
    return GW_OK;
}

struct curl_slist *upstream_headers_list(struct upstream_headers *h)
{
    return h->line;
}

void upstream_headers_wipe(struct upstream_headers *h)
{
    if (h->text != NULL) {
        sodium_memzero(h->text, h->text_len);
    }
    h->text_len = 0;
}

void upstream_headers_free(struct upstream_headers *h)
{
    upstream_headers_wipe(h);
    free(h->text);
    h->text = NULL;
    h->text_cap = 0;
}
