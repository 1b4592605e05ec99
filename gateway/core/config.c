#include "core/config.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/jsonpos.h"

#define DEFAULT_BODY_BYTES ((size_t)1 << 20)
#define DEFAULT_RESPONSE_BYTES ((size_t)8 << 20)
/* A configuration file larger than this is refused before it is parsed. */
#define MAX_CONFIG_BYTES ((size_t)1 << 20)

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
 * The keys of the file, as data: each section of the file is a table of keys, and each key says
 * how its value is checked and where in struct gw_config it lands. A new section is a new table
 * and one KIND_SECTION row; the loader below does not change.
 */
enum kind {
    KIND_STRING,   /* char *, non-empty */
    KIND_PATH,     /* char *, non-empty, relative to the file's directory */
    KIND_BOOL,     /* bool */
    KIND_U16,      /* uint16_t */
    KIND_UNSIGNED, /* unsigned */
    KIND_SIZE,     /* size_t */
    KIND_LONG,     /* long */
    KIND_LIST,     /* char *[GW_CONFIG_MAX_OVERRIDES], NULL-terminated non-empty strings */
    KIND_NAME,     /* char *, a caller name: [A-Za-z0-9._-], 1..GW_CALL_NAME_MAX characters */
    KIND_ACCEPT,   /* unsigned, GW_ACCEPT_* bits from a list of method names; max: bits allowed */
    KIND_REFUSED,  /* a key that must not be in this section: description says why */
    KIND_SECTION,  /* a JSON object read with its own table; min 1: offset is its "present" flag */
    KIND_RATE,     /* double, a number from min to max */
    KIND_RATES,    /* struct gw_config_rate[GW_CONFIG_MAX_RATES]: {"name": rate or {rate, burst}} */
};

struct section;

struct key {
    const char *name;
    enum kind kind;
    size_t offset;                 /* of the slot in struct gw_config */
    json_int_t min, max;           /* integer kinds: the accepted range; see enum kind */
    const struct section *section; /* KIND_SECTION */
    const char *description;       /* a few words, for messages */
};

struct section {
    const char *name; /* NULL for the top level */
    const struct key *keys;
    size_t count;
};

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

/* The identity methods, as the accept lists name them. */
static const struct {
    const char *name;
    unsigned bit;
} methods[] = {
    {"token", GW_ACCEPT_TOKEN},
    {"sdk_key", GW_ACCEPT_SDK_KEY},
    {"certificate", GW_ACCEPT_CERT},
};

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

static const struct section limits_section = {"limits", limits_keys,
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
    SECTION_FLAG("limits", limits_section, limits.enabled,
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

static const struct section top_section = {NULL, top_keys, sizeof top_keys / sizeof top_keys[0]};

/* The loader's state: where we are, for messages that name the file, the line and the key. */
struct loader {
    const char *path;
    const char *dir;  /* directory of path, for relative paths */
    const char *text; /* the file's bytes (valid JSON once parsed), to find a key's line */
    size_t len;
    char *msg;
    size_t msglen;
};

/* ---- messages ---------------------------------------------------------------------------- */

/* "<file>:<line>: \"key\" what", the line being that of the key in its section. */
static enum gw_err fail(struct loader *ld, const struct section *sec, const char *key,
                        const char *what)
{
    const struct gw_jsonpos_step steps[2] = {{sec->name, 0}, {key, 0}};
    size_t n = sec->name != NULL ? 2 : 1;
    int line = gw_jsonpos_line(ld->text, ld->len, sec->name != NULL ? steps : steps + 1, n);
    if (line > 0) {
        snprintf(ld->msg, ld->msglen, "%s:%d: \"%s\" %s", ld->path, line, key, what);
    } else {
        snprintf(ld->msg, ld->msglen, "%s: \"%s\" %s", ld->path, key, what);
    }
    return GW_ERR_INVALID;
}

/* Edit distance of two short names, to suggest the key that was meant. */
static size_t distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t row[64];
    if (la >= 64 || lb >= 64) {
        return SIZE_MAX;
    }
    for (size_t j = 0; j <= lb; j++) {
        row[j] = j;
    }
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            best = up + 1 < best ? up + 1 : best;
            best = row[j - 1] + 1 < best ? row[j - 1] + 1 : best;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

static enum gw_err fail_unknown(struct loader *ld, const struct section *sec, const char *key)
{
    const char *best = NULL;
    size_t best_d = 3; /* farther than two edits is no suggestion */
    for (size_t i = 0; i < sec->count; i++) {
        size_t d = distance(key, sec->keys[i].name);
        if (d < best_d) {
            best = sec->keys[i].name;
            best_d = d;
        }
    }
    char what[256];
    char of[64] = "";
    char hint[96] = "";
    if (sec->name != NULL) {
        snprintf(of, sizeof of, " of \"%s\"", sec->name);
    }
    if (best != NULL) {
        snprintf(hint, sizeof hint, "did you mean \"%s\"? ", best);
    }
    snprintf(what, sizeof what, "is not a known key%s (%ssee README.md, Configuration)", of, hint);
    return fail(ld, sec, key, what);
}

/* "must be <rule> (<description>)". */
static enum gw_err fail_value(struct loader *ld, const struct section *sec, const struct key *k,
                              const char *rule)
{
    char what[256];
    snprintf(what, sizeof what, "must be %s (%s)", rule, k->description);
    return fail(ld, sec, k->name, what);
}

/* ---- values ------------------------------------------------------------------------------ */

static enum gw_err take_string(const json_t *v, char **slot)
{
    char *s = strdup(json_string_value(v));
    if (s == NULL) {
        return GW_ERR_NOMEM;
    }
    free(*slot);
    *slot = s;
    return GW_OK;
}

/* p made absolute against the file's directory. */
static enum gw_err take_path(struct loader *ld, const char *p, char **slot)
{
    char *s;
    if (p[0] == '/') {
        s = strdup(p);
    } else {
        size_t n = strlen(ld->dir) + 1 + strlen(p) + 1;
        s = malloc(n);
        if (s != NULL) {
            snprintf(s, n, "%s/%s", ld->dir, p);
        }
    }
    if (s == NULL) {
        return GW_ERR_NOMEM;
    }
    free(*slot);
    *slot = s;
    return GW_OK;
}

static bool is_text(const json_t *v)
{
    return json_is_string(v) && json_string_length(v) > 0;
}

static enum gw_err take_list(struct loader *ld, const struct section *sec, const struct key *k,
                             const json_t *v, char **slots)
{
    enum gw_err err;
    size_t i;
    json_t *item;
    if (!json_is_array(v) || json_array_size(v) >= GW_CONFIG_MAX_OVERRIDES) {
        return fail_value(ld, sec, k, "a list of at most 15 strings");
    }
    json_array_foreach (v, i, item) {
        if (!is_text(item)) {
            return fail_value(ld, sec, k, "a list of non-empty strings");
        }
        if ((err = take_string(item, &slots[i])) != GW_OK) {
            return err;
        }
    }
    return GW_OK;
}

/* A caller name: the rule of vault names, so that it can name an entry of the callers file. */
static bool is_name(const json_t *v)
{
    if (!json_is_string(v)) {
        return false;
    }
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (n == 0 || n > GW_CALL_NAME_MAX ||
        strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                  "0123456789._-") != n) {
        return false;
    }
    return true;
}

/* A list of identity method names, stored as GW_ACCEPT_* bits; k->max holds those allowed here. */
static enum gw_err take_accept(struct loader *ld, const struct section *sec, const struct key *k,
                               const json_t *v, unsigned *slot)
{
    size_t i;
    json_t *item;
    unsigned bits = 0;
    if (!json_is_array(v) || json_array_size(v) == 0) {
        return fail_value(ld, sec, k, "a non-empty list");
    }
    json_array_foreach (v, i, item) {
        unsigned bit = 0;
        for (size_t m = 0; m < sizeof methods / sizeof methods[0] && json_is_string(item); m++) {
            if (strcmp(json_string_value(item), methods[m].name) == 0) {
                bit = methods[m].bit;
            }
        }
        if (bit == GW_ACCEPT_CERT && ((unsigned)k->max & bit) == 0) {
            return fail(ld, sec, k->name,
                        "cannot hold \"certificate\": only the HTTPS listener verifies client "
                        "certificates (list it in \"tls\": {\"accept\": [...]})");
        }
        if (bit == 0 || ((unsigned)k->max & bit) == 0) {
            return fail_value(ld, sec, k, "a list of method names");
        }
        bits |= bit;
    }
    *slot = bits;
    return GW_OK;
}

static enum gw_err take_integer(struct loader *ld, const struct section *sec, const struct key *k,
                                const json_t *v, void *slot)
{
    json_int_t n = json_integer_value(v);
    if (!json_is_integer(v) || n < k->min || n > k->max) {
        char rule[96];
        snprintf(rule, sizeof rule, "an integer from %lld to %lld", (long long)k->min,
                 (long long)k->max);
        return fail_value(ld, sec, k, rule);
    }
    /* In range, so it fits the slot: the table's bounds lie within each kind's type. */
    switch (k->kind) {
    case KIND_U16:
        *(uint16_t *)slot = (uint16_t)n;
        break;
    case KIND_UNSIGNED:
        *(unsigned *)slot = (unsigned)n;
        break;
    case KIND_SIZE:
        *(size_t *)slot = (size_t)n;
        break;
    case KIND_LONG:
        *(long *)slot = (long)n;
        break;
    default:
        return GW_ERR_INTERNAL;
    }
    return GW_OK;
}

static enum gw_err load_section(struct loader *ld, const struct section *sec, json_t *obj,
                                struct gw_config *cfg);

static bool in_range(const json_t *v, double lo, double hi)
{
    return json_is_number(v) && isfinite(json_number_value(v)) && json_number_value(v) > lo &&
           json_number_value(v) <= hi;
}

/* A map of rates: each value a rate, or {"rate": R, "burst": B}; names as caller names. */
static enum gw_err take_rates(struct loader *ld, const struct section *sec, const struct key *k,
                              const json_t *v, struct gw_config_rate *slots)
{
    const char *name;
    json_t *item;
    size_t i = 0;
    if (!json_is_object(v) || json_object_size(v) >= GW_CONFIG_MAX_RATES) {
        return fail_value(ld, sec, k, "an object of at most 63 rates");
    }
    json_object_foreach ((json_t *)v, name, item) {
        json_t *name_json = json_string(name);
        bool named = name_json != NULL && is_name(name_json);
        json_decref(name_json);
        json_t *rate = json_is_object(item) ? json_object_get(item, "rate") : item;
        json_t *burst = json_is_object(item) ? json_object_get(item, "burst") : NULL;
        size_t keys = json_is_object(item) ? json_object_size(item) : 1;
        if (!named || !in_range(rate, 0, 1000000) ||
            (burst != NULL && (!in_range(burst, 0, 1000000) || json_number_value(burst) < 1)) ||
            keys != 1 + (burst != NULL)) {
            return fail_value(ld, sec, k,
                              "an object of names to a rate (calls per second, above 0) or to "
                              "{\"rate\": R, \"burst\": B} (B at least 1)");
        }
        if ((slots[i].name = strdup(name)) == NULL) {
            return GW_ERR_NOMEM;
        }
        slots[i].rate = json_number_value(rate);
        slots[i].burst = burst != NULL ? json_number_value(burst) : 0;
        i++;
    }
    return GW_OK;
}

static enum gw_err load_key(struct loader *ld, const struct section *sec, const struct key *k,
                            json_t *v, struct gw_config *cfg)
{
    void *slot = (char *)cfg + k->offset;
    switch (k->kind) {
    case KIND_STRING:
        return is_text(v) ? take_string(v, slot) : fail_value(ld, sec, k, "a non-empty string");
    case KIND_PATH:
        return is_text(v) ? take_path(ld, json_string_value(v), slot)
                          : fail_value(ld, sec, k, "a non-empty path");
    case KIND_BOOL:
        if (!json_is_boolean(v)) {
            return fail_value(ld, sec, k, "true or false");
        }
        *(bool *)slot = json_is_true(v);
        return GW_OK;
    case KIND_U16:
    case KIND_UNSIGNED:
    case KIND_SIZE:
    case KIND_LONG:
        return take_integer(ld, sec, k, v, slot);
    case KIND_LIST:
        return take_list(ld, sec, k, v, slot);
    case KIND_NAME:
        return is_name(v)
                   ? take_string(v, slot)
                   : fail_value(ld, sec, k, "a name of 1 to 64 letters, digits, '.', '_' or '-'");
    case KIND_ACCEPT:
        return take_accept(ld, sec, k, v, slot);
    case KIND_RATE:
        if (!in_range(v, (double)k->min, (double)k->max)) {
            char rule[96];
            snprintf(rule, sizeof rule, "a number above %lld, at most %lld", (long long)k->min,
                     (long long)k->max);
            return fail_value(ld, sec, k, rule);
        }
        *(double *)slot = json_number_value(v);
        return GW_OK;
    case KIND_RATES:
        return take_rates(ld, sec, k, v, slot);
    case KIND_REFUSED:
        return fail(ld, sec, k->name, k->description);
    case KIND_SECTION:
        if (!json_is_object(v)) {
            return fail(ld, sec, k->name, "must be an object");
        }
        if (k->min == 1) {
            *(bool *)slot = true;
        }
        return load_section(ld, k->section, v, cfg);
    default:
        return GW_ERR_INTERNAL;
    }
}

static enum gw_err load_section(struct loader *ld, const struct section *sec, json_t *obj,
                                struct gw_config *cfg)
{
    const char *name;
    json_t *v;
    json_object_foreach (obj, name, v) {
        const struct key *k = NULL;
        for (size_t i = 0; i < sec->count && k == NULL; i++) {
            if (strcmp(sec->keys[i].name, name) == 0) {
                k = &sec->keys[i];
            }
        }
        enum gw_err err = k != NULL ? load_key(ld, sec, k, v, cfg) : fail_unknown(ld, sec, name);
        if (err != GW_OK) {
            return err;
        }
    }
    return GW_OK;
}

/* ---- rules across keys ------------------------------------------------------------------- */

/* What one key alone cannot say: the HTTPS listener's files, and that something listens. */
static enum gw_err check_listeners(struct loader *ld, const struct gw_config *cfg)
{
    if (cfg->tls.enabled) {
        if (cfg->tls.cert_file == NULL) {
            return fail(ld, &top_section, "tls",
                        "needs \"cert_file\" (PEM file of the server certificate chain)");
        }
        if (cfg->tls.key_file == NULL) {
            return fail(ld, &top_section, "tls",
                        "needs \"key_file\" (PEM file of the server private key)");
        }
        if (cfg->tls.client_ca_file == NULL) {
            return fail(ld, &top_section, "tls",
                        "needs \"client_ca_file\" (PEM file of the CA certificates that client "
                        "certificates must chain to)");
        }
    }
    if (!cfg->plain_listener && !cfg->tls.enabled) {
        return fail(ld, &top_section, "plain_listener",
                    "may be false only with a \"tls\" section: otherwise nothing listens");
    }
    return GW_OK;
}

/* The log format is one of two names. */
static enum gw_err check_log_format(struct loader *ld, const struct gw_config *cfg)
{
    if (strcmp(cfg->log_format, "text") != 0 && strcmp(cfg->log_format, "json") != 0) {
        return fail(ld, &top_section, "log_format",
                    "must be \"text\" (key=value lines) or \"json\" (one object per line)");
    }
    return GW_OK;
}

/* The limits' backend is one of two names. */
static enum gw_err check_limits(struct loader *ld, const struct gw_config *cfg)
{
    if (strcmp(cfg->limits.backend, "local") != 0 && strcmp(cfg->limits.backend, "redis") != 0) {
        return fail(ld, &limits_section, "backend",
                    "must be \"local\" (buckets in this gateway) or \"redis\" (buckets shared "
                    "through limits.redis)");
    }
    return GW_OK;
}

/* ---- the file ---------------------------------------------------------------------------- */

/* Relative defaults are relative to the config file's directory too. */
static enum gw_err anchor_default(struct loader *ld, char **slot)
{
    if ((*slot)[0] == '/') {
        return GW_OK;
    }
    char *p = strdup(*slot);
    if (p == NULL) {
        return GW_ERR_NOMEM;
    }
    enum gw_err err = take_path(ld, p, slot);
    free(p);
    return err;
}

/* Reads the whole file into *out (new, NUL-terminated); at most MAX_CONFIG_BYTES. */
static enum gw_err read_file(const char *path, char **out, size_t *len, char *msg, size_t msglen)
{
    enum gw_err err;
    char *text = NULL;
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(msg, msglen, "%s: cannot open: %s", path, strerror(errno));
        err = GW_ERR_IO;
        goto out;
    }
    if ((text = malloc(MAX_CONFIG_BYTES + 1)) == NULL) {
        snprintf(msg, msglen, "out of memory");
        err = GW_ERR_NOMEM;
        goto out;
    }
    size_t n = fread(text, 1, MAX_CONFIG_BYTES + 1, f);
    if (ferror(f)) {
        snprintf(msg, msglen, "%s: cannot read: %s", path, strerror(errno));
        err = GW_ERR_IO;
        goto out;
    }
    if (n > MAX_CONFIG_BYTES) {
        snprintf(msg, msglen, "%s: larger than %zu bytes: is this the configuration file?", path,
                 MAX_CONFIG_BYTES);
        err = GW_ERR_INVALID;
        goto out;
    }
    text[n] = '\0';
    *out = text;
    *len = n;
    text = NULL;
    err = GW_OK;
out:
    free(text);
    if (f != NULL) {
        fclose(f);
    }
    return err;
}

enum gw_err gw_config_load(const char *path, struct gw_config **out, char *msg, size_t msglen)
{
    enum gw_err err;
    json_error_t jerr;
    char *dir = NULL;
    char *text = NULL;
    size_t len = 0;
    json_t *root = NULL;
    snprintf(msg, msglen, "out of memory");
    struct gw_config *cfg = gw_config_defaults();
    if (cfg == NULL) {
        err = GW_ERR_NOMEM;
        goto out;
    }
    /* The anchored default must be the default before the file is read. */
    dir = strdup(path);
    if (dir == NULL) {
        err = GW_ERR_NOMEM;
        goto out;
    }
    char *slash = strrchr(dir, '/');
    if (slash == NULL) {
        free(dir);
        dir = strdup(".");
        if (dir == NULL) {
            err = GW_ERR_NOMEM;
            goto out;
        }
    } else if (slash == dir) {
        slash[1] = '\0';
    } else {
        *slash = '\0';
    }
    struct loader ld = {.path = path, .dir = dir, .msg = msg, .msglen = msglen};
    /* A key path from the environment is relative to the working directory, not the file. */
    const char *key_env = getenv("TCGW_MASTER_KEY_FILE");
    bool key_from_env = key_env != NULL && key_env[0] != '\0';
    if ((err = anchor_default(&ld, &cfg->spec_dir)) != GW_OK ||
        (!key_from_env && (err = anchor_default(&ld, &cfg->master_key_file)) != GW_OK) ||
        (err = anchor_default(&ld, &cfg->credential_store)) != GW_OK ||
        (err = anchor_default(&ld, &cfg->callers_file)) != GW_OK ||
        (err = anchor_default(&ld, &cfg->policy_dir)) != GW_OK ||
        (err = anchor_default(&ld, &cfg->audit.file)) != GW_OK ||
        (err = anchor_default(&ld, &cfg->audit.signing_key_file)) != GW_OK ||
        (err = anchor_default(&ld, &cfg->audit.public_key_file)) != GW_OK) {
        goto out;
    }
    if ((err = read_file(path, &text, &len, msg, msglen)) != GW_OK) {
        goto out;
    }
    root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        snprintf(msg, msglen, "%s:%d: %s", path, jerr.line, jerr.text);
        err = GW_ERR_INVALID;
        goto out;
    }
    if (!json_is_object(root)) {
        snprintf(msg, msglen, "%s: the configuration must be a JSON object", path);
        err = GW_ERR_INVALID;
        goto out;
    }
    ld.text = text;
    ld.len = len;
    if ((err = load_section(&ld, &top_section, root, cfg)) != GW_OK ||
        (err = check_listeners(&ld, cfg)) != GW_OK || (err = check_limits(&ld, cfg)) != GW_OK ||
        (err = check_log_format(&ld, cfg)) != GW_OK) {
        if (err == GW_ERR_NOMEM) {
            snprintf(msg, msglen, "out of memory");
        }
        goto out;
    }
    *out = cfg;
    cfg = NULL;
    err = GW_OK;
out:
    /* A key or a token quoted from the file goes to a terminal or a log: one plain line. */
    for (char *p = msg; err != GW_OK && msglen > 0 && *p != '\0'; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            *p = '?';
        }
    }
    json_decref(root);
    free(text);
    free(dir);
    gw_config_free(cfg);
    return err;
}
