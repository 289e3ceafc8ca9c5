/* Names of the emitter's messages (sio/seen.c): every node names the same
 * message alike, another channel or another payload otherwise. */
#include <string.h>

#include "sio/seen.h"
#include "tests/unit/unit.h"

static rc_str S(const char *s)
{
    return (rc_str){s, strlen(s)};
}

static void test_names(void)
{
    char x[RC_SIO_SEEN_NAME_MAX], y[RC_SIO_SEEN_NAME_MAX], z[RC_SIO_SEEN_NAME_MAX];
    CHECK_EQ_INT(rc_sio_seen_name(S("event:1"), S("sold out"), x), 32);
    CHECK_EQ_INT(strlen(x), 32);
    for (size_t i = 0; i < 32; i++)
        CHECK((x[i] >= '0' && x[i] <= '9') || (x[i] >= 'a' && x[i] <= 'f'));
    rc_sio_seen_name(S("event:1"), S("sold out"), y);
    CHECK_EQ_STR(x, y);
    rc_sio_seen_name(S("event:2"), S("sold out"), z);
    CHECK(strcmp(x, z) != 0);
    rc_sio_seen_name(S("event:1"), S("sold out!"), z);
    CHECK(strcmp(x, z) != 0);
    /* The channel and the payload do not run into each other. */
    rc_sio_seen_name(S("event:1s"), S("old out"), z);
    CHECK(strcmp(x, z) != 0);
}

int main(void)
{
    RUN(test_names);
    return UNIT_DONE();
}
