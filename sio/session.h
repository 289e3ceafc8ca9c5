/* What the Socket.IO side keeps of a connection (s->pstate), shared by the
 * protocol (sio/socket.c) and the long-polling transport (sio/poll.c).
 * Private to sio/.
 *
 * A session is what a client's Engine.IO sid names: a WebSocket connection
 * that opened on the Socket.IO path, or a virtual connection (no socket:
 * engine/shard.h) that HTTP long-polling requests feed and drain. Two more
 * roles live on sockets for a while: a poller (a GET parked on a virtual
 * session until it has something to say) and a carrier (the WebSocket a
 * polling session upgraded to, which carries its packets from then on).
 *
 * The sid says where its session is: the shard, the slot and the slot's
 * generation in hex, then 16 random characters, so that any shard can send
 * a request to the right one and a guessed or stale sid finds nothing.
 *
 * sio/poll.c holds what both use; sio/socket.c calls it, not the other
 * way round.
 *
 * Thread: the shard that owns the connection. */
#ifndef RC_SIO_SESSION_H
#define RC_SIO_SESSION_H

#include "engine/shard.h"
#include "sio/recovery.h"

/* The sid: the shard (2 hex digits: at most 256 shards), the slot (8:
 * any uint32, so also the virtual slots, numbered up to twice the socket
 * table), the slot's generation (4), then 16 random characters. */
#define RC_SIO_SID_HEAD 14
#define RC_SIO_SID_LEN  (RC_SIO_SID_HEAD + 16)

enum rc_sio_role { RC_SIO_SESSION = 0, RC_SIO_POLLER, RC_SIO_CARRIER };

typedef struct rc_sio_conn {
    uint32_t ping_tick; /* session: when the last ping went out; carrier: when it opened */
    uint8_t role;       /* enum rc_sio_role */
    uint8_t awaiting;   /* session: a ping waits for its pong */
    uint8_t nsps;       /* session: connected namespaces, bit i for namespace i (0: "/") */
    uint8_t skip;       /* binary frames of a refused packet still to come */
    uint8_t opened;     /* session: a CONNECT was accepted; the node knows it */
    uint8_t upgraded;   /* virtual session: its carrier has taken over */
    uint16_t poller_gen, carrier_gen, link_gen;
    uint32_t poller;  /* virtual session: the parked GET's slot (RC_NO_CONN: none) */
    uint32_t carrier; /* virtual session: the upgrading WebSocket's slot (RC_NO_CONN: none) */
    uint32_t link;    /* poller, carrier: the session's slot */
    /* Connection state recovery (sio/recovery.h): the pid of namespace
     * pid_nsp - 1 (0: none given), the frame clock when it connected, a
     * recovery under way (restoring: 1 + its namespace; pending: its
     * subscribes unanswered; lost: one of them could not recover), and
     * whether the session is kept when the connection ends. */
    uint8_t pid_nsp, restoring, pending, lost, keep;
    uint64_t open_tick;
    char pid[RC_SIO_PID_LEN + 1];
    char sid[RC_SIO_SID_LEN + 1];
} rc_sio_conn;

static inline rc_sio_conn *rc_sio_state(rc_shard *s, const rc_conn *c)
{
    return s->pstate[rc_conn_id(s, c)];
}

/* Writes the hex head of a sid (RC_SIO_SID_HEAD characters and a NUL) into
 * out, which holds at least RC_SIO_SID_HEAD + 1. Can't fail. */
void rc_sio_sid_head(char *out, int shard, uint32_t slot, uint16_t gen);
/* The shard a sid names, with its slot and generation; -1 when sid is not
 * one of ours: not RC_SIO_SID_LEN long, or its head not in lower-case hex
 * digits as rc_sio_sid_head writes them. The random part is not checked
 * here: the session compares the whole sid. */
int rc_sio_sid_parse(const char *sid, uint32_t *slot, uint16_t *gen);

/* The connection in slot with generation gen, when it still plays role
 * (a session: open or closing; a poller: still waiting for its answer). */
rc_conn *rc_sio_linked(rc_shard *s, uint32_t slot, uint16_t gen, int role);

/* The poller parked on virtual session v gets what v has to say (and "1"
 * after it when closing). */
void rc_sio_answer_poll(rc_shard *s, rc_conn *v, int closing);

/* A message on the WebSocket that a polling session upgrades to (its
 * carrier): the probe, the upgrade, then everything for the session. */
void rc_sio_carrier_message(rc_shard *s, rc_conn *c, rc_sio_conn *st, const uint8_t *msg,
                            size_t len, int binary);
/* Carrier c closes: so does its session once c has taken it over. A
 * carrier that is not its session's current one (by slot and generation)
 * leaves the session alone. */
void rc_sio_carrier_closed(rc_shard *s, rc_conn *c, rc_sio_conn *st);
/* The heartbeat of carrier c (rc_protocol.heartbeat): a carrier that has
 * not taken its session over within a ping interval and timeout of its
 * opening (no probe, no upgrade) is closed, 1008 "upgrade timeout", and
 * counted. The
 * ms until its deadline, or UINT32_MAX for none. */
uint32_t rc_sio_carrier_timer(rc_shard *s, rc_conn *c, rc_sio_conn *st, int fire);

/* The server disconnects session c from namespace i (the emitter's
 * disconnectSockets): a DISCONNECT packet, and its rooms there are left;
 * with close, the connection closes instead. Either way the session is
 * not kept for recovery. Nothing when c is not connected to i. */
void rc_sio_disconnect_nsp(rc_shard *s, rc_conn *c, int i, int close);

/* Virtual session v closes (from its protocol's closed). Upgraded and
 * closing with a close frame: its carrier takes what v queued and then that
 * frame's code and reason (rc_sio_drain, at the end of the batch). Torn
 * down at once (aborted), or not upgraded: its carrier is closed now, with
 * the session's close code (1000 for an abort). */
void rc_sio_session_closed(rc_shard *s, rc_conn *v, rc_sio_conn *vs);

/* A virtual session has output (rc_protocol.drain): to its carrier once
 * upgraded, else to its parked GET if there is one. */
void rc_sio_drain(rc_shard *s, rc_conn *v);

#endif
