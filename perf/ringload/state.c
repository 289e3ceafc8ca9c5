/* ringload's run-wide state: the configuration, the run's phase, the
 * totals, shared by main and the scenarios (set by main before the workers
 * start; the workers' counters are read with relaxed atomic loads).
 *
 * Thread: the main thread writes; the workers read. */
#include <stddef.h>
#include <string.h>

#include "perf/ringload/rl.h"

rl_cfg rl_cfg_g;
rl_run rl_run_g;
rl_stats rl_tot;
rl_hist rl_tot_hist;

void rl_stats_sum(rl_stats *out)
{
    memset(out, 0, sizeof(*out));
    for (uint32_t t = 0; t < rl_cfg_g.threads; t++) {
        const uint64_t *src = (const uint64_t *)&rl_thrs[t].st;
        uint64_t *dst = (uint64_t *)out;
        size_t words = offsetof(rl_stats, status) / sizeof(uint64_t);
        for (size_t w = 0; w < words; w++)
            dst[w] += __atomic_load_n(&src[w], __ATOMIC_RELAXED);
        for (int k = 0; k < RL_CODES; k++) {
            const rl_codecount *tabs[2] = {rl_thrs[t].st.status, rl_thrs[t].st.close};
            rl_codecount *outs[2] = {out->status, out->close};
            for (int j = 0; j < 2; j++) {
                uint64_t n = __atomic_load_n(&tabs[j][k].n, __ATOMIC_RELAXED);
                if (n) {
                    uint32_t code = tabs[j][k].code;
                    for (int m = 0; m < RL_CODES; m++) {
                        if (outs[j][m].n == 0 || outs[j][m].code == code) {
                            outs[j][m].code = code;
                            outs[j][m].n += n;
                            break;
                        }
                    }
                }
            }
        }
    }
    /* first/last open times are min/max, not sums */
    out->first_open_ns = UINT64_MAX;
    out->last_open_ns = 0;
    for (uint32_t t = 0; t < rl_cfg_g.threads; t++) {
        uint64_t f = RL_GET(rl_thrs[t].st.first_open_ns), l = RL_GET(rl_thrs[t].st.last_open_ns);
        if (f && f < out->first_open_ns)
            out->first_open_ns = f;
        if (l > out->last_open_ns)
            out->last_open_ns = l;
    }
    if (out->first_open_ns == UINT64_MAX)
        out->first_open_ns = 0;
}
