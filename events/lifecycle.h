/* The lifecycle stream on the relay (events/lifecycle.c): connect and
 * disconnect events of this node's connections, written to the stream
 * PREFIX "lc:{lifecycle}:" STREAM at the end of each relay turn; and the
 * heartbeat that lets the other nodes write the disconnects of a node that
 * died.
 *
 * Keys (one hash slot: {lifecycle}): the stream; "nodes", a sorted set of
 * node runs ("NODE:RUN") scored by their last heartbeat (Redis's clock);
 * and for each run "conns:" RUN, a sorted set of its open connections
 * ("CONN:GEN:NODE|USER"). Every node beats once a second; a beat also takes
 * up to 1000 connections of each run silent for --lifecycle-timeout and
 * writes their disconnects (code 1006, cause "node_lost").
 *
 * Thread: the relay thread. */
#ifndef RC_LIFECYCLE_H
#define RC_LIFECYCLE_H

#include "channels/bridge.h"
#include "events/events.h"

typedef struct rc_lifecycle_stats {
    rc_counter written;  /* events written */
    rc_counter dropped;  /* events dropped: the stream held its maxlen, or Redis away */
    rc_counter taken;    /* disconnects written for dead nodes' connections */
    rc_counter declared; /* this node found itself declared dead */
} rc_lifecycle_stats;

typedef struct rc_lifecycle rc_lifecycle;

/* NULL when no lifecycle stream is configured (or no Redis). */
rc_lifecycle *rc_lifecycle_new(const rc_config *cfg, rc_lifecycle_stats *stats);
void rc_lifecycle_attach(rc_lifecycle *l, rc_bridge *bridge);
void rc_lifecycle_free(rc_lifecycle *l);
/* A shard's news (takes n). */
void rc_lifecycle_on_news(rc_lifecycle *l, rc_lcnews *n);
/* End of a relay turn: the turn's news go out. */
void rc_lifecycle_flush(rc_lifecycle *l);
/* Once a second: the heartbeat. */
void rc_lifecycle_tick(rc_lifecycle *l);

#endif
