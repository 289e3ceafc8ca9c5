/* A shard: one thread, one io_uring ring, one listener (SO_REUSEPORT), its
 * own connections, room index and timer wheel. Shards share nothing with each
 * other; they talk to the relay through the queues in rc_node.links.
 *
 * The code of a shard is spread over four files, one concern each:
 *   shard.c     the thread, the ring loop, accept/recv/send completions, timers
 *   conn.c      a connection's life: send queue, WebSocket session, close
 *   channels.c  subscribe, unsubscribe, publish, fan-out of delivered messages
 *   http_api.c  the HTTP side of the port: upgrade, /healthz, /metrics, /api
 * Everything here runs on the shard's own thread unless marked "any thread". */
#ifndef RC_SHARD_H
#define RC_SHARD_H

#include <netinet/in.h>
#include <pthread.h>

#include "engine/metrics.h"
#include "engine/msg.h"
#include "engine/node.h"
#include "engine/room.h"
#include "engine/timer.h"
#include "net/uring.h"
#include "ws/jwt.h"
#include "ws/session.h"

#define RC_TICK_MS  100 /* timer wheel resolution */
#define RC_SEND_IOV 32  /* frames per send */
#define RC_NO_CONN  UINT32_MAX

enum rc_conn_state {
    RC_CONN_FREE = 0,
    RC_CONN_HTTP,    /* reading the request head (and body) */
    RC_CONN_OPEN,    /* WebSocket open */
    RC_CONN_CLOSING, /* our close frame is queued; then LINGER for the client's */
    RC_CONN_LINGER,  /* our close frame is sent: waiting for the client's close or EOF */
    RC_CONN_DEAD,    /* waiting for in-flight operations, then close */
    RC_CONN_FINAL,   /* our last bytes (an HTTP response, the echo of the client's
                        close) are queued: close as soon as they are sent */
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
    uint32_t pos; /* position in room->members; UINT32_MAX while pending */
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
    rc_tnode timer; /* 12 bytes */
    uint16_t gen;   /* bumped when the slot is reused */
    uint8_t state;
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

/* A connection's place in a waiting room (admission/waitroom.c). */
typedef struct rc_wait {
    int64_t ticket;
    rc_room *room; /* "queue:{q}"; NULL when not waiting */
} rc_wait;

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
    uint32_t nconns;   /* slots in conns[] */
    uint32_t max_open; /* connections accepted before 503 */
    uint32_t open;     /* connections in any state but FREE */
    rc_conn *conns;
    rc_wait *waits;        /* [nconns] */
    struct rc_reqq **reqs; /* [nconns]: held connections (engine/reqq.c) */
    uint32_t *resume;      /* connections whose deferred requests may run */
    uint32_t nresume, cap_resume;
    rc_rooms *rooms;
    rc_wheel wheel;
    rc_ws_pool ws_pool;
    uint32_t *dirty; /* connections with output to flush */
    uint32_t ndirty, cap_dirty;
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
    rc_shard_stats stats;
    rc_flag exited;
} rc_shard;

/* --- shard.c --- */
rc_shard *rc_shard_new(rc_node *node, int id);
int rc_shard_start(rc_shard *s);
void rc_shard_join(rc_shard *s);
static inline uint32_t rc_conn_id(const rc_shard *s, const rc_conn *c)
{
    return (uint32_t)(c - s->conns);
}
/* Sets the connection's single timer to fire in ms milliseconds, rounded up
 * to whole ticks (at least one); any ms is valid. Can't fail. */
void rc_conn_timer(rc_shard *s, rc_conn *c, uint32_t ms);
/* Queues an item for the relay; 0, or -1 when the queue is full (only for
 * publishes: SUB/UNSUB wait in the shard's backlog instead). */
int rc_shard_to_relay(rc_shard *s, uint32_t kind, void *p, int may_fail);

/* Appends id to a growable id list (dirty, rearm, reap). */
void rc_idlist_push(uint32_t **list, uint32_t *n, uint32_t *cap, uint32_t id);
/* Forgets the connection's per-address entry. */
void rc_shard_addr_release(rc_shard *s, rc_conn *c);

/* --- conn.c --- */
extern const rc_ws_hooks rc_conn_ws_hooks;
/* Appends b to c's output (taking one use of b). Applies the backlog policy
 * to RC_OBUF_DATA: returns 0 when queued, -1 when not (b's use is dropped). */
int rc_conn_send(rc_shard *s, rc_conn *c, rc_obuf *b);
/* Queues a JSON text message private to c (a reply, an error). */
void rc_conn_send_text(rc_shard *s, rc_conn *c, const char *json, size_t len);
/* Sends what a builder wrote (len > 0); when it could not (len < 0, a bug:
 * buffers are sized RC_PROTO_*_MAX), logs it and answers "internal" with
 * id, so that no reply is ever dropped silently. */
void rc_conn_send_json(rc_shard *s, rc_conn *c, rc_str id, const char *json, ssize_t len);
/* Sends {"type":"error",...} to c. */
void rc_conn_send_error(rc_shard *s, rc_conn *c, rc_str id, int code, const char *msg,
                        rc_str channel);
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
/* The upgrade succeeded: the connection speaks WebSocket from now on. */
void rc_conn_opened(rc_shard *s, rc_conn *c);
/* The connection's timer fired. */
void rc_conn_on_timer(rc_shard *s, rc_conn *c);

/* --- channels.c --- */
/* Handles one client text message; allowed is 0 when the connection's rate
 * limit refused it (it is answered with rate_limited, its id echoed). */
void rc_chan_handle(rc_shard *s, rc_conn *c, const uint8_t *msg, size_t len, int allowed);
void rc_chan_leave_all(rc_shard *s, rc_conn *c);
/* Joins a token holder to channel "user:<sub>" without a reply (with
 * --user-channels; nothing when the id cannot be part of a channel name). */
void rc_chan_join_user(rc_shard *s, rc_conn *c);
void rc_chan_on_suback(rc_shard *s, char *name, uint64_t seq);
/* Server-side membership, without replies: joins c to ch (once) and returns
 * the room; leaves room r (if c is in it); deletes r when a fan-out left it
 * empty. */
rc_room *rc_chan_join_quiet(rc_shard *s, rc_conn *c, rc_str ch);
void rc_chan_leave(rc_shard *s, rc_conn *c, rc_room *r);
void rc_chan_room_check(rc_shard *s, rc_room *r);
void rc_chan_on_deliver(rc_shard *s, rc_msg *m);
/* At exit: frees what rooms still waiting for a SUBACK hold. */
void rc_chan_free_all(rc_shard *s);
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
/* Keeps a client message for later. 0, or -1 when the list is full: then c
 * has been closed with 1008. */
int rc_req_defer(rc_shard *s, rc_conn *c, const uint8_t *msg, size_t len, int allowed);
/* Forgets c's hold and deferred requests (c is ending). */
void rc_req_drop(rc_shard *s, rc_conn *c);
/* Runs the deferred requests of released connections. */
void rc_req_run(rc_shard *s);

/* --- admission/waitroom.c (the shard half of the waiting rooms) --- */
struct rc_call;
struct rc_proto_req;
/* queue.join / queue.leave from a client. */
void rc_wait_handle(rc_shard *s, rc_conn *c, const struct rc_proto_req *req);
/* The relay's answer to a call this shard made; frees it. */
void rc_wait_on_calldone(rc_shard *s, struct rc_call *k);
/* A tick of room r's queue: positions and tokens for its waiters. */
void rc_wait_on_tick(rc_shard *s, rc_room *r, rc_msg *m);
/* A user left room r's line (from any connection, on any node): the user's
 * connections here stop waiting and are told. */
void rc_wait_on_left(rc_shard *s, rc_room *r, rc_msg *m);
/* c is closing: it waits no more (the relay is told). */
void rc_wait_conn_gone(rc_shard *s, rc_conn *c);

/* May the connection (auth NULL = anonymous) subscribe to / publish on it?
 * Never for channels "queue:*", which carry waiting-room ticks. */
int rc_chan_may(const rc_shard *s, const rc_auth *auth, const char *chan, size_t len, int publish);

/* --- http_api.c --- */
void rc_http_input(rc_shard *s, rc_conn *c, const uint8_t *data, size_t len);
/* Answers with a whole HTTP response and closes after it is sent. */
void rc_http_reply(rc_shard *s, rc_conn *c, int status, const char *content_type, const char *body,
                   size_t len, const char *extra);
/* The handshake deadline passed. */
void rc_http_timeout(rc_shard *s, rc_conn *c);

#endif
