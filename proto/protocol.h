/* The protocol seam. The shard's loop and connection layer (engine/) move
 * bytes and frames and know no message format; a protocol module turns a
 * client's messages into operations (ops/ops.h) and the results of those
 * operations into frames for that client. Today's JSON protocol
 * (proto/json_protocol.c, with its codec proto/json.c) is the first module.
 *
 * A connection speaks one protocol, chosen when it opens (c->proto, an index
 * into the shard's table s->protos, filled from proto/protocols.c). Everything
 * that answers one connection goes through that table: the loop and the
 * features (channels/, admission/) never build a client frame themselves.
 *
 * How a second protocol plugs in: add its id to enum rc_protocol_id, write
 * a module that fills struct rc_protocol, list it in proto/protocols.c, and
 * have the HTTP side (http/server.c) hand it the connections it owns: a
 * WebSocket protocol through rc_conn_opened(s, c, id) on its path; one that
 * is not WebSocket (HTTP long-polling) by routing its path's requests to the
 * module, which keeps its sessions, calls the same operations, and takes
 * the results through the same callbacks into its next poll response
 * instead of frames. The shard's loop and the connection layer do not
 * change.
 *
 * Also here: the limits of the names operations take, and the error codes,
 * which every protocol shares.
 *
 * Thread: the callbacks run on the shard that owns the connection. */
#ifndef RC_PROTOCOL_H
#define RC_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

#include "base/common.h"
#include "ws/json.h"

#define RC_PROTO_MAX_ID      64 /* raw JSON text of an id */
#define RC_PROTO_MAX_EVENT   64
#define RC_PROTO_MAX_CHANNEL 256  /* hard cap; the configured limit is <= this */
#define RC_PROTO_MAX_DEPTH   32   /* nesting of a client message, data included */
#define RC_PROTO_MAX_QUEUE   64   /* waiting-room queue ids */
#define RC_PROTO_MAX_USER    128  /* user ids (a token's sub), bytes of UTF-8 */
#define RC_PROTO_MAX_NODE    63   /* node ids */
#define RC_PROTO_MAX_TEXT    256  /* error messages and reasons the server writes */
#define RC_PROTO_MAX_TOKEN   2048 /* admission tokens (admission/token.h) */
#define RC_PROTO_MAX_EPOCH   64   /* an epoch as a client may send it back */
#define RC_PROTO_MAX_CURSOR  96   /* a presence page's cursor, as the server gave it */
#define RC_PROTO_MAX_EWMA    32   /* a tick's ewma, as the leader wrote it */

/* Why an operation was refused, or what went wrong: every protocol tells
 * the client the code (the JSON protocol as {"type":"error","code":NAME}),
 * and /metrics counts each by NAME. The names are a stable contract: never
 * renumber or rename, only add. */
enum rc_proto_err {
    RC_PERR_NONE = 0,
    RC_PERR_BAD_JSON,             /* "bad_json": not valid JSON, or nested too deep */
    RC_PERR_BAD_REQUEST,          /* "bad_request": a member missing or of the wrong type */
    RC_PERR_UNKNOWN_TYPE,         /* "unknown_type" */
    RC_PERR_INVALID_CHANNEL,      /* "invalid_channel": empty, too long, bad characters */
    RC_PERR_FORBIDDEN,            /* "forbidden": the token does not allow it */
    RC_PERR_CHANNEL_LIMIT,        /* "channel_limit": too many channels on this connection */
    RC_PERR_RATE_LIMITED,         /* "rate_limited": message dropped, slow down */
    RC_PERR_NOT_SUBSCRIBED,       /* "not_subscribed": unsubscribe from a channel not held */
    RC_PERR_OVERLOADED,           /* "overloaded": the server could not take it now; retry */
    RC_PERR_BINARY,               /* "binary_unsupported": binary frames carry no protocol */
    RC_PERR_MESSAGES_DROPPED,     /* "messages_dropped": messages to this client were lost */
    RC_PERR_INTERNAL,             /* "internal" */
    RC_PERR_QUEUE_UNAVAILABLE,    /* "queue_unavailable": waiting rooms off or Redis away */
    RC_PERR_QUEUE_NOT_FOUND,      /* "queue_not_found": no such queue was created */
    RC_PERR_QUEUE_BUSY,           /* "already_waiting": this connection waits in another queue */
    RC_PERR_BAD_SINCE,            /* "bad_since": since is not a position this channel had */
    RC_PERR_NO_HISTORY,           /* "no_history": a history request on a channel without */
    RC_PERR_UNAVAILABLE,          /* "history_unavailable": the history could not be read now */
    RC_PERR_NO_PRESENCE,          /* "no_presence": a presence request on a channel without */
    RC_PERR_PRESENCE_UNAVAILABLE, /* "presence_unavailable": presence could not be read now */
    RC_PERR_UNKNOWN_EVENT,        /* "unknown_event": no stream takes events of this name */
    RC_PERR_EVENT_TOO_LARGE,      /* "event_too_large": data past --event-max-bytes */
    RC_PERR_STREAM_FULL,          /* "stream_full": the event's stream holds its maxlen */
    RC_PERR_EVENTS_UNAVAILABLE,   /* "events_unavailable": no Redis, or Redis away */
    RC_PERR_BAD_TOKEN,            /* "bad_token": a refresh's token was refused */
    RC_PERR__COUNT
};

/* The stable name of an error code ("bad_json"); "internal" when out of range. */
const char *rc_proto_errname(int code);

/* 1 when name[0..n) is a valid channel or event name: 1..max bytes, each in
 * [A-Za-z0-9] or one of "_-.:@/=+". Such names never need JSON escaping. */
int rc_proto_name_valid(const char *name, size_t n, size_t max);

/* 1 when s[0..n) may be a presence cursor: 1..RC_PROTO_MAX_CURSOR bytes of
 * visible ASCII (the server's cursors are; what it means is the server's). */
int rc_presence_cursor_valid(const char *s, size_t n);

/* The event member v of a message (NULL: absent, which means "message")
 * into out[RC_PROTO_MAX_EVENT + 1], with its length in *len. Returns 0, or
 * -1 (out empty) when it is not a valid event name. Used by the JSON protocol
 * and by the Redis envelope (redis/envelope.h). */
int rc_proto_event(const rc_json_val *v, char *out, size_t *len);

/* Who published (the "from" member): the server's knowledge, never the
 * client's claim. */
enum rc_from { RC_FROM_NONE = 0, RC_FROM_CLIENT, RC_FROM_BACKEND };

/* Who published a message, as it travels with it (the relay, Redis). */
typedef struct rc_origin {
    int from;    /* enum rc_from */
    rc_str user; /* RC_FROM_CLIENT: the token's user; empty: anonymous */
    uint64_t conn;
    /* The data is an array of several arguments (a Socket.IO emitter's emit
     * with more than one): Socket.IO clients get them apart. */
    int args;
} rc_origin;

/* How a recovery went (and the history request's refusals). */
enum rc_recovery {
    RC_REC_OK = 0,      /* every publication after since follows */
    RC_REC_EPOCH,       /* "epoch_changed": the channel's history was lost since */
    RC_REC_TRIMMED,     /* "trimmed": what followed since is no longer kept */
    RC_REC_TOO_MANY,    /* "too_many": more than --recovery-max followed since */
    RC_REC_NO_HISTORY,  /* "no_history": the channel keeps none */
    RC_REC_AHEAD,       /* since is past the channel's top offset (an error) */
    RC_REC_UNAVAILABLE, /* "unavailable": the history could not be read */
    RC_REC__COUNT
};

/* The reason's name in answers and in /metrics ("recovered" for RC_REC_OK). */
const char *rc_recovery_name(int outcome);

/* A client's position in a channel, to recover from (subscribe, history). */
typedef struct rc_since {
    int has; /* 0: none given */
    uint64_t offset;
    rc_str epoch;
} rc_since;

/* What `subscribed` says beyond the plain answer, for a channel with
 * history or a subscriber that asked to recover; and what a history
 * request's answer says. */
typedef struct rc_sub_info {
    int has_pos;     /* the channel keeps history: offset and epoch are set */
    uint64_t offset; /* the channel's top offset at the answer */
    rc_str epoch;
    int recovery;    /* since was given: outcome says how it went */
    int outcome;     /* enum rc_recovery */
    uint32_t missed; /* RC_REC_OK: publications that follow, before live ones */
} rc_sub_info;

/* A waiting room's tick, what every waiter needs to know its place:
 * position = max(ticket - head, 1), and the ETA in seconds
 * ceil(position / ewma * tick_ms / 1000) when ewma >= 0.01, else none. */
typedef struct rc_queue_tick {
    int64_t head;     /* every ticket up to head has been admitted or removed */
    rc_str ewma;      /* places a tick opens, smoothed: a JSON number as the leader
                         wrote it (RC_PROTO_MAX_EWMA at most); "0" while paused or unknown */
    uint32_t tick_ms; /* this node's admission tick */
    int paused;
    int64_t time_ms; /* when the tick ran (Redis's clock, ms since the epoch) */
} rc_queue_tick;

struct rc_msg;

enum rc_protocol_id {
    RC_PROTO_JSON = 0, /* the native JSON protocol on the WebSocket path */
    RC_PROTO_SIO,      /* Socket.IO v5 over Engine.IO v4 (sio/) on the Socket.IO path */
    RC_PROTO__COUNT
};

struct rc_shard;
struct rc_conn;
struct rc_obuf;

/* A protocol module. tag is a request's handle as the protocol gave it to
 * the operation (the JSON protocol: the raw text of the request's id; empty
 * when the client gave none, or when nobody asked); the operation hands it
 * back untouched with the result. Results come at most once per request,
 * now or later (a subscribe to a channel new to the shard waits for the
 * relay), and always on the connection's own shard. */
typedef struct rc_protocol {
    const char *name;
    /* The connection opened (the upgrade's 101 is queued): greet it. */
    void (*opened)(struct rc_shard *s, struct rc_conn *c);
    /* One whole message from the client. allowed is 0 when the rate limit
     * refused it: the protocol must still answer it (rate_limited). */
    void (*message)(struct rc_shard *s, struct rc_conn *c, const uint8_t *msg, size_t len,
                    int binary, int allowed);
    /* The connection is ending: undo what its operations hold. Called again
     * on each step of the close; must be idempotent. */
    void (*closed)(struct rc_shard *s, struct rc_conn *c);

    /* --- results of operations, for this connection --- */
    void (*error)(struct rc_shard *s, struct rc_conn *c, rc_str tag, int code, const char *msg,
                  rc_str channel);
    /* info: NULL for a channel without history and no since. */
    void (*subscribed)(struct rc_shard *s, struct rc_conn *c, rc_str tag, rc_str channel,
                       uint64_t seq, const rc_sub_info *info);
    /* A history request's answer: msgs[0..n) are the publications (their
     * shared frames), oldest first; info->recovery when since was given. */
    void (*history)(struct rc_shard *s, struct rc_conn *c, rc_str tag, rc_str channel,
                    const rc_sub_info *info, struct rc_msg *const *msgs, uint32_t n);
    /* A presence request's answer: members is the JSON text of n members,
     * each {"user":U|null,"conn":"ID","node":N[,"info":I]}, separated by
     * commas; cursor (n == 0: the last page) asks for the next page. */
    void (*presence)(struct rc_shard *s, struct rc_conn *c, rc_str tag, rc_str channel,
                     rc_str members, uint32_t n, rc_str cursor);
    /* connections: members; users: distinct user ids among them. */
    void (*presence_stats)(struct rc_shard *s, struct rc_conn *c, rc_str tag, rc_str channel,
                           uint64_t connections, uint64_t users);
    /* The connection's token expires in seconds: ask the client for a new one. */
    void (*refresh_due)(struct rc_shard *s, struct rc_conn *c, int64_t seconds);
    /* A refresh took: the connection's token now expires at exp (0: never). */
    void (*refreshed)(struct rc_shard *s, struct rc_conn *c, rc_str tag, int64_t exp);
    /* A client event is in its stream under entry id entry. */
    void (*event_acked)(struct rc_shard *s, struct rc_conn *c, rc_str tag, rc_str entry);
    void (*unsubscribed)(struct rc_shard *s, struct rc_conn *c, rc_str tag, rc_str channel);
    void (*published)(struct rc_shard *s, struct rc_conn *c, rc_str tag, rc_str channel);
    /* Waiting rooms (admission/). eta_s is -1 while no rate is known. */
    void (*queue_joined)(struct rc_shard *s, struct rc_conn *c, rc_str tag, rc_str queue,
                         int64_t ticket, int64_t position, int64_t eta_s);
    /* A waiting room's tick as this protocol's waiters of queue get it: one
     * frame, the same bytes for every one of them on the shard, built once
     * per tick (refs 0: the caller counts its uses). Each client derives its
     * own place and ETA from it and its ticket (docs/PROTOCOL.md, queue.tick).
     * NULL: this protocol's connections get no ticks. */
    struct rc_obuf *(*queue_tick)(struct rc_shard *s, rc_str queue, const rc_queue_tick *t);
    void (*queue_admitted)(struct rc_shard *s, struct rc_conn *c, rc_str tag, rc_str queue,
                           rc_str token, int64_t expires_ms);
    void (*queue_left)(struct rc_shard *s, struct rc_conn *c, rc_str tag, rc_str queue);
    void (*queue_gone)(struct rc_shard *s, struct rc_conn *c, rc_str queue, const char *reason);

    /* --- optional: NULL for a protocol that speaks the JSON protocol's
     * frames (the native one) --- */
    /* The protocol's own frame for a message m that the relay built in the
     * JSON protocol's form (a publication, a notice, a presence event):
     * made once per message per shard, when the first of its members that
     * speaks this protocol is served (refs 0: the caller counts its uses).
     * NULL: this protocol's members do not get m. */
    struct rc_obuf *(*frame)(struct rc_shard *s, const struct rc_msg *m);
    /* A backend's reply to c ({"type":"reply","id":R,"data"|"error":..},
     * events/events.h), to say in the protocol's own words; the caller
     * drops m's reference after. */
    void (*reply)(struct rc_shard *s, struct rc_conn *c, const struct rc_msg *m);
    /* The protocol keeps its own heartbeat instead of WebSocket pings. The
     * connection layer calls it with fire 1 when the connection's timer
     * fires (it may send a ping or close c), and with fire 0 when it only
     * plans the timer; it returns the milliseconds until it next needs the
     * timer (UINT32_MAX: never). */
    uint32_t (*heartbeat)(struct rc_shard *s, struct rc_conn *c, int fire);
    /* A virtual connection (no socket: engine/shard.h) has output waiting:
     * the protocol takes it (rc_conn_pop) when its client is there. */
    void (*drain)(struct rc_shard *s, struct rc_conn *c);
} rc_protocol;

#endif
