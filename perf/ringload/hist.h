/* A log-linear latency histogram in microseconds, HDR style: values below
 * 256 have a bucket each; above, every power of two is cut into 128 equal
 * buckets, so a bucket is at most 1/128 of its values wide and reporting its
 * midpoint is within 0.4% of any value in it. Range 0 .. 2^26 us (~67 s);
 * larger values land in the top bucket (max stays exact).
 *
 * One thread records; another may take a snapshot at any time with
 * rl_hist_merge (counts are stored and loaded with relaxed atomics: a
 * snapshot may be a few samples behind, never torn). */
#ifndef RL_HIST_H
#define RL_HIST_H

#include <stdint.h>

#define RL_HIST_SUB_BITS 8
#define RL_HIST_MAX_BIT  26
#define RL_HIST_BUCKETS  ((RL_HIST_MAX_BIT - RL_HIST_SUB_BITS + 2) << (RL_HIST_SUB_BITS - 1))

typedef struct rl_hist {
    uint64_t count, sum, min, max;
    uint64_t b[RL_HIST_BUCKETS];
} rl_hist;

/* Empties h. Can't fail. */
void rl_hist_init(rl_hist *h);

/* Bucket index of value v (us); exposed for the tests. */
unsigned rl_hist_index(uint64_t v);

/* Records one value in microseconds. */
void rl_hist_record(rl_hist *h, uint64_t us);

/* Adds src's samples into dst (src unchanged; may be recorded into
 * concurrently by its owner). */
void rl_hist_merge(rl_hist *dst, const rl_hist *src);

/* The value at quantile q (0..1): the midpoint of the bucket holding the
 * ceil(q * count)-th smallest sample, clamped to [min, max] (max itself
 * for the top bucket, which holds everything beyond the range); 0 when
 * empty. */
uint64_t rl_hist_percentile(const rl_hist *h, double q);

/* Mean of the recorded values (exact), 0 when empty. */
double rl_hist_mean(const rl_hist *h);

#endif
