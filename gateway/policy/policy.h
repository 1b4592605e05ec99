/*
 * policy: allow-list policies in Tencent Cloud CAM syntax, loaded once into an immutable set and
 * evaluated without allocating.
 *
 *   {"version": "2.0",
 *    "statement": [{"sid": "resize", "effect": "allow",
 *                   "action": ["gaap:ModifyProxyConfiguration", "gaap:Describe*"],
 *                   "resource": ["*"],
 *                   "condition": {"string_like": {"gaap:ProxyId": ["link-*"]},
 *                                 "numeric_less_than_equal": {"gaap:Bandwidth": 100}}}]}
 *
 * A policy is one file "<name>.json" of the policy directory; callers name the policies bound to
 * them (see identity/callers.h). Deny by default: a call is allowed when some statement of the
 * caller's policies allows it and none denies it (an explicit deny beats any allow). Action names
 * and values compare case-sensitively, as the API names them. A statement is named
 * "<name>.json#<sid>", or "<name>.json#<index>" (1-based) when it has no sid. policies/README.md
 * documents the condition keys, the operators and the rules for absent keys and lists; in short:
 * a condition on an absent key does not hold (unless the operator ends in _if_exist); a list
 * parameter takes for_any_value: or for_all_value:; and a condition that cannot be evaluated (a
 * value of the wrong type, a plain operator meeting a list) counts against the call: it fails in
 * an allow statement and holds in a deny statement.
 *
 * Secret injection (tcgw:SecretName, tcgw:SecretParameter: the secrets a call's placeholders
 * name, and the parameters they stand in) is denied by default too: a call with placeholders is
 * allowed only by an allow statement that applies to it AND has a for_all_value:string_equal or
 * for_all_value:string_like condition on tcgw:SecretName (which then holds for every secret the
 * call names). An allow statement without one, "gaap:*" say, never lets a call inject a secret.
 */
#ifndef GW_POLICY_H
#define GW_POLICY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "core/call.h"
#include "core/errors.h"

struct gw_apispec;
struct gw_policy;     /* one file */
struct gw_policy_set; /* every file of a directory, immutable once loaded */

#define GW_POLICY_STATEMENT_MAX (GW_CALL_NAME_MAX * 2 + 2) /* "file.json#sid" */

/* What a decision looks at. All borrowed. */
struct gw_policy_request {
    const char *service;             /* "gaap" */
    const char *action;              /* "ModifyProxyConfiguration" */
    const char *region;              /* "" when the call names none */
    const json_t *params;            /* the call's parameters (a JSON object), or NULL for none */
    const char *caller;              /* the caller's name */
    const json_t *caller_attributes; /* the caller's attributes (object of strings), or NULL */
    const char *peer;                /* the caller's IP address, "" when unknown */
    /*
     * The secret placeholders of the call (gateway/inject/): the secret each names and the
     * parameter it stands in ("CertificateKey"), n_secrets pairs; NULL and 0 when none.
     */
    const char *const *secret_names;
    const char *const *secret_params;
    size_t n_secrets;
};

struct gw_policy_decision {
    enum gw_decision decision;               /* ALLOW or DENY, never NONE */
    char statement[GW_POLICY_STATEMENT_MAX]; /* "file.json#sid" (or "#<index>") that decided;
                                                "" for a deny by default with no candidate */
    char reason[GW_CALL_MESSAGE_MAX];        /* for the log and audit: which condition failed,
                                                or which statement denied */
    char refused[GW_CALL_MESSAGE_MAX];       /* for the caller on a deny: the action or value
                                                refused, never another caller's policies */
};

/*
 * Loads every "*.json" file of dir (other files are ignored). A file that breaks the syntax fails
 * the whole load: msg says "FILE:LINE: what, and how to fix it". spec (may be NULL) is used to
 * refuse actions that no loaded API description knows. *out is new.
 */
enum gw_err gw_policy_set_load(const char *dir, const struct gw_apispec *spec,
                               struct gw_policy_set **out, char *msg, size_t msglen) GW_MUST_CHECK;

/* Accepts NULL. */
void gw_policy_set_free(struct gw_policy_set *set);

/* The policy named name ("capacity-bot" for "capacity-bot.json"), or NULL. */
const struct gw_policy *gw_policy_set_find(const struct gw_policy_set *set, const char *name);

/* Number of statements in the set (for the log line at load). */
size_t gw_policy_set_statements(const struct gw_policy_set *set);

/*
 * Decides req under the n policies given (deny by default; n may be 0, an entry NULL is skipped).
 * Thread-safe, allocation-free (when explain is NULL). When explain is not NULL, writes one line
 * per statement of the policies, and for each that names the action one per condition with the
 * call's value and whether it held, then the decision.
 */
void gw_policy_decide(const struct gw_policy *const *policies, size_t n,
                      const struct gw_policy_request *req, struct gw_policy_decision *out,
                      FILE *explain);

/*
 * Lints path (a file or a directory of "*.json"): prints every problem as "FILE:LINE: message"
 * to out (duplicate or unknown keys, wrong types, bad operators, actions or parameters that the
 * API descriptions in spec do not know, statements that can never match). Returns the number of
 * problems, or -1 when path cannot be read (said on out).
 */
int gw_policy_lint(const char *path, const struct gw_apispec *spec, FILE *out);

#endif
