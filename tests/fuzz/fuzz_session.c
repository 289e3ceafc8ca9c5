/* WebSocket frames through the session layer (ws/session.c, wslay plus the
 * frame-boundary scan), driven the way engine/conn.c drives it: take a
 * session when bytes arrive, feed, give it back to the pool on RC_WS_IDLE,
 * discard it on RC_WS_DONE and stop reading.
 *
 * The input's first three bytes choose: the form of the rest (raw bytes, or
 * records the driver turns into frames, masked unless a record says not), a
 * seed for the chunking, and the message size limit. The stream is fed twice:
 * all at once, and in chunks of 1..64 bytes with sessions returned to and
 * taken from a pool between messages. Invariants:
 *  - both feedings report the same messages, pongs and closes in the same
 *    order (so the boundary scan never hands back a session mid-message,
 *    and a reused context behaves as a fresh one), except that pongs sent
 *    may stop early in one of them, and the code of a close for an error
 *    may differ (see compare());
 *  - messages are no longer than the limit, their total no more than the
 *    bytes fed, and text messages are valid UTF-8;
 *  - control frames sent are pongs or closes with at most 125 bytes; a close
 *    carries nothing or a code RFC 6455 section 7.4 allows a server to send
 *    (1002/1007/1009 when ringcast's side found the error), and ends the
 *    session (RC_WS_DONE). */
#include <string.h>

#include "tests/fuzz/fuzz.h"
#include "ws/frame.h"
#include "ws/session.h"

#define MAX_EVENTS 512

typedef struct event {
    int kind; /* 1 text, 2 binary, 3 pong received, 4 ctrl sent */
    int opcode, peer_closed;
    size_t len;
    uint64_t hash;
} event;

typedef struct log {
    event ev[MAX_EVENTS];
    int n;
    int overflow;
    uint64_t max_msg;
    size_t msg_bytes;
    int closes;
} log;

static uint64_t fnv(const uint8_t *p, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}

static int utf8_valid(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t k;
        uint32_t cp, min;
        if ((c & 0xe0) == 0xc0)
            k = 1, cp = c & 0x1f, min = 0x80;
        else if ((c & 0xf0) == 0xe0)
            k = 2, cp = c & 0x0f, min = 0x800;
        else if ((c & 0xf8) == 0xf0)
            k = 3, cp = c & 0x07, min = 0x10000;
        else
            return 0;
        if (n - i <= k)
            return 0;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xc0) != 0x80)
                return 0;
            cp = cp << 6 | (s[i + j] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += k + 1;
    }
    return 1;
}

static void add(log *l, event e)
{
    if (l->n == MAX_EVENTS) {
        l->overflow = 1;
        return;
    }
    l->ev[l->n++] = e;
}

static void on_msg(log *l, int kind, const uint8_t *msg, size_t len)
{
    FUZZ_CHECK(len <= l->max_msg);
    if (kind == 1)
        FUZZ_CHECK(utf8_valid(msg, len));
    l->msg_bytes += len;
    add(l, (event){kind, 0, 0, len, fnv(msg, len)});
}

static void h_text(void *conn, const uint8_t *msg, size_t len)
{
    on_msg(conn, 1, msg, len);
}

static void h_binary(void *conn, const uint8_t *msg, size_t len)
{
    on_msg(conn, 2, msg, len);
}

static void h_pong(void *conn)
{
    add(conn, (event){3, 0, 0, 0, 0});
}

static int close_code_ok(unsigned code)
{
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
           (code >= 3000 && code <= 4999);
}

static void h_ctrl(void *conn, int opcode, const uint8_t *payload, size_t len, int peer_closed)
{
    log *l = conn;
    FUZZ_CHECK(opcode == RC_WS_OP_PONG || opcode == RC_WS_OP_CLOSE);
    FUZZ_CHECK(len <= 125);
    if (opcode == RC_WS_OP_CLOSE) {
        FUZZ_CHECK(len != 1);
        if (len >= 2) {
            unsigned code = (unsigned)payload[0] << 8 | payload[1];
            FUZZ_CHECK(close_code_ok(code));
            if (!peer_closed)
                FUZZ_CHECK(code == 1002 || code == 1007 || code == 1009);
            if (getenv("FUZZ_VERBOSE")) {
                fprintf(stderr, "close sent (peer_closed %d):", peer_closed);
                for (size_t i = 0; i < len; i++)
                    fprintf(stderr, " %02x", payload[i]);
                fprintf(stderr, "\n");
            }
            /* Found once (crashes/session-close-reason-utf8): a close
             * reason that is not UTF-8 echoed when it came in pieces. */
            FUZZ_CHECK(utf8_valid(payload + 2, len - 2));
        }
        l->closes++;
    }
    /* Whether the peer had closed is read once per feed, so it is compared
     * only for closes: a pong flushed in the feed that also read a close
     * sees the flag set, the same pong fed alone does not. */
    add(l, (event){4, opcode, opcode == RC_WS_OP_CLOSE ? peer_closed : 0, len, fnv(payload, len)});
}

static const rc_ws_hooks hooks = {h_text, h_binary, h_pong, h_ctrl, NULL};

/* Turns records into frames: [first byte][flags][length] then the payload
 * (taken from the input, zeros when it runs out). flags bit 0: leave the
 * frame unmasked; bit 1: spell the length with 8 bytes; bit 2: with 2 bytes
 * even when short; bits 3-7 and the length: length = L + 256 * (flags>>5)
 * when bit 3 is set, else L. */
static size_t build(const uint8_t *in, size_t n, uint8_t *out, size_t cap, fuzz_rng *rng)
{
    size_t o = 0, i = 0;
    while (i + 3 <= n) {
        uint8_t first = in[i], flags = in[i + 1];
        size_t len = in[i + 2];
        i += 3;
        if (flags & 8)
            len += 256u * (flags >> 5);
        if (o + 14 + len > cap)
            break;
        int masked = !(flags & 1);
        out[o++] = first;
        uint8_t mbit = masked ? 0x80 : 0;
        if (flags & 2) {
            out[o++] = mbit | 127;
            for (int k = 7; k >= 0; k--)
                out[o++] = (uint8_t)((uint64_t)len >> (8 * k));
        } else if (len >= 126 || (flags & 4)) {
            out[o++] = mbit | 126;
            out[o++] = (uint8_t)(len >> 8);
            out[o++] = (uint8_t)len;
        } else {
            out[o++] = (uint8_t)(mbit | len);
        }
        uint8_t key[4] = {0, 0, 0, 0};
        if (masked) {
            uint32_t k = fuzz_next(rng);
            memcpy(key, &k, 4);
            memcpy(out + o, key, 4);
            o += 4;
        }
        for (size_t j = 0; j < len; j++) {
            uint8_t b = i < n ? in[i++] : 0;
            out[o++] = b ^ key[j & 3];
        }
    }
    return o;
}

static void run_whole(const uint8_t *s, size_t n, log *l)
{
    rc_ws_pool pool;
    rc_ws_pool_init(&pool, &hooks, l->max_msg, 0);
    rc_ws_sess *sess = rc_ws_get(&pool);
    int r = rc_ws_feed(&pool, sess, l, s, n);
    FUZZ_CHECK(r == RC_WS_MORE || r == RC_WS_IDLE || r == RC_WS_DONE);
    if (l->closes)
        FUZZ_CHECK(r == RC_WS_DONE);
    if (r == RC_WS_IDLE)
        rc_ws_put(&pool, sess);
    else
        rc_ws_discard(&pool, sess);
    FUZZ_CHECK(pool.in_use == 0);
    rc_ws_pool_free(&pool);
}

static void run_chunked(const uint8_t *s, size_t n, log *l, fuzz_rng *rng, rc_ws_pool *pool)
{
    rc_ws_sess *sess = NULL;
    size_t off = 0;
    while (off < n) {
        size_t k = 1 + fuzz_next(rng) % 64;
        if (k > n - off)
            k = n - off;
        if (!sess)
            sess = rc_ws_get(pool);
        int closes = l->closes;
        int r = rc_ws_feed(pool, sess, l, s + off, k);
        off += k;
        if (l->closes != closes)
            FUZZ_CHECK(r == RC_WS_DONE);
        if (r == RC_WS_DONE) {
            rc_ws_discard(pool, sess);
            return;
        }
        if (r == RC_WS_IDLE) {
            rc_ws_put(pool, sess);
            sess = NULL;
        } else {
            FUZZ_CHECK(r == RC_WS_MORE);
        }
    }
    if (sess)
        rc_ws_discard(pool, sess);
}

static log la, lb;

/* Compares the two logs: pongs == 0 everything but the pongs sent, which
 * must match exactly; pongs == 1 only the pongs sent, where one log's must be
 * a prefix of the other's. wslay puts a close it queues for an error ahead of
 * pongs still waiting and sends nothing after a close, so a ping answered in
 * one feed can go unanswered when the error arrives in the same feed; the
 * connection ends either way. */
static int wanted(const event *e, int pongs)
{
    int is_pong = e->kind == 4 && e->opcode == RC_WS_OP_PONG;
    return is_pong == pongs;
}

static void compare(const log *a, const log *b, int pongs)
{
    int i = 0, j = 0;
    for (;;) {
        while (i < a->n && !wanted(&a->ev[i], pongs))
            i++;
        while (j < b->n && !wanted(&b->ev[j], pongs))
            j++;
        if (i == a->n || j == b->n)
            break;
        const event *x = &a->ev[i++], *y = &b->ev[j++];
        FUZZ_CHECK(x->kind == y->kind && x->opcode == y->opcode);
        FUZZ_CHECK(x->peer_closed == y->peer_closed);
        /* An invalid frame can break more than one rule; which one wslay
         * names (1002 or 1007) depends on how much of it it has seen. */
        if (x->kind == 4 && x->opcode == RC_WS_OP_CLOSE && !x->peer_closed)
            continue;
        FUZZ_CHECK(x->len == y->len && x->hash == y->hash);
    }
    if (!pongs)
        FUZZ_CHECK(i == a->n && j == b->n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t mode = fuzz_take(&data, &size);
    fuzz_rng rng = {fuzz_take(&data, &size)};
    uint8_t lim = fuzz_take(&data, &size);
    uint64_t max_msg = lim < 128 ? 65536 : 16 + (uint64_t)(lim - 128) * 8;
    if (size > 65536)
        return 0;

    static uint8_t stream[1 << 18];
    const uint8_t *s = data;
    size_t n = size;
    if (!(mode & 1)) {
        n = build(data, size, stream, sizeof(stream), &rng);
        s = stream;
    }

    memset(&la, 0, sizeof(la));
    memset(&lb, 0, sizeof(lb));
    la.max_msg = lb.max_msg = max_msg;
    run_whole(s, n, &la);

    /* The pool keeps contexts across inputs too, as a shard's does. */
    static rc_ws_pool pool;
    static int pool_ready;
    if (!pool_ready || pool.max_msg != max_msg) {
        if (pool_ready)
            rc_ws_pool_free(&pool);
        rc_ws_pool_init(&pool, &hooks, max_msg, 4);
        pool_ready = 1;
    }
    run_chunked(s, n, &lb, &rng, &pool);
    FUZZ_CHECK(pool.in_use == 0);

    if (getenv("FUZZ_VERBOSE")) {
        for (int i = 0; i < la.n || i < lb.n; i++) {
            const event *x = i < la.n ? &la.ev[i] : &(event){0};
            const event *y = i < lb.n ? &lb.ev[i] : &(event){0};
            fprintf(stderr, "%2d  whole: kind %d op %d pc %d len %zu h %llx |  chunked: kind %d op %d pc %d len %zu h %llx\n",
                    i, x->kind, x->opcode, x->peer_closed, x->len, (unsigned long long)x->hash, y->kind, y->opcode,
                    y->peer_closed, y->len, (unsigned long long)y->hash);
        }
    }
    FUZZ_CHECK(la.msg_bytes <= n && lb.msg_bytes <= n);
    FUZZ_CHECK(la.closes <= 1 && lb.closes <= 1);
    if (!la.overflow && !lb.overflow) {
        compare(&la, &lb, 0);
        compare(&la, &lb, 1);
    }
    return 0;
}
