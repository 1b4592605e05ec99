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
 * with an output-only object whose members could not be checked at all; in "Recursive", objects
 * that contain themselves directly, through another object and through lists); that directory
 * is $TCGW_SOURCE_DIR/tests/fuzz/specs, else the TCGW_FUZZ_TYPES_DIR macro, else specs/ beside
 * this file.
 *
 * Recursive descriptions leave the depth of a check to the call, up to GW_APISPEC_MAX_DEPTH.
 * So the checks run on a thread of their own with CHECK_STACK bytes of stack (inputs nest up to
 * Jansson's 2048 levels, which an unbounded recursion would need far more for), and a call that
 * passes "Recursive" must nest no deeper than the limit.
 */
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apispec/apispec.h"

/*
 * GW_APISPEC_MAX_DEPTH levels take 8 KiB with gcc -O2 and about 80 KiB in the libFuzzer build
 * (clang without optimization, AddressSanitizer: 2.4 KiB per level). The 2048 levels that
 * Jansson parses would take 0.5 to 5 MiB: an unbounded recursion overflows this.
 */
#define CHECK_STACK ((size_t)256 << 10)

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

static bool check_action(const struct gw_apispec *s, const char *service, const char *version,
                         const char *action, const json_t *params)
{
    struct gw_apispec_verdict a, b;
    bool ok = gw_apispec_check(s, service, version, action, params, &a);
    check_verdict(ok, &a);
    if (gw_apispec_check(s, service, version, action, params, &b) != ok ||
        (!ok && (strcmp(a.code, b.code) != 0 || strcmp(a.message, b.message) != 0))) {
        abort();
    }
    return ok;
}

/*
 * How deep objects nest in j, j itself being level 1 when it is an object; lists add no level.
 * It recurses as deep as j does, which Jansson bounds; it runs on the fuzzer's own stack.
 */
static size_t object_depth(const json_t *j)
{
    size_t deepest = 0;
    if (json_is_array(j)) {
        for (size_t i = 0; i < json_array_size(j); i++) {
            size_t d = object_depth(json_array_get(j, i));
            deepest = d > deepest ? d : deepest;
        }
        return deepest;
    }
    if (!json_is_object(j)) {
        return 0;
    }
    for (void *it = json_object_iter((json_t *)j); it != NULL;
         it = json_object_iter_next((json_t *)j, it)) {
        size_t d = object_depth(json_object_iter_value(it));
        deepest = d > deepest ? d : deepest;
    }
    return deepest + 1;
}

struct job {
    const json_t *params;
    bool recursive_ok; /* the verdict of "Recursive" */
    bool done;
};

static void check_all(struct job *job)
{
    static const char *const actions[] = {"ModifyProxyConfiguration", "DescribeProxies",
                                          "DescribeAccessRegionsByDestRegion", "NoSuchAction"};
    static const char *const type_actions[] = {"AllTypes", "Nested", "Kinds"};
    for (size_t i = 0; i < sizeof actions / sizeof actions[0]; i++) {
        check_action(spec, "gaap", "2018-05-29", actions[i], job->params);
    }
    for (size_t i = 0; i < sizeof type_actions / sizeof type_actions[0]; i++) {
        check_action(types, "fuzztypes", "2024-01-01", type_actions[i], job->params);
    }
    job->recursive_ok = check_action(types, "fuzztypes", "2024-01-01", "Recursive", job->params);
}

/*
 * The checker: one thread with CHECK_STACK bytes of stack, started once, that runs the checks of
 * each input handed to it (a thread per input would cost more than the checks themselves).
 */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static struct job *pending; /* the input being checked, NULL between inputs */

static void *checker(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&lock);
    for (;;) {
        while (pending == NULL || pending->done) {
            pthread_cond_wait(&wake, &lock);
        }
        struct job *job = pending;
        pthread_mutex_unlock(&lock);
        check_all(job);
        pthread_mutex_lock(&lock);
        job->done = true;
        pthread_cond_broadcast(&wake);
    }
    return NULL;
}

static void start_checker(void)
{
    static bool started;
    pthread_attr_t attr;
    pthread_t t;
    if (started) {
        return;
    }
    if (pthread_attr_init(&attr) != 0 || pthread_attr_setstacksize(&attr, CHECK_STACK) != 0 ||
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED) != 0 ||
        pthread_create(&t, &attr, checker, NULL) != 0) {
        abort();
    }
    pthread_attr_destroy(&attr);
    started = true;
}

static void run_checks(struct job *job)
{
    pthread_mutex_lock(&lock);
    pending = job;
    pthread_cond_broadcast(&wake);
    while (!job->done) {
        pthread_cond_wait(&wake, &lock);
    }
    pending = NULL;
    pthread_mutex_unlock(&lock);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    load_once();
    start_checker();
    json_t *params = json_loadb((const char *)data, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    if (params == NULL) {
        return 0;
    }
    struct job job = {.params = params, .recursive_ok = false, .done = false};
    run_checks(&job);
    if (job.recursive_ok && object_depth(params) > GW_APISPEC_MAX_DEPTH) {
        abort();
    }
    json_decref(params);
    return 0;
}
