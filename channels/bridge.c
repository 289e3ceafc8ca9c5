/* The channels' link to Redis: one SUBSCRIBE per channel with members on
 * this node, every publish out, and what an outage costs (see bridge.h).
 *
 * Thread: the relay thread. */
#include "channels/bridge_int.h"

#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "base/log.h"
#include "channels/room.h"
#include "net/uring.h"
#include "redis/client.h"
#include "redis/envelope.h"
#include "proto/json.h"

enum { TAG_CMD = 1, TAG_SUB = 2 };

/* A channel's state, in its rc_room's flags (the room has no members: the
 * bridge's table is a set of names). */
#define F_WANT  1u  /* the relay wants it */
#define F_SENT  2u  /* SUBSCRIBE sent, confirmation not yet seen */
#define F_LIVE  4u  /* confirmed */
#define F_GAP   8u  /* answered or dropped while the link was down */
#define F_DIRTY 16u /* in the dirty list */

/* (UN)SUBSCRIBE commands carry at most this many channels. */
#define BATCH 1024

/* ---- names --------------------------------------------------------------- */

/* PREFIX "ch:" chan into out[cap]; its length, or 0 when it does not fit. */
size_t rc_bridge_redis_name(const rc_bridge *b, rc_str chan, char *out, size_t cap)
{
    if (b->prefix_len + chan.n + 1 > cap)
        return 0;
    memcpy(out, b->prefix, b->prefix_len);
    memcpy(out + b->prefix_len, chan.p, chan.n);
    out[b->prefix_len + chan.n] = '\0';
    return b->prefix_len + chan.n;
}

/* The ringcast channel inside a Redis channel name, or n == 0 if not ours. */
static rc_str chan_of(const rc_bridge *b, const redisReply *name)
{
    if (!name || name->type != REDIS_REPLY_STRING || name->len <= b->prefix_len ||
        memcmp(name->str, b->prefix, b->prefix_len) != 0)
        return RC_STR_NULL;
    return (rc_str){name->str + b->prefix_len, name->len - b->prefix_len};
}

/* ---- subscriptions ------------------------------------------------------- */

static void mark_dirty(rc_bridge *b, rc_room *c)
{
    if (c->flags & F_DIRTY)
        return;
    if (b->ndirty == b->dirty_cap) {
        b->dirty_cap = b->dirty_cap ? b->dirty_cap * 2 : 64;
        b->dirty = rc_realloc(b->dirty, b->dirty_cap * sizeof(*b->dirty));
    }
    c->flags |= F_DIRTY;
    b->dirty[b->ndirty++] = c;
}

static void set_live(rc_bridge *b, rc_room *c, bool live)
{
    if (!!(c->flags & F_LIVE) == live)
        return;
    c->flags ^= F_LIVE;
    if (c->name_len > 4 && memcmp(c->name, "_rc.", 4) == 0)
        return; /* the node's own channels are not its members' */
    rc_counter_set(&b->stats->subscriptions,
                   rc_counter_get(&b->stats->subscriptions) + (live ? 1 : (uint64_t)-1));
}

int rc_bridge_subscribe(rc_bridge *b, rc_str chan)
{
    rc_room *c = rc_rooms_add(b->chans, chan.p, chan.n);
    c->flags |= F_WANT;
    if (rc_redis_get_state(b->sub) != RC_REDIS_READY) {
        c->flags |= F_GAP;
        return 1;
    }
    if (c->flags & F_LIVE) /* still subscribed: an UNSUBSCRIBE was not sent yet */
        return 1;
    mark_dirty(b, c); /* SUBSCRIBE, unless one is already on its way */
    return 0;
}

void rc_bridge_unsubscribe(rc_bridge *b, rc_str chan)
{
    rc_room *c = rc_rooms_get(b->chans, chan.p, chan.n);
    if (!c)
        return;
    c->flags &= ~(F_WANT | F_GAP);
    mark_dirty(b, c);
}

/* Sends one command of verb over the names in list[0..n). */
static void send_batch(rc_bridge *b, const char *verb, rc_room **list, size_t n)
{
    if (!n)
        return;
    const size_t each = b->prefix_len + RC_PROTO_MAX_CHANNEL + 1, alias_each = 512;
    const char **argv = rc_malloc((2 * n + 1) * sizeof(*argv));
    size_t *lens = rc_malloc((2 * n + 1) * sizeof(*lens));
    char *names = rc_malloc(n * (each + (b->alias.name ? alias_each : 0)));
    char *w = names;
    int argc = 1;
    argv[0] = verb;
    lens[0] = strlen(verb);
    for (size_t i = 0; i < n; i++) {
        rc_str chan = {list[i]->name, list[i]->name_len};
        size_t len = rc_bridge_redis_name(b, chan, w, each);
        argv[argc] = w;
        lens[argc++] = len;
        w += len + 1;
        if (b->alias.name && !(chan.n > 4 && memcmp(chan.p, "_rc.", 4) == 0) &&
            (len = b->alias.name(b->alias_u, chan, w, alias_each)) > 0) {
            argv[argc] = w;
            lens[argc++] = len;
            w += len + 1;
        }
    }
    if (rc_redis_send_raw(b->sub, argc, argv, lens) < 0)
        rc_warn("redis: %s of %zu channels refused by the connection", verb, n);
    free(names);
    free(lens);
    free(argv);
}

/* Turns this turn's changes into at most a few (UN)SUBSCRIBE commands. */
static void flush_dirty(rc_bridge *b)
{
    if (!b->ndirty)
        return;
    bool ready = rc_redis_get_state(b->sub) == RC_REDIS_READY;
    rc_room **subs = rc_malloc(b->ndirty * sizeof(*subs));
    rc_room **unsubs = rc_malloc(b->ndirty * sizeof(*unsubs));
    size_t ns = 0, nu = 0;
    for (size_t i = 0; i < b->ndirty; i++) {
        rc_room *c = b->dirty[i];
        c->flags &= ~F_DIRTY;
        if (ready && (c->flags & F_WANT) && !(c->flags & (F_SENT | F_LIVE))) {
            c->flags |= F_SENT;
            subs[ns++] = c;
        } else if (ready && !(c->flags & F_WANT) && (c->flags & F_LIVE)) {
            set_live(b, c, false);
            unsubs[nu++] = c;
        }
    }
    for (size_t i = 0; i < ns; i += BATCH)
        send_batch(b, "SUBSCRIBE", subs + i, RC_MIN((size_t)BATCH, ns - i));
    for (size_t i = 0; i < nu; i += BATCH)
        send_batch(b, "UNSUBSCRIBE", unsubs + i, RC_MIN((size_t)BATCH, nu - i));
    /* An entry nobody wants and nothing waits for is forgotten (after the
     * UNSUBSCRIBE was formatted: it used the name). An unwanted entry whose
     * SUBSCRIBE is on its way stays until the confirmation, which then
     * unsubscribes it: confirmations are matched to entries by name, so
     * one must never outlive its entry. */
    size_t ng = 0;
    for (size_t i = 0; i < b->ndirty; i++)
        if (!(b->dirty[i]->flags & (F_WANT | F_SENT | F_LIVE)))
            b->dirty[ng++] = b->dirty[i];
    for (size_t i = 0; i < ng; i++)
        rc_rooms_del(b->chans, b->dirty[i]);
    b->ndirty = 0;
    free(subs);
    free(unsubs);
}

static void on_confirm(rc_bridge *b, rc_str chan)
{
    rc_room *c = chan.n ? rc_rooms_get(b->chans, chan.p, chan.n) : NULL;
    if (!c || !(c->flags & F_SENT))
        return;
    c->flags &= ~F_SENT;
    set_live(b, c, true);
    if (!(c->flags & F_WANT)) {
        mark_dirty(b, c);
        return;
    }
    bool gap = c->flags & F_GAP;
    c->flags &= ~F_GAP;
    b->ops.subscribed(b->u, chan, gap);
}

typedef struct sweep {
    rc_bridge *b;
    rc_room **gone;
    size_t n, cap;
} sweep;

static void sweep_one(rc_room *c, void *arg)
{
    sweep *s = arg;
    c->flags &= ~(F_SENT | F_DIRTY);
    set_live(s->b, c, false);
    if (c->flags & F_WANT) {
        c->flags |= F_GAP;
        return;
    }
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 64;
        s->gone = rc_realloc(s->gone, s->cap * sizeof(*s->gone));
    }
    s->gone[s->n++] = c;
}

static void resub_one(rc_room *c, void *arg)
{
    if (c->flags & F_WANT)
        mark_dirty(arg, c);
}

/* ---- hooks --------------------------------------------------------------- */

/* A connection dropped (logged once) or an attempt failed (counted). */
static void link_lost(rc_bridge *b, rc_counter *up, const char *which, const char *reason)
{
    if (rc_counter_get(up))
        rc_warn("redis: %s connection lost: %s", which, reason);
    else
        rc_counter_inc(&b->stats->connect_failures);
    rc_counter_set(up, 0);
}

/* SUBSCRIBE to the raw names from index from on, when the connection is up.
 * Their confirmations name no channel of ours: on_confirm ignores them. */
static void send_raw(rc_bridge *b, size_t from)
{
    if (from >= b->nraw || rc_redis_get_state(b->sub) != RC_REDIS_READY)
        return;
    size_t n = b->nraw - from;
    const char **argv = rc_malloc((n + 1) * sizeof(*argv));
    size_t *lens = rc_malloc((n + 1) * sizeof(*lens));
    argv[0] = "SUBSCRIBE";
    lens[0] = 9;
    for (size_t i = 0; i < n; i++) {
        argv[i + 1] = b->raw[from + i];
        lens[i + 1] = strlen(b->raw[from + i]);
    }
    if (rc_redis_send_raw(b->sub, (int)n + 1, argv, lens) < 0)
        rc_warn("redis: SUBSCRIBE of %zu fixed channels refused by the connection", n);
    free(lens);
    free(argv);
}

static void sub_ready(void *u)
{
    rc_bridge *b = u;
    send_raw(b, 0);
    rc_info("redis: subscriber connection ready; subscribing %zu channels",
            rc_rooms_count(b->chans));
    rc_counter_set(&b->stats->up_subscriber, 1);
    rc_rooms_each(b->chans, resub_one, b);
}

static void sub_down(void *u, const char *reason)
{
    rc_bridge *b = u;
    link_lost(b, &b->stats->up_subscriber, "subscriber", reason);
    b->ndirty = 0;
    sweep s = {b, NULL, 0, 0};
    rc_rooms_each(b->chans, sweep_one, &s);
    for (size_t i = 0; i < s.n; i++)
        rc_rooms_del(b->chans, s.gone[i]);
    free(s.gone);
    b->ops.link_down(b->u);
}

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

static void on_message(rc_bridge *b, const redisReply *rep)
{
    rc_counter_inc(&b->stats->messages_in);
    rc_str chan = chan_of(b, rep->element[1]);
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

static void sub_push(void *u, redisReply *rep)
{
    rc_bridge *b = u;
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 2 || !rep->element[0] ||
        rep->element[0]->type != REDIS_REPLY_STRING)
        return;
    const redisReply *kind = rep->element[0];
    if (kind->len == 7 && strncasecmp(kind->str, "message", 7) == 0)
        on_message(b, rep);
    else if (kind->len == 9 && strncasecmp(kind->str, "subscribe", 9) == 0)
        on_confirm(b, chan_of(b, rep->element[1]));
}

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

void rc_bridge_subscribe_raw(rc_bridge *b, rc_str name)
{
    b->raw = rc_realloc(b->raw, (b->nraw + 1) * sizeof(*b->raw));
    b->raw[b->nraw++] = rc_strndup(name.p, name.n);
    send_raw(b, b->nraw - 1);
}

void rc_bridge_on_direct(rc_bridge *b, void (*fn)(void *u, rc_str chan, rc_str payload), void *u)
{
    b->direct = fn;
    b->direct_u = u;
}

bool rc_bridge_command_ready(const rc_bridge *b)
{
    return rc_redis_get_state(b->cmd) == RC_REDIS_READY;
}

size_t rc_bridge_channel_name(const rc_bridge *b, rc_str chan, char *out, size_t cap)
{
    return rc_bridge_redis_name(b, chan, out, cap);
}

static void cmd_ready(void *u)
{
    rc_bridge *b = u;
    rc_info("redis: command connection ready (%zu publishes held)", b->held_count);
    rc_counter_set(&b->stats->up_command, 1);
    /* Before anything held: publishes with history run it by its SHA1. */
    if (b->cfg->n_history)
        rc_bridge_load_scripts(b);
    rc_bridge_drain_held(b);
}

static void cmd_down(void *u, const char *reason)
{
    rc_bridge *b = u;
    link_lost(b, &b->stats->up_command, "command", reason);
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
    rc_redis_url url;
    char err[256];
    int e = rc_redis_url_parse(cfg->redis_url, &url, err, sizeof(err));
    rc_assert(e == 0); /* config checked it */
    rc_redis_hooks hc = {.on_ready = cmd_ready, .on_down = cmd_down, .on_push = NULL};
    rc_redis_hooks hs = {.on_ready = sub_ready, .on_down = sub_down, .on_push = sub_push};
    b->cmd = rc_redis_new(ring, &url, &hc, b, TAG_CMD);
    b->sub = rc_redis_new(ring, &url, &hs, b, TAG_SUB);
    size_t maxq = cfg->redis_backlog_bytes < 65536 ? 65536 : cfg->redis_backlog_bytes;
    rc_redis_set_max_queued(b->cmd, maxq);
    rc_redis_set_max_queued(b->sub, RC_MAX(maxq, (size_t)RC_REDIS_DEFAULT_MAX_QUEUED));
    rc_redis_set_ping_interval(b->cmd, cfg->redis_ping_ms);
    rc_redis_set_ping_interval(b->sub, cfg->redis_ping_ms);
    return b;
}

void rc_bridge_on_cqe(rc_bridge *b, struct io_uring_cqe *cqe)
{
    uint16_t tag = rc_ud_gen(cqe->user_data);
    if (tag == TAG_CMD)
        rc_redis_on_cqe(b->cmd, cqe);
    else if (tag == TAG_SUB)
        rc_redis_on_cqe(b->sub, cqe);
}

void rc_bridge_tick(rc_bridge *b, uint64_t now_ms)
{
    rc_redis_tick(b->sub, now_ms);
    rc_redis_tick(b->cmd, now_ms);
    flush_dirty(b);
    rc_bridge_drain_held(b);
    rc_bridge_announce_lost(b);
    rc_redis_flush(b->sub);
    rc_redis_flush(b->cmd);

    rc_redis_stats cs, ss;
    rc_redis_get_stats(b->cmd, &cs);
    rc_redis_get_stats(b->sub, &ss);
    rc_counter_set(&b->stats->rtt_us_command, cs.rtt_us);
    rc_counter_set(&b->stats->rtt_us_subscriber, ss.rtt_us);
    rc_counter_set(&b->stats->pipeline_depth, cs.pipeline_depth);
    rc_counter_set(&b->stats->backlog_bytes, b->held_bytes + cs.queued_bytes);
    rc_counter_set(&b->stats->reconnects, cs.reconnects + ss.reconnects);
}

bool rc_bridge_live(const rc_bridge *b, rc_str chan)
{
    const rc_room *c = rc_rooms_get(b->chans, chan.p, chan.n);
    return c && (c->flags & F_LIVE) && rc_redis_get_state(b->sub) == RC_REDIS_READY;
}

bool rc_bridge_ready(const rc_bridge *b)
{
    return rc_redis_get_state(b->cmd) == RC_REDIS_READY &&
           rc_redis_get_state(b->sub) == RC_REDIS_READY;
}

bool rc_bridge_busy(const rc_bridge *b)
{
    if (rc_redis_get_state(b->cmd) != RC_REDIS_READY)
        return false;
    rc_redis_stats st;
    rc_redis_get_stats(b->cmd, &st);
    return b->head || st.queued_bytes || st.pipeline_depth;
}

void rc_bridge_close(rc_bridge *b)
{
    rc_redis_close(b->cmd);
    rc_redis_close(b->sub);
}

bool rc_bridge_idle(const rc_bridge *b)
{
    return rc_redis_idle(b->cmd) && rc_redis_idle(b->sub);
}

void rc_bridge_free(rc_bridge *b)
{
    if (!b)
        return;
    if (b->head)
        rc_warn("redis: %zu publishes (%zu bytes) held for Redis were never sent", b->held_count,
                b->held_bytes);
    rc_counter_add(&b->stats->publish_dropped, b->held_count);
    rc_redis_free(b->cmd);
    rc_redis_free(b->sub);
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
