/*
 * libFuzzer target for the callers file: the input is written to a temporary file (mode 0600)
 * and loaded with gw_callers_load, as the gateway and `tcgw callers` do.
 *
 * Checks, beyond the sanitizers: a load succeeds exactly when it returns GW_OK, and then every
 * caller has a valid name and a credential, at most GW_CALLERS_MAX_POLICIES policies, and is
 * found again by each of its identities; a failure leaves *out untouched and says why, naming
 * the file, in a NUL-terminated message of one plain line.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "identity/callers.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[128];

static void check(bool cond)
{
    if (!cond) {
        abort();
    }
}

static void remove_file(void)
{
    if (path[0] != '\0') {
        unlink(path);
    }
}

static void write_input(const uint8_t *data, size_t size)
{
    if (path[0] == '\0') {
        const char *tmp = getenv("TMPDIR");
        if (tmp == NULL || tmp[0] != '/' || strlen(tmp) > 64) {
            tmp = "/tmp";
        }
        snprintf(path, sizeof path, "%s/tcgw-fuzz-callers-XXXXXX", tmp);
        int fd = mkstemp(path); /* mode 0600 */
        check(fd >= 0);
        close(fd);
        check(atexit(remove_file) == 0);
    }
    FILE *f = fopen(path, "wb");
    check(f != NULL);
    check(size == 0 || fwrite(data, 1, size, f) == size);
    check(fclose(f) == 0);
}

static void check_loaded(const struct gw_callers *c)
{
    size_t n = gw_callers_count(c);
    check(n <= GW_CALLERS_MAX);
    for (size_t i = 0; i < n; i++) {
        const struct gw_caller *k = gw_callers_at(c, i);
        check(k != NULL && gw_vault_name_valid(k->name) && gw_vault_name_valid(k->credential));
        check(i == 0 || strcmp(gw_callers_at(c, i - 1)->name, k->name) < 0);
        check(k->policy_count <= GW_CALLERS_MAX_POLICIES);
        check(gw_callers_find(c, k->name) == k);
        check(!k->has_token || gw_callers_by_token_hash(c, k->token_hash) == k);
        check(k->sdk_secret_id[0] == '\0' || gw_callers_by_secret_id(c, k->sdk_secret_id) == k);
        check(k->certificate[0] == '\0' || gw_callers_by_certificate(c, k->certificate) == k);
    }
    check(gw_callers_at(c, n) == NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct gw_callers *const untouched = (struct gw_callers *)&path;
    struct gw_callers *c = untouched;
    char msg[512];

    write_input(data, size);
    memset(msg, 'x', sizeof msg);
    enum gw_err err = gw_callers_load(path, &c, msg, sizeof msg);
    if (err == GW_OK) {
        check(c != NULL && c != untouched);
        check_loaded(c);
        gw_callers_free(c);
    } else {
        check(c == untouched);
        check(err == GW_ERR_INVALID || err == GW_ERR_IO || err == GW_ERR_NOMEM);
        check(memchr(msg, '\0', sizeof msg) != NULL);
        check(strstr(msg, path) != NULL || err == GW_ERR_NOMEM);
        for (const char *p = msg; *p != '\0'; p++) {
            check((unsigned char)*p >= 0x20 && *p != 0x7f);
        }
    }
    return 0;
}
