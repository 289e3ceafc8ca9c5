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

#include <stdio.h>
#include <string.h>

#include "base/log.h"
#include "channels/history.h"
#include "channels/presence.h"

#define ROOM_PENDING 1u

typedef struct waiter {
    struct waiter *next;
    uint32_t conn;
    uint16_t gen;
    uint8_t how; /* JOIN_* */
    uint8_t tag_len;
    char tag[RC_PROTO_MAX_ID + 1];
    rc_histreq *hist; /* the channel keeps history: asked for once live */
} waiter;

/* A room is deleted when it has no member, no subscriber waiting for the
 * relay's answer about its history (room->held), is not waiting for its
 * SUBACK, and is not being fanned out to. */
/* A compressed frame (permessage-deflate) queued to a client. */
static void count_z(rc_shard *s, const rc_obuf *bz)
{
    rc_counter_inc(&s->stats.deflate_frames);
    rc_counter_add(&s->stats.deflate_frame_bytes, bz->len);
    rc_counter_add(&s->stats.deflate_plain_bytes, bz->shared->frame_len);
}

static int room_unused(const rc_shard *s, const rc_room *r)
{
    return r->n == 0 && r->held == 0 && !(r->flags & ROOM_PENDING) && r != s->fanout_room;
}

static int find_memb(const rc_conn *c, const rc_room *r)
{
    for (int i = 0; i < c->nchan; i++)
        if (c->chans[i].room == r)
            return i;
    return -1;
}

static void add_memb(rc_conn *c, rc_room *r, uint32_t pos, int server)
{
    /* Capacity is the next power of two of nchan: grow when full. */
    if ((c->nchan & (c->nchan - 1)) == 0)
        c->chans = rc_realloc(c->chans, (c->nchan ? c->nchan * 2u : 1u) * sizeof(rc_memb));
    c->chans[c->nchan++] = (rc_memb){r, pos, (uint8_t)(server != 0)};
}

/* Tells the relay that c joined (join 1) or left ch, when ch keeps
 * presence. */
static void presence_news(rc_shard *s, const rc_conn *c, rc_str ch, int join)
{
    if (s->membership_hook)
        s->membership_hook(s, c, ch, join);
    if (!rc_config_presence(s->cfg, ch.p, ch.n))
        return;
    const char *user = c->auth ? rc_auth_user(c->auth) : NULL;
    rc_str info = join && c->auth ? rc_auth_info(c->auth) : RC_STR_NULL;
    rc_presreq *q = rc_presreq_new(ch, (rc_str){user, user ? strlen(user) : 0}, info);
    q->kind = join ? RC_PRESQ_JOIN : RC_PRESQ_LEAVE;
    q->member = rc_conn_public_id(s, c);
    rc_shard_to_relay(s, RC_Q_PRESENCE, q, 0);
}

static void room_gone(rc_shard *s, rc_room *r)
{
    rc_shard_to_relay(s, RC_Q_UNSUB, rc_strndup(r->name, r->name_len), 0);
    rc_rooms_del(s->rooms, r);
    rc_counter_set(&s->stats.rooms, rc_rooms_count(s->rooms));
}

/* Takes membership idx of c out of its room's delivery list: it stays a
 * member that receives nothing (held, as while its history is asked). */
static void hold_memb(rc_shard *s, rc_conn *c, int idx)
{
    rc_memb m = c->chans[idx];
    if (m.pos == UINT32_MAX)
        return;
    uint32_t moved = rc_room_leave(m.room, m.pos);
    if (moved != UINT32_MAX) {
        rc_conn *o = &s->conns[moved];
        int j = find_memb(o, m.room);
        rc_assert(j >= 0);
        o->chans[j].pos = m.pos;
    }
    c->chans[idx].pos = UINT32_MAX;
}

/* Removes membership idx of c, and the room when it was the last. */
static void leave_one(rc_shard *s, rc_conn *c, int idx)
{
    rc_room *r = c->chans[idx].room;
    hold_memb(s, c, idx);
    presence_news(s, c, (rc_str){r->name, r->name_len}, 0);
    c->chans[idx] = c->chans[--c->nchan];
    if (c->nchan == 0) {
        free(c->chans);
        c->chans = NULL;
    }
    rc_counter_set(&s->stats.subscriptions, rc_counter_get(&s->stats.subscriptions) - 1);
    if (room_unused(s, r))
        room_gone(s, r);
}

void rc_chan_leave_all(rc_shard *s, rc_conn *c)
{
    while (c->nchan)
        leave_one(s, c, c->nchan - 1);
}

/* since is past the channel's top offset: a client's error. */
static void since_ahead(rc_shard *s, rc_conn *c, rc_str tag, rc_str ch, const rc_histreq *q)
{
    char msg[RC_PROTO_MAX_TEXT];
    snprintf(msg, sizeof(msg),
             "since.offset %llu is past the channel's last offset %llu in epoch %s",
             (unsigned long long)q->since, (unsigned long long)q->top, q->epoch);
    rc_conn_error(s, c, tag, RC_PERR_BAD_SINCE, msg, ch);
}

/* Asks the relay for c's position in r's history (and its recovery): c
 * stays a member that receives nothing until the answer (rc_chan_on_history),
 * which holds everything published before it; what comes after it is live. */
static void ask_history(rc_shard *s, rc_conn *c, rc_room *r, rc_histreq *q)
{
    q->shard = (uint16_t)s->id;
    q->conn = rc_conn_id(s, c);
    q->gen = c->gen;
    r->held++;
    rc_shard_to_relay(s, RC_Q_HISTORY, q, 0);
}

enum {
    JOIN_QUIET = 1,      /* joined by the server: no answer at all */
    JOIN_NO_HISTORY = 2, /* asked to recover on a channel without history */
    JOIN_SERVER = 4,     /* joined by the server (rc_memb.server), answered or not */
};

/* The plain answer to a subscribe (no history to ask the relay about). */
static void answer(rc_shard *s, rc_conn *c, rc_str tag, rc_room *r, int how)
{
    rc_sub_info info = {.recovery = 1, .outcome = RC_REC_NO_HISTORY};
    rc_conn_proto(s, c)->subscribed(s, c, tag, (rc_str){r->name, r->name_len}, r->seq,
                                    how & JOIN_NO_HISTORY ? &info : NULL);
}

/* Makes c a member of ch (once) and answers "subscribed" with tag: now, or
 * when the relay's SUBACK comes for a new room, or (hist: the channel keeps
 * history) when the relay has said where its history stands. how: JOIN_*.
 * hist is taken. */
static rc_room *join(rc_shard *s, rc_conn *c, rc_str ch, rc_str tag, int how, rc_histreq *hist)
{
    int quiet = how & JOIN_QUIET;
    rc_room *r = rc_rooms_get(s->rooms, ch.p, ch.n);
    int idx = r ? find_memb(c, r) : -1;
    if (!r) {
        r = rc_rooms_add(s->rooms, ch.p, ch.n);
        r->flags = ROOM_PENDING;
        rc_counter_set(&s->stats.rooms, rc_rooms_count(s->rooms));
        rc_shard_to_relay(s, RC_Q_SUB, rc_strndup(ch.p, ch.n), 0);
    }
    if (idx >= 0 && hist) {
        /* Already a member (the server joined it to user:<sub>, or it asks
         * again) of a channel with history: it is held like a new member
         * until the answer, which gives the position and any recovery. */
        hold_memb(s, c, idx);
    } else if (idx >= 0) { /* already a member: answered at once */
    } else {
        uint32_t pos =
            (r->flags & ROOM_PENDING) || hist ? UINT32_MAX : rc_room_join(r, rc_conn_id(s, c));
        add_memb(c, r, pos, how & (JOIN_QUIET | JOIN_SERVER));
        rc_counter_set(&s->stats.subscriptions, rc_counter_get(&s->stats.subscriptions) + 1);
        presence_news(s, c, ch, 1);
    }
    if (!(r->flags & ROOM_PENDING)) {
        if (hist) {
            rc_req_hold(s, c);
            ask_history(s, c, r, hist);
        } else if (!quiet) {
            answer(s, c, tag, r, how);
        }
        return r;
    }
    /* The reply waits for the SUBACK, and so do the client's next requests. */
    if (!quiet)
        rc_req_hold(s, c);
    waiter *w = rc_malloc(sizeof(*w));
    w->conn = rc_conn_id(s, c);
    w->gen = c->gen;
    w->how = (uint8_t)how;
    rc_assert(tag.n <= RC_PROTO_MAX_ID);
    w->tag_len = (uint8_t)tag.n;
    if (tag.n) /* a server-side join has no tag (and p may be NULL) */
        memcpy(w->tag, tag.p, tag.n);
    w->hist = hist;
    w->next = r->udata;
    r->udata = w;
    return r;
}

rc_room *rc_chan_join_quiet(rc_shard *s, rc_conn *c, rc_str ch)
{
    return join(s, c, ch, RC_STR_NULL, JOIN_QUIET, NULL);
}

void rc_chan_leave(rc_shard *s, rc_conn *c, rc_room *r)
{
    int idx = find_memb(c, r);
    if (idx >= 0)
        leave_one(s, c, idx);
}

void rc_chan_room_check(rc_shard *s, rc_room *r)
{
    if (room_unused(s, r))
        room_gone(s, r);
}

static void fill_since(rc_histreq *q, const rc_since *since)
{
    if (!since || !since->has)
        return;
    rc_assert(since->epoch.n <= RC_PROTO_MAX_EPOCH);
    q->has_since = 1;
    q->since = since->offset;
    q->since_epoch_len = (uint8_t)since->epoch.n;
    memcpy(q->since_epoch, since->epoch.p, since->epoch.n);
}

void rc_chan_subscribe_as(rc_shard *s, rc_conn *c, rc_str tag, rc_str ch, const rc_since *since,
                          int server)
{
    int as = server ? JOIN_SERVER : 0;
    if (!rc_config_history(s->cfg, ch.p, ch.n)) {
        /* With since, the answer says there was nothing to recover from. */
        join(s, c, ch, tag, (since && since->has ? JOIN_NO_HISTORY : 0) | as, NULL);
        return;
    }
    rc_histreq *q = rc_histreq_new(ch);
    q->kind = RC_HISTQ_SUBSCRIBE;
    fill_since(q, since);
    q->tag_len = (uint8_t)tag.n;
    if (tag.n)
        memcpy(q->tag, tag.p, tag.n);
    join(s, c, ch, tag, as, q);
}

void rc_chan_subscribe(rc_shard *s, rc_conn *c, rc_str tag, rc_str ch, const rc_since *since)
{
    rc_chan_subscribe_as(s, c, tag, ch, since, 0);
}

void rc_chan_history(rc_shard *s, rc_conn *c, rc_str tag, rc_str ch, uint32_t limit,
                     const rc_since *since)
{
    rc_histreq *q = rc_histreq_new(ch);
    q->kind = RC_HISTQ_READ;
    q->limit = limit;
    fill_since(q, since);
    q->tag_len = (uint8_t)tag.n;
    if (tag.n)
        memcpy(q->tag, tag.p, tag.n);
    q->shard = (uint16_t)s->id;
    q->conn = rc_conn_id(s, c);
    q->gen = c->gen;
    rc_req_hold(s, c);
    rc_shard_to_relay(s, RC_Q_HISTORY, q, 0);
}

static void ask_presence(rc_shard *s, rc_conn *c, rc_presreq *q, rc_str tag)
{
    q->tag_len = (uint8_t)tag.n;
    if (tag.n)
        memcpy(q->tag, tag.p, tag.n);
    q->shard = (uint16_t)s->id;
    q->conn = rc_conn_id(s, c);
    q->gen = c->gen;
    rc_req_hold(s, c);
    rc_shard_to_relay(s, RC_Q_PRESENCE, q, 0);
}

void rc_chan_presence(rc_shard *s, rc_conn *c, rc_str tag, rc_str ch, uint32_t limit, rc_str cursor)
{
    rc_presreq *q = rc_presreq_new(ch, RC_STR_NULL, RC_STR_NULL);
    q->kind = RC_PRESQ_PAGE;
    q->limit = limit;
    rc_assert(cursor.n <= RC_PROTO_MAX_CURSOR);
    q->cursor_len = (uint8_t)cursor.n;
    if (cursor.n)
        memcpy(q->cursor, cursor.p, cursor.n);
    ask_presence(s, c, q, tag);
}

/* A presence_stats asker waiting for the question in flight on its channel. */
typedef struct asker {
    struct asker *next;
    uint32_t conn;
    uint16_t gen;
    uint8_t tag_len;
    char tag[RC_PROTO_MAX_ID + 1];
} asker;

/* One question per channel in flight from this shard: those who ask while
 * it is get its answer too (s->presence_asks: channel -> askers, newest
 * first). */
void rc_chan_presence_stats(rc_shard *s, rc_conn *c, rc_str tag, rc_str ch)
{
    rc_room *r = rc_rooms_get(s->presence_asks, ch.p, ch.n);
    int flying = r != NULL;
    if (!r)
        r = rc_rooms_add(s->presence_asks, ch.p, ch.n);
    asker *a = rc_malloc(sizeof(*a));
    a->conn = rc_conn_id(s, c);
    a->gen = c->gen;
    a->tag_len = (uint8_t)tag.n;
    if (tag.n)
        memcpy(a->tag, tag.p, tag.n);
    a->next = r->udata;
    r->udata = a;
    rc_req_hold(s, c);
    if (flying) {
        rc_counter_inc(&s->stats.presence_coalesced);
        return;
    }
    rc_presreq *q = rc_presreq_new(ch, RC_STR_NULL, RC_STR_NULL);
    q->kind = RC_PRESQ_STATS;
    q->shard = (uint16_t)s->id;
    q->conn = UINT32_MAX; /* the askers are in s->presence_asks */
    rc_shard_to_relay(s, RC_Q_PRESENCE, q, 0);
}

static void answer_presence(rc_shard *s, rc_conn *c, rc_str tag, const rc_presreq *q)
{
    rc_str ch = {q->chan, q->chan_len};
    if (q->error)
        rc_conn_error(s, c, tag, q->error,
                      "presence could not be read (Redis is away): ask again shortly", ch);
    else if (q->kind == RC_PRESQ_STATS)
        rc_conn_proto(s, c)->presence_stats(s, c, tag, ch, q->connections, q->users);
    else
        rc_conn_proto(s, c)->presence(s, c, tag, ch, (rc_str){q->members, q->members_len}, q->n,
                                      (rc_str){q->next_cursor, q->next_cursor_len});
}

void rc_chan_on_presence(rc_shard *s, rc_presreq *q)
{
    if (q->kind == RC_PRESQ_STATS) {
        rc_room *r = rc_rooms_get(s->presence_asks, q->chan, q->chan_len);
        asker *list = NULL;
        for (asker *a = r ? r->udata : NULL, *next; a; a = next) { /* oldest first */
            next = a->next;
            a->next = list;
            list = a;
        }
        if (r)
            rc_rooms_del(s->presence_asks, r);
        for (asker *a = list, *next; a; a = next) {
            next = a->next;
            rc_conn *c = &s->conns[a->conn];
            if (c->gen == a->gen) {
                if (c->state == RC_CONN_OPEN)
                    answer_presence(s, c, (rc_str){a->tag, a->tag_len}, q);
                rc_req_release(s, c);
            }
            free(a);
        }
        rc_presreq_free(q);
        return;
    }
    rc_conn *c = q->conn < s->nconns ? &s->conns[q->conn] : NULL;
    int same = c && c->gen == q->gen;
    if (same && c->state == RC_CONN_OPEN)
        answer_presence(s, c, (rc_str){q->tag, q->tag_len}, q);
    if (same)
        rc_req_release(s, c);
    rc_presreq_free(q);
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
    for (w = list; w;) {
        rc_conn *c = &s->conns[w->conn];
        int quiet = w->how & JOIN_QUIET;
        int idx = (c->gen == w->gen && c->state == RC_CONN_OPEN) ? find_memb(c, r) : -1;
        if (idx >= 0 && w->hist) {
            /* Still held: the history's answer releases it. */
            ask_history(s, c, r, w->hist);
            w->hist = NULL;
        } else {
            if (idx >= 0) {
                if (c->chans[idx].pos == UINT32_MAX)
                    c->chans[idx].pos = rc_room_join(r, w->conn);
                if (!quiet)
                    answer(s, c, (rc_str){w->tag, w->tag_len}, r, w->how);
            }
            if (!quiet && c->gen == w->gen)
                rc_req_release(s, c);
        }
        waiter *next = w->next;
        rc_histreq_free(w->hist);
        free(w);
        w = next;
    }
    if (room_unused(s, r))
        room_gone(s, r);
}

void rc_chan_on_history(rc_shard *s, rc_histreq *q)
{
    rc_conn *c = q->conn < s->nconns ? &s->conns[q->conn] : NULL;
    int same = c && c->gen == q->gen;
    int alive = same && c->state == RC_CONN_OPEN;
    rc_str tag = {q->tag, q->tag_len};
    char name[RC_PROTO_MAX_CHANNEL + 1]; /* q goes before the last look at the room */
    memcpy(name, q->chan, q->chan_len);
    rc_str ch = {name, q->chan_len};
    rc_sub_info info = {
        .has_pos = q->has_history,
        .offset = q->top,
        .epoch = {q->epoch, q->epoch_len},
        .recovery = q->has_since,
        .outcome = q->outcome,
        .missed = q->outcome == RC_REC_OK ? q->n : 0,
    };
    if (q->kind == RC_HISTQ_READ) {
        if (alive && q->outcome == RC_REC_AHEAD)
            since_ahead(s, c, tag, ch, q);
        else if (alive && q->outcome == RC_REC_NO_HISTORY)
            rc_conn_error(s, c, tag, RC_PERR_NO_HISTORY, "this channel keeps no history", ch);
        else if (alive && q->outcome == RC_REC_UNAVAILABLE && !q->has_since)
            rc_conn_error(s, c, tag, RC_PERR_UNAVAILABLE,
                          "the history could not be read (Redis is away): ask again shortly", ch);
        else if (alive)
            rc_conn_proto(s, c)->history(s, c, tag, ch, &info, q->msgs,
                                         q->outcome == RC_REC_OK ? q->n : 0);
        if (same)
            rc_req_release(s, c);
        rc_histreq_free(q);
        return;
    }
    rc_room *r = rc_rooms_get(s->rooms, ch.p, ch.n);
    rc_assert(r && r->held > 0); /* held since ask_history */
    r->held--;
    int idx = alive ? find_memb(c, r) : -1;
    if (idx >= 0 && q->outcome == RC_REC_AHEAD) {
        leave_one(s, c, idx);
        since_ahead(s, c, tag, ch, q);
    } else if (idx >= 0) {
        rc_conn_proto(s, c)->subscribed(s, c, tag, ch, r->seq, &info);
        /* The missed publications, in order, as the frames that went out
         * live; then the connection is a member, and what the relay sends
         * after this answer reaches it. */
        for (uint32_t i = 0; i < info.missed; i++) {
            rc_obuf *b;
            if (!rc_conn_proto(s, c)->frame) {
                rc_msg *hm = q->msgs[i];
                if (c->deflate && hm->zframe) {
                    b = rc_obuf_shared_z(hm); /* takes its own reference ... */
                    rc_msg_put(hm);           /* ... so the one q held goes */
                    count_z(s, b);
                } else {
                    b = rc_obuf_shared(hm);
                }
            } else {
                b = rc_conn_proto(s, c)->frame(s, q->msgs[i]);
                rc_msg_put(q->msgs[i]);
            }
            q->msgs[i] = NULL; /* its reference went with b, or is dropped */
            if (!b)
                continue;
            b->refs = 1;
            rc_conn_send(s, c, b);
        }
        q->n = 0;
        if (c->state == RC_CONN_OPEN && c->chans[idx].pos == UINT32_MAX)
            c->chans[idx].pos = rc_room_join(r, rc_conn_id(s, c));
    }
    if (same)
        rc_req_release(s, c);
    rc_histreq_free(q);
    /* leave_one above may have deleted it already. */
    r = rc_rooms_get(s->rooms, ch.p, ch.n);
    if (r)
        rc_chan_room_check(s, r);
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

int rc_chan_publish(rc_shard *s, rc_str ch, rc_str event, rc_str data, const rc_conn *from)
{
    const char *user = from && from->auth ? rc_auth_user(from->auth) : NULL;
    rc_pub *p =
        rc_pub_new(s->id, ch, event, data, from ? RC_FROM_CLIENT : RC_FROM_BACKEND,
                   (rc_str){user, user ? strlen(user) : 0}, from ? rc_conn_public_id(s, from) : 0);
    if (rc_shard_to_relay(s, RC_Q_PUBLISH, p, 1) < 0) {
        free(p);
        return -1;
    }
    rc_counter_inc(&s->stats.publishes);
    return 0;
}

static void free_askers(rc_room *r, void *arg)
{
    for (asker *a = r->udata, *next; a; a = next) {
        next = a->next;
        free(a);
    }
    r->udata = NULL;
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
    rc_rooms_each(s->presence_asks, free_askers, NULL);
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
    /* The compressed frame, for the members that negotiated it; same rules. */
    rc_obuf *bz = NULL;
    if (m->zframe) {
        bz = rc_obuf_shared_z(m);
        bz->refs = 1;
    }
    rc_proto_frames alt;
    memset(&alt, 0, sizeof(alt));
    s->fanout_room = r;
    /* Backwards: a member closed by the backlog policy is swapped out for the
     * last member, which has already been served. */
    for (uint32_t i = r->n; i-- > 0;) {
        if (i >= r->n)
            continue;
        rc_conn *c = &s->conns[r->members[i]];
        rc_obuf *f = c->proto != RC_PROTO_JSON ? rc_proto_frame_for(s, c, m, b, &alt)
                     : bz && c->deflate        ? bz
                                               : b;
        if (!f)
            continue;
        f->refs++;
        if (rc_conn_send(s, c, f) == 0) {
            rc_counter_inc(&s->stats.deliveries);
            if (f == bz)
                count_z(s, bz);
        }
    }
    s->fanout_room = NULL;
    rc_obuf_put(b);
    if (bz)
        rc_obuf_put(bz);
    rc_proto_frames_put(&alt);
    rc_chan_room_check(s, r);
}
