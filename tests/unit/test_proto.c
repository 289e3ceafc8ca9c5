/* Tests for proto/json.c. Expected outputs are written by hand from the member
 * orders in proto/json.h and the rules of RFC 8259; every parsed message is
 * copied into a heap buffer of exactly its length so ASan catches reads past
 * len, and builders are given exact-size buffers to catch writes past cap. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/unit.h"
#include "ws/json.h"
#include "proto/json.h"
#include "redis/envelope.h"

static rc_proto_req req;
static const char *why;
static char *last_copy;

/* Parses msg[0..n) from an exact-size copy, kept alive until the next call
 * so req.data can be compared. */
static int parse_n(const char *msg, size_t n, size_t max_channel)
{
    free(last_copy);
    last_copy = malloc(n ? n : 1);
    memcpy(last_copy, msg, n);
    why = NULL;
    int rc = rc_proto_parse(last_copy, n, max_channel, &req, &why);
    if (rc != RC_PERR_NONE && (!why || !*why))
        return -100; /* every error carries an explanation */
    return rc;
}

static int P(const char *msg)
{
    return parse_n(msg, strlen(msg), RC_PROTO_MAX_CHANNEL);
}

static int body(const char *msg)
{
    free(last_copy);
    size_t n = strlen(msg);
    last_copy = malloc(n ? n : 1);
    memcpy(last_copy, msg, n);
    why = NULL;
    int rc = rc_proto_parse_publish_body(last_copy, n, RC_PROTO_MAX_CHANNEL, &req, &why);
    if (rc != RC_PERR_NONE && (!why || !*why))
        return -100;
    return rc;
}

static int data_is(const char *want)
{
    return req.data.n == strlen(want) && memcmp(req.data.p, want, req.data.n) == 0;
}

static void test_ops(void)
{
    CHECK_EQ_INT(P("{\"type\":\"subscribe\",\"id\":1,\"channel\":\"room:lobby\"}"), 0);
    CHECK_EQ_INT(req.op, RC_OP_SUBSCRIBE);
    CHECK_EQ_STR(req.id, "1");
    CHECK_EQ_INT(req.id_len, 1);
    CHECK_EQ_STR(req.channel, "room:lobby");
    CHECK_EQ_INT(req.channel_len, 10);

    CHECK_EQ_INT(P(" { \"channel\" : \"a\" , \"type\" : \"unsubscribe\" , \"id\" : \"u1\" } "), 0);
    CHECK_EQ_INT(req.op, RC_OP_UNSUBSCRIBE);
    CHECK_EQ_STR(req.id, "\"u1\"");
    CHECK_EQ_STR(req.channel, "a");

    CHECK_EQ_INT(P("{\"type\":\"publish\",\"id\":2,\"channel\":\"c\",\"event\":\"chat\","
                   "\"data\":{\"x\":1}}"),
                 0);
    CHECK_EQ_INT(req.op, RC_OP_PUBLISH);
    CHECK_EQ_STR(req.event, "chat");
    CHECK_EQ_INT(req.event_len, 4);
    CHECK(data_is("{\"x\":1}"));

    CHECK_EQ_INT(P("{\"type\":\"publish\",\"channel\":\"c\",\"data\":null}"), 0);
    CHECK_EQ_STR(req.event, "message");
    CHECK_EQ_INT(req.event_len, 7);
    CHECK_EQ_INT(req.id_len, 0);
    CHECK(data_is("null"));

    CHECK_EQ_INT(P("{\"type\":\"ping\",\"id\":99}"), 0);
    CHECK_EQ_INT(req.op, RC_OP_PING);
    CHECK_EQ_STR(req.id, "99");
    CHECK_EQ_INT(P("{\"type\":\"ping\"}"), 0);
    CHECK_EQ_INT(req.op, RC_OP_PING);
    CHECK_EQ_INT(req.id_len, 0);
    CHECK_EQ_STR(req.id, "");

    /* escaped member names and type values are decoded before comparing */
    CHECK_EQ_INT(P("{\"\\u0074ype\":\"p\\u0069ng\"}"), 0);
    CHECK_EQ_INT(req.op, RC_OP_PING);
    /* unknown members are ignored, whatever they hold */
    CHECK_EQ_INT(P("{\"type\":\"subscribe\",\"channel\":\"c\",\"x\":[1,{\"y\":null}],"
                   "\"event\":5,\"data\":\"ignored\"}"),
                 0);
    CHECK_EQ_INT(req.op, RC_OP_SUBSCRIBE);
}

static void test_errors(void)
{
    static const struct {
        const char *msg;
        int code;
    } t[] = {
        {"", RC_PERR_BAD_JSON},
        {"{", RC_PERR_BAD_JSON},
        {"{\"type\":\"ping\"", RC_PERR_BAD_JSON},
        {"{\"type\":\"ping\",}", RC_PERR_BAD_JSON},
        {"{\"type\":'ping'}", RC_PERR_BAD_JSON},
        {"{\"type\":\"ping\"} x", RC_PERR_BAD_JSON},
        {"{\"type\":\"ping\",\"id\":01}", RC_PERR_BAD_JSON},
        {"{\"type\":\"ping\",\"x\":\"\\ud800\"}", RC_PERR_BAD_JSON},
        {"{\"type\":\"ping\",\"x\":\"\xc0\xaf\"}", RC_PERR_BAD_JSON},
        {"[]", RC_PERR_BAD_REQUEST},
        {"\"subscribe\"", RC_PERR_BAD_REQUEST},
        {"42", RC_PERR_BAD_REQUEST},
        {"null", RC_PERR_BAD_REQUEST},
        {"{}", RC_PERR_BAD_REQUEST},
        {"{\"id\":1}", RC_PERR_BAD_REQUEST},
        {"{\"type\":1}", RC_PERR_BAD_REQUEST},
        {"{\"type\":null}", RC_PERR_BAD_REQUEST},
        {"{\"type\":[\"ping\"]}", RC_PERR_BAD_REQUEST},
        {"{\"type\":\"ping\",\"id\":1.5}", RC_PERR_BAD_REQUEST},
        {"{\"type\":\"ping\",\"id\":1e3}", RC_PERR_BAD_REQUEST},
        {"{\"type\":\"ping\",\"id\":null}", RC_PERR_BAD_REQUEST},
        {"{\"type\":\"ping\",\"id\":true}", RC_PERR_BAD_REQUEST},
        {"{\"type\":\"ping\",\"id\":{}}", RC_PERR_BAD_REQUEST},
        {"{\"type\":\"ping\",\"id\":[1]}", RC_PERR_BAD_REQUEST},
        {"{\"type\":\"ping\",\"type\":\"ping\"}", RC_PERR_BAD_REQUEST},
        {"{\"type\":\"subscribe\"}", RC_PERR_BAD_REQUEST},
        {"{\"type\":\"unsubscribe\",\"id\":3}", RC_PERR_BAD_REQUEST},
        {"{\"type\":\"publish\",\"channel\":\"c\"}", RC_PERR_BAD_REQUEST},
        {"{\"type\":\"publish\",\"data\":1}", RC_PERR_BAD_REQUEST},
        {"{\"type\":\"publish\",\"channel\":\"c\",\"event\":\"a b\",\"data\":1}",
         RC_PERR_BAD_REQUEST},
        {"{\"type\":\"publish\",\"channel\":\"c\",\"event\":\"\",\"data\":1}", RC_PERR_BAD_REQUEST},
        {"{\"type\":\"publish\",\"channel\":\"c\",\"event\":7,\"data\":1}", RC_PERR_BAD_REQUEST},
        {"{\"type\":\"publish\",\"channel\":\"c\",\"event\":\"x*\",\"data\":1}",
         RC_PERR_BAD_REQUEST},
        {"{\"type\":\"join\"}", RC_PERR_UNKNOWN_TYPE},
        {"{\"type\":\"Subscribe\",\"channel\":\"c\"}", RC_PERR_UNKNOWN_TYPE},
        {"{\"type\":\"\"}", RC_PERR_UNKNOWN_TYPE},
        {"{\"type\":\"ping \"}", RC_PERR_UNKNOWN_TYPE},
        {"{\"type\":\"a-very-long-unknown-message-type-name\"}", RC_PERR_UNKNOWN_TYPE},
        {"{\"type\":\"subscribe\",\"channel\":\"\"}", RC_PERR_INVALID_CHANNEL},
        {"{\"type\":\"subscribe\",\"channel\":\"a b\"}", RC_PERR_INVALID_CHANNEL},
        {"{\"type\":\"subscribe\",\"channel\":\"room:*\"}", RC_PERR_INVALID_CHANNEL},
        {"{\"type\":\"subscribe\",\"channel\":\"*\"}", RC_PERR_INVALID_CHANNEL},
        {"{\"type\":\"subscribe\",\"channel\":\"a\\u0001\"}", RC_PERR_INVALID_CHANNEL},
        {"{\"type\":\"subscribe\",\"channel\":\"a\\n\"}", RC_PERR_INVALID_CHANNEL},
        {"{\"type\":\"subscribe\",\"channel\":\"a\\u0000\"}", RC_PERR_INVALID_CHANNEL},
        {"{\"type\":\"subscribe\",\"channel\":\"caf\\u00e9\"}", RC_PERR_INVALID_CHANNEL},
        {"{\"type\":\"subscribe\",\"channel\":\"caf\xc3\xa9\"}", RC_PERR_INVALID_CHANNEL},
        {"{\"type\":\"subscribe\",\"channel\":\"a\\\"b\"}", RC_PERR_INVALID_CHANNEL},
        {"{\"type\":\"subscribe\",\"channel\":\"{sub}\"}", RC_PERR_INVALID_CHANNEL},
        /* a channel of the wrong type is a bad request, not a bad name */
        {"{\"type\":\"subscribe\",\"channel\":5}", RC_PERR_BAD_REQUEST},
        {"{\"type\":\"subscribe\",\"channel\":null}", RC_PERR_BAD_REQUEST},
        {"{\"type\":\"publish\",\"channel\":[\"c\"],\"data\":1}", RC_PERR_BAD_REQUEST},
    };
    for (size_t i = 0; i < RC_ARRAY_LEN(t); i++) {
        int rc = P(t[i].msg);
        if (rc != t[i].code)
            fprintf(stderr, "case %zu %s: got %d\n", i, t[i].msg, rc);
        CHECK_EQ_INT(rc, t[i].code);
    }
}

static char *nested_data(int depth)
{
    /* {"type":"publish","channel":"c","data":[[...]]} with depth arrays */
    static const char head[] = "{\"type\":\"publish\",\"channel\":\"c\",\"data\":";
    size_t hn = sizeof(head) - 1;
    char *s = malloc(hn + (size_t)depth * 2 + 2);
    memcpy(s, head, hn);
    for (int i = 0; i < depth; i++) {
        s[hn + (size_t)i] = '[';
        s[hn + (size_t)depth + (size_t)i] = ']';
    }
    s[hn + (size_t)depth * 2] = '}';
    s[hn + (size_t)depth * 2 + 1] = '\0';
    return s;
}

static void test_depth(void)
{
    /* the message object is depth 1, so data may nest 31 more */
    char *s = nested_data(RC_PROTO_MAX_DEPTH - 1);
    CHECK_EQ_INT(P(s), RC_PERR_NONE);
    free(s);
    s = nested_data(RC_PROTO_MAX_DEPTH);
    CHECK_EQ_INT(P(s), RC_PERR_BAD_JSON);
    free(s);
    s = nested_data(100000);
    CHECK_EQ_INT(P(s), RC_PERR_BAD_JSON);
    free(s);
}

static void test_id(void)
{
    CHECK_EQ_INT(P("{\"type\":\"ping\",\"id\":\"a\\\"b\\u00e9\\n\"}"), 0);
    CHECK_EQ_STR(req.id, "\"a\\\"b\\u00e9\\n\"");
    CHECK_EQ_INT(req.id_len, 14);
    CHECK_EQ_INT(P("{\"type\":\"ping\",\"id\":-17}"), 0);
    CHECK_EQ_STR(req.id, "-17");
    CHECK_EQ_INT(P("{\"type\":\"ping\",\"id\":0}"), 0);
    CHECK_EQ_STR(req.id, "0");
    CHECK_EQ_INT(P("{\"type\":\"ping\",\"id\":\"\"}"), 0);
    CHECK_EQ_STR(req.id, "\"\"");

    /* 64 bytes of JSON text, quotes included, is the limit */
    char msg[200], id[80];
    memset(id, 'x', sizeof(id));
    snprintf(msg, sizeof(msg), "{\"type\":\"ping\",\"id\":\"%.62s\"}", id);
    CHECK_EQ_INT(P(msg), 0);
    CHECK_EQ_INT(req.id_len, 64);
    snprintf(msg, sizeof(msg), "{\"type\":\"ping\",\"id\":\"%.63s\"}", id);
    CHECK_EQ_INT(P(msg), RC_PERR_BAD_REQUEST);
    CHECK_EQ_INT(req.id_len, 0);
    memset(id, '7', sizeof(id));
    snprintf(msg, sizeof(msg), "{\"type\":\"ping\",\"id\":%.64s}", id);
    CHECK_EQ_INT(P(msg), 0);
    CHECK_EQ_INT(req.id_len, 64);
    snprintf(msg, sizeof(msg), "{\"type\":\"ping\",\"id\":%.65s}", id);
    CHECK_EQ_INT(P(msg), RC_PERR_BAD_REQUEST);

    /* the id is echoed on errors found in other members, wherever it sits */
    CHECK_EQ_INT(P("{\"id\":\"x\",\"type\":\"subscribe\",\"channel\":\"bad channel\"}"),
                 RC_PERR_INVALID_CHANNEL);
    CHECK_EQ_STR(req.id, "\"x\"");
    CHECK_EQ_INT(P("{\"type\":\"subscribe\",\"channel\":\"bad channel\",\"id\":7}"),
                 RC_PERR_INVALID_CHANNEL);
    CHECK_EQ_STR(req.id, "7");
    CHECK_EQ_INT(P("{\"type\":\"nope\",\"id\":8}"), RC_PERR_UNKNOWN_TYPE);
    CHECK_EQ_STR(req.id, "8");
    CHECK_EQ_INT(P("{\"id\":9}"), RC_PERR_BAD_REQUEST);
    CHECK_EQ_STR(req.id, "9");
    CHECK_EQ_INT(P("{\"type\":\"publish\",\"channel\":\"c\",\"id\":10}"), RC_PERR_BAD_REQUEST);
    CHECK_EQ_STR(req.id, "10");
    /* but not when the message is not valid JSON */
    CHECK_EQ_INT(P("{\"id\":11,\"type\":\"ping\",}"), RC_PERR_BAD_JSON);
    CHECK_EQ_INT(req.id_len, 0);
    CHECK_EQ_STR(req.id, "");
}

static void test_data_passthrough(void)
{
    static const char *const datas[] = {
        "{ \"a\" : [ 1 , 2 ] ,\n\t\"s\" : \"\\u00e9\\ud83d\\ude00\xc3\xa9\" }",
        "\"text \\\" with \\\\ escapes\"",
        "-1.25e-3",
        "[ ]",
        "true",
        "\"\"",
    };
    char msg[512];
    for (size_t i = 0; i < RC_ARRAY_LEN(datas); i++) {
        snprintf(msg, sizeof(msg), "{\"type\":\"publish\",\"channel\":\"c\",\"data\": %s }",
                 datas[i]);
        CHECK_EQ_INT(P(msg), 0);
        CHECK(data_is(datas[i]));
        CHECK(req.data.p > last_copy && req.data.p < last_copy + strlen(msg));
    }
}

static void test_channel_edges(void)
{
    char msg[600], name[300];
    memset(name, 'c', sizeof(name));
    snprintf(msg, sizeof(msg), "{\"type\":\"subscribe\",\"channel\":\"%.10s\"}", name);
    CHECK_EQ_INT(parse_n(msg, strlen(msg), 10), 0);
    CHECK_EQ_INT(req.channel_len, 10);
    snprintf(msg, sizeof(msg), "{\"type\":\"subscribe\",\"channel\":\"%.11s\"}", name);
    CHECK_EQ_INT(parse_n(msg, strlen(msg), 10), RC_PERR_INVALID_CHANNEL);
    CHECK_EQ_INT(req.channel_len, 0);

    snprintf(msg, sizeof(msg), "{\"type\":\"subscribe\",\"channel\":\"%.256s\"}", name);
    CHECK_EQ_INT(parse_n(msg, strlen(msg), RC_PROTO_MAX_CHANNEL), 0);
    CHECK_EQ_INT(req.channel_len, 256);
    snprintf(msg, sizeof(msg), "{\"type\":\"subscribe\",\"channel\":\"%.257s\"}", name);
    CHECK_EQ_INT(parse_n(msg, strlen(msg), RC_PROTO_MAX_CHANNEL), RC_PERR_INVALID_CHANNEL);
    /* a configured limit above the hard cap is held to the hard cap */
    CHECK_EQ_INT(parse_n(msg, strlen(msg), 100000), RC_PERR_INVALID_CHANNEL);

    /* escapes count after decoding: "\u0061" is one byte */
    snprintf(msg, sizeof(msg), "{\"type\":\"subscribe\",\"channel\":\"\\u0061\\u0062\"}");
    CHECK_EQ_INT(parse_n(msg, strlen(msg), 2), 0);
    CHECK_EQ_STR(req.channel, "ab");

    CHECK_EQ_INT(P("{\"type\":\"subscribe\",\"channel\":\"A-z_0.9:@/=+\"}"), 0);
    CHECK_EQ_STR(req.channel, "A-z_0.9:@/=+");

    CHECK(rc_proto_name_valid("a", 1, 1));
    CHECK(!rc_proto_name_valid("ab", 2, 1));
    CHECK(!rc_proto_name_valid("", 0, 10));
    CHECK(!rc_proto_name_valid("a\0b", 3, 10));
    CHECK(!rc_proto_name_valid("a b", 3, 10));
    CHECK(!rc_proto_name_valid("a*", 2, 10));
    CHECK(!rc_proto_name_valid("a\x7f", 2, 10));
    CHECK(!rc_proto_name_valid("\xc3\xa9", 2, 10));
    CHECK(!rc_proto_name_valid("a,b", 3, 10));
    CHECK(!rc_proto_name_valid("a\"b", 3, 10));
    CHECK(!rc_proto_name_valid("a\\b", 3, 10));
    CHECK(rc_proto_name_valid("room:lobbyXYZ", 10, 10));
}

static void test_publish_body(void)
{
    CHECK_EQ_INT(body("{\"channel\":\"news\",\"data\":{\"k\": 1}}"), 0);
    CHECK_EQ_INT(req.op, RC_OP_PUBLISH);
    CHECK_EQ_STR(req.channel, "news");
    CHECK_EQ_STR(req.event, "message");
    CHECK(data_is("{\"k\": 1}"));
    CHECK_EQ_INT(body("{\"type\":\"publish\",\"channel\":\"n\",\"event\":\"e\",\"data\":2}"), 0);
    CHECK_EQ_STR(req.event, "e");
    CHECK(data_is("2"));
    CHECK_EQ_INT(body("{\"type\":\"subscribe\",\"channel\":\"n\",\"data\":2}"),
                 RC_PERR_BAD_REQUEST);
    CHECK_EQ_INT(body("{\"type\":\"nope\",\"channel\":\"n\",\"data\":2}"), RC_PERR_BAD_REQUEST);
    CHECK_EQ_INT(body("{\"type\":7,\"channel\":\"n\",\"data\":2}"), RC_PERR_BAD_REQUEST);
    CHECK_EQ_INT(body("{\"data\":2}"), RC_PERR_BAD_REQUEST);
    CHECK_EQ_INT(body("{\"channel\":\"n\"}"), RC_PERR_BAD_REQUEST);
    CHECK_EQ_INT(body("{\"channel\":\"n n\",\"data\":1}"), RC_PERR_INVALID_CHANNEL);
    CHECK_EQ_INT(body("{\"channel\":\"n\",\"event\":\"a b\",\"data\":1}"), RC_PERR_BAD_REQUEST);
    CHECK_EQ_INT(body("[1]"), RC_PERR_BAD_REQUEST);
    CHECK_EQ_INT(body("{\"channel\":\"n\",\"data\":}"), RC_PERR_BAD_JSON);
    CHECK_EQ_INT(body(""), RC_PERR_BAD_JSON);
}

static void test_errname(void)
{
    static const char *const names[] = {
        "none",
        "bad_json",
        "bad_request",
        "unknown_type",
        "invalid_channel",
        "forbidden",
        "channel_limit",
        "rate_limited",
        "not_subscribed",
        "overloaded",
        "binary_unsupported",
        "messages_dropped",
        "internal",
        "queue_unavailable",
        "queue_not_found",
        "already_waiting",
        "bad_since",
        "no_history",
        "history_unavailable",
        "no_presence",
        "presence_unavailable",
        "unknown_event",
        "event_too_large",
        "stream_full",
        "events_unavailable",
        "bad_token",
    };
    CHECK_EQ_INT(RC_ARRAY_LEN(names), RC_PERR__COUNT);
    for (int i = 1; i < RC_PERR__COUNT; i++)
        CHECK_EQ_STR(rc_proto_errname(i), names[i]);
    CHECK_EQ_STR(rc_proto_errname(RC_PERR__COUNT), "internal");
    CHECK_EQ_STR(rc_proto_errname(-1), "internal");
    CHECK_EQ_STR(rc_proto_errname(RC_PERR_BAD_JSON), "bad_json");
}

static rc_str S(const char *s)
{
    return (rc_str){s, strlen(s)};
}

/* out holds the builder's result; checks it and that every smaller cap fails
 * without writing past it. */
#define CHECK_BUILD(call_with_out_cap, want)                                                       \
    do {                                                                                           \
        char buf_[1024];                                                                           \
        char *out = buf_;                                                                          \
        size_t cap = sizeof(buf_);                                                                 \
        ssize_t n_ = call_with_out_cap;                                                            \
        CHECK_EQ_INT(n_, (long long)strlen(want));                                                 \
        CHECK(n_ >= 0 && memcmp(buf_, want, (size_t)n_) == 0);                                     \
        if (n_ >= 0 && (size_t)n_ != strlen(want))                                                 \
            fprintf(stderr, "got %.*s\n", (int)n_, buf_);                                          \
        size_t wn_ = strlen(want);                                                                 \
        int bad_ = 0;                                                                              \
        for (cap = 0; cap <= wn_; cap++) {                                                         \
            out = malloc(cap ? cap : 1);                                                           \
            n_ = call_with_out_cap;                                                                \
            bad_ += cap < wn_ ? n_ != -1 : n_ != (ssize_t)wn_;                                     \
            free(out);                                                                             \
        }                                                                                          \
        CHECK_EQ_INT(bad_, 0);                                                                     \
    } while (0)

static void test_builders(void)
{
    CHECK_BUILD(rc_proto_reply(out, cap, "subscribed", S("\"abc\""), S("room:1"), -1),
                "{\"type\":\"subscribed\",\"id\":\"abc\",\"channel\":\"room:1\"}");
    CHECK_BUILD(rc_proto_reply(out, cap, "published", S("7"), S("c"), 42),
                "{\"type\":\"published\",\"id\":7,\"channel\":\"c\",\"seq\":42}");
    CHECK_BUILD(rc_proto_reply(out, cap, "unsubscribed", RC_STR_NULL, RC_STR_NULL, -1),
                "{\"type\":\"unsubscribed\"}");
    CHECK_BUILD(rc_proto_reply(out, cap, "published", RC_STR_NULL, S("a\"b\n"), INT64_MAX),
                "{\"type\":\"published\",\"channel\":\"a\\\"b\\n\",\"seq\":9223372036854775807}");
    CHECK_BUILD(rc_proto_reply(out, cap, "subscribed", S("\"a\\\"b\\u00e9\""), RC_STR_NULL, 0),
                "{\"type\":\"subscribed\",\"id\":\"a\\\"b\\u00e9\",\"seq\":0}");

    CHECK_BUILD(rc_proto_pong(out, cap, S("3"), 1700000000123),
                "{\"type\":\"pong\",\"id\":3,\"time\":1700000000123}");
    CHECK_BUILD(rc_proto_pong(out, cap, RC_STR_NULL, 0), "{\"type\":\"pong\",\"time\":0}");

    CHECK_BUILD(
        rc_proto_error(out, cap, S("\"q\""), RC_PERR_INVALID_CHANNEL, "bad \"name\"", S("x")),
        "{\"type\":\"error\",\"id\":\"q\",\"code\":\"invalid_channel\","
        "\"message\":\"bad \\\"name\\\"\",\"channel\":\"x\"}");
    CHECK_BUILD(rc_proto_error(out, cap, RC_STR_NULL, RC_PERR_BAD_JSON, NULL, RC_STR_NULL),
                "{\"type\":\"error\",\"code\":\"bad_json\"}");
    CHECK_BUILD(rc_proto_error(out, cap, S("1"), 999, "", RC_STR_NULL),
                "{\"type\":\"error\",\"id\":1,\"code\":\"internal\",\"message\":\"\"}");

    CHECK_BUILD(rc_proto_message(out, cap, S("room:1"), S("chat"), UINT64_MAX,
                                 S("{\"a\": [1, \"\\u00e9\"]}")),
                "{\"type\":\"message\",\"channel\":\"room:1\",\"event\":\"chat\","
                "\"seq\":18446744073709551615,\"data\":{\"a\": [1, \"\\u00e9\"]}}");
    CHECK_BUILD(rc_proto_message(out, cap, S("c"), RC_STR_NULL, 0, RC_STR_NULL),
                "{\"type\":\"message\",\"channel\":\"c\",\"event\":\"message\",\"seq\":0,"
                "\"data\":null}");

    CHECK_BUILD(rc_proto_welcome(out, cap, "n1", 3, UINT64_MAX, "alice", 25000, 65536),
                "{\"type\":\"welcome\",\"node\":\"n1\",\"shard\":3,"
                "\"conn\":\"18446744073709551615\",\"user\":\"alice\","
                "\"ping_interval\":25000,\"max_message_bytes\":65536}");
    CHECK_BUILD(rc_proto_welcome(out, cap, "edge-2", 0, 12, NULL, 0, 4294967295u),
                "{\"type\":\"welcome\",\"node\":\"edge-2\",\"shard\":0,\"conn\":\"12\","
                "\"user\":null,\"ping_interval\":0,\"max_message_bytes\":4294967295}");
    CHECK_BUILD(rc_proto_welcome(out, cap, "n", -1, 0, "a\"\\\x01", 1, 2),
                "{\"type\":\"welcome\",\"node\":\"n\",\"shard\":-1,\"conn\":\"0\","
                "\"user\":\"a\\\"\\\\\\u0001\",\"ping_interval\":1,\"max_message_bytes\":2}");
}

/* Random text that needs escaping often, always valid UTF-8. */
static void rand_bytes(char *b, size_t n)
{
    static const char *const tokens[] = {
        "\"", "\\", "\n",       "\r",           "\t",
        "\b", "\f", "\x01",     "\x1f",         "\x7f",
        "/",  " ",  "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80"};
    size_t i = 0;
    while (i < n) {
        const char *t = tokens[(size_t)rand() % RC_ARRAY_LEN(tokens)];
        size_t tn = strlen(t);
        if (rand() % 3 || tn > n - i) {
            b[i++] = (char)('a' + rand() % 26);
        } else {
            memcpy(b + i, t, tn);
            i += tn;
        }
    }
}

static void test_message_len(void)
{
    srand(12345);
    int mismatches = 0, valid = 0;
    for (int round = 0; round < 2000; round++) {
        char ch[80], ev[80], data[200], out[2048];
        size_t cn = (size_t)rand() % 80, en = (size_t)rand() % 80, dn = (size_t)rand() % 200;
        rand_bytes(ch, cn);
        rand_bytes(ev, en);
        rand_bytes(data, dn);
        uint64_t seq = round % 5 == 0
                           ? UINT64_MAX
                           : ((uint64_t)rand() << 32 | (uint64_t)rand()) >> (rand() % 64);
        rc_str c = {ch, cn}, e = {ev, en}, d = {data, dn};
        ssize_t n = rc_proto_message(out, sizeof(out), c, e, seq, d);
        mismatches += n < 0 || (size_t)n != rc_proto_message_len(c, e, seq, d);
        /* with JSON data the whole message is valid JSON */
        if (round % 4 == 0) {
            rc_str jd = S("{\"k\":[1,2]}");
            n = rc_proto_message(out, sizeof(out), c, e, seq, jd);
            mismatches += n < 0 || (size_t)n != rc_proto_message_len(c, e, seq, jd);
            valid += n > 0 && rc_json_validate(out, (size_t)n, 4) == 0;
        }
    }
    CHECK_EQ_INT(mismatches, 0);
    CHECK_EQ_INT(valid, 500);
    CHECK_EQ_INT(rc_proto_message_len(S("c"), RC_STR_NULL, 0, RC_STR_NULL),
                 strlen("{\"type\":\"message\",\"channel\":\"c\",\"event\":\"message\","
                        "\"seq\":0,\"data\":null}"));
}

static void test_presence_codec(void)
{
    static rc_proto_req preq;
    const char *why_ = NULL;
    const char *a = "{\"type\":\"presence\",\"id\":3,\"channel\":\"r:1\",\"limit\":5,"
                    "\"cursor\":\"n:ab:7\"}";
    CHECK_EQ_INT(rc_proto_parse(a, strlen(a), 128, &preq, &why_), RC_PERR_NONE);
    CHECK_EQ_INT(preq.op, RC_OP_PRESENCE);
    CHECK_EQ_INT(preq.limit, 5);
    CHECK_EQ_STR(preq.cursor, "n:ab:7");
    CHECK_EQ_INT(preq.cursor_len, 6);
    const char *b = "{\"type\":\"presence_stats\",\"channel\":\"r:1\"}";
    CHECK_EQ_INT(rc_proto_parse(b, strlen(b), 128, &preq, &why_), RC_PERR_NONE);
    CHECK_EQ_INT(preq.op, RC_OP_PRESENCE_STATS);
    static const char *const bad[] = {
        "{\"type\":\"presence\",\"channel\":\"r\",\"cursor\":\"\"}",
        "{\"type\":\"presence\",\"channel\":\"r\",\"cursor\":\"a\\nb\"}",
        "{\"type\":\"presence\",\"channel\":\"r\",\"cursor\":7}",
        "{\"type\":\"presence\",\"channel\":\"r\",\"limit\":0}",
        "{\"type\":\"presence\",\"channel\":\"r\",\"limit\":1.5}",
        "{\"type\":\"presence_stats\"}",
    };
    for (size_t i = 0; i < RC_ARRAY_LEN(bad); i++)
        CHECK(rc_proto_parse(bad[i], strlen(bad[i]), 128, &preq, &why_) != RC_PERR_NONE);

    char m[RC_PROTO_MEMBER_MAX];
    CHECK_BUILD(rc_proto_member(out, cap, S("a\"b"), 42, S("N"), S("{\"k\":1}")),
                "{\"user\":\"a\\\"b\",\"conn\":\"42\",\"node\":\"N\",\"info\":{\"k\":1}}");
    CHECK_BUILD(rc_proto_member(out, cap, RC_STR_NULL, 7, S("N"), RC_STR_NULL),
                "{\"user\":null,\"conn\":\"7\",\"node\":\"N\"}");
    ssize_t mn = rc_proto_member(m, sizeof(m), RC_STR_NULL, 7, S("N"), RC_STR_NULL);
    CHECK_BUILD(rc_proto_presence_event(out, cap, 0, S("c"), (rc_str){m, (size_t)mn}),
                "{\"type\":\"leave\",\"channel\":\"c\",\"member\":{\"user\":null,"
                "\"conn\":\"7\",\"node\":\"N\"}}");
    CHECK_BUILD(rc_proto_presence_event(out, cap, 1, S("c"), S("{}")),
                "{\"type\":\"join\",\"channel\":\"c\",\"member\":{}}");
    CHECK_BUILD(rc_proto_presence_stats(out, cap, S("1"), S("c"), 5, 3),
                "{\"type\":\"presence_stats\",\"id\":1,\"channel\":\"c\",\"connections\":5,"
                "\"users\":3}");
    CHECK_BUILD(rc_proto_presence(out, cap, RC_STR_NULL, S("c"), S("{},{}"), S("k")),
                "{\"type\":\"presence\",\"channel\":\"c\",\"members\":[{},{}],\"cursor\":\"k\"}");
    CHECK_BUILD(rc_proto_presence(out, cap, RC_STR_NULL, S("c"), RC_STR_NULL, RC_STR_NULL),
                "{\"type\":\"presence\",\"channel\":\"c\",\"members\":[]}");
}

static void test_envelope(void)
{
    rc_envelope e;
    const char *why_ = NULL;
    const char *a = "{\"node\":\"n-1:a\",\"event\":\"tick\",\"data\":{\"x\":[1,2]}}";
    CHECK_EQ_INT(rc_envelope_parse(a, strlen(a), &e, &why_), RC_PERR_NONE);
    CHECK_EQ_STR(e.node, "n-1:a");
    CHECK_EQ_INT(e.node_len, 5);
    CHECK_EQ_STR(e.event, "tick");
    CHECK_EQ_INT(e.event_len, 4);
    CHECK(e.data.n == 11 && memcmp(e.data.p, "{\"x\":[1,2]}", 11) == 0);

    /* What a backend sends: no node, no event; unknown members ignored. */
    const char *b = " { \"data\" : \"hi\" , \"trace\": {\"id\": 7} } ";
    CHECK_EQ_INT(rc_envelope_parse(b, strlen(b), &e, &why_), RC_PERR_NONE);
    CHECK_EQ_INT(e.node_len, 0);
    CHECK_EQ_STR(e.node, "");
    CHECK_EQ_STR(e.event, "message");
    CHECK(e.data.n == 4 && memcmp(e.data.p, "\"hi\"", 4) == 0);
    const char *c = "{\"data\":null}";
    CHECK_EQ_INT(rc_envelope_parse(c, strlen(c), &e, &why_), RC_PERR_NONE);
    CHECK(e.data.n == 4 && memcmp(e.data.p, "null", 4) == 0);

    static const struct {
        const char *in;
        int code;
    } bad[] = {
        {"", RC_PERR_BAD_JSON},
        {"hello", RC_PERR_BAD_JSON},
        {"[1,2]", RC_PERR_BAD_JSON},
        {"{\"data\":1", RC_PERR_BAD_JSON},
        {"{\"event\":\"e\"}", RC_PERR_BAD_REQUEST},
        {"{\"data\":1,\"data\":2}", RC_PERR_BAD_REQUEST},
        {"{\"data\":1,\"event\":\"a b\"}", RC_PERR_BAD_REQUEST},
        {"{\"data\":1,\"event\":7}", RC_PERR_BAD_REQUEST},
        {"{\"data\":1,\"node\":7}", RC_PERR_BAD_REQUEST},
        {"{\"data\":1,\"node\":"
         "\"0123456789012345678901234567890123456789012345678901234567890123\"}",
         RC_PERR_BAD_REQUEST},
    };
    for (size_t i = 0; i < RC_ARRAY_LEN(bad); i++) {
        int got = rc_envelope_parse(bad[i].in, strlen(bad[i].in), &e, &why_);
        if (got != bad[i].code)
            fprintf(stderr, "  envelope '%s': %d\n", bad[i].in, got);
        CHECK_EQ_INT(got, bad[i].code);
        CHECK(why_ && *why_);
    }

    /* Presence events: a member object, no data. */
    const char *j = "{\"node\":\"A\",\"join\":{\"user\":\"u\",\"conn\":\"1\"}}";
    CHECK_EQ_INT(rc_envelope_parse(j, strlen(j), &e, &why_), RC_PERR_NONE);
    CHECK_EQ_INT(e.presence, RC_ENV_JOIN);
    CHECK(e.member.n == 23 && memcmp(e.member.p, "{\"user\":\"u\",\"conn\":\"1\"}", 23) == 0);
    const char *l = "{\"leave\":{}}";
    CHECK_EQ_INT(rc_envelope_parse(l, strlen(l), &e, &why_), RC_PERR_NONE);
    CHECK_EQ_INT(e.presence, RC_ENV_LEAVE);
    static const char *const bad_ev[] = {"{\"join\":1}", "{\"leave\":\"x\"}",
                                         "{\"join\":{},\"leave\":{}}"};
    for (size_t i = 0; i < RC_ARRAY_LEN(bad_ev); i++)
        CHECK_EQ_INT(rc_envelope_parse(bad_ev[i], strlen(bad_ev[i]), &e, &why_),
                     RC_PERR_BAD_REQUEST);

    /* A node's announcement that it dropped messages: data not needed. */
    const char *d = "{\"node\":\"B\",\"dropped\":true}";
    CHECK_EQ_INT(rc_envelope_parse(d, strlen(d), &e, &why_), RC_PERR_NONE);
    CHECK_EQ_INT(e.dropped, 1);
    CHECK_EQ_STR(e.node, "B");
    const char *d2 = "{\"dropped\":false,\"data\":2}";
    CHECK_EQ_INT(rc_envelope_parse(d2, strlen(d2), &e, &why_), RC_PERR_NONE);
    CHECK_EQ_INT(e.dropped, 0);
    CHECK(e.data.n == 1 && e.data.p[0] == '2');
    const char *d3 = "{\"dropped\":false}";
    CHECK_EQ_INT(rc_envelope_parse(d3, strlen(d3), &e, &why_), RC_PERR_BAD_REQUEST);
    const char *d4 = "{\"dropped\":1,\"data\":1}";
    CHECK_EQ_INT(rc_envelope_parse(d4, strlen(d4), &e, &why_), RC_PERR_BAD_REQUEST);

    char out[256];
    ssize_t n =
        rc_envelope_build(out, sizeof(out), "A", (rc_str){"ev", 2}, (rc_str){"[1]", 3}, NULL);
    CHECK_EQ_INT(n, (ssize_t)strlen("{\"node\":\"A\",\"event\":\"ev\",\"data\":[1]}"));
    out[n > 0 ? n : 0] = '\0';
    CHECK_EQ_STR(out, "{\"node\":\"A\",\"event\":\"ev\",\"data\":[1]}");
    n = rc_envelope_build(out, sizeof(out), "A", RC_STR_NULL, (rc_str){"1", 1}, NULL);
    out[n > 0 ? n : 0] = '\0';
    CHECK_EQ_STR(out, "{\"node\":\"A\",\"data\":1}");
    CHECK_EQ_INT(rc_envelope_build(out, 10, "A", RC_STR_NULL, (rc_str){"1", 1}, NULL), -1);
    /* What one writes, the other reads back. */
    n = rc_envelope_build(out, sizeof(out), "node-7", (rc_str){"e.v", 3}, (rc_str){"{\"k\":1}", 7},
                          NULL);
    CHECK_EQ_INT(rc_envelope_parse(out, (size_t)n, &e, &why_), RC_PERR_NONE);
    CHECK_EQ_STR(e.node, "node-7");
    CHECK_EQ_STR(e.event, "e.v");
    CHECK(e.data.n == 7 && memcmp(e.data.p, "{\"k\":1}", 7) == 0);
    CHECK_EQ_INT(e.from, RC_FROM_BACKEND); /* no "from": the backend's */

    /* Several arguments (a Socket.IO emitter's): "args":true, and back. */
    rc_origin so = {RC_FROM_BACKEND, RC_STR_NULL, 0, 1};
    n = rc_envelope_build(out, sizeof(out), "A", RC_STR_NULL, (rc_str){"[1,\"b\"]", 7}, &so);
    out[n > 0 ? n : 0] = '\0';
    CHECK_EQ_STR(out, "{\"node\":\"A\",\"args\":true,\"data\":[1,\"b\"]}");
    CHECK_EQ_INT(rc_envelope_parse(out, (size_t)n, &e, &why_), RC_PERR_NONE);
    CHECK_EQ_INT(e.args, 1);
    static const char *const bad_args[] = {"{\"args\":1,\"data\":[1]}",
                                           "{\"args\":true,\"data\":1}"};
    for (size_t i = 0; i < RC_ARRAY_LEN(bad_args); i++)
        CHECK_EQ_INT(rc_envelope_parse(bad_args[i], strlen(bad_args[i]), &e, &why_),
                     RC_PERR_BAD_REQUEST);

    /* A client's publication carries who sent it, escaped, and reads back. */
    rc_origin o = {RC_FROM_CLIENT, {"u\"1", 3}, 4294967301ull, 0};
    n = rc_envelope_build(out, sizeof(out), "A", RC_STR_NULL, (rc_str){"2", 1}, &o);
    out[n > 0 ? n : 0] = '\0';
    CHECK_EQ_STR(out, "{\"node\":\"A\",\"from\":{\"user\":\"u\\\"1\",\"conn\":\"4294967301\"},"
                      "\"data\":2}");
    CHECK_EQ_INT(rc_envelope_parse(out, (size_t)n, &e, &why_), RC_PERR_NONE);
    CHECK_EQ_INT(e.from, RC_FROM_CLIENT);
    CHECK_EQ_STR(e.from_user, "u\"1");
    CHECK(e.from_conn == 4294967301ull);
    rc_origin anon = {RC_FROM_CLIENT, RC_STR_NULL, 7, 0};
    n = rc_envelope_build(out, sizeof(out), "A", RC_STR_NULL, (rc_str){"2", 1}, &anon);
    out[n > 0 ? n : 0] = '\0';
    CHECK_EQ_STR(out, "{\"node\":\"A\",\"from\":{\"user\":null,\"conn\":\"7\"},\"data\":2}");
    CHECK_EQ_INT(rc_envelope_parse(out, (size_t)n, &e, &why_), RC_PERR_NONE);
    CHECK(e.from == RC_FROM_CLIENT && e.from_user_len == 0 && e.from_conn == 7);
    /* Too small by one byte: refused whole. */
    CHECK_EQ_INT(rc_envelope_build(out, strlen(out) - 1, "A", RC_STR_NULL, (rc_str){"2", 1}, &anon),
                 -1);
    /* A malformed from is refused, never taken for a client's. */
    static const char *const bad_from[] = {
        "{\"from\":1,\"data\":1}",
        "{\"from\":{\"user\":\"u\"},\"data\":1}",
        "{\"from\":{\"user\":\"u\",\"conn\":7},\"data\":1}",
        "{\"from\":{\"user\":\"u\",\"conn\":\"12a\"},\"data\":1}",
        "{\"from\":{\"user\":\"\",\"conn\":\"1\"},\"data\":1}",
        "{\"from\":{\"user\":5,\"conn\":\"1\"},\"data\":1}",
        "{\"from\":{\"user\":null,\"conn\":\"18446744073709551616\"},\"data\":1}",
    };
    for (size_t i = 0; i < RC_ARRAY_LEN(bad_from); i++)
        CHECK_EQ_INT(rc_envelope_parse(bad_from[i], strlen(bad_from[i]), &e, &why_),
                     RC_PERR_BAD_REQUEST);
}

static void test_queue_messages(void)
{
    rc_proto_req r;
    const char *why_ = NULL;
    const char *j = "{\"type\":\"queue.join\",\"id\":7,\"queue\":\"sale-42\"}";
    CHECK_EQ_INT(rc_proto_parse(j, strlen(j), 128, &r, &why_), RC_PERR_NONE);
    CHECK_EQ_INT(r.op, RC_OP_QJOIN);
    CHECK_EQ_STR(r.queue, "sale-42");
    CHECK_EQ_INT(r.queue_len, 7);
    CHECK_EQ_STR(r.id, "7");
    const char *l = "{\"queue\":\"q\",\"type\":\"queue.leave\"}";
    CHECK_EQ_INT(rc_proto_parse(l, strlen(l), 128, &r, &why_), RC_PERR_NONE);
    CHECK_EQ_INT(r.op, RC_OP_QLEAVE);
    static const char *const bad[] = {
        "{\"type\":\"queue.join\"}",
        "{\"type\":\"queue.join\",\"queue\":7}",
        "{\"type\":\"queue.join\",\"queue\":\"\"}",
        "{\"type\":\"queue.join\",\"queue\":\"a b\"}",
        "{\"type\":\"queue.join\",\"queue\":\"x\",\"queue\":\"y\"}",
        /* 65 characters: one over the limit */
        "{\"type\":\"queue.join\",\"queue\":"
        "\"12345678901234567890123456789012345678901234567890123456789012345\"}",
    };
    for (size_t i = 0; i < RC_ARRAY_LEN(bad); i++)
        CHECK_EQ_INT(rc_proto_parse(bad[i], strlen(bad[i]), 128, &r, &why_), RC_PERR_BAD_REQUEST);

    char out[512];
    rc_str q = {"sale-42", 7}, id = {"7", 1};
    ssize_t n = rc_proto_queue_joined(out, sizeof(out), id, q, 5120, 20, 3);
    out[n > 0 ? n : 0] = '\0';
    CHECK_EQ_STR(out, "{\"type\":\"queue.joined\",\"id\":7,\"queue\":\"sale-42\","
                      "\"ticket\":5120,\"position\":20,\"eta\":3}");
    rc_queue_tick tk = {5108, {"9.8000", 6}, 1000, 0, 1795292431000};
    n = rc_proto_queue_tick(out, sizeof(out), q, &tk);
    out[n > 0 ? n : 0] = '\0';
    CHECK_EQ_STR(out, "{\"type\":\"queue.tick\",\"queue\":\"sale-42\",\"head\":5108,"
                      "\"ewma\":9.8000,\"tick\":1000,\"paused\":false,\"time\":1795292431000}");
    tk = (rc_queue_tick){0, {"0", 1}, 250, 1, 7};
    n = rc_proto_queue_tick(out, sizeof(out), q, &tk);
    out[n > 0 ? n : 0] = '\0';
    CHECK_EQ_STR(out, "{\"type\":\"queue.tick\",\"queue\":\"sale-42\",\"head\":0,"
                      "\"ewma\":0,\"tick\":250,\"paused\":true,\"time\":7}");
    CHECK_EQ_INT(rc_proto_queue_tick(out, 40, q, &tk), -1);
    n = rc_proto_admitted(out, sizeof(out), RC_STR_NULL, q, (rc_str){"a.b.c", 5}, 99);
    out[n > 0 ? n : 0] = '\0';
    CHECK_EQ_STR(out, "{\"type\":\"admitted\",\"queue\":\"sale-42\",\"token\":\"a.b.c\","
                      "\"expires\":99}");
    n = rc_proto_queue_left(out, sizeof(out), id, q);
    out[n > 0 ? n : 0] = '\0';
    CHECK_EQ_STR(out, "{\"type\":\"queue.left\",\"id\":7,\"queue\":\"sale-42\"}");
    CHECK_EQ_INT(rc_proto_queue_left(out, 20, id, q), -1);
}

/* ---- every builder at its RC_PROTO_*_MAX, for the worst inputs ---------------- */

static uint64_t rng = 88172645463325252ull;
static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)rng;
}

/* n bytes of valid UTF-8 from a mix meant to need escaping: control
 * characters, quotes, backslashes, and 2-, 3- and 4-byte sequences. */
static size_t worst_text(char *out, size_t n)
{
    static const char *const pieces[] = {
        "\x01", "\x1f", "\"",       "\\",           "\n",
        "\x7f", "a",    "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80"};
    size_t o = 0;
    for (;;) {
        const char *p = pieces[rnd() % RC_ARRAY_LEN(pieces)];
        size_t l = strlen(p);
        if (o + l > n)
            break;
        memcpy(out + o, p, l);
        o += l;
    }
    while (o < n) /* fill up with control characters, the longest escape */
        out[o++] = 0x01;
    out[o] = '\0';
    return o;
}

/* The value of member name in the JSON object json[0..n), decoded. */
static int member_is(const char *json, size_t n, const char *name, const char *want)
{
    rc_json_iter it;
    rc_json_val k, v;
    static char got[4096];
    if (rc_json_object_begin(&it, json, n, 8) != 0)
        return 0;
    while (rc_json_object_next(&it, &k, &v))
        if (rc_json_key_is(&k, name))
            return rc_json_string(&v, got, sizeof(got)) >= 0 && strcmp(got, want) == 0;
    return 0;
}

static void test_builders_worst_case(void)
{
    for (int round = 0; round < 300; round++) {
        char user[RC_PROTO_MAX_USER + 1], node[RC_PROTO_MAX_NODE + 1];
        char text[RC_PROTO_MAX_TEXT + 1], queue[RC_PROTO_MAX_QUEUE + 1];
        char chan[RC_PROTO_MAX_CHANNEL + 1], id[RC_PROTO_MAX_ID + 1];
        size_t un =
            worst_text(user, round == 0 ? RC_PROTO_MAX_USER : 1 + rnd() % RC_PROTO_MAX_USER);
        worst_text(node, RC_PROTO_MAX_NODE);
        worst_text(text, RC_PROTO_MAX_TEXT);
        /* names and ids as the parsers accept them at their longest */
        memset(queue, 'q', RC_PROTO_MAX_QUEUE);
        queue[RC_PROTO_MAX_QUEUE] = '\0';
        memset(chan, 'c', RC_PROTO_MAX_CHANNEL);
        chan[RC_PROTO_MAX_CHANNEL] = '\0';
        memset(id, '9', RC_PROTO_MAX_ID);
        id[RC_PROTO_MAX_ID] = '\0';
        rc_str rid = {id, RC_PROTO_MAX_ID}, rq = {queue, RC_PROTO_MAX_QUEUE};
        rc_str rch = {chan, RC_PROTO_MAX_CHANNEL};
        (void)un;

        char w[RC_PROTO_WELCOME_MAX];
        ssize_t n =
            rc_proto_welcome(w, sizeof(w), node, 7, UINT64_MAX, user, UINT32_MAX, UINT32_MAX);
        CHECK(n > 0 && rc_json_validate(w, (size_t)n, 8) == 0);
        CHECK(n > 0 && member_is(w, (size_t)n, "user", user) &&
              member_is(w, (size_t)n, "node", node));

        char r[RC_PROTO_REPLY_MAX];
        n = rc_proto_error(r, sizeof(r), rid, RC_PERR_QUEUE_UNAVAILABLE, text, rch);
        CHECK(n > 0 && rc_json_validate(r, (size_t)n, 8) == 0);
        CHECK(n > 0 && member_is(r, (size_t)n, "message", text));
        n = rc_proto_reply(r, sizeof(r), "unsubscribed", rid, rch, INT64_MAX);
        CHECK(n > 0 && rc_json_validate(r, (size_t)n, 8) == 0);
        n = rc_proto_pong(r, sizeof(r), rid, INT64_MIN);
        CHECK(n > 0 && rc_json_validate(r, (size_t)n, 8) == 0);

        char q[RC_PROTO_QUEUE_MAX];
        n = rc_proto_queue_joined(q, sizeof(q), rid, rq, INT64_MAX, INT64_MIN, INT64_MAX);
        CHECK(n > 0 && rc_json_validate(q, (size_t)n, 8) == 0);
        /* ewma at its longest (RC_PROTO_MAX_EWMA characters) */
        rc_queue_tick tk = {
            INT64_MIN, {"-1.234567890123456789012345e-300", 32}, UINT32_MAX, 1, INT64_MIN};
        n = rc_proto_queue_tick(q, sizeof(q), rq, &tk);
        CHECK(n > 0 && rc_json_validate(q, (size_t)n, 8) == 0);
        n = rc_proto_queue_left(q, sizeof(q), rid, rq);
        CHECK(n > 0 && rc_json_validate(q, (size_t)n, 8) == 0);
        n = rc_proto_queue_gone(q, sizeof(q), rq, "left_elsewhere");
        CHECK(n > 0 && rc_json_validate(q, (size_t)n, 8) == 0);

        char v[RC_PROTO_VERIFY_MAX];
        n = rc_proto_verified(v, sizeof(v), user, queue, INT64_MIN, INT64_MAX);
        CHECK(n > 0 && rc_json_validate(v, (size_t)n, 8) == 0);
        CHECK(n > 0 && member_is(v, (size_t)n, "user", user));
        n = rc_proto_not_verified(v, sizeof(v), text);
        CHECK(n > 0 && member_is(v, (size_t)n, "reason", text));
        n = rc_proto_completed(v, sizeof(v), queue, user, 1);
        CHECK(n > 0 && rc_json_validate(v, (size_t)n, 8) == 0);
        CHECK(n > 0 && member_is(v, (size_t)n, "user", user));
    }
}

int main(void)
{
    RUN(test_ops);
    RUN(test_errors);
    RUN(test_depth);
    RUN(test_id);
    RUN(test_data_passthrough);
    RUN(test_channel_edges);
    RUN(test_publish_body);
    RUN(test_errname);
    RUN(test_builders);
    RUN(test_message_len);
    RUN(test_envelope);
    RUN(test_presence_codec);
    RUN(test_queue_messages);
    RUN(test_builders_worst_case);
    free(last_copy);
    return UNIT_DONE();
}
