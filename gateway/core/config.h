/*
 * config: the gateway's JSON configuration file. Every field is optional (but a "tls" section
 * needs its three files, and "plain_listener": false needs a "tls" section); README.md documents
 * each with its default. Relative paths are taken relative to the directory of the config file.
 */
#ifndef GW_CONFIG_H
#define GW_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/call.h"
#include "core/errors.h"

#define GW_CONFIG_MAX_OVERRIDES 16
#define GW_CONFIG_MAX_RATES 64 /* entries of each map of rates in "limits" */

/* One entry of a map of rates: {"NAME": RATE} or {"NAME": {"rate": RATE, "burst": BURST}}. */
struct gw_config_rate {
    char *name;   /* the map's key; NULL ends the list */
    double rate;  /* calls per second, > 0 */
    double burst; /* calls at once, >= 1; 0 when not given: the rate */
};

struct gw_config {
    char *listen_address;                 /* "127.0.0.1" */
    uint16_t listen_port;                 /* 8080; 0 picks a free port */
    unsigned threads;                     /* 2: worker threads, each one event loop */
    unsigned max_connections;             /* 4096: caller connections, all workers together */
    unsigned max_connections_per_address; /* 2048: from one caller address */
    unsigned max_calls_in_flight;         /* 4096: calls waiting for the upstream at once */
    long request_timeout_ms;              /* 30000: to receive a whole request, head and body */
    size_t memory_budget_bytes;           /* 256 MiB: bodies and answers held at once */
    size_t max_body_bytes;                /* 1 MiB: larger bodies get RequestSizeLimitExceeded */
    char *spec_dir;                       /* "specs": directory of API descriptions */
    char *master_key_file;                /* $TCGW_MASTER_KEY_FILE, else "master.key" */
    char *credential_store;               /* "credentials.store" */
    char *credential;                     /* "default": the credential that signs */
    char *callers_file;                   /* "callers.json": who may call, and how identified */
    char *policy_dir;                     /* "policies": directory of policy files */
    unsigned accept;              /* GW_ACCEPT_TOKEN | GW_ACCEPT_SDK_KEY: the plain listener's */
    char *unauthenticated_caller; /* NULL: the caller a call without identity is (plain only) */
    bool plain_listener;          /* true: listen on listen_address:listen_port (plain HTTP) */
    bool require_locked_memory;   /* false: key memory that cannot be locked in RAM is refused */
    /* The HTTPS listener that verifies client certificates: only when "tls" is present. */
    struct {
        bool enabled;         /* the "tls" section is present (then the three files are set) */
        char *listen_address; /* "127.0.0.1" */
        uint16_t listen_port; /* 8443; 0 picks a free port */
        char *cert_file;      /* the server's certificate chain, PEM */
        char *key_file;       /* the server's private key, PEM (mode 0600) */
        char *client_ca_file; /* CA certificates a client certificate must chain to, PEM */
        unsigned accept;      /* GW_ACCEPT_CERT */
    } tls;
    struct {
        char *endpoint_suffix;                     /* "tencentcloudapi.com" */
        char *ca_file;                             /* NULL: the system's trust store */
        long connect_timeout_ms;                   /* 5000 */
        long timeout_ms;                           /* 30000: the whole transfer */
        size_t max_response_bytes;                 /* 8 MiB */
        unsigned max_host_connections;             /* 256 per worker */
        char *connect_to[GW_CONFIG_MAX_OVERRIDES]; /* CURLOPT_CONNECT_TO entries, NULL-terminated */
        char *resolve[GW_CONFIG_MAX_OVERRIDES];    /* CURLOPT_RESOLVE entries, NULL-terminated */
    } upstream;
    /* Rate limits: only when "limits" is present (and its "enabled" is not false). */
    struct {
        bool enabled;         /* the "limits" section is present */
        double default_rate;  /* 20: calls per second per (credential, action) without a rule */
        double default_burst; /* 0: the rate */
        struct gw_config_rate actions[GW_CONFIG_MAX_RATES];  /* "service.Action" -> rate */
        struct gw_config_rate services[GW_CONFIG_MAX_RATES]; /* "service" -> rate */
        struct gw_config_rate callers[GW_CONFIG_MAX_RATES];  /* caller -> its quota */
        bool fair_share;    /* true: each caller of a credential has an equal share */
        long max_wait_ms;   /* 0: a call may wait this long for a token instead of a refusal */
        size_t max_buckets; /* 65536: cells of the bucket table */
        char *backend;      /* "local", or "redis" (buckets shared by gateways) */
        struct {
            char *address;     /* "127.0.0.1" */
            uint16_t port;     /* 6379 */
            unsigned replicas; /* 1: gateways sharing the account; fallback rates are 1/replicas */
            long timeout_ms;   /* 50: a reply later than this falls back to local limits */
            char *key_prefix;  /* "tcgw" */
        } redis;
    } limits;
    char *log_format; /* "text": key=value lines on stderr; "json": one JSON object per line */
    /* The admin listener (/healthz, /readyz, /metrics): only when "admin" is present. */
    struct {
        bool enabled;           /* the "admin" section is present */
        char *listen_address;   /* "127.0.0.1" */
        uint16_t listen_port;   /* 9090; 0 picks a free port */
        long max_clock_skew_ms; /* 240000: not ready when Tencent's clock is further off */
    } admin;
    /* The audit log: only when "audit" is present. */
    struct {
        bool enabled;           /* the "audit" section is present */
        char *file;             /* "audit.log" */
        char *signing_key_file; /* "audit.key": Ed25519 secret key, mode 0600 */
        char *public_key_file;  /* "audit.pub": the default of tcgw audit verify */
        char *sensitive_keys[GW_CONFIG_MAX_OVERRIDES]; /* NULL-terminated; none: the defaults */
        size_t max_file_bytes;                         /* 100 MiB; rotate past it */
        long sign_interval_ms;                         /* 10000 */
        long hold_ms;   /* 2000: a forwarded call waits this long for a failing disk */
        bool fail_open; /* false */
        bool to_stdout; /* "stdout": false */
        struct {
            bool enabled;           /* the "syslog" section is present */
            char *address;          /* "127.0.0.1" */
            uint16_t port;          /* 514 */
            bool tls;               /* false */
            char *ca_file;          /* NULL: the system's */
            unsigned queue_records; /* 10000 */
        } syslog;
    } audit;
    /* ClientToken idempotency: only when "idempotency" is present (and "enabled" is not false). */
    struct {
        bool enabled;         /* the "idempotency" section is present */
        long replay_window_s; /* 300: a finished call's answer is replayed this long */
        size_t max_entries;   /* 65536: tokens held at once; more are refused */
    } idempotency;
    /* Safe retries: only when "retries" is present (and "enabled" is not false). */
    struct {
        bool enabled;             /* the "retries" section is present */
        unsigned max_attempts;    /* 3: the first attempt included */
        long base_ms;             /* 50 */
        long cap_ms;              /* 1000 */
        double budget_ratio;      /* 0.1: retries per call over the window, per worker */
        unsigned budget_min;      /* 10: retries per window allowed whatever the calls */
        unsigned budget_window_s; /* 10 */
    } retries;
    /* Per-call deadlines. */
    struct {
        long default_ms; /* 0: upstream.timeout_ms */
        long max_ms;     /* 0: default_ms; the most X-Tcgw-Timeout-Ms may ask */
    } deadlines;
};

/*
 * Returns the defaults (new; free with gw_config_free), or NULL when out of memory.
 */
struct gw_config *gw_config_defaults(void);

/*
 * Loads path (at most 1 MiB) over the defaults. Unknown keys, wrong types and values out of range
 * are errors. On failure *out is untouched and msg, one line, names the file, the line of the key
 * (unless the key is written with escapes) and the fix: "FILE:LINE: \"key\" must be ...".
 * GW_ERR_IO when the file cannot be read, GW_ERR_INVALID for its contents, GW_ERR_NOMEM.
 * On success *out is new.
 */
enum gw_err gw_config_load(const char *path, struct gw_config **out, char *msg,
                           size_t msglen) GW_MUST_CHECK;

/* Accepts NULL. */
void gw_config_free(struct gw_config *cfg);

#endif
