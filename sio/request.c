/* The emitter's request channel, read (sio/emitter.h):
 * {"type":T,"opts":{"rooms":[...],"except":[...]},"rooms":[...],"close":B},
 * as @socket.io/redis-emitter writes it for socketsJoin, socketsLeave and
 * disconnectSockets, and {"type":6,"data":[...]} for serverSideEmit.
 *
 * Thread: any (no state). */
#include <string.h>

#include "proto/protocol.h"
#include "sio/emitter.h"
#include "ws/json.h"

#define DEPTH 32

/* Adds the strings of array v to list of *b. A room that is no channel
 * name: left out when it chooses (nobody is in it), refused when it is to
 * be joined or left (names). 0, or -1 with *why. */
static int add_rooms(const rc_config *cfg, const rc_json_val *v, rc_sio_bcast **b, int list,
                     const char **why)
{
    rc_json_iter it;
    rc_json_val x;
    if (v->type != RC_JSON_ARRAY || rc_json_array_begin(&it, v->raw.p, v->raw.n, DEPTH) < 0) {
        *why = "rooms that are not an array";
        return -1;
    }
    while (rc_json_array_next(&it, &x) > 0) {
        char room[RC_PROTO_MAX_CHANNEL + 1], ch[RC_PROTO_MAX_CHANNEL + 1];
        ssize_t n = x.type == RC_JSON_STRING ? rc_json_string(&x, room, sizeof(room)) : -2;
        if (n == -2) {
            *why = "a room that is not a string";
            return -1;
        }
        size_t cl = n > 0 ? rc_sio_room_channel(cfg, (*b)->nsp, room, (size_t)n, ch) : 0;
        if (!cl && list == RC_SIO_BC_NAMES) {
            *why = "a room to join or leave that is not a valid channel name";
            return -1;
        }
        if (cl && rc_sio_bcast_add(b, list, (rc_str){ch, cl}) < 0) {
            *why = "more rooms than a request may name";
            return -1;
        }
    }
    return 0;
}

/* Does array v hold anything? */
static int nonempty(const rc_json_val *v)
{
    rc_json_iter it;
    rc_json_val x;
    return rc_json_array_begin(&it, v->raw.p, v->raw.n, DEPTH) == 0 &&
           rc_json_array_next(&it, &x) > 0;
}

/* Reads what the request chooses and does into *b. 0, or -1 with *why. */
static int read_op(const rc_config *cfg, const rc_json_val *opts, const rc_json_val *rooms,
                   const rc_json_val *close, rc_sio_bcast **b, const char **why)
{
    rc_json_val sel = {0}, ex = {0};
    if (opts->type == RC_JSON_OBJECT) {
        rc_json_iter it;
        rc_json_val k, v;
        if (rc_json_object_begin(&it, opts->raw.p, opts->raw.n, DEPTH) < 0) {
            *why = "malformed opts";
            return -1;
        }
        while (rc_json_object_next(&it, &k, &v) > 0) {
            if (rc_json_key_is(&k, "rooms"))
                sel = v;
            else if (rc_json_key_is(&k, "except"))
                ex = v;
        }
    } else if (opts->type != RC_JSON_INVALID && opts->type != RC_JSON_NULL) {
        *why = "opts is not an object";
        return -1;
    }
    if (sel.type != RC_JSON_INVALID && sel.type != RC_JSON_NULL) {
        if (add_rooms(cfg, &sel, b, RC_SIO_BC_ROOMS, why) < 0)
            return -1;
        if (nonempty(&sel)) /* rooms were named, even if none can hold anyone */
            (*b)->all = 0;
    }
    if (ex.type != RC_JSON_INVALID && ex.type != RC_JSON_NULL &&
        add_rooms(cfg, &ex, b, RC_SIO_BC_EXCEPT, why) < 0)
        return -1;
    if ((*b)->op == RC_SIO_BC_DISCONNECT) {
        (*b)->close = close->type == RC_JSON_TRUE;
        return 0;
    }
    if (add_rooms(cfg, rooms, b, RC_SIO_BC_NAMES, why) < 0)
        return -1;
    if (!(*b)->n[RC_SIO_BC_NAMES]) {
        *why = "no room to join or leave";
        return -1;
    }
    return 0;
}

int rc_sio_request_read(const rc_config *cfg, int nsp, rc_str payload, rc_sio_bcast **out,
                        int *type, const char **why)
{
    *out = NULL;
    *type = -1;
    rc_json_iter it;
    rc_json_val k, v, t = {0}, opts = {0}, rooms = {0}, close = {0};
    if (rc_json_object_begin(&it, payload.p, payload.n, DEPTH) < 0) {
        *why = "a request that is not a JSON object";
        return -1;
    }
    while (rc_json_object_next(&it, &k, &v) > 0) {
        if (rc_json_key_is(&k, "type"))
            t = v;
        else if (rc_json_key_is(&k, "opts"))
            opts = v;
        else if (rc_json_key_is(&k, "rooms"))
            rooms = v;
        else if (rc_json_key_is(&k, "close"))
            close = v;
    }
    int64_t n;
    if (t.type != RC_JSON_NUMBER || rc_json_int64(&t, &n) < 0 || n < 0 || n > 1000) {
        *why = "a request without a type";
        return -1;
    }
    *type = (int)n;
    int op = n == RC_SIO_REQ_REMOTE_JOIN         ? RC_SIO_BC_JOIN
             : n == RC_SIO_REQ_REMOTE_LEAVE      ? RC_SIO_BC_LEAVE
             : n == RC_SIO_REQ_REMOTE_DISCONNECT ? RC_SIO_BC_DISCONNECT
                                                 : 0;
    if (!op)
        return 1;
    rc_sio_bcast *b = rc_sio_bcast_new(op, nsp);
    if (read_op(cfg, &opts, &rooms, &close, &b, why) < 0) {
        rc_sio_bcast_free(b);
        return -1;
    }
    *out = b;
    return 0;
}
