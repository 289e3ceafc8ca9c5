/* The Redis envelope: see redis/envelope.h.
 *
 * Thread: any thread (pure functions; the relay calls them). */
#include "redis/envelope.h"

#include <string.h>

#include "ws/json.h"

static int fail(const char **why, const char *msg, int code)
{
    *why = msg;
    return code;
}

int rc_envelope_parse(const char *payload, size_t len, rc_envelope *env, const char **why)
{
    enum { E_NODE, E_EVENT, E_DATA, E_DROPPED, E__COUNT };
    static const char *const names[E__COUNT] = {"node", "event", "data", "dropped"};
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
    return RC_PERR_NONE;
}

ssize_t rc_envelope_build(char *out, size_t cap, const char *node, rc_str event, rc_str data)
{
    /* node and event are names of the plain alphabet (config, rc_proto_event):
     * escaped all the same, and the whole is measured before it is written. */
    char nb[RC_JSON_ESCAPED_MAX(RC_PROTO_MAX_NODE)], eb[RC_JSON_ESCAPED_MAX(RC_PROTO_MAX_EVENT)];
    ssize_t nn = rc_json_escape(nb, sizeof(nb), node, strlen(node));
    ssize_t en = event.n ? rc_json_escape(eb, sizeof(eb), event.p, event.n) : 0;
    if (nn < 0 || en < 0)
        return -1;
    size_t need = 8 + (size_t)nn + (event.n ? 9 + (size_t)en : 0) + 8 + data.n + 1;
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
    PUT(",\"data\":", 8);
    PUT(data.p, data.n);
    PUT("}", 1);
#undef PUT
    return (ssize_t)o;
}
