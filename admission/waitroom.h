/* Waiting rooms on a shard (admission/waitroom.c): a connection's place in
 * a queue's line, the relay's answers, and each tick's shared frame and
 * admission tokens. Who may join is decided before (ops/ops.c).
 *
 * Thread: the shard's own. */
#ifndef RC_WAITROOM_H
#define RC_WAITROOM_H

#include "admission/admission.h"
#include "engine/shard.h"

/* A connection's place in a waiting room: the per-slot side table s->waits. */
typedef struct rc_wait {
    int64_t ticket;
    int64_t head;  /* the head the join's answer counted from: older ticks are not sent */
    rc_room *room; /* "queue:{q}"; NULL when not waiting */
} rc_wait;

/* queue.join / queue.leave for c, answered through c's protocol (c is held
 * while Redis answers). */
void rc_wait_join(rc_shard *s, rc_conn *c, rc_str tag, rc_str queue);
void rc_wait_leave(rc_shard *s, rc_conn *c, rc_str tag, rc_str queue);
/* c is closing: it waits no more (the relay is told). */
void rc_wait_conn_gone(rc_shard *s, rc_conn *c);

/* --- from the loop: the relay's items --- */
/* The relay's answer to a client's call this shard made; frees it. */
void rc_wait_on_calldone(rc_shard *s, struct rc_call *k);
/* A waiting room's message (RC_MSG_TICK: the shared frame and tokens for its
 * waiters; RC_MSG_QLEFT: a user left the line, from any connection on any
 * node); drops m's reference. */
void rc_wait_on_msg(rc_shard *s, rc_msg *m);

#endif
