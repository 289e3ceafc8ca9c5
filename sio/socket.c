/* The Socket.IO protocol module (sio/socket.h): Engine.IO packets in
 * WebSocket text frames, Socket.IO packets inside them (sio/packet.h), and
 * the node's operations (ops/ops.h) behind them.
 *
 * Thread: the shard that owns the connection. */
#include "sio/socket.h"

#include <string.h>
#include <sys/random.h>

#include "base/log.h"
#include "channels/shard.h"
#include "ops/ops.h"
#include "sio/packet.h"
#include "sio/session.h"
#include "sio/socket_int.h"
#include "ws/b64url.h"
#include "ws/frame.h"

typedef rc_sio_conn sio_conn;

static sio_conn *state(rc_shard *s, const rc_conn *c)
{
    return rc_sio_state(s, c);
}

/* n base64url characters of the kernel's randomness (n a multiple of 4):
 * ids that guard sessions. */
void rc_sio_random_chars(char *out, size_t n)
{
    uint8_t r[48];
    rc_assert(n % 4 == 0 && n / 4 * 3 <= sizeof(r));
    rc_assert(getrandom(r, n / 4 * 3, 0) == (ssize_t)(n / 4 * 3));
    rc_assert(rc_b64url_encode(r, n / 4 * 3, out, n + 1) == (int)n);
    out[n] = '\0';
}

void rc_sio_random_bytes(uint8_t *out, size_t n)
{
    rc_assert(getrandom(out, n, 0) == (ssize_t)n);
}

/* ---- namespaces --------------------------------------------------------- */

rc_str rc_sio_nsp_name(const rc_shard *s, int i)
{
    if (i <= 0)
        return (rc_str){"/", 1};
    const char *n = s->cfg->sio_nsps[i - 1];
    return (rc_str){n, strlen(n)};
}

int rc_sio_nsp_index(const rc_shard *s, rc_str nsp)
{
    if (nsp.n == 1 && nsp.p[0] == '/')
        return 0;
    for (int i = 0; i < s->cfg->n_sio_nsps; i++)
        if (strlen(s->cfg->sio_nsps[i]) == nsp.n && memcmp(s->cfg->sio_nsps[i], nsp.p, nsp.n) == 0)
            return i + 1;
    return -1;
}

/* The namespace a channel's messages belong to: i when it is "NAME/..."
 * for namespace i's /NAME, else 0. */
int rc_sio_nsp_of_channel(const rc_shard *s, const char *ch, size_t n)
{
    for (int i = 0; i < s->cfg->n_sio_nsps; i++) {
        const char *name = s->cfg->sio_nsps[i] + 1;
        size_t k = strlen(name);
        if (n > k + 1 && memcmp(ch, name, k) == 0 && ch[k] == '/')
            return i + 1;
    }
    return 0;
}

/* Does channel ch belong to namespace nsp? */
int rc_sio_in_nsp(const rc_shard *s, const char *ch, size_t n, int nsp)
{
    return rc_sio_nsp_of_channel(s, ch, n) == nsp;
}

/* ---- acks and their tags ------------------------------------------------ */

/* A request's tag is its ack id as JSON: the number for "/", the string
 * "I:ID" for namespace I, so that a backend's reply (which carries the
 * tag as the event's id) finds its namespace again. */
static rc_str tag_of(char *buf, size_t cap, int nsp, int has_id, uint64_t id)
{
    if (!has_id)
        return RC_STR_NULL;
    int n = nsp ? snprintf(buf, cap, "\"%d:%llu\"", nsp, (unsigned long long)id)
                : snprintf(buf, cap, "%llu", (unsigned long long)id);
    return (rc_str){buf, (size_t)n};
}

static int tag_read(rc_str t, int *nsp, uint64_t *id)
{
    char num[32];
    if (t.n == 0 || t.n >= sizeof(num))
        return 0;
    size_t i = 0;
    *nsp = 0;
    if (t.p[0] == '"') {
        if (t.n < 5 || t.p[t.n - 1] != '"' || t.p[1] < '1' || t.p[1] > '7' || t.p[2] != ':')
            return 0;
        *nsp = t.p[1] - '0';
        t.p += 3;
        t.n -= 4;
    }
    if (t.n == 0)
        return 0;
    for (i = 0; i < t.n; i++)
        if (t.p[i] < '0' || t.p[i] > '9')
            return 0;
    memcpy(num, t.p, t.n);
    num[t.n] = '\0';
    *id = strtoull(num, NULL, 10);
    return 1;
}

/* ---- sending -------------------------------------------------------------- */

/* An Engine.IO MESSAGE carrying a Socket.IO packet that a writer puts at
 * buf + 1. */
void rc_sio_send_msg(rc_shard *s, rc_conn *c, char *buf, ssize_t n)
{
    if (n < 0) {
        rc_warn("shard=%d conn=%u a Socket.IO packet did not fit its buffer", s->id,
                rc_conn_id(s, c));
        return;
    }
    buf[0] = RC_EIO_MESSAGE;
    rc_conn_send_text(s, c, buf, (size_t)n + 1);
}

static void emit(rc_shard *s, rc_conn *c, int nsp, const char *event, rc_str args)
{
    size_t cap = args.n + RC_SIO_MAX_NSP + 96;
    char *buf = rc_malloc(cap);
    rc_sio_send_msg(s, c, buf,
                    rc_sio_write_event(buf + 1, cap - 1, rc_sio_nsp_name(s, nsp), 0, 0,
                                       (rc_str){event, strlen(event)}, args));
    free(buf);
}

/* Answers the ack of the request tagged t with args (JSON values); nothing
 * when the client asked for none. */
static int ack(rc_shard *s, rc_conn *c, rc_str t, rc_str args)
{
    int nsp;
    uint64_t id;
    if (!tag_read(t, &nsp, &id) || nsp > s->cfg->n_sio_nsps)
        return 0;
    size_t cap = args.n + RC_SIO_MAX_NSP + 48;
    char *buf = rc_malloc(cap);
    rc_sio_send_msg(s, c, buf,
                    rc_sio_write_ack(buf + 1, cap - 1, rc_sio_nsp_name(s, nsp), id, args));
    free(buf);
    return 1;
}

/* {"ok":true,"channel":C} to the ack of t. */
static void ack_ok(rc_shard *s, rc_conn *c, rc_str t, rc_str ch)
{
    char buf[RC_PROTO_MAX_CHANNEL + 40];
    int n = snprintf(buf, sizeof(buf), "{\"ok\":true,\"channel\":\"%.*s\"}", (int)ch.n, ch.p);
    if (n > 0 && (size_t)n < sizeof(buf))
        ack(s, c, t, (rc_str){buf, (size_t)n});
}

/* ---- results of operations ------------------------------------------------ */

static void on_error(rc_shard *s, rc_conn *c, rc_str tag, int code, const char *msg, rc_str ch)
{
    if (rc_sio_is_restore(tag)) { /* a recovery's subscribe */
        rc_sio_restore_step(s, c, state(s, c), 1);
        return;
    }
    char m[RC_JSON_ESCAPED_MAX(RC_PROTO_MAX_TEXT)], cj[RC_JSON_ESCAPED_MAX(RC_PROTO_MAX_CHANNEL)];
    const char *text = msg ? msg : rc_proto_errname(code);
    ssize_t ml = rc_json_escape(m, sizeof(m), text, RC_MIN(strlen(text), RC_PROTO_MAX_TEXT));
    ssize_t cl =
        ch.n ? rc_json_escape(cj, sizeof(cj), ch.p, RC_MIN(ch.n, RC_PROTO_MAX_CHANNEL)) : 0;
    char obj[sizeof(m) + sizeof(cj) + 96];
    int n = snprintf(obj, sizeof(obj), "{\"error\":\"%s\",\"message\":%.*s%s%.*s}",
                     rc_proto_errname(code), (int)RC_MAX(ml, 0), m, cl > 0 ? ",\"channel\":" : "",
                     (int)RC_MAX(cl, 0), cj);
    rc_str args = {obj, (size_t)n};
    if (!ack(s, c, tag, args))
        emit(s, c, 0, "ringcast:error", args);
}

static void on_subscribed(rc_shard *s, rc_conn *c, rc_str tag, rc_str ch, uint64_t seq,
                          const rc_sub_info *info)
{
    (void)seq;
    rc_sio_note_position(s, ch, info);
    if (rc_sio_is_restore(tag)) {
        rc_sio_restore_step(s, c, state(s, c),
                            info && info->recovery && info->outcome != RC_REC_OK);
        return;
    }
    ack_ok(s, c, tag, ch);
}

static void on_unsubscribed(rc_shard *s, rc_conn *c, rc_str tag, rc_str ch)
{
    ack_ok(s, c, tag, ch);
}

static void on_published(rc_shard *s, rc_conn *c, rc_str tag, rc_str ch)
{
    ack_ok(s, c, tag, ch);
}

/* The event is in its stream: the ack waits for the backend's reply. */
static void on_event_acked(rc_shard *s, rc_conn *c, rc_str tag, rc_str entry)
{
    (void)s, (void)c, (void)tag, (void)entry;
}

/* A backend's reply: the ack's arguments are its data, or {"error":E}. */
static void on_reply(rc_shard *s, rc_conn *c, const rc_msg *m)
{
    rc_str p = rc_msg_payload(m);
    rc_json_iter it;
    rc_json_val k, v;
    rc_str id = RC_STR_NULL, data = RC_STR_NULL, err = RC_STR_NULL;
    if (rc_json_object_begin(&it, p.p, p.n, RC_PROTO_MAX_DEPTH) < 0)
        return;
    while (rc_json_object_next(&it, &k, &v) > 0) {
        if (rc_json_key_is(&k, "id"))
            id = v.raw;
        else if (rc_json_key_is(&k, "data"))
            data = v.raw;
        else if (rc_json_key_is(&k, "error"))
            err = v.raw;
    }
    if (err.n) {
        char *buf = rc_malloc(err.n + 16);
        int n = snprintf(buf, err.n + 16, "{\"error\":%.*s}", (int)err.n, err.p);
        ack(s, c, id, (rc_str){buf, (size_t)n});
        free(buf);
    } else {
        ack(s, c, id, data.n ? data : (rc_str){"null", 4});
    }
}

/* Requests the Socket.IO side never makes (history, presence, refresh,
 * waiting rooms) have no answer here. */
static void no_history(rc_shard *s, rc_conn *c, rc_str tag, rc_str ch, const rc_sub_info *info,
                       rc_msg *const *msgs, uint32_t n)
{
    (void)info, (void)msgs, (void)n;
    on_error(s, c, tag, RC_PERR_UNKNOWN_TYPE, "not a Socket.IO request", ch);
}
static void no_presence(rc_shard *s, rc_conn *c, rc_str tag, rc_str ch, rc_str members, uint32_t n,
                        rc_str cursor)
{
    (void)members, (void)n, (void)cursor;
    on_error(s, c, tag, RC_PERR_UNKNOWN_TYPE, "not a Socket.IO request", ch);
}
static void no_presence_stats(rc_shard *s, rc_conn *c, rc_str tag, rc_str ch, uint64_t a,
                              uint64_t b)
{
    (void)a, (void)b;
    on_error(s, c, tag, RC_PERR_UNKNOWN_TYPE, "not a Socket.IO request", ch);
}
/* A Socket.IO client cannot take a new token in-band: at exp the node
 * closes it (4001) and its reconnection CONNECTs with a fresh auth. */
static void no_refresh_due(rc_shard *s, rc_conn *c, int64_t seconds)
{
    (void)s, (void)c, (void)seconds;
}
static void no_refreshed(rc_shard *s, rc_conn *c, rc_str tag, int64_t exp)
{
    (void)exp;
    on_error(s, c, tag, RC_PERR_UNKNOWN_TYPE, "not a Socket.IO request", RC_STR_NULL);
}
static void no_queue_joined(rc_shard *s, rc_conn *c, rc_str tag, rc_str q, int64_t t, int64_t p,
                            int64_t e)
{
    (void)q, (void)t, (void)p, (void)e;
    on_error(s, c, tag, RC_PERR_UNKNOWN_TYPE, "not a Socket.IO request", RC_STR_NULL);
}
static void no_queue_admitted(rc_shard *s, rc_conn *c, rc_str tag, rc_str q, rc_str token,
                              int64_t e)
{
    (void)q, (void)token, (void)e;
    on_error(s, c, tag, RC_PERR_UNKNOWN_TYPE, "not a Socket.IO request", RC_STR_NULL);
}
static void no_queue_left(rc_shard *s, rc_conn *c, rc_str tag, rc_str q)
{
    (void)q;
    on_error(s, c, tag, RC_PERR_UNKNOWN_TYPE, "not a Socket.IO request", RC_STR_NULL);
}
static void no_queue_gone(rc_shard *s, rc_conn *c, rc_str q, const char *reason)
{
    (void)s, (void)c, (void)q, (void)reason;
}

/* ---- channel messages ------------------------------------------------------ */

/* m in Socket.IO's words: a publication becomes EVENT ["<event>", data] in
 * its channel's namespace; a notice "ringcast:error", a presence event
 * "ringcast:presence". */
static rc_obuf *make_frame(rc_shard *s, const rc_msg *m)
{
    rc_str p = rc_msg_payload(m);
    char event[RC_PROTO_MAX_EVENT + 1] = "message";
    char off[RC_SIO_OFFSET_MAX + 4];
    size_t offn = 0;
    rc_str args = p;
    if (m->kind == RC_MSG_DATA) {
        rc_json_iter it;
        rc_json_val k, v;
        rc_str epoch = RC_STR_NULL;
        int64_t offset = -1;
        int several = 0;
        if (rc_json_object_begin(&it, p.p, p.n, RC_PROTO_MAX_DEPTH) < 0)
            return NULL;
        args = (rc_str){"null", 4};
        while (rc_json_object_next(&it, &k, &v) > 0) {
            if (rc_json_key_is(&k, "event") && v.type == RC_JSON_STRING &&
                rc_json_string(&v, event, sizeof(event)) < 0)
                return NULL;
            if (rc_json_key_is(&k, "data"))
                args = v.raw;
            else if (rc_json_key_is(&k, "args"))
                several = v.type == RC_JSON_TRUE;
            else if (rc_json_key_is(&k, "offset") && v.type == RC_JSON_NUMBER &&
                     rc_json_int64(&v, &offset) < 0)
                offset = -1;
            else if (rc_json_key_is(&k, "epoch") && v.type == RC_JSON_STRING && v.raw.n == 18)
                epoch = (rc_str){v.raw.p + 1, 16}; /* 16 hex digits need no unescaping */
        }
        args = rc_sio_args_of(args, several); /* several: each its own argument */
        /* The client keeps the last argument as its offset (recovery). */
        if (s->cfg->sio_recovery_s)
            offn = rc_sio_offset_arg(s, m, epoch, offset >= 0, (uint64_t)RC_MAX(offset, 0), off,
                                     sizeof(off));
    } else if (m->kind == RC_MSG_NOTICE) {
        memcpy(event, "ringcast:error", sizeof("ringcast:error"));
    } else if (m->kind == RC_MSG_PRESENCE) {
        memcpy(event, "ringcast:presence", sizeof("ringcast:presence"));
    } else {
        return NULL;
    }
    char *joined = NULL;
    if (offn) { /* the arguments, then the offset */
        size_t sep = args.n ? 1 : 0;
        joined = rc_malloc(args.n + sep + offn);
        memcpy(joined, args.p, args.n);
        if (sep)
            joined[args.n] = ',';
        memcpy(joined + args.n + sep, off, offn);
        args = (rc_str){joined, args.n + sep + offn};
    }
    size_t cap = args.n + RC_SIO_MAX_NSP + 2 * RC_PROTO_MAX_EVENT + 16;
    char *buf = rc_malloc(cap);
    buf[0] = RC_EIO_MESSAGE;
    ssize_t n = rc_sio_write_event(
        buf + 1, cap - 1, rc_sio_nsp_name(s, rc_sio_nsp_of_channel(s, m->chan, m->chan_len)), 0, 0,
        (rc_str){event, strlen(event)}, args);
    free(joined);
    rc_obuf *b = n < 0 ? NULL : rc_obuf_frame(RC_OBUF_DATA, RC_WS_OP_TEXT, buf, (size_t)n + 1);
    free(buf);
    return b;
}

/* ---- heartbeat --------------------------------------------------------------- */

static uint32_t ping_interval(const rc_shard *s)
{
    return s->cfg->ping_interval_ms ? s->cfg->ping_interval_ms : 25000;
}

static uint32_t heartbeat(rc_shard *s, rc_conn *c, int fire)
{
    sio_conn *st = state(s, c);
    if (!st)
        return ping_interval(s);
    if (st->role == RC_SIO_CARRIER)
        return rc_sio_carrier_timer(s, c, st, fire);
    if (st->role != RC_SIO_SESSION)
        return UINT32_MAX;
    uint64_t since = (uint64_t)(s->now_tick - st->ping_tick) * RC_TICK_MS;
    if (fire && st->awaiting && since >= s->cfg->pong_timeout_ms) {
        rc_counter_inc(&s->stats.heartbeat_timeouts);
        rc_conn_close(s, c, RC_CLOSE_HEARTBEAT, "ping timeout: no pong");
        return UINT32_MAX;
    }
    if (fire && !st->awaiting && since >= ping_interval(s)) {
        rc_conn_send_text(s, c, "2", 1);
        rc_counter_inc(&s->stats.pings_sent);
        st->ping_tick = s->now_tick;
        st->awaiting = 1;
        since = 0;
    }
    uint64_t due = st->awaiting ? s->cfg->pong_timeout_ms : ping_interval(s);
    return (uint32_t)(since >= due ? RC_TICK_MS : due - since);
}

/* ---- the connection ----------------------------------------------------------- */

static void gauge_add(rc_counter *g, int64_t d)
{
    rc_counter_set(g, (uint64_t)((int64_t)rc_counter_get(g) + d));
}

static void on_opened(rc_shard *s, rc_conn *c)
{
    sio_conn *st = state(s, c);
    if (st && st->role == RC_SIO_CARRIER)
        return; /* the WebSocket a polling session upgrades to: sio/poll.c */
    rc_assert(!st);
    st = rc_calloc(1, sizeof(*st));
    s->pstate[rc_conn_id(s, c)] = st;
    st->role = RC_SIO_SESSION;
    st->poller = st->carrier = RC_NO_CONN;
    rc_sio_random_bytes(st->sid_rand, sizeof(st->sid_rand));
    char sid[RC_SIO_SID_LEN + 1];
    rc_sio_sid_text(s, c, st, sid);
    st->ping_tick = s->now_tick;
    int polling = rc_conn_is_virtual(s, c);
    gauge_add(polling ? &s->stats.sio_polling : &s->stats.sio_open, 1);
    char open[224];
    int n = snprintf(open, sizeof(open),
                     "0{\"sid\":\"%s\",\"upgrades\":[%s],\"pingInterval\":%u,\"pingTimeout\":%u,"
                     "\"maxPayload\":%u}",
                     sid, polling ? "\"websocket\"" : "", ping_interval(s), s->cfg->pong_timeout_ms,
                     polling ? RC_MIN(s->cfg->max_message_bytes, s->cfg->max_body_bytes)
                             : s->cfg->max_message_bytes);
    rc_conn_send_text(s, c, open, (size_t)n);
}

static void on_closed(rc_shard *s, rc_conn *c)
{
    sio_conn *st = state(s, c);
    if (st && st->role == RC_SIO_CARRIER) {
        rc_sio_carrier_closed(s, c, st);
        return;
    }
    if (st && st->role == RC_SIO_SESSION && !st->closed) {
        st->closed = 1; /* once */
        rc_sio_keep_closed(s, c, st);
        int polling = rc_conn_is_virtual(s, c);
        gauge_add(polling ? &s->stats.sio_polling : &s->stats.sio_open, -1);
        if (polling) {
            rc_sio_answer_poll(s, c, 1);
            rc_sio_session_closed(s, c, st);
        }
    }
    rc_op_end(s, c);
}

/* A malformed packet: Socket.IO servers end the connection. */
void rc_sio_parse_error(rc_shard *s, rc_conn *c, const char *why)
{
    char reason[96];
    snprintf(reason, sizeof(reason), "parse error: %s", why);
    rc_counter_inc(&s->stats.sio_bad_packets);
    sio_conn *st = state(s, c);
    if (st) {
        st->keep = 0;   /* a client that breaks the protocol does not come back to its session */
        st->broken = 1; /* nor polls it again */
    }
    rc_conn_close(s, c, RC_CLOSE_POLICY, reason);
}

/* Does channel ch belong to namespace i's mapped rooms? */
static int mapped_channel(const rc_shard *s, int i, const char *ch, size_t n)
{
    if (rc_sio_nsp_of_channel(s, ch, n) != i)
        return 0;
    if (i) {
        size_t k = strlen(s->cfg->sio_nsps[i - 1]); /* "/NAME": "NAME/" is as long */
        ch += k, n -= k;
    }
    for (int j = 0; j < s->cfg->n_sio_maps; j++) {
        const char *p = s->cfg->sio_maps[j].prefix;
        size_t k = strlen(p);
        if (s->cfg->sio_maps[j].op == RC_SIO_MAP_SUBSCRIBE && n >= k && memcmp(ch, p, k) == 0)
            return 1;
    }
    return 0;
}

/* DISCONNECT from a namespace: its rooms are left. */
static void on_disconnect(rc_shard *s, rc_conn *c, sio_conn *st, int i)
{
    st->nsps &= (uint8_t) ~(1u << i);
    if (st->pid_nsp == i + 1)
        st->keep = 0; /* socket.disconnect(): the session ends for good */
    for (uint32_t k = c->nchan; k-- > 0;) {
        if (k >= c->nchan)
            continue;
        const rc_room *r = c->chans[k].room;
        if (mapped_channel(s, i, r->name, r->name_len)) {
            char name[RC_PROTO_MAX_CHANNEL + 1];
            memcpy(name, r->name, r->name_len);
            rc_op_unsubscribe(s, c, RC_STR_NULL, (rc_str){name, r->name_len});
        }
    }
}

void rc_sio_disconnect_nsp(rc_shard *s, rc_conn *c, int i, int close)
{
    sio_conn *st = state(s, c);
    if (!st || st->role != RC_SIO_SESSION || !(st->nsps >> i & 1))
        return;
    if (close || st->pid_nsp == i + 1)
        st->keep = 0; /* the server ended it: nothing to recover */
    if (close) {
        rc_conn_close(s, c, RC_CLOSE_NORMAL, "disconnected by the server");
        return;
    }
    /* DISCONNECT: "1", the namespace unless "/" (then its ','). */
    char buf[RC_SIO_MAX_NSP + 8];
    rc_str nsp = rc_sio_nsp_name(s, i);
    size_t n = 1;
    buf[0] = RC_EIO_MESSAGE;
    buf[n++] = '0' + RC_SIO_DISCONNECT;
    if (i) {
        memcpy(buf + n, nsp.p, nsp.n);
        n += nsp.n;
        buf[n++] = ',';
    }
    rc_conn_send_text(s, c, buf, n);
    st->nsps &= (uint8_t) ~(1u << i);
    /* Every room of the namespace is left, as a Socket.IO server's socket
     * leaves its rooms when it is disconnected. */
    for (uint32_t k = c->nchan; k-- > 0;) {
        if (k >= c->nchan)
            continue;
        const rc_room *r = c->chans[k].room;
        if (rc_sio_in_nsp(s, r->name, r->name_len, i)) {
            char name[RC_PROTO_MAX_CHANNEL + 1];
            memcpy(name, r->name, r->name_len);
            rc_chan_unsubscribe(s, c, (rc_str){name, r->name_len});
        }
    }
}

/* The argument of a mapped event, as part of a channel name: a string or
 * a number. */
static int room_arg(const rc_json_val *v, char *out, size_t cap, size_t *len)
{
    if (v->type == RC_JSON_NUMBER && v->raw.n < cap) {
        memcpy(out, v->raw.p, v->raw.n);
        *len = v->raw.n;
        return 0;
    }
    ssize_t n = v->type == RC_JSON_STRING ? rc_json_string(v, out, cap) : -1;
    if (n < 0)
        return -1;
    *len = (size_t)n;
    return 0;
}

static void on_event(rc_shard *s, rc_conn *c, int i, const rc_sio_packet *pk)
{
    char tbuf[48];
    rc_str tag = tag_of(tbuf, sizeof(tbuf), i, pk->has_id, pk->id);
    rc_json_iter it;
    rc_json_val name, a[2], v;
    rc_json_array_begin(&it, pk->data.p, pk->data.n, RC_SIO_MAX_DEPTH);
    rc_json_array_next(&it, &name); /* a string: rc_sio_parse checked */
    char ev[RC_PROTO_MAX_EVENT + 1];
    ssize_t evn = rc_json_string(&name, ev, sizeof(ev));
    uint32_t nargs = 0;
    const char *first = NULL, *last = NULL;
    while (rc_json_array_next(&it, &v) > 0) {
        if (nargs < 2)
            a[nargs] = v;
        if (!first)
            first = v.raw.p;
        last = v.raw.p + v.raw.n;
        nargs++;
    }
    if (evn < 0 || !rc_proto_name_valid(ev, (size_t)evn, RC_PROTO_MAX_EVENT)) {
        rc_conn_error(s, c, tag, RC_PERR_UNKNOWN_EVENT, "not a valid event name", RC_STR_NULL);
        return;
    }
    for (int j = 0; j < s->cfg->n_sio_maps; j++) {
        const rc_sio_map *mp = &s->cfg->sio_maps[j];
        if (strcmp(mp->event, ev) != 0)
            continue;
        char ch[RC_PROTO_MAX_CHANNEL + 1], arg[RC_PROTO_MAX_CHANNEL + 1];
        size_t an = 0;
        if (nargs < 1 || room_arg(&a[0], arg, sizeof(arg), &an) < 0) {
            rc_conn_error(s, c, tag, RC_PERR_BAD_REQUEST,
                          "the first argument must be a string or a number: the room", RC_STR_NULL);
            return;
        }
        int n = snprintf(ch, sizeof(ch), "%s%s%s%.*s", i ? s->cfg->sio_nsps[i - 1] + 1 : "",
                         i ? "/" : "", mp->prefix, (int)an, arg);
        rc_str chs = {ch, (size_t)RC_MAX(n, 0)};
        if (n < 0 || (size_t)n >= sizeof(ch) ||
            !rc_proto_name_valid(ch, (size_t)n, s->cfg->max_channel_len)) {
            rc_conn_error(s, c, tag, RC_PERR_INVALID_CHANNEL, "not a valid room name", RC_STR_NULL);
            return;
        }
        if (mp->op == RC_SIO_MAP_SUBSCRIBE)
            rc_op_subscribe(s, c, tag, chs, NULL);
        else if (mp->op == RC_SIO_MAP_UNSUBSCRIBE)
            rc_op_unsubscribe(s, c, tag, chs);
        else
            rc_op_publish(s, c, tag, chs, (rc_str){ev, (size_t)evn},
                          nargs > 1 ? a[1].raw : (rc_str){"null", 4});
        return;
    }
    /* To the backends: one argument is the data; several, their array. */
    if (nargs <= 1) {
        rc_op_event(s, c, tag, (rc_str){ev, (size_t)evn}, nargs ? a[0].raw : (rc_str){"null", 4});
        return;
    }
    size_t span = (size_t)(last - first);
    char *arr = rc_malloc(span + 2);
    arr[0] = '[';
    memcpy(arr + 1, first, span);
    arr[span + 1] = ']';
    rc_op_event(s, c, tag, (rc_str){ev, (size_t)evn}, (rc_str){arr, span + 2});
    free(arr);
}

static void on_sio_packet(rc_shard *s, rc_conn *c, sio_conn *st, const char *p, size_t n,
                          int allowed)
{
    rc_sio_packet pk;
    int e = rc_sio_parse(p, n, &pk);
    if (e != RC_SIO_OK) {
        rc_sio_parse_error(s, c, rc_sio_errtext(e));
        return;
    }
    if (pk.type == RC_SIO_CONNECT) {
        rc_sio_on_connect(s, c, st, &pk);
        return;
    }
    int i = rc_sio_nsp_index(s, pk.nsp);
    if (i < 0 || !(st->nsps >> i & 1)) {
        /* Not connected there (perhaps refused): the packet has no home. */
        rc_counter_inc(&s->stats.sio_bad_packets);
        return;
    }
    char tbuf[48];
    rc_str tag = tag_of(tbuf, sizeof(tbuf), i, pk.has_id, pk.id);
    switch (pk.type) {
    case RC_SIO_DISCONNECT: on_disconnect(s, c, st, i); break;
    case RC_SIO_EVENT:
        if (!allowed)
            rc_conn_error(s, c, tag, RC_PERR_RATE_LIMITED,
                          "message rate limit exceeded: event dropped", RC_STR_NULL);
        else
            on_event(s, c, i, &pk);
        break;
    case RC_SIO_BINARY_EVENT:
    case RC_SIO_BINARY_ACK:
        rc_counter_inc(&s->stats.sio_binary_refused);
        st->skip = (uint8_t)pk.attachments;
        rc_conn_error(s, c, pk.type == RC_SIO_BINARY_EVENT ? tag : RC_STR_NULL, RC_PERR_BINARY,
                      "binary attachments are not supported: send JSON (base64 for bytes)",
                      RC_STR_NULL);
        break;
    case RC_SIO_ACK: break; /* the node asks no acks: nothing waits for it */
    default: rc_sio_parse_error(s, c, "a packet type only a server sends"); break;
    }
}

static void on_message(rc_shard *s, rc_conn *c, const uint8_t *msg, size_t len, int binary,
                       int allowed)
{
    sio_conn *st = state(s, c);
    if (!st)
        return;
    if (st->role == RC_SIO_CARRIER) {
        rc_sio_carrier_message(s, c, st, msg, len, binary);
        return;
    }
    if (binary) {
        if (st->skip) {
            st->skip--; /* an attachment of a refused packet */
            return;
        }
        rc_sio_parse_error(s, c, "binary data that no packet announced");
        return;
    }
    const char *p = (const char *)msg;
    if (len == 0) {
        rc_sio_parse_error(s, c, "an empty packet");
        return;
    }
    switch (p[0]) {
    case RC_EIO_PONG: st->awaiting = 0; break;
    case RC_EIO_PING: {
        /* Clients of Engine.IO v3 ping; v4's probe does too: answer it. */
        char pong[64];
        size_t n = RC_MIN(len, sizeof(pong));
        memcpy(pong, p, n);
        pong[0] = RC_EIO_PONG;
        rc_conn_send_text(s, c, pong, n);
        break;
    }
    case RC_EIO_MESSAGE: on_sio_packet(s, c, st, p + 1, len - 1, allowed); break;
    case RC_EIO_CLOSE:
        st->keep = 0; /* the client leaves on purpose: nothing to recover */
        rc_conn_close(s, c, RC_CLOSE_NORMAL, "client closed");
        break;
    case RC_EIO_UPGRADE:
    case RC_EIO_NOOP: break;
    default: rc_sio_parse_error(s, c, "not an Engine.IO packet type"); break;
    }
}

const rc_protocol rc_sio_protocol = {
    .name = "socketio",
    .opened = on_opened,
    .message = on_message,
    .closed = on_closed,
    .error = on_error,
    .subscribed = on_subscribed,
    .history = no_history,
    .presence = no_presence,
    .presence_stats = no_presence_stats,
    .refresh_due = no_refresh_due,
    .refreshed = no_refreshed,
    .event_acked = on_event_acked,
    .unsubscribed = on_unsubscribed,
    .published = on_published,
    .queue_joined = no_queue_joined,
    .queue_tick = NULL, /* Socket.IO connections never join a waiting room */
    .queue_admitted = no_queue_admitted,
    .queue_left = no_queue_left,
    .queue_gone = no_queue_gone,
    .frame = make_frame,
    .reply = on_reply,
    .heartbeat = heartbeat,
    .drain = rc_sio_drain,
};
