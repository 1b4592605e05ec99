/*
 * gw_apispec_check_injected: the value rules of a string member (max_length, ascii, enum) on the
 * value the gateway puts in place of a placeholder. The rest of the call was checked as sent
 * (gw_apispec_check_sent); only these strings changed, so checking them completes the check of
 * the call as it is sent upstream, without building a second JSON tree that would hold the
 * secret in the JSON library's heap. Messages never quote the value.
 */
#include <string.h>

#include "apispec/apispec_internal.h"

/* The member at path below input, following objects and the object items of lists. */
static const struct member *member_at(const struct object *input, const char *const *path, size_t n)
{
    const struct object *o = input;
    for (size_t i = 0; i < n; i++) {
        const struct member *m = o != NULL ? apispec_find_member(o, path[i]) : NULL;
        if (m == NULL || i + 1 == n) {
            return m;
        }
        o = m->kind == KIND_OBJECT ? m->object : NULL;
    }
    return NULL;
}

bool gw_apispec_check_injected(const struct gw_apispec *spec, const char *service,
                               const char *version, const char *action, const char *const *path,
                               size_t n, const char *where, const char *what,
                               const unsigned char *value, size_t len,
                               struct gw_apispec_verdict *verdict)
{
    struct check c;
    memset(&c, 0, sizeof c);
    c.verdict = verdict;
    verdict->code = NULL;
    verdict->message[0] = '\0';
    const struct version *v = spec != NULL && service != NULL && version != NULL
                                  ? apispec_find_version(spec, service, version)
                                  : NULL;
    c.action = v != NULL && action != NULL ? apispec_find_action(v, action) : NULL;
    const struct member *m = c.action != NULL ? member_at(c.action->input, path, n) : NULL;
    if (m == NULL || m->kind != KIND_STRING) {
        return apispec_refuse(&c, "InternalError",
                              "tcgw found no string parameter \"%s\" to put %s in; nothing was "
                              "sent to Tencent Cloud.",
                              where, what);
    }
    if (len > m->max_length) {
        return apispec_refuse(&c, "InvalidParameterValue",
                              "Parameter \"%s\" must be at most %zu bytes long; %s put in its "
                              "place holds %zu bytes. Nothing was sent to Tencent Cloud.",
                              where, m->max_length, what, len);
    }
    if (m->ascii) {
        for (size_t i = 0; i < len; i++) {
            if (value[i] < 0x20 || value[i] > 0x7e) {
                return apispec_refuse(&c, "InvalidParameterValue",
                                      "Parameter \"%s\" must contain only printable ASCII "
                                      "characters; byte %zu of %s is not one. Nothing was sent "
                                      "to Tencent Cloud.",
                                      where, i, what);
            }
        }
    }
    if (m->n_enums > 0) {
        for (size_t i = 0; i < m->n_enums; i++) {
            if (m->enums[i].len == len && memcmp(m->enums[i].s, value, len) == 0) {
                return true;
            }
        }
        return apispec_refuse(&c, "InvalidParameterValue",
                              "Parameter \"%s\" takes one of the values its description lists; "
                              "%s is none of them. Nothing was sent to Tencent Cloud.",
                              where, what);
    }
    return true;
}
