/* Channels on the relay (channels/relay.c): the node's channel table (for
 * each channel, which shards have members, and its last sequence number),
 * the SUBACKs that make "subscribed" mean every later message arrives, and
 * the fan-out of each message to the member shards as one shared frame.
 * With Redis, the table drives the bridge (channels/bridge.c): one
 * SUBSCRIBE per channel with members here, and every publish goes out too.
 *
 * Thread: the relay thread. */
#ifndef RC_CHAN_RELAY_H
#define RC_CHAN_RELAY_H

#include "channels/bridge.h"
#include "engine/outbox.h"

typedef struct rc_chan_relay_stats {
    rc_counter publishes;  /* publishes received from shards */
    rc_counter deliveries; /* rc_msg handed to shards (one per shard per message) */
    rc_counter no_members; /* publishes to channels with no member on this node */
    rc_counter channels;   /* gauge: channels with members */
    rc_counter notices;    /* messages_dropped notices after a Redis reconnect (per shard) */
} rc_chan_relay_stats;

typedef struct rc_chan_relay rc_chan_relay;

rc_chan_relay *rc_chan_relay_new(rc_outbox *out, rc_chan_relay_stats *stats);
/* Shown each waiting-room tick that goes by on channel "queue:{queue}"
 * (the waiting rooms' gauges and pace, admission/). */
typedef void (*rc_tick_tap_fn)(void *u, rc_str queue, rc_str data);

/* With Redis: the bridge to drive, and who sees the ticks go by. */
void rc_chan_relay_attach(rc_chan_relay *t, rc_bridge *bridge, rc_tick_tap_fn tap, void *tap_u);
/* The shards are gone: what Redis still sends is dropped. */
void rc_chan_relay_stop(rc_chan_relay *t);
void rc_chan_relay_free(rc_chan_relay *t);

/* The shards' items: a shard's first member of a channel (p: the name), its
 * last one leaving, a publication (p: rc_pub). Each takes p. */
void rc_chan_relay_on_sub(rc_chan_relay *t, const rc_qitem *it);
void rc_chan_relay_on_unsub(rc_chan_relay *t, const rc_qitem *it);
void rc_chan_relay_on_publish(rc_chan_relay *t, const rc_qitem *it);

/* What the bridge reports (its callbacks take the table as u). */
extern const rc_bridge_ops rc_chan_bridge_ops;
/* The notice for the members of chan who lost messages to a full shard
 * queue (the outbox's gap callback; u is the table). */
rc_msg *rc_chan_gap_notice(void *u, rc_str chan);

#endif
