/* Engine.IO's long-polling transport and the upgrade (sio/poll.h).
 *
 * Thread: the shard that owns the connection. */
#include "sio/poll.h"

#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "http/reply.h"
#include "sio/packet.h"
#include "sio/session.h"
#include "ws/frame.h"

rc_conn *rc_sio_linked(rc_shard *s, uint32_t slot, uint16_t gen, int role)
{
    if (slot >= s->nconns)
        return NULL;
    rc_conn *c = &s->conns[slot];
    rc_sio_conn *st = s->pstate[slot];
    if (c->gen != gen || !st || st->role != role)
        return NULL;
    if (role == RC_SIO_POLLER)
        return c->state == RC_CONN_HTTP ? c : NULL;
    return c->state == RC_CONN_OPEN || c->state == RC_CONN_CLOSING ? c : NULL;
}

/* Is c the carrier its session knows, by slot and generation? */
static int is_current(const rc_shard *s, const rc_sio_conn *vs, const rc_conn *c)
{
    return vs->carrier == rc_conn_id(s, c) && vs->carrier_gen == c->gen;
}

/* The carrier that session vs knows, while it is open; NULL for none. */
static rc_conn *current_carrier(rc_shard *s, const rc_sio_conn *vs)
{
    return vs->carrier == RC_NO_CONN
               ? NULL
               : rc_sio_linked(s, vs->carrier, vs->carrier_gen, RC_SIO_CARRIER);
}

/* A carrier that may not carry its session (another one does, or is
 * upgrading it): closed, counted; the session goes on. */
static void refuse_carrier(rc_shard *s, rc_conn *c, const char *why)
{
    rc_counter_inc(&s->stats.sio_upgrades[RC_SIO_UPG_REFUSED]);
    rc_conn_close(s, c, RC_CLOSE_POLICY, why);
}

/* A message on the WebSocket a polling session is upgrading to: the probe,
 * the upgrade, then everything for the session. Only one carrier at a time
 * is the session's: the first to probe (or to upgrade without a probe). */
void rc_sio_carrier_message(rc_shard *s, rc_conn *c, rc_sio_conn *st, const uint8_t *msg,
                            size_t len, int binary)
{
    rc_conn *v = rc_sio_linked(s, st->link, st->link_gen, RC_SIO_SESSION);
    rc_sio_conn *vs = v ? rc_sio_state(s, v) : NULL;
    if (!vs) {
        rc_conn_close(s, c, RC_CLOSE_NORMAL, "session closed");
        return;
    }
    if (!is_current(s, vs, c)) {
        if (vs->upgraded) {
            refuse_carrier(s, c, "upgrade refused: the session has upgraded already");
            return;
        }
        if (current_carrier(s, vs)) {
            refuse_carrier(s, c, "upgrade refused: another upgrade of this session is under way");
            return;
        }
    }
    if (!vs->upgraded && !binary && len == 6 && memcmp(msg, "2probe", 6) == 0) {
        rc_conn_send_text(s, c, "3probe", 6);
        /* The client pauses polling before it upgrades: it waits for its
         * GET, which must not wait for the next ping. Until the upgrade,
         * GETs are answered at once ("6" when there is nothing). */
        vs->carrier = rc_conn_id(s, c);
        vs->carrier_gen = c->gen;
        rc_sio_answer_poll(s, v, 0);
        return;
    }
    if (!vs->upgraded && !binary && len == 1 && msg[0] == RC_EIO_UPGRADE) {
        vs->upgraded = 1;
        vs->carrier = rc_conn_id(s, c);
        vs->carrier_gen = c->gen;
        rc_counter_inc(&s->stats.sio_upgrades[RC_SIO_UPG_UPGRADED]);
        /* The GET still waiting is told to stop ("6"); what was queued for
         * it goes the new way. */
        rc_sio_answer_poll(s, v, 0);
        rc_sio_drain(s, v);
        return;
    }
    if (!vs->upgraded) {
        rc_counter_inc(&s->stats.sio_bad_packets);
        rc_conn_close(s, c, RC_CLOSE_POLICY, "parse error: a packet before the upgrade");
        return;
    }
    if (binary)
        rc_conn_proto(s, v)->message(s, v, msg, len, 1, 1);
    else
        rc_conn_message(s, v, msg, len);
}

uint32_t rc_sio_carrier_timer(rc_shard *s, rc_conn *c, rc_sio_conn *st, int fire)
{
    rc_conn *v = rc_sio_linked(s, st->link, st->link_gen, RC_SIO_SESSION);
    rc_sio_conn *vs = v ? rc_sio_state(s, v) : NULL;
    if (vs && vs->upgraded && is_current(s, vs, c))
        return UINT32_MAX; /* it carries its session, which pings through it */
    /* As long as a session that nobody polls lives: a ping interval and
     * its pong timeout. A client probes and upgrades within a round trip or
     * two of opening; the slack is for loaded machines. */
    uint32_t limit =
        (s->cfg->ping_interval_ms ? s->cfg->ping_interval_ms : 25000) + s->cfg->pong_timeout_ms;
    uint64_t since = (uint64_t)(s->now_tick - st->ping_tick) * RC_TICK_MS;
    if (since < limit)
        return (uint32_t)(limit - since);
    if (!fire)
        return RC_TICK_MS;
    rc_counter_inc(&s->stats.sio_upgrades[RC_SIO_UPG_TIMEOUT]);
    char why[96];
    snprintf(why, sizeof(why), "upgrade timeout: no probe and upgrade within %u ms", limit);
    rc_conn_close(s, c, RC_CLOSE_POLICY, why);
    return UINT32_MAX;
}

void rc_sio_carrier_closed(rc_shard *s, rc_conn *c, rc_sio_conn *st)
{
    rc_conn *v = rc_sio_linked(s, st->link, st->link_gen, RC_SIO_SESSION);
    st->link = RC_NO_CONN; /* links no more */
    rc_sio_conn *vs = v ? rc_sio_state(s, v) : NULL;
    if (!vs || !is_current(s, vs, c))
        return; /* an extra or a stale carrier: the session is not its */
    vs->carrier = RC_NO_CONN;
    if (vs->upgraded)
        rc_conn_abort(s, v); /* nobody is left to carry it */
    /* Closed after its probe, before the upgrade: polling goes on. */
}

/* CORS header lines for an allowed browser origin (none without Origin). */
static void cors(const rc_http_req *req, char *out, size_t cap, int preflight)
{
    out[0] = '\0';
    if (!req->origin.p || req->origin.n > 256)
        return;
    snprintf(out, cap,
             "Access-Control-Allow-Origin: %.*s\r\nAccess-Control-Allow-Credentials: true\r\n"
             "Vary: Origin\r\n%s",
             (int)req->origin.n, req->origin.p,
             preflight ? "Access-Control-Allow-Methods: GET, POST, OPTIONS\r\n"
                         "Access-Control-Allow-Headers: content-type\r\n"
                         "Access-Control-Max-Age: 600\r\n"
                       : "");
}

#define CORS_MAX 512

static void reply(rc_shard *s, rc_conn *c, const rc_http_req *req, int status, const char *type,
                  const char *body, size_t len)
{
    char h[CORS_MAX];
    cors(req, h, sizeof(h), 0);
    rc_http_reply(s, c, status, type, body, len, h[0] ? h : NULL);
}

/* 503 for a new session (handshake counted as outcome), with Retry-After
 * and CORS, so that a browser's client reads it and backs off. */
static void unavailable(rc_shard *s, rc_conn *c, const rc_http_req *req, int outcome,
                        const char *text)
{
    char h[CORS_MAX + 32];
    cors(req, h, CORS_MAX, 0);
    strcat(h, "Retry-After: 5\r\n");
    rc_counter_inc(&s->stats.handshakes[outcome]);
    rc_http_reply(s, c, 503, "text/plain; charset=utf-8", text, strlen(text), h);
}

void rc_sio_refuse(rc_shard *s, rc_conn *c, const rc_http_req *req, int code)
{
    static const char *const msgs[] = {
        "Transport unknown", "Session ID unknown", "Bad handshake method",
        "Bad request",       "Forbidden",          "Unsupported protocol version"};
    char body[96];
    int n = snprintf(body, sizeof(body), "{\"code\":%d,\"message\":\"%s\"}", code, msgs[code]);
    rc_counter_inc(&s->stats.handshakes[code == 4 ? RC_HS_FORBIDDEN : RC_HS_BAD_REQUEST]);
    reply(s, c, req, code == 4 ? 403 : 400, "application/json", body, (size_t)n);
}

void rc_sio_sid_head(char *out, int shard, uint32_t slot, uint16_t gen)
{
    snprintf(out, RC_SIO_SID_HEAD + 1, "%02x%08x%04x", (unsigned)shard & 0xff, slot, (unsigned)gen);
}

/* The value of n lower-case hex digits at p, or -1 for anything else
 * (strtoul would take a sign, blanks or "0x"). */
static int64_t hex_field(const char *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = p[i];
        int d = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
        if (d < 0)
            return -1;
        v = v << 4 | (uint64_t)d;
    }
    return (int64_t)v;
}

int rc_sio_sid_parse(const char *sid, uint32_t *slot, uint16_t *gen)
{
    if (strnlen(sid, RC_SIO_SID_LEN + 1) != RC_SIO_SID_LEN)
        return -1;
    int64_t sh = hex_field(sid, 2), sl = hex_field(sid + 2, 8), g = hex_field(sid + 10, 4);
    if (sh < 0 || sl < 0 || g < 0)
        return -1;
    *slot = (uint32_t)sl;
    *gen = (uint16_t)g;
    return (int)sh;
}

void rc_sio_sid_text(const rc_shard *s, const rc_conn *c, const rc_sio_conn *st, char *out)
{
    rc_sio_sid_head(out, s->id, rc_conn_id(s, c), c->gen);
    rc_assert(rc_b64url_encode(st->sid_rand, sizeof(st->sid_rand), out + RC_SIO_SID_HEAD,
                               RC_SIO_SID_LEN - RC_SIO_SID_HEAD + 1) ==
              RC_SIO_SID_LEN - RC_SIO_SID_HEAD);
}

void rc_sio_pid_text(const rc_sio_conn *st, char *out)
{
    rc_assert(rc_b64url_encode(st->pid, sizeof(st->pid), out, RC_SIO_PID_LEN + 1) ==
              RC_SIO_PID_LEN);
}

/* The session sid names on this shard, or NULL: an open one, or (closing
 * ok) one closing whose last packets a GET may still take. */
static rc_conn *find(rc_shard *s, const char *sid, int closing_ok)
{
    uint32_t slot;
    uint16_t gen;
    if (rc_sio_sid_parse(sid, &slot, &gen) != s->id)
        return NULL;
    rc_conn *v = rc_sio_linked(s, slot, gen, RC_SIO_SESSION);
    rc_sio_conn *vs = v ? rc_sio_state(s, v) : NULL;
    if (!vs || vs->role != RC_SIO_SESSION ||
        !(v->state == RC_CONN_OPEN || (closing_ok && v->state == RC_CONN_CLOSING && !vs->broken)))
        return NULL;
    char mine[RC_SIO_SID_LEN + 1];
    rc_sio_sid_text(s, v, vs, mine);
    if (memcmp(mine, sid, RC_SIO_SID_LEN + 1) != 0)
        return NULL;
    return v;
}

/* The payload of a frame we built (unmasked: a 2, 4 or 10 byte header). */
static rc_str payload_of(const rc_obuf *b, int *opcode)
{
    *opcode = b->data[0] & 0x0f;
    size_t len = b->data[1] & 0x7f, h = 2;
    if (len == 126) {
        len = (size_t)b->data[2] << 8 | b->data[3];
        h = 4;
    } else if (len == 127) {
        len = 0;
        for (int i = 0; i < 8; i++)
            len = len << 8 | b->data[2 + i];
        h = 10;
    }
    return (rc_str){(const char *)b->data + h, len};
}

typedef struct body {
    char *p;
    size_t n, cap;
} body;

static void put(body *b, const char *p, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        b->cap = RC_MAX(b->cap * 2, b->n + n + 1);
        b->p = rc_realloc(b->p, b->cap);
    }
    if (b->n)
        b->p[b->n++] = 0x1e; /* the record separator between packets */
    memcpy(b->p + b->n, p, n);
    b->n += n;
}

void rc_sio_answer_poll(rc_shard *s, rc_conn *v, int closing)
{
    rc_sio_conn *vs = rc_sio_state(s, v);
    if (!vs || vs->poller == RC_NO_CONN)
        return;
    rc_conn *t = rc_sio_linked(s, vs->poller, vs->poller_gen, RC_SIO_POLLER);
    vs->poller = RC_NO_CONN;
    if (!t)
        return;
    body b = {rc_malloc(256), 0, 256};
    int close = closing;
    rc_obuf *o;
    char cbuf[RC_SIO_MAX_NSP + 96];
    size_t cn;
    while (!vs->upgraded && (cn = rc_sio_connect_due(s, v, vs, cbuf, sizeof(cbuf))) > 0)
        put(&b, cbuf, cn);
    while (!vs->upgraded && (o = rc_conn_pop(s, v))) {
        int op;
        rc_str p = payload_of(o, &op);
        if (op == RC_WS_OP_TEXT)
            put(&b, p.p, p.n);
        else if (op == RC_WS_OP_CLOSE)
            close = 1;
        rc_obuf_put(o);
    }
    if (close)
        put(&b, "1", 1);
    if (!b.n)
        put(&b, "6", 1); /* nothing to say: the client asks again */
    rc_httpbuf *hb = t->sess;
    rc_http_req req;
    if (!hb || rc_http_parse(hb->buf, hb->len, s->cfg->max_header_bytes, &req) != RC_HTTP_OK)
        memset(&req, 0, sizeof(req));
    reply(s, t, &req, 200, "text/plain; charset=UTF-8", b.p, b.n);
    free(b.p);
    if (close && !closing)
        rc_conn_abort(s, v); /* its close is told */
}

void rc_sio_drain(rc_shard *s, rc_conn *v)
{
    rc_sio_conn *vs = rc_sio_state(s, v);
    if (!vs)
        return;
    if (!vs->upgraded) {
        rc_sio_answer_poll(s, v, 0);
        return;
    }
    rc_conn *t = current_carrier(s, vs);
    rc_obuf *o;
    char cbuf[RC_SIO_MAX_NSP + 96];
    size_t cn;
    while (t && (cn = rc_sio_connect_due(s, v, vs, cbuf, sizeof(cbuf))) > 0)
        rc_conn_send_text(s, t, cbuf, cn);
    while (t && (o = rc_conn_pop(s, v))) {
        int op;
        rc_str p = payload_of(o, &op);
        if (op != RC_WS_OP_CLOSE) {
            rc_conn_send(s, t, o); /* the same frame, the socket that carries it */
            continue;
        }
        uint16_t code = p.n >= 2 ? (uint16_t)((uint8_t)p.p[0] << 8 | (uint8_t)p.p[1]) : 1000;
        char reason[126];
        size_t rl = p.n > 2 ? RC_MIN(p.n - 2, sizeof(reason) - 1) : 0;
        memcpy(reason, p.p + 2, rl);
        reason[rl] = '\0';
        rc_obuf_put(o);
        vs->carrier = RC_NO_CONN;
        rc_conn_close(s, t, code, reason);
        rc_conn_abort(s, v);
        return;
    }
}

void rc_sio_session_closed(rc_shard *s, rc_conn *v, rc_sio_conn *vs)
{
    rc_conn *t = current_carrier(s, vs);
    if (t && vs->upgraded && v->state == RC_CONN_CLOSING)
        return; /* its close frame is queued: the drain carries it, behind the rest */
    vs->carrier = RC_NO_CONN;
    if (!t)
        return;
    /* What the session's close said (engine/conn.c sets it for closed):
     * 1006 (aborted) and 1005 (no code) are not for a close frame. */
    uint16_t code = s->closing_code;
    int sendable = code != 1005 && code != 1006;
    rc_conn_close(s, t, sendable ? code : RC_CLOSE_NORMAL,
                  sendable && s->closing_reason[0] ? s->closing_reason : "session closed");
}

/* Parks the GET c on session v until v has something to say. */
static void park(rc_shard *s, rc_conn *c, rc_httpbuf *hb, rc_conn *v)
{
    rc_sio_conn *vs = rc_sio_state(s, v);
    rc_sio_conn *ps = rc_calloc(1, sizeof(*ps));
    ps->role = RC_SIO_POLLER;
    ps->link = rc_conn_id(s, v);
    ps->link_gen = v->gen;
    s->pstate[rc_conn_id(s, c)] = ps;
    vs->poller = rc_conn_id(s, c);
    vs->poller_gen = c->gen;
    hb->busy = 1; /* nothing more is read from it */
    /* The session pings within the interval, which answers this; the
     * timer is only a backstop. */
    uint32_t iv = s->cfg->ping_interval_ms ? s->cfg->ping_interval_ms : 25000;
    rc_conn_timer(s, c, iv + s->cfg->pong_timeout_ms);
    if (v->state != RC_CONN_OPEN) {
        /* Closing: its last packets and the close, and then it is gone. */
        rc_sio_answer_poll(s, v, 1);
        rc_conn_abort(s, v);
    } else if ((v->out && v->out->n) || vs->connect_due) {
        rc_sio_answer_poll(s, v, 0);
    }
}

void rc_sio_poll_timeout(rc_shard *s, rc_conn *c)
{
    rc_sio_conn *ps = rc_sio_state(s, c);
    rc_conn *v = rc_sio_linked(s, ps->link, ps->link_gen, RC_SIO_SESSION);
    rc_sio_conn *vs = v ? rc_sio_state(s, v) : NULL;
    if (vs && vs->poller == rc_conn_id(s, c) && vs->poller_gen == c->gen) {
        rc_sio_answer_poll(s, v, 0);
        return;
    }
    rc_http_reply(s, c, 200, "text/plain; charset=UTF-8", "6", 1, NULL);
}

static int method_is(const rc_http_req *req, const char *m)
{
    return rc_http_str_is(req->method, m);
}

/* POST: the client's packets, separated by 0x1e. */
static void post(rc_shard *s, rc_conn *c, const rc_http_req *req, rc_httpbuf *hb, rc_conn *v)
{
    const char *p = hb->buf + req->head_len;
    size_t blen = req->content_length > 0 ? (size_t)req->content_length : 0;
    if (hb->len < req->head_len + blen) { /* never: bodies are read whole first */
        rc_sio_refuse(s, c, req, 3);
        return;
    }
    const char *end = p + blen;
    rc_str pkt;
    while (rc_eio_payload_next(&p, end, &pkt)) {
        if (pkt.n == 0) {
            rc_counter_inc(&s->stats.sio_bad_packets);
            rc_sio_refuse(s, c, req, 3);
            rc_sio_state(s, v)->broken = 1;
            rc_conn_close(s, v, RC_CLOSE_POLICY, "parse error: an empty packet");
            return;
        }
        if (pkt.p[0] == 'b') /* base64 binary: an attachment */
            rc_conn_proto(s, v)->message(s, v, (const uint8_t *)pkt.p, pkt.n, 1, 1);
        else
            rc_conn_message(s, v, (const uint8_t *)pkt.p, pkt.n);
        if (v->state != RC_CONN_OPEN)
            break;
    }
    reply(s, c, req, 200, "text/html", "ok", 2);
}

void rc_sio_poll(rc_shard *s, rc_conn *c, const rc_http_req *req, rc_httpbuf *hb)
{
    if (method_is(req, "OPTIONS")) {
        char h[CORS_MAX];
        cors(req, h, sizeof(h), 1);
        rc_http_reply(s, c, 204, "text/plain", "", 0, h[0] ? h : NULL);
        return;
    }
    char sid[64];
    int r = rc_http_query_param(req->query, "sid", sid, sizeof(sid));
    if (r == -1) {
        if (!method_is(req, "GET")) {
            rc_sio_refuse(s, c, req, 2);
            return;
        }
        if (rc_shard_draining(s)) {
            unavailable(s, c, req, RC_HS_DRAINING, "draining: connect to another node\n");
            return;
        }
        /* A session holds a slot of the virtual table (as large as the
         * socket table), not a socket: --max-connections does not count
         * it; the table's size bounds it. */
        rc_conn *v = rc_conn_new_virtual(s, RC_PROTO_SIO);
        if (!v) {
            unavailable(s, c, req, RC_HS_FULL, "server full: no room for a polling session\n");
            return;
        }
        rc_counter_inc(&s->stats.handshakes[RC_HS_OK]);
        park(s, c, hb, v); /* answered at once with the open packet */
        return;
    }
    uint32_t slot;
    uint16_t gen;
    int shard = r > 0 ? rc_sio_sid_parse(sid, &slot, &gen) : -1;
    if (shard >= 0 && shard < s->node->nshards && shard != s->id) {
        rc_conn_move(s, c, shard);
        return;
    }
    /* A closing session's last packets (and "1") are still for a GET. */
    rc_conn *v = shard == s->id ? find(s, sid, method_is(req, "GET")) : NULL;
    rc_sio_conn *vs = v ? rc_sio_state(s, v) : NULL;
    if (!vs || !rc_conn_is_virtual(s, v)) {
        rc_sio_refuse(s, c, req, 1);
        return;
    }
    if (vs->upgraded) {
        /* Its WebSocket carries it now: polling is over (Engine.IO answers
         * a request on another transport so). */
        rc_sio_refuse(s, c, req, 3);
    } else if (method_is(req, "POST")) {
        post(s, c, req, hb, v);
    } else if (!method_is(req, "GET")) {
        rc_sio_refuse(s, c, req, 3);
    } else if (vs->poller != RC_NO_CONN &&
               rc_sio_linked(s, vs->poller, vs->poller_gen, RC_SIO_POLLER)) {
        /* Two GETs at once: Engine.IO ends such a session. */
        rc_counter_inc(&s->stats.sio_bad_packets);
        rc_sio_refuse(s, c, req, 3);
        vs->broken = 1;
        rc_conn_close(s, v, RC_CLOSE_POLICY, "parse error: overlapping polls");
    } else {
        park(s, c, hb, v);
        if (current_carrier(s, vs))
            rc_sio_answer_poll(s, v, 0); /* an upgrade is under way: no waiting */
    }
}

int rc_sio_upgrade_sid(rc_shard *s, rc_conn *c, const rc_http_req *req, const char *sid)
{
    uint32_t slot;
    uint16_t gen;
    int shard = rc_sio_sid_parse(sid, &slot, &gen);
    if (shard >= 0 && shard < s->node->nshards && shard != s->id) {
        rc_conn_move(s, c, shard);
        return 1;
    }
    rc_conn *v = shard == s->id ? find(s, sid, 0) : NULL;
    rc_sio_conn *vs = v ? rc_sio_state(s, v) : NULL;
    if (!vs || !rc_conn_is_virtual(s, v)) {
        rc_sio_refuse(s, c, req, 1);
        return 1;
    }
    if (vs->upgraded || current_carrier(s, vs)) {
        /* Upgraded already, or another WebSocket is upgrading it. */
        rc_counter_inc(&s->stats.sio_upgrades[RC_SIO_UPG_REFUSED]);
        rc_sio_refuse(s, c, req, 3);
        return 1;
    }
    rc_sio_conn *cs = rc_calloc(1, sizeof(*cs));
    cs->ping_tick = s->now_tick; /* its deadline counts from here */
    cs->role = RC_SIO_CARRIER;
    cs->link = rc_conn_id(s, v);
    cs->link_gen = v->gen;
    s->pstate[rc_conn_id(s, c)] = cs;
    return 0;
}
