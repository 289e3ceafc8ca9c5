/* The relay thread: the one place where the shards' traffic meets.
 *
 * It keeps the node's channel table (channel -> the shards that have members,
 * and the channel's sequence number), turns each publish into one shared
 * frame (rc_msg) with one reference per member shard, and hands it to those
 * shards. With a Redis URL it also speaks to Redis for the node
 * (channels/bridge.h): publishes go to the other nodes, and messages from them
 * come back through the same fan-out. It has its own io_uring ring, which
 * also drives the Redis sockets, and sleeps in it when there is nothing to do. */
#ifndef RC_RELAY_H
#define RC_RELAY_H

#include <pthread.h>

#include "engine/node.h"
#include "engine/queue.h"
#include "admission/admission.h"
#include "channels/bridge.h"
#include "channels/relay.h"
#include "engine/outbox.h"
#include "events/lifecycle.h"
#include "events/relay.h"
#include "sio/emitter.h"
#include "sio/recovery.h"

typedef struct rc_relay_stats {
    rc_chan_relay_stats chans; /* the channel table (channels/relay.c) */
    rc_outbox_stats out;       /* the way to the shards (engine/outbox.c) */
    rc_counter wakes;
    int redis; /* a Redis URL is configured (set before the thread starts) */
    rc_bridge_stats bridge;
    rc_admission_stats admission;     /* waiting rooms (with Redis) */
    rc_events_stats events;           /* client events and replies (with Redis) */
    rc_lifecycle_stats lifecycle;     /* the lifecycle stream (with Redis) */
    rc_sio_keeper_stats sio_keeper;   /* kept Socket.IO sessions (sio/recovery.h) */
    rc_sio_emitter_stats sio_emitter; /* Socket.IO's Redis emitter (sio/emitter.h) */
} rc_relay_stats;

typedef struct rc_relay rc_relay;

/* Creates the relay for node (node->links must be set up). Can't fail except
 * for allocation, which aborts. */
rc_relay *rc_relay_new(rc_node *node);

/* Starts the thread. Returns 0 or an errno value. */
int rc_relay_start(rc_relay *r);

/* Waits for the thread to end (after node->relay_stop is set and the relay
 * woken) and frees the relay. */
void rc_relay_join(rc_relay *r);

/* Any thread: the relay's counters. */
const rc_relay_stats *rc_relay_get_stats(const rc_relay *r);

/* Any thread: 1 without a Redis URL, or when both Redis connections are up. */
int rc_relay_redis_ok(const rc_relay *r);

#endif
