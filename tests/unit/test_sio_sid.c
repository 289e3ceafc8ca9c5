/* The sid of an Engine.IO session (sio/session.h): its head names the
 * shard, the slot and the generation, and is read back strictly. */
#include <string.h>

#include "sio/session.h"
#include "tests/unit/unit.h"

static const char rnd[] = "AbCdEfGhIjKlMn_-";

static int round_trip(int shard, uint32_t slot, uint16_t gen, uint32_t *s2, uint16_t *g2)
{
    char sid[RC_SIO_SID_LEN + 1];
    rc_sio_sid_head(sid, shard, slot, gen);
    memcpy(sid + RC_SIO_SID_HEAD, rnd, 16);
    sid[RC_SIO_SID_LEN] = '\0';
    return rc_sio_sid_parse(sid, s2, g2);
}

/* Virtual slots follow the socket slots: with 2^20 sockets a shard's
 * slots reach 2^21 - 1, past 5 hex digits. Each comes back whole. */
static void test_round_trip(void)
{
    static const uint32_t slots[] = {0, 1, 0xfffff, 0x100000, 0x1fffff, UINT32_MAX - 1};
    for (size_t i = 0; i < sizeof(slots) / sizeof(slots[0]); i++) {
        uint32_t slot = 0;
        uint16_t gen = 0;
        CHECK_EQ_INT(round_trip(255, slots[i], 0xbeef, &slot, &gen), 255);
        CHECK_EQ_INT(slot, slots[i]);
        CHECK_EQ_INT(gen, 0xbeef);
    }
    uint32_t slot;
    uint16_t gen;
    CHECK_EQ_INT(round_trip(0, 0x100000, 0, &slot, &gen), 0);
    CHECK_EQ_INT(slot, 0x100000); /* not slot 0, as a 5-digit field made it */
}

/* Anything but the exact length and lower-case hex digits is no sid. */
static void test_strict(void)
{
    uint32_t slot;
    uint16_t gen;
    char good[RC_SIO_SID_LEN + 1];
    rc_sio_sid_head(good, 1, 0x100003, 7);
    memcpy(good + RC_SIO_SID_HEAD, rnd, 17);
    CHECK_EQ_INT(rc_sio_sid_parse(good, &slot, &gen), 1);
    static const char *const bad_heads[] = {
        " 1",       /* strtoul would skip blanks */
        "+1", "-1", /* and take a sign */
        "0x",       /* or a prefix */
        "0A",       /* upper case is not how we write it */
    };
    for (size_t i = 0; i < sizeof(bad_heads) / sizeof(bad_heads[0]); i++) {
        char sid[RC_SIO_SID_LEN + 1];
        memcpy(sid, good, sizeof(sid));
        memcpy(sid, bad_heads[i], 2);
        CHECK_EQ_INT(rc_sio_sid_parse(sid, &slot, &gen), -1);
        memcpy(sid, good, sizeof(sid));
        memcpy(sid + 5, bad_heads[i], 2); /* in the slot field */
        CHECK_EQ_INT(rc_sio_sid_parse(sid, &slot, &gen), -1);
        memcpy(sid, good, sizeof(sid));
        memcpy(sid + 11, bad_heads[i], 2); /* in the generation */
        CHECK_EQ_INT(rc_sio_sid_parse(sid, &slot, &gen), -1);
    }
    char shortsid[RC_SIO_SID_LEN];
    memcpy(shortsid, good, RC_SIO_SID_LEN - 1);
    shortsid[RC_SIO_SID_LEN - 1] = '\0';
    CHECK_EQ_INT(rc_sio_sid_parse(shortsid, &slot, &gen), -1);
    char longsid[RC_SIO_SID_LEN + 2];
    memcpy(longsid, good, RC_SIO_SID_LEN);
    memcpy(longsid + RC_SIO_SID_LEN, "A", 2);
    CHECK_EQ_INT(rc_sio_sid_parse(longsid, &slot, &gen), -1);
    CHECK_EQ_INT(rc_sio_sid_parse("", &slot, &gen), -1);
    /* The old 27-character form is no sid any more. */
    CHECK_EQ_INT(rc_sio_sid_parse("00000010001AAAAAAAAAAAAAAAA", &slot, &gen), -1);
}

int main(void)
{
    RUN(test_round_trip);
    RUN(test_strict);
    return UNIT_DONE();
}
