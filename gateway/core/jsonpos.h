/*
 * jsonpos: where in a JSON text an element starts, as a line number, for messages
 * "FILE:LINE: ...". Jansson keeps no positions once a document is parsed, so the text is
 * scanned again, along a path of steps: keys of objects and indices of lists.
 *
 * The text is meant to be one Jansson has parsed. Any other bytes (truncated, malformed) are
 * scanned without reading outside text[0..len) and give some line or 0, never a crash.
 *
 * Lines count from 1; each '\n' outside a string ends one. Keys are compared as written between
 * their quotes: a key spelt with escapes ("n\u0061me") does not match its decoded name ("name").
 * Where an object holds a key twice, the first is found.
 */
#ifndef GW_JSONPOS_H
#define GW_JSONPOS_H

#include <stddef.h>

/*
 * One step of a path: the member key of an object, or, when key is NULL, the item index of a
 * list (from 0). An index step on a value that is not a list finds, for index 0, that value
 * itself, as a list of one is often written bare ("action": "x" for ["x"]).
 */
struct gw_jsonpos_step {
    const char *key; /* borrowed, NUL-terminated; NULL for a list item */
    size_t index;
};

/*
 * The line where the element that steps[0..n) lead to starts, from the text's top value: the
 * line of its key for a member, of its first byte for a list item (of the top value for n 0).
 * 0 when a step cannot be followed, or text is NULL.
 */
int gw_jsonpos_line(const char *text, size_t len, const struct gw_jsonpos_step *steps, size_t n);

/*
 * As gw_jsonpos_line, but where a step cannot be followed, the line of the last step that
 * could (of the top value when none could): the nearest line to point a reader at. 0 only when
 * text is NULL.
 */
int gw_jsonpos_nearest(const char *text, size_t len, const struct gw_jsonpos_step *steps, size_t n);

/*
 * The first line where text nests objects and lists deeper than max, or 0 when it does not. Run
 * before parsing, so that a hostile file cannot make the parser recurse deep.
 */
int gw_jsonpos_too_deep(const char *text, size_t len, unsigned max);

#endif
