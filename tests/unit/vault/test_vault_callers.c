/*
 * Unit tests for gateway/vault/: caller keys (the second kind of entry), the store formats that
 * hold them (2, and 1 still read), gw_vault_verify, and gw_vault_token_hash.
 */
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
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vault/vault.h"
#include "vault/vault_int.h" /* the clock, the slots, the protection count: to look inside */

#define DAY0 ((int64_t)1764633600) /* 2025-12-02 00:00:00 UTC */
#define DAY ((int64_t)86400)
#define CRED_ID "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE"
#define CRED_KEY "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE"
#define BOT_ID "AKIDtcgwBOT0000000000000000000000001"
#define BOT_KEY "botkey0123456789abcdefghijklmnop"

struct fixture {
    char dir[64];
    char key[PATH_MAX];
    char store[PATH_MAX];
    char msg[512];
    json_t *root;
    json_t *vectors; /* the "vectors" array of tests/data/tc3-vectors.json */
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "/tmp/tcgw-vaultc-XXXXXX");
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
    assert_int_equal(gw_vault_keygen(f->key, f->msg, sizeof f->msg), GW_OK);
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
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
                continue;
            }
            snprintf(path, sizeof path, "%s/%s", f->dir, e->d_name);
            unlink(path);
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

static void write_file(const char *path, const void *buf, size_t n)
{
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, buf, n), (ssize_t)n);
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

static int64_t vtime(json_t *v)
{
    json_t *t = json_object_get(v, "timestamp");
    return json_is_integer(t) ? (int64_t)json_integer_value(t)
                              : strtoll(vstr(v, "timestamp"), NULL, 10);
}

static struct gw_vault *open_ok(struct fixture *f, const char *key)
{
    struct gw_vault *v = NULL;
    enum gw_err err = gw_vault_open(key, f->store, &v, f->msg, sizeof f->msg);
    if (err != GW_OK) {
        fail_msg("open: %s: %s", gw_err_str(err), f->msg);
    }
    return v;
}

static enum gw_err open_err(struct fixture *f)
{
    struct gw_vault *v = NULL;
    f->msg[0] = '\0';
    enum gw_err err = gw_vault_open(f->key, f->store, &v, f->msg, sizeof f->msg);
    gw_vault_free(v);
    return err;
}

static void put_cred(struct gw_vault *v, const char *name, const char *id, const char *key)
{
    char msg[256];
    enum gw_err err = gw_vault_put(v, name, id, strlen(id), key, strlen(key), msg, sizeof msg);
    if (err != GW_OK) {
        fail_msg("put %s: %s: %s", name, gw_err_str(err), msg);
    }
}

static void put_caller(struct gw_vault *v, const char *name, const char *id, const char *key)
{
    char msg[256];
    enum gw_err err =
        gw_vault_put_caller_key(v, name, id, strlen(id), key, strlen(key), msg, sizeof msg);
    if (err != GW_OK) {
        fail_msg("put caller key %s: %s: %s", name, gw_err_str(err), msg);
    }
}

static void save_ok(struct fixture *f, struct gw_vault *v)
{
    enum gw_err err = gw_vault_save(v, f->store, f->msg, sizeof f->msg);
    if (err != GW_OK) {
        fail_msg("save: %s: %s", gw_err_str(err), f->msg);
    }
}

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

static void expect_stats(struct gw_vault *v, uint64_t hits, uint64_t misses)
{
    uint64_t h, m;
    gw_vault_cache_stats(v, &h, &m);
    assert_int_equal(h, hits);
    assert_int_equal(m, misses);
}

/* Published signing keys of the entry (kind, name). */
static size_t key_count(struct gw_vault *v, enum gw_vault_kind kind, const char *name)
{
    struct cred *c = vault_find(v, kind, name);
    assert_non_null(c);
    size_t n = 0;
    for (size_t i = 0; i < VAULT_KEY_SLOTS; i++) {
        n += atomic_load(&c->keys[i]) != NULL;
    }
    return n;
}

/* A request to service at time t, as a caller's SDK would sign it. */
static struct gw_tc3_request request_at(int64_t t, const char *service)
{
    static const char payload[] = "{\"Limit\":1}";
    struct gw_tc3_request req = {
        .service = service,
        .host = "gaap.tencentcloudapi.com",
        .timestamp = t,
        .content_type = "application/json; charset=utf-8",
        .payload = (const unsigned char *)payload,
        .payload_len = sizeof payload - 1,
        .action = "DescribeProxies",
    };
    return req;
}

/* What a caller sends and the gateway recomputes: the string to sign, its date and signature. */
struct signed_call {
    char sts[GW_TC3_MAX_TEXT + 1];
    size_t sts_len;
    char date[GW_TC3_DATE_LEN + 1];
    char sig[GW_TC3_HEX_LEN + 1];
};

/*
 * Signs req with (id, key) through gw_tc3_sign, the tool signer that shares no state with the
 * vault, and takes the signature out of its Authorization value.
 */
static void sign_independently(const char *id, const char *key, const struct gw_tc3_request *req,
                               struct signed_call *out)
{
    struct gw_buf auth, sts;
    gw_buf_init(&auth, GW_TC3_MAX_TEXT);
    gw_buf_init(&sts, GW_TC3_MAX_TEXT);
    assert_int_equal(gw_tc3_sign(id, (const unsigned char *)key, strlen(key), req, &auth), GW_OK);
    assert_int_equal(gw_tc3_string_to_sign(req, &sts), GW_OK);
    assert_int_equal(gw_tc3_date(req->timestamp, out->date), GW_OK);
    const char *at = strstr(auth.data, "Signature=");
    assert_non_null(at);
    at += strlen("Signature=");
    assert_int_equal(strlen(at), GW_TC3_HEX_LEN);
    memcpy(out->sig, at, GW_TC3_HEX_LEN + 1);
    assert_true(sts.len <= GW_TC3_MAX_TEXT);
    memcpy(out->sts, sts.data, sts.len);
    out->sts[sts.len] = '\0';
    out->sts_len = sts.len;
    gw_buf_free(&auth);
    gw_buf_free(&sts);
}

static enum gw_err verify_call(struct gw_vault *v, const char *caller, const char *id,
                               const struct signed_call *c, const char *service)
{
    return gw_vault_verify(v, caller, id, c->date, service, c->sts, c->sts_len, c->sig);
}

/* A hex digit other than h. */
static char other_hex(char h)
{
    return h == '0' ? '1' : '0';
}

/* ---- Store files built by hand: both formats ---- */

struct plain {
    unsigned char b[8192];
    size_t n;
};

static void plain_u16(struct plain *p, size_t v)
{
    p->b[p->n++] = (unsigned char)(v >> 8);
    p->b[p->n++] = (unsigned char)v;
}

static void plain_count(struct plain *p, uint32_t count)
{
    p->n = 0;
    p->b[p->n++] = (unsigned char)(count >> 24);
    p->b[p->n++] = (unsigned char)(count >> 16);
    p->b[p->n++] = (unsigned char)(count >> 8);
    p->b[p->n++] = (unsigned char)count;
}

/* Appends an entry; kind < 0: version 1, no kind byte. */
static void plain_entry(struct plain *p, int kind, const char *name, const char *id,
                        const char *key)
{
    if (kind >= 0) {
        p->b[p->n++] = (unsigned char)kind;
    }
    const char *fields[] = {name, id, key};
    for (size_t i = 0; i < 3; i++) {
        size_t len = strlen(fields[i]);
        plain_u16(p, len);
        memcpy(p->b + p->n, fields[i], len);
        p->n += len;
    }
}

/* Encrypts p as the store, with magic as the header and additional data, under key_path's key. */
static void write_store(struct fixture *f, const char *key_path, const char *magic,
                        const struct plain *p)
{
    unsigned char master[GW_VAULT_MASTER_KEY_LEN];
    static unsigned char file[10 + 24 + sizeof(struct plain) + 16];
    unsigned long long ct_len = 0;
    assert_int_equal(read_file(key_path, master, sizeof master), GW_VAULT_MASTER_KEY_LEN);
    memcpy(file, magic, 10);
    randombytes_buf(file + 10, 24);
    assert_int_equal(crypto_aead_xchacha20poly1305_ietf_encrypt(file + 34, &ct_len, p->b, p->n,
                                                                file, 10, NULL, file + 10, master),
                     0);
    sodium_memzero(master, sizeof master);
    write_file(f->store, file, 34 + (size_t)ct_len);
}

/* ---- Entries of two kinds ---- */

static void test_kinds_put_has_remove(void **state)
{
    struct fixture *f = *state;
    char name[GW_VAULT_MAX_NAME + 1], tail[5], msg[256];
    struct gw_vault *v = open_ok(f, f->key);

    put_cred(v, "alpha", CRED_ID, CRED_KEY);
    put_caller(v, "alpha", BOT_ID, BOT_KEY); /* the same name in the other kind */
    put_caller(v, "bot", "AKIDtcgwBOT2", "k2");

    /* Credentials only in count, describe and has. */
    assert_int_equal(gw_vault_count(v), 1);
    assert_int_equal(gw_vault_describe(v, 0, name, tail), GW_OK);
    assert_string_equal(name, "alpha");
    assert_string_equal(tail, "MPLE");
    assert_int_equal(gw_vault_describe(v, 1, name, tail), GW_ERR_NOT_FOUND);
    assert_true(gw_vault_has(v, "alpha"));
    assert_false(gw_vault_has(v, "bot"));
    assert_true(gw_vault_has_caller_key(v, "alpha"));
    assert_true(gw_vault_has_caller_key(v, "bot"));
    assert_false(gw_vault_has_caller_key(v, "nobody"));
    assert_false(gw_vault_has_caller_key(v, NULL));
    assert_false(gw_vault_has_caller_key(NULL, "bot"));

    /* Replacing a caller key keeps one entry. */
    put_caller(v, "bot", "AKIDtcgwBOT3", "k3");
    assert_int_equal(vault_find(v, GW_VAULT_CALLER_KEY, "bot") != NULL, 1);
    assert_int_equal(v->tables[GW_VAULT_CALLER_KEY].count, 2);

    /* Removing one kind leaves the other. */
    assert_int_equal(gw_vault_remove(v, GW_VAULT_CALLER_KEY, "alpha"), GW_OK);
    assert_false(gw_vault_has_caller_key(v, "alpha"));
    assert_true(gw_vault_has(v, "alpha"));
    assert_int_equal(gw_vault_remove(v, GW_VAULT_CALLER_KEY, "alpha"), GW_ERR_NOT_FOUND);
    assert_int_equal(gw_vault_remove(v, GW_VAULT_CREDENTIAL, "bot"), GW_ERR_NOT_FOUND);
    assert_true(gw_vault_has_caller_key(v, "bot"));
    assert_int_equal(gw_vault_remove(v, GW_VAULT_CREDENTIAL, "alpha"), GW_OK);
    assert_false(gw_vault_has(v, "alpha"));
    assert_int_equal(gw_vault_count(v), 0);
    assert_int_equal(gw_vault_remove(v, (enum gw_vault_kind)7, "bot"), GW_ERR_INVALID);
    assert_int_equal(gw_vault_remove(v, GW_VAULT_CALLER_KEY, NULL), GW_ERR_INVALID);
    assert_int_equal(gw_vault_remove(NULL, GW_VAULT_CALLER_KEY, "bot"), GW_ERR_INVALID);
    assert_true(gw_vault_has_caller_key(v, "bot"));

    /* A removed name can come back, in the middle of the table too. */
    put_caller(v, "aaa", "ID-A", "ka");
    put_caller(v, "zzz", "ID-Z", "kz");
    assert_int_equal(gw_vault_remove(v, GW_VAULT_CALLER_KEY, "bot"), GW_OK);
    put_caller(v, "bot", "ID-B", "kb");
    assert_int_equal(v->tables[GW_VAULT_CALLER_KEY].count, 3);
    assert_string_equal(v->tables[GW_VAULT_CALLER_KEY].entries[0]->name, "aaa");
    assert_string_equal(v->tables[GW_VAULT_CALLER_KEY].entries[1]->name, "bot");
    assert_string_equal(v->tables[GW_VAULT_CALLER_KEY].entries[2]->name, "zzz");

    /* The rules of gw_vault_put, naming the kind and never echoing a value. */
    assert_int_equal(gw_vault_put_caller_key(v, "a b", "ID", 2, "K", 1, msg, sizeof msg),
                     GW_ERR_INVALID);
    assert_non_null(strstr(msg, "caller key name"));
    assert_int_equal(gw_vault_put_caller_key(v, "x", "SECRET ID", 9, "K", 1, msg, sizeof msg),
                     GW_ERR_INVALID);
    assert_non_null(strstr(msg, "SecretId"));
    assert_null(strstr(msg, "SECRET"));
    assert_int_equal(gw_vault_put_caller_key(v, "x", "ID", 2, "SECRET\rKEY", 10, msg, sizeof msg),
                     GW_ERR_INVALID);
    assert_non_null(strstr(msg, "SecretKey"));
    assert_null(strstr(msg, "SECRET"));
    assert_int_equal(gw_vault_put_caller_key(NULL, "x", "ID", 2, "K", 1, msg, sizeof msg),
                     GW_ERR_INVALID);
    assert_false(gw_vault_has_caller_key(v, "x"));
    gw_vault_free(v);
}

/* A caller key never signs; a credential never verifies, whatever the names. */
static void test_kinds_namespaces(void **state)
{
    struct fixture *f = *state;
    struct gw_buf got, want;
    struct signed_call call;
    gw_buf_init(&got, GW_TC3_MAX_TEXT);
    gw_buf_init(&want, GW_TC3_MAX_TEXT);
    struct gw_vault *v = open_ok(f, f->key);
    set_clock(v, DAY0);
    put_cred(v, "main", CRED_ID, CRED_KEY);
    put_caller(v, "main", BOT_ID, BOT_KEY);
    put_caller(v, "bot", BOT_ID, BOT_KEY);
    struct gw_tc3_request req = request_at(DAY0 + 10, "gaap");

    /* Signing with a caller key's name: NOT_FOUND, out untouched. */
    assert_int_equal(gw_vault_sign(v, "bot", &req, &got), GW_ERR_NOT_FOUND);
    assert_int_equal(got.len, 0);
    /* "main" signs with the credential, not with the caller key of the same name. */
    assert_int_equal(gw_vault_sign(v, "main", &req, &got), GW_OK);
    assert_int_equal(
        gw_tc3_sign(CRED_ID, (const unsigned char *)CRED_KEY, strlen(CRED_KEY), &req, &want),
        GW_OK);
    assert_string_equal(got.data, want.data);
    assert_non_null(strstr(got.data, CRED_ID));

    /* A credential cannot stand for a caller: its signature does not verify as caller "main". */
    sign_independently(CRED_ID, CRED_KEY, &req, &call);
    assert_int_equal(verify_call(v, "main", CRED_ID, &call, "gaap"), GW_ERR_CRYPTO);
    put_cred(v, "cred-only", CRED_ID, CRED_KEY);
    assert_int_equal(verify_call(v, "cred-only", CRED_ID, &call, "gaap"), GW_ERR_NOT_FOUND);
    /* While the caller key of that name verifies its own signatures. */
    sign_independently(BOT_ID, BOT_KEY, &req, &call);
    assert_int_equal(verify_call(v, "main", BOT_ID, &call, "gaap"), GW_OK);
    gw_buf_free(&got);
    gw_buf_free(&want);
    gw_vault_free(v);
}

/* GW_VAULT_MAX_CALLER_KEYS caller keys beside GW_VAULT_MAX_ENTRIES credentials, all at their
 * largest, save and open again: the store's bounds hold both tables full. */
static void test_kinds_limits(void **state)
{
    struct fixture *f = *state;
    char name[GW_VAULT_MAX_NAME + 1];
    char id[GW_VAULT_MAX_SECRET_ID + 1];
    char key[GW_VAULT_MAX_SECRET_KEY + 1];
    struct gw_vault *v = open_ok(f, f->key);
    memset(name, 'n', GW_VAULT_MAX_NAME);
    name[GW_VAULT_MAX_NAME] = '\0';
    memset(id, 'I', GW_VAULT_MAX_SECRET_ID);
    id[GW_VAULT_MAX_SECRET_ID] = '\0';
    memset(key, 'K', GW_VAULT_MAX_SECRET_KEY);
    key[GW_VAULT_MAX_SECRET_KEY] = '\0';
    for (int i = 0; i < GW_VAULT_MAX_CALLER_KEYS; i++) {
        snprintf(name + GW_VAULT_MAX_NAME - 4, 5, "%04d", i);
        put_caller(v, name, id, key);
    }
    assert_int_equal(gw_vault_put_caller_key(v, "one-more", "ID", 2, "K", 1, f->msg, sizeof f->msg),
                     GW_ERR_TOO_LARGE);
    assert_non_null(strstr(f->msg, "caller keys"));
    /* The credentials' limit is their own. */
    for (int i = 0; i < GW_VAULT_MAX_ENTRIES; i++) {
        snprintf(name + GW_VAULT_MAX_NAME - 4, 5, "%04d", i);
        put_cred(v, name, id, key);
    }
    assert_int_equal(gw_vault_put(v, "one-more", "ID", 2, "K", 1, f->msg, sizeof f->msg),
                     GW_ERR_TOO_LARGE);
    save_ok(f, v);
    gw_vault_free(v);
    struct stat st;
    assert_int_equal(stat(f->store, &st), 0);
    assert_true((size_t)st.st_size <= VAULT_STORE_MAX);

    v = open_ok(f, f->key);
    assert_int_equal(gw_vault_count(v), GW_VAULT_MAX_ENTRIES);
    assert_int_equal(v->tables[GW_VAULT_CALLER_KEY].count, GW_VAULT_MAX_CALLER_KEYS);
    snprintf(name + GW_VAULT_MAX_NAME - 4, 5, "%04d", GW_VAULT_MAX_CALLER_KEYS - 1);
    assert_true(gw_vault_has_caller_key(v, name));
    gw_vault_free(v);
}

/* ---- The store ---- */

static void test_store_round_trip_kinds(void **state)
{
    struct fixture *f = *state;
    unsigned char file[8192];
    struct signed_call call;
    struct gw_vault *v = open_ok(f, f->key);
    /* A caller key whose name sorts before every credential's: kinds order the file, not names. */
    put_cred(v, "zeta", CRED_ID, CRED_KEY);
    put_cred(v, "main", "AKIDMAIN0000000000000000000000000001", "mainkey");
    put_caller(v, "aaa-bot", BOT_ID, BOT_KEY);
    put_caller(v, "main", "AKIDtcgwMAIN", "callermainkey");
    save_ok(f, v);
    gw_vault_free(v);

    size_t n = read_file(f->store, file, sizeof file);
    assert_memory_equal(file, "TCGWSTORE3", 10);
    static const char *const clear[] = {CRED_ID, CRED_KEY,  BOT_ID,
                                        BOT_KEY, "aaa-bot", "callermainkey"};
    for (size_t i = 0; i < sizeof clear / sizeof *clear; i++) {
        assert_false(contains(file, n, clear[i]));
    }

    v = open_ok(f, f->key);
    assert_int_equal(gw_vault_count(v), 2);
    assert_true(gw_vault_has(v, "zeta"));
    assert_true(gw_vault_has(v, "main"));
    assert_false(gw_vault_has(v, "aaa-bot"));
    assert_true(gw_vault_has_caller_key(v, "aaa-bot"));
    assert_true(gw_vault_has_caller_key(v, "main"));
    assert_false(gw_vault_has_caller_key(v, "zeta"));
    /* The keys came back in their own kinds. */
    set_clock(v, DAY0);
    struct gw_tc3_request req = request_at(DAY0, "gaap");
    sign_independently(BOT_ID, BOT_KEY, &req, &call);
    assert_int_equal(verify_call(v, "aaa-bot", BOT_ID, &call, "gaap"), GW_OK);
    sign_independently("AKIDtcgwMAIN", "callermainkey", &req, &call);
    assert_int_equal(verify_call(v, "main", "AKIDtcgwMAIN", &call, "gaap"), GW_OK);

    /* A removal is saved too. */
    assert_int_equal(gw_vault_remove(v, GW_VAULT_CALLER_KEY, "aaa-bot"), GW_OK);
    save_ok(f, v);
    gw_vault_free(v);
    v = open_ok(f, f->key);
    assert_false(gw_vault_has_caller_key(v, "aaa-bot"));
    assert_true(gw_vault_has_caller_key(v, "main"));
    assert_int_equal(gw_vault_count(v), 2);
    gw_vault_free(v);
}

/* A store written in format 1 (before caller keys) opens, signs, and is saved as format 2. */
static void test_store_format1_opens(void **state)
{
    struct fixture *f = *state;
    unsigned char file[8192];
    struct plain p;
    char name[GW_VAULT_MAX_NAME + 1], tail[5];
    struct gw_buf got, want;
    gw_buf_init(&got, GW_TC3_MAX_TEXT);
    gw_buf_init(&want, GW_TC3_MAX_TEXT);

    plain_count(&p, 2);
    plain_entry(&p, -1, "dev", "AKIDEXAMPLE0000000000000000000000000", "devkey");
    plain_entry(&p, -1, "prod", CRED_ID, CRED_KEY);
    write_store(f, f->key, "TCGWSTORE1", &p);

    struct gw_vault *v = open_ok(f, f->key);
    assert_int_equal(gw_vault_count(v), 2);
    assert_int_equal(gw_vault_describe(v, 1, name, tail), GW_OK);
    assert_string_equal(name, "prod");
    assert_string_equal(tail, "MPLE");
    assert_false(gw_vault_has_caller_key(v, "prod"));
    assert_int_equal(v->tables[GW_VAULT_CALLER_KEY].count, 0);
    struct gw_tc3_request req = request_at(DAY0, "gaap");
    assert_int_equal(gw_vault_sign(v, "prod", &req, &got), GW_OK);
    assert_int_equal(
        gw_tc3_sign(CRED_ID, (const unsigned char *)CRED_KEY, strlen(CRED_KEY), &req, &want),
        GW_OK);
    assert_string_equal(got.data, want.data);

    /* Saved again: format 3, the same credentials. */
    put_caller(v, "bot", BOT_ID, BOT_KEY);
    save_ok(f, v);
    gw_vault_free(v);
    read_file(f->store, file, sizeof file);
    assert_memory_equal(file, "TCGWSTORE3", 10);
    v = open_ok(f, f->key);
    assert_int_equal(gw_vault_count(v), 2);
    assert_true(gw_vault_has(v, "dev"));
    assert_true(gw_vault_has_caller_key(v, "bot"));
    gw_vault_free(v);

    /* The version is authenticated: a format-1 body under a format-2 header does not decrypt. */
    /* (Older formats are generation 0: forget the generation the save above recorded.) */
    char gen[PATH_MAX + 16];
    snprintf(gen, sizeof gen, "%s.generation", f->store);
    assert_int_equal(unlink(gen), 0);
    write_store(f, f->key, "TCGWSTORE1", &p);
    size_t n = read_file(f->store, file, sizeof file);
    memcpy(file, "TCGWSTORE2", 10);
    write_file(f->store, file, n);
    assert_int_equal(open_err(f), GW_ERR_CRYPTO);
    /* Nor the other way round. */
    plain_count(&p, 1);
    plain_entry(&p, GW_VAULT_CALLER_KEY, "bot", BOT_ID, BOT_KEY);
    write_store(f, f->key, "TCGWSTORE2", &p);
    assert_int_equal(open_err(f), GW_OK);
    n = read_file(f->store, file, sizeof file);
    memcpy(file, "TCGWSTORE1", 10);
    write_file(f->store, file, n);
    assert_int_equal(open_err(f), GW_ERR_CRYPTO);
    /* A later version is a newer tcgw's store. */
    memcpy(file, "TCGWSTORE4", 10);
    write_file(f->store, file, n);
    assert_int_equal(open_err(f), GW_ERR_INVALID);
    assert_non_null(strstr(f->msg, "newer tcgw"));
    gw_buf_free(&got);
    gw_buf_free(&want);
}

/* Format-2 plaintexts that decrypt but break the layout's rules: damaged, never half-loaded. */
static void test_store_kind_damage(void **state)
{
    struct fixture *f = *state;
    struct plain p;

    /* The same name in both kinds is allowed. */
    plain_count(&p, 2);
    plain_entry(&p, GW_VAULT_CREDENTIAL, "same", CRED_ID, CRED_KEY);
    plain_entry(&p, GW_VAULT_CALLER_KEY, "same", BOT_ID, BOT_KEY);
    write_store(f, f->key, "TCGWSTORE2", &p);
    assert_int_equal(open_err(f), GW_OK);

    /* An unknown kind. */
    plain_count(&p, 1);
    plain_entry(&p, 2, "x", "ID", "K");
    write_store(f, f->key, "TCGWSTORE2", &p);
    assert_int_equal(open_err(f), GW_ERR_INVALID);
    assert_non_null(strstr(f->msg, "damaged"));

    /* Kinds out of order. */
    plain_count(&p, 2);
    plain_entry(&p, GW_VAULT_CALLER_KEY, "a", "ID", "K");
    plain_entry(&p, GW_VAULT_CREDENTIAL, "b", "ID", "K");
    write_store(f, f->key, "TCGWSTORE2", &p);
    assert_int_equal(open_err(f), GW_ERR_INVALID);

    /* A name twice in one kind, and names out of order in one kind. */
    plain_count(&p, 2);
    plain_entry(&p, GW_VAULT_CALLER_KEY, "a", "ID", "K");
    plain_entry(&p, GW_VAULT_CALLER_KEY, "a", "ID", "K");
    write_store(f, f->key, "TCGWSTORE2", &p);
    assert_int_equal(open_err(f), GW_ERR_INVALID);
    plain_count(&p, 2);
    plain_entry(&p, GW_VAULT_CALLER_KEY, "b", "ID", "K");
    plain_entry(&p, GW_VAULT_CALLER_KEY, "a", "ID", "K");
    write_store(f, f->key, "TCGWSTORE2", &p);
    assert_int_equal(open_err(f), GW_ERR_INVALID);

    /* A caller key breaking a value rule: the message names the entry, not the value. */
    plain_count(&p, 1);
    plain_entry(&p, GW_VAULT_CALLER_KEY, "a", "BAD ID", "K");
    write_store(f, f->key, "TCGWSTORE2", &p);
    assert_int_equal(open_err(f), GW_ERR_INVALID);
    assert_non_null(strstr(f->msg, "entry 0"));
    assert_null(strstr(f->msg, "BAD ID"));

    /* Cut inside an entry (after the kind byte), and a count larger than the entries. */
    plain_count(&p, 1);
    p.b[p.n++] = GW_VAULT_CALLER_KEY;
    write_store(f, f->key, "TCGWSTORE2", &p);
    assert_int_equal(open_err(f), GW_ERR_INVALID);
    plain_count(&p, 2);
    plain_entry(&p, GW_VAULT_CALLER_KEY, "a", "ID", "K");
    write_store(f, f->key, "TCGWSTORE2", &p);
    assert_int_equal(open_err(f), GW_ERR_INVALID);
    /* More caller keys than a store holds. */
    plain_count(&p, GW_VAULT_MAX_ENTRIES + GW_VAULT_MAX_CALLER_KEYS + 1);
    write_store(f, f->key, "TCGWSTORE2", &p);
    assert_int_equal(open_err(f), GW_ERR_INVALID);
    /* A format-1 store cannot hold caller keys: its entries have no kind byte to read. */
    plain_count(&p, 1);
    plain_entry(&p, GW_VAULT_CALLER_KEY, "a", "ID", "K");
    write_store(f, f->key, "TCGWSTORE1", &p);
    assert_int_equal(open_err(f), GW_ERR_INVALID);
}

/* ---- Verifying a caller's signature ---- */

/* Every published TC3 vector, as a caller key: Tencent's own signatures verify. */
static void test_verify_vectors(void **state)
{
    struct fixture *f = *state;
    size_t i;
    json_t *vec;
    char name[32];
    struct gw_vault *v = open_ok(f, f->key);
    json_array_foreach (f->vectors, i, vec) {
        snprintf(name, sizeof name, "c%02zu", i);
        put_caller(v, name, vstr(vec, "secretId"), vstr(vec, "secretKey"));
    }
    json_array_foreach (f->vectors, i, vec) {
        snprintf(name, sizeof name, "c%02zu", i);
        const char *sts = vstr(vec, "string_to_sign");
        const char *sig = vstr(vec, "signature");
        assert_non_null(sts);
        assert_non_null(sig);
        print_message("vault verifies vector %s\n", vstr(vec, "name"));
        /* Far from the vault's clock (a derived key for the call), then on its own day (cached). */
        set_clock(v, DAY0);
        assert_int_equal(gw_vault_verify(v, name, vstr(vec, "secretId"), vstr(vec, "date"),
                                         vstr(vec, "service"), sts, strlen(sts), sig),
                         GW_OK);
        set_clock(v, vtime(vec));
        for (int t = 0; t < 2; t++) {
            assert_int_equal(gw_vault_verify(v, name, vstr(vec, "secretId"), vstr(vec, "date"),
                                             vstr(vec, "service"), sts, strlen(sts), sig),
                             GW_OK);
        }
        assert_int_equal(key_count(v, GW_VAULT_CALLER_KEY, name), 1);
    }
    size_t n = json_array_size(f->vectors);
    expect_stats(v, n, 2 * n);
    gw_vault_free(v);
}

static void test_verify_mismatches(void **state)
{
    struct fixture *f = *state;
    struct signed_call call, bad;
    char long_id[300];
    struct gw_vault *v = open_ok(f, f->key);
    set_clock(v, DAY0);
    put_caller(v, "bot", BOT_ID, BOT_KEY);
    put_caller(v, "other", "AKIDtcgwOTHER", "otherkey");
    put_cred(v, "cred", BOT_ID, BOT_KEY);
    struct gw_tc3_request req = request_at(DAY0 + 100, "gaap");
    sign_independently(BOT_ID, BOT_KEY, &req, &call);
    assert_int_equal(verify_call(v, "bot", BOT_ID, &call, "gaap"), GW_OK);

    /* One hex digit changed, anywhere: first, middle, last. */
    static const size_t digits[] = {0, 1, 31, 32, 62, 63};
    for (size_t i = 0; i < sizeof digits / sizeof *digits; i++) {
        bad = call;
        bad.sig[digits[i]] = other_hex(bad.sig[digits[i]]);
        assert_int_equal(verify_call(v, "bot", BOT_ID, &bad, "gaap"), GW_ERR_CRYPTO);
    }
    /* The same digits in capitals (TC3 is lowercase hex), cut short, empty. */
    bad = call;
    for (size_t i = 0; i < GW_TC3_HEX_LEN; i++) {
        bad.sig[i] = (char)(bad.sig[i] >= 'a' ? bad.sig[i] - 32 : bad.sig[i]);
    }
    if (strcmp(bad.sig, call.sig) != 0) {
        assert_int_equal(verify_call(v, "bot", BOT_ID, &bad, "gaap"), GW_ERR_CRYPTO);
    }
    bad = call;
    bad.sig[GW_TC3_HEX_LEN - 1] = '\0';
    assert_int_equal(verify_call(v, "bot", BOT_ID, &bad, "gaap"), GW_ERR_CRYPTO);
    bad.sig[0] = '\0';
    assert_int_equal(verify_call(v, "bot", BOT_ID, &bad, "gaap"), GW_ERR_CRYPTO);

    /* A text that is not the one signed: one byte changed, one byte less. */
    bad = call;
    bad.sts[bad.sts_len / 2] ^= 1;
    assert_int_equal(verify_call(v, "bot", BOT_ID, &bad, "gaap"), GW_ERR_CRYPTO);
    bad = call;
    bad.sts_len--;
    assert_int_equal(verify_call(v, "bot", BOT_ID, &bad, "gaap"), GW_ERR_CRYPTO);

    /* Another (valid) date or service derives another key. */
    bad = call;
    memcpy(bad.date, "2025-12-03", GW_TC3_DATE_LEN);
    assert_int_equal(verify_call(v, "bot", BOT_ID, &bad, "gaap"), GW_ERR_CRYPTO);
    assert_int_equal(verify_call(v, "bot", BOT_ID, &call, "cvm"), GW_ERR_CRYPTO);

    /* Another caller's key, and a SecretId that is not the key's. */
    assert_int_equal(verify_call(v, "other", BOT_ID, &call, "gaap"), GW_ERR_CRYPTO);
    assert_int_equal(verify_call(v, "other", "AKIDtcgwOTHER", &call, "gaap"), GW_ERR_CRYPTO);
    char id[sizeof BOT_ID];
    memcpy(id, BOT_ID, sizeof id);
    id[sizeof id - 2] ^= 1; /* last character */
    assert_int_equal(verify_call(v, "bot", id, &call, "gaap"), GW_ERR_CRYPTO);
    memcpy(id, BOT_ID, sizeof id);
    id[0] ^= 1; /* first character */
    assert_int_equal(verify_call(v, "bot", id, &call, "gaap"), GW_ERR_CRYPTO);
    memcpy(id, BOT_ID, sizeof id);
    id[sizeof id - 2] = '\0'; /* a prefix */
    assert_int_equal(verify_call(v, "bot", id, &call, "gaap"), GW_ERR_CRYPTO);
    snprintf(long_id, sizeof long_id, "%sX", BOT_ID); /* longer */
    assert_int_equal(verify_call(v, "bot", long_id, &call, "gaap"), GW_ERR_CRYPTO);
    memset(long_id, 'A', sizeof long_id - 1); /* longer than any SecretId */
    long_id[sizeof long_id - 1] = '\0';
    memcpy(long_id, BOT_ID, strlen(BOT_ID));
    assert_int_equal(verify_call(v, "bot", long_id, &call, "gaap"), GW_ERR_CRYPTO);
    assert_int_equal(verify_call(v, "bot", "", &call, "gaap"), GW_ERR_CRYPTO);

    /* Unknown callers, and a credential's name. */
    assert_int_equal(verify_call(v, "nobody", BOT_ID, &call, "gaap"), GW_ERR_NOT_FOUND);
    assert_int_equal(verify_call(v, "cred", BOT_ID, &call, "gaap"), GW_ERR_NOT_FOUND);
    assert_int_equal(verify_call(v, "", BOT_ID, &call, "gaap"), GW_ERR_NOT_FOUND);

    /* Malformed dates and services. */
    static const char *const dates[] = {"",           "2025-12-2",   "2025-12-022", "2025/12/02",
                                        "20251202xx", "2025-13-01",  "2025-00-10",  "2025-02-29",
                                        "2025-04-31", "2025-12-00",  "1969-12-31",  "0000-01-01",
                                        "2025-1a-02", " 2025-12-02", "2025-12-02 "};
    for (size_t i = 0; i < sizeof dates / sizeof *dates; i++) {
        bad = call;
        snprintf(bad.date, sizeof bad.date, "%s", dates[i]);
        const char *d = strlen(dates[i]) > GW_TC3_DATE_LEN ? dates[i] : bad.date;
        enum gw_err err =
            gw_vault_verify(v, "bot", BOT_ID, d, "gaap", call.sts, call.sts_len, call.sig);
        if (err != GW_ERR_INVALID) {
            fail_msg("date \"%s\" gave %s", dates[i], gw_err_str(err));
        }
    }
    /* Real dates at the edges still verify (as mismatches: they are not the signed date). */
    static const char *const real_dates[] = {"2024-02-29", "1970-01-01", "9999-12-31"};
    for (size_t i = 0; i < sizeof real_dates / sizeof *real_dates; i++) {
        assert_int_equal(gw_vault_verify(v, "bot", BOT_ID, real_dates[i], "gaap", call.sts,
                                         call.sts_len, call.sig),
                         GW_ERR_CRYPTO);
    }
    char long_service[GW_TC3_MAX_SERVICE + 2];
    memset(long_service, 's', sizeof long_service - 1);
    long_service[sizeof long_service - 1] = '\0';
    static const char *const services[] = {"", "ga ap", "gaap/x", "gaap\n", "g\xc3\xa1"};
    for (size_t i = 0; i < sizeof services / sizeof *services; i++) {
        assert_int_equal(verify_call(v, "bot", BOT_ID, &call, services[i]), GW_ERR_INVALID);
    }
    assert_int_equal(verify_call(v, "bot", BOT_ID, &call, long_service), GW_ERR_INVALID);
    long_service[GW_TC3_MAX_SERVICE] = '\0'; /* the longest allowed */
    assert_int_equal(verify_call(v, "bot", BOT_ID, &call, long_service), GW_ERR_CRYPTO);

    /* Missing arguments, and a text longer than any string to sign. */
    assert_int_equal(
        gw_vault_verify(NULL, "bot", BOT_ID, call.date, "gaap", call.sts, call.sts_len, call.sig),
        GW_ERR_INVALID);
    assert_int_equal(
        gw_vault_verify(v, NULL, BOT_ID, call.date, "gaap", call.sts, call.sts_len, call.sig),
        GW_ERR_INVALID);
    assert_int_equal(
        gw_vault_verify(v, "bot", NULL, call.date, "gaap", call.sts, call.sts_len, call.sig),
        GW_ERR_INVALID);
    assert_int_equal(
        gw_vault_verify(v, "bot", BOT_ID, NULL, "gaap", call.sts, call.sts_len, call.sig),
        GW_ERR_INVALID);
    assert_int_equal(
        gw_vault_verify(v, "bot", BOT_ID, call.date, NULL, call.sts, call.sts_len, call.sig),
        GW_ERR_INVALID);
    assert_int_equal(
        gw_vault_verify(v, "bot", BOT_ID, call.date, "gaap", NULL, call.sts_len, call.sig),
        GW_ERR_INVALID);
    assert_int_equal(
        gw_vault_verify(v, "bot", BOT_ID, call.date, "gaap", call.sts, call.sts_len, NULL),
        GW_ERR_INVALID);
    static char huge[GW_TC3_MAX_TEXT + 2];
    memset(huge, 'x', sizeof huge - 1);
    assert_int_equal(
        gw_vault_verify(v, "bot", BOT_ID, call.date, "gaap", huge, GW_TC3_MAX_TEXT + 1, call.sig),
        GW_ERR_INVALID);

    /* After all that, the right one still verifies. */
    assert_int_equal(verify_call(v, "bot", BOT_ID, &call, "gaap"), GW_OK);
    gw_vault_free(v);
}

/* The derived-key cache: a second verify of the day is a hit that changes no protection. */
static void test_verify_cache(void **state)
{
    struct fixture *f = *state;
    struct signed_call call;
    struct gw_vault *v = open_ok(f, f->key);
    put_caller(v, "bot", BOT_ID, BOT_KEY);
    put_cred(v, "main", CRED_ID, CRED_KEY);
    set_clock(v, DAY0 + 3600);

    /* Today: a miss that publishes the key, then hits that touch no protection. */
    struct gw_tc3_request req = request_at(DAY0 + 3000, "gaap");
    sign_independently(BOT_ID, BOT_KEY, &req, &call);
    assert_int_equal(verify_call(v, "bot", BOT_ID, &call, "gaap"), GW_OK);
    expect_stats(v, 0, 1);
    assert_int_equal(key_count(v, GW_VAULT_CALLER_KEY, "bot"), 1);
    uint64_t before = vault_mem_protections();
    assert_int_equal(verify_call(v, "bot", BOT_ID, &call, "gaap"), GW_OK);
    assert_int_equal(vault_mem_protections(), before);
    expect_stats(v, 1, 1);
    /* A mismatch with a cached key is a hit too, and still a mismatch. */
    struct signed_call bad = call;
    bad.sig[5] = other_hex(bad.sig[5]);
    assert_int_equal(verify_call(v, "bot", BOT_ID, &bad, "gaap"), GW_ERR_CRYPTO);
    assert_int_equal(vault_mem_protections(), before);
    expect_stats(v, 2, 1);

    /* The caller key's slots are its own: the credential has none yet. */
    assert_int_equal(key_count(v, GW_VAULT_CREDENTIAL, "main"), 0);

    /* Tomorrow: cached. */
    req = request_at(DAY0 + DAY + 10, "gaap");
    sign_independently(BOT_ID, BOT_KEY, &req, &call);
    assert_int_equal(verify_call(v, "bot", BOT_ID, &call, "gaap"), GW_OK);
    assert_int_equal(verify_call(v, "bot", BOT_ID, &call, "gaap"), GW_OK);
    expect_stats(v, 3, 2);
    assert_int_equal(key_count(v, GW_VAULT_CALLER_KEY, "bot"), 2);

    /* Yesterday and a month ago: right, but derived for the call and wiped, never published. */
    static const int64_t away[] = {DAY0 - 10, DAY0 - 30 * DAY, DAY0 + 2 * DAY};
    for (size_t i = 0; i < sizeof away / sizeof *away; i++) {
        req = request_at(away[i], "gaap");
        sign_independently(BOT_ID, BOT_KEY, &req, &call);
        assert_int_equal(verify_call(v, "bot", BOT_ID, &call, "gaap"), GW_OK);
        assert_int_equal(verify_call(v, "bot", BOT_ID, &call, "gaap"), GW_OK);
        bad = call;
        bad.sig[63] = other_hex(bad.sig[63]);
        assert_int_equal(verify_call(v, "bot", BOT_ID, &bad, "gaap"), GW_ERR_CRYPTO);
    }
    expect_stats(v, 3, 2 + 9);
    assert_int_equal(key_count(v, GW_VAULT_CALLER_KEY, "bot"), 2);

    /* Two days on, the next miss retires the old days' keys, as for credentials. */
    set_clock(v, DAY0 + 3 * DAY);
    req = request_at(DAY0 + 3 * DAY, "gaap");
    sign_independently(BOT_ID, BOT_KEY, &req, &call);
    assert_int_equal(verify_call(v, "bot", BOT_ID, &call, "gaap"), GW_OK);
    assert_int_equal(key_count(v, GW_VAULT_CALLER_KEY, "bot"), 1);
    assert_int_equal(atomic_load(&v->retired), 2);

    /* The caller key's secret is no-access again after all that. */
    struct cred *c = vault_find(v, GW_VAULT_CALLER_KEY, "bot");
    struct secret *s;
    pthread_mutex_lock(&c->lock);
    assert_int_equal(vault_secret_open(c, false, &s), GW_OK);
    assert_memory_equal(s->scratch.key, (unsigned char[GW_TC3_KEY_LEN]){0}, GW_TC3_KEY_LEN);
    vault_secret_close(c);
    pthread_mutex_unlock(&c->lock);
    gw_vault_free(v);
}

/* Replacing or removing a caller key drops what was derived from it. */
static void test_verify_replace_remove(void **state)
{
    struct fixture *f = *state;
    struct signed_call old_call, new_call;
    struct gw_vault *v = open_ok(f, f->key);
    set_clock(v, DAY0);
    put_caller(v, "bot", BOT_ID, BOT_KEY);
    struct gw_tc3_request req = request_at(DAY0 + 5, "gaap");
    sign_independently(BOT_ID, BOT_KEY, &req, &old_call);
    assert_int_equal(verify_call(v, "bot", BOT_ID, &old_call, "gaap"), GW_OK);
    assert_int_equal(key_count(v, GW_VAULT_CALLER_KEY, "bot"), 1);

    /* A new key (rotation): the old signature stops verifying at once, cache or not. */
    put_caller(v, "bot", "AKIDtcgwROTATED", "rotatedkey");
    assert_int_equal(key_count(v, GW_VAULT_CALLER_KEY, "bot"), 0);
    assert_int_equal(verify_call(v, "bot", BOT_ID, &old_call, "gaap"), GW_ERR_CRYPTO);
    assert_int_equal(verify_call(v, "bot", "AKIDtcgwROTATED", &old_call, "gaap"), GW_ERR_CRYPTO);
    sign_independently("AKIDtcgwROTATED", "rotatedkey", &req, &new_call);
    assert_int_equal(verify_call(v, "bot", "AKIDtcgwROTATED", &new_call, "gaap"), GW_OK);
    assert_int_equal(verify_call(v, "bot", "AKIDtcgwROTATED", &new_call, "gaap"), GW_OK);

    /* Removed with a published key: gone, its memory freed (the sanitizer checks the rest). */
    assert_int_equal(key_count(v, GW_VAULT_CALLER_KEY, "bot"), 1);
    assert_int_equal(gw_vault_remove(v, GW_VAULT_CALLER_KEY, "bot"), GW_OK);
    assert_int_equal(verify_call(v, "bot", "AKIDtcgwROTATED", &new_call, "gaap"), GW_ERR_NOT_FOUND);
    /* Put back with the first key: nothing of the rotated one survives. */
    put_caller(v, "bot", BOT_ID, BOT_KEY);
    assert_int_equal(verify_call(v, "bot", "AKIDtcgwROTATED", &new_call, "gaap"), GW_ERR_CRYPTO);
    assert_int_equal(verify_call(v, "bot", BOT_ID, &old_call, "gaap"), GW_OK);

    /* Removing a credential: it no longer signs. */
    put_cred(v, "main", CRED_ID, CRED_KEY);
    struct gw_buf b;
    gw_buf_init(&b, GW_TC3_MAX_TEXT);
    assert_int_equal(gw_vault_sign(v, "main", &req, &b), GW_OK);
    assert_int_equal(gw_vault_remove(v, GW_VAULT_CREDENTIAL, "main"), GW_OK);
    gw_buf_reset(&b);
    assert_int_equal(gw_vault_sign(v, "main", &req, &b), GW_ERR_NOT_FOUND);
    gw_buf_free(&b);
    gw_vault_free(v);
}

#define VERIFIERS 6
#define VERIFY_ROUNDS 600

struct verifier {
    struct gw_vault *vault;
    unsigned seed;
    size_t failures;
};

/* Verifies good and bad signatures of three callers, and signs with a credential between. */
static void *verify_worker(void *arg)
{
    static const char *const services[] = {"gaap", "cvm", "vpc"};
    static const char *const ids[] = {"AKIDtcgwC0", "AKIDtcgwC1", "AKIDtcgwC2"};
    static const char *const keys[] = {"key-zero", "key-one", "key-two"};
    static const char *const names[] = {"c0", "c1", "c2"};
    struct verifier *w = arg;
    struct signed_call call;
    struct gw_buf got, want;
    gw_buf_init(&got, GW_TC3_MAX_TEXT);
    gw_buf_init(&want, GW_TC3_MAX_TEXT);
    for (size_t round = 0; round < VERIFY_ROUNDS; round++) {
        size_t k = round * 7 + w->seed;
        size_t who = k % 3;
        /* Mostly today by the vault's clock; every tenth a day of its own (no cache). */
        int64_t t = k % 10 == 0 ? DAY0 - (int64_t)(k % 40) * DAY : DAY0 + (int64_t)(k % 3600);
        const char *service = services[(k / 3) % 3];
        struct gw_tc3_request req = request_at(t, service);
        sign_independently(ids[who], keys[who], &req, &call);
        bool tamper = k % 4 == 1;
        if (tamper) {
            call.sig[k % GW_TC3_HEX_LEN] = other_hex(call.sig[k % GW_TC3_HEX_LEN]);
        }
        enum gw_err err = verify_call(w->vault, names[who], ids[who], &call, service);
        if (err != (tamper ? GW_ERR_CRYPTO : GW_OK)) {
            w->failures++;
        }
        gw_buf_reset(&got);
        gw_buf_reset(&want);
        if (gw_vault_sign(w->vault, "c0", &req, &got) != GW_OK ||
            gw_tc3_sign(CRED_ID, (const unsigned char *)CRED_KEY, strlen(CRED_KEY), &req, &want) !=
                GW_OK ||
            strcmp(got.data, want.data) != 0) {
            w->failures++;
        }
    }
    gw_buf_free(&got);
    gw_buf_free(&want);
    return NULL;
}

/* Several threads verify and sign at once: every answer right, one miss per key and service. */
static void test_verify_threads(void **state)
{
    struct fixture *f = *state;
    pthread_t threads[VERIFIERS];
    struct verifier workers[VERIFIERS];
    struct gw_vault *v = open_ok(f, f->key);
    put_caller(v, "c0", "AKIDtcgwC0", "key-zero");
    put_caller(v, "c1", "AKIDtcgwC1", "key-one");
    put_caller(v, "c2", "AKIDtcgwC2", "key-two");
    put_cred(v, "c0", CRED_ID, CRED_KEY); /* the same name as a caller key */
    set_clock(v, DAY0 + 7200);
    for (size_t t = 0; t < VERIFIERS; t++) {
        workers[t] = (struct verifier){.vault = v, .seed = (unsigned)t * 11};
        assert_int_equal(pthread_create(&threads[t], NULL, verify_worker, &workers[t]), 0);
    }
    for (size_t t = 0; t < VERIFIERS; t++) {
        assert_int_equal(pthread_join(threads[t], NULL), 0);
        assert_int_equal(workers[t].failures, 0);
    }
    uint64_t hits, misses;
    gw_vault_cache_stats(v, &hits, &misses);
    assert_int_equal(hits + misses, 2 * VERIFIERS * VERIFY_ROUNDS);
    /* Each caller key cached only the (today, service) pairs it was used with. */
    for (size_t i = 0; i < 3; i++) {
        char name[4];
        snprintf(name, sizeof name, "c%zu", i);
        assert_true(key_count(v, GW_VAULT_CALLER_KEY, name) >= 1);
        assert_true(key_count(v, GW_VAULT_CALLER_KEY, name) <= 3);
    }
    assert_int_equal(key_count(v, GW_VAULT_CREDENTIAL, "c0"), 3);
    gw_vault_free(v);
}

/* ---- Token hash ---- */

/* The construction, computed here from the key file: what the callers file keeps must not move. */
static void token_hash_reference(const char *key_path, const char *token,
                                 unsigned char out[GW_VAULT_TOKEN_HASH_LEN])
{
    unsigned char master[GW_VAULT_MASTER_KEY_LEN], sub[32];
    assert_int_equal(read_file(key_path, master, sizeof master), GW_VAULT_MASTER_KEY_LEN);
    assert_int_equal(crypto_kdf_derive_from_key(sub, sizeof sub, 1, "tcgwtokn", master), 0);
    assert_int_equal(crypto_generichash(out, GW_VAULT_TOKEN_HASH_LEN, (const unsigned char *)token,
                                        strlen(token), sub, sizeof sub),
                     0);
    sodium_memzero(master, sizeof master);
    sodium_memzero(sub, sizeof sub);
}

static void hash_ok(struct gw_vault *v, const char *token,
                    unsigned char out[GW_VAULT_TOKEN_HASH_LEN])
{
    assert_int_equal(gw_vault_token_hash(v, (const unsigned char *)token, strlen(token), out),
                     GW_OK);
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

static void test_token_hash(void **state)
{
    struct fixture *f = *state;
    static const char token[] = "Zm9vYmFyYmF6cXV4MDEyMzQ1Njc4OWFiY2RlZmdoaWpr";
    unsigned char a[GW_VAULT_TOKEN_HASH_LEN], b[GW_VAULT_TOKEN_HASH_LEN];
    unsigned char ref[GW_VAULT_TOKEN_HASH_LEN];
    struct gw_vault *v = open_ok(f, f->key);

    /* Deterministic, and exactly keyed BLAKE2b-256 with the kdf subkey (id 1, "tcgwtokn"). */
    hash_ok(v, token, a);
    hash_ok(v, token, b);
    assert_memory_equal(a, b, sizeof a);
    token_hash_reference(f->key, token, ref);
    assert_memory_equal(a, ref, sizeof a);
    /* Not the unkeyed hash, nor one keyed with the master key itself. */
    unsigned char plain[GW_VAULT_TOKEN_HASH_LEN], master[GW_VAULT_MASTER_KEY_LEN];
    assert_int_equal(crypto_generichash(plain, sizeof plain, (const unsigned char *)token,
                                        strlen(token), NULL, 0),
                     0);
    assert_memory_not_equal(a, plain, sizeof a);
    read_file(f->key, master, sizeof master);
    assert_int_equal(crypto_generichash(plain, sizeof plain, (const unsigned char *)token,
                                        strlen(token), master, sizeof master),
                     0);
    sodium_memzero(master, sizeof master);
    assert_memory_not_equal(a, plain, sizeof a);

    /* The same after reopening, and from a vault opened for update. */
    gw_vault_free(v);
    v = open_ok(f, f->key);
    hash_ok(v, token, b);
    assert_memory_equal(a, b, sizeof a);
    struct gw_vault *u = NULL;
    assert_int_equal(gw_vault_open_for_update(f->key, f->store, &u, f->msg, sizeof f->msg), GW_OK);
    hash_ok(u, token, b);
    assert_memory_equal(a, b, sizeof a);
    gw_vault_free(u);

    /* Another master key, another hash. */
    char other_key[PATH_MAX];
    snprintf(other_key, sizeof other_key, "%s/other.key", f->dir);
    assert_int_equal(gw_vault_keygen(other_key, f->msg, sizeof f->msg), GW_OK);
    char saved_store[PATH_MAX];
    memcpy(saved_store, f->store, sizeof saved_store);
    snprintf(f->store, sizeof f->store, "%s/other.store", f->dir); /* none: an empty vault */
    struct gw_vault *o = open_ok(f, other_key);
    memcpy(f->store, saved_store, sizeof saved_store);
    hash_ok(o, token, b);
    assert_memory_not_equal(a, b, sizeof a);
    token_hash_reference(other_key, token, ref);
    assert_memory_equal(b, ref, sizeof b);
    gw_vault_free(o);

    /* Tokens that differ by one character, or one is a prefix of the other, differ. */
    char t2[sizeof token];
    memcpy(t2, token, sizeof token);
    t2[sizeof token - 2] ^= 1;
    hash_ok(v, t2, b);
    assert_memory_not_equal(a, b, sizeof a);
    t2[sizeof token - 2] = '\0';
    hash_ok(v, t2, b);
    assert_memory_not_equal(a, b, sizeof a);
    /* An empty token hashes (the caller decides what it means); NULL only with length 0. */
    assert_int_equal(gw_vault_token_hash(v, NULL, 0, b), GW_OK);
    assert_memory_not_equal(a, b, sizeof a);

    /* Errors leave out untouched. */
    memcpy(b, a, sizeof b);
    assert_int_equal(gw_vault_token_hash(v, NULL, 5, b), GW_ERR_INVALID);
    assert_int_equal(gw_vault_token_hash(NULL, (const unsigned char *)token, 3, b), GW_ERR_INVALID);
    assert_int_equal(gw_vault_token_hash(v, (const unsigned char *)token, 3, NULL), GW_ERR_INVALID);
    assert_memory_equal(a, b, sizeof a);

    /* The subkey is readable (no protection change per hash) but never writable. */
    uint64_t before = vault_mem_protections();
    hash_ok(v, token, b);
    assert_int_equal(vault_mem_protections(), before);
    assert_int_equal(child_touch(v->token_key, v->token_key[0], false), 0);
    assert_int_equal(child_touch(v->token_key, (unsigned char)(v->token_key[0] ^ 1), true),
                     SIGSEGV);
    /* And the master key stays no-access after the derivation. */
    assert_int_equal(child_touch(v->master, 0, false), SIGSEGV);
    gw_vault_free(v);
}

#define HASHERS 8
#define HASH_ROUNDS 3000
#define HASH_TOKENS 16

struct hasher {
    struct gw_vault *vault;
    const unsigned char *want; /* HASH_TOKENS hashes, one after the other */
    unsigned seed;
    size_t failures;
};

static void token_of(size_t i, char out[32])
{
    snprintf(out, 32, "token-%zu-%s", i, i % 2 ? "odd" : "even");
}

static void *hash_worker(void *arg)
{
    struct hasher *w = arg;
    char tok[32];
    unsigned char got[GW_VAULT_TOKEN_HASH_LEN];
    for (size_t round = 0; round < HASH_ROUNDS; round++) {
        size_t i = (round * 5 + w->seed) % HASH_TOKENS;
        token_of(i, tok);
        if (gw_vault_token_hash(w->vault, (const unsigned char *)tok, strlen(tok), got) != GW_OK ||
            memcmp(got, w->want + i * GW_VAULT_TOKEN_HASH_LEN, sizeof got) != 0) {
            w->failures++;
        }
    }
    return NULL;
}

/* Many threads hash at once: every answer is the one computed alone, and no lock is needed. */
static void test_token_hash_threads(void **state)
{
    struct fixture *f = *state;
    unsigned char want[HASH_TOKENS][GW_VAULT_TOKEN_HASH_LEN];
    char tok[32];
    pthread_t threads[HASHERS];
    struct hasher workers[HASHERS];
    struct gw_vault *v = open_ok(f, f->key);
    for (size_t i = 0; i < HASH_TOKENS; i++) {
        token_of(i, tok);
        token_hash_reference(f->key, tok, want[i]);
    }
    uint64_t before = vault_mem_protections();
    for (size_t t = 0; t < HASHERS; t++) {
        workers[t] = (struct hasher){.vault = v, .want = &want[0][0], .seed = (unsigned)t};
        assert_int_equal(pthread_create(&threads[t], NULL, hash_worker, &workers[t]), 0);
    }
    for (size_t t = 0; t < HASHERS; t++) {
        assert_int_equal(pthread_join(threads[t], NULL), 0);
        assert_int_equal(workers[t].failures, 0);
    }
    assert_int_equal(vault_mem_protections(), before);
    gw_vault_free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_kinds_put_has_remove, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kinds_namespaces, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kinds_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_round_trip_kinds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_format1_opens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_kind_damage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_vectors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_mismatches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_replace_remove, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_token_hash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_token_hash_threads, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
