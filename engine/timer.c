/* Thread: the thread that owns the wheel (one shard). */
#include "engine/timer.h"

#include <string.h>

/* Link layout: an unarmed node has prev == RC_TIMER_NONE. The head of a slot
 * has prev == its own id, so "armed" needs no id reserved beyond
 * RC_TIMER_NONE itself, and unlinking the head is told apart from unlinking
 * the middle without a search. An armed node always sits in slot
 * (when & mask): rc_wheel_add moves a past when up to now + 1. */

/* a - b as a signed distance: ticks wrap, and every live timer is within
 * 2^31 - 1 ticks of now. */
static inline int32_t tick_diff(uint32_t a, uint32_t b)
{
    return (int32_t)(a - b);
}

void rc_tnode_init(rc_tnode *t)
{
    t->next = RC_TIMER_NONE;
    t->prev = RC_TIMER_NONE;
    t->when = 0;
}

int rc_tnode_armed(const rc_tnode *t)
{
    return t->prev != RC_TIMER_NONE;
}

void rc_wheel_init(rc_wheel *w, uint32_t nslots, uint32_t now,
                   rc_tnode *(*node)(void *ctx, uint32_t id), void *ctx)
{
    rc_assert(nslots > 0 && (nslots & (nslots - 1)) == 0);
    w->slots = rc_malloc((size_t)nslots * sizeof(uint32_t));
    memset(w->slots, 0xff, (size_t)nslots * sizeof(uint32_t)); /* RC_TIMER_NONE */
    w->mask = nslots - 1;
    w->now = now;
    w->node = node;
    w->ctx = ctx;
}

void rc_wheel_free(rc_wheel *w)
{
    free(w->slots);
    w->slots = NULL;
}

static void unlink_node(rc_wheel *w, uint32_t id, rc_tnode *t)
{
    if (t->prev == id)
        w->slots[t->when & w->mask] = t->next;
    else
        w->node(w->ctx, t->prev)->next = t->next;
    if (t->next != RC_TIMER_NONE) {
        rc_tnode *n = w->node(w->ctx, t->next);
        n->prev = t->prev == id ? t->next : t->prev;
    }
    t->next = RC_TIMER_NONE;
    t->prev = RC_TIMER_NONE;
}

void rc_wheel_add(rc_wheel *w, uint32_t id, uint32_t when)
{
    rc_assert(id != RC_TIMER_NONE);
    rc_tnode *t = w->node(w->ctx, id);
    if (rc_tnode_armed(t))
        unlink_node(w, id, t);
    if (tick_diff(when, w->now) <= 0)
        when = w->now + 1;
    t->when = when;

    uint32_t *head = &w->slots[when & w->mask];
    t->prev = id;
    t->next = *head;
    if (*head != RC_TIMER_NONE)
        w->node(w->ctx, *head)->prev = id;
    *head = id;
}

void rc_wheel_del(rc_wheel *w, uint32_t id)
{
    rc_tnode *t = w->node(w->ctx, id);
    if (rc_tnode_armed(t))
        unlink_node(w, id, t);
}

/* Fires the timers of tick's slot whose tick has come. Timers armed by a
 * callback have when > tick (add moves a past when to now + 1 == tick + 1),
 * so none of them is due here and the walk may miss them. What it must
 * survive is a callback that disarms or moves the node it was about to visit:
 * then it starts the slot over (already-fired nodes are gone from it, and
 * the rest are skipped again, so each node still fires at most once). */
static void run_slot(rc_wheel *w, uint32_t tick, void (*fire)(void *arg, uint32_t id), void *arg)
{
    uint32_t s = tick & w->mask;
    uint32_t id = w->slots[s];
    while (id != RC_TIMER_NONE) {
        rc_tnode *t = w->node(w->ctx, id);
        uint32_t next = t->next;
        if (tick_diff(t->when, tick) > 0) {
            id = next; /* beyond the span: its tick comes in a later round */
            continue;
        }
        unlink_node(w, id, t);
        fire(arg, id);
        if (next != RC_TIMER_NONE) {
            rc_tnode *n = w->node(w->ctx, next);
            if (!rc_tnode_armed(n) || (n->when & w->mask) != s)
                next = w->slots[s];
        }
        id = next;
    }
}

void rc_wheel_advance(rc_wheel *w, uint32_t now, void (*fire)(void *arg, uint32_t id), void *arg)
{
    int32_t ahead = tick_diff(now, w->now);
    if (ahead <= 0)
        return;
    /* A jump longer than the span visits each slot once, over the last
     * nslots ticks: a timer whose tick was skipped fires at the tick of
     * that last round that shares its slot. */
    uint32_t nslots = w->mask + 1;
    if ((uint32_t)ahead > nslots)
        w->now = now - nslots;
    while (w->now != now) {
        w->now++;
        run_slot(w, w->now, fire, arg);
    }
}
