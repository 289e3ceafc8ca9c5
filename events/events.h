/* Client events to backends, and backends' replies to one connection.
 *
 * A client sends {"type":"event","id":R,"event":NAME,"data":D}. The node
 * appends it to the Redis stream its name's rule names (--event-stream:
 * PREFIX "ev:" STREAM), with what the server knows of the sender:
 *
 *   event  NAME          data   D (JSON text)       id    R (JSON text, "" without)
 *   user   the token's sub ("" when anonymous)      conn  the welcome's conn
 *   node   this node's id                            time  ms since the epoch (node's clock)
 *   reply  "CONN:GEN:NODE", the address of this connection
 *   reply_channel  the Redis channel to PUBLISH the answer on
 *
 * and answers {"type":"event_ack","id":R,"entry":ID} once Redis has it, or
 * an error (unknown_event, event_too_large, stream_full, events_unavailable).
 * Backend workers read the stream with consumer groups.
 *
 * A backend answers one connection, on whatever node it is, by PUBLISHing
 * {"to":REPLY,"id":R,"data":D} (or "error":E instead of data) on the
 * reply_channel (PREFIX "ch:_rc.reply:" NODE), or through POST /api/reply
 * on any node. The connection gets {"type":"reply","id":R,"data":D}. A
 * reply to a connection that is gone is dropped and counted.
 *
 * Shard half: events/shard.c; relay half: events/relay.c. */
#ifndef RC_EVENTS_H
#define RC_EVENTS_H

#include "engine/shard.h"
#include "proto/protocol.h"

/* The prefix of the node's internal Redis channels (clients can neither
 * subscribe nor publish to names that start with it). */
#define RC_INTERNAL_PREFIX "_rc."
#define RC_REPLY_CHANNEL   RC_INTERNAL_PREFIX "reply:"
#define RC_CONTROL_CHANNEL RC_INTERNAL_PREFIX "ctl"

/* A client event on its way to its stream, and the answer (RC_Q_EVENT,
 * RC_Q_EVENT_DONE). Made and freed by the shard. */
typedef struct rc_evreq {
    uint16_t shard, gen;
    uint32_t conn; /* the sender's slot on its shard */
    uint64_t from_conn;
    uint8_t tag_len;
    char tag[RC_PROTO_MAX_ID + 1];
    int error; /* the answer: 0, or an error code */
    uint8_t entry_len;
    char entry[48];
    uint16_t event_len, user_len;
    uint32_t data_len;
    const char *event, *user, *data; /* inside mem */
    char mem[];
} rc_evreq;

rc_evreq *rc_evreq_new(rc_str event, rc_str user, rc_str data);

/* A backend's reply on its way to a node (POST /api/reply: RC_Q_REPLY):
 * the JSON body, checked. */
typedef struct rc_replyreq {
    uint32_t len;
    char body[];
} rc_replyreq;

/* --- shard half (events/shard.c) --- */
/* An event from c (an operation: the JSON protocol's "event"). */
void rc_events_emit(rc_shard *s, rc_conn *c, rc_str tag, rc_str event, rc_str data);
/* The relay's answer (RC_Q_EVENT_DONE); frees q. */
void rc_events_on_done(rc_shard *s, rc_evreq *q);
/* A reply frame for connection slot/gen (RC_Q_DIRECT); takes m's reference. */
struct rc_msg;
void rc_events_on_direct(rc_shard *s, uint32_t slot, uint16_t gen, struct rc_msg *m);

/* The lifecycle stream's news (--lifecycle-stream; RC_Q_LIFECYCLE): a
 * connection opened or closed. Made by the shard, freed by the relay. */
enum { RC_LC_CONNECT = 1, RC_LC_DISCONNECT, RC_LC_SUBSCRIBE, RC_LC_UNSUBSCRIBE };
typedef struct rc_lcnews {
    uint8_t kind;
    uint16_t gen;
    uint16_t code; /* disconnect: the close code (1006: aborted) */
    uint64_t conn;
    char reason[124];
    char user[RC_PROTO_MAX_USER + 1];
    char channel[RC_PROTO_MAX_CHANNEL + 1]; /* subscribe, unsubscribe */
} rc_lcnews;

/* c opened / is closing (s->closing_code says how): told to the lifecycle
 * stream once each, when one is configured. */
void rc_events_conn_opened(rc_shard *s, rc_conn *c);
void rc_events_conn_closed(rc_shard *s, rc_conn *c);
/* A membership change of c (s->membership_hook, with
 * --lifecycle-subscriptions): subscribe and unsubscribe events; none for a
 * connection that is closing (its disconnect says it). */
void rc_events_membership(rc_shard *s, const rc_conn *c, rc_str ch, int join);

/* Parses a reply {"to":"CONN:GEN:NODE","id":ID,("data":D | "error":E)}:
 * 0 and the parts, or -1 with *why. */
typedef struct rc_reply {
    uint64_t conn;
    uint16_t gen;
    rc_str node;            /* inside to */
    rc_str id, data, error; /* inside the text parsed */
    char to[RC_PROTO_MAX_NODE + 48];
} rc_reply;
int rc_reply_parse(const char *p, size_t n, rc_reply *r, const char **why);

#endif
