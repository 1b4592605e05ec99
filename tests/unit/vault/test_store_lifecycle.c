/*
 * Unit tests for the store's lifecycle (gateway/vault/storekey.c): a master key from a passphrase
 * (Argon2id), the authenticated header (source, generation, salt, cost, key check), rollback
 * detection through the generation file, newer formats refused, and rekey between key files and
 * passphrases. Passphrase stores use crypto_pwhash's minimum cost ("insecure-test-only") so the
 * tests run fast.
 */
#define _GNU_SOURCE /* memmem */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vault/vault.h"
#include "vault/vault_int.h"

#define PASS "correct horse battery staple"
#define PASS2 "another passphrase"
#define CRED_ID "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE"
#define CRED_KEY "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE"

struct fixture {
    char dir[64];
    char key[PATH_MAX];
    char key2[PATH_MAX];
    char store[PATH_MAX];
    char gen[PATH_MAX + 16];
    char msg[512];
    struct gw_vault_kdf kdf;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "/tmp/tcgw-lifecycle-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->key, sizeof f->key, "%s/master.key", f->dir);
    snprintf(f->key2, sizeof f->key2, "%s/new.key", f->dir);
    snprintf(f->store, sizeof f->store, "%s/credentials.store", f->dir);
    snprintf(f->gen, sizeof f->gen, "%s.generation", f->store);
    assert_int_equal(gw_vault_kdf_named("insecure-test-only", &f->kdf), GW_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    DIR *d = opendir(f->dir);
    if (d != NULL) {
        struct dirent *e;
        char path[PATH_MAX];
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
                snprintf(path, sizeof path, "%s/%s", f->dir, e->d_name);
                if (unlink(path) != 0) {
                    rmdir(path);
                }
            }
        }
        closedir(d);
    }
    rmdir(f->dir);
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

static void write_file(const char *path, const void *buf, size_t n)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(buf, 1, n, fp), n);
    fclose(fp);
    assert_int_equal(chmod(path, 0600), 0);
}

static struct gw_vault_master by_pass(const char *p)
{
    struct gw_vault_master m = {.passphrase = (const unsigned char *)p,
                                .passphrase_len = strlen(p)};
    return m;
}

static struct gw_vault_master by_key(const char *k)
{
    struct gw_vault_master m = {.key_file = k};
    return m;
}

static enum gw_err open_with(struct fixture *f, struct gw_vault_master m, unsigned flags,
                             struct gw_vault **out)
{
    f->msg[0] = '\0';
    return gw_vault_open_master(&m, f->store, flags, out, f->msg, sizeof f->msg);
}

/* Opens with m expecting err; frees the vault if it opened. */
static void expect_open(struct fixture *f, struct gw_vault_master m, enum gw_err want)
{
    struct gw_vault *v = NULL;
    enum gw_err err = open_with(f, m, 0, &v);
    if (err != want) {
        fail_msg("open gave %s, not %s: %s", gw_err_str(err), gw_err_str(want), f->msg);
    }
    gw_vault_free(v);
}

/* A passphrase store holding one credential, saved twice: generation 2. */
static void make_pass_store(struct fixture *f)
{
    struct gw_vault *v = NULL;
    assert_int_equal(gw_vault_init_passphrase(f->store, (const unsigned char *)PASS, strlen(PASS),
                                              &f->kdf, f->msg, sizeof f->msg),
                     GW_OK);
    assert_int_equal(open_with(f, by_pass(PASS), GW_VAULT_OPEN_UPDATE, &v), GW_OK);
    assert_int_equal(gw_vault_put(v, "prod", CRED_ID, strlen(CRED_ID), CRED_KEY, strlen(CRED_KEY),
                                  f->msg, sizeof f->msg),
                     GW_OK);
    assert_int_equal(gw_vault_save(v, f->store, f->msg, sizeof f->msg), GW_OK);
    gw_vault_free(v);
}

static uint64_t generation_file(struct fixture *f)
{
    unsigned char b[64] = {0};
    size_t n = read_file(f->gen, b, sizeof b - 1);
    b[n] = '\0';
    return strtoull((const char *)b, NULL, 10);
}

/* ---- Passphrase ---- */

static void test_passphrase_round_trip(void **state)
{
    struct fixture *f = *state;
    enum gw_vault_key_source src;
    uint64_t gen = 0;
    unsigned char file[4096];
    struct gw_vault *v = NULL;

    make_pass_store(f);
    assert_int_equal(gw_vault_store_info(f->store, &src, &gen, f->msg, sizeof f->msg), GW_OK);
    assert_int_equal(src, GW_VAULT_KEY_PASSPHRASE);
    assert_int_equal(gen, 2);
    assert_int_equal(generation_file(f), 2);

    size_t n = read_file(f->store, file, sizeof file);
    assert_memory_equal(file, "TCGWSTORE3", 10);
    assert_int_equal(file[10], GW_VAULT_KEY_PASSPHRASE);
    assert_true(n > VAULT_HEADER_LEN);
    assert_null(memmem(file, n, CRED_KEY, strlen(CRED_KEY)));
    assert_null(memmem(file, n, PASS, strlen(PASS)));

    assert_int_equal(open_with(f, by_pass(PASS), 0, &v), GW_OK);
    assert_true(gw_vault_has(v, "prod"));
    assert_int_equal(gw_vault_source(v), GW_VAULT_KEY_PASSPHRASE);
    assert_int_equal(gw_vault_generation(v), 2);
    gw_vault_free(v);

    /* Every save goes one generation up, in the store and in the generation file. */
    assert_int_equal(open_with(f, by_pass(PASS), GW_VAULT_OPEN_UPDATE, &v), GW_OK);
    assert_int_equal(gw_vault_save(v, f->store, f->msg, sizeof f->msg), GW_OK);
    assert_int_equal(gw_vault_generation(v), 3);
    assert_int_equal(gw_vault_save(v, f->store, f->msg, sizeof f->msg), GW_OK);
    assert_int_equal(gw_vault_generation(v), 4);
    gw_vault_free(v);
    assert_int_equal(generation_file(f), 4);

    /* init refuses an existing store. */
    assert_int_equal(gw_vault_init_passphrase(f->store, (const unsigned char *)PASS, strlen(PASS),
                                              &f->kdf, f->msg, sizeof f->msg),
                     GW_ERR_EXISTS);
    assert_non_null(strstr(f->msg, "rekey"));
}

static void test_wrong_or_missing_passphrase(void **state)
{
    struct fixture *f = *state;
    make_pass_store(f);
    expect_open(f, by_pass("wrong"), GW_ERR_CRYPTO);
    assert_non_null(strstr(f->msg, "wrong passphrase"));
    assert_null(strstr(f->msg, PASS));
    /* A key file is no use for a passphrase store: the message says what is needed. */
    assert_int_equal(gw_vault_keygen(f->key, f->msg, sizeof f->msg), GW_OK);
    expect_open(f, by_key(f->key), GW_ERR_INVALID);
    assert_non_null(strstr(f->msg, "protected by a passphrase"));
    assert_non_null(strstr(f->msg, "--passphrase-fd"));
    /* Both given: the header picks the passphrase. */
    struct gw_vault_master both = by_pass(PASS);
    both.key_file = f->key;
    expect_open(f, both, GW_OK);
    /* A passphrase is no use for a key-file store. */
    assert_int_equal(unlink(f->store), 0);
    assert_int_equal(unlink(f->gen), 0);
    struct gw_vault *v = NULL;
    assert_int_equal(open_with(f, by_key(f->key), GW_VAULT_OPEN_UPDATE, &v), GW_OK);
    assert_int_equal(gw_vault_save(v, f->store, f->msg, sizeof f->msg), GW_OK);
    gw_vault_free(v);
    expect_open(f, by_pass(PASS), GW_ERR_INVALID);
    assert_non_null(strstr(f->msg, "master key file"));
    /* No store and only a passphrase: say how to make one. */
    assert_int_equal(unlink(f->store), 0);
    expect_open(f, by_pass(PASS), GW_ERR_NOT_FOUND);
    assert_non_null(strstr(f->msg, "store init --passphrase"));
}

static void test_kdf_names(void **state)
{
    (void)state;
    struct gw_vault_kdf k;
    assert_int_equal(gw_vault_kdf_named("moderate", &k), GW_OK);
    assert_int_equal(k.opslimit, crypto_pwhash_OPSLIMIT_MODERATE);
    assert_int_equal(k.memlimit, crypto_pwhash_MEMLIMIT_MODERATE);
    assert_int_equal(gw_vault_kdf_named("interactive", &k), GW_OK);
    assert_int_equal(gw_vault_kdf_named("sensitive", &k), GW_OK);
    assert_int_equal(gw_vault_kdf_named("fast", &k), GW_ERR_INVALID);
    assert_int_equal(gw_vault_kdf_named(NULL, &k), GW_ERR_INVALID);
}

/* ---- The header is authenticated ---- */

static void test_header_tampering(void **state)
{
    struct fixture *f = *state;
    unsigned char orig[4096], bad[4096];
    make_pass_store(f);
    size_t n = read_file(f->store, orig, sizeof orig);

    /* Salt (19..34): another key, so the key check says wrong passphrase or modified header. */
    memcpy(bad, orig, n);
    bad[20] ^= 1;
    write_file(f->store, bad, n);
    expect_open(f, by_pass(PASS), GW_ERR_CRYPTO);
    assert_non_null(strstr(f->msg, "wrong passphrase (or its header was modified)"));

    /* Cost within bounds but changed (opslimit 35..42): the same. */
    memcpy(bad, orig, n);
    bad[42] ^= 2; /* 1 -> 3 passes */
    write_file(f->store, bad, n);
    expect_open(f, by_pass(PASS), GW_ERR_CRYPTO);

    /* Cost out of bounds (memlimit 43..50): refused before any work. */
    memcpy(bad, orig, n);
    bad[43] = 0xff;
    write_file(f->store, bad, n);
    expect_open(f, by_pass(PASS), GW_ERR_INVALID);
    assert_non_null(strstr(f->msg, "header"));

    /* Generation (11..18): the key is right, authentication fails: damaged or modified. */
    memcpy(bad, orig, n);
    bad[18] ^= 0x40;
    write_file(f->store, bad, n);
    expect_open(f, by_pass(PASS), GW_ERR_CRYPTO);
    assert_non_null(strstr(f->msg, "damaged or was modified"));

    /* Key source: a passphrase store turned into a key-file one opens with no key file. */
    memcpy(bad, orig, n);
    bad[10] = GW_VAULT_KEY_FILE;
    write_file(f->store, bad, n);
    expect_open(f, by_pass(PASS), GW_ERR_INVALID);
    bad[10] = 7;
    write_file(f->store, bad, n);
    expect_open(f, by_pass(PASS), GW_ERR_INVALID);

    /* Key check (51..66), nonce, ciphertext, tag, each flipped: never opens. */
    const size_t positions[] = {51, 66, 67, 90, 91, 100, n / 2, n - 17, n - 1};
    for (size_t i = 0; i < sizeof positions / sizeof *positions; i++) {
        memcpy(bad, orig, n);
        bad[positions[i]] ^= 0x01;
        write_file(f->store, bad, n);
        expect_open(f, by_pass(PASS), GW_ERR_CRYPTO);
    }
    /* Truncated anywhere, or one byte more. */
    const size_t sizes[] = {0, 9, 10, 50, 66, 90, 91, 120, n - 1};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        struct gw_vault *v = NULL;
        write_file(f->store, orig, sizes[i]);
        enum gw_err err = open_with(f, by_pass(PASS), 0, &v);
        gw_vault_free(v);
        if (err != GW_ERR_CRYPTO && err != GW_ERR_INVALID) {
            fail_msg("a store cut to %zu bytes gave %s", sizes[i], gw_err_str(err));
        }
    }
    memcpy(bad, orig, n);
    bad[n] = 0;
    write_file(f->store, bad, n + 1);
    expect_open(f, by_pass(PASS), GW_ERR_CRYPTO);
    /* The original still opens. */
    write_file(f->store, orig, n);
    expect_open(f, by_pass(PASS), GW_OK);
}

/* Two stores' bodies swapped under each other's headers: each is refused. */
static void test_swapped_bodies(void **state)
{
    struct fixture *f = *state;
    unsigned char a[4096], b[4096];
    make_pass_store(f);
    size_t na = read_file(f->store, a, sizeof a);
    struct gw_vault *v = NULL;
    assert_int_equal(open_with(f, by_pass(PASS), GW_VAULT_OPEN_UPDATE, &v), GW_OK);
    assert_int_equal(
        gw_vault_put(v, "dev", CRED_ID, strlen(CRED_ID), "otherkey", 8, f->msg, sizeof f->msg),
        GW_OK);
    assert_int_equal(gw_vault_save(v, f->store, f->msg, sizeof f->msg), GW_OK);
    gw_vault_free(v);
    size_t nb = read_file(f->store, b, sizeof b);
    /* b's header (generation 3) over a's body and nonce. */
    unsigned char mix[4096];
    memcpy(mix, b, VAULT_HEADER3_AD_LEN);
    memcpy(mix + VAULT_HEADER3_AD_LEN, a + VAULT_HEADER3_AD_LEN, na - VAULT_HEADER3_AD_LEN);
    write_file(f->store, mix, na);
    expect_open(f, by_pass(PASS), GW_ERR_CRYPTO);
    (void)nb;
}

/* ---- Rollback ---- */

static void test_rollback_detected(void **state)
{
    struct fixture *f = *state;
    unsigned char old[4096];
    struct gw_vault *v = NULL;
    make_pass_store(f); /* generation 2 */
    size_t n = read_file(f->store, old, sizeof old);
    assert_int_equal(open_with(f, by_pass(PASS), GW_VAULT_OPEN_UPDATE, &v), GW_OK);
    assert_int_equal(gw_vault_remove(v, GW_VAULT_CREDENTIAL, "prod"), GW_OK);
    assert_int_equal(gw_vault_save(v, f->store, f->msg, sizeof f->msg), GW_OK); /* 3 */
    gw_vault_free(v);

    /* The older copy put back: refused, naming both generations and the way out. */
    write_file(f->store, old, n);
    expect_open(f, by_pass(PASS), GW_ERR_CRYPTO);
    assert_non_null(strstr(f->msg, "generation 2"));
    assert_non_null(strstr(f->msg, "generation 3"));
    assert_non_null(strstr(f->msg, "tcgw store accept-rollback"));
    v = NULL;
    assert_int_equal(open_with(f, by_pass(PASS), GW_VAULT_OPEN_UPDATE, &v), GW_ERR_CRYPTO);

    /* Accepted on purpose: saved above every generation seen, and older copies stay refused. */
    assert_int_equal(
        open_with(f, by_pass(PASS), GW_VAULT_OPEN_UPDATE | GW_VAULT_OPEN_ACCEPT_ROLLBACK, &v),
        GW_OK);
    assert_true(gw_vault_has(v, "prod"));
    assert_int_equal(gw_vault_save(v, f->store, f->msg, sizeof f->msg), GW_OK);
    assert_int_equal(gw_vault_generation(v), 4);
    gw_vault_free(v);
    assert_int_equal(generation_file(f), 4);
    expect_open(f, by_pass(PASS), GW_OK);
    unsigned char now[4096];
    size_t m = read_file(f->store, now, sizeof now);
    write_file(f->store, old, n);
    expect_open(f, by_pass(PASS), GW_ERR_CRYPTO);
    write_file(f->store, now, m);

    /* A damaged generation file is reported, not ignored. */
    write_file(f->gen, "x\n", 2);
    expect_open(f, by_pass(PASS), GW_ERR_INVALID);
    assert_non_null(strstr(f->msg, ".generation"));

    /* The limit: whoever replaces (or deletes) the generation file too is not caught. */
    assert_int_equal(unlink(f->gen), 0);
    write_file(f->store, old, n);
    expect_open(f, by_pass(PASS), GW_OK);
}

/* A store of an older format is generation 0: after a format-3 save, putting it back is a
 * rollback; the format itself opens (test_vault_callers covers formats 1 and 2). */
static void test_newer_format_refused(void **state)
{
    struct fixture *f = *state;
    unsigned char file[4096];
    make_pass_store(f);
    size_t n = read_file(f->store, file, sizeof file);
    static const char *const newer[] = {"TCGWSTORE4", "TCGWSTORE9"};
    for (size_t i = 0; i < 2; i++) {
        memcpy(file, newer[i], 10);
        write_file(f->store, file, n);
        expect_open(f, by_pass(PASS), GW_ERR_INVALID);
        assert_non_null(strstr(f->msg, "newer tcgw"));
        assert_non_null(strstr(f->msg, "upgrade"));
        enum gw_vault_key_source src;
        assert_int_equal(gw_vault_store_info(f->store, &src, NULL, f->msg, sizeof f->msg),
                         GW_ERR_INVALID);
    }
    memcpy(file, "NOTASTORE!", 10);
    write_file(f->store, file, n);
    expect_open(f, by_pass(PASS), GW_ERR_INVALID);
    assert_non_null(strstr(f->msg, "not a tcgw credential store"));
}

/* ---- Rekey ---- */

static void token_hash_of(struct gw_vault *v, unsigned char out[GW_VAULT_TOKEN_HASH_LEN])
{
    static const unsigned char token[] = "tcgw_caller_token_example";
    assert_int_equal(gw_vault_token_hash(v, token, sizeof token - 1, out), GW_OK);
}

static void test_rekey_round_trips(void **state)
{
    struct fixture *f = *state;
    unsigned char h0[GW_VAULT_TOKEN_HASH_LEN], h[GW_VAULT_TOKEN_HASH_LEN];
    char name[GW_VAULT_MAX_NAME + 1], tail[5];
    struct gw_vault *v = NULL;

    /* A key-file store, as `secrets put` makes one. */
    assert_int_equal(gw_vault_keygen(f->key, f->msg, sizeof f->msg), GW_OK);
    assert_int_equal(gw_vault_open_for_update(f->key, f->store, &v, f->msg, sizeof f->msg), GW_OK);
    assert_int_equal(gw_vault_put(v, "prod", CRED_ID, strlen(CRED_ID), CRED_KEY, strlen(CRED_KEY),
                                  f->msg, sizeof f->msg),
                     GW_OK);
    token_hash_of(v, h0);
    assert_int_equal(gw_vault_save(v, f->store, f->msg, sizeof f->msg), GW_OK);
    /* Rekey without the lock is refused. */
    gw_vault_free(v);
    assert_int_equal(gw_vault_open(f->key, f->store, &v, f->msg, sizeof f->msg), GW_OK);
    struct gw_vault_master to = by_pass(PASS);
    assert_int_equal(gw_vault_rekey(v, &to, &f->kdf, f->msg, sizeof f->msg), GW_ERR_INVALID);
    gw_vault_free(v);

    /* key file -> passphrase */
    assert_int_equal(open_with(f, by_key(f->key), GW_VAULT_OPEN_UPDATE, &v), GW_OK);
    assert_int_equal(gw_vault_rekey(v, &to, &f->kdf, f->msg, sizeof f->msg), GW_OK);
    assert_int_equal(gw_vault_save(v, f->store, f->msg, sizeof f->msg), GW_OK);
    gw_vault_free(v);
    expect_open(f, by_key(f->key), GW_ERR_INVALID); /* says: a passphrase is needed */
    assert_int_equal(open_with(f, by_pass(PASS), 0, &v), GW_OK);
    assert_int_equal(gw_vault_describe(v, 0, name, tail), GW_OK);
    assert_string_equal(name, "prod");
    assert_string_equal(tail, "MPLE");
    token_hash_of(v, h);
    assert_memory_equal(h, h0, sizeof h); /* callers' token hashes survive a rekey */
    gw_vault_free(v);

    /* passphrase -> passphrase: the old one no longer opens it */
    assert_int_equal(open_with(f, by_pass(PASS), GW_VAULT_OPEN_UPDATE, &v), GW_OK);
    struct gw_vault_master to2 = by_pass(PASS2);
    assert_int_equal(gw_vault_rekey(v, &to2, &f->kdf, f->msg, sizeof f->msg), GW_OK);
    assert_int_equal(gw_vault_save(v, f->store, f->msg, sizeof f->msg), GW_OK);
    gw_vault_free(v);
    expect_open(f, by_pass(PASS), GW_ERR_CRYPTO);
    expect_open(f, by_pass(PASS2), GW_OK);

    /* passphrase -> a new key file; the old key file does not open it */
    assert_int_equal(gw_vault_keygen(f->key2, f->msg, sizeof f->msg), GW_OK);
    assert_int_equal(open_with(f, by_pass(PASS2), GW_VAULT_OPEN_UPDATE, &v), GW_OK);
    struct gw_vault_master to3 = by_key(f->key2);
    assert_int_equal(gw_vault_rekey(v, &to3, NULL, f->msg, sizeof f->msg), GW_OK);
    assert_int_equal(gw_vault_save(v, f->store, f->msg, sizeof f->msg), GW_OK);
    gw_vault_free(v);
    expect_open(f, by_key(f->key), GW_ERR_CRYPTO);
    assert_non_null(strstr(f->msg, "wrong master key file"));
    assert_int_equal(open_with(f, by_key(f->key2), 0, &v), GW_OK);
    assert_true(gw_vault_has(v, "prod"));
    assert_int_equal(gw_vault_source(v), GW_VAULT_KEY_FILE);
    token_hash_of(v, h);
    assert_memory_equal(h, h0, sizeof h);
    gw_vault_free(v);

    /* Bad targets: an empty passphrase, a cost out of bounds, a missing key file. */
    assert_int_equal(open_with(f, by_key(f->key2), GW_VAULT_OPEN_UPDATE, &v), GW_OK);
    struct gw_vault_master empty = by_pass("");
    assert_int_equal(gw_vault_rekey(v, &empty, &f->kdf, f->msg, sizeof f->msg), GW_ERR_INVALID);
    struct gw_vault_kdf huge = {.opslimit = 1000, .memlimit = 1ull << 40};
    assert_int_equal(gw_vault_rekey(v, &to, &huge, f->msg, sizeof f->msg), GW_ERR_INVALID);
    char missing[PATH_MAX + 16];
    snprintf(missing, sizeof missing, "%s/none.key", f->dir);
    struct gw_vault_master none = by_key(missing);
    assert_int_equal(gw_vault_rekey(v, &none, NULL, f->msg, sizeof f->msg), GW_ERR_NOT_FOUND);
    gw_vault_free(v);
    expect_open(f, by_key(f->key2), GW_OK); /* failed rekeys changed nothing */
}

/* A rekey whose replace fails leaves the old store, under the old key, intact. */
static void test_rekey_failed_replace(void **state)
{
    struct fixture *f = *state;
    unsigned char before[4096], after[4096];
    char aside[PATH_MAX + 16];
    struct gw_vault *v = NULL;
    make_pass_store(f);
    size_t n = read_file(f->store, before, sizeof before);

    assert_int_equal(open_with(f, by_pass(PASS), GW_VAULT_OPEN_UPDATE, &v), GW_OK);
    struct gw_vault_master to = by_pass(PASS2);
    assert_int_equal(gw_vault_rekey(v, &to, &f->kdf, f->msg, sizeof f->msg), GW_OK);
    /* The store's path is taken by a directory at the moment of the replace. */
    snprintf(aside, sizeof aside, "%s.aside", f->store);
    assert_int_equal(rename(f->store, aside), 0);
    assert_int_equal(mkdir(f->store, 0700), 0);
    assert_int_not_equal(gw_vault_save(v, f->store, f->msg, sizeof f->msg), GW_OK);
    gw_vault_free(v);
    assert_int_equal(rmdir(f->store), 0);
    assert_int_equal(rename(aside, f->store), 0);

    size_t m = read_file(f->store, after, sizeof after);
    assert_int_equal(m, n);
    assert_memory_equal(after, before, n);
    assert_int_equal(generation_file(f), 2);
    expect_open(f, by_pass(PASS), GW_OK);
    expect_open(f, by_pass(PASS2), GW_ERR_CRYPTO);
    /* No temporary file left behind. */
    DIR *d = opendir(f->dir);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        assert_null(strstr(e->d_name, ".tmp."));
    }
    closedir(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_passphrase_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_or_missing_passphrase, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kdf_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_header_tampering, setup, teardown),
        cmocka_unit_test_setup_teardown(test_swapped_bodies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollback_detected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_format_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rekey_round_trips, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rekey_failed_replace, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
