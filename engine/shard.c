/* What a handler may ask of the shard's loop (engine/shard.h): a timer for
 * a connection, an item for the relay, a list of connections to visit at
 * the end of the batch. Nothing here calls back into the handlers.
 *
 * Thread: the shard's own. */
#include <string.h>

#include "engine/shard.h"

void rc_idlist_push(uint32_t **list, uint32_t *n, uint32_t *cap, uint32_t id)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 64;
        *list = rc_realloc(*list, *cap * sizeof(uint32_t));
    }
    (*list)[(*n)++] = id;
}

void rc_conn_timer(rc_shard *s, rc_conn *c, uint32_t ms)
{
    rc_wheel_add(&s->wheel, rc_conn_id(s, c), s->now_tick + rc_ticks_for_ms(ms, RC_TICK_MS));
}

int rc_shard_to_relay(rc_shard *s, uint32_t kind, void *p, int may_fail)
{
    /* b: when the shard accepted it. The relay takes items from all shards
     * oldest first, so that a publisher who waits for each acknowledgement
     * sees its messages in order even when they enter through different
     * shards (one HTTP request each, say). */
    rc_qitem it = {.kind = kind, .a = (uint32_t)s->id, .b = rc_now_ns(), .p = p};
    if (s->nbacklog == 0 && rc_spsc_push(&s->node->links[s->id].to_relay, &it)) {
        /* The relay is woken once, at the end of the batch: a wake-up per
         * item would cost a write() and a context switch per message. */
        s->relay_wake = 1;
        return 0;
    }
    rc_counter_inc(&s->stats.relay_full);
    if (may_fail)
        return -1;
    if (s->nbacklog == s->cap_backlog) {
        s->cap_backlog = s->cap_backlog ? s->cap_backlog * 2 : 256;
        s->relay_backlog = rc_realloc(s->relay_backlog, s->cap_backlog * sizeof(rc_qitem));
    }
    s->relay_backlog[s->nbacklog++] = it;
    rc_counter_set(&s->stats.relay_backlog, s->nbacklog);
    return 0;
}

void rc_shard_flush_relay(rc_shard *s)
{
    uint32_t i = 0;
    while (i < s->nbacklog && rc_spsc_push(&s->node->links[s->id].to_relay, &s->relay_backlog[i]))
        i++;
    if (i) {
        memmove(s->relay_backlog, s->relay_backlog + i, (s->nbacklog - i) * sizeof(rc_qitem));
        s->nbacklog -= i;
        rc_counter_set(&s->stats.relay_backlog, s->nbacklog);
        s->relay_wake = 1;
    }
}

rc_obuf *rc_proto_frame_for(rc_shard *s, const rc_conn *c, const rc_msg *m, rc_obuf *json,
                            rc_proto_frames *fr)
{
    const rc_protocol *p = s->protos[c->proto];
    if (!p->frame)
        return json;
    if (!fr->made[c->proto]) {
        fr->made[c->proto] = 1;
        fr->f[c->proto] = p->frame(s, m);
        if (fr->f[c->proto])
            fr->f[c->proto]->refs = 1; /* held until rc_proto_frames_put */
    }
    return fr->f[c->proto];
}

void rc_proto_frames_put(rc_proto_frames *fr)
{
    for (int i = 0; i < RC_PROTO__COUNT; i++)
        if (fr->f[i])
            rc_obuf_put(fr->f[i]);
}
