/* The JSON protocol's codec: request parsing and reply building. The parser collects
 * the members it knows in one pass and judges them afterwards in a fixed
 * order, so the id is echoed whatever member order the client used.
 *
 * Thread: any thread (pure functions; the shards and the relay call them). */
#include "proto/json.h"

#include <inttypes.h>
#include <string.h>

#include "ws/json.h"

enum {
    M_TYPE,
    M_ID,
    M_CHANNEL,
    M_EVENT,
    M_DATA,
    M_QUEUE,
    M_SINCE,
    M_LIMIT,
    M_CURSOR,
    M_TOKEN,
    M__COUNT
};
static const char *const member_names[M__COUNT] = {"type",  "id",    "channel", "event",  "data",
                                                   "queue", "since", "limit",   "cursor", "token"};

static const struct {
    const char *name;
    int op;
} ops[] = {
    {"subscribe", RC_OP_SUBSCRIBE},
    {"unsubscribe", RC_OP_UNSUBSCRIBE},
    {"publish", RC_OP_PUBLISH},
    {"ping", RC_OP_PING},
    {"queue.join", RC_OP_QJOIN},
    {"queue.leave", RC_OP_QLEAVE},
    {"history", RC_OP_HISTORY},
    {"presence", RC_OP_PRESENCE},
    {"presence_stats", RC_OP_PRESENCE_STATS},
    {"event", RC_OP_EVENT},
    {"refresh", RC_OP_REFRESH},
};

static int fail(const char **why, const char *msg, int code)
{
    *why = msg;
    return code;
}

#define MAX_SAFE_INTEGER 9007199254740991LL /* 2^53 - 1: exact in every JSON reader */

/* since: {"offset":N,"epoch":"E"} into req->since. */
static int parse_since(const rc_json_val *v, rc_proto_req *req, const char **why)
{
    rc_json_iter it;
    rc_json_val k, x, off = {RC_JSON_INVALID, RC_STR_NULL}, ep = {RC_JSON_INVALID, RC_STR_NULL};
    int n_off = 0, n_ep = 0;
    if (v->type != RC_JSON_OBJECT || rc_json_object_begin(&it, v->raw.p, v->raw.n, 2) != 0)
        return fail(why, "since must be an object {\"offset\":N,\"epoch\":\"E\"}",
                    RC_PERR_BAD_SINCE);
    while (rc_json_object_next(&it, &k, &x)) {
        if (rc_json_key_is(&k, "offset")) {
            off = x;
            n_off++;
        } else if (rc_json_key_is(&k, "epoch")) {
            ep = x;
            n_ep++;
        }
    }
    int64_t o;
    if (n_off != 1 || rc_json_int64(&off, &o) < 0 || o < 0 || o > MAX_SAFE_INTEGER)
        return fail(why, "since.offset must be an integer 0..9007199254740991", RC_PERR_BAD_SINCE);
    ssize_t en = n_ep == 1 && ep.type == RC_JSON_STRING
                     ? rc_json_string(&ep, req->since_epoch, sizeof(req->since_epoch))
                     : -1;
    if (en < 1)
        return fail(why, "since.epoch must be a string of 1..64 bytes", RC_PERR_BAD_SINCE);
    req->since.has = 1;
    req->since.offset = (uint64_t)o;
    req->since.epoch = (rc_str){req->since_epoch, (size_t)en};
    return RC_PERR_NONE;
}

/* An integer id is echoed as sent, so only its shape is checked, not its range. */
static int id_ok(const rc_json_val *v)
{
    if (v->raw.n > RC_PROTO_MAX_ID)
        return 0;
    if (v->type == RC_JSON_STRING)
        return 1;
    if (v->type != RC_JSON_NUMBER)
        return 0;
    for (size_t i = 0; i < v->raw.n; i++)
        if (v->raw.p[i] == '.' || v->raw.p[i] == 'e' || v->raw.p[i] == 'E')
            return 0;
    return 1;
}

static int parse(const char *msg, size_t len, size_t max_channel_len, rc_proto_req *req,
                 const char **why, int body)
{
    rc_json_iter it;
    rc_json_val k, v, m[M__COUNT];
    int seen[M__COUNT] = {0};

    memset(req, 0, sizeof(*req));
    memset(m, 0, sizeof(m));
    *why = "";
    if (max_channel_len > RC_PROTO_MAX_CHANNEL)
        max_channel_len = RC_PROTO_MAX_CHANNEL;

    if (rc_json_object_begin(&it, msg, len, RC_PROTO_MAX_DEPTH) != 0) {
        if (rc_json_validate(msg, len, RC_PROTO_MAX_DEPTH) == 0)
            return fail(why, "message is not a JSON object", RC_PERR_BAD_REQUEST);
        return fail(why, "invalid JSON", RC_PERR_BAD_JSON);
    }
    while (rc_json_object_next(&it, &k, &v)) {
        for (int i = 0; i < M__COUNT; i++) {
            if (rc_json_key_is(&k, member_names[i])) {
                m[i] = v;
                seen[i]++;
            }
        }
    }

    /* A publish body has no id to echo. */
    if (seen[M_ID] && !body) {
        if (seen[M_ID] > 1)
            return fail(why, "duplicate id", RC_PERR_BAD_REQUEST);
        if (!id_ok(&m[M_ID]))
            return fail(why, "id must be an integer or a short string", RC_PERR_BAD_REQUEST);
        memcpy(req->id, m[M_ID].raw.p, m[M_ID].raw.n);
        req->id[m[M_ID].raw.n] = '\0';
        req->id_len = m[M_ID].raw.n;
    }
    for (int i = 0; i < M__COUNT; i++)
        if (seen[i] > 1)
            return fail(why, "duplicate member", RC_PERR_BAD_REQUEST);

    char type[24];
    if (seen[M_TYPE]) {
        if (m[M_TYPE].type != RC_JSON_STRING)
            return fail(why, "type must be a string", RC_PERR_BAD_REQUEST);
        ssize_t n = rc_json_string(&m[M_TYPE], type, sizeof(type));
        for (size_t i = 0; n > 0 && i < RC_ARRAY_LEN(ops); i++)
            if (strcmp(type, ops[i].name) == 0)
                req->op = ops[i].op;
        if (body && req->op != RC_OP_PUBLISH)
            return fail(why, "type must be publish", RC_PERR_BAD_REQUEST);
        if (!req->op)
            return fail(why, "unknown type", RC_PERR_UNKNOWN_TYPE);
    } else if (body) {
        req->op = RC_OP_PUBLISH;
    } else {
        return fail(why, "missing type", RC_PERR_BAD_REQUEST);
    }
    if (req->op == RC_OP_PING)
        return RC_PERR_NONE;
    if (req->op == RC_OP_QJOIN || req->op == RC_OP_QLEAVE) {
        if (!seen[M_QUEUE])
            return fail(why, "missing queue", RC_PERR_BAD_REQUEST);
        ssize_t qn = -1;
        if (m[M_QUEUE].type == RC_JSON_STRING)
            qn = rc_json_string(&m[M_QUEUE], req->queue, sizeof(req->queue));
        if (qn < 0 || !rc_proto_name_valid(req->queue, (size_t)qn, RC_PROTO_MAX_QUEUE)) {
            req->queue[0] = '\0';
            return fail(why, "invalid queue name", RC_PERR_BAD_REQUEST);
        }
        req->queue_len = (size_t)qn;
        return RC_PERR_NONE;
    }

    if (req->op == RC_OP_REFRESH) {
        const rc_json_val *t = &m[M_TOKEN];
        int ok = seen[M_TOKEN] && t->type == RC_JSON_STRING && t->raw.n > 2 && t->raw.n - 2 <= 4096;
        for (size_t i = 1; ok && i + 1 < t->raw.n; i++) {
            char ch = t->raw.p[i];
            ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
                 ch == '-' || ch == '_' || ch == '.';
        }
        if (!ok)
            return fail(why, "token must be a JWT (a string of base64url parts)",
                        RC_PERR_BAD_REQUEST);
        req->token = (rc_str){t->raw.p + 1, t->raw.n - 2};
        return RC_PERR_NONE;
    }
    if (req->op == RC_OP_EVENT) {
        if (!seen[M_EVENT])
            return fail(why, "missing event", RC_PERR_BAD_REQUEST);
        if (rc_proto_event(&m[M_EVENT], req->event, &req->event_len) < 0)
            return fail(why, "invalid event name", RC_PERR_BAD_REQUEST);
        req->data = seen[M_DATA] ? m[M_DATA].raw : (rc_str){"null", 4};
        return RC_PERR_NONE;
    }
    if (!seen[M_CHANNEL])
        return fail(why, "missing channel", RC_PERR_BAD_REQUEST);
    if (m[M_CHANNEL].type != RC_JSON_STRING)
        return fail(why, "channel must be a string", RC_PERR_BAD_REQUEST);
    ssize_t cn = rc_json_string(&m[M_CHANNEL], req->channel, sizeof(req->channel));
    if (cn < 0 || !rc_proto_name_valid(req->channel, (size_t)cn, max_channel_len)) {
        req->channel[0] = '\0';
        return fail(why, "invalid channel name", RC_PERR_INVALID_CHANNEL);
    }
    req->channel_len = (size_t)cn;
    if (seen[M_SINCE] && (req->op == RC_OP_SUBSCRIBE || req->op == RC_OP_HISTORY)) {
        int e = parse_since(&m[M_SINCE], req, why);
        if (e != RC_PERR_NONE)
            return e;
    }
    if (req->op == RC_OP_HISTORY && seen[M_LIMIT]) {
        int64_t l;
        if (rc_json_int64(&m[M_LIMIT], &l) < 0 || l < 1 || l > 100000)
            return fail(why, "limit must be an integer 1..100000", RC_PERR_BAD_REQUEST);
        req->limit = (uint32_t)l;
    }
    if (req->op == RC_OP_PRESENCE && seen[M_LIMIT]) {
        int64_t l;
        if (rc_json_int64(&m[M_LIMIT], &l) < 0 || l < 1 || l > 100000)
            return fail(why, "limit must be an integer 1..100000", RC_PERR_BAD_REQUEST);
        req->limit = (uint32_t)l;
    }
    if (req->op == RC_OP_PRESENCE && seen[M_CURSOR]) {
        ssize_t kn = m[M_CURSOR].type == RC_JSON_STRING
                         ? rc_json_string(&m[M_CURSOR], req->cursor, sizeof(req->cursor))
                         : -1;
        if (kn < 1 || !rc_presence_cursor_valid(req->cursor, (size_t)kn)) {
            req->cursor[0] = '\0';
            return fail(why, "cursor must be a string a presence answer gave", RC_PERR_BAD_REQUEST);
        }
        req->cursor_len = (size_t)kn;
    }
    if (req->op != RC_OP_PUBLISH)
        return RC_PERR_NONE;

    if (rc_proto_event(seen[M_EVENT] ? &m[M_EVENT] : NULL, req->event, &req->event_len) < 0)
        return fail(why, "invalid event name", RC_PERR_BAD_REQUEST);
    if (!seen[M_DATA])
        return fail(why, "missing data", RC_PERR_BAD_REQUEST);
    req->data = m[M_DATA].raw;
    return RC_PERR_NONE;
}

int rc_proto_parse(const char *msg, size_t len, size_t max_channel_len, rc_proto_req *req,
                   const char **why)
{
    return parse(msg, len, max_channel_len, req, why, 0);
}

int rc_proto_parse_publish_body(const char *body, size_t len, size_t max_channel_len,
                                rc_proto_req *req, const char **why)
{
    return parse(body, len, max_channel_len, req, why, 1);
}

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

ssize_t rc_proto_queue_position(char *out, size_t cap, rc_str queue, int64_t position,
                                int64_t eta_s, int64_t time_ms)
{
    writer w = {out, cap, 0, 0};
    queue_head(&w, "queue.position", RC_STR_NULL, queue);
    put_lit(&w, ",\"position\":");
    put_i64(&w, position);
    put_eta(&w, eta_s);
    put_lit(&w, ",\"time\":");
    put_i64(&w, time_ms);
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
