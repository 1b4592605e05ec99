/* Unit tests for gateway/vault/role.c and temporary credentials: expiry, the token, the store
 * entries of kinds 3 and 4, the refresh schedule, and the swap of a role's keys under signers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vault/vault.h"
#include "vault/vault_int.h" /* the clock, to move it */

static _Atomic int64_t fake_now = 1700000000;

static int64_t fake_clock(void)
{
    return atomic_load(&fake_now);
}

struct fixture {
    char dir[64];
    char key[PATH_MAX];
    char store[PATH_MAX];
    char msg[512];
    struct gw_vault *vault;
};

static const struct gw_vault_role_def ROLE = {"src", "qcs::cam::uin/1:roleName/r", "tcgw-test",
                                              "ap-guangzhou", 60};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "/tmp/tcgw-role-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->key, sizeof f->key, "%s/master.key", f->dir);
    snprintf(f->store, sizeof f->store, "%s/store", f->dir);
    assert_int_equal(gw_vault_keygen(f->key, f->msg, sizeof f->msg), GW_OK);
    assert_int_equal(gw_vault_open(f->key, f->store, &f->vault, f->msg, sizeof f->msg), GW_OK);
    f->vault->now = fake_clock;
    atomic_store(&fake_now, 1700000000);
    assert_int_equal(
        gw_vault_put(f->vault, "src", "AKIDsrc", 7, "srckey", 6, f->msg, sizeof f->msg), GW_OK);
    assert_int_equal(gw_vault_put_role(f->vault, "role", &ROLE, f->msg, sizeof f->msg), GW_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    gw_vault_free(f->vault);
    unlink(f->key);
    unlink(f->store);
    char lock[PATH_MAX + 8];
    snprintf(lock, sizeof lock, "%s.lock", f->store);
    unlink(lock);
    rmdir(f->dir);
    free(f);
    return 0;
}

static enum gw_err sign(struct gw_vault *v, const char *name, struct gw_buf *auth,
                        struct gw_buf *token)
{
    struct gw_tc3_request req = {.service = "gaap",
                                 .host = "gaap.tencentcloudapi.com",
                                 .timestamp = fake_clock(),
                                 .content_type = "application/json",
                                 .payload = (const unsigned char *)"{}",
                                 .payload_len = 2};
    return gw_vault_sign_token(v, name, &req, auth, token);
}

static void test_refresh_point(void **state)
{
    (void)state;
    assert_int_equal(gw_vault_refresh_point(1000, 1000 + 3600), 1000 + 2400);
    assert_int_equal(gw_vault_refresh_point(1000, 1000 + 12), 1000 + 8);
    assert_int_equal(gw_vault_refresh_point(1000, 900), 1000); /* already expired: now */
}

static void test_schedule(void **state)
{
    struct fixture *f = *state;
    int64_t t0 = fake_clock();
    assert_int_equal(gw_vault_role_count(f->vault), 1);
    assert_int_equal(gw_vault_role_due(f->vault, 0), 0); /* no keys: at once */
    assert_false(gw_vault_roles_ok(f->vault, f->msg, sizeof f->msg));
    assert_non_null(strstr(f->msg, "no temporary keys"));
    assert_int_equal(gw_vault_role_install(f->vault, 0, "AKIDtmp1", 8, "k1", 2, "tok1", 4, t0 + 60,
                                           f->msg, sizeof f->msg),
                     GW_OK);
    assert_int_equal(gw_vault_role_due(f->vault, 0), t0 + 40);
    assert_true(gw_vault_roles_ok(f->vault, f->msg, sizeof f->msg));
    /* A failure: retried GW_VAULT_RETRY_SECONDS later, readiness says why, keys still sign. */
    atomic_store(&fake_now, t0 + 40);
    gw_vault_role_failed(f->vault, 0, "STS unreachable");
    assert_int_equal(gw_vault_role_due(f->vault, 0), t0 + 40 + GW_VAULT_RETRY_SECONDS);
    assert_false(gw_vault_roles_ok(f->vault, f->msg, sizeof f->msg));
    assert_non_null(strstr(f->msg, "STS unreachable"));
    /* Near the expiry, retries are not put off past the last useful moment. */
    atomic_store(&fake_now, t0 + 56);
    gw_vault_role_failed(f->vault, 0, "again");
    assert_int_equal(gw_vault_role_due(f->vault, 0), t0 + 60 - GW_VAULT_EXPIRY_MARGIN - 1);
    assert_int_equal(gw_vault_role_due(f->vault, 1), INT64_MAX); /* no such role */
}

static void test_temporary_expiry_and_token(void **state)
{
    struct fixture *f = *state;
    struct gw_buf auth, token;
    int64_t t0 = fake_clock();
    gw_buf_init(&auth, 4096);
    gw_buf_init(&token, 4096);
    assert_int_equal(gw_vault_put_temporary(f->vault, "tmp", "AKIDt", 5, "key", 3, "TOKEN", 5,
                                            t0 + 10, f->msg, sizeof f->msg),
                     GW_OK);
    assert_int_equal(sign(f->vault, "tmp", &auth, NULL), GW_ERR_INVALID); /* no token buffer */
    assert_int_equal(sign(f->vault, "tmp", &auth, &token), GW_OK);
    assert_int_equal(token.len, 5);
    assert_memory_equal(token.data, "TOKEN", 5);
    assert_non_null(strstr(auth.data, "Credential=AKIDt/"));
    /* A static credential adds no token. */
    token.len = 0;
    assert_int_equal(sign(f->vault, "src", &auth, &token), GW_OK);
    assert_int_equal(token.len, 0);
    /* Within the margin of the expiry, and after it: refused, buffers unchanged. */
    atomic_store(&fake_now, t0 + 10 - GW_VAULT_EXPIRY_MARGIN);
    size_t before = auth.len;
    assert_int_equal(sign(f->vault, "tmp", &auth, &token), GW_ERR_EXPIRED);
    assert_int_equal(auth.len, before);
    assert_int_equal(token.len, 0);
    /* A role without keys: refused the same way. */
    assert_int_equal(sign(f->vault, "role", &auth, &token), GW_ERR_EXPIRED);
    /* Bad fields. */
    assert_int_equal(gw_vault_put_temporary(f->vault, "t2", "AKIDt", 5, "key", 3, "", 0, t0 + 10,
                                            f->msg, sizeof f->msg),
                     GW_ERR_INVALID);
    assert_int_equal(gw_vault_put_temporary(f->vault, "t2", "AKIDt", 5, "key", 3, "a b", 3, t0 + 10,
                                            f->msg, sizeof f->msg),
                     GW_ERR_INVALID);
    assert_int_equal(gw_vault_put_temporary(f->vault, "t2", "AKIDt", 5, "key", 3, "tok", 3, 0,
                                            f->msg, sizeof f->msg),
                     GW_ERR_INVALID);
    struct gw_vault_role_def bad = ROLE;
    bad.duration = 5;
    assert_int_equal(gw_vault_put_role(f->vault, "r2", &bad, f->msg, sizeof f->msg),
                     GW_ERR_INVALID);
    bad = ROLE;
    bad.source = "r2";
    assert_int_equal(gw_vault_put_role(f->vault, "r2", &bad, f->msg, sizeof f->msg),
                     GW_ERR_INVALID);
    bad = ROLE;
    bad.session_name = "has space";
    assert_int_equal(gw_vault_put_role(f->vault, "r2", &bad, f->msg, sizeof f->msg),
                     GW_ERR_INVALID);
    gw_buf_free(&auth);
    gw_buf_free(&token);
}

static void test_store_round_trip(void **state)
{
    struct fixture *f = *state;
    struct gw_vault *v = NULL;
    struct gw_vault_info info;
    assert_int_equal(gw_vault_put_temporary(f->vault, "tmp", "AKIDtemp", 8, "key", 3, "TOKEN", 5,
                                            1800000000, f->msg, sizeof f->msg),
                     GW_OK);
    assert_int_equal(gw_vault_role_install(f->vault, 0, "AKIDtmp1", 8, "k1", 2, "tok1", 4,
                                           fake_clock() + 60, f->msg, sizeof f->msg),
                     GW_OK);
    assert_int_equal(gw_vault_save(f->vault, f->store, f->msg, sizeof f->msg), GW_OK);
    assert_int_equal(gw_vault_open(f->key, f->store, &v, f->msg, sizeof f->msg), GW_OK);
    assert_int_equal(gw_vault_count(v), 3);
    assert_int_equal(gw_vault_info(v, 0, &info), GW_OK);
    assert_string_equal(info.name, "role");
    assert_int_equal(info.type, GW_VAULT_ROLE);
    assert_string_equal(info.role_arn, ROLE.role_arn);
    assert_string_equal(info.session_name, ROLE.session_name);
    assert_string_equal(info.region, ROLE.region);
    assert_int_equal(info.duration, 60);
    assert_int_equal(info.expires, 0); /* a role's keys are never stored */
    assert_int_equal(gw_vault_info(v, 1, &info), GW_OK);
    assert_int_equal(info.type, GW_VAULT_STATIC);
    assert_int_equal(gw_vault_info(v, 2, &info), GW_OK);
    assert_int_equal(info.type, GW_VAULT_TEMPORARY);
    assert_int_equal(info.expires, 1800000000);
    assert_string_equal(info.id_tail, "temp");
    /* Adopting: the reopened vault's role gets a copy of the keys. */
    gw_vault_roles_adopt(v, f->vault);
    assert_int_equal(gw_vault_role_get(v, 0, &info), GW_OK);
    assert_string_equal(info.id_tail, "tmp1");
    /* A static put over a temporary one makes it static again. */
    assert_int_equal(gw_vault_put(v, "tmp", "AKIDstat", 8, "k", 1, f->msg, sizeof f->msg), GW_OK);
    assert_int_equal(gw_vault_info(v, 2, &info), GW_OK);
    assert_int_equal(info.type, GW_VAULT_STATIC);
    gw_vault_free(v);
}

/* ---- The swap under signers ---- */

struct signer {
    struct gw_vault *vault;
    atomic_bool *stop;
    unsigned long signatures;
    int bad;
};

static void *sign_loop(void *arg)
{
    struct signer *s = arg;
    struct gw_buf auth, token;
    gw_buf_init(&auth, 4096);
    gw_buf_init(&token, 4096);
    while (!atomic_load(s->stop)) {
        auth.len = 0;
        token.len = 0;
        if (sign(s->vault, "role", &auth, &token) != GW_OK) {
            s->bad++;
            continue;
        }
        /* The token and the SecretId come from one install: "tokN" with "AKIDtmpN". */
        char id[32];
        const char *c = strstr(auth.data, "Credential=");
        if (c == NULL || sscanf(c, "Credential=%31[^/]", id) != 1 ||
            strncmp(id, "AKIDtmp", 7) != 0 || token.len < 4 ||
            strncmp(id + 7, token.data + 3, token.len - 3) != 0 ||
            strlen(id + 7) != token.len - 3) {
            s->bad++;
        }
        s->signatures++;
    }
    gw_buf_free(&auth);
    gw_buf_free(&token);
    return NULL;
}

static void test_swap_under_signers(void **state)
{
    struct fixture *f = *state;
    atomic_bool stop = false;
    struct signer s[4];
    pthread_t t[4];
    char id[32], tok[32];
    int n = snprintf(id, sizeof id, "AKIDtmp%d", 0);
    int m = snprintf(tok, sizeof tok, "tok%d", 0);
    assert_int_equal(gw_vault_role_install(f->vault, 0, id, (size_t)n, "k0", 2, tok, (size_t)m,
                                           fake_clock() + 3600, f->msg, sizeof f->msg),
                     GW_OK);
    for (int i = 0; i < 4; i++) {
        s[i] = (struct signer){.vault = f->vault, .stop = &stop};
        assert_int_equal(pthread_create(&t[i], NULL, sign_loop, &s[i]), 0);
    }
    /* Retired keys wait for their grace: 16 may wait at once; a 17th install is refused. */
    for (int k = 1; k <= 16; k++) {
        usleep(5000);
        n = snprintf(id, sizeof id, "AKIDtmp%d", k);
        m = snprintf(tok, sizeof tok, "tok%d", k);
        assert_int_equal(gw_vault_role_install(f->vault, 0, id, (size_t)n, "kk", 2, tok, (size_t)m,
                                               fake_clock() + 3600, f->msg, sizeof f->msg),
                         GW_OK);
    }
    assert_int_equal(gw_vault_role_install(f->vault, 0, "AKIDtmp99", 9, "kk", 2, "tok99", 5,
                                           fake_clock() + 3600, f->msg, sizeof f->msg),
                     GW_ERR_BUSY);
    usleep(5000);
    atomic_store(&stop, true);
    unsigned long total = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(s[i].bad, 0);
        total += s[i].signatures;
    }
    assert_true(total > 16);
    struct gw_vault_info info;
    assert_int_equal(gw_vault_role_get(f->vault, 0, &info), GW_OK);
    assert_string_equal(info.id_tail, "mp16");
    gw_vault_roles_reap(f->vault); /* within the grace: nothing freed, nothing breaks */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refresh_point),
        cmocka_unit_test_setup_teardown(test_schedule, setup, teardown),
        cmocka_unit_test_setup_teardown(test_temporary_expiry_and_token, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_swap_under_signers, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
