/* Where a recovering Socket.IO client stands in each room of its kept
 * session (sio/recovery.c, rc_sio_plan): records as a shard writes them,
 * offsets as frames carry them. */
#include <stdlib.h>
#include <string.h>

#include "sio/recovery.h"
#include "tests/unit/unit.h"

#define E1   "00000000000000e1"
#define E2   "00000000000000e2"
#define KEY  "000102030405060708090a0b0c0d0e0f" /* the shard's clock key, as the record has it */
#define HEAD "\"s\":\"0000abcd\",\"k\":\"" KEY "\",\"n\":0,"

static const uint8_t key[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};

/* An offset as the node writes it (with its MAC), for clock 0000abcd or
 * another. */
static const char *off(uint64_t epoch, uint64_t offset, uint32_t clock, uint64_t tick)
{
    static char out[4][RC_SIO_OFFSET_MAX + 1];
    static int i;
    char *o = out[i++ % 4];
    rc_sio_offset_text(key, epoch, offset, clock, tick, o, RC_SIO_OFFSET_MAX + 1);
    return o;
}

/* A TAKE answered with record text, the client's offset given. */
static int plan(const char *text, const char *offset, const char *user, rc_sio_room **rooms,
                uint32_t *n)
{
    rc_sio_keep k;
    memset(&k, 0, sizeof(k));
    k.op = RC_SIO_KEEP_TAKE;
    k.result = text ? RC_SIO_KEPT_FOUND : RC_SIO_KEPT_NONE;
    k.text = (char *)text;
    k.len = text ? strlen(text) : 0;
    snprintf(k.offset, sizeof(k.offset), "%s", offset);
    return rc_sio_plan(&k, user, 64, rooms, n);
}

/* Two rooms; clock "0000abcd"; the session began at reading 10; room a's
 * last frame was reading 50 (offset 7), room b's reading 40 (offset 3). */
static const char two[] = "{\"u\":\"ann\"," HEAD "\"o\":10,\"c\":[[\"ev:a\",\"" E1
                          "\",7,50,false],[\"ev:b\",\"" E2 "\",3,40,true]]}";

static void test_placed(void)
{
    rc_sio_room *r;
    uint32_t n;
    /* The client saw a's last frame (reading 50): b's, earlier, too. */
    CHECK_EQ_INT(plan(two, off(0xe1, 7, 0xabcd, 50), "ann", &r, &n), RC_SIO_REC_RECOVERED);
    CHECK_EQ_INT(n, 2);
    CHECK(n == 2 && !r[0].server && r[1].server);
    if (n == 2) {
        CHECK_EQ_STR(r[0].name, "ev:a");
        CHECK(r[0].since.has && r[0].since.offset == 7);
        CHECK_EQ_STR(r[1].name, "ev:b");
        CHECK(r[1].since.offset == 3 && r[1].since.epoch.n == 16 &&
              memcmp(r[1].since.epoch.p, E2, 16) == 0);
    }
    free(r);
    /* Its last was b's offset 3 (reading 40): a's later frames may be lost,
     * and where it stands in a is not known. */
    CHECK_EQ_INT(plan(two, off(0xe2, 3, 0xabcd, 40), "ann", &r, &n), RC_SIO_REC_UNPLACED);
    CHECK(r == NULL && n == 0);
    /* Its last was a's offset 5 (reading 45): a from 5; b's last frame
     * (40) came before it. */
    CHECK_EQ_INT(plan(two, off(0xe1, 5, 0xabcd, 45), "ann", &r, &n), RC_SIO_REC_RECOVERED);
    CHECK(n == 2 && r[0].since.offset == 5 && r[1].since.offset == 3);
    free(r);
    /* Another clock (another shard, another run): only the room the offset
     * names is placed. */
    CHECK_EQ_INT(plan(two, off(0xe1, 7, 0x1234, 50), "ann", &r, &n), RC_SIO_REC_UNPLACED);
    /* One room, no offset: placed only when no frame came since the start. */
    static const char quiet[] =
        "{\"u\":\"ann\"," HEAD "\"o\":60,\"c\":[[\"ev:a\",\"" E1 "\",7,50,false]]}";
    CHECK_EQ_INT(plan(quiet, "", "ann", &r, &n), RC_SIO_REC_RECOVERED);
    CHECK(n == 1 && r[0].since.offset == 7);
    free(r);
    static const char busy[] =
        "{\"u\":\"ann\"," HEAD "\"o\":20,\"c\":[[\"ev:a\",\"" E1 "\",7,50,false]]}";
    CHECK_EQ_INT(plan(busy, "", "ann", &r, &n), RC_SIO_REC_UNPLACED);
    /* A session with no rooms recovers as it was. */
    CHECK_EQ_INT(plan("{\"u\":\"\"," HEAD "\"o\":1,\"c\":[]}", "", "", &r, &n),
                 RC_SIO_REC_RECOVERED);
    CHECK_EQ_INT(n, 0);
    free(r);
}

static void test_refused(void)
{
    rc_sio_room *r;
    uint32_t n;
    CHECK_EQ_INT(plan(two, off(0xe1, 7, 0xabcd, 50), "bob", &r, &n), RC_SIO_REC_OTHER_USER);
    CHECK_EQ_INT(plan(NULL, "", "ann", &r, &n), RC_SIO_REC_UNKNOWN);
    /* A room without a position (no history). */
    static const char nohist[] = "{\"u\":\"ann\"," HEAD "\"o\":60,\"c\":[[\"lobby\","
                                 "\"0000000000000000\",0,0,false]]}";
    CHECK_EQ_INT(plan(nohist, "", "ann", &r, &n), RC_SIO_REC_NO_HISTORY);
    /* Records the node did not write, or another namespace's. */
    static const char *const junk[] = {
        "",
        "[]",
        "{\"u\":\"ann\"}",
        "{\"u\":1,\"c\":[]}",
        "{\"u\":\"ann\"," HEAD "\"o\":1,\"c\":[[\"a\",\"" E1 "\",-1,2,false]]}",
        "{\"u\":\"ann\"," HEAD "\"o\":1,\"c\":[[\"a\",\"xyz\",1,2,false]]}",
        "{\"u\":\"ann\"," HEAD "\"o\":1,\"c\":[[\"\",\"" E1 "\",1,2,false]]}",
        "{\"u\":\"ann\"," HEAD "\"o\":1,\"c\":[[\"a\",\"" E1 "\",1,2]]}",
        "{\"u\":\"ann\"," HEAD "\"o\":1,\"c\":[[\"a\",\"" E1 "\",1,2,1]]}",
        "{\"u\":\"ann\",\"s\":\"0000abcd\",\"n\":1,\"o\":1,\"c\":[]}",
        "{\"u\":\"ann\",\"s\":\"0000abcd\",\"o\":1,\"c\":[]}",
    };
    for (size_t i = 0; i < RC_ARRAY_LEN(junk); i++)
        CHECK_EQ_INT(plan(junk[i], "", "ann", &r, &n), RC_SIO_REC_UNKNOWN);
    /* More rooms than a connection may hold. */
    char many[4096];
    size_t m = (size_t)snprintf(many, sizeof(many), "{\"u\":\"ann\"," HEAD "\"o\":99,\"c\":[");
    for (int i = 0; i < 65; i++)
        m += (size_t)snprintf(many + m, sizeof(many) - m, "%s[\"r%d\",\"" E1 "\",1,2,false]",
                              i ? "," : "", i);
    snprintf(many + m, sizeof(many) - m, "]}");
    CHECK_EQ_INT(plan(many, "", "ann", &r, &n), RC_SIO_REC_UNKNOWN);
    /* Offsets the node did not write place nothing (the rule falls back on
     * "no frame since the start"): malformed ones, and well-formed ones
     * whose MAC is not the clock key's (an event's last string argument,
     * a forgery naming a far reading). */
    char forged[RC_SIO_OFFSET_MAX + 1];
    snprintf(forged, sizeof(forged), "%s", off(0xe2, 3, 0xabcd, 99999));
    forged[strlen(forged) - 1] ^= 1;
    static const char *const bad_offsets[] = {
        "x",
        E1 "-7",
        E1 "-7-0000abcd",
        E1 "-7-0000abcd-50",
        E1 "-7-0000abcd-50-1",
        E1 "--0000abcd-50-0011223344556677",
        E1 "-7-0000abcd-5x-0011223344556677",
        E1 "-7-0000abcd-50-0011223344556677",
        "0000000000000000-7-0000abcd-50-0011223344556677",
        E1 "0-7-0000abcd-50-0011223344556677",
        E1 "-99999999999999999999-0000abcd-50-0011223344556677",
    };
    for (size_t i = 0; i < RC_ARRAY_LEN(bad_offsets); i++)
        CHECK_EQ_INT(plan(two, bad_offsets[i], "ann", &r, &n), RC_SIO_REC_UNPLACED);
    CHECK_EQ_INT(plan(two, forged, "ann", &r, &n), RC_SIO_REC_UNPLACED);
    rc_sio_keep k;
    memset(&k, 0, sizeof(k));
    k.result = RC_SIO_KEPT_UNAVAILABLE;
    CHECK_EQ_INT(rc_sio_plan(&k, "ann", 64, &r, &n), RC_SIO_REC_UNAVAILABLE);
}

int main(void)
{
    RUN(test_placed);
    RUN(test_refused);
    return UNIT_DONE();
}
