/*
 * Unit tests for pipeline: the order of the stages and the one final stage, with the real parts
 * (the shipped API description, a vault in a temporary directory, the upstream thread aimed at a
 * closed port). A small transport stands in for the server: a header table, and counters for the
 * pipeline's notifications. Each test builds its own parts, so no test depends on another's.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "access/access.h"
#include "apispec/apispec.h"
#include "core/call.h"
#include "core/loop.h"
#include "pipeline/pipeline.h"
#include "upstream/upstream.h"
#include "vault/tc3.h"
#include "vault/vault.h"

#define SECRET_ID "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE"
#define SECRET_KEY "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE"
#define SEED "{\"ProxyId\": \"link-4ftf12sb\", \"Concurrent\": \"2\", \"Bandwidth\": \"10\"}"
#define MAX_BODY 4096

struct parts {
    char dir[64];
    struct gw_apispec *spec;
    struct gw_access *access; /* callers "local" (allow-all) and "reader" (Describe* only) */
    struct gw_upstream *upstream;
    struct gw_pipeline *pipeline;
    struct gw_loop *loop; /* the upstream's, run by the test's own thread while it waits */
    int records;          /* calls seen by the final stage's record sink */
};

/* The transport double: one request's head, and what the pipeline told it. */
#define MAX_HEADERS 16
struct transport {
    const char *names[MAX_HEADERS];
    const char *values[MAX_HEADERS];
    size_t n;
    int will_wait;
    int answered;
    bool waiting;       /* the test runs the loop until answered */
    const char *caller; /* the listener's unauthenticated caller; NULL: "local" */
    struct parts *parts;
};

static uint16_t closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static void on_record(const struct gw_call *call, void *arg)
{
    struct parts *p = arg;
    assert_non_null(call->reply.body); /* the record is written from the complete call */
    p->records++;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(path, 0600), 0);
}

/* Removes what setup wrote in dir. */
static void remove_files(const char *dir)
{
    static const char *const names[] = {"policies/allow-all.json",
                                        "policies/reader.json",
                                        "policies",
                                        "callers.json",
                                        "credentials.store",
                                        "master.key"};
    char path[192];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        remove(path);
    }
    rmdir(dir);
}

static int setup(void **state)
{
    struct parts *p = calloc(1, sizeof *p);
    char path[128], key[128], store[128], callers[128], policies[128], msg[512];
    if (p == NULL) {
        return -1;
    }
    snprintf(p->dir, sizeof p->dir, "/tmp/tcgw-pipeline-XXXXXX");
    if (mkdtemp(p->dir) == NULL) {
        return -1;
    }
    const char *src = getenv("TCGW_SOURCE_DIR");
    snprintf(path, sizeof path, "%s/specs", src != NULL ? src : "..");
    snprintf(key, sizeof key, "%s/master.key", p->dir);
    snprintf(store, sizeof store, "%s/credentials.store", p->dir);
    snprintf(callers, sizeof callers, "%s/callers.json", p->dir);
    snprintf(policies, sizeof policies, "%s/policies", p->dir);
    struct gw_vault *vault = NULL;
    if (gw_apispec_load_dir(path, &p->spec, msg, sizeof msg) != GW_OK ||
        gw_vault_keygen(key, msg, sizeof msg) != GW_OK ||
        gw_vault_open(key, store, &vault, msg, sizeof msg) != GW_OK ||
        gw_vault_put(vault, "default", SECRET_ID, strlen(SECRET_ID), SECRET_KEY, strlen(SECRET_KEY),
                     msg, sizeof msg) != GW_OK ||
        gw_vault_save(vault, store, msg, sizeof msg) != GW_OK) {
        print_error("setup: %s\n", msg);
        return -1;
    }
    gw_vault_free(vault);
    write_file(callers, "{\"callers\": {\"local\": {\"credential\": \"default\", "
                        "\"policies\": [\"allow-all\"]}, \"reader\": {\"credential\": "
                        "\"default\", \"policies\": [\"reader\"]}}}");
    assert_int_equal(mkdir(policies, 0700), 0);
    char file[160];
    snprintf(file, sizeof file, "%s/allow-all.json", policies);
    write_file(file, "{\"version\": \"2.0\", \"statement\": [{\"sid\": \"any\", \"effect\": "
                     "\"allow\", \"action\": \"*\", \"resource\": \"*\"}]}");
    snprintf(file, sizeof file, "%s/reader.json", policies);
    write_file(file, "{\"version\": \"2.0\", \"statement\": [{\"sid\": \"reads\", \"effect\": "
                     "\"allow\", \"action\": \"gaap:Describe*\", \"resource\": \"*\"}]}");
    struct gw_access_sources sources = {.callers_file = callers,
                                        .policy_dir = policies,
                                        .master_key_file = key,
                                        .credential_store = store,
                                        .spec = p->spec};
    if (gw_access_open(&sources, &p->access, msg, sizeof msg) != GW_OK) {
        print_error("setup: %s\n", msg);
        return -1;
    }
    char entry[96];
    snprintf(entry, sizeof entry, "gaap.tencentcloudapi.com:443:127.0.0.1:%u",
             (unsigned)closed_port());
    char *const connect_to[] = {entry, NULL};
    struct gw_upstream_options uo = {.connect_timeout_ms = 5000,
                                     .timeout_ms = 5000,
                                     .max_host_connections = 2,
                                     .max_in_flight = 16,
                                     .connect_to = connect_to};
    if (gw_loop_new(NULL, NULL, &p->loop) != GW_OK ||
        gw_upstream_new(&uo, p->loop, &p->upstream, msg, sizeof msg) != GW_OK) {
        print_error("setup: %s\n", msg);
        return -1;
    }
    struct gw_pipeline_parts parts = {.spec = p->spec,
                                      .access = p->access,
                                      .upstream = p->upstream,
                                      .endpoint_suffix = "tencentcloudapi.com",
                                      .max_body_bytes = MAX_BODY,
                                      .max_response_bytes = 4096,
                                      .upstream_timeout_ms = 5000,
                                      .record = on_record,
                                      .record_arg = p};
    p->pipeline = gw_pipeline_new(&parts);
    remove_files(p->dir);
    *state = p;
    return p->pipeline == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    struct parts *p = *state;
    gw_upstream_free(p->upstream);
    gw_pipeline_free(p->pipeline);
    gw_access_free(p->access);
    gw_apispec_free(p->spec);
    gw_loop_free(p->loop);
    free(p);
    return 0;
}

static const char *lookup(void *arg, const char *name)
{
    struct transport *t = arg;
    for (size_t i = 0; i < t->n; i++) {
        if (strcasecmp(t->names[i], name) == 0) {
            return t->values[i];
        }
    }
    return NULL;
}

static void on_will_wait(struct gw_call *call, void *arg)
{
    struct transport *t = arg;
    (void)call;
    t->will_wait++;
}

static void on_answered(struct gw_call *call, void *arg)
{
    struct transport *t = arg;
    (void)call;
    t->answered++;
    if (t->waiting) {
        gw_loop_stop(t->parts->loop);
    }
}

static void set_header(struct transport *t, const char *name, const char *value)
{
    for (size_t i = 0; i < t->n; i++) {
        if (strcasecmp(t->names[i], name) == 0) {
            t->values[i] = value;
            return;
        }
    }
    assert_true(t->n < MAX_HEADERS);
    t->names[t->n] = name;
    t->values[t->n] = value;
    t->n++;
}

/* The seed call's head: headers can be changed (NULL value: absent) before running. */
static struct transport seed_transport(struct parts *p, const char *action)
{
    struct transport t = {.n = 0, .waiting = false, .parts = p};
    set_header(&t, "Host", "gaap.tencentcloudapi.com");
    set_header(&t, "Content-Type", "application/json");
    set_header(&t, "X-TC-Action", action);
    set_header(&t, "X-TC-Version", "2018-05-29");
    return t;
}

static struct gw_call *new_call(struct transport *t, const char *method)
{
    struct gw_call *call = gw_call_new(MAX_BODY, 4096);
    assert_non_null(call);
    call->in.method = method;
    call->in.target = "/";
    call->in.header = lookup;
    call->in.transport = t;
    call->in.will_wait = on_will_wait;
    call->in.answered = on_answered;
    call->in.accept = GW_ACCEPT_TOKEN | GW_ACCEPT_SDK_KEY;
    call->in.unauthenticated_caller = t->caller != NULL ? t->caller : "local";
    return call;
}

static void give_up(void *arg)
{
    gw_loop_stop(arg);
}

/* Runs a call through the pipeline as the server does, and waits for its answer. */
static struct gw_call *run(struct parts *p, struct transport *t, const char *method,
                           const char *body)
{
    struct gw_call *call = new_call(t, method);
    int records_before = p->records;
    if (gw_pipeline_begin(p->pipeline, call)) {
        assert_int_equal(gw_buf_append_str(&call->body, body), GW_OK);
    }
    call->bytes_in = strlen(body);
    gw_pipeline_run(p->pipeline, call);

    if (t->answered == 0) {
        t->waiting = true;
        struct gw_loop_timer *deadline = gw_loop_timer_new(p->loop, give_up, p->loop);
        assert_non_null(deadline);
        gw_loop_timer_set(deadline, 10000);
        assert_int_equal(gw_loop_run(p->loop), GW_OK);
        gw_loop_timer_free(deadline);
        t->waiting = false;
    }
    int records = p->records - records_before;
    assert_int_equal(t->answered, 1);
    assert_int_equal(records, 1); /* the final stage, exactly once */
    assert_non_null(call->reply.body);
    assert_int_equal(call->bytes_out, call->reply.len);
    return call;
}

/* The reply is a Tencent error with this code, and the call was never signed nor forwarded. */
static void expect_refused_unsigned(struct gw_call *call, const struct transport *t,
                                    const char *code)
{
    if (call->error_code == NULL || strcmp(call->error_code, code) != 0) {
        fail_msg("expected %s, got %s (%s)", code, call->error_code ? call->error_code : "none",
                 call->error_message);
    }
    json_t *root = json_loadb(call->reply.body, call->reply.len, 0, NULL);
    assert_non_null(root);
    json_t *resp = json_object_get(root, "Response");
    assert_string_equal(json_string_value(json_object_get(json_object_get(resp, "Error"), "Code")),
                        code);
    assert_string_equal(json_string_value(json_object_get(resp, "RequestId")), call->request_id);
    json_decref(root);
    assert_int_equal(call->authorization.len, 0);
    assert_int_equal(t->will_wait, 0);
    assert_int_equal(call->outcome, GW_UPSTREAM_NONE);
}

static void test_refusals_pass_the_final_stage_once_unsigned(void **state)
{
    struct parts *p = *state;
    static char big[MAX_BODY + 2];
    memset(big, ' ', sizeof big - 1);
    big[0] = '{';
    big[sizeof big - 2] = '}';
    struct {
        const char *method, *header, *value, *body, *code, *caller;
    } cases[] = {
        {"GET", NULL, NULL, "", "UnsupportedProtocol", NULL},
        {"POST", "Content-Type", "text/plain", SEED, "InvalidRequest", NULL},
        {"POST", "Host", "evil.example.com", SEED, "InvalidRequest", NULL},
        {"POST", "X-TC-Action", NULL, SEED, "MissingParameter", NULL},
        {"POST", "X-TC-Action", "Modify-Proxy", SEED, "InvalidAction", NULL},
        {"POST", "X-TC-Version", "2018/05/29", SEED, "NoSuchVersion", NULL},
        {"POST", "X-TC-Region", "AP_GUANGZHOU", SEED, "InvalidParameterValue", NULL},
        {"POST", "X-TC-Language", "fr-FR", SEED, "InvalidParameterValue", NULL},
        {"POST", "X-TC-TraceId", "tab\there", SEED, "InvalidParameterValue", NULL},
        {"POST", "Content-Length", "99999999", SEED, "RequestSizeLimitExceeded", NULL},
        {"POST", NULL, NULL, big, "RequestSizeLimitExceeded", NULL},
        {"POST", NULL, NULL, "{\"ProxyId\":", "InvalidRequest", NULL},
        {"POST", NULL, NULL, "[1]", "InvalidRequest", NULL},
        {"POST", NULL, NULL, "-9223372036854775809", "InvalidRequest", NULL},
        {"POST", NULL, NULL, "{\"ProxyId\": \"a\", \"ProxyId\": \"b\"}", "InvalidRequest", NULL},
        {"POST", NULL, NULL, "{\"Bandwidth\": 99999999999999999999}", "InvalidParameterValue",
         NULL},
        {"POST", NULL, NULL, "{\"ProxyId\": \"link-1\"}", "MissingParameter", NULL},
        {"POST", NULL, NULL, "{\"ProxyId\": \"link-1\", \"Bandwidth\": 10, \"Nope\": 1}",
         "UnknownParameter", NULL},
        {"POST", NULL, NULL, "{\"ProxyId\": \"link-1\", \"Bandwidth\": \"ten\"}",
         "InvalidParameter", NULL},
        {"POST", "X-TC-Version", "2017-01-01", SEED, "NoSuchVersion", NULL},
        {"POST", "X-TC-Action", "NoSuchAction", SEED, "InvalidAction", NULL},
        {"POST", "Host", "cvm.tencentcloudapi.com", SEED, "NoSuchProduct", NULL},
        {"POST", "Authorization", "Bearer short", SEED, "AuthFailure.InvalidAuthorization", NULL},
        {"POST", "Authorization", "Basic dXNlcjpwYXNz", SEED, "AuthFailure.InvalidAuthorization",
         NULL},
        {"POST", NULL, NULL, SEED, "UnauthorizedOperation", "reader"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct transport t = seed_transport(p, "ModifyProxyConfiguration");
        t.caller = cases[i].caller;
        if (cases[i].header != NULL) {
            set_header(&t, cases[i].header, cases[i].value);
        }
        struct gw_call *call = new_call(&t, cases[i].method);
        int records_before = p->records;
        bool want_body = gw_pipeline_begin(p->pipeline, call);
        if (want_body) {
            size_t n = strlen(cases[i].body);
            if (gw_buf_append(&call->body, cases[i].body, n) != GW_OK) {
                call->in.body_too_large = true; /* as the server marks it */
            }
        }
        gw_pipeline_run(p->pipeline, call);
        /* Decided without forwarding: answered before gw_pipeline_run returned. */
        assert_int_equal(t.answered, 1);
        assert_int_equal(p->records - records_before, 1);
        print_message("case %zu: %s\n", i, cases[i].code);
        expect_refused_unsigned(call, &t, cases[i].code);
        assert_int_equal(call->reply.status, 200);
        gw_call_free(call);
    }
}

static void test_connect_gets_405_with_allow(void **state)
{
    struct parts *p = *state;
    struct transport t = seed_transport(p, "DescribeProxies");
    struct gw_call *call = run(p, &t, "CONNECT", "");
    expect_refused_unsigned(call, &t, "UnsupportedProtocol");
    assert_int_equal(call->reply.status, 405);
    assert_string_equal(call->reply.allow, "POST");
    gw_call_free(call);
}

static void test_valid_call_is_signed_over_its_exact_bytes_and_forwarded(void **state)
{
    struct parts *p = *state;
    struct transport t = seed_transport(p, "ModifyProxyConfiguration");
    set_header(&t, "X-TC-TraceId", "trace-123");
    set_header(&t, "X-TC-RequestClient", "SDK_NODEJS_4.0");
    time_t before = time(NULL);
    struct gw_call *call = run(p, &t, "POST", SEED);
    assert_int_equal(t.will_wait, 1); /* the transport could suspend before forwarding */
    assert_true(call->timestamp >= before && call->timestamp <= time(NULL));
    assert_string_equal(call->credential, "default");
    assert_string_equal(call->caller, "local");
    assert_int_equal(call->identity, GW_IDENTITY_LISTENER);
    assert_int_equal(call->decision, GW_DECISION_ALLOW);
    assert_string_equal(call->statement, "allow-all.json#any");
    assert_null(call->snapshot); /* given back by the final stage */
    assert_string_equal(call->trace_id, "trace-123");
    assert_string_equal(call->request_client, "SDK_NODEJS_4.0");

    struct gw_tc3_request req = {.service = "gaap",
                                 .host = "gaap.tencentcloudapi.com",
                                 .timestamp = call->timestamp,
                                 .content_type = "application/json",
                                 .payload = (const unsigned char *)SEED,
                                 .payload_len = strlen(SEED)};
    struct gw_buf want;
    gw_buf_init(&want, GW_TC3_MAX_TEXT);
    assert_int_equal(
        gw_tc3_sign(SECRET_ID, (const unsigned char *)SECRET_KEY, strlen(SECRET_KEY), &req, &want),
        GW_OK);
    assert_string_equal(call->authorization.data, want.data);
    gw_buf_free(&want);

    /* Nothing listens there: the outcome is mapped to Tencent's format inside the pipeline. */
    assert_int_equal(call->outcome, GW_UPSTREAM_CONNECT);
    assert_string_equal(call->error_code, "InternalError.UpstreamUnreachable");
    assert_non_null(strstr(call->reply.body, "not sent"));
    assert_true(call->upstream_detail[0] != '\0');
    assert_null(strstr(call->reply.body, call->upstream_detail)); /* libcurl's words stay out */
    /* Every step's time was taken, in order. */
    assert_true(gw_call_ms(&call->times.received, &call->times.checked) >= 0);
    assert_true(gw_call_ms(&call->times.checked, &call->times.signed_at) >= 0);
    assert_true(gw_call_ms(&call->times.signed_at, &call->times.upstream_start) >= 0);
    assert_true(gw_call_ms(&call->times.upstream_start, &call->times.upstream_end) > 0);
    assert_true(gw_call_ms(&call->times.upstream_end, &call->times.answered) >= 0);
    assert_true(call->times.answered.tv_sec != 0);
    gw_call_free(call);
}

static void test_call_after_upstream_stop_is_not_sent(void **state)
{
    struct parts *p = *state;
    gw_upstream_stop(p->upstream);
    struct transport t = seed_transport(p, "DescribeProxies");
    struct gw_call *call = run(p, &t, "POST", "{\"Limit\": 1}");
    assert_int_equal(call->outcome, GW_UPSTREAM_NOT_SENT);
    assert_string_equal(call->error_code, "ServiceUnavailable");
    assert_non_null(strstr(call->error_message, "not sent"));
    assert_true(call->authorization.len > 0); /* signed, then refused by a stopped upstream */
    gw_call_free(call);
}

int main(void)
{
    if (sodium_init() < 0) {
        return 1;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_refusals_pass_the_final_stage_once_unsigned, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_connect_gets_405_with_allow, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_valid_call_is_signed_over_its_exact_bytes_and_forwarded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_call_after_upstream_stop_is_not_sent, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
