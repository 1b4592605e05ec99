/* Unit tests for gateway/audit/chain.c and verify.c: a chain verifies; an edited, deleted,
 * reordered or cut line, a wrong key and a broken series are found and named FILE:LINE. */
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
#include <sys/stat.h>
#include <unistd.h>

#include "audit/chain.h"
#include "audit/verify.h"

struct fx {
    char dir[64];
    char sec[128], pub[128], other_pub[128];
    struct gw_audit_signer *signer;
    unsigned char pk[GW_AUDIT_PUBLIC_KEY_BYTES];
    unsigned char other[GW_AUDIT_PUBLIC_KEY_BYTES];
    char a[128], b[128];
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    char msg[512];
    snprintf(f->dir, sizeof f->dir, "/tmp/tcgw-audit-chain-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->sec, sizeof f->sec, "%s/k", f->dir);
    snprintf(f->pub, sizeof f->pub, "%s/k.pub", f->dir);
    snprintf(f->a, sizeof f->a, "%s/a.log", f->dir);
    snprintf(f->b, sizeof f->b, "%s/b.log", f->dir);
    assert_int_equal(gw_audit_keygen(f->sec, f->pub, msg, sizeof msg), GW_OK);
    assert_int_equal(gw_audit_keygen(f->sec, f->pub, msg, sizeof msg), GW_ERR_EXISTS);
    assert_int_equal(gw_audit_signer_load(f->sec, &f->signer, msg, sizeof msg), GW_OK);
    assert_int_equal(gw_audit_public_key_load(f->pub, f->pk, msg, sizeof msg), GW_OK);
    char osec[128];
    snprintf(osec, sizeof osec, "%s/o", f->dir);
    snprintf(f->other_pub, sizeof f->other_pub, "%s/o.pub", f->dir);
    assert_int_equal(gw_audit_keygen(osec, f->other_pub, msg, sizeof msg), GW_OK);
    assert_int_equal(gw_audit_public_key_load(f->other_pub, f->other, msg, sizeof msg), GW_OK);
    /* A secret key that others may read is refused. */
    chmod(osec, 0644);
    struct gw_audit_signer *s = NULL;
    assert_int_equal(gw_audit_signer_load(osec, &s, msg, sizeof msg), GW_ERR_PERM);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    gw_audit_signer_free(f->signer);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* Writes a file: genesis, n call records, a seal; the chain continues from *c. */
static void write_log(struct fx *f, const char *path, struct gw_audit_chain *c, int n)
{
    struct gw_buf b;
    gw_buf_init(&b, 1 << 20);
    char fields[256], hex[65];
    gw_audit_signer_public_hex(f->signer, hex);
    snprintf(fields, sizeof fields, "\"type\":\"genesis\",\"key\":\"%s\"", hex);
    assert_int_equal(gw_audit_chain_append_signed(c, fields, f->signer, &b), GW_OK);
    for (int i = 0; i < n; i++) {
        char body[64];
        int len = snprintf(body, sizeof body, "\"type\":\"call\",\"i\":%d}", i);
        assert_int_equal(gw_audit_chain_append(c, body, (size_t)len, &b), GW_OK);
    }
    assert_int_equal(
        gw_audit_chain_append_signed(c, "\"type\":\"seal\",\"records\":5", f->signer, &b), GW_OK);
    FILE *out = fopen(path, "wb");
    assert_int_equal(fwrite(b.data, 1, b.len, out), b.len);
    fclose(out);
    gw_buf_free(&b);
}

/* Reads a file's lines (at most 64) into a NULL-terminated array of new strings. */
static char **lines_of(const char *path)
{
    char **lines = calloc(65, sizeof *lines);
    FILE *in = fopen(path, "rb");
    char *line = NULL;
    size_t cap = 0;
    for (int i = 0; i < 64 && getline(&line, &cap, in) > 0; i++) {
        lines[i] = strdup(line);
    }
    free(line);
    fclose(in);
    return lines;
}

static void write_lines(const char *path, char **lines)
{
    FILE *out = fopen(path, "wb");
    for (int i = 0; lines[i] != NULL; i++) {
        fputs(lines[i], out);
    }
    fclose(out);
}

static void free_lines(char **lines)
{
    for (int i = 0; lines[i] != NULL; i++) {
        free(lines[i]);
    }
    free(lines);
}

static void expect(struct fx *f, const char *const *paths, size_t n, const unsigned char *pk,
                   const char *error_prefix)
{
    struct gw_audit_verify_result r;
    gw_audit_verify(paths, n, pk, NULL, &r);
    if (error_prefix == NULL) {
        if (!r.ok) {
            fail_msg("unexpected error: %s", r.error);
        }
        return;
    }
    (void)f;
    assert_false(r.ok);
    if (strncmp(r.error, error_prefix, strlen(error_prefix)) != 0) {
        fail_msg("expected \"%s...\", got \"%s\"", error_prefix, r.error);
    }
}

static void test_intact(void **state)
{
    struct fx *f = *state;
    struct gw_audit_chain c = {0};
    write_log(f, f->a, &c, 5);
    const char *paths[] = {f->a};
    struct gw_audit_verify_result r;
    gw_audit_verify(paths, 1, f->pk, NULL, &r);
    assert_true(r.ok);
    assert_int_equal(r.records, 5);
    assert_int_equal(r.seals, 2);
    assert_int_equal(r.unsealed, 0);
    assert_int_equal(r.torn, 0);
}

static void test_edited_line(void **state)
{
    struct fx *f = *state;
    struct gw_audit_chain c = {0};
    write_log(f, f->a, &c, 5);
    char **l = lines_of(f->a);
    char *p = strstr(l[3], "\"i\":2");
    p[4] = '7'; /* line 4 edited: line 5's prev no longer matches */
    write_lines(f->a, l);
    free_lines(l);
    char want[256];
    snprintf(want, sizeof want, "%s:5: prev does not match", f->a);
    const char *paths[] = {f->a};
    expect(f, paths, 1, f->pk, want);
}

static void test_edited_seal(void **state)
{
    struct fx *f = *state;
    struct gw_audit_chain c = {0};
    write_log(f, f->a, &c, 2);
    char **l = lines_of(f->a);
    char *p = strstr(l[3], "\"records\":5");
    p[10] = '6';
    write_lines(f->a, l);
    free_lines(l);
    char want[256];
    snprintf(want, sizeof want, "%s:4: the seal's signature does not verify", f->a);
    const char *paths[] = {f->a};
    expect(f, paths, 1, f->pk, want);
}

static void test_deleted_line(void **state)
{
    struct fx *f = *state;
    struct gw_audit_chain c = {0};
    write_log(f, f->a, &c, 5);
    char **l = lines_of(f->a);
    free(l[2]);
    for (int i = 2; l[i] != NULL; i++) {
        l[i] = l[i + 1];
    }
    write_lines(f->a, l);
    free_lines(l);
    char want[256];
    snprintf(want, sizeof want, "%s:3: seq is 3 where 2 was expected", f->a);
    const char *paths[] = {f->a};
    expect(f, paths, 1, f->pk, want);
}

static void test_reordered(void **state)
{
    struct fx *f = *state;
    struct gw_audit_chain c = {0};
    write_log(f, f->a, &c, 5);
    char **l = lines_of(f->a);
    char *t = l[2];
    l[2] = l[3];
    l[3] = t;
    write_lines(f->a, l);
    free_lines(l);
    char want[256];
    snprintf(want, sizeof want, "%s:3: seq is 3 where 2 was expected", f->a);
    const char *paths[] = {f->a};
    expect(f, paths, 1, f->pk, want);
}

static void test_torn_last_line_is_a_warning(void **state)
{
    struct fx *f = *state;
    struct gw_audit_chain c = {0};
    write_log(f, f->a, &c, 5);
    FILE *out = fopen(f->a, "ab");
    fputs("{\"v\":1,\"seq\":7,\"prev\":\"ab", out); /* a crash mid-write */
    fclose(out);
    const char *paths[] = {f->a};
    struct gw_audit_verify_result r;
    char *text = NULL;
    size_t len = 0;
    FILE *warn = open_memstream(&text, &len);
    gw_audit_verify(paths, 1, f->pk, warn, &r);
    fclose(warn);
    assert_true(r.ok);
    assert_int_equal(r.torn, 1);
    assert_non_null(strstr(text, ":8: warning: torn last line"));
    free(text);
}

static void test_cut_tail_is_unsealed(void **state)
{
    struct fx *f = *state;
    struct gw_audit_chain c = {0};
    write_log(f, f->a, &c, 5);
    char **l = lines_of(f->a);
    free(l[6]);
    l[6] = NULL; /* the seal is gone: five records no signature covers */
    write_lines(f->a, l);
    free_lines(l);
    const char *paths[] = {f->a};
    struct gw_audit_verify_result r;
    gw_audit_verify(paths, 1, f->pk, NULL, &r);
    assert_true(r.ok);
    assert_int_equal(r.unsealed, 5);
}

static void test_cut_head(void **state)
{
    struct fx *f = *state;
    struct gw_audit_chain c = {0};
    write_log(f, f->a, &c, 5);
    char **l = lines_of(f->a);
    free(l[0]);
    for (int i = 0; l[i] != NULL; i++) {
        l[i] = l[i + 1];
    }
    write_lines(f->a, l);
    free_lines(l);
    char want[256];
    snprintf(want, sizeof want, "%s:1: the file does not begin with a genesis line", f->a);
    const char *paths[] = {f->a};
    expect(f, paths, 1, f->pk, want);
}

static void test_wrong_key(void **state)
{
    struct fx *f = *state;
    struct gw_audit_chain c = {0};
    write_log(f, f->a, &c, 1);
    char want[256];
    snprintf(want, sizeof want, "%s:1: the genesis's signature does not verify", f->a);
    const char *paths[] = {f->a};
    expect(f, paths, 1, f->other, want);
}

static void test_series(void **state)
{
    struct fx *f = *state;
    struct gw_audit_chain c = {0};
    write_log(f, f->a, &c, 3);
    write_log(f, f->b, &c, 3); /* the second file's genesis continues the first's chain */
    const char *paths[] = {f->a, f->b};
    expect(f, paths, 2, f->pk, NULL);
    const char *swapped[] = {f->b, f->a};
    char want[256];
    snprintf(want, sizeof want, "%s:1: seq is 0 where 10 was expected", f->a);
    expect(f, swapped, 2, f->pk, want);
    /* A file missing from the middle of a series breaks it too. */
    struct gw_audit_chain c2 = c;
    char third[160];
    snprintf(third, sizeof third, "%s/c.log", f->dir);
    write_log(f, third, &c2, 1);
    const char *gap[] = {f->a, third};
    snprintf(want, sizeof want, "%s:1: seq is 10 where 5 was expected", third);
    expect(f, gap, 2, f->pk, want);
}

static void test_garbage_line(void **state)
{
    struct fx *f = *state;
    struct gw_audit_chain c = {0};
    write_log(f, f->a, &c, 3);
    char **l = lines_of(f->a);
    free(l[2]);
    l[2] = strdup("{\"v\":1,\"seq\":2,\"prev\":\"x\"\n");
    write_lines(f->a, l);
    free_lines(l);
    char want[256];
    snprintf(want, sizeof want, "%s:3: not a JSON object", f->a);
    const char *paths[] = {f->a};
    expect(f, paths, 1, f->pk, want);
}

int main(void)
{
    if (sodium_init() < 0) {
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_intact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_edited_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_edited_seal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deleted_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reordered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_last_line_is_a_warning, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cut_tail_is_unsealed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cut_head, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_series, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage_line, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
