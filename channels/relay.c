/* Channels on the relay (channels/relay.h).
 *
 * The frames are the JSON protocol's (proto/json.c): one shared frame per
 * message. A second protocol with its own frame for a channel message would
 * have it built here too, once per message, beside this one.
 *
 * Thread: the relay thread. */
#include "channels/relay.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channels/history.h"
#include "channels/room.h"
#include "redis/envelope.h"
#include "proto/json.h"
#include "ws/deflate.h"

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
    uint64_t fences; /* the last fence id this node published */
    rc_history *history;
    rc_presence *presence;
    const rc_config *cfg;
    rc_chan_relay_stats *stats;
    /* permessage-deflate: one compressor for every publication (reset per
     * message: no context is carried from one to the next), its output
     * buffer, and whether any connection on the node negotiated it. */
    rc_pmd_stream *deflater;
    uint8_t *zbuf;
    size_t zcap;
    uint64_t deflate_users;
};

static void presence_emit(void *u, rc_str chan, rc_msg *m);
static void presence_answer(void *u, rc_presreq *q);

rc_chan_relay *rc_chan_relay_new(const rc_config *cfg, rc_outbox *out, rc_chan_relay_stats *stats)
{
    rc_chan_relay *t = rc_calloc(1, sizeof(*t));
    t->chans = rc_rooms_new();
    t->out = out;
    t->cfg = cfg;
    t->stats = stats;
    t->history = rc_history_new(cfg, cfg->redis_url[0] != '\0');
    static const rc_presence_ops pops = {presence_emit, presence_answer};
    t->presence = rc_presence_new(cfg, &pops, t, &stats->presence);
    return t;
}

void rc_chan_relay_attach(rc_chan_relay *t, rc_bridge *bridge, rc_tick_tap_fn tap, void *tap_u)
{
    t->bridge = bridge;
    t->tap = tap;
    t->tap_u = tap_u;
    rc_presence_attach(t->presence, bridge);
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
    rc_presence_free(t->presence);
    rc_pmd_free(t->deflater);
    free(t->zbuf);
    free(t);
}

/* The shared frame of {"type":"message",...} for a channel message; h is
 * the channel's history record (its offset and epoch go in), or NULL. */
static rc_msg *publication(rc_str chan, rc_str event, uint64_t seq, rc_str data,
                           const rc_origin *origin, uint64_t offset, rc_str epoch)
{
    rc_proto_pub p = {.channel = chan, .event = event, .data = data, .seq = seq};
    if (origin) {
        p.from = origin->from;
        p.from_user = origin->user;
        p.from_conn = origin->conn;
        p.args = origin->args;
    }
    if (offset) {
        p.has_pos = 1;
        p.offset = offset;
        p.epoch = epoch;
    }
    size_t plen = rc_proto_publication_len(&p);
    uint8_t *payload;
    rc_msg *m = rc_msg_new_frame(chan, plen, &payload);
    ssize_t w = rc_proto_publication((char *)payload, plen, &p);
    rc_assert(w == (ssize_t)plen);
    m->seq = seq;
    return m;
}

void rc_chan_relay_set_deflate_users(rc_chan_relay *t, uint64_t n)
{
    t->deflate_users = n;
}

/* Gives a publication its compressed frame, once for every connection
 * that negotiated permessage-deflate, when it is worth it. */
static void compress(rc_chan_relay *r, rc_msg *m)
{
    if (!r->deflate_users || !r->cfg->permessage_deflate ||
        !rc_config_deflate(r->cfg, m->chan, m->chan_len))
        return;
    rc_str pl = rc_msg_payload(m);
    if (pl.n < r->cfg->deflate_min_bytes || pl.n < 8) {
        rc_counter_inc(&r->stats->deflate_small);
        return;
    }
    if (!r->deflater && !(r->deflater = rc_pmd_deflater_new()))
        return; /* no memory for zlib: plain, as before */
    if (r->zcap < pl.n + 4) {
        r->zcap = pl.n + 4;
        r->zbuf = rc_realloc(r->zbuf, r->zcap);
    }
    ssize_t n = rc_pmd_compress(r->deflater, (const uint8_t *)pl.p, pl.n, r->zbuf, pl.n);
    if (n < 0) {
        rc_counter_inc(&r->stats->deflate_not_smaller);
    } else {
        rc_msg_set_zframe(m, r->zbuf, (size_t)n);
        rc_counter_inc(&r->stats->deflate_compressed);
        rc_counter_add(&r->stats->deflate_bytes_in, pl.n);
        rc_counter_add(&r->stats->deflate_bytes_out, (uint64_t)n);
    }
    /* A large message's buffer is not kept. */
    if (r->zcap > (1u << 20)) {
        free(r->zbuf);
        r->zbuf = NULL;
        r->zcap = 0;
    }
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
            rc_str ch = {room->name, room->name_len};
            rc_hist *h = r->history ? rc_history_find(r->history, ch) : NULL;
            if (r->bridge)
                rc_bridge_unsubscribe(r->bridge, ch);
            /* Publications no longer reach this node: a later recovery on
             * this channel must ask Redis, not what was seen until now. */
            if (h)
                rc_hist_unknown(r->history, h);
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
 * shard. A channel with history keeps it too: at its next offset without
 * Redis; with Redis at the offset Redis gave it (offset > 0; a plain
 * PUBLISH on such a channel is delivered without one, and not kept). */
static void deliver(rc_chan_relay *r, rc_str chan, rc_str event, rc_str data,
                    const rc_origin *origin, uint64_t offset, rc_str epoch)
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
    int redis = r->cfg->redis_url[0] != '\0';
    rc_hist *h = NULL;
    if (!redis || offset)
        h = rc_history_open(r->history, chan, now);
    if (!h)
        offset = 0; /* no rule here: plain */
    if (!members && !h) {
        rc_counter_inc(&r->stats->no_members);
        return;
    }
    if (h && !redis) {
        offset = rc_hist_next(h);
        epoch = rc_hist_epoch(h);
    }
    uint64_t seq = room ? ++room->seq : 0;
    rc_msg *m = publication(chan, event, seq, data, origin, offset, epoch);
    if (members)
        compress(r, m);
    if (!members) {
        rc_counter_inc(&r->stats->no_members);
        rc_ref_init(&m->refs, 1);
    } else {
        fan_out(r, room, m, h ? 1 : 0);
    }
    if (h && !redis)
        rc_hist_append(r->history, h, offset, m, now);
    else if (h)
        rc_hist_observe(r->history, h, epoch, offset, m, now);
    if (h)
        rc_counter_inc(&r->stats->history_writes);
}

/* Local members first, at once; then the other nodes through Redis. */
void rc_chan_relay_on_publish(rc_chan_relay *r, const rc_qitem *it)
{
    rc_pub *p = it->p;
    rc_counter_inc(&r->stats->publishes);
    rc_origin o = {p->from, rc_pub_user(p), p->from_conn, 0};
    rc_str chan = rc_pub_channel(p);
    const rc_history_rule *rule = r->bridge ? rc_config_history(r->cfg, chan.p, chan.n) : NULL;
    if (rule) {
        /* Its offset comes from Redis; so does its delivery, here too. */
        rc_bridge_publish_history(r->bridge, chan, rc_pub_event(p), rc_pub_data(p), &o, rule);
    } else {
        deliver(r, chan, rc_pub_event(p), rc_pub_data(p), &o, 0, RC_STR_NULL);
        if (r->bridge)
            rc_bridge_publish(r->bridge, chan, rc_pub_event(p), rc_pub_data(p), &o);
    }
    free(p);
}

static void send_answer(rc_chan_relay *r, rc_histreq *q)
{
    if (q->has_since)
        rc_counter_inc(&r->stats->recoveries[q->outcome]);
    if (r->stopping) {
        rc_histreq_free(q);
        return;
    }
    rc_qitem done = {.kind = RC_Q_HISTORY_DONE, .p = q};
    rc_outbox_push(r->out, q->shard, &done);
}

/* Answers q from what h holds (its record is authoritative). */
static void answer_from(rc_chan_relay *r, rc_hist *h, rc_histreq *q)
{
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
        q->outcome = rc_hist_since(h, (rc_str){q->since_epoch, q->since_epoch_len}, q->since, lim,
                                   &q->msgs, &q->n);
    } else {
        q->outcome = RC_REC_OK; /* a position only */
    }
    rc_counter_inc(&r->stats->history_reads);
    send_answer(r, q);
}

/* With Redis: whether h can answer q without reading Redis. It can when
 * what it keeps is Redis's run as this node saw it, and q needs only what
 * it keeps: a since in its epoch and within the publications kept. (A
 * since ahead of it, or in another epoch, may be what this node has not
 * seen yet: Redis decides.) */
static int answers_from_memory(const rc_chan_relay *r, rc_hist *h, const rc_histreq *q)
{
    if (!rc_hist_known(h))
        return 0;
    if (!q->has_since)
        return q->kind == RC_HISTQ_SUBSCRIBE ||
               rc_hist_top(h) == 0; /* a read of the last ones wants them all kept */
    rc_str ep = rc_hist_epoch(h);
    rc_msg **m;
    uint32_t n;
    if (ep.n != q->since_epoch_len || memcmp(ep.p, q->since_epoch, ep.n) != 0 ||
        q->since > rc_hist_top(h))
        return 0;
    int out = rc_hist_since(h, ep, q->since, UINT32_MAX, &m, &n);
    for (uint32_t i = 0; i < n; i++)
        rc_msg_put(m[i]);
    free(m);
    return out == RC_REC_OK;
}

static void fail_waiting(rc_chan_relay *r, rc_hist_read *rd)
{
    for (rc_histreq *q = rd->head, *next; q; q = next) {
        next = q->next;
        q->next = NULL;
        q->outcome = RC_REC_UNAVAILABLE;
        send_answer(r, q);
    }
    rd->head = rd->tail = NULL;
    rd->id = 0;
    rd->replied = rd->fence_seen = 0;
}

static void on_read(void *u, rc_str chan, uint64_t id, const redisReply *rep);

/* A read of h's history from Redis, for the questions waiting on it (one
 * read serves them all: a storm of recoveries costs one per channel). */
static void start_read(rc_chan_relay *r, rc_hist *h)
{
    rc_hist_read *rd = rc_hist_reading(h);
    rc_str chan = rc_hist_name(h);
    const rc_history_rule *rule = rc_config_history(r->cfg, chan.p, chan.n);
    uint32_t count = RC_MIN(rule->size, r->cfg->recovery_max);
    /* A fence matters only where live publications reach this node: then
     * the answer waits until the subscription has caught up with the read. */
    rd->id = ++r->fences;
    rd->use_fence = rc_bridge_live(r->bridge, chan);
    rd->replied = rd->fence_seen = 0;
    if (rc_bridge_read_history(r->bridge, chan, count, rd->id, on_read) < 0)
        fail_waiting(r, rd);
}

/* The read and (where it was needed) its fence are both in: load what was
 * read, then answer everyone waiting from it. */
static void read_done(rc_chan_relay *r, rc_hist *h)
{
    rc_hist_read *rd = rc_hist_reading(h);
    rc_hist_load(r->history, h, (rc_str){rd->rd_epoch, rd->rd_epoch_len}, rd->rd_top, rd->rd_msgs,
                 rd->rd_n, rc_wall_ms());
    free(rd->rd_msgs);
    rd->rd_msgs = NULL;
    rd->rd_n = 0;
    rd->replied = rd->fence_seen = 0;
    rd->id = 0;
    rc_histreq *list = rd->head;
    rd->head = rd->tail = NULL;
    for (rc_histreq *q = list, *next; q; q = next) {
        next = q->next;
        q->next = NULL;
        answer_from(r, h, q);
    }
    /* Read where publications do not reach this node (a history request
     * without a subscription): right now, but not for long. */
    if (!rc_bridge_live(r->bridge, rc_hist_name(h)))
        rc_hist_unknown(r->history, h);
}

static void on_read(void *u, rc_str chan, uint64_t id, const redisReply *rep)
{
    rc_chan_relay *r = u;
    rc_hist *h = r->stopping ? NULL : rc_history_find(r->history, chan);
    if (!h)
        return;
    rc_hist_read *rd = rc_hist_reading(h);
    if (rd->id != id)
        return; /* a read given up on (the link went down): its answer is stale */
    const redisReply *e = rep ? rep->element[0] : NULL, *t = rep ? rep->element[1] : NULL;
    long long top = -1;
    if (t && t->type == REDIS_REPLY_STRING)
        top = strtoll(t->str, NULL, 10);
    else if (t && t->type == REDIS_REPLY_INTEGER)
        top = t->integer;
    if (!e || e->type != REDIS_REPLY_STRING || e->len < 1 || e->len > RC_PROTO_MAX_EPOCH ||
        top < 0) {
        fail_waiting(r, rd);
        return;
    }
    /* Newest first in the reply; kept oldest first, contiguous up to top. */
    uint32_t n = (uint32_t)(rep->elements - 2);
    rd->rd_msgs = n ? rc_malloc(n * sizeof(rc_msg *)) : NULL;
    rd->rd_n = 0;
    for (uint32_t i = 0; i < n; i++) {
        const redisReply *p = rep->element[2 + (n - 1 - i)];
        rc_envelope env;
        const char *why;
        if (p->type != REDIS_REPLY_STRING ||
            rc_envelope_parse(p->str, p->len, &env, &why) != RC_PERR_NONE || !env.offset ||
            env.offset != (uint64_t)top - (n - 1 - i)) {
            /* Not what this node writes: keep only the newer, contiguous part. */
            for (uint32_t k = 0; k < rd->rd_n; k++)
                rc_msg_put(rd->rd_msgs[k]);
            rd->rd_n = 0;
            continue;
        }
        rc_origin o = {env.from, {env.from_user, env.from_user_len}, env.from_conn, env.args};
        rc_msg *m = publication(chan, (rc_str){env.event, env.event_len}, 0, env.data, &o,
                                env.offset, (rc_str){env.epoch, env.epoch_len});
        rc_ref_init(&m->refs, 1);
        rd->rd_msgs[rd->rd_n++] = m;
    }
    memcpy(rd->rd_epoch, e->str, e->len);
    rd->rd_epoch_len = e->len;
    rd->rd_top = (uint64_t)top;
    rd->replied = 1;
    if (!rd->use_fence || rd->fence_seen)
        read_done(r, h);
}

static void br_fence(void *u, rc_str chan, uint64_t fence)
{
    rc_chan_relay *r = u;
    rc_hist *h = rc_history_find(r->history, chan);
    if (!h)
        return;
    rc_hist_read *rd = rc_hist_reading(h);
    if (!rd->id || !rd->use_fence || rd->id != fence)
        return;
    rd->fence_seen = 1;
    if (rd->replied)
        read_done(r, h);
}

/* A shard's question about a channel's history (channels/history.h). */
void rc_chan_relay_on_history(rc_chan_relay *r, const rc_qitem *it)
{
    rc_histreq *q = it->p;
    rc_str chan = {q->chan, q->chan_len};
    rc_hist *h = rc_history_open(r->history, chan, rc_wall_ms());
    if (!h) {
        q->outcome = RC_REC_NO_HISTORY;
        send_answer(r, q);
        return;
    }
    if (!r->bridge || answers_from_memory(r, h, q)) {
        if (r->bridge)
            rc_counter_inc(&r->stats->history_cached);
        answer_from(r, h, q);
        return;
    }
    rc_hist_read *rd = rc_hist_reading(h);
    int reading = rd->head != NULL;
    if (rd->tail)
        rd->tail->next = q;
    else
        rd->head = q;
    rd->tail = q;
    if (reading)
        rc_counter_inc(&r->stats->history_coalesced);
    else
        start_read(r, h);
}

/* A join or leave event for the node's members of chan. */
static void presence_emit(void *u, rc_str chan, rc_msg *m)
{
    rc_chan_relay *r = u;
    rc_room *room = r->stopping ? NULL : rc_rooms_get(r->chans, chan.p, chan.n);
    if (!room || room->n == 0) {
        rc_ref_init(&m->refs, 1);
        rc_msg_put(m);
        return;
    }
    fan_out(r, room, m, 0);
}

static void presence_answer(void *u, rc_presreq *q)
{
    rc_chan_relay *r = u;
    if (r->stopping) {
        rc_presreq_free(q);
        return;
    }
    rc_qitem done = {.kind = RC_Q_PRESENCE_DONE, .p = q};
    rc_outbox_push(r->out, q->shard, &done);
}

void rc_chan_relay_flush(rc_chan_relay *r)
{
    if (!r->stopping)
        rc_presence_flush(r->presence);
}

void rc_chan_relay_on_presence(rc_chan_relay *r, const rc_qitem *it)
{
    rc_presence_on_item(r->presence, it->p);
}

static void br_presence(void *u, rc_str chan, int join, rc_str member)
{
    rc_chan_relay *r = u;
    if (!r->stopping)
        rc_presence_on_event(r->presence, chan, join, member);
}

void rc_chan_relay_tick(rc_chan_relay *r, int64_t now_ms)
{
    rc_presence_tick(r->presence, now_ms);
    rc_history_expire(r->history, now_ms);
    rc_history_stats hs;
    rc_history_get_stats(r->history, &hs);
    rc_counter_set(&r->stats->history_channels, hs.channels);
    rc_counter_set(&r->stats->history_entries, hs.entries);
    rc_counter_set(&r->stats->history_bytes, hs.bytes);
}

static void br_message(void *u, rc_str chan, const rc_bridge_msg *m)
{
    rc_chan_relay *r = u;
    if (!r->stopping)
        deliver(r, chan, m->event, m->data, &m->origin, m->offset, m->epoch);
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

static void give_up_read(rc_hist *h, void *arg)
{
    rc_hist_read *rd = rc_hist_reading(h);
    if (rd->head)
        fail_waiting(arg, rd);
    for (uint32_t i = 0; i < rd->rd_n; i++)
        rc_msg_put(rd->rd_msgs[i]);
    free(rd->rd_msgs);
    rd->rd_msgs = NULL;
    rd->rd_n = 0;
}

static void br_link_down(void *u)
{
    rc_chan_relay *r = u;
    if (r->stopping)
        return;
    rc_rooms_each(r->chans, release_pending, r);
    /* What this node saw of Redis's histories may now have gaps, and reads
     * in flight may never see their fence: read again. */
    rc_history_unknown_all(r->history);
    rc_history_each(r->history, give_up_read, r);
}

rc_msg *rc_chan_gap_notice(void *u, rc_str chan)
{
    return notice_new(chan, "overflow",
                      "the server dropped messages for this channel: fetch what you missed");
}

const rc_bridge_ops rc_chan_bridge_ops = {br_message, br_subscribed, br_link_down,
                                          br_lost,    br_fence,      br_presence};
