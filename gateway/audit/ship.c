#include "audit/ship.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "audit/encode.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
/* <PRI>: facility 13 (log audit) * 8 + severity 6 (informational). */
#define SYSLOG_PRI 110

struct line {
    char *text;
    size_t len;
};

struct gw_audit_ship {
    struct gw_audit_ship_options o;
    char *address;
    char *ca_file;
    char host[256];
    pthread_t thread;
    bool running;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct line *ring; /* queue_records slots */
    size_t head, count;
    bool stop;
    int64_t drain_until_ms;
    _Atomic uint64_t sent, dropped;
    /* The sender's own. */
    int fd;
    SSL_CTX *ctx;
    SSL *ssl;
    long backoff_ms;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void gw_audit_ship_push(struct gw_audit_ship *s, const char *text, size_t len)
{
    char *copy = malloc(len + 1);
    if (copy == NULL) {
        atomic_fetch_add(&s->dropped, 1);
        return;
    }
    memcpy(copy, text, len);
    copy[len] = '\0';
    pthread_mutex_lock(&s->mu);
    size_t cap = s->o.queue_records;
    if (s->count == cap) {
        /* Full: the oldest goes (the file keeps it); the collector sees a gap in "seq". */
        free(s->ring[s->head].text);
        s->head = (s->head + 1) % cap;
        s->count--;
        atomic_fetch_add(&s->dropped, 1);
    }
    s->ring[(s->head + s->count) % cap] = (struct line){copy, len};
    s->count++;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

void gw_audit_ship_counts(struct gw_audit_ship *s, uint64_t *sent, uint64_t *dropped)
{
    *sent = atomic_load(&s->sent);
    *dropped = atomic_load(&s->dropped);
}

static void disconnect(struct gw_audit_ship *s)
{
    if (s->ssl != NULL) {
        SSL_free(s->ssl);
        s->ssl = NULL;
    }
    if (s->fd >= 0) {
        close(s->fd);
        s->fd = -1;
    }
}

static bool tls_start(struct gw_audit_ship *s)
{
    if ((s->ssl = SSL_new(s->ctx)) == NULL || SSL_set_fd(s->ssl, s->fd) != 1) {
        return false;
    }
    struct in6_addr ip;
    bool is_ip =
        inet_pton(AF_INET, s->address, &ip) == 1 || inet_pton(AF_INET6, s->address, &ip) == 1;
    if (is_ip) {
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(s->ssl), s->address);
    } else {
        SSL_set_tlsext_host_name(s->ssl, s->address);
        SSL_set1_host(s->ssl, s->address);
    }
    SSL_set_verify(s->ssl, SSL_VERIFY_PEER, NULL);
    if (SSL_connect(s->ssl) != 1) {
        fprintf(stderr, "level=warning event=audit_syslog_tls address=%s port=%u detail=\"%s\"\n",
                s->address, (unsigned)s->o.port,
                X509_verify_cert_error_string(SSL_get_verify_result(s->ssl)));
        return false;
    }
    return true;
}

static bool connect_collector(struct gw_audit_ship *s)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC};
    struct addrinfo *res = NULL;
    char port[8];
    snprintf(port, sizeof port, "%u", (unsigned)s->o.port);
    if (getaddrinfo(s->address, port, &hints, &res) != 0) {
        return false;
    }
    for (struct addrinfo *ai = res; ai != NULL && s->fd < 0; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            continue;
        }
        struct timeval tv = {.tv_sec = 5, .tv_usec = 0};
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            s->fd = fd;
        } else {
            close(fd);
        }
    }
    freeaddrinfo(res);
    if (s->fd >= 0 && s->o.tls && !tls_start(s)) {
        disconnect(s);
    }
    return s->fd >= 0;
}

/* The collector never speaks: anything readable (data, end of stream, an error) is goodbye. */
static bool still_connected(struct gw_audit_ship *s)
{
    struct pollfd p = {.fd = s->fd, .events = POLLIN};
    return poll(&p, 1, 0) == 0;
}

static bool send_all(struct gw_audit_ship *s, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w;
        if (s->ssl != NULL) {
            int r = SSL_write(s->ssl, p, n > INT32_MAX ? INT32_MAX : (int)n);
            w = r > 0 ? r : -1;
        } else {
            w = send(s->fd, p, n, MSG_NOSIGNAL);
        }
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return false;
        }
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/* One RFC 5424 message with RFC 6587 octet-counting framing: "LEN <PRI>1 TS HOST APP PID MSGID -
 * MSG". */
static bool send_syslog(struct gw_audit_ship *s, const struct line *l)
{
    char now[32];
    gw_audit_time_now(now);
    char head[512];
    int h = snprintf(head, sizeof head, "<%d>1 %s %s tcgw %ld audit - ", SYSLOG_PRI, now, s->host,
                     (long)getpid());
    char frame[32];
    int f = snprintf(frame, sizeof frame, "%zu ", (size_t)h + l->len);
    return send_all(s, frame, (size_t)f) && send_all(s, head, (size_t)h) &&
           send_all(s, l->text, l->len);
}

static bool deliver(struct gw_audit_ship *s, const struct line *l)
{
    if (s->address == NULL) {
        bool ok = fwrite(l->text, 1, l->len, stdout) == l->len && fputc('\n', stdout) != EOF &&
                  fflush(stdout) == 0;
        return ok;
    }
    if (s->fd >= 0 && !still_connected(s)) {
        disconnect(s);
        fprintf(stderr, "level=warning event=audit_syslog_disconnected address=%s port=%u\n",
                s->address, (unsigned)s->o.port);
    }
    if (s->fd < 0) {
        if (!connect_collector(s)) {
            return false;
        }
        fprintf(stderr, "level=info event=audit_syslog_connected address=%s port=%u tls=%s\n",
                s->address, (unsigned)s->o.port, s->o.tls ? "true" : "false");
        s->backoff_ms = BACKOFF_MIN_MS;
    }
    if (!send_syslog(s, l)) {
        disconnect(s);
        return false;
    }
    return true;
}

static void *sender(void *arg)
{
    struct gw_audit_ship *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (s->count == 0 && !s->stop) {
            pthread_cond_wait(&s->cv, &s->mu);
        }
        if (s->count == 0 || (s->stop && now_ms() >= s->drain_until_ms)) {
            break;
        }
        /*
         * Taken off the ring while it is sent: the sender owns it, so a push that finds the ring
         * full meanwhile drops another line, never this one.
         */
        struct line l = s->ring[s->head];
        size_t cap = s->o.queue_records;
        s->head = (s->head + 1) % cap;
        s->count--;
        pthread_mutex_unlock(&s->mu);
        bool ok = deliver(s, &l);
        pthread_mutex_lock(&s->mu);
        if (ok) {
            free(l.text);
            atomic_fetch_add(&s->sent, 1);
            continue;
        }
        if (s->address == NULL || s->count == cap) {
            /* Standard output is gone, or the ring filled meanwhile: dropped, as the oldest. */
            free(l.text);
            atomic_fetch_add(&s->dropped, 1);
            if (s->address == NULL) {
                continue;
            }
        } else {
            /* Back at the head, to be sent first once the collector is back. */
            s->head = (s->head + cap - 1) % cap;
            s->ring[s->head] = l;
            s->count++;
        }
        /* Backoff: pushes meanwhile do not hurry the next attempt. */
        int64_t retry_at = now_ms() + s->backoff_ms;
        s->backoff_ms = s->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : s->backoff_ms * 2;
        while (!s->stop && now_ms() < retry_at) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            long wait = (long)(retry_at - now_ms());
            ts.tv_sec += wait / 1000;
            ts.tv_nsec += (wait % 1000) * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&s->cv, &s->mu, &ts);
        }
        if (s->stop && now_ms() >= s->drain_until_ms) {
            break;
        }
    }
    pthread_mutex_unlock(&s->mu);
    disconnect(s);
    return NULL;
}

enum gw_err gw_audit_ship_start(const struct gw_audit_ship_options *o, struct gw_audit_ship **out,
                                char *msg, size_t msglen)
{
    enum gw_err err = GW_ERR_NOMEM;
    struct gw_audit_ship *s = calloc(1, sizeof *s);
    if (s == NULL) {
        gw_say(msg, msglen, "out of memory");
        return GW_ERR_NOMEM;
    }
    s->o = *o;
    s->fd = -1;
    s->backoff_ms = BACKOFF_MIN_MS;
    if (s->o.queue_records == 0) {
        s->o.queue_records = 1;
    }
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    if (gethostname(s->host, sizeof s->host - 1) != 0 || s->host[0] == '\0') {
        snprintf(s->host, sizeof s->host, "-");
    }
    s->host[strcspn(s->host, " ")] = '\0';
    if ((s->ring = calloc(s->o.queue_records, sizeof *s->ring)) == NULL ||
        (o->address != NULL && (s->address = strdup(o->address)) == NULL) ||
        (o->ca_file != NULL && (s->ca_file = strdup(o->ca_file)) == NULL)) {
        gw_say(msg, msglen, "out of memory");
        goto out;
    }
    if (o->tls) {
        s->ctx = SSL_CTX_new(TLS_client_method());
        if (s->ctx == NULL || SSL_CTX_set_min_proto_version(s->ctx, TLS1_2_VERSION) != 1 ||
            (s->ca_file != NULL ? SSL_CTX_load_verify_locations(s->ctx, s->ca_file, NULL)
                                : SSL_CTX_set_default_verify_paths(s->ctx)) != 1) {
            gw_say(msg, msglen, "audit syslog: cannot load the CA certificates %s",
                   s->ca_file != NULL ? s->ca_file : "of the system");
            err = GW_ERR_INVALID;
            goto out;
        }
    }
    if (pthread_create(&s->thread, NULL, sender, s) != 0) {
        gw_say(msg, msglen, "cannot start the audit shipping thread");
        err = GW_ERR_INTERNAL;
        goto out;
    }
    s->running = true;
    *out = s;
    s = NULL;
    err = GW_OK;
out:
    gw_audit_ship_stop(s, 0);
    return err;
}

void gw_audit_ship_stop(struct gw_audit_ship *s, long drain_ms)
{
    if (s == NULL) {
        return;
    }
    if (s->running) {
        pthread_mutex_lock(&s->mu);
        s->stop = true;
        s->drain_until_ms = now_ms() + drain_ms;
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->thread, NULL);
        fprintf(stderr,
                "level=info event=audit_ship_stats target=%s sent=%llu dropped=%llu unsent=%zu\n",
                s->address != NULL ? "syslog" : "stdout", (unsigned long long)atomic_load(&s->sent),
                (unsigned long long)atomic_load(&s->dropped), s->count);
    }
    for (size_t i = 0; s->ring != NULL && i < s->count; i++) {
        free(s->ring[(s->head + i) % s->o.queue_records].text);
    }
    free(s->ring);
    if (s->ctx != NULL) {
        SSL_CTX_free(s->ctx);
    }
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s->address);
    free(s->ca_file);
    free(s);
}
