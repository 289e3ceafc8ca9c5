/* ringload's client side of RFC 6455: handshake request and response check,
 * masked frames, and the incremental server-frame decoder. Expected values
 * come from RFC 6455 (sections 1.3, 4.1, 5.7) or are written out by hand. */
#include <stdlib.h>
#include <string.h>

#include "perf/ringload/codec.h"
#include "tests/unit/unit.h"

static const char *KEY = "dGhlIHNhbXBsZSBub25jZQ==";
static const char *ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

static void test_key_b64(void)
{
    char out[25];
    rl_ws_key_b64((const uint8_t *)"the sample nonce", out);
    CHECK_EQ_STR(out, KEY); /* RFC 6455 section 4.1's example nonce */
}

static void test_request(void)
{
    char buf[1024];
    int n = rl_hs_request(buf, sizeof(buf), "127.0.0.1:8080", "/ws", KEY, NULL, 0);
    CHECK(n > 0);
    CHECK_EQ_INT(n, strlen(buf));
    CHECK(strncmp(buf, "GET /ws HTTP/1.1\r\n", 18) == 0);
    CHECK(strstr(buf, "\r\nHost: 127.0.0.1:8080\r\n") != NULL);
    CHECK(strstr(buf, "\r\nUpgrade: websocket\r\n") != NULL);
    CHECK(strstr(buf, "\r\nConnection: Upgrade\r\n") != NULL);
    CHECK(strstr(buf, "\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n") != NULL);
    CHECK(strstr(buf, "\r\nSec-WebSocket-Version: 13\r\n") != NULL);
    CHECK(strstr(buf, "Authorization") == NULL);
    CHECK(n >= 4 && memcmp(buf + n - 4, "\r\n\r\n", 4) == 0);
    CHECK(strstr(buf, "\r\n\r\n") == buf + n - 4); /* one blank line, at the end */

    n = rl_hs_request(buf, sizeof(buf), "h", "/ws?x=1", KEY, "abc.def", 0);
    CHECK(n > 0);
    CHECK(strstr(buf, "\r\nAuthorization: Bearer abc.def\r\n") != NULL);
    CHECK(strncmp(buf, "GET /ws?x=1 HTTP/1.1\r\n", 22) == 0);
    CHECK_EQ_INT(rl_hs_request(buf, 40, "h", "/ws", KEY, NULL, 0), -1);
}

static void test_response(void)
{
    char head[512];
    snprintf(head, sizeof(head),
             "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
             "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
             ACCEPT);
    size_t hl = strlen(head), got = 0;
    int status = -7;
    const char *why = NULL;
    CHECK_EQ_INT(rl_hs_response(head, hl, KEY, &status, &got, &why), 1);
    CHECK_EQ_INT(got, hl);
    /* every proper prefix is "need more" */
    int more = 1;
    for (size_t i = 0; i < hl; i++)
        more &= rl_hs_response(head, i, KEY, &status, &got, &why) == 0;
    CHECK(more);
    /* frames right behind the head are not part of it */
    char buf[600];
    memcpy(buf, head, hl);
    memcpy(buf + hl, "\x81\x02hi", 4);
    CHECK_EQ_INT(rl_hs_response(buf, hl + 4, KEY, &status, &got, &why), 1);
    CHECK_EQ_INT(got, hl);
    /* header names and tokens are case-insensitive; lists are fine */
    snprintf(head, sizeof(head),
             "HTTP/1.1 101 OK\r\nupgrade: WebSocket\r\nconnection: keep-alive, upgrade\r\n"
             "sec-websocket-accept:   %s  \r\n\r\n",
             ACCEPT);
    CHECK_EQ_INT(rl_hs_response(head, strlen(head), KEY, &status, &got, &why), 1);
    /* list headers on several lines: the token may be on any of them */
    snprintf(head, sizeof(head),
             "HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nUpgrade: x-later\r\n"
             "Connection: Upgrade\r\nConnection: keep-alive\r\n"
             "Sec-WebSocket-Accept: %s\r\n\r\n",
             ACCEPT);
    CHECK_EQ_INT(rl_hs_response(head, strlen(head), KEY, &status, &got, &why), 1);
    snprintf(head, sizeof(head),
             "HTTP/1.1 101 OK\r\nupgrade: WebSocket\r\nconnection: keep-alive, upgrade\r\n"
             "sec-websocket-accept:   %s  \r\n\r\n",
             ACCEPT);
    /* wrong accept (the key of another nonce) */
    CHECK_EQ_INT(
        rl_hs_response(head, strlen(head), "AAAAAAAAAAAAAAAAAAAAAA==", &status, &got, &why), -1);
    CHECK_EQ_INT(status, 101);
    /* a refusal carries its status */
    const char *r403 = "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n";
    CHECK_EQ_INT(rl_hs_response(r403, strlen(r403), KEY, &status, &got, &why), -1);
    CHECK_EQ_INT(status, 403);
    const char *r503 = "HTTP/1.1 503 Service Unavailable\r\n\r\n";
    CHECK_EQ_INT(rl_hs_response(r503, strlen(r503), KEY, &status, &got, &why), -1);
    CHECK_EQ_INT(status, 503);
    /* 101 without Upgrade */
    snprintf(head, sizeof(head),
             "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
             "Sec-WebSocket-Accept: %s\r\n\r\n",
             ACCEPT);
    CHECK_EQ_INT(rl_hs_response(head, strlen(head), KEY, &status, &got, &why), -1);
    /* garbage status line */
    CHECK_EQ_INT(rl_hs_response("SSH-2.0\r\n\r\n", 11, KEY, &status, &got, &why), -1);
    CHECK_EQ_INT(status, 0);
    /* a head that never ends */
    char *big = malloc(RL_HS_MAX_HEAD);
    memset(big, 'a', RL_HS_MAX_HEAD);
    CHECK_EQ_INT(rl_hs_response(big, RL_HS_MAX_HEAD, KEY, &status, &got, &why), -1);
    free(big);
}

static void test_encode(void)
{
    /* RFC 6455 section 5.7: a masked "Hello" */
    static const uint8_t want[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                   0x7f, 0x9f, 0x4d, 0x51, 0x58};
    uint8_t out[32];
    CHECK_EQ_INT(rl_ws_frame_size(5), 11);
    CHECK_EQ_INT(rl_ws_encode(out, 0x1, "Hello", 5, 0x37fa213d), 11);
    CHECK(memcmp(out, want, 11) == 0);
    /* 16-bit length: 126, then 300 big-endian */
    uint8_t *p = malloc(300), *f = malloc(400);
    for (int i = 0; i < 300; i++)
        p[i] = (uint8_t)(i * 7);
    CHECK_EQ_INT(rl_ws_frame_size(300), 4 + 4 + 300);
    CHECK_EQ_INT(rl_ws_encode(f, 0x2, p, 300, 0x01020304), 308);
    CHECK_EQ_INT(f[0], 0x82);
    CHECK_EQ_INT(f[1], 0x80 | 126);
    CHECK_EQ_INT(f[2], 0x01);
    CHECK_EQ_INT(f[3], 0x2c);
    CHECK(memcmp(f + 4, "\x01\x02\x03\x04", 4) == 0);
    int same = 1; /* unmask by hand */
    for (int i = 0; i < 300; i++)
        same &= (uint8_t)(f[8 + i] ^ f[4 + (i & 3)]) == p[i];
    CHECK(same);
    free(p);
    free(f);
    /* 64-bit length for 70000 bytes */
    p = calloc(1, 70000);
    f = malloc(70100);
    CHECK_EQ_INT(rl_ws_frame_size(70000), 10 + 4 + 70000);
    rl_ws_encode(f, 0x1, p, 70000, 0xa5a5a5a5);
    CHECK_EQ_INT(f[1], 0x80 | 127);
    CHECK(memcmp(f + 2, "\x00\x00\x00\x00\x00\x01\x11\x70", 8) == 0); /* 70000 = 0x11170 */
    CHECK_EQ_INT(f[14], 0xa5);
    CHECK_EQ_INT(f[10 + 4 + 69999], 0xa5);
    free(p);
    free(f);
    /* close with 1000 */
    CHECK_EQ_INT(rl_ws_encode(out, 0x8, "\x03\xe8", 2, 0), 8);
    CHECK_EQ_INT(out[0], 0x88);
    CHECK_EQ_INT(out[1], 0x82);
    CHECK(memcmp(out + 6, "\x03\xe8", 2) == 0);
}

/* A log of the messages the decoder delivered. */
typedef struct got {
    int n;
    int op[16];
    size_t len[16];
    uint8_t first[16], last[16];
    int stop_at; /* return 5 on this message (1-based), 0 never */
} got;

static int on_msg(void *ud, int op, const uint8_t *p, size_t n)
{
    got *g = ud;
    if (g->n < 16) {
        g->op[g->n] = op;
        g->len[g->n] = n;
        g->first[g->n] = n ? p[0] : 0;
        g->last[g->n] = n ? p[n - 1] : 0;
    }
    g->n++;
    return g->stop_at && g->n == g->stop_at ? 5 : 0;
}

/* A stream of server frames: text "Hello" (RFC 5.7), a ping, a fragmented
 * text "Hel"+"lo" with a pong between the fragments, a 256-byte binary
 * (16-bit length), a 65536-byte binary (64-bit length), a close 1000. */
static uint8_t *server_stream(size_t *len)
{
    size_t cap = 70000 + 300 + 100, n = 0;
    uint8_t *s = malloc(cap);
#define PUT(...)                                                                                   \
    do {                                                                                           \
        static const uint8_t b_[] = {__VA_ARGS__};                                                 \
        memcpy(s + n, b_, sizeof(b_));                                                             \
        n += sizeof(b_);                                                                           \
    } while (0)
    PUT(0x81, 0x05, 'H', 'e', 'l', 'l', 'o');
    PUT(0x89, 0x02, 'r', 'c');
    PUT(0x01, 0x03, 'H', 'e', 'l');
    PUT(0x8a, 0x00);
    PUT(0x80, 0x02, 'l', 'o');
    PUT(0x82, 0x7e, 0x01, 0x00);
    for (int i = 0; i < 256; i++)
        s[n++] = (uint8_t)i;
    PUT(0x82, 0x7f, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00);
    memset(s + n, 'z', 65536);
    s[n] = 'a';
    n += 65536;
    PUT(0x88, 0x02, 0x03, 0xe8);
#undef PUT
    *len = n;
    return s;
}

static int check_log(const got *g)
{
    return g->n == 7 && g->op[0] == 1 && g->len[0] == 5 && g->first[0] == 'H' &&
           g->last[0] == 'o' && g->op[1] == 9 && g->len[1] == 2 && g->first[1] == 'r' &&
           g->op[2] == 0xa && g->len[2] == 0 && g->op[3] == 1 && g->len[3] == 5 &&
           g->first[3] == 'H' && g->last[3] == 'o' && g->op[4] == 2 && g->len[4] == 256 &&
           g->first[4] == 0 && g->last[4] == 255 && g->op[5] == 2 && g->len[5] == 65536 &&
           g->first[5] == 'a' && g->last[5] == 'z' && g->op[6] == 8 && g->len[6] == 2 &&
           g->first[6] == 0x03 && g->last[6] == 0xe8;
}

static void test_decode_splits(void)
{
    size_t n;
    uint8_t *s = server_stream(&n);
    got g = {0};
    rl_wsdec d;
    rl_wsdec_init(&d, 1 << 20);
    CHECK_EQ_INT(rl_wsdec_feed(&d, s, n, on_msg, &g), 0);
    CHECK(check_log(&g));
    CHECK_EQ_INT(d.len, 0);
    rl_wsdec_free(&d);
    /* split in two at every byte of the small frames and a sample of the
     * big one (the whole range would be quadratic) */
    int all = 1;
    for (size_t cut = 0; cut <= n; cut += cut < 400 || cut > n - 20 ? 1 : 997) {
        memset(&g, 0, sizeof(g));
        rl_wsdec_init(&d, 1 << 20);
        all &= rl_wsdec_feed(&d, s, cut, on_msg, &g) == 0;
        all &= rl_wsdec_feed(&d, s + cut, n - cut, on_msg, &g) == 0;
        all &= check_log(&g) && d.len == 0;
        rl_wsdec_free(&d);
    }
    CHECK(all);
    /* byte by byte */
    memset(&g, 0, sizeof(g));
    rl_wsdec_init(&d, 1 << 20);
    int ok = 1;
    for (size_t i = 0; i < n; i++)
        ok &= rl_wsdec_feed(&d, s + i, 1, on_msg, &g) == 0;
    CHECK(ok);
    CHECK(check_log(&g));
    rl_wsdec_free(&d);
    /* a callback that stops: its value comes back, nothing after it runs */
    memset(&g, 0, sizeof(g));
    g.stop_at = 2;
    rl_wsdec_init(&d, 1 << 20);
    CHECK_EQ_INT(rl_wsdec_feed(&d, s, n, on_msg, &g), 5);
    CHECK_EQ_INT(g.n, 2);
    rl_wsdec_free(&d);
    free(s);
}

static void test_decode_errors(void)
{
    static const struct {
        const char *what;
        uint8_t b[8];
        size_t n;
    } bad[] = {
        {"masked server frame", {0x81, 0x81, 1, 2, 3, 4, 'x'}, 7},
        {"RSV1 set", {0xc1, 0x01, 'x'}, 3},
        {"reserved opcode 3", {0x83, 0x00}, 2},
        {"reserved opcode 0xb", {0x8b, 0x00}, 2},
        {"fragmented ping", {0x09, 0x00}, 2},
        {"control frame of 126", {0x89, 0x7e, 0x00, 0x7e}, 4},
        {"continuation first", {0x80, 0x01, 'x'}, 3},
        {"text inside a fragmented message", {0x01, 0x01, 'a', 0x81, 0x01, 'b'}, 6},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        got g = {0};
        rl_wsdec d;
        rl_wsdec_init(&d, 1 << 20);
        int r = rl_wsdec_feed(&d, bad[i].b, bad[i].n, on_msg, &g);
        if (r != RL_WS_ERR_PROTO)
            fprintf(stderr, "accepted: %s\n", bad[i].what);
        CHECK_EQ_INT(r, RL_WS_ERR_PROTO);
        rl_wsdec_free(&d);
    }
    /* over the size limit */
    got g = {0};
    rl_wsdec d;
    rl_wsdec_init(&d, 100);
    CHECK_EQ_INT(rl_wsdec_feed(&d, (const uint8_t *)"\x81\x7e\x00\x65", 4, on_msg, &g),
                 RL_WS_ERR_PROTO);
    rl_wsdec_free(&d);
    /* a continuation header taking the message over the limit, no payload */
    uint8_t part[2 + 60 + 2];
    memset(part, 'a', sizeof(part));
    part[0] = 0x01;
    part[1] = 60;
    part[62] = 0x80;
    part[63] = 41;
    rl_wsdec_init(&d, 100);
    CHECK_EQ_INT(rl_wsdec_feed(&d, part, sizeof(part), on_msg, &g), RL_WS_ERR_PROTO);
    rl_wsdec_free(&d);
    /* exactly the limit is waited for */
    part[63] = 40;
    rl_wsdec_init(&d, 100);
    CHECK(rl_wsdec_feed(&d, part, sizeof(part), on_msg, &g) != RL_WS_ERR_PROTO);
    rl_wsdec_free(&d);
}

static void test_mask_round_trip(void)
{
    /* encode, clear the mask bit and unmask by hand: the decoder then gives
     * back the original payload */
    uint8_t p[1000], f[1100], u[1100];
    for (int i = 0; i < 1000; i++)
        p[i] = (uint8_t)(i * 31 + 7);
    size_t sizes[] = {0, 1, 3, 4, 5, 125, 126, 127, 1000};
    int ok = 1;
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        size_t len = sizes[k], fl = rl_ws_encode(f, 0x2, p, len, 0xdeadbeef + (uint32_t)k);
        size_t h = fl - 4 - len;
        memcpy(u, f, h);
        u[1] &= 0x7f;
        for (size_t i = 0; i < len; i++)
            u[h + i] = f[h + 4 + i] ^ f[h + (i & 3)];
        got g = {0};
        rl_wsdec d;
        rl_wsdec_init(&d, 1 << 20);
        ok &= rl_wsdec_feed(&d, u, h + len, on_msg, &g) == 0 && g.n == 1 && g.op[0] == 2 &&
              g.len[0] == len && (len == 0 || (g.first[0] == p[0] && g.last[0] == p[len - 1]));
        rl_wsdec_free(&d);
    }
    CHECK(ok);
}

int main(void)
{
    RUN(test_key_b64);
    RUN(test_request);
    RUN(test_response);
    RUN(test_encode);
    RUN(test_decode_splits);
    RUN(test_decode_errors);
    RUN(test_mask_round_trip);
    return UNIT_DONE();
}
