/* Thread: the relay thread. */
#include "engine/relay.h"

#include <errno.h>
#include <string.h>

#include "engine/log.h"
#include "engine/msg.h"
#include "channels/room.h"
#include "net/uring.h"
#include "channels/bridge.h"

/* Items for one shard that did not fit in its queue, oldest first. */
typedef struct overflow {
    rc_qitem *items;
    size_t head, n, cap;
} overflow;

struct rc_relay {
    rc_node *node;
    pthread_t thread;
    struct io_uring ring;
    rc_rooms *chans; /* channel -> member shard ids; room->seq: last seq */
    overflow *ovf;   /* [nshards] */
    uint8_t *wake;   /* [nshards]: pushed something since the last wake */
    rc_rooms **gaps; /* [nshards]: channels that lost messages to overflow */
    size_t ovf_total;
    int drain_sent;
    int stopping; /* shards are gone: messages from Redis are dropped */
    uint64_t efd_val;
    rc_bridge *bridge; /* NULL without a Redis URL */
    rc_admission *adm; /* waiting rooms; NULL without a Redis URL */
    rc_relay_stats stats;
};

/* A channel whose first member's SUBSCRIBE Redis has not confirmed yet: its
 * members are answered (SUBACK) when it does. */
#define CHAN_PENDING 1u

/* Past this many waiting items for one shard, channel messages are dropped
 * (and the channel's members told) rather than memory growing without end. */
#define OVERFLOW_MAX_DATA (1u << 18)

rc_pub *rc_pub_new(int origin, rc_str channel, rc_str event, rc_str data)
{
    rc_pub *p = rc_malloc(sizeof(*p) + channel.n + 1 + event.n + 1 + data.n);
    p->origin = (uint16_t)origin;
    p->chan_len = (uint16_t)channel.n;
    p->event_len = (uint16_t)event.n;
    p->data_len = (uint32_t)data.n;
    char *w = p->mem;
    memcpy(w, channel.p, channel.n);
    w[channel.n] = '\0';
    w += channel.n + 1;
    memcpy(w, event.p, event.n);
    w[event.n] = '\0';
    w += event.n + 1;
    memcpy(w, data.p, data.n);
    return p;
}

rc_relay *rc_relay_new(rc_node *node)
{
    rc_relay *r = rc_calloc(1, sizeof(*r));
    r->node = node;
    r->chans = rc_rooms_new();
    r->ovf = rc_calloc((size_t)node->nshards, sizeof(overflow));
    r->wake = rc_calloc((size_t)node->nshards, 1);
    r->gaps = rc_calloc((size_t)node->nshards, sizeof(rc_rooms *));
    for (int i = 0; i < node->nshards; i++)
        r->gaps[i] = rc_rooms_new();
    r->stats.redis = node->cfg->redis_url[0] != '\0';
    return r;
}

const rc_relay_stats *rc_relay_get_stats(const rc_relay *r)
{
    return &r->stats;
}

int rc_relay_redis_ok(const rc_relay *r)
{
    return !r->stats.redis || (rc_counter_get(&r->stats.bridge.up_command) &&
                               rc_counter_get(&r->stats.bridge.up_subscriber));
}

static void ovf_push(overflow *o, const rc_qitem *it)
{
    if (o->n == o->cap) {
        size_t ncap = o->cap ? o->cap * 2 : 1024;
        rc_qitem *ni = rc_malloc(ncap * sizeof(*ni));
        for (size_t i = 0; i < o->n; i++)
            ni[i] = o->items[(o->head + i) % o->cap];
        free(o->items);
        o->items = ni;
        o->cap = ncap;
        o->head = 0;
    }
    o->items[(o->head + o->n) % o->cap] = *it;
    o->n++;
}

/* Hands it to shard i, keeping order behind anything already waiting. */
static void to_shard(rc_relay *r, int i, const rc_qitem *it)
{
    overflow *o = &r->ovf[i];
    r->wake[i] = 1;
    if (o->n == 0 && rc_spsc_push(&r->node->links[i].to_shard, it))
        return;
    if (it->kind == RC_Q_DELIVER && o->n >= OVERFLOW_MAX_DATA) {
        rc_msg *m = it->p;
        rc_rooms_add(r->gaps[i], m->chan, m->chan_len);
        rc_msg_put(m);
        rc_counter_inc(&r->stats.dropped);
        return;
    }
    ovf_push(o, it);
    r->ovf_total++;
}

/* A "messages_dropped" notice for the members of a channel: one shared
 * frame (kind RC_MSG_NOTICE, so it does not move the channel's seq). */
static rc_msg *notice_new(const rc_room *room, const char *reason, const char *text)
{
    char json[640];
    int n = snprintf(json, sizeof(json),
                     "{\"type\":\"error\",\"code\":\"messages_dropped\",\"message\":\"%s\","
                     "\"channel\":\"%s\",\"reason\":\"%s\"}",
                     text, room->name, reason);
    rc_assert(n > 0 && (size_t)n < sizeof(json)); /* channel names are short and plain */
    rc_msg *m = rc_msg_new_text((rc_str){room->name, room->name_len}, json, (size_t)n);
    m->kind = RC_MSG_NOTICE;
    return m;
}

static void gap_notice(rc_room *room, void *arg)
{
    rc_relay *r = ((void **)arg)[0];
    int shard = *(int *)((void **)arg)[1];
    rc_msg *m = notice_new(room, "overflow",
                           "the server dropped messages for this channel: fetch what you missed");
    rc_ref_init(&m->refs, 1);
    rc_qitem it = {.kind = RC_Q_DELIVER, .p = m};
    ovf_push(&r->ovf[shard], &it);
    r->ovf_total++;
}

/* Moves waiting items into shard queues as room frees up. */
static void flush_overflow(rc_relay *r)
{
    for (int i = 0; i < r->node->nshards; i++) {
        overflow *o = &r->ovf[i];
        while (o->n) {
            if (!rc_spsc_push(&r->node->links[i].to_shard, &o->items[o->head]))
                break;
            o->head = (o->head + 1) % o->cap;
            o->n--;
            r->ovf_total--;
            r->wake[i] = 1;
        }
        if (o->n == 0 && rc_rooms_count(r->gaps[i])) {
            void *arg[2] = {r, &i};
            rc_rooms_each(r->gaps[i], gap_notice, arg);
            rc_rooms_free(r->gaps[i]);
            r->gaps[i] = rc_rooms_new();
        }
    }
    rc_counter_set(&r->stats.overflow, r->ovf_total);
}

static void suback(rc_relay *r, int shard, char *name, uint64_t seq)
{
    rc_qitem ack = {.kind = RC_Q_SUBACK, .a = 0, .b = seq, .p = name};
    to_shard(r, shard, &ack);
}

/* Answers every member of a channel that waited for Redis. */
static void release(rc_relay *r, rc_room *room)
{
    room->flags &= ~CHAN_PENDING;
    for (uint32_t i = 0; i < room->n; i++)
        suback(r, (int)room->members[i], rc_strndup(room->name, room->name_len), room->seq);
}

static void on_sub(rc_relay *r, rc_qitem *it)
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
    rc_counter_set(&r->stats.channels, rc_rooms_count(r->chans));
    if (room->flags & CHAN_PENDING)
        free(name); /* release() answers with a copy */
    else
        suback(r, (int)it->a, name, room->seq);
}

static void on_unsub(rc_relay *r, rc_qitem *it)
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
    rc_counter_set(&r->stats.channels, rc_rooms_count(r->chans));
    free(name);
}

/* One frame for the node's members of chan, one reference per member shard. */
static void deliver(rc_relay *r, rc_str chan, rc_str event, rc_str data)
{
    rc_room *room = rc_rooms_get(r->chans, chan.p, chan.n);
    if (!room || room->n == 0) {
        rc_counter_inc(&r->stats.no_members);
        return;
    }
    rc_msg *m;
    if (chan.n > 6 && memcmp(chan.p, "queue:", 6) == 0 && event.n == 10 &&
        memcmp(event.p, "queue.tick", 10) == 0) {
        /* A waiting room's tick: the shards make each waiter's frame. */
        if (r->adm)
            rc_admission_on_tick(r->adm, (rc_str){chan.p + 6, chan.n - 6}, data);
        m = rc_msg_new_text(chan, data.p, data.n);
        m->kind = RC_MSG_TICK;
    } else if (chan.n > 6 && memcmp(chan.p, "queue:", 6) == 0 && event.n == 10 &&
               memcmp(event.p, "queue.left", 10) == 0) {
        m = rc_msg_new_text(chan, data.p, data.n);
        m->kind = RC_MSG_QLEFT;
    } else {
        m = rc_msg_new(chan, event, ++room->seq, data);
    }
    rc_ref_init(&m->refs, room->n);
    rc_counter_add(&r->stats.deliveries, room->n);
    for (uint32_t i = 0; i < room->n; i++) {
        rc_qitem d = {.kind = RC_Q_DELIVER, .p = m};
        to_shard(r, (int)room->members[i], &d);
    }
}

/* Local members first, at once; then the other nodes through Redis. */
static void on_publish(rc_relay *r, rc_qitem *it)
{
    rc_pub *p = it->p;
    rc_counter_inc(&r->stats.publishes);
    deliver(r, rc_pub_channel(p), rc_pub_event(p), rc_pub_data(p));
    if (r->bridge)
        rc_bridge_publish(r->bridge, rc_pub_channel(p), rc_pub_event(p), rc_pub_data(p));
    free(p);
}

/* ---- waiting-room calls ---------------------------------------------------- */

static void call_done(void *u, rc_call *c)
{
    rc_relay *r = u;
    if (r->stopping) {
        rc_call_free(c);
        return;
    }
    rc_qitem it = {.kind = RC_Q_CALLDONE, .p = c};
    to_shard(r, c->shard, &it);
}

static void on_call(rc_relay *r, rc_qitem *it)
{
    rc_call *c = it->p;
    if (r->adm) {
        rc_admission_call(r->adm, c);
        return;
    }
    if (c->op == RC_CALL_GONE) {
        rc_call_free(c);
        return;
    }
    /* Waiting rooms live in Redis: a single node without one has none. */
    c->result = RC_JOIN_UNAVAILABLE;
    c->status = 503;
    static const char why[] = "{\"type\":\"error\",\"code\":\"queue_unavailable\",\"message\":"
                              "\"waiting rooms need Redis: start the node with --redis\"}";
    c->reply = rc_strndup(why, sizeof(why) - 1);
    c->reply_len = sizeof(why) - 1;
    call_done(r, c);
}

/* ---- the bridge's calls -------------------------------------------------- */

static void br_message(void *u, rc_str chan, rc_str event, rc_str data)
{
    rc_relay *r = u;
    if (!r->stopping)
        deliver(r, chan, event, data);
}

/* Sends a notice to every member of a channel (on every member shard). */
static void notify_members(rc_relay *r, rc_room *room, const char *reason, const char *text)
{
    rc_msg *m = notice_new(room, reason, text);
    rc_ref_init(&m->refs, room->n);
    rc_counter_add(&r->stats.notices, room->n);
    for (uint32_t i = 0; i < room->n; i++) {
        rc_qitem d = {.kind = RC_Q_DELIVER, .p = m};
        to_shard(r, (int)room->members[i], &d);
    }
}

static void br_subscribed(void *u, rc_str chan, bool after_gap)
{
    rc_relay *r = u;
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
    rc_relay *r = u;
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
    rc_relay *r = u;
    if (!r->stopping)
        rc_rooms_each(r->chans, release_pending, r);
}

/* Takes the item the shards accepted first (rc_qitem.b is the shard's
 * clock reading). The second look matters: an item pushed to a queue we
 * found empty may have been accepted before the one we chose, and it is
 * visible once we have seen the later one. */
static int pop_oldest(rc_relay *r, rc_qitem *out)
{
    rc_node *node = r->node;
    int best = -1;
    uint64_t stamp = 0;
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < node->nshards; i++) {
            const rc_qitem *h = rc_spsc_peek(&node->links[i].to_relay);
            if (h && (best < 0 || h->b < stamp)) {
                best = i;
                stamp = h->b;
            }
        }
        if (best < 0)
            return 0;
    }
    rc_spsc *q = &node->links[best].to_relay;
    *out = *rc_spsc_peek(q);
    rc_spsc_drop(q);
    return 1;
}

static void arm_wake(rc_relay *r)
{
    struct io_uring_sqe *sqe = rc_ring_sqe(&r->ring);
    io_uring_prep_read(sqe, r->node->relay_waker.efd, &r->efd_val, sizeof(r->efd_val), 0);
    io_uring_sqe_set_data64(sqe, rc_ud(RC_UOP_WAKE, 0, 0));
}

/* Handles the completions that are in; returns how many. */
static unsigned reap(rc_relay *r)
{
    unsigned head, seen = 0;
    struct io_uring_cqe *cqe;
    io_uring_for_each_cqe (&r->ring, head, cqe) {
        seen++;
        switch (rc_ud_op(cqe->user_data)) {
        case RC_UOP_WAKE:
            rc_counter_inc(&r->stats.wakes);
            arm_wake(r);
            break;
        case RC_UOP_REDIS:
            if (rc_ud_gen(cqe->user_data) == RC_ADMISSION_TAG) {
                if (r->adm)
                    rc_admission_on_cqe(r->adm, cqe);
            } else if (r->bridge) {
                rc_bridge_on_cqe(r->bridge, cqe);
            }
            break;
        default: break; /* RC_UOP_IGNORE: the bridge's cancels */
        }
    }
    io_uring_cq_advance(&r->ring, seen);
    return seen;
}

/* At exit: what the command connection still holds gets up to a second to
 * reach Redis, then both connections close. */
static void bridge_stop(rc_relay *r)
{
    r->stopping = 1;
    uint64_t until = rc_now_ms() + 1000;
    while (rc_bridge_busy(r->bridge) && rc_now_ms() < until) {
        rc_bridge_tick(r->bridge, rc_now_ms());
        struct __kernel_timespec ts = {.tv_sec = 0, .tv_nsec = 10000000};
        struct io_uring_cqe *cqe;
        io_uring_submit_and_wait_timeout(&r->ring, &cqe, 1, &ts, NULL);
        reap(r);
    }
    rc_bridge_close(r->bridge);
    rc_admission_close(r->adm);
    io_uring_submit(&r->ring);
}

static void *relay_main(void *arg)
{
    rc_relay *r = arg;
    rc_node *node = r->node;
    const char *mode;
    pthread_setname_np(pthread_self(), "rc-relay");
    int e = rc_ring_init(&r->ring, 256, &mode);
    if (e < 0) {
        rc_error("relay: io_uring set-up failed: %s", strerror(-e));
        abort();
    }
    if (r->stats.redis) {
        static const rc_bridge_ops ops = {br_message, br_subscribed, br_link_down, br_lost};
        static const rc_admission_ops aops = {call_done};
        r->bridge = rc_bridge_new(&r->ring, node->cfg, &ops, r, &r->stats.bridge);
        r->adm = rc_admission_new(&r->ring, node->cfg, &aops, r, &r->stats.admission);
    }
    rc_info("relay: started ring=%s shards=%d redis=%s", mode, node->nshards,
            r->bridge ? "on" : "off");
    arm_wake(r);
    for (;;) {
        size_t got = 0;
        rc_qitem it;
        /* A bounded batch per round, so that overflow and wake-ups are seen
         * to while the shards keep the relay busy. */
        while (got < 65536 && pop_oldest(r, &it)) {
            got++;
            switch (it.kind) {
            case RC_Q_SUB: on_sub(r, &it); break;
            case RC_Q_UNSUB: on_unsub(r, &it); break;
            case RC_Q_PUBLISH: on_publish(r, &it); break;
            case RC_Q_CALL: on_call(r, &it); break;
            default: rc_assert(!"unknown item kind from a shard");
            }
        }
        uint64_t next_ms = 1000;
        if (r->bridge) {
            got += reap(r);
            uint64_t now = rc_now_ms();
            rc_bridge_tick(r->bridge, now);
            next_ms = RC_MIN(rc_admission_tick(r->adm, now), (uint64_t)100);
        }
        if (rc_flag_get(&node->draining) && !r->drain_sent) {
            for (int i = 0; i < node->nshards; i++) {
                rc_qitem d = {.kind = RC_Q_DRAIN};
                to_shard(r, i, &d);
            }
            r->drain_sent = 1;
        }
        if (r->ovf_total)
            flush_overflow(r);
        for (int i = 0; i < node->nshards; i++) {
            if (r->wake[i]) {
                r->wake[i] = 0;
                rc_waker_wake(&node->links[i].shard_waker);
            }
        }
        if (rc_flag_get(&node->relay_stop))
            break;
        if (got) {
            /* Busy: hand the Redis sends over and collect what came in
             * without sleeping (completions only arrive when asked). */
            if (r->bridge)
                io_uring_submit_and_get_events(&r->ring);
            continue;
        }
        rc_waker_sleep_begin(&node->relay_waker);
        int idle = 1;
        for (int i = 0; i < node->nshards && idle; i++)
            idle = rc_spsc_empty(&node->links[i].to_relay);
        if (idle && !rc_flag_get(&node->relay_stop) &&
            !(rc_flag_get(&node->draining) && !r->drain_sent)) {
            /* With items waiting for a full shard queue, look again soon;
             * with Redis, at least every 100 ms for its timers. */
            long ns = r->ovf_total ? 1000000L : r->bridge ? (long)next_ms * 1000000L : 0;
            struct __kernel_timespec ts = {.tv_sec = ns ? 0 : 1, .tv_nsec = ns};
            struct io_uring_cqe *cqe;
            io_uring_submit_and_wait_timeout(&r->ring, &cqe, 1, &ts, NULL);
        }
        rc_waker_sleep_end(&node->relay_waker);
        reap(r);
    }
    if (r->bridge)
        bridge_stop(r);
    /* Messages still waiting for shards that have exited are freed here. */
    for (int i = 0; i < node->nshards; i++) {
        overflow *o = &r->ovf[i];
        rc_qitem it;
        while (o->n) {
            it = o->items[o->head];
            o->head = (o->head + 1) % o->cap;
            o->n--;
            if (it.kind == RC_Q_DELIVER)
                rc_msg_put(it.p);
            else if (it.kind == RC_Q_SUBACK)
                free(it.p);
            else if (it.kind == RC_Q_CALLDONE)
                rc_call_free(it.p);
        }
        while (rc_spsc_pop(&node->links[i].to_relay, &it)) {
            if (it.kind == RC_Q_PUBLISH || it.kind == RC_Q_SUB || it.kind == RC_Q_UNSUB)
                free(it.p);
            else if (it.kind == RC_Q_CALL)
                rc_call_free(it.p);
        }
    }
    io_uring_queue_exit(&r->ring);
    rc_bridge_free(r->bridge);
    r->bridge = NULL;
    rc_admission_free(r->adm);
    r->adm = NULL;
    return NULL;
}

int rc_relay_start(rc_relay *r)
{
    return pthread_create(&r->thread, NULL, relay_main, r);
}

void rc_relay_join(rc_relay *r)
{
    pthread_join(r->thread, NULL);
    for (int i = 0; i < r->node->nshards; i++) {
        free(r->ovf[i].items);
        rc_rooms_free(r->gaps[i]);
    }
    free(r->ovf);
    free(r->wake);
    free(r->gaps);
    rc_rooms_free(r->chans);
    free(r);
}
