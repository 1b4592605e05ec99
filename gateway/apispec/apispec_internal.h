/*
 * apispec_internal: what the files of the apispec module share, and nothing outside it includes.
 * The public interface is apispec.h.
 *
 *   spec.c      the loaded structure: its arena, lookups by name, count and free
 *   message.c   pieces of messages: caller data cut to printable UTF-8, lists, cut marks
 *   load.c      the directory walk, reading files, load errors, gw_apispec_load_dir
 *   describe.c  one description: metadata, objects, actions, groups, what inputs reach
 *   member.c    one member: its type and kind (Tencent's kinds, below), tcgw's extension keys
 *   number.c    the grammar of integers and decimal numbers sent as strings
 *   verdict.c   the wording of refusals: paths, what was received, what was expected
 *   check.c     gw_apispec_check: one call's parameters against a description
 *   query.c     what a description holds: its actions, the type of a parameter path
 *   injected.c  gw_apispec_check_injected: a value put in place of a placeholder
 *
 * Functions shared between these files are named apispec_<verb>, so that they cannot be taken
 * for the public gw_apispec_ interface.
 */
#ifndef GW_APISPEC_INTERNAL_H
#define GW_APISPEC_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "apispec/apispec.h"
#include "core/errors.h"

#define GW_APISPEC_MAX_DIR_DEPTH 8
#define GW_APISPEC_MAX_FILE_BYTES ((size_t)32 << 20)
#define GW_APISPEC_MAX_FILES 1024
#define GW_APISPEC_MAX_NAME 128  /* bytes in any name of a description */
#define GW_APISPEC_MAX_PATH 4096 /* bytes in a file path while walking */

/* Caller data echoed in a message is cut to this many bytes. */
#define ECHO_MAX 40
#define ECHO_BUF (ECHO_MAX + 8)
#define RECEIVED_BUF (ECHO_BUF + 40)
#define LIST_BUF 256
#define EXPECTED_BUF (GW_APISPEC_MAX_NAME + 80)
/*
 * A parameter path: a "Name.index." of the description for each level below the input (at most
 * GW_APISPEC_MAX_DEPTH - 1, apispec.h), and one more for a member of the deepest object or for
 * the object refused as one level too deep.
 */
#define PATH_BUF ((GW_APISPEC_MAX_DEPTH + 1) * (GW_APISPEC_MAX_NAME + 24))
/* A path quoted in the refusal of a call nested too deep: its start, "...", its end. */
#define DEEP_HEAD 128
#define DEEP_TAIL 256
#define DEEP_BUF (DEEP_HEAD + 3 + DEEP_TAIL + 1)

/* ---------------------------------------------------------------------------------------------
 * The loaded structure. Everything lives in one arena owned by struct gw_apispec, so a failed
 * load and gw_apispec_free are one walk over a few blocks. Arrays are sorted by name for bsearch.
 */

/* What the check does with a value (of a member, or of each item of a list member). */
enum kind {
    KIND_STRING,
    KIND_INT64,
    KIND_UINT64,
    KIND_INTEGER, /* an integer kind the validator does not model: any int64 or uint64 value */
    KIND_FLOAT,
    KIND_BOOL,
    KIND_OBJECT,
    KIND_NONE, /* not checkable (see enum problem); only in objects that no input reaches */
};

/*
 * Why a member's "type" and "member" give no kind. Such a member loads, because a description
 * may use kinds that tcgw does not know in objects it never checks (outputs); the load fails
 * only when an action's input reaches it (apispec_member_problem says why).
 */
enum problem {
    PROBLEM_NONE,
    PROBLEM_TYPE,   /* "type" is not one tcgw knows, so not even the JSON type is known */
    PROBLEM_KIND,   /* a scalar "type" whose "member" is another type's kind, or an object */
    PROBLEM_OBJECT, /* a list or object whose "member" is neither an object nor a scalar kind */
};

struct enum_value {
    const char *s; /* KIND_STRING */
    size_t len;
    int64_t i; /* the integer kinds */
    double f;  /* KIND_FLOAT */
};

struct object;

struct member {
    const char *name;
    const char *type_name; /* the description's "member", for messages: "string", "Filter" */
    const char *type;      /* the description's "type", kept only when problem is set */
    struct object *object; /* KIND_OBJECT */
    enum kind kind;        /* of the value, or of each item of a list */
    enum problem problem;
    bool list;
    bool required;
    bool ascii;
    bool has_min;
    bool has_max;
    int64_t imin, imax; /* integer kinds */
    double fmin, fmax;  /* KIND_FLOAT */
    size_t max_length;  /* SIZE_MAX: no limit */
    size_t max_items;   /* SIZE_MAX: no limit */
    const struct enum_value *enums;
    size_t n_enums; /* 0: any value */
};

struct object {
    const char *name;
    struct member *members;        /* description order */
    const struct member **by_name; /* sorted by name */
    size_t n_members;
    const json_t *src; /* while loading only */
    bool reached;      /* while loading only: an action's input reaches it */
};

struct group {
    const struct member **members;
    size_t n;
};

struct action {
    const char *name;
    struct object *input;
    const struct group *require_one_of;
    size_t n_require_one_of;
    const struct group *exclusive;
    size_t n_exclusive;
};

struct version {
    const char *service;
    const char *version;
    const char *file;
    struct action *actions; /* sorted by name */
    size_t n_actions;
    struct object *objects; /* sorted by name */
    size_t n_objects;
};

struct arena_block {
    struct arena_block *next;
    size_t used;
    size_t cap;
};

struct gw_apispec {
    struct arena_block *arena;
    struct version *versions; /* sorted by service, then version */
    size_t n_versions;
    size_t cap_versions;
    size_t n_actions;
};

/* spec.c ------------------------------------------------------------------------------------ */

/* Returns zeroed memory that lives as long as spec, or NULL. */
void *apispec_alloc(struct gw_apispec *spec, size_t size);
/* n elements of size bytes, zeroed; NULL also when n * size is absurd. */
void *apispec_alloc_array(struct gw_apispec *spec, size_t n, size_t size);
/* Copies n bytes of s and a NUL; NULL when out of memory. */
char *apispec_memdup(struct gw_apispec *spec, const char *s, size_t n);
char *apispec_strdup(struct gw_apispec *spec, const char *s);

/* qsort and bsearch comparators of the sorted arrays above. */
int apispec_cmp_object(const void *a, const void *b);
int apispec_cmp_action(const void *a, const void *b);
int apispec_cmp_member_ptr(const void *a, const void *b);
int apispec_cmp_version(const void *a, const void *b);

/* Lookups by name; NULL when absent. Results are borrowed from the spec. */
struct object *apispec_find_object(const struct version *v, const char *name);
const struct member *apispec_find_member(const struct object *o, const char *name);
const struct action *apispec_find_action(const struct version *v, const char *name);
const struct version *apispec_find_version(const struct gw_apispec *spec, const char *service,
                                           const char *version);

/* message.c --------------------------------------------------------------------------------- */

/*
 * Copies at most ECHO_MAX bytes of s (n bytes, caller data) into out as printable UTF-8: control
 * characters and invalid bytes become '?', and "..." marks a cut. Returns out.
 */
const char *apispec_clip(char out[ECHO_BUF], const char *s, size_t n);

/* After a truncating vsnprintf into buf (cap bytes): ends buf on a character with "...". */
void apispec_mark_cut(char *buf, size_t cap);

/* Appends ", item" (or item first) to a list held in buf[LIST_BUF]; "..." once it is full. */
void apispec_list_add(char buf[LIST_BUF], size_t *len, bool *full, const char *item);

/* load.c, describe.c, member.c: loading ------------------------------------------------------- */

struct loader {
    struct gw_apispec *spec;
    char *msg;
    size_t msglen;
    const char *file; /* the description being read, for messages */
    size_t n_files;
    struct {
        dev_t dev;
        ino_t ino;
    } dirs[GW_APISPEC_MAX_DIR_DEPTH + 2]; /* the directories being walked, outermost first */
};

/* Writes "file: what" into the caller's message buffer and returns err. */
enum gw_err apispec_load_fail(struct loader *ld, enum gw_err err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* apispec_load_fail for an allocation that failed. */
enum gw_err apispec_nomem(struct loader *ld);

/* True when s is 1 to GW_APISPEC_MAX_NAME letters, digits and '_' (and '.', '-' with dots). */
bool apispec_is_name(const char *s, bool dots);

/*
 * Parses the description root (a JSON object, borrowed) and adds its version to ld->spec.
 * Returns GW_OK, or an error with the message written through ld.
 */
enum gw_err apispec_parse_description(struct loader *ld, const json_t *root) GW_MUST_CHECK;

/*
 * Parses member index of object o from src into m (zeroed, in the arena). The objects of v are
 * named already (for references), not yet parsed. A member whose kind tcgw cannot tell loads
 * with kind KIND_NONE and problem set; see apispec_member_problem.
 */
enum gw_err apispec_parse_member(struct loader *ld, struct version *v, const struct object *o,
                                 size_t index, const json_t *src, struct member *m) GW_MUST_CHECK;

/*
 * Called for each member of each object that an action's input reaches: fails the load, naming
 * member index of o, when m has a problem (the check could not tell a good value from a bad one).
 */
enum gw_err apispec_member_problem(struct loader *ld, const struct object *o, size_t index,
                                   const struct member *m) GW_MUST_CHECK;

/* number.c ---------------------------------------------------------------------------------- */

/* An integer of any kind: magnitude and sign, so that all of int64 and uint64 fit. */
struct intval {
    bool neg;
    bool overflow; /* more than 64 bits of magnitude */
    uint64_t mag;
};

/*
 * Parses s[0..n) when it is an integer in canonical decimal form: "0", or an optional '-' and
 * digits without a leading zero ("-0", "007", "+1", " 1", "1.0", "" are not). Returns false for
 * anything else. A canonical number too large for 64 bits parses with overflow set.
 */
bool apispec_parse_integer(const char *s, size_t n, struct intval *x);

/* The intval of a JSON integer. */
void apispec_intval_of(int64_t v, struct intval *x);

/* Negative, zero or positive as x <, = or > b. */
int apispec_intval_cmp(const struct intval *x, int64_t b);

/* True when x is within the range of kind (one of the integer kinds). */
bool apispec_intval_fits(const struct intval *x, enum kind kind);

/* True when s[0..n) is "-?[0-9]+(.[0-9]+)?([eE][+-]?[0-9]+)?": no spaces, hex, inf or nan. */
bool apispec_is_decimal_number(const char *s, size_t n);

/* verdict.c, check.c: checking ---------------------------------------------------------------- */

/* One check in progress. Nothing allocates: the path and the message live here and in verdict. */
struct check {
    const struct action *action;
    gw_apispec_special_fn special; /* gw_apispec_check_sent: strings rewritten later, or NULL */
    struct gw_apispec_verdict *verdict;
    unsigned depth; /* object levels entered, the action's input being level 1 */
    size_t len;     /* of path */
    char path[PATH_BUF];
};

/* Fills c->verdict with code and the formatted message; returns false, to return from a check. */
bool apispec_refuse(struct check *c, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Appends ".name" (or "name" first) to the path; returns the length to restore with path_pop. */
size_t apispec_path_push(struct check *c, const char *name);
size_t apispec_path_push_index(struct check *c, size_t i);
void apispec_path_pop(struct check *c, size_t old);

/*
 * The current path for a message, whole when it fits DEEP_BUF, else its first DEEP_HEAD bytes,
 * "..." and its last DEEP_TAIL bytes (paths are ASCII: names of the description and indexes).
 */
const char *apispec_path_clip(char out[DEEP_BUF], const struct check *c);

/* "string "abc"", "number 2.5", "null", "an object"...: what the caller sent, for messages. */
const char *apispec_received(char out[RECEIVED_BUF], const json_t *j);

/* What a value of m (or, with item set, an item of list m) must be, for messages. */
const char *apispec_expected(char buf[EXPECTED_BUF], const struct member *m, bool item);

/* Refusals shared by the checks of each kind: a wrong JSON type, a value outside the enum. */
bool apispec_wrong_type(struct check *c, const struct member *m, const json_t *j, bool item);
bool apispec_not_in_enum(struct check *c, const struct member *m, const json_t *j);

/*
 * Refuses an object at the current path, one level below GW_APISPEC_MAX_DEPTH. Kept out of the
 * recursive functions of check.c so that its buffer is not part of every level's stack frame.
 */
bool apispec_too_deep(struct check *c);

/* The range of an integer kind, for messages: "0 to 18446744073709551615 (uint64)". */
const char *apispec_range_text(enum kind kind);

#endif
