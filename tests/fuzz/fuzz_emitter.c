/* What Socket.IO's Redis emitter publishes (sio/emitter.c, sio/msgpack.c),
 * as anyone who can PUBLISH on Redis may send it. Invariants, beyond "no
 * crash":
 *  - a value that converts to JSON converts to valid JSON;
 *  - skipping a value and converting it end at the same place;
 *  - an emitter message that reads gives a valid channel and event name,
 *    data that is valid JSON, and rooms and except rooms that are valid
 *    channel names;
 *  - a request that reads names valid channels, and something to join or
 *    leave unless it disconnects.
 * The first byte chooses the Redis channel the message came on (the last
 * two choices: the request channel of "/" or "/admin", JSON). */
#include <stdlib.h>
#include <string.h>

#include "engine/config.h"
#include "proto/protocol.h"
#include "sio/emitter.h"
#include "sio/msgpack.h"
#include "tests/fuzz/fuzz.h"
#include "ws/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 8192)
        return 0;
    rc_mp a = {data + 1, data + size}, b = a;
    static char out[8192 * 6 + 64];
    ssize_t n = rc_mp_to_json(&a, out, sizeof(out));
    int skipped = rc_mp_skip(&b);
    if (n >= 0) {
        FUZZ_CHECK(rc_json_validate(out, (size_t)n, 64) == 0);
        FUZZ_CHECK(skipped == 0 && a.p == b.p);
    }
    static rc_config cfg;
    if (!cfg.sio_emitter[0]) {
        strcpy(cfg.sio_emitter, "socket.io");
        static char admin[] = "/admin";
        cfg.sio_nsps[0] = admin;
        cfg.n_sio_nsps = 1;
        cfg.max_channel_len = 128;
    }
    static const char *const chans[] = {"socket.io#/#event:1#", "socket.io#/admin#r#",
                                        "socket.io#/#",         "socket.io#/#a#b#",
                                        "other#/#x#",           "socket.io#/admin#"};
    const char *rn = chans[data[0] % 8 < 6 ? data[0] % 8 : 0];
    rc_str payload = {(const char *)data + 1, size - 1};
    if (data[0] % 8 >= 6) {
        /* The request channel: JSON. */
        rc_sio_bcast *bc = NULL;
        int type;
        const char *why = NULL;
        int r = rc_sio_request_read(&cfg, data[0] % 8 - 6, payload, &bc, &type, &why);
        if (r == 0) {
            FUZZ_CHECK(bc && bc->op >= RC_SIO_BC_JOIN && bc->op <= RC_SIO_BC_DISCONNECT);
            FUZZ_CHECK(bc->op == RC_SIO_BC_DISCONNECT || bc->n[RC_SIO_BC_NAMES] > 0);
            for (int l = 0; l < 3; l++)
                for (uint32_t i = 0; i < bc->n[l]; i++) {
                    rc_str c = rc_sio_bcast_get(bc, l, i);
                    FUZZ_CHECK(rc_proto_name_valid(c.p, c.n, cfg.max_channel_len));
                }
            rc_sio_bcast_free(bc);
        } else {
            FUZZ_CHECK(!bc && (r == 1 || why));
        }
        return 0;
    }
    rc_sio_emit e;
    const char *why = NULL;
    if (rc_sio_emitter_read(&cfg, (rc_str){rn, strlen(rn)}, payload, &e, &why) == 0) {
        FUZZ_CHECK(e.chan_len <= RC_PROTO_MAX_CHANNEL);
        FUZZ_CHECK(rc_proto_name_valid(e.ev, e.ev_len, RC_PROTO_MAX_EVENT));
        FUZZ_CHECK(e.data && rc_json_validate(e.data, e.data_len, 64) == 0);
        FUZZ_CHECK(e.to && e.to->op == RC_SIO_BC_EMIT && e.to->n[RC_SIO_BC_NAMES] == 0);
        FUZZ_CHECK(!e.to->all || e.to->n[RC_SIO_BC_ROOMS] == 0);
        for (int l = 0; l < 2; l++)
            for (uint32_t i = 0; i < e.to->n[l]; i++) {
                rc_str c = rc_sio_bcast_get(e.to, l, i);
                FUZZ_CHECK(rc_proto_name_valid(c.p, c.n, cfg.max_channel_len));
            }
        rc_sio_emit_clear(&e);
    } else {
        FUZZ_CHECK(why);
    }
    return 0;
}
