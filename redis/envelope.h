/* The envelope of a message that crosses Redis: the payload of a PUBLISH
 * on a channel's Redis channel. Parsed and built by the relay thread
 * (channels/bridge.c); pure functions, safe on any thread. */
#ifndef RC_REDIS_ENVELOPE_H
#define RC_REDIS_ENVELOPE_H

#include "proto/protocol.h"

/* A message that came through Redis: the payload of a PUBLISH on a
 * channel's Redis channel, {"node":N, "event":E, "data":ANY}. "data" is
 * required, "event" optional ("message"), "node" optional: ringcast nodes set
 * it to their id so that each can drop its own echo; backends leave it out.
 * {"node":N,"dropped":true} (no data) says node N dropped messages of the
 * channel before they reached Redis. Unknown members are ignored. */
typedef struct rc_envelope {
    char node[64]; /* decoded; empty when absent */
    size_t node_len;
    char event[RC_PROTO_MAX_EVENT + 1];
    size_t event_len;
    rc_str data; /* raw JSON text of "data", into the payload */
    int dropped; /* "dropped":true; data is then optional and ignored */
} rc_envelope;

/* Parses a Redis payload. Returns RC_PERR_NONE and fills env, or an error
 * code (RC_PERR_BAD_JSON, RC_PERR_BAD_REQUEST) with *why set. */
int rc_envelope_parse(const char *payload, size_t len, rc_envelope *env, const char **why);

/* Writes {"node":NODE,"event":E,"data":DATA} (event omitted when empty; DATA
 * copied as is, already validated). Returns the length or -1 when it does
 * not fit in cap. */
ssize_t rc_envelope_build(char *out, size_t cap, const char *node, rc_str event, rc_str data);

#endif
