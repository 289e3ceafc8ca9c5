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
    uint32_t poller;    /* virtual session: the parked GET's slot (RC_NO_CONN: none) */
    uint32_t carrier;   /* virtual session: the upgrading WebSocket's slot (RC_NO_CONN: none) */
    uint32_t link;      /* poller, carrier: the session's slot */
    uint32_t open_tick; /* the frame clock when it connected (its low 32 bits; recovery) */
    uint16_t poller_gen, carrier_gen, link_gen;
    /* Connection state recovery (sio/recovery.h): subscribes of a recovery
     * under way still unanswered. */
    uint16_t pending;
    uint8_t role; /* enum rc_sio_role */
    uint8_t nsps; /* session: connected namespaces, bit i for namespace i (0: "/") */
    uint8_t skip; /* binary frames of a refused packet still to come */
    /* virtual session: namespaces whose CONNECT answer is due: written
     * when a GET takes the session's output, not queued (rc_sio_connect_due) */
    uint8_t connect_due;
    /* Recovery: the pid is namespace pid_nsp - 1's (0: none given); a
     * recovery under way (restoring: 1 + its namespace). */
    uint8_t pid_nsp, restoring;
    uint8_t awaiting : 1; /* session: a ping waits for its pong */
    uint8_t opened : 1;   /* session: a CONNECT was accepted; the node knows it */
    uint8_t upgraded : 1; /* virtual session: its carrier has taken over */
    uint8_t closed : 1;   /* session: its close was seen (once) */
    uint8_t broken : 1;   /* session: closed for breaking the protocol: gone at once */
    uint8_t lost : 1;     /* recovery: one of its subscribes could not recover */
    uint8_t keep : 1;     /* recovery: the session is kept when the connection ends */
    uint8_t sid_rand[12]; /* the sid's random part (16 base64url characters) */
    uint8_t pid[12];      /* the pid (16 base64url characters) */
} rc_sio_conn;

static inline rc_sio_conn *rc_sio_state(rc_shard *s, const rc_conn *c)
{
    return s->pstate[rc_conn_id(s, c)];
}

_Static_assert(sizeof(rc_sio_conn) <= 64, "a polling session's state is one cache line");

/* The session's sid (RC_SIO_SID_LEN characters and a NUL) into out. */
void rc_sio_sid_text(const rc_shard *s, const rc_conn *c, const rc_sio_conn *st, char *out);
/* The session's pid (RC_SIO_PID_LEN characters and a NUL) into out. */
void rc_sio_pid_text(const rc_sio_conn *st, char *out);

/* The next CONNECT answer due on virtual session c (an Engine.IO message
 * packet) into out[cap]: its length, and the namespace is no longer due;
 * 0 when none is due. */
size_t rc_sio_connect_due(rc_shard *s, rc_conn *c, rc_sio_conn *st, char *out, size_t cap);

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
