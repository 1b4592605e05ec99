/* Unit tests for gateway/identity/callers.c and callers_edit.c: the file, look-ups, editing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

#include "identity/callers.h"

#define HASH_A "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define HASH_B "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"

struct fixture {
    char dir[64];
    char path[PATH_MAX];
    char msg[512];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "/tmp/tcgw-callers-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/callers.json", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static void write_text(const char *path, const char *text, mode_t mode)
{
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, mode);
    assert_true(fd >= 0);
    size_t n = strlen(text);
    assert_int_equal(write(fd, text, n), (ssize_t)n);
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

/* Loads text as the callers file; expects err and, on failure, msg containing want. */
static void expect_load(struct fixture *f, const char *text, enum gw_err want_err, const char *want)
{
    struct gw_callers *c = NULL;
    write_text(f->path, text, 0600);
    f->msg[0] = '\0';
    enum gw_err err = gw_callers_load(f->path, &c, f->msg, sizeof f->msg);
    if (err != want_err) {
        fail_msg("load gave %s, wanted %s: %s\n%s", gw_err_str(err), gw_err_str(want_err), f->msg,
                 text);
    }
    if (want != NULL) {
        char full[PATH_MAX + 256];
        /* want starts with "%s", which stands for the file's path. */
        assert_memory_equal(want, "%s", 2);
        snprintf(full, sizeof full, "%s%s", f->path, want + 2);
        if (strstr(f->msg, full) == NULL) {
            fail_msg("message \"%s\" lacks \"%s\"", f->msg, full);
        }
    }
    gw_callers_free(c);
}

static const char example[] =
    "{\"callers\": {\n"
    "  \"capacity-bot\": {\"token_sha\": \"" HASH_A "\",\n"
    "                   \"credential\": \"default\",\n"
    "                   \"policies\": [\"capacity-bot\", \"auditor\"],\n"
    "                   \"attributes\": {\"team\": \"network\"}},\n"
    "  \"billing\": {\"sdk_secret_id\": \"AKIDtcgwabc\", \"credential\": \"prod\",\n"
    "              \"policies\": [\"auditor\"]},\n"
    "  \"mesh-bot\": {\"certificate\": \"spiffe://example.internal/mesh-bot\",\n"
    "               \"credential\": \"default\", \"policies\": [\"auditor\"]},\n"
    "  \"anonymous\": {\"credential\": \"default\"}\n"
    "}}\n";

/* ---- Loading ---- */

static void test_missing_file_is_empty(void **state)
{
    struct fixture *f = *state;
    struct gw_callers *c = NULL;
    assert_int_equal(gw_callers_load(f->path, &c, f->msg, sizeof f->msg), GW_OK);
    assert_int_equal(gw_callers_count(c), 0);
    assert_null(gw_callers_find(c, "anyone"));
    assert_null(gw_callers_at(c, 0));
    gw_callers_free(c);
    gw_callers_free(NULL);
}

static void test_load_and_look_up(void **state)
{
    struct fixture *f = *state;
    struct gw_callers *c = NULL;
    unsigned char hash[GW_VAULT_TOKEN_HASH_LEN];

    write_text(f->path, example, 0644); /* others may read it: it holds no secret */
    assert_int_equal(gw_callers_load(f->path, &c, f->msg, sizeof f->msg), GW_OK);
    assert_int_equal(gw_callers_count(c), 4);
    /* Name order. */
    assert_string_equal(gw_callers_at(c, 0)->name, "anonymous");
    assert_string_equal(gw_callers_at(c, 1)->name, "billing");
    assert_string_equal(gw_callers_at(c, 2)->name, "capacity-bot");
    assert_string_equal(gw_callers_at(c, 3)->name, "mesh-bot");

    const struct gw_caller *bot = gw_callers_find(c, "capacity-bot");
    assert_non_null(bot);
    assert_string_equal(bot->credential, "default");
    assert_int_equal(bot->policy_count, 2);
    assert_string_equal(bot->policies[0], "capacity-bot");
    assert_string_equal(bot->policies[1], "auditor");
    assert_string_equal(json_string_value(json_object_get(bot->attributes, "team")), "network");
    assert_true(bot->has_token);
    assert_string_equal(bot->sdk_secret_id, "");
    assert_string_equal(bot->certificate, "");

    assert_int_equal(sodium_hex2bin(hash, sizeof hash, HASH_A, 64, NULL, NULL, NULL), 0);
    assert_ptr_equal(gw_callers_by_token_hash(c, hash), bot);
    hash[31] ^= 1;
    assert_null(gw_callers_by_token_hash(c, hash));
    /* A caller without a token is not found by the all-zero hash its slot holds. */
    memset(hash, 0, sizeof hash);
    assert_null(gw_callers_by_token_hash(c, hash));

    assert_ptr_equal(gw_callers_by_secret_id(c, "AKIDtcgwabc"), gw_callers_find(c, "billing"));
    assert_null(gw_callers_by_secret_id(c, "AKIDtcgwab"));
    assert_string_equal(gw_callers_find(c, "billing")->credential, "prod");
    assert_ptr_equal(gw_callers_by_certificate(c, "spiffe://example.internal/mesh-bot"),
                     gw_callers_find(c, "mesh-bot"));
    assert_null(gw_callers_by_certificate(c, "spiffe://example.internal/other"));
    assert_null(gw_callers_find(c, "nobody"));

    const struct gw_caller *anon = gw_callers_find(c, "anonymous");
    assert_int_equal(anon->policy_count, 0);
    assert_null(anon->attributes);
    assert_false(anon->has_token);
    gw_callers_free(c);
}

static void test_load_errors(void **state)
{
    struct fixture *f = *state;

    /* Jansson's own errors name the line. */
    expect_load(
        f, "{\"callers\": {\n\"a\": {\"credential\": \"d\"},\n\"a\": {\"credential\": \"d\"}}}",
        GW_ERR_INVALID, "%s:3: duplicate object key");
    expect_load(f, "{\"callers\": {\n\"a\": {\"credential\": \"d\",\n\"credential\": \"e\"}}}",
                GW_ERR_INVALID, "%s:3: duplicate object key");
    expect_load(f, "{\"callers\": {\n\"a\": {\"credential\": \"d\",}}}", GW_ERR_INVALID, "%s:2:");
    expect_load(f, "", GW_ERR_INVALID, "%s:");

    /* The file's shape. */
    expect_load(f, "[]", GW_ERR_INVALID, "%s: the callers file must be a JSON object");
    expect_load(f, "{\n\"callers\": {},\n\"caller\": {}}", GW_ERR_INVALID,
                "%s:3: \"caller\" is not a known key");
    expect_load(f, "{\n\"callers\": []}", GW_ERR_INVALID, "%s:2: \"callers\" must be an object");
    expect_load(f, "{\"callers\": {\n\"a b\": {\"credential\": \"d\"}}}", GW_ERR_INVALID,
                "%s:2: caller \"a b\" is not a valid caller name");
    expect_load(f, "{\"callers\": {\n\"a\": \"d\"}}", GW_ERR_INVALID,
                "%s:2: caller \"a\" must be an object");
    expect_load(f, "{\"callers\": {\n\"a\": {}}}", GW_ERR_INVALID,
                "%s:2: caller \"a\" needs \"credential\"");

    /* Each field: unknown keys and wrong types, at the key's line. */
    expect_load(f, "{\"callers\": {\"a\": {\"credential\": \"d\",\n\"tokn_sha\": \"x\"}}}",
                GW_ERR_INVALID, "%s:2: caller \"a\": \"tokn_sha\" is not a known key of a caller");
    expect_load(f, "{\"callers\": {\"a\": {\n\"credential\": 7}}}", GW_ERR_INVALID,
                "%s:2: caller \"a\": \"credential\" must name a credential");
    expect_load(f, "{\"callers\": {\"a\": {\"credential\": \"d\",\n\"token_sha\": \"ABCD\"}}}",
                GW_ERR_INVALID, "%s:2: caller \"a\": \"token_sha\" must be 64 lowercase hex");
    expect_load(f,
                "{\"callers\": {\"a\": {\"credential\": \"d\",\n\"token_sha\": \"" HASH_A
                "\"\n,\"sdk_secret_id\": \"AKID x\"}}}",
                GW_ERR_INVALID, "%s:3: caller \"a\": \"sdk_secret_id\" must be a SecretId");
    expect_load(f, "{\"callers\": {\"a\": {\"credential\": \"d\",\n\"certificate\": \"\"}}}",
                GW_ERR_INVALID, "%s:2: caller \"a\": \"certificate\" must be a certificate's");
    expect_load(f, "{\"callers\": {\"a\": {\"credential\": \"d\",\n\"policies\": \"p\"}}}",
                GW_ERR_INVALID, "%s:2: caller \"a\": \"policies\" must be a list");
    expect_load(f, "{\"callers\": {\"a\": {\"credential\": \"d\",\n\"policies\": [\"p\", \"p\"]}}}",
                GW_ERR_INVALID, "%s:2: caller \"a\": \"policies\" names a policy twice");
    expect_load(f, "{\"callers\": {\"a\": {\"credential\": \"d\",\n\"policies\": [\"../x\"]}}}",
                GW_ERR_INVALID, "%s:2: caller \"a\": \"policies\" must list policy names");
    expect_load(f, "{\"callers\": {\"a\": {\"credential\": \"d\",\n\"attributes\": {\"k\": 1}}}}",
                GW_ERR_INVALID, "%s:2: caller \"a\": \"attributes\" must have string values");
    expect_load(f, "{\"callers\": {\"a\": {\"credential\": \"d\",\n\"attributes\": []}}}",
                GW_ERR_INVALID, "%s:2: caller \"a\": \"attributes\" must be an object");

    /* Two callers sharing an identity: the later one is blamed, at its line. */
    expect_load(f,
                "{\"callers\": {\n"
                "\"a\": {\"credential\": \"d\", \"token_sha\": \"" HASH_A "\"},\n"
                "\"b\": {\"credential\": \"d\",\n"
                "\"token_sha\": \"" HASH_A "\"}}}",
                GW_ERR_INVALID, "%s:4: caller \"b\": \"token_sha\" is that of caller \"a\" too");
    expect_load(f,
                "{\"callers\": {\n"
                "\"a\": {\"credential\": \"d\", \"sdk_secret_id\": \"AKIDtcgw1\"},\n"
                "\"b\": {\"credential\": \"d\",\n"
                "\"sdk_secret_id\": \"AKIDtcgw1\"}}}",
                GW_ERR_INVALID, "%s:4: caller \"b\": \"sdk_secret_id\" is that of caller \"a\"");
    expect_load(f,
                "{\"callers\": {\n"
                "\"a\": {\"credential\": \"d\", \"certificate\": \"cn\"},\n"
                "\"b\": {\"credential\": \"d\",\n"
                "\"certificate\": \"cn\"}}}",
                GW_ERR_INVALID, "%s:4: caller \"b\": \"certificate\" is that of caller \"a\"");
    /* Different token hashes are fine. */
    expect_load(f,
                "{\"callers\": {\n"
                "\"a\": {\"credential\": \"d\", \"token_sha\": \"" HASH_A "\"},\n"
                "\"b\": {\"credential\": \"d\", \"token_sha\": \"" HASH_B "\"}}}",
                GW_OK, NULL);
}

static void test_load_refuses_unsafe_files(void **state)
{
    struct fixture *f = *state;
    struct gw_callers *c = NULL;

    write_text(f->path, example, 0620);
    assert_int_equal(gw_callers_load(f->path, &c, f->msg, sizeof f->msg), GW_ERR_PERM);
    assert_non_null(strstr(f->msg, "chmod go-w"));
    write_text(f->path, example, 0602);
    assert_int_equal(gw_callers_load(f->path, &c, f->msg, sizeof f->msg), GW_ERR_PERM);

    /* Larger than 1 MiB: refused before parsing. */
    size_t n = ((size_t)1 << 20) + 2;
    char *big = malloc(n + 1);
    assert_non_null(big);
    memset(big, ' ', n);
    big[0] = '{';
    big[n - 1] = '}';
    big[n] = '\0';
    write_text(f->path, big, 0600);
    free(big);
    assert_int_equal(gw_callers_load(f->path, &c, f->msg, sizeof f->msg), GW_ERR_INVALID);
    assert_non_null(strstr(f->msg, "larger than"));

    /* A symbolic link is not followed. */
    char link[PATH_MAX + 8];
    snprintf(link, sizeof link, "%s/link.json", f->dir);
    assert_int_equal(symlink(f->path, link), 0);
    assert_int_equal(gw_callers_load(link, &c, f->msg, sizeof f->msg), GW_ERR_PERM);
    assert_null(c);
}

/* ---- Editing ---- */

static struct gw_caller new_caller(const char *name)
{
    struct gw_caller c;
    memset(&c, 0, sizeof c);
    snprintf(c.name, sizeof c.name, "%s", name);
    snprintf(c.credential, sizeof c.credential, "default");
    return c;
}

static void test_add_save_remove(void **state)
{
    struct fixture *f = *state;
    struct gw_callers *c = NULL;
    struct stat st;

    assert_int_equal(gw_callers_open_for_update(f->path, &c, f->msg, sizeof f->msg), GW_OK);
    struct gw_caller a = new_caller("alice");
    a.has_token = true;
    memset(a.token_hash, 0xab, sizeof a.token_hash);
    a.policies[0] = "auditor";
    a.policy_count = 1;
    json_t *attrs = json_pack("{s:s}", "team", "network");
    a.attributes = attrs;
    assert_int_equal(gw_callers_add(c, &a, f->msg, sizeof f->msg), GW_OK);
    json_decref(attrs); /* copied */

    struct gw_caller b = new_caller("bob");
    snprintf(b.certificate, sizeof b.certificate, "spiffe://x/bob");
    assert_int_equal(gw_callers_add(c, &b, f->msg, sizeof f->msg), GW_OK);

    /* The same name again, a certificate already mapped, a bad name: refused, nothing changes. */
    assert_int_equal(gw_callers_add(c, &b, f->msg, sizeof f->msg), GW_ERR_EXISTS);
    assert_non_null(strstr(f->msg, "callers remove bob"));
    struct gw_caller b2 = new_caller("bob2");
    snprintf(b2.certificate, sizeof b2.certificate, "spiffe://x/bob");
    assert_int_equal(gw_callers_add(c, &b2, f->msg, sizeof f->msg), GW_ERR_INVALID);
    assert_non_null(strstr(f->msg, "caller \"bob2\": \"certificate\" is that of caller \"bob\""));
    struct gw_caller bad = new_caller("no/slash");
    assert_int_equal(gw_callers_add(c, &bad, f->msg, sizeof f->msg), GW_ERR_INVALID);
    struct gw_caller nocred = new_caller("carol");
    nocred.credential[0] = '\0';
    assert_int_equal(gw_callers_add(c, &nocred, f->msg, sizeof f->msg), GW_ERR_INVALID);
    assert_int_equal(gw_callers_count(c), 2);
    assert_string_equal(gw_callers_find(c, "alice")->policies[0], "auditor");

    assert_int_equal(gw_callers_save(c, f->msg, sizeof f->msg), GW_OK);
    gw_callers_free(c);
    c = NULL;

    /* A new file is private; a reload finds what was saved. */
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(gw_callers_load(f->path, &c, f->msg, sizeof f->msg), GW_OK);
    const struct gw_caller *alice = gw_callers_find(c, "alice");
    assert_non_null(alice);
    assert_true(alice->has_token);
    assert_memory_equal(alice->token_hash, a.token_hash, sizeof a.token_hash);
    assert_string_equal(json_string_value(json_object_get(alice->attributes, "team")), "network");
    assert_ptr_equal(gw_callers_by_certificate(c, "spiffe://x/bob"), gw_callers_find(c, "bob"));
    /* A registry from gw_callers_load holds no lock, so it cannot be saved. */
    assert_int_equal(gw_callers_save(c, f->msg, sizeof f->msg), GW_ERR_INVALID);
    gw_callers_free(c);
    c = NULL;

    /* An existing file keeps its mode. */
    assert_int_equal(chmod(f->path, 0640), 0);
    assert_int_equal(gw_callers_open_for_update(f->path, &c, f->msg, sizeof f->msg), GW_OK);
    assert_int_equal(gw_callers_remove(c, "alice"), GW_OK);
    assert_int_equal(gw_callers_remove(c, "alice"), GW_ERR_NOT_FOUND);
    assert_null(gw_callers_find(c, "alice"));
    assert_int_equal(gw_callers_count(c), 1);
    assert_int_equal(gw_callers_save(c, f->msg, sizeof f->msg), GW_OK);
    gw_callers_free(c);
    c = NULL;
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0640);
    assert_int_equal(gw_callers_load(f->path, &c, f->msg, sizeof f->msg), GW_OK);
    assert_int_equal(gw_callers_count(c), 1);
    assert_null(gw_callers_find(c, "alice"));
    gw_callers_free(c);
}

/* Writers in separate processes, all at once: the lock keeps every one's change. */
static void test_concurrent_writers(void **state)
{
    struct fixture *f = *state;
    enum { WRITERS = 8 };
    pid_t pids[WRITERS];

    for (int i = 0; i < WRITERS; i++) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            struct gw_callers *c = NULL;
            char name[16];
            char msg[256];
            snprintf(name, sizeof name, "writer-%d", i);
            struct gw_caller w = new_caller(name);
            int rc = gw_callers_open_for_update(f->path, &c, msg, sizeof msg) == GW_OK &&
                             gw_callers_add(c, &w, msg, sizeof msg) == GW_OK &&
                             gw_callers_save(c, msg, sizeof msg) == GW_OK
                         ? 0
                         : 1;
            gw_callers_free(c);
            _exit(rc);
        }
    }
    for (int i = 0; i < WRITERS; i++) {
        int status;
        assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    struct gw_callers *c = NULL;
    assert_int_equal(gw_callers_load(f->path, &c, f->msg, sizeof f->msg), GW_OK);
    assert_int_equal(gw_callers_count(c), WRITERS);
    gw_callers_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_missing_file_is_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_and_look_up, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_refuses_unsafe_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_add_save_remove, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_writers, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
