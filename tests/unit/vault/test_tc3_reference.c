/*
 * Checks tests/data/tc3-vectors.json, the project's copy of Tencent's TC3 vectors that test_tc3.c
 * and test_vault.c sign with, against the reference files in ../shared/vectors, field for field.
 *
 * The reference files live beside the project ($TCGW_SHARED_DIR, else ../../shared from tests/)
 * and are not always there. When they are missing this program says so and exits 77, which ctest
 * reports as skipped (SKIP_RETURN_CODE): not as passed, and not as failed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define SKIPPED 77
#define OFFICIAL_FILE "tc3-official.json"
#define SDK_FILE "tc3-sdk.json"

static char vectors_dir[PATH_MAX];

/* tests/data/tc3-vectors.json, found from TCGW_SOURCE_DIR or from tests/ (ctest's directory). */
static json_t *load_ours(void)
{
    char path[PATH_MAX];
    const char *src = getenv("TCGW_SOURCE_DIR");
    if (src != NULL) {
        snprintf(path, sizeof path, "%s/tests/data/tc3-vectors.json", src);
    } else {
        snprintf(path, sizeof path, "data/tc3-vectors.json");
    }
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    if (root == NULL) {
        fail_msg("cannot load %s: %s (line %d)", path, jerr.text, jerr.line);
    }
    return root;
}

static const char *str(json_t *v, const char *key)
{
    json_t *f = json_object_get(v, key);
    return json_is_string(f) ? json_string_value(f) : NULL;
}

/* Both documents, held here so that a failing check (a longjmp) does not leak them. */
struct docs {
    json_t *ours;
    json_t *theirs;
};

static int setup(void **state)
{
    struct docs *d = calloc(1, sizeof *d);
    if (d == NULL) {
        return -1;
    }
    *state = d;
    return 0;
}

static int teardown(void **state)
{
    struct docs *d = *state;
    json_decref(d->ours);
    json_decref(d->theirs);
    free(d);
    return 0;
}

/* Every vector of the reference file is in our copy, with every field equal. */
static void cross_check_file(struct docs *d, const char *file)
{
    char path[PATH_MAX + 32];
    json_error_t jerr;
    d->ours = load_ours();
    snprintf(path, sizeof path, "%s/%s", vectors_dir, file);
    d->theirs = json_load_file(path, 0, &jerr);
    if (d->theirs == NULL) {
        fail_msg("cannot load %s: %s", path, jerr.text);
    }
    json_t *ours_v = json_object_get(d->ours, "vectors");
    json_t *theirs_v = json_object_get(d->theirs, "vectors");
    assert_true(json_is_array(ours_v));
    assert_true(json_is_array(theirs_v));
    size_t i, j, ours_from_file = 0;
    json_t *tv, *ov;
    json_array_foreach (ours_v, j, ov) {
        const char *from = str(json_object_get(ov, "from"), "file");
        ours_from_file += from != NULL && strcmp(from, file) == 0;
    }
    assert_int_equal(ours_from_file, json_array_size(theirs_v));
    json_array_foreach (theirs_v, i, tv) {
        const char *name = str(tv, "name");
        json_t *match = NULL;
        if (name == NULL) {
            fail_msg("%s: vector %zu has no name", path, i);
        }
        json_array_foreach (ours_v, j, ov) {
            json_t *from = json_object_get(ov, "from");
            const char *from_file = str(from, "file");
            const char *from_name = str(from, "name");
            if (from_file != NULL && from_name != NULL && strcmp(from_file, file) == 0 &&
                strcmp(from_name, name) == 0) {
                match = ov;
            }
        }
        if (match == NULL) {
            fail_msg("%s: vector %s is missing from tests/data/tc3-vectors.json", path, name);
        }
        const char *key;
        json_t *value;
        json_object_foreach (tv, key, value) {
            if (!json_equal(value, json_object_get(match, key))) {
                fail_msg("%s: vector %s: \"%s\" differs in tests/data/tc3-vectors.json", path, name,
                         key);
            }
        }
    }
}

static void test_official_vectors(void **state)
{
    cross_check_file(*state, OFFICIAL_FILE);
}

static void test_sdk_vectors(void **state)
{
    cross_check_file(*state, SDK_FILE);
}

int main(void)
{
    struct stat st;
    const char *shared = getenv("TCGW_SHARED_DIR");
    if (shared == NULL || *shared == '\0') {
        shared = "../../shared";
    }
    int n = snprintf(vectors_dir, sizeof vectors_dir, "%s/vectors", shared);
    if (n < 0 || (size_t)n >= sizeof vectors_dir) {
        fprintf(stderr, "TCGW_SHARED_DIR is too long\n");
        return 1;
    }
    if (stat(vectors_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        printf("skipped: %s is not a directory, so tests/data/tc3-vectors.json cannot be checked "
               "against Tencent's reference vectors (set TCGW_SHARED_DIR to the directory that "
               "holds vectors/)\n",
               vectors_dir);
        return SKIPPED;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_official_vectors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sdk_vectors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
