/* Saturating time arithmetic (base/common.h). */
#include <math.h>

#include "base/common.h"
#include "unit.h"

static void test_sat_sub(void)
{
    CHECK_EQ_INT(rc_sat_sub(10, 3), 7);
    CHECK_EQ_INT(rc_sat_sub(INT64_MAX, 1795292431), INT64_MAX - 1795292431);
    CHECK(rc_sat_sub(INT64_MAX, -1) == INT64_MAX);
    CHECK(rc_sat_sub(INT64_MIN, 1) == INT64_MIN);
    CHECK(rc_sat_sub(0, INT64_MIN) == INT64_MAX);
    CHECK(rc_sat_sub(-5, INT64_MAX) == INT64_MIN);
}

static void test_sat_mul(void)
{
    CHECK_EQ_INT(rc_sat_mul(1795292431, 1000), 1795292431000LL);
    CHECK(rc_sat_mul(INT64_MAX / 2, 1000) == INT64_MAX);
    CHECK(rc_sat_mul((int64_t)1 << 62, 1000) == INT64_MAX);
    CHECK(rc_sat_mul(-((int64_t)1 << 62), 1000) == INT64_MIN);
    CHECK(rc_sat_mul(INT64_MIN, -1) == INT64_MAX);
    CHECK_EQ_INT(rc_sat_mul(-7, 1000), -7000);
}

static void test_d2i64(void)
{
    CHECK_EQ_INT(rc_d2i64(1.7e12), 1700000000000LL);
    CHECK_EQ_INT(rc_d2i64(-3.9), -3);
    CHECK(rc_d2i64(1e300) == INT64_MAX);
    CHECK(rc_d2i64(9223372036854775808.0) == INT64_MAX);
    CHECK(rc_d2i64(-1e300) == INT64_MIN);
    CHECK(rc_d2i64(INFINITY) == INT64_MAX);
    CHECK(rc_d2i64(-INFINITY) == INT64_MIN);
    CHECK_EQ_INT(rc_d2i64(NAN), 0);
}

int main(void)
{
    RUN(test_sat_sub);
    RUN(test_sat_mul);
    RUN(test_d2i64);
    return UNIT_DONE();
}
