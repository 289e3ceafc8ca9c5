/* What Socket.IO's Redis emitter publishes (sio/emitter.c, sio/msgpack.c),
 * as anyone who can PUBLISH on Redis may send it. Invariants, beyond "no
 * crash":
 *  - a value that converts to JSON converts to valid JSON;
 *  - skipping a value and converting it end at the same place;
 *  - an emitter message that reads gives a valid channel and event name
 *    and data that is valid JSON.
 * The first byte chooses the Redis channel the message came on. */
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
    }
    static const char *const chans[] = {"socket.io#/#event:1#", "socket.io#/admin#r#",
                                        "socket.io#/#", "socket.io#/#a#b#", "other#/#x#"};
    const char *rn = chans[data[0] % 5];
    char chan[RC_PROTO_MAX_CHANNEL + 1], ev[RC_PROTO_MAX_EVENT + 1];
    size_t cl, el, dl;
    char *d = NULL;
    const char *why = NULL;
    if (rc_sio_emitter_read(&cfg, (rc_str){rn, strlen(rn)},
                            (rc_str){(const char *)data + 1, size - 1}, chan, &cl, ev, &el, &d,
                            &dl, &why) == 0) {
        FUZZ_CHECK(cl >= 1 && cl <= RC_PROTO_MAX_CHANNEL);
        FUZZ_CHECK(rc_proto_name_valid(ev, el, RC_PROTO_MAX_EVENT));
        FUZZ_CHECK(d && rc_json_validate(d, dl, 64) == 0);
    } else {
        FUZZ_CHECK(why && !d);
    }
    free(d);
    return 0;
}
