/* rc_redis against a real redis-server: connect, a 10,000-command pipeline,
 * a 1 MiB value, AUTH/SELECT (good and wrong password, backoff), pub/sub,
 * server death with pending callbacks, and reconnection to a restarted
 * server. Skipped (with a message) only when redis-server is not installed. */
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/common.h"
#include "net/uring.h"
#include "redis/client.h"
#include "tests/unit/unit.h"

static struct io_uring ring;

/* ---- redis-server processes ---------------------------------------------- */

#include "tests/unit/redis_server.h"

/* ---- the loop ------------------------------------------------------------ */

#define MAXC 4
static rc_redis *clients[MAXC];

typedef struct ctx {
    int ready, down;
    char reason[256];
    uint64_t down_ms[8];
    int pushes;
    char push[8][3][64]; /* first three elements of each push, as strings */
    size_t push_len[8][3];
} ctx;

static void h_ready(void *u)
{
    ((ctx *)u)->ready++;
}

static void h_down(void *u, const char *reason)
{
    ctx *c = u;
    if (c->down < 8)
        c->down_ms[c->down] = rc_now_ms();
    c->down++;
    snprintf(c->reason, sizeof(c->reason), "%s", reason);
}

static void h_push(void *u, redisReply *rep)
{
    ctx *c = u;
    if (c->pushes < 8 && rep->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < 3 && i < rep->elements; i++) {
            redisReply *e = rep->element[i];
            if (e->type == REDIS_REPLY_STRING) {
                size_t n = RC_MIN(e->len, (size_t)63);
                memcpy(c->push[c->pushes][i], e->str, n);
                c->push_len[c->pushes][i] = e->len;
            } else if (e->type == REDIS_REPLY_INTEGER) {
                snprintf(c->push[c->pushes][i], 64, "%lld", e->integer);
                c->push_len[c->pushes][i] = strlen(c->push[c->pushes][i]);
            }
        }
    }
    c->pushes++;
}

static const rc_redis_hooks hooks = {h_ready, h_down, h_push};

/* Runs the loop until *flag >= want or timeout; returns whether it got there. */
static int run_until(const int *flag, int want, int timeout_ms)
{
    uint64_t end = rc_now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        for (int i = 0; i < MAXC; i++)
            if (clients[i])
                rc_redis_tick(clients[i], rc_now_ms());
        if (flag && *flag >= want)
            return 1;
        if (rc_now_ms() >= end)
            return 0;
        struct __kernel_timespec ts = {0, 5 * 1000000L};
        struct io_uring_cqe *cqe;
        io_uring_submit_and_wait_timeout(&ring, &cqe, 1, &ts, NULL);
        unsigned head, n = 0;
        io_uring_for_each_cqe (&ring, head, cqe) {
            n++;
            if (rc_ud_op(cqe->user_data) != RC_UOP_REDIS)
                continue;
            unsigned tag = rc_ud_gen(cqe->user_data);
            if (tag < MAXC && clients[tag])
                rc_redis_on_cqe(clients[tag], cqe);
        }
        io_uring_cq_advance(&ring, n);
        for (int i = 0; i < MAXC; i++)
            if (clients[i])
                rc_redis_flush(clients[i]);
        io_uring_submit(&ring);
    }
}

static void run_ms(int ms)
{
    run_until(NULL, 1, ms);
}

static rc_redis *client(int tag, const char *url, ctx *c)
{
    rc_redis_url u;
    char err[128];
    if (rc_redis_url_parse(url, &u, err, sizeof(err)) < 0) {
        fprintf(stderr, "url %s: %s\n", url, err);
        abort();
    }
    clients[tag] = rc_redis_new(&ring, &u, &hooks, c, (uint8_t)tag);
    return clients[tag];
}

static void drop_client(int tag)
{
    rc_redis *r = clients[tag];
    rc_redis_close(r);
    uint64_t end = rc_now_ms() + 2000;
    while (!rc_redis_idle(r) && rc_now_ms() < end)
        run_ms(5);
    CHECK(rc_redis_idle(r));
    CHECK_EQ_INT(rc_redis_get_state(r), RC_REDIS_STOPPED);
    clients[tag] = NULL;
    rc_redis_free(r);
}

/* ---- reply checking ------------------------------------------------------ */

typedef struct expect {
    int next;  /* index of the next reply expected */
    int ok;    /* replies that matched */
    int nulls; /* NULL replies (connection dropped) */
    int calls;
    char err[128];
    redisReply last; /* scalar copy of the last reply's type/integer */
    char str[128];
} expect;

static expect ex;

/* priv = i: even i is SET k<i/2> v<i/2> (+OK), odd i the GET (v<i/2>). */
static void on_setget(void *udata, redisReply *rep, const char *err, void *priv)
{
    int i = (int)(intptr_t)priv;
    ex.calls++;
    if (!rep) {
        ex.nulls++;
        return;
    }
    char want[32];
    snprintf(want, sizeof(want), "v%d", i / 2);
    if (i != ex.next)
        return;
    ex.next++;
    if (i % 2 == 0) {
        if (rep->type == REDIS_REPLY_STATUS && strcmp(rep->str, "OK") == 0)
            ex.ok++;
    } else if (rep->type == REDIS_REPLY_STRING && strcmp(rep->str, want) == 0) {
        ex.ok++;
    }
}

static void on_any(void *udata, redisReply *rep, const char *err, void *priv)
{
    ex.calls++;
    if (!rep) {
        ex.nulls++;
        snprintf(ex.err, sizeof(ex.err), "%s", err ? err : "(null)");
        return;
    }
    ex.last.type = rep->type;
    ex.last.integer = rep->integer;
    ex.str[0] = '\0';
    if (rep->str)
        snprintf(ex.str, sizeof(ex.str), "%.*s", (int)RC_MIN(rep->len, (size_t)127), rep->str);
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements && rep->element[0]->str)
        snprintf(ex.str, sizeof(ex.str), "%s", rep->element[0]->str);
}

static int cmd(rc_redis *r, int argc, const char **argv)
{
    return rc_redis_command(r, on_any, NULL, argc, argv, NULL);
}

/* ---- tests --------------------------------------------------------------- */

static int port1, port2;
static pid_t pid1, pid2;

static void test_pipeline(void)
{
    char url[64];
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d", port1);
    ctx c = {0};
    rc_redis *r = client(0, url, &c);
    const char *ping[] = {"PING"};
    CHECK_EQ_INT(cmd(r, 1, ping), -1); /* not READY yet */
    CHECK(run_until(&c.ready, 1, 3000));
    CHECK_EQ_INT(rc_redis_get_state(r), RC_REDIS_READY);

    memset(&ex, 0, sizeof(ex));
    int accepted = 0;
    for (int i = 0; i < 5000; i++) {
        char k[16], v[16];
        snprintf(k, sizeof(k), "k%d", i);
        snprintf(v, sizeof(v), "v%d", i);
        const char *set[] = {"SET", k, v}, *get[] = {"GET", k};
        accepted += rc_redis_command(r, on_setget, (void *)(intptr_t)(2 * i), 3, set, NULL) == 0;
        accepted +=
            rc_redis_command(r, on_setget, (void *)(intptr_t)(2 * i + 1), 2, get, NULL) == 0;
    }
    CHECK_EQ_INT(accepted, 10000);
    rc_redis_stats st;
    rc_redis_get_stats(r, &st);
    CHECK_EQ_INT(st.pipeline_depth, 10000);
    CHECK(run_until(&ex.calls, 10000, 5000));
    CHECK_EQ_INT(ex.calls, 10000);
    CHECK_EQ_INT(ex.next, 10000);
    CHECK_EQ_INT(ex.ok, 10000);
    CHECK_EQ_INT(ex.nulls, 0);
    rc_redis_get_stats(r, &st);
    CHECK_EQ_INT(st.pipeline_depth, 0);
    CHECK_EQ_INT(st.commands, 10000);
    CHECK(st.bytes_out > 10000 * 20);
    CHECK(st.bytes_in > 5000 * 5);

    /* An error reply is a reply, and counted. */
    memset(&ex, 0, sizeof(ex));
    const char *bad[] = {"NOSUCHCOMMAND"};
    CHECK_EQ_INT(cmd(r, 1, bad), 0);
    CHECK(run_until(&ex.calls, 1, 2000));
    CHECK_EQ_INT(ex.last.type, REDIS_REPLY_ERROR);
    rc_redis_get_stats(r, &st);
    CHECK_EQ_INT(st.errors, 1);

    /* Ping: RTT measured. */
    rc_redis_set_ping_interval(r, 20);
    uint64_t end = rc_now_ms() + 2000;
    while (rc_now_ms() < end) {
        run_ms(10);
        rc_redis_get_stats(r, &st);
        if (st.rtt_us)
            break;
    }
    CHECK(st.rtt_us > 0 && st.rtt_us < 1000000);
    rc_redis_set_ping_interval(r, 0);
    run_ms(30);
    drop_client(0);
    CHECK_EQ_INT(c.down, 0); /* close is not a failure */
}

typedef struct chk {
    const char *big;
    size_t n;
    int ok;
} chk;

static void on_big(void *udata, redisReply *rep, const char *err, void *priv)
{
    chk *k = priv;
    ex.calls++;
    if (rep && rep->type == REDIS_REPLY_STRING && rep->len == k->n &&
        memcmp(rep->str, k->big, k->n) == 0)
        k->ok = 1;
}

static void test_big_value(void)
{
    char url[64];
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d/1", port1);
    ctx c = {0};
    rc_redis *r = client(0, url, &c);
    CHECK(run_until(&c.ready, 1, 3000));

    size_t n = 1u << 20;
    char *big = rc_malloc(n);
    for (size_t i = 0; i < n; i++)
        big[i] = (char)(i * 131 + (i >> 8)); /* includes NUL and CR/LF bytes */
    const char *set[] = {"SET", "big", big};
    size_t setlen[] = {3, 3, n};

    rc_redis_set_max_queued(r, 64 * 1024); /* the bound refuses, queues nothing */
    memset(&ex, 0, sizeof(ex));
    CHECK_EQ_INT(rc_redis_command(r, on_any, NULL, 3, set, setlen), -1);
    rc_redis_stats st;
    rc_redis_get_stats(r, &st);
    CHECK_EQ_INT(st.pipeline_depth, 0);
    rc_redis_set_max_queued(r, RC_REDIS_DEFAULT_MAX_QUEUED);

    CHECK_EQ_INT(rc_redis_command(r, on_any, NULL, 3, set, setlen), 0);
    CHECK(run_until(&ex.calls, 1, 5000));
    CHECK_EQ_INT(ex.last.type, REDIS_REPLY_STATUS);
    CHECK_EQ_STR(ex.str, "OK");

    chk k = {big, n, 0};
    const char *get[] = {"GET", "big"};
    CHECK_EQ_INT(rc_redis_command(r, (rc_redis_reply_fn)NULL, NULL, 2, get, NULL), -1);
    memset(&ex, 0, sizeof(ex));
    CHECK_EQ_INT(rc_redis_command(r, on_big, &k, 2, get, NULL), 0);
    CHECK(run_until(&ex.calls, 1, 5000));
    CHECK_EQ_INT(k.ok, 1);
    /* The key went to db 1 (SELECT from the URL): db 0 has no "big". */
    const char *sel0[] = {"SELECT", "0"}, *ex0[] = {"EXISTS", "big"};
    memset(&ex, 0, sizeof(ex));
    cmd(r, 2, sel0);
    cmd(r, 2, ex0);
    CHECK(run_until(&ex.calls, 2, 2000));
    CHECK_EQ_INT(ex.last.type, REDIS_REPLY_INTEGER);
    CHECK_EQ_INT(ex.last.integer, 0);
    free(big);
    drop_client(0);
}

static void test_auth(void)
{
    char url[96];
    ctx c = {0};
    snprintf(url, sizeof(url), "redis://:s3cret@127.0.0.1:%d/2", port2);
    rc_redis *r = client(0, url, &c);
    CHECK(run_until(&c.ready, 1, 3000));
    CHECK_EQ_INT(c.down, 0);
    memset(&ex, 0, sizeof(ex));
    const char *info[] = {"CLIENT", "INFO"};
    cmd(r, 2, info);
    CHECK(run_until(&ex.calls, 1, 2000));
    CHECK(strstr(ex.str, " db=2 ") != NULL);
    rc_redis_stats st;
    rc_redis_get_stats(r, &st);
    CHECK_EQ_INT(st.commands, 1); /* AUTH and SELECT are not the caller's */
    drop_client(0);

    /* With a user name: AUTH default s3cret (Redis 6+ ACL form). */
    ctx c2 = {0};
    snprintf(url, sizeof(url), "redis://default:s3cret@127.0.0.1:%d", port2);
    client(0, url, &c2);
    CHECK(run_until(&c2.ready, 1, 3000));
    drop_client(0);

    /* Wrong password: on_down with Redis's error, then retries with backoff. */
    ctx c3 = {0};
    snprintf(url, sizeof(url), "redis://:wrong@127.0.0.1:%d", port2);
    r = client(0, url, &c3);
    CHECK(run_until(&c3.down, 3, 3000));
    CHECK_EQ_INT(c3.ready, 0);
    CHECK(strstr(c3.reason, "WRONGPASS") != NULL || strstr(c3.reason, "invalid") != NULL);
    CHECK(strstr(rc_redis_last_error(r), "handshake") != NULL);
    /* Gaps: ~100 ms then ~200 ms, each +-25%, plus connect+AUTH time. The
     * lower bounds are the backoff's; the upper ones only catch a backoff
     * that runs away (a loaded machine, a sanitizer, stretch the rest). */
    uint64_t g1 = c3.down_ms[1] - c3.down_ms[0], g2 = c3.down_ms[2] - c3.down_ms[1];
    CHECK(g1 >= 75 && g1 < 2000);
    CHECK(g2 >= 150 && g2 < 4000);
    CHECK_EQ_INT(rc_redis_get_state(r) == RC_REDIS_READY, 0);
    drop_client(0);

    /* Nobody listening: connect refused, also an on_down. */
    ctx c4 = {0};
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d", free_port());
    client(0, url, &c4);
    CHECK(run_until(&c4.down, 1, 3000));
    CHECK(strstr(c4.reason, "connect") != NULL);
    drop_client(0);
}

static void test_pubsub(void)
{
    char url[64];
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d", port1);
    ctx cc = {0}, cs = {0};
    rc_redis *rcmd = client(0, url, &cc);
    rc_redis *rsub = client(1, url, &cs);
    CHECK(run_until(&cc.ready, 1, 3000));
    CHECK(run_until(&cs.ready, 1, 3000));

    const char *sub[] = {"SUBSCRIBE", "ch1", "ch2"};
    CHECK_EQ_INT(rc_redis_send_raw(rsub, 3, sub, NULL), 0);
    CHECK(run_until(&cs.pushes, 2, 2000));
    CHECK_EQ_INT(cs.pushes, 2);
    CHECK_EQ_STR(cs.push[0][0], "subscribe");
    CHECK_EQ_STR(cs.push[0][1], "ch1");
    CHECK_EQ_STR(cs.push[0][2], "1");
    CHECK_EQ_STR(cs.push[1][0], "subscribe");
    CHECK_EQ_STR(cs.push[1][1], "ch2");
    CHECK_EQ_STR(cs.push[1][2], "2");
    rc_redis_stats st;
    rc_redis_get_stats(rsub, &st);
    CHECK_EQ_INT(st.pipeline_depth, 0);

    /* A PING waiting on the subscriber connection must not swallow a message. */
    memset(&ex, 0, sizeof(ex));
    const char *ping[] = {"PING"};
    CHECK_EQ_INT(rc_redis_command(rsub, on_any, NULL, 1, ping, NULL), 0);
    const char *pub1[] = {"PUBLISH", "ch1", "hello"};
    const char *pub2[] = {"PUBLISH", "ch2", "a\0b"};
    size_t pub2len[] = {7, 3, 3};
    int n0 = ex.calls;
    CHECK_EQ_INT(cmd(rcmd, 3, pub1), 0);
    CHECK_EQ_INT(rc_redis_command(rcmd, on_any, NULL, 3, pub2, pub2len), 0);
    CHECK(run_until(&cs.pushes, 4, 2000));
    CHECK(run_until(&ex.calls, n0 + 3, 2000));
    CHECK_EQ_INT(cs.pushes, 4);
    CHECK_EQ_STR(cs.push[2][0], "message");
    CHECK_EQ_STR(cs.push[2][1], "ch1");
    CHECK_EQ_STR(cs.push[2][2], "hello");
    CHECK_EQ_INT(cs.push_len[2][2], 5);
    CHECK_EQ_STR(cs.push[3][0], "message");
    CHECK_EQ_STR(cs.push[3][1], "ch2");
    CHECK_EQ_INT(cs.push_len[3][2], 3);
    CHECK(memcmp(cs.push[3][2], "a\0b", 3) == 0);
    /* PUBLISH answered 1 (one subscriber); the last reply in, though, may be
     * the subscriber's PING: check the PONG arrived as a reply, not a push. */
    CHECK_EQ_INT(ex.calls, n0 + 3);
    CHECK_EQ_INT(ex.nulls, 0);
    drop_client(1);
    drop_client(0);
}

static void on_blpop(void *udata, redisReply *rep, const char *err, void *priv)
{
    ex.calls++;
    if (!rep) {
        ex.nulls++;
        snprintf(ex.err, sizeof(ex.err), "%s", err ? err : "(null)");
    }
}

static void test_server_death(void)
{
    char url[64];
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d", port1);
    ctx c = {0};
    rc_redis *r = client(0, url, &c);
    CHECK(run_until(&c.ready, 1, 3000));

    memset(&ex, 0, sizeof(ex));
    /* BLPOP with no timeout never answers: these stay pending until the kill. */
    const char *blpop[] = {"BLPOP", "nosuchlist", "0"};
    for (int i = 0; i < 3; i++)
        CHECK_EQ_INT(rc_redis_command(r, on_blpop, NULL, 3, blpop, NULL), 0);
    run_ms(100);
    rc_redis_stats st;
    rc_redis_get_stats(r, &st);
    CHECK_EQ_INT(st.pipeline_depth, 3);
    CHECK_EQ_INT(ex.calls, 0);

    stop_redis(pid1);
    pid1 = -1;
    CHECK(run_until(&c.down, 1, 3000));
    CHECK_EQ_INT(ex.calls, 3);
    CHECK_EQ_INT(ex.nulls, 3);
    CHECK(ex.err[0] != '\0');
    CHECK_EQ_INT(c.down >= 1, 1);
    const char *ping[] = {"PING"};
    CHECK_EQ_INT(cmd(r, 1, ping), -1);
    run_ms(300);               /* a few refused attempts while the server is gone */
    CHECK_EQ_INT(ex.calls, 3); /* exactly once each */

    pid1 = start_redis(port1, NULL);
    CHECK(pid1 > 0);
    CHECK(run_until(&c.ready, 2, 6000));
    memset(&ex, 0, sizeof(ex));
    const char *set[] = {"SET", "after", "restart"}, *get[] = {"GET", "after"};
    CHECK_EQ_INT(cmd(r, 3, set), 0);
    CHECK_EQ_INT(cmd(r, 2, get), 0);
    CHECK(run_until(&ex.calls, 2, 2000));
    CHECK_EQ_STR(ex.str, "restart");
    rc_redis_get_stats(r, &st);
    CHECK_EQ_INT(st.reconnects, 1);
    drop_client(0);
}

/* A listener that never accepts: the kernel completes the TCP handshake, so
 * connect succeeds, and then nothing ever answers (as with a SIGSTOPped
 * Redis). Neither client may call itself READY: the handshake's PING is
 * never answered; and the backoff doubles from one failed attempt to the
 * next, since none of them succeeded. */
static void test_silent_peer(void)
{
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof(a);
    CHECK_EQ_INT(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    CHECK_EQ_INT(listen(lfd, 16), 0);
    CHECK_EQ_INT(getsockname(lfd, (struct sockaddr *)&a, &l), 0);
    int port = ntohs(a.sin_port);

    char url[96];
    ctx ca = {0}, cb = {0};
    snprintf(url, sizeof(url), "redis://:pw@127.0.0.1:%d", port);
    client(0, url, &ca); /* AUTH never answered */
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d", port);
    rc_redis *rb = client(1, url, &cb); /* no AUTH, no SELECT: the PING is never answered */
    uint64_t t0 = rc_now_ms();
    CHECK(run_until(&ca.down, 1, 4000));
    uint64_t ta = rc_now_ms() - t0;
    CHECK(strstr(ca.reason, "handshake timeout") != NULL);
    CHECK(ta >= 1500 && ta < 3500); /* 2 s, from the first tick */
    CHECK(run_until(&cb.down, 2, 8000));
    CHECK(strstr(cb.reason, "handshake timeout") != NULL);
    CHECK_EQ_INT(ca.ready, 0);
    CHECK_EQ_INT(cb.ready, 0);
    rc_redis_stats st;
    rc_redis_get_stats(rb, &st);
    CHECK(st.backoff_ms >= 400); /* 100, then doubled by each of two failures */
    drop_client(0);
    drop_client(1);
    close(lfd);
}

static void test_unix_socket(void)
{
    char path[64], url[96];
    snprintf(path, sizeof(path), "/tmp/rc_redis_test_%d.sock", (int)getpid());
    unlink(path);
    pid_t pid = start_redis_unix(path);
    CHECK(pid > 0);
    if (pid <= 0)
        return;
    snprintf(url, sizeof(url), "unix://%s?db=3", path);
    ctx c = {0};
    rc_redis *r = client(0, url, &c);
    CHECK(run_until(&c.ready, 1, 3000));
    memset(&ex, 0, sizeof(ex));
    const char *info[] = {"CLIENT", "INFO"};
    CHECK_EQ_INT(cmd(r, 2, info), 0);
    CHECK(run_until(&ex.calls, 1, 2000));
    CHECK(strstr(ex.str, " db=3 ") != NULL);
    CHECK(strstr(ex.str, "addr=/") != NULL); /* Redis shows the socket path */
    drop_client(0);
    stop_redis(pid);
    unlink(path);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    if (!have_redis()) {
        printf("redis-server not found: test_redis_client skipped\n");
        return UNIT_DONE();
    }
    if (io_uring_queue_init(256, &ring, 0) < 0) {
        fprintf(stderr, "io_uring_queue_init failed\n");
        return 1;
    }
    port1 = free_port();
    port2 = free_port();
    pid1 = start_redis(port1, NULL);
    pid2 = start_redis(port2, "s3cret");
    CHECK(pid1 > 0 && pid2 > 0);
    if (pid1 > 0 && pid2 > 0) {
        RUN(test_pipeline);
        RUN(test_big_value);
        RUN(test_auth);
        RUN(test_pubsub);
        RUN(test_server_death);
        RUN(test_unix_socket);
        RUN(test_silent_peer);
    }
    stop_redis(pid1);
    stop_redis(pid2);
    io_uring_queue_exit(&ring);
    return UNIT_DONE();
}
