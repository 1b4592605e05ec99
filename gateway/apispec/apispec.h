/*
 * apispec: API descriptions in the Tencent Cloud CLI's api.json format, and the check of a call's
 * parameters against them before anything is signed.
 *
 * gw_apispec_load_dir reads every file named "api.json" or "*.api.json" below a directory
 * (recursively, at most 8 directory levels; names starting with '.' are skipped). Each gives
 * metadata.serviceShortName and metadata.apiVersion, "actions" (name -> {input, output, status,
 * ...}) and "objects" (name -> {members: [...]}). A member has name, type (string, int, float,
 * bool, binary, list, object), member (its kind: string, date, datetime or datetime_iso for
 * strings, int64 or uint64 for int, float, bool, binary; for list the item's kind or object; for
 * object the object), required. These are all the kinds of Tencent's CLI descriptions (member.c
 * lists where they occur); date, datetime, datetime_iso and binary are checked as strings. A
 * kind that is none of these is checked as its type says (a string, any 64-bit integer, a
 * number, a boolean). Other keys of Tencent's format (document, example, disabled,
 * value_allowed_null, usage, ...) are ignored.
 *
 * Optional keys that tcgw adds to the format (Tencent's files have none, and still load):
 *   on a member:  "enum": [allowed values], "min": n, "max": n (integers and floats),
 *                 "max_length": n (strings, in bytes), "max_items": n (lists),
 *                 "ascii": true (strings: printable ASCII only, bytes 0x20 to 0x7e)
 *                 On a list member, enum/min/max/max_length/ascii apply to each item.
 *   on an action: "require_one_of": [["A","B"], ...]   at least one of each group is present
 *                 "exclusive": [["A","B"], ...]        at most one of each group is present
 *                 (groups name members of the action's input object)
 * The description itself is checked at load: every action's input (and output) names an object,
 * extension keys are well-typed and fit the member, action/object/member names are identifiers
 * ([A-Za-z0-9_]), and the objects reachable from an input have only members the check can check:
 * a known type, a kind that fits it, and list and object members that name existing objects.
 * Objects that no input reaches (outputs) are never checked, so their members may have any type
 * and kind. A symbolic link back to a directory being walked, and two descriptions of the same
 * service and version, are load errors.
 *
 * Input objects may be recursive: an object may contain itself, directly (a tree node with a
 * list of child nodes) or through other objects, as in 12 of the 296 descriptions of Tencent's
 * CLI (adp, billing, cls, cngw, ess, essbasic, ioa, lke, ocr, teo, trp, wedata). Such
 * descriptions load, and so do deep ones without recursion: it is the check that bounds how deep
 * a call nests, at GW_APISPEC_MAX_DEPTH levels of objects (below), whatever the description
 * allows.
 */
#ifndef GW_APISPEC_H
#define GW_APISPEC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/errors.h"

#define GW_APISPEC_MSG_MAX 512

/*
 * The deepest a call's objects may nest, the action's parameters being level 1: an object inside
 * a parameter is level 2, and so on; lists add no level, their object items are at the level of
 * the list's member. Deeper calls are refused with InvalidParameterValue.
 *
 * Why 32: Tencent's deepest recursive structure that documents a limit is cls's JSON index
 * (CreateIndex, ModifyIndex: Rule.KeyValue.KeyValues.N.Value.ChildNode.N.Value...), where each
 * JSON level costs two objects (KeyValueInfo, ValueInfo) from level 4 on, and keys may have 10
 * levels: level 23. Its alarm escalation chains (EscalateNoticeInfo, at most 5 stages from
 * level 3) need 8, teo's rule branches (one level of SubRules allowed) 10, and the deepest input
 * without recursion in all 296 descriptions is 10 objects (teo). 32 leaves room above all of
 * these (CLI release 3.1.155.1), and keeps the check's stack small: about 240 bytes per level
 * with gcc -O2, under 8 KiB for all 32, beside the 5 KiB path that gw_apispec_check keeps once
 * (unoptimized builds with AddressSanitizer take more: 416 bytes per level with gcc, 2.4 KiB
 * with clang, as the fuzzing build is).
 */
#define GW_APISPEC_MAX_DEPTH 32

struct gw_apispec; /* immutable after loading; safe to read from many threads */

/* Why a call was refused: code is a static Tencent error code, message tells what to fix. */
struct gw_apispec_verdict {
    const char *code;
    char message[GW_APISPEC_MSG_MAX];
};

/*
 * Loads all descriptions below dir. On success *out is new (free with gw_apispec_free). On
 * failure *out is untouched and msg (when msglen > 0) names the file and what is wrong with it.
 * A directory with no description at all is an error too. Returns GW_ERR_IO (unreadable file or
 * directory), GW_ERR_INVALID (malformed description, duplicate service+version, nothing found),
 * GW_ERR_TOO_LARGE (file above 32 MiB, too many files, directories too deep) or GW_ERR_NOMEM.
 */
enum gw_err gw_apispec_load_dir(const char *dir, struct gw_apispec **out, char *msg,
                                size_t msglen) GW_MUST_CHECK;

/* Accepts NULL. */
void gw_apispec_free(struct gw_apispec *spec);

/* Total number of actions loaded, over all services and versions. */
size_t gw_apispec_action_count(const struct gw_apispec *spec);

/*
 * Checks one call. params is the parsed JSON body (must be an object). Returns true when the call
 * conforms (verdict->code is then NULL). Otherwise returns false and fills verdict with the first
 * problem found (service, version and action first; then, object by object, unknown keys in the
 * caller's order, then each present value's type and value in the description's order, with
 * recursion into it, then required members; last the action's groups):
 *   NoSuchProduct          no description loaded for service
 *   NoSuchVersion          service known, version not
 *   InvalidAction          action not in that version
 *   UnknownParameter       a key (at any depth) that the description does not list
 *   InvalidParameter       a value of the wrong type: wrong JSON type, null, or a string that is
 *                          not an integer (for int) or not a decimal number (for float)
 *   MissingParameter       a required member absent (at any depth), or a require_one_of group empty
 *   InvalidParameterValue  a value outside enum/min/max/max_length/max_items/ascii, an integer out
 *                          of its kind's range, an object nested deeper than GW_APISPEC_MAX_DEPTH
 *                          (the message names its path and the limit; nothing below it is
 *                          examined), or an exclusive group with more than one member set
 * Integers may be JSON integers or canonical decimal strings, as Tencent's examples send them:
 * "0", or an optional '-' and digits without a leading zero ("2", "-1"; not "007", "-0", "+2",
 * " 2", "2.5", "", "0x10"). The simulator follows the same rule. A string outside it is
 * InvalidParameter; a value outside the kind's range (a negative uint64 too) is
 * InvalidParameterValue. A uint64 above INT64_MAX can only arrive as a string, since Jansson
 * refuses larger JSON integers. Floats may be JSON numbers or decimal strings ("-1.5e3"); bools
 * must be JSON true/false; null is never accepted. Messages name the parameter by its path, e.g.
 * "Filters.0.Values.1", say what was expected and echo at most 40 bytes of what was received;
 * they are always valid UTF-8. Allocates nothing; its stack use is bounded by
 * GW_APISPEC_MAX_DEPTH, not by params or the description.
 */
bool gw_apispec_check(const struct gw_apispec *spec, const char *service, const char *version,
                      const char *action, const json_t *params, struct gw_apispec_verdict *verdict);

/*
 * Strings that the gateway rewrites before the call is sent (a secret placeholder, an escaped
 * literal: gateway/inject/placeholder.h says which): true when s (n bytes) is one. apispec knows
 * no syntax of its own; the pipeline passes the predicate.
 */
typedef bool (*gw_apispec_special_fn)(const char *s, size_t n);

/*
 * gw_apispec_check for a call as the caller sent it, before its special strings are rewritten:
 * a special string (special(s) true) where the description takes a string (or a list item of
 * strings) passes without its value checks (enum, max_length, ascii), which
 * gw_apispec_check_injected makes on the value that replaces it; anywhere else (an integer, a
 * float, a bool, a list, an object) it is refused with InvalidParameterValue, naming the path and
 * what the parameter takes. special NULL is gw_apispec_check.
 */
bool gw_apispec_check_sent(const struct gw_apispec *spec, const char *service, const char *version,
                           const char *action, const json_t *params, gw_apispec_special_fn special,
                           struct gw_apispec_verdict *verdict);

/*
 * Checks the string value (len bytes) that replaces a special string at path (n member names, no
 * list indexes: "Certificates", "Key") of action's input against the member's value rules
 * (max_length, ascii, enum). where names the parameter in the message ("Certificates.0.Key") and
 * what names the value ("secret \"gaap-edge-key\""). Messages never quote the value: only its
 * length, or the index of a byte that breaks the ascii rule. False with InvalidParameterValue (or
 * InternalError when path names no string member: the sent check would have refused it).
 */
bool gw_apispec_check_injected(const struct gw_apispec *spec, const char *service,
                               const char *version, const char *action, const char *const *path,
                               size_t n, const char *where, const char *what,
                               const unsigned char *value, size_t len,
                               struct gw_apispec_verdict *verdict);

/* What the descriptions hold, for checks made before any call arrives (the policy linter). ------
 */

/* Called with each action; returns false to stop the walk. Both strings are borrowed from spec. */
typedef bool (*gw_apispec_action_fn)(void *ctx, const char *service, const char *action);

/*
 * Calls fn for every action of every loaded description, services in name order (an action that
 * two versions of a service describe comes twice). spec may be NULL: no call.
 */
void gw_apispec_each_action(const struct gw_apispec *spec, gw_apispec_action_fn fn, void *ctx);

enum gw_apispec_type {
    GW_APISPEC_TYPE_STRING, /* also dates and binary */
    GW_APISPEC_TYPE_INTEGER,
    GW_APISPEC_TYPE_FLOAT,
    GW_APISPEC_TYPE_BOOL,
    GW_APISPEC_TYPE_OBJECT,
    GW_APISPEC_TYPE_OTHER, /* a kind the check does not model (only outside inputs) */
};

struct gw_apispec_param {
    enum gw_apispec_type type; /* of the value, or of each item of a list */
    bool list;                 /* the path passes through a list: the parameter has many values */
};

/*
 * Finds the parameter at path (n member names: "Filters", "Name" for Filters.N.Name) in the input
 * of action of service, in any loaded version. Lists are passed through: a name after a list of
 * objects names a member of its items. Returns true and fills *out when found; false otherwise
 * (*out untouched).
 */
bool gw_apispec_find_param(const struct gw_apispec *spec, const char *service, const char *action,
                           const char *const *path, size_t n, struct gw_apispec_param *out);

#endif
