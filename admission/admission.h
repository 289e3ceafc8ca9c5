/* Waiting rooms: the Redis side, run by the relay thread.
 *
 * A queue {q} lives in Redis (prefix P, default "rc:"):
 *   P q:{q}:cfg    HASH  rate, max_active, active_ttl (s), abandon_timeout (s), state
 *   P q:{q}:seq    INCR  the last ticket given
 *   P q:{q}:wait   ZSET  user -> ticket (FIFO line)
 *   P q:{q}:seen   ZSET  user -> last time a node saw the waiter connected (ms)
 *   P q:{q}:active ZSET  user -> admission expiry (ms)
 *   P q:{q}:stats  HASH  head, admitted_total, abandoned_total, ewma
 *   P q:{q}:lease  STRING the node id of the queue's leader (PX 5 s)
 *   P q:index      SET   of queue ids (a key of its own: no script names it
 *                        with a queue's keys)
 * A queue's keys share the hash tag {q}, so on a Redis Cluster they live in
 * one slot and each script names the keys of that one slot. The single
 * lease of earlier versions, P q:lease, is no longer read or written (a
 * leftover one expires by itself).
 *
 * Every tick (cfg->admission_tick_ms, on a schedule that does not drift),
 * each node sends one pipeline: one tick script per queue, the refresh of
 * its connected waiters' seen times, and SMEMBERS of the index (the queue
 * list for the next tick). Each command carries the hash slot of its keys
 * (adm_batch in internal.h), so that a router can split the pipeline into
 * one per primary. A tick script runs atomically: it renews the queue's
 * lease when the caller holds it, takes it when nobody does, and otherwise
 * does nothing; so each queue has one leader, nobody is admitted twice, and
 * a leader that lost a queue's lease (paused, partitioned) cannot commit
 * it. Leadership is per queue: different nodes may lead different queues
 * (the first node to tick a queue whose lease is free takes it). The
 * leader expires stale actives, removes waiters unseen for abandon_timeout,
 * admits n = min(rate, max_active - active) lowest tickets (none while
 * paused), and PUBLISHes the result on channel queue:{q}; every node with
 * waiters of the queue receives it through its bridge and the shards tell
 * each waiter its position or hand out the admission token.
 *
 * Joins, leaves and the HTTP API's queue operations arrive as rc_call from
 * the shards and go back to them when Redis has answered.
 *
 * Thread: the relay's, except the stats (rc_counter) and rc_admission_*
 * declared "any thread". */
#ifndef RC_ADMISSION_H
#define RC_ADMISSION_H

#include <liburing.h>
#include <stdbool.h>

#include "base/common.h"
#include "engine/config.h"
#include "engine/queue.h"
#include "proto/protocol.h"

#define RC_MAX_USER 128

enum rc_call_op {
    RC_CALL_JOIN = 1,       /* a waiter joins (or comes back) */
    RC_CALL_LEAVE,          /* a waiter leaves the line */
    RC_CALL_GONE,           /* a waiting connection closed (no answer goes back) */
    RC_CALL_STATUS,         /* where does a waiter stand? (never joins; the tick asks) */
    RC_CALL_QUEUE_PUT,      /* PUT /api/queues/{q} */
    RC_CALL_QUEUE_GET,      /* GET /api/queues/{q} */
    RC_CALL_QUEUE_COMPLETE, /* POST /api/queues/{q}/complete */
};

/* One request from a shard to the relay and its answer; allocated by the
 * shard, filled by the relay, handed back (RC_Q_CALLDONE) and freed by the
 * shard. RC_CALL_GONE is freed by the relay. */
typedef struct rc_call {
    uint8_t op;
    uint16_t shard;
    uint32_t conn;
    uint16_t gen;
    uint8_t client;               /* a client's request: its connection is held until the answer */
    char id[RC_PROTO_MAX_ID + 1]; /* the request's id, raw JSON */
    uint8_t id_len;
    char queue[RC_PROTO_MAX_QUEUE + 1];
    char user[RC_MAX_USER + 1];
    char *body; /* HTTP request body (owned), NUL-terminated */
    size_t body_len;

    /* The answer. JOIN: result RC_JOIN_*, and the fields it names. */
    int result;
    int64_t ticket, head, expires_ms;
    double ewma; /* admitted per tick, smoothed; 0: none yet */
    int status;  /* HTTP status for the API calls */
    char *reply; /* HTTP body (JSON), owned */
    size_t reply_len;
} rc_call;

/* Frees c with its body and reply. Any thread. */
void rc_call_free(rc_call *c);

enum rc_join_result {
    RC_JOIN_WAITING = 1, /* ticket, head, ewma */
    RC_JOIN_ACTIVE,      /* admitted already: expires_ms */
    RC_JOIN_NOT_FOUND,   /* no such queue */
    RC_JOIN_UNAVAILABLE, /* Redis away */
    RC_JOIN_GONE,        /* STATUS: neither waiting nor active (left, removed, expired) */
};

/* Gauges of one queue from the latest tick this node saw. A slot's name is
 * written once, before used is set; slots are never reused. */
#define RC_QSTAT_MAX 64
typedef struct rc_qstat {
    rc_flag used;
    char name[RC_PROTO_MAX_QUEUE + 1];
    rc_counter waiting, active, head, last_ticket, admitted_total, abandoned_total;
    rc_counter rate, max_active, open;
} rc_qstat;

typedef struct rc_admission_stats {
    rc_counter up;                /* gauge: the admission connection is ready */
    rc_counter leader;            /* gauge: 1 when leader_queues > 0 */
    rc_counter leader_queues;     /* gauge: queues whose lease this node held at its last tick */
    rc_counter ticks;             /* ticks sent */
    rc_counter round_trips;       /* Redis round trips made by ticks */
    rc_counter tick_us;           /* gauge: the last tick's round trip */
    rc_counter late_ticks;        /* ticks skipped because the previous one was unanswered */
    rc_counter unconfirmed_ticks; /* ticks no replica confirmed in time: not announced */
    rc_counter replicated_ticks;  /* ticks announced once a replica confirmed them */
    rc_counter admitted;          /* users this node admitted as leader */
    rc_counter abandoned;         /* waiters this node removed as leader */
    rc_counter joins, join_errors;
    rc_counter local_waiters; /* gauge: distinct (queue, user) waiting on this node */
    rc_counter queues;        /* gauge: queues in the index */
    rc_qstat q[RC_QSTAT_MAX];
} rc_admission_stats;

typedef struct rc_admission rc_admission;

typedef struct rc_admission_ops {
    /* The answer to a call (not RC_CALL_GONE): hand it back to its shard. */
    void (*done)(void *u, rc_call *c);
} rc_admission_ops;

/* A waiting-room engine on ring (its own Redis connection, user_data gen
 * RC_ADMISSION_KIND). stats is the caller's, zeroed, outliving it. */
#define RC_ADMISSION_KIND 3 /* of its link (redis/link.h) */
rc_admission *rc_admission_new(struct io_uring *ring, const rc_config *cfg,
                               const rc_admission_ops *ops, void *u, rc_admission_stats *stats);

/* Takes a call; answers it through ops->done (at once when Redis is away). */
void rc_admission_call(rc_admission *a, rc_call *c);

/* The tick data a node received on channel queue:{q} (for the queue gauges
 * and the refresh pace of abandoned-waiter detection). */
void rc_admission_on_tick(rc_admission *a, rc_str queue, rc_str data);

void rc_admission_on_cqe(rc_admission *a, struct io_uring_cqe *cqe);

/* Drives the connection and the tick schedule; returns the ms until the next
 * tick is due (for the caller's sleep). */
uint64_t rc_admission_tick(rc_admission *a, uint64_t now_ms);

void rc_admission_close(rc_admission *a);
bool rc_admission_idle(const rc_admission *a);
void rc_admission_free(rc_admission *a);

#endif
