/*
 * micro_sts: signatures per second with a static credential, a temporary one (token and expiry
 * check) and a role (an acquire load of the installed keys first), side by side on one thread,
 * all through gw_vault_sign_token with the derived-key cache warm.
 *   tcgw-bench-micro-sts [--seconds S]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vault/vault.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int measure(struct gw_vault *v, const char *name, double seconds)
{
    struct gw_buf auth, token;
    gw_buf_init(&auth, 4096);
    gw_buf_init(&token, 4096);
    unsigned long n = 0;
    double t0 = now_s(), t;
    const char body[] = "{\"Limit\":1}";
    do {
        for (int i = 0; i < 1000; i++) {
            struct gw_tc3_request req = {.service = "gaap",
                                         .host = "gaap.tencentcloudapi.com",
                                         .timestamp = (int64_t)time(NULL),
                                         .content_type = "application/json",
                                         .payload = (const unsigned char *)body,
                                         .payload_len = sizeof body - 1};
            auth.len = 0;
            token.len = 0;
            if (gw_vault_sign_token(v, name, &req, &auth, &token) != GW_OK) {
                fprintf(stderr, "micro_sts: signing with %s failed\n", name);
                return 1;
            }
            n++;
        }
        t = now_s() - t0;
    } while (t < seconds);
    printf("micro_sts: credential=%-9s sigs=%lu wall_s=%.3f sigs_per_s=%.0f token_bytes=%zu\n",
           name, n, t, (double)n / t, token.len);
    gw_buf_free(&auth);
    gw_buf_free(&token);
    return 0;
}

int main(int argc, char **argv)
{
    double seconds = argc == 3 && strcmp(argv[1], "--seconds") == 0 ? atof(argv[2]) : 2.0;
    char dir[] = "/tmp/tcgw-micro-sts-XXXXXX", key[64], store[64], msg[256];
    struct gw_vault *v = NULL;
    char token[1025];
    memset(token, 'T', 1024);
    token[1024] = '\0';
    if (mkdtemp(dir) == NULL) {
        return 1;
    }
    snprintf(key, sizeof key, "%s/k", dir);
    snprintf(store, sizeof store, "%s/s", dir);
    int64_t exp = (int64_t)time(NULL) + 3600;
    struct gw_vault_role_def role = {"static", "qcs::cam::uin/1:roleName/r", "bench",
                                     "ap-guangzhou", 3600};
    if (gw_vault_keygen(key, msg, sizeof msg) != GW_OK ||
        gw_vault_open(key, store, &v, msg, sizeof msg) != GW_OK ||
        gw_vault_put(v, "static", "AKIDstatic", 10, "staticKey", 9, msg, sizeof msg) != GW_OK ||
        gw_vault_put_temporary(v, "temporary", "AKIDtmp", 7, "tmpKey", 6, token, 1024, exp, msg,
                               sizeof msg) != GW_OK ||
        gw_vault_put_role(v, "role", &role, msg, sizeof msg) != GW_OK ||
        gw_vault_role_install(v, 0, "AKIDrole", 8, "roleKey", 7, token, 1024, exp, msg,
                              sizeof msg) != GW_OK) {
        fprintf(stderr, "micro_sts: %s\n", msg);
        return 1;
    }
    int rc = measure(v, "static", seconds) || measure(v, "temporary", seconds) ||
             measure(v, "role", seconds);
    gw_vault_free(v);
    unlink(key);
    unlink(store);
    rmdir(dir);
    return rc;
}
