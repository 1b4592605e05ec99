#include "faults.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RULES 32

struct rule {
    char action[65];
    enum sim_faults_kind kind;
    unsigned long left;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static struct rule rules[MAX_RULES];
static size_t nrules;

static const char *const names[] = {NULL, "reset", "5xx", "throttle", "malformed"};

static void bad_plan(const char *why)
{
    (void)fprintf(stderr, "tcgw-sim: TCGW_SIM_FAULTS: %s\n", why);
    abort();
}

static void load(void)
{
    const char *env = getenv("TCGW_SIM_FAULTS");
    char *copy, *save = NULL;
    if (env == NULL || env[0] == '\0') {
        return;
    }
    if ((copy = strdup(env)) == NULL) {
        bad_plan("out of memory");
    }
    for (char *item = strtok_r(copy, ",", &save); item != NULL; item = strtok_r(NULL, ",", &save)) {
        char *kind = strchr(item, ':');
        char *count = kind != NULL ? strchr(kind + 1, ':') : NULL;
        char *end = NULL;
        if (count == NULL || nrules == MAX_RULES ||
            (size_t)(kind - item) >= sizeof rules[0].action) {
            bad_plan("each entry is Action:fault:count (at most 32 entries)");
        }
        *kind++ = '\0';
        *count++ = '\0';
        struct rule *r = &rules[nrules];
        (void)snprintf(r->action, sizeof r->action, "%s", item);
        for (size_t k = 1; k < sizeof names / sizeof names[0]; k++) {
            if (strcmp(kind, names[k]) == 0) {
                r->kind = (enum sim_faults_kind)k;
            }
        }
        r->left = strtoul(count, &end, 10);
        if (r->kind == SIM_FAULTS_NONE || end == count || *end != '\0') {
            bad_plan("a fault is reset, 5xx, throttle or malformed, with a decimal count");
        }
        nrules++;
    }
    free(copy);
}

enum sim_faults_kind sim_faults_take(const char *action)
{
    enum sim_faults_kind kind = SIM_FAULTS_NONE;
    (void)pthread_once(&once, load);
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < nrules && kind == SIM_FAULTS_NONE; i++) {
        struct rule *r = &rules[i];
        if (r->left > 0 &&
            (strcmp(r->action, "*") == 0 || (action != NULL && strcmp(r->action, action) == 0))) {
            r->left--;
            kind = r->kind;
        }
    }
    pthread_mutex_unlock(&lock);
    return kind;
}

const char *sim_faults_name(enum sim_faults_kind kind)
{
    return (size_t)kind < sizeof names / sizeof names[0] ? names[kind] : NULL;
}

enum MHD_Result sim_faults_reply(struct MHD_Connection *conn, enum sim_faults_kind kind)
{
    static const char unavailable[] = "503 Service Unavailable (simulated)";
    static const char malformed[] = "{\"Response\": {\"RequestId\": ";
    bool is_5xx = kind == SIM_FAULTS_5XX;
    const char *text = is_5xx ? unavailable : malformed;
    size_t len = is_5xx ? sizeof unavailable - 1 : sizeof malformed - 1;
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)(uintptr_t)text, MHD_RESPMEM_PERSISTENT);
    if (resp == NULL) {
        return MHD_NO;
    }
    enum MHD_Result ret = MHD_queue_response(conn, is_5xx ? 503 : MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return ret;
}
