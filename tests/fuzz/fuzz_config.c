/*
 * libFuzzer target for config: the input is written to a temporary file and loaded with
 * gw_config_load, as `tcgw serve --config FILE` does.
 *
 * Checks, beyond the sanitizers (and LeakSanitizer on the error paths): a load succeeds exactly
 * when it returns GW_OK, and then gives a configuration whose numbers lie in the ranges the
 * loader enforces, whose strings are set, and whose paths are absolute (anchored to the file's
 * directory); a failure leaves *out untouched and says why, naming the file, in a NUL-terminated
 * message of one plain line (keys and tokens quoted from the input carry no control bytes).
 * TCGW_MASTER_KEY_FILE is unset first so the result depends on the input alone.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"

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

/* Creates the temporary file on first use; then replaces its contents with data. */
static void write_input(const uint8_t *data, size_t size)
{
    if (path[0] == '\0') {
        const char *tmp = getenv("TMPDIR");
        if (tmp == NULL || tmp[0] != '/' || strlen(tmp) > 64) {
            tmp = "/tmp";
        }
        snprintf(path, sizeof path, "%s/tcgw-fuzz-config-XXXXXX", tmp);
        int fd = mkstemp(path);
        check(fd >= 0);
        close(fd);
        unsetenv("TCGW_MASTER_KEY_FILE");
        check(atexit(remove_file) == 0);
    }
    FILE *f = fopen(path, "wb");
    check(f != NULL);
    check(size == 0 || fwrite(data, 1, size, f) == size);
    check(fclose(f) == 0);
}

static bool absolute(const char *p)
{
    return p != NULL && p[0] == '/';
}

static void check_loaded(const struct gw_config *cfg)
{
    check(cfg->listen_address != NULL && cfg->listen_address[0] != '\0');
    check(cfg->threads >= 1 && cfg->threads <= 64);
    check(cfg->max_connections >= 1 && cfg->max_connections <= 100000);
    check(cfg->max_body_bytes >= 2 && cfg->max_body_bytes <= ((size_t)64 << 20));
    check(absolute(cfg->spec_dir) && absolute(cfg->master_key_file) &&
          absolute(cfg->credential_store));
    check(cfg->credential != NULL && cfg->credential[0] != '\0');
    check(cfg->upstream.endpoint_suffix != NULL && cfg->upstream.endpoint_suffix[0] != '\0');
    check(cfg->upstream.ca_file == NULL || absolute(cfg->upstream.ca_file));
    check(cfg->upstream.connect_timeout_ms >= 1 && cfg->upstream.connect_timeout_ms <= 600000);
    check(cfg->upstream.timeout_ms >= 1 && cfg->upstream.timeout_ms <= 3600000);
    check(cfg->upstream.max_response_bytes >= 1024 &&
          cfg->upstream.max_response_bytes <= ((size_t)1 << 30));
    check(cfg->upstream.max_host_connections >= 1 && cfg->upstream.max_host_connections <= 10000);
    /* The override lists are NULL-terminated within their arrays, with no holes. */
    check(cfg->upstream.connect_to[GW_CONFIG_MAX_OVERRIDES - 1] == NULL);
    check(cfg->upstream.resolve[GW_CONFIG_MAX_OVERRIDES - 1] == NULL);
    for (size_t i = 1; i < GW_CONFIG_MAX_OVERRIDES; i++) {
        check(cfg->upstream.connect_to[i - 1] != NULL || cfg->upstream.connect_to[i] == NULL);
        check(cfg->upstream.resolve[i - 1] != NULL || cfg->upstream.resolve[i] == NULL);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct gw_config untouched;
    struct gw_config *cfg = &untouched;
    char msg[512];

    write_input(data, size);
    memset(msg, 'x', sizeof msg);
    enum gw_err err = gw_config_load(path, &cfg, msg, sizeof msg);
    if (err == GW_OK) {
        check(cfg != NULL && cfg != &untouched);
        check_loaded(cfg);
        gw_config_free(cfg);
    } else {
        check(cfg == &untouched);
        check(err == GW_ERR_INVALID || err == GW_ERR_IO || err == GW_ERR_NOMEM);
        check(memchr(msg, '\0', sizeof msg) != NULL);
        check(strstr(msg, path) != NULL || err == GW_ERR_NOMEM);
        for (const char *p = msg; *p != '\0'; p++) {
            check((unsigned char)*p >= 0x20 && *p != 0x7f);
        }
    }
    return 0;
}
