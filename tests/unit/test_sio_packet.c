/* Engine.IO v4 / Socket.IO v5 packets (sio/packet.c): what socket.io-client
 * sends and what a server answers, written out by hand from the protocol's
 * documents; refusals of bad packets; polling bodies split on 0x1e. */
#include <string.h>

#include "sio/packet.h"
#include "tests/unit/unit.h"

static int parse(const char *s, rc_sio_packet *p)
{
    return rc_sio_parse(s, strlen(s), p);
}

static int span_is(rc_str s, const char *want)
{
    return s.n == strlen(want) && memcmp(s.p, want, s.n) == 0;
}

static void test_connect(void)
{
    rc_sio_packet p;
    CHECK_EQ_INT(parse("0", &p), RC_SIO_OK);
    CHECK_EQ_INT(p.type, RC_SIO_CONNECT);
    CHECK(span_is(p.nsp, "/"));
    CHECK_EQ_INT((int)p.data.n, 0);
    CHECK_EQ_INT(parse("0{\"token\":\"abc\"}", &p), RC_SIO_OK);
    CHECK(span_is(p.data, "{\"token\":\"abc\"}"));
    CHECK_EQ_INT(parse("0/admin,{\"token\":\"abc\"}", &p), RC_SIO_OK);
    CHECK(span_is(p.nsp, "/admin"));
    CHECK(span_is(p.data, "{\"token\":\"abc\"}"));
    CHECK_EQ_INT(parse("0/admin,", &p), RC_SIO_OK);
    CHECK(span_is(p.nsp, "/admin"));
    /* The auth payload must be an object. */
    CHECK_EQ_INT(parse("0[1]", &p), RC_SIO_ERR_PAYLOAD);
    CHECK_EQ_INT(parse("0\"x\"", &p), RC_SIO_ERR_PAYLOAD);
    CHECK_EQ_INT(parse("0{", &p), RC_SIO_ERR_PAYLOAD);
}

static void test_event_and_ack(void)
{
    rc_sio_packet p;
    CHECK_EQ_INT(parse("2[\"join:event\",\"42\"]", &p), RC_SIO_OK);
    CHECK_EQ_INT(p.type, RC_SIO_EVENT);
    CHECK_EQ_INT(p.has_id, 0);
    CHECK(span_is(p.data, "[\"join:event\",\"42\"]"));
    CHECK_EQ_INT(parse("2/chat,13[\"hello\",{\"a\":1}]", &p), RC_SIO_OK);
    CHECK(span_is(p.nsp, "/chat"));
    CHECK_EQ_INT(p.has_id, 1);
    CHECK_EQ_INT((int)p.id, 13);
    CHECK_EQ_INT(parse("212[\"x\"]", &p), RC_SIO_OK);
    CHECK_EQ_INT((int)p.id, 12);
    CHECK_EQ_INT(parse("313[\"ok\"]", &p), RC_SIO_OK);
    CHECK_EQ_INT(p.type, RC_SIO_ACK);
    CHECK_EQ_INT((int)p.id, 13);
    CHECK_EQ_INT(parse("3/chat,7[]", &p), RC_SIO_OK);
    /* An event needs a name first; an ack needs its id. */
    CHECK_EQ_INT(parse("2[]", &p), RC_SIO_ERR_PAYLOAD);
    CHECK_EQ_INT(parse("2[1,2]", &p), RC_SIO_ERR_PAYLOAD);
    CHECK_EQ_INT(parse("2{\"a\":1}", &p), RC_SIO_ERR_PAYLOAD);
    CHECK_EQ_INT(parse("2", &p), RC_SIO_ERR_PAYLOAD);
    CHECK_EQ_INT(parse("3[\"ok\"]", &p), RC_SIO_ERR_ID);
    /* Ids are JavaScript numbers: at most 2^53 - 1. */
    CHECK_EQ_INT(parse("29007199254740991[\"x\"]", &p), RC_SIO_OK);
    CHECK_EQ_INT(parse("29007199254740992[\"x\"]", &p), RC_SIO_ERR_ID);
    CHECK_EQ_INT(parse("299999999999999999999999[\"x\"]", &p), RC_SIO_ERR_ID);
}

static void test_binary_and_others(void)
{
    rc_sio_packet p;
    CHECK_EQ_INT(parse("51-[\"up\",{\"_placeholder\":true,\"num\":0}]", &p), RC_SIO_OK);
    CHECK_EQ_INT(p.type, RC_SIO_BINARY_EVENT);
    CHECK_EQ_INT((int)p.attachments, 1);
    CHECK_EQ_INT(parse("61-/x,4[{\"_placeholder\":true,\"num\":0}]", &p), RC_SIO_OK);
    CHECK_EQ_INT(p.type, RC_SIO_BINARY_ACK);
    CHECK(span_is(p.nsp, "/x"));
    CHECK_EQ_INT((int)p.id, 4);
    CHECK_EQ_INT(parse("5[\"up\"]", &p), RC_SIO_ERR_ATTACHMENTS);
    CHECK_EQ_INT(parse("511-[\"up\"]", &p), RC_SIO_ERR_ATTACHMENTS);
    CHECK_EQ_INT(parse("51[\"up\"]", &p), RC_SIO_ERR_ATTACHMENTS);
    CHECK_EQ_INT(parse("1", &p), RC_SIO_OK);
    CHECK_EQ_INT(p.type, RC_SIO_DISCONNECT);
    CHECK_EQ_INT(parse("1/admin,", &p), RC_SIO_OK);
    CHECK(span_is(p.nsp, "/admin"));
    CHECK_EQ_INT(parse("1{}", &p), RC_SIO_ERR_PAYLOAD);
    CHECK_EQ_INT(parse("4{\"message\":\"no\"}", &p), RC_SIO_OK);
    CHECK_EQ_INT(parse("7", &p), RC_SIO_ERR_TYPE);
    CHECK_EQ_INT(parse("", &p), RC_SIO_ERR_TYPE);
    CHECK_EQ_INT(parse("x", &p), RC_SIO_ERR_TYPE);
    CHECK_EQ_INT(parse("012[]", &p), RC_SIO_ERR_PAYLOAD);
    /* A namespace longer than the cap. */
    char big[300] = "0/";
    memset(big + 2, 'a', 200);
    strcpy(big + 202, ",{}");
    CHECK_EQ_INT(parse(big, &p), RC_SIO_ERR_NSP);
    CHECK_EQ_STR(rc_sio_errtext(RC_SIO_ERR_NSP), "bad namespace");
    CHECK_EQ_STR(rc_sio_errtext(99), "bad packet");
}

static void test_polling_body(void)
{
    const char body[] = "4hello\x1e"
                        "2\x1e"
                        "bAQID";
    const char *p = body, *end = body + sizeof(body) - 1;
    rc_str pkt;
    CHECK_EQ_INT(rc_eio_payload_next(&p, end, &pkt), 1);
    CHECK(span_is(pkt, "4hello"));
    CHECK_EQ_INT(rc_eio_payload_next(&p, end, &pkt), 1);
    CHECK(span_is(pkt, "2"));
    CHECK_EQ_INT(rc_eio_payload_next(&p, end, &pkt), 1);
    CHECK(span_is(pkt, "bAQID"));
    CHECK_EQ_INT(rc_eio_payload_next(&p, end, &pkt), 0);
    CHECK_EQ_INT(rc_eio_payload_next(&p, end, &pkt), 0);
    /* Two separators in a row: an empty packet, for the caller to refuse. */
    const char two[] = "4a\x1e\x1e"
                       "4b";
    p = two;
    end = two + sizeof(two) - 1;
    CHECK_EQ_INT(rc_eio_payload_next(&p, end, &pkt), 1);
    CHECK_EQ_INT(rc_eio_payload_next(&p, end, &pkt), 1);
    CHECK_EQ_INT((int)pkt.n, 0);
    CHECK_EQ_INT(rc_eio_payload_next(&p, end, &pkt), 1);
    CHECK(span_is(pkt, "4b"));
    CHECK_EQ_INT(rc_eio_payload_next(&p, end, &pkt), 0);
    /* A separator at the end, and an empty body: an empty packet each. */
    const char trail[] = "4a\x1e";
    p = trail;
    end = trail + sizeof(trail) - 1;
    CHECK_EQ_INT(rc_eio_payload_next(&p, end, &pkt), 1);
    CHECK(span_is(pkt, "4a"));
    CHECK_EQ_INT(rc_eio_payload_next(&p, end, &pkt), 1);
    CHECK_EQ_INT((int)pkt.n, 0);
    CHECK_EQ_INT(rc_eio_payload_next(&p, end, &pkt), 0);
    p = end = two;
    CHECK_EQ_INT(rc_eio_payload_next(&p, end, &pkt), 1);
    CHECK_EQ_INT((int)pkt.n, 0);
    CHECK_EQ_INT(rc_eio_payload_next(&p, end, &pkt), 0);
}

static void test_writers(void)
{
    char out[256];
    rc_str root = {"/", 1}, chat = {"/chat", 5};
    ssize_t n = rc_sio_write_event(out, sizeof(out), root, 0, 0, (rc_str){"ticket:updated", 14},
                                   (rc_str){"{\"left\":3}", 10});
    CHECK_EQ_INT((int)n, (int)strlen("2[\"ticket:updated\",{\"left\":3}]"));
    CHECK(memcmp(out, "2[\"ticket:updated\",{\"left\":3}]", (size_t)n) == 0);
    n = rc_sio_write_event(out, sizeof(out), chat, 1, 9, (rc_str){"q\"", 2}, (rc_str){"", 0});
    out[n] = 0;
    CHECK_EQ_STR(out, "2/chat,9[\"q\\\"\"]");
    n = rc_sio_write_ack(out, sizeof(out), root, 13, (rc_str){"\"ok\",1", 6});
    out[n] = 0;
    CHECK_EQ_STR(out, "313[\"ok\",1]");
    n = rc_sio_write_connect(out, sizeof(out), chat, (rc_str){"abc", 3}, (rc_str){"", 0});
    out[n] = 0;
    CHECK_EQ_STR(out, "0/chat,{\"sid\":\"abc\"}");
    n = rc_sio_write_connect(out, sizeof(out), root, (rc_str){"abc", 3}, (rc_str){"p1", 2});
    out[n] = 0;
    CHECK_EQ_STR(out, "0{\"sid\":\"abc\",\"pid\":\"p1\"}");
    n = rc_sio_write_connect_error(out, sizeof(out), root, (rc_str){"Invalid namespace", 17});
    out[n] = 0;
    CHECK_EQ_STR(out, "4{\"message\":\"Invalid namespace\"}");
    /* What is written parses back to the same packet. */
    rc_sio_packet p;
    n = rc_sio_write_event(out, sizeof(out), chat, 1, 77, (rc_str){"e", 1}, (rc_str){"1,[2]", 5});
    CHECK_EQ_INT(rc_sio_parse(out, (size_t)n, &p), RC_SIO_OK);
    CHECK(span_is(p.nsp, "/chat"));
    CHECK_EQ_INT((int)p.id, 77);
    CHECK(span_is(p.data, "[\"e\",1,[2]]"));
    /* Too small a buffer: -1 at every length short of the whole. */
    n = rc_sio_write_event(out, sizeof(out), chat, 1, 77, (rc_str){"e", 1}, (rc_str){"1", 1});
    for (size_t cap = 0; cap < (size_t)n; cap++)
        CHECK_EQ_INT(
            (int)rc_sio_write_event(out, cap, chat, 1, 77, (rc_str){"e", 1}, (rc_str){"1", 1}), -1);
}

static void test_args_of(void)
{
    static const struct {
        const char *data;
        int several;
        const char *args;
    } cases[] = {
        {"[1,2]", 0, "[1,2]"}, {"[1,2]", 1, "1,2"}, {" [ 1 , {\"a\":[3]} ] ", 1, "1 , {\"a\":[3]}"},
        {"[]", 1, ""},         {"[ ]", 1, ""},      {"7", 1, "7"},
        {"\"x\"", 0, "\"x\""},
    };
    for (size_t i = 0; i < RC_ARRAY_LEN(cases); i++) {
        rc_str a = rc_sio_args_of((rc_str){cases[i].data, strlen(cases[i].data)}, cases[i].several);
        CHECK(a.n == strlen(cases[i].args) && memcmp(a.p, cases[i].args, a.n) == 0);
    }
}

int main(void)
{
    RUN(test_connect);
    RUN(test_event_and_ack);
    RUN(test_binary_and_others);
    RUN(test_polling_body);
    RUN(test_writers);
    RUN(test_args_of);
    return UNIT_DONE();
}
