/* WebSocket sessions: wslay server contexts lent to connections only while
 * a client frame or message is in progress.
 *
 * A wslay context costs about 9 KB. Most of 100k connections are idle most of
 * the time, so a connection holds none while idle: when bytes arrive, the
 * shard borrows a context from its pool, feeds it, and gives it back as soon
 * as the bytes ended exactly at a message boundary. wslay cannot tell us where
 * that is (it buffers partial headers internally), so the session runs its own
 * small scan of frame headers over the same bytes: at a boundary when no
 * header is half-read, no payload is outstanding and no fragmented message is
 * open. A context that saw a close or an error is never reused. The same scan
 * refuses a data frame whose header declares more than max_msg (counting what
 * the open message declared before it) as soon as the header is complete,
 * with a 1009 close: wslay would wait for the payload before judging it.
 *
 * wslay also answers pings and closes by itself; what it wants to send comes
 * back through rc_ws_hooks.ctrl so that the connection can queue it in its
 * own send queue, in order with everything else.
 *
 * permessage-deflate (ws/deflate.h): a session lent to a connection that
 * negotiated it (rc_ws_set_deflate) takes RSV1 on the first frame of a data
 * message and inflates that message with the pool's one inflater, reset per
 * message, so nothing is kept per connection. The inflated size is held to
 * max_msg (a close with 1009 past it), bad compressed data or invalid UTF-8
 * inside closes with 1007, and RSV1 anywhere else (no deflate negotiated, a
 * continuation or a control frame) with 1002, each with a reason, refused
 * on the frame's header. */
#ifndef RC_SESSION_H
#define RC_SESSION_H

#include "base/common.h"

typedef struct rc_ws_hooks {
    /* A complete text (binary) message. */
    void (*text)(void *conn, const uint8_t *msg, size_t len);
    void (*binary)(void *conn, const uint8_t *msg, size_t len);
    /* A pong arrived. */
    void (*pong)(void *conn);
    /* wslay wants to send a control frame: a pong (opcode 0xA) answering a
     * ping, or a close (0x8). For a close, peer_closed tells whether it
     * answers the client's own close (then it echoes the client's code) or
     * reports an error wslay found (then the payload holds 1002, 1007 or
     * 1009 without a reason, or nothing for a frame-level error). */
    void (*ctrl)(void *conn, int opcode, const uint8_t *payload, size_t len, int peer_closed);
    /* A compressed message was inflated (RC_WS_INFLATED) or refused
     * (RC_WS_REF_*): for the counters; the close is already queued. */
    void (*inflate)(void *conn, int outcome);
} rc_ws_hooks;

/* Outcomes given to rc_ws_hooks.inflate. */
#define RC_WS_INFLATED    0
#define RC_WS_REF_TOO_BIG 1 /* inflated past max_msg: 1009 */
#define RC_WS_REF_BAD     2 /* bad compressed data, or invalid UTF-8 inside: 1007 */
#define RC_WS_REF_RSV1    3 /* RSV1 where it is not allowed: 1002 */

typedef struct rc_ws_sess rc_ws_sess;

typedef struct rc_ws_pool {
    rc_ws_sess *free_list;
    uint32_t n_free;
    uint32_t max_free; /* idle contexts kept for reuse */
    uint64_t max_msg;  /* max_recv_msg_length given to each context */
    const rc_ws_hooks *hooks;
    void *cur;                      /* the connection being fed (set by rc_ws_feed) */
    struct rc_pmd_stream *inflater; /* made on the first compressed message */
    uint64_t created, in_use;
} rc_ws_pool;

/* Result of rc_ws_feed. */
#define RC_WS_MORE 0 /* mid-frame or mid-message: keep the session */
#define RC_WS_IDLE 1 /* at a boundary: give it back with rc_ws_put */
#define RC_WS_DONE 2 /* closed or failed: discard with rc_ws_discard */

void rc_ws_pool_init(rc_ws_pool *pool, const rc_ws_hooks *hooks, uint64_t max_msg,
                     uint32_t max_free);
void rc_ws_pool_free(rc_ws_pool *pool);

/* A session in its initial state (from the pool, or new). Can't fail. */
rc_ws_sess *rc_ws_get(rc_ws_pool *pool);

/* Whether the connection the session is lent to negotiated
 * permessage-deflate (off in a session fresh from rc_ws_get). */
void rc_ws_set_deflate(rc_ws_sess *s, int on);

/* Returns a session that rc_ws_feed left RC_WS_IDLE to the pool. */
void rc_ws_put(rc_ws_pool *pool, rc_ws_sess *s);

/* Frees a session that is closed, failed, or whose connection died. */
void rc_ws_discard(rc_ws_pool *pool, rc_ws_sess *s);

/* Feeds len bytes received from the client. Hooks are called (with conn)
 * for each complete message and control frame before it returns. */
int rc_ws_feed(rc_ws_pool *pool, rc_ws_sess *s, void *conn, const uint8_t *data, size_t len);

#endif
