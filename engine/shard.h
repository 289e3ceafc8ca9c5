/* A shard: one thread, one io_uring ring, one listener (SO_REUSEPORT), its
 * own connections and timer wheel. Shards share nothing with each other;
 * they talk to the relay through the queues in rc_node.links.
 *
 * This header is the shard's API for the code that serves its connections
 * (the HTTP side, the protocols, the features). The loop calls down into
 * them; they reach the loop only through what is declared here:
 *   engine/loop.c   the thread and the ring loop: accept/recv/send
 *                   completions, timers, the relay's items (the top: it
 *                   calls everything below, and nothing calls it)
 *   engine/shard.c  what a handler may ask of the loop: a timer, an item
 *                   for the relay, a list of connections to visit
 *   engine/conn.c   a connection's bytes and frames: send queue, WebSocket
 *                   session, heartbeats, close; no message format (that is
 *                   the protocol's, proto/protocol.h)
 *   engine/reqq.c   a connection's requests, one at a time, in order
 *   engine/addr.c   per-address limits
 * Everything here runs on the shard's own thread unless marked "any thread". */
#ifndef RC_SHARD_H
#define RC_SHARD_H

#include <netinet/in.h>
#include <pthread.h>

#include "engine/metrics.h"
#include "engine/msg.h"
#include "engine/node.h"
#include "channels/room.h"
#include "proto/protocol.h"
#include "engine/timer.h"
#include "net/uring.h"
#include "ws/jwt.h"
#include "ws/session.h"

#define RC_TICK_MS  100 /* timer wheel resolution */
#define RC_SEND_IOV 32  /* frames per send */
/* Connections given a send per turn of the loop. A fan-out to many
 * connections is a sweep of several turns; between them the loop reaps
 * completions and takes the relay's deliveries, so a publication that
 * arrives during a sweep reaches the connections the sweep has not yet
 * visited in the same sweep. */
#define RC_SWEEP_CHUNK 256
#define RC_NO_CONN     UINT32_MAX

enum rc_conn_state {
    RC_CONN_FREE = 0,
    RC_CONN_HTTP,    /* reading the request head (and body) */
    RC_CONN_OPEN,    /* WebSocket open */
    RC_CONN_CLOSING, /* our close frame is queued; then LINGER for the client's */
    RC_CONN_LINGER,  /* our close frame is sent: waiting for the client's close or EOF */
    RC_CONN_DEAD,    /* waiting for in-flight operations, then close */
    RC_CONN_FINAL,   /* our last bytes (an HTTP response, the echo of the client's
                        close) are queued: close as soon as they are sent */
    RC_CONN_MOVING,  /* an HTTP request that another shard serves: its socket goes
                        there (rc_conn_move), with the bytes read so far */
};

enum rc_conn_flags {
    RC_CF_RECV = 1 << 0,   /* a multishot recv is armed */
    RC_CF_SEND = 1 << 1,   /* a send is in flight */
    RC_CF_DIRTY = 1 << 2,  /* in the shard's to-flush list */
    RC_CF_PING = 1 << 3,   /* a server ping awaits its pong */
    RC_CF_REARM = 1 << 4,  /* recv must be re-armed (buffers ran out) */
    RC_CF_WS = 1 << 5,     /* counted in ws_open */
    RC_CF_REAP = 1 << 6,   /* queued for release at the end of the batch */
    RC_CF_WSSESS = 1 << 7, /* sess is a WebSocket session (else an rc_httpbuf) */
};

/* A channel this connection holds. */
typedef struct rc_memb {
    rc_room *room;
    uint32_t pos;   /* position in room->members; UINT32_MAX while pending */
    uint8_t server; /* joined by the server (no rights checked): a user channel, a control */
} rc_memb;

#define RC_OUTQ_INLINE 4 /* items held in the queue itself before it grows */

/* Pending output of one connection; allocated only while there is some, and
 * small (80 bytes), because a broadcast gives one to every member at once.
 * The msghdr and iovecs of its send live in the shard's send arena instead. */
typedef struct rc_outq {
    uint32_t head, n, cap; /* ring of items (cap: a power of two) */
    uint32_t off;          /* bytes of items[head] already sent */
    uint32_t inflight;     /* items covered by the send in flight */
    uint32_t dropped;      /* messages dropped (drop policy) not yet reported */
    uint64_t bytes;        /* bytes queued and not yet sent */
    rc_obuf **items;       /* inl until more than RC_OUTQ_INLINE are queued */
    rc_obuf *inl[RC_OUTQ_INLINE];
} rc_outq;

/* The kernel's cost per segment of a send is most of what a small frame
 * costs it, and a broadcast under load leaves many small frames waiting for
 * each connection. Before a send, the leading run of frames (from the unsent
 * part of the head), each at most RC_MERGE_FRAME_MAX bytes and together at
 * most RC_MERGE_BYTES_MAX, is copied into one private buffer that takes their
 * place in q, so that the send carries one segment for the run. Larger
 * frames stay shared and go as segments of their own. Returns the frames
 * merged: 0 when fewer than two lead the queue. Not while a send is in
 * flight (its iovecs point into the frames). */
#define RC_MERGE_FRAME_MAX 1024
#define RC_MERGE_BYTES_MAX 16384
uint32_t rc_outq_merge(rc_outq *q);

/* The msghdrs and iovecs of the sends prepared since the last submit. The
 * kernel copies them when it consumes the SQE (IORING_FEAT_SUBMIT_STABLE), so
 * one arena per shard, emptied after each submit, serves every connection. */
#define RC_ARENA_MSGS 1024
#define RC_ARENA_IOVS (RC_ARENA_MSGS * 8)
typedef struct rc_send_arena {
    uint32_t nmsg, niov;
    struct msghdr msg[RC_ARENA_MSGS];
    struct iovec iov[RC_ARENA_IOVS];
} rc_send_arena;

/* One connection. Kept small: 100k of them live in a shard's table. */
typedef struct rc_conn {
    rc_tnode timer;      /* 12 bytes */
    uint16_t gen;        /* bumped when the slot is reused */
    uint8_t state : 4;   /* enum rc_conn_state */
    uint8_t proto : 3;   /* enum rc_protocol_id: who reads its messages */
    uint8_t deflate : 1; /* permessage-deflate was negotiated (ws/deflate.h) */
    uint8_t flags;
    uint16_t nchan;     /* entries in chans */
    uint16_t tokens;    /* message-rate bucket */
    uint32_t last_rx;   /* tick of the last bytes received */
    uint32_t rate_tick; /* tick of the last bucket refill */
    uint32_t addr;      /* index in the shard's address table, or RC_NO_CONN */
    void *sess;         /* HTTP: rc_httpbuf; OPEN: rc_ws_sess while mid-message */
    rc_outq *out;
    rc_memb *chans;
    rc_auth *auth; /* NULL: anonymous */
} rc_conn;
_Static_assert(sizeof(rc_conn) == 64, "rc_conn is one cache line: 100k of them live in a shard");
_Static_assert(RC_CONN_MOVING < 16 && RC_PROTO__COUNT <= 8,
               "rc_conn.state is 4 bits and .proto 3 bits");

/* The request head and body of a connection still speaking HTTP. */
typedef struct rc_httpbuf {
    uint32_t len, cap;
    uint16_t busy;      /* the request is with the relay (HTTP API on queues) */
    uint16_t continued; /* "100 Continue" was sent for this request */
    char buf[];
} rc_httpbuf;

/* Per-address accounting (only when a per-address limit is configured). */
typedef struct rc_addr {
    struct in6_addr ip; /* IPv4 as v4-mapped */
    /* Handshake-rate bucket, in thousandths: up to 1000 times
     * --handshake-rate-per-ip, which is more than 32 bits hold. */
    uint64_t hs_tokens;
    uint32_t conns;
    uint32_t hs_tick;
    uint32_t next;      /* hash chain / free list */
    uint32_t lingering; /* idle, kept until its handshake bucket refills */
} rc_addr;

typedef struct rc_shard {
    int id;
    rc_node *node;
    const rc_config *cfg;
    pthread_t thread;
    struct io_uring ring;
    rc_bufring bufs;
    int listen_fd;
    uint64_t wake_val;
    uint32_t nconns; /* slots in conns[]: nsock with sockets, then virtual ones */
    uint32_t nsock;  /* slots that are direct descriptors (the ring's file table) */
    uint32_t *vfree; /* free virtual slots (a stack) */
    uint32_t nvfree;
    uint32_t max_open; /* sockets accepted before 503 (rc_shard_sockets_open) */
    uint32_t open;     /* connections in any state but FREE */
    uint32_t freed;    /* connections released since the table was last trimmed */
    /* The connection table in pages (rc_conn_table_trim in engine/table.c), and
     * per page the generation its slots start from after it was given back. */
    uint32_t conns_per_page, conn_pages;
    uint16_t *page_gen;
    rc_conn *conns;
    struct rc_wait *waits; /* [nconns]: places in waiting rooms (admission/) */
    struct rc_reqq **reqs; /* [nconns]: held connections (engine/reqq.c) */
    uint32_t *resume;      /* connections whose deferred requests may run */
    uint32_t nresume, cap_resume;
    rc_rooms *rooms;
    rc_rooms *presence_asks; /* channel -> presence_stats askers waiting (channels/shard.c) */
    uint8_t *announced;      /* [nconns bits]: connects told to the lifecycle stream (events/) */
    uint8_t *refresh_told;   /* [nconns bits]: asked for a new token (engine/conn.c) */
    /* Told of every membership change (join 1 or 0) by channels/shard.c:
     * the lifecycle stream's subscribe and unsubscribe events (events/);
     * NULL when nobody listens. */
    void (*membership_hook)(struct rc_shard *s, const rc_conn *c, rc_str ch, int join);
    /* The close being made while a protocol's `closed` runs (engine/conn.c
     * sets them): its code (1006 for an abort) and reason. */
    uint16_t closing_code;
    char closing_reason[124];
    rc_wheel wheel;
    rc_ws_pool ws_pool;
    /* Connections with output to flush, in the order they are visited:
     * [dirty_head, ndirty) still wait (see RC_SWEEP_CHUNK). */
    uint32_t *dirty;
    uint32_t dirty_head, ndirty, cap_dirty;
    uint32_t *rearm; /* connections whose recv must be re-armed */
    uint32_t nrearm, cap_rearm;
    uint32_t *reap; /* dead connections with nothing in flight */
    uint32_t nreap, cap_reap;
    uint64_t backlog_total; /* bytes queued to all connections */
    rc_send_arena *arena;   /* see rc_send_arena */
    rc_conn *feeding;       /* the connection whose bytes wslay is reading */
    rc_room *fanout_room;   /* the room being fanned out to: not deleted meanwhile */
    /* Items for the relay that did not fit in the queue (subscriptions must
     * not be lost; publishes are refused instead). */
    rc_qitem *relay_backlog;
    uint32_t nbacklog, cap_backlog;
    int accepting;         /* multishot accept armed */
    int relay_wake;        /* items went to the relay in this batch */
    uint32_t accept_retry; /* single-shot accepts to re-arm on the next tick */
    uint32_t accept_warn_tick;
    int draining;
    uint64_t drain_deadline_ms;
    uint32_t now_tick;
    uint64_t tick0_ms;
    /* handshake rate (node rate / shards), in thousandths of a handshake */
    uint64_t hs_tokens;
    uint32_t hs_tick;
    /* per-address table */
    rc_addr *addrs;
    uint32_t naddrs, cap_addrs, addr_free;
    uint32_t addrs_lingering; /* entries kept idle for their handshake bucket */
    uint32_t *addr_hash;
    uint32_t addr_mask;
    uint32_t per_ip_conns;             /* per-shard share of max_conns_per_ip */
    struct sockaddr_in6 *accept_addrs; /* single-shot accepts with addresses */
    socklen_t *accept_lens;
    uint32_t n_accept_addrs;
    const rc_protocol *protos[RC_PROTO__COUNT]; /* by rc_conn.proto (proto/protocols.c) */
    /* [nconns]: what a connection's protocol keeps of it (one allocation,
     * NULL for none), freed with the connection's slot. */
    void **pstate;
    uint64_t sio_tick;   /* Socket.IO frames made (sio/recovery.h: the frame clock) */
    uint32_t sio_clock;  /* the frame clock's random name (0: not drawn yet) */
    uint8_t sio_key[16]; /* the frame clock's random key: offsets carry its MAC */
    rc_shard_stats stats;
    rc_flag exited;
} rc_shard;

/* --- shard.c: what handlers ask of the loop --- */
static inline uint32_t rc_conn_id(const rc_shard *s, const rc_conn *c)
{
    return (uint32_t)(c - s->conns);
}
/* The connection's id as clients and backends see it (the welcome's "conn",
 * a publication's "from"): unique on the node while the connection lives. */
static inline uint64_t rc_conn_public_id(const rc_shard *s, const rc_conn *c)
{
    return ((uint64_t)(uint32_t)s->id << 32) | rc_conn_id(s, c);
}
/* Sets the connection's single timer to fire in ms milliseconds, rounded up
 * to whole ticks (at least one); any ms is valid. Can't fail. When it fires,
 * the loop calls the handler of the connection's state (HTTP: the HTTP side;
 * OPEN: rc_conn_on_timer; closing: the connection is torn down). */
void rc_conn_timer(rc_shard *s, rc_conn *c, uint32_t ms);
/* Queues an item for the relay; 0, or -1 when the queue is full (only for
 * publishes: SUB/UNSUB wait in the shard's backlog instead). */
int rc_shard_to_relay(rc_shard *s, uint32_t kind, void *p, int may_fail);
/* Moves what waits in the shard's relay backlog into the queue. */
void rc_shard_flush_relay(rc_shard *s);
/* Appends id to a growable id list (dirty, rearm, reap, resume). */
void rc_idlist_push(uint32_t **list, uint32_t *n, uint32_t *cap, uint32_t id);

/* The protocol the connection speaks (proto/protocol.h). */
static inline const rc_protocol *rc_conn_proto(const rc_shard *s, const rc_conn *c)
{
    return s->protos[c->proto];
}
/* The frames of one message for the protocols that have their own
 * (rc_protocol.frame), made as the fan-out meets their first member. */
typedef struct rc_proto_frames {
    rc_obuf *f[RC_PROTO__COUNT];
    uint8_t made[RC_PROTO__COUNT];
} rc_proto_frames;
/* The frame of m for c's protocol: json (m's shared frame, whose uses the
 * caller counts) for a protocol without its own, else the protocol's,
 * made once and kept in fr. NULL: c's protocol does not carry m. */
rc_obuf *rc_proto_frame_for(rc_shard *s, const rc_conn *c, const rc_msg *m, rc_obuf *json,
                            rc_proto_frames *fr);
/* Drops what rc_proto_frame_for made. */
void rc_proto_frames_put(rc_proto_frames *fr);

/* Tells c of an error through its protocol, counted in /metrics by code. */
static inline void rc_conn_error(rc_shard *s, rc_conn *c, rc_str tag, int code, const char *msg,
                                 rc_str channel)
{
    rc_counter_inc(
        &s->stats.proto_errors[code > 0 && code < RC_PERR__COUNT ? code : RC_PERR_INTERNAL]);
    s->protos[c->proto]->error(s, c, tag, code, msg, channel);
}

/* A virtual connection has a slot but no socket: a session whose client
 * comes and goes over HTTP requests (Engine.IO's long-polling). Its output
 * waits in its queue until its protocol's drain takes it (rc_conn_pop). */
static inline int rc_conn_is_virtual(const rc_shard *s, const rc_conn *c)
{
    return rc_conn_id(s, c) >= s->nsock;
}

/* Connections with a socket: what max_open bounds (--max-connections). A
 * virtual session holds a slot of the second table instead, bounded by
 * its size (rc_conn_new_virtual); s->open counts both. */
static inline uint32_t rc_shard_sockets_open(const rc_shard *s)
{
    return s->open - (s->nconns - s->nsock - s->nvfree);
}

/* The node drains (SIGTERM): no new session starts, also in the moment
 * before this shard has heard of it (RC_Q_DRAIN). */
static inline int rc_shard_draining(const rc_shard *s)
{
    return s->draining || rc_flag_get(&s->node->draining);
}

/* --- addr.c: per-address limits --- */
/* Counts the new connection c against its address ip: 0, or -1 when a
 * per-address limit refuses it (answer 429 with the body *why and the
 * header line *retry). */
int rc_addr_admit(rc_shard *s, rc_conn *c, const struct in6_addr *ip, const char **why,
                  const char **retry);
/* Token buckets in thousandths, refilled by elapsed ticks: takes one token
 * and returns 1, or returns 0 when the bucket is empty. */
int rc_bucket_take(uint64_t *tokens, uint32_t *tick, uint32_t now, uint32_t rate);
/* Forgets the connection's per-address entry. */
void rc_shard_addr_release(rc_shard *s, rc_conn *c);
/* Drops idle entries whose handshake bucket has refilled (once a second). */
void rc_addr_sweep(rc_shard *s);

/* --- conn.c: bytes and frames --- */
extern const rc_ws_hooks rc_conn_ws_hooks;
/* Appends b to c's output (taking one use of b). Applies the backlog policy
 * to RC_OBUF_DATA: returns 0 when queued, -1 when not (b's use is dropped). */
int rc_conn_send(rc_shard *s, rc_conn *c, rc_obuf *b);
/* Queues a text message private to c (a reply, an error: never dropped by
 * the backlog policy). */
void rc_conn_send_text(rc_shard *s, rc_conn *c, const char *text, size_t len);
/* c has a new token (c->auth replaced): its timers follow the new exp. */
void rc_conn_new_token(rc_shard *s, rc_conn *c);
/* Starts the WebSocket closing handshake with code and reason. */
void rc_conn_close(rc_shard *s, rc_conn *c, uint16_t code, const char *reason);
/* Tears the connection down now, without a goodbye. */
void rc_conn_abort(rc_shard *s, rc_conn *c);
/* Submits the next send for c if it has output and none in flight. */
void rc_conn_flush(rc_shard *s, rc_conn *c);
/* A send completed with res. */
void rc_conn_sent(rc_shard *s, rc_conn *c, int res);
/* Bytes received while OPEN. */
void rc_conn_ws_input(rc_shard *s, rc_conn *c, const uint8_t *data, size_t len);
/* Queues a dead connection with nothing in flight for release. */
void rc_conn_maybe_reap(rc_shard *s, rc_conn *c);
/* Frees what an ended connection held and returns its slot. */
void rc_conn_release(rc_shard *s, rc_conn *c);
/* The upgrade succeeded: the connection speaks WebSocket, and protocol
 * proto (enum rc_protocol_id), from now on; the protocol greets it. */
void rc_conn_opened(rc_shard *s, rc_conn *c, int proto);
/* The connection's timer fired. */
void rc_conn_on_timer(rc_shard *s, rc_conn *c);
/* A whole text message from c's client, as if read from its socket: the
 * rate limit and the request order apply (a virtual connection's messages
 * come in HTTP bodies). */
void rc_conn_message(rc_shard *s, rc_conn *c, const uint8_t *msg, size_t len);
/* For a page of the connection table about to be given back (n slots):
 * 0 when a slot is in use, or when every slot is free and reads 0 (the page
 * is all zeros already). Otherwise 1, with *out the generation the page's
 * slots start from once it reads zeros: the latest of floor (the page's
 * previous one) and the slots' own (a free slot's is one past its last
 * tenant's), compared as 16-bit sequence numbers. */
int rc_conn_page_floor(const rc_conn *slots, uint32_t n, uint16_t floor, uint16_t *out);
/* Once a second: gives back the pages of the connection table whose slots
 * are all free, after a page's worth of releases (engine/table.c). */
void rc_conn_table_trim(rc_shard *s);
/* Takes the free slot c for a new connection in state (counted open); a
 * slot on a page given back starts from the page's floor generation. */
void rc_conn_claim(rc_shard *s, rc_conn *c, int state);
/* A new virtual connection, open and speaking proto (greeted by it), or
 * NULL when none is free. */
rc_conn *rc_conn_new_virtual(rc_shard *s, int proto);
/* The first item of c's output, taken off its queue (the caller owns its
 * use), or NULL. For virtual connections. */
rc_obuf *rc_conn_pop(rc_shard *s, rc_conn *c);
/* Hands c (an HTTP connection whose request in c->sess another shard must
 * serve) to shard: its socket goes to that shard's ring with the bytes read,
 * and the request starts again there. */
void rc_conn_move(rc_shard *s, rc_conn *c, int shard);
/* The completion of c's move (RC_UOP_MOVE): 0 when the other shard has it
 * (c is released here), -1 when it failed (counted): c is back in HTTP with
 * its request, for the caller to answer. */
int rc_conn_moved_out(rc_shard *s, rc_conn *c, int res);
/* Bytes read while moving: they go along. */
void rc_conn_moving_input(rc_shard *s, rc_conn *c, const uint8_t *data, size_t len);

/* --- reqq.c: requests in order ---
 * A connection's requests are handled one at a time, in the order they
 * came: a request that waits for the relay (a subscribe to a channel new to
 * the shard, queue.join, queue.leave) holds the connection, and what the
 * client sends meanwhile waits in a per-connection list (bounded: past it
 * the client is closed with 1008) until the reply has gone. So every
 * request gets its reply, and replies come in request order. Channel
 * messages and server notices are not replies and are never held. */
typedef struct rc_reqq rc_reqq;
/* 1 while c is held or has deferred requests: new ones must be deferred. */
int rc_req_busy(rc_shard *s, const rc_conn *c);
/* The request being handled waits for the relay: hold c. */
void rc_req_hold(rc_shard *s, rc_conn *c);
/* The held request has been answered: c's deferred requests run at the end
 * of the current queue item (rc_req_run). No-op when c is not held. */
void rc_req_release(rc_shard *s, rc_conn *c);
/* Keeps a client message for later. 0, or -1 when the list is full: the
 * caller closes c with 1008 (RC_REQ_FULL_REASON). */
#define RC_REQ_FULL_REASON "too many requests sent while an earlier one waits: wait for replies"
int rc_req_defer(rc_shard *s, rc_conn *c, const uint8_t *msg, size_t len, int allowed);
/* Forgets c's hold and deferred requests (c is ending). */
void rc_req_drop(rc_shard *s, rc_conn *c);
/* Runs the deferred requests of released connections (through each one's
 * protocol). */
void rc_req_run(rc_shard *s);

#endif
