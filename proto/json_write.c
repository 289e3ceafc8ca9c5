/* The JSON protocol's codec, its writing half: the frames and HTTP bodies
 * the node builds (requests are read in proto/json.c). Every builder
 * writes into the caller's buffer and returns the length, or -1 when it
 * does not fit.
 *
 * Thread: any thread (pure functions; the shards and the relay call them). */
#include "proto/json.h"

#include <inttypes.h>
#include <string.h>

#include "ws/json.h"

/* Builders write through this; once something does not fit, the rest is
 * skipped and the result is -1, so no caller ever sees a truncated object. */
typedef struct writer {
    char *out;
    size_t cap, n;
    int full;
} writer;

static void put(writer *w, const char *s, size_t n)
{
    if (w->full || w->cap - w->n < n) {
        w->full = 1;
        return;
    }
    if (n) /* s may be NULL then (an empty list of members) */
        memcpy(w->out + w->n, s, n);
    w->n += n;
}

static void put_lit(writer *w, const char *s)
{
    put(w, s, strlen(s));
}

static void put_esc(writer *w, const char *s, size_t n)
{
    if (w->full)
        return;
    ssize_t r = rc_json_escape(w->out + w->n, w->cap - w->n, s, n);
    if (r < 0)
        w->full = 1;
    else
        w->n += (size_t)r;
}

static void put_u64(writer *w, uint64_t v)
{
    char b[24];
    int n = snprintf(b, sizeof(b), "%" PRIu64, v);
    put(w, b, (size_t)n);
}

static void put_i64(writer *w, int64_t v)
{
    char b[24];
    int n = snprintf(b, sizeof(b), "%" PRId64, v);
    put(w, b, (size_t)n);
}

static void put_id(writer *w, rc_str id)
{
    if (id.n) {
        put_lit(w, ",\"id\":");
        put(w, id.p, id.n);
    }
}

static ssize_t finish(const writer *w)
{
    return w->full ? -1 : (ssize_t)w->n;
}

ssize_t rc_proto_reply(char *out, size_t cap, const char *type, rc_str id, rc_str channel,
                       int64_t seq)
{
    writer w = {out, cap, 0, 0};
    put_lit(&w, "{\"type\":");
    put_esc(&w, type, strlen(type));
    put_id(&w, id);
    if (channel.n) {
        put_lit(&w, ",\"channel\":");
        put_esc(&w, channel.p, channel.n);
    }
    if (seq >= 0) {
        put_lit(&w, ",\"seq\":");
        put_i64(&w, seq);
    }
    put_lit(&w, "}");
    return finish(&w);
}

ssize_t rc_proto_pong(char *out, size_t cap, rc_str id, int64_t time_ms)
{
    writer w = {out, cap, 0, 0};
    put_lit(&w, "{\"type\":\"pong\"");
    put_id(&w, id);
    put_lit(&w, ",\"time\":");
    put_i64(&w, time_ms);
    put_lit(&w, "}");
    return finish(&w);
}

ssize_t rc_proto_error(char *out, size_t cap, rc_str id, int code, const char *message,
                       rc_str channel)
{
    writer w = {out, cap, 0, 0};
    put_lit(&w, "{\"type\":\"error\"");
    put_id(&w, id);
    put_lit(&w, ",\"code\":");
    const char *name = rc_proto_errname(code);
    put_esc(&w, name, strlen(name));
    if (message) {
        put_lit(&w, ",\"message\":");
        put_esc(&w, message, strlen(message));
    }
    if (channel.n) {
        put_lit(&w, ",\"channel\":");
        put_esc(&w, channel.p, channel.n);
    }
    put_lit(&w, "}");
    return finish(&w);
}

static const char default_event[] = "message";

ssize_t rc_proto_message(char *out, size_t cap, rc_str channel, rc_str event, uint64_t seq,
                         rc_str data)
{
    rc_proto_pub p = {.channel = channel, .event = event, .data = data, .seq = seq};
    return rc_proto_publication(out, cap, &p);
}

ssize_t rc_proto_publication(char *out, size_t cap, const rc_proto_pub *p)
{
    writer w = {out, cap, 0, 0};
    put_lit(&w, "{\"type\":\"message\"");
    if (p->channel.n) {
        put_lit(&w, ",\"channel\":");
        put_esc(&w, p->channel.p, p->channel.n);
    }
    put_lit(&w, ",\"event\":");
    if (p->event.n)
        put_esc(&w, p->event.p, p->event.n);
    else
        put_esc(&w, default_event, sizeof(default_event) - 1);
    put_lit(&w, ",\"seq\":");
    put_u64(&w, p->seq);
    if (p->has_pos) {
        put_lit(&w, ",\"offset\":");
        put_u64(&w, p->offset);
        put_lit(&w, ",\"epoch\":");
        put_esc(&w, p->epoch.p, p->epoch.n);
    }
    if (p->from == RC_FROM_CLIENT) {
        put_lit(&w, ",\"from\":{\"user\":");
        if (p->from_user.n)
            put_esc(&w, p->from_user.p, p->from_user.n);
        else
            put_lit(&w, "null");
        put_lit(&w, ",\"conn\":\"");
        put_u64(&w, p->from_conn);
        put_lit(&w, "\"}");
    } else if (p->from == RC_FROM_BACKEND) {
        put_lit(&w, ",\"from\":{\"backend\":true}");
    }
    if (p->args)
        put_lit(&w, ",\"args\":true");
    put_lit(&w, ",\"data\":");
    if (p->data.n)
        put(&w, p->data.p, p->data.n);
    else
        put_lit(&w, "null");
    put_lit(&w, "}");
    return finish(&w);
}

static void put_position(writer *w, const rc_sub_info *info)
{
    if (info->has_pos) {
        put_lit(w, ",\"offset\":");
        put_u64(w, info->offset);
        put_lit(w, ",\"epoch\":");
        put_esc(w, info->epoch.p, info->epoch.n);
    }
    if (info->recovery) {
        int ok = info->outcome == RC_REC_OK;
        put_lit(w, ok ? ",\"recovered\":true" : ",\"recovered\":false,\"reason\":");
        if (!ok) {
            const char *r = rc_recovery_name(info->outcome);
            put_esc(w, r, strlen(r));
        }
    }
}

ssize_t rc_proto_subscribed(char *out, size_t cap, rc_str id, rc_str channel, uint64_t seq,
                            const rc_sub_info *info)
{
    writer w = {out, cap, 0, 0};
    put_lit(&w, "{\"type\":\"subscribed\"");
    put_id(&w, id);
    put_lit(&w, ",\"channel\":");
    put_esc(&w, channel.p, channel.n);
    put_lit(&w, ",\"seq\":");
    put_u64(&w, seq);
    if (info) {
        put_position(&w, info);
        if (info->recovery && info->outcome == RC_REC_OK) {
            put_lit(&w, ",\"missed\":");
            put_u64(&w, info->missed);
        }
    }
    put_lit(&w, "}");
    return finish(&w);
}

size_t rc_proto_history_cap(const rc_str *pubs, uint32_t n)
{
    size_t cap = RC_PROTO_REPLY_MAX + 64;
    for (uint32_t i = 0; i < n; i++)
        cap += pubs[i].n + 1;
    return cap;
}

ssize_t rc_proto_history(char *out, size_t cap, rc_str id, rc_str channel, const rc_sub_info *info,
                         const rc_str *pubs, uint32_t n)
{
    writer w = {out, cap, 0, 0};
    put_lit(&w, "{\"type\":\"history\"");
    put_id(&w, id);
    put_lit(&w, ",\"channel\":");
    put_esc(&w, channel.p, channel.n);
    put_position(&w, info);
    put_lit(&w, ",\"publications\":[");
    for (uint32_t i = 0; i < n; i++) {
        if (i)
            put_lit(&w, ",");
        put(&w, pubs[i].p, pubs[i].n);
    }
    put_lit(&w, "]}");
    return finish(&w);
}

ssize_t rc_proto_refresh_due(char *out, size_t cap, int64_t seconds)
{
    writer w = {out, cap, 0, 0};
    put_lit(&w, "{\"type\":\"refresh\",\"expires_in\":");
    put_u64(&w, seconds > 0 ? (uint64_t)seconds : 0);
    put_lit(&w, "}");
    return finish(&w);
}

ssize_t rc_proto_refreshed(char *out, size_t cap, rc_str id, int64_t exp)
{
    writer w = {out, cap, 0, 0};
    put_lit(&w, "{\"type\":\"refreshed\"");
    put_id(&w, id);
    put_lit(&w, ",\"exp\":");
    if (exp > 0)
        put_u64(&w, (uint64_t)exp);
    else
        put_lit(&w, "null");
    put_lit(&w, "}");
    return finish(&w);
}

ssize_t rc_proto_event_ack(char *out, size_t cap, rc_str id, rc_str entry)
{
    writer w = {out, cap, 0, 0};
    put_lit(&w, "{\"type\":\"event_ack\"");
    put_id(&w, id);
    put_lit(&w, ",\"entry\":");
    put_esc(&w, entry.p, entry.n);
    put_lit(&w, "}");
    return finish(&w);
}

size_t rc_proto_reply_cap(rc_str id, rc_str body)
{
    return 64 + id.n + body.n;
}

ssize_t rc_proto_backend_reply(char *out, size_t cap, rc_str id, rc_str data, rc_str error)
{
    writer w = {out, cap, 0, 0};
    put_lit(&w, "{\"type\":\"reply\"");
    put_id(&w, id);
    if (error.n) {
        put_lit(&w, ",\"error\":");
        put(&w, error.p, error.n);
    } else {
        put_lit(&w, ",\"data\":");
        put(&w, data.p, data.n);
    }
    put_lit(&w, "}");
    return finish(&w);
}

size_t rc_proto_presence_cap(size_t members_len)
{
    return RC_PROTO_REPLY_MAX + RC_JSON_ESCAPED_MAX(RC_PROTO_MAX_CURSOR) + members_len + 64;
}

ssize_t rc_proto_presence(char *out, size_t cap, rc_str id, rc_str channel, rc_str members,
                          rc_str cursor)
{
    writer w = {out, cap, 0, 0};
    put_lit(&w, "{\"type\":\"presence\"");
    put_id(&w, id);
    put_lit(&w, ",\"channel\":");
    put_esc(&w, channel.p, channel.n);
    put_lit(&w, ",\"members\":[");
    put(&w, members.p, members.n);
    put_lit(&w, "]");
    if (cursor.n) {
        put_lit(&w, ",\"cursor\":");
        put_esc(&w, cursor.p, cursor.n);
    }
    put_lit(&w, "}");
    return finish(&w);
}

ssize_t rc_proto_presence_stats(char *out, size_t cap, rc_str id, rc_str channel,
                                uint64_t connections, uint64_t users)
{
    writer w = {out, cap, 0, 0};
    put_lit(&w, "{\"type\":\"presence_stats\"");
    put_id(&w, id);
    put_lit(&w, ",\"channel\":");
    put_esc(&w, channel.p, channel.n);
    put_lit(&w, ",\"connections\":");
    put_u64(&w, connections);
    put_lit(&w, ",\"users\":");
    put_u64(&w, users);
    put_lit(&w, "}");
    return finish(&w);
}

ssize_t rc_proto_member(char *out, size_t cap, rc_str user, uint64_t conn, rc_str node, rc_str info)
{
    writer w = {out, cap, 0, 0};
    put_lit(&w, "{\"user\":");
    if (user.n)
        put_esc(&w, user.p, user.n);
    else
        put_lit(&w, "null");
    put_lit(&w, ",\"conn\":\"");
    put_u64(&w, conn);
    put_lit(&w, "\",\"node\":");
    put_esc(&w, node.p, node.n);
    if (info.n) {
        put_lit(&w, ",\"info\":");
        put(&w, info.p, info.n);
    }
    put_lit(&w, "}");
    return finish(&w);
}

ssize_t rc_proto_presence_event(char *out, size_t cap, int join, rc_str channel, rc_str member)
{
    writer w = {out, cap, 0, 0};
    put_lit(&w, join ? "{\"type\":\"join\",\"channel\":" : "{\"type\":\"leave\",\"channel\":");
    put_esc(&w, channel.p, channel.n);
    put_lit(&w, ",\"member\":");
    put(&w, member.p, member.n);
    put_lit(&w, "}");
    return finish(&w);
}

/* Mirrors rc_json_escape's output length. */
static size_t escaped_len(const char *s, size_t n)
{
    size_t len = 2;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t')
            len += 2;
        else if (c < 0x20)
            len += 6;
        else
            len += 1;
    }
    return len;
}

static size_t u64_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 10) {
        v /= 10;
        n++;
    }
    return n;
}

size_t rc_proto_message_len(rc_str channel, rc_str event, uint64_t seq, rc_str data)
{
    rc_proto_pub p = {.channel = channel, .event = event, .data = data, .seq = seq};
    return rc_proto_publication_len(&p);
}

size_t rc_proto_publication_len(const rc_proto_pub *p)
{
    size_t n = sizeof("{\"type\":\"message\"") - 1;
    if (p->channel.n)
        n += sizeof(",\"channel\":") - 1 + escaped_len(p->channel.p, p->channel.n);
    n += sizeof(",\"event\":") - 1;
    n += p->event.n ? escaped_len(p->event.p, p->event.n) : escaped_len(default_event, 7);
    n += sizeof(",\"seq\":") - 1 + u64_len(p->seq);
    if (p->has_pos)
        n += sizeof(",\"offset\":") - 1 + u64_len(p->offset) + sizeof(",\"epoch\":") - 1 +
             escaped_len(p->epoch.p, p->epoch.n);
    if (p->from == RC_FROM_CLIENT)
        n += sizeof(",\"from\":{\"user\":") - 1 +
             (p->from_user.n ? escaped_len(p->from_user.p, p->from_user.n) : 4) +
             sizeof(",\"conn\":\"\"}") - 1 + u64_len(p->from_conn);
    else if (p->from == RC_FROM_BACKEND)
        n += sizeof(",\"from\":{\"backend\":true}") - 1;
    if (p->args)
        n += sizeof(",\"args\":true") - 1;
    n += sizeof(",\"data\":") - 1 + (p->data.n ? p->data.n : 4);
    return n + 1;
}

ssize_t rc_proto_welcome(char *out, size_t cap, const char *node, int shard, uint64_t conn_id,
                         const char *user, uint32_t ping_interval_ms, uint32_t max_message_bytes)
{
    writer w = {out, cap, 0, 0};
    put_lit(&w, "{\"type\":\"welcome\",\"node\":");
    put_esc(&w, node, strlen(node));
    put_lit(&w, ",\"shard\":");
    put_i64(&w, shard);
    /* A string, because a 64-bit id is beyond the integers JavaScript keeps exact. */
    put_lit(&w, ",\"conn\":\"");
    put_u64(&w, conn_id);
    put_lit(&w, "\",\"user\":");
    if (user)
        put_esc(&w, user, strlen(user));
    else
        put_lit(&w, "null");
    put_lit(&w, ",\"ping_interval\":");
    put_u64(&w, ping_interval_ms);
    put_lit(&w, ",\"max_message_bytes\":");
    put_u64(&w, max_message_bytes);
    put_lit(&w, "}");
    return finish(&w);
}

/* ---- waiting rooms -------------------------------------------------------- */

/* {"type":TYPE[,"id":ID],"queue":Q  — the start of every queue message. */
static void queue_head(writer *w, const char *type, rc_str id, rc_str queue)
{
    put_lit(w, "{\"type\":\"");
    put_lit(w, type);
    put_lit(w, "\"");
    put_id(w, id);
    put_lit(w, ",\"queue\":");
    put_esc(w, queue.p, queue.n);
}

static void put_eta(writer *w, int64_t eta_s)
{
    put_lit(w, ",\"eta\":");
    if (eta_s < 0)
        put_lit(w, "null");
    else
        put_i64(w, eta_s);
}

ssize_t rc_proto_queue_joined(char *out, size_t cap, rc_str id, rc_str queue, int64_t ticket,
                              int64_t position, int64_t eta_s)
{
    writer w = {out, cap, 0, 0};
    queue_head(&w, "queue.joined", id, queue);
    put_lit(&w, ",\"ticket\":");
    put_i64(&w, ticket);
    put_lit(&w, ",\"position\":");
    put_i64(&w, position);
    put_eta(&w, eta_s);
    put_lit(&w, "}");
    return finish(&w);
}

ssize_t rc_proto_queue_tick(char *out, size_t cap, rc_str queue, const rc_queue_tick *t)
{
    writer w = {out, cap, 0, 0};
    queue_head(&w, "queue.tick", RC_STR_NULL, queue);
    put_lit(&w, ",\"head\":");
    put_i64(&w, t->head);
    put_lit(&w, ",\"ewma\":");
    put(&w, t->ewma.p, t->ewma.n);
    put_lit(&w, ",\"tick\":");
    put_u64(&w, t->tick_ms);
    put_lit(&w, t->paused ? ",\"paused\":true" : ",\"paused\":false");
    put_lit(&w, ",\"time\":");
    put_i64(&w, t->time_ms);
    put_lit(&w, "}");
    return finish(&w);
}

ssize_t rc_proto_admitted(char *out, size_t cap, rc_str id, rc_str queue, rc_str token,
                          int64_t expires_ms)
{
    writer w = {out, cap, 0, 0};
    queue_head(&w, "admitted", id, queue);
    put_lit(&w, ",\"token\":");
    put_esc(&w, token.p, token.n);
    put_lit(&w, ",\"expires\":");
    put_i64(&w, expires_ms);
    put_lit(&w, "}");
    return finish(&w);
}

ssize_t rc_proto_queue_left(char *out, size_t cap, rc_str id, rc_str queue)
{
    writer w = {out, cap, 0, 0};
    queue_head(&w, "queue.left", id, queue);
    put_lit(&w, "}");
    return finish(&w);
}

ssize_t rc_proto_queue_gone(char *out, size_t cap, rc_str queue, const char *reason)
{
    writer w = {out, cap, 0, 0};
    queue_head(&w, "queue.left", RC_STR_NULL, queue);
    put_lit(&w, ",\"reason\":");
    put_esc(&w, reason, strlen(reason));
    put_lit(&w, "}");
    return finish(&w);
}

/* ---- the HTTP API's answers ------------------------------------------------ */

static void put_member(writer *w, const char *name, const char *v)
{
    put_lit(w, name);
    put_esc(w, v, strlen(v));
}

ssize_t rc_proto_verified(char *out, size_t cap, const char *user, const char *queue, int64_t iat_s,
                          int64_t exp_s)
{
    writer w = {out, cap, 0, 0};
    put_member(&w, "{\"valid\":true,\"user\":", user);
    put_member(&w, ",\"queue\":", queue);
    put_lit(&w, ",\"iat\":");
    put_i64(&w, iat_s);
    put_lit(&w, ",\"exp\":");
    put_i64(&w, exp_s);
    put_lit(&w, "}");
    return finish(&w);
}

ssize_t rc_proto_not_verified(char *out, size_t cap, const char *reason)
{
    writer w = {out, cap, 0, 0};
    put_member(&w, "{\"valid\":false,\"reason\":", reason);
    put_lit(&w, "}");
    return finish(&w);
}

ssize_t rc_proto_completed(char *out, size_t cap, const char *queue, const char *user, int freed)
{
    writer w = {out, cap, 0, 0};
    put_member(&w, "{\"queue\":", queue);
    put_member(&w, ",\"user\":", user);
    put_lit(&w, freed ? ",\"freed\":true}" : ",\"freed\":false}");
    return finish(&w);
}
