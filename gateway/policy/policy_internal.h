/*
 * policy_internal: what the files of the policy module share, and nothing outside it includes.
 * The public interface is policy.h.
 *
 *   load.c       the arena, reading files and directories, the set: load, find, free
 *   parse.c      one file's JSON into a compiled policy, every problem reported with its line
 *   condition.c  operators, keys and values: their compiled form and their evaluation
 *   decide.c     gw_policy_decide: statements in order, the reason and the refusal, explain
 *   lint.c       gw_policy_lint: parse problems and what the API descriptions tell about them
 *
 * Shared functions are named policy_<verb>.
 */
#ifndef GW_POLICY_INTERNAL_H
#define GW_POLICY_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/errors.h"
#include "policy/policy.h"

#define POLICY_MAX_FILE_BYTES ((size_t)1 << 20) /* per file */
#define POLICY_MAX_FILES 1024                   /* per directory */
#define POLICY_MAX_STATEMENTS 1000              /* per file */
#define POLICY_MAX_CONDITIONS 64                /* operator and key pairs per statement */
#define POLICY_MAX_ITEMS 1000                   /* actions per statement, values per condition */
#define POLICY_MAX_SEGMENTS 16                  /* names in a parameter path */
#define POLICY_MAX_DEPTH 8 /* JSON nesting; a policy needs 6 (statement, condition, values) */
#define POLICY_MAX_NAME 59 /* a policy's name: "<name>.json" fits GW_CALL_NAME_MAX */
#define POLICY_MAX_SID 64  /* GW_CALL_NAME_MAX: "<name>.json#<sid>" fits GW_POLICY_STATEMENT_MAX */
#define POLICY_MAX_VALUE 256 /* bytes of a string value in a condition */
#define POLICY_MAX_NUMBER 64 /* bytes of a number written as a string */
#define POLICY_ECHO_MAX 40   /* bytes of a call's value quoted in a reason */

/* ---- arena: everything of a set lives in it; freeing the set is one walk -------------------- */

struct policy_block;
struct policy_arena {
    struct policy_block *head;
};

/* Zeroed memory that lives as long as the arena, or NULL. */
void *policy_alloc(struct policy_arena *a, size_t size);
void *policy_alloc_array(struct policy_arena *a, size_t n, size_t size);
char *policy_strndup(struct policy_arena *a, const char *s, size_t n);
void policy_arena_free(struct policy_arena *a);

/* ---- compiled policies ----------------------------------------------------------------------- */

enum policy_op {
    OP_STRING_EQUAL,
    OP_STRING_NOT_EQUAL,
    OP_STRING_LIKE,
    OP_NUMERIC_EQUAL,
    OP_NUMERIC_NOT_EQUAL,
    OP_NUMERIC_LESS_THAN,
    OP_NUMERIC_LESS_THAN_EQUAL,
    OP_NUMERIC_GREATER_THAN,
    OP_NUMERIC_GREATER_THAN_EQUAL,
    OP_IP_EQUAL,
    OP_IP_NOT_EQUAL,
    OP_BOOL_EQUAL,
};

/* What an operator compares: it decides how values are read, in the policy and in the call. */
enum policy_family {
    FAMILY_STRING,
    FAMILY_NUMERIC,
    FAMILY_IP,
    FAMILY_BOOL,
};

enum policy_qualifier {
    QUALIFIER_NONE, /* the key has one value */
    QUALIFIER_ANY,  /* for_any_value: some value of the key satisfies the operator */
    QUALIFIER_ALL,  /* for_all_value: every value does (none at all included) */
};

enum policy_key_kind {
    KEY_PARAM,        /* <service>:<Path>: a parameter of the call */
    KEY_IP,           /* qcs:ip: the caller's address */
    KEY_REGION,       /* qcs:region: X-TC-Region */
    KEY_CALLER,       /* tcgw:caller: the caller's name */
    KEY_CALLER_ATTR,  /* tcgw:caller/<attribute> */
    KEY_SECRET_NAME,  /* tcgw:SecretName: the secrets the call's placeholders name (a list) */
    KEY_SECRET_PARAM, /* tcgw:SecretParameter: the parameters they stand in (a list) */
};

/* A number of a condition or a call: integers exactly, others as doubles. */
struct policy_number {
    bool is_int;
    bool neg;     /* is_int: negative */
    uint64_t mag; /* is_int: magnitude */
    double d;     /* always set */
};

/* An address with a prefix length: a CIDR of a condition, or a caller's address (full prefix). */
struct policy_cidr {
    unsigned char family; /* 4 or 6 */
    unsigned char prefix; /* bits */
    unsigned char addr[16];
};

struct policy_value {
    const char *s; /* as written (string and like: the string or the pattern) */
    size_t len;
    struct policy_number num; /* FAMILY_NUMERIC */
    struct policy_cidr cidr;  /* FAMILY_IP */
    bool b;                   /* FAMILY_BOOL */
};

struct policy_key {
    enum policy_key_kind kind;
    const char *text;            /* as written: "gaap:Filters.Name" */
    const char *service;         /* KEY_PARAM: "gaap" */
    const char *path;            /* KEY_PARAM: "Filters.Name" */
    const char *const *segments; /* KEY_PARAM: "Filters", "Name" */
    size_t n_segments;
    const char *attribute; /* KEY_CALLER_ATTR */
};

struct policy_condition {
    enum policy_op op;
    enum policy_family family;
    enum policy_qualifier qualifier;
    bool if_exist;
    bool negated;        /* the _not_ operators: the value must match none of the values */
    const char *op_text; /* as written: "for_any_value:string_equal_if_exist" */
    struct policy_key key;
    const struct policy_value *values;
    size_t n_values;
    int line; /* of the key in the file */
};

/* An action pattern "<service>:<Action>": each half a glob where '*' matches any run. */
struct policy_action {
    const char *text;
    const char *service;
    const char *action;
    bool service_wild;
    bool action_wild;
    int line;
};

struct policy_statement {
    char id[GW_POLICY_STATEMENT_MAX]; /* "<file>.json#<sid>" or "#<index>" */
    bool allow;
    const struct policy_action *actions;
    size_t n_actions;
    const struct policy_condition *conditions;
    size_t n_conditions;
    size_t index; /* 1-based, in its file */
    int line;     /* of the statement's opening brace */
};

struct gw_policy {
    const char *name; /* "capacity-bot" */
    const char *file; /* "capacity-bot.json" */
    const struct policy_statement *statements;
    size_t n_statements;
};

struct gw_policy_set {
    struct policy_arena arena;
    const struct gw_policy **policies; /* sorted by name */
    size_t n_policies;
    size_t n_statements;
};

/* ---- problems: load stops at the first, lint prints them all -------------------------------- */

struct policy_report {
    const char *path; /* the file, as messages name it */
    const char *text; /* its bytes, to find lines; NULL before it was read */
    size_t len;
    unsigned problems;
    FILE *out; /* lint: every problem is printed here */
    char *msg; /* load: the first problem is kept here */
    size_t msglen;
};

/* Reports "PATH:LINE: message" (or "PATH: message" when line is 0). */
void policy_problem(struct policy_report *r, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Reads a whole policy file (at most POLICY_MAX_FILE_BYTES) into *text (new, NUL-terminated). */
enum gw_err policy_read_file(const char *path, char **text, size_t *len,
                             struct policy_report *r) GW_MUST_CHECK;

/*
 * The "*.json" regular files of dir not starting with '.', sorted, at most POLICY_MAX_FILES: *names
 * is new (free each, then the array). GW_ERR_IO (said through r) when dir cannot be listed.
 */
enum gw_err policy_list_dir(const char *dir, char ***names, size_t *n,
                            struct policy_report *r) GW_MUST_CHECK;

/*
 * Parses the text of file name ("capacity-bot.json") into *out, allocated in a. Every problem goes
 * to r; statements with problems are left out of *out, so that lint can still look at the others.
 * spec (may be NULL) makes an action that no description knows a problem, unless wildcarded.
 * Returns GW_ERR_NOMEM, or GW_OK (then *out is set; r->problems says whether it may be used).
 */
enum gw_err policy_parse(struct policy_arena *a, struct policy_report *r, const char *file,
                         const char *text, size_t len, const struct gw_apispec *spec,
                         struct gw_policy **out) GW_MUST_CHECK;

/* ---- conditions (condition.c) ---------------------------------------------------------------- */

/* How a condition, or one value of a key, came out. */
enum policy_verdict {
    VERDICT_NO,
    VERDICT_YES,
    VERDICT_UNSURE, /* cannot be evaluated: a value of the wrong type, or a plain operator on a
                       list; it counts against the call (see decide.c) */
};

/* The value of a call that a verdict is about, for reasons: a JSON value or a context string. */
struct policy_witness {
    const json_t *json;
    const char *text;
    bool absent; /* the key has no value in this call */
};

/* Operator names: "string_equal" -> op; false when unknown. */
bool policy_op_parse(const char *name, size_t len, enum policy_op *op);
const char *policy_op_name(enum policy_op op);
enum policy_family policy_op_family(enum policy_op op);
bool policy_op_negated(enum policy_op op);

/* Reads a value of a condition for family; false with why ("is not a decimal number") if bad. */
bool policy_value_parse(enum policy_family family, const json_t *j, struct policy_value *out,
                        const char **why);

/* Reads s (n bytes) as a decimal number: digits with an optional '-', fraction and exponent. */
bool policy_number_parse(const char *s, size_t n, struct policy_number *out);
int policy_number_cmp(const struct policy_number *a, const struct policy_number *b);

/* A '*' and '?' glob (star_only: '?' is an ordinary character), matched case-sensitively. */
bool policy_glob(const char *pattern, size_t plen, const char *s, size_t n, bool star_only);

/* Evaluates c for req; *w receives the value the verdict is about (absent, or the first that
 * failed). Allocation-free. */
enum policy_verdict policy_condition_eval(const struct policy_condition *c,
                                          const struct gw_policy_request *req,
                                          struct policy_witness *w);

/* The witness as printable text, at most POLICY_ECHO_MAX bytes of it ("..." when cut). */
const char *policy_witness_text(const struct policy_witness *w, char *buf, size_t cap);

/* True when pattern a of a statement matches service:action. */
bool policy_action_matches(const struct policy_action *a, const char *service, const char *action);

#endif
