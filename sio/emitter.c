/* Socket.IO's Redis emitter, heard (sio/emitter.h).
 *
 * Thread: the relay thread. */
#include "sio/emitter.h"

#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "proto/protocol.h"
#include "sio/msgpack.h"
#include "sio/seen.h"

/* The namespace of chan ("/NAME" for NAME/..., else "/") and its room. */
static void split(const rc_config *cfg, rc_str chan, rc_str *nsp, rc_str *room)
{
    for (int i = 0; i < cfg->n_sio_nsps; i++) {
        const char *name = cfg->sio_nsps[i] + 1;
        size_t k = strlen(name);
        if (chan.n > k + 1 && memcmp(chan.p, name, k) == 0 && chan.p[k] == '/') {
            *nsp = (rc_str){cfg->sio_nsps[i], k + 1};
            *room = (rc_str){chan.p + k + 1, chan.n - k - 1};
            return;
        }
    }
    *nsp = (rc_str){"/", 1};
    *room = chan;
}

size_t rc_sio_emitter_name(const rc_config *cfg, rc_str chan, char *out, size_t cap)
{
    rc_str nsp, room;
    split(cfg, chan, &nsp, &room);
    int n = snprintf(out, cap, "%s#%.*s#%.*s#", cfg->sio_emitter, (int)nsp.n, nsp.p, (int)room.n,
                     room.p);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

/* A map's string value by key, or the position of any value: moves m to
 * the value of key and returns 1, or 0 when the map has none. */
static int find_key(rc_mp m, uint32_t pairs, const char *key, rc_mp *at)
{
    size_t kl = strlen(key);
    for (uint32_t i = 0; i < pairs; i++) {
        uint32_t n;
        const uint8_t *s;
        if (rc_mp_next(&m, &n, &s) != RC_MP_STR)
            return 0;
        if (n == kl && memcmp(s, key, kl) == 0) {
            *at = m;
            return 1;
        }
        if (rc_mp_skip(&m) < 0)
            return 0;
    }
    return 0;
}

int rc_sio_emitter_read(const rc_config *cfg, rc_str rname, rc_str payload, char *chan,
                        size_t *chan_len, char *ev, size_t *ev_len, char **data, size_t *data_len,
                        const char **why)
{
    *data = NULL;
    /* KEY#NSP#ROOM# */
    size_t kl = strlen(cfg->sio_emitter);
    if (rname.n < kl + 3 || memcmp(rname.p, cfg->sio_emitter, kl) != 0 || rname.p[kl] != '#' ||
        rname.p[rname.n - 1] != '#') {
        *why = "not an emitter channel";
        return -1;
    }
    const char *nsp = rname.p + kl + 1, *hash = memchr(nsp, '#', rname.n - kl - 2);
    if (!hash || hash == rname.p + rname.n - 1) {
        *why = "an emit to several rooms or a whole namespace (not served yet)";
        return -1;
    }
    rc_str ns = {nsp, (size_t)(hash - nsp)},
           room = {hash + 1, (size_t)(rname.p + rname.n - 1 - hash - 1)};
    int n = ns.n == 1 && ns.p[0] == '/'
                ? snprintf(chan, RC_PROTO_MAX_CHANNEL + 1, "%.*s", (int)room.n, room.p)
                : snprintf(chan, RC_PROTO_MAX_CHANNEL + 1, "%.*s/%.*s", (int)ns.n - 1, ns.p + 1,
                           (int)room.n, room.p);
    if (n <= 0 || n > RC_PROTO_MAX_CHANNEL) {
        *why = "room name too long";
        return -1;
    }
    *chan_len = (size_t)n;
    rc_mp m = {(const uint8_t *)payload.p, (const uint8_t *)payload.p + payload.n};
    uint32_t cnt, pairs;
    const uint8_t *s;
    if (rc_mp_next(&m, &cnt, &s) != RC_MP_ARRAY || cnt < 3 || rc_mp_skip(&m) < 0) {
        *why = "not [uid, packet, opts]";
        return -1;
    }
    rc_mp packet = m;
    if (rc_mp_skip(&m) < 0) {
        *why = "a malformed packet";
        return -1;
    }
    rc_mp opts = m, v, whole = m;
    if (rc_mp_skip(&whole) < 0) {
        *why = "malformed opts";
        return -1;
    }
    if (rc_mp_next(&opts, &pairs, &s) == RC_MP_MAP && find_key(opts, pairs, "except", &v)) {
        uint32_t ne;
        if (rc_mp_next(&v, &ne, &s) == RC_MP_ARRAY && ne > 0) {
            *why = "opts.except is not honoured yet: dropped rather than sent to excluded rooms";
            return -1;
        }
    }
    if (rc_mp_next(&packet, &pairs, &s) != RC_MP_MAP || !find_key(packet, pairs, "type", &v)) {
        *why = "a packet without a type";
        return -1;
    }
    uint32_t tn;
    if (rc_mp_next(&v, &tn, &s) != RC_MP_INT || v.p[-1] != 2) {
        *why = "not an EVENT packet (binary events are not served)";
        return -1;
    }
    uint32_t na;
    if (!find_key(packet, pairs, "data", &v) || rc_mp_next(&v, &na, &s) != RC_MP_ARRAY || na < 1 ||
        rc_mp_next(&v, &tn, &s) != RC_MP_STR || tn > RC_PROTO_MAX_EVENT ||
        !rc_proto_name_valid((const char *)s, tn, RC_PROTO_MAX_EVENT)) {
        *why = "the event name is missing or not a valid event name";
        return -1;
    }
    memcpy(ev, s, tn);
    ev[tn] = '\0';
    *ev_len = tn;
    size_t cap = payload.n * 6 + 16; /* JSON is at most 6 times its MessagePack */
    char *out = rc_malloc(cap);
    size_t len = 0;
    if (na > 2)
        out[len++] = '[';
    for (uint32_t i = 1; i < na; i++) {
        if (i > 1)
            out[len++] = ',';
        ssize_t w = rc_mp_to_json(&v, out + len, cap - len - 2);
        if (w < 0) {
            free(out);
            *why = "an argument with no JSON form (binary?)";
            return -1;
        }
        len += (size_t)w;
    }
    if (na > 2)
        out[len++] = ']';
    if (na == 1) {
        memcpy(out, "null", 4);
        len = 4;
    }
    *data = out;
    *data_len = len;
    return 0;
}

struct rc_sio_emitter {
    rc_bridge *bridge;
    rc_sio_seen *seen; /* names of what came, for rooms with history */
};

static size_t alias_name(void *u, rc_str chan, char *out, size_t cap)
{
    rc_sio_emitter *e = u;
    return rc_sio_emitter_name(rc_bridge_config(e->bridge), chan, out, cap);
}

static void alias_message(void *u, rc_str rname, rc_str payload)
{
    rc_sio_emitter *e = u;
    rc_bridge *b = e->bridge;
    char chan[RC_PROTO_MAX_CHANNEL + 1], ev[RC_PROTO_MAX_EVENT + 1];
    size_t cl, el, dl;
    char *data;
    const char *why = "";
    if (rc_sio_emitter_read(rc_bridge_config(b), rname, payload, chan, &cl, ev, &el, &data, &dl,
                            &why) < 0) {
        rc_bridge_bad_message(b, rname, why);
        return;
    }
    rc_str ch = {chan, cl};
    rc_bridge_msg m = {
        .event = {ev, el},
        .data = {data, dl},
        .origin = {RC_FROM_BACKEND, RC_STR_NULL, 0},
    };
    const rc_history_rule *rule = rc_config_history(rc_bridge_config(b), chan, cl);
    char name[RC_SIO_SEEN_NAME_MAX], key[RC_PROTO_MAX_CHANNEL + 160];
    size_t kl = 0;
    if (rule) {
        size_t nl = rc_sio_seen_name(e->seen, ch, payload, rc_now_ms(), name);
        kl = rc_bridge_once_key(b, ch, (rc_str){name, nl}, key, sizeof(key));
    }
    if (kl) {
        /* A room with history: every node with members heard it, one of them
         * keeps it with an offset, and all deliver it from the channel's own
         * subscription (so clients can recover it). */
        rc_bridge_publish_history_once(b, ch, m.event, m.data, &m.origin, rule, (rc_str){key, kl});
    } else {
        rc_bridge_deliver(b, ch, &m);
    }
    free(data);
}

rc_sio_emitter *rc_sio_emitter_attach(rc_bridge *b, const rc_config *cfg)
{
    if (!cfg->sio_on || !cfg->sio_emitter[0])
        return NULL;
    static const rc_bridge_alias alias = {alias_name, alias_message};
    rc_sio_emitter *e = rc_calloc(1, sizeof(*e));
    e->bridge = b;
    e->seen = rc_sio_seen_new();
    rc_bridge_on_alias(b, &alias, e);
    return e;
}

void rc_sio_emitter_free(rc_sio_emitter *e)
{
    if (!e)
        return;
    rc_sio_seen_free(e->seen);
    free(e);
}
