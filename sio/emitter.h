/* Socket.IO's Redis emitter (@socket.io/redis-emitter), heard: a backend's
 * io.to(room).emit(event, ...args), and the rest of what the emitter
 * publishes, reach the sockets of every node (issue 15).
 *
 * With --socketio-emitter KEY the node subscribes (never a pattern):
 *   - beside each channel with members here, the emitter's channel for
 *     that room: KEY#NSP#ROOM#, where channel NAME/ROOM is room ROOM of
 *     namespace /NAME and any other channel is a room of "/";
 *   - for "/" and each --socketio-namespace, KEY#NSP# (emits to several
 *     rooms, or to the whole namespace) and KEY-request#NSP# (the request
 *     channel), fixed names held by the bridge (rc_bridge_subscribe_raw).
 *
 * Emits: MessagePack [uid, packet, opts], packet {type: 2 (EVENT), data:
 * [event, args...], nsp}, opts {rooms, except, flags}. The event's data is
 * what a channel message carries: the one argument, null for none, an
 * array for several.
 *   - One room, no except (KEY#NSP#ROOM#): a publication on the room's
 *     channel from a backend, delivered like any other: JSON clients and
 *     Socket.IO clients of the room get it, and the channel's seq moves.
 *     On a room whose channel keeps history (--history), the event is kept
 *     with an offset, once for all the nodes that heard it (sio/seen.h,
 *     RC_BRIDGE_ONCE_LUA, rc_bridge_publish_history_once), and delivered
 *     from the channel's own subscription: Socket.IO clients recover it
 *     like any publication.
 *   - With except, to several rooms, or to the whole namespace (no rooms):
 *     a broadcast (sio/broadcast.h) to the namespace's Socket.IO sessions
 *     that are in any of the rooms (or all of them) and in none of the
 *     except rooms, each once. JSON clients do not get it (their channel's
 *     seq would jump), and it moves no seq and keeps no history (a client
 *     that recovers does not get such a message it missed).
 *   - flags: volatile and compress are accepted and change nothing (each
 *     message goes out as soon as its connection can take it; frames are
 *     not compressed); the others are ignored.
 *
 * The request channel: JSON {type, opts: {rooms, except}, ...}.
 *   - 2 REMOTE_JOIN (socketsJoin(rooms)): the chosen sessions join the
 *     rooms' channels, as the HTTP API's /api/subscribe joins them (no
 *     rights check: the backend asks; the channel limit holds).
 *   - 3 REMOTE_LEAVE (socketsLeave(rooms)): they leave them.
 *   - 4 REMOTE_DISCONNECT (disconnectSockets(close)): they get a
 *     DISCONNECT for the namespace and leave its rooms; with close, their
 *     connection closes instead. Not kept for recovery either way.
 *   - 6 SERVER_SIDE_EMIT goes to the backend event stream that takes its
 *     event, once for all the nodes that hear it (sio/seen.h names it;
 *     a once key in the stream's slot): the backends are the servers.
 *     Refused: the requests only a Socket.IO server sends and waits for an
 *     answer to (0 SOCKETS, 1 ALL_ROOMS, 5 REMOTE_FETCH) and unknown types.
 * Rooms (and except rooms) that are not valid channel names hold nobody;
 * a join or leave of one is refused whole.
 *
 * What cannot be read is dropped, counted in
 * ringcast_redis_bad_messages_total and logged (at most once a second);
 * every message is counted in ringcast_socketio_emitter_messages_total by
 * kind and outcome (applied, refused).
 *
 * Thread: the relay thread (the readers: any). */
#ifndef RC_SIO_EMITTER_H
#define RC_SIO_EMITTER_H

#include "channels/bridge.h"
#include "engine/config.h"
#include "engine/outbox.h"
#include "sio/broadcast.h"

/* The kind label of ringcast_socketio_emitter_messages_total. */
enum rc_sio_em_kind {
    RC_SIO_EM_ROOM = 0,         /* "room": an emit to one room */
    RC_SIO_EM_ROOMS,            /* "rooms": to several rooms */
    RC_SIO_EM_NAMESPACE,        /* "namespace": to a whole namespace */
    RC_SIO_EM_JOIN,             /* "join": socketsJoin */
    RC_SIO_EM_LEAVE,            /* "leave": socketsLeave */
    RC_SIO_EM_DISCONNECT,       /* "disconnect": disconnectSockets */
    RC_SIO_EM_SERVER_SIDE_EMIT, /* "server_side_emit": serverSideEmit (to the event stream) */
    RC_SIO_EM_OTHER,            /* "other": unreadable, or a request a server asks */
    RC_SIO_EM__COUNT
};
const char *rc_sio_em_kind_name(int kind);

typedef struct rc_sio_emitter_stats {
    rc_counter applied[RC_SIO_EM__COUNT]; /* delivered, or handed to the shards */
    rc_counter refused[RC_SIO_EM__COUNT]; /* unreadable or not served */
} rc_sio_emitter_stats;

typedef struct rc_sio_emitter rc_sio_emitter;

/* Subscribes the emitter's channels along with the bridge's; broadcasts go
 * to the shards through out; counts in *stats (the caller's). NULL when
 * the emitter is not configured. Free it after the bridge. */
rc_sio_emitter *rc_sio_emitter_attach(rc_bridge *b, const rc_config *cfg, rc_outbox *out,
                                      rc_sio_emitter_stats *stats);
void rc_sio_emitter_free(rc_sio_emitter *e);

/* KEY#NSP#ROOM# for channel chan into out[cap]: its length, or 0. */
size_t rc_sio_emitter_name(const rc_config *cfg, rc_str chan, char *out, size_t cap);

/* What the emitter's channel names say: RC_SIO_EMCH_ROOM (KEY#NSP#ROOM#:
 * *room set), RC_SIO_EMCH_NSP (KEY#NSP#), RC_SIO_EMCH_REQUEST
 * (KEY-request#NSP#), each with the namespace's index in *nsp (0 "/", i
 * cfg->sio_nsps[i - 1]); 0 for any other name. */
enum { RC_SIO_EMCH_ROOM = 1, RC_SIO_EMCH_NSP, RC_SIO_EMCH_REQUEST };
int rc_sio_emitter_channel(const rc_config *cfg, rc_str rname, int *nsp, rc_str *room);

/* An emit, read. */
typedef struct rc_sio_emit {
    char chan[RC_PROTO_MAX_CHANNEL + 1]; /* the room's channel (KEY#NSP#ROOM#) */
    size_t chan_len;                     /* 0: it came on KEY#NSP# */
    char ev[RC_PROTO_MAX_EVENT + 1];
    size_t ev_len;
    char *data; /* JSON (malloc'd) */
    size_t data_len;
    rc_sio_bcast *to; /* op EMIT: namespace, rooms, except (malloc'd; no frame yet) */
    uint8_t is_volatile, compress;
    uint8_t several; /* data is the array of several arguments (rc_origin.args) */
} rc_sio_emit;

/* Reads an emit that came on Redis channel rname: 0 and *e (free it with
 * rc_sio_emit_clear), or -1 with *why (nothing to free). */
int rc_sio_emitter_read(const rc_config *cfg, rc_str rname, rc_str payload, rc_sio_emit *e,
                        const char **why);
void rc_sio_emit_clear(rc_sio_emit *e);

/* The request channel's type numbers. */
enum {
    RC_SIO_REQ_SOCKETS = 0,
    RC_SIO_REQ_ALL_ROOMS = 1,
    RC_SIO_REQ_REMOTE_JOIN = 2,
    RC_SIO_REQ_REMOTE_LEAVE = 3,
    RC_SIO_REQ_REMOTE_DISCONNECT = 4,
    RC_SIO_REQ_REMOTE_FETCH = 5,
    RC_SIO_REQ_SERVER_SIDE_EMIT = 6,
};

/* Reads a request (JSON) on namespace nsp's request channel: 0 and *out
 * (op JOIN, LEAVE or DISCONNECT; malloc'd), 1 for a request read but not
 * served (*type says which), or -1 with *why. *type is the request's type
 * whenever it was read (else -1). sio/request.c. */
int rc_sio_request_read(const rc_config *cfg, int nsp, rc_str payload, rc_sio_bcast **out,
                        int *type, const char **why);

/* Channel ch for room[0..n) of namespace nsp into out
 * (RC_PROTO_MAX_CHANNEL + 1 bytes): its length, or 0 when it is not a
 * valid channel name (nobody can be in it). */
size_t rc_sio_room_channel(const rc_config *cfg, int nsp, const char *room, size_t n, char *out);

#endif
