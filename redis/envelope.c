/* The Redis envelope: see redis/envelope.h.
 *
 * Thread: any thread (pure functions; the relay calls them). */
#include "redis/envelope.h"

#include <stdio.h>
#include <string.h>

#include "ws/json.h"

static int fail(const char **why, const char *msg, int code)
{
    *why = msg;
    return code;
}

/* {"user":U|null,"conn":"DIGITS"}: a client's publication. */
static int parse_from(const rc_json_val *v, rc_envelope *env)
{
    rc_json_iter it;
    rc_json_val k, x, user = {RC_JSON_INVALID, RC_STR_NULL}, conn = {RC_JSON_INVALID, RC_STR_NULL};
    if (v->type != RC_JSON_OBJECT || rc_json_object_begin(&it, v->raw.p, v->raw.n, 2) != 0)
        return -1;
    while (rc_json_object_next(&it, &k, &x)) {
        if (rc_json_key_is(&k, "user"))
            user = x;
        else if (rc_json_key_is(&k, "conn"))
            conn = x;
    }
    if (user.type == RC_JSON_STRING) {
        ssize_t n = rc_json_string(&user, env->from_user, sizeof(env->from_user));
        if (n <= 0)
            return -1;
        env->from_user_len = (size_t)n;
    } else if (user.type != RC_JSON_NULL) {
        return -1;
    }
    char digits[24];
    ssize_t dn = conn.type == RC_JSON_STRING ? rc_json_string(&conn, digits, sizeof(digits)) : -1;
    if (dn < 1 || dn > 20)
        return -1;
    uint64_t id = 0;
    for (ssize_t i = 0; i < dn; i++) {
        if (digits[i] < '0' || digits[i] > '9' || id > (UINT64_MAX - 9) / 10)
            return -1;
        id = id * 10 + (uint64_t)(digits[i] - '0');
    }
    env->from_conn = id;
    env->from = RC_FROM_CLIENT;
    return 0;
}

int rc_envelope_parse(const char *payload, size_t len, rc_envelope *env, const char **why)
{
    enum {
        E_NODE,
        E_EVENT,
        E_DATA,
        E_DROPPED,
        E_FROM,
        E_OFFSET,
        E_EPOCH,
        E_FENCE,
        E_JOIN,
        E_LEAVE,
        E_ARGS,
        E__COUNT
    };
    static const char *const names[E__COUNT] = {"node", "event",  "data",  "dropped",
                                                "from", "offset", "epoch", "fence",
                                                "join", "leave",  "args"};
    rc_json_iter it;
    rc_json_val k, v, m[E__COUNT];
    int seen[E__COUNT] = {0};

    memset(env, 0, sizeof(*env));
    if (rc_json_object_begin(&it, payload, len, RC_PROTO_MAX_DEPTH) != 0)
        return fail(why, "not a JSON object", RC_PERR_BAD_JSON);
    while (rc_json_object_next(&it, &k, &v)) {
        for (int i = 0; i < E__COUNT; i++) {
            if (rc_json_key_is(&k, names[i])) {
                m[i] = v;
                seen[i]++;
            }
        }
    }
    for (int i = 0; i < E__COUNT; i++)
        if (seen[i] > 1)
            return fail(why, "duplicate member", RC_PERR_BAD_REQUEST);
    if (seen[E_NODE]) {
        ssize_t n = -1;
        if (m[E_NODE].type == RC_JSON_STRING)
            n = rc_json_string(&m[E_NODE], env->node, sizeof(env->node));
        if (n < 0)
            return fail(why, "node must be a string of at most 63 bytes", RC_PERR_BAD_REQUEST);
        env->node_len = (size_t)n;
    }
    if (rc_proto_event(seen[E_EVENT] ? &m[E_EVENT] : NULL, env->event, &env->event_len) < 0)
        return fail(why, "invalid event name", RC_PERR_BAD_REQUEST);
    if (seen[E_OFFSET] || seen[E_EPOCH]) {
        int64_t o = 0;
        ssize_t en = seen[E_EPOCH] && m[E_EPOCH].type == RC_JSON_STRING
                         ? rc_json_string(&m[E_EPOCH], env->epoch, sizeof(env->epoch))
                         : -1;
        if (!seen[E_OFFSET] || rc_json_int64(&m[E_OFFSET], &o) < 0 || o < 1 || en < 1)
            return fail(why, "offset (>= 1) and epoch (a string) go together", RC_PERR_BAD_REQUEST);
        env->offset = (uint64_t)o;
        env->epoch_len = (size_t)en;
    }
    env->from = RC_FROM_BACKEND;
    if (seen[E_FROM] && parse_from(&m[E_FROM], env) < 0)
        return fail(why, "from must be {\"user\":STRING|null,\"conn\":\"DIGITS\"}",
                    RC_PERR_BAD_REQUEST);
    if (seen[E_FENCE]) {
        int64_t f;
        if (rc_json_int64(&m[E_FENCE], &f) < 0 || f < 1 || !env->node_len)
            return fail(why, "fence must be an integer >= 1, with node", RC_PERR_BAD_REQUEST);
        env->fence = (uint64_t)f;
        return RC_PERR_NONE;
    }
    if (seen[E_JOIN] || seen[E_LEAVE]) {
        const rc_json_val *mv = seen[E_JOIN] ? &m[E_JOIN] : &m[E_LEAVE];
        if ((seen[E_JOIN] && seen[E_LEAVE]) || mv->type != RC_JSON_OBJECT)
            return fail(why, "join or leave must be one member object", RC_PERR_BAD_REQUEST);
        env->presence = seen[E_JOIN] ? RC_ENV_JOIN : RC_ENV_LEAVE;
        env->member = mv->raw;
        return RC_PERR_NONE;
    }
    if (seen[E_DROPPED]) {
        if (m[E_DROPPED].type != RC_JSON_TRUE && m[E_DROPPED].type != RC_JSON_FALSE)
            return fail(why, "dropped must be true or false", RC_PERR_BAD_REQUEST);
        env->dropped = m[E_DROPPED].type == RC_JSON_TRUE;
        if (env->dropped)
            return RC_PERR_NONE;
    }
    if (!seen[E_DATA])
        return fail(why, "missing data", RC_PERR_BAD_REQUEST);
    env->data = m[E_DATA].raw;
    if (seen[E_ARGS]) {
        if (m[E_ARGS].type != RC_JSON_TRUE && m[E_ARGS].type != RC_JSON_FALSE)
            return fail(why, "args must be true or false", RC_PERR_BAD_REQUEST);
        env->args = m[E_ARGS].type == RC_JSON_TRUE;
        if (env->args && m[E_DATA].type != RC_JSON_ARRAY)
            return fail(why, "args:true needs data to be an array", RC_PERR_BAD_REQUEST);
    }
    return RC_PERR_NONE;
}

ssize_t rc_envelope_build(char *out, size_t cap, const char *node, rc_str event, rc_str data,
                          const rc_origin *origin)
{
    int client = origin && origin->from == RC_FROM_CLIENT;
    char ub[RC_JSON_ESCAPED_MAX(RC_PROTO_MAX_USER)];
    ssize_t un = 4; /* null */
    if (client && origin->user.n) {
        if (origin->user.n > RC_PROTO_MAX_USER)
            return -1;
        un = rc_json_escape(ub, sizeof(ub), origin->user.p, origin->user.n);
        if (un < 0)
            return -1;
    }
    char cb[24];
    int cn = client ? snprintf(cb, sizeof(cb), "%llu", (unsigned long long)origin->conn) : 0;
    /* node and event are names of the plain alphabet (config, rc_proto_event):
     * escaped all the same, and the whole is measured before it is written. */
    char nb[RC_JSON_ESCAPED_MAX(RC_PROTO_MAX_NODE)], eb[RC_JSON_ESCAPED_MAX(RC_PROTO_MAX_EVENT)];
    ssize_t nn = rc_json_escape(nb, sizeof(nb), node, strlen(node));
    ssize_t en = event.n ? rc_json_escape(eb, sizeof(eb), event.p, event.n) : 0;
    if (nn < 0 || en < 0)
        return -1;
    size_t need = 8 + (size_t)nn + (event.n ? 9 + (size_t)en : 0) +
                  (client ? 16 + (size_t)un + 9 + (size_t)cn + 2 : 0) +
                  (origin && origin->args ? 12 : 0) + 8 + data.n + 1;
    if (need > cap)
        return -1;
    size_t o = 0;
#define PUT(p, n) (memcpy(out + o, (p), (n)), o += (n))
    PUT("{\"node\":", 8);
    PUT(nb, (size_t)nn);
    if (event.n) {
        PUT(",\"event\":", 9);
        PUT(eb, (size_t)en);
    }
    if (client) {
        PUT(",\"from\":{\"user\":", 16);
        if (origin->user.n)
            PUT(ub, (size_t)un);
        else
            PUT("null", 4);
        PUT(",\"conn\":\"", 9);
        PUT(cb, (size_t)cn);
        PUT("\"}", 2);
    }
    if (origin && origin->args)
        PUT(",\"args\":true", 12);
    PUT(",\"data\":", 8);
    PUT(data.p, data.n);
    PUT("}", 1);
#undef PUT
    return (ssize_t)o;
}
