/* Redis replies as the relay reads them: bytes fed to a hiredis redisReader
 * in the chunks a socket might deliver (redis/client.c on_recv), replies
 * taken until none is left or the reader fails (the client then drops the
 * connection), and each reply interpreted as the subscriber connection does
 * (channels/bridge.c sub_push and on_message): a "message" push on a channel
 * under the prefix has its payload parsed with rc_proto_parse_envelope.
 *
 * The first input byte seeds the chunking. Invariants, beyond "no crash":
 *  - the reader returns the same replies (type, value, shape) whether the
 *    bytes arrive at once or in pieces, and fails on the same input;
 *  - replies are of the RESP2 types hiredis knows, strings NUL-terminated,
 *    and together never hold more string bytes or elements than were fed;
 *  - an envelope that parses has event a valid name and, unless it reports
 *    dropped messages, data that is a span of the payload and valid JSON. */
#include <hiredis/hiredis.h>
#include <string.h>
#include <strings.h>

#include "redis/client.h"
#include "redis/reader.h"
#include "redis/envelope.h"
#include "tests/fuzz/fuzz.h"
#include "ws/json.h"
#include "proto/json.h"

#define PREFIX "rc:ch:"

typedef struct tally {
    uint64_t hash;
    size_t str_bytes, elements, replies;
} tally;

static void mix(tally *t, uint64_t v)
{
    t->hash = (t->hash ^ v) * 1099511628211ULL;
}

static void walk(tally *t, const redisReply *r, size_t fed, int depth)
{
    FUZZ_CHECK(r != NULL && depth < 16);
    mix(t, (uint64_t)r->type);
    switch (r->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR:
        FUZZ_CHECK(r->str != NULL && r->len <= fed && r->str[r->len] == '\0');
        t->str_bytes += r->len;
        mix(t, r->len);
        for (size_t i = 0; i < r->len; i++)
            mix(t, (unsigned char)r->str[i]);
        break;
    case REDIS_REPLY_INTEGER: mix(t, (uint64_t)r->integer); break;
    case REDIS_REPLY_NIL: break;
    case REDIS_REPLY_ARRAY:
        FUZZ_CHECK(r->elements <= fed);
        FUZZ_CHECK(r->elements == 0 || r->element != NULL);
        t->elements += r->elements;
        mix(t, r->elements);
        for (size_t i = 0; i < r->elements; i++)
            walk(t, r->element[i], fed, depth + 1);
        break;
    default: FUZZ_CHECK(!"unknown reply type");
    }
}

/* What the subscriber connection does with a push. */
static void interpret(const redisReply *rep)
{
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 2 || !rep->element[0] ||
        rep->element[0]->type != REDIS_REPLY_STRING)
        return;
    const redisReply *kind = rep->element[0], *name = rep->element[1];
    if (!(kind->len == 7 && strncasecmp(kind->str, "message", 7) == 0))
        return;
    if (!name || name->type != REDIS_REPLY_STRING || name->len <= strlen(PREFIX) ||
        memcmp(name->str, PREFIX, strlen(PREFIX)) != 0)
        return;
    const redisReply *pl = rep->elements > 2 ? rep->element[2] : NULL;
    if (!pl || pl->type != REDIS_REPLY_STRING)
        return;
    rc_envelope env;
    const char *why = NULL;
    int r = rc_envelope_parse(pl->str, pl->len, &env, &why);
    if (r != RC_PERR_NONE) {
        FUZZ_CHECK(why != NULL && (r == RC_PERR_BAD_JSON || r == RC_PERR_BAD_REQUEST));
        return;
    }
    FUZZ_CHECK(env.event_len >= 1 && env.event_len <= RC_PROTO_MAX_EVENT);
    FUZZ_CHECK(rc_proto_name_valid(env.event, env.event_len, RC_PROTO_MAX_EVENT));
    FUZZ_CHECK(strlen(env.node) == env.node_len);
    if (!env.dropped) {
        FUZZ_CHECK(fuzz_inside(env.data.p, env.data.n, pl->str, pl->len));
        FUZZ_CHECK(rc_json_validate(env.data.p, env.data.n, 64) == 0);
    }
}

/* Feeds data in chunks (whole when rng is NULL); returns 1 when the reader
 * failed, 0 when it ran out of bytes. */
static int run(const uint8_t *data, size_t size, fuzz_rng *rng, tally *t)
{
    redisReader *rd = rc_redis_reader_new(); /* the relay's reader, limits included */
    FUZZ_CHECK(rd != NULL);
    size_t off = 0;
    int failed = 0;
    while (off < size && !failed) {
        size_t k = rng ? 1 + fuzz_next(rng) % 48 : size;
        k = RC_MIN(k, size - off);
        if (redisReaderFeed(rd, (const char *)data + off, k) != REDIS_OK) {
            failed = 1;
            break;
        }
        off += k;
        for (;;) {
            void *rep = NULL;
            if (redisReaderGetReply(rd, &rep) != REDIS_OK) {
                FUZZ_CHECK(rep == NULL);
                failed = 1;
                break;
            }
            if (!rep)
                break;
            t->replies++;
            walk(t, rep, off, 0);
            interpret(rep);
            freeReplyObject(rep);
        }
    }
    FUZZ_CHECK(t->str_bytes <= size && t->elements <= size && t->replies <= size);
    redisReaderFree(rd);
    return failed;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_rng rng = {fuzz_take(&data, &size)};
    if (size > 65536)
        return 0;
    tally a = {1469598103934665603ULL, 0, 0, 0}, b = a;
    int fa = run(data, size, NULL, &a);
    int fb = run(data, size, &rng, &b);
    FUZZ_CHECK(fa == fb);
    FUZZ_CHECK(a.replies == b.replies && a.hash == b.hash);
    return 0;
}
