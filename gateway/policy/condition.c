/*
 * condition: the operators, how values are read (in a policy at load, in a call when deciding),
 * and the evaluation of one condition. Nothing here allocates once a policy is loaded.
 */
#include <arpa/inet.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "inject/placeholder.h"
#include "policy/policy_internal.h"

/* ---- operators ------------------------------------------------------------------------------- */

static const struct {
    const char *name;
    enum policy_op op;
    enum policy_family family;
    bool negated;
} ops[] = {
    {"string_equal", OP_STRING_EQUAL, FAMILY_STRING, false},
    {"string_not_equal", OP_STRING_NOT_EQUAL, FAMILY_STRING, true},
    {"string_like", OP_STRING_LIKE, FAMILY_STRING, false},
    {"numeric_equal", OP_NUMERIC_EQUAL, FAMILY_NUMERIC, false},
    {"numeric_not_equal", OP_NUMERIC_NOT_EQUAL, FAMILY_NUMERIC, true},
    {"numeric_less_than", OP_NUMERIC_LESS_THAN, FAMILY_NUMERIC, false},
    {"numeric_less_than_equal", OP_NUMERIC_LESS_THAN_EQUAL, FAMILY_NUMERIC, false},
    {"numeric_greater_than", OP_NUMERIC_GREATER_THAN, FAMILY_NUMERIC, false},
    {"numeric_greater_than_equal", OP_NUMERIC_GREATER_THAN_EQUAL, FAMILY_NUMERIC, false},
    {"ip_equal", OP_IP_EQUAL, FAMILY_IP, false},
    {"ip_not_equal", OP_IP_NOT_EQUAL, FAMILY_IP, true},
    {"bool_equal", OP_BOOL_EQUAL, FAMILY_BOOL, false},
};

#define N_OPS (sizeof ops / sizeof ops[0])

bool policy_op_parse(const char *name, size_t len, enum policy_op *op)
{
    for (size_t i = 0; i < N_OPS; i++) {
        if (strlen(ops[i].name) == len && memcmp(ops[i].name, name, len) == 0) {
            *op = ops[i].op;
            return true;
        }
    }
    return false;
}

const char *policy_op_name(enum policy_op op)
{
    return (size_t)op < N_OPS ? ops[op].name : "?";
}

enum policy_family policy_op_family(enum policy_op op)
{
    return (size_t)op < N_OPS ? ops[op].family : FAMILY_STRING;
}

bool policy_op_negated(enum policy_op op)
{
    return (size_t)op < N_OPS && ops[op].negated;
}

/* ---- values ---------------------------------------------------------------------------------- */

static bool digits(const char *s, size_t n, size_t *i)
{
    size_t start = *i;
    while (*i < n && s[*i] >= '0' && s[*i] <= '9') {
        (*i)++;
    }
    return *i > start;
}

bool policy_number_parse(const char *s, size_t n, struct policy_number *out)
{
    size_t i = 0;
    if (n == 0 || n > POLICY_MAX_NUMBER) {
        return false;
    }
    bool neg = s[0] == '-';
    i += neg;
    size_t int_start = i;
    if (!digits(s, n, &i)) {
        return false;
    }
    size_t int_end = i;
    bool is_int = true;
    if (i < n && s[i] == '.') {
        i++;
        is_int = false;
        if (!digits(s, n, &i)) {
            return false;
        }
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        is_int = false;
        i += i < n && (s[i] == '+' || s[i] == '-');
        if (!digits(s, n, &i)) {
            return false;
        }
    }
    if (i != n) {
        return false;
    }
    char buf[POLICY_MAX_NUMBER + 1];
    memcpy(buf, s, n);
    buf[n] = '\0';
    struct policy_number x = {.d = strtod(buf, NULL)};
    if (!isfinite(x.d)) {
        return false;
    }
    if (is_int) {
        uint64_t mag = 0;
        for (size_t k = int_start; k < int_end && is_int; k++) {
            unsigned d = (unsigned)(s[k] - '0');
            if (mag > (UINT64_MAX - d) / 10) {
                is_int = false; /* beyond 64 bits: compared as a double */
            }
            mag = mag * 10 + d;
        }
        x.mag = mag;
        x.neg = neg && mag != 0;
    }
    x.is_int = is_int;
    *out = x;
    return true;
}

static void number_of_int(json_int_t v, struct policy_number *out)
{
    out->is_int = true;
    out->neg = v < 0;
    out->mag = v < 0 ? (uint64_t)(-(v + 1)) + 1 : (uint64_t)v;
    out->d = (double)v;
}

int policy_number_cmp(const struct policy_number *a, const struct policy_number *b)
{
    if (a->is_int && b->is_int) {
        if (a->neg != b->neg) {
            return a->neg ? -1 : 1;
        }
        int c = a->mag < b->mag ? -1 : a->mag > b->mag;
        return a->neg ? -c : c;
    }
    return a->d < b->d ? -1 : a->d > b->d;
}

/* A number of a call: a JSON number, or a string that is a decimal number. */
static bool number_of(const json_t *j, const char *text, struct policy_number *out)
{
    if (text != NULL) {
        return policy_number_parse(text, strlen(text), out);
    }
    if (json_is_integer(j)) {
        number_of_int(json_integer_value(j), out);
        return true;
    }
    if (json_is_real(j)) {
        out->is_int = false;
        out->d = json_real_value(j);
        return true;
    }
    if (json_is_string(j)) {
        return policy_number_parse(json_string_value(j), json_string_length(j), out);
    }
    return false;
}

/* An address, or with cidr set an address with an optional "/prefix". */
static bool address_parse(const char *s, size_t n, bool cidr, struct policy_cidr *out)
{
    char buf[64];
    const char *slash = cidr ? memchr(s, '/', n) : NULL;
    size_t alen = slash != NULL ? (size_t)(slash - s) : n;
    if (alen == 0 || alen >= sizeof buf || memchr(s, '\0', n) != NULL) {
        return false;
    }
    memcpy(buf, s, alen);
    buf[alen] = '\0';
    struct policy_cidr x;
    memset(&x, 0, sizeof x);
    if (inet_pton(AF_INET, buf, x.addr) == 1) {
        x.family = 4;
        x.prefix = 32;
    } else if (inet_pton(AF_INET6, buf, x.addr) == 1) {
        x.family = 6;
        x.prefix = 128;
        static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (!cidr && memcmp(x.addr, mapped, sizeof mapped) == 0) {
            /* A caller's IPv4 address on a dual-stack socket: compared as IPv4. */
            memmove(x.addr, x.addr + 12, 4);
            memset(x.addr + 4, 0, 12);
            x.family = 4;
            x.prefix = 32;
        }
    } else {
        return false;
    }
    if (slash != NULL) {
        size_t i = alen + 1;
        unsigned prefix = 0;
        if (i == n || n - i > 3) {
            return false;
        }
        for (; i < n; i++) {
            if (s[i] < '0' || s[i] > '9') {
                return false;
            }
            prefix = prefix * 10 + (unsigned)(s[i] - '0');
        }
        if (prefix > x.prefix) {
            return false;
        }
        x.prefix = (unsigned char)prefix;
        /* Host bits are ignored: 10.1.2.3/8 is 10.0.0.0/8. */
        for (unsigned bit = prefix; bit < 128; bit++) {
            x.addr[bit / 8] &= (unsigned char)~(0x80u >> (bit % 8));
        }
    }
    *out = x;
    return true;
}

static bool cidr_contains(const struct policy_cidr *net, const struct policy_cidr *a)
{
    if (net->family != a->family) {
        return false;
    }
    unsigned full = net->prefix / 8u, rest = net->prefix % 8u;
    if (memcmp(net->addr, a->addr, full) != 0) {
        return false;
    }
    unsigned char mask = (unsigned char)(0xff00u >> rest);
    return rest == 0 || (net->addr[full] & mask) == (a->addr[full] & mask);
}

/* A boolean: JSON true or false, or the strings "true" and "false". */
static bool bool_of(const json_t *j, const char *text, bool *out)
{
    const char *s = text != NULL ? text : json_is_string(j) ? json_string_value(j) : NULL;
    if (s != NULL && (strcmp(s, "true") == 0 || strcmp(s, "false") == 0)) {
        *out = s[0] == 't';
        return true;
    }
    if (s == NULL && json_is_boolean(j)) {
        *out = json_is_true(j);
        return true;
    }
    return false;
}

bool policy_value_parse(enum policy_family family, const json_t *j, struct policy_value *out,
                        const char **why)
{
    struct policy_value v;
    memset(&v, 0, sizeof v);
    if (json_is_string(j)) {
        v.s = json_string_value(j);
        v.len = json_string_length(j);
        if (v.len > POLICY_MAX_VALUE || memchr(v.s, '\0', v.len) != NULL) {
            *why = "is longer than 256 bytes or holds a NUL";
            return false;
        }
    }
    switch (family) {
    case FAMILY_STRING:
        if (v.s == NULL) {
            *why = "must be a string";
            return false;
        }
        break;
    case FAMILY_NUMERIC:
        if (!number_of(j, NULL, &v.num)) {
            *why = "must be a number, or a string holding a decimal number";
            return false;
        }
        break;
    case FAMILY_IP:
        if (v.s == NULL || !address_parse(v.s, v.len, true, &v.cidr)) {
            *why = "must be an IPv4 or IPv6 address or CIDR, such as \"10.0.0.0/8\"";
            return false;
        }
        break;
    case FAMILY_BOOL:
        if (!bool_of(j, NULL, &v.b)) {
            *why = "must be true or false";
            return false;
        }
        break;
    default:
        *why = "has an unknown operator";
        return false;
    }
    *out = v;
    return true;
}

/* ---- globs ----------------------------------------------------------------------------------- */

bool policy_glob(const char *p, size_t plen, const char *s, size_t n, bool star_only)
{
    size_t pi = 0, si = 0;
    size_t star = SIZE_MAX, mark = 0; /* the last '*' and where its run began in s */
    while (si < n) {
        if (pi < plen && p[pi] == '*') {
            star = pi++;
            mark = si;
        } else if (pi < plen && (p[pi] == s[si] || (!star_only && p[pi] == '?'))) {
            pi++;
            si++;
        } else if (star != SIZE_MAX) {
            pi = star + 1;
            si = ++mark;
        } else {
            return false;
        }
    }
    while (pi < plen && p[pi] == '*') {
        pi++;
    }
    return pi == plen;
}

bool policy_action_matches(const struct policy_action *a, const char *service, const char *action)
{
    if (a->service_wild
            ? !policy_glob(a->service, strlen(a->service), service, strlen(service), true)
            : strcmp(a->service, service) != 0) {
        return false;
    }
    return a->action_wild ? policy_glob(a->action, strlen(a->action), action, strlen(action), true)
                          : strcmp(a->action, action) == 0;
}

/* ---- evaluation ------------------------------------------------------------------------------ */

/* The positive operator (the _not_ ones negated later) on one value of the call. */
static enum policy_verdict test_one(const struct policy_condition *c, const json_t *j,
                                    const char *text)
{
    const char *s = text;
    size_t len = text != NULL ? strlen(text) : 0;
    if (s == NULL && json_is_string(j)) {
        s = json_string_value(j);
        len = json_string_length(j);
        /* An escaped literal is judged as the text that is sent (inject/placeholder.h). */
        if (len >= sizeof GW_PLACEHOLDER_RAW - 1 &&
            memcmp(s, GW_PLACEHOLDER_RAW, sizeof GW_PLACEHOLDER_RAW - 1) == 0) {
            s += sizeof GW_PLACEHOLDER_RAW - 1;
            len -= sizeof GW_PLACEHOLDER_RAW - 1;
        }
    }
    struct policy_number num;
    struct policy_cidr addr;
    bool b = false;
    memset(&num, 0, sizeof num);
    memset(&addr, 0, sizeof addr);
    /* Read as the operator's family wants it; a value that cannot be is of the wrong type. */
    switch (c->family) {
    case FAMILY_STRING:
        if (s == NULL) {
            return VERDICT_UNSURE;
        }
        break;
    case FAMILY_NUMERIC:
        if (!number_of(j, text, &num)) {
            return VERDICT_UNSURE;
        }
        break;
    case FAMILY_IP:
        if (s == NULL || !address_parse(s, len, false, &addr)) {
            return VERDICT_UNSURE;
        }
        break;
    case FAMILY_BOOL:
        if (!bool_of(j, text, &b)) {
            return VERDICT_UNSURE;
        }
        break;
    default:
        return VERDICT_UNSURE;
    }
    for (size_t i = 0; i < c->n_values; i++) {
        const struct policy_value *v = &c->values[i];
        int cmp = c->family == FAMILY_NUMERIC ? policy_number_cmp(&num, &v->num) : 0;
        bool hit;
        switch (c->op) {
        case OP_STRING_EQUAL:
        case OP_STRING_NOT_EQUAL:
            hit = len == v->len && memcmp(s, v->s, len) == 0;
            break;
        case OP_STRING_LIKE:
            hit = policy_glob(v->s, v->len, s, len, false);
            break;
        case OP_NUMERIC_EQUAL:
        case OP_NUMERIC_NOT_EQUAL:
            hit = cmp == 0;
            break;
        case OP_NUMERIC_LESS_THAN:
            hit = cmp < 0;
            break;
        case OP_NUMERIC_LESS_THAN_EQUAL:
            hit = cmp <= 0;
            break;
        case OP_NUMERIC_GREATER_THAN:
            hit = cmp > 0;
            break;
        case OP_NUMERIC_GREATER_THAN_EQUAL:
            hit = cmp >= 0;
            break;
        case OP_IP_EQUAL:
        case OP_IP_NOT_EQUAL:
            hit = cidr_contains(&v->cidr, &addr);
            break;
        case OP_BOOL_EQUAL:
            hit = b == v->b;
            break;
        default:
            return VERDICT_UNSURE;
        }
        if (hit) {
            return VERDICT_YES;
        }
    }
    return VERDICT_NO;
}

/* The values of a key in one call, folded as they are visited. */
struct fold {
    const struct policy_condition *c;
    size_t count;
    bool multi; /* the key's path went through a list */
    bool yes, no, unsure;
    bool done; /* the verdict cannot change any more */
    struct policy_witness first_no, first_unsure, first;
};

static void fold_one(struct fold *f, const json_t *j, const char *text)
{
    enum policy_verdict v = test_one(f->c, j, text);
    if (v != VERDICT_UNSURE && f->c->negated) {
        v = v == VERDICT_YES ? VERDICT_NO : VERDICT_YES;
    }
    struct policy_witness w = {.json = j, .text = text};
    if (f->count++ == 0) {
        f->first = w;
    }
    if (v == VERDICT_YES) {
        f->yes = true;
        f->done = f->c->qualifier == QUALIFIER_ANY;
    } else if (v == VERDICT_NO) {
        if (!f->no) {
            f->first_no = w;
        }
        f->no = true;
        f->done = f->c->qualifier == QUALIFIER_ALL;
    } else {
        if (!f->unsure) {
            f->first_unsure = w;
        }
        f->unsure = true;
    }
}

/*
 * Visits the values at segments below node. A list is walked: each item continues the path (a
 * list inside a list is one value, of the wrong type for every operator). A path that meets a
 * scalar, or a missing member, yields nothing there; null is no value.
 */
static void visit(struct fold *f, const json_t *node, const char *const *seg, size_t n,
                  bool in_list)
{
    if (node == NULL || json_is_null(node) || f->done) {
        return;
    }
    if (json_is_array(node) && !in_list) {
        f->multi = true;
        for (size_t i = 0; i < json_array_size(node) && !f->done; i++) {
            visit(f, json_array_get(node, i), seg, n, true);
        }
        return;
    }
    if (n == 0) {
        fold_one(f, node, NULL);
        return;
    }
    if (json_is_object(node)) {
        visit(f, json_object_get(node, seg[0]), seg + 1, n - 1, false);
    }
}

static void gather(struct fold *f, const struct policy_key *k, const struct gw_policy_request *req)
{
    const char *text = NULL;
    switch (k->kind) {
    case KEY_PARAM:
        if (req->service != NULL && strcmp(req->service, k->service) == 0) {
            visit(f, req->params, k->segments, k->n_segments, false);
        }
        return;
    case KEY_IP:
        text = req->peer;
        break;
    case KEY_REGION:
        text = req->region;
        break;
    case KEY_CALLER:
        text = req->caller;
        break;
    case KEY_CALLER_ATTR:
        if (json_is_object(req->caller_attributes)) {
            visit(f, json_object_get(req->caller_attributes, k->attribute), NULL, 0, false);
        }
        return;
    case KEY_SECRET_NAME:
    case KEY_SECRET_PARAM:
        /* A list, even of one (or none): only for_any_value and for_all_value apply (parse.c). */
        f->multi = true;
        for (size_t i = 0; i < req->n_secrets && !f->done; i++) {
            const char *const *list =
                k->kind == KEY_SECRET_NAME ? req->secret_names : req->secret_params;
            fold_one(f, NULL, list[i]);
        }
        return;
    default:
        return;
    }
    if (text != NULL && text[0] != '\0') {
        fold_one(f, NULL, text);
    }
}

enum policy_verdict policy_condition_eval(const struct policy_condition *c,
                                          const struct gw_policy_request *req,
                                          struct policy_witness *w)
{
    struct fold f;
    memset(&f, 0, sizeof f);
    f.c = c;
    gather(&f, &c->key, req);
    memset(w, 0, sizeof *w);
    if (f.count == 0) {
        /* Absent (or an empty list): CAM's rules. */
        w->absent = true;
        if (c->if_exist || c->qualifier == QUALIFIER_ALL) {
            return VERDICT_YES;
        }
        return c->qualifier == QUALIFIER_NONE && f.multi ? VERDICT_UNSURE : VERDICT_NO;
    }
    switch (c->qualifier) {
    case QUALIFIER_NONE:
        *w = f.first;
        if (f.multi) {
            return VERDICT_UNSURE; /* one value was expected: for_any_value or for_all_value? */
        }
        return f.yes ? VERDICT_YES : f.no ? VERDICT_NO : VERDICT_UNSURE;
    case QUALIFIER_ANY:
        if (f.yes) {
            return VERDICT_YES;
        }
        *w = f.unsure ? f.first_unsure : f.first;
        return f.unsure ? VERDICT_UNSURE : VERDICT_NO;
    case QUALIFIER_ALL:
        if (f.no) {
            *w = f.first_no;
            return VERDICT_NO;
        }
        *w = f.unsure ? f.first_unsure : f.first;
        return f.unsure ? VERDICT_UNSURE : VERDICT_YES;
    default:
        return VERDICT_UNSURE;
    }
}

/* ---- quoting a call's value ------------------------------------------------------------------ */

const char *policy_witness_text(const struct policy_witness *w, char *buf, size_t cap)
{
    const char *s = w->text;
    size_t len = s != NULL ? strlen(s) : 0;
    if (cap == 0) {
        return buf;
    }
    if (s == NULL && json_is_string(w->json)) {
        s = json_string_value(w->json);
        len = json_string_length(w->json);
    }
    if (s == NULL) {
        if (json_is_integer(w->json)) {
            snprintf(buf, cap, "%" JSON_INTEGER_FORMAT, json_integer_value(w->json));
        } else if (json_is_real(w->json)) {
            snprintf(buf, cap, "%.17g", json_real_value(w->json));
        } else if (json_is_boolean(w->json)) {
            snprintf(buf, cap, "%s", json_is_true(w->json) ? "true" : "false");
        } else if (json_is_object(w->json)) {
            snprintf(buf, cap, "an object");
        } else if (json_is_array(w->json)) {
            snprintf(buf, cap, "a list");
        } else {
            snprintf(buf, cap, "nothing");
        }
        return buf;
    }
    /* A caller's bytes: printable ASCII only, cut with "..." past POLICY_ECHO_MAX. */
    size_t max = cap - 1 < POLICY_ECHO_MAX ? cap - 1 : POLICY_ECHO_MAX;
    size_t o = 0;
    for (size_t i = 0; i < len && o < max; i++) {
        unsigned char ch = (unsigned char)s[i];
        buf[o++] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
    }
    if (len > max && cap > 4 && o >= 3) {
        memcpy(buf + o - 3, "...", 3);
    }
    buf[o] = '\0';
    return buf;
}
