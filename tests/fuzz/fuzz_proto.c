/* The native protocol's JSON (proto/json.c over ws/json.c): client messages,
 * POST /api/publish bodies and Redis envelopes, and the builders fed with
 * what the parsers return.
 *
 * Invariants, beyond "no crash":
 *  - a message the parser accepts is valid JSON as a whole (rc_json_validate
 *    agrees); its channel, event and queue are valid names within their
 *    limits and NUL-terminated at their length; its id is a JSON string or
 *    integer (any size) of at most 64 bytes found in the input; its data is a span of the
 *    input that is valid JSON on its own;
 *  - an error has a known code and a reason, and no id on bad_json;
 *  - every builder given parsed fields writes valid JSON (never past cap,
 *    also when cap is too small), rc_proto_message writes exactly
 *    rc_proto_message_len bytes, and an envelope built from a parsed
 *    message parses back to the same event and data bytes;
 *  - the object iterator hands out spans inside the input that validate. */
#include <string.h>

#include "tests/fuzz/fuzz.h"
#include "ws/json.h"
#include "proto/json.h"
#include "redis/envelope.h"

static int name_ok(const char *s, size_t n, size_t max)
{
    if (n == 0 || n > max || strlen(s) != n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 (c && strchr("_-.:@/=+", c));
        if (!ok)
            return 0;
    }
    return 1;
}

static void valid_json(const char *p, ssize_t n)
{
    FUZZ_CHECK(n > 0);
    FUZZ_CHECK(rc_json_validate(p, (size_t)n, 64) == 0);
}

/* Runs a builder at the given cap, then again one byte short (it must say
 * -1 and stay inside), and checks the JSON. */
#define BUILD(call_with_cap)                                                                       \
    do {                                                                                           \
        size_t cap = sizeof(out);                                                                  \
        ssize_t n = (call_with_cap);                                                               \
        FUZZ_CHECK(n > 0 && (size_t)n <= sizeof(out));                                             \
        valid_json(out, n);                                                                        \
        cap = (size_t)n - 1;                                                                       \
        memset(out + cap, 0x5a, sizeof(out) - cap);                                                \
        FUZZ_CHECK((call_with_cap) == -1);                                                         \
        for (size_t z = cap; z < (size_t)n; z++)                                                   \
            FUZZ_CHECK((unsigned char)out[z] == 0x5a);                                             \
    } while (0)

static char out[1 << 17];

static void check_builders(const rc_proto_req *req)
{
    rc_str id = {req->id, req->id_len};
    rc_str ch = {req->channel, req->channel_len};
    rc_str ev = {req->event, req->event_len};
    rc_str q = {req->queue, req->queue_len};
    BUILD(rc_proto_reply(out, cap, "subscribed", id, ch, (int64_t)req->channel_len - 1));
    BUILD(rc_proto_pong(out, cap, id, INT64_MAX));
    BUILD(rc_proto_error(out, cap, id, RC_PERR_FORBIDDEN, "no \"quote\"\n", ch));
    if (q.n) {
        BUILD(rc_proto_queue_joined(out, cap, id, q, 1, 2, -1));
        rc_queue_tick tk = {INT64_MAX, {"3.5", 3}, 1000, 0, INT64_MIN};
        BUILD(rc_proto_queue_tick(out, cap, q, &tk));
        BUILD(rc_proto_admitted(out, cap, id, q, (rc_str){"a.b.c", 5}, 1));
        BUILD(rc_proto_queue_left(out, cap, id, q));
    }
    if (req->op != RC_OP_PUBLISH)
        return;
    FUZZ_CHECK(req->data.n < sizeof(out) - 1024);
    BUILD(rc_proto_message(out, cap, ch, ev, UINT64_MAX, req->data));
    size_t want = rc_proto_message_len(ch, ev, UINT64_MAX, req->data);
    FUZZ_CHECK(rc_proto_message(out, sizeof(out), ch, ev, UINT64_MAX, req->data) == (ssize_t)want);
    FUZZ_CHECK(memmem(out, want, req->data.p, req->data.n) != NULL);

    /* Through Redis and back. */
    static char env_buf[1 << 17];
    ssize_t en = rc_envelope_build(env_buf, sizeof(env_buf), "node-1", ev, req->data, NULL);
    FUZZ_CHECK(en > 0);
    valid_json(env_buf, en);
    rc_envelope env;
    const char *why = NULL;
    FUZZ_CHECK(rc_envelope_parse(env_buf, (size_t)en, &env, &why) == RC_PERR_NONE);
    FUZZ_CHECK(env.node_len == 6 && strcmp(env.node, "node-1") == 0 && !env.dropped);
    FUZZ_CHECK(env.event_len == ev.n && memcmp(env.event, ev.p, ev.n) == 0);
    FUZZ_CHECK(env.data.n == req->data.n && memcmp(env.data.p, req->data.p, req->data.n) == 0);
}

static void check_req(const char *msg, size_t len, size_t max_ch, int r, const rc_proto_req *req,
                      const char *why, int body)
{
    FUZZ_CHECK(r >= 0 && r < RC_PERR__COUNT);
    FUZZ_CHECK(rc_proto_errname(r) != NULL);
    if (r != RC_PERR_NONE) {
        FUZZ_CHECK(why != NULL);
        if (r == RC_PERR_BAD_JSON)
            FUZZ_CHECK(req->id_len == 0);
        return;
    }
    FUZZ_CHECK(rc_json_validate(msg, len, RC_PROTO_MAX_DEPTH) == 0);
    FUZZ_CHECK(req->op >= RC_OP_SUBSCRIBE && req->op <= RC_OP_PRESENCE_STATS);
    if (body)
        FUZZ_CHECK(req->op == RC_OP_PUBLISH);
    FUZZ_CHECK(req->id_len <= RC_PROTO_MAX_ID && strlen(req->id) == req->id_len);
    if (req->id_len) {
        /* A string, or an integer of any size (echoed as sent). */
        FUZZ_CHECK(rc_json_validate(req->id, req->id_len, 1) == 0);
        FUZZ_CHECK(req->id[0] == '"' || strpbrk(req->id, ".eE\"[{tfn") == NULL);
        FUZZ_CHECK(memmem(msg, len, req->id, req->id_len) != NULL);
    }
    /* A position to recover from only where one is read, and always whole:
     * an offset exact in every JSON reader, an epoch of 1..64 bytes. */
    if (req->since.has) {
        FUZZ_CHECK(req->op == RC_OP_SUBSCRIBE || req->op == RC_OP_HISTORY);
        FUZZ_CHECK(req->since.offset <= 9007199254740991ull);
        FUZZ_CHECK(req->since.epoch.p == req->since_epoch && req->since.epoch.n >= 1 &&
                   req->since.epoch.n <= RC_PROTO_MAX_EPOCH);
    }
    FUZZ_CHECK(req->limit == 0 ||
               ((req->op == RC_OP_HISTORY || req->op == RC_OP_PRESENCE) && req->limit <= 100000));
    /* A cursor only on a presence request, printable and whole. */
    FUZZ_CHECK(req->cursor_len == strlen(req->cursor));
    if (req->cursor_len) {
        FUZZ_CHECK(req->op == RC_OP_PRESENCE);
        FUZZ_CHECK(rc_presence_cursor_valid(req->cursor, req->cursor_len));
    }
    switch (req->op) {
    case RC_OP_SUBSCRIBE:
    case RC_OP_UNSUBSCRIBE:
    case RC_OP_HISTORY:
    case RC_OP_PRESENCE:
    case RC_OP_PRESENCE_STATS:
    case RC_OP_PUBLISH: FUZZ_CHECK(name_ok(req->channel, req->channel_len, max_ch)); break;
    case RC_OP_QJOIN:
    case RC_OP_QLEAVE: FUZZ_CHECK(name_ok(req->queue, req->queue_len, RC_PROTO_MAX_QUEUE)); break;
    default: break;
    }
    if (req->op == RC_OP_PUBLISH) {
        FUZZ_CHECK(name_ok(req->event, req->event_len, RC_PROTO_MAX_EVENT));
        FUZZ_CHECK(fuzz_inside(req->data.p, req->data.n, msg, len));
        FUZZ_CHECK(rc_json_validate(req->data.p, req->data.n, RC_PROTO_MAX_DEPTH) == 0);
        FUZZ_CHECK(req->data.n > 0);
    }
    check_builders(req);
}

static void check_iter(const char *msg, size_t len)
{
    rc_json_iter it;
    if (rc_json_object_begin(&it, msg, len, 8) != 0)
        return;
    FUZZ_CHECK(rc_json_validate(msg, len, 8) == 0);
    rc_json_val k, v;
    int n = 0;
    while (rc_json_object_next(&it, &k, &v)) {
        FUZZ_CHECK(k.type == RC_JSON_STRING && fuzz_inside(k.raw.p, k.raw.n, msg, len));
        FUZZ_CHECK(v.type != RC_JSON_INVALID && fuzz_inside(v.raw.p, v.raw.n, msg, len));
        FUZZ_CHECK(rc_json_validate(v.raw.p, v.raw.n, 8) == 0);
        char s[64];
        ssize_t sn = rc_json_string(&k, s, sizeof(s));
        FUZZ_CHECK(sn < (ssize_t)sizeof(s));
        if (sn >= 0)
            FUZZ_CHECK(s[sn] == '\0' && strlen(s) == (size_t)sn);
        if (v.type == RC_JSON_STRING) {
            static char big[1 << 16];
            sn = rc_json_string(&v, big, sizeof(big));
            FUZZ_CHECK(sn < (ssize_t)v.raw.n - 1 || sn <= (ssize_t)v.raw.n - 2);
            if (sn >= 0) {
                /* A decoded string escapes back to a literal that decodes to it. */
                static char lit[6 * (1 << 16) + 2];
                ssize_t ln = rc_json_escape(lit, sizeof(lit), big, (size_t)sn);
                FUZZ_CHECK(ln >= 2);
                FUZZ_CHECK(rc_json_validate(lit, (size_t)ln, 1) == 0);
            }
        }
        n++;
    }
    FUZZ_CHECK(it.count == n || it.count >= 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    /* An exact-size copy, so a read past the end is an ASan error. */
    char *msg = malloc(size ? size : 1);
    memcpy(msg, data, size);
    rc_proto_req req;
    const char *why = NULL;
    size_t max_ch = 1 + size % RC_PROTO_MAX_CHANNEL;
    if (size % 3 == 0)
        max_ch = 128;
    int r = rc_proto_parse(msg, size, max_ch, &req, &why);
    check_req(msg, size, max_ch, r, &req, why, 0);

    why = NULL;
    r = rc_proto_parse_publish_body(msg, size, max_ch, &req, &why);
    check_req(msg, size, max_ch, r, &req, why, 1);

    rc_envelope env;
    why = NULL;
    r = rc_envelope_parse(msg, size, &env, &why);
    FUZZ_CHECK(r == RC_PERR_NONE || r == RC_PERR_BAD_JSON || r == RC_PERR_BAD_REQUEST);
    if (r != RC_PERR_NONE) {
        FUZZ_CHECK(why != NULL);
    } else {
        FUZZ_CHECK(rc_json_validate(msg, size, 64) == 0);
        FUZZ_CHECK(strlen(env.node) == env.node_len && env.node_len < sizeof(env.node));
        FUZZ_CHECK(name_ok(env.event, env.event_len, RC_PROTO_MAX_EVENT));
        if (env.presence) {
            /* A join or leave: a member object, nothing else read. */
            FUZZ_CHECK(env.presence == RC_ENV_JOIN || env.presence == RC_ENV_LEAVE);
            FUZZ_CHECK(fuzz_inside(env.member.p, env.member.n, msg, size));
            FUZZ_CHECK(env.member.n >= 2 && env.member.p[0] == '{');
            FUZZ_CHECK(!env.fence && env.data.n == 0);
        } else if (!env.dropped && !env.fence) {
            FUZZ_CHECK(fuzz_inside(env.data.p, env.data.n, msg, size));
            FUZZ_CHECK(rc_json_validate(env.data.p, env.data.n, 64) == 0);
        }
    }
    check_iter(msg, size);
    free(msg);
    return 0;
}
