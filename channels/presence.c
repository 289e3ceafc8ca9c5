/* Presence on the relay (channels/presence.h): this node's members of each
 * channel with a presence rule, their joins and leaves, and the scripts
 * that keep a channel's presence in Redis. The questions are answered in
 * channels/presence_ask.c.
 *
 * Thread: the relay thread, but for rc_presreq_new/free (any thread). */
#include "channels/presence_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "base/log.h"
#include "proto/json.h"

rc_presreq *rc_presreq_new(rc_str chan, rc_str user, rc_str info)
{
    rc_presreq *q = rc_calloc(1, sizeof(*q) + chan.n + user.n + info.n + 3);
    memcpy(q->chan, chan.p, chan.n);
    q->chan_len = (uint16_t)chan.n;
    char *u = q->chan + chan.n + 1;
    if (user.n)
        memcpy(u, user.p, user.n);
    q->user = u;
    q->user_len = (uint16_t)user.n;
    char *i = u + user.n + 1;
    if (info.n)
        memcpy(i, info.p, info.n);
    q->info = i;
    q->info_len = (uint16_t)info.n;
    return q;
}

void rc_presreq_free(rc_presreq *q)
{
    if (!q)
        return;
    free(q->members);
    free(q);
}

/* ---- the table ------------------------------------------------------------ */

rc_presence *rc_presence_new(const rc_config *cfg, const rc_presence_ops *ops, void *u,
                             rc_presence_stats *stats)
{
    rc_presence *p = rc_calloc(1, sizeof(*p));
    p->cfg = cfg;
    p->ops = *ops;
    p->u = u;
    p->stats = stats;
    p->chans = rc_rooms_new();
    p->ttl_ms = (uint64_t)cfg->presence_ttl_s * 1000;
    uint64_t r = 0;
    if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
        r = rc_now_ns() ^ ((uint64_t)rc_wall_ms() << 20);
    snprintf(p->boot, sizeof(p->boot), "%016llx", (unsigned long long)r);
    char node[RC_JSON_ESCAPED_MAX(RC_PROTO_MAX_NODE)];
    ssize_t nn = rc_json_escape(node, sizeof(node), cfg->node_id, strlen(cfg->node_id));
    rc_assert(nn > 0);
    snprintf(p->prefix_join, sizeof(p->prefix_join), "{\"node\":%.*s,\"join\":", (int)nn, node);
    snprintf(p->prefix_leave, sizeof(p->prefix_leave), "{\"node\":%.*s,\"leave\":", (int)nn, node);
    return p;
}

void rc_presence_attach(rc_presence *p, rc_bridge *bridge)
{
    p->bridge = bridge;
}

static void pchan_free(pchan *c)
{
    for (size_t i = 0; i < c->n_order; i++)
        free(c->order[i]);
    free(c->order);
    free(c->pend);
    for (size_t i = 0; i < c->n_leaves; i++)
        free(c->leaves[i]);
    free(c->leaves);
    rc_rooms_free(c->byconn);
    rc_rooms_free(c->users);
    for (rc_presreq *q = c->waiting, *next; q; q = next) {
        next = q->next;
        rc_presreq_free(q);
    }
    free(c);
}

static void free_one(rc_room *r, void *arg)
{
    pchan_free(r->udata);
    r->udata = NULL;
}

void rc_presence_free(rc_presence *p)
{
    if (!p)
        return;
    rc_rooms_each(p->chans, free_one, NULL);
    rc_rooms_free(p->chans);
    free(p->dirty);
    free(p);
}

pchan *rc_pres_chan(rc_presence *p, rc_str chan, int create)
{
    rc_room *r = rc_rooms_get(p->chans, chan.p, chan.n);
    if (!r && !create)
        return NULL;
    if (!r) {
        r = rc_rooms_add(p->chans, chan.p, chan.n);
        pchan *c = rc_calloc(1, sizeof(*c));
        c->byconn = rc_rooms_new();
        c->users = rc_rooms_new();
        const rc_presence_rule *rule = rc_config_presence(p->cfg, chan.p, chan.n);
        c->join_leave = rule && rule->join_leave;
        r->udata = c;
    }
    return r->udata;
}

/* Forgets chan once nothing is left in it. */
void rc_pres_chan_check(rc_presence *p, rc_str chan)
{
    rc_room *r = rc_rooms_get(p->chans, chan.p, chan.n);
    pchan *c = r ? r->udata : NULL;
    if (c && c->live == 0 && !c->waiting && !c->reading && !c->dirty && !c->n_leaves) {
        pchan_free(c);
        rc_rooms_del(p->chans, r);
    }
}

static size_t conn_name(uint64_t conn, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%llu", (unsigned long long)conn);
    rc_assert(n > 0 && (size_t)n < cap);
    return (size_t)n;
}

/* The first index of c->order with seq > after (binary search: order is
 * sorted by seq, holes included, as each hole keeps its place). */
size_t rc_pres_order_after(const pchan *c, uint64_t after)
{
    size_t lo = 0, hi = c->n_order;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        /* A hole takes the seq of the next entry that is not one. */
        size_t k = mid;
        while (k < hi && !c->order[k])
            k++;
        if (k == hi) {
            hi = mid;
        } else if (c->order[k]->seq <= after) {
            lo = k + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

static void compact(pchan *c)
{
    size_t w = 0;
    for (size_t i = 0; i < c->n_order; i++)
        if (c->order[i])
            c->order[w++] = c->order[i];
    c->n_order = w;
}

static void emit_event(rc_presence *p, rc_str chan, int join, rc_str member)
{
    char small[RC_PROTO_MEMBER_MAX + RC_PROTO_MAX_CHANNEL + 64];
    ssize_t n = rc_proto_presence_event(small, sizeof(small), join, chan, member);
    if (n < 0)
        return; /* a member JSON too long for a frame is not ours */
    rc_msg *m = rc_msg_new_text(chan, small, (size_t)n);
    m->kind = RC_MSG_PRESENCE;
    rc_counter_inc(&p->stats->events);
    p->ops.emit(p->u, chan, m);
}

/* ---- Redis ------------------------------------------------------------------ */

/* Adds (or refreshes) members. ARGV: Redis channel, ev (the command that
 * announces joins and leaves, PUBLISH or SPUBLISH, or 0: none), the join event's
 * start, ttl ms, then member, user, JSON for each. A member new to the
 * channel is counted and announced; one already there gets its new time. */
static const char ADD_LUA[] =
    PRELUDE "sweep(ARGV[1], ARGV[2])\n"
            "local ttl = tonumber(ARGV[4])\n"
            "for k = 5, #ARGV, 3 do\n"
            "  local m, u, inf = ARGV[k], ARGV[k + 1], ARGV[k + 2]\n"
            "  if redis.call('ZADD', KEYS[1], now + ttl, m) == 1 then\n"
            "    redis.call('ZADD', KEYS[2], 0, m)\n"
            "    redis.call('HSET', KEYS[3], m, inf)\n"
            "    if u ~= '' then redis.call('HINCRBY', KEYS[4], u, 1) end\n"
            "    if ARGV[2] ~= '0' then redis.call(ARGV[2], ARGV[1], ARGV[3] .. inf .. '}') end\n"
            "  end\n"
            "end\n"
            "for k = 1, 4 do redis.call('PEXPIRE', KEYS[k], 2 * ttl) end\n"
            "return 1\n";

/* Removes members. ARGV: Redis channel, ev, the leave event's start, then
 * member, user for each. */
static const char REMOVE_LUA[] =
    "for k = 4, #ARGV, 2 do\n"
    "  local m, u = ARGV[k], ARGV[k + 1]\n"
    "  local inf = redis.call('HGET', KEYS[3], m)\n"
    "  if redis.call('ZREM', KEYS[1], m) == 1 then\n"
    "    redis.call('ZREM', KEYS[2], m)\n"
    "    redis.call('HDEL', KEYS[3], m)\n"
    "    if u ~= '' and redis.call('HINCRBY', KEYS[4], u, -1) <= 0 then\n"
    "      redis.call('HDEL', KEYS[4], u)\n"
    "    end\n"
    "    if ARGV[2] ~= '0' and inf then redis.call(ARGV[2], ARGV[1], ARGV[3] .. inf .. '}') end\n"
    "  end\n"
    "end\n"
    "return 1\n";

/* EVAL script 4 KEYS(chan) Redis-channel ev ...: the fixed part. */
void rc_pres_args_begin(rc_presence *p, script_args *a, const char *script, size_t script_len,
                        rc_str chan, int ev, int extra)
{
    static const char *const what[4] = {"z", "l", "i", "u"};
    a->cap = 9 + extra;
    a->argv = rc_malloc((size_t)a->cap * sizeof(*a->argv));
    a->lens = rc_malloc((size_t)a->cap * sizeof(*a->lens));
    a->argc = 0;
    a->argv[a->argc] = "EVAL";
    a->lens[a->argc++] = 4;
    a->argv[a->argc] = script;
    a->lens[a->argc++] = script_len;
    a->argv[a->argc] = "4";
    a->lens[a->argc++] = 1;
    for (int k = 0; k < 4; k++) {
        int n = snprintf(a->keys[k], KEY_CAP, "%sp:{%.*s}:%s", p->cfg->redis_prefix, (int)chan.n,
                         chan.p, what[k]);
        rc_assert(n > 0 && n < KEY_CAP);
        a->argv[a->argc] = a->keys[k];
        a->lens[a->argc++] = (size_t)n;
    }
    size_t nl = rc_bridge_channel_name(p->bridge, chan, a->name, sizeof(a->name));
    rc_assert(nl);
    a->argv[a->argc] = a->name;
    a->lens[a->argc++] = nl;
    /* how joins and leaves are announced: "0", not at all */
    a->argv[a->argc] = ev ? rc_bridge_publish_verb(p->bridge) : "0";
    a->lens[a->argc] = strlen(a->argv[a->argc]);
    a->argc++;
}

void rc_pres_args_add(script_args *a, const char *s, size_t n)
{
    rc_assert(a->argc < a->cap);
    a->argv[a->argc] = s;
    a->lens[a->argc++] = n;
}

void rc_pres_args_end(script_args *a)
{
    free(a->argv);
    free(a->lens);
}

static void on_change_reply(void *arg, const redisReply *rep)
{
    rc_presence *p = arg;
    if (rep && rep->type == REDIS_REPLY_ERROR)
        rc_warn("redis: a presence script failed: %s", rep->str);
    (void)p;
}

/* Sends a channel's members ents[0..n) to Redis (ADD_LUA): 0, or -1. */
static int send_add(rc_presence *p, rc_str chan, const pchan *c, ent *const *ents, size_t n)
{
    char ttl[24];
    int tn = snprintf(ttl, sizeof(ttl), "%llu", (unsigned long long)p->ttl_ms);
    script_args a;
    rc_pres_args_begin(p, &a, ADD_LUA, sizeof(ADD_LUA) - 1, chan, c->join_leave, 2 + (int)n * 3);
    rc_pres_args_add(&a, p->prefix_join, strlen(p->prefix_join));
    rc_pres_args_add(&a, ttl, (size_t)tn);
    int any = 0;
    for (size_t i = 0; i < n; i++) {
        if (!ents[i])
            continue; /* left since the refresh began */
        any = 1;
        rc_str k = ent_key(ents[i]), u = ent_user(ents[i]), j = ent_json(ents[i]);
        rc_pres_args_add(&a, k.p, k.n);
        rc_pres_args_add(&a, u.p, u.n);
        rc_pres_args_add(&a, j.p, j.n);
    }
    if (!any) {
        rc_pres_args_end(&a);
        return 0;
    }
    int rc = rc_bridge_command(p->bridge, on_change_reply, p, a.argc, a.argv, a.lens);
    rc_pres_args_end(&a);
    if (rc == 0)
        rc_counter_inc(&p->stats->redis_calls);
    return rc;
}

/* Sends leaves[0..n) ("KEY\0USER\0" each) of a channel (REMOVE_LUA). A
 * leave lost with the link is an expiry within --presence-ttl: the member
 * is refreshed by nobody. */
static int send_remove(rc_presence *p, rc_str chan, const pchan *c, char *const *leaves, size_t n)
{
    script_args a;
    rc_pres_args_begin(p, &a, REMOVE_LUA, sizeof(REMOVE_LUA) - 1, chan, c->join_leave,
                       1 + (int)n * 2);
    rc_pres_args_add(&a, p->prefix_leave, strlen(p->prefix_leave));
    for (size_t i = 0; i < n; i++) {
        size_t kl = strlen(leaves[i]);
        rc_pres_args_add(&a, leaves[i], kl);
        rc_pres_args_add(&a, leaves[i] + kl + 1, strlen(leaves[i] + kl + 1));
    }
    int rc = rc_bridge_command(p->bridge, on_change_reply, p, a.argc, a.argv, a.lens);
    rc_pres_args_end(&a);
    if (rc == 0)
        rc_counter_inc(&p->stats->redis_calls);
    return rc;
}

/* Members per script: the script's run stays short. */
#define BATCH 500
/* Refresh scripts per relay turn, all channels: a refresh of many members
 * is spread over turns instead of filling the link at once. */
#define REFRESH_PER_TURN 8
/* Leaves held for Redis, all channels; past it they expire instead. */
#define LEAVES_MAX 100000

static void mark_dirty(rc_presence *p, rc_str chan, pchan *c)
{
    if (c->dirty)
        return;
    if (p->n_dirty == p->cap_dirty) {
        p->cap_dirty = p->cap_dirty ? p->cap_dirty * 2 : 16;
        p->dirty = rc_realloc(p->dirty, p->cap_dirty * sizeof(*p->dirty));
    }
    p->dirty[p->n_dirty++] = rc_rooms_get(p->chans, chan.p, chan.n);
    c->dirty = 1;
}

/* Writes what channel r holds for Redis; 0 when all of it went out, -1
 * when the link refused some (tried again next turn). *budget: refresh
 * scripts this turn may still send. */
static int flush_one(rc_presence *p, rc_room *r, int *budget)
{
    pchan *c = r->udata;
    rc_str chan = {r->name, r->name_len};
    size_t done = 0;
    while (done < c->n_pend) {
        size_t n = RC_MIN((size_t)BATCH, c->n_pend - done);
        if (send_add(p, chan, c, c->pend + done, n) < 0)
            break;
        for (size_t i = 0; i < n; i++) {
            c->pend[done + i]->sent = 1;
            c->pend[done + i]->pending = 0;
        }
        done += n;
    }
    if (done) /* pend may be NULL (nothing ever waited) */
        memmove(c->pend, c->pend + done, (c->n_pend - done) * sizeof(*c->pend));
    c->n_pend -= done;
    done = 0;
    while (c->n_pend == 0 && done < c->n_leaves) {
        size_t n = RC_MIN((size_t)BATCH, c->n_leaves - done);
        if (send_remove(p, chan, c, c->leaves + done, n) < 0)
            break;
        for (size_t i = 0; i < n; i++)
            free(c->leaves[done + i]);
        done += n;
    }
    if (done)
        memmove(c->leaves, c->leaves + done, (c->n_leaves - done) * sizeof(*c->leaves));
    c->n_leaves -= done;
    p->n_leaves -= done;
    if (c->refreshing) {
        if (c->refresh_pos == 0)
            compact(c);
        while (*budget > 0 && c->refresh_pos < c->n_order) {
            size_t n = RC_MIN((size_t)BATCH, c->n_order - c->refresh_pos);
            if (send_add(p, chan, c, c->order + c->refresh_pos, n) < 0)
                return -1;
            for (size_t i = 0; i < n; i++)
                if (c->order[c->refresh_pos + i])
                    c->order[c->refresh_pos + i]->sent = 1;
            c->refresh_pos += n;
            (*budget)--;
        }
        if (c->refresh_pos >= c->n_order)
            c->refreshing = 0;
    }
    return c->n_pend || c->n_leaves || c->refreshing ? -1 : 0;
}

void rc_presence_flush(rc_presence *p)
{
    if (!p->n_dirty || !p->bridge || !rc_bridge_command_ready(p->bridge))
        return;
    int budget = REFRESH_PER_TURN;
    size_t keep = 0;
    for (size_t i = 0; i < p->n_dirty; i++) {
        rc_room *r = p->dirty[i];
        pchan *c = r->udata;
        if (flush_one(p, r, &budget) < 0) {
            p->dirty[keep++] = r;
            continue;
        }
        c->dirty = 0;
        p->dirty[i] = NULL;
        /* A channel whose last member left may go now. */
        rc_pres_chan_check(p, (rc_str){r->name, r->name_len});
    }
    p->n_dirty = keep;
}

/* ---- news: joins and leaves --------------------------------------------------- */

static void on_join(rc_presence *p, rc_presreq *q)
{
    rc_str chan = {q->chan, q->chan_len};
    pchan *c = rc_pres_chan(p, chan, 1);
    char cn[24];
    size_t cnl = conn_name(q->member, cn, sizeof(cn));
    rc_room *slot = rc_rooms_get(c->byconn, cn, cnl);
    if (slot)
        return; /* joined already (the shard tells once per membership) */
    char json[RC_PROTO_MEMBER_MAX];
    ssize_t jn = rc_proto_member(json, sizeof(json), (rc_str){q->user, q->user_len}, q->member,
                                 (rc_str){p->cfg->node_id, strlen(p->cfg->node_id)},
                                 (rc_str){q->info, q->info_len});
    rc_assert(jn > 0); /* users, node ids and infos are bounded */
    char key[RC_PROTO_MAX_NODE + 48];
    int kn = snprintf(key, sizeof(key), "%s:%s:%llu", p->cfg->node_id, p->boot,
                      (unsigned long long)++p->serial);
    rc_assert(kn > 0 && (size_t)kn < sizeof(key) && (size_t)kn <= RC_PROTO_MAX_CURSOR);
    ent *e = rc_malloc(sizeof(*e) + q->user_len + (size_t)kn + (size_t)jn + 3);
    e->seq = ++c->next_seq;
    e->sent = e->pending = 0;
    e->user_len = q->user_len;
    e->key_len = (uint16_t)kn;
    e->json_len = (uint32_t)jn;
    char *w = e->mem;
    memcpy(w, q->user, q->user_len);
    w[q->user_len] = '\0';
    w += q->user_len + 1;
    memcpy(w, key, (size_t)kn + 1);
    w += kn + 1;
    memcpy(w, json, (size_t)jn);
    w[jn] = '\0';
    slot = rc_rooms_add(c->byconn, cn, cnl);
    slot->udata = e;
    if (c->n_order == c->cap) {
        if (c->n_order > 2 * c->live + 16 && !c->refreshing) {
            compact(c);
        } else {
            c->cap = c->cap ? c->cap * 2 : 8;
            c->order = rc_realloc(c->order, c->cap * sizeof(*c->order));
        }
    }
    c->order[c->n_order++] = e;
    c->live++;
    if (q->user_len)
        rc_rooms_add(c->users, q->user, q->user_len)->seq++;
    rc_counter_inc(&p->stats->joins);
    rc_counter_inc(&p->stats->members);
    if (c->live > rc_counter_get(&p->stats->largest))
        rc_counter_set(&p->stats->largest, c->live);
    if (p->bridge) {
        if (c->n_pend == c->cap_pend) {
            c->cap_pend = c->cap_pend ? c->cap_pend * 2 : 8;
            c->pend = rc_realloc(c->pend, c->cap_pend * sizeof(*c->pend));
        }
        c->pend[c->n_pend++] = e; /* written at the end of the relay's turn */
        e->pending = 1;
        mark_dirty(p, chan, c);
    } else if (c->join_leave) {
        emit_event(p, chan, 1, ent_json(e));
    }
}

static void on_leave(rc_presence *p, rc_presreq *q)
{
    rc_str chan = {q->chan, q->chan_len};
    pchan *c = rc_pres_chan(p, chan, 0);
    char cn[24];
    size_t cnl = conn_name(q->member, cn, sizeof(cn));
    rc_room *slot = c ? rc_rooms_get(c->byconn, cn, cnl) : NULL;
    if (!slot)
        return;
    ent *e = slot->udata;
    rc_rooms_del(c->byconn, slot);
    size_t i = rc_pres_order_after(c, e->seq - 1);
    while (i < c->n_order && !c->order[i])
        i++;
    rc_assert(i < c->n_order && c->order[i] == e);
    c->order[i] = NULL;
    c->live--;
    if (e->user_len) {
        rc_room *u = rc_rooms_get(c->users, e->mem, e->user_len);
        if (u && --u->seq == 0)
            rc_rooms_del(c->users, u);
    }
    rc_counter_inc(&p->stats->leaves);
    rc_counter_set(&p->stats->members, rc_counter_get(&p->stats->members) - 1);
    for (size_t k = c->n_pend; e->pending && k-- > 0;) {
        if (c->pend[k] == e) {
            memmove(c->pend + k, c->pend + k + 1, (c->n_pend - k - 1) * sizeof(*c->pend));
            c->n_pend--;
            e->pending = 0;
        }
    }
    if (p->bridge && !e->sent) {
        /* Never written: nothing to take back. */
    } else if (p->bridge && p->n_leaves < LEAVES_MAX) {
        rc_str k = ent_key(e), u = ent_user(e);
        char *l = rc_malloc(k.n + u.n + 2);
        memcpy(l, k.p, k.n + 1);
        memcpy(l + k.n + 1, u.p, u.n);
        l[k.n + 1 + u.n] = '\0';
        if (c->n_leaves == c->cap_leaves) {
            c->cap_leaves = c->cap_leaves ? c->cap_leaves * 2 : 8;
            c->leaves = rc_realloc(c->leaves, c->cap_leaves * sizeof(*c->leaves));
        }
        c->leaves[c->n_leaves++] = l;
        p->n_leaves++;
        mark_dirty(p, chan, c);
    } else if (!p->bridge && c->join_leave)
        emit_event(p, chan, 0, ent_json(e));
    free(e);
    if (c->live == 0)
        c->n_order = 0;
    else if (c->n_order > 2 * c->live + 16 && !c->refreshing)
        compact(c);
    rc_pres_chan_check(p, chan);
}

void rc_presence_on_item(rc_presence *p, rc_presreq *q)
{
    switch (q->kind) {
    case RC_PRESQ_JOIN:
        on_join(p, q);
        rc_presreq_free(q);
        break;
    case RC_PRESQ_LEAVE:
        on_leave(p, q);
        rc_presreq_free(q);
        break;
    default: rc_pres_on_question(p, q);
    }
    rc_counter_set(&p->stats->channels, rc_rooms_count(p->chans));
}

void rc_presence_on_event(rc_presence *p, rc_str chan, int join, rc_str member)
{
    emit_event(p, chan, join, member);
}

static void largest(rc_room *r, void *arg)
{
    pchan *c = r->udata;
    uint64_t *max = arg;
    if (c->live > *max)
        *max = c->live;
}

typedef struct refresh_arg {
    rc_presence *p;
    int64_t now_ms;
    int all; /* the link came back: every channel now */
} refresh_arg;

/* Starts a channel's refresh every third of the ttl: its members' times
 * move on, and what Redis lost (expired while the link was down, or a
 * Redis restarted empty) is there again. */
static void refresh_start(rc_room *r, void *arg)
{
    refresh_arg *ra = arg;
    pchan *c = r->udata;
    if (c->live == 0 || c->refreshing)
        return;
    if (!ra->all && ra->now_ms - c->refreshed_ms < (int64_t)(ra->p->ttl_ms / 3))
        return;
    c->refreshing = 1;
    c->refresh_pos = 0;
    c->refreshed_ms = ra->now_ms;
    mark_dirty(ra->p, (rc_str){r->name, r->name_len}, c);
}

void rc_presence_tick(rc_presence *p, int64_t now_ms)
{
    uint64_t max = 0;
    rc_rooms_each(p->chans, largest, &max);
    rc_counter_set(&p->stats->largest, max);
    rc_counter_set(&p->stats->channels, rc_rooms_count(p->chans));
    if (!p->bridge)
        return;
    int ready = rc_bridge_command_ready(p->bridge);
    if (ready) {
        refresh_arg ra = {p, now_ms, !p->was_ready};
        rc_rooms_each(p->chans, refresh_start, &ra);
    }
    p->was_ready = ready;
}
