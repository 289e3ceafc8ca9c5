/* What Socket.IO's Redis emitter asks of a namespace's sockets, beyond a
 * plain emit to one room (sio/emitter.h): an emit to several rooms, to a
 * whole namespace or with except, and the request channel's remote join,
 * leave and disconnect. The relay reads the message (sio/emitter.c), makes
 * one rc_sio_bcast, and hands each shard a copy (RC_Q_SIO_BCAST); each
 * shard applies it to its own connections (rc_sio_on_bcast).
 *
 * Who is reached, on each shard, once each:
 *   - the Socket.IO sessions connected to the namespace,
 *   - that are members of any of the rooms (no rooms named: all of them),
 *   - and of none of the except rooms.
 * A room R of namespace /NAME is the channel NAME/R, of "/" the channel R
 * (sio/emitter.h). JSON clients are never reached this way: a channel's
 * seq numbers its own messages, and a message that reaches some of its
 * members but not others (except), or none of them in order with the
 * channel's own, would read as a gap to them (docs/PROTOCOL.md section 4).
 * These messages move no channel's seq and keep no history.
 *
 * Thread: rc_sio_bcast_* any (the relay makes it); rc_sio_on_bcast the
 * shard's own. */
#ifndef RC_SIO_BROADCAST_H
#define RC_SIO_BROADCAST_H

#include "base/common.h"

struct rc_msg;
struct rc_shard;

enum rc_sio_bcast_op {
    RC_SIO_BC_EMIT = 1,   /* send frame */
    RC_SIO_BC_JOIN,       /* join the names (socketsJoin) */
    RC_SIO_BC_LEAVE,      /* leave the names (socketsLeave) */
    RC_SIO_BC_DISCONNECT, /* disconnect from the namespace (disconnectSockets) */
};

/* The lists of an rc_sio_bcast, in the order they are stored and added. */
enum rc_sio_bcast_list { RC_SIO_BC_ROOMS = 0, RC_SIO_BC_EXCEPT, RC_SIO_BC_NAMES };

/* Channels per list, at most: more makes the message refused. */
#define RC_SIO_BC_MAX_ROOMS 256

typedef struct rc_sio_bcast {
    uint8_t op;    /* enum rc_sio_bcast_op */
    uint8_t nsp;   /* the namespace: 0 "/", i the configured cfg->sio_nsps[i - 1] */
    uint8_t all;   /* no rooms named: every socket of the namespace */
    uint8_t close; /* DISCONNECT: the connection closes too, not only the namespace */
    uint16_t n[3]; /* channels in each list */
    uint32_t len;  /* bytes used in mem */
    uint32_t cap;
    struct rc_msg *frame; /* EMIT: the Engine.IO frame; one reference per copy */
    char mem[];           /* the lists' channels, each NUL-terminated, list after list */
} rc_sio_bcast;

/* An empty one (all set: no rooms yet). Can't fail. */
rc_sio_bcast *rc_sio_bcast_new(int op, int nsp);
/* Appends channel ch to list (lists in order: ROOMS, EXCEPT, NAMES), and
 * clears all for ROOMS. Returns 0, or -1 past RC_SIO_BC_MAX_ROOMS (b
 * unchanged). *b may move. */
int rc_sio_bcast_add(rc_sio_bcast **b, int list, rc_str ch);
/* The i-th channel of list, by walking mem (lists are short). */
rc_str rc_sio_bcast_get(const rc_sio_bcast *b, int list, uint32_t i);
/* A copy for one shard (the frame reference is the caller's to count). */
rc_sio_bcast *rc_sio_bcast_copy(const rc_sio_bcast *b);
/* Frees b and drops its frame reference, if any. */
void rc_sio_bcast_free(rc_sio_bcast *b);

/* Applies b to the shard's connections and frees it. Returns how many
 * connections it reached. */
uint32_t rc_sio_on_bcast(struct rc_shard *s, rc_sio_bcast *b);

#endif
