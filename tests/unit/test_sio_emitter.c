/* MessagePack into JSON (sio/msgpack.c) and the Redis emitter's messages
 * (sio/emitter.c), with bytes written out by hand from the MessagePack
 * spec and the shape @socket.io/redis-emitter publishes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sio/emitter.h"
#include "sio/msgpack.h"
#include "tests/unit/unit.h"

/* JSON of the MessagePack in b[0..n), or "ERR". */
static const char *js(const uint8_t *b, size_t n)
{
    static char out[512];
    rc_mp m = {b, b + n};
    ssize_t w = rc_mp_to_json(&m, out, sizeof(out) - 1);
    if (w < 0)
        return "ERR";
    out[w] = '\0';
    return out;
}

#define JS(...) js((const uint8_t[]){__VA_ARGS__}, sizeof((const uint8_t[]){__VA_ARGS__}))

static void test_scalars(void)
{
    CHECK_EQ_STR(JS(0xc0), "null");
    CHECK_EQ_STR(JS(0xc3), "true");
    CHECK_EQ_STR(JS(0xc2), "false");
    CHECK_EQ_STR(JS(0x7f), "127");
    CHECK_EQ_STR(JS(0xff), "-1");
    CHECK_EQ_STR(JS(0xe0), "-32");
    CHECK_EQ_STR(JS(0xcc, 0xff), "255");
    CHECK_EQ_STR(JS(0xcd, 0x01, 0x00), "256");
    CHECK_EQ_STR(JS(0xd0, 0x80), "-128");
    CHECK_EQ_STR(JS(0xd1, 0xff, 0x00), "-256");
    CHECK_EQ_STR(JS(0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff), "18446744073709551615");
    CHECK_EQ_STR(JS(0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0), "-9223372036854775808");
    CHECK_EQ_STR(JS(0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0), "1.5");
    CHECK_EQ_STR(JS(0xca, 0x7f, 0xc0, 0, 0), "null"); /* NaN has no JSON form */
    CHECK_EQ_STR(JS(0xa2, 'h', 'i'), "\"hi\"");
    CHECK_EQ_STR(JS(0xa2, '"', '\n'), "\"\\\"\\n\"");
    CHECK_EQ_STR(JS(0xd9, 0x01, 'x'), "\"x\"");
}

static void test_containers(void)
{
    CHECK_EQ_STR(JS(0x93, 0x01, 0xa1, 'a', 0xc0), "[1,\"a\",null]");
    CHECK_EQ_STR(JS(0x82, 0xa1, 'a', 0x01, 0xa1, 'b', 0x90), "{\"a\":1,\"b\":[]}");
    CHECK_EQ_STR(JS(0xdc, 0x00, 0x01, 0xc3), "[true]");
    /* Refused: binary, extensions, non-string keys, truncation, bad UTF-8. */
    CHECK_EQ_STR(JS(0xc4, 0x01, 0x00), "ERR");
    CHECK_EQ_STR(JS(0xd4, 0x01, 0x00), "ERR");
    CHECK_EQ_STR(JS(0x81, 0x01, 0x01), "ERR");
    CHECK_EQ_STR(JS(0x92, 0x01), "ERR");
    CHECK_EQ_STR(JS(0xa3, 'a'), "ERR");
    CHECK_EQ_STR(JS(0xa2, 0xc3, 0x28), "ERR");
    CHECK_EQ_STR(JS(0xc1), "ERR");
    /* Nesting past the limit. */
    uint8_t deep[RC_MP_MAX_DEPTH + 3];
    memset(deep, 0x91, sizeof(deep));
    deep[sizeof(deep) - 1] = 0xc0;
    CHECK_EQ_STR(js(deep, sizeof(deep)), "ERR");
    rc_mp m = {deep, deep + sizeof(deep)};
    CHECK_EQ_INT(rc_mp_skip(&m), -1);
}

static rc_config cfg;

static int read_msg(const char *rname, const uint8_t *b, size_t n, char *chan, char *ev,
                    char **data, const char **why)
{
    rc_sio_emit e;
    int r = rc_sio_emitter_read(&cfg, (rc_str){rname, strlen(rname)}, (rc_str){(const char *)b, n},
                                &e, why);
    *data = NULL;
    if (r == 0) {
        memcpy(chan, e.chan, e.chan_len);
        chan[e.chan_len] = '\0';
        memcpy(ev, e.ev, e.ev_len + 1);
        *data = rc_strndup(e.data, e.data_len);
        rc_sio_emit_clear(&e);
    }
    return r;
}

/* The lists of an emit or a request, as "rooms|except|names" with the
 * channels comma-separated, and "*" for all. */
static const char *lists(const rc_sio_bcast *b)
{
    static char out[1024];
    size_t w = 0;
    if (b->all)
        out[w++] = '*';
    for (int l = 0; l < 3; l++) {
        if (l)
            out[w++] = '|';
        for (uint32_t i = 0; i < b->n[l]; i++) {
            rc_str c = rc_sio_bcast_get(b, l, i);
            w += (size_t)snprintf(out + w, sizeof(out) - w, "%s%.*s", i ? "," : "", (int)c.n, c.p);
        }
    }
    out[w] = '\0';
    return out;
}

/* [uid, {type, data:[ev, args...], nsp}, {rooms, flags, except}] with
 * rooms and except each given as MessagePack bytes (an array). */
static size_t message2(uint8_t *b, const uint8_t *type, size_t tn, const uint8_t *args, size_t an,
                       int nargs, const uint8_t *rooms, size_t rn, const uint8_t *except, size_t en,
                       int volatile_)
{
    size_t n = 0;
    static const uint8_t head[] = {0x93, 0xa1, 'u', 0x83, 0xa4, 't', 'y', 'p', 'e'};
    memcpy(b, head, sizeof(head));
    n = sizeof(head);
    memcpy(b + n, type, tn);
    n += tn;
    static const uint8_t d[] = {0xa4, 'd', 'a', 't', 'a'};
    memcpy(b + n, d, sizeof(d));
    n += sizeof(d);
    b[n++] = (uint8_t)(0x90 | (nargs + 1));
    static const uint8_t ev[] = {0xa4, 't', 'i', 'c', 'k'};
    memcpy(b + n, ev, sizeof(ev));
    n += sizeof(ev);
    if (an) /* args may be NULL with an 0 */
        memcpy(b + n, args, an);
    n += an;
    static const uint8_t nsp[] = {0xa3, 'n', 's', 'p', 0xa1, '/'};
    memcpy(b + n, nsp, sizeof(nsp));
    n += sizeof(nsp);
    static const uint8_t r[] = {0x83, 0xa5, 'r', 'o', 'o', 'm', 's'};
    memcpy(b + n, r, sizeof(r));
    n += sizeof(r);
    memcpy(b + n, rooms, rn);
    n += rn;
    static const uint8_t f[] = {0xa5, 'f', 'l', 'a', 'g', 's', 0x81, 0xa8,
                                'v',  'o', 'l', 'a', 't', 'i', 'l',  'e'};
    memcpy(b + n, f, sizeof(f));
    n += sizeof(f);
    b[n++] = volatile_ ? 0xc3 : 0xc2;
    static const uint8_t x[] = {0xa6, 'e', 'x', 'c', 'e', 'p', 't'};
    memcpy(b + n, x, sizeof(x));
    n += sizeof(x);
    memcpy(b + n, except, en);
    n += en;
    return n;
}

static size_t message(uint8_t *b, int type, const uint8_t *args, size_t an, int nargs, int except)
{
    static const uint8_t none[] = {0x90}, x[] = {0x91, 0xa1, 'x'};
    uint8_t t = (uint8_t)type;
    return message2(b, &t, 1, args, an, nargs, none, 1, except ? x : none, except ? 3 : 1, 0);
}

static void test_emitter(void)
{
    strcpy(cfg.sio_emitter, "socket.io");
    static char admin[] = "/admin";
    cfg.sio_nsps[0] = admin;
    cfg.n_sio_nsps = 1;
    cfg.max_channel_len = 128;
    char name[256];
    CHECK_EQ_INT((int)rc_sio_emitter_name(&cfg, (rc_str){"event:1", 7}, name, sizeof(name)), 20);
    CHECK_EQ_STR(name, "socket.io#/#event:1#");
    rc_sio_emitter_name(&cfg, (rc_str){"admin/r", 7}, name, sizeof(name));
    CHECK_EQ_STR(name, "socket.io#/admin#r#");
    CHECK_EQ_INT((int)rc_sio_emitter_name(&cfg, (rc_str){"event:1", 7}, name, 10), 0);

    uint8_t b[512];
    char chan[RC_PROTO_MAX_CHANNEL + 1], ev[RC_PROTO_MAX_EVENT + 1], *data = NULL;
    const char *why = NULL;
    static const uint8_t one[] = {0x81, 0xa1, 'n', 0x05};
    size_t n = message(b, 2, one, sizeof(one), 1, 0);
    CHECK_EQ_INT(read_msg("socket.io#/#event:1#", b, n, chan, ev, &data, &why), 0);
    CHECK_EQ_STR(chan, "event:1");
    CHECK_EQ_STR(ev, "tick");
    CHECK_EQ_STR(data, "{\"n\":5}");
    free(data);
    static const uint8_t two[] = {0x01, 0xa1, 'b'};
    n = message(b, 2, two, sizeof(two), 2, 0);
    CHECK_EQ_INT(read_msg("socket.io#/admin#r#", b, n, chan, ev, &data, &why), 0);
    CHECK_EQ_STR(chan, "admin/r");
    CHECK_EQ_STR(data, "[1,\"b\"]");
    free(data);
    n = message(b, 2, NULL, 0, 0, 0);
    CHECK_EQ_INT(read_msg("socket.io#/#event:1#", b, n, chan, ev, &data, &why), 0);
    CHECK_EQ_STR(data, "null");
    free(data);
    /* Refused, with a reason: a binary event, another key, truncation. */
    n = message(b, 5, one, sizeof(one), 1, 0);
    CHECK_EQ_INT(read_msg("socket.io#/#event:1#", b, n, chan, ev, &data, &why), -1);
    CHECK(why && strstr(why, "EVENT"));
    n = message(b, 2, one, sizeof(one), 1, 0);
    CHECK_EQ_INT(read_msg("other#/#event:1#", b, n, chan, ev, &data, &why), -1);
    CHECK_EQ_INT(read_msg("socket.io#/#event:1#", b, n - 3, chan, ev, &data, &why), -1);
    CHECK(!data);
    /* The type is the integer, whatever its encoding: 258 (uint16) is not 2,
     * 2 as a uint8 is. */
    static const uint8_t t258[] = {0xcd, 0x01, 0x02}, t2[] = {0xcc, 0x02}, r0[] = {0x90};
    n = message2(b, t258, 3, one, sizeof(one), 1, r0, 1, r0, 1, 0);
    CHECK_EQ_INT(read_msg("socket.io#/#event:1#", b, n, chan, ev, &data, &why), -1);
    CHECK(why && strstr(why, "EVENT"));
    n = message2(b, t2, 2, one, sizeof(one), 1, r0, 1, r0, 1, 0);
    CHECK_EQ_INT(read_msg("socket.io#/#event:1#", b, n, chan, ev, &data, &why), 0);
    free(data);
}

static void test_targets(void)
{
    uint8_t b[512];
    rc_sio_emit e;
    const char *why = NULL;
    static const uint8_t one[] = {0x05}, none[] = {0x90};
    static const uint8_t ab[] = {0x92, 0xa1, 'a', 0xa1, 'b'},
                         xy[] = {0x92, 0xa1, 'x', 0xa3, 'y', ' ', 'z'};
    static const uint8_t bad[] = {0x91, 0xa3, ' ', ' ', ' '}, t2[] = {0x02};
    /* One room with except: the channel's room, the except rooms (one that
     * is no channel name holds nobody and is left out). */
    size_t n = message2(b, t2, 1, one, 1, 1, none, 1, xy, sizeof(xy), 1);
    CHECK_EQ_INT(rc_sio_emitter_read(&cfg, (rc_str){"socket.io#/#r#", 14},
                                     (rc_str){(const char *)b, n}, &e, &why),
                 0);
    CHECK_EQ_STR(lists(e.to), "r|x|");
    CHECK_EQ_INT(e.to->nsp, 0);
    CHECK_EQ_INT(e.chan_len, 1);
    CHECK_EQ_INT(e.is_volatile, 1);
    rc_sio_emit_clear(&e);
    /* Several rooms, in /admin: their channels. */
    n = message2(b, t2, 1, one, 1, 1, ab, sizeof(ab), none, 1, 0);
    CHECK_EQ_INT(rc_sio_emitter_read(&cfg, (rc_str){"socket.io#/admin#", 17},
                                     (rc_str){(const char *)b, n}, &e, &why),
                 0);
    CHECK_EQ_STR(lists(e.to), "admin/a,admin/b||");
    CHECK_EQ_INT(e.to->nsp, 1);
    CHECK_EQ_INT(e.chan_len, 0);
    CHECK(e.data_len == 1 && e.data[0] == '5');
    rc_sio_emit_clear(&e);
    /* No rooms: the whole namespace, except some. */
    n = message2(b, t2, 1, one, 1, 1, none, 1, ab, sizeof(ab), 0);
    CHECK_EQ_INT(rc_sio_emitter_read(&cfg, (rc_str){"socket.io#/#", 12},
                                     (rc_str){(const char *)b, n}, &e, &why),
                 0);
    CHECK_EQ_STR(lists(e.to), "*|a,b|");
    rc_sio_emit_clear(&e);
    /* Rooms named that no channel can be: nobody, not everybody. */
    n = message2(b, t2, 1, one, 1, 1, bad, sizeof(bad), none, 1, 0);
    CHECK_EQ_INT(rc_sio_emitter_read(&cfg, (rc_str){"socket.io#/#", 12},
                                     (rc_str){(const char *)b, n}, &e, &why),
                 0);
    CHECK_EQ_STR(lists(e.to), "||");
    rc_sio_emit_clear(&e);
    /* A room that is not a string. */
    static const uint8_t num[] = {0x91, 0x01};
    n = message2(b, t2, 1, one, 1, 1, num, sizeof(num), none, 1, 0);
    CHECK_EQ_INT(rc_sio_emitter_read(&cfg, (rc_str){"socket.io#/#", 12},
                                     (rc_str){(const char *)b, n}, &e, &why),
                 -1);
    CHECK(why && strstr(why, "string"));

    /* The channel names. */
    int nsp;
    rc_str room;
    CHECK_EQ_INT(rc_sio_emitter_channel(&cfg, (rc_str){"socket.io#/#", 12}, &nsp, &room),
                 RC_SIO_EMCH_NSP);
    CHECK_EQ_INT(
        rc_sio_emitter_channel(&cfg, (rc_str){"socket.io-request#/admin#", 25}, &nsp, &room),
        RC_SIO_EMCH_REQUEST);
    CHECK_EQ_INT(nsp, 1);
    CHECK_EQ_INT(rc_sio_emitter_channel(&cfg, (rc_str){"socket.io#/admin#a#b#", 21}, &nsp, &room),
                 RC_SIO_EMCH_ROOM);
    CHECK(room.n == 3 && memcmp(room.p, "a#b", 3) == 0);
    CHECK_EQ_INT(rc_sio_emitter_channel(&cfg, (rc_str){"socket.io#/other#", 17}, &nsp, &room), 0);
    CHECK_EQ_INT(rc_sio_emitter_channel(&cfg, (rc_str){"socket.io#/##", 13}, &nsp, &room), 0);
    CHECK_EQ_INT(rc_sio_emitter_channel(&cfg, (rc_str){"socket.io-response#/#", 21}, &nsp, &room),
                 0);
}

static int req(int nsp, const char *json, rc_sio_bcast **b, int *type, const char **why)
{
    return rc_sio_request_read(&cfg, nsp, (rc_str){json, strlen(json)}, b, type, why);
}

static void test_requests(void)
{
    rc_sio_bcast *b;
    int type;
    const char *why = NULL;
    /* As the emitter writes them. */
    CHECK_EQ_INT(
        req(0, "{\"type\":2,\"opts\":{\"rooms\":[\"a\"],\"except\":[\"b\"]},\"rooms\":[\"c\"]}", &b,
            &type, &why),
        0);
    CHECK_EQ_INT(type, RC_SIO_REQ_REMOTE_JOIN);
    CHECK_EQ_INT(b->op, RC_SIO_BC_JOIN);
    CHECK_EQ_STR(lists(b), "a|b|c");
    rc_sio_bcast_free(b);
    CHECK_EQ_INT(req(1,
                     "{\"type\":3,\"opts\":{\"rooms\":[],\"except\":[]},\"rooms\":[\"c\",\"d\"]}",
                     &b, &type, &why),
                 0);
    CHECK_EQ_INT(b->op, RC_SIO_BC_LEAVE);
    CHECK_EQ_STR(lists(b), "*||admin/c,admin/d");
    rc_sio_bcast_free(b);
    CHECK_EQ_INT(req(0, "{\"type\":4,\"opts\":{\"rooms\":[\"a\"],\"except\":[]},\"close\":true}",
                     &b, &type, &why),
                 0);
    CHECK_EQ_INT(b->op, RC_SIO_BC_DISCONNECT);
    CHECK_EQ_INT(b->close, 1);
    CHECK_EQ_STR(lists(b), "a||");
    rc_sio_bcast_free(b);
    CHECK_EQ_INT(req(0, "{\"opts\":{\"rooms\":[],\"except\":[]},\"type\":4,\"close\":false}", &b,
                     &type, &why),
                 0);
    CHECK_EQ_INT(b->close, 0);
    CHECK_EQ_STR(lists(b), "*||");
    rc_sio_bcast_free(b);
    /* Read, not served: serverSideEmit, what servers ask each other, unknown types. */
    CHECK_EQ_INT(req(0, "{\"uid\":\"emitter\",\"type\":6,\"data\":[\"hello\",1]}", &b, &type, &why),
                 1);
    CHECK_EQ_INT(type, RC_SIO_REQ_SERVER_SIDE_EMIT);
    CHECK(!b);
    CHECK_EQ_INT(req(0, "{\"type\":0,\"requestId\":\"x\"}", &b, &type, &why), 1);
    CHECK_EQ_INT(req(0, "{\"type\":99}", &b, &type, &why), 1);
    /* Bad: no type, a room to join that is no channel, nothing to join,
     * not JSON, rooms that are not strings. */
    CHECK_EQ_INT(req(0, "{\"rooms\":[\"a\"]}", &b, &type, &why), -1);
    CHECK_EQ_INT(type, -1);
    CHECK_EQ_INT(req(0, "{\"type\":2,\"rooms\":[\"a b\"]}", &b, &type, &why), -1);
    CHECK(why && strstr(why, "channel name"));
    CHECK_EQ_INT(req(0, "{\"type\":2,\"rooms\":[]}", &b, &type, &why), -1);
    CHECK_EQ_INT(req(0, "{\"type\":2", &b, &type, &why), -1);
    CHECK_EQ_INT(req(0, "{\"type\":3,\"opts\":{\"rooms\":[1]},\"rooms\":[\"a\"]}", &b, &type, &why),
                 -1);
    CHECK_EQ_INT(req(0, "{\"type\":\"2\",\"rooms\":[\"a\"]}", &b, &type, &why), -1);
    CHECK(!b);
    /* Except rooms that no channel can be: left out. */
    CHECK_EQ_INT(req(0, "{\"type\":2,\"opts\":{\"except\":[\"a b\",\"c\"]},\"rooms\":[\"d\"]}", &b,
                     &type, &why),
                 0);
    CHECK_EQ_STR(lists(b), "*|c|d");
    rc_sio_bcast_free(b);
    /* Too many rooms. */
    char big[8192];
    size_t w = (size_t)snprintf(big, sizeof(big), "{\"type\":2,\"rooms\":[");
    for (int i = 0; i <= RC_SIO_BC_MAX_ROOMS; i++)
        w += (size_t)snprintf(big + w, sizeof(big) - w, "%s\"r%d\"", i ? "," : "", i);
    snprintf(big + w, sizeof(big) - w, "]}");
    CHECK_EQ_INT(req(0, big, &b, &type, &why), -1);
    CHECK(why && strstr(why, "more rooms"));
}

static void test_mp_int(void)
{
    static const uint8_t v[][9] = {{0x02},
                                   {0xcd, 0x01, 0x02},
                                   {0xd0, 0xfe},
                                   {0xa1, 'x'},
                                   {0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};
    static const size_t len[] = {1, 3, 2, 2, 9};
    int64_t out = 0;
    rc_mp m = {v[0], v[0] + len[0]};
    CHECK_EQ_INT(rc_mp_int(&m, &out), 0);
    CHECK(out == 2 && m.p == m.end);
    m = (rc_mp){v[1], v[1] + len[1]};
    CHECK_EQ_INT(rc_mp_int(&m, &out), 0);
    CHECK(out == 258);
    m = (rc_mp){v[2], v[2] + len[2]};
    CHECK_EQ_INT(rc_mp_int(&m, &out), 0);
    CHECK(out == -2);
    m = (rc_mp){v[3], v[3] + len[3]};
    CHECK_EQ_INT(rc_mp_int(&m, &out), -1);
    CHECK(m.p == v[3]);
    m = (rc_mp){v[4], v[4] + len[4]};
    CHECK_EQ_INT(rc_mp_int(&m, &out), -1);
    m = (rc_mp){v[1], v[1] + 2}; /* truncated */
    CHECK_EQ_INT(rc_mp_int(&m, &out), -1);
}

int main(void)
{
    RUN(test_scalars);
    RUN(test_containers);
    RUN(test_emitter);
    RUN(test_targets);
    RUN(test_requests);
    RUN(test_mp_int);
    return UNIT_DONE();
}
