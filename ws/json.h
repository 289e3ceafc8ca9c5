/* A validating JSON scanner that does not build a tree.
 *
 * ringcast reads small JSON objects (client messages, JWT claims, HTTP API
 * bodies) and passes some values through byte for byte (a publisher's "data"
 * is forwarded exactly as it arrived). So the scanner hands out spans of the
 * input for each member's value instead of decoded copies; strings are decoded
 * only when asked. Every value handed out has been fully validated (RFC 8259
 * grammar, UTF-8 in strings, nesting at most max_depth). */
#ifndef RC_JSON_H
#define RC_JSON_H

#include <sys/types.h>

#include "base/common.h"

typedef enum rc_json_type {
    RC_JSON_INVALID = 0,
    RC_JSON_STRING,
    RC_JSON_NUMBER,
    RC_JSON_OBJECT,
    RC_JSON_ARRAY,
    RC_JSON_TRUE,
    RC_JSON_FALSE,
    RC_JSON_NULL,
} rc_json_type;

/* A value: its type and the exact bytes of its text in the input (a string's
 * span includes its quotes). */
typedef struct rc_json_val {
    rc_json_type type;
    rc_str raw;
} rc_json_val;

/* Iterator over the members of an object or the elements of an array. */
typedef struct rc_json_iter {
    const char *p, *end;
    int max_depth;
    int count;
    int closed;
} rc_json_iter;

/* 0 when buf[0..len) is exactly one valid JSON value (whitespace around it
 * allowed) nested at most max_depth deep, -1 otherwise. A max_depth above
 * 1024 counts as 1024 (the scanner's fixed nesting stack). */
int rc_json_validate(const char *buf, size_t len, int max_depth);

/* Starts iterating the object (or array) whose text is buf[0..len), which must
 * be exactly one object (array), whitespace around allowed. The whole text is
 * validated here, with max_depth counting this object as depth 1. Returns 0,
 * or -1 when it is not a valid object (array) within max_depth. */
int rc_json_object_begin(rc_json_iter *it, const char *buf, size_t len, int max_depth);
int rc_json_array_begin(rc_json_iter *it, const char *buf, size_t len, int max_depth);

/* Next member: sets key (a STRING value, still escaped) and val. Returns 1 for
 * a member, 0 at the end. (Input was validated by _begin, so this can't fail.) */
int rc_json_object_next(rc_json_iter *it, rc_json_val *key, rc_json_val *val);

/* Next array element. Returns 1 for an element, 0 at the end. */
int rc_json_array_next(rc_json_iter *it, rc_json_val *val);

/* 1 when a key (as given by rc_json_object_next) decodes to name exactly. */
int rc_json_key_is(const rc_json_val *key, const char *name);

/* Decodes a STRING value into out (UTF-8, escapes resolved, \u0000 refused)
 * with a terminating NUL. Returns the decoded length, or -1 when v is not a
 * string, holds \u0000, or does not fit in cap including the NUL. */
ssize_t rc_json_string(const rc_json_val *v, char *out, size_t cap);

/* Reads a NUMBER value that is an integer within int64 (no fraction or
 * exponent). Returns 0, or -1 (out unchanged). */
int rc_json_int64(const rc_json_val *v, int64_t *out);

/* Writes s[0..n) as a JSON string literal (quotes included), escaping '"',
 * '\\' and control characters; bytes >= 0x80 are copied as they are (the
 * caller passes UTF-8). Returns the length written, or -1 when it does not fit
 * in cap (no NUL is written). */
ssize_t rc_json_escape(char *out, size_t cap, const char *s, size_t n);

/* The most rc_json_escape writes for n bytes: each one as \u00XX, and the
 * quotes. A buffer of this size never makes it fail. */
#define RC_JSON_ESCAPED_MAX(n) (6 * (size_t)(n) + 2)

#endif
