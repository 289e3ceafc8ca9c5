/* The channels' link to Redis, its publishing half (channels/bridge.h):
 * every publish out, in order, held while the link is down and dropped
 * past the backlog (and then announced); the history's scripts (publish
 * with an offset, read with a fence); other features' commands. The
 * subscriptions and the connections' life are channels/bridge.c's.
 *
 * Thread: the relay thread. */
#include "channels/bridge_int.h"

#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "base/log.h"
#include "redis/cluster.h"
#include "redis/envelope.h"
#include "proto/json.h"

/* The publish of a channel with history: the next offset, the entry in the
 * channel's stream (exact MAXLEN, entry id 0-offset), and the PUBLISH of
 * the envelope with offset and epoch in front, as one atomic step, so that
 * offsets and the order of delivery agree. KEYS: stream, meta (one slot:
 * the channel's name is their hash tag), and optionally a once key: when
 * this copy was kept by another node already, nothing happens
 * (RC_BRIDGE_ONCE_LUA; ARGV[7] the node, ARGV[8] the tolerance). ARGV: size, ttl,
 * meta ttl, envelope, a new epoch (used when the channel has none), Redis
 * channel, node, tolerance, and the publish command (PUBLISH, or SPUBLISH
 * on a cluster, where the channel is in the keys' slot). A meta hash lost while its stream stayed
 * starts a new epoch on an empty stream, so ids stay increasing. */
static const char PUBLISH_LUA[] =
    "if KEYS[3] then\n"
    "  local once_key, once_node, once_tol = KEYS[3], ARGV[7], "
    "tonumber(ARGV[8])\n" RC_BRIDGE_ONCE_LUA "  if matched then return 0 end\n"
    "end\n"
    "local e = redis.call('HGET', KEYS[2], 'e')\n"
    "if not e then\n"
    "  e = ARGV[5]\n"
    "  redis.call('DEL', KEYS[1])\n"
    "  redis.call('HSET', KEYS[2], 'e', e, 't', 0)\n"
    "end\n"
    "local t = redis.call('HINCRBY', KEYS[2], 't', 1)\n"
    "redis.call('EXPIRE', KEYS[2], ARGV[3])\n"
    "local p = '{\"offset\":' .. t .. ',\"epoch\":\"' .. e .. '\",' .. string.sub(ARGV[4], 2)\n"
    "redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[1], '0-' .. t, 'p', p)\n"
    "redis.call('EXPIRE', KEYS[1], ARGV[2])\n"
    "redis.call(ARGV[9], ARGV[6], p)\n"
    "return t\n";

/* A channel's history as Redis keeps it, then a fence on its channel: KEYS:
 * stream, meta. ARGV: count, a new epoch, meta ttl, Redis channel, fence
 * payload, publish command. Returns {epoch, top, newest payload, ...}. */
static const char READ_LUA[] =
    "local e = redis.call('HGET', KEYS[2], 'e')\n"
    "if not e then\n"
    "  e = ARGV[2]\n"
    "  redis.call('DEL', KEYS[1])\n"
    "  redis.call('HSET', KEYS[2], 'e', e, 't', 0)\n"
    "  redis.call('EXPIRE', KEYS[2], ARGV[3])\n"
    "end\n"
    "local t = redis.call('HGET', KEYS[2], 't')\n"
    "local out = {e, t}\n"
    "local r = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', ARGV[1])\n"
    "for i = 1, #r do out[#out + 1] = r[i][2][2] end\n"
    "redis.call(ARGV[6], ARGV[4], ARGV[5])\n"
    "return out\n";

/* ---- publishing ---------------------------------------------------------- */

/* Past this many channels with dropped publishes, the rest go unannounced
 * (and logged once). */
#define LOST_MAX 65536

static void dropped(rc_bridge *b, rc_str chan)
{
    rc_counter_inc(&b->stats->publish_dropped);
    if (rc_rooms_count(b->lost) < LOST_MAX) {
        rc_rooms_add(b->lost, chan.p, chan.n);
    } else if (!b->lost_full) {
        b->lost_full = true;
        rc_warn("redis: publishes dropped on more than %d channels: the others' subscribers "
                "on other nodes will not be told",
                LOST_MAX);
    }
}

typedef struct names {
    rc_room **v;
    size_t n, cap;
} names;

static void collect(rc_room *c, void *arg)
{
    names *l = arg;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->v = rc_realloc(l->v, l->cap * sizeof(*l->v));
    }
    l->v[l->n++] = c;
}

static int send_publish(rc_bridge *b, rc_str chan, const char *payload, size_t payload_len,
                        const keep_opts *k);

/* Once the backlog has drained, each channel that lost publishes gets
 * {"node":ID,"dropped":true}, so that its subscribers on the other nodes
 * learn that they missed messages. */
void rc_bridge_announce_lost(rc_bridge *b)
{
    if (b->head || !rc_rooms_count(b->lost) || !rc_bridge_command_ready(b))
        return;
    names l = {NULL, 0, 0};
    rc_rooms_each(b->lost, collect, &l);
    /* Node ids hold only [A-Za-z0-9._:-] (config.c): no escaping, and the
     * longest one fits, so pn is the whole payload. */
    char payload[128];
    _Static_assert(sizeof(payload) >
                       sizeof("{\"node\":\"\",\"dropped\":true}") + sizeof(b->cfg->node_id),
                   "the payload holds the longest node id");
    int pn =
        snprintf(payload, sizeof(payload), "{\"node\":\"%s\",\"dropped\":true}", b->cfg->node_id);
    size_t sent = 0;
    for (size_t i = 0; i < l.n; i++) {
        /* a channel whose node is away now waits for the next turn */
        if (send_publish(b, (rc_str){l.v[i]->name, l.v[i]->name_len}, payload, (size_t)pn, NULL) <
            0)
            continue;
        rc_rooms_del(b->lost, l.v[i]);
        sent++;
    }
    if (sent)
        rc_info("redis: told the other nodes about dropped publishes on %zu channels", sent);
    free(l.v);
}

/* A publish's reply: priv is the entry of its channel in b->flying
 * (seq counts the channel's unanswered publishes), so that publishes lost
 * with a connection are announced like those the backlog dropped. */
static void on_publish_reply(void *u, redisReply *reply, const char *err, void *priv)
{
    rc_bridge *b = u;
    rc_room *f = priv;
    if (reply && reply->type == REDIS_REPLY_ERROR) {
        rc_counter_inc(&b->stats->publish_errors);
        rc_warn("redis: a publish on %s was refused: %s", f->name, reply->str);
    }
    /* refused or of unknown fate: the other nodes' members are told */
    if (!reply || reply->type == REDIS_REPLY_ERROR)
        dropped(b, (rc_str){f->name, f->name_len});
    if (--f->seq == 0)
        rc_rooms_del(b->flying, f);
}

/* The keys of channel chan's history: PREFIX "h:{" chan "}:" what. */
static size_t hist_key(const rc_bridge *b, rc_str chan, const char *what, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%sh:{%.*s}:%s", b->cfg->redis_prefix, (int)chan.n, chan.p, what);
    rc_assert(n > 0 && (size_t)n < cap);
    return (size_t)n;
}

static void new_epoch_hex(char out[17])
{
    uint64_t r = 0;
    if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
        r = rc_now_ns() ^ ((uint64_t)rc_wall_ms() << 20);
    snprintf(out, 17, "%016llx", (unsigned long long)r);
}

static int send_publish(rc_bridge *b, rc_str ch, const char *payload, size_t payload_len,
                        const keep_opts *k)
{
    char chan[80 + RC_PROTO_MAX_CHANNEL + 3];
    size_t chan_len = rc_bridge_redis_name(b, ch, chan, sizeof(chan));
    int cluster = rc_bridge_cluster(b);
    int slot = cluster ? rc_cluster_slot(chan, chan_len) : -1;
    const char *verb = cluster ? "SPUBLISH" : "PUBLISH";
    if (!chan_len || !rc_rlink_ready_node(b->cmd, slot))
        return -1;
    rc_room *f = rc_rooms_add(b->flying, ch.p, ch.n);
    int rc;
    if (!k || !k->size) {
        const char *argv[3] = {verb, chan, payload};
        size_t lens[3] = {strlen(verb), chan_len, payload_len};
        rc = rc_rlink_command(b->cmd, slot, on_publish_reply, f, 3, argv, lens);
    } else {
        char ks[80 + RC_PROTO_MAX_CHANNEL + 8], km[sizeof(ks)], size[16], ttl[16], mttl[16], ep[17];
        size_t ksn = hist_key(b, ch, "s", ks, sizeof(ks)),
               kmn = hist_key(b, ch, "m", km, sizeof(km));
        int sn = snprintf(size, sizeof(size), "%u", k->size);
        int tn = snprintf(ttl, sizeof(ttl), "%u", k->ttl);
        int mn = snprintf(mttl, sizeof(mttl), "%u", b->cfg->history_meta_ttl_s);
        new_epoch_hex(ep);
        int once = k->once.n > 0;
        const char *argv[16] = {"EVALSHA", b->publish_sha, once ? "3" : "2", ks, km};
        size_t lens[16] = {7, 40, 1, ksn, kmn};
        int n = 5;
        if (once) {
            argv[n] = k->once.p;
            lens[n++] = k->once.n;
        }
        const char *rest[] = {
            size, ttl, mttl, payload, ep, chan, b->cfg->node_id, RC_BRIDGE_ONCE_TOL_MS, verb};
        size_t rlens[] = {(size_t)sn,
                          (size_t)tn,
                          (size_t)mn,
                          payload_len,
                          16,
                          chan_len,
                          strlen(b->cfg->node_id),
                          sizeof(RC_BRIDGE_ONCE_TOL_MS) - 1,
                          strlen(verb)};
        for (size_t i = 0; i < RC_ARRAY_LEN(rest); i++) {
            argv[n] = rest[i];
            lens[n++] = rlens[i];
        }
        rc = rc_rlink_command(b->cmd, slot, on_publish_reply, f, n, argv, lens);
    }
    if (rc < 0) {
        if (f->seq == 0)
            rc_rooms_del(b->flying, f);
        return -1;
    }
    f->seq++;
    rc_counter_inc(&b->stats->messages_out);
    return 0;
}

static size_t unsent(const rc_bridge *b)
{
    rc_rlink_stats st;
    rc_rlink_get_stats(b->cmd, &st);
    return st.queued_bytes;
}

void rc_bridge_drain_held(rc_bridge *b)
{
    while (b->head) { /* in order: one whose node is away holds the rest */
        held *h = b->head;
        keep_opts k = {
            h->hist_size, h->hist_ttl, {h->mem + h->chan_len + h->payload_len, h->once_len}};
        if (send_publish(b, (rc_str){h->mem, h->chan_len}, h->mem + h->chan_len, h->payload_len,
                         &k) < 0)
            break;
        b->head = h->next;
        if (!b->head)
            b->tail = NULL;
        b->held_bytes -= h->chan_len + h->payload_len + h->once_len;
        b->held_count--;
        free(h);
    }
}

static void publish(rc_bridge *b, rc_str chan, rc_str event, rc_str data, const rc_origin *origin,
                    const keep_opts *k)
{
    /* node, event, from and the envelope's own bytes */
    size_t cap = data.n + 256 + RC_JSON_ESCAPED_MAX(RC_PROTO_MAX_USER);
    char small[2048];
    char *payload = cap <= sizeof(small) ? small : rc_malloc(cap);
    ssize_t pn = rc_envelope_build(payload, cap, b->cfg->node_id, event, data, origin);
    rc_assert(pn > 0);
    size_t nl = chan.n, on = k ? k->once.n : 0;
    int ready = rc_rlink_ready_node(b->cmd, rc_bridge_cluster(b) ? rc_bridge_slot(b, chan) : -1);
    if (on && (!ready || b->head)) {
        /* A copy several nodes heard: sent late it would not match theirs;
         * the nodes whose links are up keep it. */
        rc_counter_inc(&b->stats->publish_dropped);
    } else if (!b->head && ready) { /* held ones go first, so that order is kept */
        if (send_publish(b, chan, payload, (size_t)pn, k) < 0)
            dropped(b, chan);
    } else if (b->held_bytes + unsent(b) + nl + (size_t)pn + on <= b->cfg->redis_backlog_bytes) {
        held *h = rc_malloc(sizeof(*h) + nl + (size_t)pn + on);
        h->next = NULL;
        h->chan_len = (uint32_t)nl;
        h->payload_len = (uint32_t)pn;
        h->hist_size = k ? k->size : 0;
        h->hist_ttl = k ? k->ttl : 0;
        h->once_len = (uint32_t)on;
        memcpy(h->mem, chan.p, nl);
        memcpy(h->mem + nl, payload, (size_t)pn);
        if (on)
            memcpy(h->mem + nl + pn, k->once.p, on);
        if (b->tail)
            b->tail->next = h;
        else
            b->head = h;
        b->tail = h;
        b->held_bytes += nl + (size_t)pn + on;
        b->held_count++;
    } else {
        dropped(b, chan);
    }
    if (payload != small)
        free(payload);
}

void rc_bridge_publish(rc_bridge *b, rc_str chan, rc_str event, rc_str data,
                       const rc_origin *origin)
{
    publish(b, chan, event, data, origin, NULL);
}

void rc_bridge_publish_history(rc_bridge *b, rc_str chan, rc_str event, rc_str data,
                               const rc_origin *origin, const rc_history_rule *rule)
{
    keep_opts k = {rule->size, rule->ttl_s, RC_STR_NULL};
    publish(b, chan, event, data, origin, &k);
}

size_t rc_bridge_once_key(const rc_bridge *b, rc_str chan, rc_str what, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%sh:{%.*s}:o:%.*s", b->cfg->redis_prefix, (int)chan.n, chan.p,
                     (int)what.n, what.p);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

void rc_bridge_publish_history_once(rc_bridge *b, rc_str chan, rc_str event, rc_str data,
                                    const rc_origin *origin, const rc_history_rule *rule,
                                    rc_str once)
{
    keep_opts k = {rule->size, rule->ttl_s, once};
    publish(b, chan, event, data, origin, &k);
}

typedef struct read_ctx {
    rc_bridge_read_fn fn;
    uint64_t fence;
    uint16_t chan_len;
    char chan[];
} read_ctx;

static void on_read_reply(void *u, redisReply *reply, const char *err, void *priv)
{
    rc_bridge *b = u;
    read_ctx *r = priv;
    if (reply && reply->type == REDIS_REPLY_ERROR)
        rc_warn("redis: reading the history of %s failed: %s", r->chan, reply->str);
    r->fn(b->u, (rc_str){r->chan, r->chan_len}, r->fence,
          reply && reply->type == REDIS_REPLY_ARRAY && reply->elements >= 2 ? reply : NULL);
    free(r);
}

int rc_bridge_read_history(rc_bridge *b, rc_str chan, uint32_t count, uint64_t fence,
                           rc_bridge_read_fn fn)
{
    char name[80 + RC_PROTO_MAX_CHANNEL + 3];
    size_t nl = rc_bridge_redis_name(b, chan, name, sizeof(name));
    int cluster = rc_bridge_cluster(b);
    int slot = cluster ? rc_cluster_slot(name, nl) : -1;
    const char *verb = cluster ? "SPUBLISH" : "PUBLISH";
    if (!rc_rlink_ready_node(b->cmd, slot))
        return -1;
    char ks[80 + RC_PROTO_MAX_CHANNEL + 8], km[sizeof(ks)], cnt[16], mttl[16], ep[17], fp[128];
    size_t ksn = hist_key(b, chan, "s", ks, sizeof(ks)),
           kmn = hist_key(b, chan, "m", km, sizeof(km));
    int cn = snprintf(cnt, sizeof(cnt), "%u", count);
    int mn = snprintf(mttl, sizeof(mttl), "%u", b->cfg->history_meta_ttl_s);
    int fn_ = snprintf(fp, sizeof(fp), "{\"node\":\"%s\",\"fence\":%llu}", b->cfg->node_id,
                       (unsigned long long)fence);
    rc_assert(nl && fn_ > 0 && (size_t)fn_ < sizeof(fp)); /* node ids are short and plain */
    new_epoch_hex(ep);
    const char *argv[11] = {"EVAL", READ_LUA, "2", ks, km, cnt, ep, mttl, name, fp, verb};
    size_t lens[11] = {4,  sizeof(READ_LUA) - 1, 1,  ksn,         kmn,         (size_t)cn,
                       16, (size_t)mn,           nl, (size_t)fn_, strlen(verb)};
    read_ctx *r = rc_malloc(sizeof(*r) + chan.n + 1);
    r->fn = fn;
    r->fence = fence;
    r->chan_len = (uint16_t)chan.n;
    memcpy(r->chan, chan.p, chan.n);
    r->chan[chan.n] = '\0';
    if (rc_rlink_command(b->cmd, slot, on_read_reply, r, 11, argv, lens) < 0) {
        free(r);
        return -1;
    }
    rc_counter_inc(&b->stats->history_reads);
    return 0;
}

typedef struct cmd_ctx {
    rc_bridge_reply_fn fn;
    void *arg;
} cmd_ctx;

static void on_command_reply(void *u, redisReply *reply, const char *err, void *priv)
{
    cmd_ctx *k = priv;
    k->fn(k->arg, reply);
    free(k);
}

/* The slot a command's keys live in, as Redis Cluster reads it: a
 * script's first key, or the first argument of every other command the
 * features send (GET, SET, XADD, PUBLISH...). -1: none. */
static int command_slot(int argc, const char **argv, const size_t *lens)
{
    if ((lens[0] == 4 && strncasecmp(argv[0], "EVAL", 4) == 0) ||
        (lens[0] == 7 && strncasecmp(argv[0], "EVALSHA", 7) == 0))
        return argc > 3 && !(lens[2] == 1 && argv[2][0] == '0') ? rc_cluster_slot(argv[3], lens[3])
                                                                : -1;
    return argc > 1 ? rc_cluster_slot(argv[1], lens[1]) : -1;
}

int rc_bridge_command(rc_bridge *b, rc_bridge_reply_fn fn, void *arg, int argc, const char **argv,
                      const size_t *lens)
{
    int cluster = rc_bridge_cluster(b);
    int slot = cluster ? command_slot(argc, argv, lens) : -1;
    if (!rc_rlink_ready_node(b->cmd, slot))
        return -1;
    cmd_ctx *k = rc_malloc(sizeof(*k));
    k->fn = fn;
    k->arg = arg;
    /* a cluster's channels are shard channels */
    int rc;
    if (cluster && argc == 3 && lens[0] == 7 && strncasecmp(argv[0], "PUBLISH", 7) == 0) {
        const char *sv[3] = {"SPUBLISH", argv[1], argv[2]};
        size_t sl[3] = {8, lens[1], lens[2]};
        rc = rc_rlink_command(b->cmd, slot, on_command_reply, k, 3, sv, sl);
    } else {
        rc = rc_rlink_command(b->cmd, slot, on_command_reply, k, argc, argv, lens);
    }
    if (rc < 0) {
        free(k);
        return -1;
    }
    return 0;
}

const char *rc_bridge_publish_verb(const rc_bridge *b)
{
    return rc_bridge_cluster(b) ? "SPUBLISH" : "PUBLISH";
}

void rc_bridge_script_sha(rc_bridge *b)
{
    unsigned char md[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)PUBLISH_LUA, sizeof(PUBLISH_LUA) - 1, md);
    for (int i = 0; i < SHA_DIGEST_LENGTH; i++)
        snprintf(b->publish_sha + 2 * i, 3, "%02x", md[i]);
}

static void on_script_loaded(void *u, redisReply *reply, const char *err, void *priv)
{
    rc_bridge *b = u;
    if (reply && (reply->type != REDIS_REPLY_STRING || strcmp(reply->str, b->publish_sha) != 0))
        rc_warn("redis: SCRIPT LOAD of the history publish answered unexpectedly");
}

void rc_bridge_load_scripts(rc_bridge *b, uint16_t node)
{
    const char *argv[3] = {"SCRIPT", "LOAD", PUBLISH_LUA};
    size_t lens[3] = {6, 4, sizeof(PUBLISH_LUA) - 1};
    rc_rlink_command_on(b->cmd, node, on_script_loaded, NULL, 3, argv, lens);
}
