/* The bridge's two halves share this: channels/bridge.c (subscriptions,
 * the messages that come in, the connections' life) and
 * channels/bridge_publish.c (publishes, the history's scripts, commands).
 * Private to channels/bridge*.c.
 *
 * Thread: the relay thread. */
#ifndef RC_BRIDGE_INT_H
#define RC_BRIDGE_INT_H

#include "channels/bridge.h"
#include "channels/room.h"
#include "redis/link.h"

/* How a publication is kept: in a channel's history (size 0: not), and at
 * most once per key (once.n 0: no key; emitter.h's publications that every
 * node with members hears and one of them keeps). */
typedef struct keep_opts {
    uint32_t size, ttl;
    rc_str once;
} keep_opts;

/* A PUBLISH waiting for the command connection. */
typedef struct held {
    struct held *next;
    uint32_t chan_len, payload_len;
    uint32_t hist_size, hist_ttl; /* a publication with history (size 0: none) */
    uint32_t once_len;
    char mem[]; /* the channel (ringcast's name), then payload, then the once key */
} held;

struct rc_bridge {
    const rc_config *cfg;
    char publish_sha[41]; /* PUBLISH_LUA's SHA1, loaded at each connect */
    rc_bridge_ops ops;
    void *u;
    rc_rlink *cmd, *sub; /* one Redis, or a cluster's primaries (redis/link.h) */
    rc_rooms *chans;
    rc_room **dirty;
    size_t ndirty, dirty_cap;
    held *head, *tail;
    size_t held_bytes, held_count;
    size_t prefix_len; /* of cfg->redis_prefix "ch:" */
    char prefix[80];
    uint64_t last_bad_log_ms;
    rc_rooms *lost;   /* channels whose publishes were dropped, to announce */
    rc_rooms *flying; /* Redis channels with unanswered PUBLISHes */
    bool lost_full;
    rc_bridge_stats *stats; /* the caller's */
    void (*direct)(void *u, rc_str chan, rc_str payload);
    void *direct_u;
    rc_bridge_alias alias; /* a second Redis channel per channel (rc_bridge_on_alias) */
    void *alias_u;
    char **raw; /* Redis channels held by their own names (rc_bridge_subscribe_raw) */
    size_t nraw;
    /* A cluster: classic SUBSCRIBEs (the raw names, the aliases) reach
     * every node's publishes from any one node: this one (0: none yet). */
    uint16_t raw_node;
    bool resync;            /* a subscriber's command was refused: reconcile soon */
    uint64_t resync_due_ms; /* then */
    uint64_t last_moved_log_ms;
    char namebuf[RC_PROTO_MAX_CHANNEL + 16]; /* a channel read from a cluster name */
};

/* A channel's state, in its rc_room's flags in b->chans (the room has no
 * members: the bridge's table is a set of names). */
#define F_WANT  1u  /* the relay wants it */
#define F_SENT  2u  /* SUBSCRIBE sent, confirmation not yet seen */
#define F_LIVE  4u  /* confirmed */
#define F_GAP   8u  /* answered or dropped while the link was down */
#define F_DIRTY 16u /* in the dirty list */

/* 1 once the bridge's links know they talk to a Redis Cluster. */
bool rc_bridge_cluster(const rc_bridge *b);
/* The hash slot of chan's Redis channel (and of its keys). */
int rc_bridge_slot(const rc_bridge *b, rc_str chan);

/* chan's Redis channel into out[cap]: PREFIX "ch:" chan, or on a
 * cluster PREFIX "ch:{" chan "}" (PREFIX "ch:queue:{" Q "}" for a waiting
 * room's queue:Q, in the slot of its queue's keys); its length, or 0 when
 * it does not fit. */
size_t rc_bridge_redis_name(const rc_bridge *b, rc_str chan, char *out, size_t cap);

/* bridge_publish.c: sends what was held while the link was down, in order;
 * tells the other nodes of channels whose publishes were dropped (once
 * the backlog has drained); the history publish script's SHA1 (at
 * creation) and its SCRIPT LOAD (at each connect). */
void rc_bridge_drain_held(rc_bridge *b);
void rc_bridge_announce_lost(rc_bridge *b);
void rc_bridge_script_sha(rc_bridge *b);
void rc_bridge_load_scripts(rc_bridge *b, uint16_t node);

/* bridge.c: the ringcast channel inside a Redis channel's name (n == 0:
 * not ours); a pub/sub message; a connection lost (logged once) or an
 * attempt failed (counted). */
rc_str rc_bridge_chan_of(rc_bridge *b, const redisReply *name);
void rc_bridge_on_message(rc_bridge *b, const redisReply *rep);
void rc_bridge_link_lost(rc_bridge *b, rc_counter *up, const char *which, const char *reason);

/* bridge_sub.c: this turn's (UN)SUBSCRIBEs; every wanted channel
 * subscribed where its slot lives now; the subscriber link's hooks. */
void rc_bridge_flush_subs(rc_bridge *b);
void rc_bridge_reconcile(rc_bridge *b);
extern const rc_rlink_hooks rc_bridge_sub_hooks;

#endif
