/* The waiting rooms' HTTP API: PUT and GET /api/queues/{q} and POST
 * /api/queues/{q}/complete, as rc_call from the shards, answered when Redis
 * has. Runs on the relay thread, inside the admission engine
 * (admission/admission.c). */
#include <stdio.h>
#include <string.h>

#include "admission/internal.h"
#include "proto/json.h"
#include "ws/json.h"

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
        adm_api_error(c, 503, "queue_unavailable", "Redis did not answer: try again");
    else if (bad)
        adm_api_error(c, 503, "queue_unavailable",
                      "the queue's configuration in Redis holds values ringcast never writes");
    else
        adm_set_reply(c, 200,
                      "{\"queue\":\"%s\",\"rate\":%s,\"max_active\":%s,\"active_ttl\":%s,"
                      "\"abandon_timeout\":%s,\"state\":\"%s\"}",
                      c->queue, v[CF_RATE], v[CF_MAX_ACTIVE], v[CF_TTL], v[CF_ABANDON],
                      v[CF_STATE]);
    adm_finish(u, c);
}

/* A queue created on this node is ticked by this node from its next tick
 * on (which takes the queue's lease unless another node was quicker), not
 * only once the next SMEMBERS of the index has listed it: its first
 * admissions come within one tick of its creation. */
static void know_queue(rc_admission *a, const char *q)
{
    for (size_t i = 0; i < a->nqueues; i++)
        if (strcmp(a->queues[i], q) == 0)
            return;
    a->queues = rc_realloc(a->queues, (a->nqueues + 1) * sizeof(*a->queues));
    a->queues[a->nqueues++] = rc_strndup(q, strlen(q));
}

/* Sends x for c, whose answer fn gives; when the connection refuses it,
 * answers c with 503 at once. */
static void api_send(rc_admission *a, rc_call *c, args *x, rc_redis_reply_fn fn)
{
    if (adm_send(a, x, fn, c) < 0) {
        adm_api_error(c, 503, "queue_unavailable", "Redis is not reachable");
        adm_finish(a, c);
    }
}

/* The queue's configuration, once it is in the index (on_put_indexed):
 * HSET what the body gives, HSETNX the defaults of the rest, then HGETALL
 * answers. */
static void put_cfg(rc_admission *a, rc_call *c)
{
    char v[CF__COUNT][24];
    const char *why = parse_cfg(c, v);
    rc_assert(!why); /* queue_put parsed the same body */
    key cfg = adm_qkey(a, c->queue, "cfg");
    args x;
    int bad = 0;
    for (int f = 0; f < CF__COUNT; f++) {
        x = (args){.n = 0};
        adm_arg_s(&x, v[f][0] ? "HSET" : "HSETNX");
        adm_arg_key(&x, &cfg);
        adm_arg_s(&x, cf_names[f]);
        adm_arg_s(&x, v[f][0] ? v[f] : cf_default[f]);
        bad |= adm_send(a, &x, adm_on_ignore, NULL);
    }
    x = (args){.n = 0};
    adm_arg_s(&x, "HGETALL");
    adm_arg_key(&x, &cfg);
    if (!bad) {
        api_send(a, c, &x, on_put_done);
        return;
    }
    adm_api_error(c, 503, "queue_unavailable", "Redis is not reachable");
    adm_finish(a, c);
}

static void on_put_indexed(void *u, redisReply *rep, const char *err, void *priv)
{
    rc_admission *a = u;
    rc_call *c = priv;
    if (!rep || rep->type != REDIS_REPLY_INTEGER) {
        adm_api_error(c, 503, "queue_unavailable", "Redis did not answer: try again");
        adm_finish(a, c);
        return;
    }
    know_queue(a, c->queue);
    put_cfg(a, c);
}

/* The index first, in a command of its own (the index and the queue's keys
 * are in different slots), and the configuration once Redis has taken it:
 * a failure in between leaves a queue in the index without configuration,
 * which the tick skips (its script answers {-2}) and joins and GET do not
 * find; the PUT answers 503 and its retry completes the queue. The other
 * order could leave a configured queue that no tick ever lists: its waiters
 * would wait forever. */
static void queue_put(rc_admission *a, rc_call *c)
{
    char v[CF__COUNT][24];
    const char *why = parse_cfg(c, v);
    if (why) {
        adm_api_error(c, 400, "bad_request", why);
        adm_finish(a, c);
        return;
    }
    key index = adm_gkey(a, "index");
    args x = {.n = 0};
    adm_arg_s(&x, "SADD");
    adm_arg_key(&x, &index);
    adm_arg_s(&x, c->queue);
    api_send(a, c, &x, on_put_indexed);
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
    case 1: g->waiting = adm_reply_i64(rep); break;
    case 2: g->active = adm_reply_i64(rep); break;
    case 3:
        if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 3) {
            g->head = adm_reply_i64(rep->element[0]);
            g->admitted = adm_reply_i64(rep->element[1]);
            g->abandoned = adm_reply_i64(rep->element[2]);
        }
        break;
    case 4: g->seq = adm_reply_i64(rep); break;
    case 5: {
        /* The node id of the queue's lease holder, as Redis holds it: escaped. */
        char lq[RC_JSON_ESCAPED_MAX(64) + 1] = "null";
        if (rep && rep->type == REDIS_REPLY_STRING && rep->len < 64) {
            ssize_t ln = rc_json_escape(lq, sizeof(lq) - 1, rep->str, rep->len);
            rc_assert(ln > 0); /* sized for 63 bytes */
            lq[ln] = '\0';
        }
        rc_call *c = g->c;
        if (g->failed)
            adm_api_error(c, 503, "queue_unavailable", "Redis did not answer: try again");
        else if (g->bad)
            adm_api_error(c, 503, "queue_unavailable",
                          "the queue's configuration in Redis holds values ringcast never writes");
        else if (!g->v[CF_RATE][0])
            adm_api_error(c, 404, "queue_not_found", "no such queue: create it with PUT");
        else
            adm_set_reply(c, 200,
                          "{\"queue\":\"%s\",\"state\":\"%s\",\"rate\":%s,\"max_active\":%s,"
                          "\"active_ttl\":%s,\"abandon_timeout\":%s,\"waiting\":%lld,"
                          "\"active\":%lld,\"head\":%lld,\"last_ticket\":%lld,"
                          "\"admitted_total\":%lld,\"abandoned_total\":%lld,\"leader\":%s}",
                          c->queue, g->v[CF_STATE], g->v[CF_RATE], g->v[CF_MAX_ACTIVE],
                          g->v[CF_TTL], g->v[CF_ABANDON], (long long)g->waiting,
                          (long long)g->active, (long long)g->head, (long long)g->seq,
                          (long long)g->admitted, (long long)g->abandoned, lq);
        free(g);
        adm_finish(u, c);
        break;
    }
    }
}

static void queue_get(rc_admission *a, rc_call *c)
{
    get_ctx *g = rc_calloc(1, sizeof(*g));
    g->c = c;
    key cfg = adm_qkey(a, c->queue, "cfg"), wait = adm_qkey(a, c->queue, "wait"),
        active = adm_qkey(a, c->queue, "active"), stats = adm_qkey(a, c->queue, "stats"),
        seq = adm_qkey(a, c->queue, "seq"), lease = adm_qkey(a, c->queue, "lease");
    /* Expired actives are not counted (the tick removes them a moment later). */
    char now[32];
    snprintf(now, sizeof(now), "(%lld", (long long)rc_wall_ms());
    args cmds[6] = {{.n = 0}};
    adm_arg_s(&cmds[0], "HGETALL"), adm_arg_key(&cmds[0], &cfg);
    adm_arg_s(&cmds[1], "ZCARD"), adm_arg_key(&cmds[1], &wait);
    adm_arg_s(&cmds[2], "ZCOUNT"), adm_arg_key(&cmds[2], &active), adm_arg_s(&cmds[2], now),
        adm_arg_s(&cmds[2], "+inf");
    adm_arg_s(&cmds[3], "HMGET"), adm_arg_key(&cmds[3], &stats), adm_arg_s(&cmds[3], "head"),
        adm_arg_s(&cmds[3], "admitted_total"), adm_arg_s(&cmds[3], "abandoned_total");
    adm_arg_s(&cmds[4], "GET"), adm_arg_key(&cmds[4], &seq);
    adm_arg_s(&cmds[5], "GET"), adm_arg_key(&cmds[5], &lease);
    /* The client refuses a command only when not READY or over its byte
     * bound; if that happens midway, the last reply that will come answers
     * with 503 (on_get_part). */
    for (int i = 0; i < 6 && adm_send(a, &cmds[i], on_get_part, g) == 0; i++)
        g->sent++;
    if (g->sent == 0) {
        free(g);
        adm_api_error(c, 503, "queue_unavailable", "Redis is not reachable");
        adm_finish(a, c);
    }
}

static void on_complete(void *u, redisReply *rep, const char *err, void *priv)
{
    rc_call *c = priv;
    if (!rep || rep->type != REDIS_REPLY_INTEGER) {
        adm_api_error(c, 503, "queue_unavailable", "Redis did not answer: try again");
    } else {
        char out[RC_PROTO_VERIFY_MAX];
        ssize_t n = rc_proto_completed(out, sizeof(out), c->queue, c->user, rep->integer != 0);
        rc_assert(n > 0); /* sized for the longest queue and user */
        adm_set_reply(c, 200, "%.*s", (int)n, out);
    }
    adm_finish(u, c);
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
        adm_api_error(c, 400, "bad_request", "body must be {\"user\":\"<user id>\"}");
        adm_finish(a, c);
        return;
    }
    key active = adm_qkey(a, c->queue, "active");
    args x = {.n = 0};
    adm_arg_s(&x, "ZREM");
    adm_arg_key(&x, &active);
    adm_arg_s(&x, c->user);
    api_send(a, c, &x, on_complete);
}

void adm_api_call(rc_admission *a, rc_call *c)
{
    if (c->op == RC_CALL_QUEUE_PUT)
        queue_put(a, c);
    else if (c->op == RC_CALL_QUEUE_GET)
        queue_get(a, c);
    else
        queue_complete(a, c);
}
