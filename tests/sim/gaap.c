#include "gaap.h"

#include "fixture.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ID_LEN 64
#define MAX_TOKEN_LEN 64
#define MAX_QUERY_IDS 100
#define MAX_FILTERS 10
#define MAX_FILTER_VALUES 5
#define MAX_TAGS 5
#define DEFAULT_LIMIT 20
#define MAX_LIMIT 100
#define CANON_MAX 256
#define PROXY_ID_PREFIX "link-"

struct token {
    char token[MAX_TOKEN_LEN + 1];
    char canon[CANON_MAX];
};

struct sim_gaap {
    pthread_mutex_t lock;
    json_t *proxies;      /* array of proxy objects; Bandwidth/Concurrent/BillingType change */
    json_t *regions;      /* object: RegionId -> RegionDetail */
    json_t *access;       /* object: DestRegion -> [AccessRegionDetial] */
    json_t *accounts;     /* object: account name -> {state: bool} */
    json_t *proxy_errors; /* object: ProxyId -> {Code, Message} */
    bool lock_ready;
    struct token *tokens;
    size_t ntokens;
    size_t next_token;    /* ring position once full */
    json_t *certificates; /* CreateCertificate: CertificateId -> certificate; made at first use */
};

typedef enum sim_err (*action_fn)(struct sim_gaap *g, const struct sim_principal *who,
                                  const json_t *params, int64_t now, json_t *resp,
                                  struct sim_fault *f);

struct action {
    const char *name;
    action_fn fn;
    const char *const *params; /* NULL-terminated list of accepted parameter names */
};

/* ---- small JSON helpers ---- */

/* json_object_set_new that reports failure (value is stolen either way). */
static enum sim_err set_new(json_t *obj, const char *key, json_t *value)
{
    if (value == NULL) {
        return SIM_ENOMEM;
    }
    return json_object_set_new(obj, key, value) == 0 ? SIM_OK : SIM_ENOMEM;
}

static enum sim_err append_new(json_t *arr, json_t *value)
{
    if (value == NULL) {
        return SIM_ENOMEM;
    }
    return json_array_append_new(arr, value) == 0 ? SIM_OK : SIM_ENOMEM;
}

/* Present and not null. */
static const json_t *param(const json_t *params, const char *name)
{
    const json_t *v = json_object_get(params, name);
    return json_is_null(v) ? NULL : v;
}

/* The integer kinds of GAAP's parameters: the "member" of each in Tencent's api.json. */
enum int_kind {
    KIND_INT64,  /* BillingType, Independent */
    KIND_UINT64, /* Bandwidth, Concurrent, Offset, Limit */
};

/*
 * Parses s[0..n) when it is a canonical decimal: "0", or an optional '-' and digits without a
 * leading zero. Sets *neg, *mag and *overflow (more than 64 bits of magnitude).
 */
static bool parse_decimal(const char *s, size_t n, bool *neg, uint64_t *mag, bool *overflow)
{
    *neg = n > 0 && s[0] == '-';
    *mag = 0;
    *overflow = false;
    size_t i = *neg ? 1 : 0;
    if (i == n || (s[i] == '0' && (n - i > 1 || *neg))) {
        return false; /* "", "-", "010", "00", "-0" */
    }
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
        uint64_t d = (uint64_t)(s[i] - '0');
        if (*mag > (UINT64_MAX - d) / 10) {
            *overflow = true;
        } else {
            *mag = *mag * 10 + d;
        }
    }
    return true;
}

/*
 * An integer parameter, by the rule the gateway's checker follows too (gateway/apispec/number.c):
 * a JSON integer, or a decimal string in canonical form as Tencent's own examples send them
 * ("Bandwidth": "10"). Any other string ("010", "-0", "+1", " 1", "1.0", "") is
 * InvalidParameter; a value outside the kind's range, any negative uint64 included, is
 * InvalidParameterValue. The simulator computes in int64: a uint64 above INT64_MAX is held as
 * INT64_MAX, which every bound it compares with (Limit, the offered bandwidths, the proxy count)
 * treats the same. *present says whether it was given.
 */
static enum sim_err get_int(const json_t *params, const char *name, enum int_kind kind,
                            bool *present, int64_t *out, struct sim_fault *f)
{
    const json_t *v = param(params, name);
    bool neg = false;
    bool overflow = false;
    uint64_t mag = 0;

    *present = false;
    if (v == NULL) {
        return SIM_OK;
    }
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        neg = i < 0;
        mag = neg ? (uint64_t)(-(i + 1)) + 1 : (uint64_t)i;
    } else if (!json_is_string(v) ||
               !parse_decimal(json_string_value(v), json_string_length(v), &neg, &mag, &overflow)) {
        return sim_fault_set(f, "InvalidParameter",
                             "%s must be an integer (a JSON number, or a decimal string without "
                             "leading zeros or '+')",
                             name);
    }
    uint64_t max = (uint64_t)INT64_MAX + (neg ? 1u : 0u);
    if (overflow || (kind == KIND_UINT64 && neg) || (kind == KIND_INT64 && mag > max)) {
        return sim_fault_set(f, "InvalidParameterValue", "%s must be an integer from %s", name,
                             kind == KIND_UINT64
                                 ? "0 to 18446744073709551615 (uint64)"
                                 : "-9223372036854775808 to 9223372036854775807 (int64)");
    }
    if (neg) {
        *out = mag > (uint64_t)INT64_MAX ? INT64_MIN : -(int64_t)mag;
    } else {
        *out = mag > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)mag;
    }
    *present = true;
    return SIM_OK;
}

/* A string parameter of at most max bytes; *out is borrowed from params. */
static enum sim_err get_str(const json_t *params, const char *name, size_t max, const char **out,
                            struct sim_fault *f)
{
    const json_t *v = param(params, name);

    *out = NULL;
    if (v == NULL) {
        return SIM_OK;
    }
    if (!json_is_string(v)) {
        return sim_fault_set(f, "InvalidParameter", "%s must be a string", name);
    }
    if (json_string_length(v) > max || strlen(json_string_value(v)) != json_string_length(v)) {
        return sim_fault_set(f, "InvalidParameterValue", "%s must be at most %zu characters", name,
                             max);
    }
    *out = json_string_value(v);
    return SIM_OK;
}

static enum sim_err check_known_params(const json_t *params, const struct action *a,
                                       struct sim_fault *f)
{
    const char *key;
    const json_t *v;

    json_object_foreach ((json_t *)params, key, v) {
        size_t i;
        bool known = false;
        (void)v;
        for (i = 0; a->params[i] != NULL; i++) {
            if (strcmp(key, a->params[i]) == 0) {
                known = true;
                break;
            }
        }
        if (!known) {
            return sim_fault_set(f, "UnknownParameter", "%s does not take the parameter \"%.64s\"",
                                 a->name, key);
        }
    }
    return SIM_OK;
}

static bool int_in_list(const json_t *list, int64_t v)
{
    size_t i;
    const json_t *e;

    json_array_foreach (list, i, e) {
        if (json_is_integer(e) && (int64_t)json_integer_value(e) == v) {
            return true;
        }
    }
    return false;
}

/* Formats a list of integers as "10, 20, 50" into buf (truncating if needed). */
static void list_text(const json_t *list, char *buf, size_t cap)
{
    size_t used = 0;
    size_t i;
    const json_t *e;

    buf[0] = '\0';
    json_array_foreach (list, i, e) {
        int n = snprintf(buf + used, cap - used, "%s%" JSON_INTEGER_FORMAT, i > 0 ? ", " : "",
                         json_integer_value(e));
        if (n < 0 || (size_t)n >= cap - used) {
            break;
        }
        used += (size_t)n;
    }
}

static json_t *find_proxy(const struct sim_gaap *g, const char *id)
{
    size_t i;
    json_t *p;

    json_array_foreach (g->proxies, i, p) {
        if (strcmp(json_string_value(json_object_get(p, "ProxyId")), id) == 0) {
            return p;
        }
    }
    return NULL;
}

/* The AccessRegionDetial offered for an access region towards a real-server region, or NULL. */
static const json_t *find_access_region(const struct sim_gaap *g, const char *dest,
                                        const char *access)
{
    const json_t *list = json_object_get(g->access, dest);
    size_t i;
    const json_t *e;

    json_array_foreach (list, i, e) {
        if (strcmp(json_string_value(json_object_get(e, "RegionId")), access) == 0) {
            return e;
        }
    }
    return NULL;
}

/* ---- ModifyProxyConfiguration ---- */

static const char *const modify_params[] = {"ProxyId",     "InstanceId",  "Bandwidth", "Concurrent",
                                            "ClientToken", "BillingType", NULL};

static struct token *find_token(struct sim_gaap *g, const char *token)
{
    size_t i;

    for (i = 0; i < g->ntokens; i++) {
        if (strcmp(g->tokens[i].token, token) == 0) {
            return &g->tokens[i];
        }
    }
    return NULL;
}

static void remember_token(struct sim_gaap *g, const char *token, const char *canon)
{
    struct token *t;

    if (g->ntokens < SIM_GAAP_MAX_TOKENS) {
        t = &g->tokens[g->ntokens++];
    } else {
        t = &g->tokens[g->next_token];
        g->next_token = (g->next_token + 1) % SIM_GAAP_MAX_TOKENS;
    }
    (void)snprintf(t->token, sizeof(t->token), "%s", token);
    (void)snprintf(t->canon, sizeof(t->canon), "%s", canon);
}

static enum sim_err check_value(const json_t *detail, const char *list_name, const char *name,
                                int64_t v, const json_t *proxy, struct sim_fault *f)
{
    const json_t *list = json_object_get(detail, list_name);
    char allowed[256];

    if (int_in_list(list, v)) {
        return SIM_OK;
    }
    list_text(list, allowed, sizeof(allowed));
    return sim_fault_set(f, "InvalidParameterValue",
                         "%s %lld is not offered from access region %s to %s; choose one of: %s",
                         name, (long long)v,
                         json_string_value(json_object_get(proxy, "AccessRegion")),
                         json_string_value(json_object_get(proxy, "RealServerRegion")), allowed);
}

/* A ModifyProxyConfiguration request once its parameters are checked. */
struct modify {
    const char *id; /* borrowed from the params */
    bool has_bw;
    bool has_conc;
    bool has_billing;
    int64_t bw;
    int64_t conc;
    int64_t billing;
    const char *token;     /* NULL: no idempotency asked for */
    char canon[CANON_MAX]; /* the parameters in one canonical text, for ClientToken */
    bool balance_insufficient;
};

static bool account_state(const struct sim_gaap *g, const char *account, const char *state)
{
    return json_is_true(json_object_get(json_object_get(g->accounts, account), state));
}

/* The account-level refusals of a write, in the order GAAP plausibly checks them. */
static enum sim_err check_account(const struct sim_gaap *g, const struct sim_principal *who,
                                  struct sim_fault *f)
{
    if (account_state(g, who->account, "NotEnterprise")) {
        return sim_fault_set(f, "AuthFailure.NotEnterpriseAuthorization",
                             "this operation is open to enterprise-verified accounts only: "
                             "complete enterprise verification first");
    }
    if (account_state(g, who->account, "Violation")) {
        return sim_fault_set(f, "ResourceUnavailable.AccountViolation",
                             "restricted resources were found in your account: check your inbox "
                             "and email for details");
    }
    if (account_state(g, who->account, "ProtocolNotConfirmed")) {
        return sim_fault_set(f, "FailedOperation.UserNotConfirmProtocol",
                             "you have not agreed to the GAAP service agreement: confirm it in "
                             "the console first");
    }
    return SIM_OK;
}

static bool in_id_list(const json_t *list, const char *id)
{
    size_t i;
    const json_t *e;

    json_array_foreach (list, i, e) {
        if (strcmp(json_string_value(e), id) == 0) {
            return true;
        }
    }
    return false;
}

/* The proxy's own state: why it cannot be changed now, if it cannot. */
static enum sim_err check_proxy_state(const struct sim_gaap *g, const json_t *proxy, const char *id,
                                      struct sim_fault *f)
{
    const char *status = json_string_value(json_object_get(proxy, "Status"));
    const json_t *forced = json_object_get(g->proxy_errors, id);

    if (strcmp(status, "MOVING") == 0) {
        return sim_fault_set(f, "FailedOperation.Migration",
                             "the proxy %s is being migrated: to change its configuration, "
                             "submit a ticket",
                             id);
    }
    if (strcmp(status, "ADJUSTING") == 0) {
        return sim_fault_set(f, "FailedOperation",
                             "the proxy %s is already changing its configuration: retry when "
                             "its Status is RUNNING",
                             id);
    }
    if (strcmp(status, "RUNNING") != 0) {
        return sim_fault_set(f, "ResourceUnavailable",
                             "the proxy %s is unavailable (its Status is %.16s): it can be "
                             "changed only while RUNNING",
                             id, status);
    }
    if (json_integer_value(json_object_get(proxy, "ProxyType")) == SIM_GAAP_NONSTANDARD_TYPE) {
        return sim_fault_set(f, "FailedOperation.NonStandardProxy",
                             "the proxy %s is not a standard proxy (ProxyType %d): write "
                             "operations are not allowed",
                             id, SIM_GAAP_NONSTANDARD_TYPE);
    }
    if (json_integer_value(json_object_get(proxy, "Scalarable")) != 1) {
        return sim_fault_set(f, "FailedOperation.NotSupportScalar",
                             "the proxy %s cannot be scaled (its Scalarable is 0)", id);
    }
    if (forced != NULL) {
        /* the code and message live as long as g, which outlives the answer */
        return sim_fault_set(f, json_string_value(json_object_get(forced, "Code")), "%s",
                             json_string_value(json_object_get(forced, "Message")));
    }
    return SIM_OK;
}

/* Raising bandwidth or concurrency costs money; lowering it does not. */
static bool raises_cost(const json_t *proxy, const struct modify *m)
{
    return (m->has_bw && m->bw > json_integer_value(json_object_get(proxy, "Bandwidth"))) ||
           (m->has_conc && m->conc > json_integer_value(json_object_get(proxy, "Concurrent")));
}

static enum sim_err modify_locked(struct sim_gaap *g, const struct modify *m, int64_t now,
                                  struct sim_fault *f)
{
    enum sim_err err;
    struct token *seen;
    json_t *proxy;
    const json_t *detail;

    if (m->token != NULL && (seen = find_token(g, m->token)) != NULL) {
        if (strcmp(seen->canon, m->canon) == 0) {
            return SIM_OK; /* a retry of a request that succeeded: answer success again */
        }
        return sim_fault_set(f, "FailedOperation.DuplicatedRequest",
                             "ClientToken \"%s\" was already used with different parameters: "
                             "use a new token for a new request",
                             m->token);
    }
    proxy = find_proxy(g, m->id);
    if (proxy == NULL) {
        return sim_fault_set(f, "ResourceNotFound", "the proxy %s does not exist", m->id);
    }
    if ((err = check_proxy_state(g, proxy, m->id, f)) != SIM_OK) {
        return err;
    }
    detail = find_access_region(g, json_string_value(json_object_get(proxy, "RealServerRegion")),
                                json_string_value(json_object_get(proxy, "AccessRegion")));
    if (detail == NULL) {
        return sim_fault_set(f, "InternalError",
                             "the simulator fixture has no access-region entry for proxy %s",
                             m->id);
    }
    if (m->has_bw &&
        (err = check_value(detail, "BandwidthList", "Bandwidth", m->bw, proxy, f)) != SIM_OK) {
        return err;
    }
    if (m->has_conc &&
        (err = check_value(detail, "ConcurrentList", "Concurrent", m->conc, proxy, f)) != SIM_OK) {
        return err;
    }
    if (m->balance_insufficient && raises_cost(proxy, m)) {
        return sim_fault_set(f, "FailedOperation.AccountBalanceInsufficient",
                             "your account balance is insufficient for the larger configuration "
                             "of proxy %s: top up and retry",
                             m->id);
    }
    if ((m->has_bw && (err = set_new(proxy, "Bandwidth", json_integer(m->bw))) != SIM_OK) ||
        (m->has_conc && (err = set_new(proxy, "Concurrent", json_integer(m->conc))) != SIM_OK) ||
        (m->has_billing &&
         (err = set_new(proxy, "BillingType", json_integer(m->billing))) != SIM_OK) ||
        (err = set_new(proxy, "ModifyConfigTime", json_integer(now))) != SIM_OK) {
        return err;
    }
    if (m->token != NULL) {
        remember_token(g, m->token, m->canon);
    }
    return SIM_OK;
}

static enum sim_err do_modify(struct sim_gaap *g, const struct sim_principal *who,
                              const json_t *params, int64_t now, json_t *resp, struct sim_fault *f)
{
    enum sim_err err;
    const char *pid;
    const char *iid;
    struct modify m;
    char nums[3][24];
    const char *p;

    memset(&m, 0, sizeof(m));
    (void)resp; /* success carries only the RequestId */
    if ((err = get_str(params, "ProxyId", MAX_ID_LEN, &pid, f)) != SIM_OK ||
        (err = get_str(params, "InstanceId", MAX_ID_LEN, &iid, f)) != SIM_OK ||
        (err = get_str(params, "ClientToken", MAX_TOKEN_LEN, &m.token, f)) != SIM_OK ||
        (err = get_int(params, "Bandwidth", KIND_UINT64, &m.has_bw, &m.bw, f)) != SIM_OK ||
        (err = get_int(params, "Concurrent", KIND_UINT64, &m.has_conc, &m.conc, f)) != SIM_OK ||
        (err = get_int(params, "BillingType", KIND_INT64, &m.has_billing, &m.billing, f)) !=
            SIM_OK) {
        return err;
    }
    if (pid != NULL && iid != NULL && strcmp(pid, iid) != 0) {
        return sim_fault_set(f, "InvalidParameter",
                             "ProxyId and InstanceId name different proxies: give only ProxyId");
    }
    m.id = pid != NULL ? pid : iid;
    if (m.id == NULL || m.id[0] == '\0') {
        return sim_fault_set(f, "MissingParameter",
                             "ProxyId is required (InstanceId is its older name)");
    }
    if (strncmp(m.id, PROXY_ID_PREFIX, strlen(PROXY_ID_PREFIX)) != 0) {
        return sim_fault_set(f, "InvalidParameter",
                             "%s \"%s\" is not a proxy ID: proxy IDs start with \"" PROXY_ID_PREFIX
                             "\"",
                             pid != NULL ? "ProxyId" : "InstanceId", m.id);
    }
    if (!m.has_bw && !m.has_conc) {
        return sim_fault_set(f, "MissingParameter", "give Bandwidth, Concurrent or both");
    }
    if (m.has_billing && m.billing != 0 && m.billing != 1) {
        return sim_fault_set(f, "InvalidParameterValue",
                             "BillingType must be 0 (by bandwidth) or 1 (by traffic)");
    }
    if (m.token != NULL && m.token[0] == '\0') {
        m.token = NULL; /* an empty token asks for no idempotency */
    }
    for (p = m.token; p != NULL && *p != '\0'; p++) {
        if (*p < 0x21 || *p > 0x7e) {
            return sim_fault_set(f, "InvalidParameterValue",
                                 "ClientToken must be printable ASCII without spaces");
        }
    }
    /* The parameters are sound: now the account, then the sub-account's resource permission.
     * Both are fixed at start, so no lock is needed to read them. */
    if ((err = check_account(g, who, f)) != SIM_OK) {
        return err;
    }
    if (who->proxy_ids != NULL && !in_id_list(who->proxy_ids, m.id)) {
        return sim_fault_set(f, "UnauthorizedOperation",
                             "the sub-account %s is not authorized to operate on the proxy %s: "
                             "ask the root account to grant it in CAM",
                             who->secret_id, m.id);
    }
    m.balance_insufficient = account_state(g, who->account, "BalanceInsufficient");
    (void)snprintf(nums[0], sizeof(nums[0]), "%lld", (long long)m.bw);
    (void)snprintf(nums[1], sizeof(nums[1]), "%lld", (long long)m.conc);
    (void)snprintf(nums[2], sizeof(nums[2]), "%lld", (long long)m.billing);
    (void)snprintf(m.canon, sizeof(m.canon), "%s\n%s\n%s\n%s", m.id, m.has_bw ? nums[0] : "-",
                   m.has_conc ? nums[1] : "-", m.has_billing ? nums[2] : "-");

    (void)pthread_mutex_lock(&g->lock);
    err = modify_locked(g, &m, now, f);
    (void)pthread_mutex_unlock(&g->lock);
    return err;
}

/* ---- DescribeProxies ---- */

static const char *const describe_params[] = {"ProxyIds",   "InstanceIds", "Offset",      "Limit",
                                              "Filters",    "TagSet",      "Independent", "Order",
                                              "OrderField", NULL};

static const char *const filter_names[] = {"ProjectId", "AccessRegion",     "RealServerRegion",
                                           "GroupId",   "IPAddressVersion", "PackageType",
                                           NULL};

/* Parsed DescribeProxies query; pointers are borrowed from the request params. */
struct query {
    const json_t *ids;
    const json_t *filters;
    const json_t *tags;
    bool has_independent;
    int64_t independent;
    int64_t offset;
    int64_t limit;
    bool asc;
    const char *order_field;
};

static enum sim_err check_string_array(const json_t *arr, const char *name, size_t max,
                                       struct sim_fault *f)
{
    size_t i;
    const json_t *e;

    if (!json_is_array(arr)) {
        return sim_fault_set(f, "InvalidParameter", "%s must be an array of strings", name);
    }
    if (json_array_size(arr) > max) {
        return sim_fault_set(f, "InvalidParameterValue", "%s holds at most %zu values", name, max);
    }
    json_array_foreach (arr, i, e) {
        if (!json_is_string(e)) {
            return sim_fault_set(f, "InvalidParameter", "%s must be an array of strings", name);
        }
    }
    return SIM_OK;
}

static enum sim_err parse_filters(const json_t *filters, struct sim_fault *f)
{
    enum sim_err err;
    size_t i;
    const json_t *e;

    if (!json_is_array(filters)) {
        return sim_fault_set(f, "InvalidParameter", "Filters must be an array of {Name, Values}");
    }
    if (json_array_size(filters) > MAX_FILTERS) {
        return sim_fault_set(f, "InvalidParameterValue", "at most %d Filters are allowed",
                             MAX_FILTERS);
    }
    json_array_foreach (filters, i, e) {
        const json_t *name = json_object_get(e, "Name");
        const json_t *values = json_object_get(e, "Values");
        size_t k;
        bool known = false;

        if (!json_is_object(e) || json_object_size(e) != 2 || !json_is_string(name)) {
            return sim_fault_set(f, "InvalidParameter",
                                 "each filter must be an object {\"Name\": .., \"Values\": [..]}");
        }
        if ((err = check_string_array(values, "Filters.Values", MAX_FILTER_VALUES, f)) != SIM_OK) {
            return err;
        }
        for (k = 0; filter_names[k] != NULL; k++) {
            known = known || strcmp(filter_names[k], json_string_value(name)) == 0;
        }
        if (!known) {
            return sim_fault_set(f, "InvalidParameterValue",
                                 "filter \"%.64s\" is not supported: use ProjectId, AccessRegion, "
                                 "RealServerRegion, GroupId, IPAddressVersion or PackageType",
                                 json_string_value(name));
        }
    }
    return SIM_OK;
}

static enum sim_err parse_tags(const json_t *tags, struct sim_fault *f)
{
    size_t i;
    const json_t *e;

    if (!json_is_array(tags)) {
        return sim_fault_set(f, "InvalidParameter",
                             "TagSet must be an array of {TagKey, TagValue}");
    }
    if (json_array_size(tags) > MAX_TAGS) {
        return sim_fault_set(f, "InvalidParameterValue", "at most %d tags are allowed", MAX_TAGS);
    }
    json_array_foreach (tags, i, e) {
        if (!json_is_object(e) || json_object_size(e) != 2 ||
            !json_is_string(json_object_get(e, "TagKey")) ||
            !json_is_string(json_object_get(e, "TagValue"))) {
            return sim_fault_set(f, "InvalidParameter",
                                 "each tag must be an object {\"TagKey\": .., \"TagValue\": ..}");
        }
    }
    return SIM_OK;
}

static enum sim_err parse_query(const json_t *params, struct query *q, struct sim_fault *f)
{
    enum sim_err err;
    const json_t *pids = param(params, "ProxyIds");
    const json_t *iids = param(params, "InstanceIds");
    const char *order;
    bool present;

    memset(q, 0, sizeof(*q));
    q->limit = DEFAULT_LIMIT;
    if (pids != NULL && iids != NULL) {
        return sim_fault_set(f, "InvalidParameter", "give ProxyIds or InstanceIds, not both");
    }
    q->ids = pids != NULL ? pids : iids;
    if (q->ids != NULL &&
        (err = check_string_array(q->ids, pids != NULL ? "ProxyIds" : "InstanceIds", MAX_QUERY_IDS,
                                  f)) != SIM_OK) {
        return err;
    }
    q->filters = param(params, "Filters");
    if (q->filters != NULL && (err = parse_filters(q->filters, f)) != SIM_OK) {
        return err;
    }
    if (q->ids != NULL && q->filters != NULL) {
        return sim_fault_set(f, "InvalidParameter",
                             "ProxyIds (or InstanceIds) cannot be combined with Filters");
    }
    q->tags = param(params, "TagSet");
    if (q->tags != NULL && (err = parse_tags(q->tags, f)) != SIM_OK) {
        return err;
    }
    if ((err = get_int(params, "Independent", KIND_INT64, &q->has_independent, &q->independent,
                       f)) != SIM_OK) {
        return err;
    }
    if (q->has_independent && q->independent != 0 && q->independent != 1) {
        return sim_fault_set(f, "InvalidParameterValue", "Independent must be 0 or 1");
    }
    if ((err = get_int(params, "Offset", KIND_UINT64, &present, &q->offset, f)) != SIM_OK) {
        return err;
    }
    if (present && q->offset < 0) {
        return sim_fault_set(f, "InvalidParameterValue", "Offset must not be negative");
    }
    if ((err = get_int(params, "Limit", KIND_UINT64, &present, &q->limit, f)) != SIM_OK) {
        return err;
    }
    if (!present) {
        q->limit = DEFAULT_LIMIT;
    }
    if (q->limit < 0 || q->limit > MAX_LIMIT) {
        return sim_fault_set(f, "InvalidParameterValue", "Limit must be between 0 and %d",
                             MAX_LIMIT);
    }
    if ((err = get_str(params, "Order", 8, &order, f)) != SIM_OK ||
        (err = get_str(params, "OrderField", 32, &q->order_field, f)) != SIM_OK) {
        return err;
    }
    if (order != NULL && strcmp(order, "asc") != 0 && strcmp(order, "desc") != 0) {
        return sim_fault_set(f, "InvalidParameterValue", "Order must be \"asc\" or \"desc\"");
    }
    q->asc = order != NULL && strcmp(order, "asc") == 0;
    if (q->order_field == NULL) {
        q->order_field = "create_time";
    }
    if (strcmp(q->order_field, "create_time") != 0 && strcmp(q->order_field, "proxy_id") != 0 &&
        strcmp(q->order_field, "bandwidth") != 0 &&
        strcmp(q->order_field, "concurrent_connections") != 0) {
        return sim_fault_set(f, "InvalidParameterValue",
                             "OrderField must be create_time, proxy_id, bandwidth or "
                             "concurrent_connections");
    }
    return SIM_OK;
}

/* The proxy's value for a filter name, as text (ProjectId is an integer in the proxy). */
static const char *field_text(const json_t *proxy, const char *name, char *buf, size_t cap)
{
    const json_t *v = json_object_get(proxy, name);

    if (json_is_integer(v)) {
        (void)snprintf(buf, cap, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return buf;
    }
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static bool proxy_matches(const json_t *proxy, const struct query *q)
{
    size_t i;
    const json_t *e;
    const json_t *group = json_object_get(proxy, "GroupId");
    bool grouped = json_is_string(group) && json_string_length(group) > 0;

    if (q->ids != NULL &&
        !in_id_list(q->ids, json_string_value(json_object_get(proxy, "ProxyId")))) {
        return false;
    }
    if (q->has_independent && (q->independent == 1) == grouped) {
        return false;
    }
    json_array_foreach (q->filters, i, e) {
        char buf[32];
        const char *v =
            field_text(proxy, json_string_value(json_object_get(e, "Name")), buf, sizeof(buf));
        if (v == NULL || !in_id_list(json_object_get(e, "Values"), v)) {
            return false;
        }
    }
    if (q->tags != NULL && json_array_size(q->tags) > 0) {
        const json_t *have = json_object_get(proxy, "TagSet");
        bool any = false;
        size_t k;
        const json_t *t;
        json_array_foreach (q->tags, i, e) {
            json_array_foreach (have, k, t) {
                any = any ||
                      (json_equal(json_object_get(e, "TagKey"), json_object_get(t, "TagKey")) &&
                       json_equal(json_object_get(e, "TagValue"), json_object_get(t, "TagValue")));
            }
        }
        if (!any) {
            return false;
        }
    }
    return true;
}

/* Orders two proxies by the query's field, ties broken by ProxyId so output is deterministic. */
static int compare(const json_t *a, const json_t *b, const struct query *q)
{
    const char *ida = json_string_value(json_object_get(a, "ProxyId"));
    const char *idb = json_string_value(json_object_get(b, "ProxyId"));
    const char *key = NULL;
    int c = 0;

    if (strcmp(q->order_field, "create_time") == 0) {
        key = "CreateTime";
    } else if (strcmp(q->order_field, "bandwidth") == 0) {
        key = "Bandwidth";
    } else if (strcmp(q->order_field, "concurrent_connections") == 0) {
        key = "Concurrent";
    }
    if (key != NULL) {
        json_int_t va = json_integer_value(json_object_get(a, key));
        json_int_t vb = json_integer_value(json_object_get(b, key));
        c = va < vb ? -1 : (va > vb ? 1 : 0);
    }
    if (c == 0) {
        c = strcmp(ida, idb);
    }
    return q->asc ? c : -c;
}

/* A copy of a proxy as DescribeProxies shows it: InstanceId and region details filled in. */
static json_t *proxy_view(const struct sim_gaap *g, const json_t *proxy)
{
    json_t *v = json_deep_copy(proxy);
    const json_t *ar;
    const json_t *rr;

    if (v == NULL) {
        return NULL;
    }
    ar = json_object_get(g->regions, json_string_value(json_object_get(proxy, "AccessRegion")));
    rr = json_object_get(g->regions, json_string_value(json_object_get(proxy, "RealServerRegion")));
    if (set_new(v, "InstanceId", json_incref(json_object_get(proxy, "ProxyId"))) != SIM_OK ||
        (ar != NULL && json_object_get(v, "AccessRegionInfo") == NULL &&
         set_new(v, "AccessRegionInfo", json_deep_copy(ar)) != SIM_OK) ||
        (rr != NULL && json_object_get(v, "RealServerRegionInfo") == NULL &&
         set_new(v, "RealServerRegionInfo", json_deep_copy(rr)) != SIM_OK)) {
        json_decref(v);
        return NULL;
    }
    return v;
}

static enum sim_err describe_locked(struct sim_gaap *g, const struct query *q, json_t *resp)
{
    enum sim_err err = SIM_ENOMEM;
    size_t n = json_array_size(g->proxies);
    const json_t **hits = calloc(n + 1, sizeof(*hits));
    size_t nhits = 0;
    json_t *set = json_array();
    size_t i;
    const json_t *p;

    if (hits == NULL || set == NULL) {
        goto out;
    }
    json_array_foreach (g->proxies, i, p) {
        if (proxy_matches(p, q)) {
            size_t j = nhits++;
            /* insertion sort: the table is small and bounded by SIM_FIXTURE_MAX_PROXIES */
            while (j > 0 && compare(hits[j - 1], p, q) > 0) {
                hits[j] = hits[j - 1];
                j--;
            }
            hits[j] = p;
        }
    }
    for (i = (size_t)q->offset; i < nhits && i < (size_t)q->offset + (size_t)q->limit; i++) {
        if ((err = append_new(set, proxy_view(g, hits[i]))) != SIM_OK) {
            goto out;
        }
    }
    if ((err = set_new(resp, "TotalCount", json_integer((json_int_t)nhits))) != SIM_OK ||
        (err = set_new(resp, "InstanceSet", json_deep_copy(set))) != SIM_OK ||
        (err = set_new(resp, "ProxySet", json_incref(set))) != SIM_OK) {
        goto out;
    }
    err = SIM_OK;
out:
    json_decref(set);
    free(hits);
    return err;
}

static enum sim_err do_describe(struct sim_gaap *g, const struct sim_principal *who,
                                const json_t *params, int64_t now, json_t *resp,
                                struct sim_fault *f)
{
    enum sim_err err;
    struct query q;

    (void)now;
    (void)who; /* reads are not refused by account states or resource permissions */
    if ((err = parse_query(params, &q, f)) != SIM_OK) {
        return err;
    }
    (void)pthread_mutex_lock(&g->lock);
    err = describe_locked(g, &q, resp);
    (void)pthread_mutex_unlock(&g->lock);
    return err;
}

/* ---- DescribeAccessRegionsByDestRegion ---- */

static const char *const regions_params[] = {"DestRegion", "IPAddressVersion", "PackageType", NULL};

static enum sim_err do_regions(struct sim_gaap *g, const struct sim_principal *who,
                               const json_t *params, int64_t now, json_t *resp, struct sim_fault *f)
{
    enum sim_err err;
    const char *dest;
    const char *ipv;
    const char *pkg;
    const json_t *list;

    (void)now;
    (void)who;
    if ((err = get_str(params, "DestRegion", MAX_ID_LEN, &dest, f)) != SIM_OK ||
        (err = get_str(params, "IPAddressVersion", 8, &ipv, f)) != SIM_OK ||
        (err = get_str(params, "PackageType", 16, &pkg, f)) != SIM_OK) {
        return err;
    }
    if (dest == NULL || dest[0] == '\0') {
        return sim_fault_set(f, "MissingParameter", "DestRegion is required");
    }
    if (ipv != NULL && strcmp(ipv, "IPv4") != 0 && strcmp(ipv, "IPv6") != 0) {
        return sim_fault_set(f, "InvalidParameterValue", "IPAddressVersion must be IPv4 or IPv6");
    }
    if (pkg != NULL && strcmp(pkg, "Thunder") != 0 && strcmp(pkg, "Accelerator") != 0 &&
        strcmp(pkg, "CrossBorder") != 0) {
        return sim_fault_set(f, "InvalidParameterValue",
                             "PackageType must be Thunder, Accelerator or CrossBorder");
    }
    /* the fixture's table is immutable after load: no lock needed */
    list = json_object_get(g->access, dest);
    if (list == NULL) {
        return sim_fault_set(f, "InvalidParameterValue",
                             "DestRegion \"%s\" is not a known origin region", dest);
    }
    if ((err = set_new(resp, "TotalCount", json_integer((json_int_t)json_array_size(list)))) !=
            SIM_OK ||
        (err = set_new(resp, "AccessRegionSet", json_deep_copy(list))) != SIM_OK) {
        return err;
    }
    return SIM_OK;
}

/* ---- CreateCertificate ---- */

static const char *const certificate_params[] = {"CertificateType", "CertificateContent",
                                                 "CertificateAlias", "CertificateKey", NULL};

/*
 * Stores the certificate (and its key) and returns a fresh CertificateId. Test-only: the alias
 * SIM_GAAP_ECHO_ALIAS answers with the key it received in an extra EchoedKey field, and
 * SIM_GAAP_ECHO_ERROR_ALIAS with an error whose message quotes it, so that tests can see the
 * gateway redact a secret that an upstream echoes.
 */
static enum sim_err do_create_certificate(struct sim_gaap *g, const struct sim_principal *who,
                                          const json_t *params, int64_t now, json_t *resp,
                                          struct sim_fault *f)
{
    (void)who;
    enum sim_err err;
    bool has_type;
    int64_t type = 0;
    const char *content, *alias, *key;
    char id[32];

    if ((err = get_int(params, "CertificateType", KIND_INT64, &has_type, &type, f)) != SIM_OK ||
        (err = get_str(params, "CertificateContent", SIM_GAAP_MAX_CERT_BYTES, &content, f)) !=
            SIM_OK ||
        (err = get_str(params, "CertificateAlias", 128, &alias, f)) != SIM_OK ||
        (err = get_str(params, "CertificateKey", SIM_GAAP_MAX_CERT_BYTES, &key, f)) != SIM_OK) {
        return err;
    }
    if (!has_type || content == NULL) {
        return sim_fault_set(f, "MissingParameter", "%s is required",
                             has_type ? "CertificateContent" : "CertificateType");
    }
    if (type < 0 || type > 4) {
        return sim_fault_set(f, "InvalidParameterValue", "CertificateType must be 0 to 4");
    }
    if ((type == 2 || type == 4) && (key == NULL || key[0] == '\0')) {
        return sim_fault_set(f, "MissingParameter",
                             "CertificateKey is required for SSL certificates");
    }
    if (alias != NULL && key != NULL && strcmp(alias, SIM_GAAP_ECHO_ERROR_ALIAS) == 0) {
        return sim_fault_set(f, "InvalidParameterValue", "CertificateKey %s does not match", key);
    }
    pthread_mutex_lock(&g->lock);
    if (g->certificates == NULL) {
        g->certificates = json_object();
    }
    snprintf(id, sizeof id, "cert-%08zx",
             g->certificates != NULL ? json_object_size(g->certificates) + 1 : 0);
    json_t *cert = json_pack("{s:I,s:s,s:s?,s:s?,s:I}", "CertificateType", (json_int_t)type,
                             "CertificateContent", content, "CertificateAlias", alias,
                             "CertificateKey", key, "CreateTime", (json_int_t)now);
    err = g->certificates != NULL && cert != NULL &&
                  json_object_set_new(g->certificates, id, cert) == 0
              ? SIM_OK
              : SIM_ENOMEM;
    pthread_mutex_unlock(&g->lock);
    if (err != SIM_OK || (err = set_new(resp, "CertificateId", json_string(id))) != SIM_OK) {
        return err;
    }
    if (alias != NULL && key != NULL && strcmp(alias, SIM_GAAP_ECHO_ALIAS) == 0) {
        return set_new(resp, "EchoedKey", json_string(key));
    }
    return SIM_OK;
}

/* ---- dispatch ---- */

static const struct action actions[] = {
    {"ModifyProxyConfiguration", do_modify, modify_params},
    {"DescribeProxies", do_describe, describe_params},
    {"DescribeAccessRegionsByDestRegion", do_regions, regions_params},
    {"CreateCertificate", do_create_certificate, certificate_params},
};

size_t sim_gaap_action_count(void)
{
    return sizeof(actions) / sizeof(actions[0]);
}

int sim_gaap_action_index(const char *name)
{
    size_t i;

    for (i = 0; i < sim_gaap_action_count(); i++) {
        if (strcmp(actions[i].name, name) == 0) {
            return (int)i;
        }
    }
    return -1;
}

enum sim_err sim_gaap_call(struct sim_gaap *g, const struct sim_principal *who, int action,
                           const json_t *params, int64_t now, json_t *resp, struct sim_fault *f)
{
    enum sim_err err;
    const struct action *a;

    if (action < 0 || (size_t)action >= sim_gaap_action_count()) {
        return sim_fault_set(f, "InvalidAction", "unknown action");
    }
    a = &actions[action];
    if ((err = check_known_params(params, a, f)) != SIM_OK) {
        return err;
    }
    return a->fn(g, who, params, now, resp, f);
}

/* ---- construction ---- */

enum sim_err sim_gaap_new(const json_t *fixture, struct sim_gaap **out)
{
    struct sim_gaap *g = calloc(1, sizeof(*g));

    if (g == NULL) {
        return SIM_ENOMEM;
    }
    g->tokens = calloc(SIM_GAAP_MAX_TOKENS, sizeof(*g->tokens));
    g->proxies = json_deep_copy(json_object_get(fixture, "Proxies"));
    g->access = json_deep_copy(json_object_get(fixture, "AccessRegionsByDestRegion"));
    g->regions = json_deep_copy(json_object_get(fixture, "Regions"));
    g->accounts = json_deep_copy(json_object_get(fixture, "Accounts"));
    g->proxy_errors = json_deep_copy(json_object_get(fixture, "ProxyErrors"));
    if (g->tokens == NULL || g->proxies == NULL || g->access == NULL || g->regions == NULL ||
        g->accounts == NULL || g->proxy_errors == NULL || pthread_mutex_init(&g->lock, NULL) != 0) {
        g->lock_ready = false;
        sim_gaap_free(g);
        return SIM_ENOMEM;
    }
    g->lock_ready = true;
    *out = g;
    return SIM_OK;
}

void sim_gaap_free(struct sim_gaap *g)
{
    if (g == NULL) {
        return;
    }
    json_decref(g->proxies);
    json_decref(g->access);
    json_decref(g->regions);
    json_decref(g->certificates);
    json_decref(g->accounts);
    json_decref(g->proxy_errors);
    free(g->tokens);
    if (g->lock_ready) {
        (void)pthread_mutex_destroy(&g->lock);
    }
    free(g);
}
