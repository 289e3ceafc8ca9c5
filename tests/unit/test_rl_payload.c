/* ringload's bench-protocol messages: the stamped data payload, subscribe
 * and publish in both dialects, and the classification of server messages
 * (shapes from perf's bench protocol notes). */
#include <string.h>

#include "perf/ringload/payload.h"
#include "tests/unit/unit.h"

static void test_data_build_parse(void)
{
    char buf[256];
    int n = rl_data_build(buf, sizeof(buf), 123456789012345ull, 42, 64);
    CHECK_EQ_INT(n, 64);
    buf[n] = 0;
    /* {"t":123456789012345,"i":42,"p":"  is 33 chars, then 29 x's and "} */
    const char *want = "{\"t\":123456789012345,\"i\":42,\"p\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}";
    CHECK_EQ_INT(strlen(want), 64);
    CHECK_EQ_STR(buf, want);
    uint64_t t = 0, i = 0;
    CHECK_EQ_INT(rl_data_parse(buf, (size_t)n, &t, &i), 0);
    CHECK_EQ_INT(t, 123456789012345ull);
    CHECK_EQ_INT(i, 42);
    /* too small a size: no padding, minimal text */
    n = rl_data_build(buf, sizeof(buf), 1, 2, 10);
    buf[n] = 0;
    CHECK_EQ_STR(buf, "{\"t\":1,\"i\":2,\"p\":\"\"}");
    /* big sizes, exact length */
    static char big[5000];
    n = rl_data_build(big, sizeof(big), 99, 7, 4096);
    CHECK_EQ_INT(n, 4096);
    CHECK_EQ_INT(rl_data_build(buf, 30, 1, 2, 64), -1);
    /* other key orders and spacing-free members parse too */
    const char *other = "{\"i\":5,\"x\":\"\\\"t\\\":9\",\"t\":77}";
    CHECK_EQ_INT(rl_data_parse(other, strlen(other), &t, &i), 0);
    CHECK_EQ_INT(t, 77);
    CHECK_EQ_INT(i, 5);
    /* the fast path's shape broken after "t": the search still finds "i" */
    const char *late = "{\"t\":5,\"x\":1,\"i\":2}";
    CHECK_EQ_INT(rl_data_parse(late, strlen(late), &t, &i), 0);
    CHECK_EQ_INT(t, 5);
    CHECK_EQ_INT(i, 2);
    CHECK_EQ_INT(rl_data_parse("{\"t\":1}", 7, &t, &i), -1);
    CHECK_EQ_INT(rl_data_parse("{\"t\":\"a\",\"i\":1}", 15, &t, &i), -1);
}

static void test_client_messages(void)
{
    char buf[512];
    int n = rl_msg_subscribe(RL_DIALECT_RINGCAST, buf, sizeof(buf), 7, "bench:1");
    CHECK(n > 0);
    buf[n] = 0;
    CHECK_EQ_STR(buf, "{\"type\":\"subscribe\",\"id\":7,\"channel\":\"bench:1\"}");
    n = rl_msg_subscribe(RL_DIALECT_SOCKETIO, buf, sizeof(buf), 7, "bench:1");
    buf[n] = 0;
    CHECK_EQ_STR(buf, "427[\"subscribe\",\"bench:1\"]");
    n = rl_msg_publish(RL_DIALECT_RINGCAST, buf, sizeof(buf), 3, "echo:5", "{\"t\":1}", 7);
    buf[n] = 0;
    CHECK_EQ_STR(buf, "{\"type\":\"publish\",\"id\":3,\"channel\":\"echo:5\",\"data\":{\"t\":1}}");
    n = rl_msg_publish(RL_DIALECT_RINGCAST, buf, sizeof(buf), RL_NO_ID, "echo:5", "{\"t\":1}", 7);
    CHECK(n > 0);
    CHECK_EQ_STR(buf, "{\"type\":\"publish\",\"channel\":\"echo:5\",\"data\":{\"t\":1}}");
    n = rl_msg_publish(RL_DIALECT_SOCKETIO, buf, sizeof(buf), 3, "echo:5", "{\"t\":1}", 7);
    buf[n] = 0;
    CHECK_EQ_STR(buf, "42[\"message\",\"echo:5\",{\"channel\":\"echo:5\",\"data\":{\"t\":1}}]");
    /* a channel that needs escaping */
    n = rl_msg_subscribe(RL_DIALECT_RINGCAST, buf, sizeof(buf), 1, "a\"b");
    buf[n] = 0;
    CHECK_EQ_STR(buf, "{\"type\":\"subscribe\",\"id\":1,\"channel\":\"a\\\"b\"}");
    CHECK_EQ_INT(rl_msg_subscribe(RL_DIALECT_RINGCAST, buf, 20, 1, "bench:1"), -1);
}

static rl_in_kind cls(rl_dialect d, const char *s, rc_str *data)
{
    return rl_msg_classify(d, s, strlen(s), data);
}

static void test_classify(void)
{
    rc_str data = RC_STR_NULL;
    const char *m = "{\"type\":\"message\",\"channel\":\"bench:1\",\"event\":\"message\",\"seq\":9,"
                    "\"data\":{\"t\":5,\"i\":6,\"p\":\"xx\"}}";
    CHECK_EQ_INT(cls(RL_DIALECT_RINGCAST, m, &data), RL_IN_MESSAGE);
    CHECK(data.n == 22 && memcmp(data.p, "{\"t\":5,\"i\":6,\"p\":\"xx\"}", 22) == 0);
    /* the same data size behind a longer envelope: found where the last
     * one's data began, counted from the end */
    const char *mf =
        "{\"type\":\"message\",\"channel\":\"bench:1\",\"event\":\"message\",\"seq\":10,"
        "\"from\":{\"user\":null,\"conn\":\"0\"},\"data\":{\"t\":5,\"i\":7,\"p\":\"xx\"}}";
    CHECK_EQ_INT(cls(RL_DIALECT_RINGCAST, mf, &data), RL_IN_MESSAGE);
    CHECK(data.n == 22 && memcmp(data.p, "{\"t\":5,\"i\":7,\"p\":\"xx\"}", 22) == 0);
    /* another size: searched again */
    const char *ml = "{\"type\":\"message\",\"channel\":\"bench:1\",\"seq\":11,"
                     "\"data\":{\"t\":5,\"i\":8,\"p\":\"abcdef\"}}";
    CHECK_EQ_INT(cls(RL_DIALECT_RINGCAST, ml, &data), RL_IN_MESSAGE);
    CHECK(data.n == 26 && memcmp(data.p, "{\"t\":5,\"i\":8,\"p\":\"abcdef\"}", 26) == 0);
    CHECK_EQ_INT(cls(RL_DIALECT_RINGCAST, m, &data), RL_IN_MESSAGE);
    CHECK(data.n == 22 && memcmp(data.p, "{\"t\":5,\"i\":6,\"p\":\"xx\"}", 22) == 0);
    /* members in another order (the slow path) */
    const char *m2 = "{\"data\":{\"t\":5,\"i\":6},\"type\":\"message\",\"channel\":\"c\"}";
    CHECK_EQ_INT(cls(RL_DIALECT_RINGCAST, m2, &data), RL_IN_MESSAGE);
    CHECK(data.n == 13 && memcmp(data.p, "{\"t\":5,\"i\":6}", 13) == 0);
    CHECK_EQ_INT(cls(RL_DIALECT_RINGCAST,
                     "{\"type\":\"subscribed\",\"id\":1,\"channel\":\"bench:1\",\"n\":3}", &data),
                 RL_IN_SUBSCRIBED);
    CHECK_EQ_INT(cls(RL_DIALECT_RINGCAST, "{\"type\":\"published\",\"id\":1}", &data),
                 RL_IN_PUBLISHED);
    CHECK_EQ_INT(cls(RL_DIALECT_RINGCAST, "{\"type\":\"error\",\"code\":\"x\"}", &data),
                 RL_IN_ERROR);
    CHECK_EQ_INT(cls(RL_DIALECT_RINGCAST, "{\"type\":\"welcome\",\"node\":\"n\"}", &data),
                 RL_IN_OTHER);
    CHECK_EQ_INT(cls(RL_DIALECT_RINGCAST, "not json", &data), RL_IN_OTHER);

    CHECK_EQ_INT(cls(RL_DIALECT_SOCKETIO, "0{\"sid\":\"a\",\"pingInterval\":25000}", &data),
                 RL_IN_SIO_OPEN);
    CHECK_EQ_INT(cls(RL_DIALECT_SOCKETIO, "40{\"sid\":\"b\"}", &data), RL_IN_SIO_CONNECTED);
    CHECK_EQ_INT(cls(RL_DIALECT_SOCKETIO, "2", &data), RL_IN_SIO_PING);
    CHECK_EQ_INT(cls(RL_DIALECT_SOCKETIO, "42[\"subscribed\",\"bench:1\"]", &data),
                 RL_IN_SUBSCRIBED);
    const char *sm =
        "42[\"message\",{\"channel\":\"bench:1\",\"data\":{\"t\":8,\"i\":0,\"p\":\"\"}}]";
    CHECK_EQ_INT(cls(RL_DIALECT_SOCKETIO, sm, &data), RL_IN_MESSAGE);
    CHECK(data.n == 20 && memcmp(data.p, "{\"t\":8,\"i\":0,\"p\":\"\"}", 20) == 0);
    CHECK_EQ_INT(cls(RL_DIALECT_SOCKETIO, "3", &data), RL_IN_OTHER);
    /* a subscribe's ack (ringcast's --socketio-map answer) */
    CHECK_EQ_INT(cls(RL_DIALECT_SOCKETIO, "437[{\"ok\":true,\"channel\":\"bench:1\"}]", &data),
                 RL_IN_SUBSCRIBED);
    CHECK_EQ_INT(cls(RL_DIALECT_SOCKETIO, "437[{\"error\":\"forbidden\"}]", &data), RL_IN_ERROR);
}

int main(void)
{
    RUN(test_data_build_parse);
    RUN(test_client_messages);
    RUN(test_classify);
    return UNIT_DONE();
}
