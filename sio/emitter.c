/* Socket.IO's Redis emitter, heard (sio/emitter.h).
 *
 * Thread: the relay thread (the readers: any). */
#include "sio/emitter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "engine/msg.h"
#include "proto/protocol.h"
#include "sio/msgpack.h"
#include "sio/packet.h"
#include "sio/seen.h"

static const char *const kind_names[RC_SIO_EM__COUNT] = {
    "room", "rooms", "namespace", "join", "leave", "disconnect", "server_side_emit", "other",
};

const char *rc_sio_em_kind_name(int kind)
{
    return kind >= 0 && kind < RC_SIO_EM__COUNT ? kind_names[kind] : "other";
}

/* ---- names ----------------------------------------------------------------- */

static rc_str nsp_name(const rc_config *cfg, int i)
{
    return i ? (rc_str){cfg->sio_nsps[i - 1], strlen(cfg->sio_nsps[i - 1])} : (rc_str){"/", 1};
}

/* The namespace of chan (i for "NAME/...", namespace i's /NAME; else 0)
 * and its room. */
static int split(const rc_config *cfg, rc_str chan, rc_str *room)
{
    for (int i = 0; i < cfg->n_sio_nsps; i++) {
        const char *name = cfg->sio_nsps[i] + 1;
        size_t k = strlen(name);
        if (chan.n > k + 1 && memcmp(chan.p, name, k) == 0 && chan.p[k] == '/') {
            *room = (rc_str){chan.p + k + 1, chan.n - k - 1};
            return i + 1;
        }
    }
    *room = chan;
    return 0;
}

size_t rc_sio_emitter_name(const rc_config *cfg, rc_str chan, char *out, size_t cap)
{
    rc_str room;
    rc_str nsp = nsp_name(cfg, split(cfg, chan, &room));
    int n = snprintf(out, cap, "%s#%.*s#%.*s#", cfg->sio_emitter, (int)nsp.n, nsp.p, (int)room.n,
                     room.p);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

size_t rc_sio_room_channel(const rc_config *cfg, int nsp, const char *room, size_t n, char *out)
{
    rc_str ns = nsp_name(cfg, nsp);
    size_t k = nsp ? ns.n : 0; /* "/NAME" and "NAME/" are as long */
    if (k + n > RC_PROTO_MAX_CHANNEL)
        return 0;
    if (nsp) {
        memcpy(out, ns.p + 1, ns.n - 1);
        out[ns.n - 1] = '/';
    }
    memcpy(out + k, room, n);
    out[k + n] = '\0';
    return rc_proto_name_valid(out, k + n, cfg->max_channel_len) ? k + n : 0;
}

/* Does s start with a then b? Returns the length of both, or 0. */
static size_t starts(rc_str s, const char *a, rc_str b)
{
    size_t k = strlen(a);
    if (s.n < k + b.n || memcmp(s.p, a, k) != 0 || memcmp(s.p + k, b.p, b.n) != 0)
        return 0;
    return k + b.n;
}

int rc_sio_emitter_channel(const rc_config *cfg, rc_str rname, int *nsp, rc_str *room)
{
    size_t kl = strlen(cfg->sio_emitter);
    if (!kl || rname.n <= kl || memcmp(rname.p, cfg->sio_emitter, kl) != 0)
        return 0;
    rc_str rest = {rname.p + kl, rname.n - kl};
    for (int i = 0; i <= cfg->n_sio_nsps; i++) {
        rc_str ns = nsp_name(cfg, i);
        size_t k;
        *nsp = i;
        if ((k = starts(rest, "-request#", ns)) && rest.n == k + 1 && rest.p[k] == '#')
            return RC_SIO_EMCH_REQUEST;
        if (!(k = starts(rest, "#", ns)) || rest.n < k + 1 || rest.p[k] != '#')
            continue;
        if (rest.n == k + 1)
            return RC_SIO_EMCH_NSP;
        if (rest.n > k + 2 && rest.p[rest.n - 1] == '#') {
            *room = (rc_str){rest.p + k + 1, rest.n - k - 2};
            return RC_SIO_EMCH_ROOM;
        }
    }
    return 0;
}

/* ---- an emit, read ----------------------------------------------------------- */

/* Moves m to the value of key in a map of pairs pairs: 1, or 0 when the
 * map has none (or is malformed). */
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

/* Adds the rooms of the array at v (strings) to list of *b; a room that is
 * no channel name holds nobody and is left out. 0, or -1 with *why. */
static int add_rooms(const rc_config *cfg, rc_mp v, rc_sio_bcast **b, int list, const char **why)
{
    uint32_t n, len;
    const uint8_t *s;
    if (rc_mp_next(&v, &n, &s) != RC_MP_ARRAY) {
        *why = "opts.rooms or opts.except is not an array";
        return -1;
    }
    for (uint32_t i = 0; i < n; i++) {
        if (rc_mp_next(&v, &len, &s) != RC_MP_STR) {
            *why = "a room that is not a string";
            return -1;
        }
        char ch[RC_PROTO_MAX_CHANNEL + 1];
        size_t cl = rc_sio_room_channel(cfg, (*b)->nsp, (const char *)s, len, ch);
        if (cl && rc_sio_bcast_add(b, list, (rc_str){ch, cl}) < 0) {
            *why = "more rooms than a message may name";
            return -1;
        }
    }
    return 0;
}

/* The event's data from the array at v (after the event name), na - 1
 * arguments: 0, or -1 with *why. */
static int read_data(rc_mp v, uint32_t na, size_t mp_len, rc_sio_emit *e, const char **why)
{
    size_t cap = mp_len * 6 + 16; /* JSON is at most 6 times its MessagePack */
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
    e->several = na > 2;
    e->data = out;
    e->data_len = len;
    return 0;
}

static int read_emit(const rc_config *cfg, rc_str rname, rc_str payload, rc_sio_emit *e,
                     const char **why)
{
    int nsp;
    rc_str room;
    int k = rc_sio_emitter_channel(cfg, rname, &nsp, &room);
    if (k != RC_SIO_EMCH_ROOM && k != RC_SIO_EMCH_NSP) {
        *why = "not an emitter channel";
        return -1;
    }
    e->to = rc_sio_bcast_new(RC_SIO_BC_EMIT, nsp);
    if (k == RC_SIO_EMCH_ROOM) {
        /* The room the channel names, whatever opts.rooms says. */
        e->chan_len = rc_sio_room_channel(cfg, nsp, room.p, room.n, e->chan);
        if (!e->chan_len) {
            *why = "a room that is not a valid channel name";
            return -1;
        }
        rc_sio_bcast_add(&e->to, RC_SIO_BC_ROOMS, (rc_str){e->chan, e->chan_len});
    }
    rc_mp m = {(const uint8_t *)payload.p, (const uint8_t *)payload.p + payload.n};
    uint32_t cnt, pairs, opairs = 0;
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
    int is_map = rc_mp_next(&opts, &opairs, &s) == RC_MP_MAP;
    if (!is_map)
        opairs = 0;
    if (k == RC_SIO_EMCH_NSP && find_key(opts, opairs, "rooms", &v) &&
        add_rooms(cfg, v, &e->to, RC_SIO_BC_ROOMS, why) < 0)
        return -1;
    if (k == RC_SIO_EMCH_NSP && e->to->all && find_key(opts, opairs, "rooms", &v)) {
        /* Rooms were named, but none can hold anyone: nobody, not everybody. */
        uint32_t nr;
        if (rc_mp_next(&v, &nr, &s) == RC_MP_ARRAY && nr > 0)
            e->to->all = 0;
    }
    if (find_key(opts, opairs, "except", &v) &&
        add_rooms(cfg, v, &e->to, RC_SIO_BC_EXCEPT, why) < 0)
        return -1;
    uint32_t nf;
    if (find_key(opts, opairs, "flags", &v) && rc_mp_next(&v, &nf, &s) == RC_MP_MAP) {
        rc_mp f;
        e->is_volatile = find_key(v, nf, "volatile", &f) && f.p < f.end && *f.p == 0xc3;
        e->compress = find_key(v, nf, "compress", &f) && f.p < f.end && *f.p == 0xc3;
    }
    int64_t type;
    if (rc_mp_next(&packet, &pairs, &s) != RC_MP_MAP || !find_key(packet, pairs, "type", &v)) {
        *why = "a packet without a type";
        return -1;
    }
    if (rc_mp_int(&v, &type) < 0 || type != RC_SIO_EVENT) {
        *why = "not an EVENT packet (binary events are not served)";
        return -1;
    }
    uint32_t na, tn;
    if (!find_key(packet, pairs, "data", &v) || rc_mp_next(&v, &na, &s) != RC_MP_ARRAY || na < 1 ||
        rc_mp_next(&v, &tn, &s) != RC_MP_STR || tn > RC_PROTO_MAX_EVENT ||
        !rc_proto_name_valid((const char *)s, tn, RC_PROTO_MAX_EVENT)) {
        *why = "the event name is missing or not a valid event name";
        return -1;
    }
    memcpy(e->ev, s, tn);
    e->ev[tn] = '\0';
    e->ev_len = tn;
    return read_data(v, na, payload.n, e, why);
}

int rc_sio_emitter_read(const rc_config *cfg, rc_str rname, rc_str payload, rc_sio_emit *e,
                        const char **why)
{
    memset(e, 0, sizeof(*e));
    if (read_emit(cfg, rname, payload, e, why) == 0)
        return 0;
    rc_sio_emit_clear(e);
    return -1;
}

void rc_sio_emit_clear(rc_sio_emit *e)
{
    free(e->data);
    rc_sio_bcast_free(e->to);
    e->data = NULL;
    e->to = NULL;
}

/* ---- on the relay ------------------------------------------------------------ */

struct rc_sio_emitter {
    rc_bridge *bridge;
    const rc_config *cfg;
    rc_outbox *out;
    rc_sio_emitter_stats *stats;
    uint64_t last_refused_log_ms;
};

static void counted(rc_sio_emitter *e, int kind, int applied)
{
    rc_counter_inc(applied ? &e->stats->applied[kind] : &e->stats->refused[kind]);
}

/* A message read but not served: counted and logged (at most once a
 * second). */
static void refused(rc_sio_emitter *e, int kind, rc_str rname, const char *why)
{
    counted(e, kind, 0);
    uint64_t now = rc_now_ms();
    if (now - e->last_refused_log_ms >= 1000) {
        e->last_refused_log_ms = now;
        rc_warn("socketio: refused a message of the emitter on %.*s: %s (counted in "
                "ringcast_socketio_emitter_messages_total{kind=\"%s\",outcome=\"refused\"}; "
                "logged at most once a second)",
                (int)rname.n, rname.p, why, rc_sio_em_kind_name(kind));
    }
}

/* A copy of b for each shard, and b freed. */
static void to_shards(rc_sio_emitter *e, rc_sio_bcast *b)
{
    int n = e->cfg->shards;
    if (b->frame)
        rc_ref_init(&b->frame->refs, (uint32_t)n);
    for (int i = 0; i < n; i++) {
        rc_qitem d = {.kind = RC_Q_SIO_BCAST, .p = rc_sio_bcast_copy(b)};
        rc_outbox_push(e->out, i, &d);
    }
    b->frame = NULL; /* its references went with the copies */
    rc_sio_bcast_free(b);
}

/* The Engine.IO frame of em: 42["event",data] in its namespace, or NULL. */
static rc_msg *emit_frame(const rc_config *cfg, const rc_sio_emit *em)
{
    size_t cap = em->data_len + RC_SIO_MAX_NSP + 2 * RC_PROTO_MAX_EVENT + 16;
    char *buf = rc_malloc(cap);
    buf[0] = RC_EIO_MESSAGE;
    ssize_t n = rc_sio_write_event(buf + 1, cap - 1, nsp_name(cfg, em->to->nsp), 0, 0,
                                   (rc_str){em->ev, em->ev_len},
                                   rc_sio_args_of((rc_str){em->data, em->data_len}, em->several));
    rc_msg *m = NULL;
    if (n >= 0) {
        uint8_t *p;
        m = rc_msg_new_frame(RC_STR_NULL, (size_t)n + 1, &p);
        memcpy(p, buf, (size_t)n + 1);
    }
    free(buf);
    return m;
}

static void on_emit(rc_sio_emitter *e, rc_str rname, rc_str payload, int on_room)
{
    rc_sio_emit em;
    const char *why = "";
    if (rc_sio_emitter_read(e->cfg, rname, payload, &em, &why) < 0) {
        counted(e, on_room ? RC_SIO_EM_ROOM : RC_SIO_EM_OTHER, 0);
        rc_bridge_bad_message(e->bridge, rname, why);
        return;
    }
    int kind = on_room ? RC_SIO_EM_ROOM : em.to->all ? RC_SIO_EM_NAMESPACE : RC_SIO_EM_ROOMS;
    if (on_room && em.to->n[RC_SIO_BC_EXCEPT] == 0) {
        /* One room, everybody in it: a publication on its channel. */
        rc_bridge_msg m = {
            .event = {em.ev, em.ev_len},
            .data = {em.data, em.data_len},
            .origin = {RC_FROM_BACKEND, RC_STR_NULL, 0, em.several},
        };
        rc_str ch = {em.chan, em.chan_len};
        const rc_history_rule *rule = rc_config_history(e->cfg, em.chan, em.chan_len);
        char name[RC_SIO_SEEN_NAME_MAX], key[RC_PROTO_MAX_CHANNEL + 160];
        size_t kl = 0;
        if (rule) {
            size_t nl = rc_sio_seen_name(ch, payload, name);
            kl = rc_bridge_once_key(e->bridge, ch, (rc_str){name, nl}, key, sizeof(key));
        }
        if (kl) {
            /* A room with history: every node with members heard it, one of
             * them keeps it with an offset, and all deliver it from the
             * channel's own subscription (so clients can recover it). */
            rc_bridge_publish_history_once(e->bridge, ch, m.event, m.data, &m.origin, rule,
                                           (rc_str){key, kl});
        } else {
            rc_bridge_deliver(e->bridge, ch, &m);
        }
        counted(e, kind, 1);
        rc_sio_emit_clear(&em);
        return;
    }
    em.to->frame = emit_frame(e->cfg, &em);
    if (!em.to->frame) {
        counted(e, kind, 0);
        rc_bridge_bad_message(e->bridge, rname, "the event does not fit a frame");
    } else if (em.to->all || em.to->n[RC_SIO_BC_ROOMS]) {
        counted(e, kind, 1);
        to_shards(e, em.to);
        em.to = NULL;
    } else {
        counted(e, kind, 1); /* rooms nobody can be in: nobody to reach */
    }
    rc_sio_emit_clear(&em);
}

/* serverSideEmit into the backend event stream, once for all the nodes
 * that hear it: KEYS: the stream, the once key (in the stream's slot).
 * ARGV: maxlen, event, data, node, time, node (the claim's), tolerance.
 * Returns the entry id, 0 when another node wrote it, false when the
 * stream is full. */
static const char SSE_LUA[] =
    "local once_key, once_node, once_tol = KEYS[2], ARGV[6], tonumber(ARGV[7])\n" RC_BRIDGE_ONCE_LUA
    "if matched then return 0 end\n"
    "if redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[1]) then return false end\n"
    "return redis.call('XADD', KEYS[1], '*', 'event', ARGV[2], 'data', ARGV[3], 'id', '',\n"
    "  'user', '', 'conn', '', 'node', ARGV[4], 'time', ARGV[5], 'reply', '',\n"
    "  'reply_channel', '', 'source', 'server_side_emit')\n";

static void on_sse_written(void *arg, const redisReply *rep)
{
    rc_sio_emitter *e = arg;
    if (!rep || rep->type == REDIS_REPLY_ERROR)
        rc_warn("socketio: a serverSideEmit could not be written to its stream: %s",
                rep ? rep->str : "the Redis connection broke");
    else if (rep->type == REDIS_REPLY_NIL)
        rc_warn("socketio: a serverSideEmit was dropped: its stream is full");
    (void)e;
}

/* serverSideEmit(event, ...args): there are no server-side handlers on a
 * node; the backends are the servers, so it goes to the event stream that
 * takes the event (--event-stream), once: every node hears it, the first
 * to reach Redis writes it. 0, or -1 with *why. */
static int server_side_emit(rc_sio_emitter *e, rc_str rname, rc_str payload, const char **why)
{
    rc_json_iter it;
    rc_json_val k, v, data = {0};
    if (rc_json_object_begin(&it, payload.p, payload.n, RC_PROTO_MAX_DEPTH) < 0) {
        *why = "a request that is not a JSON object";
        return -1;
    }
    while (rc_json_object_next(&it, &k, &v) > 0)
        if (rc_json_key_is(&k, "data"))
            data = v;
    char ev[RC_PROTO_MAX_EVENT + 1];
    ssize_t evn = -1;
    const char *first = NULL, *last = NULL;
    uint32_t nargs = 0;
    rc_json_val a0 = {0};
    if (data.type == RC_JSON_ARRAY &&
        rc_json_array_begin(&it, data.raw.p, data.raw.n, RC_PROTO_MAX_DEPTH) == 0 &&
        rc_json_array_next(&it, &v) > 0 && v.type == RC_JSON_STRING) {
        evn = rc_json_string(&v, ev, sizeof(ev));
        while (rc_json_array_next(&it, &v) > 0) {
            if (!nargs)
                a0 = v;
            if (!first)
                first = v.raw.p;
            last = v.raw.p + v.raw.n;
            nargs++;
        }
    }
    if (evn <= 0 || !rc_proto_name_valid(ev, (size_t)evn, RC_PROTO_MAX_EVENT)) {
        *why = "serverSideEmit without a valid event name";
        return -1;
    }
    const rc_event_rule *rule = rc_config_event(e->cfg, ev, (size_t)evn);
    if (!rule) {
        *why = "serverSideEmit of an event no --event-stream takes";
        return -1;
    }
    /* One argument is the data; several, their array; none, null. */
    rc_str d = nargs == 0   ? (rc_str){"null", 4}
               : nargs == 1 ? a0.raw
                            : (rc_str){first - 1, (size_t)(last - first) + 2};
    char *arr = NULL;
    if (nargs > 1) {
        arr = rc_malloc(d.n);
        arr[0] = '[';
        memcpy(arr + 1, first, d.n - 2);
        arr[d.n - 1] = ']';
        d.p = arr;
    }
    char name[RC_SIO_SEEN_NAME_MAX], key[64 + 8 + 64], once[sizeof(key) + 8 + RC_SIO_SEEN_NAME_MAX],
        maxlen[16], now[24];
    size_t nl = rc_sio_seen_name(rname, payload, name);
    int kn = snprintf(key, sizeof(key), "%sev:%s", e->cfg->redis_prefix, rule->stream);
    /* In the stream key's hash slot: its own tag when it has one, else the
     * whole key as the tag. */
    const char *lb = strchr(key, '{'), *rb = lb ? strchr(lb + 1, '}') : NULL;
    int tagged = lb && rb && rb > lb + 1;
    int on = snprintf(once, sizeof(once), tagged ? "%s:o:%.*s" : "{%s}:o:%.*s", key, (int)nl, name);
    int mn = snprintf(maxlen, sizeof(maxlen), "%u", rule->maxlen);
    int tn = snprintf(now, sizeof(now), "%lld", (long long)rc_wall_ms());
    const char *node = e->cfg->node_id;
    const char *argv[] = {"EVAL", SSE_LUA, "2",  key, once, maxlen,
                          ev,     d.p,     node, now, node, RC_BRIDGE_ONCE_TOL_MS};
    size_t lens[] = {4,
                     sizeof(SSE_LUA) - 1,
                     1,
                     (size_t)kn,
                     (size_t)on,
                     (size_t)mn,
                     (size_t)evn,
                     d.n,
                     strlen(node),
                     (size_t)tn,
                     strlen(node),
                     sizeof(RC_BRIDGE_ONCE_TOL_MS) - 1};
    int r = rc_bridge_command(e->bridge, on_sse_written, e, 12, argv, lens);
    free(arr);
    if (r < 0) {
        *why = "the Redis command connection is not ready";
        return -1;
    }
    return 0;
}

static void on_request(rc_sio_emitter *e, int nsp, rc_str rname, rc_str payload)
{
    rc_sio_bcast *b = NULL;
    int type = -1;
    const char *why = "";
    int r = rc_sio_request_read(e->cfg, nsp, payload, &b, &type, &why);
    int kind = type == RC_SIO_REQ_REMOTE_JOIN         ? RC_SIO_EM_JOIN
               : type == RC_SIO_REQ_REMOTE_LEAVE      ? RC_SIO_EM_LEAVE
               : type == RC_SIO_REQ_REMOTE_DISCONNECT ? RC_SIO_EM_DISCONNECT
               : type == RC_SIO_REQ_SERVER_SIDE_EMIT  ? RC_SIO_EM_SERVER_SIDE_EMIT
                                                      : RC_SIO_EM_OTHER;
    if (r < 0) {
        counted(e, kind, 0);
        rc_bridge_bad_message(e->bridge, rname, why);
    } else if (r > 0 && type == RC_SIO_REQ_SERVER_SIDE_EMIT) {
        if (server_side_emit(e, rname, payload, &why) < 0)
            refused(e, kind, rname, why);
        else
            counted(e, kind, 1);
    } else if (r > 0) {
        refused(e, kind, rname, "a request only a Socket.IO server answers, or an unknown type");
    } else {
        counted(e, kind, 1);
        if (b->all || b->n[RC_SIO_BC_ROOMS])
            to_shards(e, b);
        else
            rc_sio_bcast_free(b); /* rooms nobody can be in */
    }
}

static void on_redis(void *u, rc_str rname, rc_str payload)
{
    rc_sio_emitter *e = u;
    int nsp;
    rc_str room;
    switch (rc_sio_emitter_channel(e->cfg, rname, &nsp, &room)) {
    case RC_SIO_EMCH_ROOM: on_emit(e, rname, payload, 1); break;
    case RC_SIO_EMCH_NSP: on_emit(e, rname, payload, 0); break;
    case RC_SIO_EMCH_REQUEST: on_request(e, nsp, rname, payload); break;
    default:
        counted(e, RC_SIO_EM_OTHER, 0);
        rc_bridge_bad_message(e->bridge, rname, "not an emitter channel");
        break;
    }
}

static size_t alias_name(void *u, rc_str chan, char *out, size_t cap)
{
    rc_sio_emitter *e = u;
    return rc_sio_emitter_name(e->cfg, chan, out, cap);
}

rc_sio_emitter *rc_sio_emitter_attach(rc_bridge *b, const rc_config *cfg, rc_outbox *out,
                                      rc_sio_emitter_stats *stats)
{
    if (!cfg->sio_on || !cfg->sio_emitter[0])
        return NULL;
    rc_sio_emitter *e = rc_calloc(1, sizeof(*e));
    e->bridge = b;
    e->cfg = cfg;
    e->out = out;
    e->stats = stats;
    static const rc_bridge_alias alias = {alias_name, on_redis};
    rc_bridge_on_alias(b, &alias, e);
    for (int i = 0; i <= cfg->n_sio_nsps; i++) {
        rc_str ns = nsp_name(cfg, i);
        char name[sizeof(cfg->sio_emitter) + RC_SIO_MAX_NSP + 16];
        int n = snprintf(name, sizeof(name), "%s#%.*s#", cfg->sio_emitter, (int)ns.n, ns.p);
        rc_assert(n > 0 && (size_t)n < sizeof(name));
        rc_bridge_subscribe_raw(b, (rc_str){name, (size_t)n});
        n = snprintf(name, sizeof(name), "%s-request#%.*s#", cfg->sio_emitter, (int)ns.n, ns.p);
        rc_assert(n > 0 && (size_t)n < sizeof(name));
        rc_bridge_subscribe_raw(b, (rc_str){name, (size_t)n});
    }
    return e;
}

void rc_sio_emitter_free(rc_sio_emitter *e)
{
    if (!e)
        return;
    free(e);
}
