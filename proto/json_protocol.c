/* The JSON protocol module: a client's JSON text messages become operations
 * (ops/ops.h), and the operations' results become JSON text frames, built
 * by the codec in proto/json.c into buffers sized for the worst case.
 *
 * Thread: the shard that owns the connection. */
#include "proto/json_protocol.h"

#include "base/log.h"
#include "ops/ops.h"
#include "proto/json.h"
#include "ws/frame.h"

/* A reply that a builder could not write: a bug (the buffers are sized for
 * the worst case), but the client is still answered, not left waiting. */
static void reply_failed(rc_shard *s, rc_conn *c, rc_str id)
{
    rc_warn("shard=%d conn=%u a reply did not fit its buffer (answered \"internal\")", s->id,
            rc_conn_id(s, c));
    rc_counter_inc(&s->stats.proto_errors[RC_PERR_INTERNAL]);
    char buf[RC_PROTO_MAX_ID + 64];
    ssize_t n = rc_proto_error(buf, sizeof(buf), id, RC_PERR_INTERNAL, NULL, RC_STR_NULL);
    rc_assert(n > 0); /* an id of at most RC_PROTO_MAX_ID bytes always fits */
    rc_conn_send_text(s, c, buf, (size_t)n);
}

/* Sends what a builder wrote (len > 0), or "internal" with id when it
 * could not, so that no reply is ever dropped silently. */
static void send_json(rc_shard *s, rc_conn *c, rc_str id, const char *json, ssize_t len)
{
    if (len > 0)
        rc_conn_send_text(s, c, json, (size_t)len);
    else
        reply_failed(s, c, id);
}

/* ---- results ------------------------------------------------------------- */

static void on_error(rc_shard *s, rc_conn *c, rc_str id, int code, const char *msg, rc_str ch)
{
    char buf[RC_PROTO_REPLY_MAX];
    send_json(s, c, id, buf, rc_proto_error(buf, sizeof(buf), id, code, msg, ch));
}

static void reply(rc_shard *s, rc_conn *c, const char *type, rc_str id, rc_str ch, int64_t seq)
{
    char buf[RC_PROTO_REPLY_MAX];
    send_json(s, c, id, buf, rc_proto_reply(buf, sizeof(buf), type, id, ch, seq));
}

static void on_subscribed(rc_shard *s, rc_conn *c, rc_str id, rc_str ch, uint64_t seq,
                          const rc_sub_info *info)
{
    if (!info) {
        reply(s, c, "subscribed", id, ch, (int64_t)seq);
        return;
    }
    char buf[RC_PROTO_REPLY_MAX];
    send_json(s, c, id, buf, rc_proto_subscribed(buf, sizeof(buf), id, ch, seq, info));
}

static void on_history(rc_shard *s, rc_conn *c, rc_str id, rc_str ch, const rc_sub_info *info,
                       rc_msg *const *msgs, uint32_t n)
{
    rc_str *pubs = n ? rc_malloc(n * sizeof(*pubs)) : NULL;
    for (uint32_t i = 0; i < n; i++)
        pubs[i] = rc_msg_payload(msgs[i]);
    size_t cap = rc_proto_history_cap(pubs, n);
    char *buf = rc_malloc(cap);
    send_json(s, c, id, buf, rc_proto_history(buf, cap, id, ch, info, pubs, n));
    free(buf);
    free(pubs);
}

static void on_presence(rc_shard *s, rc_conn *c, rc_str id, rc_str ch, rc_str members, uint32_t n,
                        rc_str cursor)
{
    size_t cap = rc_proto_presence_cap(members.n);
    char *buf = rc_malloc(cap);
    send_json(s, c, id, buf, rc_proto_presence(buf, cap, id, ch, members, cursor));
    free(buf);
}

static void on_presence_stats(rc_shard *s, rc_conn *c, rc_str id, rc_str ch, uint64_t conns,
                              uint64_t users)
{
    char buf[RC_PROTO_REPLY_MAX];
    send_json(s, c, id, buf, rc_proto_presence_stats(buf, sizeof(buf), id, ch, conns, users));
}

static void on_refresh_due(rc_shard *s, rc_conn *c, int64_t seconds)
{
    char buf[RC_PROTO_REPLY_MAX];
    send_json(s, c, RC_STR_NULL, buf, rc_proto_refresh_due(buf, sizeof(buf), seconds));
}

static void on_refreshed(rc_shard *s, rc_conn *c, rc_str id, int64_t exp)
{
    char buf[RC_PROTO_REPLY_MAX];
    send_json(s, c, id, buf, rc_proto_refreshed(buf, sizeof(buf), id, exp));
}

static void on_event_acked(rc_shard *s, rc_conn *c, rc_str id, rc_str entry)
{
    char buf[RC_PROTO_REPLY_MAX];
    send_json(s, c, id, buf, rc_proto_event_ack(buf, sizeof(buf), id, entry));
}

static void on_unsubscribed(rc_shard *s, rc_conn *c, rc_str id, rc_str ch)
{
    reply(s, c, "unsubscribed", id, ch, -1);
}

static void on_published(rc_shard *s, rc_conn *c, rc_str id, rc_str ch)
{
    /* Acknowledged only when the client gave an id to match the reply
     * with; without one a publish is fire and forget (errors still come
     * back), which spares a frame per message for high-rate publishers. */
    if (id.n)
        reply(s, c, "published", id, ch, -1);
}

static void on_queue_joined(rc_shard *s, rc_conn *c, rc_str id, rc_str q, int64_t ticket,
                            int64_t pos, int64_t eta_s)
{
    char out[RC_PROTO_QUEUE_MAX];
    send_json(s, c, id, out, rc_proto_queue_joined(out, sizeof(out), id, q, ticket, pos, eta_s));
}

static rc_obuf *on_queue_tick(rc_shard *s, rc_str q, const rc_queue_tick *t)
{
    char out[RC_PROTO_QUEUE_MAX];
    ssize_t n = rc_proto_queue_tick(out, sizeof(out), q, t);
    if (n < 0) {
        rc_warn("shard=%d a queue.tick did not fit its buffer (not sent)", s->id);
        return NULL;
    }
    /* A tick is never dropped by the backlog policy, as replies are not:
     * a waiter that misses one would show a stale place until the next. */
    rc_obuf *b = rc_obuf_frame(RC_OBUF_REPLY, RC_WS_OP_TEXT, out, (size_t)n);
    b->refs = 0;
    return b;
}

static void on_queue_admitted(rc_shard *s, rc_conn *c, rc_str id, rc_str q, rc_str token,
                              int64_t expires_ms)
{
    char out[RC_PROTO_QUEUE_MAX + RC_JSON_ESCAPED_MAX(RC_PROTO_MAX_TOKEN)];
    rc_assert(token.n <= RC_PROTO_MAX_TOKEN);
    send_json(s, c, id, out, rc_proto_admitted(out, sizeof(out), id, q, token, expires_ms));
}

static void on_queue_left(rc_shard *s, rc_conn *c, rc_str id, rc_str q)
{
    char out[RC_PROTO_QUEUE_MAX];
    send_json(s, c, id, out, rc_proto_queue_left(out, sizeof(out), id, q));
}

static void on_queue_gone(rc_shard *s, rc_conn *c, rc_str q, const char *reason)
{
    char out[RC_PROTO_QUEUE_MAX];
    send_json(s, c, RC_STR_NULL, out, rc_proto_queue_gone(out, sizeof(out), q, reason));
}

/* ---- the connection -------------------------------------------------------- */

static void on_opened(rc_shard *s, rc_conn *c)
{
    char w[RC_PROTO_WELCOME_MAX];
    ssize_t wl = rc_proto_welcome(w, sizeof(w), s->cfg->node_id, s->id,
                                  ((uint64_t)s->id << 32) | rc_conn_id(s, c),
                                  c->auth ? rc_auth_user(c->auth) : NULL, s->cfg->ping_interval_ms,
                                  s->cfg->max_message_bytes);
    send_json(s, c, RC_STR_NULL, w, wl);
    rc_op_opened(s, c);
}

static void on_message(rc_shard *s, rc_conn *c, const uint8_t *msg, size_t len, int binary,
                       int allowed)
{
    if (binary) {
        rc_conn_error(s, c, RC_STR_NULL, RC_PERR_BINARY,
                      "binary messages are not part of the protocol: send JSON text", RC_STR_NULL);
        return;
    }
    rc_proto_req req;
    const char *why = "bad request";
    int e = rc_proto_parse((const char *)msg, len, s->cfg->max_channel_len, &req, &why);
    rc_str id = {req.id, e == RC_PERR_BAD_JSON ? 0 : req.id_len};
    if (!allowed) {
        /* Parsed anyway, so the client learns which request was dropped. */
        rc_conn_error(s, c, id, RC_PERR_RATE_LIMITED,
                      "message rate limit exceeded: request dropped", RC_STR_NULL);
        return;
    }
    if (e != RC_PERR_NONE) {
        rc_str ch = RC_STR_NULL;
        if (e != RC_PERR_BAD_JSON && e != RC_PERR_INVALID_CHANNEL)
            ch = (rc_str){req.channel, req.channel_len};
        rc_conn_error(s, c, id, e, why, ch);
        return;
    }
    rc_str ch = {req.channel, req.channel_len}, q = {req.queue, req.queue_len};
    switch (req.op) {
    case RC_OP_SUBSCRIBE: rc_op_subscribe(s, c, id, ch, &req.since); break;
    case RC_OP_HISTORY: rc_op_history(s, c, id, ch, req.limit, &req.since); break;
    case RC_OP_PRESENCE:
        rc_op_presence(s, c, id, ch, req.limit, (rc_str){req.cursor, req.cursor_len});
        break;
    case RC_OP_PRESENCE_STATS: rc_op_presence_stats(s, c, id, ch); break;
    case RC_OP_REFRESH: rc_op_refresh(s, c, id, req.token); break;
    case RC_OP_EVENT: rc_op_event(s, c, id, (rc_str){req.event, req.event_len}, req.data); break;
    case RC_OP_UNSUBSCRIBE: rc_op_unsubscribe(s, c, id, ch); break;
    case RC_OP_PUBLISH:
        rc_op_publish(s, c, id, ch, (rc_str){req.event, req.event_len}, req.data);
        break;
    case RC_OP_QJOIN: rc_op_queue_join(s, c, id, q); break;
    case RC_OP_QLEAVE: rc_op_queue_leave(s, c, id, q); break;
    case RC_OP_PING: {
        char buf[RC_PROTO_REPLY_MAX];
        send_json(s, c, id, buf, rc_proto_pong(buf, sizeof(buf), id, rc_wall_ms()));
        break;
    }
    default: rc_conn_error(s, c, id, RC_PERR_UNKNOWN_TYPE, "unknown type", RC_STR_NULL);
    }
}

const rc_protocol rc_json_protocol = {
    .name = "json",
    .opened = on_opened,
    .message = on_message,
    .closed = rc_op_end,
    .error = on_error,
    .subscribed = on_subscribed,
    .history = on_history,
    .presence = on_presence,
    .presence_stats = on_presence_stats,
    .refresh_due = on_refresh_due,
    .refreshed = on_refreshed,
    .event_acked = on_event_acked,
    .unsubscribed = on_unsubscribed,
    .published = on_published,
    .queue_joined = on_queue_joined,
    .queue_tick = on_queue_tick,
    .queue_admitted = on_queue_admitted,
    .queue_left = on_queue_left,
    .queue_gone = on_queue_gone,
};
