/* The shard's thread and its ring loop: accept, recv and send completions,
 * timers, and the relay's items. This is the top of the shard's code: it
 * calls down into the HTTP side (http/), the connection layer (conn.c), the
 * protocols (through the table s->protos, filled from proto/protocols.c)
 * and the features' handlers for the relay's items (channels/,
 * admission/); none of them calls it (they use engine/shard.h's API, in
 * engine/shard.c).
 *
 * Thread: the shard's own thread (rc_shard_new, _start and _join: the main thread). */
#include "engine/loop.h"

#include <errno.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "admission/waitroom.h"
#include "channels/history.h"
#include "channels/presence.h"
#include "channels/shard.h"
#include "events/control.h"
#include "events/events.h"
#include "base/log.h"
#include "http/api.h"
#include "http/reply.h"
#include "http/server.h"
#include "net/http.h"
#include "net/listen.h"
#include "proto/protocols.h"
#include "sio/broadcast.h"
#include "sio/recovery.h"
#include "sio/socket.h"
#include "ws/frame.h"

#define ACCEPT_INFLIGHT 16 /* single-shot accepts kept armed in per-address mode */

static int per_addr_mode(const rc_config *cfg)
{
    return cfg->max_conns_per_ip || cfg->handshake_rate_per_ip;
}

rc_shard *rc_shard_new(rc_node *node, int id)
{
    rc_shard *s = rc_calloc(1, sizeof(*s));
    s->id = id;
    s->node = node;
    s->cfg = node->cfg;
    s->nsock = node->conns_per_shard;
    /* Virtual slots (sessions without a socket: Engine.IO long-polling)
     * follow the socket slots, outside the ring's file table: as many, for
     * a polling session keeps its slot after its upgrade (its WebSocket
     * carries it). */
    s->nconns = s->nsock + (node->cfg->sio_on ? s->nsock : 0);
    /* A few slots stay free beyond max_open so that a client past the limit
     * can still be told "503" instead of being left in the accept queue. */
    uint32_t share =
        (node->cfg->max_connections + (uint32_t)node->nshards - 1) / (uint32_t)node->nshards;
    s->max_open = RC_MIN(share, s->nsock > 64 ? s->nsock - 64 : s->nsock / 2);
    if (node->cfg->max_conns_per_ip)
        s->per_ip_conns =
            (node->cfg->max_conns_per_ip + (uint32_t)node->nshards - 1) / (uint32_t)node->nshards;
    s->listen_fd = -1;
    return s;
}

/* ---- user_data helpers ------------------------------------------------- */

static void arm_recv(rc_shard *s, rc_conn *c)
{
    struct io_uring_sqe *sqe = rc_ring_sqe(&s->ring);
    io_uring_prep_recv_multishot(sqe, (int)rc_conn_id(s, c), NULL, 0, 0);
    sqe->flags |= IOSQE_FIXED_FILE | IOSQE_BUFFER_SELECT;
    sqe->buf_group = s->bufs.bgid;
    io_uring_sqe_set_data64(sqe, rc_ud(RC_UOP_RECV, c->gen, rc_conn_id(s, c)));
    c->flags |= RC_CF_RECV;
    c->flags &= (uint8_t)~RC_CF_REARM;
}

static void arm_accept(rc_shard *s)
{
    if (!per_addr_mode(s->cfg)) {
        struct io_uring_sqe *sqe = rc_ring_sqe(&s->ring);
        io_uring_prep_multishot_accept_direct(sqe, s->listen_fd, NULL, NULL, 0);
        io_uring_sqe_set_data64(sqe, rc_ud(RC_UOP_ACCEPT, 0, UINT32_MAX));
    } else {
        /* Multishot accept writes every peer address to the same place before
         * we read it, so with per-address limits each accept has its own. */
        for (uint32_t i = 0; i < s->n_accept_addrs; i++) {
            struct io_uring_sqe *sqe = rc_ring_sqe(&s->ring);
            s->accept_lens[i] = sizeof(s->accept_addrs[i]);
            io_uring_prep_accept_direct(sqe, s->listen_fd, (struct sockaddr *)&s->accept_addrs[i],
                                        &s->accept_lens[i], 0, IORING_FILE_INDEX_ALLOC);
            /* liburing 2.3 stores file_index + 1, which turns ALLOC into 0
             * ("no direct descriptor"): set the field ourselves. */
            sqe->file_index = IORING_FILE_INDEX_ALLOC;
            io_uring_sqe_set_data64(sqe, rc_ud(RC_UOP_ACCEPT, 0, i));
        }
    }
    s->accepting = 1;
}

static void rearm_one_accept(rc_shard *s, uint32_t i)
{
    struct io_uring_sqe *sqe = rc_ring_sqe(&s->ring);
    s->accept_lens[i] = sizeof(s->accept_addrs[i]);
    io_uring_prep_accept_direct(sqe, s->listen_fd, (struct sockaddr *)&s->accept_addrs[i],
                                &s->accept_lens[i], 0, IORING_FILE_INDEX_ALLOC);
    sqe->file_index = IORING_FILE_INDEX_ALLOC; /* see arm_accept */
    io_uring_sqe_set_data64(sqe, rc_ud(RC_UOP_ACCEPT, 0, i));
}

static void arm_wake(rc_shard *s)
{
    struct io_uring_sqe *sqe = rc_ring_sqe(&s->ring);
    io_uring_prep_read(sqe, s->node->links[s->id].shard_waker.efd, &s->wake_val,
                       sizeof(s->wake_val), 0);
    io_uring_sqe_set_data64(sqe, rc_ud(RC_UOP_WAKE, 0, 0));
}

/* ---- timers ------------------------------------------------------------ */

static rc_tnode *tnode_of(void *ctx, uint32_t id)
{
    rc_shard *s = ctx;
    return &s->conns[id].timer;
}

static void on_timer(void *arg, uint32_t id)
{
    rc_shard *s = arg;
    rc_conn *c = &s->conns[id];
    switch (c->state) {
    case RC_CONN_HTTP: rc_http_timeout(s, c); break;
    case RC_CONN_OPEN: rc_conn_on_timer(s, c); break;
    case RC_CONN_CLOSING:
    case RC_CONN_FINAL:
    case RC_CONN_LINGER: rc_conn_abort(s, c); break;
    default: break;
    }
}

static void update_clock(rc_shard *s)
{
    s->now_tick = (uint32_t)((rc_now_ms() - s->tick0_ms) / RC_TICK_MS);
}

/* ---- relay ------------------------------------------------------------- */

static void start_drain(rc_shard *s)
{
    if (s->draining)
        return;
    s->draining = 1;
    s->drain_deadline_ms = rc_now_ms() + s->cfg->drain_timeout_ms;
    if (s->listen_fd >= 0) {
        struct io_uring_sqe *sqe = rc_ring_sqe(&s->ring);
        io_uring_prep_cancel_fd(sqe, s->listen_fd, IORING_ASYNC_CANCEL_ALL);
        io_uring_sqe_set_data64(sqe, rc_ud(RC_UOP_CANCEL, 0, 0));
        io_uring_submit(&s->ring);
        close(s->listen_fd);
        s->listen_fd = -1;
    }
    /* Open connections first: a polling session's close answers the GET
     * parked on it (Engine.IO's close packet), which the second pass would
     * otherwise cut off with the other unanswered requests. */
    uint32_t n = 0;
    for (uint32_t i = 0; i < s->nconns; i++) {
        rc_conn *c = &s->conns[i];
        if (c->state == RC_CONN_OPEN) {
            rc_conn_close(s, c, RC_CLOSE_GOING_AWAY, "server shutting down: reconnect");
            n++;
        }
    }
    for (uint32_t i = 0; i < s->nsock; i++)
        if (s->conns[i].state == RC_CONN_HTTP)
            rc_conn_abort(s, &s->conns[i]);
    rc_info("shard=%d draining connections=%u deadline_ms=%u", s->id, n, s->cfg->drain_timeout_ms);
}

static void on_relay_items(rc_shard *s)
{
    rc_qitem it;
    for (int k = 0; k < 65536 && rc_spsc_pop(&s->node->links[s->id].to_shard, &it); k++) {
        switch (it.kind) {
        case RC_Q_SUBACK: rc_chan_on_suback(s, it.p, it.b); break;
        case RC_Q_DELIVER: {
            rc_msg *m = it.p;
            if (m->kind == RC_MSG_TICK || m->kind == RC_MSG_QLEFT)
                rc_wait_on_msg(s, m);
            else
                rc_chan_on_deliver(s, m);
            break;
        }
        case RC_Q_HISTORY_DONE: {
            rc_histreq *q = it.p;
            if (q->via_http) /* the HTTP API's */
                rc_http_on_history(s, q);
            else
                rc_chan_on_history(s, q);
            break;
        }
        case RC_Q_PRESENCE_DONE: {
            rc_presreq *q = it.p;
            if (q->via_http) /* the HTTP API's */
                rc_http_on_presence(s, q);
            else
                rc_chan_on_presence(s, q);
            break;
        }
        case RC_Q_EVENT_DONE: rc_events_on_done(s, it.p); break;
        case RC_Q_SIO_KEPT: rc_sio_on_kept(s, it.p); break;
        case RC_Q_SIO_BCAST:
            rc_counter_add(&s->stats.sio_emitter_reached, rc_sio_on_bcast(s, it.p));
            break;
        case RC_Q_DIRECT: rc_events_on_direct(s, it.a, (uint16_t)it.b, it.p); break;
        case RC_Q_CONTROL_DO:
            rc_counter_add(&s->stats.controlled, rc_ctl_apply(s, it.p));
            free(it.p);
            break;
        case RC_Q_DRAIN: start_drain(s); break;
        case RC_Q_CALLDONE: {
            rc_call *call = it.p;
            if (call->op >= RC_CALL_QUEUE_PUT) /* the HTTP API's */
                rc_http_on_calldone(s, call);
            else
                rc_wait_on_calldone(s, call);
            break;
        }
        default: rc_assert(!"unknown item kind from the relay");
        }
        if (s->nresume)
            rc_req_run(s);
    }
}

/* ---- completions ---------------------------------------------------------- */

/* A socket in slot (accepted, or moved here): an HTTP connection reading
 * its request. */
static rc_conn *new_conn(rc_shard *s, uint32_t slot)
{
    rc_assert(slot < s->nsock);
    rc_conn *c = &s->conns[slot];
    rc_conn_claim(s, c, RC_CONN_HTTP);
    arm_recv(s, c);
    rc_conn_timer(s, c, s->cfg->handshake_timeout_ms);
    return c;
}

/* A connection another shard handed over (rc_conn_move): its request
 * starts again here, with the bytes that shard had read. */
static void on_moved_in(rc_shard *s, struct io_uring_cqe *cqe)
{
    rc_httpbuf *hb = (rc_httpbuf *)(uintptr_t)(cqe->user_data & ((1ull << 56) - 1));
    if (cqe->res < 0) {
        /* The kernel posts this only for a socket that arrived. */
        rc_warn("shard=%d a moved connection could not be installed: %s", s->id,
                strerror(-cqe->res));
        free(hb);
        return;
    }
    rc_conn *c = new_conn(s, (uint32_t)cqe->res);
    rc_http_input(s, c, (const uint8_t *)hb->buf, hb->len);
    free(hb);
}

static void on_accept(rc_shard *s, struct io_uring_cqe *cqe)
{
    uint32_t idx = rc_ud_id(cqe->user_data);
    int more = (cqe->flags & IORING_CQE_F_MORE) != 0;
    if (cqe->res < 0) {
        if (cqe->res == -ECANCELED)
            return;
        rc_counter_inc(&s->stats.accept_errors);
        if (s->now_tick != s->accept_warn_tick) { /* at most one line a tick */
            s->accept_warn_tick = s->now_tick;
            rc_warn("shard=%d accept failed: %s", s->id, strerror(-cqe->res));
        }
        /* Try again on the next tick, not at once: an error that repeats
         * (no free slot, no memory) must not spin the loop. */
        if (idx == UINT32_MAX) {
            if (!more)
                s->accepting = 0;
        } else {
            s->accept_retry |= 1u << idx;
        }
        return;
    }
    rc_conn *c = new_conn(s, (uint32_t)cqe->res);
    rc_counter_inc(&s->stats.accepted);

    if (idx != UINT32_MAX) {
        struct sockaddr_in6 sa = s->accept_addrs[idx];
        if (!s->draining && s->listen_fd >= 0)
            rearm_one_accept(s, idx);
        struct in6_addr ip;
        memset(&ip, 0, sizeof(ip));
        if (sa.sin6_family == AF_INET6) {
            ip = sa.sin6_addr;
        } else {
            const struct sockaddr_in *v4 = (const struct sockaddr_in *)&sa;
            ip.s6_addr[10] = ip.s6_addr[11] = 0xff;
            memcpy(&ip.s6_addr[12], &v4->sin_addr, 4);
        }
        const char *why, *retry;
        if (rc_addr_admit(s, c, &ip, &why, &retry) < 0) {
            rc_counter_inc(&s->stats.handshakes[RC_HS_RATE_LIMITED]);
            rc_http_reply(s, c, 429, "text/plain", why, strlen(why), retry);
            return;
        }
    } else if (!more && !s->draining && s->listen_fd >= 0) {
        arm_accept(s);
    }
    if (rc_shard_sockets_open(s) > s->max_open) {
        rc_counter_inc(&s->stats.handshakes[RC_HS_FULL]);
        rc_http_reply(s, c, 503, "text/plain", "server full: try another node\n", 30,
                      "Retry-After: 5\r\n");
        return;
    }
    if (s->cfg->handshake_rate) {
        uint32_t per_shard = RC_MAX(1u, s->cfg->handshake_rate / (uint32_t)s->node->nshards);
        if (!rc_bucket_take(&s->hs_tokens, &s->hs_tick, s->now_tick, per_shard)) {
            rc_counter_inc(&s->stats.handshakes[RC_HS_RATE_LIMITED]);
            rc_http_reply(s, c, 429, "text/plain", "handshake rate exceeded\n", 24,
                          "Retry-After: 1\r\n");
            return;
        }
    }
}

static void on_recv(rc_shard *s, rc_conn *c, struct io_uring_cqe *cqe)
{
    int more = (cqe->flags & IORING_CQE_F_MORE) != 0;
    if (!more)
        c->flags &= (uint8_t)~RC_CF_RECV;
    if (cqe->res > 0) {
        rc_assert(cqe->flags & IORING_CQE_F_BUFFER);
        uint16_t bid = (uint16_t)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
        const uint8_t *data = rc_bufring_addr(&s->bufs, bid);
        size_t len = (size_t)cqe->res;
        rc_counter_add(&s->stats.bytes_in, len);
        c->last_rx = s->now_tick;
        if (c->state == RC_CONN_OPEN)
            rc_conn_ws_input(s, c, data, len);
        else if (c->state == RC_CONN_HTTP)
            rc_http_input(s, c, data, len);
        else if (c->state == RC_CONN_LINGER)
            rc_conn_abort(s, c); /* the client's close frame: done */
        else if (c->state == RC_CONN_MOVING)
            rc_conn_moving_input(s, c, data, len);
        /* CLOSING, FINAL: the client's last words are read and dropped. */
        rc_bufring_recycle(&s->bufs, bid);
        if (!more && c->state != RC_CONN_DEAD && c->state != RC_CONN_FREE &&
            c->state != RC_CONN_MOVING)
            arm_recv(s, c);
    } else if (cqe->res == -ENOBUFS) {
        /* Every provided buffer is in use until this batch is processed;
         * re-arm once they are back. */
        rc_counter_inc(&s->stats.recv_nobufs);
        rc_bufring_starved(&s->bufs);
        if (!more && c->state != RC_CONN_DEAD && c->state != RC_CONN_MOVING &&
            !(c->flags & RC_CF_REARM)) {
            c->flags |= RC_CF_REARM;
            rc_idlist_push(&s->rearm, &s->nrearm, &s->cap_rearm, rc_conn_id(s, c));
        }
    } else if (c->state == RC_CONN_MOVING && (cqe->res == -ECANCELED || cqe->res == 0)) {
        /* Our cancel (rc_conn_move): the socket goes on elsewhere. So it
         * does after EOF, a client that half-closed once its request was
         * sent: the request is whole (only those move), the other shard
         * answers it. */
    } else if (cqe->res == 0 && c->state == RC_CONN_FINAL) {
        /* A half-close behind the request: the answer is queued, and the
         * connection closes once it is sent. */
    } else if (c->state != RC_CONN_DEAD) {
        rc_debug("shard=%d conn=%u recv %s in state %d flags=%x out=%u gen=%u", s->id,
                 rc_conn_id(s, c), cqe->res ? strerror(-cqe->res) : "EOF", c->state, c->flags,
                 c->out ? c->out->n : 0, c->gen);
        /* EOF or a socket error: nobody is left to say goodbye to. */
        rc_conn_abort(s, c);
    }
    rc_conn_maybe_reap(s, c);
}

static void on_cqe(rc_shard *s, struct io_uring_cqe *cqe)
{
    uint64_t ud = cqe->user_data;
    unsigned op = rc_ud_op(ud);
    if (op == RC_UOP_ACCEPT) {
        on_accept(s, cqe);
        return;
    }
    if (op == RC_UOP_WAKE) {
        arm_wake(s);
        return;
    }
    if (op == RC_UOP_MOVED) {
        on_moved_in(s, cqe);
        return;
    }
    if (op != RC_UOP_RECV && op != RC_UOP_SEND && op != RC_UOP_MOVE)
        return; /* cancel, shutdown, close: nothing waits on them */
    uint32_t id = rc_ud_id(ud);
    rc_conn *c = &s->conns[id];
    if (c->gen != rc_ud_gen(ud) || c->state == RC_CONN_FREE) {
        /* A completion for a connection that has since gone: only a
         * provided buffer needs giving back. */
        if (op == RC_UOP_RECV && (cqe->flags & IORING_CQE_F_BUFFER))
            rc_bufring_recycle(&s->bufs, (uint16_t)(cqe->flags >> IORING_CQE_BUFFER_SHIFT));
        return;
    }
    if (op == RC_UOP_RECV)
        on_recv(s, c, cqe);
    else if (op == RC_UOP_MOVE && rc_conn_moved_out(s, c, cqe->res) < 0)
        rc_http_reply(s, c, 503, "text/plain; charset=utf-8", "try again\n", 10,
                      "Retry-After: 1\r\n");
    else
        rc_conn_sent(s, c, cqe->res);
}

/* The next RC_SWEEP_CHUNK connections waiting to send get their send. A
 * connection that gets more output after its turn is queued again, behind
 * those still waiting, and takes in everything published until its next
 * turn. (One whose send is still in flight is not queued: the completion
 * sends what queued meanwhile, rc_conn_sent.) */
static void flush_chunk(rc_shard *s)
{
    uint32_t end =
        s->ndirty - s->dirty_head > RC_SWEEP_CHUNK ? s->dirty_head + RC_SWEEP_CHUNK : s->ndirty;
    for (uint32_t i = s->dirty_head; i < end; i++) {
        rc_conn *c = &s->conns[s->dirty[i]];
        if (c->state == RC_CONN_FREE)
            continue; /* released while it waited: its page may have been given back */
        c->flags &= (uint8_t)~RC_CF_DIRTY;
        rc_conn_flush(s, c);
    }
    s->dirty_head = end;
    if (s->dirty_head == s->ndirty) {
        s->dirty_head = s->ndirty = 0;
    } else if (s->dirty_head >= 4 * RC_SWEEP_CHUNK && s->dirty_head >= s->ndirty / 2) {
        s->ndirty -= s->dirty_head;
        memmove(s->dirty, s->dirty + s->dirty_head, s->ndirty * sizeof(*s->dirty));
        s->dirty_head = 0;
    }
    rc_counter_set(&s->stats.send_waiting, s->ndirty - s->dirty_head);
}

static int sweep_pending(const rc_shard *s)
{
    return s->dirty_head < s->ndirty;
}

/* End of a batch: submit the sends that queued up, re-arm starved recvs. */
static void end_of_batch(rc_shard *s)
{
    /* Deferred requests of connections released outside a relay item. */
    if (s->nresume)
        rc_req_run(s);
    if (s->nbacklog)
        rc_shard_flush_relay(s);
    /* First, so that a relay on another core works while we send. */
    if (s->relay_wake) {
        s->relay_wake = 0;
        rc_waker_wake(&s->node->relay_waker);
    }
    for (uint32_t i = 0; i < s->nreap; i++)
        rc_conn_release(s, &s->conns[s->reap[i]]);
    s->nreap = 0;
    flush_chunk(s);
    rc_bufring_publish(&s->bufs);
    for (uint32_t i = 0; i < s->nrearm; i++) {
        rc_conn *c = &s->conns[s->rearm[i]];
        if ((c->flags & RC_CF_REARM) && c->state != RC_CONN_FREE && c->state != RC_CONN_DEAD)
            arm_recv(s, c);
        c->flags &= (uint8_t)~RC_CF_REARM;
    }
    s->nrearm = 0;
}

static void pin_thread(rc_shard *s)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (ncpu <= 0)
        return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET((int)(s->id % ncpu), &set);
    int e = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
    if (e)
        rc_warn("shard=%d could not pin to cpu %ld: %s", s->id, s->id % ncpu, strerror(e));
}

static int setup(rc_shard *s)
{
    const char *mode;
    int e = rc_ring_init(&s->ring, s->cfg->ring_entries, &mode);
    if (e < 0) {
        rc_error("shard=%d io_uring set-up failed: %s", s->id, strerror(-e));
        return -1;
    }
    e = io_uring_register_files_sparse(&s->ring, s->nsock);
    if (e < 0) {
        rc_error("shard=%d cannot register %u direct descriptors: %s (RLIMIT_NOFILE caps "
                 "the table per ring: use more shards)",
                 s->id, s->nsock, strerror(-e));
        return -1;
    }
    e = rc_bufring_init(&s->bufs, &s->ring, 0, s->cfg->recv_buf_count, s->cfg->recv_buf_size);
    if (e < 0) {
        rc_error("shard=%d provided-buffer ring failed: %s", s->id, strerror(-e));
        return -1;
    }
    if (!(s->ring.features & IORING_FEAT_SUBMIT_STABLE)) {
        rc_error("shard=%d the kernel lacks IORING_FEAT_SUBMIT_STABLE (Linux 5.5+)", s->id);
        return -1;
    }
    s->arena = rc_malloc(sizeof(*s->arena));
    s->arena->nmsg = s->arena->niov = 0;
    /* Whole pages of its own, so that rc_conn_table_trim can give pages back. */
    long page = sysconf(_SC_PAGESIZE);
    s->conns_per_page = (uint32_t)((size_t)page / sizeof(rc_conn));
    s->conn_pages = (s->nconns + s->conns_per_page - 1) / s->conns_per_page;
    s->conns = mmap(NULL, (size_t)s->conn_pages * (size_t)page, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (s->conns == MAP_FAILED) {
        s->conns = NULL;
        rc_error("shard=%d cannot map its connection table (%u slots): %s", s->id, s->nconns,
                 strerror(errno));
        return -1;
    }
    s->page_gen = rc_calloc(s->conn_pages, sizeof(*s->page_gen));
    s->waits = rc_calloc(s->nconns, sizeof(rc_wait));
    s->reqs = rc_calloc(s->nconns, sizeof(*s->reqs));
    s->rooms = rc_rooms_new();
    s->presence_asks = rc_rooms_new();
    s->announced = rc_calloc((s->nconns + 7) / 8, 1);
    s->refresh_told = rc_calloc((s->nconns + 7) / 8, 1);
    s->pstate = rc_calloc(s->nconns, sizeof(*s->pstate));
    s->vfree = rc_calloc(s->nconns - s->nsock + 1, sizeof(*s->vfree));
    for (uint32_t i = s->nconns; i-- > s->nsock;)
        s->vfree[s->nvfree++] = i;
    if (s->cfg->lifecycle_subscriptions && s->cfg->lifecycle_stream[0] && s->cfg->redis_url[0])
        s->membership_hook = rc_events_membership;
    s->tick0_ms = rc_now_ms();
    s->now_tick = 0;
    rc_wheel_init(&s->wheel, 4096, 0, tnode_of, s);
    rc_ws_pool_init(&s->ws_pool, &rc_conn_ws_hooks, s->cfg->max_message_bytes, 256);
    rc_protocols_install(s->protos);
    if (per_addr_mode(s->cfg)) {
        s->n_accept_addrs = ACCEPT_INFLIGHT;
        s->accept_addrs = rc_calloc(ACCEPT_INFLIGHT, sizeof(*s->accept_addrs));
        s->accept_lens = rc_calloc(ACCEPT_INFLIGHT, sizeof(*s->accept_lens));
    }
    arm_wake(s);
    arm_accept(s);
    rc_info("shard=%d started ring=%s slots=%u max_open=%u virtual=%u", s->id, mode, s->nsock,
            s->max_open, s->nconns - s->nsock);
    return 0;
}

static void *shard_main(void *arg)
{
    rc_shard *s = arg;
    rc_link *link = &s->node->links[s->id];
    char name[16];
    snprintf(name, sizeof(name), "rc-shard-%d", s->id);
    pthread_setname_np(pthread_self(), name); /* perf and top show it */
    if (s->cfg->pin_threads)
        pin_thread(s);
    if (setup(s) < 0) {
        /* Without its ring a shard cannot serve: stop the node. */
        fprintf(stderr, "ringcast: shard %d failed to start\n", s->id);
        exit(1);
    }
    uint32_t last_tick = 0;
    for (;;) {
        on_relay_items(s);
        end_of_batch(s);
        if (s->draining) {
            if (s->open == 0)
                break;
            if (rc_now_ms() >= s->drain_deadline_ms) {
                for (uint32_t i = 0; i < s->nconns; i++) {
                    rc_conn *c = &s->conns[i];
                    if (c->state != RC_CONN_FREE && c->state != RC_CONN_DEAD)
                        rc_conn_abort(s, c);
                }
                end_of_batch(s);
                s->drain_deadline_ms = UINT64_MAX; /* only once */
            }
        }
        rc_waker_sleep_begin(&link->shard_waker);
        struct io_uring_cqe *cqe;
        if (rc_spsc_empty(&link->to_shard) && !sweep_pending(s)) {
            uint64_t next_ms = s->tick0_ms + (uint64_t)(s->now_tick + 1) * RC_TICK_MS;
            uint64_t now = rc_now_ms();
            uint64_t wait = next_ms > now ? next_ms - now : 0;
            struct __kernel_timespec ts = {.tv_sec = 0, .tv_nsec = (long long)wait * 1000000};
            io_uring_submit_and_wait_timeout(&s->ring, &cqe, 1, &ts, NULL);
        } else {
            io_uring_submit_and_get_events(&s->ring);
        }
        s->arena->nmsg = s->arena->niov = 0; /* the kernel has consumed them */
        rc_waker_sleep_end(&link->shard_waker);
        update_clock(s);
        unsigned head, seen = 0;
        io_uring_for_each_cqe (&s->ring, head, cqe) {
            on_cqe(s, cqe);
            seen++;
        }
        io_uring_cq_advance(&s->ring, seen);
        if (s->now_tick != last_tick) {
            rc_wheel_advance(&s->wheel, s->now_tick, on_timer, s);
            last_tick = s->now_tick;
            if (s->now_tick % (1000 / RC_TICK_MS) == 0) {
                /* Between batches: every buffer the kernel handed over has
                 * been read and given back. */
                rc_bufring_trim(&s->bufs, rc_ring_at_rest(&s->ring));
                rc_counter_set(&s->stats.recv_buffers, s->bufs.live);
                rc_conn_table_trim(s);
            }
            rc_addr_sweep(s);
            if (!s->draining && s->listen_fd >= 0) {
                if (!s->accepting)
                    arm_accept(s);
                for (uint32_t i = 0; s->accept_retry && i < s->n_accept_addrs; i++) {
                    if (s->accept_retry & (1u << i))
                        rearm_one_accept(s, i);
                }
                s->accept_retry = 0;
            }
        }
    }
    /* Every connection is gone; let the close operations reach the kernel. */
    io_uring_submit_and_get_events(&s->ring);
    rc_info("shard=%d drained", s->id);
    rc_flag_set(&s->exited, 1);
    return NULL;
}

int rc_shard_start(rc_shard *s)
{
    char err[256];
    s->listen_fd = rc_listen_socket(s->cfg->listen_host, s->cfg->listen_port, err, sizeof(err));
    if (s->listen_fd < 0) {
        rc_error("shard=%d %s", s->id, err);
        return -1;
    }
    return pthread_create(&s->thread, NULL, shard_main, s) ? -1 : 0;
}

void rc_shard_join(rc_shard *s)
{
    pthread_join(s->thread, NULL);
    /* Messages still queued for this shard hold references. */
    rc_qitem it;
    while (rc_spsc_pop(&s->node->links[s->id].to_shard, &it)) {
        if (it.kind == RC_Q_DELIVER)
            rc_msg_put(it.p);
        else if (it.kind == RC_Q_SUBACK)
            free(it.p);
        else if (it.kind == RC_Q_CALLDONE)
            rc_call_free(it.p);
        else if (it.kind == RC_Q_HISTORY_DONE)
            rc_histreq_free(it.p);
        else if (it.kind == RC_Q_PRESENCE_DONE)
            rc_presreq_free(it.p);
        else if (it.kind == RC_Q_SIO_KEPT)
            rc_sio_keep_free(it.p);
        else if (it.kind == RC_Q_SIO_BCAST)
            rc_sio_bcast_free(it.p);
        else if (it.kind == RC_Q_EVENT_DONE || it.kind == RC_Q_CONTROL_DO)
            free(it.p);
        else if (it.kind == RC_Q_DIRECT)
            rc_msg_put(it.p);
    }
    for (uint32_t i = 0; i < s->nbacklog; i++) {
        if (s->relay_backlog[i].kind == RC_Q_SIO_KEEP)
            rc_sio_keep_free(s->relay_backlog[i].p);
        else
            free(s->relay_backlog[i].p);
    }
    rc_bufring_free(&s->bufs, &s->ring);
    io_uring_queue_exit(&s->ring);
    rc_ws_pool_free(&s->ws_pool);
    rc_wheel_free(&s->wheel);
    rc_chan_free_all(s);
    rc_rooms_free(s->rooms);
    rc_rooms_free(s->presence_asks);
    free(s->announced);
    free(s->refresh_told);
    for (uint32_t i = 0; i < s->nconns; i++)
        free(s->pstate[i]);
    free(s->pstate);
    free(s->vfree);
    if (s->conns)
        munmap(s->conns, (size_t)s->conn_pages * s->conns_per_page * sizeof(rc_conn));
    free(s->page_gen);
    free(s->waits);
    free(s->reqs);
    free(s->resume);
    free(s->arena);
    free(s->dirty);
    free(s->rearm);
    free(s->reap);
    free(s->relay_backlog);
    free(s->addrs);
    free(s->addr_hash);
    free(s->accept_addrs);
    free(s->accept_lens);
    if (s->listen_fd >= 0)
        close(s->listen_fd);
    free(s);
}
