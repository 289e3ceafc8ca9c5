/* The channels' link to Redis, its subscribing half (channels/bridge.h):
 * one SUBSCRIBE per channel with members on this node (on a Redis Cluster
 * one SSUBSCRIBE per slot's channels, on the slot's primary), what Redis
 * confirms or takes back, and what a lost connection or a moved slot
 * costs. Messages, publishes and the connections' life are bridge.c's and
 * bridge_publish.c's.
 *
 * Thread: the relay thread. */
#include "channels/bridge_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/log.h"
#include "channels/room.h"
#include "redis/link.h"

/* (UN)SUBSCRIBE commands carry at most this many channels. */
#define BATCH 1024

/* ---- subscriptions ------------------------------------------------------- */

/* On a cluster a channel's entry keeps, in seq, the node its SSUBSCRIBE
 * went to (its subscription lives there), and in held its slot + 1. */
static int slot_of(rc_bridge *b, rc_room *c)
{
    if (!c->held)
        c->held = (uint32_t)rc_bridge_slot(b, (rc_str){c->name, c->name_len}) + 1;
    return (int)c->held - 1;
}

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

/* The node chan's subscription would go to now (0: not ready). */
static uint16_t sub_node(rc_bridge *b, rc_room *c)
{
    return rc_rlink_ready_node(b->sub, rc_bridge_cluster(b) ? slot_of(b, c) : -1);
}

int rc_bridge_subscribe(rc_bridge *b, rc_str chan)
{
    rc_room *c = rc_rooms_add(b->chans, chan.p, chan.n);
    c->flags |= F_WANT;
    if (!sub_node(b, c)) {
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

static bool own_channel(const rc_room *c)
{
    return c->name_len > 4 && memcmp(c->name, "_rc.", 4) == 0;
}

/* One command of verb over list[0..n): the channels' Redis names (chans),
 * their aliases (aliases), or both. To node `to`, or to slot's owner when
 * to is 0. The node it went to, or 0. */
static uint16_t send_batch(rc_bridge *b, const char *verb, rc_room **list, size_t n, bool chans,
                           bool aliases, int slot, uint16_t to)
{
    if (!n)
        return 0;
    aliases = aliases && b->alias.name;
    const size_t each = b->prefix_len + RC_PROTO_MAX_CHANNEL + 3, alias_each = 512;
    const char **argv = rc_malloc((2 * n + 1) * sizeof(*argv));
    size_t *lens = rc_malloc((2 * n + 1) * sizeof(*lens));
    char *names = rc_malloc(n * ((chans ? each : 0) + (aliases ? alias_each : 0)));
    char *w = names;
    int argc = 1;
    argv[0] = verb;
    lens[0] = strlen(verb);
    for (size_t i = 0; i < n; i++) {
        rc_str chan = {list[i]->name, list[i]->name_len};
        size_t len;
        if (chans) {
            len = rc_bridge_redis_name(b, chan, w, each);
            argv[argc] = w;
            lens[argc++] = len;
            w += len + 1;
        }
        if (aliases && !own_channel(list[i]) &&
            (len = b->alias.name(b->alias_u, chan, w, alias_each)) > 0) {
            argv[argc] = w;
            lens[argc++] = len;
            w += len + 1;
        }
    }
    uint16_t node = 0;
    if (argc > 1) {
        if (to)
            node = rc_rlink_send_raw_on(b->sub, to, argc, argv, lens) == 0 ? to : 0;
        else
            node = rc_rlink_send_raw(b->sub, slot, argc, argv, lens);
        if (!node)
            rc_warn("redis: %s of %zu channels refused by the connection", verb, n);
    }
    free(names);
    free(lens);
    free(argv);
    return node;
}

static int by_slot(const void *x, const void *y)
{
    const rc_room *a = *(rc_room *const *)x, *c = *(rc_room *const *)y;
    return (a->held > c->held) - (a->held < c->held);
}

static int by_node(const void *x, const void *y)
{
    const rc_room *a = *(rc_room *const *)x, *c = *(rc_room *const *)y;
    return (a->seq > c->seq) - (a->seq < c->seq);
}

/* A cluster's SSUBSCRIBEs, one per slot (each command names one slot's
 * channels), and their aliases' SUBSCRIBE on the node that holds the
 * classic ones. */
static void subscribe_cluster(rc_bridge *b, rc_room **subs, size_t ns)
{
    for (size_t i = 0; i < ns; i++)
        slot_of(b, subs[i]);
    qsort(subs, ns, sizeof(*subs), by_slot);
    for (size_t i = 0, j; i < ns; i = j) {
        for (j = i + 1; j < ns && j - i < BATCH && subs[j]->held == subs[i]->held; j++)
            ;
        uint16_t node =
            send_batch(b, "SSUBSCRIBE", subs + i, j - i, true, false, (int)subs[i]->held - 1, 0);
        for (size_t k = i; k < j; k++) {
            subs[k]->seq = node;
            if (!node) { /* not sent: again once the map or the node changes */
                subs[k]->flags &= ~F_SENT;
                b->resync = true;
            }
        }
    }
    if (b->raw_node && rc_rlink_node_ready(b->sub, b->raw_node))
        for (size_t i = 0; i < ns; i += BATCH)
            send_batch(b, "SUBSCRIBE", subs + i, RC_MIN((size_t)BATCH, ns - i), false, true, -1,
                       b->raw_node);
}

static void unsubscribe_cluster(rc_bridge *b, rc_room **unsubs, size_t nu)
{
    qsort(unsubs, nu, sizeof(*unsubs), by_node);
    for (size_t i = 0, j; i < nu; i = j) {
        for (j = i + 1; j < nu && j - i < BATCH && unsubs[j]->seq == unsubs[i]->seq; j++)
            ;
        uint16_t node = (uint16_t)unsubs[i]->seq;
        if (node && rc_rlink_node_ready(b->sub, node))
            send_batch(b, "SUNSUBSCRIBE", unsubs + i, j - i, true, false, -1, node);
    }
    if (b->raw_node && rc_rlink_node_ready(b->sub, b->raw_node))
        for (size_t i = 0; i < nu; i += BATCH)
            send_batch(b, "UNSUBSCRIBE", unsubs + i, RC_MIN((size_t)BATCH, nu - i), false, true, -1,
                       b->raw_node);
}

/* Turns this turn's changes into at most a few (UN)SUBSCRIBE commands (on
 * a cluster, a few per slot and per node). */
void rc_bridge_flush_subs(rc_bridge *b)
{
    if (!b->ndirty)
        return;
    bool cluster = rc_bridge_cluster(b);
    rc_room **subs = rc_malloc(b->ndirty * sizeof(*subs));
    rc_room **unsubs = rc_malloc(b->ndirty * sizeof(*unsubs));
    size_t ns = 0, nu = 0;
    for (size_t i = 0; i < b->ndirty; i++) {
        rc_room *c = b->dirty[i];
        c->flags &= ~F_DIRTY;
        if ((c->flags & F_WANT) && !(c->flags & (F_SENT | F_LIVE)) && sub_node(b, c)) {
            c->flags |= F_SENT;
            subs[ns++] = c;
        } else if (!(c->flags & F_WANT) && (c->flags & F_LIVE)) {
            set_live(b, c, false);
            unsubs[nu++] = c;
        }
    }
    if (cluster) {
        subscribe_cluster(b, subs, ns);
        unsubscribe_cluster(b, unsubs, nu);
    } else {
        for (size_t i = 0; i < ns; i += BATCH)
            send_batch(b, "SUBSCRIBE", subs + i, RC_MIN((size_t)BATCH, ns - i), true, true, -1, 0);
        for (size_t i = 0; i < nu; i += BATCH)
            send_batch(b, "UNSUBSCRIBE", unsubs + i, RC_MIN((size_t)BATCH, nu - i), true, true, -1,
                       0);
    }
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

/* A channel whose subscription is gone (its node dropped or gave its slot
 * away): wanted, it is subscribed again, and its members are told once
 * that is done; unwanted, it is forgotten. */
static bool drop_sub(rc_bridge *b, rc_room *c)
{
    c->flags &= ~F_SENT;
    set_live(b, c, false);
    if (c->flags & F_WANT) {
        c->flags |= F_GAP;
        return false;
    }
    return !(c->flags & F_DIRTY);
}

typedef struct sweep {
    rc_bridge *b;
    uint16_t node; /* 0: every channel */
    rc_room **gone;
    size_t n, cap;
} sweep;

static void sweep_one(rc_room *c, void *arg)
{
    sweep *s = arg;
    if (s->node && c->seq != s->node)
        return;
    if (!s->node)
        c->flags &= ~F_DIRTY;
    if (!(c->flags & (F_SENT | F_LIVE)) && (c->flags & F_WANT)) {
        c->flags |= F_GAP; /* answered while the link is down */
        return;
    }
    if (!drop_sub(s->b, c))
        return;
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 64;
        s->gone = rc_realloc(s->gone, s->cap * sizeof(*s->gone));
    }
    s->gone[s->n++] = c;
}

/* Every subscription held on node (0: all) is gone. */
static void sweep_node(rc_bridge *b, uint16_t node)
{
    if (!node)
        b->ndirty = 0;
    sweep s = {b, node, NULL, 0, 0};
    rc_rooms_each(b->chans, sweep_one, &s);
    for (size_t i = 0; i < s.n; i++)
        rc_rooms_del(b->chans, s.gone[i]);
    free(s.gone);
}

/* Each wanted channel not subscribed where its slot lives now is
 * subscribed there (a cluster's slot moved, a node came back). */
static void reconcile_one(rc_room *c, void *arg)
{
    rc_bridge *b = arg;
    if (!(c->flags & F_WANT))
        return;
    uint16_t owner = sub_node(b, c);
    if ((c->flags & F_LIVE) && rc_bridge_cluster(b) && owner && c->seq != owner) {
        /* moved: leave the old node (if it is still there) and go */
        uint16_t old = (uint16_t)c->seq;
        if (old && rc_rlink_node_ready(b->sub, old))
            send_batch(b, "SUNSUBSCRIBE", &c, 1, true, false, -1, old);
        drop_sub(b, c);
    }
    if (!(c->flags & (F_SENT | F_LIVE)) && owner)
        mark_dirty(b, c);
}

static void send_raw(rc_bridge *b, size_t from)
{
    if (from >= b->nraw || !b->raw_node || !rc_rlink_node_ready(b->sub, b->raw_node))
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
    if (rc_rlink_send_raw_on(b->sub, b->raw_node, (int)n + 1, argv, lens) < 0)
        rc_warn("redis: SUBSCRIBE of %zu fixed channels refused by the connection", n);
    free(lens);
    free(argv);
}

typedef struct wanted {
    rc_room **v;
    size_t n, cap;
} wanted;

static void collect_wanted(rc_room *c, void *arg)
{
    wanted *w = arg;
    if (!(c->flags & F_WANT) || own_channel(c))
        return;
    if (w->n == w->cap) {
        w->cap = w->cap ? w->cap * 2 : 64;
        w->v = rc_realloc(w->v, w->cap * sizeof(*w->v));
    }
    w->v[w->n++] = c;
}

/* A cluster: the classic subscriptions (the raw names, every wanted
 * channel's alias) go to node, which now holds them. */
static void classic_to(rc_bridge *b, uint16_t node)
{
    b->raw_node = node;
    send_raw(b, 0);
    if (!b->alias.name)
        return;
    wanted w = {NULL, 0, 0};
    rc_rooms_each(b->chans, collect_wanted, &w);
    for (size_t i = 0; i < w.n; i += BATCH)
        send_batch(b, "SUBSCRIBE", w.v + i, RC_MIN((size_t)BATCH, w.n - i), false, true, -1, node);
    free(w.v);
}

void rc_bridge_reconcile(rc_bridge *b)
{
    b->resync = false;
    if (rc_bridge_cluster(b) && !(b->raw_node && rc_rlink_node_ready(b->sub, b->raw_node))) {
        uint16_t any = rc_rlink_ready_node(b->sub, -1);
        if (any)
            classic_to(b, any);
    }
    rc_rooms_each(b->chans, reconcile_one, b);
}

static void sub_ready(void *u, uint16_t node)
{
    rc_bridge *b = u;
    rc_rlink_stats st;
    rc_rlink_get_stats(b->sub, &st);
    if (!rc_bridge_cluster(b)) {
        b->raw_node = node;
        send_raw(b, 0);
        rc_info("redis: subscriber connection ready; subscribing %zu channels",
                rc_rooms_count(b->chans));
    } else {
        rc_info("redis: subscriber connection to a cluster primary ready (%u of %u)", st.nodes_up,
                st.nodes);
        if (b->raw_node == node)
            classic_to(b, node);
    }
    rc_counter_set(&b->stats->up_subscriber, rc_rlink_ready(b->sub));
    rc_bridge_reconcile(b);
}

static void sub_down(void *u, uint16_t node, const char *reason)
{
    rc_bridge *b = u;
    rc_bridge_link_lost(b, &b->stats->up_subscriber, "subscriber", reason);
    if (!rc_bridge_cluster(b)) {
        sweep_node(b, 0);
    } else {
        sweep_node(b, node);
        if (b->raw_node == node)
            b->raw_node = 0;
        b->resync = true;
        b->resync_due_ms = rc_now_ms() + 100;
    }
    b->ops.link_down(b->u);
}

static void sub_map(void *u)
{
    rc_bridge_reconcile(u);
}

static void on_dropped(rc_bridge *b, uint16_t node, rc_str chan)
{
    rc_room *c = chan.n ? rc_rooms_get(b->chans, chan.p, chan.n) : NULL;
    if (!c || !(c->flags & F_LIVE) || c->seq != node)
        return; /* the answer to our own SUNSUBSCRIBE */
    uint64_t now = rc_now_ms();
    if (now - b->last_moved_log_ms >= 1000) {
        b->last_moved_log_ms = now;
        rc_info("redis: the cluster moved channel %.*s (and maybe others): subscribing again "
                "where its slot lives (logged at most once a second)",
                (int)chan.n, chan.p);
    }
    drop_sub(b, c);
    /* the map read that follows subscribes it again; this is the fallback */
    if (!b->resync)
        b->resync_due_ms = now + 1000;
    b->resync = true;
    rc_rlink_refresh(b->sub);
}

static void unsent_on(rc_room *c, void *arg)
{
    if ((c->flags & F_SENT) && c->seq == *(uint16_t *)arg)
        c->flags &= ~F_SENT;
}

static bool kind_is(const redisReply *k, const char *s)
{
    size_t n = strlen(s);
    return k->len == n && strncasecmp(k->str, s, n) == 0;
}

static void sub_push(void *u, uint16_t node, redisReply *rep)
{
    rc_bridge *b = u;
    if (rep->type == REDIS_REPLY_ERROR) {
        /* an SSUBSCRIBE refused (MOVED: the map is stale): every channel
         * sent there and not confirmed goes again once the map is read */
        bool moved = rc_rlink_moved(b->sub, rep->str);
        if (!moved)
            rc_warn("redis: a subscription was refused: %s", rep->str);
        rc_rooms_each(b->chans, unsent_on, &node);
        b->resync = true;
        b->resync_due_ms = rc_now_ms() + (moved ? 0 : 500);
        rc_rlink_refresh(b->sub);
        return;
    }
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 2 || !rep->element[0] ||
        rep->element[0]->type != REDIS_REPLY_STRING)
        return;
    const redisReply *kind = rep->element[0];
    if (kind_is(kind, "message") || kind_is(kind, "smessage"))
        rc_bridge_on_message(b, rep);
    else if (kind_is(kind, "subscribe") || kind_is(kind, "ssubscribe"))
        on_confirm(b, rc_bridge_chan_of(b, rep->element[1]));
    else if (kind_is(kind, "sunsubscribe"))
        on_dropped(b, node, rc_bridge_chan_of(b, rep->element[1]));
}

void rc_bridge_subscribe_raw(rc_bridge *b, rc_str name)
{
    b->raw = rc_realloc(b->raw, (b->nraw + 1) * sizeof(*b->raw));
    b->raw[b->nraw++] = rc_strndup(name.p, name.n);
    send_raw(b, b->nraw - 1);
}

bool rc_bridge_live(const rc_bridge *b, rc_str chan)
{
    const rc_room *c = rc_rooms_get(b->chans, chan.p, chan.n);
    return c && (c->flags & F_LIVE) &&
           (rc_bridge_cluster(b) ? rc_rlink_node_ready(b->sub, (uint16_t)c->seq)
                                 : rc_rlink_ready(b->sub));
}

const rc_rlink_hooks rc_bridge_sub_hooks = {
    .on_ready = sub_ready, .on_down = sub_down, .on_push = sub_push, .on_map = sub_map};
