/* WebSocket sessions (ws/session.c) driven with masked client frames that
 * this file encodes itself (RFC 6455 section 5.2-5.3), independently of
 * ws/frame.c: whole, split at every byte, fragmented, interleaved with
 * pings; every protocol error wslay must answer with a close and its code
 * (1002, 1007, 1009, sections 5.2, 5.5, 7.4.1, 8.1); the RC_WS_* result at
 * each step; and the pool: reuse, a reused context parsing cleanly, the
 * free-list cap. Leaks show under ASan. */
#include "ws/session.h"

#include <stdlib.h>
#include <string.h>

#include "tests/unit/unit.h"
#include "ws/deflate.h"

/* ---- client frame encoder ------------------------------------------------ */

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint32_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 0x2545F4914F6CDD1DULL) >> 32);
}

/* Appends one frame to buf at *n. first = FIN/RSV/opcode byte as sent;
 * masked = 0 leaves the mask bit off (a protocol error from a client). */
static void frame_raw(uint8_t *buf, size_t *n, uint8_t first, int masked, const void *payload,
                      size_t len)
{
    const uint8_t *p = payload;
    uint8_t *o = buf + *n;
    size_t h = 0;
    o[h++] = first;
    uint8_t mbit = masked ? 0x80 : 0;
    if (len < 126) {
        o[h++] = (uint8_t)(mbit | len);
    } else if (len < 65536) {
        o[h++] = mbit | 126;
        o[h++] = (uint8_t)(len >> 8);
        o[h++] = (uint8_t)len;
    } else {
        o[h++] = mbit | 127;
        for (int i = 7; i >= 0; i--)
            o[h++] = (uint8_t)((uint64_t)len >> (8 * i));
    }
    uint8_t key[4] = {0, 0, 0, 0};
    if (masked) {
        uint32_t k = rnd();
        memcpy(key, &k, 4);
        memcpy(o + h, key, 4);
        h += 4;
    }
    for (size_t i = 0; i < len; i++)
        o[h + i] = p[i] ^ key[i & 3];
    *n += h + len;
}

static void frame(uint8_t *buf, size_t *n, int fin, int opcode, const void *payload, size_t len)
{
    frame_raw(buf, n, (uint8_t)((fin ? 0x80 : 0) | opcode), 1, payload, len);
}

/* ---- hook recorder ------------------------------------------------------- */

enum { EV_TEXT, EV_BINARY, EV_PONG, EV_CTRL };

typedef struct {
    int kind;
    void *conn;
    int opcode, peer_closed;
    size_t len;
    uint8_t *data;
} event;

#define MAX_EV 64
static event evs[MAX_EV];
static int nev;         /* all events, even those past MAX_EV */
static int n_ctrl_pong; /* ctrl(PONG) calls, counted separately for floods */

static void ev_reset(void)
{
    for (int i = 0; i < nev && i < MAX_EV; i++)
        free(evs[i].data);
    nev = 0;
    n_ctrl_pong = 0;
}

static void record(int kind, void *conn, int opcode, const uint8_t *d, size_t len, int pc)
{
    if (kind == EV_CTRL && opcode == 0xA)
        n_ctrl_pong++;
    if (nev < MAX_EV) {
        event *e = &evs[nev];
        e->kind = kind;
        e->conn = conn;
        e->opcode = opcode;
        e->peer_closed = pc;
        e->len = len;
        e->data = malloc(len + 1);
        if (len)
            memcpy(e->data, d, len);
    }
    nev++;
}

static void h_text(void *conn, const uint8_t *msg, size_t len)
{
    record(EV_TEXT, conn, 0, msg, len, 0);
}

static void h_binary(void *conn, const uint8_t *msg, size_t len)
{
    record(EV_BINARY, conn, 0, msg, len, 0);
}

static void h_pong(void *conn)
{
    record(EV_PONG, conn, 0, NULL, 0, 0);
}

static void h_ctrl(void *conn, int opcode, const uint8_t *payload, size_t len, int peer_closed)
{
    record(EV_CTRL, conn, opcode, payload, len, peer_closed);
}

static const rc_ws_hooks hooks = {h_text, h_binary, h_pong, h_ctrl, NULL};

static int conn_a, conn_b; /* their addresses stand for two connections */

static int ev_is(int i, int kind, const void *data, size_t len)
{
    return i < nev && i < MAX_EV && evs[i].kind == kind && evs[i].len == len &&
           (len == 0 || memcmp(evs[i].data, data, len) == 0);
}

/* The close code in a close ctrl event, -1 when none. */
static int close_code(int i)
{
    if (i >= nev || i >= MAX_EV || evs[i].opcode != 0x8 || evs[i].len < 2)
        return -1;
    return (evs[i].data[0] << 8) | evs[i].data[1];
}

static uint8_t buf[1 << 17];

/* ---- messages ------------------------------------------------------------ */

static void test_text_whole(void)
{
    rc_ws_pool pool;
    rc_ws_pool_init(&pool, &hooks, 1 << 16, 4);
    rc_ws_sess *s = rc_ws_get(&pool);
    const char *msg = "{\"type\":\"ping\",\"id\":\"h\u00e9llo\"}";
    size_t n = 0;
    frame(buf, &n, 1, 0x1, msg, strlen(msg));
    ev_reset();
    CHECK_EQ_INT(rc_ws_feed(&pool, s, &conn_a, buf, n), RC_WS_IDLE);
    CHECK_EQ_INT(nev, 1);
    CHECK(ev_is(0, EV_TEXT, msg, strlen(msg)));
    CHECK(evs[0].conn == &conn_a);
    CHECK(pool.cur == NULL);
    rc_ws_put(&pool, s);
    CHECK_EQ_INT(pool.in_use, 0);
    rc_ws_pool_free(&pool);
    ev_reset();
}

/* Two lengths: one with a 7-bit length, one with a 16-bit extended length,
 * so that the split also lands inside the extended length and the mask. */
static void split_at_every_offset(size_t mlen)
{
    rc_ws_pool pool;
    rc_ws_pool_init(&pool, &hooks, 1 << 16, 4);
    char *msg = malloc(mlen);
    for (size_t i = 0; i < mlen; i++)
        msg[i] = (char)('a' + i % 26);
    size_t n = 0;
    frame(buf, &n, 1, 0x1, msg, mlen);
    int bad_mid = 0, bad_end = 0, bad_ev = 0;
    for (size_t cut = 1; cut < n; cut++) {
        ev_reset();
        rc_ws_sess *s = rc_ws_get(&pool);
        if (rc_ws_feed(&pool, s, &conn_a, buf, cut) != RC_WS_MORE || nev != 0)
            bad_mid++;
        if (rc_ws_feed(&pool, s, &conn_a, buf + cut, n - cut) != RC_WS_IDLE)
            bad_end++;
        if (nev != 1 || !ev_is(0, EV_TEXT, msg, mlen) || evs[0].conn != &conn_a)
            bad_ev++;
        rc_ws_put(&pool, s);
    }
    CHECK_EQ_INT(bad_mid, 0);
    CHECK_EQ_INT(bad_end, 0);
    CHECK_EQ_INT(bad_ev, 0);
    /* One byte at a time through one session. */
    ev_reset();
    rc_ws_sess *s = rc_ws_get(&pool);
    int more = 0;
    for (size_t i = 0; i + 1 < n; i++)
        more += rc_ws_feed(&pool, s, &conn_a, buf + i, 1) == RC_WS_MORE;
    CHECK_EQ_INT(more, (long long)n - 1);
    CHECK_EQ_INT(rc_ws_feed(&pool, s, &conn_a, buf + n - 1, 1), RC_WS_IDLE);
    CHECK_EQ_INT(nev, 1);
    CHECK(ev_is(0, EV_TEXT, msg, mlen));
    rc_ws_put(&pool, s);
    CHECK_EQ_INT(pool.created, 1);
    rc_ws_pool_free(&pool);
    free(msg);
    ev_reset();
}

static void test_split_every_offset(void)
{
    split_at_every_offset(20);
    split_at_every_offset(300);
}

static void test_fragmented(void)
{
    rc_ws_pool pool;
    rc_ws_pool_init(&pool, &hooks, 1 << 16, 4);
    rc_ws_sess *s = rc_ws_get(&pool);
    ev_reset();
    size_t n = 0;
    frame(buf, &n, 0, 0x1, "Hel", 3);
    CHECK_EQ_INT(rc_ws_feed(&pool, s, &conn_a, buf, n), RC_WS_MORE);
    n = 0;
    frame(buf, &n, 0, 0x0, "lo, ", 4);
    CHECK_EQ_INT(rc_ws_feed(&pool, s, &conn_a, buf, n), RC_WS_MORE);
    CHECK_EQ_INT(nev, 0);
    n = 0;
    frame(buf, &n, 1, 0x0, "world", 5);
    CHECK_EQ_INT(rc_ws_feed(&pool, s, &conn_a, buf, n), RC_WS_IDLE);
    CHECK_EQ_INT(nev, 1);
    CHECK(ev_is(0, EV_TEXT, "Hello, world", 12));
    rc_ws_put(&pool, s);
    rc_ws_pool_free(&pool);
    ev_reset();
}

static void test_two_messages_one_feed(void)
{
    rc_ws_pool pool;
    rc_ws_pool_init(&pool, &hooks, 1 << 16, 4);
    rc_ws_sess *s = rc_ws_get(&pool);
    ev_reset();
    size_t n = 0;
    frame(buf, &n, 1, 0x1, "first", 5);
    frame(buf, &n, 1, 0x1, "second!", 7);
    CHECK_EQ_INT(rc_ws_feed(&pool, s, &conn_b, buf, n), RC_WS_IDLE);
    CHECK_EQ_INT(nev, 2);
    CHECK(ev_is(0, EV_TEXT, "first", 5));
    CHECK(ev_is(1, EV_TEXT, "second!", 7));
    CHECK(evs[0].conn == &conn_b && evs[1].conn == &conn_b);
    /* A whole message plus the start of the next: not at a boundary. */
    ev_reset();
    n = 0;
    frame(buf, &n, 1, 0x1, "third", 5);
    size_t first = n;
    frame(buf, &n, 1, 0x1, "fourth", 6);
    CHECK_EQ_INT(rc_ws_feed(&pool, s, &conn_b, buf, first + 3), RC_WS_MORE);
    CHECK_EQ_INT(rc_ws_feed(&pool, s, &conn_b, buf + first + 3, n - first - 3), RC_WS_IDLE);
    CHECK_EQ_INT(nev, 2);
    CHECK(ev_is(0, EV_TEXT, "third", 5));
    CHECK(ev_is(1, EV_TEXT, "fourth", 6));
    rc_ws_put(&pool, s);
    rc_ws_pool_free(&pool);
    ev_reset();
}

static void test_binary(void)
{
    rc_ws_pool pool;
    rc_ws_pool_init(&pool, &hooks, 1 << 16, 4);
    rc_ws_sess *s = rc_ws_get(&pool);
    ev_reset();
    const uint8_t bin[] = {0x00, 0xff, 0xc0, 0x80, 0x01};
    size_t n = 0;
    frame(buf, &n, 1, 0x2, bin, sizeof(bin));
    CHECK_EQ_INT(rc_ws_feed(&pool, s, &conn_a, buf, n), RC_WS_IDLE);
    CHECK_EQ_INT(nev, 1);
    CHECK(ev_is(0, EV_BINARY, bin, sizeof(bin)));
    CHECK(evs[0].conn == &conn_a);
    rc_ws_put(&pool, s);
    rc_ws_pool_free(&pool);
    ev_reset();
}

/* ---- control frames ------------------------------------------------------ */

static void test_ping_pong(void)
{
    rc_ws_pool pool;
    rc_ws_pool_init(&pool, &hooks, 1 << 16, 4);
    rc_ws_sess *s = rc_ws_get(&pool);
    ev_reset();
    size_t n = 0;
    frame(buf, &n, 1, 0x9, "rtt-42", 6);
    CHECK_EQ_INT(rc_ws_feed(&pool, s, &conn_a, buf, n), RC_WS_IDLE);
    CHECK_EQ_INT(nev, 1);
    CHECK(ev_is(0, EV_CTRL, "rtt-42", 6));
    CHECK_EQ_INT(evs[0].opcode, 0xA);
    CHECK(evs[0].conn == &conn_a);
    /* Empty ping and a 125-byte one (the largest allowed). */
    ev_reset();
    uint8_t big[125];
    for (int i = 0; i < 125; i++)
        big[i] = (uint8_t)(i * 7);
    n = 0;
    frame(buf, &n, 1, 0x9, "", 0);
    frame(buf, &n, 1, 0x9, big, sizeof(big));
    CHECK_EQ_INT(rc_ws_feed(&pool, s, &conn_a, buf, n), RC_WS_IDLE);
    CHECK_EQ_INT(nev, 2);
    CHECK(ev_is(0, EV_CTRL, "", 0) && evs[0].opcode == 0xA);
    CHECK(ev_is(1, EV_CTRL, big, sizeof(big)) && evs[1].opcode == 0xA);
    /* A pong from the client goes to the pong hook and is not answered. */
    ev_reset();
    n = 0;
    frame(buf, &n, 1, 0xA, "x", 1);
    CHECK_EQ_INT(rc_ws_feed(&pool, s, &conn_b, buf, n), RC_WS_IDLE);
    CHECK_EQ_INT(nev, 1);
    CHECK(ev_is(0, EV_PONG, NULL, 0));
    CHECK(evs[0].conn == &conn_b);
    rc_ws_put(&pool, s);
    rc_ws_pool_free(&pool);
    ev_reset();
}

static void test_ping_inside_fragments(void)
{
    rc_ws_pool pool;
    rc_ws_pool_init(&pool, &hooks, 1 << 16, 4);
    rc_ws_sess *s = rc_ws_get(&pool);
    ev_reset();
    size_t n = 0;
    frame(buf, &n, 0, 0x1, "ab", 2);
    frame(buf, &n, 1, 0x9, "p1", 2);
    CHECK_EQ_INT(rc_ws_feed(&pool, s, &conn_a, buf, n), RC_WS_MORE);
    CHECK_EQ_INT(nev, 1);
    CHECK(ev_is(0, EV_CTRL, "p1", 2) && evs[0].opcode == 0xA);
    n = 0;
    frame(buf, &n, 0, 0x0, "cd", 2);
    frame(buf, &n, 1, 0x9, "p2", 2);
    frame(buf, &n, 1, 0x0, "ef", 2);
    CHECK_EQ_INT(rc_ws_feed(&pool, s, &conn_a, buf, n), RC_WS_IDLE);
    /* Pongs are handed over after wslay has read the whole feed, so the
     * message may come before the pong for p2; both must come, once. */
    CHECK_EQ_INT(nev, 3);
    int t = ev_is(1, EV_TEXT, "abcdef", 6) ? 1 : 2;
    CHECK(ev_is(t, EV_TEXT, "abcdef", 6));
    CHECK(ev_is(3 - t, EV_CTRL, "p2", 2) && evs[3 - t].opcode == 0xA);
    rc_ws_put(&pool, s);
    rc_ws_pool_free(&pool);
    ev_reset();
}

/* Many pings in one feed: the contract says every control frame wslay wants
 * to send reaches ctrl before rc_ws_feed returns; at the least the session
 * must not be called idle (and lent to another connection) while pongs are
 * still queued inside its wslay context. */
static void ping_flood(int count, size_t plen)
{
    rc_ws_pool pool;
    rc_ws_pool_init(&pool, &hooks, 1 << 16, 4);
    rc_ws_sess *s = rc_ws_get(&pool);
    ev_reset();
    uint8_t p[125];
    memset(p, 'p', sizeof(p));
    size_t n = 0;
    for (int i = 0; i < count; i++)
        frame(buf, &n, 1, 0x9, p, plen);
    int r = rc_ws_feed(&pool, s, &conn_a, buf, n);
    CHECK_EQ_INT(n_ctrl_pong, count);
    if (r == RC_WS_IDLE) {
        /* Lent to another connection: it must not get the first one's pongs. */
        rc_ws_put(&pool, s);
        rc_ws_sess *s2 = rc_ws_get(&pool);
        int before = n_ctrl_pong;
        n = 0;
        frame(buf, &n, 1, 0x1, "hi", 2);
        CHECK_EQ_INT(rc_ws_feed(&pool, s2, &conn_b, buf, n), RC_WS_IDLE);
        CHECK_EQ_INT(n_ctrl_pong, before);
        rc_ws_put(&pool, s2);
    } else {
        CHECK_EQ_INT(r, RC_WS_IDLE);
        rc_ws_discard(&pool, s);
    }
    rc_ws_pool_free(&pool);
    ev_reset();
}

static void test_ping_flood(void)
{
    ping_flood(31, 125); /* what fits in one 4096-byte read */
    ping_flood(3000, 0); /* 18000 bytes in one feed */
}

static void test_close(void)
{
    rc_ws_pool pool;
    rc_ws_pool_init(&pool, &hooks, 1 << 16, 4);
    rc_ws_sess *s = rc_ws_get(&pool);
    ev_reset();
    size_t n = 0;
    frame(buf, &n, 1, 0x8,
          "\x03\xe8"
          "bye",
          5);
    CHECK_EQ_INT(rc_ws_feed(&pool, s, &conn_a, buf, n), RC_WS_DONE);
    CHECK_EQ_INT(nev, 1);
    CHECK(nev >= 1 && evs[0].kind == EV_CTRL && evs[0].opcode == 0x8);
    CHECK(nev >= 1 && evs[0].len >= 2 && evs[0].data[0] == 0x03 && evs[0].data[1] == 0xE8);
    CHECK(nev >= 1 && evs[0].peer_closed == 1);
    CHECK(evs[0].conn == &conn_a);
    rc_ws_discard(&pool, s);

    /* An empty close is answered with a close (RFC 6455 5.5.1). */
    s = rc_ws_get(&pool);
    ev_reset();
    n = 0;
    frame(buf, &n, 1, 0x8, "", 0);
    CHECK_EQ_INT(rc_ws_feed(&pool, s, &conn_a, buf, n), RC_WS_DONE);
    CHECK_EQ_INT(nev, 1);
    CHECK(nev >= 1 && evs[0].kind == EV_CTRL && evs[0].opcode == 0x8);
    CHECK(nev >= 1 && evs[0].peer_closed == 1);
    rc_ws_discard(&pool, s);

    /* Data after the close is not delivered. */
    s = rc_ws_get(&pool);
    ev_reset();
    n = 0;
    frame(buf, &n, 1, 0x8, "\x03\xe8", 2);
    frame(buf, &n, 1, 0x1, "late", 4);
    CHECK_EQ_INT(rc_ws_feed(&pool, s, &conn_a, buf, n), RC_WS_DONE);
    CHECK_EQ_INT(nev, 1);
    CHECK_EQ_INT(close_code(0), 1000);
    rc_ws_discard(&pool, s);
    CHECK_EQ_INT(pool.in_use, 0);
    rc_ws_pool_free(&pool);
    ev_reset();
}

/* ---- protocol errors ----------------------------------------------------- */

/* Feeds bytes to a fresh session and checks: DONE, exactly one ctrl close
 * that is not an answer to a client close, carrying code (or, when code is
 * 0, either nothing or 1002), no message delivered. */
static void expect_error(const char *what, const uint8_t *b, size_t n, int code, uint64_t max_msg)
{
    rc_ws_pool pool;
    rc_ws_pool_init(&pool, &hooks, max_msg, 4);
    rc_ws_sess *s = rc_ws_get(&pool);
    ev_reset();
    int r = rc_ws_feed(&pool, s, &conn_a, b, n);
    int ok = r == RC_WS_DONE && nev == 1 && evs[0].kind == EV_CTRL && evs[0].opcode == 0x8 &&
             evs[0].peer_closed == 0 && evs[0].conn == &conn_a;
    if (code) /* wslay's closes carry no reason; the session's own do */
        ok = ok && close_code(0) == code && evs[0].len >= 2;
    else
        ok = ok && (evs[0].len == 0 || close_code(0) == 1002);
    if (!ok)
        fprintf(stderr, "  %s: result %d, %d events, first close code %d\n", what, r, nev,
                close_code(0));
    CHECK(ok);
    rc_ws_discard(&pool, s);
    CHECK_EQ_INT(pool.in_use, 0);
    rc_ws_pool_free(&pool);
    ev_reset();
}

static void test_errors(void)
{
    size_t n = 0;
    frame_raw(buf, &n, 0x81, 0, "hello", 5);
    expect_error("unmasked", buf, n, 1002, 1 << 16);

    n = 0;
    frame(buf, &n, 1, 0x3, "x", 1);
    expect_error("opcode 0x3", buf, n, 1002, 1 << 16);

    n = 0;
    frame(buf, &n, 1, 0xB, "x", 1);
    expect_error("opcode 0xB", buf, n, 1002, 1 << 16);

    n = 0;
    frame_raw(buf, &n, 0x80 | 0x40 | 0x1, 1, "x", 1);
    expect_error("RSV1", buf, n, 1002, 1 << 16);

    uint8_t p126[126];
    memset(p126, 'z', sizeof(p126));
    n = 0;
    frame(buf, &n, 1, 0x9, p126, sizeof(p126));
    expect_error("ping of 126 bytes", buf, n, 0, 1 << 16);

    n = 0;
    frame(buf, &n, 0, 0x9, "x", 1);
    expect_error("fragmented ping", buf, n, 0, 1 << 16);

    n = 0;
    frame(buf, &n, 1, 0x0, "orphan", 6);
    expect_error("continuation without start", buf, n, 1002, 1 << 16);

    n = 0;
    frame(buf, &n, 0, 0x1, "a", 1);
    frame(buf, &n, 1, 0x1, "b", 1);
    expect_error("new text inside a fragmented one", buf, n, 1002, 1 << 16);

    /* Overlong encoding of '/', a lone continuation byte, a surrogate. */
    n = 0;
    frame(buf, &n, 1, 0x1, "ok \xc0\xaf", 5);
    expect_error("overlong UTF-8", buf, n, 1007, 1 << 16);
    n = 0;
    frame(buf, &n, 1, 0x1, "\x80", 1);
    expect_error("lone continuation byte", buf, n, 1007, 1 << 16);
    n = 0;
    frame(buf, &n, 1, 0x1, "\xed\xa0\x80", 3);
    expect_error("UTF-16 surrogate", buf, n, 1007, 1 << 16);
    /* Invalid only once the fragments are joined. */
    n = 0;
    frame(buf, &n, 0, 0x1, "\xe2\x82", 2);
    frame(buf, &n, 1, 0x0, "X", 1);
    expect_error("UTF-8 broken across fragments", buf, n, 1007, 1 << 16);

    static char big[200];
    memset(big, 'b', sizeof(big));
    n = 0;
    frame(buf, &n, 1, 0x1, big, 101);
    expect_error("one frame over max_msg", buf, n, 1009, 100);
    n = 0;
    frame(buf, &n, 0, 0x1, big, 60);
    frame(buf, &n, 1, 0x0, big, 60);
    expect_error("fragments over max_msg", buf, n, 1009, 100);
}

static void test_max_msg_exact(void)
{
    rc_ws_pool pool;
    rc_ws_pool_init(&pool, &hooks, 100, 4);
    rc_ws_sess *s = rc_ws_get(&pool);
    ev_reset();
    char m[100];
    memset(m, 'm', sizeof(m));
    size_t n = 0;
    frame(buf, &n, 0, 0x1, m, 40);
    frame(buf, &n, 1, 0x0, m + 40, 60);
    CHECK_EQ_INT(rc_ws_feed(&pool, s, &conn_a, buf, n), RC_WS_IDLE);
    CHECK_EQ_INT(nev, 1);
    CHECK(ev_is(0, EV_TEXT, m, 100));
    rc_ws_put(&pool, s);
    rc_ws_pool_free(&pool);
    ev_reset();
}

/* ---- sizes declared by headers -------------------------------------------- */

/* Appends a masked header (no payload) declaring plen bytes, its length in
 * the shortest form (RFC 6455 5.2). */
static void header_only(uint8_t *b, size_t *n, uint8_t first, uint64_t plen)
{
    uint8_t *o = b + *n;
    size_t h = 0, ext = plen < 126 ? 0 : plen < 65536 ? 2 : 8;
    o[h++] = first;
    o[h++] = (uint8_t)(0x80 | (ext == 0 ? plen : ext == 2 ? 126 : 127));
    for (size_t i = 0; i < ext; i++)
        o[h++] = (uint8_t)(plen >> (8 * (ext - 1 - i)));
    memset(o + h, 0x5a, 4);
    *n += h + 4;
}

/* Feeds b[0..n) in pieces of at most step bytes; returns the last result. */
static int feed_steps(rc_ws_pool *pool, rc_ws_sess *s, const uint8_t *b, size_t n, size_t step)
{
    int r = RC_WS_MORE;
    for (size_t i = 0; i < n && r != RC_WS_DONE; i += step)
        r = rc_ws_feed(pool, s, &conn_a, b + i, RC_MIN(step, n - i));
    return r;
}

/* A header declaring more than max_msg is refused with 1009 as soon as it is
 * complete, before any payload; what came before it is read normally. */
static void test_declared_too_big(void)
{
    rc_ws_pool pool;
    rc_ws_pool_init(&pool, &hooks, 100, 4);
    const size_t steps[] = {14, 1, 5};
    for (size_t k = 0; k < RC_ARRAY_LEN(steps); k++) {
        rc_ws_sess *s = rc_ws_get(&pool);
        ev_reset();
        size_t n = 0;
        header_only(buf, &n, 0x81, (uint64_t)1 << 40);
        CHECK_EQ_INT(feed_steps(&pool, s, buf, n, steps[k]), RC_WS_DONE);
        CHECK_EQ_INT(nev, 1);
        CHECK_EQ_INT(close_code(0), 1009);
        CHECK_EQ_INT(evs[0].peer_closed, 0);
        rc_ws_discard(&pool, s);
    }

    /* A whole message, then the header, in one feed: message, then 1009. */
    rc_ws_sess *s = rc_ws_get(&pool);
    ev_reset();
    size_t n = 0;
    frame(buf, &n, 1, 0x1, "first", 5);
    header_only(buf, &n, 0x82, 101);
    CHECK_EQ_INT(rc_ws_feed(&pool, s, &conn_a, buf, n), RC_WS_DONE);
    CHECK_EQ_INT(nev, 2);
    CHECK(ev_is(0, EV_TEXT, "first", 5));
    CHECK_EQ_INT(close_code(1), 1009);
    rc_ws_discard(&pool, s);

    /* Fragments: 60 bytes so far, a continuation declaring 41 more. */
    static char part[60];
    memset(part, 'p', sizeof(part));
    s = rc_ws_get(&pool);
    ev_reset();
    n = 0;
    frame(buf, &n, 0, 0x1, part, 60);
    CHECK_EQ_INT(rc_ws_feed(&pool, s, &conn_a, buf, n), RC_WS_MORE);
    n = 0;
    header_only(buf, &n, 0x80, 41);
    CHECK_EQ_INT(rc_ws_feed(&pool, s, &conn_a, buf, n), RC_WS_DONE);
    CHECK_EQ_INT(nev, 1);
    CHECK_EQ_INT(close_code(0), 1009);
    rc_ws_discard(&pool, s);

    /* Exactly the limit is waited for, as before. */
    s = rc_ws_get(&pool);
    ev_reset();
    n = 0;
    frame(buf, &n, 0, 0x1, part, 60);
    header_only(buf, &n, 0x80, 40);
    CHECK_EQ_INT(rc_ws_feed(&pool, s, &conn_a, buf, n), RC_WS_MORE);
    CHECK_EQ_INT(nev, 0);
    rc_ws_discard(&pool, s);

    /* After the client's close nothing is judged: its close is echoed. */
    s = rc_ws_get(&pool);
    ev_reset();
    n = 0;
    frame(buf, &n, 1, 0x8, "\x03\xe8", 2);
    header_only(buf, &n, 0x81, (uint64_t)1 << 40);
    CHECK_EQ_INT(rc_ws_feed(&pool, s, &conn_a, buf, n), RC_WS_DONE);
    CHECK_EQ_INT(nev, 1);
    CHECK_EQ_INT(close_code(0), 1000);
    CHECK_EQ_INT(evs[0].peer_closed, 1);
    rc_ws_discard(&pool, s);

    /* A control frame declaring more than 125 bytes stays a protocol error,
     * found on its header too. */
    s = rc_ws_get(&pool);
    ev_reset();
    n = 0;
    header_only(buf, &n, 0x89, (uint64_t)1 << 40);
    CHECK_EQ_INT(rc_ws_feed(&pool, s, &conn_a, buf, n), RC_WS_DONE);
    CHECK_EQ_INT(nev, 1);
    CHECK(evs[0].opcode == 0x8 && (evs[0].len == 0 || close_code(0) == 1002));
    rc_ws_discard(&pool, s);

    CHECK_EQ_INT(pool.in_use, 0);
    rc_ws_pool_free(&pool);
    ev_reset();
}

/* ---- pool ---------------------------------------------------------------- */

static void test_pool_reuse(void)
{
    rc_ws_pool pool;
    rc_ws_pool_init(&pool, &hooks, 1 << 16, 2);
    rc_ws_sess *a = rc_ws_get(&pool);
    CHECK_EQ_INT(pool.created, 1);
    CHECK_EQ_INT(pool.in_use, 1);
    ev_reset();
    size_t n = 0;
    frame(buf, &n, 0, 0x1, "part-", 5);
    frame(buf, &n, 1, 0x0, "one", 3);
    frame(buf, &n, 1, 0x9, "q", 1);
    CHECK_EQ_INT(rc_ws_feed(&pool, a, &conn_a, buf, n), RC_WS_IDLE);
    CHECK_EQ_INT(nev, 2);
    rc_ws_put(&pool, a);
    CHECK_EQ_INT(pool.n_free, 1);
    CHECK_EQ_INT(pool.in_use, 0);

    /* The reused context starts clean: a new message on another connection
     * is parsed from its first byte, with nothing left from the last one. */
    rc_ws_sess *b = rc_ws_get(&pool);
    CHECK(b == a);
    CHECK_EQ_INT(pool.created, 1);
    CHECK_EQ_INT(pool.n_free, 0);
    ev_reset();
    n = 0;
    frame(buf, &n, 1, 0x1, "fresh", 5);
    CHECK_EQ_INT(rc_ws_feed(&pool, b, &conn_b, buf, n), RC_WS_IDLE);
    CHECK_EQ_INT(nev, 1);
    CHECK(ev_is(0, EV_TEXT, "fresh", 5));
    CHECK(evs[0].conn == &conn_b);
    /* And a fragmented one on it, fed in pieces. */
    ev_reset();
    n = 0;
    frame(buf, &n, 0, 0x2, "\x01\x02", 2);
    frame(buf, &n, 1, 0x0, "\x03", 1);
    CHECK_EQ_INT(rc_ws_feed(&pool, b, &conn_b, buf, 5), RC_WS_MORE);
    CHECK_EQ_INT(rc_ws_feed(&pool, b, &conn_b, buf + 5, n - 5), RC_WS_IDLE);
    CHECK(nev == 1 && ev_is(0, EV_BINARY, "\x01\x02\x03", 3));

    /* max_free = 2: a third idle session is freed, not kept. */
    rc_ws_sess *c = rc_ws_get(&pool);
    rc_ws_sess *d = rc_ws_get(&pool);
    CHECK_EQ_INT(pool.created, 3);
    CHECK_EQ_INT(pool.in_use, 3);
    rc_ws_put(&pool, b);
    rc_ws_put(&pool, c);
    rc_ws_put(&pool, d);
    CHECK_EQ_INT(pool.n_free, 2);
    CHECK_EQ_INT(pool.in_use, 0);
    rc_ws_sess *e = rc_ws_get(&pool);
    rc_ws_sess *f = rc_ws_get(&pool);
    CHECK(e != f && (e == c || e == b) && (f == c || f == b));
    CHECK_EQ_INT(pool.created, 3);
    rc_ws_sess *g = rc_ws_get(&pool);
    CHECK_EQ_INT(pool.created, 4);

    /* Discarding frees (ASan reports a leak otherwise), and does not feed
     * the free list. */
    rc_ws_discard(&pool, e);
    rc_ws_discard(&pool, f);
    CHECK_EQ_INT(pool.n_free, 0);
    CHECK_EQ_INT(pool.in_use, 1);
    rc_ws_put(&pool, g);
    rc_ws_pool_free(&pool);
    CHECK_EQ_INT(pool.n_free, 0);
    CHECK(pool.free_list == NULL);

    /* max_free = 0 keeps nothing. */
    rc_ws_pool_init(&pool, &hooks, 1 << 16, 0);
    rc_ws_sess *h = rc_ws_get(&pool);
    rc_ws_put(&pool, h);
    CHECK_EQ_INT(pool.n_free, 0);
    h = rc_ws_get(&pool);
    CHECK_EQ_INT(pool.created, 2);
    rc_ws_discard(&pool, h);
    rc_ws_pool_free(&pool);
    ev_reset();
}

/* A session given back mid-message by mistake is not what rc_ws_put is
 * for; but one discarded mid-message must free everything it buffered. */
static void test_discard_mid_message(void)
{
    rc_ws_pool pool;
    rc_ws_pool_init(&pool, &hooks, 1 << 16, 4);
    rc_ws_sess *s = rc_ws_get(&pool);
    ev_reset();
    size_t n = 0;
    static char m[5000];
    memset(m, 'q', sizeof(m));
    frame(buf, &n, 0, 0x1, m, sizeof(m));
    frame(buf, &n, 0, 0x0, m, 100);
    CHECK_EQ_INT(rc_ws_feed(&pool, s, &conn_a, buf, n), RC_WS_MORE);
    CHECK_EQ_INT(nev, 0);
    rc_ws_discard(&pool, s);
    CHECK_EQ_INT(pool.in_use, 0);
    rc_ws_pool_free(&pool);
    ev_reset();
}

/* ---- permessage-deflate ---------------------------------------------------- */

/* Feeds b to a session with deflate on; returns the result, events in evs. */
static int feed_deflate(const uint8_t *b, size_t n, uint64_t max_msg)
{
    rc_ws_pool pool;
    rc_ws_pool_init(&pool, &hooks, max_msg, 4);
    rc_ws_sess *s = rc_ws_get(&pool);
    rc_ws_set_deflate(s, 1);
    ev_reset();
    int r = rc_ws_feed(&pool, s, &conn_a, b, n);
    if (r == RC_WS_IDLE)
        rc_ws_put(&pool, s);
    else
        rc_ws_discard(&pool, s);
    rc_ws_pool_free(&pool);
    return r;
}

/* The last event is our close with code and a reason containing why. */
static int closed_with(int code, const char *why)
{
    if (nev < 1 || nev > MAX_EV)
        return 0;
    event *e = &evs[nev - 1];
    if (e->kind != EV_CTRL || e->opcode != 0x8 || e->peer_closed || e->len < 2)
        return 0;
    e->data[e->len] = '\0';
    return close_code(nev - 1) == code && strstr((const char *)e->data + 2, why) != NULL;
}

static void test_deflate_messages(void)
{
    static char msg[3000];
    for (size_t i = 0; i < sizeof(msg); i++)
        msg[i] = "{\"seat\":\"A1\",\"state\":\"sold\"},"[i % 29];
    rc_pmd_stream *d = rc_pmd_deflater_new();
    static uint8_t z[sizeof(msg) + 4];
    ssize_t zn = rc_pmd_compress(d, (const uint8_t *)msg, sizeof(msg), z, sizeof(msg));
    CHECK(zn > 0);

    /* Whole, then twice in one feed, then fragmented (RSV1 on the first
     * frame only), then a plain message on the same connection. */
    size_t n = 0;
    frame_raw(buf, &n, 0x80 | 0x40 | 0x1, 1, z, (size_t)zn);
    CHECK_EQ_INT(feed_deflate(buf, n, 1 << 16), RC_WS_IDLE);
    CHECK(nev == 1 && evs[0].kind == EV_TEXT && evs[0].len == sizeof(msg) &&
          memcmp(evs[0].data, msg, sizeof(msg)) == 0);
    n = 0;
    frame_raw(buf, &n, 0x80 | 0x40 | 0x1, 1, z, (size_t)zn);
    frame_raw(buf, &n, 0x40 | 0x2, 1, z, 10);
    frame_raw(buf, &n, 0x80 | 0x0, 1, z + 10, (size_t)zn - 10);
    frame(buf, &n, 1, 0x1, "plain", 5);
    CHECK_EQ_INT(feed_deflate(buf, n, 1 << 16), RC_WS_IDLE);
    CHECK(nev == 3 && evs[1].kind == EV_BINARY && evs[1].len == sizeof(msg) &&
          memcmp(evs[1].data, msg, sizeof(msg)) == 0 && evs[2].kind == EV_TEXT && evs[2].len == 5);

    /* Inflating past the limit: 1009, even though the compressed frame is
     * far below it (a zip bomb). */
    n = 0;
    frame_raw(buf, &n, 0x80 | 0x40 | 0x1, 1, z, (size_t)zn);
    CHECK_EQ_INT(feed_deflate(buf, n, 1000), RC_WS_DONE);
    CHECK(closed_with(1009, "inflates past the limit of 1000 bytes"));
    CHECK_EQ_INT(nev, 1);

    /* Bad compressed data: 1007; invalid UTF-8 inside a text message: 1007. */
    n = 0;
    frame_raw(buf, &n, 0x80 | 0x40 | 0x1, 1, "\xff\xff\xff\xff", 4);
    CHECK_EQ_INT(feed_deflate(buf, n, 1 << 16), RC_WS_DONE);
    CHECK(closed_with(1007, "invalid compressed data"));
    uint8_t bad8[16 + 4];
    ssize_t bn = rc_pmd_compress(d,
                                 (const uint8_t *)"\xc0\xaf\xc0\xaf\xc0\xaf\xc0\xaf"
                                                  "\xc0\xaf\xc0\xaf\xc0\xaf\xc0\xaf",
                                 16, bad8, 16);
    CHECK(bn > 0);
    n = 0;
    frame_raw(buf, &n, 0x80 | 0x40 | 0x1, 1, bad8, (size_t)bn);
    CHECK_EQ_INT(feed_deflate(buf, n, 1 << 16), RC_WS_DONE);
    CHECK(closed_with(1007, "invalid UTF-8"));

    /* RSV1 on a continuation frame, on a control frame: 1002, and what
     * follows is not handed on. */
    n = 0;
    frame_raw(buf, &n, 0x1, 1, "ab", 2);
    frame_raw(buf, &n, 0x80 | 0x40 | 0x0, 1, "cd", 2);
    frame(buf, &n, 1, 0x1, "after", 5);
    CHECK_EQ_INT(feed_deflate(buf, n, 1 << 16), RC_WS_DONE);
    CHECK(closed_with(1002, "continuation frame"));
    CHECK_EQ_INT(nev, 1);
    n = 0;
    frame_raw(buf, &n, 0x80 | 0x40 | 0x9, 1, "p", 1);
    CHECK_EQ_INT(feed_deflate(buf, n, 1 << 16), RC_WS_DONE);
    CHECK(closed_with(1002, "control frame"));

    /* Without deflate negotiated: 1002 with its reason. */
    rc_ws_pool pool;
    rc_ws_pool_init(&pool, &hooks, 1 << 16, 4);
    rc_ws_sess *s = rc_ws_get(&pool);
    ev_reset();
    n = 0;
    frame_raw(buf, &n, 0x80 | 0x40 | 0x1, 1, z, (size_t)zn);
    CHECK_EQ_INT(rc_ws_feed(&pool, s, &conn_a, buf, n), RC_WS_DONE);
    CHECK(closed_with(1002, "not negotiated"));
    rc_ws_discard(&pool, s);
    rc_ws_pool_free(&pool);
    ev_reset();
    rc_pmd_free(d);
}

int main(void)
{
    RUN(test_text_whole);
    RUN(test_split_every_offset);
    RUN(test_fragmented);
    RUN(test_two_messages_one_feed);
    RUN(test_binary);
    RUN(test_ping_pong);
    RUN(test_ping_inside_fragments);
    RUN(test_ping_flood);
    RUN(test_close);
    RUN(test_errors);
    RUN(test_max_msg_exact);
    RUN(test_declared_too_big);
    RUN(test_pool_reuse);
    RUN(test_discard_mid_message);
    RUN(test_deflate_messages);
    return UNIT_DONE();
}
