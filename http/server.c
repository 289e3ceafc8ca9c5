/* The HTTP side of the listener port: every connection starts here. A
 * request to the WebSocket path with an upgrade becomes a WebSocket
 * connection; /healthz, /readyz and /metrics are answered here and the
 * API's paths in http/api.c, and the connection closed after the answer
 * (http/reply.c; Connection: close keeps this side simple).
 *
 * Thread: the shard that owns the connection. */
#include <string.h>
#include <strings.h>

#include "http/server.h"

#include "http/api.h"
#include "http/prometheus.h"
#include "http/reply.h"

#include "base/log.h"
#include "engine/relay.h"
#include "net/http.h"
#include "ops/ops.h"
#include "sio/poll.h"
#include "sio/session.h"
#include "ws/deflate.h"
#include "ws/frame.h"
#include "ws/handshake.h"

_Static_assert(RC_HTTP_LIST_LINES == 8, "the 400 reason for RC_HTTP_ELIST names 8");

/* A refused handshake: the status, a reason in the body, and a count. */
static void refuse(rc_shard *s, rc_conn *c, int outcome, int status, const char *why)
{
    char body[256];
    snprintf(body, sizeof(body), "%s\n", why);
    rc_counter_inc(&s->stats.handshakes[outcome]);
    rc_debug("shard=%d conn=%u handshake refused status=%d reason=\"%s\"", s->id, rc_conn_id(s, c),
             status, why);
    rc_http_text(s, c, status, body,
                 status == 426   ? "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                 : status == 401 ? "WWW-Authenticate: Bearer\r\n"
                                 : NULL);
}

static int outcome_of_status(int status)
{
    switch (status) {
    case 401: return RC_HS_UNAUTHORIZED;
    case 403: return RC_HS_FORBIDDEN;
    case 404: return RC_HS_NOT_FOUND;
    case 426: return RC_HS_UPGRADE_REQUIRED;
    case 431: return RC_HS_TOO_LARGE;
    case 505: return RC_HS_VERSION;
    default: return RC_HS_BAD_REQUEST;
    }
}

/* Finds the token in ?token=, Authorization: Bearer, or the subprotocol
 * offer. Returns 1 and copies it into tok, 0 when there is none, -1 when one
 * is there but unusable. */
static int find_token(const rc_http_req *req, char *tok, size_t cap, rc_str *selected)
{
    *selected = RC_STR_NULL;
    rc_str pt;
    int have_proto = rc_ws_protocol_token(&req->ws_protocol, &pt, selected);
    int q = rc_http_query_param(req->query, "token", tok, cap);
    if (q >= 0)
        return q > 0 ? 1 : -1;
    if (q == -2)
        return -1;
    if (req->authorization.p) {
        rc_str a = req->authorization;
        if (a.n > 7 && strncasecmp(a.p, "Bearer ", 7) == 0) {
            a.p += 7;
            a.n -= 7;
            while (a.n && *a.p == ' ')
                a.p++, a.n--;
            if (a.n == 0 || a.n >= cap)
                return -1;
            memcpy(tok, a.p, a.n);
            tok[a.n] = '\0';
            return 1;
        }
        return -1;
    }
    if (have_proto) {
        if (pt.n == 0 || pt.n >= cap)
            return -1;
        memcpy(tok, pt.p, pt.n);
        tok[pt.n] = '\0';
        return 1;
    }
    return 0;
}

/* permessage-deflate: 1 when the client offered it in a form we accept,
 * with our answer in pmd; counts why an offer was declined. */
static int negotiate(rc_shard *s, const rc_http_req *req, char pmd[RC_PMD_ANSWER_MAX])
{
    if (req->ws_extensions.n == 0)
        return 0;
    if (rc_pmd_negotiate(&req->ws_extensions, pmd) != RC_PMD_ACCEPTED) {
        /* Counted only when the header names the extension at all. */
        for (int i = 0; i < req->ws_extensions.n; i++) {
            rc_str l = req->ws_extensions.line[i];
            if (memmem(l.p, l.n, "permessage-deflate", 18)) {
                rc_counter_inc(&s->stats.deflate_declined[RC_PMD_DECL_OFFER]);
                break;
            }
        }
        return 0;
    }
    if (!s->cfg->permessage_deflate) {
        rc_counter_inc(&s->stats.deflate_declined[RC_PMD_DECL_OFF]);
        return 0;
    }
    if (rc_pmd_ua_broken(req->user_agent)) {
        rc_counter_inc(&s->stats.deflate_declined[RC_PMD_DECL_CLIENT]);
        return 0;
    }
    return 1;
}

/* The upgrade to WebSocket, for protocol proto. The JSON protocol's token
 * comes with the request; Socket.IO's comes later, in its CONNECT. */
static void upgrade(rc_shard *s, rc_conn *c, const rc_http_req *req, rc_httpbuf *hb, int proto)
{
    if (rc_shard_draining(s)) {
        /* Moved here, or read before this shard heard of the drain. */
        rc_counter_inc(&s->stats.handshakes[RC_HS_DRAINING]);
        rc_http_text(s, c, 503, "draining: connect to another node\n", "Retry-After: 5\r\n");
        return;
    }
    const char *why;
    int status = rc_ws_check_upgrade(req, &why);
    if (status) {
        refuse(s, c, outcome_of_status(status), status, why);
        return;
    }
    if (!rc_http_origin_ok(s, req->origin)) {
        refuse(s, c, RC_HS_FORBIDDEN, 403, "origin not allowed");
        return;
    }
    char *tok = rc_malloc(RC_JWT_MAX_LEN + 1);
    rc_str selected = RC_STR_NULL;
    int t = proto == RC_PROTO_JSON ? find_token(req, tok, RC_JWT_MAX_LEN + 1, &selected) : 0;
    rc_auth *auth = NULL;
    if (t < 0) {
        free(tok);
        refuse(s, c, RC_HS_UNAUTHORIZED, 401, "malformed token");
        return;
    }
    if (t > 0) {
        int e = rc_op_verify_token(s, tok, strlen(tok), &auth);
        free(tok);
        if (e != RC_JWT_OK) {
            refuse(s, c, RC_HS_UNAUTHORIZED, 401, rc_jwt_strerror(e));
            return;
        }
    } else {
        free(tok);
        if (proto == RC_PROTO_JSON && !s->cfg->allow_anonymous) {
            refuse(s, c, RC_HS_UNAUTHORIZED, 401, "a token is required");
            return;
        }
    }
    char accept[29], pmd[RC_PMD_ANSWER_MAX];
    if (rc_ws_accept_key(req->ws_key, accept) < 0) {
        free(auth);
        refuse(s, c, RC_HS_BAD_REQUEST, 400, "invalid Sec-WebSocket-Key");
        return;
    }
    int deflate = negotiate(s, req, pmd);
    char resp[512];
    int n = rc_ws_response_101(resp, sizeof(resp), accept, selected, deflate ? pmd : NULL);
    if (n < 0) {
        free(auth);
        refuse(s, c, RC_HS_BAD_REQUEST, 400, "subprotocol too long");
        return;
    }
    rc_conn_send(s, c, rc_obuf_raw(resp, (size_t)n));
    rc_counter_inc(&s->stats.handshakes[RC_HS_OK]);
    c->auth = auth;
    if (deflate) {
        c->deflate = 1;
        rc_counter_inc(&s->stats.deflate_negotiated);
        uint64_t pmd_open = rc_counter_get(&s->stats.deflate_conns) + 1;
        rc_counter_set(&s->stats.deflate_conns, pmd_open);
        rc_counter_set(&s->node->links[s->id].deflate_conns, pmd_open);
    }
    /* Bytes the client sent right behind its request are WebSocket frames. */
    size_t extra = hb->len - req->head_len;
    uint8_t *rest = extra ? rc_malloc(extra) : NULL;
    if (extra)
        memcpy(rest, hb->buf + req->head_len, extra);
    free(hb);
    c->sess = NULL;
    /* The protocol greets the client. */
    rc_conn_opened(s, c, proto);
    if (extra) {
        rc_conn_ws_input(s, c, rest, extra);
        free(rest);
    }
}

/* The Socket.IO path (sio/): ?EIO=4 and a transport; long-polling requests
 * go to sio/poll.c, WebSocket upgrades speak Socket.IO (with a sid: the
 * upgrade of a polling session). */
static void socketio(rc_shard *s, rc_conn *c, const rc_http_req *req, rc_httpbuf *hb)
{
    char eio[8], transport[16], sid[64];
    rc_counter_inc(&s->stats.http_requests);
    if (!rc_http_origin_ok(s, req->origin)) {
        rc_sio_refuse(s, c, req, 4);
        return;
    }
    if (rc_http_query_param(req->query, "EIO", eio, sizeof(eio)) <= 0 || strcmp(eio, "4") != 0) {
        rc_sio_refuse(s, c, req, 5);
        return;
    }
    if (rc_http_query_param(req->query, "transport", transport, sizeof(transport)) <= 0 ||
        (strcmp(transport, "websocket") != 0 && strcmp(transport, "polling") != 0)) {
        rc_sio_refuse(s, c, req, 0);
        return;
    }
    if (strcmp(transport, "polling") == 0) {
        rc_sio_poll(s, c, req, hb);
        return;
    }
    if (!(req->upgrade.n || req->ws_key.p)) {
        rc_sio_refuse(s, c, req, 3);
        return;
    }
    int r = rc_http_query_param(req->query, "sid", sid, sizeof(sid));
    if (r == 0 || r == -2) {
        rc_sio_refuse(s, c, req, 1);
        return;
    }
    if (r > 0 && rc_sio_upgrade_sid(s, c, req, sid))
        return; /* moved to its session's shard, or refused */
    upgrade(s, c, req, hb, RC_PROTO_SIO);
}

static void route(rc_shard *s, rc_conn *c, const rc_http_req *req, rc_httpbuf *hb)
{
    int get = rc_http_str_is(req->method, "GET") || rc_http_str_is(req->method, "HEAD");
    if (s->cfg->sio_on && rc_http_str_is(req->path, s->cfg->sio_path)) {
        socketio(s, c, req, hb);
        return;
    }
    if (rc_http_str_is(req->path, s->cfg->ws_path)) {
        if (req->upgrade.n || req->ws_key.p) {
            upgrade(s, c, req, hb, RC_PROTO_JSON);
            return;
        }
        rc_counter_inc(&s->stats.http_requests);
        refuse(s, c, RC_HS_UPGRADE_REQUIRED, 426,
               "this is a WebSocket endpoint: connect with a WebSocket client");
        return;
    }
    rc_counter_inc(&s->stats.http_requests);
    int draining = rc_flag_get(&s->node->draining);
    if (rc_http_str_is(req->path, "/healthz") && get) {
        rc_http_text(s, c, 200, "ok\n", NULL);
    } else if (rc_http_str_is(req->path, "/readyz") && get) {
        if (draining)
            rc_http_text(s, c, 503, "draining\n", NULL);
        else if (!rc_relay_redis_ok(s->node->relay))
            rc_http_text(s, c, 503, "redis unreachable\n", NULL);
        else
            rc_http_text(s, c, 200, "ready\n", NULL);
    } else if (rc_http_str_is(req->path, "/metrics") && get) {
        size_t len;
        char *m = rc_metrics_render(s->node, &len);
        rc_http_reply(s, c, 200, "text/plain; version=0.0.4; charset=utf-8", m, len, NULL);
        free(m);
    } else if (rc_http_api_owns(req)) {
        rc_http_api_serve(s, c, req, hb);
    } else if (rc_http_str_is(req->path, "/healthz") || rc_http_str_is(req->path, "/readyz") ||
               rc_http_str_is(req->path, "/metrics")) {
        rc_http_text(s, c, 405, "use GET\n", "Allow: GET\r\n");
    } else {
        rc_http_text(s, c, 404, "not found\n", NULL);
    }
}

/* The request's Expect list: 0 when absent, or in HTTP/1.0 (whose clients
 * never wait for 100 Continue: RFC 9110 10.1.1 says to ignore it), 1 for
 * 100-continue, -1 when it holds anything else. */
static int expectation(const rc_http_req *req)
{
    rc_http_list_iter it = {0, 0};
    rc_str m;
    int want = 0;
    if (req->minor_version != 1)
        return 0;
    while (rc_http_list_next(&req->expect, &it, &m)) {
        if (m.n != 12 || strncasecmp(m.p, "100-continue", 12) != 0)
            return -1;
        want = 1;
    }
    return want;
}

/* A client that sent "Expect: 100-continue" waits for a word before it sends
 * its body. An API request that its head already refuses gets the final
 * answer now; any other path's answer never depends on a body, so it is
 * answered now too; an API request that may go on gets "100 Continue" (an
 * interim response: the connection stays in HTTP, waiting for the body).
 * The WebSocket path takes no body: nothing is said. */
static void answer_expectation(rc_shard *s, rc_conn *c, const rc_http_req *req, rc_httpbuf *hb)
{
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    if (rc_http_str_is(req->path, s->cfg->ws_path))
        return;
    if (s->cfg->sio_on && rc_http_str_is(req->path, s->cfg->sio_path)) {
        hb->continued = 1; /* a polling POST: its body is read before it is served */
        rc_conn_send(s, c, rc_obuf_raw(cont, sizeof(cont) - 1));
        return;
    }
    if (!rc_http_api_takes_body(req)) {
        route(s, c, req, hb);
        return;
    }
    const char *text, *extra;
    int status = rc_http_api_gate(s, req, &text, &extra);
    if (status) {
        rc_counter_inc(&s->stats.http_requests);
        rc_http_text(s, c, status, text, extra);
        return;
    }
    hb->continued = 1;
    rc_conn_send(s, c, rc_obuf_raw(cont, sizeof(cont) - 1));
}

void rc_http_input(rc_shard *s, rc_conn *c, const uint8_t *data, size_t len)
{
    rc_httpbuf *hb = c->sess;
    size_t limit = (size_t)s->cfg->max_header_bytes + s->cfg->max_body_bytes;
    if (hb && hb->busy)
        return; /* a request is with the relay; one request per connection */
    if (!hb) {
        uint32_t cap = RC_MIN(s->cfg->max_header_bytes, 2048u);
        hb = rc_malloc(sizeof(*hb) + cap);
        hb->len = 0;
        hb->cap = cap;
        hb->busy = 0;
        hb->continued = 0;
        c->sess = hb;
    }
    /* Past head + body limits nothing more is kept: the parser or the
     * Content-Length check refuses the request before it would matter. */
    if (hb->len + len > limit)
        len = limit - hb->len;
    if (hb->len + len > hb->cap) {
        size_t ncap = RC_MIN(limit, RC_MAX((size_t)hb->cap * 2, hb->len + len));
        hb = rc_realloc(hb, sizeof(*hb) + ncap);
        hb->cap = (uint32_t)ncap;
        c->sess = hb;
    }
    memcpy(hb->buf + hb->len, data, len);
    hb->len += (uint32_t)len;
    rc_http_req req;
    int r = rc_http_parse(hb->buf, hb->len, s->cfg->max_header_bytes, &req);
    if (r == RC_HTTP_INCOMPLETE)
        return;
    if (r == RC_HTTP_ETOOBIG) {
        refuse(s, c, RC_HS_TOO_LARGE, 431, "request header too large");
        return;
    }
    if (r == RC_HTTP_EVERSION) {
        refuse(s, c, RC_HS_VERSION, 505, "HTTP/1.1 required");
        return;
    }
    if (r != RC_HTTP_OK) {
        refuse(s, c, RC_HS_BAD_REQUEST, 400,
               r == RC_HTTP_EDUP    ? "duplicate header"
               : r == RC_HTTP_ELIST ? "a list header (Connection, Upgrade, Expect, "
                                      "Sec-WebSocket-Protocol or -Extensions) on more "
                                      "than 8 lines"
                                    : "malformed request");
        return;
    }
    /* RFC 9112 3.2: every HTTP/1.1 request names its Host. */
    if (req.minor_version == 1 && !req.host.p) {
        refuse(s, c, RC_HS_BAD_REQUEST, 400, "missing Host");
        return;
    }
    int expect = expectation(&req);
    if (expect < 0) {
        rc_counter_inc(&s->stats.http_requests);
        rc_http_text(s, c, 417, "the only expectation served is 100-continue\n", NULL);
        return;
    }
    if (req.content_length > 0) {
        if ((uint64_t)req.content_length > s->cfg->max_body_bytes) {
            rc_counter_inc(&s->stats.http_requests);
            rc_http_text(s, c, 413, "request body too large\n", NULL);
            return;
        }
        if (hb->len < req.head_len + (size_t)req.content_length) {
            /* The rest of the body is on its way, or waits for our word. */
            if (expect > 0 && !hb->continued)
                answer_expectation(s, c, &req, hb);
            return;
        }
    }
    route(s, c, &req, hb);
}

void rc_http_timeout(rc_shard *s, rc_conn *c)
{
    rc_sio_conn *ps = rc_sio_state(s, c);
    if (ps && ps->role == RC_SIO_POLLER) {
        rc_sio_poll_timeout(s, c); /* a GET parked on its session */
        return;
    }
    rc_httpbuf *hb = c->sess;
    if (!hb || hb->len == 0) {
        /* Connected and said nothing: there is nobody to answer. */
        rc_counter_inc(&s->stats.handshakes[RC_HS_TIMEOUT]);
        rc_conn_abort(s, c);
        return;
    }
    refuse(s, c, RC_HS_TIMEOUT, 408, "request not complete in time");
}
