/* Unit tests for gateway/vault/: key files, the encrypted store, its writer lock, and signing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vault/vault.h"
#include "vault/vault_int.h" /* the clock, the slots and the protection count, to look inside */

struct fixture {
    char dir[64];
    char key[PATH_MAX];
    char store[PATH_MAX];
    char msg[512];
    json_t *vectors; /* the "vectors" array of tests/data/tc3-vectors.json */
    json_t *root;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "/tmp/tcgw-vault-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->key, sizeof f->key, "%s/master.key", f->dir);
    snprintf(f->store, sizeof f->store, "%s/credentials.store", f->dir);

    char path[PATH_MAX];
    const char *src = getenv("TCGW_SOURCE_DIR");
    if (src != NULL) {
        snprintf(path, sizeof path, "%s/tests/data/tc3-vectors.json", src);
    } else {
        snprintf(path, sizeof path, "data/tc3-vectors.json"); /* ctest runs in tests/ */
    }
    json_error_t jerr;
    f->root = json_load_file(path, 0, &jerr);
    if (f->root == NULL) {
        fail_msg("cannot load %s: %s", path, jerr.text);
    }
    f->vectors = json_object_get(f->root, "vectors");
    assert_true(json_array_size(f->vectors) >= 14);
    *state = f;
    return 0;
}

/* Removes the files tests left in the temporary directory, then the directory. */
static int teardown(void **state)
{
    struct fixture *f = *state;
    DIR *d = opendir(f->dir);
    if (d != NULL) {
        struct dirent *e;
        char path[PATH_MAX];
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
                continue;
            }
            snprintf(path, sizeof path, "%s/%s", f->dir, e->d_name);
            if (unlink(path) != 0) {
                rmdir(path);
            }
        }
        closedir(d);
    }
    rmdir(f->dir);
    json_decref(f->root);
    free(f);
    return 0;
}

/* ---- Helpers ---- */

static size_t read_file(const char *path, unsigned char *buf, size_t max)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    size_t n = fread(buf, 1, max, fp);
    fclose(fp);
    return n;
}

static void write_file(const char *path, const void *buf, size_t n, mode_t mode)
{
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, mode);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, buf, n), (ssize_t)n);
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

static bool contains(const unsigned char *hay, size_t n, const char *needle)
{
    size_t m = strlen(needle);
    for (size_t i = 0; i + m <= n; i++) {
        if (memcmp(hay + i, needle, m) == 0) {
            return true;
        }
    }
    return false;
}

static const char *vstr(json_t *v, const char *key)
{
    json_t *x = json_object_get(v, key);
    return json_is_string(x) ? json_string_value(x) : NULL;
}

static json_t *vector_named(struct fixture *f, const char *name)
{
    size_t i;
    json_t *v;
    json_array_foreach (f->vectors, i, v) {
        if (strcmp(vstr(v, "name"), name) == 0) {
            return v;
        }
    }
    fail_msg("no vector %s", name);
    return NULL;
}

static struct gw_tc3_request request_of(json_t *v)
{
    json_t *payload = json_object_get(v, "payload");
    struct gw_tc3_request req = {
        .service = vstr(v, "service"),
        .host = vstr(v, "host"),
        .timestamp = (int64_t)json_integer_value(json_object_get(v, "timestamp")),
        .content_type = vstr(v, "contentType"),
        .payload = (const unsigned char *)json_string_value(payload),
        .payload_len = json_string_length(payload),
        .action = vstr(v, "action"),
    };
    return req;
}

static struct gw_vault *open_ok(struct fixture *f)
{
    struct gw_vault *v = NULL;
    enum gw_err err = gw_vault_open(f->key, f->store, &v, f->msg, sizeof f->msg);
    if (err != GW_OK) {
        fail_msg("open: %s: %s", gw_err_str(err), f->msg);
    }
    return v;
}

static void put_ok(struct gw_vault *v, const char *name, const char *id, const char *key)
{
    char msg[256];
    enum gw_err err = gw_vault_put(v, name, id, strlen(id), key, strlen(key), msg, sizeof msg);
    if (err != GW_OK) {
        fail_msg("put %s: %s: %s", name, gw_err_str(err), msg);
    }
}

static void put_vector(struct gw_vault *v, const char *name, json_t *vec)
{
    put_ok(v, name, vstr(vec, "secretId"), vstr(vec, "secretKey"));
}

/* Signs vector vec with credential name and checks the Authorization value. */
static void sign_expect(struct gw_vault *v, const char *name, json_t *vec)
{
    struct gw_tc3_request req = request_of(vec);
    struct gw_buf b;
    gw_buf_init(&b, GW_TC3_MAX_TEXT);
    assert_int_equal(gw_vault_sign(v, name, &req, &b), GW_OK);
    assert_string_equal(b.data, vstr(vec, "authorization"));
    gw_buf_free(&b);
}

static void make_store(struct fixture *f)
{
    char msg[256];
    assert_int_equal(gw_vault_keygen(f->key, msg, sizeof msg), GW_OK);
    struct gw_vault *v = open_ok(f);
    put_ok(v, "prod", "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE", "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE");
    put_ok(v, "dev", "AKIDEXAMPLE0000000000000000000000000", "abcdefghijklmnopqrstuvwxyz012345");
    assert_int_equal(gw_vault_save(v, f->store, msg, sizeof msg), GW_OK);
    gw_vault_free(v);
}

static enum gw_err open_err(struct fixture *f)
{
    struct gw_vault *v = NULL;
    f->msg[0] = '\0';
    enum gw_err err = gw_vault_open(f->key, f->store, &v, f->msg, sizeof f->msg);
    if (err == GW_OK) {
        gw_vault_free(v);
    } else {
        assert_null(v);
        assert_true(strlen(f->msg) > 0);
    }
    return err;
}

/* ---- Master key file ---- */

static void test_keygen(void **state)
{
    struct fixture *f = *state;
    unsigned char a[64], b[64];
    struct stat st;

    assert_int_equal(gw_vault_keygen(f->key, f->msg, sizeof f->msg), GW_OK);
    assert_int_equal(stat(f->key, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(st.st_size, GW_VAULT_MASTER_KEY_LEN);
    assert_int_equal(read_file(f->key, a, sizeof a), GW_VAULT_MASTER_KEY_LEN);

    /* Never overwritten. */
    assert_int_equal(gw_vault_keygen(f->key, f->msg, sizeof f->msg), GW_ERR_EXISTS);
    assert_non_null(strstr(f->msg, f->key));
    assert_int_equal(read_file(f->key, b, sizeof b), GW_VAULT_MASTER_KEY_LEN);
    assert_memory_equal(a, b, GW_VAULT_MASTER_KEY_LEN);

    /* Not even through a dangling symbolic link. */
    char link[PATH_MAX], target[PATH_MAX];
    snprintf(link, sizeof link, "%s/link.key", f->dir);
    snprintf(target, sizeof target, "%s/target.key", f->dir);
    assert_int_equal(symlink(target, link), 0);
    assert_int_equal(gw_vault_keygen(link, f->msg, sizeof f->msg), GW_ERR_EXISTS);
    assert_int_equal(access(target, F_OK), -1);

    /* Two keys differ. */
    char other[PATH_MAX];
    snprintf(other, sizeof other, "%s/other.key", f->dir);
    assert_int_equal(gw_vault_keygen(other, f->msg, sizeof f->msg), GW_OK);
    assert_int_equal(read_file(other, b, sizeof b), GW_VAULT_MASTER_KEY_LEN);
    assert_memory_not_equal(a, b, GW_VAULT_MASTER_KEY_LEN);

    /* A directory that does not exist. */
    char missing[PATH_MAX];
    snprintf(missing, sizeof missing, "%s/no/such/dir/master.key", f->dir);
    assert_int_equal(gw_vault_keygen(missing, f->msg, sizeof f->msg), GW_ERR_IO);
    assert_non_null(strstr(f->msg, missing));
    assert_int_equal(gw_vault_keygen("", f->msg, sizeof f->msg), GW_ERR_INVALID);
}

static void test_key_file_checks(void **state)
{
    struct fixture *f = *state;
    unsigned char key[GW_VAULT_MASTER_KEY_LEN + 1] = {0};
    char want[PATH_MAX + 16];

    /* Missing. */
    assert_int_equal(open_err(f), GW_ERR_NOT_FOUND);
    assert_non_null(strstr(f->msg, "tcgw keygen"));

    /* Any group or other bit is refused, and the message says how to fix it. */
    static const mode_t loose[] = {0640, 0604, 0660, 0644, 0601, 0610, 0666};
    snprintf(want, sizeof want, "chmod 600 %s", f->key);
    for (size_t i = 0; i < sizeof loose / sizeof *loose; i++) {
        write_file(f->key, key, GW_VAULT_MASTER_KEY_LEN, loose[i]);
        assert_int_equal(open_err(f), GW_ERR_PERM);
        assert_non_null(strstr(f->msg, want));
    }
    write_file(f->key, key, GW_VAULT_MASTER_KEY_LEN, 0400);
    assert_int_equal(open_err(f), GW_OK);
    write_file(f->key, key, GW_VAULT_MASTER_KEY_LEN, 0600);
    assert_int_equal(open_err(f), GW_OK);

    /* Wrong sizes. */
    write_file(f->key, key, GW_VAULT_MASTER_KEY_LEN - 1, 0600);
    assert_int_equal(open_err(f), GW_ERR_INVALID);
    assert_non_null(strstr(f->msg, f->key));
    write_file(f->key, key, GW_VAULT_MASTER_KEY_LEN + 1, 0600);
    assert_int_equal(open_err(f), GW_ERR_INVALID);
    write_file(f->key, key, 0, 0600);
    assert_int_equal(open_err(f), GW_ERR_INVALID);

    /* A symbolic link, and a directory. */
    char real[PATH_MAX];
    snprintf(real, sizeof real, "%s/real.key", f->dir);
    write_file(real, key, GW_VAULT_MASTER_KEY_LEN, 0600);
    unlink(f->key);
    assert_int_equal(symlink(real, f->key), 0);
    assert_int_equal(open_err(f), GW_ERR_PERM);
    unlink(f->key);
    assert_int_equal(mkdir(f->key, 0700), 0);
    assert_int_equal(open_err(f), GW_ERR_INVALID);
    rmdir(f->key);

    struct gw_vault *v = (struct gw_vault *)&key; /* any non-NULL value: must stay untouched */
    assert_int_equal(gw_vault_open(f->key, f->store, &v, f->msg, sizeof f->msg), GW_ERR_NOT_FOUND);
    assert_ptr_equal(v, (struct gw_vault *)&key);
    assert_int_equal(gw_vault_open(NULL, f->store, &v, f->msg, sizeof f->msg), GW_ERR_INVALID);
    assert_int_equal(gw_vault_open(f->key, "", &v, f->msg, sizeof f->msg), GW_ERR_INVALID);
}

/* ---- Store ---- */

static void test_round_trip(void **state)
{
    struct fixture *f = *state;
    char name[GW_VAULT_MAX_NAME + 1], tail[5];
    unsigned char file[4096];
    struct stat st;

    assert_int_equal(gw_vault_keygen(f->key, f->msg, sizeof f->msg), GW_OK);
    struct gw_vault *v = open_ok(f); /* no store yet: empty */
    assert_int_equal(gw_vault_count(v), 0);
    assert_int_equal(gw_vault_describe(v, 0, name, tail), GW_ERR_NOT_FOUND);
    put_ok(v, "prod", "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE", "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE");
    put_ok(v, "dev", "AKIDEXAMPLE0000000000000000000000000", "abcdefghijklmnopqrstuvwxyz012345");
    put_ok(v, "a.b_c-9", "ID1", "k");
    assert_int_equal(gw_vault_save(v, f->store, f->msg, sizeof f->msg), GW_OK);
    gw_vault_free(v);

    /* The file: 0600, no plaintext, no temporary left behind. */
    assert_int_equal(stat(f->store, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    size_t n = read_file(f->store, file, sizeof file);
    assert_memory_equal(file, "TCGWSTORE3", 10);
    assert_false(contains(file, n, "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE"));
    assert_false(contains(file, n, "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE"));
    assert_false(contains(file, n, "abcdefghijklmnopqrstuvwxyz012345"));
    assert_false(contains(file, n, "prod"));
    DIR *d = opendir(f->dir);
    struct dirent *e;
    size_t entries = 0;
    while ((e = readdir(d)) != NULL) {
        assert_null(strstr(e->d_name, ".tmp."));
        entries++;
    }
    closedir(d);
    assert_int_equal(entries, 5); /* ., .., key, store, store.generation */

    /* Reopened: name order and the last four characters of each SecretId. */
    v = open_ok(f);
    assert_int_equal(gw_vault_count(v), 3);
    static const char *const names[] = {"a.b_c-9", "dev", "prod"};
    static const char *const tails[] = {"ID1", "0000", "MPLE"};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(gw_vault_describe(v, i, name, tail), GW_OK);
        assert_string_equal(name, names[i]);
        assert_string_equal(tail, tails[i]);
        assert_true(gw_vault_has(v, names[i]));
    }
    assert_false(gw_vault_has(v, "nope"));
    assert_false(gw_vault_has(v, NULL));
    assert_int_equal(gw_vault_describe(v, 3, name, tail), GW_ERR_NOT_FOUND);

    /* Replacing keeps one entry, and a fresh nonce makes every save differ. */
    put_ok(v, "dev", "AKIDEXAMPLE1111", "zyxwvutsrqponmlkjihgfedcba");
    assert_int_equal(gw_vault_count(v), 3);
    assert_int_equal(gw_vault_save(v, f->store, f->msg, sizeof f->msg), GW_OK);
    unsigned char first[4096];
    size_t first_n = read_file(f->store, first, sizeof first);
    assert_int_equal(gw_vault_save(v, f->store, f->msg, sizeof f->msg), GW_OK);
    n = read_file(f->store, file, sizeof file);
    assert_int_equal(n, first_n);
    assert_memory_not_equal(file + 10, first + 10, 24);
    gw_vault_free(v);
    v = open_ok(f);
    assert_int_equal(gw_vault_describe(v, 1, name, tail), GW_OK);
    assert_string_equal(name, "dev");
    assert_string_equal(tail, "1111");

    /* An empty vault saves and opens too. */
    gw_vault_free(v);
    char empty_store[PATH_MAX];
    snprintf(empty_store, sizeof empty_store, "%s/empty.store", f->dir);
    v = open_ok(f);
    struct gw_vault *e2 = NULL;
    assert_int_equal(gw_vault_open(f->key, empty_store, &e2, f->msg, sizeof f->msg), GW_OK);
    assert_int_equal(gw_vault_save(e2, empty_store, f->msg, sizeof f->msg), GW_OK);
    gw_vault_free(e2);
    e2 = NULL;
    assert_int_equal(gw_vault_open(f->key, empty_store, &e2, f->msg, sizeof f->msg), GW_OK);
    assert_int_equal(gw_vault_count(e2), 0);
    gw_vault_free(e2);

    /* Saving where the directory does not exist fails, naming the file. */
    char bad[PATH_MAX];
    snprintf(bad, sizeof bad, "%s/no/such/dir/x.store", f->dir);
    assert_int_equal(gw_vault_save(v, bad, f->msg, sizeof f->msg), GW_ERR_IO);
    assert_non_null(strstr(f->msg, bad));
    assert_int_equal(gw_vault_save(v, "", f->msg, sizeof f->msg), GW_ERR_INVALID);
    gw_vault_free(v);
    gw_vault_free(NULL);
}

static void test_wrong_key(void **state)
{
    struct fixture *f = *state;
    make_store(f);
    unlink(f->key);
    assert_int_equal(gw_vault_keygen(f->key, f->msg, sizeof f->msg), GW_OK);
    char want[PATH_MAX + 200];
    snprintf(want, sizeof want,
             "cannot open %s: wrong master key file for this store (or its header was modified): "
             "give the key file it was saved with",
             f->store);
    assert_int_equal(open_err(f), GW_ERR_CRYPTO);
    assert_string_equal(f->msg, want);
}

static void test_tampered_store(void **state)
{
    struct fixture *f = *state;
    unsigned char orig[4096], bad[4096];
    make_store(f);
    size_t n = read_file(f->store, orig, sizeof orig);
    assert_true(n > 10 + 24 + 16);
    /* Magic, version, nonce, ciphertext (count, a length, a secret byte), tag. */
    const size_t positions[] = {0,  5,  9,  10,    20,     33,     34,    36,
                                40, 50, 60, n / 2, n - 17, n - 16, n - 8, n - 1};
    for (size_t i = 0; i < sizeof positions / sizeof *positions; i++) {
        for (unsigned bit = 0; bit < 8; bit += 7) {
            memcpy(bad, orig, n);
            bad[positions[i]] ^= (unsigned char)(1u << bit);
            write_file(f->store, bad, n, 0600);
            enum gw_err err = open_err(f);
            if (err != GW_ERR_CRYPTO && err != GW_ERR_INVALID) {
                fail_msg("flipping bit %u of byte %zu gave %s", bit, positions[i], gw_err_str(err));
            }
            assert_non_null(strstr(f->msg, f->store));
            /* Byte 10 is the key source: another one is a header this tcgw does not know. */
            if (positions[i] > 10) {
                assert_int_equal(err, GW_ERR_CRYPTO);
            }
        }
    }
    /* An extra byte at the end. */
    memcpy(bad, orig, n);
    bad[n] = 0;
    write_file(f->store, bad, n + 1, 0600);
    assert_int_equal(open_err(f), GW_ERR_CRYPTO);
    /* Random bytes behind a valid magic and key source. */
    memcpy(bad, orig, 11);
    for (size_t i = 11; i < n; i++) {
        bad[i] = (unsigned char)(i * 131u + 7u);
    }
    write_file(f->store, bad, n, 0600);
    assert_int_equal(open_err(f), GW_ERR_CRYPTO);
    /* The original still opens. */
    write_file(f->store, orig, n, 0600);
    assert_int_equal(open_err(f), GW_OK);
}

static void test_truncated_store(void **state)
{
    struct fixture *f = *state;
    unsigned char orig[4096];
    make_store(f);
    size_t n = read_file(f->store, orig, sizeof orig);
    const size_t sizes[] = {0, 1, 9, 10, 33, 34, 49, 53, 54, n / 2, n - 16, n - 1};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        write_file(f->store, orig, sizes[i], 0600);
        enum gw_err err = open_err(f);
        if (err != GW_ERR_CRYPTO && err != GW_ERR_INVALID) {
            fail_msg("a store cut to %zu bytes gave %s", sizes[i], gw_err_str(err));
        }
        assert_non_null(strstr(f->msg, f->store));
        if (sizes[i] < 54) {
            assert_int_equal(err, GW_ERR_INVALID);
            assert_non_null(strstr(f->msg, "truncated"));
        }
    }
    /* Far larger than any store. */
    size_t huge = VAULT_STORE_MAX + 1000;
    unsigned char *big = calloc(huge, 1);
    assert_non_null(big);
    memcpy(big, orig, n);
    write_file(f->store, big, huge, 0600);
    assert_int_equal(open_err(f), GW_ERR_TOO_LARGE);
    free(big);
    /* A directory where the store should be. */
    unlink(f->store);
    assert_int_equal(mkdir(f->store, 0700), 0);
    assert_int_equal(open_err(f), GW_ERR_INVALID);
    rmdir(f->store);
}

static void test_invalid_put(void **state)
{
    struct fixture *f = *state;
    char msg[256];
    char long_name[GW_VAULT_MAX_NAME + 2];
    char long_value[GW_VAULT_MAX_SECRET_KEY + 2];

    assert_int_equal(gw_vault_keygen(f->key, f->msg, sizeof f->msg), GW_OK);
    struct gw_vault *v = open_ok(f);

    memset(long_name, 'n', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    static const char *const bad_names[] = {"",    "a b", "a/b", "a\n", "\xc3\xa9t\xc3\xa9",
                                            "a:b", "a\tb"};
    for (size_t i = 0; i < sizeof bad_names / sizeof *bad_names; i++) {
        assert_int_equal(gw_vault_put(v, bad_names[i], "ID", 2, "KEY", 3, msg, sizeof msg),
                         GW_ERR_INVALID);
        assert_false(gw_vault_name_valid(bad_names[i]));
    }
    assert_int_equal(gw_vault_put(v, long_name, "ID", 2, "KEY", 3, msg, sizeof msg),
                     GW_ERR_INVALID);
    assert_int_equal(gw_vault_put(v, NULL, "ID", 2, "KEY", 3, msg, sizeof msg), GW_ERR_INVALID);
    long_name[GW_VAULT_MAX_NAME] = '\0';
    put_ok(v, long_name, "ID", "KEY");

    /* Values: the message says what is wrong and never repeats the value. */
    static const char *const bad_values[] = {"SECRETVALUE\r",       "SECRET VALUE",
                                             "SECRET\tVALUE",       "SECRET\x01VALUE",
                                             "SECRET\xc3\xa9VALUE", ""};
    for (size_t i = 0; i < sizeof bad_values / sizeof *bad_values; i++) {
        const char *bv = bad_values[i];
        assert_int_equal(gw_vault_put(v, "x", bv, strlen(bv), "KEY", 3, msg, sizeof msg),
                         GW_ERR_INVALID);
        assert_non_null(strstr(msg, "SecretId"));
        assert_null(strstr(msg, "SECRET"));
        assert_int_equal(gw_vault_put(v, "x", "ID", 2, bv, strlen(bv), msg, sizeof msg),
                         GW_ERR_INVALID);
        assert_non_null(strstr(msg, "SecretKey"));
        assert_null(strstr(msg, "SECRET"));
    }
    assert_int_equal(gw_vault_put(v, "x", "ID", 2, "SECRETVALUE\r", 12, msg, sizeof msg),
                     GW_ERR_INVALID);
    assert_non_null(strstr(msg, "carriage return"));
    memset(long_value, 'v', sizeof long_value);
    assert_int_equal(
        gw_vault_put(v, "x", long_value, GW_VAULT_MAX_SECRET_ID + 1, "K", 1, msg, sizeof msg),
        GW_ERR_INVALID);
    assert_int_equal(
        gw_vault_put(v, "x", "I", 1, long_value, GW_VAULT_MAX_SECRET_KEY + 1, msg, sizeof msg),
        GW_ERR_INVALID);
    assert_int_equal(gw_vault_put(v, "x", NULL, 0, "K", 1, msg, sizeof msg), GW_ERR_INVALID);
    assert_false(gw_vault_has(v, "x"));
    assert_int_equal(gw_vault_count(v), 1);
    gw_vault_free(v);
}

/* The store holds GW_VAULT_MAX_ENTRIES credentials of the largest size, and no more. */
static void test_limits(void **state)
{
    struct fixture *f = *state;
    char name[GW_VAULT_MAX_NAME + 1];
    char id[GW_VAULT_MAX_SECRET_ID + 1];
    char key[GW_VAULT_MAX_SECRET_KEY + 1];
    char tail[5];

    assert_int_equal(gw_vault_keygen(f->key, f->msg, sizeof f->msg), GW_OK);
    struct gw_vault *v = open_ok(f);
    memset(name, 'n', GW_VAULT_MAX_NAME);
    name[GW_VAULT_MAX_NAME] = '\0';
    memset(id, 'I', GW_VAULT_MAX_SECRET_ID);
    id[GW_VAULT_MAX_SECRET_ID] = '\0';
    memset(key, 'K', GW_VAULT_MAX_SECRET_KEY);
    key[GW_VAULT_MAX_SECRET_KEY] = '\0';
    for (int i = GW_VAULT_MAX_ENTRIES - 1; i >= 0; i--) {
        snprintf(name + GW_VAULT_MAX_NAME - 3, 4, "%03d", i);
        snprintf(id + GW_VAULT_MAX_SECRET_ID - 3, 4, "%03d", i);
        put_ok(v, name, id, key);
    }
    assert_int_equal(gw_vault_count(v), GW_VAULT_MAX_ENTRIES);
    assert_int_equal(gw_vault_put(v, "one-more", "ID", 2, "K", 1, f->msg, sizeof f->msg),
                     GW_ERR_TOO_LARGE);
    /* Replacing still works when full. */
    put_ok(v, name, "REPLACED", key);
    assert_int_equal(gw_vault_save(v, f->store, f->msg, sizeof f->msg), GW_OK);
    gw_vault_free(v);

    v = open_ok(f);
    assert_int_equal(gw_vault_count(v), GW_VAULT_MAX_ENTRIES);
    assert_int_equal(gw_vault_describe(v, 0, name, tail), GW_OK);
    assert_string_equal(tail, "ACED");
    assert_int_equal(gw_vault_describe(v, GW_VAULT_MAX_ENTRIES - 1, name, tail), GW_OK);
    assert_string_equal(tail, "I255");
    assert_string_equal(name + GW_VAULT_MAX_NAME - 3, "255");
    gw_vault_free(v);
}

/* ---- Files that are not what they should be, and the writer lock ---- */

/* True when another open file description could take the store's lock now. */
static bool store_lock_free(struct fixture *f)
{
    char lock[PATH_MAX + 8];
    snprintf(lock, sizeof lock, "%s.lock", f->store);
    int fd = open(lock, O_RDONLY);
    assert_true(fd >= 0);
    bool ok = flock(fd, LOCK_EX | LOCK_NB) == 0;
    close(fd);
    return ok;
}

static void test_store_file_checks(void **state)
{
    struct fixture *f = *state;
    unsigned char orig[4096];
    char want[PATH_MAX + 16], real[PATH_MAX], saved_key[PATH_MAX + 8];
    make_store(f);
    size_t n = read_file(f->store, orig, sizeof orig);

    /* A FIFO as the store or the key: refused at once, never waited on. */
    alarm(10);
    unlink(f->store);
    assert_int_equal(mkfifo(f->store, 0600), 0);
    assert_int_equal(open_err(f), GW_ERR_INVALID);
    assert_non_null(strstr(f->msg, "FIFO"));
    assert_non_null(strstr(f->msg, f->store));
    unlink(f->store);
    write_file(f->store, orig, n, 0600);
    snprintf(saved_key, sizeof saved_key, "%s.saved", f->key);
    assert_int_equal(rename(f->key, saved_key), 0);
    assert_int_equal(mkfifo(f->key, 0600), 0);
    assert_int_equal(open_err(f), GW_ERR_INVALID);
    assert_non_null(strstr(f->msg, "FIFO"));
    unlink(f->key);
    assert_int_equal(rename(saved_key, f->key), 0);
    alarm(0);

    /* Loose modes, with the fix in the message. */
    snprintf(want, sizeof want, "chmod 600 %s", f->store);
    static const mode_t loose[] = {0644, 0620, 0640, 0604};
    for (size_t i = 0; i < sizeof loose / sizeof *loose; i++) {
        write_file(f->store, orig, n, loose[i]);
        assert_int_equal(open_err(f), GW_ERR_PERM);
        assert_non_null(strstr(f->msg, want));
    }

    /* A symbolic link. */
    snprintf(real, sizeof real, "%s/real.store", f->dir);
    write_file(real, orig, n, 0600);
    unlink(f->store);
    assert_int_equal(symlink(real, f->store), 0);
    assert_int_equal(open_err(f), GW_ERR_PERM);
    assert_non_null(strstr(f->msg, "symbolic link"));
    unlink(f->store);

    /* Another user's store (as root, who can make one). */
    write_file(f->store, orig, n, 0600);
    if (geteuid() == 0) {
        assert_int_equal(chown(f->store, 65534, 65534), 0);
        assert_int_equal(open_err(f), GW_ERR_PERM);
        assert_non_null(strstr(f->msg, "belongs to uid 65534"));
        assert_int_equal(chown(f->store, 0, 0), 0);
    }
    assert_int_equal(open_err(f), GW_OK);
}

static void test_open_for_update(void **state)
{
    struct fixture *f = *state;
    char lock[PATH_MAX + 8], other[PATH_MAX];
    struct gw_vault *v = NULL;
    struct stat st;
    snprintf(lock, sizeof lock, "%s.lock", f->store);
    snprintf(other, sizeof other, "%s/other.store", f->dir);
    make_store(f);

    /* The lock is held from open to free. */
    assert_int_equal(gw_vault_open_for_update(f->key, f->store, &v, f->msg, sizeof f->msg), GW_OK);
    assert_int_equal(gw_vault_count(v), 2);
    assert_int_equal(stat(lock, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_false(store_lock_free(f));
    put_ok(v, "third", "AKIDEXAMPLE3333", "k3");
    /* Only into the store it locked. */
    assert_int_equal(gw_vault_save(v, other, f->msg, sizeof f->msg), GW_ERR_INVALID);
    assert_int_equal(access(other, F_OK), -1);
    assert_int_equal(gw_vault_save(v, f->store, f->msg, sizeof f->msg), GW_OK);
    assert_false(store_lock_free(f));
    gw_vault_free(v);
    assert_true(store_lock_free(f));
    v = open_ok(f);
    assert_int_equal(gw_vault_count(v), 3);
    gw_vault_free(v);

    /* A store that would be refused is refused before a lock file is made beside it. */
    unlink(lock);
    chmod(f->store, 0644);
    v = NULL;
    assert_int_equal(gw_vault_open_for_update(f->key, f->store, &v, f->msg, sizeof f->msg),
                     GW_ERR_PERM);
    assert_null(v);
    assert_int_equal(access(lock, F_OK), -1);
    chmod(f->store, 0600);

    /* No store yet: an empty vault, locked, that creates the store. */
    unlink(f->store);
    assert_int_equal(gw_vault_open_for_update(f->key, f->store, &v, f->msg, sizeof f->msg), GW_OK);
    assert_int_equal(gw_vault_count(v), 0);
    assert_false(store_lock_free(f));
    put_ok(v, "only", "AKIDEXAMPLE1", "k");
    assert_int_equal(gw_vault_save(v, f->store, f->msg, sizeof f->msg), GW_OK);
    gw_vault_free(v);

    /* The lock file must be a regular file too. */
    unlink(lock);
    assert_int_equal(mkfifo(lock, 0600), 0);
    assert_int_equal(gw_vault_open_for_update(f->key, f->store, &v, f->msg, sizeof f->msg),
                     GW_ERR_INVALID);
    assert_non_null(strstr(f->msg, lock));
    unlink(lock);
}

/* Saving keeps the store's mode (and owner: tests/unit/core/test_file.c), leaves no temp file. */
static void test_save_keeps_mode(void **state)
{
    struct fixture *f = *state;
    struct stat st;
    make_store(f);
    assert_int_equal(chmod(f->store, 0400), 0);
    struct gw_vault *v = open_ok(f);
    put_ok(v, "more", "AKIDEXAMPLE4444", "k4");
    assert_int_equal(gw_vault_save(v, f->store, f->msg, sizeof f->msg), GW_OK);
    gw_vault_free(v);
    assert_int_equal(stat(f->store, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0400);
    v = open_ok(f);
    assert_int_equal(gw_vault_count(v), 3);
    gw_vault_free(v);
}

/* ---- Signing ---- */

/* Puts every vector's credential as "vNN". */
static void put_all_vectors(struct fixture *f, struct gw_vault *v)
{
    size_t i;
    json_t *vec;
    char name[32];
    json_array_foreach (f->vectors, i, vec) {
        snprintf(name, sizeof name, "v%02zu", i);
        put_vector(v, name, vec);
    }
}

/* Signs every vector with credential "vNN", times times, and checks each answer. */
static void sign_all_vectors(struct fixture *f, struct gw_vault *v, int times)
{
    size_t i;
    json_t *vec;
    char name[32];
    json_array_foreach (f->vectors, i, vec) {
        snprintf(name, sizeof name, "v%02zu", i);
        const char *label = vstr(vec, "name");
        print_message("vault signs vector %s\n", label != NULL ? label : "?");
        for (int t = 0; t < times; t++) {
            sign_expect(v, name, vec);
        }
    }
}

static void test_sign_vectors(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(gw_vault_keygen(f->key, f->msg, sizeof f->msg), GW_OK);
    struct gw_vault *v = open_ok(f);
    put_all_vectors(f, v);
    /* Through a save and an open, so signing uses keys that came from the file. */
    assert_int_equal(gw_vault_save(v, f->store, f->msg, sizeof f->msg), GW_OK);
    gw_vault_free(v);
    v = open_ok(f);
    sign_all_vectors(f, v, 1);
    gw_vault_free(v);
}

/* ---- Signing: the derived-key cache ---- */

#define DAY0 ((int64_t)1764633600) /* 2025-12-02 00:00:00 UTC */
#define DAY ((int64_t)86400)
#define MAIN_ID "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE"
#define MAIN_KEY "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE"

/* The vault's clock in these tests: set by the test, read by every signing thread. */
static _Atomic int64_t fake_time;

static int64_t fake_clock(void)
{
    return atomic_load_explicit(&fake_time, memory_order_relaxed);
}

static void set_clock(struct gw_vault *v, int64_t t)
{
    atomic_store_explicit(&fake_time, t, memory_order_relaxed);
    v->now = fake_clock;
}

/* A request like the seed example's, at timestamp t for service. */
static struct gw_tc3_request seed_at(struct fixture *f, int64_t t, const char *service)
{
    struct gw_tc3_request req = request_of(vector_named(f, "seed-example"));
    req.timestamp = t;
    req.service = service;
    return req;
}

/* Signs req with credential name and checks the answer is gw_tc3_sign's with (id, key). */
static void sign_ref(struct gw_vault *v, const char *name, const char *id, const char *key,
                     const struct gw_tc3_request *req)
{
    struct gw_buf got, want;
    gw_buf_init(&got, GW_TC3_MAX_TEXT);
    gw_buf_init(&want, GW_TC3_MAX_TEXT);
    assert_int_equal(gw_vault_sign(v, name, req, &got), GW_OK);
    assert_int_equal(gw_tc3_sign(id, (const unsigned char *)key, strlen(key), req, &want), GW_OK);
    assert_string_equal(got.data, want.data);
    gw_buf_free(&got);
    gw_buf_free(&want);
}

static void expect_stats(struct gw_vault *v, uint64_t hits, uint64_t misses)
{
    uint64_t h, m;
    gw_vault_cache_stats(v, &h, &m);
    assert_int_equal(h, hits);
    assert_int_equal(m, misses);
}

/* The published keys of credential name: how many, and whether one is for (day, service). */
static size_t published(struct gw_vault *v, const char *name, int64_t day, const char *service,
                        bool *found)
{
    struct cred *c = vault_find(v, GW_VAULT_CREDENTIAL, name);
    assert_non_null(c);
    size_t n = 0;
    *found = false;
    for (size_t i = 0; i < VAULT_KEY_SLOTS; i++) {
        const struct derived *d = atomic_load(&c->keys[i]);
        if (d != NULL) {
            n++;
            *found = *found || (d->day == day && strcmp(d->service, service) == 0);
        }
    }
    return n;
}

static bool has_key(struct gw_vault *v, const char *name, int64_t t, const char *service)
{
    bool found;
    (void)published(v, name, t / DAY, service, &found);
    return found;
}

static size_t key_count(struct gw_vault *v, const char *name)
{
    bool found;
    return published(v, name, 0, "", &found);
}

/* Every vector again, with the vault's clock on the vector's own day: through the cache. */
static void test_sign_vectors_cached(void **state)
{
    struct fixture *f = *state;
    size_t i;
    json_t *vec;
    char name[32];
    assert_int_equal(gw_vault_keygen(f->key, f->msg, sizeof f->msg), GW_OK);
    struct gw_vault *v = open_ok(f);
    put_all_vectors(f, v);
    json_array_foreach (f->vectors, i, vec) {
        snprintf(name, sizeof name, "v%02zu", i);
        set_clock(v, (int64_t)json_integer_value(json_object_get(vec, "timestamp")));
        sign_expect(v, name, vec); /* derived and published */
        sign_expect(v, name, vec); /* from the cache */
        assert_int_equal(key_count(v, name), 1);
    }
    size_t n = json_array_size(f->vectors);
    expect_stats(v, n, n);
    gw_vault_free(v);
}

/* A signature with a cached key changes no memory protection; a miss does. */
static void test_sign_hot_path(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(gw_vault_keygen(f->key, f->msg, sizeof f->msg), GW_OK);
    struct gw_vault *v = open_ok(f);
    put_ok(v, "main", MAIN_ID, MAIN_KEY);
    set_clock(v, DAY0 + 3600);

    struct gw_tc3_request req = seed_at(f, DAY0 + 3600, "gaap");
    uint64_t before = vault_mem_protections();
    sign_ref(v, "main", MAIN_ID, MAIN_KEY, &req); /* miss: SecretKey readable, key published */
    uint64_t after_miss = vault_mem_protections();
    assert_true(after_miss >= before + 3);
    for (int64_t i = 0; i < 200; i++) {
        req.timestamp = DAY0 + i * 7; /* same day, different text */
        sign_ref(v, "main", MAIN_ID, MAIN_KEY, &req);
    }
    assert_int_equal(vault_mem_protections(), after_miss);
    expect_stats(v, 200, 1);

    /* Tomorrow's requests are cached too (a caller's clock a little ahead). */
    req.timestamp = DAY0 + DAY + 10;
    sign_ref(v, "main", MAIN_ID, MAIN_KEY, &req);
    uint64_t after_tomorrow = vault_mem_protections();
    assert_true(after_tomorrow > after_miss);
    sign_ref(v, "main", MAIN_ID, MAIN_KEY, &req);
    assert_int_equal(vault_mem_protections(), after_tomorrow);
    expect_stats(v, 201, 2);
    assert_int_equal(key_count(v, "main"), 2);

    /* Yesterday, or a week ago: signed right, with a key for that call only, never published. */
    for (int k = 0; k < 2; k++) {
        req.timestamp = DAY0 - DAY + 5;
        sign_ref(v, "main", MAIN_ID, MAIN_KEY, &req);
        req.timestamp = DAY0 - 7 * DAY;
        sign_ref(v, "main", MAIN_ID, MAIN_KEY, &req);
    }
    assert_true(vault_mem_protections() > after_tomorrow);
    expect_stats(v, 201, 6);
    assert_int_equal(key_count(v, "main"), 2);
    assert_false(has_key(v, "main", DAY0 - DAY, "gaap"));
    gw_vault_free(v);
}

/* The day changes: a new key each day, and a key is wiped once its day is two days past. */
static void test_sign_date_change(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(gw_vault_keygen(f->key, f->msg, sizeof f->msg), GW_OK);
    struct gw_vault *v = open_ok(f);
    put_ok(v, "main", MAIN_ID, MAIN_KEY);

    /* The last second of a day, then the first of the next: a new key, the right one. */
    set_clock(v, DAY0 - 1);
    struct gw_tc3_request day0 = seed_at(f, DAY0 - 1, "gaap");
    sign_ref(v, "main", MAIN_ID, MAIN_KEY, &day0);
    sign_ref(v, "main", MAIN_ID, MAIN_KEY, &day0);
    set_clock(v, DAY0);
    struct gw_tc3_request day1 = seed_at(f, DAY0, "gaap");
    sign_ref(v, "main", MAIN_ID, MAIN_KEY, &day1);
    sign_ref(v, "main", MAIN_ID, MAIN_KEY, &day1);
    expect_stats(v, 2, 2);
    /* Yesterday's key stays (a signer may still hold it) but no longer serves. */
    assert_int_equal(key_count(v, "main"), 2);
    assert_true(has_key(v, "main", DAY0 - 1, "gaap"));
    sign_ref(v, "main", MAIN_ID, MAIN_KEY, &day0); /* yesterday's request: a key for the call */
    expect_stats(v, 2, 3);
    assert_int_equal(atomic_load(&v->retired), 0);

    /* Another service on the same date is another key. */
    struct gw_tc3_request cvm = seed_at(f, DAY0 + 60, "cvm");
    sign_ref(v, "main", MAIN_ID, MAIN_KEY, &cvm);
    sign_ref(v, "main", MAIN_ID, MAIN_KEY, &cvm);
    expect_stats(v, 3, 4);
    assert_int_equal(key_count(v, "main"), 3);

    /* Two days after the first key's day: its next miss wipes it, and only it. */
    set_clock(v, DAY0 + DAY + 30);
    struct gw_tc3_request day2 = seed_at(f, DAY0 + DAY + 30, "gaap");
    sign_ref(v, "main", MAIN_ID, MAIN_KEY, &day2);
    assert_int_equal(atomic_load(&v->retired), 1);
    assert_false(has_key(v, "main", DAY0 - 1, "gaap"));
    assert_true(has_key(v, "main", DAY0, "gaap"));
    assert_true(has_key(v, "main", DAY0, "cvm"));
    assert_true(has_key(v, "main", DAY0 + DAY, "gaap"));
    assert_int_equal(key_count(v, "main"), 3);
    /* Nothing is wiped until a miss takes the lock; then every key two days old goes. */
    set_clock(v, DAY0 + 5 * DAY);
    struct gw_tc3_request day5 = seed_at(f, DAY0 + 5 * DAY, "gaap");
    assert_int_equal(key_count(v, "main"), 3);
    sign_ref(v, "main", MAIN_ID, MAIN_KEY, &day5);
    assert_int_equal(atomic_load(&v->retired), 4);
    assert_int_equal(key_count(v, "main"), 1);
    assert_true(has_key(v, "main", DAY0 + 5 * DAY, "gaap"));
    gw_vault_free(v);
}

/* Every slot holds a live key: further services are signed right, without the cache. */
static void test_sign_slots_full(void **state)
{
    struct fixture *f = *state;
    char service[16];
    assert_int_equal(gw_vault_keygen(f->key, f->msg, sizeof f->msg), GW_OK);
    struct gw_vault *v = open_ok(f);
    put_ok(v, "main", MAIN_ID, MAIN_KEY);
    set_clock(v, DAY0);
    for (int i = 0; i < VAULT_KEY_SLOTS + 2; i++) {
        snprintf(service, sizeof service, "svc%d", i);
        struct gw_tc3_request req = seed_at(f, DAY0 + i, service);
        sign_ref(v, "main", MAIN_ID, MAIN_KEY, &req);
        sign_ref(v, "main", MAIN_ID, MAIN_KEY, &req);
    }
    assert_int_equal(key_count(v, "main"), VAULT_KEY_SLOTS);
    /* The first eight are cached (one miss, one hit each); the last two miss both times. */
    expect_stats(v, VAULT_KEY_SLOTS, VAULT_KEY_SLOTS + 4);
    assert_false(has_key(v, "main", DAY0, "svc8"));
    gw_vault_free(v);
}

/* Replacing a credential's key drops the keys derived from the old one. */
static void test_sign_replace(void **state)
{
    struct fixture *f = *state;
    json_t *seed = vector_named(f, "seed-example");
    json_t *other = vector_named(f, "other-key");
    assert_int_equal(gw_vault_keygen(f->key, f->msg, sizeof f->msg), GW_OK);
    struct gw_vault *v = open_ok(f);
    put_vector(v, "main", seed);
    set_clock(v, (int64_t)json_integer_value(json_object_get(seed, "timestamp")));
    sign_expect(v, "main", seed);
    assert_int_equal(key_count(v, "main"), 1);

    put_ok(v, "main", vstr(other, "secretId"), vstr(other, "secretKey"));
    assert_int_equal(key_count(v, "main"), 0);
    struct gw_tc3_request req = request_of(seed);
    sign_ref(v, "main", vstr(other, "secretId"), vstr(other, "secretKey"), &req);
    struct gw_buf b;
    gw_buf_init(&b, GW_TC3_MAX_TEXT);
    assert_int_equal(gw_vault_sign(v, "main", &req, &b), GW_OK);
    assert_string_not_equal(b.data, vstr(seed, "authorization"));
    gw_buf_free(&b);
    set_clock(v, (int64_t)json_integer_value(json_object_get(other, "timestamp")));
    sign_expect(v, "main", other);
    gw_vault_free(v);
}

/*
 * Reads (or writes) the byte at p in a child process. Returns 0 if the child read want (or
 * wrote), the number of the signal that killed it, or -1 for anything else.
 */
static int child_touch(volatile unsigned char *p, unsigned char want, bool write)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        /* The default action, not a sanitizer's handler: the test expects the kernel's verdict. */
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = SIG_DFL;
        sigaction(SIGSEGV, &sa, NULL);
        sigaction(SIGBUS, &sa, NULL);
        if (write) {
            *p = want;
            _exit(0);
        }
        _exit(*p == want ? 0 : 3);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (WIFSIGNALED(status)) {
        return WTERMSIG(status);
    }
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* The SecretKey and the master key fault when read after signing; a signing key is read-only. */
static void test_key_memory_faults(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(gw_vault_keygen(f->key, f->msg, sizeof f->msg), GW_OK);
    struct gw_vault *v = open_ok(f);
    put_ok(v, "main", MAIN_ID, MAIN_KEY);
    struct cred *c = vault_find(v, GW_VAULT_CREDENTIAL, "main");
    assert_non_null(c);
    volatile unsigned char *secret_key = c->sec->key;

    /* The check can tell: readable while a writer has it open, the byte is the key's. */
    struct secret *s;
    pthread_mutex_lock(&c->lock);
    assert_int_equal(vault_secret_open(c, false, &s), GW_OK);
    assert_int_equal(child_touch(secret_key, (unsigned char)MAIN_KEY[0], false), 0);
    vault_secret_close(c);
    pthread_mutex_unlock(&c->lock);
    assert_int_equal(child_touch(secret_key, (unsigned char)MAIN_KEY[0], false), SIGSEGV);

    /* After a miss (derive), hits, and a signature for another day. */
    set_clock(v, DAY0);
    struct gw_tc3_request req = seed_at(f, DAY0, "gaap");
    sign_ref(v, "main", MAIN_ID, MAIN_KEY, &req);
    assert_int_equal(child_touch(secret_key, (unsigned char)MAIN_KEY[0], false), SIGSEGV);
    sign_ref(v, "main", MAIN_ID, MAIN_KEY, &req);
    req.timestamp = DAY0 - 30 * DAY;
    sign_ref(v, "main", MAIN_ID, MAIN_KEY, &req);
    assert_int_equal(child_touch(secret_key, (unsigned char)MAIN_KEY[0], false), SIGSEGV);
    assert_int_equal(child_touch(v->master, 0, false), SIGSEGV);

    /* The published signing key: readable by signers, never writable. */
    req.timestamp = DAY0;
    struct derived *d = (struct derived *)vault_key_find(c, DAY0 / DAY, "gaap");
    assert_non_null(d);
    assert_int_equal(child_touch(&d->key[0], d->key[0], false), 0);
    assert_int_equal(child_touch(&d->key[0], (unsigned char)(d->key[0] ^ 1), true), SIGSEGV);
    sign_ref(v, "main", MAIN_ID, MAIN_KEY, &req);

    /* And after a save, which reads the secret too. */
    assert_int_equal(gw_vault_save(v, f->store, f->msg, sizeof f->msg), GW_OK);
    assert_int_equal(child_touch(secret_key, (unsigned char)MAIN_KEY[0], false), SIGSEGV);
    assert_int_equal(child_touch(v->master, 0, false), SIGSEGV);
    gw_vault_free(v);
}

static void test_sign_errors(void **state)
{
    struct fixture *f = *state;
    json_t *seed = vector_named(f, "seed-example");
    struct gw_buf b;
    gw_buf_init(&b, GW_TC3_MAX_TEXT);

    assert_int_equal(gw_vault_keygen(f->key, f->msg, sizeof f->msg), GW_OK);
    struct gw_vault *v = open_ok(f);
    put_vector(v, "main", seed);
    assert_int_equal(gw_buf_append_str(&b, "kept"), GW_OK);

    struct gw_tc3_request req = request_of(seed);
    assert_int_equal(gw_vault_sign(v, "nope", &req, &b), GW_ERR_NOT_FOUND);
    assert_int_equal(gw_vault_sign(v, "", &req, &b), GW_ERR_NOT_FOUND);
    req.host = "gaap.tencentcloudapi.com\r\nX-Evil: 1";
    assert_int_equal(gw_vault_sign(v, "main", &req, &b), GW_ERR_INVALID);
    req = request_of(seed);
    req.action = "Describe\nProxies";
    assert_int_equal(gw_vault_sign(v, "main", &req, &b), GW_ERR_INVALID);
    req = request_of(seed);
    req.timestamp = -1;
    assert_int_equal(gw_vault_sign(v, "main", &req, &b), GW_ERR_INVALID);
    req = request_of(seed);
    assert_int_equal(gw_vault_sign(v, "main", NULL, &b), GW_ERR_INVALID);
    assert_int_equal(gw_vault_sign(NULL, "main", &req, &b), GW_ERR_INVALID);
    assert_string_equal(b.data, "kept");

    /* A caller's buffer too small for the answer stays as it was. */
    struct gw_buf small;
    gw_buf_init(&small, 16);
    assert_int_equal(gw_vault_sign(v, "main", &req, &small), GW_ERR_TOO_LARGE);
    assert_int_equal(small.len, 0);
    gw_buf_free(&small);

    /* After all that, it still signs. */
    sign_expect(v, "main", seed);
    gw_buf_free(&b);
    gw_vault_free(v);
}

#define SIGNERS 8
#define ROUNDS 1500

struct worker {
    struct gw_vault *vault;
    struct fixture *f;
    unsigned seed;
    size_t failures;
    size_t signatures;
    size_t old_dates;
};

static void *sign_worker(void *arg)
{
    static const char *const services[] = {"gaap", "cvm", "vpc"};
    struct worker *w = arg;
    size_t n = json_array_size(w->f->vectors);
    char name[32];
    struct gw_buf got, want;
    gw_buf_init(&got, GW_TC3_MAX_TEXT);
    gw_buf_init(&want, GW_TC3_MAX_TEXT);
    for (size_t round = 0; round < ROUNDS; round++) {
        size_t k = round * 7 + w->seed;
        struct gw_tc3_request req;
        const char *id = MAIN_ID, *key = MAIN_KEY;
        if (k % 16 == 0) {
            /* A vector of another day, with its own credential: a key for the call alone. */
            json_t *vec = json_array_get(w->f->vectors, k % n);
            snprintf(name, sizeof name, "v%02zu", k % n);
            req = request_of(vec);
            id = vstr(vec, "secretId");
            key = vstr(vec, "secretKey");
            w->old_dates++;
        } else {
            /* Now by the vault's clock, up to an hour back: the day may change meanwhile. */
            snprintf(name, sizeof name, "main");
            req = seed_at(w->f, fake_clock() - (int64_t)(k % 3600), services[k % 3]);
        }
        gw_buf_reset(&got);
        gw_buf_reset(&want);
        if (gw_vault_sign(w->vault, name, &req, &got) != GW_OK ||
            gw_tc3_sign(id, (const unsigned char *)key, strlen(key), &req, &want) != GW_OK ||
            strcmp(got.data, want.data) != 0) {
            w->failures++;
            continue;
        }
        w->signatures++;
    }
    gw_buf_free(&got);
    gw_buf_free(&want);
    return NULL;
}

/* Runs SIGNERS threads of sign_worker on v; returns the number of old-date requests signed. */
static size_t run_signers(struct fixture *f, struct gw_vault *v, bool cross_midnight)
{
    pthread_t threads[SIGNERS];
    struct worker workers[SIGNERS];
    for (size_t t = 0; t < SIGNERS; t++) {
        workers[t] = (struct worker){.vault = v, .f = f, .seed = (unsigned)t * 5};
        assert_int_equal(pthread_create(&threads[t], NULL, sign_worker, &workers[t]), 0);
    }
    /* Midnight passes while they sign: one day forward, never two (keymem.c says why). */
    for (int64_t s = 0; cross_midnight && s < 120; s++) {
        atomic_store(&fake_time, DAY0 + DAY - 60 + s);
        usleep(200);
    }
    size_t old_dates = 0;
    for (size_t t = 0; t < SIGNERS; t++) {
        assert_int_equal(pthread_join(threads[t], NULL), 0);
        assert_int_equal(workers[t].failures, 0);
        assert_int_equal(workers[t].signatures, ROUNDS);
        old_dates += workers[t].old_dates;
    }
    return old_dates;
}

/*
 * Eight threads sign with one credential at once, through the cache and around it, then while
 * the day changes: every answer is exactly gw_tc3_sign's.
 */
static void test_sign_threads(void **state)
{
    struct fixture *f = *state;
    uint64_t hits, misses;

    assert_int_equal(gw_vault_keygen(f->key, f->msg, sizeof f->msg), GW_OK);
    struct gw_vault *v = open_ok(f);
    put_all_vectors(f, v);
    put_ok(v, "main", MAIN_ID, MAIN_KEY);

    /* 23:00: every "main" request of the last hour is today's, so cached. */
    set_clock(v, DAY0 + DAY - 3600);
    size_t old_dates = run_signers(f, v, false);
    gw_vault_cache_stats(v, &hits, &misses);
    assert_int_equal(hits + misses, SIGNERS * ROUNDS);
    /* One miss per service: a signer that waited for the lock finds the key published. */
    assert_int_equal(misses, old_dates + 3);
    assert_int_equal(key_count(v, "main"), 3);

    /* 23:59 to 00:01: requests of both days, yesterday's signed around the cache. */
    set_clock(v, DAY0 + DAY - 60);
    run_signers(f, v, true);
    gw_vault_cache_stats(v, &hits, &misses);
    assert_int_equal(hits + misses, 2 * SIGNERS * ROUNDS);
    assert_true(key_count(v, "main") <= 6);
    assert_int_equal(atomic_load(&v->retired), 0);

    /* Two days later the first miss wipes every key of those days (how many there are depends
     * on whether the signers were still at work when midnight passed: 3 to 6). */
    size_t before = key_count(v, "main");
    assert_true(before >= 3);
    set_clock(v, DAY0 + 3 * DAY);
    struct gw_tc3_request req = seed_at(f, DAY0 + 3 * DAY, "gaap");
    sign_ref(v, "main", MAIN_ID, MAIN_KEY, &req);
    assert_int_equal(key_count(v, "main"), 1);
    assert_int_equal(atomic_load(&v->retired), before);
    gw_vault_free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_keygen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_file_checks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tampered_store, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_store, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_put, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_file_checks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_for_update, setup, teardown),
        cmocka_unit_test_setup_teardown(test_save_keeps_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sign_vectors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sign_vectors_cached, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sign_hot_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sign_date_change, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sign_slots_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sign_replace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_memory_faults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sign_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sign_threads, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
