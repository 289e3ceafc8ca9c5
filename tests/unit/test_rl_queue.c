/* ringload's waiting-room helpers: the per-connection token (expected value
 * computed with Python's hmac/base64), the join message, the classification
 * of the server's queue messages (shapes from docs/PROTOCOL.md), and the
 * per-tick table and its summary (values worked out by hand). */
#include <string.h>

#include "perf/ringload/queue.h"
#include "tests/unit/unit.h"

static void test_token(void)
{
    char tok[512];
    const char *secret = "bench-secret";
    int n = rl_queue_token(tok, sizeof(tok), (const uint8_t *)secret, strlen(secret), "w", 42);
    /* python3: b64url('{"alg":"HS256","typ":"JWT"}') . b64url('{"sub":"w42"}') .
     * b64url(HMAC-SHA256("bench-secret", those two joined by '.')) */
    const char *want = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ3NDIifQ."
                       "vS3iBhGAkOZCNNZIBhgC8bEAx5IBI8f_dnCRy42OQj0";
    CHECK_EQ_INT(n, (int)strlen(want));
    CHECK_EQ_STR(tok, want);
    CHECK_EQ_INT(rl_queue_token(tok, 40, (const uint8_t *)secret, strlen(secret), "w", 42), -1);
    CHECK(rl_user_prefix_ok("w"));
    CHECK(rl_user_prefix_ok(""));
    CHECK(rl_user_prefix_ok("bench-user:"));
    CHECK(!rl_user_prefix_ok("a\"b"));
    CHECK(!rl_user_prefix_ok("a\\b"));
    CHECK(!rl_user_prefix_ok("a\nb"));
    char long_p[80];
    memset(long_p, 'x', 65);
    long_p[65] = 0;
    CHECK(!rl_user_prefix_ok(long_p));
}

static void test_join_msg(void)
{
    char buf[256];
    int n = rl_queue_join_msg(buf, sizeof(buf), 1, "bench");
    CHECK(n > 0);
    CHECK_EQ_STR(buf, "{\"type\":\"queue.join\",\"id\":1,\"queue\":\"bench\"}");
    CHECK_EQ_INT(n, (int)strlen(buf));
    CHECK_EQ_INT(rl_queue_join_msg(buf, 20, 1, "bench"), -1);
}

static void test_classify(void)
{
    rl_qmsg q = {7, 7, 7, 7};
    const char *m = "{\"type\":\"queue.tick\",\"queue\":\"bench\",\"head\":998001,"
                    "\"ewma\":9.8000,\"tick\":1000,\"paused\":false,\"time\":1732200000123}";
    CHECK_EQ_INT(rl_queue_classify(m, strlen(m), &q), RL_QM_TICK);
    CHECK(q.time == 1732200000123LL);
    CHECK(q.head == 998001);
    CHECK(q.ticket == 7 && q.position == 7);
    /* members in another order */
    m = "{\"time\":5,\"head\":3,\"ewma\":0,\"queue\":\"q\",\"type\":\"queue.tick\"}";
    CHECK_EQ_INT(rl_queue_classify(m, strlen(m), &q), RL_QM_TICK);
    CHECK(q.time == 5 && q.head == 3);
    /* a tick without a usable time or head is not counted */
    q = (rl_qmsg){7, 7, 7, 7};
    m = "{\"type\":\"queue.tick\",\"queue\":\"q\",\"head\":3}";
    CHECK_EQ_INT(rl_queue_classify(m, strlen(m), &q), RL_QM_OTHER);
    m = "{\"type\":\"queue.tick\",\"head\":3,\"time\":\"5\"}";
    CHECK_EQ_INT(rl_queue_classify(m, strlen(m), &q), RL_QM_OTHER);
    m = "{\"type\":\"queue.tick\",\"head\":-1,\"time\":5}";
    CHECK_EQ_INT(rl_queue_classify(m, strlen(m), &q), RL_QM_OTHER);
    /* the old per-waiter message is nothing to count any more */
    m = "{\"type\":\"queue.position\",\"queue\":\"q\",\"position\":3,\"time\":5}";
    CHECK_EQ_INT(rl_queue_classify(m, strlen(m), &q), RL_QM_OTHER);
    CHECK(q.time == 7 && q.head == 7 && q.ticket == 7 && q.position == 7);
    m = "{\"type\":\"queue.joined\",\"id\":1,\"queue\":\"q\",\"ticket\":9,\"position\":4,"
        "\"eta\":null}";
    CHECK_EQ_INT(rl_queue_classify(m, strlen(m), &q), RL_QM_JOINED);
    CHECK(q.ticket == 9 && q.position == 4);
    CHECK(q.time == 7 && q.head == 7);
    m = "{\"type\":\"queue.joined\",\"id\":1,\"queue\":\"q\",\"position\":4}";
    CHECK_EQ_INT(rl_queue_classify(m, strlen(m), &q), RL_QM_OTHER);
    m = "{\"type\":\"admitted\",\"queue\":\"q\",\"token\":\"a.b.c\",\"expires\":1}";
    CHECK_EQ_INT(rl_queue_classify(m, strlen(m), &q), RL_QM_ADMITTED);
    m = "{\"type\":\"queue.left\",\"id\":2,\"queue\":\"q\"}";
    CHECK_EQ_INT(rl_queue_classify(m, strlen(m), &q), RL_QM_LEFT);
    m = "{\"type\":\"error\",\"id\":1,\"code\":\"queue_not_found\",\"message\":\"x\"}";
    CHECK_EQ_INT(rl_queue_classify(m, strlen(m), &q), RL_QM_ERROR);
    m = "{\"type\":\"message\",\"channel\":\"c\",\"data\":{\"time\":1}}";
    CHECK_EQ_INT(rl_queue_classify(m, strlen(m), &q), RL_QM_OTHER);
    /* a type that only starts like one, and broken JSON */
    m = "{\"type\":\"queue.ticks\",\"time\":1,\"head\":1}";
    CHECK_EQ_INT(rl_queue_classify(m, strlen(m), &q), RL_QM_OTHER);
    m = "{\"type\":\"queue.tick\",\"time\":1,\"head\":1";
    CHECK_EQ_INT(rl_queue_classify(m, strlen(m), &q), RL_QM_OTHER);
    CHECK_EQ_INT(rl_queue_classify("", 0, &q), RL_QM_OTHER);
    CHECK(q.time == 7 && q.head == 7);
}

/* The server's rule: max(ticket - head, 1), saturated. */
static void test_position(void)
{
    CHECK(rl_queue_position(5120, 5108) == 12);
    CHECK(rl_queue_position(5120, 5119) == 1);
    CHECK(rl_queue_position(5120, 5120) == 1);
    CHECK(rl_queue_position(5120, 9000) == 1);
    CHECK(rl_queue_position(INT64_MAX, -5) == INT64_MAX);
    CHECK(rl_queue_position(INT64_MIN, 5) == 1);
}

static void test_ticks(void)
{
    rl_ticks a = {0}, b = {0};
    uint64_t med, worst, mn, mx;
    CHECK_EQ_INT(rl_ticks_summary(&a, &med, &worst, &mn, &mx), 0);
    CHECK(med == 0 && worst == 0 && mn == 0 && mx == 0);
    /* tick 1000: 3 waiters, slowest 150 ms; tick 2000: 2, slowest 90 ms;
     * a late 1000 arrives after 2000 started */
    rl_ticks_add(&a, 1000, 100000);
    rl_ticks_add(&a, 1000, 150000);
    rl_ticks_add(&a, 2000, 90000);
    rl_ticks_add(&a, 1000, 20000);
    rl_ticks_add(&a, 2000, 10000);
    CHECK_EQ_INT(a.n, 2);
    CHECK(a.v[0].time == 1000 && a.v[0].n == 3 && a.v[0].max_us == 150000);
    CHECK(a.v[1].time == 2000 && a.v[1].n == 2 && a.v[1].max_us == 90000);
    /* out of order: an older tick goes in front */
    rl_ticks_add(&a, 500, 5000);
    CHECK_EQ_INT(a.n, 3);
    CHECK(a.v[0].time == 500 && a.v[1].time == 1000 && a.v[2].time == 2000);
    /* b: another worker's view of 1000 and 2000, plus 3000 */
    rl_ticks_add(&b, 1000, 170000);
    rl_ticks_add(&b, 2000, 80000);
    rl_ticks_add(&b, 3000, 40000);
    rl_ticks_merge(&a, &b);
    CHECK_EQ_INT(a.n, 4);
    CHECK(a.v[1].n == 4 && a.v[1].max_us == 170000);
    CHECK(a.v[2].n == 3 && a.v[2].max_us == 90000);
    CHECK(a.v[3].time == 3000 && a.v[3].n == 1);
    CHECK_EQ_INT(b.n, 3); /* src untouched */
    CHECK(b.v[0].n == 1 && b.v[0].max_us == 170000);
    /* maxima 5000, 170000, 90000, 40000: sorted 5k 40k 90k 170k, lower middle 40k */
    CHECK_EQ_INT(rl_ticks_summary(&a, &med, &worst, &mn, &mx), 4);
    CHECK(med == 40000);
    CHECK(worst == 170000);
    CHECK(mn == 1 && mx == 4);
    rl_ticks_add(&a, 4000, 60000); /* odd count: 5k 40k 60k 90k 170k -> 60k */
    rl_ticks_summary(&a, &med, &worst, &mn, &mx);
    CHECK(med == 60000);
    /* many ticks: the table grows and stays sorted */
    rl_ticks c = {0};
    for (int i = 200; i > 0; i--)
        rl_ticks_add(&c, i * 1000, (uint64_t)i);
    CHECK_EQ_INT(c.n, 200);
    int sorted = 1;
    for (uint32_t i = 1; i < c.n; i++)
        sorted &= c.v[i - 1].time < c.v[i].time;
    CHECK(sorted);
    CHECK(c.v[0].time == 1000 && c.v[0].max_us == 1);
    rl_ticks_free(&a);
    rl_ticks_free(&b);
    rl_ticks_free(&c);
    CHECK(a.n == 0 && a.v == NULL);
}

int main(void)
{
    RUN(test_token);
    RUN(test_join_msg);
    RUN(test_classify);
    RUN(test_position);
    RUN(test_ticks);
    return UNIT_DONE();
}
