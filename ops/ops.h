/* The operations: what a client may ask of the node, whatever protocol it
 * speaks, and what the HTTP API asks for (the relay's requests on a
 * connection's behalf will come through here too). Who may do what is
 * decided here and nowhere else; the features (channels/, admission/) do
 * what they are asked.
 *
 * An operation asked by a connection answers through that connection's
 * protocol (proto/protocol.h), exactly once: its result callback, or
 * `error` with a code (enum rc_proto_err) and a message for the client. The
 * answer may come now or later (a subscribe to a channel new to the shard
 * waits for the relay; a queue join waits for Redis); meanwhile the
 * connection's next requests wait (engine/reqq.c), so answers come in
 * request order. tag comes back with the answer untouched.
 *
 * Thread: the shard that owns the connection. */
#ifndef RC_OPS_H
#define RC_OPS_H

#include "engine/shard.h"

enum rc_op_right { RC_MAY_SUBSCRIBE, RC_MAY_PUBLISH };

/* May the holder of auth (NULL: anonymous) subscribe to / publish on
 * channel? 0 or an error code, with *why set (a message for the client).
 * Channels "queue:*" carry waiting-room ticks: nobody subscribes or
 * publishes there. */
int rc_op_may(const rc_shard *s, const rc_auth *auth, rc_str channel, int right, const char **why);

/* Verifies a token (HS256 with the secret, or the previous one during a
 * rotation; RS256 and ES256 with the node's public keys): RC_JWT_OK and
 * *out, or an RC_JWT_* code. */
int rc_op_verify_token(const rc_shard *s, const char *token, size_t len, rc_auth **out);

/* --- a connection's operations: answered through its protocol --- */
/* since (may be NULL): recover what was published after it, on a channel
 * with history; the publications follow the answer. */
void rc_op_subscribe(rc_shard *s, rc_conn *c, rc_str tag, rc_str channel, const rc_since *since);
/* The last limit publications kept (0: --recovery-max), or those after
 * since; reading needs the right to subscribe. */
void rc_op_history(rc_shard *s, rc_conn *c, rc_str tag, rc_str channel, uint32_t limit,
                   const rc_since *since);
/* Who is here (a page of at most limit members after cursor; limit 0:
 * --presence-page-max) and how many, on a channel with presence; asking
 * needs the right to subscribe. */
void rc_op_presence(rc_shard *s, rc_conn *c, rc_str tag, rc_str channel, uint32_t limit,
                    rc_str cursor);
void rc_op_presence_stats(rc_shard *s, rc_conn *c, rc_str tag, rc_str channel);
void rc_op_unsubscribe(rc_shard *s, rc_conn *c, rc_str tag, rc_str channel);
/* event and data as the JSON protocol carries them (data: raw JSON text). */
void rc_op_publish(rc_shard *s, rc_conn *c, rc_str tag, rc_str channel, rc_str event, rc_str data);
/* A new token for c (in-band refresh): the same user's, verified like the
 * handshake's; c's exp follows it. */
void rc_op_refresh(rc_shard *s, rc_conn *c, rc_str tag, rc_str token);
/* A client event for the backends (events/events.h): acknowledged once
 * its stream has it. */
void rc_op_event(rc_shard *s, rc_conn *c, rc_str tag, rc_str event, rc_str data);
/* Waiting rooms: a place in queue's line for the token's user (sub). */
void rc_op_queue_join(rc_shard *s, rc_conn *c, rc_str tag, rc_str queue);
void rc_op_queue_leave(rc_shard *s, rc_conn *c, rc_str tag, rc_str queue);

/* --- server-side, without an answer --- */
/* c opened: told to the lifecycle stream, and joined to its user channel. */
void rc_op_opened(rc_shard *s, rc_conn *c);
/* Joins c to channel "user:<sub>" (with --user-channels; nothing for an
 * anonymous connection or a user id that cannot be part of a name). */
void rc_op_join_user(rc_shard *s, rc_conn *c);
/* c is ending: it leaves every channel and its waiting room. Idempotent. */
void rc_op_end(rc_shard *s, rc_conn *c);

/* --- the HTTP API (its key checked by http/server.c) --- */
/* Publishes to any channel but "queue:*": 0, or an error code with *why. */
int rc_op_publish_api(rc_shard *s, rc_str channel, rc_str event, rc_str data, const char **why);

#endif
