/* Channels on the relay (channels/relay.h).
 *
 * The frames are the JSON protocol's (proto/json.c): one shared frame per
 * message. A second protocol with its own frame for a channel message would
 * have it built here too, once per message, beside this one.
 *
 * Thread: the relay thread. */
#include "channels/relay.h"

#include <stdio.h>
#include <string.h>

#include "channels/history.h"
#include "channels/room.h"
#include "proto/json.h"

/* A channel whose first member's SUBSCRIBE Redis has not confirmed yet: its
 * members are answered (SUBACK) when it does. */
#define CHAN_PENDING 1u

struct rc_chan_relay {
    rc_rooms *chans; /* channel -> member shard ids; room->seq: last seq */
    rc_outbox *out;
    rc_bridge *bridge;  /* NULL without Redis */
    rc_tick_tap_fn tap; /* NULL without Redis */
    void *tap_u;
    int stopping;
    rc_history *history;
    const rc_config *cfg;
    rc_chan_relay_stats *stats;
};

rc_chan_relay *rc_chan_relay_new(const rc_config *cfg, rc_outbox *out, rc_chan_relay_stats *stats)
{
    rc_chan_relay *t = rc_calloc(1, sizeof(*t));
    t->chans = rc_rooms_new();
    t->out = out;
    t->cfg = cfg;
    t->stats = stats;
    t->history = rc_history_new(cfg);
    return t;
}

void rc_chan_relay_attach(rc_chan_relay *t, rc_bridge *bridge, rc_tick_tap_fn tap, void *tap_u)
{
    t->bridge = bridge;
    t->tap = tap;
    t->tap_u = tap_u;
}

void rc_chan_relay_stop(rc_chan_relay *t)
{
    t->stopping = 1;
}

void rc_chan_relay_free(rc_chan_relay *t)
{
    if (!t)
        return;
    rc_rooms_free(t->chans);
    rc_history_free(t->history);
    free(t);
}

/* The shared frame of {"type":"message",...} for a channel message; h is
 * the channel's history record (its offset and epoch go in), or NULL. */
static rc_msg *publication(rc_str chan, rc_str event, uint64_t seq, rc_str data,
                           const rc_origin *origin, rc_hist *h)
{
    rc_proto_pub p = {.channel = chan, .event = event, .data = data, .seq = seq};
    if (origin) {
        p.from = origin->from;
        p.from_user = origin->user;
        p.from_conn = origin->conn;
    }
    if (h) {
        p.has_pos = 1;
        p.offset = rc_hist_next(h);
        p.epoch = rc_hist_epoch(h);
    }
    size_t plen = rc_proto_publication_len(&p);
    uint8_t *payload;
    rc_msg *m = rc_msg_new_frame(chan, plen, &payload);
    ssize_t w = rc_proto_publication((char *)payload, plen, &p);
    rc_assert(w == (ssize_t)plen);
    m->seq = seq;
    return m;
}

static rc_msg *notice_new(rc_str chan, const char *reason, const char *text)
{
    char json[640];
    int n = snprintf(json, sizeof(json),
                     "{\"type\":\"error\",\"code\":\"messages_dropped\",\"message\":\"%s\","
                     "\"channel\":\"%.*s\",\"reason\":\"%s\"}",
                     text, (int)chan.n, chan.p, reason);
    rc_assert(n > 0 && (size_t)n < sizeof(json)); /* channel names are short and plain */
    rc_msg *m = rc_msg_new_text(chan, json, (size_t)n);
    m->kind = RC_MSG_NOTICE;
    return m;
}

static void suback(rc_chan_relay *r, int shard, char *name, uint64_t seq)
{
    rc_qitem ack = {.kind = RC_Q_SUBACK, .a = 0, .b = seq, .p = name};
    rc_outbox_push(r->out, shard, &ack);
}

/* Answers every member of a channel that waited for Redis. */
static void release(rc_chan_relay *r, rc_room *room)
{
    room->flags &= ~CHAN_PENDING;
    for (uint32_t i = 0; i < room->n; i++)
        suback(r, (int)room->members[i], rc_strndup(room->name, room->name_len), room->seq);
}

void rc_chan_relay_on_sub(rc_chan_relay *r, const rc_qitem *it)
{
    char *name = it->p;
    size_t len = strlen(name);
    rc_room *room = rc_rooms_get(r->chans, name, len);
    if (!room) {
        room = rc_rooms_add(r->chans, name, len);
        if (r->bridge && rc_bridge_subscribe(r->bridge, (rc_str){name, len}) == 0)
            room->flags |= CHAN_PENDING;
    }
    int found = 0;
    for (uint32_t i = 0; i < room->n; i++)
        found |= room->members[i] == it->a;
    if (!found)
        rc_room_join(room, it->a);
    rc_counter_set(&r->stats->channels, rc_rooms_count(r->chans));
    if (room->flags & CHAN_PENDING)
        free(name); /* release() answers with a copy */
    else
        suback(r, (int)it->a, name, room->seq);
}

void rc_chan_relay_on_unsub(rc_chan_relay *r, const rc_qitem *it)
{
    char *name = it->p;
    rc_room *room = rc_rooms_get(r->chans, name, strlen(name));
    if (room) {
        for (uint32_t i = 0; i < room->n; i++) {
            if (room->members[i] == it->a) {
                rc_room_leave(room, i);
                break;
            }
        }
        if (room->n == 0) {
            if (r->bridge)
                rc_bridge_unsubscribe(r->bridge, (rc_str){room->name, room->name_len});
            rc_rooms_del(r->chans, room);
        }
    }
    rc_counter_set(&r->stats->channels, rc_rooms_count(r->chans));
    free(name);
}

static void fan_out(rc_chan_relay *r, rc_room *room, rc_msg *m, uint32_t extra_refs)
{
    rc_ref_init(&m->refs, room->n + extra_refs);
    rc_counter_add(&r->stats->deliveries, room->n);
    for (uint32_t i = 0; i < room->n; i++) {
        rc_qitem d = {.kind = RC_Q_DELIVER, .p = m};
        rc_outbox_push(r->out, (int)room->members[i], &d);
    }
}

/* One frame for the node's members of chan, one reference per member
 * shard; a channel with history keeps it too, at its next offset. */
static void deliver(rc_chan_relay *r, rc_str chan, rc_str event, rc_str data,
                    const rc_origin *origin)
{
    rc_room *room = rc_rooms_get(r->chans, chan.p, chan.n);
    uint32_t members = room ? room->n : 0;
    int is_queue = chan.n > 6 && memcmp(chan.p, "queue:", 6) == 0 && event.n == 10;
    if (is_queue && memcmp(event.p, "queue.tick", 10) == 0) {
        if (!members) {
            rc_counter_inc(&r->stats->no_members);
            return;
        }
        /* A waiting room's tick: the shards make each waiter's frame. */
        if (r->tap)
            r->tap(r->tap_u, (rc_str){chan.p + 6, chan.n - 6}, data);
        rc_msg *m = rc_msg_new_text(chan, data.p, data.n);
        m->kind = RC_MSG_TICK;
        fan_out(r, room, m, 0);
        return;
    }
    if (is_queue && memcmp(event.p, "queue.left", 10) == 0) {
        if (!members) {
            rc_counter_inc(&r->stats->no_members);
            return;
        }
        rc_msg *m = rc_msg_new_text(chan, data.p, data.n);
        m->kind = RC_MSG_QLEFT;
        fan_out(r, room, m, 0);
        return;
    }
    int64_t now = rc_wall_ms();
    rc_hist *h = rc_history_open(r->history, chan, now);
    if (!members && !h) {
        rc_counter_inc(&r->stats->no_members);
        return;
    }
    uint64_t seq = room ? ++room->seq : 0;
    rc_msg *m = publication(chan, event, seq, data, origin, h);
    if (!members) {
        rc_counter_inc(&r->stats->no_members);
        rc_ref_init(&m->refs, 1);
    } else {
        fan_out(r, room, m, h ? 1 : 0);
    }
    if (h) {
        rc_hist_append(r->history, h, rc_hist_next(h), m, now);
        rc_counter_inc(&r->stats->history_writes);
    }
}

/* Local members first, at once; then the other nodes through Redis. */
void rc_chan_relay_on_publish(rc_chan_relay *r, const rc_qitem *it)
{
    rc_pub *p = it->p;
    rc_counter_inc(&r->stats->publishes);
    rc_origin o = {p->from, rc_pub_user(p), p->from_conn};
    deliver(r, rc_pub_channel(p), rc_pub_event(p), rc_pub_data(p), &o);
    if (r->bridge)
        rc_bridge_publish(r->bridge, rc_pub_channel(p), rc_pub_event(p), rc_pub_data(p), &o);
    free(p);
}

/* A shard's question about a channel's history (channels/history.h). */
void rc_chan_relay_on_history(rc_chan_relay *r, const rc_qitem *it)
{
    rc_histreq *q = it->p;
    rc_str chan = {q->chan, q->chan_len};
    rc_hist *h = rc_history_open(r->history, chan, rc_wall_ms());
    if (!h) {
        q->outcome = RC_REC_NO_HISTORY;
    } else {
        q->has_history = 1;
        q->top = rc_hist_top(h);
        rc_str ep = rc_hist_epoch(h);
        memcpy(q->epoch, ep.p, ep.n);
        q->epoch[ep.n] = '\0';
        q->epoch_len = (uint8_t)ep.n;
        uint32_t max = r->cfg->recovery_max;
        if (q->kind == RC_HISTQ_READ && !q->has_since) {
            rc_hist_last(h, RC_MIN(q->limit, max), &q->msgs, &q->n);
            q->outcome = RC_REC_OK;
        } else if (q->has_since) {
            uint32_t lim = q->kind == RC_HISTQ_READ ? RC_MIN(q->limit, max) : max;
            q->outcome = rc_hist_since(h, (rc_str){q->since_epoch, q->since_epoch_len}, q->since,
                                       lim, &q->msgs, &q->n);
        } else {
            q->outcome = RC_REC_OK; /* a position only */
        }
        rc_counter_inc(&r->stats->history_reads);
    }
    if (q->has_since)
        rc_counter_inc(&r->stats->recoveries[q->outcome]);
    if (r->stopping) {
        rc_histreq_free(q);
        return;
    }
    rc_qitem done = {.kind = RC_Q_HISTORY_DONE, .p = q};
    rc_outbox_push(r->out, q->shard, &done);
}

void rc_chan_relay_tick(rc_chan_relay *r, int64_t now_ms)
{
    rc_history_expire(r->history, now_ms);
    rc_history_stats hs;
    rc_history_get_stats(r->history, &hs);
    rc_counter_set(&r->stats->history_channels, hs.channels);
    rc_counter_set(&r->stats->history_entries, hs.entries);
    rc_counter_set(&r->stats->history_bytes, hs.bytes);
}

static void br_message(void *u, rc_str chan, rc_str event, rc_str data, const rc_origin *origin)
{
    rc_chan_relay *r = u;
    if (!r->stopping)
        deliver(r, chan, event, data, origin);
}

/* Sends a notice to every member of a channel (on every member shard). */
static void notify_members(rc_chan_relay *r, rc_room *room, const char *reason, const char *text)
{
    rc_msg *m = notice_new((rc_str){room->name, room->name_len}, reason, text);
    rc_ref_init(&m->refs, room->n);
    rc_counter_add(&r->stats->notices, room->n);
    for (uint32_t i = 0; i < room->n; i++) {
        rc_qitem d = {.kind = RC_Q_DELIVER, .p = m};
        rc_outbox_push(r->out, (int)room->members[i], &d);
    }
}

static void br_subscribed(void *u, rc_str chan, bool after_gap)
{
    rc_chan_relay *r = u;
    rc_room *room = r->stopping ? NULL : rc_rooms_get(r->chans, chan.p, chan.n);
    if (!room)
        return;
    if (room->flags & CHAN_PENDING)
        release(r, room);
    if (after_gap && room->n)
        notify_members(r, room, "redis_reconnect",
                       "the link to Redis was down: messages from other nodes may have been "
                       "missed; fetch what you missed");
}

static void br_lost(void *u, rc_str chan, const char *node)
{
    rc_chan_relay *r = u;
    rc_room *room = r->stopping ? NULL : rc_rooms_get(r->chans, chan.p, chan.n);
    if (room && room->n)
        notify_members(r, room, "publisher_dropped",
                       "another node dropped messages for this channel before they reached "
                       "Redis: fetch what you missed");
}

static void release_pending(rc_room *room, void *arg)
{
    if (room->flags & CHAN_PENDING)
        release(arg, room);
}

static void br_link_down(void *u)
{
    rc_chan_relay *r = u;
    if (!r->stopping)
        rc_rooms_each(r->chans, release_pending, r);
}

rc_msg *rc_chan_gap_notice(void *u, rc_str chan)
{
    return notice_new(chan, "overflow",
                      "the server dropped messages for this channel: fetch what you missed");
}

const rc_bridge_ops rc_chan_bridge_ops = {br_message, br_subscribed, br_link_down, br_lost};
