/*
 * Unit tests for upstream: start-up checks, the outcomes of transfers that do not get an answer,
 * stopping, and at-most-once sending against the GAAP simulator (tests/sim) in a fault mode.
 * Answered transfers through the whole gateway are covered end to end (tests/e2e).
 *
 * The simulator tests need $TCGW_SIM_BIN (ctest sets it) and skip without it.
 */
#define _XOPEN_SOURCE 700 /* nftw */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/loop.h"
#include "upstream/upstream.h"

extern char **environ;

#define DEADLINE_MS 10000
#define SIM_SECRET_ID "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE"
#define SIM_SECRET_KEY "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE"

/* The group's scratch directory, and the dev PKI made in it when the simulator is available. */
static char workdir[] = "/tmp/tcgw-upstream-XXXXXX";
static char ca_file[256];
static bool have_sim;

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Runs argv to completion; true when it exited 0. */
static bool run(char *const argv[])
{
    pid_t pid;
    int status;
    if (posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ) != 0 ||
        waitpid(pid, &status, 0) != pid) {
        return false;
    }
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    assert_true(fd >= 0);
    size_t n = strlen(text);
    assert_int_equal(write(fd, text, n), (ssize_t)n);
    assert_int_equal(close(fd), 0);
}

static int group_setup(void **state)
{
    (void)state;
    if (mkdtemp(workdir) == NULL) {
        return -1;
    }
    if (getenv("TCGW_SIM_BIN") == NULL) {
        return 0;
    }
    /* ctest runs unit tests in tests/; the repository root is one level up. */
    const char *src = getenv("TCGW_SOURCE_DIR");
    char script[512], certs[300], creds[300];
    snprintf(script, sizeof script, "%s/certs/gen-dev-certs.sh", src != NULL ? src : "..");
    snprintf(certs, sizeof certs, "%s/certs", workdir);
    char *const argv[] = {"bash", script, certs, NULL};
    if (!run(argv)) {
        fprintf(stderr, "cannot make the dev PKI with %s\n", script);
        return -1;
    }
    snprintf(ca_file, sizeof ca_file, "%s/certs/ca.pem", workdir);
    snprintf(creds, sizeof creds, "%s/sim-credentials.json", workdir);
    int fd = open(creds, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || dprintf(fd, "{\"%s\": \"%s\"}", SIM_SECRET_ID, SIM_SECRET_KEY) < 0 ||
        close(fd) != 0) {
        return -1;
    }
    have_sim = true;
    return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int group_teardown(void **state)
{
    (void)state;
    return nftw(workdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- the simulator ---------------------------------------------------------------------- */

struct sim {
    pid_t pid; /* 0: not running */
    uint16_t port;
    char records[300];
};

/* Starts tcgw-sim on a free port, in the fault mode given (or none). */
static void sim_start(struct sim *s, const char *fault)
{
    const char *src = getenv("TCGW_SOURCE_DIR");
    char cert[300], key[300], fixture[512], creds[300];
    snprintf(cert, sizeof cert, "%s/certs/server.pem", workdir);
    snprintf(key, sizeof key, "%s/certs/server.key", workdir);
    snprintf(fixture, sizeof fixture, "%s/tests/sim/fixture.json", src != NULL ? src : "..");
    snprintf(creds, sizeof creds, "%s/sim-credentials.json", workdir);
    snprintf(s->records, sizeof s->records, "%s/sim-records.jsonl", workdir);
    write_file(s->records, "", 0600);
    char *argv[] = {getenv("TCGW_SIM_BIN"),
                    "--port",
                    "0",
                    "--cert",
                    cert,
                    "--key",
                    key,
                    "--fixture",
                    fixture,
                    "--credentials",
                    creds,
                    "--records",
                    s->records,
                    "--rate-limit",
                    "0",
                    fault != NULL ? "--fault" : NULL,
                    (char *)fault,
                    NULL};

    int out[2];
    assert_int_equal(pipe(out), 0);
    posix_spawn_file_actions_t fa;
    assert_int_equal(posix_spawn_file_actions_init(&fa), 0);
    assert_int_equal(posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO), 0);
    assert_int_equal(posix_spawn_file_actions_addclose(&fa, out[0]), 0);
    assert_int_equal(posix_spawn(&s->pid, argv[0], &fa, NULL, argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    close(out[1]);

    /* Ready once it prints "listening on 127.0.0.1:PORT". */
    char line[128] = "";
    size_t len = 0;
    long deadline = now_ms() + DEADLINE_MS;
    while (strchr(line, '\n') == NULL && len < sizeof line - 1) {
        struct pollfd p = {.fd = out[0], .events = POLLIN};
        long left = deadline - now_ms();
        assert_true(left > 0 && poll(&p, 1, (int)left) == 1);
        ssize_t n = read(out[0], line + len, sizeof line - 1 - len);
        assert_true(n > 0);
        len += (size_t)n;
        line[len] = '\0';
    }
    close(out[0]);
    unsigned port = 0;
    assert_int_equal(sscanf(line, "listening on 127.0.0.1:%u", &port), 1);
    s->port = (uint16_t)port;
}

/* SIGTERM; true when it exited 0 (sanitizer reports would make it nonzero). */
static bool sim_stop(struct sim *s)
{
    int status = 0;
    pid_t pid = s->pid;
    s->pid = 0;
    return pid == 0 || (kill(pid, SIGTERM) == 0 && waitpid(pid, &status, 0) == pid &&
                        WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* Per-test fixtures: a simulator, plain or in a fault mode. The teardown stops it even when the
 * test failed half-way. */
static int setup_sim_with(void **state, const char *fault)
{
    static struct sim sim;
    sim = (struct sim){.pid = 0};
    if (have_sim) {
        sim_start(&sim, fault);
    }
    *state = &sim;
    return 0;
}

static int setup_sim(void **state)
{
    return setup_sim_with(state, NULL);
}

/* The second request on each connection is read in full, then the connection is closed. */
static int setup_sim_closing_second(void **state)
{
    return setup_sim_with(state, "close-after-read=2");
}

static int teardown_sim(void **state)
{
    return sim_stop(*state) ? 0 : -1;
}

/* The test's simulator, or a skip when there is none. */
static struct sim *test_sim(void **state)
{
    struct sim *s = *state;
    if (s->pid == 0) {
        skip();
    }
    return s;
}

/* The records of requests whose body is exactly body (new array). */
static json_t *sim_records_with_body(const struct sim *s, const char *body)
{
    json_t *found = json_array();
    FILE *f = fopen(s->records, "r");
    assert_non_null(f);
    char line[16384];
    while (fgets(line, sizeof line, f) != NULL) {
        json_error_t jerr;
        json_t *rec = json_loads(line, 0, &jerr);
        assert_non_null(rec);
        const char *b = json_string_value(json_object_get(rec, "body"));
        if (b != NULL && strcmp(b, body) == 0) {
            json_array_append(found, rec);
        }
        json_decref(rec);
    }
    fclose(f);
    return found;
}

/* ---- local sockets ---------------------------------------------------------------------- */

/* A listener that accepts nothing by itself: the kernel completes the TCP handshake. */
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

/* Accepts n connections within the deadline, so their transfers are known to be under way. */
static void accept_connections(int listener, int *fds, int n)
{
    long deadline = now_ms() + DEADLINE_MS;
    for (int i = 0; i < n; i++) {
        struct pollfd p = {.fd = listener, .events = POLLIN};
        long left = deadline - now_ms();
        if (left <= 0 || poll(&p, 1, (int)left) != 1) {
            fail_msg("only %d of %d transfers connected within %d ms", i, n, DEADLINE_MS);
        }
        fds[i] = accept(listener, NULL, NULL);
        assert_true(fds[i] >= 0);
    }
}

/* ---- the upstream ----------------------------------------------------------------------- */

/* Every upstream of these tests runs on this loop, driven by the test's own thread. */
static struct gw_loop *loop;

struct waiter {
    int done;
    int target;
};

static void on_done(struct gw_call *call, void *arg)
{
    struct waiter *w = arg;
    (void)call;
    w->done++;
    if (w->done >= w->target) {
        gw_loop_stop(loop);
    }
}

static void stop_loop(void *arg)
{
    (void)arg;
    gw_loop_stop(loop);
}

/* Runs the loop until stopped, or for at most ms. */
static void run_loop_for(long ms)
{
    struct gw_loop_timer *t = gw_loop_timer_new(loop, stop_loop, NULL);
    assert_non_null(t);
    gw_loop_timer_set(t, ms);
    assert_int_equal(gw_loop_run(loop), GW_OK);
    gw_loop_timer_free(t);
}

/* Runs the loop until count calls on w are done (or the test deadline passes). */
static void wait_done(struct waiter *w, int count)
{
    w->target = count;
    if (w->done < count) {
        run_loop_for(DEADLINE_MS);
    }
    w->target = INT_MAX;
    assert_int_equal(w->done, count);
}

static struct waiter new_waiter(void)
{
    struct waiter w = {.done = 0, .target = INT_MAX}; /* stops the loop only when waited for */
    return w;
}

static struct gw_upstream *start_capped(char *const *connect_to, const char *ca, long timeout_ms,
                                        unsigned max_host_connections)
{
    struct gw_upstream_options opts = {
        .ca_file = ca,
        .connect_timeout_ms = timeout_ms,
        .timeout_ms = timeout_ms,
        .max_host_connections = max_host_connections,
        .max_in_flight = 64,
        .connect_to = connect_to,
    };
    struct gw_upstream *up = NULL;
    char msg[512] = "";
    if (gw_upstream_new(&opts, loop, &up, msg, sizeof msg) != GW_OK) {
        fail_msg("gw_upstream_new: %s", msg);
    }
    return up;
}

static struct gw_upstream *start_with_list(char *const *connect_to, const char *ca, long timeout_ms)
{
    return start_capped(connect_to, ca, timeout_ms, 4);
}

static struct gw_upstream *start_with(const char *connect_to_entry, const char *ca, long timeout_ms)
{
    static char entry[256];
    snprintf(entry, sizeof entry, "%s", connect_to_entry);
    char *const connect_to[] = {entry, NULL};
    return start_with_list(connect_to, ca, timeout_ms);
}

static struct gw_upstream *start(uint16_t port, const char *ca, long timeout_ms)
{
    char entry[128];
    snprintf(entry, sizeof entry, "gaap.tencentcloudapi.com:443:127.0.0.1:%u", (unsigned)port);
    return start_with(entry, ca, timeout_ms);
}

static struct gw_call *signed_call_with(const char *body)
{
    struct gw_call *call = gw_call_new(1024, 1024);
    assert_non_null(call);
    strcpy(call->host, "gaap.tencentcloudapi.com");
    strcpy(call->action, "DescribeProxies");
    strcpy(call->version, "2018-05-29");
    call->timestamp = 1700000000;
    assert_int_equal(gw_buf_append(&call->body, body, strlen(body)), GW_OK);
    assert_int_equal(gw_buf_append_str(&call->authorization, "TC3-HMAC-SHA256 test"), GW_OK);
    return call;
}

static struct gw_call *signed_call(void)
{
    return signed_call_with("{}");
}

/* Submits call and waits for its done callback, the nth on w. */
static void send_and_wait(struct gw_upstream *up, struct gw_call *call, struct waiter *w, int nth)
{
    assert_int_equal(gw_upstream_submit(up, call, on_done, w), GW_OK);
    wait_done(w, nth);
}

/* ---- transfers that get no answer -------------------------------------------------------- */

static void test_refused_connection_is_unreachable(void **state)
{
    (void)state;
    struct waiter w = new_waiter();
    struct gw_upstream *up = start(closed_port(), NULL, 5000);
    struct gw_call *call = signed_call();
    send_and_wait(up, call, &w, 1);
    assert_int_equal(call->outcome, GW_UPSTREAM_CONNECT);
    assert_true(call->upstream_detail[0] != '\0');
    assert_null(strchr(call->upstream_detail, '"'));
    gw_upstream_free(up);
    gw_call_free(call);
}

/* A name that does not resolve: nothing was sent (or, with no DNS at all, a connect timeout). */
static void test_unresolvable_host_is_not_sent(void **state)
{
    (void)state;
    struct waiter w = new_waiter();
    struct gw_upstream *up =
        start_with("gaap.tencentcloudapi.com:443:tcgw-test.invalid:443", NULL, 5000);
    struct gw_call *call = signed_call();
    send_and_wait(up, call, &w, 1);
    assert_int_equal(call->outcome, GW_UPSTREAM_CONNECT);
    assert_true(call->upstream_detail[0] != '\0');
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
    struct gw_upstream *up = start(port, NULL, 300);
    struct gw_call *call = signed_call();
    send_and_wait(up, call, &w, 1);
    assert_int_equal(call->outcome, GW_UPSTREAM_CONNECT);
    /* curl words it by the timer that fires first: the transfer's or the TLS handshake's. */
    if (strstr(call->upstream_detail, "timed out") == NULL &&
        strstr(call->upstream_detail, "timeout") == NULL) {
        fail_msg("not a timeout: %s", call->upstream_detail);
    }
    gw_upstream_free(up);
    gw_call_free(call);
    close(fd);
}

/*
 * A call that waits for a free connection ends by its own timeout. libcurl 7.88 alone does not
 * check the timeout of a transfer waiting for a connection: here the second call, allowed 300 ms,
 * would wait until the first call's 3 s timeout freed the only connection.
 */
static void test_a_call_waiting_for_a_connection_ends_by_its_own_timeout(void **state)
{
    (void)state;
    uint16_t port;
    int fd = silent_listener(&port);
    char entry[128];
    snprintf(entry, sizeof entry, "gaap.tencentcloudapi.com:443:127.0.0.1:%u", (unsigned)port);
    char *const connect_to[] = {entry, NULL};
    struct gw_upstream *up = start_capped(connect_to, NULL, 3000, 1);
    struct waiter first_done = new_waiter(), second_done = new_waiter();
    struct gw_call *first = signed_call();
    struct gw_call *second = signed_call();
    second->retry.timeout_ms = 300;

    assert_int_equal(gw_upstream_submit(up, first, on_done, &first_done), GW_OK);
    run_loop_for(100); /* the first call holds the one connection, in its TLS handshake */
    assert_int_equal(gw_upstream_submit(up, second, on_done, &second_done), GW_OK);
    long started = now_ms();
    wait_done(&second_done, 1);
    long took = now_ms() - started;
    assert_int_equal(first_done.done, 0);
    if (took > 2000) {
        fail_msg("the call allowed 300 ms ended after %ld ms", took);
    }
    assert_int_equal(second->outcome, GW_UPSTREAM_CONNECT); /* never sent: safe to retry */
    assert_non_null(strstr(second->upstream_detail, "before the request was sent"));

    wait_done(&first_done, 1);
    assert_int_equal(first->outcome, GW_UPSTREAM_CONNECT);
    gw_upstream_free(up);
    gw_call_free(first);
    gw_call_free(second);
    close(fd);
}

/*
 * libcurl closes a socket that never finished connecting with a plain close() and tells the
 * loop afterwards, so its descriptor can come back at once as another socket (here the resolver's
 * socketpair for a name). The loop must watch the new one as libcurl asks, or that worker's
 * transfers would never end: a connect timeout, then a call that needs a name resolved, then one
 * more call, each ending on time.
 */
static void test_a_socket_closed_while_connecting_does_not_stall_the_loop(void **state)
{
    (void)state;
    /* A listener whose backlog is full: connection attempts to it time out. */
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_int_equal(bind(listener, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(listener, 0), 0);
    assert_int_equal(getsockname(listener, (struct sockaddr *)&a, &len), 0);
    int fillers[4];
    for (int i = 0; i < 4; i++) {
        fillers[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        (void)connect(fillers[i], (struct sockaddr *)&a, sizeof a);
    }
    usleep(100000);
    char blackhole[128], by_name[128];
    snprintf(blackhole, sizeof blackhole, "blackhole.test:443:127.0.0.1:%u",
             (unsigned)ntohs(a.sin_port));
    snprintf(by_name, sizeof by_name, "gaap.tencentcloudapi.com:443:tcgw-test.invalid:%u",
             (unsigned)ntohs(a.sin_port));
    char *const connect_to[] = {blackhole, by_name, NULL};
    struct gw_upstream *up = start_with_list(connect_to, NULL, 300);
    struct waiter w = new_waiter();
    struct gw_call *first = signed_call();
    strcpy(first->host, "blackhole.test");
    struct gw_call *second = signed_call();
    struct gw_call *third = signed_call();
    strcpy(third->host, "blackhole.test");

    send_and_wait(up, first, &w, 1);
    assert_int_equal(first->outcome, GW_UPSTREAM_CONNECT);
    send_and_wait(up, second, &w, 2);
    assert_int_equal(second->outcome, GW_UPSTREAM_CONNECT);
    assert_int_equal(gw_upstream_in_flight(up), 0);
    send_and_wait(up, third, &w, 3);
    assert_int_equal(third->outcome, GW_UPSTREAM_CONNECT);

    gw_upstream_free(up);
    gw_call_free(first);
    gw_call_free(second);
    gw_call_free(third);
    for (int i = 0; i < 4; i++) {
        close(fillers[i]);
    }
    close(listener);
}

static void test_stop_ends_running_transfers_and_refuses_new_ones(void **state)
{
    (void)state;
    uint16_t port;
    int fd = silent_listener(&port);
    struct waiter w = new_waiter();
    struct gw_upstream *up = start(port, NULL, 30000);
    struct gw_call *calls[3];
    for (int i = 0; i < 3; i++) {
        calls[i] = signed_call();
        assert_int_equal(gw_upstream_submit(up, calls[i], on_done, &w), GW_OK);
    }
    /* The transfers start; the first connects and says hello, the others wait to learn whether
     * it speaks HTTP/2 (CURLOPT_PIPEWAIT): all three are under way, none merely queued. */
    int conns[1];
    run_loop_for(300);
    accept_connections(fd, conns, 1);
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
    close(conns[0]);
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
    struct gw_upstream *up = start(closed_port(), NULL, 1000);
    struct gw_call *call = signed_call();
    strcpy(call->region, "ap-guangzhou\r\nX-Evil: 1");
    assert_int_equal(gw_upstream_submit(up, call, on_done, &w), GW_ERR_INVALID);
    gw_upstream_free(up);
    assert_int_equal(w.done, 0);
    gw_call_free(call);
}

/* ---- what goes on the wire -------------------------------------------------------------- */

/* The signed headers, the X-TC-* ones, the caller's tracing headers when given, and no others. */
static void test_headers_sent_are_the_call_s_own(void **state)
{
    struct sim *sim = test_sim(state);
    struct waiter w = new_waiter();
    struct gw_upstream *up = start(sim->port, ca_file, DEADLINE_MS);
    struct gw_call *traced = signed_call_with("{\"Call\":1}");
    struct gw_call *plain = signed_call_with("{\"Call\":2}");
    strcpy(traced->region, "ap-guangzhou");
    strcpy(traced->trace_id, "5fe0c1e2-trace");
    strcpy(traced->request_client, "SDK_NODEJS_4.1.0");
    send_and_wait(up, traced, &w, 1);
    send_and_wait(up, plain, &w, 2);
    assert_int_equal(traced->outcome, GW_UPSTREAM_ANSWERED);
    assert_int_equal(plain->outcome, GW_UPSTREAM_ANSWERED);

    static const char *const expected[] = {
        "host",         "content-type",   "content-length", "authorization", "x-tc-action",
        "x-tc-version", "x-tc-timestamp", "x-tc-region",    "x-tc-traceid",  "x-tc-requestclient",
    };
    json_t *got = sim_records_with_body(sim, "{\"Call\":1}");
    json_t *headers = json_object_get(json_array_get(got, 0), "headers");
    assert_int_equal(json_object_size(headers), sizeof expected / sizeof expected[0]);
    for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++) {
        if (json_object_get(headers, expected[i]) == NULL) {
            fail_msg("the %s header was not sent", expected[i]);
        }
    }
    assert_string_equal(json_string_value(json_object_get(headers, "x-tc-traceid")),
                        "5fe0c1e2-trace");
    assert_string_equal(json_string_value(json_object_get(headers, "x-tc-requestclient")),
                        "SDK_NODEJS_4.1.0");
    assert_string_equal(json_string_value(json_object_get(headers, "authorization")),
                        "TC3-HMAC-SHA256 test");
    json_decref(got);

    /* None are made up. */
    got = sim_records_with_body(sim, "{\"Call\":2}");
    headers = json_object_get(json_array_get(got, 0), "headers");
    assert_null(json_object_get(headers, "x-tc-traceid"));
    assert_null(json_object_get(headers, "x-tc-requestclient"));
    assert_null(json_object_get(headers, "x-tc-region"));
    json_decref(got);

    gw_upstream_free(up);
    gw_call_free(traced);
    gw_call_free(plain);
}

/* ---- at most once ------------------------------------------------------------------------ */

/*
 * The simulator answers the first call on a kept-alive connection, then reads the second in full
 * and closes without answering. Tencent may have applied that call: the gateway must not send it
 * again on its own, and must say it may have been applied.
 */
static void test_a_call_read_but_unanswered_is_never_sent_again(void **state)
{
    struct sim *sim = test_sim(state);
    struct waiter w = new_waiter();
    struct gw_upstream *up = start(sim->port, ca_file, DEADLINE_MS);
    struct gw_call *first = signed_call_with("{\"Call\":1}");
    struct gw_call *second = signed_call_with("{\"Call\":2}");
    struct gw_call *third = signed_call_with("{\"Call\":3}");

    send_and_wait(up, first, &w, 1);
    assert_int_equal(first->outcome, GW_UPSTREAM_ANSWERED);
    assert_int_equal(first->http_status, 200);
    send_and_wait(up, second, &w, 2);

    json_t *got = sim_records_with_body(sim, "{\"Call\":2}");
    if (json_array_size(got) != 1) {
        fail_msg("the simulator received the second call %zu times, not once",
                 json_array_size(got));
    }
    assert_string_equal(json_string_value(json_object_get(json_array_get(got, 0), "fault")),
                        "close-after-read");
    json_decref(got);
    assert_int_equal(second->outcome, GW_UPSTREAM_FAILED);
    assert_true(second->upstream_detail[0] != '\0');

    /* The dead connection is gone from the cache: the next call goes out on a new one. */
    send_and_wait(up, third, &w, 3);
    assert_int_equal(third->outcome, GW_UPSTREAM_ANSWERED);

    /* The body went with its length, not chunked, so the server knows where the call ends. */
    got = sim_records_with_body(sim, "{\"Call\":1}");
    assert_int_equal(json_array_size(got), 1);
    json_t *headers = json_object_get(json_array_get(got, 0), "headers");
    assert_string_equal(json_string_value(json_object_get(headers, "content-length")), "10");
    assert_null(json_object_get(headers, "transfer-encoding"));
    json_decref(got);

    gw_upstream_free(up);
    gw_call_free(first);
    gw_call_free(second);
    gw_call_free(third);
}

/*
 * An empty body leaves curl nothing to rewind, so curl would happily send it again on a new
 * connection: it must still go out at most once, and be reported as possibly applied.
 */
static void test_an_empty_body_is_never_sent_again(void **state)
{
    struct sim *sim = test_sim(state);
    struct waiter w = new_waiter();
    struct gw_upstream *up = start(sim->port, ca_file, DEADLINE_MS);
    struct gw_call *first = signed_call_with("{\"Call\":1}");
    struct gw_call *empty = signed_call_with("");

    send_and_wait(up, first, &w, 1);
    assert_int_equal(first->outcome, GW_UPSTREAM_ANSWERED);
    send_and_wait(up, empty, &w, 2);
    json_t *got = sim_records_with_body(sim, "");
    if (json_array_size(got) != 1) {
        fail_msg("the simulator received the empty call %zu times, not once", json_array_size(got));
    }
    assert_string_equal(json_string_value(json_object_get(json_array_get(got, 0), "fault")),
                        "close-after-read");
    json_decref(got);
    assert_int_equal(empty->outcome, GW_UPSTREAM_FAILED);

    gw_upstream_free(up);
    gw_call_free(first);
    gw_call_free(empty);
}

/* ---- start-up checks --------------------------------------------------------------------- */

/* gw_upstream_new must refuse, leave *out alone, and write a message holding each of words. */
static void expect_start_refused(const char *ca, const char *connect_to, const char *resolve,
                                 const char *word1, const char *word2)
{
    char ct[256], rs[256];
    char *const ct_list[] = {ct, NULL};
    char *const rs_list[] = {rs, NULL};
    snprintf(ct, sizeof ct, "%s", connect_to != NULL ? connect_to : "");
    snprintf(rs, sizeof rs, "%s", resolve != NULL ? resolve : "");
    struct gw_upstream_options opts = {
        .ca_file = ca,
        .connect_timeout_ms = 1000,
        .timeout_ms = 1000,
        .max_host_connections = 4,
        .connect_to = connect_to != NULL ? ct_list : NULL,
        .resolve = resolve != NULL ? rs_list : NULL,
    };
    struct gw_upstream *up = (struct gw_upstream *)&opts; /* a sentinel: must stay untouched */
    char msg[512] = "";
    assert_int_equal(gw_upstream_new(&opts, loop, &up, msg, sizeof msg), GW_ERR_INVALID);
    assert_ptr_equal(up, (struct gw_upstream *)&opts);
    if (strstr(msg, word1) == NULL || strstr(msg, word2) == NULL) {
        fail_msg("message \"%s\" lacks \"%s\" or \"%s\"", msg, word1, word2);
    }
}

static void expect_start_accepted(const char *ca, const char *connect_to, const char *resolve)
{
    char ct[256], rs[256];
    char *const ct_list[] = {ct, NULL};
    char *const rs_list[] = {rs, NULL};
    snprintf(ct, sizeof ct, "%s", connect_to != NULL ? connect_to : "");
    snprintf(rs, sizeof rs, "%s", resolve != NULL ? resolve : "");
    struct gw_upstream_options opts = {
        .ca_file = ca,
        .connect_timeout_ms = 1000,
        .timeout_ms = 1000,
        .max_host_connections = 4,
        .connect_to = connect_to != NULL ? ct_list : NULL,
        .resolve = resolve != NULL ? rs_list : NULL,
    };
    struct gw_upstream *up = NULL;
    char msg[512] = "";
    if (gw_upstream_new(&opts, loop, &up, msg, sizeof msg) != GW_OK) {
        fail_msg("refused: %s", msg);
    }
    gw_upstream_free(up);
}

static void test_start_refuses_a_bad_ca_file(void **state)
{
    (void)state;
    char path[300];

    snprintf(path, sizeof path, "%s/missing.pem", workdir);
    expect_start_refused(path, NULL, NULL, path, "No such file");

    expect_start_refused(workdir, NULL, NULL, workdir, "not a regular file");

    snprintf(path, sizeof path, "%s/empty.pem", workdir);
    write_file(path, "", 0644);
    expect_start_refused(path, NULL, NULL, path, "no certificate");

    snprintf(path, sizeof path, "%s/garbage.pem", workdir);
    write_file(path, "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n",
               0644);
    expect_start_refused(path, NULL, NULL, path, "no certificate");

    snprintf(path, sizeof path, "%s/unreadable.pem", workdir);
    write_file(path, "", 0000);
    if (geteuid() != 0) { /* root reads it anyway */
        expect_start_refused(path, NULL, NULL, path, "cannot be read");
    }

    if (have_sim) {
        expect_start_accepted(ca_file, NULL, NULL);
    }
}

static void test_start_refuses_a_bad_connect_to_entry(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "gaap.tencentcloudapi.com:443:127.0.0.1",
        "gaap.tencentcloudapi.com:443:127.0.0.1:9443:1",
        "gaap.tencentcloudapi.com:https:127.0.0.1:9443",
        "gaap.tencentcloudapi.com:443:127.0.0.1:70000",
        "gaap.tencentcloudapi.com:443:127.0.0.1:0",
        "gaap.tencentcloudapi.com:443:[::1:9443",
        "gaap.tencentcloudapi.com:443:[not-an-ip]:9443",
        "gaap.tencentcloudapi.com:443:bad host:9443",
        "gaap.tencentcloudapi.com 443 127.0.0.1 9443",
        "",
    };
    /* Quoted back on one line, whatever the entry holds. */
    expect_start_refused(NULL, "gaap\n:443:127.0.0.1:9443", NULL,
                         "\"gaap?:443:", "HOST:PORT:CONNECT-TO-HOST:CONNECT-TO-PORT");
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        expect_start_refused(NULL, bad[i], NULL, bad[i],
                             "HOST:PORT:CONNECT-TO-HOST:CONNECT-TO-PORT");
    }
    /* Empty fields mean "any host or port" or "unchanged", as libcurl documents. */
    expect_start_accepted(NULL, "gaap.tencentcloudapi.com:443:[::1]:9443", NULL);
    expect_start_accepted(NULL, "::127.0.0.1:9443", NULL);
    expect_start_accepted(NULL, "gaap.tencentcloudapi.com:443::", NULL);
}

static void test_start_refuses_a_bad_resolve_entry(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "gaap.tencentcloudapi.com:443",
        "gaap.tencentcloudapi.com:443:localhost",
        "gaap.tencentcloudapi.com:443:127.0.0.1,gaap.example",
        "gaap.tencentcloudapi.com:443:127.0.0.1,",
        "gaap.tencentcloudapi.com:443:",
        "gaap.tencentcloudapi.com::127.0.0.1",
        "gaap.tencentcloudapi.com:0:127.0.0.1",
        ":443:127.0.0.1",
        "-gaap.tencentcloudapi.com:443",
        "gaap.tencentcloudapi.com:443:[::1",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        expect_start_refused(NULL, NULL, bad[i], bad[i], "[+]HOST:PORT:ADDRESS[,ADDRESS]");
    }
    expect_start_accepted(NULL, NULL, "gaap.tencentcloudapi.com:443:127.0.0.1");
    expect_start_accepted(NULL, NULL, "+gaap.tencentcloudapi.com:443:127.0.0.1,[::1],::2");
    expect_start_accepted(NULL, NULL, "*:443:192.0.2.1");
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (gw_loop_new(NULL, NULL, &loop) != GW_OK) {
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refused_connection_is_unreachable),
        cmocka_unit_test(test_unresolvable_host_is_not_sent),
        cmocka_unit_test(test_silent_upstream_times_out_before_sending),
        cmocka_unit_test(test_a_call_waiting_for_a_connection_ends_by_its_own_timeout),
        cmocka_unit_test(test_a_socket_closed_while_connecting_does_not_stall_the_loop),
        cmocka_unit_test(test_stop_ends_running_transfers_and_refuses_new_ones),
        cmocka_unit_test(test_header_injection_is_refused),
        cmocka_unit_test_setup_teardown(test_headers_sent_are_the_call_s_own, setup_sim,
                                        teardown_sim),
        cmocka_unit_test_setup_teardown(test_a_call_read_but_unanswered_is_never_sent_again,
                                        setup_sim_closing_second, teardown_sim),
        cmocka_unit_test_setup_teardown(test_an_empty_body_is_never_sent_again,
                                        setup_sim_closing_second, teardown_sim),
        cmocka_unit_test(test_start_refuses_a_bad_ca_file),
        cmocka_unit_test(test_start_refuses_a_bad_connect_to_entry),
        cmocka_unit_test(test_start_refuses_a_bad_resolve_entry),
    };
    int rc = cmocka_run_group_tests(tests, group_setup, group_teardown);
    gw_loop_free(loop);
    curl_global_cleanup();
    return rc;
}
