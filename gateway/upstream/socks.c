/* socks: libcurl's sockets on a worker's loop. See socks.h. */
#include "upstream/socks.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/loop.h"

/* What the loop knows of one of libcurl's sockets, by descriptor. */
struct sock {
    struct gw_loop_watch *watch; /* NULL: not in the loop's epoll set */
    uint32_t events;             /* what watch asks for */
    bool wanted;                 /* libcurl asked for it (false: parked) */
    bool ours;                   /* opened by upstream_socks_on_open */
    bool parkable;               /* ours, and a request went out on it: its closing is known */
};

/* Everything runs on the loop's thread: no lock. */
struct upstream_socks {
    struct gw_loop *loop;
    upstream_ready_fn ready;
    void *arg;
    struct sock *by_fd;
    size_t len;
};

struct upstream_socks *upstream_socks_new(struct gw_loop *loop, upstream_ready_fn ready, void *arg)
{
    struct upstream_socks *socks = calloc(1, sizeof *socks);
    if (socks != NULL) {
        socks->loop = loop;
        socks->ready = ready;
        socks->arg = arg;
    }
    return socks;
}

static void sock_unwatch(struct sock *s)
{
    gw_loop_unwatch(s->watch);
    s->watch = NULL;
    s->events = 0;
    s->wanted = false;
}

void upstream_socks_free(struct upstream_socks *socks)
{
    if (socks == NULL) {
        return;
    }
    for (size_t fd = 0; fd < socks->len; fd++) {
        sock_unwatch(&socks->by_fd[fd]);
    }
    free(socks->by_fd);
    free(socks);
}

/* fd's entry, the table grown to hold it; NULL when out of memory. */
static struct sock *sock_of(struct upstream_socks *socks, curl_socket_t fd)
{
    if (fd < 0) {
        return NULL;
    }
    if ((size_t)fd >= socks->len) {
        size_t len = socks->len > 0 ? socks->len : 64;
        while (len <= (size_t)fd) {
            len *= 2;
        }
        struct sock *grown = realloc(socks->by_fd, len * sizeof *grown);
        if (grown == NULL) {
            return NULL;
        }
        memset(grown + socks->len, 0, (len - socks->len) * sizeof *grown);
        socks->by_fd = grown;
        socks->len = len;
    }
    return &socks->by_fd[fd];
}

static void on_ready(void *arg, int fd, uint32_t events)
{
    struct upstream_socks *socks = arg;
    struct sock *s = &socks->by_fd[fd]; /* watched, so in the table */
    if (!s->wanted) {
        /* A parked connection heard from its server (closing, most likely): libcurl finds out
         * when it next looks at it; until then it is not watched, or it would wake us again. */
        sock_unwatch(s);
        return;
    }
    int flags = 0;
    if ((events & EPOLLIN) != 0) {
        flags |= CURL_CSELECT_IN;
    }
    if ((events & EPOLLOUT) != 0) {
        flags |= CURL_CSELECT_OUT;
    }
    if ((events & (EPOLLERR | EPOLLHUP)) != 0) {
        flags |= CURL_CSELECT_ERR;
    }
    socks->ready(socks->arg, fd, flags);
}

int upstream_socks_on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    struct upstream_socks *socks = userp;
    (void)easy;
    (void)socketp;
    struct sock *s = sock_of(socks, fd);
    if (s == NULL) {
        return -1;
    }
    if (what == CURL_POLL_REMOVE) {
        if (s->parkable) {
            s->wanted = false;
        } else {
            sock_unwatch(s);
        }
        return 0;
    }
    uint32_t events =
        ((what & CURL_POLL_IN) != 0 ? EPOLLIN : 0) | ((what & CURL_POLL_OUT) != 0 ? EPOLLOUT : 0);
    if (s->watch != NULL && s->events != events && !gw_loop_rewatch(s->watch, events)) {
        /* Not in the epoll set any more (its descriptor was closed and reused): start over. */
        sock_unwatch(s);
    }
    if (s->watch == NULL &&
        (s->watch = gw_loop_watch(socks->loop, fd, events, on_ready, socks)) == NULL) {
        return -1;
    }
    s->events = events;
    s->wanted = true;
    return 0;
}

curl_socket_t upstream_socks_on_open(void *clientp, curlsocktype purpose,
                                     struct curl_sockaddr *address)
{
    struct upstream_socks *socks = clientp;
    (void)purpose;
    int fd = socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
    struct sock *s = fd >= 0 ? sock_of(socks, fd) : NULL;
    if (s == NULL) {
        if (fd >= 0) {
            close(fd);
        }
        return CURL_SOCKET_BAD;
    }
    if (s->watch != NULL) {
        /*
         * The descriptor was closed without upstream_socks_on_close (a connection attempt libcurl
         * gave up), so its epoll registration went with it. If libcurl still counts it as
         * watched, it will not ask again for this number: watch the new socket as libcurl
         * believes it is.
         */
        bool wanted = s->wanted;
        uint32_t events = s->events;
        sock_unwatch(s);
        if (wanted &&
            (s->watch = gw_loop_watch(socks->loop, fd, events, on_ready, socks)) == NULL) {
            close(fd);
            return CURL_SOCKET_BAD;
        }
        s->events = wanted ? events : 0;
        s->wanted = wanted;
    }
    s->ours = true;
    s->parkable = false;
    return fd;
}

int upstream_socks_on_close(void *clientp, curl_socket_t fd)
{
    struct upstream_socks *socks = clientp;
    if (fd >= 0 && (size_t)fd < socks->len) {
        sock_unwatch(&socks->by_fd[fd]);
        socks->by_fd[fd].ours = false;
        socks->by_fd[fd].parkable = false;
    }
    return close(fd);
}

void upstream_socks_carried(struct upstream_socks *socks, curl_socket_t fd)
{
    if (fd >= 0 && (size_t)fd < socks->len && socks->by_fd[fd].ours) {
        socks->by_fd[fd].parkable = true;
    }
}
