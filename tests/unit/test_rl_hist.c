/* ringload's latency histogram: percentiles of known distributions within
 * the stated precision (bucket midpoints, at most 1/256 off above 256 us,
 * exact below), merging, and the bucket layout. */
#include <math.h>

#include "perf/ringload/hist.h"
#include "tests/unit/unit.h"

static int within(uint64_t got, double want, double rel)
{
    return fabs((double)got - want) <= want * rel + 0.5;
}

static void test_small_values_exact(void)
{
    static rl_hist h;
    rl_hist_init(&h);
    for (uint64_t v = 1; v <= 100; v++)
        rl_hist_record(&h, v);
    CHECK_EQ_INT(h.count, 100);
    CHECK_EQ_INT(rl_hist_percentile(&h, 0.5), 50); /* the 50th smallest */
    CHECK_EQ_INT(rl_hist_percentile(&h, 0.9), 90);
    CHECK_EQ_INT(rl_hist_percentile(&h, 0.99), 99);
    CHECK_EQ_INT(rl_hist_percentile(&h, 1.0), 100);
    CHECK_EQ_INT(rl_hist_percentile(&h, 0.0), 1);
    CHECK(fabs(rl_hist_mean(&h) - 50.5) < 1e-9);
    CHECK_EQ_INT(h.min, 1);
    CHECK_EQ_INT(h.max, 100);
}

static void test_uniform(void)
{
    static rl_hist h;
    rl_hist_init(&h);
    for (uint64_t v = 1; v <= 1000000; v++)
        rl_hist_record(&h, v);
    /* quantile q of 1..1e6 is q * 1e6 */
    CHECK(within(rl_hist_percentile(&h, 0.5), 500000, 0.004));
    CHECK(within(rl_hist_percentile(&h, 0.9), 900000, 0.004));
    CHECK(within(rl_hist_percentile(&h, 0.99), 990000, 0.004));
    CHECK(within(rl_hist_percentile(&h, 0.999), 999000, 0.004));
    CHECK_EQ_INT(rl_hist_percentile(&h, 1.0), 1000000);
    CHECK(fabs(rl_hist_mean(&h) - 500000.5) < 1e-6);
}

static void test_two_points(void)
{
    /* 99 samples of 100 us and one of 5 s: p99 is 100, p99.9 and max 5 s */
    static rl_hist h;
    rl_hist_init(&h);
    for (int i = 0; i < 99; i++)
        rl_hist_record(&h, 100);
    rl_hist_record(&h, 5000000);
    CHECK_EQ_INT(rl_hist_percentile(&h, 0.99), 100);
    CHECK(within(rl_hist_percentile(&h, 0.999), 5000000, 0.004));
    CHECK_EQ_INT(h.max, 5000000);
    CHECK(fabs(rl_hist_mean(&h) - (99 * 100 + 5000000) / 100.0) < 1e-9);
    /* beyond the range: top bucket, max exact */
    rl_hist_record(&h, 200000000);
    CHECK_EQ_INT(h.max, 200000000);
    CHECK_EQ_INT(rl_hist_percentile(&h, 1.0), 200000000);
}

static void test_merge(void)
{
    static rl_hist a, b, all, m;
    rl_hist_init(&a);
    rl_hist_init(&b);
    rl_hist_init(&all);
    for (uint64_t v = 1; v <= 200000; v++) {
        rl_hist_record(v % 3 ? &a : &b, v * 3);
        rl_hist_record(&all, v * 3);
    }
    rl_hist_init(&m);
    rl_hist_merge(&m, &a);
    rl_hist_merge(&m, &b);
    CHECK_EQ_INT(m.count, 200000);
    CHECK_EQ_INT(m.min, 3);
    CHECK_EQ_INT(m.max, 600000);
    CHECK_EQ_INT(m.sum, all.sum);
    double qs[] = {0.1, 0.5, 0.9, 0.99, 0.999};
    int same = 1;
    for (int i = 0; i < 5; i++)
        same &= rl_hist_percentile(&m, qs[i]) == rl_hist_percentile(&all, qs[i]);
    CHECK(same);
    CHECK(within(rl_hist_percentile(&m, 0.5), 300000, 0.004));
    /* merging an empty histogram changes nothing */
    static rl_hist e;
    rl_hist_init(&e);
    rl_hist_merge(&m, &e);
    CHECK_EQ_INT(m.count, 200000);
    CHECK_EQ_INT(m.min, 3);
    CHECK_EQ_INT(rl_hist_percentile(&e, 0.5), 0);
}

static void test_layout(void)
{
    /* indexes grow with the value, stay in range, and a bucket above 256 is
     * at most 1/128 of its values wide (so the midpoint is within 1/256) */
    unsigned prev = 0;
    int mono = 1, range = 1;
    for (uint64_t v = 0; v < (1ull << 27); v += 1 + v / 1000) {
        unsigned i = rl_hist_index(v);
        mono &= i >= prev;
        range &= i < RL_HIST_BUCKETS;
        prev = i;
    }
    CHECK(mono);
    CHECK(range);
    CHECK_EQ_INT(rl_hist_index(255), 255);
    CHECK_EQ_INT(rl_hist_index(256), 256);
    CHECK_EQ_INT(rl_hist_index(257), 256); /* 256 and 257 share a 2-wide bucket */
    CHECK_EQ_INT(rl_hist_index(258), 257);
    CHECK_EQ_INT(rl_hist_index((1ull << 26) - 1), RL_HIST_BUCKETS - 1);
    /* width at 2^20: values 2^20 .. 2^20 + 2^13 - 1 share one bucket */
    CHECK_EQ_INT(rl_hist_index(1u << 20), rl_hist_index((1u << 20) + 8191));
    CHECK(rl_hist_index(1u << 20) != rl_hist_index((1u << 20) + 8192));
}

int main(void)
{
    RUN(test_small_values_exact);
    RUN(test_uniform);
    RUN(test_two_points);
    RUN(test_merge);
    RUN(test_layout);
    return UNIT_DONE();
}
