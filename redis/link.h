/* A link to Redis, one server or a Redis Cluster: the connections one
 * feature of the relay (the channels' commands, their subscriptions, the
 * waiting rooms) needs, whatever Redis is behind the address.
 *
 * The link starts with the first seed (redis/url.h, rc_redis_seeds_parse)
 * and asks it CLUSTER SLOTS once it is ready. A server that answers with an
 * error (cluster support disabled, or the command refused) is one Redis:
 * the link is then that one connection (redis/client.h), as before. A
 * cluster's answer is its slot map (redis/cluster.h): the link keeps one
 * connection per primary, each pipelined on the relay's ring, and routes
 * each command to the primary that owns its hash slot.
 *
 * Topology changes are routine. A command answered MOVED goes again to the
 * node named (the slot's owner is updated at once and the whole map read
 * again); ASK goes once to the node named, behind ASKING; TRYAGAIN,
 * CLUSTERDOWN and LOADING go again after 100 ms. A command gives up after
 * 5 redirects or 10 s: its callback then gets NULL with a reason, as for a
 * connection that broke. The map is read again when a node's connection
 * drops, when a caller asks (rc_rlink_refresh: an unsolicited sunsubscribe,
 * a subscriber's MOVED), and every 10 s. A primary the map no longer names
 * (failed over, or emptied by a reshard) is retired: no new commands, and
 * its connection closes once its pipeline is empty. on_map then lets the
 * caller move what it holds on the old owners (subscriptions).
 *
 * In cluster mode every command is formatted once and kept until its final
 * reply, so that it can be sent again; one Redis costs nothing more than the
 * connection itself.
 *
 * Completions: every connection of the link prepares its SQEs with user_data
 * op RC_UOP_REDIS and gen = kind << 12 | serial (rc_rlink_kind_of tells a
 * completion's link kind); forward them to rc_rlink_on_cqe.
 *
 * Thread: the relay's (the ring's owner). */
#ifndef RC_REDIS_LINK_H
#define RC_REDIS_LINK_H

#include <hiredis/hiredis.h>
#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>

#include "redis/client.h"
#include "redis/url.h"

typedef struct rc_rlink rc_rlink;

/* A node of the link is named by its connection's tag (never 0). */
typedef struct rc_rlink_hooks {
    /* node's connection is ready (one Redis: after every (re)connect; a
     * cluster: each primary's, after each of its (re)connects). */
    void (*on_ready)(void *u, uint16_t node);
    /* node's connection dropped, an attempt to connect failed (once per
     * attempt, before the kind of Redis is known too), or the node was
     * retired (the map no longer names it); reason is one line. */
    void (*on_down)(void *u, uint16_t node, const char *reason);
    /* A reply nobody waits for, on node (redis/client.h's on_push). */
    void (*on_push)(void *u, uint16_t node, redisReply *reply);
    /* A cluster's slot map changed (owners moved, primaries came or went).
     * May be NULL. */
    void (*on_map)(void *u);
} rc_rlink_hooks;

typedef struct rc_rlink_stats {
    uint32_t nodes, nodes_up; /* connections (primaries in a cluster), ready ones */
    uint64_t rtt_us;          /* the slowest node's last ping */
    uint64_t pipeline_depth;  /* summed over the nodes */
    uint64_t queued_bytes;    /* summed */
    uint64_t reconnects;      /* summed, retired nodes included */
    uint64_t moved, asked;    /* redirects followed */
    uint64_t retries;         /* TRYAGAIN, CLUSTERDOWN, LOADING sent again */
    uint64_t gave_up;         /* commands that ran out of redirects or time */
    uint64_t refreshes;       /* slot maps read */
    uint32_t slots_covered;   /* a cluster: slots with a primary; one Redis: 16384 */
} rc_rlink_stats;

#define RC_RLINK_KIND_SHIFT 12
static inline unsigned rc_rlink_kind_of(uint16_t gen)
{
    return gen >> RC_RLINK_KIND_SHIFT;
}

/* A link to seeds[0..n) (copied; n >= 1), kind 1..15 in its connections'
 * tags. Connects on the first tick. Never NULL. */
rc_rlink *rc_rlink_new(struct io_uring *ring, const rc_redis_url *seeds, size_t n,
                       const rc_rlink_hooks *hooks, void *u, unsigned kind);
/* Applied to every connection, now and later (redis/client.h). */
void rc_rlink_set_max_queued(rc_rlink *l, size_t bytes);
void rc_rlink_set_ping_interval(rc_rlink *l, uint32_t ms);

/* True once the link knows it talks to a cluster. */
bool rc_rlink_is_cluster(const rc_rlink *l);

/* Sends a command for slot (rc_cluster_slot of its keys or channel; -1: any
 * node); fn gets (u, reply, err, priv) exactly once: the final reply
 * (redirects followed), or NULL with err when the command's fate is
 * unknown (the connection broke, it gave up). 0, or -1 (fn never called)
 * when the slot's node is not ready, or its send window is full. */
int rc_rlink_command(rc_rlink *l, int slot, rc_redis_reply_fn fn, void *priv, int argc,
                     const char **argv, const size_t *lens);
/* The same on one node (a script load on each primary): never redirected. */
int rc_rlink_command_on(rc_rlink *l, uint16_t node, rc_redis_reply_fn fn, void *priv, int argc,
                        const char **argv, const size_t *lens);
/* A subscriber's command ((S)SUBSCRIBE and the like: answered by pushes)
 * to slot's owner (-1: any ready node). The node it went to, or 0 when
 * refused (not ready, window full). */
uint16_t rc_rlink_send_raw(rc_rlink *l, int slot, int argc, const char **argv, const size_t *lens);
/* The same to one node (an UNSUBSCRIBE where the subscription is): 0 or -1. */
int rc_rlink_send_raw_on(rc_rlink *l, uint16_t node, int argc, const char **argv,
                         const size_t *lens);

/* The node that owns slot (-1: any ready node) and is ready, or 0. */
uint16_t rc_rlink_ready_node(const rc_rlink *l, int slot);
/* The node that owns slot (-1: the first), ready or not, or 0. */
uint16_t rc_rlink_owner(const rc_rlink *l, int slot);
/* The replicas the last slot map listed for slot's primary (0 with one
 * Redis: ringcast does not look for its replicas). */
uint32_t rc_rlink_replicas(const rc_rlink *l, int slot);
/* True when node is one of the link's and ready. */
bool rc_rlink_node_ready(const rc_rlink *l, uint16_t node);
/* True when every slot has a primary and every primary is ready (one
 * Redis: its connection is ready). */
bool rc_rlink_ready(const rc_rlink *l);
/* Reads the slot map again soon (a cluster; nothing for one Redis). */
void rc_rlink_refresh(rc_rlink *l);

/* follower (a subscriber link, whose connections cannot ask CLUSTER SLOTS
 * once they subscribe) takes its slot map from leader (a command link to
 * the same Redis): leader's reads apply to both, and follower's wants
 * (rc_rlink_refresh) go to leader. Both must live as long as each other. */
void rc_rlink_follow(rc_rlink *follower, rc_rlink *leader);
/* A subscriber's MOVED (err, the error's text): the slot's owner is the
 * node named from now on (connected if new), and the map is read again.
 * False when err is not a MOVED or the link is not a cluster's. */
bool rc_rlink_moved(rc_rlink *l, const char *err);

void rc_rlink_on_cqe(rc_rlink *l, struct io_uring_cqe *cqe);
/* Drives every connection, the map's reads and the commands waiting to be
 * sent again; flushes. Call every relay turn. */
void rc_rlink_tick(rc_rlink *l, uint64_t now_ms);
/* Flushes every connection (before the ring is submitted). */
void rc_rlink_flush(rc_rlink *l);

void rc_rlink_get_stats(const rc_rlink *l, rc_rlink_stats *out);
/* The last failure of any connection, "" if none. */
const char *rc_rlink_last_error(const rc_rlink *l);

/* Stops every connection (no reconnect); commands waiting get NULL. */
void rc_rlink_close(rc_rlink *l);
bool rc_rlink_idle(const rc_rlink *l);
void rc_rlink_free(rc_rlink *l);

#endif
