/*
 * socks: libcurl's sockets on a worker's loop, for the upstream module (not part of its
 * interface). The callbacks below are libcurl's socket, open-socket and close-socket callbacks;
 * their user data is the upstream_socks. A socket libcurl is ready for is passed on to the ready
 * function with libcurl's CURL_CSELECT_* flags.
 *
 * A connection's socket stays watched between calls while it waits in libcurl's cache
 * ("parked"): libcurl stops caring about it when a call ends and asks for it again when the next
 * call reuses the connection, and watching it all along saves two epoll_ctl calls per call. Only
 * a socket known to be closed through the close-socket callback is parked: one opened through the
 * open-socket callback that carried a request (upstream_socks_carried; libcurl 7.88 closes a
 * socket that never finished connecting with a plain close(), and tells only afterwards, if at
 * all). Any other (a resolver's, a connection attempt's) is unwatched when libcurl lets it go.
 */
#ifndef GW_UPSTREAM_SOCKS_H
#define GW_UPSTREAM_SOCKS_H

#include <curl/curl.h>

struct gw_loop;
struct upstream_socks;

typedef void (*upstream_ready_fn)(void *arg, curl_socket_t fd, int curl_select);

/* A new, empty set on loop; NULL when out of memory. */
struct upstream_socks *upstream_socks_new(struct gw_loop *loop, upstream_ready_fn ready, void *arg);

/* Unwatches what is still watched and frees. After curl_multi_cleanup. Accepts NULL. */
void upstream_socks_free(struct upstream_socks *socks);

/* CURLMOPT_SOCKETFUNCTION. */
int upstream_socks_on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp);

/* CURLOPT_OPENSOCKETFUNCTION. */
curl_socket_t upstream_socks_on_open(void *clientp, curlsocktype purpose,
                                     struct curl_sockaddr *address);

/* CURLOPT_CLOSESOCKETFUNCTION. */
int upstream_socks_on_close(void *clientp, curl_socket_t fd);

/* A request is about to go out on fd (a connected socket): it may be parked from now on. */
void upstream_socks_carried(struct upstream_socks *socks, curl_socket_t fd);

#endif
