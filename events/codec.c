/* What backends send ringcast, read and written (events/events.h,
 * events/control.h): replies to one connection and server-side commands.
 * No state, no thread's data: the relay and the HTTP side both use them.
 *
 * Thread: any (pure functions). */
#include <stdio.h>
#include <string.h>

#include "events/control.h"
#include "events/events.h"
#include "ws/json.h"

int rc_reply_parse(const char *p, size_t n, rc_reply *r, const char **why)
{
    rc_json_iter it;
    rc_json_val k, v, to = {0}, id = {0}, data = {0}, err = {0};
    int nto = 0, nid = 0, nd = 0, ne = 0;
    memset(r, 0, sizeof(*r));
    if (rc_json_object_begin(&it, p, n, RC_PROTO_MAX_DEPTH) != 0) {
        *why = "not a JSON object";
        return -1;
    }
    while (rc_json_object_next(&it, &k, &v)) {
        if (rc_json_key_is(&k, "to"))
            to = v, nto++;
        else if (rc_json_key_is(&k, "id"))
            id = v, nid++;
        else if (rc_json_key_is(&k, "data"))
            data = v, nd++;
        else if (rc_json_key_is(&k, "error"))
            err = v, ne++;
    }
    if (nto != 1 || nid > 1 || nd > 1 || ne > 1 || nd + ne != 1) {
        *why = "a reply is {\"to\":ADDRESS,\"id\":ID,\"data\":D} or with \"error\":E instead "
               "of data";
        return -1;
    }
    ssize_t tn = to.type == RC_JSON_STRING ? rc_json_string(&to, r->to, sizeof(r->to)) : -1;
    /* CONN:GEN:NODE */
    const char *c1 = tn > 0 ? memchr(r->to, ':', (size_t)tn) : NULL;
    const char *c2 = c1 ? memchr(c1 + 1, ':', (size_t)(r->to + tn - c1 - 1)) : NULL;
    uint64_t conn = 0, gen = 0;
    int ok = c1 && c2 && c1 > r->to && c2 > c1 + 1 && c2 + 1 < r->to + tn;
    for (const char *q = r->to; ok && q < c1; q++) {
        ok = *q >= '0' && *q <= '9' && conn <= (UINT64_MAX - 9) / 10;
        conn = conn * 10 + (uint64_t)(*q - '0');
    }
    for (const char *q = c1 + 1; ok && q < c2; q++) {
        ok = *q >= '0' && *q <= '9' && gen <= 65535;
        gen = gen * 10 + (uint64_t)(*q - '0');
    }
    if (!ok || gen > 65535) {
        *why = "to must be the event's reply address, \"CONN:GEN:NODE\"";
        return -1;
    }
    if (nid &&
        (id.raw.n > RC_PROTO_MAX_ID || (id.type != RC_JSON_STRING && id.type != RC_JSON_NUMBER))) {
        *why = "id must be the event's id as it came (a string or an integer)";
        return -1;
    }
    r->conn = conn;
    r->gen = (uint16_t)gen;
    r->node = (rc_str){c2 + 1, (size_t)(r->to + tn - c2 - 1)};
    r->id = nid ? id.raw : RC_STR_NULL;
    r->data = nd ? data.raw : RC_STR_NULL;
    r->error = ne ? err.raw : RC_STR_NULL;
    return 0;
}

static const char *const op_names[] = {NULL, "disconnect", "subscribe", "unsubscribe"};

int rc_ctl_op_named(rc_str name)
{
    for (int i = 1; i < (int)RC_ARRAY_LEN(op_names); i++)
        if (name.n == strlen(op_names[i]) && memcmp(name.p, op_names[i], name.n) == 0)
            return i;
    return 0;
}

static int fail(const char **why, const char *msg)
{
    *why = msg;
    return -1;
}

int rc_ctl_parse(const char *p, size_t n, int op, size_t max_channel_len, rc_ctl *k,
                 const char **why)
{
    enum { K_OP, K_USER, K_CONN, K_CHANNEL, K_CODE, K_REASON, K__COUNT };
    static const char *const names[K__COUNT] = {"op", "user", "conn", "channel", "code", "reason"};
    rc_json_iter it;
    rc_json_val key, v, m[K__COUNT];
    int seen[K__COUNT] = {0};
    memset(k, 0, sizeof(*k));
    memset(m, 0, sizeof(m));
    if (rc_json_object_begin(&it, p, n, 4) != 0)
        return fail(why, "the body must be a JSON object");
    while (rc_json_object_next(&it, &key, &v))
        for (int i = 0; i < K__COUNT; i++)
            if (rc_json_key_is(&key, names[i]) && seen[i]++ == 0)
                m[i] = v;
    for (int i = 0; i < K__COUNT; i++)
        if (seen[i] > 1)
            return fail(why, "duplicate member");
    if (!op) {
        char name[16];
        ssize_t nn = seen[K_OP] && m[K_OP].type == RC_JSON_STRING
                         ? rc_json_string(&m[K_OP], name, sizeof(name))
                         : -1;
        op = nn > 0 ? rc_ctl_op_named((rc_str){name, (size_t)nn}) : 0;
        if (!op)
            return fail(why, "op must be disconnect, subscribe or unsubscribe");
    }
    k->op = (uint8_t)op;
    if (seen[K_USER] == seen[K_CONN])
        return fail(why, "give either user or conn");
    if (seen[K_USER]) {
        ssize_t un = m[K_USER].type == RC_JSON_STRING
                         ? rc_json_string(&m[K_USER], k->user, sizeof(k->user))
                         : -1;
        if (un < 1)
            return fail(why, "user must be a user id (1..128 bytes)");
    } else {
        char to[RC_PROTO_MAX_NODE + 48];
        ssize_t tn =
            m[K_CONN].type == RC_JSON_STRING ? rc_json_string(&m[K_CONN], to, sizeof(to)) : -1;
        unsigned long long conn = 0;
        unsigned gen = 0;
        int used = 0;
        if (tn < 5 || sscanf(to, "%llu:%u:%n", &conn, &gen, &used) != 2 || used < 4 || used >= tn ||
            gen > 65535 || to[0] < '0' || to[0] > '9')
            return fail(why, "conn must be an event's reply address, \"CONN:GEN:NODE\"");
        k->by_conn = 1;
        k->conn = conn;
        k->gen = (uint16_t)gen;
        snprintf(k->node, sizeof(k->node), "%s", to + used);
    }
    if (op == RC_CTL_DISCONNECT) {
        int64_t code = RC_CTL_DEFAULT_CODE;
        if (seen[K_CODE] && (rc_json_int64(&m[K_CODE], &code) < 0 || code < 4000 || code > 4999))
            return fail(why, "code must be an integer 4000..4999");
        k->code = (uint16_t)code;
        ssize_t rn = 0;
        if (seen[K_REASON]) {
            rn = m[K_REASON].type == RC_JSON_STRING
                     ? rc_json_string(&m[K_REASON], k->reason, sizeof(k->reason))
                     : -1;
            for (ssize_t i = 0; i < rn; i++)
                if ((unsigned char)k->reason[i] < 0x20)
                    rn = -1;
            if (rn < 0)
                return fail(why, "reason must be a string of at most 120 bytes");
        }
        if (!rn)
            snprintf(k->reason, sizeof(k->reason), "disconnected by the server");
        return 0;
    }
    ssize_t cn = seen[K_CHANNEL] && m[K_CHANNEL].type == RC_JSON_STRING
                     ? rc_json_string(&m[K_CHANNEL], k->channel, sizeof(k->channel))
                     : -1;
    if (cn < 1 || !rc_proto_name_valid(k->channel, (size_t)cn, max_channel_len) ||
        strncmp(k->channel, "queue:", 6) == 0 || strncmp(k->channel, "_rc.", 4) == 0)
        return fail(why, "channel must be a valid channel name (not queue:* or _rc.*)");
    return 0;
}

ssize_t rc_ctl_write(char *out, size_t cap, const rc_ctl *k)
{
    char who[RC_JSON_ESCAPED_MAX(RC_PROTO_MAX_USER + RC_PROTO_MAX_NODE + 48)];
    char addr[RC_PROTO_MAX_NODE + 48];
    ssize_t wn;
    if (k->by_conn) {
        int an = snprintf(addr, sizeof(addr), "%llu:%u:%s", (unsigned long long)k->conn,
                          (unsigned)k->gen, k->node);
        wn = rc_json_escape(who, sizeof(who), addr, (size_t)an);
    } else {
        wn = rc_json_escape(who, sizeof(who), k->user, strlen(k->user));
    }
    if (wn < 0)
        return -1;
    int n;
    if (k->op == RC_CTL_DISCONNECT) {
        char rs[RC_JSON_ESCAPED_MAX(RC_CTL_MAX_REASON)];
        ssize_t rn = rc_json_escape(rs, sizeof(rs), k->reason, strlen(k->reason));
        if (rn < 0)
            return -1;
        n = snprintf(out, cap, "{\"op\":\"disconnect\",\"%s\":%.*s,\"code\":%u,\"reason\":%.*s}",
                     k->by_conn ? "conn" : "user", (int)wn, who, (unsigned)k->code, (int)rn, rs);
    } else {
        n = snprintf(out, cap, "{\"op\":\"%s\",\"%s\":%.*s,\"channel\":\"%s\"}", op_names[k->op],
                     k->by_conn ? "conn" : "user", (int)wn, who, k->channel);
    }
    return n > 0 && (size_t)n < cap ? n : -1;
}
