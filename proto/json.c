/* The JSON protocol's codec, its reading half: request parsing (the
 * frames the node writes are built in proto/json_write.c). The parser
 * collects the members it knows in one pass and judges them afterwards in
 * a fixed order, so the id is echoed whatever member order the client used.
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
