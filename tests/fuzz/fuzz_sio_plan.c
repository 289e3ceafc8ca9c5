/* A kept Socket.IO session as Redis hands it back, and the client's offset
 * (sio/recovery.c, rc_sio_plan): anyone who can write Redis, or any client,
 * controls them. Invariants, beyond "no crash": a plan that recovers names
 * each room with a valid length and a since of a 16-digit epoch; one that
 * does not holds no rooms. The input is the offset, a NUL, the record. */
#include <stdlib.h>
#include <string.h>

#include "sio/recovery.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 16384)
        return 0;
    const uint8_t *nul = memchr(data, 0, size);
    size_t on = nul ? (size_t)(nul - data) : 0;
    rc_sio_keep k;
    memset(&k, 0, sizeof(k));
    k.result = RC_SIO_KEPT_FOUND;
    if (on > RC_SIO_OFFSET_MAX)
        on = RC_SIO_OFFSET_MAX;
    memcpy(k.offset, data, on);
    size_t start = nul ? (size_t)(nul - data) + 1 : 0;
    k.len = size - start;
    k.text = malloc(k.len + 1);
    memcpy(k.text, data + start, k.len);
    k.text[k.len] = '\0';
    rc_sio_room *rooms = NULL;
    uint32_t n = 0;
    int why = rc_sio_plan(&k, "ann", 64, &rooms, &n);
    FUZZ_CHECK(why >= 0 && why < RC_SIO_REC__COUNT);
    if (why != RC_SIO_REC_RECOVERED)
        FUZZ_CHECK(rooms == NULL && n == 0);
    for (uint32_t i = 0; i < n; i++) {
        FUZZ_CHECK(rooms[i].len > 0 && rooms[i].len <= RC_PROTO_MAX_CHANNEL);
        FUZZ_CHECK(rooms[i].since.has && rooms[i].since.epoch.n == 16);
    }
    free(rooms);
    free(k.text);
    return 0;
}
