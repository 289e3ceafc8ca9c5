/* Channels on a shard (channels/shard.c): membership, the relay's SUBACKs,
 * and the fan-out of the messages it delivers. Who may subscribe or
 * publish is decided before these are called (ops/ops.c).
 *
 * Thread: the shard's own. */
#ifndef RC_CHAN_SHARD_H
#define RC_CHAN_SHARD_H

#include "engine/shard.h"

/* Makes c a member of ch (once) and answers through c's protocol
 * (`subscribed`): now, or when the relay's SUBACK comes for a channel new
 * to the shard, or, for a channel with history, once the relay has said
 * where it stands and what c missed since `since` (c is held meanwhile).
 * The missed publications follow the answer, before any live one. */
void rc_chan_subscribe(rc_shard *s, rc_conn *c, rc_str tag, rc_str ch, const rc_since *since);
/* rc_chan_subscribe for the server (server 1): the membership is marked as
 * the server's, as a quiet join's (rc_memb.server), and no rights apply. */
void rc_chan_subscribe_as(rc_shard *s, rc_conn *c, rc_str tag, rc_str ch, const rc_since *since,
                          int server);
/* A history request: answered through c's protocol (`history`) once the
 * relay has read it (c is held meanwhile). limit: 1..--recovery-max. */
void rc_chan_history(rc_shard *s, rc_conn *c, rc_str tag, rc_str ch, uint32_t limit,
                     const rc_since *since);
/* Presence requests, answered through c's protocol (`presence`,
 * `presence_stats`) once the relay has read them (c is held meanwhile).
 * limit: 1..--presence-page-max; cursor: empty for the first page. A
 * connection's membership of a channel with presence is announced to the
 * relay by joining and leaving it. */
void rc_chan_presence(rc_shard *s, rc_conn *c, rc_str tag, rc_str ch, uint32_t limit,
                      rc_str cursor);
void rc_chan_presence_stats(rc_shard *s, rc_conn *c, rc_str tag, rc_str ch);
/* 1 when c is a member of ch. */
int rc_chan_holds(rc_shard *s, const rc_conn *c, rc_str ch);
/* c leaves ch: 0, or -1 when it was not a member. No answer. */
int rc_chan_unsubscribe(rc_shard *s, rc_conn *c, rc_str ch);
/* Hands a publication to the relay: 0, or -1 when its queue is full. from
 * is the publishing connection (its user and id go with it), or NULL for
 * the backend (the HTTP API). */
int rc_chan_publish(rc_shard *s, rc_str ch, rc_str event, rc_str data, const rc_conn *from);
/* Server-side membership, without answers: joins c to ch (once) and returns
 * the room; leaves room r (if c is in it); deletes r when a fan-out left it
 * empty. */
rc_room *rc_chan_join_quiet(rc_shard *s, rc_conn *c, rc_str ch);
void rc_chan_leave(rc_shard *s, rc_conn *c, rc_room *r);
void rc_chan_room_check(rc_shard *s, rc_room *r);
/* c leaves every channel. */
void rc_chan_leave_all(rc_shard *s, rc_conn *c);

/* --- from the loop: the relay's items --- */
void rc_chan_on_suback(rc_shard *s, char *name, uint64_t seq);
struct rc_histreq;
/* The relay's answer to a history question (RC_Q_HISTORY_DONE); frees q. */
void rc_chan_on_history(rc_shard *s, struct rc_histreq *q);
struct rc_presreq;
/* The relay's answer to a presence question (RC_Q_PRESENCE_DONE); frees q. */
void rc_chan_on_presence(rc_shard *s, struct rc_presreq *q);
/* A channel message (or notice): one shared frame to every member here. */
void rc_chan_on_deliver(rc_shard *s, rc_msg *m);
/* At exit: frees what rooms still waiting for a SUBACK hold. */
void rc_chan_free_all(rc_shard *s);

#endif
