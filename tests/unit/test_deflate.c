/* permessage-deflate (ws/deflate.c): the offers of Sec-WebSocket-Extensions
 * (RFC 7692 section 7: several lines, several offers, parameters with token
 * or quoted values, an offer with a bad parameter skipped for the next), the
 * Safari 15.0-15.3 rule, and the streams: a compressed message is zlib's raw
 * sync-flushed stream without its last 4 bytes (checked against zlib used
 * directly here), inflates back, and the inflater holds the size limit (a
 * zip bomb), refuses garbage and a cut stream. */
#include "ws/deflate.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "tests/unit/unit.h"

/* Negotiates over the given header lines (NULL-terminated); returns the
 * answer, or "" when nothing was accepted. */
static const char *neg(const char *l0, const char *l1, const char *l2)
{
    static char answer[RC_PMD_ANSWER_MAX];
    rc_http_list h;
    memset(&h, 0, sizeof(h));
    const char *lines[3] = {l0, l1, l2};
    for (int i = 0; i < 3 && lines[i]; i++)
        h.line[h.n++] = (rc_str){lines[i], strlen(lines[i])};
    if (rc_pmd_negotiate(&h, answer) != RC_PMD_ACCEPTED)
        return "";
    return answer;
}

#define BASE "permessage-deflate; server_no_context_takeover; client_no_context_takeover"

static void test_offers_valid(void)
{
    CHECK_EQ_STR(neg("permessage-deflate", NULL, NULL), BASE);
    /* What Chromium, Firefox and Node's ws send. */
    CHECK_EQ_STR(neg("permessage-deflate; client_max_window_bits", NULL, NULL), BASE);
    CHECK_EQ_STR(neg("permessage-deflate;client_max_window_bits=10", NULL, NULL), BASE);
    CHECK_EQ_STR(neg("permessage-deflate; client_max_window_bits=\"8\"", NULL, NULL), BASE);
    CHECK_EQ_STR(neg("permessage-deflate; client_no_context_takeover; server_no_context_takeover",
                     NULL, NULL),
                 BASE);
    /* server_max_window_bits=15 is accepted, and must be answered. */
    CHECK_EQ_STR(neg("permessage-deflate; server_max_window_bits=15", NULL, NULL),
                 BASE "; server_max_window_bits=15");
    CHECK_EQ_STR(neg("permessage-deflate; server_max_window_bits = \"15\"", NULL, NULL),
                 BASE "; server_max_window_bits=15");
    /* Case and spacing. */
    CHECK_EQ_STR(neg("  PerMessage-Deflate ;\tclient_max_window_bits  ", NULL, NULL), BASE);
    /* Nothing offered, or only other extensions. */
    CHECK_EQ_STR(neg(NULL, NULL, NULL), "");
    CHECK_EQ_STR(neg("x-webkit-deflate-frame", NULL, NULL), "");
    CHECK_EQ_STR(neg("", NULL, NULL), "");
    CHECK_EQ_STR(neg("permessage-deflateX", NULL, NULL), "");
}

static void test_offers_invalid(void)
{
    /* Unknown, duplicated, or valued where no value is allowed. */
    CHECK_EQ_STR(neg("permessage-deflate; foo", NULL, NULL), "");
    CHECK_EQ_STR(
        neg("permessage-deflate; client_max_window_bits; client_max_window_bits", NULL, NULL), "");
    CHECK_EQ_STR(neg("permessage-deflate; server_no_context_takeover; server_no_context_takeover",
                     NULL, NULL),
                 "");
    CHECK_EQ_STR(neg("permessage-deflate; server_no_context_takeover=1", NULL, NULL), "");
    CHECK_EQ_STR(neg("permessage-deflate; client_no_context_takeover=\"\"", NULL, NULL), "");
    /* Window bits: 8..15, digits only, no leading zero, a value needed for
     * server_max_window_bits. */
    const char *bad[] = {"7", "16", "015", "1O", "abc", "-9", "\"\"", "\"16\"", "9.0"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char l[128];
        snprintf(l, sizeof(l), "permessage-deflate; client_max_window_bits=%s", bad[i]);
        CHECK_EQ_STR(neg(l, NULL, NULL), "");
        snprintf(l, sizeof(l), "permessage-deflate; server_max_window_bits=%s", bad[i]);
        CHECK_EQ_STR(neg(l, NULL, NULL), "");
    }
    CHECK_EQ_STR(neg("permessage-deflate; server_max_window_bits", NULL, NULL), "");
    /* Valid, but a window below 15 for us: declined. */
    CHECK_EQ_STR(neg("permessage-deflate; server_max_window_bits=10", NULL, NULL), "");
    /* Broken syntax. */
    CHECK_EQ_STR(neg("permessage-deflate; client_max_window_bits=\"10", NULL, NULL), "");
    CHECK_EQ_STR(neg("permessage-deflate client_max_window_bits", NULL, NULL), "");
    CHECK_EQ_STR(neg("permessage-deflate;", NULL, NULL), "");
    CHECK_EQ_STR(neg("permessage-deflate; =1", NULL, NULL), "");
}

static void test_several_offers(void)
{
    /* The first acceptable offer wins; a bad one is skipped. */
    CHECK_EQ_STR(
        neg("permessage-deflate; server_max_window_bits=10, permessage-deflate", NULL, NULL), BASE);
    CHECK_EQ_STR(neg("permessage-deflate; foo=bar, permessage-deflate; "
                     "server_max_window_bits=15",
                     NULL, NULL),
                 BASE "; server_max_window_bits=15");
    /* Another extension first, with a quoted comma in its parameter. */
    CHECK_EQ_STR(neg("x-foo; a=\"b, permessage-deflate\", permessage-deflate", NULL, NULL), BASE);
    CHECK_EQ_STR(neg("x-foo; a=\"b, \\\" permessage-deflate\", permessage-deflate", NULL, NULL),
                 BASE);
    /* Several lines: the offers of each, in order. */
    CHECK_EQ_STR(neg("x-foo", "permessage-deflate; client_max_window_bits=12", NULL), BASE);
    CHECK_EQ_STR(neg("permessage-deflate; bogus", "x-foo, permessage-deflate", NULL), BASE);
    CHECK_EQ_STR(
        neg("permessage-deflate; bogus", "permessage-deflate; server_max_window_bits=9", "x-foo"),
        "");
    CHECK_EQ_STR(neg(",, ,permessage-deflate,,", NULL, NULL), BASE);
}

static int ua(const char *s)
{
    return rc_pmd_ua_broken((rc_str){s, strlen(s)});
}

static void test_safari_rule(void)
{
#define MAC                                                                                        \
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "    \
    "Version/%s Safari/605.1.15"
    const char *broken[] = {"15.0", "15.1", "15.2", "15.3"};
    const char *fine[] = {"15.4", "15.6.1", "14.1.2", "16.0", "17.2", "15.30", "5.0"};
    char b[256];
    for (size_t i = 0; i < 4; i++) {
        snprintf(b, sizeof(b), MAC, broken[i]);
        CHECK_EQ_INT(ua(b), 1);
    }
    for (size_t i = 0; i < sizeof(fine) / sizeof(fine[0]); i++) {
        snprintf(b, sizeof(b), MAC, fine[i]);
        CHECK_EQ_INT(ua(b), 0);
    }
    CHECK_EQ_INT(ua("Mozilla/5.0 (iPhone; CPU iPhone OS 15_2 like Mac OS X) AppleWebKit/605.1.15 "
                    "(KHTML, like Gecko) Version/15.2 Mobile/15E148 Safari/604.1"),
                 1);
    /* Chrome on iOS is WebKit too, with no Version/. */
    CHECK_EQ_INT(ua("Mozilla/5.0 (iPhone; CPU iPhone OS 15_3_1 like Mac OS X) AppleWebKit/605.1.15 "
                    "(KHTML, like Gecko) CriOS/98.0.4758.85 Mobile/15E148 Safari/604.1"),
                 1);
    CHECK_EQ_INT(ua("Mozilla/5.0 (iPad; CPU OS 15_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
                    "like Gecko) Version/15.1 Mobile/15E148 Safari/604.1"),
                 1);
    CHECK_EQ_INT(ua("Mozilla/5.0 (iPhone; CPU iPhone OS 15_4 like Mac OS X) AppleWebKit/605.1.15 "
                    "(KHTML, like Gecko) Version/15.4 Mobile/15E148 Safari/604.1"),
                 0);
    CHECK_EQ_INT(ua("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                    "Chrome/120.0.0.0 Safari/537.36"),
                 0);
    CHECK_EQ_INT(ua("Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"), 0);
    CHECK_EQ_INT(ua("Version/15.2 Safari/605"), 0); /* not WebKit */
    CHECK_EQ_INT(rc_pmd_ua_broken(RC_STR_NULL), 0);
}

/* A realistic publication: a seat map update with repeated keys. */
static size_t seat_json(char *out, size_t cap, int seats)
{
    size_t n = (size_t)snprintf(out, cap,
                                "{\"type\":\"message\",\"channel\":\"event:42\","
                                "\"data\":{\"seats\":[");
    for (int i = 0; i < seats; i++)
        n += (size_t)snprintf(out + n, cap - n, "%s{\"seat\":\"%c%d\",\"state\":\"%s\"}",
                              i ? "," : "", 'A' + i % 8, i % 40, i % 3 ? "sold" : "held");
    n += (size_t)snprintf(out + n, cap - n, "]}}");
    return n;
}

static void test_compress_trailing_bytes(void)
{
    static char in[8192];
    size_t n = seat_json(in, sizeof(in), 60);
    rc_pmd_stream *d = rc_pmd_deflater_new();
    CHECK(d != NULL);
    uint8_t *out = malloc(n + 4);
    ssize_t z = rc_pmd_compress(d, (const uint8_t *)in, n, out, n);
    CHECK(z > 0 && (size_t)z < n / 3);

    /* zlib used directly: raw, same settings, sync flush; ours is that
     * without its last four bytes, which are 00 00 ff ff. */
    z_stream ref;
    memset(&ref, 0, sizeof(ref));
    CHECK_EQ_INT(deflateInit2(&ref, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
    uint8_t full[8192];
    ref.next_in = (Bytef *)in;
    ref.avail_in = (uInt)n;
    ref.next_out = full;
    ref.avail_out = sizeof(full);
    CHECK_EQ_INT(deflate(&ref, Z_SYNC_FLUSH), Z_OK);
    size_t flen = sizeof(full) - ref.avail_out;
    deflateEnd(&ref);
    CHECK_EQ_INT(flen, (size_t)z + 4);
    CHECK(memcmp(full + flen - 4, "\x00\x00\xff\xff", 4) == 0);
    CHECK(memcmp(full, out, (size_t)z) == 0);

    /* The same message again: the same bytes (nothing carried over). */
    uint8_t *again = malloc(n + 4);
    CHECK_EQ_INT(rc_pmd_compress(d, (const uint8_t *)in, n, again, n), z);
    CHECK(memcmp(again, out, (size_t)z) == 0);

    /* Inflates back, twice, with one inflater reset in between. */
    rc_pmd_stream *f = rc_pmd_inflater_new();
    for (int k = 0; k < 2; k++) {
        const uint8_t *got;
        size_t glen;
        CHECK_EQ_INT(rc_pmd_inflate(f, out, (size_t)z, 65536, &got, &glen), RC_PMD_OK);
        CHECK(glen == n && memcmp(got, in, n) == 0);
    }
    /* A stream with its final block (BFINAL) inflates too. */
    memset(&ref, 0, sizeof(ref));
    deflateInit2(&ref, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
    ref.next_in = (Bytef *)in;
    ref.avail_in = (uInt)n;
    ref.next_out = full;
    ref.avail_out = sizeof(full);
    CHECK_EQ_INT(deflate(&ref, Z_FINISH), Z_STREAM_END);
    flen = sizeof(full) - ref.avail_out;
    deflateEnd(&ref);
    const uint8_t *got;
    size_t glen;
    CHECK_EQ_INT(rc_pmd_inflate(f, full, flen, 65536, &got, &glen), RC_PMD_OK);
    CHECK(glen == n && memcmp(got, in, n) == 0);

    /* Too small a cap, or data that does not shrink: -1 (sent plain). */
    CHECK_EQ_INT(rc_pmd_compress(d, (const uint8_t *)in, n, out, (size_t)z), -1);
    uint8_t noise[64];
    for (size_t i = 0; i < sizeof(noise); i++)
        noise[i] = (uint8_t)(i * 167 + 13) ^ (uint8_t)(i >> 1) * 91;
    uint8_t nout[64 + 4];
    CHECK_EQ_INT(rc_pmd_compress(d, noise, sizeof(noise), nout, sizeof(noise)), -1);
    free(out);
    free(again);
    rc_pmd_free(d);
    rc_pmd_free(f);
}

static void test_inflate_limits(void)
{
    /* 1 MiB of zeros compresses to about 1 KB: a zip bomb for a 64 KiB limit. */
    size_t big = 1u << 20;
    uint8_t *zeros = calloc(1, big);
    rc_pmd_stream *d = rc_pmd_deflater_new();
    uint8_t *bomb = malloc(big + 4);
    ssize_t z = rc_pmd_compress(d, zeros, big, bomb, big);
    CHECK(z > 0 && z < 4096);
    rc_pmd_stream *f = rc_pmd_inflater_new();
    const uint8_t *got;
    size_t glen;
    CHECK_EQ_INT(rc_pmd_inflate(f, bomb, (size_t)z, 65536, &got, &glen), RC_PMD_TOO_BIG);
    CHECK_EQ_INT(glen, 0);
    CHECK_EQ_INT(rc_pmd_inflate(f, bomb, (size_t)z, big - 1, &got, &glen), RC_PMD_TOO_BIG);
    CHECK_EQ_INT(rc_pmd_inflate(f, bomb, (size_t)z, big, &got, &glen), RC_PMD_OK);
    CHECK_EQ_INT(glen, big);

    /* The limit is exact on a small message too. */
    static char in[4096];
    size_t n = seat_json(in, sizeof(in), 30);
    uint8_t out[4096 + 4];
    z = rc_pmd_compress(d, (const uint8_t *)in, n, out, n);
    CHECK(z > 0);
    CHECK_EQ_INT(rc_pmd_inflate(f, out, (size_t)z, n, &got, &glen), RC_PMD_OK);
    CHECK_EQ_INT(rc_pmd_inflate(f, out, (size_t)z, n - 1, &got, &glen), RC_PMD_TOO_BIG);

    /* Garbage, a stream cut in the middle, an empty one. */
    uint8_t junk[32];
    memset(junk, 0xff, sizeof(junk));
    CHECK_EQ_INT(rc_pmd_inflate(f, junk, sizeof(junk), 65536, &got, &glen), RC_PMD_BAD);
    CHECK_EQ_INT(rc_pmd_inflate(f, out, (size_t)z / 2, 65536, &got, &glen), RC_PMD_BAD);
    /* After errors the inflater is as good as new. */
    CHECK_EQ_INT(rc_pmd_inflate(f, out, (size_t)z, 65536, &got, &glen), RC_PMD_OK);
    CHECK(glen == n && memcmp(got, in, n) == 0);
    free(zeros);
    free(bomb);
    rc_pmd_free(d);
    rc_pmd_free(f);
}

static void test_utf8(void)
{
    CHECK(rc_utf8_valid((const uint8_t *)"", 0));
    CHECK(rc_utf8_valid((const uint8_t *)"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80", 15));
    CHECK(!rc_utf8_valid((const uint8_t *)"\xc0\xaf", 2));         /* overlong */
    CHECK(!rc_utf8_valid((const uint8_t *)"\xed\xa0\x80", 3));     /* surrogate */
    CHECK(!rc_utf8_valid((const uint8_t *)"\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
    CHECK(!rc_utf8_valid((const uint8_t *)"\xe2\x82", 2));         /* cut */
    CHECK(!rc_utf8_valid((const uint8_t *)"\x80", 1));
}

int main(void)
{
    RUN(test_offers_valid);
    RUN(test_offers_invalid);
    RUN(test_several_offers);
    RUN(test_safari_rule);
    RUN(test_compress_trailing_bytes);
    RUN(test_inflate_limits);
    RUN(test_utf8);
    return UNIT_DONE();
}
