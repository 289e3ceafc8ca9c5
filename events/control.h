/* Server-side control, from the backends, across nodes: disconnect a user's
 * connections (or one connection) with a code and a reason, and subscribe
 * or unsubscribe them to a channel (read and written by events/codec.c,
 * applied by events/shard.c:rc_ctl_apply).
 *
 * POST /api/disconnect, /api/subscribe, /api/unsubscribe on any node take
 * {"user":U} or {"conn":ADDRESS} (an event's reply address, "CONN:GEN:NODE"),
 * plus "channel" (subscribe, unsubscribe) or "code" (4000..4999, default
 * 4003) and "reason" (at most 120 bytes) for disconnect. With Redis the
 * node PUBLISHes the command on PREFIX "ch:_rc.ctl", which every node
 * subscribes, and each applies it to its own connections; without, the
 * node applies it. */
#ifndef RC_CONTROL_H
#define RC_CONTROL_H

#include "engine/shard.h"
#include "proto/protocol.h"

enum rc_ctl_op { RC_CTL_DISCONNECT = 1, RC_CTL_SUBSCRIBE, RC_CTL_UNSUBSCRIBE };

#define RC_CTL_DEFAULT_CODE 4003
#define RC_CTL_MAX_REASON   120

typedef struct rc_ctl {
    uint8_t op; /* enum rc_ctl_op */
    uint8_t by_conn;
    uint16_t code;
    uint16_t gen;
    uint64_t conn;
    char node[RC_PROTO_MAX_NODE + 1];
    char user[RC_PROTO_MAX_USER + 1];
    char channel[RC_PROTO_MAX_CHANNEL + 1];
    char reason[RC_CTL_MAX_REASON + 1];
} rc_ctl;

/* The op named by an API path ("disconnect"...), or 0. */
int rc_ctl_op_named(rc_str name);
/* Parses a command body for op (0: the body's "op" member says). 0, or -1
 * with *why. */
int rc_ctl_parse(const char *p, size_t n, int op, size_t max_channel_len, rc_ctl *k,
                 const char **why);
/* Writes k as the body rc_ctl_parse(op 0) reads back; its length, or -1. */
ssize_t rc_ctl_write(char *out, size_t cap, const rc_ctl *k);
#define RC_CTL_JSON_MAX 1200

/* Applies k to the shard's connections (thread: the shard). Returns how
 * many it touched. */
uint32_t rc_ctl_apply(rc_shard *s, const rc_ctl *k);

#endif
