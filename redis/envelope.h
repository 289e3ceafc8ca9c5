/* The envelope of a message that crosses Redis: the payload of a PUBLISH
 * on a channel's Redis channel. Parsed and built by the relay thread
 * (channels/bridge.c); pure functions, safe on any thread. */
#ifndef RC_REDIS_ENVELOPE_H
#define RC_REDIS_ENVELOPE_H

#include "proto/protocol.h"

/* A message that came through Redis: the payload of a PUBLISH on a
 * channel's Redis channel, {"node":N, "event":E, "from":F, "data":ANY}.
 * "data" is required, "event" optional ("message"), "node" optional:
 * ringcast nodes set it to their id so that each can drop its own echo;
 * backends leave it out. "from" is written by a node for a client's
 * publication, {"user":U|null,"conn":"ID"}; without it the message is the
 * backend's (whoever may PUBLISH on Redis is trusted to say either).
 * {"node":N,"dropped":true} (no data) says node N dropped messages of the
 * channel before they reached Redis. Unknown members are ignored. */
typedef struct rc_envelope {
    char node[64]; /* decoded; empty when absent */
    size_t node_len;
    char event[RC_PROTO_MAX_EVENT + 1];
    size_t event_len;
    rc_str data; /* raw JSON text of "data", into the payload */
    int dropped; /* "dropped":true; data is then optional and ignored */
    int from;    /* RC_FROM_CLIENT with "from", else RC_FROM_BACKEND */
    char from_user[RC_PROTO_MAX_USER + 1];
    size_t from_user_len;
    uint64_t from_conn;
    int args; /* "args":true: data is an array of several arguments (rc_origin) */
    /* A publication of a channel with history, as Redis gave it out (the
     * publish script writes them first): offset >= 1 and epoch, or none. */
    uint64_t offset;
    char epoch[RC_PROTO_MAX_EPOCH + 1];
    size_t epoch_len;
    /* {"node":N,"fence":F}: published by node N's read of the channel's
     * history (channels/bridge.c), after which its subscriber has seen
     * every publication the read saw. No data. */
    uint64_t fence;
    /* {["node":N,]"join":M} or {["node":N,]"leave":M}: a presence event
     * (channels/presence.h), M a member's JSON object. No data. */
    int presence; /* RC_ENV_JOIN, RC_ENV_LEAVE, or 0 */
    rc_str member;
} rc_envelope;

enum { RC_ENV_JOIN = 1, RC_ENV_LEAVE = 2 };

/* Parses a Redis payload. Returns RC_PERR_NONE and fills env, or an error
 * code (RC_PERR_BAD_JSON, RC_PERR_BAD_REQUEST) with *why set. */
int rc_envelope_parse(const char *payload, size_t len, rc_envelope *env, const char **why);

/* Writes {"node":NODE,"event":E,"from":F,"args":true,"data":DATA} (event
 * omitted when empty, from when origin is NULL or not a client's, args
 * unless origin->args; DATA copied as is,
 * already validated). Returns the length or -1 when it does not fit in
 * cap. */
ssize_t rc_envelope_build(char *out, size_t cap, const char *node, rc_str event, rc_str data,
                          const rc_origin *origin);

#endif
