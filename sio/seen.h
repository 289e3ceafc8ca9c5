/* Names for the emitter's messages that every node hears alike, so that a
 * room with history keeps each once (sio/emitter.h, and
 * rc_bridge_publish_history_once).
 *
 * Every node with members of a room gets each emitter message for it, in
 * the same order. Each names the message by its content and by how many
 * times the same content came on that room within the last minute here
 * (the n-th identical "sold out" is the n-th on every node that heard them
 * all), so the nodes that race to keep it name it alike and Redis keeps
 * the first. A node that joined the room in the middle of a burst of
 * identical messages counts fewer of them, and may keep one twice.
 *
 * Thread: the relay thread. */
#ifndef RC_SIO_SEEN_H
#define RC_SIO_SEEN_H

#include <stddef.h>
#include <stdint.h>

#include "base/common.h"

#define RC_SIO_SEEN_WINDOW_MS 60000 /* as the once keys' life in Redis */
#define RC_SIO_SEEN_MAX       100000
#define RC_SIO_SEEN_NAME_MAX  48

typedef struct rc_sio_seen rc_sio_seen;

rc_sio_seen *rc_sio_seen_new(void);
void rc_sio_seen_free(rc_sio_seen *t);

/* The name of payload on chan heard now ("DIGEST-N") into out
 * (RC_SIO_SEEN_NAME_MAX bytes); its length. */
size_t rc_sio_seen_name(rc_sio_seen *t, rc_str chan, rc_str payload, uint64_t now_ms, char *out);

/* Entries held (gauge). */
uint32_t rc_sio_seen_count(const rc_sio_seen *t);

#endif
