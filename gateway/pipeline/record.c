#include "pipeline/record.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "pipeline/outcome.h"

static const char *identity_name(enum gw_identity_method m)
{
    switch (m) {
    case GW_IDENTITY_TOKEN:
        return "token";
    case GW_IDENTITY_SDK_KEY:
        return "sdk_key";
    case GW_IDENTITY_CERT:
        return "certificate";
    case GW_IDENTITY_LISTENER:
        return "listener";
    case GW_IDENTITY_NONE:
        break;
    }
    return "-";
}

static const char *decision_name(enum gw_decision d)
{
    return d == GW_DECISION_ALLOW ? "allow" : d == GW_DECISION_DENY ? "deny" : "-";
}

/* A line being written: bytes past the room are dropped, one byte is kept for the newline. */
struct line {
    char *p;
    size_t len;
};

#define LINE_ROOM (GW_RECORD_LINE_MAX - 1)

static void put(struct line *l, const char *s, size_t n)
{
    size_t room = LINE_ROOM - l->len;
    n = n < room ? n : room;
    memcpy(l->p + l->len, s, n);
    l->len += n;
}

static void put_str(struct line *l, const char *s)
{
    put(l, s, strlen(s));
}

/* A field whose value is plain (no space, no quote) or "-" when empty. */
static void put_field(struct line *l, const char *name, const char *value)
{
    put_str(l, name);
    put_str(l, value[0] != '\0' ? value : "-");
}

static void put_unsigned(struct line *l, unsigned long long v)
{
    char digits[24];
    size_t i = sizeof digits;
    do {
        digits[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    put(l, digits + i, sizeof digits - i);
}

/* Milliseconds between two instants, with three decimals (microseconds), as "%.3f" would. */
static void put_ms(struct line *l, const struct timespec *a, const struct timespec *b)
{
    if ((a->tv_sec == 0 && a->tv_nsec == 0) || (b->tv_sec == 0 && b->tv_nsec == 0)) {
        put_str(l, "0.000"); /* one of them never happened */
        return;
    }
    long long ns = ((long long)b->tv_sec - a->tv_sec) * 1000000000LL + (b->tv_nsec - a->tv_nsec);
    if (ns < 0) {
        put_str(l, "-");
        ns = -ns;
    }
    unsigned long long us = (unsigned long long)(ns + 500) / 1000;
    char frac[4] = {(char)('0' + us / 100 % 10), (char)('0' + us / 10 % 10), (char)('0' + us % 10),
                    '\0'};
    put_unsigned(l, us / 1000);
    put(l, ".", 1);
    put(l, frac, 3);
}

/* A quoted value: its double quotes and control characters become single quotes and spaces. */
static void put_quoted(struct line *l, const char *name, const char *value)
{
    if (value[0] == '\0') {
        return;
    }
    put(l, " ", 1);
    put_str(l, name);
    put(l, "=\"", 2);
    size_t start = l->len;
    put_str(l, value);
    for (size_t i = start; i < l->len; i++) {
        unsigned char ch = (unsigned char)l->p[i];
        l->p[i] = ch == '"' ? '\'' : (ch < 0x20 || ch == 0x7f) ? ' ' : (char)ch;
    }
    put(l, "\"", 1);
}

size_t gw_record_format(const struct gw_call *call, char *out)
{
    struct line l = {out, 0};
    put_str(&l, "level=info event=call request_id=");
    put_str(&l, call->request_id);
    put_field(&l, " peer=", call->in.peer);
    put_field(&l, " service=", call->service);
    put_field(&l, " action=", call->action);
    put_field(&l, " caller=", call->caller);
    put_field(&l, " identity=", identity_name(call->identity));
    put_field(&l, " decision=", decision_name(call->decision));
    put_field(&l, " statement=", call->statement);
    put_field(&l, " credential=", call->credential);
    put_field(&l, " upstream=", gw_outcome_name(call->outcome));
    put_str(&l, " status=");
    put_unsigned(&l, call->reply.status);
    put_field(&l, " error=", call->error_code != NULL ? call->error_code : "");
    put_str(&l, " bytes_in=");
    put_unsigned(&l, call->bytes_in);
    put_str(&l, " bytes_out=");
    put_unsigned(&l, call->bytes_out);
    put_str(&l, " ms=");
    put_ms(&l, &call->times.received, &call->times.answered);
    put_str(&l, " upstream_ms=");
    put_ms(&l, &call->times.upstream_start, &call->times.upstream_end);
    put_quoted(&l, "reason", call->policy_reason);
    put_quoted(&l, "detail", call->upstream_detail);
    /* Only when there is something to say: retries, and what idempotency did. */
    if (call->retry.attempts > 1) {
        put_str(&l, " attempts=");
        put_unsigned(&l, call->retry.attempts);
        put_field(&l, " retry_why=", call->retry.last_why != NULL ? call->retry.last_why : "");
    }
    if (call->retry.no_retry != NULL) {
        put_field(&l, " no_retry=", call->retry.no_retry);
    }
    if (call->idem.generated || call->idem.replayed) {
        put_str(&l, call->idem.replayed ? " client_token=repeat" : " client_token=generated");
    }
    l.p[l.len++] = '\n';
    return l.len;
}

void gw_record_log_line(const struct gw_call *call, int fd)
{
    char line[GW_RECORD_LINE_MAX];
    size_t n = gw_record_format(call, line);
    ssize_t w;
    do {
        w = write(fd, line, n);
    } while (w < 0 && errno == EINTR);
}
