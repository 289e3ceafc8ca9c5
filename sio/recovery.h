/* Connection state recovery for Socket.IO clients (Socket.IO 4.6's pid and
 * offset), mapped onto channel history (issue 15).
 *
 * With --socketio-recovery SECONDS (default 120, 0: off), the CONNECT
 * answer gives the client a private id, the pid, and every channel message
 * with a position ends with one more argument, its offset, which the
 * client keeps (the last it saw). When the connection ends without the
 * client asking (a network loss, a node going down, a token expiring), its
 * shard writes down the session (sio_keep below): its user, and for each
 * of its rooms the channel's position there. A client that reconnects in
 * time sends the pid and its offset with its CONNECT, on any shard of any
 * node; the session is taken (once), and each room is subscribed again from
 * the position the client stands at, through the history's recovery. The
 * missed messages and the CONNECT answer, which carries the old pid
 * (socket.recovered is true), come first, then the live ones.
 *
 * Where the client stands. The offset names the channel's position (its
 * epoch and offset) and the frame's place in the order its shard made
 * frames in (the shard's frame clock, a count with a random name and key
 * per shard start), with a MAC by the clock's key, which the kept session
 * holds: only the node's own offsets place anything. A shard's frames reach each connection in clock order, so for a
 * room whose last frame at close came no later than the client's last one
 * the client has all of it; a room with no frame since the session started
 * too; the room the offset names stands where it says. Any other room, or
 * one without history, cannot be placed exactly: the session is not
 * recovered (the client gets a new pid and reloads, as Socket.IO apps do
 * when socket.recovered is false). So is one whose history no longer
 * covers the gap (the reasons of docs/PROTOCOL.md section 4a).
 *
 * Kept sessions live in Redis (PREFIX sio:PID, expiring, taken with GETDEL,
 * so any node can recover any of them) or, without Redis, in the relay's
 * memory (at most RC_SIO_KEEP_MAX, the oldest go first).
 *
 * Thread: the shard's functions run on the shard, rc_sio_keeper_* on the
 * relay; an rc_sio_keep travels between them on the queues (RC_Q_SIO_KEEP
 * there, RC_Q_SIO_KEPT back). */
#ifndef RC_SIO_RECOVERY_H
#define RC_SIO_RECOVERY_H

#include "engine/shard.h"

#define RC_SIO_PID_LEN    16 /* base64url of 12 random bytes */
#define RC_SIO_OFFSET_MAX 80 /* an offset as the node writes it, and the most it reads back */
#define RC_SIO_KEEP_MAX   100000

enum rc_sio_keep_op { RC_SIO_KEEP_SAVE = 1, RC_SIO_KEEP_TAKE };
enum rc_sio_kept { RC_SIO_KEPT_NONE = 0, RC_SIO_KEPT_FOUND, RC_SIO_KEPT_UNAVAILABLE };

/* Why a recovery went the way it did: the outcome label of
 * ringcast_socketio_recoveries_total. */
enum rc_sio_rec_outcome {
    RC_SIO_REC_RECOVERED = 0,
    RC_SIO_REC_UNKNOWN,     /* "unknown": no such session (expired, taken, never kept) */
    RC_SIO_REC_OTHER_USER,  /* "other_user": the token's user is not the session's */
    RC_SIO_REC_NO_HISTORY,  /* "no_history": a room without history */
    RC_SIO_REC_UNPLACED,    /* "unplaced": where the client stands in a room is not known */
    RC_SIO_REC_NOT_COVERED, /* "not_covered": the history no longer covers the gap */
    RC_SIO_REC_UNAVAILABLE, /* "unavailable": sessions could not be read (Redis away) */
    RC_SIO_REC__COUNT
};
const char *rc_sio_rec_name(int outcome);

/* A session kept or asked for. Made by the shard; SAVE is freed by the
 * relay, TAKE comes back answered (text: the session, or NULL) and is freed
 * by the shard. */
typedef struct rc_sio_keep {
    uint8_t op;     /* enum rc_sio_keep_op */
    uint8_t nsp;    /* TAKE: the namespace being connected */
    uint8_t result; /* TAKE's answer: enum rc_sio_kept */
    uint16_t shard;
    uint16_t gen;
    uint32_t conn;
    uint32_t ttl_ms;
    char pid[RC_SIO_PID_LEN + 1];
    char offset[RC_SIO_OFFSET_MAX + 1]; /* TAKE: the client's offset ("" for none) */
    char *text;                         /* the session (JSON, malloc'd) */
    size_t len;
} rc_sio_keep;

void rc_sio_keep_free(rc_sio_keep *k);

/* ---- shard side ---- */

/* The frame clock's next reading, for a frame of m (a channel message)
 * being made now; notes m's position (if it has one: epoch and offset)
 * and the reading on m's room. Writes the offset argument the frame ends
 * with (a JSON string) into out[cap] and returns its length; 0 when m has
 * no position (the client's offset stays). */
size_t rc_sio_offset_arg(rc_shard *s, const rc_msg *m, rc_str epoch, int has_offset,
                         uint64_t offset, char *out, size_t cap);

/* A subscribe answer's position (info) for channel ch: its room stands
 * there at least. */
void rc_sio_note_position(rc_shard *s, rc_str ch, const rc_sub_info *info);

/* The session of c (user, the rooms that keep(s, c, name, len, nsp) takes,
 * their positions, open_tick) under pid, kept for the configured time. */
void rc_sio_keep_session(rc_shard *s, const rc_conn *c, const char *pid, uint64_t open_tick,
                         int (*keep)(const rc_shard *s, const rc_conn *c, const char *ch, size_t n,
                                     int nsp),
                         int nsp);

/* Asks the relay for the session pid (the client's offset with it). */
void rc_sio_take_session(rc_shard *s, const rc_conn *c, int nsp, rc_str pid, rc_str offset);

/* One room of a kept session to subscribe again. */
typedef struct rc_sio_room {
    char name[RC_PROTO_MAX_CHANNEL + 1];
    size_t len;
    int server;     /* the server joined it (no rights were checked then, nor now) */
    rc_since since; /* its epoch points into epoch[] */
    char epoch[RC_PROTO_MAX_EPOCH + 1];
} rc_sio_room;

/* Reads the kept session k for a connection of user user:
 * RC_SIO_REC_RECOVERED and its rooms in *rooms (malloc'd, *n of them, at
 * most max_rooms; the caller frees), each with the position to recover
 * from; or why not. */
int rc_sio_plan(const rc_sio_keep *k, const char *user, uint32_t max_rooms, rc_sio_room **rooms,
                uint32_t *n);

/* The offset the node writes for a frame (without its quotes):
 * "EPOCH-OFFSET-CLOCK-TICK-MAC", MAC the first 8 bytes of HMAC-SHA256 with
 * the clock's key; its length, or 0 when it does not fit. */
size_t rc_sio_offset_text(const uint8_t key[16], uint64_t epoch, uint64_t offset, uint32_t clock,
                          uint64_t tick, char *out, size_t cap);

/* ---- relay side ---- */

typedef struct rc_sio_keeper_stats {
    rc_counter saved;   /* sessions kept */
    rc_counter dropped; /* sessions that could not be kept (Redis away, memory full) */
    rc_counter held;    /* gauge: sessions kept in memory (without Redis) */
} rc_sio_keeper_stats;

typedef struct rc_sio_keeper rc_sio_keeper;
struct rc_bridge;

/* Counts in *stats (the caller's, readable by any thread); done(u, k) hands
 * an answered TAKE back to its shard. */
rc_sio_keeper *rc_sio_keeper_new(const rc_config *cfg, rc_sio_keeper_stats *stats,
                                 void (*done)(void *u, rc_sio_keep *k), void *u);
/* With Redis: sessions go there from now on. */
void rc_sio_keeper_attach(rc_sio_keeper *kp, struct rc_bridge *b);
/* A SAVE or TAKE from a shard. */
void rc_sio_keeper_on(rc_sio_keeper *kp, rc_sio_keep *k);
/* Forgets what has expired (memory only). */
void rc_sio_keeper_tick(rc_sio_keeper *kp, uint64_t now_ms);
void rc_sio_keeper_free(rc_sio_keeper *kp);

#endif
