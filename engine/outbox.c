/* The relay's way to the shards (engine/outbox.h).
 *
 * Thread: the relay thread. */
#include "engine/outbox.h"

#include <string.h>

#include "channels/room.h"

/* Past this many waiting items for one shard, channel messages are dropped
 * (and the channel's members told) rather than memory growing without end. */
#define OVERFLOW_MAX_DATA (1u << 18)

/* Items for one shard that did not fit in its queue, oldest first. */
typedef struct overflow {
    rc_qitem *items;
    size_t head, n, cap;
} overflow;

struct rc_outbox {
    rc_node *node;
    overflow *ovf;   /* [nshards] */
    uint8_t *wake;   /* [nshards]: pushed something since the last wake */
    rc_rooms **gaps; /* [nshards]: channels that lost messages to overflow */
    size_t total;
    rc_gap_notice_fn gap_notice;
    void *gap_u;
    rc_outbox_stats *stats;
};

rc_outbox *rc_outbox_new(rc_node *node, rc_outbox_stats *stats)
{
    rc_outbox *o = rc_calloc(1, sizeof(*o));
    o->node = node;
    o->stats = stats;
    o->ovf = rc_calloc((size_t)node->nshards, sizeof(overflow));
    o->wake = rc_calloc((size_t)node->nshards, 1);
    o->gaps = rc_calloc((size_t)node->nshards, sizeof(rc_rooms *));
    for (int i = 0; i < node->nshards; i++)
        o->gaps[i] = rc_rooms_new();
    return o;
}

void rc_outbox_set_gap_notice(rc_outbox *o, rc_gap_notice_fn fn, void *u)
{
    o->gap_notice = fn;
    o->gap_u = u;
}

static void ovf_push(overflow *v, const rc_qitem *it)
{
    if (v->n == v->cap) {
        size_t ncap = v->cap ? v->cap * 2 : 1024;
        rc_qitem *ni = rc_malloc(ncap * sizeof(*ni));
        for (size_t i = 0; i < v->n; i++)
            ni[i] = v->items[(v->head + i) % v->cap];
        free(v->items);
        v->items = ni;
        v->cap = ncap;
        v->head = 0;
    }
    v->items[(v->head + v->n) % v->cap] = *it;
    v->n++;
}

void rc_outbox_push(rc_outbox *o, int i, const rc_qitem *it)
{
    overflow *v = &o->ovf[i];
    o->wake[i] = 1;
    if (v->n == 0 && rc_spsc_push(&o->node->links[i].to_shard, it))
        return;
    if (it->kind == RC_Q_DELIVER && v->n >= OVERFLOW_MAX_DATA) {
        rc_msg *m = it->p;
        rc_rooms_add(o->gaps[i], m->chan, m->chan_len);
        rc_msg_put(m);
        rc_counter_inc(&o->stats->dropped);
        return;
    }
    ovf_push(v, it);
    o->total++;
}

size_t rc_outbox_waiting(const rc_outbox *o)
{
    return o->total;
}

typedef struct gap_arg {
    rc_outbox *o;
    int shard;
} gap_arg;

static void gap_one(rc_room *room, void *arg)
{
    gap_arg *g = arg;
    rc_msg *m = g->o->gap_notice(g->o->gap_u, (rc_str){room->name, room->name_len});
    rc_ref_init(&m->refs, 1);
    rc_qitem it = {.kind = RC_Q_DELIVER, .p = m};
    ovf_push(&g->o->ovf[g->shard], &it);
    g->o->total++;
}

void rc_outbox_flush(rc_outbox *o)
{
    for (int i = 0; i < o->node->nshards; i++) {
        overflow *v = &o->ovf[i];
        while (v->n) {
            if (!rc_spsc_push(&o->node->links[i].to_shard, &v->items[v->head]))
                break;
            v->head = (v->head + 1) % v->cap;
            v->n--;
            o->total--;
            o->wake[i] = 1;
        }
        if (v->n == 0 && rc_rooms_count(o->gaps[i]) && o->gap_notice) {
            gap_arg g = {o, i};
            rc_rooms_each(o->gaps[i], gap_one, &g);
            rc_rooms_free(o->gaps[i]);
            o->gaps[i] = rc_rooms_new();
        }
    }
    rc_counter_set(&o->stats->overflow, o->total);
}

void rc_outbox_wake(rc_outbox *o)
{
    for (int i = 0; i < o->node->nshards; i++) {
        if (o->wake[i]) {
            o->wake[i] = 0;
            rc_waker_wake(&o->node->links[i].shard_waker);
        }
    }
}

void rc_outbox_discard(rc_outbox *o, void (*discard)(const rc_qitem *it))
{
    for (int i = 0; i < o->node->nshards; i++) {
        overflow *v = &o->ovf[i];
        while (v->n) {
            rc_qitem it = v->items[v->head];
            v->head = (v->head + 1) % v->cap;
            v->n--;
            discard(&it);
        }
    }
    o->total = 0;
}

void rc_outbox_free(rc_outbox *o)
{
    if (!o)
        return;
    for (int i = 0; i < o->node->nshards; i++) {
        free(o->ovf[i].items);
        rc_rooms_free(o->gaps[i]);
    }
    free(o->ovf);
    free(o->wake);
    free(o->gaps);
    free(o);
}
