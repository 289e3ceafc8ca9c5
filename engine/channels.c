/* Channels on a shard: subscribe, unsubscribe, publish, and the fan-out of
 * messages the relay delivers.
 *
 * A shard tells the relay only about its first member of a channel (SUB) and
 * its last leaving (UNSUB). A first subscriber is acknowledged only when the
 * relay's SUBACK comes back, so that "subscribed" means every later message
 * will arrive; until then the room is PENDING and its subscribers wait in a
 * list. */
#include <string.h>

#include "engine/log.h"
#include "engine/shard.h"
#include "ws/proto.h"

#define ROOM_PENDING 1u

typedef struct waiter {
    struct waiter *next;
    uint32_t conn;
    uint16_t gen;
    uint8_t quiet; /* joined by the server (user channel): no reply */
    uint8_t id_len;
    char id[RC_PROTO_MAX_ID + 1];
} waiter;

int rc_chan_may(const rc_shard *s, const rc_auth *auth, const char *chan, size_t len, int publish)
{
    if (len >= 6 && memcmp(chan, "queue:", 6) == 0)
        return 0;
    if (auth &&
        (publish ? rc_auth_may_publish(auth, chan, len) : rc_auth_may_subscribe(auth, chan, len)))
        return 1;
    if (publish && (auth || !s->cfg->anonymous_publish))
        return 0;
    const char *user = auth ? rc_auth_user(auth) : NULL;
    for (int i = 0; i < s->cfg->n_public_patterns; i++)
        if (rc_pattern_match(s->cfg->public_patterns[i], chan, len, user))
            return 1;
    return 0;
}

static void reply(rc_shard *s, rc_conn *c, const char *type, rc_str id, rc_str chan, int64_t seq)
{
    char buf[RC_PROTO_REPLY_MAX];
    rc_conn_send_json(s, c, id, buf, rc_proto_reply(buf, sizeof(buf), type, id, chan, seq));
}

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
    rc_wait_conn_gone(s, c);
    while (c->nchan)
        leave_one(s, c, c->nchan - 1);
}

/* Makes c a member of ch (once) and answers "subscribed" with id: now, or
 * when the relay's SUBACK comes for a new room. quiet: no answer at all. */
static rc_room *join(rc_shard *s, rc_conn *c, rc_str ch, rc_str id, int quiet)
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
            reply(s, c, "subscribed", id, ch, (int64_t)r->seq);
        return r;
    }
    /* The reply waits for the SUBACK, and so do the client's next requests. */
    if (!quiet)
        rc_req_hold(s, c);
    waiter *w = rc_malloc(sizeof(*w));
    w->conn = rc_conn_id(s, c);
    w->gen = c->gen;
    w->quiet = (uint8_t)quiet;
    w->id_len = (uint8_t)id.n;
    if (id.n) /* a server-side join has no id (and p may be NULL) */
        memcpy(w->id, id.p, id.n);
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

static void subscribe(rc_shard *s, rc_conn *c, const rc_proto_req *req)
{
    rc_str id = {req->id, req->id_len}, ch = {req->channel, req->channel_len};
    if (!rc_chan_may(s, c->auth, req->channel, req->channel_len, 0)) {
        rc_conn_send_error(s, c, id, RC_PERR_FORBIDDEN, "not allowed to subscribe to this channel",
                           ch);
        return;
    }
    rc_room *r = rc_rooms_get(s->rooms, req->channel, req->channel_len);
    if ((!r || find_memb(c, r) < 0) && c->nchan >= s->cfg->max_channels_per_conn) {
        rc_conn_send_error(s, c, id, RC_PERR_CHANNEL_LIMIT, "too many channels on this connection",
                           ch);
        return;
    }
    join(s, c, ch, id, 0);
}

void rc_chan_join_user(rc_shard *s, rc_conn *c)
{
    const char *user = c->auth ? rc_auth_user(c->auth) : NULL;
    char name[RC_PROTO_MAX_CHANNEL + 1];
    int n = user ? snprintf(name, sizeof(name), "user:%s", user) : -1;
    /* A user id that cannot be part of a channel name gets no user channel. */
    if (n < 0 || !rc_proto_name_valid(name, (size_t)n, s->cfg->max_channel_len))
        return;
    join(s, c, (rc_str){name, (size_t)n}, RC_STR_NULL, 1);
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
                reply(s, c, "subscribed", (rc_str){w->id, w->id_len}, ch, (int64_t)seq);
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

static void unsubscribe(rc_shard *s, rc_conn *c, const rc_proto_req *req)
{
    rc_str id = {req->id, req->id_len}, ch = {req->channel, req->channel_len};
    rc_room *r = rc_rooms_get(s->rooms, req->channel, req->channel_len);
    int idx = r ? find_memb(c, r) : -1;
    if (idx < 0) {
        rc_conn_send_error(s, c, id, RC_PERR_NOT_SUBSCRIBED, "not subscribed to this channel", ch);
        return;
    }
    leave_one(s, c, idx);
    reply(s, c, "unsubscribed", id, ch, -1);
}

static void publish(rc_shard *s, rc_conn *c, const rc_proto_req *req)
{
    rc_str id = {req->id, req->id_len}, ch = {req->channel, req->channel_len};
    if (!rc_chan_may(s, c->auth, req->channel, req->channel_len, 1)) {
        rc_conn_send_error(s, c, id, RC_PERR_FORBIDDEN, "not allowed to publish to this channel",
                           ch);
        return;
    }
    rc_pub *p = rc_pub_new(s->id, ch, (rc_str){req->event, req->event_len}, req->data);
    if (rc_shard_to_relay(s, RC_Q_PUBLISH, p, 1) < 0) {
        free(p);
        rc_conn_send_error(s, c, id, RC_PERR_OVERLOADED, "server busy: publish again shortly", ch);
        return;
    }
    rc_counter_inc(&s->stats.publishes);
    /* Acknowledged only when the client gave an id to match the reply
     * with; without one a publish is fire and forget (errors still come
     * back), which spares a frame per message for high-rate publishers. */
    if (req->id_len)
        reply(s, c, "published", id, ch, -1);
}

void rc_chan_handle(rc_shard *s, rc_conn *c, const uint8_t *msg, size_t len, int allowed)
{
    rc_proto_req req;
    const char *why = "bad request";
    int e = rc_proto_parse((const char *)msg, len, s->cfg->max_channel_len, &req, &why);
    rc_str id = {req.id, e == RC_PERR_BAD_JSON ? 0 : req.id_len};
    if (!allowed) {
        /* Parsed anyway, so the client learns which request was dropped. */
        rc_conn_send_error(s, c, id, RC_PERR_RATE_LIMITED,
                           "message rate limit exceeded: request dropped", RC_STR_NULL);
        return;
    }
    if (e != RC_PERR_NONE) {
        rc_str ch = RC_STR_NULL;
        if (e != RC_PERR_BAD_JSON && e != RC_PERR_INVALID_CHANNEL)
            ch = (rc_str){req.channel, req.channel_len};
        rc_conn_send_error(s, c, id, e, why, ch);
        return;
    }
    switch (req.op) {
    case RC_OP_SUBSCRIBE: subscribe(s, c, &req); break;
    case RC_OP_UNSUBSCRIBE: unsubscribe(s, c, &req); break;
    case RC_OP_PUBLISH: publish(s, c, &req); break;
    case RC_OP_QJOIN:
    case RC_OP_QLEAVE: rc_wait_handle(s, c, &req); break;
    case RC_OP_PING: {
        char buf[RC_PROTO_REPLY_MAX];
        rc_conn_send_json(s, c, id, buf, rc_proto_pong(buf, sizeof(buf), id, rc_wall_ms()));
        break;
    }
    default: rc_conn_send_error(s, c, id, RC_PERR_UNKNOWN_TYPE, "unknown type", RC_STR_NULL);
    }
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
    if (m->kind == RC_MSG_TICK || m->kind == RC_MSG_QLEFT) {
        if (m->kind == RC_MSG_TICK)
            rc_wait_on_tick(s, r, m);
        else
            rc_wait_on_left(s, r, m);
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
