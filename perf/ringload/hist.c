#include "perf/ringload/hist.h"

#include <math.h>
#include <string.h>

#define HALF     (1u << (RL_HIST_SUB_BITS - 1))
#define LD(x)    __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define ST(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)

void rl_hist_init(rl_hist *h)
{
    memset(h, 0, sizeof(*h));
    h->min = UINT64_MAX;
}

unsigned rl_hist_index(uint64_t v)
{
    if (v < (1u << RL_HIST_SUB_BITS))
        return (unsigned)v;
    if (v >= (1ull << RL_HIST_MAX_BIT))
        return RL_HIST_BUCKETS - 1;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = msb - (RL_HIST_SUB_BITS - 1);
    return (shift + 1) * HALF + (unsigned)(v >> shift) - HALF;
}

/* Lowest value and width of bucket i. */
static void bucket_range(unsigned i, uint64_t *lo, uint64_t *width)
{
    if (i < (1u << RL_HIST_SUB_BITS)) {
        *lo = i;
        *width = 1;
        return;
    }
    unsigned shift = i / HALF - 1;
    uint64_t top = (uint64_t)(i % HALF + HALF);
    *lo = top << shift;
    *width = 1ull << shift;
}

void rl_hist_record(rl_hist *h, uint64_t us)
{
    unsigned i = rl_hist_index(us);
    ST(h->b[i], h->b[i] + 1);
    ST(h->count, h->count + 1);
    ST(h->sum, h->sum + us);
    if (us < h->min)
        ST(h->min, us);
    if (us > h->max)
        ST(h->max, us);
}

void rl_hist_merge(rl_hist *dst, const rl_hist *src)
{
    uint64_t total = 0;
    for (unsigned i = 0; i < RL_HIST_BUCKETS; i++) {
        uint64_t c = LD(src->b[i]);
        dst->b[i] += c;
        total += c;
    }
    /* count is the bucket total, so percentiles of a snapshot stay
     * consistent even while the owner records. */
    dst->count += total;
    dst->sum += LD(src->sum);
    uint64_t mn = LD(src->min), mx = LD(src->max);
    if (total && mn < dst->min)
        dst->min = mn;
    if (total && mx > dst->max)
        dst->max = mx;
}

uint64_t rl_hist_percentile(const rl_hist *h, double q)
{
    if (h->count == 0)
        return 0;
    if (q < 0)
        q = 0;
    if (q > 1)
        q = 1;
    uint64_t rank = (uint64_t)ceil(q * (double)h->count);
    if (rank == 0)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < RL_HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen >= rank) {
            if (i == RL_HIST_BUCKETS - 1) /* the overflow bucket: max is exact */
                return h->max;
            uint64_t lo, w;
            bucket_range(i, &lo, &w);
            uint64_t v = lo + w / 2;
            if (v < h->min)
                v = h->min;
            if (v > h->max)
                v = h->max;
            return v;
        }
    }
    return h->max;
}

double rl_hist_mean(const rl_hist *h)
{
    return h->count ? (double)h->sum / (double)h->count : 0.0;
}
