/* jsonpos: lines of elements in a JSON text. See jsonpos.h. */
#include "core/jsonpos.h"

#include <limits.h>
#include <stdbool.h>
#include <string.h>

/* A cursor in text[0..len): p never passes end. */
struct scan {
    const char *p;
    const char *end;
    int line;
};

static void next_line(int *line)
{
    if (*line < INT_MAX) {
        (*line)++;
    }
}

static void skip_space(struct scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\r' || *s->p == '\n')) {
        if (*s->p == '\n') {
            next_line(&s->line);
        }
        s->p++;
    }
}

/*
 * At a '"': moves past the closing one and returns true, or to the end and returns false when
 * there is none. JSON strings hold no raw line breaks, so no line is counted here.
 */
static bool skip_string(struct scan *s)
{
    for (s->p++; s->p < s->end; s->p++) {
        if (*s->p == '"') {
            s->p++;
            return true;
        }
        if (*s->p == '\\' && s->end - s->p > 1) {
            s->p++;
        }
    }
    return false;
}

/* True for a byte that ends a number, true, false or null (not NUL: strchr would match it). */
static bool ends_scalar(char c)
{
    return c != '\0' && strchr(",:]}\" \t\r\n", c) != NULL;
}

/* Moves past one value of any kind. */
static void skip_value(struct scan *s)
{
    size_t depth = 0;
    do {
        skip_space(s);
        if (s->p >= s->end) {
            return;
        }
        char c = *s->p;
        if (c == '"') {
            skip_string(s);
        } else if (c == '{' || c == '[') {
            depth++;
            s->p++;
        } else if (c == '}' || c == ']') {
            depth -= depth > 0;
            s->p++;
        } else if (depth > 0 && (c == ',' || c == ':')) {
            s->p++;
        } else {
            /* A number, true, false or null: up to the next delimiter. */
            while (s->p < s->end && !ends_scalar(*s->p)) {
                s->p++;
            }
        }
    } while (depth > 0 && s->p < s->end);
}

/* After a member or an item: true when a ',' follows (and is passed). */
static bool skip_comma(struct scan *s)
{
    skip_space(s);
    if (s->p < s->end && *s->p == ',') {
        s->p++;
        return true;
    }
    return false;
}

/* At an object: moves to the value of its first member named key; *line is the key's line. */
static bool find_key(struct scan *s, const char *key, int *line)
{
    size_t keylen = strlen(key);
    if (*s->p != '{') {
        return false;
    }
    s->p++;
    skip_space(s);
    while (s->p < s->end && *s->p == '"') {
        const char *name = s->p + 1;
        int at = s->line;
        if (!skip_string(s)) {
            return false;
        }
        bool match = (size_t)(s->p - 1 - name) == keylen && memcmp(name, key, keylen) == 0;
        skip_space(s);
        if (s->p >= s->end || *s->p != ':') {
            return false;
        }
        s->p++;
        if (match) {
            *line = at;
            return true;
        }
        skip_value(s);
        if (!skip_comma(s)) {
            return false;
        }
        skip_space(s);
    }
    return false;
}

/* At a list (or a bare value, its item 0): moves to item index; *line is where it starts. */
static bool find_item(struct scan *s, size_t index, int *line)
{
    if (*s->p != '[') {
        if (index != 0) {
            return false;
        }
        *line = s->line;
        return true;
    }
    s->p++;
    for (size_t i = 0;; i++) {
        skip_space(s);
        if (s->p >= s->end || *s->p == ']') {
            return false;
        }
        if (i == index) {
            *line = s->line;
            return true;
        }
        skip_value(s);
        if (!skip_comma(s)) {
            return false;
        }
    }
}

/*
 * Follows steps from the top of text[0..len): returns how many could be followed, *line being
 * the line of the last one (of the top value when none could).
 */
static size_t follow(const char *text, size_t len, const struct gw_jsonpos_step *steps, size_t n,
                     int *line)
{
    struct scan s = {.p = text, .end = text + len, .line = 1};
    size_t done = 0;

    skip_space(&s);
    *line = s.line;
    for (; done < n; done++) {
        skip_space(&s);
        if (s.p >= s.end) {
            break;
        }
        bool found = steps[done].key != NULL ? find_key(&s, steps[done].key, line)
                                             : find_item(&s, steps[done].index, line);
        if (!found) {
            break;
        }
    }
    return done;
}

int gw_jsonpos_line(const char *text, size_t len, const struct gw_jsonpos_step *steps, size_t n)
{
    int line;
    if (text == NULL || follow(text, len, steps, n, &line) < n) {
        return 0;
    }
    return line;
}

int gw_jsonpos_nearest(const char *text, size_t len, const struct gw_jsonpos_step *steps, size_t n)
{
    int line;
    if (text == NULL) {
        return 0;
    }
    follow(text, len, steps, n, &line);
    return line;
}

int gw_jsonpos_too_deep(const char *text, size_t len, unsigned max)
{
    unsigned depth = 0;
    int line = 1;
    bool in_string = false;
    for (size_t i = 0; text != NULL && i < len; i++) {
        char c = text[i];
        if (in_string) {
            if (c == '\\') {
                i++;
            } else if (c == '"') {
                in_string = false;
            }
            continue;
        }
        if (c == '\n') {
            next_line(&line);
        } else if (c == '"') {
            in_string = true;
        } else if (c == '{' || c == '[') {
            if (++depth > max) {
                return line;
            }
        } else if ((c == '}' || c == ']') && depth > 0) {
            depth--;
        }
    }
    return 0;
}
