/*
 * libFuzzer target for jsonpos: the input is JSON text (or not), scanned along a few fixed paths
 * and, when Jansson parses it, along the paths of its own keys and items.
 *
 * Checks, beyond the sanitizers (the input is read from an allocation of exactly its size, so
 * an overread is caught): every line lies between 1 and the text's last line, or is 0 where
 * allowed; gw_jsonpos_nearest agrees with gw_jsonpos_line wherever that finds the path; and, in
 * text Jansson parses, the line given for a key holds that key, quoted, as written.
 */
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/jsonpos.h"

#define MAX_STEPS 4
#define MAX_CHILDREN 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool cond)
{
    if (!cond) {
        abort();
    }
}

struct input {
    const char *text;
    size_t len;
    int lines;  /* '\n' count + 1: no line given may be larger */
    bool valid; /* Jansson parsed it: no string holds a raw line break, lines are exact */
};

/* True when line `line` of the text holds "key" (quoted). */
static bool line_holds_key(const struct input *in, int line, const char *key)
{
    const char *p = in->text;
    const char *end = in->text + in->len;
    for (int i = 1; i < line; i++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        check(nl != NULL);
        p = nl + 1;
    }
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *stop = nl != NULL ? nl : end;
    size_t klen = strlen(key);
    for (; (size_t)(stop - p) >= klen + 2; p++) {
        if (p[0] == '"' && memcmp(p + 1, key, klen) == 0 && p[klen + 1] == '"') {
            return true;
        }
    }
    return false;
}

/* Scans along steps[0..n) and checks what is said. */
static void scan(const struct input *in, const struct gw_jsonpos_step *steps, size_t n)
{
    int line = gw_jsonpos_line(in->text, in->len, steps, n);
    int nearest = gw_jsonpos_nearest(in->text, in->len, steps, n);
    check(line >= 0 && line <= in->lines);
    check(nearest >= 1 && nearest <= in->lines);
    check(line == 0 || nearest == line);
    if (in->valid && line > 0 && n > 0 && steps[n - 1].key != NULL) {
        check(line_holds_key(in, line, steps[n - 1].key));
    }
}

/* Every path of up to MAX_STEPS steps into value, over its first MAX_CHILDREN children. */
static void walk(const struct input *in, json_t *value, struct gw_jsonpos_step *steps, size_t n)
{
    scan(in, steps, n);
    if (n == MAX_STEPS) {
        return;
    }
    size_t count = 0;
    if (json_is_object(value)) {
        const char *key;
        json_t *child;
        json_object_foreach (value, key, child) {
            if (count++ == MAX_CHILDREN) {
                break;
            }
            steps[n] = (struct gw_jsonpos_step){key, 0};
            walk(in, child, steps, n + 1);
        }
    } else if (json_is_array(value)) {
        for (size_t i = 0; i < json_array_size(value) && i < MAX_CHILDREN; i++) {
            steps[n] = (struct gw_jsonpos_step){NULL, i};
            walk(in, json_array_get(value, i), steps, n + 1);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct gw_jsonpos_step fixed[][MAX_STEPS] = {
        {{"a", 0}},
        {{"statement", 0}, {NULL, 1}, {"action", 0}, {NULL, 2}},
        {{NULL, 0}, {NULL, 0}, {NULL, 1}, {"", 0}},
    };
    struct input in = {.text = (const char *)data, .len = size, .lines = 1};
    for (size_t i = 0; i < size; i++) {
        in.lines += data[i] == '\n';
    }
    if (size == 0) {
        in.text = ""; /* the replay runner may hand NULL for an empty input */
    }
    json_t *root = json_loadb(in.text, in.len, JSON_REJECT_DUPLICATES, NULL);
    in.valid = root != NULL;

    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
        for (size_t n = 0; n <= MAX_STEPS; n++) {
            scan(&in, fixed[i], n);
        }
    }
    int deep = gw_jsonpos_too_deep(in.text, in.len, 3);
    check(deep >= 0 && deep <= in.lines);

    if (root != NULL) {
        struct gw_jsonpos_step steps[MAX_STEPS];
        walk(&in, root, steps, 0);
        json_decref(root);
    }
    return 0;
}
