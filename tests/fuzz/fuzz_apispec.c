/*
 * libFuzzer target for apispec: parses the input as JSON (any value, NUL bytes allowed in
 * strings) and checks it as the parameters of each action of the shipped description, then
 * asserts what every verdict must satisfy: a code exactly when refused, a bounded message that is
 * valid UTF-8, and the same answer twice.
 *
 * The descriptions come from $TCGW_SPEC_DIR, else $TCGW_SOURCE_DIR/specs, else the
 * TCGW_FUZZ_SPEC_DIR macro, else specs/ two levels above this file.
 *
 * The shipped GAAP actions have no float or bool parameters, so the same input is also checked
 * against tests/fuzz/specs/fuzztypes.api.json (every member type and extension, nested objects
 * and lists; in "Kinds", every kind of Tencent's CLI descriptions and kinds tcgw does not model,
 * with an output-only object whose members could not be checked at all); that directory is
 * $TCGW_SOURCE_DIR/tests/fuzz/specs, else the TCGW_FUZZ_TYPES_DIR macro, else specs/ beside
 * this file.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apispec/apispec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct gw_apispec *spec;
static struct gw_apispec *types;

static const char *spec_dir(char *buf, size_t n)
{
    const char *dir = getenv("TCGW_SPEC_DIR");
    const char *src = getenv("TCGW_SOURCE_DIR");
    if (dir != NULL) {
        return dir;
    }
    if (src != NULL) {
        snprintf(buf, n, "%s/specs", src);
        return buf;
    }
#ifdef TCGW_FUZZ_SPEC_DIR
    return TCGW_FUZZ_SPEC_DIR;
#else
    snprintf(buf, n, "%s", __FILE__);
    char *slash = strrchr(buf, '/');
    if (slash == NULL) {
        return "specs";
    }
    snprintf(slash, n - (size_t)(slash - buf), "/../../specs");
    return buf;
#endif
}

static const char *types_dir(char *buf, size_t n)
{
    const char *src = getenv("TCGW_SOURCE_DIR");
    if (src != NULL) {
        snprintf(buf, n, "%s/tests/fuzz/specs", src);
        return buf;
    }
#ifdef TCGW_FUZZ_TYPES_DIR
    return TCGW_FUZZ_TYPES_DIR;
#else
    snprintf(buf, n, "%s", __FILE__);
    char *slash = strrchr(buf, '/');
    if (slash == NULL) {
        return "specs";
    }
    snprintf(slash, n - (size_t)(slash - buf), "/specs");
    return buf;
#endif
}

static void load(const char *dir, struct gw_apispec **out)
{
    char msg[512];
    if (gw_apispec_load_dir(dir, out, msg, sizeof msg) != GW_OK) {
        fprintf(stderr, "fuzz_apispec: cannot load descriptions from %s: %s\n", dir, msg);
        abort();
    }
}

static void load_once(void)
{
    char buf[4096];
    if (spec != NULL) {
        return;
    }
    load(spec_dir(buf, sizeof buf), &spec);
    load(types_dir(buf, sizeof buf), &types);
}

static void check_verdict(bool ok, const struct gw_apispec_verdict *v)
{
    if (ok != (v->code == NULL)) {
        abort();
    }
    if (memchr(v->message, '\0', sizeof v->message) == NULL) {
        abort();
    }
    if (!ok) {
        json_t *s = json_string(v->message); /* NULL when not valid UTF-8 */
        if (s == NULL || v->message[0] == '\0') {
            abort();
        }
        json_decref(s);
    }
}

static void check_action(const struct gw_apispec *s, const char *service, const char *version,
                         const char *action, const json_t *params)
{
    struct gw_apispec_verdict a, b;
    bool ok = gw_apispec_check(s, service, version, action, params, &a);
    check_verdict(ok, &a);
    if (gw_apispec_check(s, service, version, action, params, &b) != ok ||
        (!ok && (strcmp(a.code, b.code) != 0 || strcmp(a.message, b.message) != 0))) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const actions[] = {"ModifyProxyConfiguration", "DescribeProxies",
                                          "DescribeAccessRegionsByDestRegion", "NoSuchAction"};
    static const char *const type_actions[] = {"AllTypes", "Nested", "Kinds"};
    load_once();
    json_t *params = json_loadb((const char *)data, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    if (params == NULL) {
        return 0;
    }
    for (size_t i = 0; i < sizeof actions / sizeof actions[0]; i++) {
        check_action(spec, "gaap", "2018-05-29", actions[i], params);
    }
    for (size_t i = 0; i < sizeof type_actions / sizeof type_actions[0]; i++) {
        check_action(types, "fuzztypes", "2024-01-01", type_actions[i], params);
    }
    json_decref(params);
    return 0;
}
