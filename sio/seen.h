/* Names for the emitter's messages that every node hears alike, so that a
 * room with history keeps each once, and a serverSideEmit reaches the event
 * stream once (sio/emitter.h, RC_BRIDGE_ONCE_LUA in channels/bridge.h).
 *
 * The emitter's messages carry no id. Every node with members of a room
 * gets each one, within milliseconds of the others; each names it by its
 * content, and Redis tells identical ones apart by when they came and, in
 * a burst, by their order on each node (RC_BRIDGE_ONCE_LUA).
 *
 * Thread: any (a pure function). */
#ifndef RC_SIO_SEEN_H
#define RC_SIO_SEEN_H

#include <stddef.h>

#include "base/common.h"

#define RC_SIO_SEEN_NAME_MAX 33 /* 32 hex digits and a NUL */

/* The name of payload on Redis channel or room chan: 32 hex digits of a
 * SHA-256 over both, into out (RC_SIO_SEEN_NAME_MAX bytes); its length. */
size_t rc_sio_seen_name(rc_str chan, rc_str payload, char *out);

#endif
