/* The admission engine: the waiting rooms' Redis side, on the relay thread
 * (see admission/admission.h). It runs the 1-second tick (one tick script
 * per queue, which takes or renews that queue's lease, the paced refresh of
 * this node's waiters' seen times, the queue index), built as a batch whose
 * commands carry their hash slots; joins, leaves and status questions from
 * the shards; and it keeps the per-queue gauges from the ticks it sees and
 * the set of queues this node leads. The HTTP API's queue
 * operations are in api.c, the Lua scripts in scripts.c, the keys, commands
 * and answers both use in commands.c, and the shard half (positions,
 * tokens, leaving tabs) in waitroom.c.
 *
 * Thread: the relay thread. */
#include "admission/internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/log.h"
#include "channels/room.h"
#include "net/uring.h"
#include "redis/client.h"
#include "ws/json.h"

#define LEASE_MS      5000 /* a dead leader's lease runs out after this */
#define ABANDON_BATCH 1000 /* abandoned waiters removed per queue per tick */
/* How long a tick on a primary with replicas waits for one to have it. */
#define FENCE_MS     100
#define FENCE_MS_STR "100"

/* The users of one queue waiting on this node: a set with a count of local
 * connections each (room->seq), and a dense array for the paced refresh of
 * their seen times (room->flags is the index in it). */
typedef struct waiters {
    rc_rooms *users;
    rc_room **v;
    size_t n, cap, cursor;
    uint32_t abandon_s;
} waiters;

/* One tick in flight: its commands (which hold their arguments until
 * every reply is in) and, for each queue's tick script, the queue it ticks. */
typedef struct tick_ctx tick_ctx;

typedef struct qtick {
    tick_ctx *t;
    const char *queue; /* in t->batch's memory */
    const char *chan;  /* its Redis channel, in t->batch's memory */
    size_t chan_len;
    int slot;   /* of the queue's keys */
    bool fence; /* announced by us once a replica has it (WAIT) */
} qtick;

/* A tick that waits for a replica before it is announced. */
typedef struct fenced {
    qtick *qt;
    size_t len;
    char msg[];
} fenced;

struct tick_ctx {
    rc_admission *a;
    uint64_t sent_ns;
    uint64_t no;      /* a->tick_no when sent */
    unsigned pending; /* replies to come, +1 while the tick is being sent */
    unsigned led;     /* queues whose lease this node holds, as the replies say */
    uint32_t nodes;   /* primaries the tick went to: its round trips, in parallel */
    adm_batch batch;
    qtick *q; /* one per queue ticked */
};

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

static void prune_led(rc_admission *a, uint64_t tick_no);

static void tick_reply_done(tick_ctx *t)
{
    if (--t->pending)
        return;
    rc_admission *a = t->a;
    rc_counter_set(&a->st->tick_us, (rc_now_ns() - t->sent_ns) / 1000);
    rc_counter_add(&a->st->round_trips, t->nodes);
    if (!rc_rlink_ready_node(a->r, -1))
        t->led = 0; /* the connection dropped: replies that came count no more */
    prune_led(a, t->led ? t->no : 0);
    rc_counter_set(&a->st->leader_queues, t->led);
    rc_counter_set(&a->st->leader, t->led > 0);
    a->tick_inflight = false;
    adm_batch_free(&t->batch);
    free(t->q);
    free(t);
}

/* ---- which queues this node leads ------------------------------------------- */

/* The tick numbered tick_no said this node holds q's lease. */
static void led_yes(rc_admission *a, const char *q, uint64_t tick_no)
{
    rc_room *r = rc_rooms_get(a->led, q, strlen(q));
    if (!r) {
        r = rc_rooms_add(a->led, q, strlen(q));
        rc_info("admission: took the lease of queue %s", q);
    }
    r->seq = tick_no;
}

typedef struct stale {
    rc_room **v;
    size_t n;
    uint64_t tick_no;
} stale;

static void collect_stale(rc_room *r, void *p)
{
    stale *s = p;
    if (r->seq != s->tick_no)
        s->v[s->n++] = r;
}

/* Forgets the queues the tick numbered tick_no did not confirm (another
 * node holds the lease, the queue is gone, or its script failed); 0 forgets
 * every one (the connection dropped). */
static void prune_led(rc_admission *a, uint64_t tick_no)
{
    size_t n = rc_rooms_count(a->led);
    if (!n)
        return;
    stale s = {rc_malloc(n * sizeof(*s.v)), 0, tick_no};
    rc_rooms_each(a->led, collect_stale, &s);
    for (size_t i = 0; i < s.n; i++) {
        rc_info("admission: no longer holds the lease of queue %s", s.v[i]->name);
        rc_rooms_del(a->led, s.v[i]);
    }
    free(s.v);
}

static void on_announced(void *u, redisReply *rep, const char *err, void *priv)
{
    fenced *f = priv;
    if (!rep || rep->type == REDIS_REPLY_ERROR)
        rc_warn("admission: the tick of queue %s was not announced: %s", f->qt->queue,
                rep ? rep->str : err);
    tick_ctx *t = f->qt->t;
    free(f);
    tick_reply_done(t);
}

/* WAIT's answer: the replicas that have the tick. With one, it is
 * announced; with none in time it is not (a failover could take it back),
 * and the next tick tells the waiters where they stand. */
static void on_replicated(void *u, redisReply *rep, const char *err, void *priv)
{
    rc_admission *a = u;
    fenced *f = priv;
    qtick *qt = f->qt;
    if (rep && rep->type == REDIS_REPLY_INTEGER && rep->integer >= 1) {
        const char *argv[3] = {adm_publish_verb(a), qt->chan, f->msg};
        size_t lens[3] = {strlen(argv[0]), qt->chan_len, f->len};
        if (rc_rlink_command(a->r, qt->slot, on_announced, f, 3, argv, lens) == 0) {
            rc_counter_inc(&a->st->replicated_ticks);
            return;
        }
    }
    rc_counter_inc(&a->st->unconfirmed_ticks);
    uint64_t now = rc_now_ms();
    if (now - a->last_unconfirmed_log_ms >= 1000) {
        a->last_unconfirmed_log_ms = now;
        rc_warn("admission: no replica confirmed the tick of queue %s in %d ms: not announced "
                "(counted in ringcast_admission_unconfirmed_ticks_total; logged at most once a "
                "second)",
                qt->queue, FENCE_MS);
    }
    tick_ctx *t = qt->t;
    free(f);
    tick_reply_done(t);
}

static void on_qtick(void *u, redisReply *rep, const char *err, void *priv)
{
    rc_admission *a = u;
    qtick *qt = priv;
    if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 6) {
        rc_counter_add(&a->st->admitted, (uint64_t)adm_reply_i64(rep->element[0]));
        rc_counter_add(&a->st->abandoned, (uint64_t)adm_reply_i64(rep->element[4]));
        led_yes(a, qt->queue, qt->t->no);
        qt->t->led++;
        const redisReply *msg = rep->element[5];
        if (qt->fence && msg->type == REDIS_REPLY_STRING) {
            /* on the queue's primary, behind the script: its replicas have
             * the tick once WAIT says so */
            fenced *f = rc_malloc(sizeof(*f) + msg->len);
            f->qt = qt;
            f->len = msg->len;
            memcpy(f->msg, msg->str, msg->len);
            const char *argv[3] = {"WAIT", "1", FENCE_MS_STR};
            size_t lens[3] = {4, 1, sizeof(FENCE_MS_STR) - 1};
            if (rc_rlink_command(a->r, qt->slot, on_replicated, f, 3, argv, lens) == 0) {
                qt->t->pending++;
            } else {
                rc_counter_inc(&a->st->unconfirmed_ticks);
                free(f);
            }
        }
    } else if (rep && rep->type == REDIS_REPLY_ERROR) {
        rc_warn("admission: tick script of queue %s failed: %.*s", qt->queue,
                (int)RC_MIN(rep->len, (size_t)200), rep->str);
    }
    tick_reply_done(qt->t);
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

/* RC_SEEN_LUA for the next slice of each queue's local waiters, so that
 * each is refreshed about three times per abandon timeout. */
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
    key seen = adm_qkey(a, qr->name, "seen");
    adm_batch *b = &ra->t->batch;
    adm_cmd *c = adm_batch_add(b, 5 + (int)k, on_tick_other, ra->t);
    adm_cmd_arg_static(c, "EVAL", 4);
    adm_cmd_arg_static(c, RC_SEEN_LUA, strlen(RC_SEEN_LUA));
    adm_cmd_arg_static(c, "1", 1);
    adm_cmd_key(b, c, &seen);
    adm_cmd_arg(b, c, ahead, (size_t)an);
    for (size_t i = 0; i < k; i++) {
        if (w->cursor >= w->n)
            w->cursor = 0;
        rc_room *u = w->v[w->cursor++];
        adm_cmd_arg(b, c, u->name, u->name_len);
    }
}

/* The commands of tick t, in t->batch: per queue of the index, its tick
 * script (which takes or renews the queue's lease); the refresh of this
 * node's waiters' seen times, per queue; SMEMBERS of the index, the queue
 * list of the next tick. Each names the keys of one slot. */
static void tick_plan(rc_admission *a, tick_ctx *t)
{
    adm_batch *b = &t->batch;
    const char *me = a->cfg->node_id;
    char lease_ms[16], batch[16];
    int ln = snprintf(lease_ms, sizeof(lease_ms), "%d", LEASE_MS);
    int bn = snprintf(batch, sizeof(batch), "%d", ABANDON_BATCH);
    const char *verb = adm_publish_verb(a);

    t->q = rc_calloc(a->nqueues ? a->nqueues : 1, sizeof(*t->q));
    for (size_t i = 0; i < a->nqueues; i++) {
        const char *q = a->queues[i];
        key k[7] = {adm_qkey(a, q, "lease"),  adm_qkey(a, q, "cfg"),  adm_qkey(a, q, "wait"),
                    adm_qkey(a, q, "active"), adm_qkey(a, q, "seen"), adm_qkey(a, q, "stats"),
                    adm_qkey(a, q, "seq")};
        key chan = adm_qchan(a, q);
        t->q[i].t = t;
        t->q[i].queue = adm_batch_copy(b, q, strlen(q)); /* a->queues may change meanwhile */
        t->q[i].chan = adm_batch_copy(b, chan.s, chan.n);
        t->q[i].chan_len = chan.n;
        t->q[i].slot = rc_cluster_slot(k[0].s, k[0].n);
        /* a primary with replicas: announce once one has the tick */
        t->q[i].fence = a->r && rc_rlink_replicas(a->r, t->q[i].slot) > 0;
        adm_cmd *c = adm_batch_add(b, 16, on_qtick, &t->q[i]);
        adm_cmd_arg_static(c, "EVAL", 4);
        adm_cmd_arg_static(c, RC_TICK_LUA, strlen(RC_TICK_LUA));
        adm_cmd_arg_static(c, "7", 1);
        for (int j = 0; j < 7; j++)
            adm_cmd_key(b, c, &k[j]);
        adm_cmd_arg(b, c, me, strlen(me));
        adm_cmd_arg(b, c, chan.s, chan.n);
        adm_cmd_arg(b, c, batch, (size_t)bn);
        adm_cmd_arg(b, c, lease_ms, (size_t)ln);
        adm_cmd_arg_static(c, verb, strlen(verb));
        adm_cmd_arg_static(c, t->q[i].fence ? "0" : "1", 1);
    }

    refresh_arg ra = {a, t};
    rc_rooms_each(a->local, refresh_queue, &ra);

    key index = adm_gkey(a, "index");
    adm_cmd *c = adm_batch_add(b, 2, on_index, t);
    adm_cmd_arg_static(c, "SMEMBERS", 8);
    adm_cmd_key(b, c, &index);
}

static void send_tick(rc_admission *a)
{
    tick_ctx *t = rc_calloc(1, sizeof(*t));
    t->a = a;
    t->sent_ns = rc_now_ns();
    t->no = ++a->tick_no;
    t->pending = 1; /* released below, once everything is queued */
    tick_plan(a, t);
    t->pending += (unsigned)adm_batch_send(a, &t->batch, &t->nodes);
    rc_counter_inc(&a->st->ticks);
    a->tick_inflight = true;
    tick_reply_done(t); /* the initial 1 */
}

/* ---- calls ------------------------------------------------------------------ */

static void on_join(void *u, redisReply *rep, const char *err, void *priv)
{
    rc_admission *a = u;
    rc_call *c = priv;
    int64_t kind = rep && rep->type == REDIS_REPLY_ARRAY && rep->elements >= 1
                       ? adm_reply_i64(rep->element[0])
                       : 0;
    if (kind == 1 && rep->elements == 4) {
        c->result = RC_JOIN_WAITING;
        c->ticket = adm_reply_i64(rep->element[1]);
        c->head = adm_reply_i64(rep->element[2]);
        c->ewma = adm_reply_f(rep->element[3]);
        local_add(a, c->queue, c->user);
        rc_counter_inc(&a->st->joins);
    } else if (kind == 2 && rep->elements == 2) {
        c->result = RC_JOIN_ACTIVE;
        c->expires_ms = adm_reply_i64(rep->element[1]);
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
    adm_finish(a, c);
}

static void on_join(void *u, redisReply *rep, const char *err, void *priv);
static void on_status(void *u, redisReply *rep, const char *err, void *priv);

/* RC_JOIN_LUA for c: as a join, or as a status question that never joins. */
static void join(rc_admission *a, rc_call *c, bool as_join)
{
    key k[6] = {adm_qkey(a, c->queue, "cfg"),    adm_qkey(a, c->queue, "wait"),
                adm_qkey(a, c->queue, "active"), adm_qkey(a, c->queue, "seq"),
                adm_qkey(a, c->queue, "seen"),   adm_qkey(a, c->queue, "stats")};
    args x = {.n = 0};
    adm_arg_s(&x, "EVAL");
    adm_arg(&x, RC_JOIN_LUA, strlen(RC_JOIN_LUA));
    adm_arg_s(&x, "6");
    for (int j = 0; j < 6; j++)
        adm_arg_key(&x, &k[j]);
    adm_arg_s(&x, c->user);
    adm_arg_s(&x, as_join ? "join" : "status");
    if (adm_send(a, &x, as_join ? on_join : on_status, c) < 0) {
        c->result = RC_JOIN_UNAVAILABLE;
        if (as_join)
            rc_counter_inc(&a->st->join_errors);
        adm_finish(a, c);
    }
}

static void on_leave(void *u, redisReply *rep, const char *err, void *priv)
{
    rc_call *c = priv;
    c->result = rep && rep->type != REDIS_REPLY_ERROR ? RC_JOIN_WAITING : RC_JOIN_UNAVAILABLE;
    adm_finish(u, c);
}

static void leave(rc_admission *a, rc_call *c)
{
    local_del(a, c->queue, c->user, true);
    key wait = adm_qkey(a, c->queue, "wait"), seen = adm_qkey(a, c->queue, "seen");
    key chan = adm_qchan(a, c->queue);
    args x = {.n = 0};
    adm_arg_s(&x, "EVAL");
    adm_arg(&x, RC_LEAVE_LUA, strlen(RC_LEAVE_LUA));
    adm_arg_s(&x, "2");
    adm_arg_key(&x, &wait);
    adm_arg_key(&x, &seen);
    adm_arg_s(&x, c->user);
    adm_arg(&x, chan.s, chan.n);
    adm_arg_s(&x, adm_publish_verb(a));
    if (adm_send(a, &x, on_leave, c) < 0) {
        c->result = RC_JOIN_UNAVAILABLE;
        adm_finish(a, c);
    }
}

static void on_status(void *u, redisReply *rep, const char *err, void *priv)
{
    rc_call *c = priv;
    int64_t kind = rep && rep->type == REDIS_REPLY_ARRAY && rep->elements >= 1
                       ? adm_reply_i64(rep->element[0])
                       : -2;
    if (kind == 1 && rep->elements == 4) {
        c->result = RC_JOIN_WAITING;
        c->ticket = adm_reply_i64(rep->element[1]);
        c->head = adm_reply_i64(rep->element[2]);
        c->ewma = adm_reply_f(rep->element[3]);
    } else if (kind == 2 && rep->elements == 2) {
        c->result = RC_JOIN_ACTIVE;
        c->expires_ms = adm_reply_i64(rep->element[1]);
    } else if (kind == 0) {
        c->result = RC_JOIN_GONE;
    } else if (kind == -1) {
        c->result = RC_JOIN_NOT_FOUND;
    } else {
        c->result = RC_JOIN_UNAVAILABLE;
    }
    adm_finish(u, c);
}

/* A connection of user that waited in q here waits no more; closed: it
 * closed while the user still holds the place. When it was the user's last
 * one on this node, the abandon timeout counts from now. */
static void gone(rc_admission *a, const char *q, const char *user, bool closed)
{
    if (!local_del(a, q, user, false) || !closed || !rc_rlink_ready_node(a->r, -1))
        return;
    key seen = adm_qkey(a, q, "seen");
    args x = {.n = 0};
    adm_arg_s(&x, "EVAL");
    adm_arg(&x, RC_GONE_LUA, strlen(RC_GONE_LUA));
    adm_arg_s(&x, "1");
    adm_arg_key(&x, &seen);
    adm_arg_s(&x, user);
    adm_send(a, &x, adm_on_ignore, NULL);
}

void rc_admission_call(rc_admission *a, rc_call *c)
{
    bool ready = rc_rlink_ready_node(a->r, -1) != 0;
    switch (c->op) {
    case RC_CALL_GONE:
        gone(a, c->queue, c->user, c->result == RC_JOIN_WAITING);
        rc_call_free(c);
        return;
    case RC_CALL_STATUS:
        if (!ready) {
            c->result = RC_JOIN_UNAVAILABLE;
            adm_finish(a, c);
        } else {
            join(a, c, false);
        }
        return;
    case RC_CALL_JOIN:
        if (!ready) {
            c->result = RC_JOIN_UNAVAILABLE;
            rc_counter_inc(&a->st->join_errors);
            adm_finish(a, c);
        } else {
            join(a, c, true);
        }
        return;
    case RC_CALL_LEAVE:
        if (!ready) {
            local_del(a, c->queue, c->user, true);
            c->result = RC_JOIN_UNAVAILABLE;
            adm_finish(a, c);
        } else {
            leave(a, c);
        }
        return;
    default: break;
    }
    if (!ready) {
        adm_api_error(c, 503, "queue_unavailable", "Redis is not reachable");
        adm_finish(a, c);
        return;
    }
    adm_api_call(a, c);
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

static void on_ready(void *u, uint16_t node)
{
    rc_admission *a = u;
    (void)node;
    rc_info("admission: Redis connection ready%s",
            rc_rlink_is_cluster(a->r) ? " (a cluster primary)" : "");
    rc_counter_set(&a->st->up, rc_rlink_ready(a->r));
}

static void on_down(void *u, uint16_t node, const char *reason)
{
    rc_admission *a = u;
    (void)node;
    if (rc_counter_get(&a->st->up))
        rc_warn("admission: Redis connection lost: %s; no admissions until it is back", reason);
    rc_counter_set(&a->st->up, 0);
    prune_led(a, 0);
    rc_counter_set(&a->st->leader, 0);
    rc_counter_set(&a->st->leader_queues, 0);
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
    a->led = rc_rooms_new();
    rc_redis_url url[RC_REDIS_MAX_SEEDS];
    size_t n;
    char err[256];
    int e = rc_redis_seeds_parse(cfg->redis_url, url, RC_REDIS_MAX_SEEDS, &n, err, sizeof(err));
    rc_assert(e == 0);
    rc_rlink_hooks h = {.on_ready = on_ready, .on_down = on_down};
    a->r = rc_rlink_new(ring, url, n, &h, a, RC_ADMISSION_KIND);
    rc_rlink_set_ping_interval(a->r, cfg->redis_ping_ms);
    return a;
}

void rc_admission_on_cqe(rc_admission *a, struct io_uring_cqe *cqe)
{
    rc_rlink_on_cqe(a->r, cqe);
}

uint64_t rc_admission_tick(rc_admission *a, uint64_t now_ms)
{
    rc_rlink_tick(a->r, now_ms);
    rc_counter_set(&a->st->up, rc_rlink_ready(a->r));
    uint64_t period = a->cfg->admission_tick_ms;
    if (!a->next_tick_ms)
        a->next_tick_ms = now_ms + period;
    if (now_ms >= a->next_tick_ms) {
        /* Drift-free: the schedule is start + k * period, whatever each
         * tick's own delay; ticks missed while busy are skipped, not bunched. */
        uint64_t behind = (now_ms - a->next_tick_ms) / period;
        a->next_tick_ms += (behind + 1) * period;
        if (!rc_rlink_ready_node(a->r, -1)) {
            /* nothing to do: no admissions while Redis is away */
        } else if (a->tick_inflight) {
            rc_counter_inc(&a->st->late_ticks);
        } else {
            send_tick(a);
        }
    }
    rc_rlink_flush(a->r);
    return a->next_tick_ms > now_ms ? a->next_tick_ms - now_ms : 0;
}

void rc_admission_close(rc_admission *a)
{
    rc_rlink_close(a->r);
}

bool rc_admission_idle(const rc_admission *a)
{
    return rc_rlink_idle(a->r);
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
    rc_rlink_free(a->r);
    rc_rooms_each(a->local, free_waiters, NULL);
    rc_rooms_free(a->local);
    rc_rooms_free(a->led);
    for (size_t i = 0; i < a->nqueues; i++)
        free(a->queues[i]);
    free(a->queues);
    free(a);
}
