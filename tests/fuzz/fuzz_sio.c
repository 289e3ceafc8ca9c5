/* Socket.IO v5 and Engine.IO v4 packets (sio/packet.c), as a client may
 * send them. Invariants, beyond "no crash":
 *  - a packet that parses has its namespace, payload and id inside the
 *    input, a type 0..6, an id only on events and acks (and always on
 *    acks), and at most RC_SIO_MAX_ATTACH attachments;
 *  - an EVENT written back from what was parsed (namespace, id, the same
 *    arguments) parses again to the same namespace and id;
 *  - a polling body splits into packets that, with their separators,
 *    cover it exactly (k separators, k + 1 packets). */
#include <string.h>

#include "sio/packet.h"
#include "tests/fuzz/fuzz.h"
#include "ws/json.h"

static int inside(rc_str s, const char *p, size_t n)
{
    return s.n == 0 || (s.p >= p && s.p + s.n <= p + n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 16384)
        return 0;
    const char *p = (const char *)data;
    rc_sio_packet pk;
    int err = rc_sio_parse(p, size, &pk);
    FUZZ_CHECK(rc_sio_errtext(err) != NULL);
    if (err == RC_SIO_OK) {
        FUZZ_CHECK(pk.type >= 0 && pk.type <= 6);
        FUZZ_CHECK(pk.nsp.n >= 1 && pk.nsp.p[0] == '/');
        FUZZ_CHECK(pk.nsp.n == 1 || inside(pk.nsp, p, size));
        FUZZ_CHECK(inside(pk.data, p, size));
        FUZZ_CHECK(pk.attachments <= RC_SIO_MAX_ATTACH);
        int acky = pk.type == RC_SIO_ACK || pk.type == RC_SIO_BINARY_ACK;
        FUZZ_CHECK(!acky || pk.has_id);
        FUZZ_CHECK(!pk.has_id || acky || pk.type == RC_SIO_EVENT || pk.type == RC_SIO_BINARY_EVENT);
        if (pk.type == RC_SIO_EVENT && pk.nsp.n <= RC_SIO_MAX_NSP) {
            /* The arguments after the name, written back behind a new name. */
            rc_json_iter it;
            rc_json_val v;
            FUZZ_CHECK(rc_json_array_begin(&it, pk.data.p, pk.data.n, RC_SIO_MAX_DEPTH) == 0);
            FUZZ_CHECK(rc_json_array_next(&it, &v) == 1 && v.type == RC_JSON_STRING);
            const char *args = v.raw.p + v.raw.n;
            const char *end = pk.data.p + pk.data.n;
            while (end > args && end[-1] != ']')
                end--;
            end--; /* the closing ']' */
            while (args < end && *args != ',' && end > args)
                args++;
            rc_str rest =
                args < end ? (rc_str){args + 1, (size_t)(end - args - 1)} : (rc_str){"", 0};
            static char out[16384 + 512];
            ssize_t n = rc_sio_write_event(out, sizeof(out), pk.nsp, pk.has_id, pk.id,
                                           (rc_str){"e", 1}, rest);
            FUZZ_CHECK(n > 0);
            rc_sio_packet again;
            FUZZ_CHECK(rc_sio_parse(out, (size_t)n, &again) == RC_SIO_OK);
            FUZZ_CHECK(again.nsp.n == pk.nsp.n && memcmp(again.nsp.p, pk.nsp.p, pk.nsp.n) == 0);
            FUZZ_CHECK(again.has_id == pk.has_id && again.id == pk.id);
        }
    }
    /* The same bytes as a polling body. */
    const char *at = p, *end = p + size;
    rc_str pkt;
    size_t covered = 0, count = 0;
    while (rc_eio_payload_next(&at, end, &pkt)) {
        FUZZ_CHECK(inside(pkt, p, size));
        FUZZ_CHECK(memchr(pkt.p, 0x1e, pkt.n) == NULL);
        covered += pkt.n;
        count++;
    }
    FUZZ_CHECK(count >= 1 && covered + count - 1 == size);
    return 0;
}
