/*
 * tcgw-bench-curl: libcurl alone, doing the upstream half of tcgw's work and nothing else, the
 * way tcgw drives it: one thread, epoll and curl_multi_socket_action, a fixed number of transfers
 * kept in flight on easy handles configured once and reused, each POSTing the seed call with the
 * headers tcgw sends (an Authorization of a TC3 signature's length) over verified TLS on
 * kept-alive connections. What it costs per call is the least tcgw can cost per call while
 * libcurl carries its calls.
 *
 *   tcgw-bench-curl --port P --ca FILE [--conns N] [--seconds S]
 *   curl: calls=N ok=N cpu_s=X wall_s=X
 *
 * ok counts answers with status 200 and "RequestId" in the body; cpu_s is user + system time of
 * the process over the measured calls.
 */
#include <curl/curl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 4096
#define BODY "{\"ProxyId\": \"link-4ftf12sb\", \"Concurrent\": \"2\", \"Bandwidth\": \"10\"}"

struct transfer {
    CURL *easy;
    char answer[4096];
    size_t answer_len;
};

struct bench {
    int epfd;
    long timeout_ms; /* libcurl's next timeout, -1 for none */
    CURLM *multi;
    struct curl_slist *headers;
    struct curl_slist *connect_to;
    const char *ca_file;
    unsigned long calls, ok;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    struct bench *b = userp;
    (void)easy;
    struct epoll_event ev = {.data.fd = fd};
    if (what == CURL_POLL_REMOVE) {
        epoll_ctl(b->epfd, EPOLL_CTL_DEL, fd, NULL);
        curl_multi_assign(b->multi, fd, NULL);
        return 0;
    }
    ev.events = (what & CURL_POLL_IN ? EPOLLIN : 0u) | (what & CURL_POLL_OUT ? EPOLLOUT : 0u);
    if (socketp == NULL) {
        epoll_ctl(b->epfd, EPOLL_CTL_ADD, fd, &ev);
        curl_multi_assign(b->multi, fd, b); /* any non-NULL mark: watched */
    } else {
        epoll_ctl(b->epfd, EPOLL_CTL_MOD, fd, &ev);
    }
    return 0;
}

static int on_timer(CURLM *multi, long timeout_ms, void *userp)
{
    struct bench *b = userp;
    (void)multi;
    b->timeout_ms = timeout_ms;
    return 0;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
    struct transfer *t = userdata;
    size_t n = size * nmemb;
    size_t room = sizeof t->answer - 1 - t->answer_len;
    memcpy(t->answer + t->answer_len, data, n < room ? n : room);
    t->answer_len += n < room ? n : room;
    return n;
}

static bool setup(struct bench *b, struct transfer *t)
{
    CURL *e = t->easy = curl_easy_init();
    return e != NULL &&
           curl_easy_setopt(e, CURLOPT_URL, "https://gaap.tencentcloudapi.com/") == CURLE_OK &&
           curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https") == CURLE_OK &&
           curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L) == CURLE_OK &&
           curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L) == CURLE_OK &&
           curl_easy_setopt(e, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2) == CURLE_OK &&
           curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS) == CURLE_OK &&
           curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L) == CURLE_OK &&
           curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
           curl_easy_setopt(e, CURLOPT_PROXY, "") == CURLE_OK &&
           curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 4096L) == CURLE_OK &&
           curl_easy_setopt(e, CURLOPT_UPLOAD_BUFFERSIZE, 16384L) == CURLE_OK &&
           curl_easy_setopt(e, CURLOPT_POST, 1L) == CURLE_OK &&
           curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(BODY)) == CURLE_OK &&
           curl_easy_setopt(e, CURLOPT_POSTFIELDS, BODY) == CURLE_OK &&
           curl_easy_setopt(e, CURLOPT_HTTPHEADER, b->headers) == CURLE_OK &&
           curl_easy_setopt(e, CURLOPT_CONNECT_TO, b->connect_to) == CURLE_OK &&
           curl_easy_setopt(e, CURLOPT_CAINFO, b->ca_file) == CURLE_OK &&
           curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body) == CURLE_OK &&
           curl_easy_setopt(e, CURLOPT_WRITEDATA, t) == CURLE_OK &&
           curl_easy_setopt(e, CURLOPT_PRIVATE, t) == CURLE_OK &&
           curl_multi_add_handle(b->multi, e) == CURLM_OK;
}

/* Counts the transfers that ended and starts each again. */
static void take_done(struct bench *b)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(b->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE) {
            continue;
        }
        struct transfer *t = NULL;
        long status = 0;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&t);
        curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &status);
        t->answer[t->answer_len] = '\0';
        b->calls++;
        b->ok += m->data.result == CURLE_OK && status == 200 &&
                 strstr(t->answer, "\"RequestId\"") != NULL;
        t->answer_len = 0;
        curl_multi_remove_handle(b->multi, t->easy);
        curl_multi_add_handle(b->multi, t->easy);
    }
}

/* Runs the loop until `until` (monotonic seconds); false when epoll fails. */
static bool run_until(struct bench *b, double until)
{
    int running = 0;
    while (now_s() < until) {
        struct epoll_event ev[64];
        int n = epoll_wait(b->epfd, ev, 64, b->timeout_ms < 0 ? 100 : (int)b->timeout_ms);
        if (n < 0) {
            return false;
        }
        if (n == 0) {
            curl_multi_socket_action(b->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        }
        for (int i = 0; i < n; i++) {
            int flags = (ev[i].events & EPOLLIN ? CURL_CSELECT_IN : 0) |
                        (ev[i].events & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
                        (ev[i].events & (EPOLLERR | EPOLLHUP) ? CURL_CSELECT_ERR : 0);
            curl_multi_socket_action(b->multi, ev[i].data.fd, flags, &running);
        }
        take_done(b);
    }
    return true;
}

int main(int argc, char **argv)
{
    int port = 0, conns = 32;
    double seconds = 5.0, warmup = 1.0;
    const char *ca = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--port") == 0) {
            port = atoi(argv[i + 1]);
        } else if (strcmp(argv[i], "--ca") == 0) {
            ca = argv[i + 1];
        } else if (strcmp(argv[i], "--conns") == 0) {
            conns = atoi(argv[i + 1]);
        } else if (strcmp(argv[i], "--seconds") == 0) {
            seconds = atof(argv[i + 1]);
        }
    }
    if (port <= 0 || ca == NULL || conns < 1 || conns > MAX_CONNS || seconds <= 0) {
        fprintf(stderr, "usage: %s --port P --ca FILE [--conns 1..%d] [--seconds S]\n", argv[0],
                MAX_CONNS);
        return 2;
    }
    static struct transfer transfers[MAX_CONNS];
    struct bench b = {.epfd = epoll_create1(EPOLL_CLOEXEC), .timeout_ms = -1, .ca_file = ca};
    char connect_to[96];
    snprintf(connect_to, sizeof connect_to, "gaap.tencentcloudapi.com:443:127.0.0.1:%d", port);
    const char *lines[] = {
        "Content-Type: application/json",
        "X-TC-Action: ModifyProxyConfiguration",
        "X-TC-Version: 2018-05-29",
        "X-TC-Timestamp: 1764633600",
        "Authorization: TC3-HMAC-SHA256 "
        "Credential=AKIDEXAMPLEEXAMPLEEXAMPLEEXAMPLEEXAM/2025-12-02/gaap/"
        "tc3_request, SignedHeaders=content-type;host, "
        "Signature=0000000000000000000000000000000000000000000000000000000000000000",
        "X-TC-Region: ap-guangzhou",
        "Expect:",
        "Accept:"};
    curl_global_init(CURL_GLOBAL_DEFAULT);
    b.multi = curl_multi_init();
    b.connect_to = curl_slist_append(NULL, connect_to);
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        b.headers = curl_slist_append(b.headers, lines[i]);
    }
    curl_multi_setopt(b.multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(b.multi, CURLMOPT_SOCKETDATA, &b);
    curl_multi_setopt(b.multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(b.multi, CURLMOPT_TIMERDATA, &b);
    curl_multi_setopt(b.multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    curl_multi_setopt(b.multi, CURLMOPT_MAXCONNECTS, (long)conns * 4);
    int rc = 1;
    for (int i = 0; i < conns; i++) {
        if (!setup(&b, &transfers[i])) {
            fprintf(stderr, "tcgw-bench-curl: cannot set up a transfer\n");
            goto out;
        }
    }
    /* Warm-up: connections made and handshakes done before the measure. */
    if (!run_until(&b, now_s() + warmup)) {
        goto out;
    }
    b.calls = b.ok = 0;
    double wall0 = now_s(), cpu0 = cpu_s();
    if (!run_until(&b, wall0 + seconds)) {
        goto out;
    }
    double wall = now_s() - wall0, cpu = cpu_s() - cpu0;
    printf("curl: calls=%lu ok=%lu cpu_s=%.3f wall_s=%.3f\n", b.calls, b.ok, cpu, wall);
    rc = b.ok > 0 && b.ok == b.calls ? 0 : 1;
out:
    for (int i = 0; i < conns; i++) {
        if (transfers[i].easy != NULL) {
            curl_multi_remove_handle(b.multi, transfers[i].easy);
            curl_easy_cleanup(transfers[i].easy);
        }
    }
    curl_multi_cleanup(b.multi);
    curl_slist_free_all(b.headers);
    curl_slist_free_all(b.connect_to);
    curl_global_cleanup();
    close(b.epfd);
    return rc;
}
