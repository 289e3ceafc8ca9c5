/* The relay's way to the shards: one queue per shard (rc_node.links), and
 * behind each an overflow list for what a full queue could not take, kept in
 * order. Past a bound, channel messages for that shard are dropped rather
 * than memory growing without end; the channels that lost some are
 * remembered, and once the shard's overflow has drained each gets a notice
 * (built by the gap callback) so that its members know to recover.
 *
 * Thread: the relay thread. */
#ifndef RC_OUTBOX_H
#define RC_OUTBOX_H

#include "engine/msg.h"
#include "engine/node.h"
#include "engine/queue.h"

typedef struct rc_outbox_stats {
    rc_counter overflow; /* gauge: items waiting because a shard queue was full */
    rc_counter dropped;  /* messages dropped for a shard whose overflow was full */
} rc_outbox_stats;

/* The notice for the members of channel chan on one shard, who lost
 * messages to overflow; its reference count is set by the outbox. */
typedef rc_msg *(*rc_gap_notice_fn)(void *u, rc_str chan);

typedef struct rc_outbox rc_outbox;

rc_outbox *rc_outbox_new(rc_node *node, rc_outbox_stats *stats);
void rc_outbox_set_gap_notice(rc_outbox *o, rc_gap_notice_fn fn, void *u);
/* Hands it to shard i, behind anything already waiting for that shard. */
void rc_outbox_push(rc_outbox *o, int shard, const rc_qitem *it);
/* Items waiting in overflow, all shards together. */
size_t rc_outbox_waiting(const rc_outbox *o);
/* Moves waiting items into the shards' queues as room frees up. */
void rc_outbox_flush(rc_outbox *o);
/* Wakes each shard that was given something since the last call. */
void rc_outbox_wake(rc_outbox *o);
/* At exit (the shards are gone): hands each item that still waits to
 * discard, which frees what it carries. */
void rc_outbox_discard(rc_outbox *o, void (*discard)(const rc_qitem *it));
void rc_outbox_free(rc_outbox *o);

#endif
