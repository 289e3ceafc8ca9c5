/* Channels on a shard: membership, the hand-off of publications to the
 * relay, and the fan-out of messages the relay delivers (the relay's half is
 * channels/relay.c; Redis's, channels/bridge.c).
 *
 * A shard tells the relay only about its first member of a channel (SUB) and
 * its last leaving (UNSUB). A first subscriber is acknowledged only when the
 * relay's SUBACK comes back, so that "subscribed" means every later message
 * will arrive; until then the room is PENDING and its subscribers wait in a
 * list.
 *
 * Thread: the shard's own. */
#include "channels/shard.h"

#include <string.h>

#include "base/log.h"

#define ROOM_PENDING 1u

typedef struct waiter {
    struct waiter *next;
    uint32_t conn;
    uint16_t gen;
    uint8_t quiet; /* joined by the server (user channel): no reply */
    uint8_t tag_len;
    char tag[RC_PROTO_MAX_ID + 1];
} waiter;

static int find_memb(const rc_conn *c, const rc_room *r)
{
    for (int i = 0; i < c->nchan; i++)
        if (c->chans[i].room == r)
            return i;
    return -1;
}

static void add_memb(rc_conn *c, rc_room *r, uint32_t pos)
{
    /* Capacity is the next power of two of nchan: grow when full. */
    if ((c->nchan & (c->nchan - 1)) == 0)
        c->chans = rc_realloc(c->chans, (c->nchan ? c->nchan * 2u : 1u) * sizeof(rc_memb));
    c->chans[c->nchan++] = (rc_memb){r, pos};
}

static void room_gone(rc_shard *s, rc_room *r)
{
    rc_shard_to_relay(s, RC_Q_UNSUB, rc_strndup(r->name, r->name_len), 0);
    rc_rooms_del(s->rooms, r);
    rc_counter_set(&s->stats.rooms, rc_rooms_count(s->rooms));
}

/* Removes membership idx of c, and the room when it was the last. */
static void leave_one(rc_shard *s, rc_conn *c, int idx)
{
    rc_memb m = c->chans[idx];
    rc_room *r = m.room;
    if (m.pos != UINT32_MAX) {
        uint32_t moved = rc_room_leave(r, m.pos);
        if (moved != UINT32_MAX) {
            rc_conn *o = &s->conns[moved];
            int j = find_memb(o, r);
            rc_assert(j >= 0);
            o->chans[j].pos = m.pos;
        }
    }
    c->chans[idx] = c->chans[--c->nchan];
    if (c->nchan == 0) {
        free(c->chans);
        c->chans = NULL;
    }
    rc_counter_set(&s->stats.subscriptions, rc_counter_get(&s->stats.subscriptions) - 1);
    /* A pending room waits for its SUBACK; a room mid-fan-out for the end of it. */
    if (r->n == 0 && !(r->flags & ROOM_PENDING) && r != s->fanout_room)
        room_gone(s, r);
}

void rc_chan_leave_all(rc_shard *s, rc_conn *c)
{
    while (c->nchan)
        leave_one(s, c, c->nchan - 1);
}

/* Makes c a member of ch (once) and answers "subscribed" with tag: now, or
 * when the relay's SUBACK comes for a new room. quiet: no answer at all. */
static rc_room *join(rc_shard *s, rc_conn *c, rc_str ch, rc_str tag, int quiet)
{
    rc_room *r = rc_rooms_get(s->rooms, ch.p, ch.n);
    int idx = r ? find_memb(c, r) : -1;
    if (!r) {
        r = rc_rooms_add(s->rooms, ch.p, ch.n);
        r->flags = ROOM_PENDING;
        rc_counter_set(&s->stats.rooms, rc_rooms_count(s->rooms));
        rc_shard_to_relay(s, RC_Q_SUB, rc_strndup(ch.p, ch.n), 0);
    }
    if (idx < 0) {
        uint32_t pos = (r->flags & ROOM_PENDING) ? UINT32_MAX : rc_room_join(r, rc_conn_id(s, c));
        add_memb(c, r, pos);
        rc_counter_set(&s->stats.subscriptions, rc_counter_get(&s->stats.subscriptions) + 1);
    }
    if (!(r->flags & ROOM_PENDING)) {
        if (!quiet)
            rc_conn_proto(s, c)->subscribed(s, c, tag, ch, r->seq);
        return r;
    }
    /* The reply waits for the SUBACK, and so do the client's next requests. */
    if (!quiet)
        rc_req_hold(s, c);
    waiter *w = rc_malloc(sizeof(*w));
    w->conn = rc_conn_id(s, c);
    w->gen = c->gen;
    w->quiet = (uint8_t)quiet;
    rc_assert(tag.n <= RC_PROTO_MAX_ID);
    w->tag_len = (uint8_t)tag.n;
    if (tag.n) /* a server-side join has no tag (and p may be NULL) */
        memcpy(w->tag, tag.p, tag.n);
    w->next = r->udata;
    r->udata = w;
    return r;
}

rc_room *rc_chan_join_quiet(rc_shard *s, rc_conn *c, rc_str ch)
{
    return join(s, c, ch, RC_STR_NULL, 1);
}

void rc_chan_leave(rc_shard *s, rc_conn *c, rc_room *r)
{
    int idx = find_memb(c, r);
    if (idx >= 0)
        leave_one(s, c, idx);
}

void rc_chan_room_check(rc_shard *s, rc_room *r)
{
    if (r->n == 0 && !(r->flags & ROOM_PENDING) && r != s->fanout_room)
        room_gone(s, r);
}

void rc_chan_subscribe(rc_shard *s, rc_conn *c, rc_str tag, rc_str ch)
{
    join(s, c, ch, tag, 0);
}

int rc_chan_holds(rc_shard *s, const rc_conn *c, rc_str ch)
{
    rc_room *r = rc_rooms_get(s->rooms, ch.p, ch.n);
    return r && find_memb(c, r) >= 0;
}

void rc_chan_on_suback(rc_shard *s, char *name, uint64_t seq)
{
    rc_room *r = rc_rooms_get(s->rooms, name, strlen(name));
    free(name);
    if (!r || !(r->flags & ROOM_PENDING))
        return;
    r->flags &= ~ROOM_PENDING;
    r->seq = seq;
    /* Waiters were pushed at the front: reverse to answer in request order. */
    waiter *list = NULL, *w = r->udata;
    while (w) {
        waiter *next = w->next;
        w->next = list;
        list = w;
        w = next;
    }
    r->udata = NULL;
    rc_str ch = {r->name, r->name_len};
    for (w = list; w;) {
        rc_conn *c = &s->conns[w->conn];
        int idx = (c->gen == w->gen && c->state == RC_CONN_OPEN) ? find_memb(c, r) : -1;
        if (idx >= 0) {
            if (c->chans[idx].pos == UINT32_MAX)
                c->chans[idx].pos = rc_room_join(r, w->conn);
            if (!w->quiet)
                rc_conn_proto(s, c)->subscribed(s, c, (rc_str){w->tag, w->tag_len}, ch, seq);
        }
        if (!w->quiet && c->gen == w->gen)
            rc_req_release(s, c);
        waiter *next = w->next;
        free(w);
        w = next;
    }
    if (r->n == 0)
        room_gone(s, r);
}

int rc_chan_unsubscribe(rc_shard *s, rc_conn *c, rc_str ch)
{
    rc_room *r = rc_rooms_get(s->rooms, ch.p, ch.n);
    int idx = r ? find_memb(c, r) : -1;
    if (idx < 0)
        return -1;
    leave_one(s, c, idx);
    return 0;
}

int rc_chan_publish(rc_shard *s, rc_str ch, rc_str event, rc_str data)
{
    rc_pub *p = rc_pub_new(s->id, ch, event, data);
    if (rc_shard_to_relay(s, RC_Q_PUBLISH, p, 1) < 0) {
        free(p);
        return -1;
    }
    rc_counter_inc(&s->stats.publishes);
    return 0;
}

static void free_waiters(rc_room *r, void *arg)
{
    for (waiter *w = r->udata, *next; w; w = next) {
        next = w->next;
        free(w);
    }
    r->udata = NULL;
}

void rc_chan_free_all(rc_shard *s)
{
    rc_rooms_each(s->rooms, free_waiters, NULL);
}

void rc_chan_on_deliver(rc_shard *s, rc_msg *m)
{
    rc_room *r = rc_rooms_get(s->rooms, m->chan, m->chan_len);
    if (!r || r->n == 0) {
        rc_msg_put(m);
        return;
    }
    if (m->kind == RC_MSG_DATA)
        r->seq = m->seq;
    rc_obuf *b = rc_obuf_shared(m);
    b->refs = 1; /* held through the loop: a send may fail and drop its use */
    s->fanout_room = r;
    /* Backwards: a member closed by the backlog policy is swapped out for the
     * last member, which has already been served. */
    for (uint32_t i = r->n; i-- > 0;) {
        if (i >= r->n)
            continue;
        rc_conn *c = &s->conns[r->members[i]];
        b->refs++;
        if (rc_conn_send(s, c, b) == 0)
            rc_counter_inc(&s->stats.deliveries);
    }
    s->fanout_room = NULL;
    rc_obuf_put(b);
    rc_chan_room_check(s, r);
}
