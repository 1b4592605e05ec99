/*
 * tcgw policy lint | check: the policy files checked against the API descriptions, and one call
 * decided for one caller as the gateway would decide it, with the reasoning.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apispec/apispec.h"
#include "cli/cli.h"
#include "core/call.h"
#include "core/config.h"
#include "identity/callers.h"
#include "policy/policy.h"

static const char usage_text[] =
    "usage: tcgw policy lint [--config FILE] [PATH]\n"
    "       tcgw policy check --caller NAME --action SERVICE:ACTION [--region R] [--params JSON]\n"
    "                         [--peer IP] [--config FILE] [--json]\n";

struct policy_args {
    const char *config_path;
    const char *path; /* lint */
    const char *caller;
    const char *action;
    const char *region;
    const char *params;
    const char *peer;
    bool json;
};

/* Returns 0, or the exit code (-1: help was printed, exit 0). */
static int parse_args(int argc, char **argv, bool check, struct policy_args *a)
{
    const char *verb = check ? "policy check" : "policy lint";
    memset(a, 0, sizeof *a);
    for (int i = 2; i < argc; i++) {
        const char *value = NULL;
        int m = 0;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(usage_text, stdout);
            return -1;
        }
        const char *const names[] = {"--config", "--caller", "--action",
                                     "--region", "--params", "--peer"};
        const char **slots[] = {&a->config_path, &a->caller, &a->action,
                                &a->region,      &a->params, &a->peer};
        size_t k = 0;
        for (; k < sizeof names / sizeof names[0]; k++) {
            if ((m = gw_cli_take_value(argc, argv, &i, names[k], &value)) != 0) {
                break;
            }
        }
        if (m < 0) {
            return gw_cli_usage_error(verb, "a value is missing after ", names[k], usage_text);
        }
        if (m > 0 && (k == 0 || check)) {
            *slots[k] = value;
        } else if (m > 0) {
            return gw_cli_usage_error(verb, "this verb takes no ", names[k], usage_text);
        } else if (strcmp(argv[i], "--json") == 0 && !check) {
            return gw_cli_usage_error(verb, "this verb takes no ", argv[i], usage_text);
        } else if (strcmp(argv[i], "--json") == 0) {
            a->json = true;
        } else if (argv[i][0] == '-') {
            return gw_cli_usage_error(verb, "unknown option ", argv[i], usage_text);
        } else if (!check && a->path == NULL) {
            a->path = argv[i];
        } else {
            return gw_cli_usage_error(verb, "takes no other arguments", "", usage_text);
        }
    }
    if (check && (a->caller == NULL || a->action == NULL)) {
        return gw_cli_usage_error(verb, "--caller and --action are required", "", usage_text);
    }
    return 0;
}

static int load_config(const struct policy_args *a, struct gw_config **cfg)
{
    char msg[512] = "out of memory";
    if (a->config_path != NULL) {
        if (gw_config_load(a->config_path, cfg, msg, sizeof msg) != GW_OK) {
            fprintf(stderr, "tcgw: %s\n", msg);
            return 1;
        }
    } else if ((*cfg = gw_config_defaults()) == NULL) {
        fprintf(stderr, "tcgw: out of memory\n");
        return 1;
    }
    return 0;
}

static int load_spec(const struct gw_config *cfg, struct gw_apispec **spec)
{
    char msg[512] = "";
    if (gw_apispec_load_dir(cfg->spec_dir, spec, msg, sizeof msg) != GW_OK) {
        fprintf(stderr, "tcgw: API descriptions: %s\n", msg);
        return 1;
    }
    return 0;
}

static int lint(const struct policy_args *a)
{
    int rc;
    struct gw_config *cfg = NULL;
    struct gw_apispec *spec = NULL;
    if ((rc = load_config(a, &cfg)) != 0 || (rc = load_spec(cfg, &spec)) != 0) {
        goto out;
    }
    const char *path = a->path != NULL ? a->path : cfg->policy_dir;
    int problems = gw_policy_lint(path, spec, stdout);
    if (problems < 0) {
        rc = 1;
    } else if (problems > 0) {
        fprintf(stderr, "tcgw policy lint: %d problem%s in %s\n", problems,
                problems == 1 ? "" : "s", path);
        rc = 1;
    } else {
        printf("%s: no problems\n", path);
        rc = 0;
    }
out:
    gw_apispec_free(spec);
    gw_config_free(cfg);
    return rc;
}

/* The policies bound to the caller, in the order the callers file names them. */
static int bound_policies(const struct gw_config *cfg, const struct gw_policy_set *set,
                          const char *name, struct gw_callers **callers,
                          const struct gw_caller **caller, const struct gw_policy **out, size_t *n)
{
    char msg[512] = "";
    if (gw_callers_load(cfg->callers_file, callers, msg, sizeof msg) != GW_OK) {
        fprintf(stderr, "tcgw: %s\n", msg);
        return 1;
    }
    if ((*caller = gw_callers_find(*callers, name)) == NULL) {
        fprintf(stderr, "tcgw policy check: %s names no caller %s\n", cfg->callers_file, name);
        return 1;
    }
    *n = 0;
    for (size_t i = 0; i < (*caller)->policy_count; i++) {
        const struct gw_policy *p = gw_policy_set_find(set, (*caller)->policies[i]);
        if (p == NULL) {
            fprintf(stderr,
                    "tcgw policy check: caller %s names policy %s, which %s does not hold "
                    "(%s.json)\n",
                    name, (*caller)->policies[i], cfg->policy_dir, (*caller)->policies[i]);
            return 1;
        }
        out[(*n)++] = p;
    }
    return 0;
}

static void print_json(const struct gw_policy_decision *d)
{
    json_t *j = json_pack("{s:s, s:s, s:s, s:s}", "decision",
                          d->decision == GW_DECISION_ALLOW ? "allow" : "deny", "statement",
                          d->statement, "reason", d->reason, "refused", d->refused);
    char *s = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
    if (s != NULL) {
        puts(s);
    }
    free(s);
    json_decref(j);
}

static int check(const struct policy_args *a)
{
    int rc;
    char msg[512] = "";
    char service[GW_CALL_SERVICE_MAX + 1];
    struct gw_config *cfg = NULL;
    struct gw_apispec *spec = NULL;
    struct gw_policy_set *set = NULL;
    struct gw_callers *callers = NULL;
    const struct gw_caller *caller = NULL;
    const struct gw_policy *policies[GW_CALLERS_MAX_POLICIES];
    size_t n = 0;
    json_t *params = NULL;

    const char *colon = strchr(a->action, ':');
    if (colon == NULL || colon == a->action || colon[1] == '\0' ||
        (size_t)(colon - a->action) > GW_CALL_SERVICE_MAX) {
        rc = gw_cli_usage_error("policy check", "--action takes SERVICE:ACTION", "", usage_text);
        goto out;
    }
    snprintf(service, sizeof service, "%.*s", (int)(colon - a->action), a->action);
    json_error_t jerr;
    if (a->params != NULL &&
        ((params = json_loads(a->params, JSON_REJECT_DUPLICATES, &jerr)) == NULL ||
         !json_is_object(params))) {
        rc = gw_cli_usage_error("policy check", "--params takes a JSON object", "", usage_text);
        goto out;
    }
    if ((rc = load_config(a, &cfg)) != 0 || (rc = load_spec(cfg, &spec)) != 0) {
        goto out;
    }
    rc = 1;
    if (gw_policy_set_load(cfg->policy_dir, spec, &set, msg, sizeof msg) != GW_OK) {
        fprintf(stderr, "tcgw: %s\n", msg);
        goto out;
    }
    if (bound_policies(cfg, set, a->caller, &callers, &caller, policies, &n) != 0) {
        goto out;
    }
    struct gw_policy_request req = {
        .service = service,
        .action = colon + 1,
        .region = a->region != NULL ? a->region : "",
        .params = params,
        .caller = caller->name,
        .caller_attributes = caller->attributes,
        .peer = a->peer != NULL ? a->peer : "",
    };
    struct gw_policy_decision d;
    if (a->json) {
        gw_policy_decide(policies, n, &req, &d, NULL);
        print_json(&d);
    } else {
        gw_policy_decide(policies, n, &req, &d, stdout);
        printf("statement: %s\n", d.statement[0] != '\0' ? d.statement : "(none)");
        if (d.decision != GW_DECISION_ALLOW) {
            printf("refused: %s\n", d.refused);
        }
    }
    rc = d.decision == GW_DECISION_ALLOW ? 0 : 1;
out:
    json_decref(params);
    gw_callers_free(callers);
    gw_policy_set_free(set);
    gw_apispec_free(spec);
    gw_config_free(cfg);
    return rc;
}

int gw_cli_policy(int argc, char **argv)
{
    struct policy_args a;
    bool is_check = argc >= 2 && strcmp(argv[1], "check") == 0;
    if (argc < 2 || (!is_check && strcmp(argv[1], "lint") != 0)) {
        if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
            fputs(usage_text, stdout);
            return 0;
        }
        return gw_cli_usage_error("policy", "takes lint or check", "", usage_text);
    }
    int rc = parse_args(argc, argv, is_check, &a);
    if (rc != 0) {
        return rc < 0 ? 0 : rc;
    }
    return is_check ? check(&a) : lint(&a);
}
