/* The shard's connection table after a wave of connections: giving back
 * the pages whose slots are all free, and the generation each such page's
 * slots start from afterwards (engine/shard.h).
 *
 * Thread: the shard's own. */
#include <sys/mman.h>

#include "engine/shard.h"

int rc_conn_page_floor(const rc_conn *slots, uint32_t n, uint16_t floor, uint16_t *out)
{
    int zero = 1;
    for (uint32_t i = 0; i < n; i++) {
        if (slots[i].state != RC_CONN_FREE)
            return 0;
        uint16_t g = slots[i].gen;
        if (g) {
            zero = 0;
            if ((int16_t)(g - floor) > 0)
                floor = g;
        }
    }
    if (zero)
        return 0;
    *out = floor;
    return 1;
}

/* A wave of connections leaves the pages of the connection table it used
 * resident (64 bytes a slot: 6.4 MB for 100k). Once a second, after at
 * least a page's worth of releases, every page whose slots are all free is
 * given back to the kernel, which maps zeros there again. A free slot is
 * all zeros but its generation, and a generation must not come back while
 * something may still name the slot with it (a relay answer, a backend's
 * reply, a history read: each holds slot and generation). So the page's
 * floor, page_gen, becomes the highest generation on it (a free slot's is
 * already one past its last tenant's), and a slot that reads 0 starts from
 * the floor when it is next claimed (rc_conn_claim). */
void rc_conn_table_trim(rc_shard *s)
{
    uint32_t per = s->conns_per_page;
    if (s->freed < per)
        return;
    s->freed = 0;
    for (uint32_t pg = 0; pg < s->conn_pages; pg++) {
        uint32_t first = pg * per, last = RC_MIN(first + per, s->nconns);
        uint16_t floor;
        if (!rc_conn_page_floor(&s->conns[first], last - first, s->page_gen[pg], &floor))
            continue; /* in use, or all zeros already (untouched or given back) */
        if (madvise((char *)s->conns + (size_t)pg * per * sizeof(rc_conn),
                    (size_t)per * sizeof(rc_conn), MADV_DONTNEED) == 0) {
            s->page_gen[pg] = floor;
            rc_counter_inc(&s->stats.table_trimmed);
        }
    }
}
