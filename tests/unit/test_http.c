/* Unit tests for net/http.c: the request head parser, response formatter,
 * query decoding and token lists. Expected values come from RFC 9110/9112
 * and from counting the bytes of the literal requests by hand. */
#include "net/http.h"
#include "tests/unit/unit.h"

#include <stdlib.h>
#include <string.h>

static int str_is(rc_str s, const char *lit)
{
    return s.p != NULL && s.n == strlen(lit) && memcmp(s.p, lit, s.n) == 0;
}

/* The list came on one line, holding exactly lit. */
static int list_is(const rc_http_list *l, const char *lit)
{
    return l->n == 1 && str_is(l->line[0], lit);
}

/* A list header that came on one line. */
static const rc_http_list *one(rc_str v)
{
    static rc_http_list l;
    memset(&l, 0, sizeof(l));
    l.line[0] = v;
    l.n = v.p != NULL;
    return &l;
}

static int parse(const char *s, rc_http_req *req)
{
    return rc_http_parse(s, strlen(s), 8192, req);
}

/* The example handshake of RFC 6455 section 1.2, with a query and extras. */
static const char upgrade_req[] = "GET /chat?token=abc&x=1 HTTP/1.1\r\n"
                                  "Host: server.example.com\r\n"
                                  "Upgrade: websocket\r\n"
                                  "Connection: Upgrade\r\n"
                                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                  "Origin: http://example.com\r\n"
                                  "Sec-WebSocket-Protocol: chat, superchat\r\n"
                                  "Sec-WebSocket-Version: 13\r\n"
                                  "X-Custom:   padded value \t\r\n"
                                  "\r\n";

static void test_valid_upgrade(void)
{
    rc_http_req r;
    CHECK_EQ_INT(parse(upgrade_req, &r), RC_HTTP_OK);
    CHECK(str_is(r.method, "GET"));
    CHECK(str_is(r.target, "/chat?token=abc&x=1"));
    CHECK(str_is(r.path, "/chat"));
    CHECK(str_is(r.query, "token=abc&x=1"));
    CHECK_EQ_INT(r.minor_version, 1);
    CHECK(str_is(r.host, "server.example.com"));
    CHECK(list_is(&r.upgrade, "websocket"));
    CHECK(list_is(&r.connection, "Upgrade"));
    CHECK(str_is(r.ws_key, "dGhlIHNhbXBsZSBub25jZQ=="));
    CHECK(str_is(r.ws_version, "13"));
    CHECK(list_is(&r.ws_protocol, "chat, superchat"));
    CHECK(str_is(r.origin, "http://example.com"));
    CHECK(r.authorization.p == NULL);
    CHECK(r.content_type.p == NULL);
    CHECK(r.x_api_key.p == NULL);
    CHECK_EQ_INT(r.content_length, -1);
    CHECK_EQ_INT(r.n_headers, 8);
    CHECK_EQ_INT(r.head_len, sizeof(upgrade_req) - 1);
}

static void test_split_every_offset(void)
{
    size_t n = sizeof(upgrade_req) - 1;
    rc_http_req full, r;
    CHECK_EQ_INT(rc_http_parse(upgrade_req, n, 8192, &full), RC_HTTP_OK);
    int bad = 0;
    for (size_t k = 0; k < n; k++) {
        /* A heap copy of exactly k bytes lets ASan catch any read past len. */
        char *b = malloc(k ? k : 1);
        memcpy(b, upgrade_req, k);
        if (rc_http_parse(b, k, 8192, &r) != RC_HTTP_INCOMPLETE)
            bad++;
        free(b);
    }
    CHECK_EQ_INT(bad, 0);
    char *b = malloc(n);
    memcpy(b, upgrade_req, n);
    CHECK_EQ_INT(rc_http_parse(b, n, 8192, &r), RC_HTTP_OK);
    CHECK_EQ_INT(r.head_len, full.head_len);
    CHECK_EQ_INT(r.n_headers, full.n_headers);
    CHECK_EQ_INT(r.ws_key.p - b, full.ws_key.p - upgrade_req);
    CHECK_EQ_INT(r.ws_key.n, full.ws_key.n);
    CHECK_EQ_INT(r.query.p - b, full.query.p - upgrade_req);
    CHECK_EQ_INT(r.origin.p - b, full.origin.p - upgrade_req);
    free(b);
}

static void test_body_after_head(void)
{
    const char *s = "POST /api/publish HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n"
                    "Content-Type: application/json\r\nX-API-Key: k1\r\n\r\nhello";
    rc_http_req r;
    CHECK_EQ_INT(parse(s, &r), RC_HTTP_OK);
    CHECK(str_is(r.method, "POST"));
    CHECK_EQ_INT(r.content_length, 5);
    CHECK(str_is(r.content_type, "application/json"));
    CHECK(str_is(r.x_api_key, "k1"));
    CHECK_EQ_INT(r.head_len, strlen(s) - 5);
    CHECK_EQ_INT(r.query.n, 0);
    CHECK(str_is(r.path, "/api/publish"));
}

static void test_truncated(void)
{
    rc_http_req r;
    CHECK_EQ_INT(parse("", &r), RC_HTTP_INCOMPLETE);
    CHECK_EQ_INT(parse("GET / HTTP/1.1\r\nHost: a\r\n", &r), RC_HTTP_INCOMPLETE);
    CHECK_EQ_INT(parse("GET / HTTP/1.1\r\nHost: a\r\n\r", &r), RC_HTTP_INCOMPLETE);
    CHECK_EQ_INT(rc_http_parse(NULL, 0, 8192, &r), RC_HTTP_INCOMPLETE);
}

static void test_oversized(void)
{
    const char *s = "GET / HTTP/1.1\r\nHost: a\r\n\r\n"; /* 27 bytes */
    rc_http_req r;
    CHECK_EQ_INT(rc_http_parse(s, 27, 27, &r), RC_HTTP_OK);
    CHECK_EQ_INT(rc_http_parse(s, 27, 26, &r), RC_HTTP_ETOOBIG);
    /* The end is in the buffer but past max: still too big. */
    CHECK_EQ_INT(rc_http_parse(s, 27, 20, &r), RC_HTTP_ETOOBIG);
    CHECK_EQ_INT(rc_http_parse(s, 20, 20, &r), RC_HTTP_ETOOBIG);
    CHECK_EQ_INT(rc_http_parse(s, 19, 20, &r), RC_HTTP_INCOMPLETE);

    /* A long run of a valid header that never ends. */
    size_t n = 10000;
    char *big = malloc(n);
    memcpy(big, "GET / HTTP/1.1\r\nX-Long: ", 24);
    memset(big + 24, 'a', n - 24);
    CHECK_EQ_INT(rc_http_parse(big, n, 8192, &r), RC_HTTP_ETOOBIG);
    CHECK_EQ_INT(rc_http_parse(big, 8192, 8192, &r), RC_HTTP_ETOOBIG);
    CHECK_EQ_INT(rc_http_parse(big, 8191, 8192, &r), RC_HTTP_INCOMPLETE);
    free(big);
}

static void test_too_many_headers(void)
{
    char buf[4096];
    size_t o = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\n");
    for (int i = 0; i < 64; i++)
        o += (size_t)snprintf(buf + o, sizeof(buf) - o, "X-H%d: v\r\n", i);
    memcpy(buf + o, "\r\n", 3);
    rc_http_req r;
    CHECK_EQ_INT(parse(buf, &r), RC_HTTP_OK);
    CHECK_EQ_INT(r.n_headers, 64);
    o += (size_t)snprintf(buf + o, sizeof(buf) - o, "X-H64: v\r\n\r\n");
    CHECK_EQ_INT(parse(buf, &r), RC_HTTP_EBAD);
}

static void test_duplicates(void)
{
    static const char *uniq[] = {
        "Host",   "Sec-WebSocket-Key", "Sec-WebSocket-Version", "Authorization",
        "Origin", "Content-Length",    "Content-Type",          "X-API-Key"};
    rc_http_req r;
    char buf[256];
    for (size_t i = 0; i < RC_ARRAY_LEN(uniq); i++) {
        snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\n%s: 1\r\nx: y\r\n%s: 1\r\n\r\n", uniq[i],
                 uniq[i]);
        CHECK_EQ_INT(parse(buf, &r), RC_HTTP_EDUP);
    }
    /* Case-insensitive names. */
    CHECK_EQ_INT(parse("GET / HTTP/1.1\r\nhost: a\r\nHOST: a\r\n\r\n", &r), RC_HTTP_EDUP);

    /* List headers may repeat: every line is kept, in order. */
    CHECK_EQ_INT(parse("GET / HTTP/1.1\r\nConnection: a\r\nconnection: b\r\n"
                       "Sec-WebSocket-Protocol: p1\r\nSec-WebSocket-Protocol: p2, p3\r\n"
                       "Upgrade: h2c\r\nUPGRADE: websocket\r\n"
                       "Sec-WebSocket-Extensions: permessage-deflate\r\n"
                       "Sec-WebSocket-Extensions: x-other; a=1\r\n"
                       "Expect: 100-continue\r\n\r\n",
                       &r),
                 RC_HTTP_OK);
    CHECK_EQ_INT(r.connection.n, 2);
    CHECK(str_is(r.connection.line[0], "a") && str_is(r.connection.line[1], "b"));
    CHECK_EQ_INT(r.ws_protocol.n, 2);
    CHECK(str_is(r.ws_protocol.line[0], "p1") && str_is(r.ws_protocol.line[1], "p2, p3"));
    CHECK_EQ_INT(r.upgrade.n, 2);
    CHECK(str_is(r.upgrade.line[1], "websocket"));
    CHECK_EQ_INT(r.ws_extensions.n, 2);
    CHECK(str_is(r.ws_extensions.line[0], "permessage-deflate"));
    CHECK(str_is(r.ws_extensions.line[1], "x-other; a=1"));
    CHECK(list_is(&r.expect, "100-continue"));
    CHECK_EQ_INT(r.n_headers, 9);
    CHECK_EQ_INT(rc_http_has_token(&r.connection, "b"), 1);
    CHECK_EQ_INT(rc_http_has_token(&r.upgrade, "websocket"), 1);

    /* Eight lines of one list are kept; a ninth is refused, not dropped. */
    char many[1024];
    size_t n = (size_t)snprintf(many, sizeof(many), "GET / HTTP/1.1\r\n");
    for (int i = 0; i < RC_HTTP_LIST_LINES; i++)
        n += (size_t)snprintf(many + n, sizeof(many) - n, "Connection: c%d\r\n", i);
    snprintf(many + n, sizeof(many) - n, "\r\n");
    CHECK_EQ_INT(parse(many, &r), RC_HTTP_OK);
    CHECK_EQ_INT(r.connection.n, RC_HTTP_LIST_LINES);
    CHECK_EQ_INT(rc_http_has_token(&r.connection, "c7"), 1);
    snprintf(many + n, sizeof(many) - n, "connection: c8\r\n\r\n");
    CHECK_EQ_INT(parse(many, &r), RC_HTTP_ELIST);
}

static void test_missing_and_empty(void)
{
    rc_http_req r;
    CHECK_EQ_INT(parse("GET /healthz HTTP/1.1\r\n\r\n", &r), RC_HTTP_OK);
    CHECK(r.host.p == NULL && r.upgrade.n == 0 && r.connection.n == 0);
    CHECK(r.ws_key.p == NULL && r.ws_version.p == NULL && r.ws_protocol.n == 0);
    CHECK(r.ws_extensions.n == 0 && r.expect.n == 0);
    CHECK(r.authorization.p == NULL && r.origin.p == NULL);
    CHECK_EQ_INT(r.content_length, -1);
    CHECK_EQ_INT(r.n_headers, 0);
    CHECK(str_is(r.path, "/healthz"));

    CHECK_EQ_INT(parse("GET / HTTP/1.1\r\nOrigin:\r\nHost:   \r\n\r\n", &r), RC_HTTP_OK);
    CHECK(r.origin.p != NULL && r.origin.n == 0);
    CHECK(r.host.p != NULL && r.host.n == 0);
}

static void test_bad_names_and_lines(void)
{
    static const char *bad[] = {
        "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",      /* space in name */
        "GET / HTTP/1.1\r\nHost : x\r\n\r\n",         /* space before colon */
        "GET / HTTP/1.1\r\n: x\r\n\r\n",              /* empty name */
        "GET / HTTP/1.1\r\nNoColon\r\n\r\n",          /* no colon */
        "GET / HTTP/1.1\r\nX(y): x\r\n\r\n",          /* '(' is a delimiter */
        "GET / HTTP/1.1\r\nX\xc3\xa9: x\r\n\r\n",     /* non-ASCII name */
        "GET / HTTP/1.1\r\nA: b\r\n  folded\r\n\r\n", /* obs-fold */
        "GET / HTTP/1.1\r\nA: b\r\n\tfolded\r\n\r\n",
        "GET  / HTTP/1.1\r\n\r\n", /* double space */
        "GET / HTTP/1.1 \r\n\r\n", /* trailing space */
        "GET /\r\n\r\n",           /* HTTP/0.9 */
        "GET\r\n\r\n",
        " GET / HTTP/1.1\r\n\r\n",
        "G(T / HTTP/1.1\r\n\r\n",         /* method not a token */
        "GET http://a/ HTTP/1.1\r\n\r\n", /* absolute-form */
        "GET * HTTP/1.1\r\n\r\n",
        "GET /a#frag HTTP/1.1\r\n\r\n",
        "GET /\xc3\xa9 HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.10\r\n\r\n",
        "GET / HTTP/11\r\n\r\n",
        "GET / HTTP/1.x\r\n\r\n",
        "GET / http/1.1\r\n\r\n",
        "\r\nGET / HTTP/1.1\r\n\r\n", /* leading empty line */
    };
    rc_http_req r;
    for (size_t i = 0; i < RC_ARRAY_LEN(bad); i++) {
        int rc = parse(bad[i], &r);
        if (rc != RC_HTTP_EBAD)
            fprintf(stderr, "  case %zu: rc %d\n", i, rc);
        CHECK_EQ_INT(rc, RC_HTTP_EBAD);
    }
    /* Every RFC 9110 tchar is allowed in a name. */
    CHECK_EQ_INT(parse("GET / HTTP/1.1\r\n!#$%&'*+-.^_`|~09azAZ: v\r\n\r\n", &r), RC_HTTP_OK);
    /* A bad line is reported before the head is complete. */
    CHECK_EQ_INT(parse("GET / HTTP/1.1\r\nBad Name: x\r\n", &r), RC_HTTP_EBAD);
}

static void test_control_chars(void)
{
    rc_http_req r;
    CHECK_EQ_INT(parse("GET / HTTP/1.1\r\nA: b\x01c\r\n\r\n", &r), RC_HTTP_EBAD);
    CHECK_EQ_INT(parse("GET / HTTP/1.1\r\nA: b\x7f\r\n\r\n", &r), RC_HTTP_EBAD);
    CHECK_EQ_INT(parse("GET / HTTP/1.1\r\nA: b\rc\r\n\r\n", &r), RC_HTTP_EBAD);
    CHECK_EQ_INT(parse("GET / HTTP/1.1\r\nA: b\r\r\n\r\n", &r), RC_HTTP_EBAD);
    CHECK_EQ_INT(parse("GET /a\x01 HTTP/1.1\r\n\r\n", &r), RC_HTTP_EBAD);
    CHECK_EQ_INT(parse("GET /a\tb HTTP/1.1\r\n\r\n", &r), RC_HTTP_EBAD);
    /* A NUL inside a value (strlen would stop there, so pass the length). */
    static const char nul[] = "GET / HTTP/1.1\r\nA: b\0c\r\n\r\n";
    CHECK_EQ_INT(rc_http_parse(nul, sizeof(nul) - 1, 8192, &r), RC_HTTP_EBAD);
    /* Tabs and obs-text are fine in values. */
    CHECK_EQ_INT(parse("GET / HTTP/1.1\r\nA: b\tc\xe9\r\n\r\n", &r), RC_HTTP_OK);
}

static void test_transfer_encoding(void)
{
    rc_http_req r;
    CHECK_EQ_INT(parse("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", &r), RC_HTTP_EBAD);
    CHECK_EQ_INT(
        parse("POST / HTTP/1.1\r\nContent-Length: 3\r\ntransfer-encoding: identity\r\n\r\n", &r),
        RC_HTTP_EBAD);
}

static void test_content_length(void)
{
    rc_http_req r;
    CHECK_EQ_INT(parse("POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n", &r), RC_HTTP_OK);
    CHECK_EQ_INT(r.content_length, 0);
    CHECK_EQ_INT(parse("POST / HTTP/1.1\r\nContent-Length:  42 \r\n\r\n", &r), RC_HTTP_OK);
    CHECK_EQ_INT(r.content_length, 42);
    /* INT64_MAX = 9223372036854775807 fits; one more does not. */
    CHECK_EQ_INT(parse("POST / HTTP/1.1\r\nContent-Length: 9223372036854775807\r\n\r\n", &r),
                 RC_HTTP_OK);
    CHECK(r.content_length == INT64_MAX);
    static const char *bad[] = {"9223372036854775808",
                                "99999999999999999999999",
                                "-1",
                                "+1",
                                "1 2",
                                "1,1",
                                "0x10",
                                "12a",
                                "",
                                " ",
                                "1.0"};
    char buf[128];
    for (size_t i = 0; i < RC_ARRAY_LEN(bad); i++) {
        snprintf(buf, sizeof(buf), "POST / HTTP/1.1\r\nContent-Length: %s\r\n\r\n", bad[i]);
        CHECK_EQ_INT(parse(buf, &r), RC_HTTP_EBAD);
    }
    CHECK_EQ_INT(parse("POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", &r),
                 RC_HTTP_EDUP);
}

static void test_versions(void)
{
    rc_http_req r;
    CHECK_EQ_INT(parse("GET / HTTP/1.0\r\n\r\n", &r), RC_HTTP_OK);
    CHECK_EQ_INT(r.minor_version, 0);
    CHECK_EQ_INT(parse("GET / HTTP/1.1\r\n\r\n", &r), RC_HTTP_OK);
    CHECK_EQ_INT(r.minor_version, 1);
    /* RFC 9110 2.5: an unknown higher minor is treated as the highest known. */
    CHECK_EQ_INT(parse("GET / HTTP/1.9\r\n\r\n", &r), RC_HTTP_OK);
    CHECK_EQ_INT(r.minor_version, 1);
    CHECK_EQ_INT(parse("GET / HTTP/2.0\r\n\r\n", &r), RC_HTTP_EVERSION);
    CHECK_EQ_INT(parse("GET / HTTP/0.9\r\n\r\n", &r), RC_HTTP_EVERSION);
    CHECK_EQ_INT(parse("GET / HTTP/3.0\r\nHost: a\r\n\r\n", &r), RC_HTTP_EVERSION);
}

static void test_bare_lf(void)
{
    const char *s = "GET /ws HTTP/1.1\nHost: a\nUpgrade: websocket\r\nConnection: upgrade\n\n";
    rc_http_req r;
    CHECK_EQ_INT(parse(s, &r), RC_HTTP_OK);
    CHECK(str_is(r.host, "a"));
    CHECK(list_is(&r.upgrade, "websocket"));
    CHECK(list_is(&r.connection, "upgrade"));
    CHECK_EQ_INT(r.head_len, strlen(s));
    const char *t = "GET / HTTP/1.1\nHost: a\n\r\nBODY";
    CHECK_EQ_INT(parse(t, &r), RC_HTTP_OK);
    CHECK_EQ_INT(r.head_len, strlen(t) - 4);
}

static void test_query_param(void)
{
    char out[64];
    rc_str q = {"token=a%2Bb%3d&name=John+Doe&empty=&flag&x=%41%62", 0};
    q.n = strlen(q.p);
    CHECK_EQ_INT(rc_http_query_param(q, "token", out, sizeof(out)), 4);
    CHECK_EQ_STR(out, "a+b=");
    CHECK_EQ_INT(rc_http_query_param(q, "name", out, sizeof(out)), 8);
    CHECK_EQ_STR(out, "John Doe");
    CHECK_EQ_INT(rc_http_query_param(q, "empty", out, sizeof(out)), 0);
    CHECK_EQ_STR(out, "");
    CHECK_EQ_INT(rc_http_query_param(q, "flag", out, sizeof(out)), 0);
    CHECK_EQ_INT(rc_http_query_param(q, "x", out, sizeof(out)), 2);
    CHECK_EQ_STR(out, "Ab");
    CHECK_EQ_INT(rc_http_query_param(q, "missing", out, sizeof(out)), -1);
    CHECK_EQ_INT(rc_http_query_param(q, "toke", out, sizeof(out)), -1);
    CHECK_EQ_INT(rc_http_query_param(q, "token=a", out, sizeof(out)), -1);
    /* Fits exactly: 4 bytes plus NUL in 5; not in 4. */
    CHECK_EQ_INT(rc_http_query_param(q, "token", out, 5), 4);
    CHECK_EQ_INT(rc_http_query_param(q, "token", out, 4), -2);
    CHECK_EQ_INT(rc_http_query_param(q, "token", out, 0), -2);

    /* Encoded key, first occurrence wins. */
    rc_str q2 = {"to%6Ben=1&token=2", 17};
    CHECK_EQ_INT(rc_http_query_param(q2, "token", out, sizeof(out)), 1);
    CHECK_EQ_STR(out, "1");

    static const char *malformed[] = {"t=%", "t=%4", "t=%zz", "t=%4g", "t=a%00b", "t=%%41"};
    for (size_t i = 0; i < RC_ARRAY_LEN(malformed); i++) {
        rc_str m = {malformed[i], strlen(malformed[i])};
        CHECK_EQ_INT(rc_http_query_param(m, "t", out, sizeof(out)), -2);
    }
    /* A malformed pair with another name does not hide a good one. */
    rc_str q3 = {"a=%zz&t=ok", 10};
    CHECK_EQ_INT(rc_http_query_param(q3, "t", out, sizeof(out)), 2);
    CHECK_EQ_STR(out, "ok");
    /* The query span is not NUL-terminated: stop at n. */
    rc_str q4 = {"t=abcdef", 4};
    CHECK_EQ_INT(rc_http_query_param(q4, "t", out, sizeof(out)), 2);
    CHECK_EQ_STR(out, "ab");
    CHECK_EQ_INT(rc_http_query_param(RC_STR_NULL, "t", out, sizeof(out)), -1);
}

static void test_has_token(void)
{
    rc_str v = {"keep-alive, Upgrade", 19};
    CHECK_EQ_INT(rc_http_has_token(one(v), "upgrade"), 1);
    CHECK_EQ_INT(rc_http_has_token(one(v), "keep-alive"), 1);
    CHECK_EQ_INT(rc_http_has_token(one(v), "close"), 0);
    CHECK_EQ_INT(rc_http_has_token(one(v), "upgrad"), 0);
    CHECK_EQ_INT(rc_http_has_token(one(v), "alive"), 0);
    rc_str w = {" \tUPGRADE\t ,,x", 14};
    CHECK_EQ_INT(rc_http_has_token(one(w), "upgrade"), 1);
    CHECK_EQ_INT(rc_http_has_token(one(w), "x"), 1);
    rc_str x = {"upgrades", 8};
    CHECK_EQ_INT(rc_http_has_token(one(x), "upgrade"), 0);
    rc_str y = {"websocketX", 9}; /* only the first n bytes count */
    CHECK_EQ_INT(rc_http_has_token(one(y), "websocket"), 1);
    CHECK_EQ_INT(rc_http_has_token(one(RC_STR_NULL), "upgrade"), 0);
    rc_str z = {"a b, c", 6};
    CHECK_EQ_INT(rc_http_has_token(one(z), "a"), 0);

    /* Lines are members of one list, never joined into one member. */
    rc_http_list l = {{{"keep-alive", 10}, {"", 0}, {" Upgrade ,", 10}}, 3};
    CHECK_EQ_INT(rc_http_has_token(&l, "upgrade"), 1);
    CHECK_EQ_INT(rc_http_has_token(&l, "keep-alive"), 1);
    CHECK_EQ_INT(rc_http_has_token(&l, "keep-aliveupgrade"), 0);
    rc_http_list_iter it = {0, 0};
    rc_str m;
    CHECK_EQ_INT(rc_http_list_next(&l, &it, &m), 1);
    CHECK(str_is(m, "keep-alive"));
    CHECK_EQ_INT(rc_http_list_next(&l, &it, &m), 1);
    CHECK(str_is(m, "Upgrade"));
    CHECK_EQ_INT(rc_http_list_next(&l, &it, &m), 0);
}

static void test_response(void)
{
    char out[256];
    const char *expect = "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n"
                         "Content-Length: 10\r\nConnection: close\r\n"
                         "Retry-After: 1\r\n\r\nnot found\n";
    size_t el = strlen(expect);
    int n = rc_http_response(out, sizeof(out), 404, "text/plain", "Retry-After: 1\r\n",
                             "not found\n", 10);
    CHECK_EQ_INT(n, el);
    CHECK(n > 0 && memcmp(out, expect, el) == 0);

    const char *e2 = "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    n = rc_http_response(out, sizeof(out), 204, NULL, NULL, NULL, 0);
    CHECK_EQ_INT(n, strlen(e2));
    CHECK(n > 0 && memcmp(out, e2, strlen(e2)) == 0);

    /* The cap bound: exact fit works, one byte less fails, nothing past cap
     * is written (canary bytes after cap survive). */
    char buf[300];
    for (size_t cap = 0; cap <= el + 1; cap++) {
        memset(buf, 0x5a, sizeof(buf));
        int m =
            rc_http_response(buf, cap, 404, "text/plain", "Retry-After: 1\r\n", "not found\n", 10);
        if (cap < el)
            CHECK_EQ_INT(m, -1);
        else
            CHECK_EQ_INT(m, el);
        int clean = 1;
        for (size_t i = cap; i < sizeof(buf); i++)
            clean &= buf[i] == 0x5a;
        CHECK(clean);
    }
    CHECK_EQ_STR(rc_http_reason(426), "Upgrade Required");
    CHECK_EQ_STR(rc_http_reason(431), "Request Header Fields Too Large");
    CHECK_EQ_STR(rc_http_reason(505), "HTTP Version Not Supported");
    CHECK_EQ_STR(rc_http_reason(799), "Unknown");
}

int main(void)
{
    RUN(test_valid_upgrade);
    RUN(test_split_every_offset);
    RUN(test_body_after_head);
    RUN(test_truncated);
    RUN(test_oversized);
    RUN(test_too_many_headers);
    RUN(test_duplicates);
    RUN(test_missing_and_empty);
    RUN(test_bad_names_and_lines);
    RUN(test_control_chars);
    RUN(test_transfer_encoding);
    RUN(test_content_length);
    RUN(test_versions);
    RUN(test_bare_lf);
    RUN(test_query_param);
    RUN(test_has_token);
    RUN(test_response);
    return UNIT_DONE();
}
