/*
 * A core file forced from a test build holds no key. The gateway itself never dumps core (tcgw
 * sets PR_SET_DUMPABLE 0 and RLIMIT_CORE 0); this test makes a child that does: it opens a vault
 * from its files, signs (so a day's signing key is derived), makes itself dumpable with an
 * unlimited core size, and aborts. The parent then scans the core for the SecretKey, the master
 * key and the derived signing key. A marker the child puts on its ordinary heap must be found, so
 * a scan that reads nothing cannot pass. Skipped (77) under AddressSanitizer, whose shadow memory
 * makes cores unusable, and where the kernel writes no core file into the working directory.
 */
#define _GNU_SOURCE /* memmem */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vault/tc3.h"
#include "vault/vault.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

#define SKIPPED 77

#ifndef UNDER_ASAN

#define SECRET_ID "AKIDcoreDumpTestEXAMPLE000000000000"
#define MARKER "tcgw-core-dump-marker-5b1f"

static char dir[64];
static char key_path[128], store_path[128], core_path[128];
/* In sodium_malloc'ed memory, which is excluded from core dumps (the forked child has it too). */
static char *secret_key;
#define SECRET_KEY_LEN 32

/* Reads the whole file; NULL when it cannot. */
static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }
    size_t cap = 1 << 20, n = 0;
    unsigned char *p = malloc(cap);
    size_t got;
    while (p != NULL && (got = fread(p + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            unsigned char *q = realloc(p, cap *= 2);
            if (q == NULL) {
                free(p);
                p = NULL;
            }
            p = q;
        }
    }
    fclose(f);
    *len = n;
    return p;
}

static bool contains(const unsigned char *hay, size_t n, const void *needle, size_t m)
{
    return memmem(hay, n, needle, m) != NULL;
}

static struct gw_tc3_request request(void)
{
    static const char payload[] = "{\"ProxyId\": \"link-4ftf12sb\", \"Bandwidth\": \"10\"}";
    return (struct gw_tc3_request){.service = "gaap",
                                   .host = "gaap.tencentcloudapi.com",
                                   .timestamp = (int64_t)time(NULL),
                                   .content_type = "application/json",
                                   .payload = (const unsigned char *)payload,
                                   .payload_len = sizeof payload - 1};
}

/* The child: open, sign, dump core. Never returns. */
static void child(void)
{
    char msg[256];
    struct gw_vault *vault = NULL;
    struct gw_buf auth;
    gw_buf_init(&auth, 4096);
    if (gw_vault_open(key_path, store_path, &vault, msg, sizeof msg) != GW_OK) {
        _exit(3);
    }
    struct gw_tc3_request req = request();
    if (gw_vault_sign(vault, "default", &req, &auth) != GW_OK) {
        _exit(4);
    }
    char *marker = malloc(64);
    if (marker == NULL) {
        _exit(5);
    }
    snprintf(marker, 64, "%s", MARKER);
    struct rlimit unlimited = {RLIM_INFINITY, RLIM_INFINITY};
    if (setrlimit(RLIMIT_CORE, &unlimited) != 0 || prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) != 0 ||
        chdir(dir) != 0) {
        _exit(6);
    }
    __asm__ volatile("" : : "r"(marker) : "memory");
    abort();
}

static void test_core_holds_no_key(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        child();
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    size_t len = 0;
    unsigned char *core = slurp(core_path, &len);
    if (core == NULL) {
        char alt[160];
        snprintf(alt, sizeof alt, "%s.%d", core_path, (int)pid);
        core = slurp(alt, &len);
        unlink(alt);
    }
    if (core == NULL || !WCOREDUMP(status)) {
        free(core);
        print_message("no core file in %s (kernel.core_pattern elsewhere): skipped\n", dir);
        skip();
    }
    unlink(core_path);

    /* The scan reads the dump: the child's ordinary heap is in it. */
    assert_true(contains(core, len, MARKER, strlen(MARKER)));

    unsigned char master[GW_VAULT_MASTER_KEY_LEN];
    int fd = open(key_path, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(read(fd, master, sizeof master), (ssize_t)sizeof master);
    close(fd);
    unsigned char derived[GW_TC3_KEY_LEN];
    char date[GW_TC3_DATE_LEN + 1];
    assert_int_equal(gw_tc3_date((int64_t)time(NULL), date), GW_OK);
    assert_int_equal(gw_tc3_derive_key((const unsigned char *)secret_key, strlen(secret_key), date,
                                       "gaap", derived),
                     GW_OK);

    assert_false(contains(core, len, secret_key, strlen(secret_key)));
    assert_false(contains(core, len, master, sizeof master));
    assert_false(contains(core, len, derived, sizeof derived));
    sodium_memzero(master, sizeof master);
    sodium_memzero(derived, sizeof derived);
    free(core);
}

static int setup(void **state)
{
    (void)state;
    char msg[256];
    struct gw_vault *vault = NULL;
    if (sodium_init() < 0) {
        return -1;
    }
    snprintf(dir, sizeof dir, "/tmp/tcgw-core-XXXXXX");
    if (mkdtemp(dir) == NULL) {
        return -1;
    }
    snprintf(key_path, sizeof key_path, "%s/master.key", dir);
    snprintf(store_path, sizeof store_path, "%s/credentials.store", dir);
    snprintf(core_path, sizeof core_path, "%s/core", dir);
    /* A SecretKey made here, at random, so that no copy of it is in the test's binary. */
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    if ((secret_key = sodium_malloc(SECRET_KEY_LEN + 1)) == NULL) {
        return -1;
    }
    secret_key[SECRET_KEY_LEN] = '\0';
    for (size_t i = 0; i < SECRET_KEY_LEN; i++) {
        secret_key[i] = alphabet[randombytes_uniform(sizeof alphabet - 1)];
    }
    if (gw_vault_keygen(key_path, msg, sizeof msg) != GW_OK ||
        gw_vault_open(key_path, store_path, &vault, msg, sizeof msg) != GW_OK ||
        gw_vault_put(vault, "default", SECRET_ID, strlen(SECRET_ID), secret_key, strlen(secret_key),
                     msg, sizeof msg) != GW_OK ||
        gw_vault_save(vault, store_path, msg, sizeof msg) != GW_OK) {
        print_error("setup: %s\n", msg);
        return -1;
    }
    gw_vault_free(vault);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char path[160];
    static const char *const names[] = {"master.key", "credentials.store",
                                        "credentials.store.generation", "core"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
    sodium_free(secret_key); /* zeroes it */
    return 0;
}

#endif /* UNDER_ASAN */

int main(void)
{
#ifdef UNDER_ASAN
    fprintf(stderr, "skipped: AddressSanitizer builds do not make usable core files\n");
    return SKIPPED;
#else
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_core_holds_no_key),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
#endif
}
