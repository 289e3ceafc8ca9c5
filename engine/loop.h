/* A shard's thread and ring loop (engine/loop.c), as the main thread sees
 * it: make a shard, start its thread, wait for it to end. */
#ifndef RC_LOOP_H
#define RC_LOOP_H

#include "engine/shard.h"

/* Thread: the main thread. */
rc_shard *rc_shard_new(rc_node *node, int id);
/* Starts the shard's thread: 0 or an errno value. */
int rc_shard_start(rc_shard *s);
/* Waits for the thread to end and frees the shard. */
void rc_shard_join(rc_shard *s);

#endif
