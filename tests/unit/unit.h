/* Minimal unit-test harness for ringcast's C tests.
 *
 * Each test program defines test functions and runs them with RUN(fn); CHECK
 * records a failure with file and line and continues; the program ends with
 * UNIT_DONE(), which prints "N passed, N failed" (checks, not functions) and
 * returns non-zero when anything failed. tests/run_unit.sh adds up the lines. */
#ifndef RC_UNIT_H
#define RC_UNIT_H

#include <stdio.h>
#include <string.h>

static int unit_passed, unit_failed;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (cond) {                                                                                \
            unit_passed++;                                                                         \
        } else {                                                                                   \
            unit_failed++;                                                                         \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);               \
        }                                                                                          \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                                         \
    do {                                                                                           \
        long long unit_a_ = (long long)(a), unit_b_ = (long long)(b);                              \
        if (unit_a_ == unit_b_) {                                                                  \
            unit_passed++;                                                                         \
        } else {                                                                                   \
            unit_failed++;                                                                         \
            fprintf(stderr, "%s:%d: %s == %s failed: %lld != %lld\n", __FILE__, __LINE__, #a, #b,  \
                    unit_a_, unit_b_);                                                             \
        }                                                                                          \
    } while (0)

#define CHECK_EQ_STR(a, b)                                                                         \
    do {                                                                                           \
        const char *unit_a_ = (a), *unit_b_ = (b);                                                 \
        if (unit_a_ && unit_b_ && strcmp(unit_a_, unit_b_) == 0) {                                 \
            unit_passed++;                                                                         \
        } else {                                                                                   \
            unit_failed++;                                                                         \
            fprintf(stderr, "%s:%d: %s == %s failed: \"%s\" != \"%s\"\n", __FILE__, __LINE__, #a,  \
                    #b, unit_a_ ? unit_a_ : "(null)", unit_b_ ? unit_b_ : "(null)");               \
        }                                                                                          \
    } while (0)

#define RUN(fn)                                                                                    \
    do {                                                                                           \
        int unit_before_ = unit_failed;                                                            \
        fn();                                                                                      \
        fprintf(stderr, "%s %s\n", unit_failed == unit_before_ ? "ok  " : "FAIL", #fn);            \
    } while (0)

#define UNIT_DONE()                                                                                \
    (printf("%d passed, %d failed\n", unit_passed, unit_failed), unit_failed ? 1 : 0)

#endif
