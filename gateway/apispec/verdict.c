/*
 * The wording of refusals: the parameter's path, what the caller sent, what was expected. Every
 * piece is bounded, so a verdict always fits GW_APISPEC_MSG_MAX, and nothing here allocates.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "apispec/apispec_internal.h"

bool apispec_refuse(struct check *c, const char *code, const char *fmt, ...)
{
    struct gw_apispec_verdict *v = c->verdict;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(v->message, sizeof v->message, fmt, ap);
    va_end(ap);
    if (n < 0) {
        snprintf(v->message, sizeof v->message, "The parameters are not valid.");
    } else if ((size_t)n >= sizeof v->message) {
        apispec_mark_cut(v->message, sizeof v->message);
    }
    v->code = code;
    return false;
}

size_t apispec_path_push(struct check *c, const char *name)
{
    size_t old = c->len;
    size_t dot = old > 0 ? 1 : 0;
    size_t n = strlen(name);
    if (dot + n < sizeof c->path - old) {
        c->path[old] = '.';
        memcpy(c->path + old + dot, name, n + 1);
        c->len += dot + n;
    } else {
        c->path[old] = '\0'; /* cannot happen: load bounds names, the check bounds depth */
    }
    return old;
}

size_t apispec_path_push_index(struct check *c, size_t i)
{
    char index[24];
    snprintf(index, sizeof index, "%zu", i);
    return apispec_path_push(c, index);
}

void apispec_path_pop(struct check *c, size_t old)
{
    c->len = old;
    c->path[old] = '\0';
}

const char *apispec_path_clip(char out[DEEP_BUF], const struct check *c)
{
    if (c->len < DEEP_BUF) {
        memcpy(out, c->path, c->len + 1);
    } else {
        memcpy(out, c->path, DEEP_HEAD);
        memcpy(out + DEEP_HEAD, "...", 3);
        memcpy(out + DEEP_HEAD + 3, c->path + c->len - DEEP_TAIL, DEEP_TAIL + 1);
    }
    return out;
}

const char *apispec_received(char out[RECEIVED_BUF], const json_t *j)
{
    char echo[ECHO_BUF];
    switch (json_typeof(j)) {
    case JSON_STRING:
        snprintf(out, RECEIVED_BUF, "string \"%s\"",
                 apispec_clip(echo, json_string_value(j), json_string_length(j)));
        break;
    case JSON_INTEGER:
        snprintf(out, RECEIVED_BUF, "number %" JSON_INTEGER_FORMAT, json_integer_value(j));
        break;
    case JSON_REAL:
        snprintf(out, RECEIVED_BUF, "number %.15g", json_real_value(j));
        break;
    case JSON_TRUE:
        snprintf(out, RECEIVED_BUF, "true");
        break;
    case JSON_FALSE:
        snprintf(out, RECEIVED_BUF, "false");
        break;
    case JSON_NULL:
        snprintf(out, RECEIVED_BUF, "null");
        break;
    case JSON_OBJECT:
        snprintf(out, RECEIVED_BUF, "an object");
        break;
    case JSON_ARRAY:
        snprintf(out, RECEIVED_BUF, "a list");
        break;
    default:
        snprintf(out, RECEIVED_BUF, "an unknown value");
        break;
    }
    return out;
}

static const char *kind_text(enum kind k)
{
    switch (k) {
    case KIND_STRING:
        return "a string";
    case KIND_INT64:
        return "an integer (int64: a JSON integer, or a decimal string without leading zeros or "
               "'+')";
    case KIND_UINT64:
        return "an integer (uint64: a JSON integer, or a decimal string without leading zeros or "
               "'+')";
    case KIND_INTEGER:
        return "an integer (a JSON integer, or a decimal string without leading zeros or '+')";
    case KIND_FLOAT:
        return "a number (float: a JSON number or a decimal string)";
    case KIND_BOOL:
        return "a boolean (true or false)";
    case KIND_OBJECT:
        return "an object";
    case KIND_NONE:
    default:
        return "a value";
    }
}

const char *apispec_range_text(enum kind kind)
{
    switch (kind) {
    case KIND_UINT64:
        return "0 to 18446744073709551615 (uint64)";
    case KIND_INTEGER:
        return "-9223372036854775808 to 18446744073709551615 (64 bits)";
    case KIND_INT64:
    default:
        return "-9223372036854775808 to 9223372036854775807 (int64)";
    }
}

const char *apispec_expected(char buf[EXPECTED_BUF], const struct member *m, bool item)
{
    if (m->list && !item) {
        snprintf(buf, EXPECTED_BUF, "a list of %s %s", m->type_name,
                 m->kind == KIND_OBJECT ? "objects" : "values");
    } else if (m->kind == KIND_OBJECT) {
        snprintf(buf, EXPECTED_BUF, "an object (%s)", m->type_name);
    } else {
        snprintf(buf, EXPECTED_BUF, "%s", kind_text(m->kind));
    }
    return buf;
}

bool apispec_wrong_type(struct check *c, const struct member *m, const json_t *j, bool item)
{
    char want[EXPECTED_BUF], got[RECEIVED_BUF];
    return apispec_refuse(c, "InvalidParameter", "Parameter \"%s\" must be %s, got %s.", c->path,
                          apispec_expected(want, m, item), apispec_received(got, j));
}

/* Lists the enum values of m for a message. */
static const char *enum_text(char buf[LIST_BUF], const struct member *m)
{
    char item[ECHO_BUF + 32];
    size_t len = 0;
    bool full = false;
    buf[0] = '\0';
    for (size_t i = 0; i < m->n_enums; i++) {
        const struct enum_value *e = &m->enums[i];
        switch (m->kind) {
        case KIND_STRING: {
            char echo[ECHO_BUF];
            snprintf(item, sizeof item, "\"%s\"", apispec_clip(echo, e->s, e->len));
            break;
        }
        case KIND_INT64:
        case KIND_UINT64:
        case KIND_INTEGER:
            snprintf(item, sizeof item, "%" PRId64, e->i);
            break;
        case KIND_FLOAT:
            snprintf(item, sizeof item, "%.15g", e->f);
            break;
        case KIND_BOOL:
        case KIND_OBJECT:
        case KIND_NONE:
        default:
            snprintf(item, sizeof item, "?");
            break;
        }
        apispec_list_add(buf, &len, &full, item);
    }
    return buf;
}

bool apispec_not_in_enum(struct check *c, const struct member *m, const json_t *j)
{
    char list[LIST_BUF], got[RECEIVED_BUF];
    return apispec_refuse(c, "InvalidParameterValue", "Parameter \"%s\" must be one of %s; got %s.",
                          c->path, enum_text(list, m), apispec_received(got, j));
}

bool apispec_too_deep(struct check *c)
{
    char path[DEEP_BUF];
    return apispec_refuse(c, "InvalidParameterValue",
                          "Parameter \"%s\" is nested too deeply: objects may nest at most %d "
                          "levels, the parameters themselves being level 1.",
                          apispec_path_clip(path, c), GW_APISPEC_MAX_DEPTH);
}
