/* ringload's ws:// URL parsing (--url, --pub-url): host, port, path, the
 * default paths, and the loopback-only rule. Addresses are numeric, so no
 * resolver is involved; expected values are written out by hand. */
#include <arpa/inet.h>
#include <string.h>

#include "perf/ringload/url.h"
#include "tests/unit/unit.h"

#define SIO "/socket.io/?EIO=4&transport=websocket"

static void test_full(void)
{
    rl_endpoint e;
    CHECK_EQ_INT(rl_parse_url("ws://127.0.0.1:8080/ws", NULL, &e), 0);
    CHECK_EQ_STR(e.url, "ws://127.0.0.1:8080/ws");
    CHECK_EQ_STR(e.host, "127.0.0.1:8080");
    CHECK_EQ_STR(e.path, "/ws");
    CHECK_EQ_INT(e.addr.sin_family, AF_INET);
    CHECK_EQ_INT(ntohs(e.addr.sin_port), 8080);
    CHECK_EQ_INT(ntohl(e.addr.sin_addr.s_addr), 0x7f000001);
}

static void test_other_loopback_and_query(void)
{
    rl_endpoint e;
    CHECK_EQ_INT(rl_parse_url("ws://127.5.6.7:65535" SIO, "/unused", &e), 0);
    CHECK_EQ_STR(e.path, SIO); /* an explicit path wins over the default */
    CHECK_EQ_INT(ntohs(e.addr.sin_port), 65535);
    CHECK_EQ_INT(ntohl(e.addr.sin_addr.s_addr), 0x7f050607);
    CHECK_EQ_STR(e.host, "127.5.6.7:65535");
}

static void test_defaults(void)
{
    rl_endpoint e;
    CHECK_EQ_INT(rl_parse_url("ws://127.0.0.1", NULL, &e), 0);
    CHECK_EQ_INT(ntohs(e.addr.sin_port), 80);
    CHECK_EQ_STR(e.path, "/");
    CHECK_EQ_STR(e.host, "127.0.0.1");
    CHECK_EQ_INT(rl_parse_url("ws://127.0.0.1:9000/", NULL, &e), 0);
    CHECK_EQ_STR(e.path, "/");
    CHECK_EQ_INT(rl_parse_url("ws://127.0.0.1:9000", SIO, &e), 0);
    CHECK_EQ_STR(e.path, SIO);
    CHECK_EQ_INT(ntohs(e.addr.sin_port), 9000);
    CHECK_EQ_INT(rl_parse_url("ws://127.0.0.1:9000/", SIO, &e), 0);
    CHECK_EQ_STR(e.path, SIO);
}

static void test_not_loopback(void)
{
    rl_endpoint e;
    CHECK_EQ_INT(rl_parse_url("ws://10.0.0.1:80/ws", NULL, &e), RL_URL_NOT_LOOPBACK);
    CHECK_EQ_INT(rl_parse_url("ws://128.0.0.1:80/ws", NULL, &e), RL_URL_NOT_LOOPBACK);
    CHECK_EQ_INT(rl_parse_url("ws://126.255.255.255:80/ws", NULL, &e), RL_URL_NOT_LOOPBACK);
}

static void test_bad(void)
{
    rl_endpoint e;
    const char *bad[] = {"http://127.0.0.1:80/ws",
                         "wss://127.0.0.1:80/ws",
                         "ws://",
                         "ws:///ws",
                         "ws://127.0.0.1:0/ws",
                         "ws://127.0.0.1:65536/ws",
                         "ws://127.0.0.1:80x/ws",
                         "ws://127.0.0.1:/ws",
                         "ws://:80/ws",
                         "127.0.0.1:80/ws",
                         "ws://127.0.0.1:-1/ws",
                         "ws://127.0.0.1:123456/"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int r = rl_parse_url(bad[i], NULL, &e);
        if (r != RL_URL_BAD)
            fprintf(stderr, "accepted or misjudged: %s (%d)\n", bad[i], r);
        CHECK_EQ_INT(r, RL_URL_BAD);
    }
    char long_url[1100];
    memset(long_url, 'a', sizeof(long_url) - 1);
    long_url[sizeof(long_url) - 1] = 0;
    memcpy(long_url, "ws://127.0.0.1:80/", 18);
    CHECK_EQ_INT(rl_parse_url(long_url, NULL, &e), RL_URL_BAD);
}

int main(void)
{
    RUN(test_full);
    RUN(test_other_loopback_and_query);
    RUN(test_defaults);
    RUN(test_not_loopback);
    RUN(test_bad);
    return UNIT_DONE();
}
