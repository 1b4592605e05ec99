/*
 * micro_inject: the CPU cost of the secret-injection stages per call, beside a call without
 * placeholders, both signed as the gateway signs them.
 *
 *   tcgw-bench-micro-inject [--seconds S] [--specs DIR]
 *
 * Built with the project (bench/CMakeLists.txt: <build>/bench/tcgw-bench-micro-inject); run a
 * Release build for figures worth quoting. The call is GAAP CreateCertificate with a 1.7 KB PEM
 * certificate; the key (a 1.7 KB PEM, as an RSA 2048 key in PKCS#8 is) is a secret value:
 *
 *   plain    CertificateKey sent by the caller: placeholders scan (finds none) + TC3 signature
 *   inject   CertificateKey "{{tcgw:secret/edge-key}}": scan, apply (value check, splice into a
 *            sodium_malloc'ed body), TC3 signature, redact of a 120-byte answer, body wiped
 *
 * The parse of the body and the API description's check are common to both and left out. Each
 * line:
 *
 *   micro_inject: case=<name> calls=<n> cpu_s=<s> us_per_call=<r> calls_per_cpu_s=<r>
 *
 * CPU time is the thread's (CLOCK_THREAD_CPUTIME_ID). Exit status 1 when a step fails.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "apispec/apispec.h"
#include "core/buf.h"
#include "inject/inject.h"
#include "vault/tc3.h"
#include "vault/vault.h"

#define BATCH 256

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *pem(const char *label, unsigned seed)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *s = malloc(4096);
    int n = snprintf(s, 4096, "-----BEGIN %s-----\n", label);
    for (int line = 0; line < 26; line++) {
        for (int i = 0; i < 64; i++) {
            seed = seed * 1103515245u + 12345u;
            s[n++] = b64[(seed >> 16) % 64];
        }
        s[n++] = '\n';
    }
    n += snprintf(s + n, 4096 - (size_t)n, "-----END %s-----", label);
    return s;
}

struct setup {
    struct gw_vault *vault;
    struct gw_apispec *spec;
};

/* One call: returns 0, or 1 after saying what failed. */
static int one_call(const struct setup *st, const char *body, const json_t *params, bool expect)
{
    struct gw_inject *inj = NULL;
    struct gw_inject_verdict v;
    struct gw_buf sent, auth, resp;
    int rc = 1;
    gw_buf_init_secure(&sent, 1 << 20);
    gw_buf_init(&auth, 4096);
    gw_buf_init(&resp, 1 << 20);
    if (gw_inject_scan(params, &inj, &v) != GW_OK || (inj != NULL) != expect) {
        fprintf(stderr, "micro_inject: scan failed: %s\n", v.message);
        goto out;
    }
    const char *payload = body;
    size_t payload_len = strlen(body);
    if (inj != NULL) {
        if (gw_inject_apply(inj, st->vault, st->spec, "gaap", "2018-05-29", "CreateCertificate",
                            body, strlen(body), &sent, &v) != GW_OK) {
            fprintf(stderr, "micro_inject: apply failed: %s\n", v.message);
            goto out;
        }
        payload = sent.data;
        payload_len = sent.len;
    }
    struct gw_tc3_request req = {
        .service = "gaap",
        .host = "gaap.tencentcloudapi.com",
        .timestamp = (int64_t)time(NULL),
        .content_type = "application/json",
        .payload = (const unsigned char *)payload,
        .payload_len = payload_len,
    };
    if (gw_vault_sign(st->vault, "default", &req, &auth) != GW_OK) {
        fprintf(stderr, "micro_inject: sign failed\n");
        goto out;
    }
    if (inj != NULL) {
        size_t count = 0;
        if (gw_buf_append_str(&resp, "{\"Response\":{\"CertificateId\":\"cert-0000001\","
                                     "\"RequestId\":\"6ef60bec-0242-43af-bb20-270359fb54a7\"}}") !=
                GW_OK ||
            gw_inject_redact(inj, st->vault, &resp, &sent, &count) != GW_OK || count != 0) {
            fprintf(stderr, "micro_inject: redact failed\n");
            goto out;
        }
    }
    rc = 0;
out:
    gw_inject_free(inj);
    gw_buf_free(&sent);
    gw_buf_free(&auth);
    gw_buf_free(&resp);
    return rc;
}

static int run(const struct setup *st, const char *name, const char *body, bool expect,
               double seconds)
{
    json_t *params = json_loads(body, JSON_REJECT_DUPLICATES, NULL);
    if (params == NULL) {
        fprintf(stderr, "micro_inject: bad body\n");
        return 1;
    }
    for (int i = 0; i < BATCH; i++) { /* warm the derived-key cache and the allocator */
        if (one_call(st, body, params, expect) != 0) {
            json_decref(params);
            return 1;
        }
    }
    unsigned long calls = 0;
    double start = cpu_now(), elapsed = 0;
    while (elapsed < seconds) {
        for (int i = 0; i < BATCH; i++) {
            if (one_call(st, body, params, expect) != 0) {
                json_decref(params);
                return 1;
            }
        }
        calls += BATCH;
        elapsed = cpu_now() - start;
    }
    printf("micro_inject: case=%s calls=%lu cpu_s=%.3f us_per_call=%.2f calls_per_cpu_s=%.0f\n",
           name, calls, elapsed, elapsed * 1e6 / (double)calls, (double)calls / elapsed);
    json_decref(params);
    return 0;
}

int main(int argc, char **argv)
{
    double seconds = 2;
    const char *specs = "specs";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--seconds") == 0) {
            seconds = atof(argv[i + 1]);
        } else if (strcmp(argv[i], "--specs") == 0) {
            specs = argv[i + 1];
        }
    }
    char dir[] = "/tmp/tcgw-bench-inject-XXXXXX", key[64], store[64], msg[512];
    struct setup st = {NULL, NULL};
    int rc = 1;
    char *cert = pem("CERTIFICATE", 1), *pkey = pem("TEST KEY", 2);
    char *plain = malloc(16384), *inject = malloc(16384);
    json_t *c = json_string(cert), *k = json_string(pkey);
    char *c_json = json_dumps(c, JSON_ENCODE_ANY), *k_json = json_dumps(k, JSON_ENCODE_ANY);
    snprintf(plain, 16384,
             "{\"CertificateType\": 2, \"CertificateContent\": %s, \"CertificateKey\": %s, "
             "\"CertificateAlias\": \"edge\"}",
             c_json, k_json);
    snprintf(inject, 16384,
             "{\"CertificateType\": 2, \"CertificateContent\": %s, \"CertificateKey\": "
             "\"{{tcgw:secret/edge-key}}\", \"CertificateAlias\": \"edge\"}",
             c_json);
    if (mkdtemp(dir) == NULL) {
        goto out;
    }
    snprintf(key, sizeof key, "%s/m.key", dir);
    snprintf(store, sizeof store, "%s/s.store", dir);
    if (gw_vault_keygen(key, msg, sizeof msg) != GW_OK ||
        gw_vault_open(key, store, &st.vault, msg, sizeof msg) != GW_OK ||
        gw_vault_put(st.vault, "default", "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE", 36,
                     "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE", 32, msg, sizeof msg) != GW_OK ||
        gw_vault_put_value(st.vault, "edge-key", (const unsigned char *)pkey, strlen(pkey), msg,
                           sizeof msg) != GW_OK ||
        gw_apispec_load_dir(specs, &st.spec, msg, sizeof msg) != GW_OK) {
        fprintf(stderr, "micro_inject: setup: %s\n", msg);
        goto out;
    }
    rc = run(&st, "plain", plain, false, seconds) || run(&st, "inject", inject, true, seconds);
out:
    unlink(key);
    rmdir(dir);
    gw_vault_free(st.vault);
    gw_apispec_free(st.spec);
    json_decref(c);
    json_decref(k);
    free(c_json);
    free(k_json);
    free(cert);
    free(pkey);
    free(plain);
    free(inject);
    return rc;
}
