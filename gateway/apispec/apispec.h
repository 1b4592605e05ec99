/*
 * apispec: API descriptions in the Tencent Cloud CLI's api.json format, and the check of a call's
 * parameters against them before anything is signed.
 *
 * gw_apispec_load_dir reads every file named "api.json" or "*.api.json" below a directory
 * (recursively, at most 8 directory levels; names starting with '.' are skipped). Each gives
 * metadata.serviceShortName and metadata.apiVersion, "actions" (name -> {input, output, status,
 * ...}) and "objects" (name -> {members: [...]}). A member has name, type (string, int, float,
 * bool, list, object), member (the element or object type, or the integer kind int64/uint64;
 * "string" or "datetime" for strings), required. Other keys of Tencent's format (document,
 * example, disabled, value_allowed_null, usage, ...) are ignored.
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
 * every member type is known, list and object members name existing objects, extension keys are
 * well-typed and fit the member, action/object/member names are identifiers ([A-Za-z0-9_]), and
 * the objects reachable from an input are not recursive and nest at most 16 deep. A symbolic link
 * back to a directory being walked, and two descriptions of the same service and version, are
 * load errors.
 */
#ifndef GW_APISPEC_H
#define GW_APISPEC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/errors.h"

#define GW_APISPEC_MSG_MAX 512

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
 *                          of its kind's range, or an exclusive group with more than one member set
 * Integers may be JSON integers or strings of decimal digits with an optional '-' ("2", "-1",
 * "007"; not "2.5", " 2", "", "0x10", "+2"), as Tencent accepts them; a uint64 above INT64_MAX
 * can only arrive as a string, since Jansson refuses larger JSON integers. Floats may be JSON
 * numbers or decimal strings ("-1.5e3"); bools must be JSON true/false; null is never accepted.
 * Messages name the parameter by its path, e.g. "Filters.0.Values.1", say what was expected and
 * echo at most 40 bytes of what was received; they are always valid UTF-8. Allocates nothing.
 */
bool gw_apispec_check(const struct gw_apispec *spec, const char *service, const char *version,
                      const char *action, const json_t *params, struct gw_apispec_verdict *verdict);

#endif
