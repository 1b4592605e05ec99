/*
 * Unit tests for upstream: the outcomes of transfers that do not get an answer, and stopping.
 * Answered transfers over TLS are covered end to end (tests/e2e/test_gateway.py).
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
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "upstream/upstream.h"

/* A listener that never accepts: the kernel completes the TCP handshake, nobody answers TLS. */
static int silent_listener(uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 16), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

/* A port nothing listens on: bound, then closed. */
static uint16_t closed_port(void)
{
    uint16_t port;
    close(silent_listener(&port));
    return port;
}

struct waiter {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int done;
};

static void on_done(struct gw_call *call, void *arg)
{
    struct waiter *w = arg;
    (void)call;
    pthread_mutex_lock(&w->lock);
    w->done++;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

static void wait_done(struct waiter *w, int count)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 10;
    pthread_mutex_lock(&w->lock);
    while (w->done < count) {
        if (pthread_cond_timedwait(&w->cond, &w->lock, &deadline) != 0) {
            break;
        }
    }
    int done = w->done;
    pthread_mutex_unlock(&w->lock);
    assert_int_equal(done, count);
}

static struct gw_upstream *start(uint16_t port, long timeout_ms)
{
    static char entry[128];
    snprintf(entry, sizeof entry, "gaap.tencentcloudapi.com:443:127.0.0.1:%u", (unsigned)port);
    char *const connect_to[] = {entry, NULL};
    struct gw_upstream_options opts = {
        .connect_timeout_ms = timeout_ms,
        .timeout_ms = timeout_ms,
        .max_host_connections = 4,
        .connect_to = connect_to,
    };
    struct gw_upstream *up = NULL;
    char msg[128];
    assert_int_equal(gw_upstream_start(&opts, &up, msg, sizeof msg), GW_OK);
    return up;
}

static struct gw_call *signed_call(void)
{
    struct gw_call *call = gw_call_new(1024, 1024);
    assert_non_null(call);
    strcpy(call->host, "gaap.tencentcloudapi.com");
    strcpy(call->action, "DescribeProxies");
    strcpy(call->version, "2018-05-29");
    call->timestamp = 1700000000;
    assert_int_equal(gw_buf_append_str(&call->body, "{}"), GW_OK);
    assert_int_equal(gw_buf_append_str(&call->authorization, "TC3-HMAC-SHA256 test"), GW_OK);
    return call;
}

static struct waiter new_waiter(void)
{
    struct waiter w = {.done = 0};
    pthread_mutex_init(&w.lock, NULL);
    pthread_cond_init(&w.cond, NULL);
    return w;
}

static void test_refused_connection_is_unreachable(void **state)
{
    (void)state;
    struct waiter w = new_waiter();
    struct gw_upstream *up = start(closed_port(), 5000);
    struct gw_call *call = signed_call();
    assert_int_equal(gw_upstream_submit(up, call, on_done, &w), GW_OK);
    wait_done(&w, 1);
    assert_int_equal(call->outcome, GW_UPSTREAM_CONNECT);
    assert_true(call->upstream_detail[0] != '\0');
    assert_null(strchr(call->upstream_detail, '"'));
    gw_upstream_free(up);
    gw_call_free(call);
}

/* A TLS handshake that never completes is a connect-phase timeout: nothing was sent. */
static void test_silent_upstream_times_out_before_sending(void **state)
{
    (void)state;
    uint16_t port;
    int fd = silent_listener(&port);
    struct waiter w = new_waiter();
    struct gw_upstream *up = start(port, 300);
    struct gw_call *call = signed_call();
    assert_int_equal(gw_upstream_submit(up, call, on_done, &w), GW_OK);
    wait_done(&w, 1);
    assert_int_equal(call->outcome, GW_UPSTREAM_CONNECT);
    assert_non_null(strstr(call->upstream_detail, "timed out"));
    gw_upstream_free(up);
    gw_call_free(call);
    close(fd);
}

static void test_stop_ends_running_transfers_and_refuses_new_ones(void **state)
{
    (void)state;
    uint16_t port;
    int fd = silent_listener(&port);
    struct waiter w = new_waiter();
    struct gw_upstream *up = start(port, 30000);
    struct gw_call *calls[3];
    for (int i = 0; i < 3; i++) {
        calls[i] = signed_call();
        assert_int_equal(gw_upstream_submit(up, calls[i], on_done, &w), GW_OK);
    }
    struct timespec moment = {.tv_sec = 0, .tv_nsec = 200 * 1000 * 1000};
    nanosleep(&moment, NULL); /* the transfers are under way */
    gw_upstream_stop(up);
    wait_done(&w, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(calls[i]->outcome, GW_UPSTREAM_ABORTED);
    }
    /* After stop, submitting fails cleanly and never calls back. */
    struct gw_call *late = signed_call();
    assert_int_equal(gw_upstream_submit(up, late, on_done, &w), GW_ERR_STOPPED);
    gw_upstream_stop(up); /* a second stop does nothing */
    gw_upstream_free(up);
    assert_int_equal(w.done, 3);
    for (int i = 0; i < 3; i++) {
        gw_call_free(calls[i]);
    }
    gw_call_free(late);
    close(fd);
}

static void test_header_injection_is_refused(void **state)
{
    (void)state;
    struct waiter w = new_waiter();
    struct gw_upstream *up = start(closed_port(), 1000);
    struct gw_call *call = signed_call();
    strcpy(call->region, "ap-guangzhou\r\nX-Evil: 1");
    assert_int_equal(gw_upstream_submit(up, call, on_done, &w), GW_ERR_INVALID);
    gw_upstream_free(up);
    assert_int_equal(w.done, 0);
    gw_call_free(call);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refused_connection_is_unreachable),
        cmocka_unit_test(test_silent_upstream_times_out_before_sending),
        cmocka_unit_test(test_stop_ends_running_transfers_and_refuses_new_ones),
        cmocka_unit_test(test_header_injection_is_refused),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
