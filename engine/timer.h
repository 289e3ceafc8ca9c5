/* A hashed timer wheel for one shard: heartbeats, handshake deadlines, token
 * expiry, drain deadlines. One timer per connection, intrusive, linked by
 * uint32 ids so that a connection pays 12 bytes for it; no io_uring timeout
 * per connection.
 *
 * Time is counted in ticks (the shard uses 100 ms). A timer further away than
 * the wheel's span sits in the slot it hashes to and is skipped (left in
 * place) until its tick comes round: O(1) add and delete, O(slot length) per
 * tick. */
#ifndef RC_TIMER_H
#define RC_TIMER_H

#include "base/common.h"

#define RC_TIMER_NONE UINT32_MAX

/* Embedded in each timed object. Zero-initialised is not valid: call
 * rc_tnode_init. */
typedef struct rc_tnode {
    uint32_t next, prev; /* ids in the slot's list; RC_TIMER_NONE ends it
                            (private to timer.c: see there) */
    uint32_t when;       /* tick the timer fires at */
} rc_tnode;

typedef struct rc_wheel {
    uint32_t *slots;                           /* head id per slot */
    uint32_t mask;                             /* nslots - 1 */
    uint32_t now;                              /* last tick advanced to */
    rc_tnode *(*node)(void *ctx, uint32_t id); /* id -> its node */
    void *ctx;
} rc_wheel;

/* Marks a node as not linked. */
void rc_tnode_init(rc_tnode *t);

/* 1 when the node is linked in a wheel. */
int rc_tnode_armed(const rc_tnode *t);

/* Sets up a wheel of nslots (a power of two) starting at tick now; node maps
 * an id to its rc_tnode. Can't fail. */
void rc_wheel_init(rc_wheel *w, uint32_t nslots, uint32_t now,
                   rc_tnode *(*node)(void *ctx, uint32_t id), void *ctx);
void rc_wheel_free(rc_wheel *w);

/* Arms id's timer to fire at tick when (re-arming it if already armed). A
 * when at or before w->now is stored as w->now + 1: it fires on the next
 * advance. id must not be RC_TIMER_NONE; when must be less than 2^31 ticks
 * after w->now (further is taken as the past). */
void rc_wheel_add(rc_wheel *w, uint32_t id, uint32_t when);

/* How many ticks of tick_ms (> 0) cover ms: ms rounded up to whole ticks, and
 * at least one. Can't wrap: any ms gives at most 2^32 / tick_ms ticks, under
 * the 2^31 rc_wheel_add takes for a tick_ms of 2 or more. */
static inline uint32_t rc_ticks_for_ms(uint32_t ms, uint32_t tick_ms)
{
    uint32_t t = ms / tick_ms + (ms % tick_ms != 0);
    return t ? t : 1;
}

/* Disarms id's timer if armed; no-op otherwise. */
void rc_wheel_del(rc_wheel *w, uint32_t id);

/* Advances to tick now and calls fire(arg, id) for each timer whose tick has
 * come, after unlinking it (fire may re-arm it, or arm or disarm others).
 * Ticks are uint32 and compared with wrap-around in mind: a now that is not
 * after w->now (by less than 2^31) changes nothing. Ticks are visited in
 * order with w->now set to each while its timers fire, so a timer fires at
 * its own tick, and one re-armed by fire fires again within this advance if
 * its new tick is still <= now. A jump of more than nslots ticks visits only
 * the last nslots: a timer due in the skipped part fires at the tick of that
 * last round congruent to its when (mod nslots). Order within a tick is
 * unspecified. */
void rc_wheel_advance(rc_wheel *w, uint32_t now, void (*fire)(void *arg, uint32_t id), void *arg);

#endif
