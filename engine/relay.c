/* The relay thread's loop: it takes the shards' items oldest first and
 * hands them down (channels to channels/relay.c, waiting-room calls to
 * admission/), drives the Redis connections' completions, runs the
 * waiting rooms' tick, and wakes the shards it gave something to
 * (engine/outbox.c).
 *
 * Thread: the relay thread. */
#include "sio/emitter.h"
#include "engine/relay.h"

#include <errno.h>
#include <string.h>

#include "channels/bridge.h"
#include "redis/link.h"
#include "channels/relay.h"
#include "base/log.h"
#include "engine/msg.h"
#include "events/events.h"
#include "events/lifecycle.h"
#include "events/relay.h"
#include "net/uring.h"

struct rc_relay {
    rc_node *node;
    pthread_t thread;
    struct io_uring ring;
    rc_outbox *out;          /* to the shards */
    rc_chan_relay *chans;    /* the channel table (channels/relay.c) */
    rc_events *events;       /* client events and replies (events/relay.c) */
    rc_lifecycle *lifecycle; /* connect/disconnect events (events/lifecycle.c); or NULL */
    int drain_sent;
    uint64_t next_chan_tick_ms; /* history expiry and its gauges, once a second */
    int stopping;               /* shards are gone: messages from Redis are dropped */
    uint64_t efd_val;
    rc_bridge *bridge;       /* NULL without a Redis URL */
    rc_admission *adm;       /* waiting rooms; NULL without a Redis URL */
    rc_sio_keeper *keeper;   /* kept Socket.IO sessions (sio/recovery.h) */
    rc_sio_emitter *emitter; /* Socket.IO's Redis emitter, heard (sio/emitter.h); or NULL */
    rc_relay_stats stats;
};

static void keep_done(void *u, rc_sio_keep *k);

rc_relay *rc_relay_new(rc_node *node)
{
    rc_relay *r = rc_calloc(1, sizeof(*r));
    r->node = node;
    r->out = rc_outbox_new(node, &r->stats.out);
    r->chans = rc_chan_relay_new(node->cfg, r->out, &r->stats.chans);
    rc_outbox_set_gap_notice(r->out, rc_chan_gap_notice, r->chans);
    r->events = rc_events_new(node->cfg, r->out, &r->stats.events);
    r->lifecycle = rc_lifecycle_new(node->cfg, &r->stats.lifecycle);
    r->stats.redis = node->cfg->redis_url[0] != '\0';
    r->keeper = rc_sio_keeper_new(node->cfg, &r->stats.sio_keeper, keep_done, r);
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

/* ---- waiting-room calls ---------------------------------------------------- */

static void call_done(void *u, rc_call *c)
{
    rc_relay *r = u;
    if (r->stopping) {
        rc_call_free(c);
        return;
    }
    rc_qitem it = {.kind = RC_Q_CALLDONE, .p = c};
    rc_outbox_push(r->out, c->shard, &it);
}

/* An answered TAKE of a kept Socket.IO session goes back to its shard. */
static void keep_done(void *u, rc_sio_keep *k)
{
    rc_relay *r = u;
    if (r->stopping) {
        rc_sio_keep_free(k);
        return;
    }
    rc_qitem it = {.kind = RC_Q_SIO_KEPT, .p = k};
    rc_outbox_push(r->out, k->shard, &it);
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
            if (rc_rlink_kind_of(rc_ud_gen(cqe->user_data)) == RC_ADMISSION_KIND) {
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
    rc_chan_relay_stop(r->chans);
    rc_events_stop(r->events);
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

/* The waiting rooms see each tick that goes by (their gauges and pace). */
static void tick_tap(void *u, rc_str queue, rc_str data)
{
    rc_admission_on_tick(u, queue, data);
}

/* What a shard that has exited will never take: freed at exit. */
static void discard_to_shard(const rc_qitem *it)
{
    if (it->kind == RC_Q_DELIVER)
        rc_msg_put(it->p);
    else if (it->kind == RC_Q_SUBACK)
        free(it->p);
    else if (it->kind == RC_Q_CALLDONE)
        rc_call_free(it->p);
    else if (it->kind == RC_Q_HISTORY_DONE)
        rc_histreq_free(it->p);
    else if (it->kind == RC_Q_PRESENCE_DONE)
        rc_presreq_free(it->p);
    else if (it->kind == RC_Q_SIO_KEPT)
        rc_sio_keep_free(it->p);
    else if (it->kind == RC_Q_SIO_BCAST)
        rc_sio_bcast_free(it->p);
    else if (it->kind == RC_Q_EVENT_DONE || it->kind == RC_Q_CONTROL_DO)
        free(it->p);
    else if (it->kind == RC_Q_DIRECT)
        rc_msg_put(it->p);
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
        static const rc_admission_ops aops = {call_done};
        r->bridge =
            rc_bridge_new(&r->ring, node->cfg, &rc_chan_bridge_ops, r->chans, &r->stats.bridge);
        r->adm = rc_admission_new(&r->ring, node->cfg, &aops, r, &r->stats.admission);
        rc_chan_relay_attach(r->chans, r->bridge, tick_tap, r->adm);
        rc_events_attach(r->events, r->bridge);
        rc_lifecycle_attach(r->lifecycle, r->bridge);
        r->emitter = rc_sio_emitter_attach(r->bridge, node->cfg, r->out, &r->stats.sio_emitter);
        rc_sio_keeper_attach(r->keeper, r->bridge);
    }
    rc_info("relay: started ring=%s shards=%d redis=%s", mode, node->nshards,
            r->bridge ? "on" : "off");
    arm_wake(r);
    for (;;) {
        size_t got = 0;
        rc_qitem it;
        /* Whether publications are worth compressing this turn: only while
         * some connection negotiated permessage-deflate (a connection that
         * negotiated it after this read gets plain frames until the next
         * turn, which is allowed). */
        uint64_t pmd = 0;
        for (int i = 0; i < node->nshards; i++)
            pmd += rc_counter_get(&node->links[i].deflate_conns);
        rc_chan_relay_set_deflate_users(r->chans, pmd);
        /* A bounded batch per round, so that overflow and wake-ups are seen
         * to while the shards keep the relay busy. */
        while (got < 65536 && pop_oldest(r, &it)) {
            got++;
            switch (it.kind) {
            case RC_Q_SUB: rc_chan_relay_on_sub(r->chans, &it); break;
            case RC_Q_UNSUB: rc_chan_relay_on_unsub(r->chans, &it); break;
            case RC_Q_PUBLISH: rc_chan_relay_on_publish(r->chans, &it); break;
            case RC_Q_HISTORY: rc_chan_relay_on_history(r->chans, &it); break;
            case RC_Q_PRESENCE: rc_chan_relay_on_presence(r->chans, &it); break;
            case RC_Q_EVENT: rc_events_on_event(r->events, &it); break;
            case RC_Q_REPLY: rc_events_on_reply(r->events, &it); break;
            case RC_Q_CONTROL: rc_events_on_control(r->events, &it); break;
            case RC_Q_LIFECYCLE: rc_lifecycle_on_news(r->lifecycle, it.p); break;
            case RC_Q_CALL: on_call(r, &it); break;
            case RC_Q_SIO_KEEP: rc_sio_keeper_on(r->keeper, it.p); break;
            default: rc_assert(!"unknown item kind from a shard");
            }
        }
        uint64_t next_ms = 1000;
        if (rc_now_ms() >= r->next_chan_tick_ms) {
            rc_chan_relay_tick(r->chans, rc_wall_ms());
            rc_lifecycle_tick(r->lifecycle);
            rc_sio_keeper_tick(r->keeper, rc_now_ms());
            r->next_chan_tick_ms = rc_now_ms() + 1000;
        }
        if (r->bridge) {
            rc_chan_relay_flush(r->chans);
            rc_lifecycle_flush(r->lifecycle);
            rc_events_flush(r->events);
            got += reap(r);
            uint64_t now = rc_now_ms();
            rc_bridge_tick(r->bridge, now);
            next_ms = RC_MIN(rc_admission_tick(r->adm, now), (uint64_t)100);
        }
        if (rc_flag_get(&node->draining) && !r->drain_sent) {
            for (int i = 0; i < node->nshards; i++) {
                rc_qitem d = {.kind = RC_Q_DRAIN};
                rc_outbox_push(r->out, i, &d);
            }
            r->drain_sent = 1;
        }
        if (rc_outbox_waiting(r->out))
            rc_outbox_flush(r->out);
        rc_outbox_wake(r->out);
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
            long ns = rc_outbox_waiting(r->out) ? 1000000L
                      : r->bridge               ? (long)next_ms * 1000000L
                                                : 0;
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
    rc_outbox_discard(r->out, discard_to_shard);
    for (int i = 0; i < node->nshards; i++) {
        rc_qitem it;
        while (rc_spsc_pop(&node->links[i].to_relay, &it)) {
            if (it.kind == RC_Q_PUBLISH || it.kind == RC_Q_SUB || it.kind == RC_Q_UNSUB)
                free(it.p);
            else if (it.kind == RC_Q_CALL)
                rc_call_free(it.p);
            else if (it.kind == RC_Q_HISTORY)
                rc_histreq_free(it.p);
            else if (it.kind == RC_Q_PRESENCE)
                rc_presreq_free(it.p);
            else if (it.kind == RC_Q_SIO_KEEP)
                rc_sio_keep_free(it.p);
            else if (it.kind == RC_Q_EVENT || it.kind == RC_Q_REPLY || it.kind == RC_Q_CONTROL ||
                     it.kind == RC_Q_LIFECYCLE)
                free(it.p);
        }
    }
    io_uring_queue_exit(&r->ring);
    rc_bridge_free(r->bridge);
    r->bridge = NULL;
    rc_sio_emitter_free(r->emitter);
    r->emitter = NULL;
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
    rc_outbox_free(r->out);
    rc_chan_relay_free(r->chans);
    rc_events_free(r->events);
    rc_lifecycle_free(r->lifecycle);
    rc_sio_keeper_free(r->keeper);
    free(r);
}
