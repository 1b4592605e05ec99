/*
 * Unit tests for pipeline: the order of the stages, with the real parts (the shipped API
 * description, a vault in a temporary directory, the upstream thread aimed at a closed port).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/pipeline.h"

#define SECRET_ID "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE"
#define SECRET_KEY "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE"
#define SEED "{\"ProxyId\": \"link-4ftf12sb\", \"Concurrent\": \"2\", \"Bandwidth\": \"10\"}"

struct parts {
    char dir[64];
    struct gw_apispec *spec;
    struct gw_vault *vault;
    struct gw_upstream *upstream;
    struct gw_pipeline *pipeline;
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

static int setup(void **state)
{
    struct parts *p = calloc(1, sizeof *p);
    char path[128], key[128], store[128], msg[256];
    snprintf(p->dir, sizeof p->dir, "/tmp/tcgw-pipeline-XXXXXX");
    if (p == NULL || mkdtemp(p->dir) == NULL) {
        return -1;
    }
    const char *src = getenv("TCGW_SOURCE_DIR");
    snprintf(path, sizeof path, "%s/specs", src != NULL ? src : "..");
    snprintf(key, sizeof key, "%s/master.key", p->dir);
    snprintf(store, sizeof store, "%s/credentials.store", p->dir);
    if (gw_apispec_load_dir(path, &p->spec, msg, sizeof msg) != GW_OK ||
        gw_vault_keygen(key, msg, sizeof msg) != GW_OK ||
        gw_vault_open(key, store, &p->vault, msg, sizeof msg) != GW_OK ||
        gw_vault_put(p->vault, "default", SECRET_ID, strlen(SECRET_ID), SECRET_KEY,
                     strlen(SECRET_KEY), msg, sizeof msg) != GW_OK) {
        print_error("setup: %s\n", msg);
        return -1;
    }
    static char entry[96];
    snprintf(entry, sizeof entry, "gaap.tencentcloudapi.com:443:127.0.0.1:%u",
             (unsigned)closed_port());
    char *const connect_to[] = {entry, NULL};
    struct gw_upstream_options uo = {.connect_timeout_ms = 5000,
                                     .timeout_ms = 5000,
                                     .max_host_connections = 2,
                                     .connect_to = connect_to};
    if (gw_upstream_start(&uo, &p->upstream, msg, sizeof msg) != GW_OK) {
        return -1;
    }
    struct gw_pipeline_parts parts = {
        .spec = p->spec, .vault = p->vault, .credential = "default", .upstream = p->upstream};
    p->pipeline = gw_pipeline_new(&parts);
    unlink(key);
    rmdir(p->dir);
    *state = p;
    return p->pipeline == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    struct parts *p = *state;
    gw_upstream_free(p->upstream);
    gw_pipeline_free(p->pipeline);
    gw_vault_free(p->vault);
    gw_apispec_free(p->spec);
    free(p);
    return 0;
}

static struct gw_call *parsed_call(const char *action, const char *body)
{
    struct gw_call *call = gw_call_new(4096, 4096);
    assert_non_null(call);
    strcpy(call->service, "gaap");
    strcpy(call->host, "gaap.tencentcloudapi.com");
    strcpy(call->version, "2018-05-29");
    snprintf(call->action, sizeof call->action, "%s", action);
    assert_int_equal(gw_buf_append_str(&call->body, body), GW_OK);
    call->params = json_loads(body, 0, NULL);
    assert_non_null(call->params);
    return call;
}

static void test_valid_call_is_signed_over_its_exact_bytes(void **state)
{
    struct parts *p = *state;
    struct gw_call *call = parsed_call("ModifyProxyConfiguration", SEED);
    time_t before = time(NULL);
    assert_true(gw_pipeline_prepare(p->pipeline, call));
    assert_null(call->error_code);
    assert_true(call->timestamp >= before && call->timestamp <= time(NULL));

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
    gw_call_free(call);
}

static void test_invalid_call_is_refused_before_signing(void **state)
{
    struct parts *p = *state;
    struct gw_call *call = parsed_call("ModifyProxyConfiguration", "{\"ProxyId\": \"link-1\"}");
    assert_false(gw_pipeline_prepare(p->pipeline, call));
    assert_string_equal(call->error_code, "MissingParameter");
    assert_int_equal(call->authorization.len, 0); /* nothing was signed */
    gw_call_free(call);

    call = parsed_call("DescribeProxies", "{}");
    strcpy(call->version, "2017-01-01");
    assert_false(gw_pipeline_prepare(p->pipeline, call));
    assert_string_equal(call->error_code, "NoSuchVersion");
    assert_int_equal(call->authorization.len, 0);
    gw_call_free(call);
}

struct waiter {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool done;
};

static void on_done(struct gw_call *call, void *arg)
{
    struct waiter *w = arg;
    (void)call;
    pthread_mutex_lock(&w->lock);
    w->done = true;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

static void test_forwarded_call_comes_back_with_its_outcome(void **state)
{
    struct parts *p = *state;
    struct waiter w = {.done = false};
    pthread_mutex_init(&w.lock, NULL);
    pthread_cond_init(&w.cond, NULL);
    struct gw_call *call = parsed_call("DescribeProxies", "{\"Limit\": 1}");
    assert_true(gw_pipeline_prepare(p->pipeline, call));
    assert_int_equal(gw_pipeline_forward(p->pipeline, call, on_done, &w), GW_OK);
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 10;
    pthread_mutex_lock(&w.lock);
    while (!w.done && pthread_cond_timedwait(&w.cond, &w.lock, &deadline) == 0) {
    }
    bool done = w.done;
    pthread_mutex_unlock(&w.lock);
    assert_true(done);
    assert_int_equal(call->outcome, GW_UPSTREAM_CONNECT); /* nothing listens there */
    gw_call_free(call);
}

static void test_forward_after_stop_is_service_unavailable(void **state)
{
    struct parts *p = *state;
    struct gw_call *call = parsed_call("DescribeProxies", "{\"Limit\": 1}");
    assert_true(gw_pipeline_prepare(p->pipeline, call));
    gw_upstream_stop(p->upstream);
    assert_int_equal(gw_pipeline_forward(p->pipeline, call, on_done, NULL), GW_ERR_STOPPED);
    assert_string_equal(call->error_code, "ServiceUnavailable");
    assert_non_null(strstr(call->error_message, "not sent"));
    gw_call_free(call);
}

int main(void)
{
    if (sodium_init() < 0) {
        return 1;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_call_is_signed_over_its_exact_bytes),
        cmocka_unit_test(test_invalid_call_is_refused_before_signing),
        cmocka_unit_test(test_forwarded_call_comes_back_with_its_outcome),
        cmocka_unit_test(test_forward_after_stop_is_service_unavailable), /* stops: last */
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    curl_global_cleanup();
    return rc;
}
