/* tcgw serve: wires config, API descriptions, vault, upstream, pipeline and server together. */
#include <curl/curl.h>
#include <malloc.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "access/access.h"
#include "admin/admin.h"
#include "apispec/apispec.h"
#include "audit/audit.h"
#include "cli/cli.h"
#include "core/budget.h"
#include "core/config.h"
#include "core/file.h"
#include "core/log.h"
#include "idem/idem.h"
#include "identity/callers.h"
#include "limits/limiter.h"
#include "limits/limits.h"
#include "limits/redis.h"
#include "metrics/metrics.h"
#include "sts/sts.h"
#include "vault/vault.h"
#include "worker/worker.h"

struct serve_args {
    const char *config_path;
    const char *listen;
    long port;         /* -1: from the config */
    int passphrase_fd; /* the store's passphrase, when it has one; -1: the terminal */
};

static const char usage_text[] =
    "usage: tcgw serve [--config FILE] [--listen ADDR] [--port N] [--passphrase-fd N]\n"
    "--passphrase-fd N: read the credential store's passphrase from file descriptor N (for a\n"
    "store made with 'tcgw store init --passphrase'); without it, it is asked on the terminal.\n";

static int parse_args(int argc, char **argv, struct serve_args *a)
{
    a->config_path = NULL;
    a->listen = NULL;
    a->port = -1;
    a->passphrase_fd = -1;
    for (int i = 1; i < argc; i++) {
        const char *value = NULL;
        int m;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(usage_text, stdout);
            return -1;
        }
        if ((m = gw_cli_take_value(argc, argv, &i, "--config", &value)) != 0) {
            if (m < 0) {
                return gw_cli_usage_error("serve", "--config needs a FILE", "", usage_text);
            }
            a->config_path = value;
        } else if ((m = gw_cli_take_value(argc, argv, &i, "--listen", &value)) != 0) {
            if (m < 0) {
                return gw_cli_usage_error("serve", "--listen needs an ADDR", "", usage_text);
            }
            a->listen = value;
        } else if ((m = gw_cli_take_value(argc, argv, &i, "--port", &value)) != 0) {
            char *end = NULL;
            a->port = m > 0 ? strtol(value, &end, 10) : -1;
            if (m < 0 || end == value || *end != '\0' || a->port < 0 || a->port > 65535) {
                return gw_cli_usage_error("serve", "--port takes a number from 0 to 65535", "",
                                          usage_text);
            }
        } else if ((m = gw_cli_take_value(argc, argv, &i, "--passphrase-fd", &value)) != 0) {
            if (m < 0 || gw_cli_parse_fd("serve", value, &a->passphrase_fd) != 0) {
                return gw_cli_usage_error("serve", "give a number to ", "--passphrase-fd",
                                          usage_text);
            }
        } else if (argv[i][0] == '-') {
            return gw_cli_usage_error("serve", "unknown option ", argv[i], usage_text);
        } else {
            return gw_cli_usage_error("serve", "takes no arguments besides the options", "",
                                      usage_text);
        }
    }
    return 0;
}

/* One line on what the gateway now judges calls by. Names and counts only: nothing secret. */
static void log_access(struct gw_access *access, const char *event)
{
    struct gw_access_snapshot *snap = gw_access_current(access);
    bool reload = strcmp(event, "reload") == 0;
    fprintf(stderr, "level=info event=%s%s result=%s generation=%llu callers=%zu statements=%zu\n",
            event, reload ? " signal=HUP" : "", reload ? "loaded" : "ok",
            (unsigned long long)gw_access_snapshot_generation(snap),
            gw_callers_count(gw_access_callers(snap)), gw_access_statement_count(snap));
    gw_access_release(snap);
}

static int load_config(const struct serve_args *a, struct gw_config **out)
{
    char msg[512] = "out of memory";
    struct gw_config *cfg = NULL;
    if (a->config_path != NULL) {
        if (gw_config_load(a->config_path, &cfg, msg, sizeof msg) != GW_OK) {
            fprintf(stderr, "tcgw: %s\n", msg);
            return 1;
        }
    } else if ((cfg = gw_config_defaults()) == NULL) {
        fprintf(stderr, "tcgw: out of memory\n");
        return 1;
    }
    if (a->listen != NULL) {
        char *s = strdup(a->listen);
        if (s == NULL) {
            gw_config_free(cfg);
            return 1;
        }
        free(cfg->listen_address);
        cfg->listen_address = s;
    }
    if (a->port >= 0) {
        cfg->listen_port = (uint16_t)a->port;
    }
    *out = cfg;
    return 0;
}

/* The rates of a config map, as the limits take them; returns how many. */
static size_t rates_of(const struct gw_config_rate *from, struct gw_limits_rate *to)
{
    size_t n = 0;
    while (n < GW_CONFIG_MAX_RATES && from[n].name != NULL) {
        to[n] = (struct gw_limits_rate){from[n].name, from[n].rate, from[n].burst};
        n++;
    }
    return n;
}

/* The rate limits of the config: *out NULL when they are off. */
static enum gw_err open_limits(const struct gw_config *cfg, struct gw_limits **out)
{
    struct gw_limits_rate actions[GW_CONFIG_MAX_RATES], services[GW_CONFIG_MAX_RATES],
        callers[GW_CONFIG_MAX_RATES];
    *out = NULL;
    if (!cfg->limits.enabled) {
        return GW_OK;
    }
    struct gw_limits_options o = {
        .default_rate = cfg->limits.default_rate,
        .default_burst = cfg->limits.default_burst,
        .actions = actions,
        .action_count = rates_of(cfg->limits.actions, actions),
        .services = services,
        .service_count = rates_of(cfg->limits.services, services),
        .callers = callers,
        .caller_count = rates_of(cfg->limits.callers, callers),
        .fair_share = cfg->limits.fair_share,
        .max_buckets = cfg->limits.max_buckets,
    };
    enum gw_err err = gw_limits_new(&o, out);
    if (err == GW_OK) {
        bool redis = strcmp(cfg->limits.backend, "redis") == 0;
        fprintf(stderr,
                "level=info event=limits backend=%s default_rate=%g fair_share=%s "
                "max_wait_ms=%ld\n",
                cfg->limits.backend, cfg->limits.default_rate,
                cfg->limits.fair_share ? "true" : "false", cfg->limits.max_wait_ms);
        if (redis) {
            fprintf(stderr,
                    "level=info event=limits_backend backend=redis state=connecting "
                    "address=%s port=%u replicas=%u\n",
                    cfg->limits.redis.address, (unsigned)cfg->limits.redis.port,
                    cfg->limits.redis.replicas);
        }
    }
    return err;
}

/* Opens the audit log the "audit" section describes. */
static enum gw_err open_audit(const struct gw_config *cfg, struct gw_audit **out, char *msg,
                              size_t msglen)
{
    struct gw_audit_options ao = {
        .path = cfg->audit.file,
        .signing_key_file = cfg->audit.signing_key_file,
        .sensitive_keys = (const char *const *)cfg->audit.sensitive_keys,
        .max_file_bytes = cfg->audit.max_file_bytes,
        .sign_interval_ms = cfg->audit.sign_interval_ms,
        .hold_ms = cfg->audit.hold_ms,
        .fail_open = cfg->audit.fail_open,
        .to_stdout = cfg->audit.to_stdout,
        .syslog_address = cfg->audit.syslog.enabled ? cfg->audit.syslog.address : NULL,
        .syslog_port = cfg->audit.syslog.port,
        .syslog_tls = cfg->audit.syslog.tls,
        .syslog_ca_file = cfg->audit.syslog.ca_file,
        .syslog_queue_records = cfg->audit.syslog.queue_records,
    };
    enum gw_err err = gw_audit_open(&ao, out, msg, msglen);
    if (err != GW_OK) {
        return err;
    }
    fprintf(stderr, "level=info event=audit file=%s syslog=%s%s%u stdout=%s sensitive_keys=%s\n",
            cfg->audit.file, cfg->audit.syslog.enabled ? cfg->audit.syslog.address : "none",
            cfg->audit.syslog.enabled ? ":" : "",
            cfg->audit.syslog.enabled ? (unsigned)cfg->audit.syslog.port : 0u,
            cfg->audit.to_stdout ? "true" : "false",
            cfg->audit.sensitive_keys[0] != NULL ? "configured" : "defaults");
    if (cfg->audit.fail_open) {
        fprintf(stderr, "level=warning event=audit_fail_open note=\"WARNING: audit fail_open is "
                        "true: when the audit log cannot be written, calls are still forwarded "
                        "and answered WITHOUT a durable record (each one logs "
                        "event=audit_unrecorded). Set fail_open to false to refuse them.\"\n");
    }
    return GW_OK;
}

/* A PEM file larger than this is not one the HTTPS listener needs. */
#define MAX_PEM_BYTES ((size_t)1 << 20)

/*
 * Reads a PEM file into *out (new, NUL-terminated, in sodium_malloc memory: free with
 * sodium_free, which wipes it). checks as for gw_file_open: GW_FILE_PRIVATE for a private key.
 */
static enum gw_err read_pem(const char *path, const char *what, unsigned checks, char **out,
                            char *msg, size_t msglen)
{
    enum gw_err err;
    int fd = -1;
    struct stat st;
    char *text = NULL;
    size_t got = 0;
    if ((err = gw_file_open(path, what, checks, &fd, &st, msg, msglen)) != GW_OK) {
        goto out;
    }
    if ((size_t)st.st_size > MAX_PEM_BYTES) {
        snprintf(msg, msglen, "%s %s is larger than %zu bytes: give a PEM file", what, path,
                 MAX_PEM_BYTES);
        err = GW_ERR_INVALID;
        goto out;
    }
    if ((text = sodium_malloc((size_t)st.st_size + 1)) == NULL) {
        snprintf(msg, msglen, "out of memory");
        err = GW_ERR_NOMEM;
        goto out;
    }
    if ((err = gw_file_read_upto(fd, text, (size_t)st.st_size, &got)) != GW_OK) {
        snprintf(msg, msglen, "cannot read %s %s", what, path);
        goto out;
    }
    text[got] = '\0';
    if (got == 0 || memchr(text, '\0', got) != NULL) {
        snprintf(msg, msglen, "%s %s is empty or not text: give a PEM file", what, path);
        err = GW_ERR_INVALID;
        goto out;
    }
    *out = text;
    text = NULL;
    err = GW_OK;
out:
    sodium_free(text);
    if (fd >= 0) {
        close(fd);
    }
    return err;
}

/* The HTTPS listener's certificate, key and client CAs, from the files the config names. */
static enum gw_err read_tls(const struct gw_config *cfg, char *pem[3], char *msg, size_t msglen)
{
    enum gw_err err;
    if ((err = read_pem(cfg->tls.cert_file, "tls cert_file", GW_FILE_REGULAR, &pem[0], msg,
                        msglen)) != GW_OK ||
        (err = read_pem(cfg->tls.key_file, "tls key_file", GW_FILE_PRIVATE, &pem[1], msg,
                        msglen)) != GW_OK ||
        (err = read_pem(cfg->tls.client_ca_file, "tls client_ca_file", GW_FILE_REGULAR, &pem[2],
                        msg, msglen)) != GW_OK) {
        return err;
    }
    return GW_OK;
}

int gw_cli_serve(int argc, char **argv)
{
    int rc;
    char msg[512] = "";
    struct serve_args args;
    struct gw_config *cfg = NULL;
    struct gw_apispec *spec = NULL;
    struct gw_access *access = NULL;
    struct gw_sts *sts = NULL;
    struct gw_workers *workers = NULL;
    struct gw_budget *budget = NULL;
    struct gw_limits *limits = NULL;
    struct gw_redis_shared redis_state;
    struct gw_audit *audit = NULL;
    struct gw_metrics *metrics = NULL;
    struct gw_admin *admin = NULL;
    struct gw_idem *idem = NULL;
    char *tls_pem[3] = {NULL, NULL, NULL}; /* certificate, key, client CAs */
    bool curl_ready = false;
    struct gw_cli_master master = {0};

    if ((rc = parse_args(argc, argv, &args)) != 0) {
        rc = rc < 0 ? 0 : rc;
        goto out;
    }
    if ((rc = load_config(&args, &cfg)) != 0) {
        goto out;
    }
    rc = 1;
    if (strcmp(cfg->log_format, "json") == 0 && gw_log_start_json() != GW_OK) {
        fprintf(stderr, "tcgw: cannot set up JSON logging (log_format)\n");
        goto out;
    }
    if (sodium_init() < 0 || curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "tcgw: cannot initialise libsodium or libcurl\n");
        goto out;
    }
    curl_ready = true;
    if (cfg->require_locked_memory) {
        gw_vault_require_locked_memory(true);
        if (!gw_vault_memory_lockable()) {
            fprintf(stderr, "tcgw: \"require_locked_memory\" is true, but key memory cannot be "
                            "locked in RAM: raise RLIMIT_MEMLOCK (ulimit -l, LimitMEMLOCK= in "
                            "systemd, --ulimit memlock in docker) or grant CAP_IPC_LOCK\n");
            goto out;
        }
    }
    /* Signals are taken by sigwait below; every thread started from here inherits the mask. */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGHUP);
    if (pthread_sigmask(SIG_BLOCK, &stop_signals, NULL) != 0 ||
        signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
        fprintf(stderr, "tcgw: cannot set up signal handling\n");
        goto out;
    }

    /*
     * Large bodies and answers come and go: a fixed mmap threshold gives their memory back to the
     * system when they are freed, where glibc's adaptive one would keep it in the heap.
     */
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    if ((budget = gw_budget_new(cfg->memory_budget_bytes)) == NULL) {
        fprintf(stderr, "tcgw: out of memory\n");
        goto out;
    }
    if (gw_apispec_load_dir(cfg->spec_dir, &spec, msg, sizeof msg) != GW_OK) {
        fprintf(stderr, "tcgw: API descriptions: %s\n", msg);
        goto out;
    }
    /* A passphrase store's passphrase: read once, kept in key memory by the access. */
    if (gw_cli_master_get("serve", cfg->master_key_file, cfg->credential_store, args.passphrase_fd,
                          &master) != 0) {
        goto out;
    }
    struct gw_access_sources sources = {
        .callers_file = cfg->callers_file,
        .policy_dir = cfg->policy_dir,
        .master_key_file = cfg->master_key_file,
        .credential_store = cfg->credential_store,
        .passphrase = master.master.passphrase,
        .passphrase_len = master.master.passphrase_len,
        .spec = spec,
    };
    enum gw_err opened = gw_access_open(&sources, &access, msg, sizeof msg);
    gw_cli_master_free(&master); /* the access has its own copy */
    if (opened != GW_OK) {
        fprintf(stderr, "tcgw: callers and policies: %s\n", msg);
        goto out;
    }
    if (cfg->unauthenticated_caller != NULL) {
        struct gw_access_snapshot *snap = gw_access_current(access);
        bool known = gw_callers_find(gw_access_callers(snap), cfg->unauthenticated_caller) != NULL;
        gw_access_release(snap);
        if (!known) {
            fprintf(stderr,
                    "tcgw: \"unauthenticated_caller\" is \"%s\", which %s does not list: add it "
                    "with 'tcgw callers add %s --policy ...'\n",
                    cfg->unauthenticated_caller, cfg->callers_file, cfg->unauthenticated_caller);
            goto out;
        }
    }
    if (open_limits(cfg, &limits) != GW_OK) {
        fprintf(stderr, "tcgw: cannot set up the rate limits (\"limits\")\n");
        goto out;
    }
    gw_redis_shared_init(&redis_state, cfg->threads, cfg->limits.redis.address,
                         cfg->limits.redis.port);
    bool redis = strcmp(cfg->limits.backend, "redis") == 0;
    struct gw_limiter_options limiter = {
        .limits = limits,
        .max_wait_ms = cfg->limits.max_wait_ms,
        .redis_address = redis ? cfg->limits.redis.address : NULL,
        .redis_port = cfg->limits.redis.port,
        .redis_timeout_ms = cfg->limits.redis.timeout_ms,
        .redis_key_prefix = cfg->limits.redis.key_prefix,
        .replicas = redis ? cfg->limits.redis.replicas : 1,
        .redis_state = &redis_state,
    };
    if (cfg->idempotency.enabled &&
        (idem = gw_idem_new(cfg->idempotency.max_entries, cfg->idempotency.replay_window_s)) ==
            NULL) {
        fprintf(stderr, "tcgw: out of memory for the ClientToken table (\"idempotency\")\n");
        goto out;
    }
    if (cfg->audit.enabled && open_audit(cfg, &audit, msg, sizeof msg) != GW_OK) {
        fprintf(stderr, "tcgw: audit: %s\n", msg);
        goto out;
    }
    if (cfg->tls.enabled && read_tls(cfg, tls_pem, msg, sizeof msg) != GW_OK) {
        fprintf(stderr, "tcgw: %s\n", msg);
        goto out;
    }
    struct gw_server_options plain = {
        .address = cfg->listen_address,
        .port = cfg->listen_port,
        .max_connections = cfg->max_connections,
        .max_body_bytes = cfg->max_body_bytes,
        .max_response_bytes = cfg->upstream.max_response_bytes,
        .request_timeout_ms = cfg->request_timeout_ms,
        .max_connections_per_address = cfg->max_connections_per_address,
        .budget = budget,
        .accept = cfg->accept,
        .unauthenticated_caller = cfg->unauthenticated_caller,
    };
    struct gw_server_options tls = plain;
    tls.address = cfg->tls.listen_address;
    tls.port = cfg->tls.listen_port;
    tls.accept = cfg->tls.accept;
    tls.unauthenticated_caller = NULL; /* callers of the HTTPS listener identify themselves */
    tls.tls_cert_pem = tls_pem[0];
    tls.tls_key_pem = tls_pem[1];
    tls.tls_client_ca_pem = tls_pem[2];
    if (cfg->admin.enabled && gw_metrics_new(cfg->threads, spec, TCGW_VERSION, &metrics) != GW_OK) {
        fprintf(stderr, "tcgw: out of memory\n");
        goto out;
    }
    struct gw_workers_options wo = {
        .count = cfg->threads,
        .plain = cfg->plain_listener ? &plain : NULL,
        .tls = cfg->tls.enabled ? &tls : NULL,
        .limits = limits != NULL ? &limiter : NULL,
        .upstream =
            {
                .ca_file = cfg->upstream.ca_file,
                .connect_timeout_ms = cfg->upstream.connect_timeout_ms,
                .timeout_ms = cfg->upstream.timeout_ms,
                .max_host_connections = cfg->upstream.max_host_connections,
                .max_in_flight = (cfg->max_calls_in_flight + cfg->threads - 1) / cfg->threads,
                .connect_to = cfg->upstream.connect_to,
                .resolve = cfg->upstream.resolve,
            },
        .parts =
            {
                .spec = spec,
                .access = access,
                .endpoint_suffix = cfg->upstream.endpoint_suffix,
                .max_body_bytes = cfg->max_body_bytes,
                .max_response_bytes = cfg->upstream.max_response_bytes,
                .upstream_timeout_ms = cfg->upstream.timeout_ms,
                .budget = budget,
                .log_calls = true,
                .idem = idem,
                .redis_state = redis && limits != NULL ? &redis_state : NULL,
                .redis_key_prefix = cfg->limits.redis.key_prefix,
                .retries =
                    {
                        .enabled = cfg->retries.enabled,
                        .max_attempts = cfg->retries.max_attempts,
                        .base_ms = cfg->retries.base_ms,
                        .cap_ms = cfg->retries.cap_ms,
                        .budget_ratio = cfg->retries.budget_ratio,
                        .budget_min = cfg->retries.budget_min,
                        .budget_window_s = cfg->retries.budget_window_s,
                    },
                .deadline_ms = cfg->deadlines.default_ms,
                .max_deadline_ms = cfg->deadlines.max_ms,
            },
        .audit = audit,
        .metrics = metrics,
    };
    enum gw_err started = gw_workers_start(&wo, &workers, msg, sizeof msg);
    /* The servers loaded the certificate and key: no copy of the key stays in memory. */
    for (size_t i = 0; i < 3; i++) {
        sodium_free(tls_pem[i]);
        tls_pem[i] = NULL;
    }
    if (started != GW_OK) {
        fprintf(stderr, "tcgw: %s\n", msg);
        goto out;
    }
    /* Roles' temporary keys: assumed and refreshed by a thread of their own (sts/sts.h). */
    struct gw_sts_options sts_opts = {
        .ca_file = cfg->upstream.ca_file,
        .connect_to = cfg->upstream.connect_to,
        .resolve = cfg->upstream.resolve,
        .connect_timeout_ms = cfg->upstream.connect_timeout_ms,
        .timeout_ms = cfg->upstream.timeout_ms,
    };
    if (gw_sts_start(access, &sts_opts, &sts, msg, sizeof msg) != GW_OK) {
        fprintf(stderr, "tcgw: %s\n", msg);
        goto out;
    }

    if (cfg->admin.enabled) {
        struct gw_admin_options ao = {
            .address = cfg->admin.listen_address,
            .port = cfg->admin.listen_port,
            .access = access,
            .audit = audit,
            .redis = redis ? &redis_state : NULL,
            .sts = sts,
            .metrics = metrics,
            .workers = workers,
            .max_clock_skew_ms = cfg->admin.max_clock_skew_ms,
        };
        if (gw_admin_start(&ao, &admin, msg, sizeof msg) != GW_OK) {
            fprintf(stderr, "tcgw: %s\n", msg);
            goto out;
        }
        fprintf(stderr, "level=info event=admin_listening address=%s port=%u\n",
                cfg->admin.listen_address, (unsigned)gw_admin_port(admin));
    }
    log_access(access, "start");
    char plain_at[96] = "address=none port=none";
    char tls_at[96] = "";
    char admin_at[32] = "";
    if (cfg->plain_listener) {
        snprintf(plain_at, sizeof plain_at, "address=%s port=%u", cfg->listen_address,
                 (unsigned)gw_workers_port(workers));
    }
    if (cfg->tls.enabled) {
        snprintf(tls_at, sizeof tls_at, " tls_address=%s tls_port=%u", cfg->tls.listen_address,
                 (unsigned)gw_workers_tls_port(workers));
    }
    if (admin != NULL) {
        snprintf(admin_at, sizeof admin_at, " admin_port=%u", (unsigned)gw_admin_port(admin));
    }
    fprintf(stderr, "level=info event=listening %s%s%s workers=%u actions=%zu\n", plain_at, tls_at,
            admin_at, cfg->threads, gw_apispec_action_count(spec));
    if (cfg->plain_listener && cfg->unauthenticated_caller != NULL) {
        fprintf(stderr,
                "level=warning event=unauthenticated_caller caller=%s address=%s port=%u "
                "note=\"calls without identity are caller %s: anyone who can connect to this "
                "address is that caller\"\n",
                cfg->unauthenticated_caller, cfg->listen_address,
                (unsigned)gw_workers_port(workers), cfg->unauthenticated_caller);
    }
    fflush(stderr);

    int sig = 0;
    while (sigwait(&stop_signals, &sig) == 0 && sig == SIGHUP) {
        if (audit != NULL) {
            gw_audit_reopen(audit); /* after logrotate: seal the old file, open the path anew */
        }
        /* Calls in flight finish under the snapshot they started with. */
        if (gw_access_reload(access, msg, sizeof msg) == GW_OK) {
            log_access(access, "reload");
            gw_sts_wake(sts); /* new roles are assumed now, not at the next tick */
        } else {
            fprintf(stderr,
                    "level=error event=reload signal=HUP result=refused detail=\"%s\" "
                    "kept_generation=%llu\n",
                    msg, (unsigned long long)gw_access_generation(access));
        }
        fflush(stderr);
    }
    fprintf(stderr, "level=info event=stopping signal=%d\n", sig);
    gw_admin_set_stopping(admin);
    /*
     * Stop taking connections; calls arriving on open ones are refused as not sent. Let the calls
     * in flight finish (up to the upstream timeout), then end any still running, answer them, and
     * only then close connections, since a transfer borrows its call until it ends.
     */
    gw_workers_quiesce(workers);
    gw_workers_drain(workers, cfg->upstream.timeout_ms + 1000);
    gw_workers_stop_upstreams(workers, 1000);
    rc = 0;
out:
    gw_cli_master_free(&master);
    for (size_t i = 0; i < 3; i++) {
        sodium_free(tls_pem[i]);
    }
    gw_admin_stop(admin); /* it reads the workers and the audit log */
    gw_sts_stop(sts);
    gw_workers_stop(workers);
    gw_metrics_free(metrics);
    gw_limits_free(limits);
    gw_idem_free(idem);    /* after the workers: their ports are gone */
    gw_audit_close(audit); /* after the workers: every call's record is queued by then */
    gw_access_free(access);
    gw_apispec_free(spec);
    gw_budget_free(budget);
    gw_config_free(cfg);
    if (curl_ready) {
        curl_global_cleanup();
    }
    gw_log_stop(); /* the last lines are written */
    return rc;
}
