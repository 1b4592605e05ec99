/*
 * libFuzzer target for request: the HTTP head checks and the body parser, fed as a caller could.
 *
 * Input layout (text-friendly, so seeds are readable):
 *     method \n target \n Host \n Content-Type \n X-TC-Action \n X-TC-Version \n X-TC-Region \n
 *     X-TC-Language \n body...
 * Each of the eight header lines becomes a NUL-terminated string of exactly its bytes in its own
 * allocation (a NUL inside a line ends the C string early, as it would in a header value); a
 * header line that is exactly "!" is an absent header (NULL), and lines missing at the end are
 * absent too. The method and the target are never NULL (libmicrohttpd always gives both), so
 * there "!" is just the text "!" and a missing line is "".
 * Everything after the eighth newline is the body, byte for byte.
 *
 * Checks, beyond the sanitizers: a verdict is a refusal exactly when error_code is set; a refusal
 * has a code that request.h documents for its stage, a non-empty NUL-terminated message, and an
 * error body that gw_error_body builds and that parses back with the same code; an accepted head
 * has every field within the alphabet and length the request stage promises (the log and the
 * signer rely on that). The body's verdict is predicted independently from what request.h
 * promises: an empty body or a JSON object (duplicate keys refused) is accepted as an object; a
 * body that starts as an object but holds a number Jansson cannot represent (such as
 * {"Limit": 99999999999999999999}) is InvalidParameterValue; anything else is InvalidRequest;
 * InternalError (out of memory) is always allowed. As in the gateway, the body is parsed on the
 * same call only after the head was accepted; otherwise it is parsed on a fresh call so it is
 * always exercised.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "http/request.h"

#define SUFFIX "tencentcloudapi.com"
#define N_FIELDS 8
#define LOWER_DIGITS "abcdefghijklmnopqrstuvwxyz0123456789"
#define ALNUM "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool cond)
{
    if (!cond) {
        abort();
    }
}

static bool only(const char *s, const char *allowed)
{
    return strspn(s, allowed) == strlen(s);
}

/* The refusals of gw_request_check_head, as request.h lists them. */
static const char *const head_codes[] = {
    "UnsupportedProtocol", "InvalidRequest",        "MissingParameter",         "InvalidAction",
    "NoSuchVersion",       "InvalidParameterValue", "RequestSizeLimitExceeded", NULL};

static bool is_one_of(const char *code, const char *const *codes)
{
    for (size_t i = 0; codes[i] != NULL; i++) {
        if (strcmp(code, codes[i]) == 0) {
            return true;
        }
    }
    return false;
}

/* What a caller is told about a refusal: the error body must build and carry the code. */
static void check_refusal(const struct gw_call *call)
{
    check(call->error_code != NULL);
    check(memchr(call->error_message, '\0', sizeof call->error_message) != NULL);
    check(call->error_message[0] != '\0');

    size_t len = 0;
    char *body = gw_error_body(call->error_code, call->error_message, call->request_id, &len);
    check(body != NULL && len == strlen(body));
    json_t *root = json_loadb(body, len, 0, NULL);
    check(root != NULL);
    json_t *error = json_object_get(json_object_get(root, "Response"), "Error");
    const char *code = json_string_value(json_object_get(error, "Code"));
    const char *message = json_string_value(json_object_get(error, "Message"));
    check(code != NULL && strcmp(code, call->error_code) == 0);
    check(message != NULL && message[0] != '\0');
    json_decref(root);
    free(body);
}

/* The promises of an accepted head (request.h, and the log line in server.c relies on them). */
static void check_accepted_head(const struct gw_call *call)
{
    size_t n = strlen(call->service);
    check(n >= 1 && n <= GW_CALL_SERVICE_MAX && only(call->service, LOWER_DIGITS));

    size_t hn = strlen(call->host);
    size_t sn = strlen(SUFFIX);
    check(hn <= GW_CALL_HOST_MAX && only(call->host, LOWER_DIGITS ".-"));
    check(hn >= n + 1 + sn && strncmp(call->host, call->service, n) == 0 && call->host[n] == '.');
    check(strcmp(call->host + hn - sn, SUFFIX) == 0 && call->host[hn - sn - 1] == '.');

    n = strlen(call->action);
    check(n >= 1 && n <= GW_CALL_ACTION_MAX && only(call->action, ALNUM));

    check(strlen(call->version) == GW_CALL_VERSION_MAX && only(call->version, "0123456789-"));
    check(call->version[4] == '-' && call->version[7] == '-');

    check(strlen(call->region) <= GW_CALL_REGION_MAX && only(call->region, LOWER_DIGITS "-"));
    check(call->language[0] == '\0' || strcmp(call->language, "zh-CN") == 0 ||
          strcmp(call->language, "en-US") == 0);
}

/* What request.h promises for a body, worked out without request.c. */
enum body_verdict { BODY_OBJECT, BODY_OUT_OF_RANGE, BODY_INVALID };

static enum body_verdict expected_body(const uint8_t *body, size_t len)
{
    if (len == 0) {
        return BODY_OBJECT; /* no parameters */
    }
    json_error_t jerr;
    json_t *j = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, &jerr);
    bool object = json_is_object(j);
    json_decref(j);
    if (object) {
        return BODY_OBJECT;
    }
    /* Only a body that starts as an object is parsed at all; JSON whitespace is these four. */
    size_t lead = 0;
    while (lead < len && memchr(" \t\r\n", body[lead], 4) != NULL) {
        lead++;
    }
    if (j == NULL && lead < len && body[lead] == '{' &&
        json_error_code(&jerr) == json_error_numeric_overflow) {
        return BODY_OUT_OF_RANGE;
    }
    return BODY_INVALID;
}

static void parse_body(struct gw_call *call, const uint8_t *body, size_t len)
{
    check(gw_buf_append(&call->body, body, len) == GW_OK);
    bool ok = gw_request_parse_body(call);
    check(ok == (call->error_code == NULL));
    if (ok) {
        check(json_is_object(call->params));
    } else {
        check_refusal(call);
    }
    if (!ok && strcmp(call->error_code, "InternalError") == 0) {
        return; /* out of memory: allowed for any body */
    }
    switch (expected_body(body, len)) {
    case BODY_OBJECT:
        check(ok);
        break;
    case BODY_OUT_OF_RANGE:
        check(!ok && strcmp(call->error_code, "InvalidParameterValue") == 0);
        break;
    case BODY_INVALID:
    default:
        check(!ok && strcmp(call->error_code, "InvalidRequest") == 0);
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *fields[N_FIELDS] = {NULL};
    size_t pos = 0;

    for (size_t i = 0; i < N_FIELDS && pos < size; i++) {
        const uint8_t *nl = memchr(data + pos, '\n', size - pos);
        size_t end = nl != NULL ? (size_t)(nl - data) : size;
        size_t n = end - pos;
        if (i < 2 || !(n == 1 && data[pos] == '!')) {
            fields[i] = malloc(n + 1);
            check(fields[i] != NULL);
            memcpy(fields[i], data + pos, n);
            fields[i][n] = '\0';
        }
        pos = nl != NULL ? end + 1 : size;
    }
    static char empty[] = "";
    for (size_t i = 0; i < 2; i++) {
        if (fields[i] == NULL) {
            fields[i] = empty;
        }
    }
    const uint8_t *body = data + pos;
    size_t body_len = size - pos;

    struct gw_request_input in = {
        .method = fields[0],
        .target = fields[1],
        .host = fields[2],
        .content_type = fields[3],
        .action = fields[4],
        .version = fields[5],
        .region = fields[6],
        .language = fields[7],
    };
    struct gw_call *call = gw_call_new(body_len + 1, 1024);
    check(call != NULL);
    bool ok = gw_request_check_head(&in, SUFFIX, call);
    check(ok == (call->error_code == NULL));
    if (ok) {
        check_accepted_head(call);
        parse_body(call, body, body_len);
    } else {
        check_refusal(call);
        check(is_one_of(call->error_code, head_codes));
        struct gw_call *fresh = gw_call_new(body_len + 1, 1024);
        check(fresh != NULL);
        parse_body(fresh, body, body_len);
        gw_call_free(fresh);
    }
    gw_call_free(call);
    for (size_t i = 0; i < N_FIELDS; i++) {
        if (fields[i] != empty) {
            free(fields[i]);
        }
    }
    return 0;
}
