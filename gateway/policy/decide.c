/*
 * decide: a call against the statements of a caller's policies. Deny by default; an allow
 * statement applies when its action list names the call's action and every condition holds; a
 * deny statement applies when its action list names the action and no condition fails. A
 * condition that cannot be evaluated (VERDICT_UNSURE) counts against the call both ways: it
 * fails in an allow statement and holds in a deny statement. An applying deny decides at once.
 *
 * Nothing here allocates: reasons are written into the decision's fixed buffers.
 */
#include <string.h>

#include "policy/policy_internal.h"

#define VALUE_BUF (POLICY_ECHO_MAX + 8)

/* A condition that settled a statement, and the call's value it was about. */
struct blame {
    const struct policy_statement *st;
    const struct policy_condition *c; /* NULL: the statement has no condition */
    struct policy_witness w;
    enum policy_verdict v;
};

static bool mentions(const struct policy_statement *st, const char *service, const char *action)
{
    for (size_t i = 0; i < st->n_actions; i++) {
        if (policy_action_matches(&st->actions[i], service, action)) {
            return true;
        }
    }
    return false;
}

static const char *verdict_text(enum policy_verdict v, const struct policy_witness *w, bool allow)
{
    if (v == VERDICT_UNSURE) {
        return allow ? "cannot be evaluated (wrong type, or a list for a plain operator): fails"
                     : "cannot be evaluated (wrong type, or a list for a plain operator): holds";
    }
    if (w->absent) {
        return v == VERDICT_YES ? "absent: holds" : "absent: fails";
    }
    return v == VERDICT_YES ? "holds" : "fails";
}

/*
 * Evaluates st's conditions; returns whether the statement applies and, when it does not (or, for
 * a deny, when it does), which condition settled it. With explain, evaluates and prints them all.
 */
static bool applies(const struct policy_statement *st, const struct gw_policy_request *req,
                    struct blame *b, FILE *explain)
{
    bool result = true;
    b->st = st;
    b->c = NULL;
    for (size_t i = 0; i < st->n_conditions; i++) {
        const struct policy_condition *c = &st->conditions[i];
        struct policy_witness w;
        enum policy_verdict v = policy_condition_eval(c, req, &w);
        bool holds = v == VERDICT_YES || (v == VERDICT_UNSURE && !st->allow);
        if (explain != NULL) {
            char buf[VALUE_BUF];
            fprintf(explain, "    %s %s", c->op_text, c->key.text);
            if (!w.absent) {
                fprintf(explain, " on \"%s\"", policy_witness_text(&w, buf, sizeof buf));
            }
            fprintf(explain, ": %s\n", verdict_text(v, &w, st->allow));
        }
        /* Blame the first failing condition; for a deny, the first that held. */
        if (result && (!holds || (b->c == NULL && !st->allow))) {
            b->c = c;
            b->w = w;
            b->v = v;
        }
        if (!holds) {
            result = false;
            if (explain == NULL) {
                break;
            }
        }
    }
    return result;
}

/*
 * Whether st may allow a call that injects secrets: an allow with a for_all_value:string_equal or
 * for_all_value:string_like condition on tcgw:SecretName (policy.h: deny by default).
 */
static bool allows_secrets(const struct policy_statement *st)
{
    for (size_t i = 0; st->allow && i < st->n_conditions; i++) {
        const struct policy_condition *c = &st->conditions[i];
        if (c->key.kind == KEY_SECRET_NAME && c->qualifier == QUALIFIER_ALL &&
            (c->op == OP_STRING_EQUAL || c->op == OP_STRING_LIKE)) {
            return true;
        }
    }
    return false;
}

/* " with Bandwidth=200", " from 10.0.0.1", ...: the call's value as a phrase for messages. */
static void phrase(char *out, size_t cap, const struct blame *b, bool for_caller)
{
    char buf[VALUE_BUF];
    out[0] = '\0';
    if (b->c == NULL) {
        return;
    }
    const struct policy_key *k = &b->c->key;
    const char *v = b->w.absent ? "" : policy_witness_text(&b->w, buf, sizeof buf);
    switch (k->kind) {
    case KEY_PARAM:
        if (b->w.absent) {
            snprintf(out, cap, " without %s", k->path);
        } else {
            snprintf(out, cap, " with %s=%s", k->path, v);
        }
        break;
    case KEY_IP:
        snprintf(out, cap, b->w.absent ? " from an unknown address" : " from %s", v);
        break;
    case KEY_REGION:
        snprintf(out, cap, b->w.absent ? " without a region" : " in region %s", v);
        break;
    case KEY_CALLER_ATTR:
        if (b->w.absent) {
            snprintf(out, cap, " without caller attribute %s", k->attribute);
        } else if (for_caller) {
            /* How the gateway describes a caller is the operator's business, not the caller's. */
            snprintf(out, cap, " with caller attribute %s", k->attribute);
        } else {
            snprintf(out, cap, " with caller attribute %s=%s", k->attribute, v);
        }
        break;
    case KEY_SECRET_NAME:
        snprintf(out, cap, b->w.absent ? " without secrets" : " with secret %s", v);
        break;
    case KEY_SECRET_PARAM:
        snprintf(out, cap, b->w.absent ? " without secrets" : " with a secret in %s", v);
        break;
    case KEY_CALLER:
    default:
        break;
    }
}

static void set_statement(struct gw_policy_decision *out, const struct policy_statement *st)
{
    snprintf(out->statement, sizeof out->statement, "%s", st->id);
}

/* A statement that applies but may not allow injecting secrets (allows_secrets). */
static void say_no_secrets(struct gw_policy_decision *out, const struct gw_policy_request *req,
                           const struct policy_statement *allowed)
{
    out->decision = GW_DECISION_DENY;
    set_statement(out, allowed);
    snprintf(out->reason, sizeof out->reason,
             "denied by default: the call injects secret %.64s (%zu placeholder%s) and %s has no "
             "for_all_value condition on tcgw:SecretName",
             req->secret_names[0], req->n_secrets, req->n_secrets == 1 ? "" : "s", allowed->id);
    snprintf(out->refused, sizeof out->refused,
             "%s:%s with secret %.64s is not allowed for caller %.64s (no statement allows "
             "tcgw:SecretName)",
             req->service, req->action, req->secret_names[0], req->caller);
}

static void say_deny(struct gw_policy_decision *out, const struct gw_policy_request *req,
                     const struct blame *b)
{
    char mine[160], theirs[160];
    phrase(mine, sizeof mine, b, false);
    phrase(theirs, sizeof theirs, b, true);
    out->decision = GW_DECISION_DENY;
    set_statement(out, b->st);
    if (b->c != NULL) {
        snprintf(out->reason, sizeof out->reason, "denied by %s: %s %s%s", b->st->id, b->c->op_text,
                 b->c->key.text, mine);
        snprintf(out->refused, sizeof out->refused, "%s:%s%s is denied for caller %.64s (%s %s)",
                 req->service, req->action, theirs, req->caller, b->c->op_text, b->c->key.text);
    } else {
        snprintf(out->reason, sizeof out->reason, "denied by %s", b->st->id);
        snprintf(out->refused, sizeof out->refused, "%s:%s is denied for caller %.64s",
                 req->service, req->action, req->caller);
    }
}

static void say_default(struct gw_policy_decision *out, const struct gw_policy_request *req,
                        const struct blame *b, size_t n)
{
    out->decision = GW_DECISION_DENY;
    if (b->st == NULL) {
        if (n == 0) {
            snprintf(out->reason, sizeof out->reason, "no policy is bound to caller %.64s",
                     req->caller);
        } else {
            snprintf(out->reason, sizeof out->reason, "no allow statement names %s:%s",
                     req->service, req->action);
        }
        snprintf(out->refused, sizeof out->refused, "%s:%s is not allowed for caller %.64s",
                 req->service, req->action, req->caller);
        return;
    }
    char mine[160], theirs[160];
    phrase(mine, sizeof mine, b, false);
    phrase(theirs, sizeof theirs, b, true);
    set_statement(out, b->st);
    snprintf(out->reason, sizeof out->reason, "denied by default: %s does not apply: %s %s%s %s",
             b->st->id, b->c->op_text, b->c->key.text, mine,
             b->v == VERDICT_UNSURE ? "cannot be evaluated" : "fails");
    snprintf(out->refused, sizeof out->refused, "%s:%s%s is not allowed for caller %.64s (%s %s)",
             req->service, req->action, theirs, req->caller, b->c->op_text, b->c->key.text);
}

void gw_policy_decide(const struct gw_policy *const *policies, size_t n,
                      const struct gw_policy_request *req, struct gw_policy_decision *out,
                      FILE *explain)
{
    /* Every name a message quotes is set, so that no format meets a NULL. */
    struct gw_policy_request r = *req;
    r.service = r.service != NULL ? r.service : "";
    r.action = r.action != NULL ? r.action : "";
    r.caller = r.caller != NULL ? r.caller : "";
    r.region = r.region != NULL ? r.region : "";
    r.peer = r.peer != NULL ? r.peer : "";
    req = &r;
    const char *service = r.service, *action = r.action;
    const struct policy_statement *allowed = NULL;
    const struct policy_statement *allowed_without_secrets = NULL;
    struct blame candidate = {.st = NULL};
    memset(out, 0, sizeof *out);
    out->decision = GW_DECISION_DENY;
    for (size_t i = 0; i < n; i++) {
        const struct gw_policy *p = policies[i];
        for (size_t s = 0; p != NULL && s < p->n_statements; s++) {
            const struct policy_statement *st = &p->statements[s];
            if (!mentions(st, service, action)) {
                if (explain != NULL) {
                    fprintf(explain, "%s (%s): not for %s:%s\n", st->id,
                            st->allow ? "allow" : "deny", service, action);
                }
                continue;
            }
            if (explain != NULL) {
                fprintf(explain, "%s (%s): for %s:%s\n", st->id, st->allow ? "allow" : "deny",
                        service, action);
            }
            struct blame b;
            bool yes = applies(st, req, &b, explain);
            if (explain != NULL) {
                fprintf(explain, "    -> %s\n", yes ? "applies" : "does not apply");
            }
            if (yes && !st->allow) {
                say_deny(out, req, &b);
                if (explain != NULL) {
                    fprintf(explain, "decision: deny (explicit): %s\n", out->reason);
                }
                return;
            }
            if (yes && st->allow && r.n_secrets > 0 && !allows_secrets(st)) {
                /* Applies to the call, but may not let it inject a secret. */
                if (explain != NULL) {
                    fprintf(explain, "    -> but has no for_all_value condition on "
                                     "tcgw:SecretName: cannot allow injecting a secret\n");
                }
                if (allowed_without_secrets == NULL) {
                    allowed_without_secrets = st;
                }
            } else if (yes && allowed == NULL) {
                allowed = st;
            } else if (!yes && st->allow && candidate.st == NULL) {
                candidate = b;
            }
        }
    }
    if (allowed != NULL) {
        out->decision = GW_DECISION_ALLOW;
        set_statement(out, allowed);
        snprintf(out->reason, sizeof out->reason, "allowed by %s", allowed->id);
    } else if (allowed_without_secrets != NULL && candidate.st == NULL) {
        say_no_secrets(out, req, allowed_without_secrets);
    } else {
        say_default(out, req, &candidate, n);
    }
    if (explain != NULL) {
        fprintf(explain, "decision: %s: %s\n",
                out->decision == GW_DECISION_ALLOW ? "allow" : "deny", out->reason);
    }
}
