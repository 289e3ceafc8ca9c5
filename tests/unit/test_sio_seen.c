/* Names of the emitter's messages (sio/seen.c): two nodes that hear the
 * same messages name them alike; identical ones are told apart by count;
 * the count starts again once the window has passed. */
#include <string.h>

#include "sio/seen.h"
#include "tests/unit/unit.h"

static rc_str S(const char *s)
{
    return (rc_str){s, strlen(s)};
}

static void test_names(void)
{
    rc_sio_seen *a = rc_sio_seen_new(), *b = rc_sio_seen_new();
    char x[RC_SIO_SEEN_NAME_MAX], y[RC_SIO_SEEN_NAME_MAX], z[RC_SIO_SEEN_NAME_MAX];
    size_t n = rc_sio_seen_name(a, S("event:1"), S("sold out"), 1000, x);
    CHECK_EQ_INT(n, 34);
    CHECK(strcmp(x + 32, "-1") == 0);
    rc_sio_seen_name(b, S("event:1"), S("sold out"), 5000, y);
    CHECK_EQ_STR(x, y); /* another node, another time: the same name */
    rc_sio_seen_name(a, S("event:1"), S("sold out"), 1100, y);
    CHECK(memcmp(x, y, 32) == 0 && strcmp(y + 32, "-2") == 0);
    rc_sio_seen_name(a, S("event:2"), S("sold out"), 1200, z);
    CHECK(memcmp(x, z, 32) != 0 && strcmp(z + 32, "-1") == 0);
    rc_sio_seen_name(a, S("event:1"), S("sold out!"), 1300, z);
    CHECK(memcmp(x, z, 32) != 0);
    /* A minute after the last one, counting starts again. */
    rc_sio_seen_name(a, S("event:1"), S("sold out"), 1100 + RC_SIO_SEEN_WINDOW_MS, y);
    CHECK_EQ_STR(x, y);
    CHECK_EQ_INT(rc_sio_seen_count(a), 3); /* the two others are younger than a minute */
    /* Bounded: the oldest go first. */
    char p[32];
    for (int i = 0; i < RC_SIO_SEEN_MAX + 10; i++) {
        snprintf(p, sizeof(p), "%d", i);
        rc_sio_seen_name(b, S("event:3"), S(p), 9000, z);
    }
    CHECK_EQ_INT(rc_sio_seen_count(b), RC_SIO_SEEN_MAX);
    rc_sio_seen_free(a);
    rc_sio_seen_free(b);
}

int main(void)
{
    RUN(test_names);
    return UNIT_DONE();
}
