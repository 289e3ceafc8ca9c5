#include "admission/admission.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "engine/log.h"
#include "engine/room.h"
#include "net/uring.h"
#include "redis/client.h"
#include "ws/json.h"

#define LEASE_MS      5000 /* a dead leader's lease runs out after this */
#define ABANDON_BATCH 1000 /* abandoned waiters removed per queue per tick */

/* KEYS[1] lease; ARGV[1] node id, ARGV[2] lease ms. 1 when the caller holds
 * the lease afterwards (renewed, or taken because nobody held it). */
static const char LEASE_LUA[] =
    "local v = redis.call('GET', KEYS[1])\n"
    "if v == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end\n"
    "if not v then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end\n"
    "return 0\n";

/* One queue's tick, atomic, fenced by the lease.
 * KEYS: lease cfg wait active seen stats seq; ARGV: node, Redis channel of
 * queue:{q}, abandoned per tick. Times are Redis's clock (TIME), so the
 * nodes' clocks never meet in one comparison.
 * Returns {admitted, waiting, active, head, abandoned}, {-1} when the lease
 * is not ours, {-2} when the queue has no configuration. */
static const char TICK_LUA[] =
    "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {-1} end\n"
    "local c = redis.call('HMGET', KEYS[2], 'rate', 'max_active', 'active_ttl',\n"
    "                     'abandon_timeout', 'state')\n"
    "if not c[1] then return {-2} end\n"
    "local rate, maxa = tonumber(c[1]), tonumber(c[2])\n"
    "local ttl, abandon = tonumber(c[3]), tonumber(c[4])\n"
    "local state = c[5] or 'open'\n"
    "local tm = redis.call('TIME')\n"
    "local now = tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000)\n"
    "redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)\n"
    "local active = redis.call('ZCARD', KEYS[4])\n"
    "local gone = redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', '(' .. (now - abandon * 1000),\n"
    "                        'LIMIT', 0, tonumber(ARGV[3]))\n"
    "if #gone > 0 then\n"
    "  redis.call('ZREM', KEYS[3], unpack(gone))\n"
    "  redis.call('ZREM', KEYS[5], unpack(gone))\n"
    "  redis.call('HINCRBY', KEYS[6], 'abandoned_total', #gone)\n"
    "end\n"
    "local n = 0\n"
    "if state == 'open' then n = math.min(rate, maxa - active) end\n"
    "local head = tonumber(redis.call('HGET', KEYS[6], 'head') or '0')\n"
    "local adm = {}\n"
    "local exp = now + ttl * 1000\n"
    "if n > 0 then\n"
    "  local cand = redis.call('ZRANGE', KEYS[3], 0, n - 1, 'WITHSCORES')\n"
    "  local za = {}\n"
    "  for i = 1, #cand, 2 do\n"
    "    adm[#adm + 1] = cand[i]\n"
    "    za[#za + 1] = exp\n"
    "    za[#za + 1] = cand[i]\n"
    "    local t = tonumber(cand[i + 1])\n"
    "    if t > head then head = t end\n"
    "  end\n"
    "  if #adm > 0 then\n"
    "    redis.call('ZREM', KEYS[3], unpack(adm))\n"
    "    redis.call('ZREM', KEYS[5], unpack(adm))\n"
    "    redis.call('ZADD', KEYS[4], unpack(za))\n"
    "    redis.call('HINCRBY', KEYS[6], 'admitted_total', #adm)\n"
    "  end\n"
    "end\n"
    /* The head follows the line: everyone below the lowest waiting ticket
     * has been admitted or removed, so positions never go up. */
    "local low = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')\n"
    "if low[2] then\n"
    "  local t = tonumber(low[2]) - 1\n"
    "  if t > head then head = t end\n"
    "else\n"
    "  local s = tonumber(redis.call('GET', KEYS[7]) or '0')\n"
    "  if s > head then head = s end\n"
    "end\n"
    /* The smoothed number of places each tick opens, for the waiters' ETA:
     * the configured rate until ticks have measured one, and while the line
     * is shorter than n the places it could have filled (an empty line says
     * nothing about how fast it moves). A paused queue keeps its figure. */
    "local ewma = tonumber(redis.call('HGET', KEYS[6], 'ewma') or rate)\n"
    "if state == 'open' then ewma = ewma * 0.8 + math.max(n, 0) * 0.2 end\n"
    "redis.call('HSET', KEYS[6], 'head', string.format('%d', head), 'ewma',\n"
    "           string.format('%.4f', ewma))\n"
    "local waiting = redis.call('ZCARD', KEYS[3])\n"
    "local tot = redis.call('HMGET', KEYS[6], 'admitted_total', 'abandoned_total')\n"
    "local last = redis.call('GET', KEYS[7]) or '0'\n"
    "active = active + #adm\n"
    "local list = '[]'\n"
    "if #adm > 0 then list = cjson.encode(adm) end\n"
    "redis.call('PUBLISH', ARGV[2], '{\"event\":\"queue.tick\",\"data\":{\"head\":' ..\n"
    "  string.format('%d', head) .. ',\"admitted\":' .. list .. ',\"exp\":' ..\n"
    "  string.format('%d', exp) .. ',\"rate\":' .. string.format('%d', rate) ..\n"
    "  ',\"ewma\":' .. string.format('%.4f', ewma) .. ',\"waiting\":' .. waiting ..\n"
    "  ',\"active\":' .. active .. ',\"abandon\":' .. string.format('%d', abandon) ..\n"
    "  ',\"state\":\"' .. state .. '\",\"time\":' .. string.format('%d', now) ..\n"
    "  ',\"max_active\":' .. string.format('%d', maxa) .. ',\"last_ticket\":' .. last ..\n"
    "  ',\"admitted_total\":' .. (tot[1] or '0') .. ',\"abandoned_total\":' ..\n"
    "  (tot[2] or '0') .. '}}')\n"
    "return {#adm, waiting, active, head, #gone}\n";

/* KEYS: cfg wait active seq seen stats; ARGV: user, "join" or "status".
 * {1, ticket, head, ewma} waiting (join: a new ticket only for a new user);
 * {2, expiry} admitted and still active; {-1} no such queue; and for a
 * status question (which never joins), {0} when the user is neither waiting
 * nor active (left, removed as abandoned, or the admission expired). */
static const char JOIN_LUA[] =
    "if redis.call('EXISTS', KEYS[1]) == 0 then return {-1} end\n"
    "local tm = redis.call('TIME')\n"
    "local now = tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000)\n"
    "local a = redis.call('ZSCORE', KEYS[3], ARGV[1])\n"
    "if a and tonumber(a) > now then return {2, a} end\n"
    "local t = redis.call('ZSCORE', KEYS[2], ARGV[1])\n"
    "if ARGV[2] == 'join' then\n"
    "  if not t then\n"
    "    t = redis.call('INCR', KEYS[4])\n"
    "    redis.call('ZADD', KEYS[2], t, ARGV[1])\n"
    "  end\n"
    "  redis.call('ZADD', KEYS[5], now, ARGV[1])\n"
    "elseif not t then\n"
    "  return {0}\n"
    "end\n"
    "local s = redis.call('HMGET', KEYS[6], 'head', 'ewma')\n"
    /* Before the first tick, the configured rate is the best estimate; while
     * the queue is paused there is none (0: no ETA). */
    "local c = redis.call('HMGET', KEYS[1], 'rate', 'state')\n"
    "if c[2] == 'paused' then return {1, tostring(t), s[1] or '0', '0'} end\n"
    "return {1, tostring(t), s[1] or '0', s[2] or c[1]}\n";

/* KEYS: wait seen; ARGV: user, Redis channel of queue:{q}. Takes the user out
 * of the line and tells every node (event queue.left with the ticket), so
 * that the user's other tabs stop waiting too. 1 when the user was waiting. */
static const char LEAVE_LUA[] =
    "local t = redis.call('ZSCORE', KEYS[1], ARGV[1])\n"
    "redis.call('ZREM', KEYS[2], ARGV[1])\n"
    "if not t then return 0 end\n"
    "redis.call('ZREM', KEYS[1], ARGV[1])\n"
    "redis.call('PUBLISH', ARGV[2], '{\"event\":\"queue.left\",\"data\":{\"user\":' ..\n"
    "  cjson.encode(ARGV[1]) .. ',\"ticket\":' .. string.format('%d', t) .. '}}')\n"
    "return 1\n";

/* KEYS[1] seen; ARGV[1] user. The user's last connection on this node
 * closed: the abandon timeout counts from now (not from the last refresh,
 * which may be ahead of now: see SEEN_LUA). A tab elsewhere refreshes it. */
static const char GONE_LUA[] =
    "local tm = redis.call('TIME')\n"
    "local now = tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000)\n"
    "return redis.call('ZADD', KEYS[1], 'XX', now, ARGV[1])\n";

/* KEYS[1] seen; ARGV[1] ms ahead, then users: each one still in the set is
 * seen until now + ahead. A node refreshes each of its waiters at least
 * every `ahead` ms, so a waiter's seen time is never in the past while it
 * is connected; if the node dies, the abandon timeout counts from no earlier
 * than the moment it died, and a waiter back within it keeps the place. */
static const char SEEN_LUA[] =
    "local tm = redis.call('TIME')\n"
    "local now = tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000)\n"
    "local t = now + tonumber(ARGV[1])\n"
    "for i = 2, #ARGV do redis.call('ZADD', KEYS[1], 'XX', 'GT', t, ARGV[i]) end\n"
    "return #ARGV - 1\n";

/* The users of one queue waiting on this node: a set with a count of local
 * connections each (room->seq), and a dense array for the paced refresh of
 * their seen times (room->flags is the index in it). */
typedef struct waiters {
    rc_rooms *users;
    rc_room **v;
    size_t n, cap, cursor;
    uint32_t abandon_s;
} waiters;

typedef struct tick_ctx {
    rc_admission *a;
    uint64_t sent_ns;
    unsigned pending;
} tick_ctx;

struct rc_admission {
    const rc_config *cfg;
    rc_admission_ops ops;
    void *u;
    rc_admission_stats *st;
    rc_redis *r;
    uint64_t next_tick_ms;
    bool tick_inflight;
    bool leader;
    char **queues; /* from the last SMEMBERS of the index */
    size_t nqueues;
    rc_rooms *local; /* queue -> waiters (room->udata) */
};

void rc_call_free(rc_call *c)
{
    free(c->body);
    free(c->reply);
    free(c);
}

/* ---- keys ------------------------------------------------------------------ */

typedef struct key {
    char s[80 + RC_PROTO_MAX_QUEUE + 16];
    size_t n;
} key;

/* prefix a, then b, c and d, as one key. */
static key mkkey(const rc_admission *a, const char *b, const char *c, const char *d)
{
    key k;
    int n = snprintf(k.s, sizeof(k.s), "%s%s%s%s", a->cfg->redis_prefix, b, c, d);
    rc_assert(n > 0 && (size_t)n < sizeof(k.s));
    k.n = (size_t)n;
    return k;
}

/* P q:{q}:what, a key of queue q (the braces keep a queue's keys in one
 * Redis Cluster slot). */
static key qkey(const rc_admission *a, const char *q, const char *what)
{
    char tag[RC_PROTO_MAX_QUEUE + 8];
    snprintf(tag, sizeof(tag), "{%s}:", q);
    return mkkey(a, "q:", tag, what);
}

/* P q:what, a key of every queue. */
static key gkey(const rc_admission *a, const char *what)
{
    return mkkey(a, "q:", what, "");
}

/* The Redis channel of queue:{q}, where ticks and leaves are published. */
static key qchan(const rc_admission *a, const char *q)
{
    return mkkey(a, "ch:queue:", q, "");
}

/* Up to 16 arguments; strings given as (pointer, length) pairs through av. */
typedef struct args {
    const char *v[16];
    size_t l[16];
    int n;
} args;

static void arg(args *x, const char *p, size_t n)
{
    rc_assert(x->n < 16);
    x->v[x->n] = p;
    x->l[x->n++] = n;
}

static void arg_s(args *x, const char *p)
{
    arg(x, p, strlen(p));
}

static int send_args(rc_admission *a, args *x, rc_redis_reply_fn fn, void *priv)
{
    return rc_redis_command(a->r, fn, priv, x->n, x->v, x->l);
}

/* ---- reply helpers ---------------------------------------------------------- */

static int64_t reply_i64(const redisReply *r)
{
    if (!r)
        return 0;
    if (r->type == REDIS_REPLY_INTEGER)
        return r->integer;
    if (r->type == REDIS_REPLY_STRING)
        return rc_d2i64(strtod(r->str, NULL)); /* scores may come as "1.7e+12" */
    return 0;
}

static double reply_f(const redisReply *r)
{
    if (r && r->type == REDIS_REPLY_STRING)
        return strtod(r->str, NULL);
    return r && r->type == REDIS_REPLY_INTEGER ? (double)r->integer : 0;
}

static void set_reply(rc_call *c, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_reply(rc_call *c, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    free(c->reply);
    c->reply = rc_malloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(c->reply, (size_t)n + 1, fmt, ap);
    va_end(ap);
    c->reply_len = (size_t)n;
    c->status = status;
}

static void api_error(rc_call *c, int status, const char *code, const char *msg)
{
    char m[512];
    ssize_t n = rc_json_escape(m, sizeof(m), msg, strlen(msg));
    rc_assert(n > 0); /* our own short messages */
    set_reply(c, status, "{\"type\":\"error\",\"code\":\"%s\",\"message\":%.*s}", code, (int)n, m);
}

/* ---- local waiters ---------------------------------------------------------- */

static waiters *local_of(rc_admission *a, const char *q, bool create)
{
    rc_room *r =
        create ? rc_rooms_add(a->local, q, strlen(q)) : rc_rooms_get(a->local, q, strlen(q));
    if (!r)
        return NULL;
    if (!r->udata) {
        waiters *w = rc_calloc(1, sizeof(*w));
        w->users = rc_rooms_new();
        w->abandon_s = 120;
        r->udata = w;
    }
    return r->udata;
}

static void local_add(rc_admission *a, const char *q, const char *user)
{
    waiters *w = local_of(a, q, true);
    rc_room *u = rc_rooms_add(w->users, user, strlen(user));
    if (u->seq++ > 0)
        return;
    if (w->n == w->cap) {
        w->cap = w->cap ? w->cap * 2 : 16;
        w->v = rc_realloc(w->v, w->cap * sizeof(*w->v));
    }
    u->flags = (uint32_t)w->n;
    w->v[w->n++] = u;
    rc_counter_inc(&a->st->local_waiters);
}

/* Forgets one local connection of user in q (all: every one). Returns true
 * when the user had one and has none left on this node. */
static bool local_del(rc_admission *a, const char *q, const char *user, bool all)
{
    waiters *w = local_of(a, q, false);
    rc_room *u = w ? rc_rooms_get(w->users, user, strlen(user)) : NULL;
    if (!u || (!all && --u->seq > 0))
        return false;
    uint32_t i = u->flags;
    w->v[i] = w->v[--w->n];
    w->v[i]->flags = i;
    if (w->cursor > w->n)
        w->cursor = 0;
    rc_rooms_del(w->users, u);
    rc_counter_set(&a->st->local_waiters, rc_counter_get(&a->st->local_waiters) - 1);
    return true;
}

/* ---- the tick ------------------------------------------------------------------ */

static void tick_reply_done(tick_ctx *t)
{
    if (--t->pending)
        return;
    rc_counter_set(&t->a->st->tick_us, (rc_now_ns() - t->sent_ns) / 1000);
    rc_counter_inc(&t->a->st->round_trips);
    t->a->tick_inflight = false;
    free(t);
}

static void on_lease(void *u, redisReply *rep, const char *err, void *priv)
{
    rc_admission *a = u;
    bool lead = rep && rep->type == REDIS_REPLY_INTEGER && rep->integer == 1;
    if (lead != a->leader)
        rc_info("admission: %s the leader lease", lead ? "took" : "lost");
    a->leader = lead;
    rc_counter_set(&a->st->leader, lead);
    tick_reply_done(priv);
}

static void on_qtick(void *u, redisReply *rep, const char *err, void *priv)
{
    rc_admission *a = u;
    if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 5) {
        rc_counter_add(&a->st->admitted, (uint64_t)reply_i64(rep->element[0]));
        rc_counter_add(&a->st->abandoned, (uint64_t)reply_i64(rep->element[4]));
    } else if (rep && rep->type == REDIS_REPLY_ERROR) {
        rc_warn("admission: tick script failed: %.*s", (int)RC_MIN(rep->len, (size_t)200),
                rep->str);
    }
    tick_reply_done(priv);
}

static void on_tick_other(void *u, redisReply *rep, const char *err, void *priv)
{
    tick_reply_done(priv);
}

static void on_index(void *u, redisReply *rep, const char *err, void *priv)
{
    rc_admission *a = u;
    if (rep && rep->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < a->nqueues; i++)
            free(a->queues[i]);
        free(a->queues);
        a->queues = rc_calloc(rep->elements ? rep->elements : 1, sizeof(char *));
        a->nqueues = 0;
        for (size_t i = 0; i < rep->elements; i++) {
            const redisReply *e = rep->element[i];
            if (e->type == REDIS_REPLY_STRING &&
                rc_proto_name_valid(e->str, e->len, RC_PROTO_MAX_QUEUE))
                a->queues[a->nqueues++] = rc_strndup(e->str, e->len);
        }
        rc_counter_set(&a->st->queues, a->nqueues);
    }
    tick_reply_done(priv);
}

/* ZADD seen XX GT now u... for the next slice of each queue's local waiters,
 * so that each is refreshed about three times per abandon timeout. */
typedef struct refresh_arg {
    rc_admission *a;
    tick_ctx *t;
} refresh_arg;

static void refresh_queue(rc_room *qr, void *p)
{
    refresh_arg *ra = p;
    rc_admission *a = ra->a;
    waiters *w = qr->udata;
    if (!w || !w->n)
        return;
    uint64_t window_ticks =
        RC_MAX((uint64_t)w->abandon_s * 1000 / 3 / a->cfg->admission_tick_ms, (uint64_t)1);
    size_t k = RC_MIN(w->n, (size_t)((w->n + window_ticks - 1) / window_ticks));
    k = RC_MIN(k, (size_t)4096);
    /* Each waiter comes round every `period` ticks; one moved by a removal
     * may wait one round more. Its seen time is set that far ahead, and two
     * ticks more for a tick that runs late. */
    uint64_t period = (w->n + k - 1) / k;
    char ahead[24];
    int an = snprintf(ahead, sizeof(ahead), "%llu",
                      (unsigned long long)((2 * period + 2) * a->cfg->admission_tick_ms));
    const char **argv = rc_malloc((5 + k) * sizeof(*argv));
    size_t *lens = rc_malloc((5 + k) * sizeof(*lens));
    key seen = qkey(a, qr->name, "seen");
    int n = 0;
    argv[n] = "EVAL", lens[n++] = 4;
    argv[n] = SEEN_LUA, lens[n++] = sizeof(SEEN_LUA) - 1;
    argv[n] = "1", lens[n++] = 1;
    argv[n] = seen.s, lens[n++] = seen.n;
    argv[n] = ahead, lens[n++] = (size_t)an;
    for (size_t i = 0; i < k; i++) {
        if (w->cursor >= w->n)
            w->cursor = 0;
        rc_room *u = w->v[w->cursor++];
        argv[n] = u->name, lens[n++] = u->name_len;
    }
    if (rc_redis_command(a->r, on_tick_other, ra->t, n, argv, lens) == 0)
        ra->t->pending++;
    free(argv);
    free(lens);
}

static void send_tick(rc_admission *a, uint64_t now_ms)
{
    tick_ctx *t = rc_calloc(1, sizeof(*t));
    t->a = a;
    t->sent_ns = rc_now_ns();
    t->pending = 1; /* released below, once everything is queued */
    const char *me = a->cfg->node_id;
    key lease = gkey(a, "lease");
    char lease_ms[16], batch[16];
    snprintf(lease_ms, sizeof(lease_ms), "%d", LEASE_MS);
    snprintf(batch, sizeof(batch), "%d", ABANDON_BATCH);

    args x = {.n = 0};
    arg_s(&x, "EVAL");
    arg(&x, LEASE_LUA, sizeof(LEASE_LUA) - 1);
    arg_s(&x, "1");
    arg(&x, lease.s, lease.n);
    arg_s(&x, me);
    arg_s(&x, lease_ms);
    if (send_args(a, &x, on_lease, t) == 0)
        t->pending++;

    for (size_t i = 0; i < a->nqueues; i++) {
        const char *q = a->queues[i];
        key k[6] = {qkey(a, q, "cfg"),  qkey(a, q, "wait"),  qkey(a, q, "active"),
                    qkey(a, q, "seen"), qkey(a, q, "stats"), qkey(a, q, "seq")};
        key chan = qchan(a, q);
        x.n = 0;
        arg_s(&x, "EVAL");
        arg(&x, TICK_LUA, sizeof(TICK_LUA) - 1);
        arg_s(&x, "7");
        arg(&x, lease.s, lease.n);
        for (int j = 0; j < 6; j++)
            arg(&x, k[j].s, k[j].n);
        arg_s(&x, me);
        arg(&x, chan.s, chan.n);
        arg_s(&x, batch);
        if (send_args(a, &x, on_qtick, t) == 0)
            t->pending++;
    }

    refresh_arg ra = {a, t};
    rc_rooms_each(a->local, refresh_queue, &ra);

    key index = gkey(a, "index");
    x.n = 0;
    arg_s(&x, "SMEMBERS");
    arg(&x, index.s, index.n);
    if (send_args(a, &x, on_index, t) == 0)
        t->pending++;
    rc_counter_inc(&a->st->ticks);
    a->tick_inflight = true;
    tick_reply_done(t); /* the initial 1 */
    (void)now_ms;
}

/* ---- calls ------------------------------------------------------------------ */

static void finish(rc_admission *a, rc_call *c)
{
    a->ops.done(a->u, c);
}

static void on_join(void *u, redisReply *rep, const char *err, void *priv)
{
    rc_admission *a = u;
    rc_call *c = priv;
    int64_t kind = rep && rep->type == REDIS_REPLY_ARRAY && rep->elements >= 1
                       ? reply_i64(rep->element[0])
                       : 0;
    if (kind == 1 && rep->elements == 4) {
        c->result = RC_JOIN_WAITING;
        c->ticket = reply_i64(rep->element[1]);
        c->head = reply_i64(rep->element[2]);
        c->ewma = reply_f(rep->element[3]);
        local_add(a, c->queue, c->user);
        rc_counter_inc(&a->st->joins);
    } else if (kind == 2 && rep->elements == 2) {
        c->result = RC_JOIN_ACTIVE;
        c->expires_ms = reply_i64(rep->element[1]);
        rc_counter_inc(&a->st->joins);
    } else if (kind == -1) {
        c->result = RC_JOIN_NOT_FOUND;
        rc_counter_inc(&a->st->join_errors);
    } else {
        if (rep && rep->type == REDIS_REPLY_ERROR)
            rc_warn("admission: join script failed: %.*s", (int)RC_MIN(rep->len, (size_t)200),
                    rep->str);
        c->result = RC_JOIN_UNAVAILABLE;
        rc_counter_inc(&a->st->join_errors);
    }
    finish(a, c);
}

static void on_join(void *u, redisReply *rep, const char *err, void *priv);
static void on_status(void *u, redisReply *rep, const char *err, void *priv);

/* JOIN_LUA for c: as a join, or as a status question that never joins. */
static void join(rc_admission *a, rc_call *c, bool as_join)
{
    key k[6] = {qkey(a, c->queue, "cfg"), qkey(a, c->queue, "wait"), qkey(a, c->queue, "active"),
                qkey(a, c->queue, "seq"), qkey(a, c->queue, "seen"), qkey(a, c->queue, "stats")};
    args x = {.n = 0};
    arg_s(&x, "EVAL");
    arg(&x, JOIN_LUA, sizeof(JOIN_LUA) - 1);
    arg_s(&x, "6");
    for (int j = 0; j < 6; j++)
        arg(&x, k[j].s, k[j].n);
    arg_s(&x, c->user);
    arg_s(&x, as_join ? "join" : "status");
    if (send_args(a, &x, as_join ? on_join : on_status, c) < 0) {
        c->result = RC_JOIN_UNAVAILABLE;
        if (as_join)
            rc_counter_inc(&a->st->join_errors);
        finish(a, c);
    }
}

static void on_leave(void *u, redisReply *rep, const char *err, void *priv)
{
    rc_call *c = priv;
    c->result = rep && rep->type != REDIS_REPLY_ERROR ? RC_JOIN_WAITING : RC_JOIN_UNAVAILABLE;
    finish(u, c);
}

static void on_ignore(void *u, redisReply *rep, const char *err, void *priv)
{
}

static void leave(rc_admission *a, rc_call *c)
{
    local_del(a, c->queue, c->user, true);
    key wait = qkey(a, c->queue, "wait"), seen = qkey(a, c->queue, "seen");
    key chan = qchan(a, c->queue);
    args x = {.n = 0};
    arg_s(&x, "EVAL");
    arg(&x, LEAVE_LUA, sizeof(LEAVE_LUA) - 1);
    arg_s(&x, "2");
    arg(&x, wait.s, wait.n);
    arg(&x, seen.s, seen.n);
    arg_s(&x, c->user);
    arg(&x, chan.s, chan.n);
    if (send_args(a, &x, on_leave, c) < 0) {
        c->result = RC_JOIN_UNAVAILABLE;
        finish(a, c);
    }
}

static void on_status(void *u, redisReply *rep, const char *err, void *priv)
{
    rc_call *c = priv;
    int64_t kind = rep && rep->type == REDIS_REPLY_ARRAY && rep->elements >= 1
                       ? reply_i64(rep->element[0])
                       : -2;
    if (kind == 1 && rep->elements == 4) {
        c->result = RC_JOIN_WAITING;
        c->ticket = reply_i64(rep->element[1]);
        c->head = reply_i64(rep->element[2]);
        c->ewma = reply_f(rep->element[3]);
    } else if (kind == 2 && rep->elements == 2) {
        c->result = RC_JOIN_ACTIVE;
        c->expires_ms = reply_i64(rep->element[1]);
    } else if (kind == 0) {
        c->result = RC_JOIN_GONE;
    } else if (kind == -1) {
        c->result = RC_JOIN_NOT_FOUND;
    } else {
        c->result = RC_JOIN_UNAVAILABLE;
    }
    finish(u, c);
}

/* A connection of user that waited in q here waits no more; closed: it
 * closed while the user still holds the place. When it was the user's last
 * one on this node, the abandon timeout counts from now. */
static void gone(rc_admission *a, const char *q, const char *user, bool closed)
{
    if (!local_del(a, q, user, false) || !closed || rc_redis_get_state(a->r) != RC_REDIS_READY)
        return;
    key seen = qkey(a, q, "seen");
    args x = {.n = 0};
    arg_s(&x, "EVAL");
    arg(&x, GONE_LUA, sizeof(GONE_LUA) - 1);
    arg_s(&x, "1");
    arg(&x, seen.s, seen.n);
    arg_s(&x, user);
    send_args(a, &x, on_ignore, NULL);
}

/* ---- the HTTP API ------------------------------------------------------------- */

enum { CF_RATE, CF_MAX_ACTIVE, CF_TTL, CF_ABANDON, CF_STATE, CF__COUNT };
static const char *const cf_names[CF__COUNT] = {"rate", "max_active", "active_ttl",
                                                "abandon_timeout", "state"};
static const int64_t cf_min[CF__COUNT] = {1, 1, 1, 5, 0};
static const int64_t cf_max[CF__COUNT] = {1000000, 100000000, 604800, 86400, 0};
static const char *const cf_default[CF__COUNT] = {"10", "100", "600", "120", "open"};

/* Parses a PUT body into values[i] (NULL: not given). Returns NULL or why. */
static const char *parse_cfg(const rc_call *c, char values[CF__COUNT][24])
{
    rc_json_iter it;
    rc_json_val k, v;
    for (int i = 0; i < CF__COUNT; i++)
        values[i][0] = '\0';
    if (c->body_len == 0)
        return NULL;
    if (rc_json_object_begin(&it, c->body, c->body_len, 4) != 0)
        return "the body must be a JSON object";
    int seen[CF__COUNT] = {0};
    while (rc_json_object_next(&it, &k, &v)) {
        int f = -1;
        for (int i = 0; i < CF__COUNT; i++)
            if (rc_json_key_is(&k, cf_names[i]))
                f = i;
        if (f < 0)
            return "unknown member: use rate, max_active, active_ttl, abandon_timeout, state";
        /* {"rate":5,"rate":500}: which one counts would be the parser's
         * choice, not the caller's. */
        if (seen[f]++)
            return "duplicate member: each setting at most once";
        if (f == CF_STATE) {
            char st[16];
            if (rc_json_string(&v, st, sizeof(st)) < 0 ||
                (strcmp(st, "open") != 0 && strcmp(st, "paused") != 0))
                return "state must be \"open\" or \"paused\"";
            snprintf(values[f], 24, "%s", st);
            continue;
        }
        int64_t n;
        if (rc_json_int64(&v, &n) < 0 || n < cf_min[f] || n > cf_max[f])
            return "rate 1..1000000, max_active 1..100000000, active_ttl 1..604800 s, "
                   "abandon_timeout 5..86400 s, all integers";
        snprintf(values[f], 24, "%lld", (long long)n);
    }
    return NULL;
}

/* Pairs of a HGETALL reply into the config values. */
/* Is v what field f may hold: a decimal integer (at most 18 digits), or
 * for state "open" or "paused"? Redis is shared: a value someone else wrote
 * there must not reach a JSON answer unchecked. */
static bool cfg_value_ok(int f, const char *v, size_t n)
{
    if (f == CF_STATE)
        return (n == 4 && memcmp(v, "open", 4) == 0) || (n == 6 && memcmp(v, "paused", 6) == 0);
    if (n < 1 || n > 18)
        return false;
    for (size_t i = 0; i < n; i++)
        if (v[i] < '0' || v[i] > '9')
            return false;
    return true;
}

/* Pairs of a HGETALL reply into the config values. Returns how many fields
 * held something they may not (left empty). */
static int cfg_from(const redisReply *r, char values[CF__COUNT][24])
{
    int bad = 0;
    for (int i = 0; i < CF__COUNT; i++)
        values[i][0] = '\0';
    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2)
        for (int f = 0; f < CF__COUNT; f++)
            if (r->element[i]->type == REDIS_REPLY_STRING &&
                strcmp(r->element[i]->str, cf_names[f]) == 0 &&
                r->element[i + 1]->type == REDIS_REPLY_STRING) {
                if (cfg_value_ok(f, r->element[i + 1]->str, r->element[i + 1]->len))
                    snprintf(values[f], 24, "%s", r->element[i + 1]->str);
                else
                    bad++;
            }
    return bad;
}

static void on_put_done(void *u, redisReply *rep, const char *err, void *priv)
{
    rc_call *c = priv;
    char v[CF__COUNT][24];
    int bad = cfg_from(rep, v);
    if (!rep || rep->type != REDIS_REPLY_ARRAY || !v[CF_RATE][0])
        api_error(c, 503, "queue_unavailable", "Redis did not answer: try again");
    else if (bad)
        api_error(c, 503, "queue_unavailable",
                  "the queue's configuration in Redis holds values ringcast never writes");
    else
        set_reply(c, 200,
                  "{\"queue\":\"%s\",\"rate\":%s,\"max_active\":%s,\"active_ttl\":%s,"
                  "\"abandon_timeout\":%s,\"state\":\"%s\"}",
                  c->queue, v[CF_RATE], v[CF_MAX_ACTIVE], v[CF_TTL], v[CF_ABANDON], v[CF_STATE]);
    finish(u, c);
}

/* A queue created on this node is ticked from the next tick on (if this
 * node leads), not only once the next SMEMBERS of the index has listed it:
 * its first admissions come within one tick of its creation. */
static void know_queue(rc_admission *a, const char *q)
{
    for (size_t i = 0; i < a->nqueues; i++)
        if (strcmp(a->queues[i], q) == 0)
            return;
    a->queues = rc_realloc(a->queues, (a->nqueues + 1) * sizeof(*a->queues));
    a->queues[a->nqueues++] = rc_strndup(q, strlen(q));
}

static void queue_put(rc_admission *a, rc_call *c)
{
    char v[CF__COUNT][24];
    const char *why = parse_cfg(c, v);
    if (why) {
        api_error(c, 400, "bad_request", why);
        finish(a, c);
        return;
    }
    key cfg = qkey(a, c->queue, "cfg"), index = gkey(a, "index");
    args x = {.n = 0};
    int bad = 0;
    for (int f = 0; f < CF__COUNT; f++) {
        x.n = 0;
        arg_s(&x, v[f][0] ? "HSET" : "HSETNX");
        arg(&x, cfg.s, cfg.n);
        arg_s(&x, cf_names[f]);
        arg_s(&x, v[f][0] ? v[f] : cf_default[f]);
        bad |= send_args(a, &x, on_ignore, NULL);
    }
    x.n = 0;
    arg_s(&x, "SADD");
    arg(&x, index.s, index.n);
    arg_s(&x, c->queue);
    bad |= send_args(a, &x, on_ignore, NULL);
    if (!bad)
        know_queue(a, c->queue);
    x.n = 0;
    arg_s(&x, "HGETALL");
    arg(&x, cfg.s, cfg.n);
    if (bad || send_args(a, &x, on_put_done, c) < 0) {
        api_error(c, 503, "queue_unavailable", "Redis is not reachable");
        finish(a, c);
    }
}

/* GET: five replies gathered, the last one answers. */
typedef struct get_ctx {
    rc_call *c;
    char v[CF__COUNT][24];
    int64_t waiting, active, seq, head, admitted, abandoned;
    int step, sent, failed, bad;
} get_ctx;

static void on_get_part(void *u, redisReply *rep, const char *err, void *priv)
{
    get_ctx *g = priv;
    if (!rep || rep->type == REDIS_REPLY_ERROR)
        g->failed = 1;
    if (g->step == g->sent - 1 && g->sent < 6) {
        /* Not every command could be queued: answer with the last reply. */
        g->failed = 1;
        g->step = 5;
    }
    switch (g->step++) {
    case 0: g->bad = cfg_from(rep, g->v); break;
    case 1: g->waiting = reply_i64(rep); break;
    case 2: g->active = reply_i64(rep); break;
    case 3:
        if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 3) {
            g->head = reply_i64(rep->element[0]);
            g->admitted = reply_i64(rep->element[1]);
            g->abandoned = reply_i64(rep->element[2]);
        }
        break;
    case 4: g->seq = reply_i64(rep); break;
    case 5: {
        /* The lease holder's node id, as Redis holds it: escaped. */
        char lq[RC_JSON_ESCAPED_MAX(64) + 1] = "null";
        if (rep && rep->type == REDIS_REPLY_STRING && rep->len < 64) {
            ssize_t ln = rc_json_escape(lq, sizeof(lq) - 1, rep->str, rep->len);
            rc_assert(ln > 0); /* sized for 63 bytes */
            lq[ln] = '\0';
        }
        rc_call *c = g->c;
        if (g->failed)
            api_error(c, 503, "queue_unavailable", "Redis did not answer: try again");
        else if (g->bad)
            api_error(c, 503, "queue_unavailable",
                      "the queue's configuration in Redis holds values ringcast never writes");
        else if (!g->v[CF_RATE][0])
            api_error(c, 404, "queue_not_found", "no such queue: create it with PUT");
        else
            set_reply(c, 200,
                      "{\"queue\":\"%s\",\"state\":\"%s\",\"rate\":%s,\"max_active\":%s,"
                      "\"active_ttl\":%s,\"abandon_timeout\":%s,\"waiting\":%lld,"
                      "\"active\":%lld,\"head\":%lld,\"last_ticket\":%lld,"
                      "\"admitted_total\":%lld,\"abandoned_total\":%lld,\"leader\":%s}",
                      c->queue, g->v[CF_STATE], g->v[CF_RATE], g->v[CF_MAX_ACTIVE], g->v[CF_TTL],
                      g->v[CF_ABANDON], (long long)g->waiting, (long long)g->active,
                      (long long)g->head, (long long)g->seq, (long long)g->admitted,
                      (long long)g->abandoned, lq);
        free(g);
        finish(u, c);
        break;
    }
    }
}

static void queue_get(rc_admission *a, rc_call *c)
{
    get_ctx *g = rc_calloc(1, sizeof(*g));
    g->c = c;
    key cfg = qkey(a, c->queue, "cfg"), wait = qkey(a, c->queue, "wait"),
        active = qkey(a, c->queue, "active"), stats = qkey(a, c->queue, "stats"),
        seq = qkey(a, c->queue, "seq"), lease = gkey(a, "lease");
    /* Expired actives are not counted (the tick removes them a moment later). */
    char now[32];
    snprintf(now, sizeof(now), "(%lld", (long long)rc_wall_ms());
    args cmds[6] = {{.n = 0}};
    arg_s(&cmds[0], "HGETALL"), arg(&cmds[0], cfg.s, cfg.n);
    arg_s(&cmds[1], "ZCARD"), arg(&cmds[1], wait.s, wait.n);
    arg_s(&cmds[2], "ZCOUNT"), arg(&cmds[2], active.s, active.n), arg_s(&cmds[2], now),
        arg_s(&cmds[2], "+inf");
    arg_s(&cmds[3], "HMGET"), arg(&cmds[3], stats.s, stats.n), arg_s(&cmds[3], "head"),
        arg_s(&cmds[3], "admitted_total"), arg_s(&cmds[3], "abandoned_total");
    arg_s(&cmds[4], "GET"), arg(&cmds[4], seq.s, seq.n);
    arg_s(&cmds[5], "GET"), arg(&cmds[5], lease.s, lease.n);
    /* The client refuses a command only when not READY or over its byte
     * bound; if that happens midway, the last reply that will come answers
     * with 503 (on_get_part). */
    for (int i = 0; i < 6 && send_args(a, &cmds[i], on_get_part, g) == 0; i++)
        g->sent++;
    if (g->sent == 0) {
        free(g);
        api_error(c, 503, "queue_unavailable", "Redis is not reachable");
        finish(a, c);
    }
}

static void on_complete(void *u, redisReply *rep, const char *err, void *priv)
{
    rc_call *c = priv;
    if (!rep || rep->type != REDIS_REPLY_INTEGER) {
        api_error(c, 503, "queue_unavailable", "Redis did not answer: try again");
    } else {
        char out[RC_PROTO_VERIFY_MAX];
        ssize_t n = rc_proto_completed(out, sizeof(out), c->queue, c->user, rep->integer != 0);
        rc_assert(n > 0); /* sized for the longest queue and user */
        set_reply(c, 200, "%.*s", (int)n, out);
    }
    finish(u, c);
}

static void queue_complete(rc_admission *a, rc_call *c)
{
    rc_json_iter it;
    rc_json_val k, v;
    int users = 0;
    c->user[0] = '\0';
    if (c->body_len && rc_json_object_begin(&it, c->body, c->body_len, 4) == 0)
        while (rc_json_object_next(&it, &k, &v))
            if (rc_json_key_is(&k, "user") &&
                (users++ || rc_json_string(&v, c->user, sizeof(c->user)) < 0))
                c->user[0] = '\0';
    /* A second "user" is refused, as in every other body: which one would
     * be freed is ambiguous. */
    if (!c->user[0] || users != 1) {
        api_error(c, 400, "bad_request", "body must be {\"user\":\"<user id>\"}");
        finish(a, c);
        return;
    }
    key active = qkey(a, c->queue, "active");
    args x = {.n = 0};
    arg_s(&x, "ZREM");
    arg(&x, active.s, active.n);
    arg_s(&x, c->user);
    if (send_args(a, &x, on_complete, c) < 0) {
        api_error(c, 503, "queue_unavailable", "Redis is not reachable");
        finish(a, c);
    }
}

void rc_admission_call(rc_admission *a, rc_call *c)
{
    bool ready = rc_redis_get_state(a->r) == RC_REDIS_READY;
    switch (c->op) {
    case RC_CALL_GONE:
        gone(a, c->queue, c->user, c->result == RC_JOIN_WAITING);
        rc_call_free(c);
        return;
    case RC_CALL_STATUS:
        if (!ready) {
            c->result = RC_JOIN_UNAVAILABLE;
            finish(a, c);
        } else {
            join(a, c, false);
        }
        return;
    case RC_CALL_JOIN:
        if (!ready) {
            c->result = RC_JOIN_UNAVAILABLE;
            rc_counter_inc(&a->st->join_errors);
            finish(a, c);
        } else {
            join(a, c, true);
        }
        return;
    case RC_CALL_LEAVE:
        if (!ready) {
            local_del(a, c->queue, c->user, true);
            c->result = RC_JOIN_UNAVAILABLE;
            finish(a, c);
        } else {
            leave(a, c);
        }
        return;
    default: break;
    }
    if (!ready) {
        api_error(c, 503, "queue_unavailable", "Redis is not reachable");
        finish(a, c);
        return;
    }
    if (c->op == RC_CALL_QUEUE_PUT)
        queue_put(a, c);
    else if (c->op == RC_CALL_QUEUE_GET)
        queue_get(a, c);
    else
        queue_complete(a, c);
}

/* ---- ticks seen on the queue channels ------------------------------------------ */

static rc_qstat *qstat(rc_admission *a, rc_str q)
{
    for (int i = 0; i < RC_QSTAT_MAX; i++) {
        rc_qstat *s = &a->st->q[i];
        if (!rc_flag_get(&s->used)) {
            snprintf(s->name, sizeof(s->name), "%.*s", (int)q.n, q.p);
            rc_flag_set(&s->used, 1);
            return s;
        }
        if (strlen(s->name) == q.n && memcmp(s->name, q.p, q.n) == 0)
            return s;
    }
    return NULL;
}

void rc_admission_on_tick(rc_admission *a, rc_str queue, rc_str data)
{
    rc_json_iter it;
    rc_json_val k, v;
    int64_t n;
    if (rc_json_object_begin(&it, data.p, data.n, 4) != 0)
        return;
    rc_qstat *s = qstat(a, queue);
    char q[RC_PROTO_MAX_QUEUE + 1];
    snprintf(q, sizeof(q), "%.*s", (int)queue.n, queue.p);
    waiters *w = local_of(a, q, false);
    while (rc_json_object_next(&it, &k, &v)) {
        if (s && rc_json_key_is(&k, "state"))
            rc_counter_set(&s->open, v.raw.n == 6 && memcmp(v.raw.p, "\"open\"", 6) == 0);
        if (rc_json_int64(&v, &n) < 0)
            continue;
        if (s && rc_json_key_is(&k, "waiting"))
            rc_counter_set(&s->waiting, (uint64_t)n);
        else if (s && rc_json_key_is(&k, "active"))
            rc_counter_set(&s->active, (uint64_t)n);
        else if (s && rc_json_key_is(&k, "head"))
            rc_counter_set(&s->head, (uint64_t)n);
        else if (s && rc_json_key_is(&k, "last_ticket"))
            rc_counter_set(&s->last_ticket, (uint64_t)n);
        else if (s && rc_json_key_is(&k, "admitted_total"))
            rc_counter_set(&s->admitted_total, (uint64_t)n);
        else if (s && rc_json_key_is(&k, "abandoned_total"))
            rc_counter_set(&s->abandoned_total, (uint64_t)n);
        else if (s && rc_json_key_is(&k, "rate"))
            rc_counter_set(&s->rate, (uint64_t)n);
        else if (s && rc_json_key_is(&k, "max_active"))
            rc_counter_set(&s->max_active, (uint64_t)n);
        else if (w && rc_json_key_is(&k, "abandon") && n > 0)
            w->abandon_s = (uint32_t)n;
    }
}

/* ---- the connection ------------------------------------------------------------- */

static void on_ready(void *u)
{
    rc_admission *a = u;
    rc_info("admission: Redis connection ready");
    rc_counter_set(&a->st->up, 1);
}

static void on_down(void *u, const char *reason)
{
    rc_admission *a = u;
    if (rc_counter_get(&a->st->up))
        rc_warn("admission: Redis connection lost: %s; no admissions until it is back", reason);
    rc_counter_set(&a->st->up, 0);
    a->leader = false;
    rc_counter_set(&a->st->leader, 0);
}

rc_admission *rc_admission_new(struct io_uring *ring, const rc_config *cfg,
                               const rc_admission_ops *ops, void *u, rc_admission_stats *stats)
{
    rc_admission *a = rc_calloc(1, sizeof(*a));
    a->cfg = cfg;
    a->ops = *ops;
    a->u = u;
    a->st = stats;
    a->local = rc_rooms_new();
    rc_redis_url url;
    char err[256];
    int e = rc_redis_url_parse(cfg->redis_url, &url, err, sizeof(err));
    rc_assert(e == 0);
    rc_redis_hooks h = {.on_ready = on_ready, .on_down = on_down, .on_push = NULL};
    a->r = rc_redis_new(ring, &url, &h, a, RC_ADMISSION_TAG);
    rc_redis_set_ping_interval(a->r, cfg->redis_ping_ms);
    return a;
}

void rc_admission_on_cqe(rc_admission *a, struct io_uring_cqe *cqe)
{
    rc_redis_on_cqe(a->r, cqe);
}

uint64_t rc_admission_tick(rc_admission *a, uint64_t now_ms)
{
    rc_redis_tick(a->r, now_ms);
    uint64_t period = a->cfg->admission_tick_ms;
    if (!a->next_tick_ms)
        a->next_tick_ms = now_ms + period;
    if (now_ms >= a->next_tick_ms) {
        /* Drift-free: the schedule is start + k * period, whatever each
         * tick's own delay; ticks missed while busy are skipped, not bunched. */
        uint64_t behind = (now_ms - a->next_tick_ms) / period;
        a->next_tick_ms += (behind + 1) * period;
        if (rc_redis_get_state(a->r) != RC_REDIS_READY) {
            /* nothing to do: no admissions while Redis is away */
        } else if (a->tick_inflight) {
            rc_counter_inc(&a->st->late_ticks);
        } else {
            send_tick(a, now_ms);
        }
    }
    rc_redis_flush(a->r);
    return a->next_tick_ms > now_ms ? a->next_tick_ms - now_ms : 0;
}

void rc_admission_close(rc_admission *a)
{
    rc_redis_close(a->r);
}

bool rc_admission_idle(const rc_admission *a)
{
    return rc_redis_idle(a->r);
}

static void free_waiters(rc_room *r, void *arg)
{
    waiters *w = r->udata;
    if (!w)
        return;
    rc_rooms_free(w->users);
    free(w->v);
    free(w);
}

void rc_admission_free(rc_admission *a)
{
    if (!a)
        return;
    rc_redis_free(a->r);
    rc_rooms_each(a->local, free_waiters, NULL);
    rc_rooms_free(a->local);
    for (size_t i = 0; i < a->nqueues; i++)
        free(a->queues[i]);
    free(a->queues);
    free(a);
}
