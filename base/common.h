/* Small types and helpers shared by every ringcast module. */
#ifndef RC_COMMON_H
#define RC_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* A byte span that does not own its bytes (not NUL-terminated). */
typedef struct rc_str {
    const char *p;
    size_t n;
} rc_str;

#define RC_STR_NULL ((rc_str){NULL, 0})

#define RC_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define RC_MIN(a, b)    ((a) < (b) ? (a) : (b))
#define RC_MAX(a, b)    ((a) > (b) ? (a) : (b))
#define RC_LIKELY(x)    __builtin_expect(!!(x), 1)
#define RC_UNLIKELY(x)  __builtin_expect(!!(x), 0)

/* Broken invariants abort with file and line: they are bugs, not errors. */
#define rc_assert(cond)                                                                            \
    do {                                                                                           \
        if (RC_UNLIKELY(!(cond))) {                                                                \
            fprintf(stderr, "ringcast: assertion failed at %s:%d: %s\n", __FILE__, __LINE__,       \
                    #cond);                                                                        \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Allocation failure is fatal: an edge node that cannot allocate a few bytes
 * is better restarted by its supervisor than limping. */
void *rc_malloc(size_t n);
void *rc_calloc(size_t count, size_t n);
void *rc_realloc(void *p, size_t n);
char *rc_strndup(const char *s, size_t n);

/* Monotonic clock in nanoseconds / milliseconds, and wall clock in seconds
 * and milliseconds since the epoch. These functions can't fail. */
uint64_t rc_now_ns(void);
uint64_t rc_now_ms(void);
int64_t rc_wall_s(void);
int64_t rc_wall_ms(void);

/* The value of a hexadecimal digit, or -1 when c is not one. */
static inline int rc_hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The value of a base64 digit, or -1. url selects the URL-safe alphabet
 * ("-_" for 62 and 63, RFC 4648 section 5) instead of "+/". */
static inline int rc_b64_value(int c, int url)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == (url ? '-' : '+'))
        return 62;
    if (c == (url ? '_' : '/'))
        return 63;
    return -1;
}

/* Time and duration arithmetic saturates instead of overflowing: a token's
 * "exp" may be INT64_MAX (a common "never expires"), and signed overflow is
 * undefined behaviour, not a wrap. */

/* a - b, saturated to [INT64_MIN, INT64_MAX]. */
static inline int64_t rc_sat_sub(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_sub_overflow(a, b, &r))
        return b < 0 ? INT64_MAX : INT64_MIN;
    return r;
}

/* a * b, saturated to [INT64_MIN, INT64_MAX]. */
static inline int64_t rc_sat_mul(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_mul_overflow(a, b, &r))
        return (a < 0) != (b < 0) ? INT64_MIN : INT64_MAX;
    return r;
}

/* d as an int64, saturated (NaN is 0): a plain cast of a double out of
 * range is undefined behaviour. */
static inline int64_t rc_d2i64(double d)
{
    if (d != d)
        return 0;
    if (d >= 9223372036854775807.0)
        return INT64_MAX;
    if (d <= -9223372036854775808.0)
        return INT64_MIN;
    return (int64_t)d;
}

/* Constant-time comparison of two byte strings; lengths are not secret. */
int rc_ct_equal(const void *a, size_t an, const void *b, size_t bn);

#endif
