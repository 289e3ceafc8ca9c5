/* Presence on the relay, its questions (channels/presence.h): presence
 * pages and presence_stats, answered from this node's table without
 * Redis, or by one script on Redis (reads of one channel's counts share
 * the one in flight).
 *
 * Thread: the relay thread. */
#include "channels/presence_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "proto/json.h"

/* ARGV: Redis channel, ev. Returns {connections, users}: both kept, never
 * counted. */
static const char STATS_LUA[] = PRELUDE "sweep(ARGV[1], ARGV[2])\n"
                                        "return {redis.call('ZCARD', KEYS[1]), "
                                        "redis.call('HLEN', KEYS[4])}\n";

/* ARGV: Redis channel, ev, cursor ('' for the first page), limit. Returns
 * {next cursor or '', member JSON, ...}, members in byte order. */
static const char PAGE_LUA[] =
    PRELUDE "sweep(ARGV[1], ARGV[2])\n"
            "local from = '-'\n"
            "if ARGV[3] ~= '' then from = '(' .. ARGV[3] end\n"
            "local lim = tonumber(ARGV[4])\n"
            "local ms = redis.call('ZRANGEBYLEX', KEYS[2], from, '+', 'LIMIT', 0, lim)\n"
            "local out = {''}\n"
            "if #ms == lim then out[1] = ms[#ms] end\n"
            "for k = 1, #ms do\n"
            "  local inf = redis.call('HGET', KEYS[3], ms[k])\n"
            "  if inf then out[#out + 1] = inf end\n"
            "end\n"
            "return out\n";

/* ---- questions ------------------------------------------------------------------ */

static void answer(rc_presence *p, rc_presreq *q)
{
    if (q->error)
        rc_counter_inc(&p->stats->unavailable);
    else if (q->kind == RC_PRESQ_STATS)
        rc_counter_inc(&p->stats->stats_reads);
    else
        rc_counter_inc(&p->stats->page_reads);
    p->ops.answer(p->u, q);
}

/* Without Redis: a page of this node's members, in join order. */
static void page_local(rc_presence *p, rc_presreq *q)
{
    pchan *c = rc_pres_chan(p, (rc_str){q->chan, q->chan_len}, 0);
    uint64_t after = 0;
    for (uint8_t i = 0; i < q->cursor_len; i++) {
        char d = q->cursor[i];
        if (d < '0' || d > '9' || after > (UINT64_MAX - 9) / 10) {
            after = UINT64_MAX; /* not a cursor of this node: nothing after it */
            break;
        }
        after = after * 10 + (uint64_t)(d - '0');
    }
    size_t len = 0, cap = 0;
    char *out = NULL;
    uint32_t n = 0;
    size_t i = c ? rc_pres_order_after(c, after) : 0;
    for (; c && i < c->n_order && n < q->limit; i++) {
        const ent *e = c->order[i];
        if (!e)
            continue;
        rc_str j = ent_json(e);
        if (len + j.n + 1 > cap) {
            cap = (len + j.n + 1) * 2;
            out = rc_realloc(out, cap);
        }
        if (n)
            out[len++] = ',';
        memcpy(out + len, j.p, j.n);
        len += j.n;
        n++;
        after = e->seq;
    }
    while (c && i < c->n_order && !c->order[i])
        i++;
    if (c && i < c->n_order) {
        int kn =
            snprintf(q->next_cursor, sizeof(q->next_cursor), "%llu", (unsigned long long)after);
        q->next_cursor_len = (uint8_t)kn;
    }
    q->members = out;
    q->members_len = len;
    q->n = n;
    answer(p, q);
}

static void on_stats_reply(void *arg, const redisReply *rep);
static void on_page_reply(void *arg, const redisReply *rep);

typedef struct read_ctx {
    rc_presence *p;
    rc_presreq *q; /* a page question; NULL for the stats read of chan */
    uint16_t chan_len;
    char chan[];
} read_ctx;

static read_ctx *read_ctx_new(rc_presence *p, rc_presreq *q, rc_str chan)
{
    read_ctx *k = rc_malloc(sizeof(*k) + chan.n + 1);
    k->p = p;
    k->q = q;
    k->chan_len = (uint16_t)chan.n;
    memcpy(k->chan, chan.p, chan.n);
    k->chan[chan.n] = '\0';
    return k;
}

static int send_read(rc_presence *p, rc_presreq *q, rc_str chan, int join_leave)
{
    script_args a;
    int page = q && q->kind == RC_PRESQ_PAGE;
    char lim[16];
    int ln = snprintf(lim, sizeof(lim), "%u", page ? q->limit : 0);
    if (page) {
        rc_pres_args_begin(p, &a, PAGE_LUA, sizeof(PAGE_LUA) - 1, chan, join_leave, 2);
        rc_pres_args_add(&a, q->cursor, q->cursor_len);
        rc_pres_args_add(&a, lim, (size_t)ln);
    } else {
        rc_pres_args_begin(p, &a, STATS_LUA, sizeof(STATS_LUA) - 1, chan, join_leave, 0);
    }
    read_ctx *k = read_ctx_new(p, page ? q : NULL, chan);
    int rc = rc_bridge_command(p->bridge, page ? on_page_reply : on_stats_reply, k, a.argc, a.argv,
                               a.lens);
    rc_pres_args_end(&a);
    if (rc < 0)
        free(k);
    else
        rc_counter_inc(&p->stats->redis_calls);
    return rc;
}

static int rule_join_leave(const rc_presence *p, rc_str chan)
{
    const rc_presence_rule *rule = rc_config_presence(p->cfg, chan.p, chan.n);
    return rule && rule->join_leave;
}

/* Answers every stats question waiting on chan's read. */
static void stats_done(rc_presence *p, rc_str chan, const redisReply *rep)
{
    pchan *c = rc_pres_chan(p, chan, 0);
    if (!c)
        return;
    c->reading = 0;
    int ok = rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
             rep->element[0]->type == REDIS_REPLY_INTEGER &&
             rep->element[1]->type == REDIS_REPLY_INTEGER;
    rc_presreq *list = c->waiting;
    c->waiting = NULL;
    for (rc_presreq *q = list, *next; q; q = next) {
        next = q->next;
        q->next = NULL;
        if (ok) {
            q->connections = (uint64_t)rep->element[0]->integer;
            q->users = (uint64_t)rep->element[1]->integer;
        } else {
            q->error = RC_PERR_PRESENCE_UNAVAILABLE;
        }
        answer(p, q);
    }
    rc_pres_chan_check(p, chan);
}

static void on_stats_reply(void *arg, const redisReply *rep)
{
    read_ctx *k = arg;
    if (rep && rep->type == REDIS_REPLY_ERROR)
        rc_warn("redis: presence_stats of %s failed: %s", k->chan, rep->str);
    stats_done(k->p, (rc_str){k->chan, k->chan_len}, rep);
    free(k);
}

static void on_page_reply(void *arg, const redisReply *rep)
{
    read_ctx *k = arg;
    rc_presreq *q = k->q;
    if (rep && rep->type == REDIS_REPLY_ERROR)
        rc_warn("redis: presence of %s failed: %s", k->chan, rep->str);
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements < 1 ||
        rep->element[0]->type != REDIS_REPLY_STRING || rep->element[0]->len > RC_PROTO_MAX_CURSOR) {
        q->error = RC_PERR_PRESENCE_UNAVAILABLE;
    } else {
        size_t len = 0;
        for (size_t i = 1; i < rep->elements; i++)
            if (rep->element[i]->type == REDIS_REPLY_STRING)
                len += rep->element[i]->len + 1;
        q->members = len ? rc_malloc(len) : NULL;
        for (size_t i = 1; i < rep->elements; i++) {
            const redisReply *e = rep->element[i];
            if (e->type != REDIS_REPLY_STRING)
                continue;
            if (q->n)
                q->members[q->members_len++] = ',';
            memcpy(q->members + q->members_len, e->str, e->len);
            q->members_len += e->len;
            q->n++;
        }
        memcpy(q->next_cursor, rep->element[0]->str, rep->element[0]->len);
        q->next_cursor_len = (uint8_t)rep->element[0]->len;
    }
    answer(k->p, q);
    free(k);
}

void rc_pres_on_question(rc_presence *p, rc_presreq *q)
{
    rc_str chan = {q->chan, q->chan_len};
    if (!p->bridge) {
        if (q->kind == RC_PRESQ_PAGE) {
            page_local(p, q);
            return;
        }
        pchan *c = rc_pres_chan(p, chan, 0);
        q->connections = c ? c->live : 0;
        q->users = c ? rc_rooms_count(c->users) : 0;
        answer(p, q);
        return;
    }
    int jl = rule_join_leave(p, chan);
    if (q->kind == RC_PRESQ_PAGE) {
        if (send_read(p, q, chan, jl) < 0) {
            q->error = RC_PERR_PRESENCE_UNAVAILABLE;
            answer(p, q);
        }
        return;
    }
    /* Stats: one read in flight per channel answers every question that
     * came while it was. */
    pchan *c = rc_pres_chan(p, chan, 1);
    q->next = c->waiting;
    c->waiting = q;
    if (c->reading) {
        rc_counter_inc(&p->stats->coalesced);
        return;
    }
    if (send_read(p, NULL, chan, jl) < 0) {
        stats_done(p, chan, NULL);
        return;
    }
    c->reading = 1;
}
