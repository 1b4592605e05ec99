/*
 * config_keys.c: the keys of the configuration file, as data (the tables config.c reads), and
 * the defaults and free of struct gw_config.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/config_int.h"

#define DEFAULT_BODY_BYTES ((size_t)1 << 20)
#define DEFAULT_RESPONSE_BYTES ((size_t)8 << 20)

struct gw_config *gw_config_defaults(void)
{
    struct gw_config *cfg = calloc(1, sizeof *cfg);
    if (cfg == NULL) {
        return NULL;
    }
    const char *key_env = getenv("TCGW_MASTER_KEY_FILE");
    cfg->listen_address = strdup("127.0.0.1");
    cfg->listen_port = 8080;
    cfg->threads = 2;
    cfg->max_connections = 4096;
    cfg->max_connections_per_address = 2048;
    cfg->max_calls_in_flight = 4096;
    cfg->request_timeout_ms = 30000;
    cfg->memory_budget_bytes = (size_t)256 << 20;
    cfg->max_body_bytes = DEFAULT_BODY_BYTES;
    cfg->spec_dir = strdup("specs");
    cfg->master_key_file = strdup(key_env != NULL && key_env[0] != '\0' ? key_env : "master.key");
    cfg->credential_store = strdup("credentials.store");
    cfg->credential = strdup("default");
    cfg->callers_file = strdup("callers.json");
    cfg->policy_dir = strdup("policies");
    cfg->accept = GW_ACCEPT_TOKEN | GW_ACCEPT_SDK_KEY;
    cfg->plain_listener = true;
    cfg->tls.listen_address = strdup("127.0.0.1");
    cfg->tls.listen_port = 8443;
    cfg->tls.accept = GW_ACCEPT_CERT;
    cfg->upstream.endpoint_suffix = strdup("tencentcloudapi.com");
    cfg->upstream.connect_timeout_ms = 5000;
    cfg->upstream.timeout_ms = 30000;
    cfg->upstream.max_response_bytes = DEFAULT_RESPONSE_BYTES;
    cfg->upstream.max_host_connections = 256;
    cfg->limits.default_rate = 20;
    cfg->limits.fair_share = true;
    cfg->limits.max_buckets = (size_t)1 << 16;
    cfg->limits.backend = strdup("local");
    cfg->limits.redis.address = strdup("127.0.0.1");
    cfg->limits.redis.port = 6379;
    cfg->limits.redis.replicas = 1;
    cfg->limits.redis.timeout_ms = 50;
    cfg->limits.redis.key_prefix = strdup("tcgw");
    if (cfg->limits.backend == NULL || cfg->limits.redis.address == NULL ||
        cfg->limits.redis.key_prefix == NULL) {
        gw_config_free(cfg);
        return NULL;
    }
    cfg->log_format = strdup("text");
    cfg->admin.listen_address = strdup("127.0.0.1");
    cfg->admin.listen_port = 9090;
    cfg->admin.max_clock_skew_ms = 240000;
    if (cfg->log_format == NULL || cfg->admin.listen_address == NULL) {
        gw_config_free(cfg);
        return NULL;
    }
    cfg->idempotency.replay_window_s = 300;
    cfg->idempotency.max_entries = (size_t)1 << 16;
    cfg->retries.max_attempts = 3;
    cfg->retries.base_ms = 50;
    cfg->retries.cap_ms = 1000;
    cfg->retries.budget_ratio = 0.1;
    cfg->retries.budget_min = 10;
    cfg->retries.budget_window_s = 10;
    cfg->audit.file = strdup("audit.log");
    cfg->audit.signing_key_file = strdup("audit.key");
    cfg->audit.public_key_file = strdup("audit.pub");
    cfg->audit.max_file_bytes = (size_t)100 << 20;
    cfg->audit.sign_interval_ms = 10000;
    cfg->audit.hold_ms = 2000;
    cfg->audit.syslog.address = strdup("127.0.0.1");
    cfg->audit.syslog.port = 514;
    cfg->audit.syslog.queue_records = 10000;
    if (cfg->audit.file == NULL || cfg->audit.signing_key_file == NULL ||
        cfg->audit.public_key_file == NULL || cfg->audit.syslog.address == NULL) {
        gw_config_free(cfg);
        return NULL;
    }
    if (cfg->listen_address == NULL || cfg->spec_dir == NULL || cfg->master_key_file == NULL ||
        cfg->credential_store == NULL || cfg->credential == NULL || cfg->callers_file == NULL ||
        cfg->policy_dir == NULL || cfg->tls.listen_address == NULL ||
        cfg->upstream.endpoint_suffix == NULL) {
        gw_config_free(cfg);
        return NULL;
    }
    return cfg;
}

void gw_config_free(struct gw_config *cfg)
{
    if (cfg == NULL) {
        return;
    }
    free(cfg->listen_address);
    free(cfg->spec_dir);
    free(cfg->master_key_file);
    free(cfg->credential_store);
    free(cfg->credential);
    free(cfg->callers_file);
    free(cfg->policy_dir);
    free(cfg->unauthenticated_caller);
    free(cfg->tls.listen_address);
    free(cfg->tls.cert_file);
    free(cfg->tls.key_file);
    free(cfg->tls.client_ca_file);
    free(cfg->upstream.endpoint_suffix);
    free(cfg->upstream.ca_file);
    for (size_t i = 0; i < GW_CONFIG_MAX_OVERRIDES; i++) {
        free(cfg->upstream.connect_to[i]);
        free(cfg->upstream.resolve[i]);
        free(cfg->audit.sensitive_keys[i]);
    }
    for (size_t i = 0; i < GW_CONFIG_MAX_RATES; i++) {
        free(cfg->limits.actions[i].name);
        free(cfg->limits.services[i].name);
        free(cfg->limits.callers[i].name);
    }
    free(cfg->log_format);
    free(cfg->admin.listen_address);
    free(cfg->limits.backend);
    free(cfg->limits.redis.address);
    free(cfg->limits.redis.key_prefix);
    free(cfg->audit.file);
    free(cfg->audit.signing_key_file);
    free(cfg->audit.public_key_file);
    free(cfg->audit.syslog.address);
    free(cfg->audit.syslog.ca_file);
    free(cfg);
}

/*
 * The offset of member in struct gw_config, checked at compile time to have the pointer type PT
 * (comparing distinct pointer types is a warning, an error with -Werror): a table row cannot
 * name a kind that does not match its slot.
 */
#define SLOT(member, PT)                                                                           \
    (offsetof(struct gw_config, member) + 0 * sizeof(&((struct gw_config *)0)->member == (PT)0))

#define STRING(name, member, desc)                                                                 \
    {                                                                                              \
        name, KIND_STRING, SLOT(member, char **), 0, 0, NULL, desc                                 \
    }
#define PATH(name, member, desc)                                                                   \
    {                                                                                              \
        name, KIND_PATH, SLOT(member, char **), 0, 0, NULL, desc                                   \
    }
#define BOOL(name, member, desc)                                                                   \
    {                                                                                              \
        name, KIND_BOOL, SLOT(member, bool *), 0, 0, NULL, desc                                    \
    }
#define U16(name, member, lo, hi, desc)                                                            \
    {                                                                                              \
        name, KIND_U16, SLOT(member, uint16_t *), lo, hi, NULL, desc                               \
    }
#define UNSIGNED(name, member, lo, hi, desc)                                                       \
    {                                                                                              \
        name, KIND_UNSIGNED, SLOT(member, unsigned *), lo, hi, NULL, desc                          \
    }
#define SIZE(name, member, lo, hi, desc)                                                           \
    {                                                                                              \
        name, KIND_SIZE, SLOT(member, size_t *), lo, hi, NULL, desc                                \
    }
#define LONG(name, member, lo, hi, desc)                                                           \
    {                                                                                              \
        name, KIND_LONG, SLOT(member, long *), lo, hi, NULL, desc                                  \
    }
#define LIST(name, member, desc)                                                                   \
    {                                                                                              \
        name, KIND_LIST, SLOT(member, char *(*)[GW_CONFIG_MAX_OVERRIDES]), 0, 0, NULL, desc        \
    }
#define NAME(name, member, desc)                                                                   \
    {                                                                                              \
        name, KIND_NAME, SLOT(member, char **), 0, 0, NULL, desc                                   \
    }
#define ACCEPT(name, member, allowed, desc)                                                        \
    {                                                                                              \
        name, KIND_ACCEPT, SLOT(member, unsigned *), 0, allowed, NULL, desc                        \
    }
#define REFUSED(name, why)                                                                         \
    {                                                                                              \
        name, KIND_REFUSED, 0, 0, 0, NULL, why                                                     \
    }
#define SECTION(name, table, desc)                                                                 \
    {                                                                                              \
        name, KIND_SECTION, 0, 0, 0, &table, desc                                                  \
    }
#define RATE(name, member, lo, hi, desc)                                                           \
    {                                                                                              \
        name, KIND_RATE, SLOT(member, double *), lo, hi, NULL, desc                                \
    }
#define RATES(name, member, desc)                                                                  \
    {                                                                                              \
        name, KIND_RATES, SLOT(member, struct gw_config_rate(*)[GW_CONFIG_MAX_RATES]), 0, 0, NULL, \
            desc                                                                                   \
    }
/* A section whose presence is recorded in the bool member (it turns something on). */
#define SECTION_FLAG(name, table, member, desc)                                                    \
    {                                                                                              \
        name, KIND_SECTION, SLOT(member, bool *), 1, 0, &table, desc                               \
    }

static const struct key upstream_keys[] = {
    STRING("endpoint_suffix", upstream.endpoint_suffix, "domain of Tencent Cloud API endpoints"),
    PATH("ca_file", upstream.ca_file, "PEM file of CA certificates trusted upstream"),
    LONG("connect_timeout_ms", upstream.connect_timeout_ms, 1, 600000,
         "time allowed to connect, in ms"),
    LONG("timeout_ms", upstream.timeout_ms, 1, 3600000, "time allowed for a whole call, in ms"),
    SIZE("max_response_bytes", upstream.max_response_bytes, 1024, (json_int_t)1 << 30,
         "largest answer accepted"),
    UNSIGNED("max_host_connections", upstream.max_host_connections, 1, 10000,
             "connections kept per upstream host"),
    LIST("connect_to", upstream.connect_to, "CURLOPT_CONNECT_TO entries"),
    LIST("resolve", upstream.resolve, "CURLOPT_RESOLVE entries"),
};

static const struct section upstream_section = {"upstream", upstream_keys,
                                                sizeof upstream_keys / sizeof upstream_keys[0]};

static const struct key tls_keys[] = {
    STRING("listen_address", tls.listen_address, "numeric address of the HTTPS listener"),
    U16("listen_port", tls.listen_port, 0, 65535,
        "TCP port of the HTTPS listener; 0 picks a free one"),
    PATH("cert_file", tls.cert_file, "PEM file of the server certificate chain"),
    PATH("key_file", tls.key_file, "PEM file of the server private key, mode 0600"),
    PATH("client_ca_file", tls.client_ca_file,
         "PEM file of the CA certificates client certificates must chain to"),
    ACCEPT("accept", tls.accept, GW_ACCEPT_CERT | GW_ACCEPT_TOKEN | GW_ACCEPT_SDK_KEY,
           "identity methods of the HTTPS listener: \"certificate\", \"token\", \"sdk_key\""),
    REFUSED("unauthenticated_caller",
            "is not allowed in \"tls\": callers of the HTTPS listener identify themselves (set "
            "it at the top level, for the plain listener of a sidecar on 127.0.0.1)"),
};

static const struct section tls_section = {"tls", tls_keys, sizeof tls_keys / sizeof tls_keys[0]};

static const struct key redis_keys[] = {
    STRING("address", limits.redis.address, "numeric address of the Redis server"),
    U16("port", limits.redis.port, 1, 65535, "TCP port of the Redis server"),
    UNSIGNED("replicas", limits.redis.replicas, 1, 10000,
             "gateways sharing the account: without Redis each keeps 1/replicas of each limit"),
    LONG("timeout_ms", limits.redis.timeout_ms, 1, 10000,
         "time allowed for a Redis answer before falling back to local limits, in ms"),
    STRING("key_prefix", limits.redis.key_prefix, "prefix of the Redis keys of the buckets"),
};

static const struct section redis_section = {"redis", redis_keys,
                                             sizeof redis_keys / sizeof redis_keys[0]};

static const struct key limits_keys[] = {
    BOOL("enabled", limits.enabled, "false turns the limits off"),
    RATE("default_rate", limits.default_rate, 0, 1000000,
         "calls per second per credential and action without a rule"),
    RATE("default_burst", limits.default_burst, 0, 1000000,
         "calls at once per credential and action without a rule"),
    RATES("actions", limits.actions, "\"service.Action\": calls per second"),
    RATES("services", limits.services, "\"service\": calls per second per action"),
    RATES("callers", limits.callers, "\"caller\": the caller's quota, calls per second"),
    BOOL("fair_share", limits.fair_share, "each caller of a credential has an equal share"),
    LONG("max_wait_ms", limits.max_wait_ms, 0, 10000,
         "time a call may wait for its turn instead of a refusal, in ms"),
    SIZE("max_buckets", limits.max_buckets, 64, (json_int_t)1 << 24,
         "buckets the gateway can hold"),
    STRING("backend", limits.backend, "\"local\" or \"redis\""),
    SECTION("redis", redis_section, "the Redis server that holds the shared buckets"),
};

const struct section gw_config_limits_section = {"limits", limits_keys,
                                                 sizeof limits_keys / sizeof limits_keys[0]};

static const struct key syslog_keys[] = {
    STRING("address", audit.syslog.address, "host or address of the syslog collector"),
    U16("port", audit.syslog.port, 1, 65535, "TCP port of the syslog collector"),
    BOOL("tls", audit.syslog.tls, "true speaks TLS to the collector"),
    PATH("ca_file", audit.syslog.ca_file, "PEM file of the CA certificates of the collector"),
    UNSIGNED("queue_records", audit.syslog.queue_records, 1, 10000000,
             "records held while the collector is away"),
};

static const struct section syslog_section = {"syslog", syslog_keys,
                                              sizeof syslog_keys / sizeof syslog_keys[0]};

static const struct key audit_keys[] = {
    PATH("file", audit.file, "the audit log file"),
    PATH("signing_key_file", audit.signing_key_file,
         "the Ed25519 secret key that seals the log (tcgw audit keygen), mode 0600"),
    PATH("public_key_file", audit.public_key_file, "the public key tcgw audit verify uses"),
    LIST("sensitive_keys", audit.sensitive_keys,
         "parameter names whose values are recorded as an HMAC"),
    SIZE("max_file_bytes", audit.max_file_bytes, 0, (json_int_t)1 << 40,
         "size past which the log is rotated; 0 never"),
    LONG("sign_interval_ms", audit.sign_interval_ms, 100, 86400000,
         "longest time between two seals, in ms"),
    LONG("hold_ms", audit.hold_ms, 0, 600000,
         "how long a forwarded call waits for a failing audit disk, in ms"),
    BOOL("fail_open", audit.fail_open, "true answers calls whose record cannot be written"),
    BOOL("stdout", audit.to_stdout, "true also writes each record to standard output"),
    SECTION_FLAG("syslog", syslog_section, audit.syslog.enabled,
                 "shipping records to a syslog collector"),
};

static const struct section audit_section = {"audit", audit_keys,
                                             sizeof audit_keys / sizeof audit_keys[0]};

static const struct key admin_keys[] = {
    STRING("listen_address", admin.listen_address, "numeric address of the admin listener"),
    U16("listen_port", admin.listen_port, 0, 65535,
        "TCP port of the admin listener; 0 picks a free one"),
    LONG("max_clock_skew_ms", admin.max_clock_skew_ms, 1000, 290000,
         "/readyz fails when Tencent's Date is further from this host's clock, in ms"),
};

static const struct section admin_section = {"admin", admin_keys,
                                             sizeof admin_keys / sizeof admin_keys[0]};

static const struct key idempotency_keys[] = {
    BOOL("enabled", idempotency.enabled, "false turns ClientToken idempotency off"),
    LONG("replay_window_s", idempotency.replay_window_s, 0, 86400,
         "seconds a finished call's answer is replayed to a repeat of its ClientToken"),
    SIZE("max_entries", idempotency.max_entries, 16, (json_int_t)1 << 24,
         "ClientTokens held at once"),
};

static const struct section idempotency_section = {
    "idempotency", idempotency_keys, sizeof idempotency_keys / sizeof idempotency_keys[0]};

static const struct key retries_keys[] = {
    BOOL("enabled", retries.enabled, "false turns retries off"),
    UNSIGNED("max_attempts", retries.max_attempts, 1, 10, "attempts per call, the first included"),
    LONG("base_ms", retries.base_ms, 1, 60000, "the longest wait before the first retry, in ms"),
    LONG("cap_ms", retries.cap_ms, 1, 600000, "the longest wait before any retry, in ms"),
    RATE("budget_ratio", retries.budget_ratio, 0, 1, "retries per call over the window"),
    UNSIGNED("budget_min", retries.budget_min, 0, 100000,
             "retries allowed per window whatever the calls"),
    UNSIGNED("budget_window_s", retries.budget_window_s, 1, 60,
             "the sliding window of the retry budget, in seconds"),
};

static const struct section retries_section = {"retries", retries_keys,
                                               sizeof retries_keys / sizeof retries_keys[0]};

static const struct key deadlines_keys[] = {
    LONG("default_ms", deadlines.default_ms, 0, 3600000,
         "a call's deadline from its arrival, in ms; 0: upstream.timeout_ms"),
    LONG("max_ms", deadlines.max_ms, 0, 3600000,
         "the longest deadline X-Tcgw-Timeout-Ms may ask, in ms; 0: default_ms"),
};

static const struct section deadlines_section = {"deadlines", deadlines_keys,
                                                 sizeof deadlines_keys / sizeof deadlines_keys[0]};

static const struct key top_keys[] = {
    STRING("listen_address", listen_address, "numeric address to listen on"),
    U16("listen_port", listen_port, 0, 65535, "TCP port to listen on; 0 picks a free one"),
    UNSIGNED("threads", threads, 1, 64, "worker threads"),
    UNSIGNED("max_connections", max_connections, 1, 100000, "connections served at once"),
    UNSIGNED("max_connections_per_address", max_connections_per_address, 1, 100000,
             "connections served at once from one address"),
    UNSIGNED("max_calls_in_flight", max_calls_in_flight, 1, 1000000,
             "calls waiting for the upstream at once"),
    LONG("request_timeout_ms", request_timeout_ms, 100, 3600000,
         "time allowed to receive a whole request, in ms"),
    SIZE("memory_budget_bytes", memory_budget_bytes, (json_int_t)1 << 20, (json_int_t)1 << 40,
         "bodies and answers held at once"),
    SIZE("max_body_bytes", max_body_bytes, 2, (json_int_t)64 << 20, "largest request body"),
    PATH("spec_dir", spec_dir, "directory of API descriptions"),
    PATH("master_key_file", master_key_file, "file of the master key"),
    PATH("credential_store", credential_store, "file of encrypted credentials"),
    STRING("credential", credential, "name of the credential that signs"),
    PATH("callers_file", callers_file, "file of the callers and how each is identified"),
    PATH("policy_dir", policy_dir, "directory of policy files"),
    ACCEPT("accept", accept, GW_ACCEPT_TOKEN | GW_ACCEPT_SDK_KEY,
           "identity methods of the plain listener: \"token\", \"sdk_key\""),
    NAME("unauthenticated_caller", unauthenticated_caller,
         "the caller a call without identity is, on the plain listener"),
    BOOL("plain_listener", plain_listener, "false listens on the \"tls\" listener alone"),
    BOOL("require_locked_memory", require_locked_memory,
         "true refuses to hold keys in memory that cannot be locked in RAM (no swap)"),
    SECTION("upstream", upstream_section, "how calls reach Tencent Cloud"),
    SECTION_FLAG("tls", tls_section, tls.enabled,
                 "the HTTPS listener that verifies client certificates"),
    SECTION_FLAG("limits", gw_config_limits_section, limits.enabled,
                 "rate limits per credential and action, and per caller"),
    SECTION_FLAG("audit", audit_section, audit.enabled,
                 "the audit log: one durable, signed record per call"),
    STRING("log_format", log_format, "\"text\" (key=value lines) or \"json\""),
    SECTION_FLAG("admin", admin_section, admin.enabled,
                 "the admin listener: /healthz, /readyz and /metrics"),
    SECTION_FLAG("idempotency", idempotency_section, idempotency.enabled,
                 "ClientToken idempotency: repeats get the first call's answer"),
    SECTION_FLAG("retries", retries_section, retries.enabled,
                 "safe retries of reads and of calls with a ClientToken"),
    SECTION("deadlines", deadlines_section, "per-call deadlines"),
};

const struct section gw_config_top_section = {NULL, top_keys, sizeof top_keys / sizeof top_keys[0]};
