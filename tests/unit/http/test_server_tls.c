/*
 * Unit tests for server's listeners: what each call carries of its listener (accept,
 * unauthenticated_caller, listener_port) and, on HTTPS, of its client certificate (cert_name or
 * cert_error). A real server runs on a loop of its own thread; libcurl (OpenSSL) is the client;
 * the pipeline's record sink sees each call's inbound fields. Certificates are made at test time
 * (certs/gen-dev-certs.sh, tests/e2e/clientpki.py): without openssl or python3 the test skips.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/call.h"
#include "core/loop.h"
#include "http/peer.h"
#include "http/server.h"
#include "pipeline/pipeline.h"

#define MAX_PEM ((size_t)1 << 20)

static char dir[] = "/tmp/tcgw-server-tls-XXXXXX";

/* What the record sink saw of the last call. */
struct seen {
    pthread_mutex_t lock;
    int calls;
    unsigned accept;
    unsigned listener_port;
    char unauthenticated_caller[64];
    char cert_name[GW_PEER_NAME_MAX + 1];
    bool has_cert_name;
    const char *cert_error;
};

struct fixture {
    struct gw_loop *loop;
    struct gw_pipeline *pipeline;
    struct gw_server *plain;
    struct gw_server *tls;
    pthread_t thread;
    struct seen seen;
    CURL *curl;
    struct curl_slist *headers;
};

static void on_record(const struct gw_call *call, void *arg)
{
    struct seen *s = arg;
    pthread_mutex_lock(&s->lock);
    s->calls++;
    s->accept = call->in.accept;
    s->listener_port = call->in.listener_port;
    snprintf(s->unauthenticated_caller, sizeof s->unauthenticated_caller, "%s",
             call->in.unauthenticated_caller != NULL ? call->in.unauthenticated_caller : "");
    s->has_cert_name = call->in.cert_name != NULL;
    snprintf(s->cert_name, sizeof s->cert_name, "%s",
             call->in.cert_name != NULL ? call->in.cert_name : "");
    s->cert_error = call->in.cert_error;
    pthread_mutex_unlock(&s->lock);
}

static char *path_of(const char *name)
{
    static char paths[8][256];
    static int next;
    char *p = paths[next++ % 8];
    snprintf(p, 256, "%s/%s", dir, name);
    return p;
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *text = calloc(1, MAX_PEM + 1);
    assert_non_null(f);
    assert_non_null(text);
    size_t n = fread(text, 1, MAX_PEM, f);
    assert_true(n > 0 && n < MAX_PEM);
    fclose(f);
    return text;
}

static void *run(void *arg)
{
    struct fixture *fx = arg;
    if (gw_loop_run(fx->loop) != GW_OK) {
        fprintf(stderr, "loop failed\n");
    }
    return NULL;
}

static int make_certs(void)
{
    char cmd[1024];
    const char *src = getenv("TCGW_SOURCE_DIR");
    if (src == NULL) {
        src = "..";
    }
    if (system("command -v openssl >/dev/null && command -v python3 >/dev/null") != 0) {
        return 77;
    }
    snprintf(cmd, sizeof cmd,
             "bash %s/certs/gen-dev-certs.sh %s >/dev/null && python3 %s/tests/e2e/clientpki.py "
             "%s/pki >/dev/null",
             src, dir, src, dir);
    return system(cmd) == 0 ? 0 : -1;
}

static int setup(void **state)
{
    if (mkdtemp(dir) == NULL) {
        return -1;
    }
    int made = make_certs();
    if (made == 77) {
        exit(77);
    }
    if (made != 0 || curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        return -1;
    }
    struct fixture *fx = calloc(1, sizeof *fx);
    char msg[256] = "";
    pthread_mutex_init(&fx->seen.lock, NULL);
    struct gw_pipeline_parts parts = {
        .endpoint_suffix = "tencentcloudapi.com",
        .max_body_bytes = 4096,
        .max_response_bytes = 4096,
        .record = on_record,
        .record_arg = &fx->seen,
    };
    if (gw_loop_new(NULL, NULL, &fx->loop) != GW_OK ||
        (fx->pipeline = gw_pipeline_new(&parts)) == NULL) {
        return -1;
    }
    struct gw_server_options plain = {
        .address = "127.0.0.1",
        .port = 0,
        .max_connections = 64,
        .max_body_bytes = 4096,
        .max_response_bytes = 4096,
        .request_timeout_ms = 5000,
        .max_connections_per_address = 64,
        .accept = GW_ACCEPT_TOKEN | GW_ACCEPT_SDK_KEY,
        .unauthenticated_caller = "sidecar",
    };
    struct gw_server_options tls = plain;
    char *cert = read_text(path_of("server.pem"));
    char *key = read_text(path_of("server.key"));
    char *ca = read_text(path_of("pki/client-ca.pem"));
    tls.accept = GW_ACCEPT_CERT | GW_ACCEPT_TOKEN;
    tls.unauthenticated_caller = NULL;
    tls.tls_cert_pem = cert;
    tls.tls_key_pem = key;
    tls.tls_client_ca_pem = ca;
    if (gw_server_start(&plain, fx->loop, fx->pipeline, &fx->plain, msg, sizeof msg) != GW_OK ||
        gw_server_start(&tls, fx->loop, fx->pipeline, &fx->tls, msg, sizeof msg) != GW_OK) {
        fprintf(stderr, "%s\n", msg);
        return -1;
    }
    /* Read during start only: the caller may wipe them. */
    memset(cert, 'x', strlen(cert));
    memset(key, 'x', strlen(key));
    memset(ca, 'x', strlen(ca));
    free(cert);
    free(key);
    free(ca);
    const char *head[] = {"Host: gaap.tencentcloudapi.com", "Content-Type: application/json",
                          "X-TC-Action: DescribeProxies", "X-TC-Version: 2018-05-29"};
    for (size_t i = 0; i < sizeof head / sizeof head[0]; i++) {
        struct curl_slist *l = curl_slist_append(fx->headers, head[i]);
        if (l == NULL) {
            return -1;
        }
        fx->headers = l;
    }
    if (pthread_create(&fx->thread, NULL, run, fx) != 0 || (fx->curl = curl_easy_init()) == NULL) {
        return -1;
    }
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    char cmd[300];
    curl_easy_cleanup(fx->curl);
    curl_slist_free_all(fx->headers);
    gw_loop_stop(fx->loop);
    pthread_join(fx->thread, NULL);
    gw_server_stop(fx->tls);
    gw_server_stop(fx->plain);
    gw_pipeline_free(fx->pipeline);
    gw_loop_free(fx->loop);
    pthread_mutex_destroy(&fx->seen.lock);
    free(fx);
    curl_global_cleanup();
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static size_t discard(char *p, size_t size, size_t n, void *arg)
{
    (void)p;
    (void)arg;
    return size * n;
}

/*
 * One POST to the listener on port, presenting kind's certificate (NULL: none). fresh: on a new
 * connection. Returns the calls the record sink has seen so far.
 */
static int call(struct fixture *fx, uint16_t port, bool https, const char *kind, bool fresh)
{
    char url[64];
    char cert[256];
    char key[256];
    CURL *c = fx->curl;
    curl_easy_reset(c);
    snprintf(url, sizeof url, "%s://localhost:%u/", https ? "https" : "http", (unsigned)port);
    curl_easy_setopt(c, CURLOPT_URL, url);
    /* A call refused for its body (not JSON): read whole, so the connection stays open. */
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, "{");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, fx->headers);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(c, CURLOPT_CAINFO, path_of("ca.pem"));
    curl_easy_setopt(c, CURLOPT_FRESH_CONNECT, fresh ? 1L : 0L);
    if (kind != NULL) {
        /* A chain is sent from its bundle, signed with its leaf's key (see clientpki.py). */
        bool chain = strcmp(kind, "long") == 0 || strcmp(kind, "large") == 0;
        snprintf(cert, sizeof cert, "%s/pki/%s%s", dir, kind, chain ? "-chain.pem" : ".pem");
        snprintf(key, sizeof key, "%s/pki/%s%s", dir, kind, chain ? "_leaf.key" : ".key");
        curl_easy_setopt(c, CURLOPT_SSLCERT, cert);
        curl_easy_setopt(c, CURLOPT_SSLKEY, key);
    }
    curl_easy_setopt(c, CURLOPT_VERBOSE, getenv("TEST_VERBOSE") != NULL ? 1L : 0L);
    CURLcode res = curl_easy_perform(c);
    if (res != CURLE_OK) {
        fail_msg("curl: %s", curl_easy_strerror(res));
    }
    pthread_mutex_lock(&fx->seen.lock);
    int n = fx->seen.calls;
    pthread_mutex_unlock(&fx->seen.lock);
    return n;
}

static void test_plain_listener_fields(void **state)
{
    struct fixture *fx = *state;
    (void)call(fx, gw_server_port(fx->plain), false, NULL, true);
    assert_int_equal(fx->seen.accept, GW_ACCEPT_TOKEN | GW_ACCEPT_SDK_KEY);
    assert_int_equal(fx->seen.listener_port, gw_server_port(fx->plain));
    assert_string_equal(fx->seen.unauthenticated_caller, "sidecar");
    assert_false(fx->seen.has_cert_name);
    assert_null(fx->seen.cert_error);
}

static void expect_name(struct fixture *fx, const char *kind, const char *name)
{
    (void)call(fx, gw_server_port(fx->tls), true, kind, true);
    assert_int_equal(fx->seen.accept, GW_ACCEPT_CERT | GW_ACCEPT_TOKEN);
    assert_int_equal(fx->seen.listener_port, gw_server_port(fx->tls));
    assert_string_equal(fx->seen.unauthenticated_caller, "");
    if (fx->seen.cert_error != NULL) {
        fail_msg("%s refused: %s", kind, fx->seen.cert_error);
    }
    assert_true(fx->seen.has_cert_name);
    assert_string_equal(fx->seen.cert_name, name);
}

static void test_verified_names(void **state)
{
    struct fixture *fx = *state;
    assert_int_not_equal(gw_server_port(fx->tls), gw_server_port(fx->plain));
    expect_name(fx, "good", "spiffe://tcgw.test/mesh-bot"); /* not its CN, not-this-name */
    expect_name(fx, "cn_only", "cn-bot");
    /* The next call on the same connection carries the same judgement. */
    int before = fx->seen.calls;
    assert_int_equal(call(fx, gw_server_port(fx->tls), true, "cn_only", false), before + 1);
    assert_string_equal(fx->seen.cert_name, "cn-bot");
    long connects = -1;
    curl_easy_getinfo(fx->curl, CURLINFO_NUM_CONNECTS, &connects);
    assert_int_equal(connects, 0);
}

static void expect_refused(struct fixture *fx, const char *kind, const char *words)
{
    (void)call(fx, gw_server_port(fx->tls), true, kind, true);
    assert_false(fx->seen.has_cert_name);
    if (fx->seen.cert_error == NULL || strstr(fx->seen.cert_error, words) == NULL) {
        fail_msg("%s: cert_error \"%s\" lacks \"%s\"", kind ? kind : "no certificate",
                 fx->seen.cert_error ? fx->seen.cert_error : "(none)", words);
    }
}

static void test_refused_certificates(void **state)
{
    struct fixture *fx = *state;
    expect_refused(fx, NULL, "no client certificate was presented");
    expect_refused(fx, "expired", "has expired");
    expect_refused(fx, "not_yet", "not yet valid");
    expect_refused(fx, "server_only", "not for client authentication");
    expect_refused(fx, "wrong_ca", "not issued by a CA this listener trusts");
    expect_refused(fx, "self_signed", "is self-signed");
    expect_refused(fx, "long", "more than 8 certificates");
    expect_refused(fx, "large", "larger than 65536 bytes");
    /* And the listener still verifies the next one. */
    expect_name(fx, "good", "spiffe://tcgw.test/mesh-bot");
}

static void test_bad_material(void **state)
{
    struct fixture *fx = *state;
    char msg[256] = "";
    struct gw_server *srv = NULL;
    struct gw_loop *loop = NULL; /* not the running one: a server starts on its loop's thread */
    assert_int_equal(gw_loop_new(NULL, NULL, &loop), GW_OK);
    char *cert = read_text(path_of("server.pem"));
    char *key = read_text(path_of("client.key")); /* not the certificate's key */
    struct gw_server_options o = {
        .address = "127.0.0.1",
        .max_connections = 4,
        .max_connections_per_address = 4,
        .request_timeout_ms = 1000,
        .tls_cert_pem = cert,
        .tls_key_pem = key,
        .tls_client_ca_pem = cert,
    };
    assert_int_equal(gw_server_start(&o, loop, fx->pipeline, &srv, msg, sizeof msg),
                     GW_ERR_INVALID);
    assert_non_null(strstr(msg, "cert_file and key_file do not load"));
    assert_null(srv);
    free(key);
    key = read_text(path_of("server.key"));
    o.tls_key_pem = key;
    o.tls_client_ca_pem = "not a certificate";
    assert_int_equal(gw_server_start(&o, loop, fx->pipeline, &srv, msg, sizeof msg),
                     GW_ERR_INVALID);
    assert_non_null(strstr(msg, "client_ca_file holds no PEM certificate"));
    o.tls_client_ca_pem = NULL;
    assert_int_equal(gw_server_start(&o, loop, fx->pipeline, &srv, msg, sizeof msg),
                     GW_ERR_INVALID);
    assert_non_null(strstr(msg, "all needed"));
    free(cert);
    free(key);
    gw_loop_free(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_listener_fields),
        cmocka_unit_test(test_verified_names),
        cmocka_unit_test(test_refused_certificates),
        cmocka_unit_test(test_bad_material),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
