/* Waiting rooms on a shard (runs on the shard's thread; the Redis half is
 * admission.c, on the relay's): queue.join / queue.leave, the answers the relay
 * sends back (rc_call), and each tick's fan-out: one frame per queue per
 * tick, the same bytes for every waiter on the shard (each client derives
 * its place from it and its ticket), and an admission token for each waiter
 * the tick admitted. Answers go through each connection's protocol
 * (proto/protocol.h).
 *
 * A waiting connection is a quiet member of channel "queue:{q}" (so the
 * node subscribes to the queue's ticks exactly while it has waiters) and
 * has its ticket in s->waits[slot]. A connection waits in one queue at most. */
#include <math.h>
#include <string.h>

#include "admission/waitroom.h"

#include "admission/token.h"
#include "channels/shard.h"
#include "base/log.h"
#include "ws/json.h"

#define QUEUE_PREFIX "queue:"

static rc_call *new_call(rc_shard *s, rc_conn *c, int op, const char *queue, size_t qlen)
{
    rc_call *k = rc_calloc(1, sizeof(*k));
    k->op = (uint8_t)op;
    k->shard = (uint16_t)s->id;
    k->conn = rc_conn_id(s, c);
    k->gen = c->gen;
    memcpy(k->queue, queue, qlen);
    k->queue[qlen] = '\0';
    const char *user = c->auth ? rc_auth_user(c->auth) : NULL;
    if (user)
        snprintf(k->user, sizeof(k->user), "%s", user);
    return k;
}

/* Joins and leaves may be refused when the relay's queue is full (the
 * client is told); a GONE must reach the relay, so it waits in the shard's
 * backlog if need be. */
static int send_call(rc_shard *s, rc_call *k)
{
    if (rc_shard_to_relay(s, RC_Q_CALL, k, k->op != RC_CALL_GONE) == 0)
        return 0;
    rc_call_free(k);
    return -1;
}

static rc_str wait_queue(const rc_wait *w)
{
    rc_room *r = w->room;
    size_t pl = sizeof(QUEUE_PREFIX) - 1;
    return (rc_str){r->name + pl, r->name_len - pl};
}

/* How stop_waiting tells the relay. */
enum { TELL_NONE, TELL_CLOSED, TELL_PLACE_GONE };

/* Stops c waiting (on this shard) and lets the relay know that this
 * connection no longer counts as a waiter of the queue: TELL_CLOSED when the
 * connection closed while the user still holds the place (the abandon
 * timeout starts), TELL_PLACE_GONE when the place itself is gone (admitted,
 * left, removed). */
static void stop_waiting(rc_shard *s, rc_conn *c, int tell)
{
    rc_wait *w = &s->waits[rc_conn_id(s, c)];
    if (!w->room)
        return;
    rc_str q = wait_queue(w);
    if (tell != TELL_NONE) {
        rc_call *k = new_call(s, c, RC_CALL_GONE, q.p, q.n);
        k->result = tell == TELL_CLOSED ? RC_JOIN_WAITING : RC_JOIN_GONE;
        send_call(s, k);
    }
    rc_room *r = w->room;
    w->room = NULL;
    w->ticket = 0;
    w->head = 0;
    rc_counter_set(&s->stats.waiters, rc_counter_get(&s->stats.waiters) - 1);
    rc_chan_leave(s, c, r);
}

void rc_wait_conn_gone(rc_shard *s, rc_conn *c)
{
    stop_waiting(s, c, TELL_CLOSED);
}

/* Sends a client's request to the relay and holds the connection until the
 * answer (engine/reqq.c), so that its next requests wait for this one. */
static int send_request(rc_shard *s, rc_conn *c, rc_call *k, rc_str id)
{
    memcpy(k->id, id.p, id.n);
    k->id_len = (uint8_t)id.n;
    k->client = 1;
    if (send_call(s, k) < 0)
        return -1;
    rc_req_hold(s, c);
    return 0;
}

static int waits_in(const rc_wait *w, rc_str q)
{
    return w->room && wait_queue(w).n == q.n && memcmp(wait_queue(w).p, q.p, q.n) == 0;
}

void rc_wait_leave(rc_shard *s, rc_conn *c, rc_str tag, rc_str q)
{
    rc_wait *w = &s->waits[rc_conn_id(s, c)];
    if (!waits_in(w, q)) {
        rc_conn_proto(s, c)->queue_left(s, c, tag, q);
        return;
    }
    /* Answered when Redis has the user out of the line. */
    if (send_request(s, c, new_call(s, c, RC_CALL_LEAVE, q.p, q.n), tag) < 0) {
        rc_conn_error(s, c, tag, RC_PERR_OVERLOADED, "server busy: leave again shortly",
                      RC_STR_NULL);
        return;
    }
    stop_waiting(s, c, TELL_NONE);
}

void rc_wait_join(rc_shard *s, rc_conn *c, rc_str tag, rc_str q)
{
    rc_wait *w = &s->waits[rc_conn_id(s, c)];
    /* Requests run one at a time per connection, so a join that is still
     * with the relay has set w->room before the next join is looked at. */
    if (w->room && !waits_in(w, q)) {
        rc_conn_error(s, c, tag, RC_PERR_QUEUE_BUSY,
                      "this connection already waits in another queue: leave it first",
                      RC_STR_NULL);
        return;
    }
    if (send_request(s, c, new_call(s, c, RC_CALL_JOIN, q.p, q.n), tag) < 0)
        rc_conn_error(s, c, tag, RC_PERR_OVERLOADED, "server busy: join again shortly",
                      RC_STR_NULL);
}

/* Seconds to wait at position p when ewma people are admitted per tick;
 * -1 when no admission rate is known. */
static int64_t eta(const rc_shard *s, int64_t p, double ewma)
{
    if (ewma < 0.01)
        return -1;
    /* Saturated: p and ewma come from Redis, and a cast out of range is
     * undefined. */
    return rc_d2i64(ceil((double)p / ewma * s->cfg->admission_tick_ms / 1000.0));
}

static void send_admitted(rc_shard *s, rc_conn *c, rc_str id, rc_str q, int64_t expires_ms)
{
    char tok[RC_ATOKEN_MAX_LEN + 1], qz[RC_PROTO_MAX_QUEUE + 1];
    snprintf(qz, sizeof(qz), "%.*s", (int)q.n, q.p);
    ssize_t tn =
        rc_atoken_mint(tok, sizeof(tok), s->cfg->admission_secret, strlen(s->cfg->admission_secret),
                       rc_auth_user(c->auth), qz, rc_wall_s(), expires_ms / 1000);
    if (tn < 0) {
        rc_conn_error(s, c, id, RC_PERR_INTERNAL, "could not sign the admission token", q);
        return;
    }
    rc_conn_proto(s, c)->queue_admitted(s, c, id, q, (rc_str){tok, (size_t)tn}, expires_ms);
    rc_counter_inc(&s->stats.admitted);
}

static void join_done(rc_shard *s, rc_conn *c, rc_call *k)
{
    rc_str id = {k->id, k->id_len}, q = {k->queue, strlen(k->queue)};
    rc_wait *w = &s->waits[rc_conn_id(s, c)];
    switch (k->result) {
    case RC_JOIN_WAITING: {
        if (!w->room) {
            char ch[sizeof(QUEUE_PREFIX) + RC_PROTO_MAX_QUEUE];
            int n = snprintf(ch, sizeof(ch), QUEUE_PREFIX "%s", k->queue);
            w->room = rc_chan_join_quiet(s, c, (rc_str){ch, (size_t)n});
            rc_counter_set(&s->stats.waiters, rc_counter_get(&s->stats.waiters) + 1);
        } else {
            /* A second join of the same connection: the relay counted it
             * twice, so give one back. */
            send_call(s, new_call(s, c, RC_CALL_GONE, q.p, q.n));
        }
        w->ticket = k->ticket;
        w->head = k->head;
        int64_t pos = RC_MAX(rc_sat_sub(k->ticket, k->head), (int64_t)1);
        rc_conn_proto(s, c)->queue_joined(s, c, id, q, k->ticket, pos, eta(s, pos, k->ewma));
        return;
    }
    case RC_JOIN_ACTIVE:
        stop_waiting(s, c, TELL_PLACE_GONE);
        send_admitted(s, c, id, q, k->expires_ms);
        return;
    case RC_JOIN_NOT_FOUND:
        stop_waiting(s, c, TELL_PLACE_GONE);
        rc_conn_error(s, c, id, RC_PERR_QUEUE_NOT_FOUND, "no such queue", RC_STR_NULL);
        return;
    default:
        rc_conn_error(s, c, id, RC_PERR_QUEUE_UNAVAILABLE,
                      "the waiting room is unavailable (Redis is away): join again shortly",
                      RC_STR_NULL);
    }
}

/* Tells c its place in q is gone (no id: nobody asked). */
static void send_gone(rc_shard *s, rc_conn *c, rc_str q, const char *reason)
{
    rc_conn_proto(s, c)->queue_gone(s, c, q, reason);
}

/* The answer to the question a tick raised: where does a waiter stand whose
 * ticket is below the head but who was not in the batch? */
static void status_done(rc_shard *s, rc_conn *c, rc_call *k)
{
    rc_str q = {k->queue, strlen(k->queue)};
    rc_wait *w = &s->waits[rc_conn_id(s, c)];
    if (!waits_in(w, q))
        return; /* left meanwhile */
    switch (k->result) {
    case RC_JOIN_WAITING: w->ticket = k->ticket; return;
    case RC_JOIN_ACTIVE:
        stop_waiting(s, c, TELL_PLACE_GONE);
        send_admitted(s, c, RC_STR_NULL, q, k->expires_ms);
        return;
    case RC_JOIN_GONE:
    case RC_JOIN_NOT_FOUND:
        stop_waiting(s, c, TELL_PLACE_GONE);
        send_gone(s, c, q, "removed");
        return;
    default: return; /* Redis away: the next tick asks again */
    }
}

void rc_wait_on_calldone(rc_shard *s, rc_call *k)
{
    rc_conn *c = k->conn < s->nconns ? &s->conns[k->conn] : NULL;
    int alive = c && c->gen == k->gen;
    rc_assert(k->op < RC_CALL_QUEUE_PUT); /* the HTTP API's go to http/server.c */
    if (alive && c->state == RC_CONN_OPEN) {
        if (k->op == RC_CALL_JOIN) {
            join_done(s, c, k);
        } else if (k->op == RC_CALL_STATUS) {
            status_done(s, c, k);
        } else if (k->result == RC_JOIN_UNAVAILABLE) {
            /* The connection waits no more, but the line may still hold the
             * user (until the abandon timeout): say so. */
            rc_conn_error(s, c, (rc_str){k->id, k->id_len}, RC_PERR_QUEUE_UNAVAILABLE,
                          "the waiting room is unavailable (Redis is away): leave again shortly",
                          RC_STR_NULL);
        } else {
            rc_conn_proto(s, c)->queue_left(s, c, (rc_str){k->id, k->id_len},
                                            (rc_str){k->queue, strlen(k->queue)});
        }
    } else if (k->op == RC_CALL_JOIN && k->result == RC_JOIN_WAITING) {
        /* The connection went while Redis answered: it counts no more. */
        rc_call *g = rc_calloc(1, sizeof(*g));
        g->op = RC_CALL_GONE;
        g->result = RC_JOIN_WAITING; /* closed, the place still held */
        memcpy(g->queue, k->queue, sizeof(g->queue));
        memcpy(g->user, k->user, sizeof(g->user));
        send_call(s, g);
    }
    if (k->client && alive)
        rc_req_release(s, c);
    rc_call_free(k);
}

/* ---- a tick ------------------------------------------------------------------ */

typedef struct tick {
    rc_queue_tick q; /* what every waiter's frame says */
    int64_t exp;
    size_t nadm;
    rc_obuf *frames[RC_PROTO__COUNT]; /* made as the walk meets each protocol */
    uint8_t made[RC_PROTO__COUNT];
    char ewma[RC_PROTO_MAX_EWMA + 1];
    rc_str admitted[]; /* user ids, raw JSON strings (quotes included), sorted */
} tick;

static int cmp_str(const void *a, const void *b)
{
    const rc_str *x = a, *y = b;
    int c = memcmp(x->p, y->p, RC_MIN(x->n, y->n));
    return c ? c : (x->n > y->n) - (x->n < y->n);
}

/* Parses the tick's data; NULL when it is not what a leader sends. */
static tick *parse_tick(const rc_shard *s, rc_str d)
{
    rc_json_iter it, ai;
    rc_json_val k, v, e;
    rc_str list = RC_STR_NULL, ewma = RC_STR_NULL;
    int64_t head = -1, exp = 0, time = 0;
    int paused = 0;
    if (rc_json_object_begin(&it, d.p, d.n, 4) != 0)
        return NULL;
    while (rc_json_object_next(&it, &k, &v)) {
        if (rc_json_key_is(&k, "head"))
            rc_json_int64(&v, &head);
        else if (rc_json_key_is(&k, "exp"))
            rc_json_int64(&v, &exp);
        else if (rc_json_key_is(&k, "time"))
            rc_json_int64(&v, &time);
        else if (rc_json_key_is(&k, "ewma") && v.type == RC_JSON_NUMBER &&
                 v.raw.n <= RC_PROTO_MAX_EWMA)
            ewma = v.raw;
        else if (rc_json_key_is(&k, "admitted") && v.type == RC_JSON_ARRAY)
            list = v.raw;
        else if (rc_json_key_is(&k, "state") && v.raw.n == 8 &&
                 memcmp(v.raw.p, "\"paused\"", 8) == 0)
            paused = 1;
    }
    if (head < 0 || !list.p || rc_json_array_begin(&ai, list.p, list.n, 2) != 0)
        return NULL;
    size_t n = 0;
    while (rc_json_array_next(&ai, &e))
        n++;
    tick *t = rc_calloc(1, sizeof(*t) + n * sizeof(rc_str));
    /* Nobody moves while the queue is paused: no ETA, so ewma 0. The text
     * goes to the clients as the leader wrote it, so that they compute the
     * same double from it as strtod does here. */
    if (paused || !ewma.p)
        ewma = (rc_str){"0", 1};
    memcpy(t->ewma, ewma.p, ewma.n);
    t->q = (rc_queue_tick){
        .head = head,
        .ewma = {t->ewma, ewma.n},
        .tick_ms = s->cfg->admission_tick_ms,
        .paused = paused,
        .time_ms = time,
    };
    t->exp = exp;
    rc_json_array_begin(&ai, list.p, list.n, 2);
    n = 0;
    while (rc_json_array_next(&ai, &e))
        if (e.type == RC_JSON_STRING)
            t->admitted[n++] = e.raw;
    qsort(t->admitted, n, sizeof(rc_str), cmp_str);
    t->nadm = n;
    return t;
}

/* Is user among the admitted (compared as JSON string literals, the way the
 * leader wrote them: user ids are escaped the same way on both sides only
 * when they need no escaping, so compare decoded when in doubt). */
static int admitted(const tick *t, size_t n, const char *user)
{
    char lit[RC_JSON_ESCAPED_MAX(RC_MAX_USER)];
    ssize_t ln = rc_json_escape(lit, sizeof(lit), user, strlen(user));
    if (ln < 0)
        return 0;
    rc_str key = {lit, (size_t)ln};
    if (bsearch(&key, t->admitted, n, sizeof(rc_str), cmp_str))
        return 1;
    /* The leader's encoder may escape differently ("\/", "\u00e9"). */
    for (size_t i = 0; i < n; i++) {
        char dec[RC_MAX_USER + 1];
        rc_json_val v = {RC_JSON_STRING, t->admitted[i]};
        if (rc_json_string(&v, dec, sizeof(dec)) >= 0 && strcmp(dec, user) == 0)
            return 1;
    }
    return 0;
}

/* Calls fn for every open connection waiting in room r's queue. fn may
 * stop a connection waiting (the walk goes backwards, so the member swapped
 * into a freed position has been seen already; the room outlives the walk). */
static void each_waiter(rc_shard *s, rc_room *r,
                        void (*fn)(rc_shard *s, rc_conn *c, rc_wait *w, rc_str q, void *arg),
                        void *arg)
{
    rc_str q = {r->name + sizeof(QUEUE_PREFIX) - 1, r->name_len - (sizeof(QUEUE_PREFIX) - 1)};
    s->fanout_room = r;
    for (uint32_t i = r->n; i-- > 0;) {
        if (i >= r->n)
            continue;
        uint32_t id = r->members[i];
        rc_conn *c = &s->conns[id];
        rc_wait *w = &s->waits[id];
        if (w->room && c->state == RC_CONN_OPEN)
            fn(s, c, w, q, arg);
    }
    s->fanout_room = NULL;
    rc_chan_room_check(s, r);
}

/* The tick's frame for c's protocol, made when the walk meets the first
 * waiter that speaks it; NULL when that protocol carries no ticks. */
static rc_obuf *tick_frame(rc_shard *s, rc_conn *c, tick *t, rc_str q)
{
    const rc_protocol *p = rc_conn_proto(s, c);
    if (!t->made[c->proto]) {
        t->made[c->proto] = 1;
        t->frames[c->proto] = p->queue_tick ? p->queue_tick(s, q, &t->q) : NULL;
        if (t->frames[c->proto])
            t->frames[c->proto]->refs = 1; /* held through the walk */
    }
    return t->frames[c->proto];
}

/* One waiter's share of a tick: the shared frame, its token, or a question. */
static void tick_one(rc_shard *s, rc_conn *c, rc_wait *w, rc_str q, void *arg)
{
    tick *t = arg;
    if (w->ticket <= t->q.head) {
        if (admitted(t, t->nadm, rc_auth_user(c->auth))) {
            stop_waiting(s, c, TELL_PLACE_GONE);
            send_admitted(s, c, RC_STR_NULL, q, t->exp);
        } else {
            /* Below the head but not in this batch: admitted in a tick
             * this node missed, or removed. Ask Redis where it stands
             * (without joining again: a user who left stays out). */
            send_call(s, new_call(s, c, RC_CALL_STATUS, q.p, q.n));
        }
        return;
    }
    /* A tick older than the join's answer (Redis answered the join after
     * it published the tick) would put the waiter further back than it
     * was told: it skips this one, so its place never goes up. */
    if (t->q.head < w->head)
        return;
    rc_obuf *f = tick_frame(s, c, t, q);
    if (!f)
        return;
    f->refs++;
    rc_conn_send(s, c, f);
}

static void on_tick(rc_shard *s, rc_room *r, rc_msg *m)
{
    tick *t = parse_tick(s, rc_msg_payload(m));
    if (!t) {
        rc_warn("shard=%d dropped a malformed tick on %s", s->id, r->name);
        return;
    }
    each_waiter(s, r, tick_one, t);
    for (int i = 0; i < RC_PROTO__COUNT; i++)
        if (t->frames[i])
            rc_obuf_put(t->frames[i]);
    free(t);
}

typedef struct left {
    int64_t ticket;
    char user[RC_MAX_USER + 1];
} left;

static void left_one(rc_shard *s, rc_conn *c, rc_wait *w, rc_str q, void *arg)
{
    const left *l = arg;
    /* The ticket tells this place from a later one the user took since. */
    if (w->ticket != l->ticket || strcmp(rc_auth_user(c->auth), l->user) != 0)
        return;
    stop_waiting(s, c, TELL_PLACE_GONE);
    send_gone(s, c, q, "left_elsewhere");
}

static void on_left(rc_shard *s, rc_room *r, rc_msg *m)
{
    rc_str d = rc_msg_payload(m);
    rc_json_iter it;
    rc_json_val k, v, uv = {RC_JSON_INVALID, RC_STR_NULL};
    left l = {.ticket = -1};
    if (rc_json_object_begin(&it, d.p, d.n, 4) != 0)
        return;
    while (rc_json_object_next(&it, &k, &v)) {
        if (rc_json_key_is(&k, "user"))
            uv = v;
        else if (rc_json_key_is(&k, "ticket"))
            rc_json_int64(&v, &l.ticket);
    }
    if (l.ticket < 0 || rc_json_string(&uv, l.user, sizeof(l.user)) < 0) {
        rc_warn("shard=%d dropped a malformed queue.left on %s", s->id, r->name);
        return;
    }
    each_waiter(s, r, left_one, &l);
}

void rc_wait_on_msg(rc_shard *s, rc_msg *m)
{
    rc_room *r = rc_rooms_get(s->rooms, m->chan, m->chan_len);
    if (r && r->n > 0) {
        if (m->kind == RC_MSG_TICK)
            on_tick(s, r, m);
        else
            on_left(s, r, m);
    }
    rc_msg_put(m);
}
