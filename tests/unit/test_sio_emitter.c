/* MessagePack into JSON (sio/msgpack.c) and the Redis emitter's messages
 * (sio/emitter.c), with bytes written out by hand from the MessagePack
 * spec and the shape @socket.io/redis-emitter publishes. */
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
    size_t cl, el, dl;
    int r = rc_sio_emitter_read(&cfg, (rc_str){rname, strlen(rname)}, (rc_str){(const char *)b, n},
                                chan, &cl, ev, &el, data, &dl, why);
    if (r == 0) {
        chan[cl] = '\0';
        *data = realloc(*data, dl + 1);
        (*data)[dl] = '\0';
    }
    return r;
}

/* [uid, {type, data:[ev, args...], nsp}, {rooms, flags, except}] */
static size_t message(uint8_t *b, int type, const uint8_t *args, size_t an, int nargs, int except)
{
    size_t n = 0;
    static const uint8_t head[] = {0x93, 0xa1, 'u', 0x83, 0xa4, 't', 'y', 'p', 'e'};
    memcpy(b, head, sizeof(head));
    n = sizeof(head);
    b[n++] = (uint8_t)type;
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
    static const uint8_t opts[] = {0x82, 0xa5, 'r', 'o', 'o', 'm', 's', 0x90,
                                   0xa6, 'e',  'x', 'c', 'e', 'p', 't'};
    memcpy(b + n, opts, sizeof(opts));
    n += sizeof(opts);
    if (except) {
        b[n++] = 0x91;
        b[n++] = 0xa1;
        b[n++] = 'x';
    } else {
        b[n++] = 0x90;
    }
    return n;
}

static void test_emitter(void)
{
    strcpy(cfg.sio_emitter, "socket.io");
    static char admin[] = "/admin";
    cfg.sio_nsps[0] = admin;
    cfg.n_sio_nsps = 1;
    char name[256];
    CHECK_EQ_INT((int)rc_sio_emitter_name(&cfg, (rc_str){"event:1", 7}, name, sizeof(name)), 20);
    CHECK_EQ_STR(name, "socket.io#/#event:1#");
    rc_sio_emitter_name(&cfg, (rc_str){"admin/r", 7}, name, sizeof(name));
    CHECK_EQ_STR(name, "socket.io#/admin#r#");
    CHECK_EQ_INT((int)rc_sio_emitter_name(&cfg, (rc_str){"event:1", 7}, name, 10), 0);

    uint8_t b[256];
    char chan[RC_PROTO_MAX_CHANNEL + 1], ev[RC_PROTO_MAX_EVENT + 1], *data = NULL;
    const char *why = NULL;
    static const uint8_t one[] = {0x81, 0xa1, 'n', 0x05};
    size_t n = message(b, 2, one, sizeof(one), 1, 0);
    CHECK_EQ_INT(read_msg("socket.io#/#event:1#", b, n, chan, ev, &data, &why), 0);
    CHECK_EQ_STR(chan, "event:1");
    CHECK_EQ_STR(ev, "tick");
    CHECK_EQ_STR(data, "{\"n\":5}");
    free(data);
    data = NULL;
    static const uint8_t two[] = {0x01, 0xa1, 'b'};
    n = message(b, 2, two, sizeof(two), 2, 0);
    CHECK_EQ_INT(read_msg("socket.io#/admin#r#", b, n, chan, ev, &data, &why), 0);
    CHECK_EQ_STR(chan, "admin/r");
    CHECK_EQ_STR(data, "[1,\"b\"]");
    free(data);
    data = NULL;
    n = message(b, 2, NULL, 0, 0, 0);
    CHECK_EQ_INT(read_msg("socket.io#/#event:1#", b, n, chan, ev, &data, &why), 0);
    CHECK_EQ_STR(data, "null");
    free(data);
    data = NULL;
    /* Refused, with a reason: except, a binary event, several rooms, another key. */
    n = message(b, 2, one, sizeof(one), 1, 1);
    CHECK_EQ_INT(read_msg("socket.io#/#event:1#", b, n, chan, ev, &data, &why), -1);
    CHECK(why && strstr(why, "except") && !data);
    n = message(b, 5, one, sizeof(one), 1, 0);
    CHECK_EQ_INT(read_msg("socket.io#/#event:1#", b, n, chan, ev, &data, &why), -1);
    CHECK(why && strstr(why, "EVENT"));
    n = message(b, 2, one, sizeof(one), 1, 0);
    CHECK_EQ_INT(read_msg("socket.io#/#", b, n, chan, ev, &data, &why), -1);
    CHECK(why && strstr(why, "several rooms"));
    CHECK_EQ_INT(read_msg("other#/#event:1#", b, n, chan, ev, &data, &why), -1);
    CHECK_EQ_INT(read_msg("socket.io#/#event:1#", b, n - 3, chan, ev, &data, &why), -1);
    CHECK(!data);
}

int main(void)
{
    RUN(test_scalars);
    RUN(test_containers);
    RUN(test_emitter);
    return UNIT_DONE();
}
