/* The emitter's broadcasts and remote operations, applied on a shard
 * (sio/broadcast.h).
 *
 * Thread: rc_sio_bcast_* any; rc_sio_on_bcast the shard's own. */
#include "sio/broadcast.h"

#include <stdlib.h>
#include <string.h>

#include "channels/shard.h"
#include "engine/msg.h"
#include "sio/session.h"

rc_sio_bcast *rc_sio_bcast_new(int op, int nsp)
{
    rc_sio_bcast *b = rc_calloc(1, sizeof(*b) + 256);
    b->op = (uint8_t)op;
    b->nsp = (uint8_t)nsp;
    b->all = 1;
    b->cap = 256;
    return b;
}

int rc_sio_bcast_add(rc_sio_bcast **bp, int list, rc_str ch)
{
    rc_sio_bcast *b = *bp;
    rc_assert(list >= RC_SIO_BC_ROOMS && list <= RC_SIO_BC_NAMES);
    for (int l = list + 1; l <= RC_SIO_BC_NAMES; l++)
        rc_assert(b->n[l] == 0); /* lists are added in order */
    if (b->n[list] >= RC_SIO_BC_MAX_ROOMS)
        return -1;
    if (b->len + ch.n + 1 > b->cap) {
        b->cap = (uint32_t)RC_MAX((size_t)b->cap * 2, b->len + ch.n + 1);
        b = *bp = rc_realloc(b, sizeof(*b) + b->cap);
    }
    memcpy(b->mem + b->len, ch.p, ch.n);
    b->mem[b->len + ch.n] = '\0';
    b->len += (uint32_t)ch.n + 1;
    b->n[list]++;
    if (list == RC_SIO_BC_ROOMS)
        b->all = 0;
    return 0;
}

rc_str rc_sio_bcast_get(const rc_sio_bcast *b, int list, uint32_t i)
{
    uint32_t skip = i;
    for (int l = 0; l < list; l++)
        skip += b->n[l];
    const char *p = b->mem;
    while (skip--)
        p += strlen(p) + 1;
    return (rc_str){p, strlen(p)};
}

rc_sio_bcast *rc_sio_bcast_copy(const rc_sio_bcast *b)
{
    rc_sio_bcast *c = rc_malloc(sizeof(*b) + b->len);
    memcpy(c, b, sizeof(*b) + b->len);
    c->cap = b->len;
    return c;
}

void rc_sio_bcast_free(rc_sio_bcast *b)
{
    if (!b)
        return;
    if (b->frame)
        rc_msg_put(b->frame);
    free(b);
}

/* ---- on the shard --------------------------------------------------------- */

/* Is c a Socket.IO session connected to namespace nsp? */
static int is_socket(rc_shard *s, const rc_conn *c, int nsp)
{
    if (c->state != RC_CONN_OPEN || c->proto != RC_PROTO_SIO)
        return 0;
    const rc_sio_conn *st = rc_sio_state(s, c);
    return st && st->role == RC_SIO_SESSION && (st->nsps >> nsp & 1);
}

/* Is c a member of any of the rooms ex[0..n)? */
static int in_any(const rc_conn *c, rc_room *const *ex, uint32_t n)
{
    for (uint32_t k = 0; k < c->nchan; k++)
        for (uint32_t j = 0; j < n; j++)
            if (c->chans[k].room == ex[j])
                return 1;
    return 0;
}

static int by_id(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* The connections b reaches on this shard, each once: their slots into
 * *out (malloc'd; the caller frees), and how many. Chosen before anything
 * is done to any of them, so that what is done (a join, a leave, a close by
 * the backlog policy) changes no room being walked. */
static uint32_t choose(rc_shard *s, const rc_sio_bcast *b, uint32_t **out)
{
    uint32_t n = 0, cap = 64;
    uint32_t *ids = rc_malloc(cap * sizeof(*ids));
    if (b->all) {
        for (uint32_t i = 0; i < s->nconns; i++) {
            if (!is_socket(s, &s->conns[i], b->nsp))
                continue;
            if (n == cap)
                ids = rc_realloc(ids, (cap *= 2) * sizeof(*ids));
            ids[n++] = i;
        }
    } else {
        for (uint32_t k = 0; k < b->n[RC_SIO_BC_ROOMS]; k++) {
            rc_str ch = rc_sio_bcast_get(b, RC_SIO_BC_ROOMS, k);
            const rc_room *r = rc_rooms_get(s->rooms, ch.p, ch.n);
            for (uint32_t i = 0; r && i < r->n; i++) {
                if (n == cap)
                    ids = rc_realloc(ids, (cap *= 2) * sizeof(*ids));
                ids[n++] = r->members[i];
            }
        }
        if (b->n[RC_SIO_BC_ROOMS] > 1 && n > 1) { /* a member of several rooms: once */
            qsort(ids, n, sizeof(*ids), by_id);
            uint32_t u = 1;
            for (uint32_t i = 1; i < n; i++)
                if (ids[i] != ids[u - 1])
                    ids[u++] = ids[i];
            n = u;
        }
    }
    uint32_t nex = 0;
    rc_room *ex[RC_SIO_BC_MAX_ROOMS];
    for (uint32_t k = 0; k < b->n[RC_SIO_BC_EXCEPT]; k++) {
        rc_str ch = rc_sio_bcast_get(b, RC_SIO_BC_EXCEPT, k);
        rc_room *r = rc_rooms_get(s->rooms, ch.p, ch.n);
        if (r) /* a room nobody here is in excludes nobody */
            ex[nex++] = r;
    }
    uint32_t kept = 0;
    for (uint32_t i = 0; i < n; i++) {
        const rc_conn *c = &s->conns[ids[i]];
        if ((b->all || is_socket(s, c, b->nsp)) && !(nex && in_any(c, ex, nex)))
            ids[kept++] = ids[i];
    }
    *out = ids;
    return kept;
}

uint32_t rc_sio_on_bcast(rc_shard *s, rc_sio_bcast *b)
{
    uint32_t *ids, n = choose(s, b, &ids);
    rc_obuf *f = NULL;
    if (b->op == RC_SIO_BC_EMIT) {
        f = rc_obuf_shared(b->frame); /* takes the shard's reference */
        b->frame = NULL;
        f->refs = 1; /* held through the loop: a send may fail and drop its use */
    }
    uint32_t reached = 0;
    for (uint32_t i = 0; i < n; i++) {
        rc_conn *c = &s->conns[ids[i]];
        if (c->state != RC_CONN_OPEN)
            continue; /* closed by what was done to another (its carrier, say) */
        reached++;
        switch (b->op) {
        case RC_SIO_BC_EMIT:
            f->refs++;
            if (rc_conn_send(s, c, f) == 0)
                rc_counter_inc(&s->stats.deliveries);
            break;
        case RC_SIO_BC_JOIN:
            for (uint32_t k = 0; k < b->n[RC_SIO_BC_NAMES]; k++) {
                rc_str ch = rc_sio_bcast_get(b, RC_SIO_BC_NAMES, k);
                if (c->nchan < s->cfg->max_channels_per_conn || rc_chan_holds(s, c, ch))
                    rc_chan_join_quiet(s, c, ch);
            }
            break;
        case RC_SIO_BC_LEAVE:
            for (uint32_t k = 0; k < b->n[RC_SIO_BC_NAMES]; k++)
                rc_chan_unsubscribe(s, c, rc_sio_bcast_get(b, RC_SIO_BC_NAMES, k));
            break;
        case RC_SIO_BC_DISCONNECT: rc_sio_disconnect_nsp(s, c, b->nsp, b->close); break;
        default: break;
        }
    }
    if (f)
        rc_obuf_put(f);
    free(ids);
    rc_sio_bcast_free(b);
    return reached;
}
