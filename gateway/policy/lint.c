/*
 * lint: every problem of a policy file or directory. The parser reports what the syntax forbids;
 * with API descriptions, lint adds what they tell: action patterns that match no action, condition
 * keys that name no parameter of the statement's actions (for a wildcard, of any action it
 * matches), operators of the wrong type for a parameter, plain operators on list parameters, and
 * statements whose conditions on one key contradict each other, so that they can never match.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "apispec/apispec.h"
#include "policy/policy_internal.h"

/* ---- actions --------------------------------------------------------------------------------- */

struct action_count {
    const struct policy_action *a;
    size_t n;
};

static bool count_action(void *ctx, const char *service, const char *action)
{
    struct action_count *c = ctx;
    c->n += policy_action_matches(c->a, service, action);
    return true;
}

static void check_actions(struct policy_report *r, const struct policy_statement *st,
                          const struct gw_apispec *spec)
{
    size_t dead = 0;
    for (size_t i = 0; i < st->n_actions; i++) {
        struct action_count c = {.a = &st->actions[i]};
        gw_apispec_each_action(spec, count_action, &c);
        if (c.n == 0) {
            dead++;
            policy_problem(r, c.a->line, "\"%s\" matches no action of the API descriptions",
                           c.a->text);
        }
    }
    if (dead == st->n_actions && st->n_actions > 1) {
        policy_problem(r, st->line,
                       "statement %zu can never match: no action of the API descriptions is in "
                       "its action list",
                       st->index);
    }
}

/* ---- parameters ------------------------------------------------------------------------------ */

struct param_search {
    const struct policy_statement *st;
    const struct policy_key *key;
    const struct gw_apispec *spec;
    size_t actions; /* of the key's service, named by the statement */
    size_t having;  /* of those, with the parameter */
    struct gw_apispec_param param;
    char example[GW_CALL_ACTION_MAX + 1]; /* an action without the parameter */
};

static bool search_param(void *ctx, const char *service, const char *action)
{
    struct param_search *s = ctx;
    if (strcmp(service, s->key->service) != 0) {
        return true;
    }
    bool named = false;
    for (size_t i = 0; i < s->st->n_actions && !named; i++) {
        named = policy_action_matches(&s->st->actions[i], service, action);
    }
    if (!named) {
        return true;
    }
    s->actions++;
    struct gw_apispec_param p;
    if (gw_apispec_find_param(s->spec, service, action, s->key->segments, s->key->n_segments, &p)) {
        if (s->having++ == 0) {
            s->param = p;
        }
    } else if (s->example[0] == '\0') {
        snprintf(s->example, sizeof s->example, "%s", action);
    }
    return true;
}

static const char *type_name(enum gw_apispec_type t)
{
    switch (t) {
    case GW_APISPEC_TYPE_STRING:
        return "a string";
    case GW_APISPEC_TYPE_INTEGER:
        return "an integer";
    case GW_APISPEC_TYPE_FLOAT:
        return "a number";
    case GW_APISPEC_TYPE_BOOL:
        return "a boolean";
    case GW_APISPEC_TYPE_OBJECT:
        return "an object";
    case GW_APISPEC_TYPE_OTHER:
    default:
        return "of a type the gateway does not check";
    }
}

static bool type_fits(enum policy_family f, enum gw_apispec_type t)
{
    switch (f) {
    case FAMILY_STRING:
    case FAMILY_IP:
        return t == GW_APISPEC_TYPE_STRING;
    case FAMILY_NUMERIC:
        return t == GW_APISPEC_TYPE_INTEGER || t == GW_APISPEC_TYPE_FLOAT;
    case FAMILY_BOOL:
        return t == GW_APISPEC_TYPE_BOOL;
    default:
        return false;
    }
}

/* What follows "the statement" when a key is never present in its calls. */
static const char *never_present(const struct policy_condition *c)
{
    return c->if_exist || c->qualifier == QUALIFIER_ALL
               ? "the condition always holds and restricts nothing; remove it or fix the key"
               : "the statement can never match; fix the key";
}

static void check_param(struct policy_report *r, const struct policy_statement *st,
                        const struct policy_condition *c, const struct gw_apispec *spec)
{
    struct param_search s = {.st = st, .key = &c->key, .spec = spec};
    gw_apispec_each_action(spec, search_param, &s);
    if (s.actions == 0) {
        policy_problem(r, c->line,
                       "condition key \"%s\": no action of the statement is a %s "
                       "action, so calls never have it: %s",
                       c->key.text, c->key.service, never_present(c));
        return;
    }
    if (s.having == 0) {
        policy_problem(r, c->line, "condition key \"%s\": %s:%s%s has no parameter %s: %s",
                       c->key.text, c->key.service, s.example,
                       s.actions > 1 ? " (nor any action "
                                       "of the statement)"
                                     : "",
                       c->key.path, never_present(c));
        return;
    }
    if (s.param.list && c->qualifier == QUALIFIER_NONE) {
        policy_problem(r, c->line,
                       "condition key \"%s\" is a list: write \"for_any_value:%s\" (some value "
                       "must match) or \"for_all_value:%s\" (every value must)",
                       c->key.text, c->op_text, c->op_text);
    }
    if (!type_fits(c->family, s.param.type)) {
        policy_problem(r, c->line, "condition key \"%s\" is %s: %s cannot compare it%s",
                       c->key.text, type_name(s.param.type), policy_op_name(c->op),
                       s.param.type == GW_APISPEC_TYPE_OBJECT
                           ? "; name one of its members, as in Filters.Name"
                           : "");
    }
}

/* ---- contradictions -------------------------------------------------------------------------- */

static bool plain(const struct policy_condition *c)
{
    return c->qualifier == QUALIFIER_NONE && !c->if_exist;
}

static bool number_in(const struct policy_number *x, const struct policy_condition *c)
{
    for (size_t i = 0; i < c->n_values; i++) {
        if (policy_number_cmp(x, &c->values[i].num) == 0) {
            return true;
        }
    }
    return false;
}

/* Whether x satisfies every plain numeric condition of st on key (the bounds and the sets). */
static bool number_passes(const struct policy_number *x, const struct policy_statement *st,
                          const char *key)
{
    for (size_t i = 0; i < st->n_conditions; i++) {
        const struct policy_condition *c = &st->conditions[i];
        if (!plain(c) || c->family != FAMILY_NUMERIC || strcmp(c->key.text, key) != 0) {
            continue;
        }
        bool any = false;
        for (size_t k = 0; k < c->n_values && !any; k++) {
            int cmp = policy_number_cmp(x, &c->values[k].num);
            any = c->op == OP_NUMERIC_LESS_THAN            ? cmp < 0
                  : c->op == OP_NUMERIC_LESS_THAN_EQUAL    ? cmp <= 0
                  : c->op == OP_NUMERIC_GREATER_THAN       ? cmp > 0
                  : c->op == OP_NUMERIC_GREATER_THAN_EQUAL ? cmp >= 0
                  : c->op == OP_NUMERIC_EQUAL              ? cmp == 0
                                                           : true;
        }
        if (!any || (c->op == OP_NUMERIC_NOT_EQUAL && number_in(x, c))) {
            return false;
        }
    }
    return true;
}

/*
 * Whether some number satisfies all plain numeric conditions of st on key. The set that satisfies
 * them is bounded by the values they name, so when it is not empty it holds one of these
 * candidates: a value, a value plus or minus one, or the middle of two values.
 */
#define CANDIDATE_VALUES 64

static bool numbers_possible(const struct policy_statement *st, const char *key)
{
    double v[CANDIDATE_VALUES];
    size_t n = 0;
    for (size_t i = 0; i < st->n_conditions; i++) {
        const struct policy_condition *c = &st->conditions[i];
        if (!plain(c) || c->family != FAMILY_NUMERIC || strcmp(c->key.text, key) != 0) {
            continue;
        }
        for (size_t k = 0; k < c->n_values; k++) {
            if (n == CANDIDATE_VALUES) {
                return true; /* too many to try: assume it can match */
            }
            if (number_passes(&c->values[k].num, st, key)) {
                return true;
            }
            v[n++] = c->values[k].num.d;
        }
    }
    for (size_t i = 0; i < n; i++) {
        for (size_t j = i; j < n; j++) {
            struct policy_number x[3] = {
                {.d = (v[i] + v[j]) / 2}, {.d = v[i] - 1}, {.d = v[i] + 1}};
            for (size_t m = 0; m < 3; m++) {
                if (number_passes(&x[m], st, key)) {
                    return true;
                }
            }
        }
    }
    return false;
}

static bool string_passes(const struct policy_value *x, const struct policy_statement *st,
                          const char *key)
{
    for (size_t i = 0; i < st->n_conditions; i++) {
        const struct policy_condition *c = &st->conditions[i];
        if (!plain(c) || c->family != FAMILY_STRING || strcmp(c->key.text, key) != 0) {
            continue;
        }
        bool any = false;
        for (size_t k = 0; k < c->n_values && !any; k++) {
            const struct policy_value *v = &c->values[k];
            any = c->op == OP_STRING_LIKE ? policy_glob(v->s, v->len, x->s, x->len, false)
                                          : v->len == x->len && memcmp(v->s, x->s, x->len) == 0;
        }
        if (c->negated ? any : !any) {
            return false;
        }
    }
    return true;
}

/* With a string_equal on key: whether one of its values passes every other condition on key. */
static bool strings_possible(const struct policy_statement *st, const char *key)
{
    for (size_t i = 0; i < st->n_conditions; i++) {
        const struct policy_condition *c = &st->conditions[i];
        if (!plain(c) || c->op != OP_STRING_EQUAL || strcmp(c->key.text, key) != 0) {
            continue;
        }
        for (size_t k = 0; k < c->n_values; k++) {
            if (string_passes(&c->values[k], st, key)) {
                return true;
            }
        }
        return false;
    }
    return true; /* without a list of the values allowed, a string can always be found */
}

static void check_contradictions(struct policy_report *r, const struct policy_statement *st)
{
    for (size_t i = 0; i < st->n_conditions; i++) {
        const struct policy_condition *c = &st->conditions[i];
        bool first = true;
        for (size_t j = 0; j < i && first; j++) {
            first = strcmp(st->conditions[j].key.text, c->key.text) != 0;
        }
        if (!first || !plain(c)) {
            continue;
        }
        bool possible = c->family == FAMILY_NUMERIC  ? numbers_possible(st, c->key.text)
                        : c->family == FAMILY_STRING ? strings_possible(st, c->key.text)
                                                     : true;
        if (!possible) {
            policy_problem(r, c->line,
                           "statement %zu can never match: no value of \"%s\" satisfies all its "
                           "conditions on that key",
                           st->index, c->key.text);
        }
    }
}

/* ---- files ----------------------------------------------------------------------------------- */

static unsigned lint_file(const char *path, const char *file, const struct gw_apispec *spec,
                          FILE *out)
{
    struct policy_arena arena = {NULL};
    struct policy_report r = {.path = path, .out = out};
    char *text = NULL;
    size_t len = 0;
    struct gw_policy *policy = NULL;
    if (policy_read_file(path, &text, &len, &r) != GW_OK) {
        if (r.problems == 0) {
            policy_problem(&r, 0, "out of memory");
        }
        goto out;
    }
    r.text = text;
    r.len = len;
    if (policy_parse(&arena, &r, file, text, len, spec, &policy) != GW_OK) {
        policy_problem(&r, 0, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < policy->n_statements; i++) {
        const struct policy_statement *st = &policy->statements[i];
        check_contradictions(&r, st);
        if (spec == NULL) {
            continue;
        }
        check_actions(&r, st, spec);
        for (size_t k = 0; k < st->n_conditions; k++) {
            if (st->conditions[k].key.kind == KEY_PARAM) {
                check_param(&r, st, &st->conditions[k], spec);
            }
        }
    }
out:
    free(text);
    policy_arena_free(&arena);
    return r.problems;
}

int gw_policy_lint(const char *path, const struct gw_apispec *spec, FILE *out)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(out, "%s: cannot read: %s\n", path, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        const char *slash = strrchr(path, '/');
        unsigned n = lint_file(path, slash != NULL ? slash + 1 : path, spec, out);
        return n > (unsigned)INT32_MAX ? INT32_MAX : (int)n;
    }
    char **names = NULL;
    size_t count = 0;
    struct policy_report r = {.path = path, .out = out};
    if (policy_list_dir(path, &names, &count, &r) != GW_OK) {
        return -1;
    }
    unsigned problems = 0;
    for (size_t i = 0; i < count; i++) {
        char file[4096];
        int len = snprintf(file, sizeof file, "%s/%s", path, names[i]);
        if (len < 0 || (size_t)len >= sizeof file) {
            fprintf(out, "%s/%s: path too long\n", path, names[i]);
            problems++;
        } else {
            problems += lint_file(file, names[i], spec, out);
        }
        free(names[i]);
    }
    free(names);
    return problems > (unsigned)INT32_MAX ? INT32_MAX : (int)problems;
}
