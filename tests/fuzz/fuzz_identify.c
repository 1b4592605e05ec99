/*
 * libFuzzer target for identify: the input is a request, one field per line (Authorization,
 * X-TC-Timestamp, X-TC-Region, Host), then its body. A fixed gateway judges it: a vault with one
 * SDK key, a callers file with a token caller, an SDK-key caller and a certificate caller, a
 * listener that accepts every method, and the clock at 2024-11-29T00:00:00Z.
 *
 * Checks, beyond the sanitizers: an identified call has a caller and a method and no code; a
 * refused one has a code, no caller, and a message of one plain line that repeats neither the
 * bearer token nor the signature it was sent.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "identity/callers.h"
#include "identity/identify.h"
#include "vault/vault.h"

#define SDK_ID "AKIDtcgwAAAAAAAAAAAAAAAAAAAAAEXAMPLE"
#define SDK_KEY "abcdefghijklmnopqrstuvwxyz012345"
#define NOW INT64_C(1732838400)
#define B64URL "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[128];
static struct gw_vault *vault;
static struct gw_callers *callers;
static struct gw_replay *replay;

static void check(bool cond)
{
    if (!cond) {
        abort();
    }
}

static void cleanup(void)
{
    char p[256];
    gw_replay_free(replay);
    gw_callers_free(callers);
    gw_vault_free(vault);
    const char *files[] = {"master.key", "callers.json"};
    for (size_t i = 0; i < 2; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        unlink(p);
    }
    rmdir(dir);
}

static void init(void)
{
    char key[256], path[256], msg[512];
    const char *tmp = getenv("TMPDIR");
    if (tmp == NULL || tmp[0] != '/' || strlen(tmp) > 64) {
        tmp = "/tmp";
    }
    snprintf(dir, sizeof dir, "%s/tcgw-fuzz-identify-XXXXXX", tmp);
    check(mkdtemp(dir) != NULL);
    snprintf(key, sizeof key, "%s/master.key", dir);
    snprintf(path, sizeof path, "%s/credentials.store", dir);
    check(gw_vault_keygen(key, msg, sizeof msg) == GW_OK);
    check(gw_vault_open(key, path, &vault, msg, sizeof msg) == GW_OK);
    check(gw_vault_put_caller_key(vault, "sdk-bot", SDK_ID, strlen(SDK_ID), SDK_KEY,
                                  strlen(SDK_KEY), msg, sizeof msg) == GW_OK);
    snprintf(path, sizeof path, "%s/callers.json", dir);
    FILE *f = fopen(path, "w");
    check(f != NULL);
    fputs("{\"callers\": {\"token-bot\": {\"token_sha\": \"" /* any hash: tokens are guessed */
          "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\", "
          "\"credential\": \"d\"}, \"sdk-bot\": {\"sdk_secret_id\": \"" SDK_ID "\", "
          "\"credential\": \"d\"}, \"mesh\": {\"certificate\": \"cn\", \"credential\": \"d\"}}}",
          f);
    check(fclose(f) == 0);
    check(gw_callers_load(path, &callers, msg, sizeof msg) == GW_OK);
    check(gw_replay_new(0, &replay) == GW_OK);
    check(atexit(cleanup) == 0);
}

struct request {
    char *field[4]; /* Authorization, X-TC-Timestamp, X-TC-Region, Host; NULL when absent */
};

static const char *lookup(void *transport, const char *name)
{
    struct request *r = transport;
    static const char *const names[] = {"Authorization", "X-TC-Timestamp", "X-TC-Region", "Host"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(name, names[i]) == 0) {
            return r->field[i];
        }
    }
    return strcasecmp(name, "Content-Type") == 0 ? "application/json" : NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (vault == NULL) {
        init();
    }
    /* The header fields as NUL-terminated copies (a NUL in the input ends a field early). */
    char *copy = malloc(size + 1);
    check(copy != NULL);
    memcpy(copy, data, size);
    copy[size] = '\0';
    struct request r = {{NULL, NULL, NULL, NULL}};
    char *p = copy;
    size_t i = 0;
    for (; i < 4 && p < copy + size; i++) {
        char *nl = memchr(p, '\n', (size_t)(copy + size - p));
        if (nl == NULL) {
            r.field[i] = p;
            p = copy + size;
            break;
        }
        *nl = '\0';
        r.field[i] = p;
        p = nl + 1;
    }
    struct gw_identify_input in = {
        .accept = GW_ACCEPT_TOKEN | GW_ACCEPT_SDK_KEY | GW_ACCEPT_CERT,
        .header = lookup,
        .transport = &r,
        .method = "POST",
        .path = "/",
        .service = "gaap",
        .body = (const unsigned char *)data + (p - copy),
        .body_len = size - (size_t)(p - copy),
        .now = NOW,
    };
    struct gw_identity id;
    enum gw_err err = gw_identify(&in, callers, vault, replay, &id);
    if (err == GW_OK) {
        check(id.caller != NULL && id.method != GW_IDENTITY_NONE && id.code == NULL);
    } else {
        check(id.caller == NULL && id.code != NULL && id.method == GW_IDENTITY_NONE);
        check(memchr(id.message, '\0', sizeof id.message) != NULL);
        for (const char *m = id.message; *m != '\0'; m++) {
            check((unsigned char)*m >= 0x20 && *m != 0x7f);
        }
        /* A token or a signature of the real shape never comes back (a shorter value might
         * be a word of the message itself). */
        const char *auth = r.field[0];
        if (auth != NULL && strncasecmp(auth, "Bearer ", 7) == 0 &&
            strspn(auth + 7, B64URL) >= GW_CALLERS_TOKEN_LEN) {
            check(strstr(id.message, auth + 7) == NULL);
        }
        const char *sig = auth != NULL ? strstr(auth, "Signature=") : NULL;
        if (sig != NULL && strspn(sig + 10, "0123456789abcdef") >= GW_TC3_HEX_LEN) {
            check(strstr(id.message, sig + 10) == NULL);
        }
    }
    free(copy);
    return 0;
}
