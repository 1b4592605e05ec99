/*
 * libtcgw-bench-spread.so: an LD_PRELOAD shim for the load generator (wrk). Every IPv4 TCP
 * connection it opens to 127.0.0.0/8 is first bound to one of TCGW_SPREAD_SOURCES (default 8)
 * loopback source addresses 127.10.0.1, 127.10.0.2, ... in turn, so that N connections arrive
 * from several client addresses instead of all from 127.0.0.1. The benchmark uses it to show
 * what a server does beyond a per-client-address connection limit; traffic stays on loopback.
 */
#include <dlfcn.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static atomic_uint next_source;

/* glibc declares connect with a transparent union under _GNU_SOURCE (needed for RTLD_NEXT). */
int connect(int fd, __CONST_SOCKADDR_ARG addr_arg, socklen_t len)
{
#ifdef __USE_GNU
    const struct sockaddr *addr = addr_arg.__sockaddr__;
#else
    const struct sockaddr *addr = addr_arg;
#endif
    static int (*real_connect)(int, __CONST_SOCKADDR_ARG, socklen_t);
    if (real_connect == NULL) {
        void *sym = dlsym(RTLD_NEXT, "connect");
        if (sym == NULL) {
            abort();
        }
        memcpy(&real_connect, &sym, sizeof sym); /* object to function pointer, as POSIX allows */
    }
    if (addr != NULL && addr->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *dst = (const struct sockaddr_in *)(const void *)addr;
        if ((ntohl(dst->sin_addr.s_addr) >> 24) == 127u) {
            static unsigned sources;
            if (sources == 0) {
                const char *env = getenv("TCGW_SPREAD_SOURCES");
                long n = env != NULL ? strtol(env, NULL, 10) : 8;
                sources = n >= 1 && n <= 250 ? (unsigned)n : 8u;
            }
            unsigned k = atomic_fetch_add(&next_source, 1u) % sources;
            struct sockaddr_in src = {0};
            src.sin_family = AF_INET;
            src.sin_port = 0;
            src.sin_addr.s_addr = htonl((127u << 24) | (10u << 16) | (k + 1u));
            /* A socket the program bound already keeps its address: bind fails, nothing else. */
            (void)bind(fd, (const struct sockaddr *)&src, sizeof src);
        }
    }
    return real_connect(fd, addr_arg, len);
}
