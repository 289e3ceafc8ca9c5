/* The channels' link to Redis (see bridge.h): the names of channels on one
 * Redis or a cluster, the messages that come in, and the links' life. The
 * subscriptions are bridge_sub.c's, the publishes bridge_publish.c's.
 *
 * Thread: the relay thread. */
#include "channels/bridge_int.h"

#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "base/log.h"
#include "channels/room.h"
#include "net/uring.h"
#include "redis/cluster.h"
#include "redis/envelope.h"
#include "redis/link.h"
#include "proto/json.h"

/* ---- names --------------------------------------------------------------- */

bool rc_bridge_cluster(const rc_bridge *b)
{
    return rc_rlink_is_cluster(b->cmd) || rc_rlink_is_cluster(b->sub);
}

#define QUEUE_NS "queue:"

size_t rc_bridge_redis_name(const rc_bridge *b, rc_str chan, char *out, size_t cap)
{
    if (b->prefix_len + chan.n + 3 > cap)
        return 0;
    char *w = out;
    memcpy(w, b->prefix, b->prefix_len);
    w += b->prefix_len;
    if (!rc_bridge_cluster(b)) {
        memcpy(w, chan.p, chan.n);
        w += chan.n;
    } else {
        /* the hash tag: the whole name, or a queue's id (its keys' tag) */
        size_t ns = chan.n > sizeof(QUEUE_NS) - 1 && memcmp(chan.p, QUEUE_NS, 6) == 0 ? 6 : 0;
        memcpy(w, chan.p, ns);
        w += ns;
        *w++ = '{';
        memcpy(w, chan.p + ns, chan.n - ns);
        w += chan.n - ns;
        *w++ = '}';
    }
    *w = '\0';
    return (size_t)(w - out);
}

int rc_bridge_slot(const rc_bridge *b, rc_str chan)
{
    char name[80 + RC_PROTO_MAX_CHANNEL + 3];
    size_t n = rc_bridge_redis_name(b, chan, name, sizeof(name));
    return n ? rc_cluster_slot(name, n) : 0;
}

/* The ringcast channel inside a Redis channel name, or n == 0 if not ours.
 * A cluster's names lose their braces (chan then points into namebuf). */
rc_str rc_bridge_chan_of(rc_bridge *b, const redisReply *name)
{
    if (!name || name->type != REDIS_REPLY_STRING || name->len <= b->prefix_len ||
        memcmp(name->str, b->prefix, b->prefix_len) != 0)
        return RC_STR_NULL;
    rc_str c = {name->str + b->prefix_len, name->len - b->prefix_len};
    const char *lb = memchr(c.p, '{', c.n);
    if (!lb)
        return c;
    size_t ns = (size_t)(lb - c.p);
    if (c.n < ns + 3 || c.p[c.n - 1] != '}' || (ns && !(ns == 6 && !memcmp(c.p, QUEUE_NS, 6))) ||
        c.n - 2 > sizeof(b->namebuf))
        return RC_STR_NULL;
    if (!ns)
        return (rc_str){c.p + 1, c.n - 2};
    memcpy(b->namebuf, c.p, ns);
    memcpy(b->namebuf + ns, lb + 1, c.n - ns - 2);
    return (rc_str){b->namebuf, c.n - 2};
}

/* ---- hooks --------------------------------------------------------------- */

/* A connection dropped (logged once) or an attempt failed (counted). */
void rc_bridge_link_lost(rc_bridge *b, rc_counter *up, const char *which, const char *reason)
{
    if (rc_counter_get(up))
        rc_warn("redis: %s connection lost: %s", which, reason);
    else
        rc_counter_inc(&b->stats->connect_failures);
    rc_counter_set(up, 0);
}

/* SUBSCRIBE to the raw names from index from on, when the connection is up.
 * Their confirmations name no channel of ours: on_confirm ignores them. */
static void bad_message(rc_bridge *b, rc_str chan, const char *why)
{
    rc_counter_inc(&b->stats->bad_messages);
    uint64_t now = rc_now_ms();
    if (now - b->last_bad_log_ms >= 1000) {
        b->last_bad_log_ms = now;
        rc_warn("redis: dropped a message on channel %.*s: %s (counted in "
                "ringcast_redis_bad_messages_total; logged at most once a second)",
                (int)chan.n, chan.p, why);
    }
}

void rc_bridge_on_message(rc_bridge *b, const redisReply *rep)
{
    rc_counter_inc(&b->stats->messages_in);
    rc_str chan = rc_bridge_chan_of(b, rep->element[1]);
    const redisReply *pl = rep->elements > 2 ? rep->element[2] : NULL;
    if (!chan.n && b->alias.message && rep->element[1]->type == REDIS_REPLY_STRING && pl &&
        pl->type == REDIS_REPLY_STRING) {
        b->alias.message(b->alias_u, (rc_str){rep->element[1]->str, rep->element[1]->len},
                         (rc_str){pl->str, pl->len});
        return;
    }
    rc_room *c = chan.n ? rc_rooms_get(b->chans, chan.p, chan.n) : NULL;
    if (!c || !(c->flags & F_WANT)) {
        rc_counter_inc(&b->stats->unwanted);
        return;
    }
    if (!pl || pl->type != REDIS_REPLY_STRING) {
        bad_message(b, chan, "payload is not a string");
        return;
    }
    if (b->direct && chan.n > 4 && memcmp(chan.p, "_rc.", 4) == 0) {
        b->direct(b->direct_u, chan, (rc_str){pl->str, pl->len});
        return;
    }
    rc_envelope env;
    const char *why = "";
    if (rc_envelope_parse(pl->str, pl->len, &env, &why) != RC_PERR_NONE) {
        bad_message(b, chan, why);
        return;
    }
    int own = env.node_len && strcmp(env.node, b->cfg->node_id) == 0;
    if (env.fence) {
        if (own)
            b->ops.fence(b->u, chan, env.fence);
        return;
    }
    if (env.presence) {
        if (b->ops.presence)
            b->ops.presence(b->u, chan, env.presence == RC_ENV_JOIN, env.member);
        return;
    }
    /* A publication with history is delivered from here even on the node
     * that published it: its offset comes from Redis. */
    if (own && !env.offset) {
        rc_counter_inc(&b->stats->echoes);
        return;
    }
    if (env.dropped) {
        b->ops.lost(b->u, chan, env.node);
    } else {
        rc_bridge_msg m = {
            .event = {env.event, env.event_len},
            .data = env.data,
            .origin = {env.from, {env.from_user, env.from_user_len}, env.from_conn, env.args},
            .offset = env.offset,
            .epoch = {env.epoch, env.epoch_len},
        };
        b->ops.message(b->u, chan, &m);
    }
}

/* Redis dropped a subscription of ours (a cluster gave its slot to
 * another node): subscribe it where it lives now. */
const rc_config *rc_bridge_config(const rc_bridge *b)
{
    return b->cfg;
}

void rc_bridge_bad_message(rc_bridge *b, rc_str chan, const char *why)
{
    bad_message(b, chan, why);
}

void rc_bridge_on_alias(rc_bridge *b, const rc_bridge_alias *alias, void *u)
{
    b->alias = *alias;
    b->alias_u = u;
}

int rc_bridge_deliver(rc_bridge *b, rc_str chan, const rc_bridge_msg *m)
{
    rc_room *c = rc_rooms_get(b->chans, chan.p, chan.n);
    if (!c || !(c->flags & F_WANT)) {
        rc_counter_inc(&b->stats->unwanted);
        return -1;
    }
    b->ops.message(b->u, chan, m);
    return 0;
}

void rc_bridge_on_direct(rc_bridge *b, void (*fn)(void *u, rc_str chan, rc_str payload), void *u)
{
    b->direct = fn;
    b->direct_u = u;
}

bool rc_bridge_command_ready(const rc_bridge *b)
{
    return rc_rlink_ready_node(b->cmd, -1) != 0;
}

size_t rc_bridge_channel_name(const rc_bridge *b, rc_str chan, char *out, size_t cap)
{
    return rc_bridge_redis_name(b, chan, out, cap);
}

static void cmd_ready(void *u, uint16_t node)
{
    rc_bridge *b = u;
    if (rc_bridge_cluster(b)) {
        rc_rlink_stats st;
        rc_rlink_get_stats(b->cmd, &st);
        rc_info("redis: command connection to a cluster primary ready (%u of %u; %zu publishes "
                "held)",
                st.nodes_up, st.nodes, b->held_count);
    } else {
        rc_info("redis: command connection ready (%zu publishes held)", b->held_count);
    }
    rc_counter_set(&b->stats->up_command, rc_rlink_ready(b->cmd));
    /* Before anything held: publishes with history run it by its SHA1,
     * which each node must know. */
    if (b->cfg->n_history)
        rc_bridge_load_scripts(b, node);
    rc_bridge_drain_held(b);
}

static void cmd_down(void *u, uint16_t node, const char *reason)
{
    rc_bridge *b = u;
    (void)node;
    rc_bridge_link_lost(b, &b->stats->up_command, "command", reason);
}

/* ---- life ---------------------------------------------------------------- */

rc_bridge *rc_bridge_new(struct io_uring *ring, const rc_config *cfg, const rc_bridge_ops *ops,
                         void *u, rc_bridge_stats *stats)
{
    rc_bridge *b = rc_calloc(1, sizeof(*b));
    b->stats = stats;
    b->cfg = cfg;
    b->ops = *ops;
    b->u = u;
    b->chans = rc_rooms_new();
    b->lost = rc_rooms_new();
    b->flying = rc_rooms_new();
    rc_bridge_script_sha(b);
    int n = snprintf(b->prefix, sizeof(b->prefix), "%sch:", cfg->redis_prefix);
    rc_assert(n > 0 && (size_t)n < sizeof(b->prefix));
    b->prefix_len = (size_t)n;
    rc_redis_url seeds[RC_REDIS_MAX_SEEDS];
    size_t nseeds;
    char err[256];
    int e =
        rc_redis_seeds_parse(cfg->redis_url, seeds, RC_REDIS_MAX_SEEDS, &nseeds, err, sizeof(err));
    rc_assert(e == 0); /* config checked it */
    rc_rlink_hooks hc = {.on_ready = cmd_ready, .on_down = cmd_down};
    b->cmd = rc_rlink_new(ring, seeds, nseeds, &hc, b, RC_BRIDGE_KIND_CMD);
    b->sub = rc_rlink_new(ring, seeds, nseeds, &rc_bridge_sub_hooks, b, RC_BRIDGE_KIND_SUB);
    rc_rlink_follow(b->sub, b->cmd);
    size_t maxq = cfg->redis_backlog_bytes < 65536 ? 65536 : cfg->redis_backlog_bytes;
    rc_rlink_set_max_queued(b->cmd, maxq);
    rc_rlink_set_max_queued(b->sub, RC_MAX(maxq, (size_t)RC_REDIS_DEFAULT_MAX_QUEUED));
    rc_rlink_set_ping_interval(b->cmd, cfg->redis_ping_ms);
    rc_rlink_set_ping_interval(b->sub, cfg->redis_ping_ms);
    return b;
}

void rc_bridge_on_cqe(rc_bridge *b, struct io_uring_cqe *cqe)
{
    unsigned kind = rc_rlink_kind_of(rc_ud_gen(cqe->user_data));
    if (kind == RC_BRIDGE_KIND_CMD)
        rc_rlink_on_cqe(b->cmd, cqe);
    else if (kind == RC_BRIDGE_KIND_SUB)
        rc_rlink_on_cqe(b->sub, cqe);
}

void rc_bridge_tick(rc_bridge *b, uint64_t now_ms)
{
    rc_rlink_tick(b->sub, now_ms);
    rc_rlink_tick(b->cmd, now_ms);
    if (b->resync && now_ms >= b->resync_due_ms) {
        rc_bridge_reconcile(b);
        if (b->resync) /* refused again: not before the next map */
            b->resync_due_ms = now_ms + 500;
    }
    rc_bridge_flush_subs(b);
    rc_bridge_drain_held(b);
    rc_bridge_announce_lost(b);
    rc_rlink_flush(b->sub);
    rc_rlink_flush(b->cmd);

    rc_rlink_stats cs, ss;
    rc_rlink_get_stats(b->cmd, &cs);
    rc_rlink_get_stats(b->sub, &ss);
    rc_counter_set(&b->stats->up_command, rc_rlink_ready(b->cmd));
    rc_counter_set(&b->stats->up_subscriber, rc_rlink_ready(b->sub));
    rc_counter_set(&b->stats->rtt_us_command, cs.rtt_us);
    rc_counter_set(&b->stats->rtt_us_subscriber, ss.rtt_us);
    rc_counter_set(&b->stats->pipeline_depth, cs.pipeline_depth);
    rc_counter_set(&b->stats->backlog_bytes, b->held_bytes + cs.queued_bytes);
    rc_counter_set(&b->stats->reconnects, cs.reconnects + ss.reconnects);
    rc_counter_set(&b->stats->cluster_primaries, rc_bridge_cluster(b) ? cs.nodes : 0);
    rc_counter_set(&b->stats->cluster_primaries_up, rc_bridge_cluster(b) ? cs.nodes_up : 0);
    rc_counter_set(&b->stats->cluster_slots, rc_bridge_cluster(b) ? cs.slots_covered : 0);
    rc_counter_set(&b->stats->cluster_moved, cs.moved + ss.moved);
    rc_counter_set(&b->stats->cluster_asked, cs.asked + ss.asked);
    rc_counter_set(&b->stats->cluster_retries, cs.retries + ss.retries);
    rc_counter_set(&b->stats->cluster_gave_up, cs.gave_up + ss.gave_up);
    rc_counter_set(&b->stats->cluster_refreshes, cs.refreshes + ss.refreshes);
}

bool rc_bridge_ready(const rc_bridge *b)
{
    return rc_rlink_ready(b->cmd) && rc_rlink_ready(b->sub);
}

bool rc_bridge_busy(const rc_bridge *b)
{
    if (!rc_rlink_ready_node(b->cmd, -1))
        return false;
    rc_rlink_stats st;
    rc_rlink_get_stats(b->cmd, &st);
    return b->head || st.queued_bytes || st.pipeline_depth;
}

void rc_bridge_close(rc_bridge *b)
{
    rc_rlink_close(b->cmd);
    rc_rlink_close(b->sub);
}

bool rc_bridge_idle(const rc_bridge *b)
{
    return rc_rlink_idle(b->cmd) && rc_rlink_idle(b->sub);
}

void rc_bridge_free(rc_bridge *b)
{
    if (!b)
        return;
    if (b->head)
        rc_warn("redis: %zu publishes (%zu bytes) held for Redis were never sent", b->held_count,
                b->held_bytes);
    rc_counter_add(&b->stats->publish_dropped, b->held_count);
    rc_rlink_free(b->cmd);
    rc_rlink_free(b->sub);
    for (held *h = b->head, *next; h; h = next) {
        next = h->next;
        free(h);
    }
    rc_rooms_free(b->chans);
    rc_rooms_free(b->lost);
    rc_rooms_free(b->flying);
    for (size_t i = 0; i < b->nraw; i++)
        free(b->raw[i]);
    free(b->raw);
    free(b->dirty);
    free(b);
}
