/*
 * call: one gateway call, from the inbound request to the reply. Each pipeline stage reads it and
 * annotates it; the record of the final stage (log line, audit, metrics) and the reply are written
 * from it alone. This struct is the one shared record of the design, so its fields are visible to
 * every stage. Each group of fields names the one stage that writes it; every other stage only
 * reads it.
 */
#ifndef GW_CALL_H
#define GW_CALL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "core/buf.h"
#include "core/errors.h"

#define GW_CALL_MESSAGE_MAX 512
#define GW_CALL_HOST_MAX 253
#define GW_CALL_SERVICE_MAX 32
#define GW_CALL_ACTION_MAX 64
#define GW_CALL_VERSION_MAX 10 /* YYYY-MM-DD */
#define GW_CALL_REGION_MAX 32
#define GW_CALL_LANGUAGE_MAX 8         /* zh-CN, en-US */
#define GW_CALL_TRACE_MAX 128          /* X-TC-TraceId, X-TC-RequestClient */
#define GW_CALL_PEER_MAX 46            /* INET6_ADDRSTRLEN */
#define GW_CALL_NAME_MAX 64            /* caller, credential and statement names */
#define GW_CALL_AUTHORIZATION_MAX 4096 /* the Authorization header the gateway sends */
#define GW_CALL_TOKEN_MAX 4096         /* the X-TC-Token header (GW_VAULT_MAX_TOKEN) */
#define GW_CALL_CONTENT_TYPE "application/json"

/* How the upstream exchange ended. */
enum gw_upstream_outcome {
    GW_UPSTREAM_NONE = 0,  /* not attempted */
    GW_UPSTREAM_ANSWERED,  /* an HTTP answer came back: status and body are set */
    GW_UPSTREAM_CONNECT,   /* could not resolve, connect or finish the TLS handshake in time */
    GW_UPSTREAM_TLS,       /* TLS handshake or certificate verification failed */
    GW_UPSTREAM_TIMEOUT,   /* the connect or total timeout passed */
    GW_UPSTREAM_TOO_LARGE, /* the answer exceeded max_response_bytes */
    GW_UPSTREAM_FAILED,    /* any other transfer failure */
    GW_UPSTREAM_NOT_SENT,  /* the gateway stopped before the transfer began */
    GW_UPSTREAM_ABORTED,   /* the gateway stopped while the transfer was under way */
};

/* How the caller was identified (written by the identity stage). */
enum gw_identity_method {
    GW_IDENTITY_NONE = 0, /* not identified (yet) */
    GW_IDENTITY_TOKEN,    /* Authorization: Bearer <token> */
    GW_IDENTITY_SDK_KEY,  /* a TC3 signature with a gateway-issued key */
    GW_IDENTITY_CERT,     /* a verified client certificate */
    GW_IDENTITY_LISTENER, /* the listener maps unauthenticated callers to one caller */
};

/* The identity methods a listener accepts (struct gw_call_inbound.accept). */
#define GW_ACCEPT_TOKEN 1u   /* Authorization: Bearer <token> */
#define GW_ACCEPT_SDK_KEY 2u /* Authorization: TC3-HMAC-SHA256 ... with a gateway-issued key */
#define GW_ACCEPT_CERT 4u    /* a client certificate verified by the listener's TLS layer */

/* The policy decision (written by the policy stage). */
enum gw_decision {
    GW_DECISION_NONE = 0, /* no decision was taken: the call was refused before, or no policy */
    GW_DECISION_ALLOW,
    GW_DECISION_DENY,
};

struct gw_call;
struct gw_access_snapshot;
struct gw_caller;
struct gw_idem_entry;
struct gw_inject;

/*
 * Looks up a request header by name (case-insensitive). Returns a borrowed string, valid until
 * the call is freed, or NULL when the header is absent.
 */
typedef const char *(*gw_call_header_fn)(void *transport, const char *name);

/* A notification from the pipeline to the transport (see the fields that hold them). */
typedef void (*gw_call_event_fn)(struct gw_call *call, void *transport);

/* What the transport received. Written by the transport (the server) only. */
struct gw_call_inbound {
    const char *method;          /* borrowed, as received */
    const char *target;          /* borrowed, the request target without its query string */
    bool has_query;              /* the target had a query string */
    gw_call_header_fn header;    /* header lookup */
    void *transport;             /* passed to header and answered */
    char peer[GW_CALL_PEER_MAX]; /* the caller's address, "" when unknown */
    bool body_too_large;         /* more body arrived than the body buffer's maximum */
    bool over_budget;            /* the body did not fit in the memory budget */
    bool stopping;               /* the gateway is stopping: take no new call */
    bool has_body;               /* the request announces a body (Content-Length > 0 or chunked) */
    const char *malformed;       /* static: why the HTTP framing is refused, or NULL */
    unsigned malformed_status;   /* 400 or 501 with malformed */
    gw_call_event_fn will_wait;  /* the call is about to wait (for a rate-limit token or the
                                    upstream; may run twice for one call: suspend once); or NULL */
    gw_call_event_fn answered;   /* the reply is ready: runs exactly once per call */

    /* The listener's identity rules and what its TLS layer verified. */
    unsigned accept; /* GW_ACCEPT_* bits: identity methods this listener takes */
    const char
        *unauthenticated_caller; /* borrowed: the caller a call without identity is, or NULL */
    const char
        *cert_name; /* borrowed: a verified client certificate's URI SAN, else its CN; or NULL */
    const char *cert_error; /* static: why the client certificate presented is refused, or NULL */
    unsigned listener_port; /* the local port the call arrived on */
};

/* The answer the transport writes. Written by the pipeline's reply stage. */
struct gw_call_reply {
    unsigned status; /* HTTP status */
    char *body;      /* owned by the call until the transport takes it (then NULL) */
    size_t len;
    size_t charged;    /* bytes of body charged to the memory budget, given back when freed */
    const char *allow; /* a static Allow header value, or NULL */
    bool close;        /* close the connection after this answer */
};

/* CLOCK_MONOTONIC instants; zero when the step was not reached. */
struct gw_call_times {
    struct timespec received;       /* the transport: the head arrived */
    struct timespec checked;        /* the pipeline: every check before signing passed */
    struct timespec signed_at;      /* the signing stage */
    struct timespec upstream_start; /* the forwarding stage: handed to the upstream */
    struct timespec upstream_end;   /* the forwarding stage: the upstream outcome is known */
    struct timespec answered;       /* the reply stage */
};

struct gw_call {
    char request_id[GW_REQUEST_ID_LEN + 1]; /* the gateway's own id, for its errors and logs */
    unsigned stage;                         /* the pipeline's: the next stage to run */
    struct gw_call_inbound in;
    struct gw_call_times times;

    /* Written by the request stage. */
    struct gw_buf
        body; /* the caller's body bytes (also written by the transport while receiving) */
    char service[GW_CALL_SERVICE_MAX + 1];
    char host[GW_CALL_HOST_MAX + 1]; /* the upstream host, also signed */
    char action[GW_CALL_ACTION_MAX + 1];
    char version[GW_CALL_VERSION_MAX + 1];
    char region[GW_CALL_REGION_MAX + 1];        /* "" when the caller sent none */
    char language[GW_CALL_LANGUAGE_MAX + 1];    /* "" when the caller sent none */
    char trace_id[GW_CALL_TRACE_MAX + 1];       /* X-TC-TraceId, passed on; "" when absent */
    char request_client[GW_CALL_TRACE_MAX + 1]; /* X-TC-RequestClient, passed on; "" when absent */
    json_t *params;                             /* the parsed body, owned */

    /* Written by the identity stage. */
    char caller[GW_CALL_NAME_MAX + 1];    /* "" until identified */
    const struct gw_caller *caller_entry; /* the caller in call->snapshot, or NULL */
    enum gw_identity_method identity;

    /* Written by the policy stage. */
    enum gw_decision decision;
    char statement[GW_CALL_NAME_MAX * 2 + 2]; /* "file#sid" that decided, "" when none */
    char policy_reason[GW_CALL_MESSAGE_MAX]; /* on a deny: the condition that failed (log, audit) */
    char credential[GW_CALL_NAME_MAX + 1];   /* the credential that signs */
    struct gw_access_snapshot *snapshot;     /* the callers and policies the call is judged under: a
                                                reference taken by the identity stage, given back by
                                                the final stage */

    /*
     * Written by the inject stages (gateway/inject/): the placeholders of params, NULL when none.
     * When there are some, the inject stage replaces body with the bytes sent (secret values in
     * place, in sodium_malloc'ed memory that is wiped when freed): from then on body is not the
     * caller's, and nothing may log, record or echo it. params keeps the placeholders.
     */
    struct gw_inject *inject;
    void (*inject_free)(struct gw_inject *inject); /* frees inject with the call */

    /* Written by the limit stage: a call waiting for a token or for the shared backend. */
    struct {
        struct gw_call *next;    /* in the worker's list of calls waiting for a token */
        int64_t due_ns;          /* CLOCK_MONOTONIC: when to try again */
        int64_t deadline_ns;     /* CLOCK_MONOTONIC: the last instant it may still be admitted */
        gw_call_event_fn resume; /* the pipeline goes on (or finishes, when refused) */
        void *resume_arg;
        bool waited; /* it waited for a token or for the backend */
        bool shared; /* judged by the shared backend (Redis), not locally */
    } limit;

    /* Written by the deadline, idempotency and retry stages. */
    struct {
        int64_t deadline_ns;  /* CLOCK_MONOTONIC: the caller has its answer by then; 0: none */
        long deadline_ms;     /* the call's deadline, from received, as configured or asked */
        long timeout_ms;      /* the upstream timeout of the latest attempt (<= the deadline) */
        unsigned attempts;    /* upstream attempts made */
        bool maybe_sent;      /* an attempt may have reached Tencent Cloud */
        int64_t due_ns;       /* waiting for a retry: when to send it again */
        struct gw_call *next; /* in the worker's list of calls waiting for a retry */
        const char *last_why; /* static: why the latest retry was made, or NULL */
        const char *no_retry; /* static: why no (further) retry was made, or NULL */
    } retry;
    struct {
        struct gw_idem_entry *entry; /* the first call with its ClientToken: completed in the
                                        final stage */
        bool generated;              /* the gateway added the ClientToken */
        bool replayed;               /* the answer is the first call's (waited for, or replayed) */
        /* Across replicas (idem/shared.h), with limits.backend "redis". */
        bool shared;            /* claimed in Redis: its record is finished there too */
        unsigned char slot[32]; /* its gw_idem_key (GW_IDEM_HASH_BYTES each) */
        unsigned char params[32];
        char owner[33];           /* this claim's random name, in the record */
        int64_t wait_deadline_ns; /* CLOCK_MONOTONIC: polling a record in flight elsewhere */
        int64_t due_ns;           /* when to ask again */
        long poll_ms;             /* the interval after this one */
        struct gw_call *next;     /* in the worker's list of calls polling */
    } idem;

    /* Written by the signing stage. */
    int64_t timestamp;
    struct gw_buf authorization;
    struct gw_buf token; /* X-TC-Token of temporary keys (empty for static ones); wiped at free */

    /* Written by the forwarding stage. */
    enum gw_upstream_outcome outcome;
    long http_status;
    struct gw_buf response;    /* the upstream body, returned unchanged */
    char upstream_detail[256]; /* libcurl's words on a failure: for the log, not the caller */
    int64_t upstream_date;     /* the answer's Date header, Unix seconds; 0 when none (metrics) */

    /* Written by whichever stage refuses the call; error_code NULL means no refusal. */
    const char *error_code; /* static string */
    char error_message[GW_CALL_MESSAGE_MAX];

    /* Written by the reply stage. */
    struct gw_call_reply reply;
    size_t bytes_in;  /* body bytes received (also past the maximum) */
    size_t bytes_out; /* body bytes of the reply */
};

/* Returns a new call with a fresh request id and bounded buffers, or NULL when out of memory. */
struct gw_call *gw_call_new(size_t max_body_bytes, size_t max_response_bytes);

/*
 * Charges the call's body buffer (strictly: a body that does not fit is refused) and its upstream
 * answer buffer (overdrawing: an answer is never lost) to budget. Call before any byte arrives.
 */
void gw_call_charge(struct gw_call *call, struct gw_budget *budget);

/* Frees a reply body taken out of a call, giving its charge back to budget (may be NULL). */
void gw_call_reply_free(char *body, size_t charged, struct gw_budget *budget);

/* Frees the call and everything it owns. Accepts NULL. */
void gw_call_free(struct gw_call *call);

/* Records a refusal: code is a static Tencent error code; the message is printf-formatted. */
void gw_call_refuse(struct gw_call *call, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Returns the named inbound header (borrowed), or NULL when absent or no transport is attached. */
const char *gw_call_header(const struct gw_call *call, const char *name);

/* Milliseconds from a to b, 0 when either was not reached. */
double gw_call_ms(const struct timespec *a, const struct timespec *b);

/* Stamps *t with CLOCK_MONOTONIC now. */
void gw_call_stamp(struct timespec *t);

#endif
