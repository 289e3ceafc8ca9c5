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
#include "channels/history.h"
#include "channels/presence.h"
#include "engine/outbox.h"

typedef struct rc_chan_relay_stats {
    rc_counter publishes;      /* publishes received from shards */
    rc_counter deliveries;     /* rc_msg handed to shards (one per shard per message) */
    rc_counter no_members;     /* publishes to channels with no member on this node */
    rc_counter channels;       /* gauge: channels with members */
    rc_counter notices;        /* messages_dropped notices after a Redis reconnect (per shard) */
    rc_counter history_writes; /* publications kept in a history */
    rc_counter history_reads;  /* history questions answered */
    rc_counter recoveries[RC_REC__COUNT]; /* recoveries (subscribe or history with since) */
    rc_counter history_channels;          /* gauge: channels with a history record */
    rc_counter history_entries;           /* gauge: publications kept */
    rc_counter history_bytes;             /* gauge: their frames' bytes */
    rc_counter history_cached;            /* with Redis: answered from memory */
    rc_counter history_coalesced;         /* with Redis: waited for a read already asked */
    rc_presence_stats presence;
    /* permessage-deflate, once per publication (while some connection on
     * the node negotiated it, on channels where it is on): */
    rc_counter deflate_compressed;  /* publications compressed */
    rc_counter deflate_small;       /* sent plain: payload under --deflate-min-bytes */
    rc_counter deflate_not_smaller; /* sent plain: compressing did not make it shorter */
    rc_counter deflate_bytes_in;    /* payload bytes of the compressed ones, before */
    rc_counter deflate_bytes_out;   /* and after */
} rc_chan_relay_stats;

typedef struct rc_chan_relay rc_chan_relay;

rc_chan_relay *rc_chan_relay_new(const rc_config *cfg, rc_outbox *out, rc_chan_relay_stats *stats);
/* Shown each waiting-room tick that goes by on channel "queue:{queue}"
 * (the waiting rooms' gauges and pace, admission/). */
typedef void (*rc_tick_tap_fn)(void *u, rc_str queue, rc_str data);

/* With Redis: the bridge to drive, and who sees the ticks go by. */
void rc_chan_relay_attach(rc_chan_relay *t, rc_bridge *bridge, rc_tick_tap_fn tap, void *tap_u);
/* The shards are gone: what Redis still sends is dropped. */
void rc_chan_relay_stop(rc_chan_relay *t);
void rc_chan_relay_free(rc_chan_relay *t);
/* How many connections on the node negotiated permessage-deflate (the
 * relay sums the shards' gauges each turn): publications are compressed
 * only while some did. */
void rc_chan_relay_set_deflate_users(rc_chan_relay *t, uint64_t n);

/* The shards' items: a shard's first member of a channel (p: the name), its
 * last one leaving, a publication (p: rc_pub). Each takes p. */
void rc_chan_relay_on_sub(rc_chan_relay *t, const rc_qitem *it);
void rc_chan_relay_on_unsub(rc_chan_relay *t, const rc_qitem *it);
void rc_chan_relay_on_publish(rc_chan_relay *t, const rc_qitem *it);
/* A shard's history question (p: rc_histreq), answered to that shard. */
void rc_chan_relay_on_history(rc_chan_relay *t, const rc_qitem *it);
/* A shard's presence news or question (p: rc_presreq). */
void rc_chan_relay_on_presence(rc_chan_relay *t, const rc_qitem *it);
/* At the end of each relay turn: what the turn left to write to Redis. */
void rc_chan_relay_flush(rc_chan_relay *t);
/* Once a second or so: history past its ttl goes, gauges are set. */
void rc_chan_relay_tick(rc_chan_relay *t, int64_t now_ms);

/* What the bridge reports (its callbacks take the table as u). */
extern const rc_bridge_ops rc_chan_bridge_ops;
/* The notice for the members of chan who lost messages to a full shard
 * queue (the outbox's gap callback; u is the table). */
rc_msg *rc_chan_gap_notice(void *u, rc_str chan);

#endif
