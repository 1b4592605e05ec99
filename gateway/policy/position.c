/*
 * position: lines in a policy file's text. Jansson keeps no positions once a document is parsed,
 * so the text (valid JSON by then) is scanned again for the element a message is about.
 */
#include <string.h>

#include "policy/policy_internal.h"

struct scan {
    const char *p;
    const char *end;
    int line;
};

static void skip_space(struct scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\r' || *s->p == '\n')) {
        s->line += *s->p == '\n';
        s->p++;
    }
}

/* At a '"': moves past the closing one (JSON strings hold no raw line breaks). */
static void skip_string(struct scan *s)
{
    for (s->p++; s->p < s->end && *s->p != '"'; s->p++) {
        if (*s->p == '\\' && s->p + 1 < s->end) {
            s->p++;
        }
    }
    if (s->p < s->end) {
        s->p++;
    }
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
            while (s->p < s->end && strchr(",:]}\" \t\r\n", *s->p) == NULL) {
                s->p++;
            }
        }
    } while (depth > 0 && s->p < s->end);
}

/* After a member or an item: true when a ',' follows (and is passed). */
static bool next_comma(struct scan *s)
{
    skip_space(s);
    if (s->p < s->end && *s->p == ',') {
        s->p++;
        return true;
    }
    return false;
}

/* At a value: follows steps; best is the line of the last step followed. */
static int follow(struct scan *s, const struct policy_step *st, size_t n, int best)
{
    skip_space(s);
    if (n == 0 || s->p >= s->end) {
        return best;
    }
    if (st->key != NULL) {
        if (*s->p != '{') {
            return best;
        }
        s->p++;
        skip_space(s);
        while (s->p < s->end && *s->p == '"') {
            const char *name = s->p + 1;
            int line = s->line;
            skip_string(s);
            /* Compared as written: a key spelt with escapes is not found (its parent's line). */
            size_t len = (size_t)(s->p - 1 - name);
            bool match = len == strlen(st->key) && memcmp(name, st->key, len) == 0;
            skip_space(s);
            s->p += s->p < s->end; /* ':' */
            if (match) {
                return follow(s, st + 1, n - 1, line);
            }
            skip_value(s);
            if (!next_comma(s)) {
                return best;
            }
            skip_space(s);
        }
        return best;
    }
    if (*s->p != '[') {
        /* A single value that stands for a list of one: item 0 is the value itself. */
        return st->index == 0 ? follow(s, st + 1, n - 1, s->line) : best;
    }
    s->p++;
    for (size_t i = 0;; i++) {
        skip_space(s);
        if (s->p >= s->end || *s->p == ']') {
            return best;
        }
        if (i == st->index) {
            return follow(s, st + 1, n - 1, s->line);
        }
        skip_value(s);
        if (!next_comma(s)) {
            return best;
        }
    }
}

int policy_line(const struct policy_report *r, const struct policy_step *steps, size_t n)
{
    if (r->text == NULL) {
        return 0;
    }
    struct scan s = {.p = r->text, .end = r->text + r->len, .line = 1};
    skip_space(&s);
    return follow(&s, steps, n, s.line);
}

int policy_too_deep(const char *text, size_t len, unsigned max)
{
    unsigned depth = 0;
    int line = 1;
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
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
            line++;
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
