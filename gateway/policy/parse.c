/*
 * parse: one policy file into its compiled form. Every problem is reported with the line of the
 * key or item it is about and what to write instead; parsing goes on after a problem, so that lint
 * can list them all, and a statement with a problem is left out of the result.
 */
#include <string.h>

#include "apispec/apispec.h"
#include "core/jsonpos.h"
#include "core/text.h"
#include "policy/policy_internal.h"

#define NAME_CHARS GW_TEXT_ALNUM "_.-"
#define KNOWN_OPS                                                                                  \
    "string_equal, string_not_equal, string_like, numeric_equal, numeric_not_equal, "              \
    "numeric_less_than, numeric_less_than_equal, numeric_greater_than, "                           \
    "numeric_greater_than_equal, ip_equal, ip_not_equal, bool_equal (each also with "              \
    "_if_exist, and after for_any_value: or for_all_value:)"
#define KNOWN_KEYS                                                                                 \
    "<service>:<Parameter> (such as gaap:ProxyId or gaap:Filters.Name), qcs:ip, qcs:region, "      \
    "tcgw:caller, tcgw:caller/<attribute>, tcgw:SecretName or tcgw:SecretParameter"

struct parser {
    struct policy_arena *a;
    struct policy_report *r;
    const struct gw_apispec *spec;
    size_t index; /* of the statement being parsed, 0-based */
    bool nomem;   /* an allocation failed: the parse fails with GW_ERR_NOMEM */
};

/* For an allocation that failed: returns false, to return from a parse step. */
static bool oom(struct parser *p)
{
    p->nomem = true;
    return false;
}

/* ---- lines ----------------------------------------------------------------------------------- */

/* The line of a key of the current statement, with up to three steps below it. */
static int st_line(const struct parser *p, const char *key, const char *k2, const char *k3,
                   const size_t *item)
{
    struct gw_jsonpos_step steps[6] = {{"statement", 0}, {NULL, p->index}};
    size_t n = 2;
    if (key != NULL) {
        steps[n++] = (struct gw_jsonpos_step){key, 0};
    }
    if (k2 != NULL) {
        steps[n++] = (struct gw_jsonpos_step){k2, 0};
    }
    if (k3 != NULL) {
        steps[n++] = (struct gw_jsonpos_step){k3, 0};
    }
    if (item != NULL) {
        steps[n++] = (struct gw_jsonpos_step){NULL, *item};
    }
    return gw_jsonpos_nearest(p->r->text, p->r->len, steps, n);
}

static int top_line(const struct parser *p, const char *key)
{
    struct gw_jsonpos_step step = {key, 0};
    return gw_jsonpos_nearest(p->r->text, p->r->len, &step, 1);
}

/* ---- names ----------------------------------------------------------------------------------- */

static bool is_name(const char *s, size_t n, size_t max, const char *allowed)
{
    return n > 0 && n <= max && gw_text_all_in(s, n, allowed);
}

static bool all_digits(const char *s, size_t n)
{
    return gw_text_all_in(s, n, GW_TEXT_DIGITS);
}

/* ---- actions --------------------------------------------------------------------------------- */

struct known {
    const char *service;
    const char *action;
    bool found;
    bool service_known;
    char nearest[GW_CALL_SERVICE_MAX + GW_CALL_ACTION_MAX + 2]; /* same name but for case */
};

static bool find_known(void *ctx, const char *service, const char *action)
{
    struct known *k = ctx;
    if (strcmp(service, k->service) == 0) {
        k->service_known = true;
        if (strcmp(action, k->action) == 0) {
            k->found = true;
            return false;
        }
    }
    if (k->nearest[0] == '\0' && strcasecmp(service, k->service) == 0 &&
        strcasecmp(action, k->action) == 0) {
        snprintf(k->nearest, sizeof k->nearest, "%s:%s", service, action);
    }
    return true;
}

/* One item of "action": "*", or "<service>:<Action>" where either half may hold '*'. */
static bool parse_action(struct parser *p, const json_t *j, size_t item, struct policy_action *out)
{
    int line = st_line(p, "action", NULL, NULL, &item);
    const char *s = json_string_value(j);
    if (s == NULL) {
        policy_problem(p->r, line, "an action must be a string such as \"gaap:DescribeProxies\"");
        return false;
    }
    size_t len = json_string_length(j);
    const char *colon = memchr(s, ':', len);
    struct policy_action a = {.line = line};
    if (len == 1 && s[0] == '*') {
        a.service = a.action = "*";
    } else if (colon == NULL || colon == s || colon + 1 == s + len ||
               !gw_text_all_in(s, (size_t)(colon - s), GW_TEXT_ALNUM "_-*") ||
               !gw_text_all_in(colon + 1, (size_t)(s + len - colon - 1), GW_TEXT_ALNUM "_*") ||
               (size_t)(colon - s) > GW_CALL_SERVICE_MAX ||
               (size_t)(s + len - colon - 1) > GW_CALL_ACTION_MAX) {
        policy_problem(p->r, line,
                       "action \"%.80s\" must be \"<service>:<Action>\", such as "
                       "\"gaap:DescribeProxies\" or \"gaap:Describe*\", or \"*\"",
                       s);
        return false;
    } else {
        a.service = policy_strndup(p->a, s, (size_t)(colon - s));
        a.action = policy_strndup(p->a, colon + 1, (size_t)(s + len - colon - 1));
    }
    a.text = policy_strndup(p->a, s, len);
    if (a.service == NULL || a.action == NULL || a.text == NULL) {
        return oom(p);
    }
    a.service_wild = strchr(a.service, '*') != NULL;
    a.action_wild = strchr(a.action, '*') != NULL;
    if (p->spec != NULL && !a.service_wild && !a.action_wild) {
        struct known k = {.service = a.service, .action = a.action};
        gw_apispec_each_action(p->spec, find_known, &k);
        if (!k.found) {
            if (k.nearest[0] != '\0') {
                policy_problem(p->r, line,
                               "action \"%s\" is not in the API descriptions; names are "
                               "case-sensitive: write \"%s\"",
                               a.text, k.nearest);
            } else if (!k.service_known) {
                policy_problem(p->r, line,
                               "action \"%s\": no API description of service \"%s\" is loaded; "
                               "add it to the spec directory or fix the name",
                               a.text, a.service);
            } else {
                policy_problem(p->r, line,
                               "action \"%s\" is not in the API description of %s; fix the name "
                               "or use a wildcard",
                               a.text, a.service);
            }
            return false;
        }
    }
    *out = a;
    return true;
}

/* A string, or a list of items (at least one, at most POLICY_MAX_ITEMS): the items of j. */
static bool list_of(struct parser *p, const json_t *j, int line, const char *what, size_t *n)
{
    if (json_is_array(j)) {
        *n = json_array_size(j);
        if (*n == 0) {
            policy_problem(p->r, line, "%s is an empty list; give at least one item", what);
            return false;
        }
        if (*n > POLICY_MAX_ITEMS) {
            policy_problem(p->r, line, "%s has more than %d items", what, POLICY_MAX_ITEMS);
            return false;
        }
        return true;
    }
    *n = 1;
    return true;
}

static const json_t *item_of(const json_t *j, size_t i)
{
    return json_is_array(j) ? json_array_get(j, i) : j;
}

static bool parse_actions(struct parser *p, const json_t *j, struct policy_statement *st)
{
    size_t n;
    int line = st_line(p, "action", NULL, NULL, NULL);
    if (!json_is_array(j) && !json_is_string(j)) {
        policy_problem(p->r, line,
                       "\"action\" must be a string or a list of strings such as "
                       "[\"gaap:DescribeProxies\"]");
        return false;
    }
    if (!list_of(p, j, line, "\"action\"", &n)) {
        return false;
    }
    struct policy_action *actions = policy_alloc_array(p->a, n, sizeof *actions);
    if (actions == NULL) {
        return oom(p);
    }
    bool ok = true;
    for (size_t i = 0; i < n; i++) {
        ok = parse_action(p, item_of(j, i), i, &actions[i]) && ok;
    }
    st->actions = actions;
    st->n_actions = n;
    return ok;
}

static bool parse_resource(struct parser *p, const json_t *j)
{
    size_t n;
    int line = st_line(p, "resource", NULL, NULL, NULL);
    if (!list_of(p, j, line, "\"resource\"", &n)) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        const char *s = json_string_value(item_of(j, i));
        if (s == NULL || strcmp(s, "*") != 0) {
            policy_problem(p->r, st_line(p, "resource", NULL, NULL, &i),
                           "\"resource\" must be \"*\": tcgw does not scope statements by "
                           "resource; restrict the call's parameters with a condition instead, "
                           "such as \"string_like\": {\"gaap:ProxyId\": [\"link-*\"]}");
            return false;
        }
    }
    return true;
}

/* ---- conditions ------------------------------------------------------------------------------ */

static bool parse_key(struct parser *p, const char *s, size_t len, int line, struct policy_key *out)
{
    struct policy_key k = {.text = policy_strndup(p->a, s, len)};
    if (k.text == NULL) {
        return oom(p);
    }
    const char *colon = memchr(s, ':', len);
    size_t slen = colon != NULL ? (size_t)(colon - s) : 0;
    if (strcmp(k.text, "qcs:ip") == 0) {
        k.kind = KEY_IP;
    } else if (strcmp(k.text, "qcs:region") == 0) {
        k.kind = KEY_REGION;
    } else if (strcmp(k.text, "tcgw:caller") == 0) {
        k.kind = KEY_CALLER;
    } else if (strcmp(k.text, "tcgw:SecretName") == 0) {
        k.kind = KEY_SECRET_NAME;
    } else if (strcmp(k.text, "tcgw:SecretParameter") == 0) {
        k.kind = KEY_SECRET_PARAM;
    } else if (strncmp(k.text, "tcgw:caller/", 12) == 0) {
        k.kind = KEY_CALLER_ATTR;
        k.attribute = k.text + 12;
        if (!is_name(k.attribute, len - 12, GW_CALL_NAME_MAX, NAME_CHARS)) {
            policy_problem(p->r, line,
                           "condition key \"%.80s\": an attribute name is 1 to %d letters, "
                           "digits, '_', '.' or '-'",
                           k.text, GW_CALL_NAME_MAX);
            return false;
        }
    } else if (colon == NULL || slen == 0 || (slen == 3 && memcmp(s, "qcs", 3) == 0) ||
               (slen == 4 && memcmp(s, "tcgw", 4) == 0) ||
               !is_name(s, slen, GW_CALL_SERVICE_MAX, GW_TEXT_ALNUM "_-")) {
        policy_problem(p->r, line, "unknown condition key \"%.80s\"; keys are " KNOWN_KEYS, k.text);
        return false;
    } else {
        k.kind = KEY_PARAM;
        k.service = policy_strndup(p->a, s, slen);
        k.path = k.text + slen + 1;
        const char *segs[POLICY_MAX_SEGMENTS];
        size_t n = 0;
        for (const char *q = k.path;;) {
            const char *dot = strchr(q, '.');
            size_t sl = dot != NULL ? (size_t)(dot - q) : strlen(q);
            if (n == POLICY_MAX_SEGMENTS || !is_name(q, sl, 128, GW_TEXT_ALNUM "_")) {
                policy_problem(p->r, line,
                               "condition key \"%.80s\" must name a parameter as \"%.*s:Name\" or "
                               "\"%.*s:Name.Member\" (at most %d names of letters, digits and "
                               "'_')",
                               k.text, (int)slen, s, (int)slen, s, POLICY_MAX_SEGMENTS);
                return false;
            }
            if (all_digits(q, sl)) {
                policy_problem(p->r, line,
                               "condition key \"%.80s\": a key names no list index; "
                               "\"Filters.Name\" stands for the Name of every item of Filters "
                               "(use for_any_value: or for_all_value:)",
                               k.text);
                return false;
            }
            if ((segs[n++] = policy_strndup(p->a, q, sl)) == NULL) {
                return oom(p);
            }
            if (dot == NULL) {
                break;
            }
            q = dot + 1;
        }
        const char **copy = policy_alloc_array(p->a, n, sizeof *copy);
        if (copy == NULL || k.service == NULL) {
            return oom(p);
        }
        memcpy(copy, segs, n * sizeof *copy);
        k.segments = copy;
        k.n_segments = n;
    }
    *out = k;
    return true;
}

/* "for_all_value:numeric_less_than_equal_if_exist" into its parts. */
static bool parse_op(const char *s, struct policy_condition *c)
{
    size_t len = strlen(s);
    c->qualifier = QUALIFIER_NONE;
    if (strncmp(s, "for_any_value:", 14) == 0) {
        c->qualifier = QUALIFIER_ANY;
        s += 14;
        len -= 14;
    } else if (strncmp(s, "for_all_value:", 14) == 0) {
        c->qualifier = QUALIFIER_ALL;
        s += 14;
        len -= 14;
    }
    c->if_exist = len > 9 && strcmp(s + len - 9, "_if_exist") == 0;
    if (c->if_exist) {
        len -= 9;
    }
    if (!policy_op_parse(s, len, &c->op)) {
        return false;
    }
    c->family = policy_op_family(c->op);
    c->negated = policy_op_negated(c->op);
    return true;
}

static bool parse_values(struct parser *p, const json_t *j, const char *op, const char *key,
                         struct policy_condition *c)
{
    size_t n;
    int line = st_line(p, "condition", op, key, NULL);
    if (json_is_object(j) || json_is_null(j)) {
        policy_problem(p->r, line,
                       "the value of \"%.80s\" must be a value or a list of values, such as "
                       "[\"link-*\"] or 100",
                       key);
        return false;
    }
    char what[128];
    snprintf(what, sizeof what, "the value of \"%.80s\"", key);
    if (!list_of(p, j, line, what, &n)) {
        return false;
    }
    struct policy_value *values = policy_alloc_array(p->a, n, sizeof *values);
    if (values == NULL) {
        return oom(p);
    }
    bool ok = true;
    for (size_t i = 0; i < n; i++) {
        const char *why = "";
        const json_t *v = item_of(j, i);
        if (!policy_value_parse(c->family, v, &values[i], &why)) {
            policy_problem(p->r, st_line(p, "condition", op, key, &i),
                           "a value of %s on \"%.80s\" %s", policy_op_name(c->op), key, why);
            ok = false;
        } else if (values[i].s != NULL &&
                   (values[i].s = policy_strndup(p->a, values[i].s, values[i].len)) == NULL) {
            return oom(p);
        }
    }
    c->values = values;
    c->n_values = n;
    return ok;
}

static bool parse_conditions(struct parser *p, const json_t *j, struct policy_statement *st)
{
    int line = st_line(p, "condition", NULL, NULL, NULL);
    if (!json_is_object(j)) {
        policy_problem(p->r, line,
                       "\"condition\" must be an object such as "
                       "{\"numeric_less_than_equal\": {\"gaap:Bandwidth\": 100}}");
        return false;
    }
    size_t n = 0;
    const char *op;
    const json_t *keys;
    json_object_foreach ((json_t *)j, op, keys) {
        n += json_is_object(keys) ? json_object_size(keys) : 1;
    }
    if (n > POLICY_MAX_CONDITIONS) {
        policy_problem(p->r, line, "more than %d conditions in one statement; split it",
                       POLICY_MAX_CONDITIONS);
        return false;
    }
    struct policy_condition *conds = policy_alloc_array(p->a, n, sizeof *conds);
    if (conds == NULL) {
        return oom(p);
    }
    size_t count = 0;
    bool ok = true;
    json_object_foreach ((json_t *)j, op, keys) {
        struct policy_condition c;
        memset(&c, 0, sizeof c);
        int op_line = st_line(p, "condition", op, NULL, NULL);
        if (!parse_op(op, &c)) {
            policy_problem(p->r, op_line, "unknown condition operator \"%.80s\"; known: " KNOWN_OPS,
                           op);
            ok = false;
            continue;
        }
        if (!json_is_object(keys) || json_object_size(keys) == 0) {
            policy_problem(p->r, op_line,
                           "\"%s\" must be an object of keys and values, such as "
                           "{\"gaap:ProxyId\": [\"link-*\"]}",
                           op);
            ok = false;
            continue;
        }
        if ((c.op_text = policy_strndup(p->a, op, strlen(op))) == NULL) {
            return oom(p);
        }
        const char *key;
        const json_t *values;
        json_object_foreach ((json_t *)keys, key, values) {
            struct policy_condition *d = &conds[count];
            *d = c;
            d->line = st_line(p, "condition", op, key, NULL);
            if (!parse_key(p, key, strlen(key), d->line, &d->key) ||
                !parse_values(p, values, op, key, d)) {
                ok = false;
                continue;
            }
            if ((d->key.kind == KEY_SECRET_NAME || d->key.kind == KEY_SECRET_PARAM) &&
                (d->qualifier == QUALIFIER_NONE || d->family != FAMILY_STRING)) {
                policy_problem(p->r, d->line,
                               "\"%s\" is a list (every secret placeholder of the call): use a "
                               "string operator after for_all_value: (to allow: every secret "
                               "named must match) or for_any_value: (to deny: one is enough), "
                               "such as \"for_all_value:string_equal\"",
                               d->key.text);
                ok = false;
                continue;
            }
            count++;
        }
    }
    st->conditions = conds;
    st->n_conditions = count;
    return ok;
}

/* ---- statements ------------------------------------------------------------------------------ */

static bool parse_sid(struct parser *p, const json_t *j, const char *const *sids, const char **out)
{
    int line = st_line(p, "sid", NULL, NULL, NULL);
    const char *s = json_string_value(j);
    size_t len = s != NULL ? json_string_length(j) : 0;
    if (s == NULL || !is_name(s, len, POLICY_MAX_SID, NAME_CHARS) || all_digits(s, len)) {
        policy_problem(p->r, line,
                       "\"sid\" must be a string of 1 to %d letters, digits, '_', '.' or '-', "
                       "not only digits (those name statements by position)",
                       POLICY_MAX_SID);
        return false;
    }
    for (size_t i = 0; i < p->index; i++) {
        if (sids[i] != NULL && strcmp(sids[i], s) == 0) {
            policy_problem(p->r, line, "\"sid\" \"%s\" names statement %zu already; sids differ", s,
                           i + 1);
            return false;
        }
    }
    *out = policy_strndup(p->a, s, len);
    return *out != NULL || oom(p);
}

static bool parse_statement(struct parser *p, const char *file, const json_t *j, const char **sids,
                            struct policy_statement *st)
{
    unsigned before = p->r->problems;
    int line = st_line(p, NULL, NULL, NULL, NULL);
    memset(st, 0, sizeof *st);
    st->index = p->index + 1;
    st->line = line;
    if (!json_is_object(j)) {
        policy_problem(p->r, line,
                       "statement %zu must be an object with \"effect\", \"action\" and "
                       "\"resource\"",
                       st->index);
        return false;
    }
    const char *key;
    const json_t *v;
    const json_t *effect = NULL, *action = NULL, *resource = NULL;
    json_object_foreach ((json_t *)j, key, v) {
        int kline = st_line(p, key, NULL, NULL, NULL);
        if (strcmp(key, "sid") == 0) {
            (void)parse_sid(p, v, sids, &sids[p->index]);
        } else if (strcmp(key, "effect") == 0) {
            effect = v;
        } else if (strcmp(key, "action") == 0) {
            action = v;
        } else if (strcmp(key, "resource") == 0) {
            resource = v;
        } else if (strcmp(key, "condition") == 0) {
            (void)parse_conditions(p, v, st);
        } else if (strcmp(key, "principal") == 0) {
            policy_problem(p->r, kline,
                           "\"principal\" is not used: a caller names its policies in the "
                           "callers file; remove it");
        } else {
            policy_problem(p->r, kline,
                           "unknown key \"%.80s\" in statement %zu; a statement has \"sid\", "
                           "\"effect\", \"action\", \"resource\" and \"condition\"",
                           key, st->index);
        }
    }
    const char *e = json_string_value(effect);
    if (effect == NULL) {
        policy_problem(p->r, line, "statement %zu needs \"effect\": \"allow\" or \"deny\"",
                       st->index);
    } else if (e == NULL || (strcmp(e, "allow") != 0 && strcmp(e, "deny") != 0)) {
        policy_problem(p->r, st_line(p, "effect", NULL, NULL, NULL),
                       "\"effect\" must be \"allow\" or \"deny\"");
    } else {
        st->allow = e[0] == 'a';
    }
    if (action == NULL) {
        policy_problem(p->r, line, "statement %zu needs \"action\", such as [\"gaap:Describe*\"]",
                       st->index);
    } else {
        (void)parse_actions(p, action, st);
    }
    if (resource == NULL) {
        policy_problem(p->r, line, "statement %zu needs \"resource\": [\"*\"]", st->index);
    } else {
        (void)parse_resource(p, resource);
    }
    const char *sid = sids[p->index];
    if (sid != NULL) {
        snprintf(st->id, sizeof st->id, "%s#%s", file, sid);
    } else {
        snprintf(st->id, sizeof st->id, "%s#%zu", file, st->index);
    }
    return p->r->problems == before && !p->nomem;
}

static void parse_root(struct parser *p, const char *file, const json_t *root,
                       struct gw_policy *policy)
{
    const char *key;
    const json_t *v;
    const json_t *statements = NULL;
    bool version = false;
    json_object_foreach ((json_t *)root, key, v) {
        int line = top_line(p, key);
        if (strcmp(key, "version") == 0) {
            version = true;
            if (!json_is_string(v) || strcmp(json_string_value(v), "2.0") != 0) {
                policy_problem(p->r, line, "\"version\" must be \"2.0\"");
            }
        } else if (strcmp(key, "statement") == 0) {
            statements = v;
        } else {
            policy_problem(p->r, line,
                           "unknown key \"%.80s\"; a policy has \"version\" and \"statement\"",
                           key);
        }
    }
    if (!version) {
        policy_problem(p->r, 1, "the policy needs \"version\": \"2.0\"");
    }
    if (statements == NULL) {
        policy_problem(p->r, 1, "the policy needs \"statement\": [ ... ]");
        return;
    }
    size_t n = json_array_size(statements);
    if (!json_is_array(statements) || n == 0) {
        policy_problem(p->r, top_line(p, "statement"),
                       "\"statement\" must be a list of at least one statement");
        return;
    }
    if (n > POLICY_MAX_STATEMENTS) {
        policy_problem(p->r, top_line(p, "statement"),
                       "more than %d statements; split the policy into several files",
                       POLICY_MAX_STATEMENTS);
        return;
    }
    struct policy_statement *sts = policy_alloc_array(p->a, n, sizeof *sts);
    const char **sids = policy_alloc_array(p->a, n, sizeof *sids);
    if (sts == NULL || sids == NULL) {
        (void)oom(p);
        return;
    }
    size_t count = 0;
    for (p->index = 0; p->index < n; p->index++) {
        if (parse_statement(p, file, json_array_get(statements, p->index), sids, &sts[count])) {
            count++;
        }
    }
    policy->statements = sts;
    policy->n_statements = count;
}

enum gw_err policy_parse(struct policy_arena *a, struct policy_report *r, const char *file,
                         const char *text, size_t len, const struct gw_apispec *spec,
                         struct gw_policy **out)
{
    enum gw_err err;
    json_t *root = NULL;
    struct parser p = {.a = a, .r = r, .spec = spec};
    struct gw_policy *policy = policy_alloc(a, sizeof *policy);
    size_t flen = strlen(file);
    if (policy == NULL || (policy->file = policy_strndup(a, file, flen)) == NULL) {
        err = GW_ERR_NOMEM;
        goto out;
    }
    size_t nlen = flen > 5 && strcmp(file + flen - 5, ".json") == 0 ? flen - 5 : flen;
    if ((policy->name = policy_strndup(a, file, nlen)) == NULL) {
        err = GW_ERR_NOMEM;
        goto out;
    }
    if (nlen == flen || !is_name(file, nlen, POLICY_MAX_NAME, NAME_CHARS) || file[0] == '.') {
        policy_problem(r, 0,
                       "a policy file is named \"<name>.json\", the name 1 to %d letters, digits, "
                       "'_', '.' or '-'; rename it",
                       POLICY_MAX_NAME);
    }
    int deep = gw_jsonpos_too_deep(text, len, POLICY_MAX_DEPTH);
    if (deep > 0) {
        policy_problem(r, deep,
                       "nested deeper than %d levels; a policy needs 6 (statement list, "
                       "statement, condition, operator, key, values)",
                       POLICY_MAX_DEPTH);
        goto done;
    }
    json_error_t jerr;
    root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        bool dup = strstr(jerr.text, "duplicate") != NULL;
        policy_problem(r, jerr.line > 0 ? jerr.line : 1, "%s%s", jerr.text,
                       dup ? "; a key may appear only once in an object" : "");
        goto done;
    }
    if (!json_is_object(root)) {
        policy_problem(r, 1,
                       "a policy is a JSON object: {\"version\": \"2.0\", \"statement\": [...]}");
        goto done;
    }
    parse_root(&p, file, root, policy);
done:
    if (p.nomem) {
        err = GW_ERR_NOMEM;
        goto out;
    }
    *out = policy;
    err = GW_OK;
out:
    json_decref(root);
    return err;
}
