/* Client events on the relay (events/relay.c): the script that appends an
 * event to its stream, and the node's reply channel, on which backends
 * answer one connection (events/events.h).
 *
 * Thread: the relay thread. */
#ifndef RC_EVENTS_RELAY_H
#define RC_EVENTS_RELAY_H

#include "channels/bridge.h"
#include "engine/outbox.h"

typedef struct rc_events_stats {
    rc_counter stored;      /* events Redis took */
    rc_counter full;        /* refused: the stream held its maxlen */
    rc_counter failed;      /* refused: Redis away or an error */
    rc_counter replies_in;  /* replies that came for this node's connections */
    rc_counter replies_bad; /* replies that could not be read (dropped, logged) */
    rc_counter replies_out; /* replies sent on from the HTTP API */
    rc_counter controls;    /* server-side commands applied on this node */
} rc_events_stats;

typedef struct rc_events rc_events;

rc_events *rc_events_new(const rc_config *cfg, rc_outbox *out, rc_events_stats *stats);
/* With Redis: subscribes the node's reply channel. */
void rc_events_attach(rc_events *e, rc_bridge *bridge);
void rc_events_stop(rc_events *e);
void rc_events_free(rc_events *e);
/* A shard's event (p: rc_evreq), answered to that shard. */
void rc_events_on_event(rc_events *e, const rc_qitem *it);
/* A server-side command from the HTTP API (p: rc_ctl), for every node. */
void rc_events_on_control(rc_events *e, const rc_qitem *it);
/* At the end of each relay turn: the turn's events go out, one script per
 * stream for up to 500 of them. */
void rc_events_flush(rc_events *e);
/* A reply from the HTTP API (p: rc_replyreq), sent to its node. */
void rc_events_on_reply(rc_events *e, const rc_qitem *it);

#endif
