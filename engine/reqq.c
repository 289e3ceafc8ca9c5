/* One request at a time per connection: see "requests in order" in
 * engine/shard.h.
 *
 * Most requests are answered at once. A few wait for the relay (a subscribe
 * to a channel new to the shard waits for its SUBACK; queue.join and
 * queue.leave wait for Redis). While one waits, the connection is "held":
 * the messages it sends meanwhile are copied into its deferred list, and are
 * handled in order once the held request has been answered. So replies come
 * in request order, and a request never overtakes the one before it (an
 * unsubscribe right behind its subscribe finds the subscription made; a
 * second queue.join finds the first one's place).
 *
 * The state lives in a per-slot side table (s->reqs), so rc_conn stays 64
 * bytes and a connection that is not held costs nothing.
 *
 * Thread: the shard that owns the connection. */
#include <string.h>

#include "base/log.h"
#include "engine/shard.h"
#include "ws/frame.h"

/* Past these, a client that keeps sending while a request of its waits is
 * closed (1008): nothing it sent is dropped without its knowing. */
#define DEFER_MAX_MSGS  256
#define DEFER_MAX_BYTES (1u << 20) /* or four messages of the largest size, if more */

typedef struct deferred {
    struct deferred *next;
    uint32_t len;
    uint8_t allowed; /* the rate limit's verdict when it arrived */
    uint8_t msg[];
} deferred;

struct rc_reqq {
    deferred *head, *tail;
    uint32_t n;
    uint64_t bytes;
    uint8_t held;   /* a request waits for its answer */
    uint8_t queued; /* in s->resume: handle the deferred list soon */
};

static rc_reqq *reqq_of(rc_shard *s, const rc_conn *c)
{
    return s->reqs[rc_conn_id(s, c)];
}

int rc_req_busy(rc_shard *s, const rc_conn *c)
{
    return reqq_of(s, c) != NULL;
}

void rc_req_hold(rc_shard *s, rc_conn *c)
{
    uint32_t id = rc_conn_id(s, c);
    rc_reqq *q = s->reqs[id];
    if (!q) {
        q = s->reqs[id] = rc_calloc(1, sizeof(*q));
        rc_counter_inc(&s->stats.held_conns);
    }
    q->held = 1;
}

void rc_req_release(rc_shard *s, rc_conn *c)
{
    uint32_t id = rc_conn_id(s, c);
    rc_reqq *q = s->reqs[id];
    if (!q || !q->held)
        return;
    q->held = 0;
    if (!q->head) {
        rc_req_drop(s, c);
        return;
    }
    /* Not here: the caller may be walking a room that the deferred
     * requests could change. The shard runs them after the item. */
    if (!q->queued) {
        q->queued = 1;
        rc_idlist_push(&s->resume, &s->nresume, &s->cap_resume, id);
    }
}

int rc_req_defer(rc_shard *s, rc_conn *c, const uint8_t *msg, size_t len, int allowed)
{
    rc_reqq *q = reqq_of(s, c);
    rc_assert(q);
    uint64_t max_bytes = RC_MAX((uint64_t)DEFER_MAX_BYTES, 4 * (uint64_t)s->cfg->max_message_bytes);
    if (q->n >= DEFER_MAX_MSGS || q->bytes + len > max_bytes) {
        rc_counter_inc(&s->stats.defer_closes);
        return -1;
    }
    deferred *d = rc_malloc(sizeof(*d) + len);
    d->next = NULL;
    d->len = (uint32_t)len;
    d->allowed = (uint8_t)allowed;
    memcpy(d->msg, msg, len);
    if (q->tail)
        q->tail->next = d;
    else
        q->head = d;
    q->tail = d;
    q->n++;
    q->bytes += len;
    rc_counter_inc(&s->stats.deferred);
    return 0;
}

void rc_req_drop(rc_shard *s, rc_conn *c)
{
    uint32_t id = rc_conn_id(s, c);
    rc_reqq *q = s->reqs[id];
    if (!q)
        return;
    for (deferred *d = q->head, *next; d; d = next) {
        next = d->next;
        free(d);
    }
    free(q);
    s->reqs[id] = NULL;
    rc_counter_set(&s->stats.held_conns, rc_counter_get(&s->stats.held_conns) - 1);
}

/* Handles c's deferred requests in order until one holds it again. */
static void resume(rc_shard *s, rc_conn *c)
{
    rc_reqq *q = reqq_of(s, c);
    if (!q)
        return;
    q->queued = 0;
    while (!q->held && q->head && c->state == RC_CONN_OPEN) {
        deferred *d = q->head;
        q->head = d->next;
        if (!q->head)
            q->tail = NULL;
        q->n--;
        q->bytes -= d->len;
        rc_conn_proto(s, c)->message(s, c, d->msg, d->len, 0, d->allowed);
        free(d);
        q = reqq_of(s, c);
        if (!q)
            return; /* the connection ended meanwhile */
    }
    if (!q->held && (!q->head || c->state != RC_CONN_OPEN))
        rc_req_drop(s, c);
}

void rc_req_run(rc_shard *s)
{
    /* New entries may be pushed while running (a request releases another
     * connection's hold only through the relay, so not in practice). */
    for (uint32_t i = 0; i < s->nresume; i++) {
        rc_conn *c = &s->conns[s->resume[i]];
        if (c->state != RC_CONN_FREE)
            resume(s, c);
    }
    s->nresume = 0;
}
