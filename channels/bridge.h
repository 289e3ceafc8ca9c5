/* The node's link to Redis: what the relay thread uses to make channels span
 * nodes.
 *
 * Two connections (redis/client.h) on the relay's ring: a command connection
 * that pipelines PUBLISH, and a subscriber connection that holds one
 * SUBSCRIBE per channel the node has members of (never a pattern), so a node
 * receives only the channels it needs. Channel C travels on the Redis
 * channel PREFIX "ch:" C; the payload is the envelope of redis/envelope.h,
 * {"node":ID,"event":E,"data":D}, and a node drops what carries its own id.
 *
 * Subscriptions: the relay says when the node wants a channel and when it no
 * longer does; the bridge batches SUBSCRIBE/UNSUBSCRIBE (one command of each
 * per relay turn), and tells the relay when Redis has confirmed, so that a
 * client's "subscribed" means every later publish reaches it. While the
 * subscriber connection is down, a wanted channel is answered at once (local
 * traffic keeps working) and marked: after the reconnect the bridge
 * resubscribes it, and the confirmation comes with after_gap set, so the
 * relay tells the channel's members they may have missed messages.
 *
 * Publishes: the command connection takes up to W = max(64 KiB,
 * cfg->redis_backlog_bytes) of unsent commands (its send window: a Redis
 * that is slow or paused fills it). Beyond that, and while the connection is
 * down, PUBLISHes wait in a backlog whose bytes plus the connection's unsent
 * ones stay within cfg->redis_backlog_bytes (0: nothing waits). What does
 * not fit is dropped and counted, and so are publishes that were sent but
 * unanswered when a connection broke (their fate is unknown). Once the
 * backlog has drained, the bridge publishes {"node":ID,"dropped":true} on
 * each channel that lost publishes either way, so that the other nodes tell
 * their subscribers (ops->lost).
 *
 * Thread: everything here runs on the relay thread; only the stats are read
 * from other threads (rc_counter). */
#ifndef RC_REDIS_BRIDGE_H
#define RC_REDIS_BRIDGE_H

#include <hiredis/hiredis.h>
#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/common.h"
#include "engine/config.h"
#include "proto/protocol.h"
#include "engine/queue.h"

typedef struct rc_bridge rc_bridge;

/* A message from Redis, as the relay gets it. */
typedef struct rc_bridge_msg {
    rc_str event, data;
    rc_origin origin;
    uint64_t offset; /* >= 1: a publication of a channel with history */
    rc_str epoch;
} rc_bridge_msg;

typedef struct rc_bridge_ops {
    /* A message from Redis for channel chan (not this node's own). */
    void (*message)(void *u, rc_str chan, const struct rc_bridge_msg *m);
    /* Redis confirmed the subscription to chan, which is still wanted.
     * after_gap: the channel was answered locally while the link was down,
     * or the link dropped since; messages may have been missed. */
    void (*subscribed)(void *u, rc_str chan, bool after_gap);
    /* The subscriber connection went down: subscriptions still waiting for
     * a confirmation will not get one; answer them locally now. */
    void (*link_down)(void *u);
    /* Node `node` dropped publishes for chan before they reached Redis. */
    void (*lost)(void *u, rc_str chan, const char *node);
    /* This node's fence came back on chan (rc_bridge_read_history). */
    void (*fence)(void *u, rc_str chan, uint64_t fence);
    /* A presence join (join 1) or leave (0) of member (its JSON) on chan,
     * any node's, this one's too (channels/presence.h). */
    void (*presence)(void *u, rc_str chan, int join, rc_str member);
} rc_bridge_ops;

/* A second Redis channel for each channel with members (Socket.IO's
 * emitter, sio/emitter.h): name writes it into out[cap] (0: none), and
 * message gets what arrives on such channels. */
typedef struct rc_bridge_alias {
    size_t (*name)(void *u, rc_str chan, char *out, size_t cap);
    void (*message)(void *u, rc_str redis_chan, rc_str payload);
} rc_bridge_alias;

typedef struct rc_bridge_stats {
    rc_counter up_command, up_subscriber; /* gauges: 1 when READY */
    rc_counter rtt_us_command, rtt_us_subscriber;
    rc_counter pipeline_depth;  /* gauge: commands waiting for replies */
    rc_counter subscriptions;   /* gauge: channels Redis confirmed (not the node's own _rc.*) */
    rc_counter messages_in;     /* pub/sub messages received */
    rc_counter echoes;          /* of those, this node's own (dropped) */
    rc_counter bad_messages;    /* of those, unparsable (dropped) */
    rc_counter unwanted;        /* of those, for a channel no longer wanted */
    rc_counter messages_out;    /* PUBLISH commands handed to the connection */
    rc_counter publish_dropped; /* publishes that did not fit, or were lost with a connection */
    rc_counter publish_errors;  /* error replies to PUBLISH */
    rc_counter backlog_bytes;   /* gauge: held for Redis (backlog + unsent) */
    rc_counter reconnects;      /* both connections */
    rc_counter connect_failures;
    rc_counter history_reads; /* reads of a channel's history in Redis */
    /* A Redis Cluster (all 0 with one Redis): gauges of the command link's
     * primaries (known, ready) and slots with a primary; redirects followed
     * (MOVED, ASK), commands sent again (TRYAGAIN, CLUSTERDOWN, LOADING) or
     * given up, slot maps read; both links. */
    rc_counter cluster_primaries, cluster_primaries_up, cluster_slots;
    rc_counter cluster_moved, cluster_asked, cluster_retries, cluster_gave_up, cluster_refreshes;
} rc_bridge_stats;

/* The kinds of the bridge's links in their completions' tags
 * (redis/link.h); the waiting rooms' is RC_ADMISSION_KIND. */
#define RC_BRIDGE_KIND_CMD 1
#define RC_BRIDGE_KIND_SUB 2

/* A bridge for cfg->redis_url (which config validated), preparing its SQEs on
 * ring (user_data op RC_UOP_REDIS). It connects on the first tick. It keeps
 * its counters in *stats, which the caller owns (zeroed, and living longer
 * than the bridge, so other threads may read it at any time). */
rc_bridge *rc_bridge_new(struct io_uring *ring, const rc_config *cfg, const rc_bridge_ops *ops,
                         void *u, rc_bridge_stats *stats);

/* The node now has members of chan. Returns 1 when the subscription counts at
 * once (the link is down: the relay answers now and a later after_gap
 * confirmation follows the reconnect), 0 when ops->subscribed will come. */
int rc_bridge_subscribe(rc_bridge *b, rc_str chan);

/* The node has no members of chan any more. */
void rc_bridge_unsubscribe(rc_bridge *b, rc_str chan);

/* PUBLISHes {"node":..,"event":event,"data":data} on chan's Redis channel,
 * in call order; or holds it while the link is down; or drops and counts it. */
void rc_bridge_publish(rc_bridge *b, rc_str chan, rc_str event, rc_str data,
                       const rc_origin *origin);

/* A publication on a channel with history (rule): one script gives it the
 * channel's next offset, keeps it in the channel's stream and publishes it
 * with its offset and epoch, atomically. It comes back through the
 * subscription like any message, local members included. Held and dropped
 * like rc_bridge_publish's. */
void rc_bridge_publish_history(rc_bridge *b, rc_str chan, rc_str event, rc_str data,
                               const rc_origin *origin, const rc_history_rule *rule);

/* The part of a script that makes a message heard by several nodes count
 * once (the Socket.IO emitter's, which carry no id): each node names it by
 * its content (once_key, one key per content in the channel's slot), and
 * Redis keeps, per content, the copies it has seen in the last 10 s with
 * their time (Redis's clock) and the nodes that claimed each. A node's copy
 * claims the oldest copy within once_tol ms of now that it has not claimed
 * yet (another node heard that one first): matched. Otherwise it is a new
 * copy, this node's. Identical messages sent apart are told apart by their
 * time, and in a burst by their order on each node. Sets `matched`. Needs
 * once_key, once_node, once_tol set before. */
#define RC_BRIDGE_ONCE_LUA                                                                         \
    "local ot = redis.call('TIME')\n"                                                              \
    "local onow = tonumber(ot[1]) * 1000 + math.floor(tonumber(ot[2]) / 1000)\n"                   \
    "local oraw = redis.call('GET', once_key)\n"                                                   \
    "local copies = oraw and cjson.decode(oraw) or {}\n"                                           \
    "local okept, matched = {}, false\n"                                                           \
    "for _, c in ipairs(copies) do\n"                                                              \
    "  if onow - c[1] <= 10000 then\n"                                                             \
    "    if not matched and math.abs(onow - c[1]) <= once_tol and not c[2][once_node] then\n"      \
    "      c[2][once_node] = 1\n"                                                                  \
    "      matched = true\n"                                                                       \
    "    end\n"                                                                                    \
    "    okept[#okept + 1] = c\n"                                                                  \
    "  end\n"                                                                                      \
    "end\n"                                                                                        \
    "if not matched then okept[#okept + 1] = {onow, {[once_node] = 1}} end\n"                      \
    "while #okept > 256 do table.remove(okept, 1) end\n"                                           \
    "redis.call('SET', once_key, cjson.encode(okept), 'PX', 10000)\n"
/* How far apart two nodes may hear the same message, ms. */
#define RC_BRIDGE_ONCE_TOL_MS "2000"

/* rc_bridge_publish_history, once across the nodes that call it for the
 * same copy of a message, named by once (from rc_bridge_once_key; see
 * RC_BRIDGE_ONCE_LUA): the first to reach Redis keeps and publishes it,
 * the others do nothing. For a message every node with members hears (the
 * Socket.IO emitter's), so that it gets one offset. Not held while the
 * link is down (a copy sent late would not match): dropped and counted,
 * as the nodes whose links are up keep it. */
void rc_bridge_publish_history_once(rc_bridge *b, rc_str chan, rc_str event, rc_str data,
                                    const rc_origin *origin, const rc_history_rule *rule,
                                    rc_str once);
/* The once key of chan named what (in chan's hash slot) into out[cap]: its
 * length, or 0 when it does not fit. */
size_t rc_bridge_once_key(const rc_bridge *b, rc_str chan, rc_str what, char *out, size_t cap);

/* Reads chan's history: its epoch and top offset (given out now when the
 * channel has none) and its last count publications, then publishes
 * {"node":ID,"fence":fence} on the channel, in the same script. fn gets
 * the reply ([epoch, top, newest publication, ...]) or NULL (failed).
 * Returns 0, or -1 (fn never called) when the command connection is not
 * ready. */
/* 1 when Redis confirmed the node's subscription to chan and the
 * subscriber connection is up: whatever is published on it reaches the node. */
bool rc_bridge_live(const rc_bridge *b, rc_str chan);

typedef void (*rc_bridge_read_fn)(void *u, rc_str chan, uint64_t fence, const redisReply *rep);
int rc_bridge_read_history(rc_bridge *b, rc_str chan, uint32_t count, uint64_t fence,
                           rc_bridge_read_fn fn);

/* A command of another feature (presence's scripts) on the command
 * connection, in order with the publishes. fn gets the reply (an error
 * reply included) or NULL when the connection broke first. Returns 0, or
 * -1 (fn never called) when the connection is not ready or its send window
 * is full. On a Redis Cluster the command goes to the primary of its keys'
 * slot: a script's first key, or the first argument of any other command
 * (so every key of one command must share a hash tag); a PUBLISH there is
 * sent as SPUBLISH (name the channel with rc_bridge_channel_name). */
typedef void (*rc_bridge_reply_fn)(void *arg, const redisReply *rep);
int rc_bridge_command(rc_bridge *b, rc_bridge_reply_fn fn, void *arg, int argc, const char **argv,
                      const size_t *lens);
/* The node's configuration, as the bridge has it. */
const rc_config *rc_bridge_config(const rc_bridge *b);
/* A message on chan that could not be read: counted and logged (at most
 * once a second). */
void rc_bridge_bad_message(rc_bridge *b, rc_str chan, const char *why);
/* Subscribes alias's channel along with each channel (relay thread, before
 * any subscription). */
void rc_bridge_on_alias(rc_bridge *b, const rc_bridge_alias *alias, void *u);
/* Holds a subscription to the Redis channel name as it is (not under
 * PREFIX "ch:"), from now on and again after every reconnect, for the
 * bridge's life: a fixed channel of another protocol (Socket.IO's
 * emitter, sio/emitter.h). Never a pattern. What arrives on it goes to the
 * alias's message (rc_bridge_on_alias), as every message on a name
 * outside PREFIX "ch:" does. Not counted in subscriptions. */
void rc_bridge_subscribe_raw(rc_bridge *b, rc_str name);
/* Delivers m on chan as if it came from Redis on chan's own channel: 0, or
 * -1 when no member here wants chan (counted unwanted). */
int rc_bridge_deliver(rc_bridge *b, rc_str chan, const rc_bridge_msg *m);

/* Messages on Redis channels whose ringcast name starts with "_rc." (the
 * node's own, events/events.h) go to fn as they are, not through the
 * envelope: subscribe them with rc_bridge_subscribe. */
void rc_bridge_on_direct(rc_bridge *b, void (*fn)(void *u, rc_str chan, rc_str payload), void *u);
/* 1 while the command connection is READY. */
bool rc_bridge_command_ready(const rc_bridge *b);
/* chan's Redis channel name (PREFIX "ch:" chan; on a Redis Cluster
 * PREFIX "ch:{" chan "}", or PREFIX "ch:queue:{" Q "}" for queue:Q, so
 * that a channel and its keys share a slot) into out[cap]: its length, or
 * 0 when it does not fit. Name channels when sending, not before: which
 * kind of Redis is behind the link is known once it is ready. */
size_t rc_bridge_channel_name(const rc_bridge *b, rc_str chan, char *out, size_t cap);
/* The command that publishes on a channel: PUBLISH, or SPUBLISH on a
 * cluster (scripts take it as an argument). */
const char *rc_bridge_publish_verb(const rc_bridge *b);

/* A completion with op RC_UOP_REDIS. */
void rc_bridge_on_cqe(rc_bridge *b, struct io_uring_cqe *cqe);

/* Drives timers, sends the batched (UN)SUBSCRIBEs and the backlog, and
 * prepares the sends: call every loop turn before submitting. */
void rc_bridge_tick(rc_bridge *b, uint64_t now_ms);

/* True when both connections are READY. */
bool rc_bridge_ready(const rc_bridge *b);

/* True while the command connection is READY and PUBLISHes are held,
 * unsent or unanswered: a graceful stop waits for that. (With the
 * connection down, what is held is dropped at rc_bridge_free, counted and
 * logged.) */
bool rc_bridge_busy(const rc_bridge *b);

/* Stops both connections (no reconnect). Then wait for rc_bridge_idle, or
 * tear the ring down, before rc_bridge_free. */
void rc_bridge_close(rc_bridge *b);
bool rc_bridge_idle(const rc_bridge *b);
void rc_bridge_free(rc_bridge *b);

#endif
