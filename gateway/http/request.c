#include "http/request.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/text.h"

#define LOWER_DIGITS GW_TEXT_LOWER GW_TEXT_DIGITS

/* application/json, optionally followed by parameters such as "; charset=utf-8". */
static bool is_json_content_type(const char *ct)
{
    size_t n = strlen(GW_CALL_CONTENT_TYPE);
    if (strncasecmp(ct, GW_CALL_CONTENT_TYPE, n) != 0) {
        return false;
    }
    ct += n;
    while (*ct == ' ' || *ct == '\t') {
        ct++;
    }
    if (*ct == '\0') {
        return true;
    }
    if (*ct != ';') {
        return false;
    }
    ct++;
    while (*ct == ' ' || *ct == '\t') {
        ct++;
    }
    return strcasecmp(ct, "charset=utf-8") == 0 || strcasecmp(ct, "charset=\"utf-8\"") == 0;
}

/* Splits an absolute-form target into its authority and its path. */
static bool split_absolute(const char *target, const char **authority, size_t *authority_len,
                           const char **path)
{
    const char *rest;
    if (strncasecmp(target, "http://", 7) == 0) {
        rest = target + 7;
    } else if (strncasecmp(target, "https://", 8) == 0) {
        rest = target + 8;
    } else {
        return false;
    }
    const char *slash = strchr(rest, '/');
    *authority = rest;
    *authority_len = slash != NULL ? (size_t)(slash - rest) : strlen(rest);
    *path = slash != NULL ? slash : "/";
    return true;
}

/* Lowercases host[0..n) without its port into out. False if it is not a plausible host name. */
static bool normalise_host(const char *host, size_t n, char out[GW_CALL_HOST_MAX + 1])
{
    const char *colon = memchr(host, ':', n);
    if (colon != NULL) {
        size_t port_len = n - (size_t)(colon - host) - 1; /* RFC 3986 allows an empty port */
        if (port_len > 0 && !gw_text_all_in(colon + 1, port_len, GW_TEXT_DIGITS)) {
            return false;
        }
        n = (size_t)(colon - host);
    }
    if (n == 0 || n > GW_CALL_HOST_MAX) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = host[i];
        if (c >= 'A' && c <= 'Z') {
            c = (char)(c - 'A' + 'a');
        }
        if (strchr(LOWER_DIGITS ".-", c) == NULL || c == '\0') {
            return false;
        }
        out[i] = c;
    }
    out[n] = '\0';
    return true;
}

/*
 * From "gaap.tencentcloudapi.com", "gaap.ap-guangzhou.tencentcloudapi.com" or
 * "gaap.intl.tencentcloudapi.com" takes the service. False when host is not under suffix.
 */
static bool service_from_host(const char *host, const char *suffix,
                              char service[GW_CALL_SERVICE_MAX + 1])
{
    size_t hn = strlen(host);
    size_t sn = strlen(suffix);
    if (hn <= sn + 1 || strcmp(host + hn - sn, suffix) != 0 || host[hn - sn - 1] != '.') {
        return false;
    }
    size_t prefix = hn - sn - 1; /* "gaap" or "gaap.ap-guangzhou" */
    const char *dot = memchr(host, '.', prefix);
    size_t first = dot != NULL ? (size_t)(dot - host) : prefix;
    if (dot != NULL) {
        const char *middle = dot + 1;
        size_t mn = prefix - first - 1;
        if (mn == 0 || mn > GW_CALL_REGION_MAX || memchr(middle, '.', mn) != NULL ||
            !gw_text_all_in(middle, mn, LOWER_DIGITS "-")) {
            return false;
        }
    }
    if (first == 0 || first > GW_CALL_SERVICE_MAX || !gw_text_all_in(host, first, LOWER_DIGITS)) {
        return false;
    }
    memcpy(service, host, first);
    service[first] = '\0';
    return true;
}

/* "/" gives "", "/gaap" and "/gaap/" give "gaap"; anything else is refused. */
static bool service_from_path(const char *path, char service[GW_CALL_SERVICE_MAX + 1])
{
    if (path[0] != '/') {
        return false;
    }
    path++;
    size_t n = strcspn(path, "/");
    if (path[n] == '/' && path[n + 1] != '\0') {
        return false;
    }
    if (n > GW_CALL_SERVICE_MAX || (n > 0 && !gw_text_all_in(path, n, LOWER_DIGITS))) {
        return false;
    }
    memcpy(service, path, n);
    service[n] = '\0';
    return true;
}

static bool check_target(const struct gw_request_input *in, const char *suffix,
                         struct gw_call *call)
{
    const char *authority = in->host;
    size_t authority_len = in->host != NULL ? strlen(in->host) : 0;
    const char *path = in->target;
    char path_service[GW_CALL_SERVICE_MAX + 1];
    char host[GW_CALL_HOST_MAX + 1];

    if (!gw_text_is_printable(in->target, 2048)) {
        gw_call_refuse(call, "InvalidRequest", "The request target is not valid.");
        return false;
    }
    bool absolute = split_absolute(in->target, &authority, &authority_len, &path);
    if (in->has_query || strchr(path, '?') != NULL) {
        gw_call_refuse(call, "InvalidRequest",
                       "Query strings are not accepted: send the parameters as a JSON body.");
        return false;
    }
    if (!service_from_path(path, path_service)) {
        gw_call_refuse(call, "InvalidRequest",
                       "The path must be / or /<service>/ (for example /gaap/).");
        return false;
    }
    if (authority != NULL && normalise_host(authority, authority_len, host) &&
        service_from_host(host, suffix, call->service)) {
        if (path_service[0] != '\0' && strcmp(path_service, call->service) != 0) {
            gw_call_refuse(call, "InvalidRequest",
                           "The host names service %s but the path names service %s: use one.",
                           call->service, path_service);
            return false;
        }
        memcpy(call->host, host, sizeof host);
        return true;
    }
    if (absolute) {
        /* A proxy client named the host it wants (RFC 9112 3.2.2: it wins over Host): not ours. */
        gw_call_refuse(call, "InvalidRequest",
                       "The request target names a host that is not a Tencent Cloud API endpoint "
                       "(<service>.%s).",
                       suffix);
        return false;
    }
    if (path_service[0] == '\0') {
        gw_call_refuse(call, "InvalidRequest",
                       "Cannot tell which service to call: send Host: <service>.%s "
                       "(for example gaap.%s) or POST to /<service>/.",
                       suffix, suffix);
        return false;
    }
    memcpy(call->service, path_service, sizeof path_service);
    int n = snprintf(call->host, sizeof call->host, "%s.%s", path_service, suffix);
    if (n < 0 || (size_t)n >= sizeof call->host) {
        gw_call_refuse(call, "InvalidRequest", "The service name is too long.");
        return false;
    }
    return true;
}

static bool check_action_version(const struct gw_request_input *in, struct gw_call *call)
{
    if (in->action == NULL || in->action[0] == '\0') {
        gw_call_refuse(call, "MissingParameter",
                       "The X-TC-Action header is missing: name the API action to call, "
                       "for example X-TC-Action: DescribeProxies.");
        return false;
    }
    size_t n = strlen(in->action);
    if (n > GW_CALL_ACTION_MAX || !gw_text_all_in(in->action, n, GW_TEXT_ALNUM)) {
        gw_call_refuse(call, "InvalidAction",
                       "The X-TC-Action header must be an action name of letters and digits.");
        return false;
    }
    memcpy(call->action, in->action, n + 1);

    if (in->version == NULL || in->version[0] == '\0') {
        gw_call_refuse(call, "MissingParameter",
                       "The X-TC-Version header is missing: name the API version, "
                       "for example X-TC-Version: 2018-05-29.");
        return false;
    }
    n = strlen(in->version);
    if (n != GW_CALL_VERSION_MAX || !gw_text_all_in(in->version, n, GW_TEXT_DIGITS "-") ||
        in->version[4] != '-' || in->version[7] != '-') {
        gw_call_refuse(call, "NoSuchVersion",
                       "The X-TC-Version header must be a version date such as 2018-05-29.");
        return false;
    }
    memcpy(call->version, in->version, n + 1);
    return true;
}

static bool check_region_language(const struct gw_request_input *in, struct gw_call *call)
{
    if (in->region != NULL && in->region[0] != '\0') {
        size_t n = strlen(in->region);
        if (n > GW_CALL_REGION_MAX || !gw_text_all_in(in->region, n, LOWER_DIGITS "-")) {
            gw_call_refuse(call, "InvalidParameterValue",
                           "The X-TC-Region header must be a region name such as ap-guangzhou.");
            return false;
        }
        memcpy(call->region, in->region, n + 1);
    }
    if (in->language != NULL && in->language[0] != '\0') {
        if (strcmp(in->language, "zh-CN") != 0 && strcmp(in->language, "en-US") != 0) {
            gw_call_refuse(call, "InvalidParameterValue",
                           "The X-TC-Language header must be zh-CN or en-US.");
            return false;
        }
        memcpy(call->language, in->language, strlen(in->language) + 1);
    }
    return true;
}

/* Copies a pass-through header: printable ASCII of bounded length, or refused. */
static bool copy_passthrough(const char *value, const char *name, char out[GW_CALL_TRACE_MAX + 1],
                             struct gw_call *call)
{
    if (value == NULL || value[0] == '\0') {
        return true;
    }
    size_t n = strlen(value);
    if (n > GW_CALL_TRACE_MAX || !gw_text_is_printable(value, GW_CALL_TRACE_MAX + 1)) {
        gw_call_refuse(call, "InvalidParameterValue",
                       "The %s header must be printable ASCII of at most %d characters.", name,
                       GW_CALL_TRACE_MAX);
        return false;
    }
    memcpy(out, value, n + 1);
    return true;
}

/* A declared body above the limit is refused before a byte of it is read. */
static bool check_content_length(const struct gw_request_input *in, struct gw_call *call)
{
    if (in->content_length == NULL || in->max_body_bytes == 0) {
        return true;
    }
    size_t n = strlen(in->content_length);
    if (n > 0 && gw_text_all_in(in->content_length, n, GW_TEXT_DIGITS) &&
        (n > 19 || strtoull(in->content_length, NULL, 10) > in->max_body_bytes)) {
        gw_call_refuse(call, "RequestSizeLimitExceeded",
                       "The body is larger than the gateway's limit of %zu bytes.",
                       in->max_body_bytes);
        return false;
    }
    return true;
}

bool gw_request_check_head(const struct gw_request_input *in, const char *endpoint_suffix,
                           struct gw_call *call)
{
    if (in->method != NULL && strcmp(in->method, "CONNECT") == 0) {
        call->reply.status = 405;
        call->reply.allow = "POST";
    }
    if (in->method == NULL || strcmp(in->method, "POST") != 0) {
        gw_call_refuse(call, "UnsupportedProtocol",
                       "tcgw accepts only POST requests with a JSON body (API 3.0 style).");
        return false;
    }
    if (in->content_type == NULL || !is_json_content_type(in->content_type)) {
        gw_call_refuse(call, "InvalidRequest", "The Content-Type header must be application/json.");
        return false;
    }
    return check_content_length(in, call) && check_target(in, endpoint_suffix, call) &&
           check_action_version(in, call) && check_region_language(in, call) &&
           copy_passthrough(in->trace_id, "X-TC-TraceId", call->trace_id, call) &&
           copy_passthrough(in->request_client, "X-TC-RequestClient", call->request_client, call);
}

bool gw_request_parse_body(struct gw_call *call)
{
    json_error_t jerr;
    if (call->in.body_too_large) {
        gw_call_refuse(call, "RequestSizeLimitExceeded",
                       "The body is larger than the gateway's limit of %zu bytes.", call->body.max);
        return false;
    }
    if (call->body.len == 0) {
        /* An empty body is a call without parameters; it is forwarded empty, as received. */
        call->params = json_object();
        if (call->params == NULL) {
            gw_call_refuse(call, "InternalError", "tcgw ran out of memory.");
            return false;
        }
        return true;
    }
    /* Anything but an object is refused before parsing, whatever its first token would give. */
    size_t lead = strspn(call->body.data, " \t\r\n");
    if (lead == call->body.len || call->body.data[lead] != '{') {
        gw_call_refuse(call, "InvalidRequest",
                       "The body must be a JSON object of parameters, such as {\"Limit\": 1}.");
        return false;
    }
    /* Duplicate keys are refused: the gateway and Tencent must not read different values. */
    call->params = json_loadb(call->body.data, call->body.len, JSON_REJECT_DUPLICATES, &jerr);
    if (call->params == NULL && json_error_code(&jerr) == json_error_numeric_overflow) {
        gw_call_refuse(call, "InvalidParameterValue",
                       "A number in the body is out of range (line %d, column %d): send "
                       "integers above 9223372036854775807 as decimal strings.",
                       jerr.line, jerr.column);
        return false;
    }
    if (call->params == NULL) {
        gw_call_refuse(call, "InvalidRequest",
                       "The body is not valid JSON: %s (line %d, column %d).", jerr.text, jerr.line,
                       jerr.column);
        return false;
    }
    if (!json_is_object(call->params)) {
        gw_call_refuse(call, "InvalidRequest",
                       "The body must be a JSON object of parameters, such as {\"Limit\": 1}.");
        return false;
    }
    return true;
}
