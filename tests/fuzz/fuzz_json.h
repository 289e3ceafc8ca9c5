/* Shared by the fuzz drivers that check answers built by proto/json.c: an
 * answer is one valid JSON object, and a member carries a value back
 * exactly (a string decoded with rc_json_string, an integer read with
 * rc_json_int64). */
#ifndef RC_FUZZ_JSON_H
#define RC_FUZZ_JSON_H

#include <string.h>

#include "tests/fuzz/fuzz.h"
#include "ws/json.h"

/* out[0..n) (n from a builder: -1 is a failure) is a valid JSON object; *v
 * is its member name (which must be there). */
static inline void fuzz_json_member(const char *out, ssize_t n, const char *name, rc_json_val *v)
{
    rc_json_iter it;
    rc_json_val key, val;
    int found = 0;
    FUZZ_CHECK(n > 0 && rc_json_validate(out, (size_t)n, 4) == 0);
    FUZZ_CHECK(rc_json_object_begin(&it, out, (size_t)n, 4) == 0);
    while (rc_json_object_next(&it, &key, &val))
        if (rc_json_key_is(&key, name)) {
            FUZZ_CHECK(!found); /* once */
            *v = val;
            found = 1;
        }
    FUZZ_CHECK(found);
}

/* The member name of out[0..n) is the string s[0..sl). */
static inline void fuzz_json_has_string(const char *out, ssize_t n, const char *name, const char *s,
                                        size_t sl)
{
    static char back[4096];
    rc_json_val v;
    fuzz_json_member(out, n, name, &v);
    FUZZ_CHECK(sl < sizeof(back) && rc_json_string(&v, back, sizeof(back)) == (ssize_t)sl);
    FUZZ_CHECK(memcmp(back, s, sl) == 0);
}

/* The member name of out[0..n) is the integer x. */
static inline void fuzz_json_has_int(const char *out, ssize_t n, const char *name, int64_t x)
{
    rc_json_val v;
    int64_t back;
    fuzz_json_member(out, n, name, &v);
    FUZZ_CHECK(rc_json_int64(&v, &back) == 0 && back == x);
}

#endif
