/* rc_bridge against a real redis-server: connect, batched (UN)SUBSCRIBE
 * (3000 channels, more than one command's batch), subscribe/unsubscribe
 * sequences within and across relay turns, incoming messages (delivered,
 * echoes, bad payloads, "dropped" notices, unwanted channels), outgoing
 * PUBLISH with order kept, and an outage: SIGKILL, bounded backlog with exact
 * drop counts, restart on the same port, resubscription with after_gap, the
 * held publishes and the dropped notice in order. A second, independent
 * connection (hiredis's blocking API) checks what Redis sees. Skipped (with a
 * message) only when redis-server is not installed. */
#include <errno.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/common.h"
#include "engine/config.h"
#include "net/uring.h"
#include "channels/bridge.h"
#include "tests/unit/unit.h"

#define NODE    "nodeA"
#define PREFIX  "t:"
#define BACKLOG 4096

static struct io_uring ring;
static rc_bridge *br;
static rc_bridge_stats st;
static rc_config cfg;
static int port;
static pid_t pid;

#include "tests/unit/redis_server.h"

/* ---- what the bridge told us --------------------------------------------- */

typedef struct subrec {
    char chan[300];
    bool gap;
} subrec;

typedef struct msgrec {
    char chan[300], event[80], data[256];
} msgrec;

static struct {
    subrec *subs;
    size_t nsubs, capsubs;
    msgrec msgs[64];
    size_t nmsgs;
    int link_down;
    char lost_chan[64][300], lost_node[64][64];
    size_t nlost;
} R;

static void cp(char *dst, size_t cap, rc_str s)
{
    size_t n = RC_MIN(s.n, cap - 1);
    if (n)
        memcpy(dst, s.p, n);
    dst[n] = '\0';
}

static void o_message(void *u, rc_str chan, const rc_bridge_msg *bm)
{
    rc_str event = bm->event, data = bm->data;
    if (R.nmsgs < 64) {
        msgrec *m = &R.msgs[R.nmsgs];
        cp(m->chan, sizeof(m->chan), chan);
        cp(m->event, sizeof(m->event), event);
        cp(m->data, sizeof(m->data), data);
    }
    R.nmsgs++;
}

static void o_subscribed(void *u, rc_str chan, bool after_gap)
{
    if (R.nsubs == R.capsubs) {
        R.capsubs = R.capsubs ? R.capsubs * 2 : 256;
        R.subs = rc_realloc(R.subs, R.capsubs * sizeof(*R.subs));
    }
    cp(R.subs[R.nsubs].chan, sizeof(R.subs[R.nsubs].chan), chan);
    R.subs[R.nsubs].gap = after_gap;
    R.nsubs++;
}

static void o_link_down(void *u)
{
    R.link_down++;
}

static void o_lost(void *u, rc_str chan, const char *node)
{
    if (R.nlost < 64) {
        cp(R.lost_chan[R.nlost], sizeof(R.lost_chan[0]), chan);
        snprintf(R.lost_node[R.nlost], sizeof(R.lost_node[0]), "%s", node);
    }
    R.nlost++;
}

static void o_fence(void *u, rc_str chan, uint64_t fence)
{
}

static const rc_bridge_ops ops = {o_message, o_subscribed, o_link_down, o_lost, o_fence, NULL};

/* subscribed callbacks for chan; *gaps gets how many had after_gap set. */
static int subs_for(const char *chan, int *gaps)
{
    int n = 0, g = 0;
    for (size_t i = 0; i < R.nsubs; i++)
        if (strcmp(R.subs[i].chan, chan) == 0) {
            n++;
            g += R.subs[i].gap;
        }
    if (gaps)
        *gaps = g;
    return n;
}

static rc_str S(const char *s)
{
    return (rc_str){s, strlen(s)};
}

static uint64_t ctr(const rc_counter *c)
{
    return rc_counter_get(c);
}

/* ---- the loop ------------------------------------------------------------ */

/* One relay turn: tick, submit, wait up to wait_ms for completions, forward. */
static void turn(int wait_ms)
{
    rc_bridge_tick(br, rc_now_ms());
    struct __kernel_timespec ts = {0, (long long)wait_ms * 1000000LL};
    struct io_uring_cqe *cqe;
    io_uring_submit_and_wait_timeout(&ring, &cqe, 1, &ts, NULL);
    unsigned head, n = 0;
    io_uring_for_each_cqe (&ring, head, cqe) {
        n++;
        if (rc_ud_op(cqe->user_data) == RC_UOP_REDIS)
            rc_bridge_on_cqe(br, cqe);
    }
    io_uring_cq_advance(&ring, n);
}

/* A tick and a submit, but no completion handled: nothing Redis says can
 * reach the bridge, so a SUBSCRIBE sent now stays unconfirmed. */
static void tick_only(void)
{
    rc_bridge_tick(br, rc_now_ms());
    io_uring_submit(&ring);
}

/* Runs turns until expr holds or ms pass; its value is whether expr held. */
#define WAIT(expr, ms)                                                                             \
    ({                                                                                             \
        uint64_t end_ = rc_now_ms() + (ms);                                                        \
        int ok_;                                                                                   \
        while (!(ok_ = !!(expr)) && rc_now_ms() < end_)                                            \
            turn(5);                                                                               \
        ok_;                                                                                       \
    })

static void run_ms(int ms)
{
    uint64_t end = rc_now_ms() + (uint64_t)ms;
    while (rc_now_ms() < end)
        turn(5);
}

/* ---- the plain connection ------------------------------------------------ */

static redisContext *plain(void)
{
    struct timeval tv = {2, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (!c || c->err) {
        fprintf(stderr, "plain connection: %s\n", c ? c->errstr : "OOM");
        abort();
    }
    redisSetTimeout(c, tv);
    return c;
}

static long long numsub(redisContext *c, const char *chan)
{
    char name[300];
    snprintf(name, sizeof(name), PREFIX "ch:%s", chan);
    redisReply *r = redisCommand(c, "PUBSUB NUMSUB %s", name);
    long long n = -1;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[1]->type == REDIS_REPLY_INTEGER)
        n = r->element[1]->integer;
    freeReplyObject(r);
    return n;
}

/* PUBLISH on chan's Redis channel; Redis's answer (receivers), -1 on error. */
static long long publish_raw(redisContext *c, const char *chan, const char *payload)
{
    char name[300];
    snprintf(name, sizeof(name), PREFIX "ch:%s", chan);
    redisReply *r = redisCommand(c, "PUBLISH %s %b", name, payload, strlen(payload));
    long long n = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    freeReplyObject(r);
    return n;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* PUBSUB CHANNELS PREFIX"ch:*" as one sorted, comma-joined string. */
static char *channels(redisContext *c)
{
    redisReply *r = redisCommand(c, "PUBSUB CHANNELS %s", PREFIX "ch:*");
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(r);
        return rc_strndup("<error>", 7);
    }
    char **v = rc_malloc((r->elements + 1) * sizeof(*v));
    size_t total = 1;
    for (size_t i = 0; i < r->elements; i++) {
        v[i] = r->element[i]->str;
        total += r->element[i]->len + 1;
    }
    qsort(v, r->elements, sizeof(*v), cmp_str);
    char *out = rc_malloc(total);
    out[0] = '\0';
    for (size_t i = 0; i < r->elements; i++) {
        if (i)
            strcat(out, ",");
        strcat(out, v[i]);
    }
    free(v);
    freeReplyObject(r);
    return out;
}

static int channels_count(redisContext *c)
{
    redisReply *r = redisCommand(c, "PUBSUB CHANNELS %s", PREFIX "ch:*");
    int n = r && r->type == REDIS_REPLY_ARRAY ? (int)r->elements : -1;
    freeReplyObject(r);
    return n;
}

/* The next pub/sub message's payload on a subscribed plain connection into
 * out; 0, or -1 on timeout or anything else. */
static int next_message(redisContext *c, char *out, size_t cap)
{
    redisReply *r = NULL;
    if (redisGetReply(c, (void **)&r) != REDIS_OK || !r)
        return -1;
    int ok = r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
             r->element[0]->type == REDIS_REPLY_STRING &&
             strcmp(r->element[0]->str, "message") == 0 &&
             r->element[2]->type == REDIS_REPLY_STRING && r->element[2]->len < cap;
    if (ok)
        snprintf(out, cap, "%s", r->element[2]->str);
    freeReplyObject(r);
    return ok ? 0 : -1;
}

/* How many times Redis ran verb (INFO commandstats) since CONFIG RESETSTAT. */
static long calls(redisContext *c, const char *verb)
{
    redisReply *r = redisCommand(c, "INFO commandstats");
    long n = -1;
    char key[64];
    snprintf(key, sizeof(key), "cmdstat_%s:calls=", verb);
    if (r && r->type == REDIS_REPLY_STRING) {
        const char *p = strstr(r->str, key);
        n = p ? strtol(p + strlen(key), NULL, 10) : 0;
    }
    freeReplyObject(r);
    return n;
}

static void resetstat(redisContext *c)
{
    freeReplyObject(redisCommand(c, "CONFIG RESETSTAT"));
}

static redisContext *plain_sub(const char *chan)
{
    redisContext *c = plain();
    char name[300];
    snprintf(name, sizeof(name), PREFIX "ch:%s", chan);
    redisReply *r = redisCommand(c, "SUBSCRIBE %s", name);
    CHECK(r && r->type == REDIS_REPLY_ARRAY && r->elements == 3);
    freeReplyObject(r);
    return c;
}

/* ---- tests --------------------------------------------------------------- */

static redisContext *pc; /* plain command connection */

static void test_connect(void)
{
    br = rc_bridge_new(&ring, &cfg, &ops, NULL, &st);
    CHECK(!rc_bridge_ready(br)); /* connects on the first tick */
    CHECK(WAIT(rc_bridge_ready(br), 3000));
    CHECK_EQ_INT(ctr(&st.up_command), 1);
    CHECK_EQ_INT(ctr(&st.up_subscriber), 1);
    CHECK_EQ_INT(ctr(&st.reconnects), 0);
    pc = plain();
}

static void test_subscribe(void)
{
    CHECK_EQ_INT(rc_bridge_subscribe(br, S("news")), 0);
    CHECK(WAIT(subs_for("news", NULL) >= 1, 2000));
    run_ms(50); /* no second confirmation */
    int gaps = -1;
    CHECK_EQ_INT(subs_for("news", &gaps), 1);
    CHECK_EQ_INT(gaps, 0);
    CHECK_EQ_INT(numsub(pc, "news"), 1);
    char *ch = channels(pc);
    CHECK_EQ_STR(ch, PREFIX "ch:news");
    free(ch);
    CHECK_EQ_INT(ctr(&st.subscriptions), 1);

    /* 3000 in one turn: three SUBSCRIBE commands (1024 + 1024 + 952). */
    enum { N = 3000 };
    resetstat(pc);
    int zeros = 0;
    for (int i = 0; i < N; i++) {
        char c[16];
        snprintf(c, sizeof(c), "b%d", i);
        zeros += rc_bridge_subscribe(br, S(c)) == 0;
    }
    CHECK_EQ_INT(zeros, N);
    CHECK(WAIT(R.nsubs >= 1 + N, 5000));
    run_ms(50);
    CHECK_EQ_INT(R.nsubs, 1 + N);
    int once = 0, nogap = 0;
    for (int i = 0; i < N; i++) {
        char c[16];
        snprintf(c, sizeof(c), "b%d", i);
        int g = -1;
        once += subs_for(c, &g) == 1;
        nogap += g == 0;
    }
    CHECK_EQ_INT(once, N);
    CHECK_EQ_INT(nogap, N);
    CHECK_EQ_INT(ctr(&st.subscriptions), 1 + N);

    /* NUMSUB of all 3000 in one command: each 1. */
    const char **argv = rc_malloc((N + 2) * sizeof(*argv));
    char(*names)[24] = rc_malloc(N * sizeof(*names));
    argv[0] = "PUBSUB";
    argv[1] = "NUMSUB";
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof(names[i]), PREFIX "ch:b%d", i);
        argv[i + 2] = names[i];
    }
    redisReply *r = redisCommandArgv(pc, N + 2, argv, NULL);
    int ones = 0;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 * N)
        for (int i = 0; i < N; i++)
            ones += r->element[2 * i + 1]->integer == 1 &&
                    strcmp(r->element[2 * i]->str, names[i]) == 0;
    CHECK_EQ_INT(ones, N);
    freeReplyObject(r);
    CHECK_EQ_INT(channels_count(pc), 1 + N);
    CHECK_EQ_INT(calls(pc, "subscribe"), 3); /* ceil(3000 / 1024) commands */

    /* And all of them away again in one turn: three UNSUBSCRIBEs. */
    for (int i = 0; i < N; i++)
        rc_bridge_unsubscribe(br, S(names[i] + strlen(PREFIX "ch:")));
    CHECK(WAIT(channels_count(pc) == 1, 3000));
    ch = channels(pc);
    CHECK_EQ_STR(ch, PREFIX "ch:news");
    free(ch);
    CHECK_EQ_INT(ctr(&st.subscriptions), 1);
    CHECK_EQ_INT(R.nsubs, 1 + N); /* no callbacks for unsubscribes */
    CHECK_EQ_INT(calls(pc, "unsubscribe"), 3);
    free(names);
    free(argv);
}

static void test_sequences(void)
{
    size_t n0 = R.nsubs;

    /* Confirmed, then unsubscribed: NUMSUB 1 -> 0. */
    CHECK_EQ_INT(rc_bridge_subscribe(br, S("u1")), 0);
    CHECK(WAIT(subs_for("u1", NULL) == 1, 2000));
    CHECK_EQ_INT(numsub(pc, "u1"), 1);
    rc_bridge_unsubscribe(br, S("u1"));
    CHECK(WAIT(numsub(pc, "u1") == 0, 2000));

    /* Within one turn. s1: sub, unsub, sub -> subscribed, one callback.
     * s2: sub, unsub -> never subscribed, no callback. */
    CHECK_EQ_INT(rc_bridge_subscribe(br, S("s1")), 0);
    rc_bridge_unsubscribe(br, S("s1"));
    CHECK_EQ_INT(rc_bridge_subscribe(br, S("s1")), 0);
    CHECK_EQ_INT(rc_bridge_subscribe(br, S("s2")), 0);
    rc_bridge_unsubscribe(br, S("s2"));

    /* Across turns, each change while the previous SUBSCRIBE is unconfirmed.
     * x1 ends subscribed, x2 ends unsubscribed. */
    CHECK_EQ_INT(rc_bridge_subscribe(br, S("x1")), 0);
    CHECK_EQ_INT(rc_bridge_subscribe(br, S("x2")), 0);
    tick_only();
    rc_bridge_unsubscribe(br, S("x1"));
    rc_bridge_unsubscribe(br, S("x2"));
    tick_only();
    int x1 = rc_bridge_subscribe(br, S("x1"));
    int x2 = rc_bridge_subscribe(br, S("x2"));
    CHECK_EQ_INT(x1, 0); /* not confirmed yet: the answer must wait for Redis */
    CHECK_EQ_INT(x2, 0);
    tick_only();
    rc_bridge_unsubscribe(br, S("x1"));
    rc_bridge_unsubscribe(br, S("x2"));
    tick_only();
    CHECK_EQ_INT(rc_bridge_subscribe(br, S("x1")), 0);

    CHECK(WAIT(subs_for("s1", NULL) >= 1 && subs_for("x1", NULL) >= 1, 2000));
    run_ms(200); /* late, wrong callbacks or commands would show now */
    int g1 = -1, g2 = -1;
    CHECK_EQ_INT(subs_for("s1", &g1), 1);
    CHECK_EQ_INT(subs_for("x1", &g2), 1);
    CHECK_EQ_INT(g1 + g2, 0);
    CHECK_EQ_INT(subs_for("s2", NULL), 0);
    CHECK_EQ_INT(subs_for("x2", NULL), 0);
    CHECK_EQ_INT(numsub(pc, "s1"), 1);
    CHECK_EQ_INT(numsub(pc, "x1"), 1);
    CHECK_EQ_INT(numsub(pc, "s2"), 0);
    CHECK_EQ_INT(numsub(pc, "x2"), 0);
    char *ch = channels(pc);
    CHECK_EQ_STR(ch, PREFIX "ch:news," PREFIX "ch:s1," PREFIX "ch:x1");
    free(ch);
    CHECK_EQ_INT(ctr(&st.subscriptions), 3);

    /* Confirmed l1: unsub and sub again in one turn. It stays subscribed; an
     * answer of 0 promises a callback, 1 means none follows. */
    CHECK_EQ_INT(rc_bridge_subscribe(br, S("l1")), 0);
    CHECK(WAIT(subs_for("l1", NULL) == 1, 2000));
    rc_bridge_unsubscribe(br, S("l1"));
    int l1 = rc_bridge_subscribe(br, S("l1"));
    run_ms(200);
    CHECK_EQ_INT(subs_for("l1", NULL), l1 == 0 ? 2 : 1);
    CHECK_EQ_INT(numsub(pc, "l1"), 1);

    /* Confirmed l2: unsub, its UNSUBSCRIBE goes out, then sub again before
     * Redis answered: subscribed again, one new callback. */
    CHECK_EQ_INT(rc_bridge_subscribe(br, S("l2")), 0);
    CHECK(WAIT(subs_for("l2", NULL) == 1, 2000));
    rc_bridge_unsubscribe(br, S("l2"));
    tick_only();
    CHECK_EQ_INT(rc_bridge_subscribe(br, S("l2")), 0);
    CHECK(WAIT(subs_for("l2", NULL) == 2, 2000));
    run_ms(100);
    CHECK_EQ_INT(subs_for("l2", NULL), 2);
    CHECK_EQ_INT(numsub(pc, "l2"), 1);

    /* Everything but news away, for the tests that follow. */
    const char *away[] = {"s1", "x1", "l1", "l2"};
    for (int i = 0; i < 4; i++)
        rc_bridge_unsubscribe(br, S(away[i]));
    CHECK(WAIT(channels_count(pc) == 1, 2000));
    CHECK_EQ_INT(ctr(&st.subscriptions), 1);
    CHECK_EQ_INT(R.nsubs - n0, 6 + (l1 == 0)); /* u1 s1 x1 l1 l2 l2 (+l1) */
}

static void test_messages(void)
{
    CHECK_EQ_INT(rc_bridge_subscribe(br, S("m")), 0);
    CHECK(WAIT(subs_for("m", NULL) == 1, 2000));
    uint64_t in0 = ctr(&st.messages_in);
    size_t m0 = R.nmsgs;

    CHECK_EQ_INT(publish_raw(pc, "m", "{\"event\":\"e\",\"data\":{\"k\":1}}"), 1);
    CHECK(WAIT(R.nmsgs == m0 + 1, 2000));
    CHECK_EQ_STR(R.msgs[m0].chan, "m");
    CHECK_EQ_STR(R.msgs[m0].event, "e");
    CHECK_EQ_STR(R.msgs[m0].data, "{\"k\":1}");

    /* No event: "message" (the spec's default); another node's id: delivered. */
    CHECK_EQ_INT(publish_raw(pc, "m", "{\"data\":\"x\"}"), 1);
    CHECK_EQ_INT(publish_raw(pc, "m", "{\"node\":\"nodeB\",\"event\":\"f\",\"data\":[2]}"), 1);
    CHECK(WAIT(R.nmsgs == m0 + 3, 2000));
    CHECK_EQ_STR(R.msgs[m0 + 1].event, "message");
    CHECK_EQ_STR(R.msgs[m0 + 1].data, "\"x\"");
    CHECK_EQ_STR(R.msgs[m0 + 2].event, "f");
    CHECK_EQ_STR(R.msgs[m0 + 2].data, "[2]");

    /* Our own id: an echo, dropped. */
    uint64_t e0 = ctr(&st.echoes), b0 = ctr(&st.bad_messages);
    CHECK_EQ_INT(publish_raw(pc, "m", "{\"node\":\"" NODE "\",\"event\":\"e\",\"data\":1}"), 1);
    /* Bad: not JSON, no data, an event that is not a string, bad event name. */
    CHECK_EQ_INT(publish_raw(pc, "m", "not json"), 1);
    CHECK_EQ_INT(publish_raw(pc, "m", "{\"event\":\"e\"}"), 1);
    CHECK_EQ_INT(publish_raw(pc, "m", "{\"event\":5,\"data\":1}"), 1);
    CHECK_EQ_INT(publish_raw(pc, "m", "{\"event\":\"a b\",\"data\":1}"), 1);
    CHECK(WAIT(ctr(&st.messages_in) == in0 + 8, 2000));
    run_ms(20);
    CHECK_EQ_INT(ctr(&st.echoes) - e0, 1);
    CHECK_EQ_INT(ctr(&st.bad_messages) - b0, 4);
    CHECK_EQ_INT(R.nmsgs, m0 + 3);

    /* Another node's "dropped" notice: ops->lost, not a message. */
    size_t l0 = R.nlost;
    CHECK_EQ_INT(publish_raw(pc, "m", "{\"node\":\"nodeB\",\"dropped\":true}"), 1);
    CHECK(WAIT(R.nlost == l0 + 1, 2000));
    CHECK_EQ_STR(R.lost_chan[l0], "m");
    CHECK_EQ_STR(R.lost_node[l0], "nodeB");
    CHECK_EQ_INT(R.nmsgs, m0 + 3);

    /* No longer wanted (the UNSUBSCRIBE has not gone out yet, so Redis still
     * delivers): counted as unwanted, not delivered. */
    uint64_t u0 = ctr(&st.unwanted);
    rc_bridge_unsubscribe(br, S("m"));
    CHECK_EQ_INT(publish_raw(pc, "m", "{\"event\":\"e\",\"data\":3}"), 1);
    CHECK(WAIT(ctr(&st.unwanted) == u0 + 1, 2000));
    CHECK(WAIT(numsub(pc, "m") == 0, 2000));
    CHECK_EQ_INT(publish_raw(pc, "m", "{\"event\":\"e\",\"data\":4}"), 0);
    run_ms(20);
    CHECK_EQ_INT(R.nmsgs, m0 + 3);
    CHECK_EQ_INT(R.nlost, l0 + 1);
}

static void test_publish(void)
{
    redisContext *ps = plain_sub("out");
    char got[256];
    rc_bridge_publish(br, S("out"), S("ev"), S("[1,2]"), NULL);
    CHECK(WAIT(!rc_bridge_busy(br), 2000));
    CHECK_EQ_INT(next_message(ps, got, sizeof(got)), 0);
    CHECK_EQ_STR(got, "{\"node\":\"" NODE "\",\"event\":\"ev\",\"data\":[1,2]}");

    /* 1000 in order. Batches of 40 (about 3.2 KB of commands) keep each
     * turn's unsent bytes within the 4096-byte backlog bound. */
    uint64_t out0 = ctr(&st.messages_out), d0 = ctr(&st.publish_dropped);
    for (int i = 0; i < 1000; i += 40) {
        for (int j = i; j < i + 40 && j < 1000; j++) {
            char d[16];
            snprintf(d, sizeof(d), "%d", j);
            rc_bridge_publish(br, S("out"), S("ev"), S(d), NULL);
        }
        CHECK(WAIT(!rc_bridge_busy(br), 2000));
    }
    CHECK_EQ_INT(ctr(&st.messages_out) - out0, 1000);
    CHECK_EQ_INT(ctr(&st.publish_dropped) - d0, 0);
    int inorder = 0;
    for (int j = 0; j < 1000; j++) {
        char want[128];
        snprintf(want, sizeof(want), "{\"node\":\"" NODE "\",\"event\":\"ev\",\"data\":%d}", j);
        if (next_message(ps, got, sizeof(got)) < 0)
            break;
        inorder += strcmp(got, want) == 0;
    }
    CHECK_EQ_INT(inorder, 1000);
    redisFree(ps);
}

static void test_outage(void)
{
    CHECK_EQ_INT(rc_bridge_subscribe(br, S("o1")), 0);
    CHECK(WAIT(subs_for("o1", NULL) == 1, 2000));
    CHECK(WAIT(!rc_bridge_busy(br), 2000));
    uint64_t d0 = ctr(&st.publish_dropped), r0 = ctr(&st.reconnects);
    size_t n0 = R.nsubs;
    CHECK_EQ_INT(R.link_down, 0);

    redisFree(pc);
    pc = NULL;
    stop_redis(pid);
    pid = -1;
    CHECK(WAIT(R.link_down >= 1 && ctr(&st.up_command) == 0 && ctr(&st.up_subscriber) == 0, 3000));
    CHECK_EQ_INT(R.link_down, 1);
    CHECK(!rc_bridge_ready(br));
    CHECK_EQ_INT(rc_bridge_subscribe(br, S("o2")), 1); /* answered locally */
    CHECK_EQ_INT(ctr(&st.subscriptions), 0);

    /* 100 publishes of equal size: each held entry costs the channel's
     * name plus the envelope; what does not fit in BACKLOG is dropped. */
    enum { NPUB = 100 };
    char env[128];
    int envlen =
        snprintf(env, sizeof(env), "{\"node\":\"%s\",\"event\":\"ev\",\"data\":%d}", NODE, 1000);
    size_t per = strlen("out") + (size_t)envlen;
    size_t fit = BACKLOG / per;
    CHECK(fit > 0 && fit < NPUB);
    for (int i = 0; i < NPUB; i++) {
        char d[16];
        snprintf(d, sizeof(d), "%d", 1000 + i);
        rc_bridge_publish(br, S("out"), S("ev"), S(d), NULL);
    }
    CHECK_EQ_INT(ctr(&st.publish_dropped) - d0, NPUB - fit);
    run_ms(300); /* a few refused attempts */
    CHECK_EQ_INT(ctr(&st.backlog_bytes), fit * per);
    CHECK(ctr(&st.connect_failures) >= 1);
    CHECK_EQ_INT(ctr(&st.publish_dropped) - d0, NPUB - fit);

    /* Same port. The plain subscriber is in place before the bridge's next
     * turn, so it sees everything the bridge sends after the reconnect. */
    pid = start_redis(port, NULL);
    CHECK(pid > 0);
    if (pid <= 0)
        return;
    pc = plain();
    redisContext *ps = plain_sub("out");
    CHECK(WAIT(rc_bridge_ready(br), 6000));
    CHECK(WAIT(R.nsubs >= n0 + 3 && !rc_bridge_busy(br), 3000));
    run_ms(50);
    int g = -1;
    CHECK_EQ_INT(subs_for("news", &g) - 1, 1); /* one more, after the gap */
    CHECK_EQ_INT(g, 1);
    CHECK_EQ_INT(subs_for("o1", &g), 2);
    CHECK_EQ_INT(g, 1);
    CHECK_EQ_INT(subs_for("o2", &g), 1);
    CHECK_EQ_INT(g, 1);
    CHECK_EQ_INT(R.nsubs - n0, 3);
    CHECK_EQ_INT(numsub(pc, "news"), 1);
    CHECK_EQ_INT(numsub(pc, "o1"), 1);
    CHECK_EQ_INT(numsub(pc, "o2"), 1);
    char *ch = channels(pc);
    CHECK_EQ_STR(ch, PREFIX "ch:news," PREFIX "ch:o1," PREFIX "ch:o2," PREFIX "ch:out");
    free(ch);
    CHECK_EQ_INT(ctr(&st.subscriptions), 3);
    CHECK_EQ_INT(ctr(&st.reconnects) - r0, 2);
    CHECK_EQ_INT(ctr(&st.up_command), 1);
    CHECK_EQ_INT(ctr(&st.up_subscriber), 1);
    CHECK_EQ_INT(ctr(&st.backlog_bytes), 0);

    /* The held ones, in order, then the notice of the drops (bridge.h). */
    char got[256];
    int inorder = 0;
    for (size_t i = 0; i < fit; i++) {
        char want[128];
        snprintf(want, sizeof(want), "{\"node\":\"%s\",\"event\":\"ev\",\"data\":%zu}", NODE,
                 1000 + i);
        if (next_message(ps, got, sizeof(got)) < 0)
            break;
        inorder += strcmp(got, want) == 0;
    }
    CHECK_EQ_INT(inorder, fit);
    CHECK_EQ_INT(next_message(ps, got, sizeof(got)), 0);
    CHECK_EQ_STR(got, "{\"node\":\"" NODE "\",\"dropped\":true}");
    /* Nothing else: a PING from the plain side comes back as the next reply. */
    redisReply *r = redisCommand(ps, "PING");
    CHECK(r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
          strcmp(r->element[0]->str, "pong") == 0);
    freeReplyObject(r);
    redisFree(ps);
    CHECK_EQ_INT(ctr(&st.publish_dropped) - d0, NPUB - fit);

    /* Messages flow again through the resubscribed channel. */
    size_t m0 = R.nmsgs;
    CHECK_EQ_INT(publish_raw(pc, "o2", "{\"data\":7}"), 1);
    CHECK(WAIT(R.nmsgs == m0 + 1, 2000));
    CHECK_EQ_STR(R.msgs[m0].chan, "o2");
    CHECK_EQ_STR(R.msgs[m0].data, "7");
}

/* ---- the send window, and publishes lost with a connection --------------- */

/* bridge.h: while READY the command connection takes up to max(64 KiB,
 * backlog) of unsent commands, so 200 publishes in one turn (about 16 KB)
 * all go out even with a 4096-byte backlog. */
static void test_send_window(void)
{
    CHECK(WAIT(rc_bridge_ready(br) && !rc_bridge_busy(br), 3000));
    uint64_t d0 = ctr(&st.publish_dropped), o0 = ctr(&st.messages_out);
    for (int i = 0; i < 200; i++)
        rc_bridge_publish(br, S("bound"), S("ev"), S("1000"), NULL);
    CHECK_EQ_INT(ctr(&st.publish_dropped) - d0, 0);
    CHECK_EQ_INT(ctr(&st.messages_out) - o0, 200);
    CHECK(WAIT(!rc_bridge_busy(br), 3000));
}

/* Publishes sent but unanswered when the command connection breaks count as
 * dropped and are announced with {"node":ID,"dropped":true}, like those
 * that did not fit. */
static void test_lost_with_connection(void)
{
    redisContext *ps = plain_sub("out2");
    CHECK(WAIT(rc_bridge_ready(br) && !rc_bridge_busy(br), 3000));
    freeReplyObject(redisCommand(pc, "CLIENT PAUSE 3000 WRITE"));
    uint64_t d0 = ctr(&st.publish_dropped);
    for (int i = 0; i < 3; i++)
        rc_bridge_publish(br, S("out2"), S("ev"), S("5"), NULL);
    run_ms(100); /* sent; Redis holds them unanswered */
    freeReplyObject(redisCommand(pc, "CLIENT KILL TYPE normal SKIPME yes"));
    CHECK(WAIT(ctr(&st.publish_dropped) - d0 == 3, 2000));
    freeReplyObject(redisCommand(pc, "CLIENT UNPAUSE"));
    CHECK(WAIT(rc_bridge_ready(br) && !rc_bridge_busy(br), 3000));
    run_ms(100);
    char got[256] = "";
    CHECK_EQ_INT(next_message(ps, got, sizeof(got)), 0);
    CHECK_EQ_STR(got, "{\"node\":\"" NODE "\",\"dropped\":true}");
    redisFree(ps);
}

static void test_close(void)
{
    rc_bridge_close(br);
    CHECK(WAIT(rc_bridge_idle(br), 2000));
    CHECK(!rc_bridge_ready(br));
    rc_bridge_free(br);
    br = NULL;
    /* The bridge's connections are gone from Redis: NUMSUB falls to 0. */
    if (pc) {
        long long n = -1;
        for (int i = 0; i < 100 && (n = numsub(pc, "news")) != 0; i++)
            sleep_ms(10);
        CHECK_EQ_INT(n, 0);
    }
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    if (!have_redis()) {
        printf("redis-server not found: test_redis_bridge skipped\n");
        return UNIT_DONE();
    }
    if (io_uring_queue_init(256, &ring, 0) < 0) {
        fprintf(stderr, "io_uring_queue_init failed\n");
        return 1;
    }
    port = free_port();
    pid = start_redis(port, NULL);
    CHECK(pid > 0);
    if (pid > 0) {
        snprintf(cfg.redis_url, sizeof(cfg.redis_url), "redis://127.0.0.1:%d", port);
        snprintf(cfg.redis_prefix, sizeof(cfg.redis_prefix), "%s", PREFIX);
        snprintf(cfg.node_id, sizeof(cfg.node_id), "%s", NODE);
        cfg.redis_backlog_bytes = BACKLOG;
        cfg.redis_ping_ms = 1000;
        RUN(test_connect);
        RUN(test_subscribe);
        RUN(test_sequences);
        RUN(test_messages);
        RUN(test_publish);
        RUN(test_outage);
        RUN(test_send_window);
        RUN(test_lost_with_connection);
        RUN(test_close);
    }
    if (pc)
        redisFree(pc);
    stop_redis(pid);
    io_uring_queue_exit(&ring);
    free(R.subs);
    return UNIT_DONE();
}
