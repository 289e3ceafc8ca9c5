/* Unit tests for ws/handshake.c. Accept values come from RFC 6455 section 1.3
 * and from `openssl dgst -sha1 -binary | base64` run on key + GUID. */
#include "ws/handshake.h"
#include "tests/unit/unit.h"

#include <string.h>

static rc_str S(const char *s)
{
    return (rc_str){s, strlen(s)};
}

static int str_is(rc_str s, const char *lit)
{
    return s.p != NULL && s.n == strlen(lit) && memcmp(s.p, lit, s.n) == 0;
}

static void test_accept_rfc_example(void)
{
    char out[29];
    CHECK_EQ_INT(rc_ws_accept_key(S("dGhlIHNhbXBsZSBub25jZQ=="), out), 0);
    /* RFC 6455 section 1.3. */
    CHECK_EQ_STR(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    /* Bytes 0..15, from openssl on the command line. */
    CHECK_EQ_INT(rc_ws_accept_key(S("AAECAwQFBgcICQoLDA0ODw=="), out), 0);
    CHECK_EQ_STR(out, "Bz3qJYTGdOe8gUSpLosEdiLKDrk=");
    /* Only the 24 bytes of the span count. */
    rc_str longer = {"dGhlIHNhbXBsZSBub25jZQ==trailing", 24};
    CHECK_EQ_INT(rc_ws_accept_key(longer, out), 0);
    CHECK_EQ_STR(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

static void test_accept_invalid(void)
{
    static const char *bad[] = {
        "",
        "dGhlIHNhbXBsZSBub25jZQ=",   /* 23 chars */
        "dGhlIHNhbXBsZSBub25jZQ===", /* 25 chars */
        "dGhlIHNhbXBsZSBub25jZQ",    /* no padding */
        "dGhlIHNhbXBsZSBub25jZ*==",  /* not base64 */
        "dGhlIHNhbXBsZSBub25j ZQ==", /* space */
        "dGhlIHNhbXBsZSBub25jZQAA",  /* 18 bytes, no padding */
        "dGhlIHNhbXBsZSBub25jZQA=",  /* 17 bytes */
        "dGhlIHNhbXBsZSBub25jZR==",  /* non-zero pad bits */
        "dGhlIHNhbXBsZSBub25j=Q==",  /* '=' inside */
    };
    char out[29];
    for (size_t i = 0; i < RC_ARRAY_LEN(bad); i++) {
        memcpy(out, "unchanged", 10);
        CHECK_EQ_INT(rc_ws_accept_key(S(bad[i]), out), -1);
        CHECK_EQ_STR(out, "unchanged");
    }
    CHECK_EQ_INT(rc_ws_accept_key(RC_STR_NULL, out), -1);
}

static const char good_req[] = "GET /ws HTTP/1.1\r\n"
                               "Host: example.com\r\n"
                               "Upgrade: WebSocket\r\n"
                               "Connection: keep-alive, Upgrade\r\n"
                               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                               "Sec-WebSocket-Version: 13\r\n\r\n";

static int check(const char *raw, const char **why)
{
    rc_http_req r;
    if (rc_http_parse(raw, strlen(raw), 8192, &r) != RC_HTTP_OK)
        return -1;
    *why = NULL;
    return rc_ws_check_upgrade(&r, why);
}

static void test_check_upgrade(void)
{
    const char *why = "x";
    rc_http_req r;
    CHECK_EQ_INT(rc_http_parse(good_req, strlen(good_req), 8192, &r), RC_HTTP_OK);
    CHECK_EQ_INT(rc_ws_check_upgrade(&r, &why), 0);

    static const struct {
        const char *raw;
        int status;
    } cases[] = {
        {"POST /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
         400},
        {"get /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
         400},
        {"GET /ws HTTP/1.0\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
         400},
        {"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
         400},
        /* A plain GET: no Upgrade, no Connection. */
        {"GET /ws HTTP/1.1\r\nHost: a\r\n\r\n", 426},
        {"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
         426},
        {"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
         426},
        {"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: keep-alive\r\n"
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
         426},
        {"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n",
         426},
        {"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 130\r\n\r\n",
         426},
        {"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
         426},
        {"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Version: 13\r\n\r\n",
         400},
        {"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=\r\nSec-WebSocket-Version: 13\r\n\r\n",
         400},
    };
    for (size_t i = 0; i < RC_ARRAY_LEN(cases); i++) {
        int st = check(cases[i].raw, &why);
        if (st != cases[i].status)
            fprintf(stderr, "  case %zu: status %d\n", i, st);
        CHECK_EQ_INT(st, cases[i].status);
        CHECK(why != NULL && why[0] != '\0');
    }
}

static void test_response_101(void)
{
    char out[512];
    const char accept[29] = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
    const char *e1 = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                     "\r\n";
    int n = rc_ws_response_101(out, sizeof(out), accept, RC_STR_NULL, NULL);
    CHECK_EQ_INT(n, strlen(e1));
    CHECK(n > 0 && memcmp(out, e1, (size_t)n) == 0);

    const char *e2 = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                     "Sec-WebSocket-Protocol: ringcast.v1\r\n\r\n";
    rc_str proto = {"ringcast.v1, bearer.x", 11};
    n = rc_ws_response_101(out, sizeof(out), accept, proto, NULL);
    CHECK_EQ_INT(n, strlen(e2));
    CHECK(n > 0 && memcmp(out, e2, (size_t)n) == 0);

    /* Too small, exactly enough. */
    CHECK_EQ_INT(rc_ws_response_101(out, strlen(e2), accept, proto, NULL), -1);
    CHECK_EQ_INT(rc_ws_response_101(out, strlen(e2) + 1, accept, proto, NULL), (int)strlen(e2));
    CHECK_EQ_INT(rc_ws_response_101(out, 0, accept, proto, NULL), -1);
    /* A protocol that would inject a header line is refused. */
    CHECK_EQ_INT(rc_ws_response_101(out, sizeof(out), accept, S("a\r\nSet-Cookie: x"), NULL), -1);
}

/* A Sec-WebSocket-Protocol offer that came on one line (absent when v.p is
 * NULL). */
#define one(v) (&(rc_http_list){{(v)}, (v).p != NULL})

static void test_protocol_token(void)
{
    rc_str tok = RC_STR_NULL, sel = RC_STR_NULL;
    CHECK_EQ_INT(rc_ws_protocol_token(one(S("ringcast.v1, bearer.abc.def.ghi")), &tok, &sel), 1);
    CHECK(str_is(tok, "abc.def.ghi"));
    CHECK(str_is(sel, "ringcast.v1"));

    /* Order does not matter. */
    tok = sel = RC_STR_NULL;
    CHECK_EQ_INT(rc_ws_protocol_token(one(S("bearer.abc.def.ghi ,\tringcast.v1")), &tok, &sel), 1);
    CHECK(str_is(tok, "abc.def.ghi"));
    CHECK(str_is(sel, "ringcast.v1"));

    tok = sel = RC_STR_NULL;
    CHECK_EQ_INT(rc_ws_protocol_token(one(S("bearer.x")), &tok, &sel), 1);
    CHECK(str_is(tok, "x"));
    CHECK(str_is(sel, "bearer.x"));

    tok = sel = RC_STR_NULL;
    CHECK_EQ_INT(rc_ws_protocol_token(one(S("chat")), &tok, &sel), 0);
    CHECK_EQ_INT(sel.n, 0);

    tok = sel = RC_STR_NULL;
    CHECK_EQ_INT(rc_ws_protocol_token(one(S("chat, ringcast.v1")), &tok, &sel), 0);
    CHECK(str_is(sel, "ringcast.v1"));

    tok = sel = RC_STR_NULL;
    CHECK_EQ_INT(rc_ws_protocol_token(one(S("")), &tok, &sel), 0);
    CHECK_EQ_INT(sel.n, 0);
    CHECK_EQ_INT(rc_ws_protocol_token(one(RC_STR_NULL), &tok, &sel), 0);
    CHECK_EQ_INT(sel.n, 0);

    /* Names are case-sensitive; "Bearer." is not a bearer entry. */
    CHECK_EQ_INT(rc_ws_protocol_token(one(S("Bearer.x, RINGCAST.V1")), &tok, &sel), 0);
    CHECK_EQ_INT(sel.n, 0);
    /* The first bearer entry wins. */
    CHECK_EQ_INT(rc_ws_protocol_token(one(S("bearer.one, bearer.two")), &tok, &sel), 1);
    CHECK(str_is(tok, "one"));
    CHECK(str_is(sel, "bearer.one"));
    /* An empty bearer is still a bearer entry, with an empty token. */
    CHECK_EQ_INT(rc_ws_protocol_token(one(S("ringcast.v1, bearer.")), &tok, &sel), 1);
    CHECK_EQ_INT(tok.n, 0);
    CHECK(str_is(sel, "ringcast.v1"));
    /* Only the offer's n bytes count. */
    rc_str cut = {"ringcast.v1, bearer.abcdef", 22};
    CHECK_EQ_INT(rc_ws_protocol_token(one(cut), &tok, &sel), 1);
    CHECK(str_is(tok, "ab"));
}

/* Repeated lines of a list header are one list (RFC 9110 5.3): a token on
 * the second Sec-WebSocket-Protocol line counts, and Connection or Upgrade
 * split over two lines still upgrades. */
static void test_list_headers_on_lines(void)
{
    const char *why = NULL;
    rc_http_req r;
    const char *two_protocols = "GET /ws HTTP/1.1\r\nHost: a\r\n"
                                "Sec-WebSocket-Protocol: ringcast.v1\r\n"
                                "Sec-WebSocket-Protocol: bearer.abc.def.ghi\r\n\r\n";
    CHECK_EQ_INT(rc_http_parse(two_protocols, strlen(two_protocols), 8192, &r), RC_HTTP_OK);
    rc_str tok = RC_STR_NULL, sel = RC_STR_NULL;
    CHECK_EQ_INT(rc_ws_protocol_token(&r.ws_protocol, &tok, &sel), 1);
    CHECK(str_is(tok, "abc.def.ghi"));
    CHECK(str_is(sel, "ringcast.v1"));
    /* The bearer first, on a line of its own, then two entries. */
    const char *three = "GET /ws HTTP/1.1\r\nSec-WebSocket-Protocol: bearer.first\r\n"
                        "Sec-WebSocket-Protocol: \r\n"
                        "Sec-WebSocket-Protocol: chat, ringcast.v1, bearer.second\r\n\r\n";
    CHECK_EQ_INT(rc_http_parse(three, strlen(three), 8192, &r), RC_HTTP_OK);
    CHECK_EQ_INT(rc_ws_protocol_token(&r.ws_protocol, &tok, &sel), 1);
    CHECK(str_is(tok, "first"));
    CHECK(str_is(sel, "ringcast.v1"));

    CHECK_EQ_INT(check("GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
                       "Connection: keep-alive\r\nConnection: Upgrade\r\n"
                       "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                       "Sec-WebSocket-Version: 13\r\n\r\n",
                       &why),
                 0);
    CHECK_EQ_INT(check("GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\nUpgrade: websocket\r\n"
                       "Connection: Upgrade\r\n"
                       "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                       "Sec-WebSocket-Version: 13\r\n\r\n",
                       &why),
                 0);
    /* Neither line names the token: still refused. */
    CHECK_EQ_INT(check("GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
                       "Connection: keep-alive\r\nConnection: close\r\n"
                       "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                       "Sec-WebSocket-Version: 13\r\n\r\n",
                       &why),
                 426);
}

int main(void)
{
    RUN(test_accept_rfc_example);
    RUN(test_accept_invalid);
    RUN(test_check_upgrade);
    RUN(test_response_101);
    RUN(test_protocol_token);
    RUN(test_list_headers_on_lines);
    return UNIT_DONE();
}
