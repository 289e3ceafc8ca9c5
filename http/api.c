/* The HTTP API (docs/PROTOCOL.md section 9), behind the API key: publish,
 * replies to one connection, the server-side commands, channels' history
 * and presence, and the waiting rooms' queues. http/server.c routes here
 * the requests rc_http_api_owns says are the API's.
 *
 * Thread: the shard that owns the connection. */
#include <string.h>
#include <strings.h>

#include "http/api.h"

#include "admission/admission.h"
#include "admission/token.h"
#include "channels/history.h"
#include "channels/presence.h"
#include "events/control.h"
#include "events/events.h"
#include "engine/relay.h"
#include "http/reply.h"
#include "ops/ops.h"
#include "proto/json.h"
#include "ws/json.h"

static int api_key_ok(const rc_shard *s, const rc_http_req *req)
{
    rc_str k = req->x_api_key;
    if (!k.p && req->authorization.p && req->authorization.n > 7 &&
        strncasecmp(req->authorization.p, "Bearer ", 7) == 0) {
        k.p = req->authorization.p + 7;
        k.n = req->authorization.n - 7;
    }
    return k.p && rc_ct_equal(k.p, k.n, s->cfg->api_key, strlen(s->cfg->api_key));
}

/* The API's POSTs with a JSON body: /api/publish, /api/reply and the
 * server-side commands. */
static int is_control(const rc_http_req *req)
{
    return req->path.n > 5 && memcmp(req->path.p, "/api/", 5) == 0 &&
           rc_ctl_op_named((rc_str){req->path.p + 5, req->path.n - 5});
}

static int is_publish(const rc_http_req *req)
{
    return rc_http_str_is(req->path, "/api/publish") || rc_http_str_is(req->path, "/api/reply") ||
           is_control(req);
}

static int is_channels(const rc_http_req *req)
{
    return req->path.n > 14 && memcmp(req->path.p, "/api/channels/", 14) == 0;
}

static int is_queues(const rc_http_req *req)
{
    return req->path.n > 12 && memcmp(req->path.p, "/api/queues/", 12) == 0;
}

/* The refusal an API request gets on its head alone (method, API key), with
 * the reply's text and extra headers; 0 when the request may go on. */
int rc_http_api_gate(const rc_shard *s, const rc_http_req *req, const char **text,
                     const char **extra)
{
    *extra = NULL;
    if (is_publish(req) && !rc_http_str_is(req->method, "POST")) {
        *text = "use POST\n";
        *extra = "Allow: POST\r\n";
        return 405;
    }
    if (!s->cfg->api_key[0]) {
        *text = "the HTTP API is disabled: set an API key\n";
        return 403;
    }
    if (!api_key_ok(s, req)) {
        *text = "missing or wrong API key\n";
        *extra = "WWW-Authenticate: Bearer\r\n";
        return 401;
    }
    return 0;
}

/* A JSON answer from a builder given a buffer sized for the worst case
 * (RC_PROTO_*_MAX): it cannot fail, and a failure is a bug. */
static void json_reply(rc_shard *s, rc_conn *c, int status, const char *out, ssize_t n,
                       const char *extra)
{
    rc_assert(n > 0);
    rc_http_reply(s, c, status, "application/json", out, (size_t)n, extra);
}

/* An error answer {"type":"error","code":NAME,"message":M}, M one of our own
 * texts or a parser's reason (at most RC_PROTO_MAX_TEXT bytes, escaped by the
 * builder), with extra headers (or NULL). */
static void api_error(rc_shard *s, rc_conn *c, int status, int code, const char *msg,
                      const char *extra)
{
    char out[RC_PROTO_REPLY_MAX];
    json_reply(s, c, status, out,
               rc_proto_error(out, sizeof(out), RC_STR_NULL, code, msg, RC_STR_NULL), extra);
}

static void api_publish(rc_shard *s, rc_conn *c, const rc_http_req *req, const char *body)
{
    const char *why = "bad request";
    rc_proto_req pr;
    int e = rc_proto_parse_publish_body(body, (size_t)req->content_length, s->cfg->max_channel_len,
                                        &pr, &why);
    if (e != RC_PERR_NONE) {
        api_error(s, c, 400, e, why, NULL);
        return;
    }
    e = rc_op_publish_api(s, (rc_str){pr.channel, pr.channel_len}, (rc_str){pr.event, pr.event_len},
                          pr.data, &why);
    if (e == RC_PERR_FORBIDDEN) {
        api_error(s, c, 403, e, why, NULL);
        return;
    }
    if (e != RC_PERR_NONE) {
        api_error(s, c, 503, e, why, "Retry-After: 1\r\n");
        return;
    }
    char out[RC_PROTO_REPLY_MAX]; /* a valid channel name: always fits */
    ssize_t n = rc_proto_reply(out, sizeof(out), "published", RC_STR_NULL,
                               (rc_str){pr.channel, pr.channel_len}, -1);
    json_reply(s, c, 202, out, n, NULL);
}

/* POST /api/reply: a backend's answer to one connection's event, sent to
 * the connection's node through Redis (events/events.h). */
static void api_reply(rc_shard *s, rc_conn *c, const rc_http_req *req, const char *body)
{
    size_t len = (size_t)req->content_length;
    rc_reply r;
    const char *why = "bad request";
    if (rc_reply_parse(body, len, &r, &why) < 0) {
        api_error(s, c, 400, RC_PERR_BAD_REQUEST, why, NULL);
        return;
    }
    if (!s->cfg->redis_url[0]) {
        api_error(s, c, 503, RC_PERR_EVENTS_UNAVAILABLE, "replies need Redis", NULL);
        return;
    }
    rc_replyreq *q = rc_malloc(sizeof(*q) + len + 1);
    q->len = (uint32_t)len;
    memcpy(q->body, body, len);
    q->body[len] = '\0';
    if (rc_shard_to_relay(s, RC_Q_REPLY, q, 1) < 0) {
        free(q);
        api_error(s, c, 503, RC_PERR_OVERLOADED, "server busy: try again shortly",
                  "Retry-After: 1\r\n");
        return;
    }
    json_reply(s, c, 202, "{\"type\":\"replied\"}", 18, NULL);
}

/* POST /api/disconnect, /api/subscribe, /api/unsubscribe: applied on every
 * node (events/control.h). */
static void api_control(rc_shard *s, rc_conn *c, const rc_http_req *req, const char *body)
{
    rc_ctl k;
    const char *why = "bad request";
    int op = rc_ctl_op_named((rc_str){req->path.p + 5, req->path.n - 5});
    if (rc_ctl_parse(body, (size_t)req->content_length, op, s->cfg->max_channel_len, &k, &why) <
        0) {
        api_error(s, c, 400, RC_PERR_BAD_REQUEST, why, NULL);
        return;
    }
    rc_ctl *q = rc_malloc(sizeof(*q));
    *q = k;
    if (rc_shard_to_relay(s, RC_Q_CONTROL, q, 1) < 0) {
        free(q);
        api_error(s, c, 503, RC_PERR_OVERLOADED, "server busy: try again shortly",
                  "Retry-After: 1\r\n");
        return;
    }
    json_reply(s, c, 202, "{\"type\":\"accepted\"}", 19, NULL);
}

/* POST /api/queues/verify: checked here, no Redis needed. */
static void api_verify(rc_shard *s, rc_conn *c, const char *body, size_t len)
{
    rc_json_iter it;
    rc_json_val k, v;
    char tok[RC_ATOKEN_MAX_LEN + 1] = "";
    int n_tok = 0;
    if (rc_json_object_begin(&it, body, len, 4) == 0)
        while (rc_json_object_next(&it, &k, &v))
            if (rc_json_key_is(&k, "token") &&
                (n_tok++ || rc_json_string(&v, tok, sizeof(tok)) < 0))
                tok[0] = '\0';
    /* Two tokens would leave which one was checked to the parser. */
    if (n_tok > 1) {
        api_error(s, c, 400, RC_PERR_BAD_REQUEST, "duplicate member \"token\"", NULL);
        return;
    }
    if (!tok[0]) {
        api_error(s, c, 400, RC_PERR_BAD_REQUEST, "body must be {\"token\":\"...\"}", NULL);
        return;
    }
    if (!s->cfg->admission_secret[0]) {
        api_error(s, c, 503, RC_PERR_QUEUE_UNAVAILABLE, "no admission secret is configured", NULL);
        return;
    }
    rc_atoken t;
    int e = rc_atoken_verify(tok, strlen(tok), s->cfg->admission_secret,
                             strlen(s->cfg->admission_secret), rc_wall_s(), &t);
    if (e == RC_ATOKEN_BAD_SIGNATURE && s->cfg->admission_secret_previous[0])
        e = rc_atoken_verify(tok, strlen(tok), s->cfg->admission_secret_previous,
                             strlen(s->cfg->admission_secret_previous), rc_wall_s(), &t);
    char out[RC_PROTO_VERIFY_MAX];
    ssize_t n = e == RC_ATOKEN_OK
                    ? rc_proto_verified(out, sizeof(out), t.user, t.queue, t.iat, t.exp)
                    : rc_proto_not_verified(out, sizeof(out), rc_atoken_reason(e));
    json_reply(s, c, 200, out, n, NULL);
}

/* /api/queues/{q} (GET, PUT), /api/queues/{q}/complete (POST),
 * /api/queues/verify (POST). The queue operations go to the relay, which
 * answers when Redis has; meanwhile the request's buffer is marked so that
 * more bytes from the client do not start it again. */
static void api_queues(rc_shard *s, rc_conn *c, const rc_http_req *req, rc_httpbuf *hb)
{
    rc_str rest = {req->path.p + 12, req->path.n - 12};
    const char *body = hb->buf + req->head_len;
    size_t blen = req->content_length > 0 ? (size_t)req->content_length : 0;
    int op = 0;
    size_t qlen = rest.n;
    if (rc_http_str_is(req->path, "/api/queues/verify")) {
        if (!rc_http_str_is(req->method, "POST"))
            rc_http_text(s, c, 405, "use POST\n", "Allow: POST\r\n");
        else
            api_verify(s, c, body, blen);
        return;
    }
    if (rest.n > 9 && memcmp(rest.p + rest.n - 9, "/complete", 9) == 0) {
        qlen = rest.n - 9;
        if (!rc_http_str_is(req->method, "POST")) {
            rc_http_text(s, c, 405, "use POST\n", "Allow: POST\r\n");
            return;
        }
        op = RC_CALL_QUEUE_COMPLETE;
    } else if (rc_http_str_is(req->method, "GET")) {
        op = RC_CALL_QUEUE_GET;
    } else if (rc_http_str_is(req->method, "PUT")) {
        op = RC_CALL_QUEUE_PUT;
    } else {
        rc_http_text(s, c, 405, "use GET or PUT\n", "Allow: GET, PUT\r\n");
        return;
    }
    if (!rc_proto_name_valid(rest.p, qlen, RC_PROTO_MAX_QUEUE)) {
        api_error(s, c, 400, RC_PERR_BAD_REQUEST,
                  "queue ids are 1..64 characters of A-Z a-z 0-9 _ - . : @ / = +", NULL);
        return;
    }
    rc_call *k = rc_calloc(1, sizeof(*k));
    k->op = (uint8_t)op;
    k->shard = (uint16_t)s->id;
    k->conn = rc_conn_id(s, c);
    k->gen = c->gen;
    memcpy(k->queue, rest.p, qlen);
    k->body = rc_malloc(blen + 1);
    memcpy(k->body, body, blen);
    k->body[blen] = '\0';
    k->body_len = blen;
    if (rc_shard_to_relay(s, RC_Q_CALL, k, 1) < 0) {
        rc_call_free(k);
        api_error(s, c, 503, RC_PERR_OVERLOADED, "server busy: try again shortly", NULL);
        return;
    }
    hb->busy = 1;
}

/* A decimal 1..max query parameter into *out: 1, 0 when absent, -1 when
 * bad (answered 400). */
static int query_count(rc_shard *s, rc_conn *c, const rc_http_req *req, const char *name,
                       uint32_t max, uint32_t *out)
{
    char v[16];
    int n = rc_http_query_param(req->query, name, v, sizeof(v));
    if (n == -1)
        return 0;
    uint64_t l = 0;
    int ok = n > 0 && n <= 6;
    for (int i = 0; ok && i < n; i++) {
        ok = v[i] >= '0' && v[i] <= '9';
        l = l * 10 + (uint64_t)(v[i] - '0');
    }
    if (!ok || l < 1 || l > max) {
        char msg[64];
        snprintf(msg, sizeof(msg), "%s must be 1..%u", name, max);
        api_error(s, c, 400, RC_PERR_BAD_REQUEST, msg, NULL);
        return -1;
    }
    *out = (uint32_t)l;
    return 1;
}

/* GET /api/channels/{ch}/presence[?limit=N][&cursor=K] and
 * /presence-stats: answered by the relay (rc_http_on_presence). */
static void api_presence(rc_shard *s, rc_conn *c, const rc_http_req *req, rc_httpbuf *hb, rc_str ch,
                         int stats)
{
    if (!rc_config_presence(s->cfg, ch.p, ch.n)) {
        api_error(s, c, 404, RC_PERR_NO_PRESENCE, "this channel keeps no presence", NULL);
        return;
    }
    rc_presreq *q = rc_presreq_new(ch, RC_STR_NULL, RC_STR_NULL);
    q->kind = stats ? RC_PRESQ_STATS : RC_PRESQ_PAGE;
    q->via_http = 1;
    q->limit = s->cfg->presence_page_max;
    if (!stats) {
        if (query_count(s, c, req, "limit", s->cfg->presence_page_max, &q->limit) < 0) {
            rc_presreq_free(q);
            return;
        }
        int kn = rc_http_query_param(req->query, "cursor", q->cursor, sizeof(q->cursor));
        if (kn != -1 && !rc_presence_cursor_valid(q->cursor, kn > 0 ? (size_t)kn : 0)) {
            rc_presreq_free(q);
            api_error(s, c, 400, RC_PERR_BAD_REQUEST, "cursor must be one a presence answer gave",
                      NULL);
            return;
        }
        q->cursor_len = (uint8_t)(kn > 0 ? kn : 0);
    }
    q->shard = (uint16_t)s->id;
    q->conn = rc_conn_id(s, c);
    q->gen = c->gen;
    rc_shard_to_relay(s, RC_Q_PRESENCE, q, 0);
    hb->busy = 1;
}

void rc_http_on_presence(rc_shard *s, rc_presreq *q)
{
    rc_conn *c = q->conn < s->nconns ? &s->conns[q->conn] : NULL;
    if (!c || c->gen != q->gen || c->state != RC_CONN_HTTP) {
        rc_presreq_free(q);
        return;
    }
    rc_str ch = {q->chan, q->chan_len};
    if (q->error) {
        api_error(s, c, 503, RC_PERR_PRESENCE_UNAVAILABLE,
                  "presence could not be read (Redis is away): ask again shortly",
                  "Retry-After: 1\r\n");
    } else if (q->kind == RC_PRESQ_STATS) {
        char out[RC_PROTO_REPLY_MAX];
        json_reply(
            s, c, 200, out,
            rc_proto_presence_stats(out, sizeof(out), RC_STR_NULL, ch, q->connections, q->users),
            NULL);
    } else {
        size_t cap = rc_proto_presence_cap(q->members_len);
        char *out = rc_malloc(cap);
        json_reply(s, c, 200, out,
                   rc_proto_presence(out, cap, RC_STR_NULL, ch,
                                     (rc_str){q->members, q->members_len},
                                     (rc_str){q->next_cursor, q->next_cursor_len}),
                   NULL);
        free(out);
    }
    rc_presreq_free(q);
}

static int ends_with(rc_str s, const char *what, size_t wl)
{
    return s.n > wl && memcmp(s.p + s.n - wl, what, wl) == 0;
}

/* GET /api/channels/{ch}/history, /presence, /presence-stats. */
static void api_channels(rc_shard *s, rc_conn *c, const rc_http_req *req, rc_httpbuf *hb)
{
    rc_str rest = {req->path.p + 14, req->path.n - 14};
    static const char hist[] = "/history", pres[] = "/presence", stats[] = "/presence-stats";
    size_t wl;
    int kind; /* 0 history, 1 presence, 2 presence stats */
    if (ends_with(rest, hist, sizeof(hist) - 1)) {
        kind = 0, wl = sizeof(hist) - 1;
    } else if (ends_with(rest, pres, sizeof(pres) - 1)) {
        kind = 1, wl = sizeof(pres) - 1;
    } else if (ends_with(rest, stats, sizeof(stats) - 1)) {
        kind = 2, wl = sizeof(stats) - 1;
    } else {
        rc_http_text(s, c, 404,
                     "not found: /api/channels/{channel}/history, /presence or /presence-stats\n",
                     NULL);
        return;
    }
    if (!rc_http_str_is(req->method, "GET")) {
        rc_http_text(s, c, 405, "use GET\n", "Allow: GET\r\n");
        return;
    }
    rc_str ch = {rest.p, rest.n - wl};
    if (!rc_proto_name_valid(ch.p, ch.n, s->cfg->max_channel_len)) {
        api_error(s, c, 400, RC_PERR_INVALID_CHANNEL, "invalid channel name", NULL);
        return;
    }
    if (kind) {
        api_presence(s, c, req, hb, ch, kind == 2);
        return;
    }
    if (!rc_config_history(s->cfg, ch.p, ch.n)) {
        api_error(s, c, 404, RC_PERR_NO_HISTORY, "this channel keeps no history", NULL);
        return;
    }
    char v[RC_PROTO_MAX_EPOCH + 1];
    uint32_t limit = s->cfg->recovery_max;
    if (query_count(s, c, req, "limit", s->cfg->recovery_max, &limit) < 0)
        return;
    rc_histreq *q = rc_histreq_new(ch);
    q->kind = RC_HISTQ_READ;
    q->via_http = 1;
    q->limit = limit;
    char off[24];
    int on = rc_http_query_param(req->query, "since_offset", off, sizeof(off));
    int en = rc_http_query_param(req->query, "since_epoch", v, sizeof(v));
    if (on != -1 || en != -1) {
        uint64_t o = 0;
        int ok = on > 0 && on <= 16 && en > 0;
        for (int i = 0; ok && i < on; i++) {
            ok = off[i] >= '0' && off[i] <= '9';
            o = o * 10 + (uint64_t)(off[i] - '0');
        }
        if (!ok || o > 9007199254740991ull) {
            rc_histreq_free(q);
            api_error(s, c, 400, RC_PERR_BAD_SINCE,
                      "since_offset (0..9007199254740991) and since_epoch (1..64 bytes) go "
                      "together",
                      NULL);
            return;
        }
        q->has_since = 1;
        q->since = o;
        q->since_epoch_len = (uint8_t)en;
        memcpy(q->since_epoch, v, (size_t)en);
    }
    q->shard = (uint16_t)s->id;
    q->conn = rc_conn_id(s, c);
    q->gen = c->gen;
    rc_shard_to_relay(s, RC_Q_HISTORY, q, 0);
    hb->busy = 1;
}

void rc_http_on_history(rc_shard *s, rc_histreq *q)
{
    rc_conn *c = q->conn < s->nconns ? &s->conns[q->conn] : NULL;
    if (!c || c->gen != q->gen || c->state != RC_CONN_HTTP) {
        rc_histreq_free(q);
        return;
    }
    rc_str ch = {q->chan, q->chan_len};
    if (q->outcome == RC_REC_AHEAD) {
        api_error(s, c, 400, RC_PERR_BAD_SINCE, "since_offset is past the channel's last offset",
                  NULL);
    } else if (q->outcome == RC_REC_NO_HISTORY) {
        api_error(s, c, 404, RC_PERR_NO_HISTORY, "this channel keeps no history", NULL);
    } else if (q->outcome == RC_REC_UNAVAILABLE && !q->has_since) {
        api_error(s, c, 503, RC_PERR_UNAVAILABLE,
                  "the history could not be read (Redis is away): ask again shortly",
                  "Retry-After: 1\r\n");
    } else {
        rc_sub_info info = {.has_pos = q->has_history,
                            .offset = q->top,
                            .epoch = {q->epoch, q->epoch_len},
                            .recovery = q->has_since,
                            .outcome = q->outcome};
        uint32_t n = q->outcome == RC_REC_OK ? q->n : 0;
        rc_str *pubs = n ? rc_malloc(n * sizeof(*pubs)) : NULL;
        for (uint32_t i = 0; i < n; i++)
            pubs[i] = rc_msg_payload(q->msgs[i]);
        size_t cap = rc_proto_history_cap(pubs, n);
        char *out = rc_malloc(cap);
        json_reply(s, c, 200, out, rc_proto_history(out, cap, RC_STR_NULL, ch, &info, pubs, n),
                   NULL);
        free(out);
        free(pubs);
    }
    rc_histreq_free(q);
}

int rc_http_api_owns(const rc_http_req *req)
{
    return is_queues(req) || is_publish(req) || is_channels(req);
}

int rc_http_api_takes_body(const rc_http_req *req)
{
    return is_queues(req) || is_publish(req);
}

void rc_http_api_serve(rc_shard *s, rc_conn *c, const rc_http_req *req, rc_httpbuf *hb)
{
    const char *text, *extra;
    int status = rc_http_api_gate(s, req, &text, &extra);
    if (status)
        rc_http_text(s, c, status, text, extra);
    else if (is_channels(req))
        api_channels(s, c, req, hb);
    else if (is_queues(req))
        api_queues(s, c, req, hb);
    else if (req->content_length < 0)
        rc_http_text(s, c, 411, "Content-Length required\n", NULL);
    else if (rc_http_str_is(req->path, "/api/reply"))
        api_reply(s, c, req, hb->buf + req->head_len);
    else if (is_control(req))
        api_control(s, c, req, hb->buf + req->head_len);
    else
        api_publish(s, c, req, hb->buf + req->head_len);
}

void rc_http_on_calldone(rc_shard *s, rc_call *k)
{
    rc_conn *c = k->conn < s->nconns ? &s->conns[k->conn] : NULL;
    if (c && c->gen == k->gen && c->state == RC_CONN_HTTP)
        rc_http_reply(s, c, k->status, "application/json", k->reply, k->reply_len, NULL);
    rc_call_free(k);
}
