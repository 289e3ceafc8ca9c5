/* Merging the small frames at the head of a connection's output queue
 * (engine/shard.h, rc_outq_merge).
 *
 * Thread: the shard's own. */
#include <string.h>

#include "engine/shard.h"

uint32_t rc_outq_merge(rc_outq *q)
{
    uint32_t mask = q->cap - 1, m = 0;
    size_t bytes = 0;
    while (m < q->n) {
        const rc_obuf *b = q->items[(q->head + m) & mask];
        size_t len = b->len - (m == 0 ? q->off : 0);
        if (len > RC_MERGE_FRAME_MAX || bytes + len > RC_MERGE_BYTES_MAX)
            break;
        bytes += len;
        m++;
    }
    if (m < 2)
        return 0;
    rc_obuf *run = rc_malloc(sizeof(*run) + bytes);
    run->refs = 1;
    run->kind = RC_OBUF_REPLY; /* what it holds is on its way: never dropped */
    run->shared = NULL;
    run->len = (uint32_t)bytes;
    run->data = run->inline_data;
    uint8_t *w = run->inline_data;
    for (uint32_t i = 0; i < m; i++) {
        rc_obuf *b = q->items[(q->head + i) & mask];
        uint32_t off = i == 0 ? q->off : 0;
        memcpy(w, b->data + off, b->len - off);
        w += b->len - off;
        rc_obuf_put(b);
    }
    q->head = (q->head + m - 1) & mask;
    q->n -= m - 1;
    q->off = 0;
    q->items[q->head] = run;
    return m;
}
