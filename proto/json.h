/* The native protocol: JSON text messages between clients and ringcast.
 * docs/PROTOCOL.md is the reference for clients; this header is the one for
 * the code. Client requests:
 *   {"type":"subscribe",  "id":ID, "channel":C}
 *   {"type":"unsubscribe","id":ID, "channel":C}
 *   {"type":"publish",    "id":ID, "channel":C, "event":E, "data":ANY}
 *   {"type":"ping",       "id":ID}
 *   {"type":"queue.join", "id":ID, "queue":Q}    (waiting rooms, admission/)
 *   {"type":"queue.leave","id":ID, "queue":Q}
 * ID is optional: a string (at most 64 bytes of JSON text) or an integer,
 * echoed back exactly as sent. "event" is optional (default "message").
 * Unknown members are ignored, so clients can add their own. */
#ifndef RC_PROTO_JSON_H
#define RC_PROTO_JSON_H

#include <sys/types.h>

#include "base/common.h"
#include "proto/protocol.h"
#include "ws/json.h"

/* Buffers of these sizes always hold what the builders below write, for any
 * input within the limits above (ids, names, users, the server's own texts):
 * every value counted at its longest escaped form, plus room for the
 * members' names and numbers. A builder given one never returns -1. */
#define RC_PROTO_REPLY_MAX                                                                         \
    (160 + RC_PROTO_MAX_ID + RC_JSON_ESCAPED_MAX(RC_PROTO_MAX_CHANNEL) +                           \
     RC_JSON_ESCAPED_MAX(RC_PROTO_MAX_TEXT))
#define RC_PROTO_QUEUE_MAX (200 + RC_PROTO_MAX_ID + RC_JSON_ESCAPED_MAX(RC_PROTO_MAX_QUEUE))
#define RC_PROTO_WELCOME_MAX                                                                       \
    (200 + RC_JSON_ESCAPED_MAX(RC_PROTO_MAX_NODE) + RC_JSON_ESCAPED_MAX(RC_PROTO_MAX_USER))

enum rc_proto_op {
    RC_OP_SUBSCRIBE = 1,
    RC_OP_UNSUBSCRIBE,
    RC_OP_PUBLISH,
    RC_OP_PING,
    RC_OP_QJOIN,  /* "queue.join" */
    RC_OP_QLEAVE, /* "queue.leave" */
    RC_OP_HISTORY,
    RC_OP_PRESENCE,       /* "presence": who is here, a page at a time */
    RC_OP_PRESENCE_STATS, /* "presence_stats": how many */
    RC_OP_EVENT,          /* "event": a client event for the backends (events/) */
    RC_OP_REFRESH,        /* "refresh": a new token on the open connection */
};

typedef struct rc_proto_req {
    int op;
    char id[RC_PROTO_MAX_ID + 1]; /* raw JSON text of the id, NUL-terminated */
    size_t id_len;                /* 0 when absent */
    char channel[RC_PROTO_MAX_CHANNEL + 1];
    size_t channel_len;
    char event[RC_PROTO_MAX_EVENT + 1];
    size_t event_len;
    rc_str data;                        /* raw JSON text of "data", into the input */
    char queue[RC_PROTO_MAX_QUEUE + 1]; /* queue.join / queue.leave */
    size_t queue_len;
    rc_since since; /* subscribe, history: "since":{"offset":N,"epoch":E} */
    char since_epoch[RC_PROTO_MAX_EPOCH + 1];
    uint32_t limit;                       /* history, presence: "limit" (0: not given) */
    char cursor[RC_PROTO_MAX_CURSOR + 1]; /* presence: "cursor" (empty: the first page) */
    rc_str token; /* refresh: "token", into the input (a JWT needs no escapes) */
    size_t cursor_len;
} rc_proto_req;

/* Parses one client text message. Returns RC_PERR_NONE and fills req, or an
 * error code with *why set to a short static explanation. The id is filled as
 * soon as it is found, so an error reply can echo it; on RC_PERR_BAD_JSON it
 * is empty. A publish must have "channel" and "data"; subscribe and
 * unsubscribe "channel"; max_channel_len (<= RC_PROTO_MAX_CHANNEL) bounds
 * channel names. A publish without "event" gets req->event "message". */
int rc_proto_parse(const char *msg, size_t len, size_t max_channel_len, rc_proto_req *req,
                   const char **why);

/* Parses a POST /api/publish body: {"channel":C, "event":E, "data":ANY}
 * ("type", when present, must be "publish"). Same contract as rc_proto_parse;
 * req->op is RC_OP_PUBLISH on success. */
int rc_proto_parse_publish_body(const char *body, size_t len, size_t max_channel_len,
                                rc_proto_req *req, const char **why);

/* Builders. Each writes one JSON object into out and returns its length, or
 * -1 when it does not fit in cap; no NUL is written. An rc_str with n == 0 is
 * omitted from the output (id, channel), so callers pass RC_STR_NULL. */

/* {"type":TYPE,"id":ID,"channel":C,"seq":S} — seq omitted when < 0. For
 * "subscribed", "unsubscribed", "published". */
ssize_t rc_proto_reply(char *out, size_t cap, const char *type, rc_str id, rc_str channel,
                       int64_t seq);

/* {"type":"pong","id":ID,"time":MS} */
ssize_t rc_proto_pong(char *out, size_t cap, rc_str id, int64_t time_ms);

/* {"type":"error","id":ID,"code":NAME,"message":M,"channel":C} — message
 * omitted when NULL. */
ssize_t rc_proto_error(char *out, size_t cap, rc_str id, int code, const char *message,
                       rc_str channel);

/* {"type":"message","channel":C,"event":E,"seq":S,"data":DATA} with DATA
 * copied byte for byte (the caller has validated it as JSON). An empty event
 * is written as "message" and empty data as null. */
ssize_t rc_proto_message(char *out, size_t cap, rc_str channel, rc_str event, uint64_t seq,
                         rc_str data);

/* The exact length rc_proto_message would write, for sizing a buffer. */
size_t rc_proto_message_len(rc_str channel, rc_str event, uint64_t seq, rc_str data);

/* {"type":"subscribed"[,"id":ID],"channel":C,"seq":N
 *  [,"offset":O,"epoch":"E"]                         a channel with history
 *  [,"recovered":true,"missed":K | ,"recovered":false,"reason":R]}   since was given
 * Fits in RC_PROTO_REPLY_MAX. */
ssize_t rc_proto_subscribed(char *out, size_t cap, rc_str id, rc_str channel, uint64_t seq,
                            const rc_sub_info *info);
/* {"type":"history"[,"id":ID],"channel":C,"offset":O,"epoch":"E"[,"recovered":..,"reason":..],
 *  "publications":[P,...]}, each P a publication's JSON as it went out live.
 * rc_proto_history_cap(pubs, n) is a cap that always fits. */
size_t rc_proto_history_cap(const rc_str *pubs, uint32_t n);
ssize_t rc_proto_history(char *out, size_t cap, rc_str id, rc_str channel, const rc_sub_info *info,
                         const rc_str *pubs, uint32_t n);

/* {"type":"presence"[,"id":ID],"channel":C,"members":[MEMBERS][,"cursor":K]}:
 * MEMBERS is members' text as it is; the cursor is omitted when empty (the
 * last page). rc_proto_presence_cap(members.n) always fits. */
size_t rc_proto_presence_cap(size_t members_len);
ssize_t rc_proto_presence(char *out, size_t cap, rc_str id, rc_str channel, rc_str members,
                          rc_str cursor);
/* {"type":"presence_stats"[,"id":ID],"channel":C,"connections":N,"users":U};
 * fits in RC_PROTO_REPLY_MAX. */
ssize_t rc_proto_presence_stats(char *out, size_t cap, rc_str id, rc_str channel,
                                uint64_t connections, uint64_t users);
/* A member of a channel's presence, as clients and Redis see it:
 * {"user":U|null,"conn":"ID","node":N[,"info":I]} (info: the token's info
 * claim, already valid JSON; user empty: anonymous). Fits in
 * RC_PROTO_MEMBER_MAX. */
#define RC_PROTO_MEMBER_MAX                                                                        \
    (96 + RC_JSON_ESCAPED_MAX(RC_PROTO_MAX_USER) + RC_JSON_ESCAPED_MAX(RC_PROTO_MAX_NODE) + 1024)
ssize_t rc_proto_member(char *out, size_t cap, rc_str user, uint64_t conn, rc_str node,
                        rc_str info);
/* {"type":"join"|"leave","channel":C,"member":M}: join is 1 or 0 (leave). */
ssize_t rc_proto_presence_event(char *out, size_t cap, int join, rc_str channel, rc_str member);

/* {"type":"refresh","expires_in":S}: the client should send a new token. */
ssize_t rc_proto_refresh_due(char *out, size_t cap, int64_t seconds);
/* {"type":"refreshed"[,"id":ID],"exp":E}: exp 0 is written as null. */
ssize_t rc_proto_refreshed(char *out, size_t cap, rc_str id, int64_t exp);
/* {"type":"event_ack"[,"id":ID],"entry":"E"}: fits in RC_PROTO_REPLY_MAX. */
ssize_t rc_proto_event_ack(char *out, size_t cap, rc_str id, rc_str entry);
/* A backend's answer to a client event: {"type":"reply","id":ID,"data":D}
 * or {"type":"reply","id":ID,"error":E} (error.n > 0), ID, D and E copied
 * as they are (valid JSON). rc_proto_reply_cap(id, body) always fits. */
size_t rc_proto_reply_cap(rc_str id, rc_str body);
ssize_t rc_proto_backend_reply(char *out, size_t cap, rc_str id, rc_str data, rc_str error);

/* A publication as clients receive it:
 *   {"type":"message","channel":C,"event":E,"seq":N
 *    [,"offset":O,"epoch":"E"]                      a channel with history
 *    [,"from":{"user":U|null,"conn":"ID"} | ,"from":{"backend":true}]
 *    ,"data":D}
 * rc_proto_message is this without position and origin. */
typedef struct rc_proto_pub {
    rc_str channel, event, data;
    uint64_t seq;
    int has_pos; /* offset and epoch are written */
    uint64_t offset;
    rc_str epoch;
    int from;         /* enum rc_from */
    rc_str from_user; /* RC_FROM_CLIENT: the token's user; empty: anonymous */
    uint64_t from_conn;
    int args; /* data holds several arguments: "args":true */
} rc_proto_pub;

ssize_t rc_proto_publication(char *out, size_t cap, const rc_proto_pub *p);
/* The exact length rc_proto_publication writes. */
size_t rc_proto_publication_len(const rc_proto_pub *p);

/* Waiting rooms. eta_s < 0 is written as null (no admission rate known). */
/* {"type":"queue.joined","id":ID,"queue":Q,"ticket":T,"position":P,"eta":S} */
ssize_t rc_proto_queue_joined(char *out, size_t cap, rc_str id, rc_str queue, int64_t ticket,
                              int64_t position, int64_t eta_s);
/* {"type":"queue.tick","queue":Q,"head":H,"ewma":E,"tick":MS,"paused":B,"time":MS}:
 * the frame every waiter of Q gets after a tick (rc_queue_tick, proto/protocol.h).
 * t->ewma must be a JSON number (it is written as it is). */
ssize_t rc_proto_queue_tick(char *out, size_t cap, rc_str queue, const rc_queue_tick *t);
/* {"type":"admitted","id":ID,"queue":Q,"token":T,"expires":MS} */
ssize_t rc_proto_admitted(char *out, size_t cap, rc_str id, rc_str queue, rc_str token,
                          int64_t expires_ms);
/* {"type":"queue.left","id":ID,"queue":Q} */
ssize_t rc_proto_queue_left(char *out, size_t cap, rc_str id, rc_str queue);
/* {"type":"queue.left","queue":Q,"reason":R}: not a reply; the place is gone
 * (R: "left_elsewhere" when another connection of the user left, "removed"
 * when the line no longer holds the user). */
ssize_t rc_proto_queue_gone(char *out, size_t cap, rc_str queue, const char *reason);

/* The HTTP API's answers about admission tokens and queues:
 * {"valid":true,"user":U,"queue":Q,"iat":S,"exp":S} and
 * {"valid":false,"reason":R} (POST /api/queues/verify);
 * {"queue":Q,"user":U,"freed":B} (POST /api/queues/{q}/complete). */
#define RC_PROTO_VERIFY_MAX                                                                        \
    (128 + RC_JSON_ESCAPED_MAX(RC_PROTO_MAX_USER) + RC_JSON_ESCAPED_MAX(RC_PROTO_MAX_QUEUE) +      \
     RC_JSON_ESCAPED_MAX(RC_PROTO_MAX_TEXT))
ssize_t rc_proto_verified(char *out, size_t cap, const char *user, const char *queue, int64_t iat_s,
                          int64_t exp_s);
ssize_t rc_proto_not_verified(char *out, size_t cap, const char *reason);
ssize_t rc_proto_completed(char *out, size_t cap, const char *queue, const char *user, int freed);

/* {"type":"welcome","node":N,"shard":S,"conn":ID,"user":U|null,
 *  "ping_interval":MS,"max_message_bytes":B} */
ssize_t rc_proto_welcome(char *out, size_t cap, const char *node, int shard, uint64_t conn_id,
                         const char *user, uint32_t ping_interval_ms, uint32_t max_message_bytes);

#endif
