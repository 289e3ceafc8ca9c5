/* A connection's life after accept: its send queue (at most one send in
 * flight; frames that queue meanwhile leave together in the next one), its
 * WebSocket session, heartbeats, and the way it ends. It moves bytes and
 * frames only: a whole message from the client goes to the connection's
 * protocol (proto/protocol.h), which also undoes what the connection holds
 * when it ends.
 *
 * Thread: the shard that owns the connection. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "base/log.h"
#include "engine/shard.h"
#include "ws/frame.h"

static void mark_dirty(rc_shard *s, rc_conn *c)
{
    if (c->flags & (RC_CF_DIRTY | RC_CF_SEND))
        return; /* a send in flight flushes the rest when it completes */
    c->flags |= RC_CF_DIRTY;
    rc_idlist_push(&s->dirty, &s->ndirty, &s->cap_dirty, rc_conn_id(s, c));
}

static void backlog_add(rc_shard *s, rc_outq *q, int64_t delta)
{
    q->bytes = (uint64_t)((int64_t)q->bytes + delta);
    s->backlog_total = (uint64_t)((int64_t)s->backlog_total + delta);
    rc_counter_set(&s->stats.backlog_bytes, s->backlog_total);
}

static rc_outq *outq_of(rc_conn *c)
{
    if (!c->out) {
        rc_outq *q = rc_malloc(sizeof(*q));
        q->head = q->n = q->off = q->inflight = q->dropped = 0;
        q->bytes = 0;
        q->cap = RC_OUTQ_INLINE;
        q->items = q->inl;
        c->out = q;
    }
    return c->out;
}

static void outq_push(rc_outq *q, rc_obuf *b)
{
    if (q->n == q->cap) {
        uint32_t ncap = q->cap * 2;
        rc_obuf **ni = rc_malloc(ncap * sizeof(*ni));
        for (uint32_t i = 0; i < q->n; i++)
            ni[i] = q->items[(q->head + i) & (q->cap - 1)];
        if (q->items != q->inl)
            free(q->items);
        q->items = ni;
        q->cap = ncap;
        q->head = 0;
    }
    q->items[(q->head + q->n) & (q->cap - 1)] = b;
    q->n++;
}

static void outq_free(rc_shard *s, rc_conn *c)
{
    rc_outq *q = c->out;
    if (!q)
        return;
    for (uint32_t i = 0; i < q->n; i++)
        rc_obuf_put(q->items[(q->head + i) & (q->cap - 1)]);
    backlog_add(s, q, -(int64_t)q->bytes);
    if (q->items != q->inl)
        free(q->items);
    free(q);
    c->out = NULL;
}

/* Drops queued channel messages that have not started to go out: used when a
 * close frame must not wait behind them. */
static void outq_drop_data(rc_shard *s, rc_conn *c)
{
    rc_outq *q = c->out;
    if (!q)
        return;
    /* Items covered by the send in flight, and a partly sent head, stay. */
    uint32_t keep = q->inflight > 0 ? q->inflight : (q->off ? 1 : 0);
    uint32_t w = keep;
    for (uint32_t i = keep; i < q->n; i++) {
        rc_obuf *b = q->items[(q->head + i) & (q->cap - 1)];
        if (b->kind == RC_OBUF_DATA) {
            backlog_add(s, q, -(int64_t)b->len);
            rc_obuf_put(b);
        } else {
            q->items[(q->head + w++) & (q->cap - 1)] = b;
        }
    }
    q->n = w;
}

static void close_frame(rc_shard *s, rc_conn *c, uint16_t code, const char *reason, int drop_data);

/* Bytes that wait behind the message at the head of the queue (the one
 * being sent, or next to go). The backlog policy applies when these exceed
 * --send-backlog-bytes before a new message is queued: the head itself,
 * however large, is never counted, and neither is the new message, so a
 * message of any size reaches a reader that keeps up, and what waits for a
 * reader stays within the backlog plus one message. */
static uint64_t waiting_bytes(const rc_outq *q)
{
    if (q->n == 0)
        return 0;
    const rc_obuf *h = q->items[q->head];
    return q->bytes - (h->len - q->off);
}

int rc_conn_send(rc_shard *s, rc_conn *c, rc_obuf *b)
{
    if (c->state != RC_CONN_OPEN && !(c->state == RC_CONN_HTTP && b->kind == RC_OBUF_CTRL)) {
        rc_obuf_put(b);
        return -1;
    }
    rc_outq *q = outq_of(c);
    uint64_t limit = s->cfg->send_backlog_bytes;
    uint64_t behind = waiting_bytes(q);
    if (behind > limit && c->state == RC_CONN_OPEN) {
        if (b->kind == RC_OBUF_DATA && s->cfg->backlog_policy == RC_BACKLOG_DROP) {
            q->dropped++;
            rc_counter_inc(&s->stats.backlog_drops);
            rc_obuf_put(b);
            return -1;
        }
        /* Close frames always go in. Replies and pongs are never dropped
         * either, but a client that sends requests or pings and does not
         * read the answers is not allowed to grow them without end. */
        int over2 = behind > 2 * limit;
        int is_pong =
            b->kind == RC_OBUF_CTRL && b->len >= 1 && (b->data[0] & 0x0f) == RC_WS_OP_PONG;
        if (b->kind == RC_OBUF_DATA || (over2 && (b->kind == RC_OBUF_REPLY || is_pong))) {
            rc_obuf_put(b);
            rc_counter_inc(&s->stats.backlog_closes);
            char why[120];
            snprintf(why, sizeof(why),
                     "send backlog full: %llu bytes waiting to be read, limit %llu",
                     (unsigned long long)behind, (unsigned long long)limit);
            close_frame(s, c, RC_CLOSE_POLICY, why, 1);
            return -1;
        }
    }
    outq_push(q, b);
    backlog_add(s, q, b->len);
    rc_counter_inc(&s->stats.msgs_out);
    mark_dirty(s, c);
    return 0;
}

void rc_conn_send_text(rc_shard *s, rc_conn *c, const char *text, size_t len)
{
    rc_conn_send(s, c, rc_obuf_frame(RC_OBUF_REPLY, RC_WS_OP_TEXT, text, len));
}

void rc_conn_flush(rc_shard *s, rc_conn *c)
{
    rc_outq *q = c->out;
    if (!q || q->n == 0 || (c->flags & RC_CF_SEND) || c->state == RC_CONN_DEAD ||
        c->state == RC_CONN_FREE || c->state == RC_CONN_MOVING)
        return;
    if (rc_conn_is_virtual(s, c)) {
        rc_conn_proto(s, c)->drain(s, c);
        return;
    }
    rc_counter_add(&s->stats.frames_merged, rc_outq_merge(q));
    uint32_t k = RC_MIN(q->n, (uint32_t)RC_SEND_IOV);
    rc_send_arena *a = s->arena;
    if (a->nmsg == RC_ARENA_MSGS || a->niov + k > RC_ARENA_IOVS) {
        /* Full: let the kernel take what it holds, then start again. */
        io_uring_submit(&s->ring);
        a->nmsg = a->niov = 0;
    }
    struct iovec *iov = &a->iov[a->niov];
    struct msghdr *mh = &a->msg[a->nmsg++];
    a->niov += k;
    for (uint32_t i = 0; i < k; i++) {
        rc_obuf *b = q->items[(q->head + i) & (q->cap - 1)];
        uint32_t off = i == 0 ? q->off : 0;
        iov[i].iov_base = (void *)(b->data + off);
        iov[i].iov_len = b->len - off;
    }
    memset(mh, 0, sizeof(*mh));
    mh->msg_iov = iov;
    mh->msg_iovlen = k;
    q->inflight = k;
    struct io_uring_sqe *sqe = rc_ring_sqe(&s->ring);
    io_uring_prep_sendmsg(sqe, (int)rc_conn_id(s, c), mh, MSG_NOSIGNAL);
    sqe->flags |= IOSQE_FIXED_FILE;
    io_uring_sqe_set_data64(sqe, rc_ud(RC_UOP_SEND, c->gen, rc_conn_id(s, c)));
    c->flags |= RC_CF_SEND;
    rc_counter_inc(&s->stats.sends);
}

void rc_conn_sent(rc_shard *s, rc_conn *c, int res)
{
    c->flags &= (uint8_t)~RC_CF_SEND;
    rc_outq *q = c->out;
    if (res < 0 || !q) {
        if (res < 0 && res != -ECANCELED)
            rc_debug("shard=%d conn=%u send failed: %s", s->id, rc_conn_id(s, c), strerror(-res));
        if (c->state != RC_CONN_DEAD)
            rc_conn_abort(s, c);
        rc_conn_maybe_reap(s, c);
        return;
    }
    rc_counter_add(&s->stats.bytes_out, (uint64_t)res);
    size_t left = (size_t)res;
    q->inflight = 0;
    while (left && q->n) {
        rc_obuf *b = q->items[q->head];
        size_t rest = b->len - q->off;
        if (left < rest) { /* a short send: the rest goes in the next one */
            q->off += (uint32_t)left;
            backlog_add(s, q, -(int64_t)left);
            left = 0;
            break;
        }
        left -= rest;
        backlog_add(s, q, -(int64_t)rest);
        q->off = 0;
        q->head = (q->head + 1) & (q->cap - 1);
        q->n--;
        rc_obuf_put(b);
    }
    if (c->state == RC_CONN_DEAD) {
        rc_conn_maybe_reap(s, c);
        return;
    }
    if (c->state == RC_CONN_MOVING) {
        /* The move waited for this send (a "100 Continue"). An answer cut
         * in the middle cannot be followed by the other shard's. */
        if (q->n && q->off)
            rc_conn_abort(s, c);
        rc_conn_maybe_reap(s, c);
        return;
    }
    if (q->n == 0 && q->dropped && c->state == RC_CONN_OPEN) {
        char msg[160];
        snprintf(msg, sizeof(msg),
                 "%u messages to you were dropped: more than %llu bytes waited for you to read",
                 q->dropped, (unsigned long long)s->cfg->send_backlog_bytes);
        q->dropped = 0;
        rc_conn_error(s, c, RC_STR_NULL, RC_PERR_MESSAGES_DROPPED, msg, RC_STR_NULL);
    }
    if (q->n) {
        rc_conn_flush(s, c);
        return;
    }
    outq_free(s, c);
    if (c->state == RC_CONN_FINAL) {
        rc_conn_abort(s, c);
    } else if (c->state == RC_CONN_CLOSING) {
        /* Our close frame is out: wait briefly for the client's, so that
         * the socket closes with nothing unread in it (which would reset
         * the connection). There is no half-close here on purpose: a
         * shutdown on a direct descriptor runs in a worker thread and
         * resolves the slot late, possibly after the slot was reused. */
        c->state = RC_CONN_LINGER;
        rc_conn_timer(s, c, 2000);
    }
}

static void count_close(rc_shard *s, uint16_t code)
{
    rc_counter_inc(&s->stats.closes[rc_metrics_close_index(code)]);
}

/* Queues a close frame built from payload and moves to CLOSING. Messages
 * queued ahead of it still go out first, unless drop_data: a client closed
 * for not reading must be told now, not after a backlog it will not read. */
static void close_with_payload(rc_shard *s, rc_conn *c, const uint8_t *payload, size_t len,
                               int drop_data, const uint8_t *told, size_t told_len)
{
    if (drop_data)
        outq_drop_data(s, c);
    rc_obuf *b = rc_obuf_frame(RC_OBUF_CTRL, RC_WS_OP_CLOSE, payload, len);
    rc_conn_send(s, c, b);
    c->state = RC_CONN_CLOSING;
    /* A client that does not read will never take the close frame. */
    rc_conn_timer(s, c, 5000);
    if (c->flags & RC_CF_WS) {
        c->flags &= (uint8_t)~RC_CF_WS;
        rc_counter_set(&s->stats.ws_open, rc_counter_get(&s->stats.ws_open) - 1);
    }
    /* What the closing side said (told: the client's whole close payload,
     * of which only the code is echoed), for the protocol's closed. */
    s->closing_code = told_len >= 2 ? (uint16_t)(told[0] << 8 | told[1]) : 1005;
    size_t rl = told_len > 2 ? RC_MIN(told_len - 2, sizeof(s->closing_reason) - 1) : 0;
    if (rl)
        memcpy(s->closing_reason, told + 2, rl);
    s->closing_reason[rl] = '\0';
    rc_conn_proto(s, c)->closed(s, c);
}

static void close_frame(rc_shard *s, rc_conn *c, uint16_t code, const char *reason, int drop_data)
{
    if (c->state == RC_CONN_HTTP) {
        rc_conn_abort(s, c);
        return;
    }
    if (c->state != RC_CONN_OPEN)
        return;
    uint8_t frame[128];
    /* A close payload is at most 125 bytes, so its header is 2 bytes. */
    size_t n = rc_ws_close_frame(frame, code, reason);
    count_close(s, code);
    rc_debug("shard=%d conn=%u close code=%u reason=\"%s\"", s->id, rc_conn_id(s, c), code,
             reason ? reason : "");
    close_with_payload(s, c, frame + 2, n - 2, drop_data, frame + 2, n - 2);
}

void rc_conn_close(rc_shard *s, rc_conn *c, uint16_t code, const char *reason)
{
    close_frame(s, c, code, reason, 0);
}

static void cancel_op(rc_shard *s, rc_conn *c, unsigned op)
{
    struct io_uring_sqe *sqe = rc_ring_sqe(&s->ring);
    io_uring_prep_cancel64(sqe, rc_ud(op, c->gen, rc_conn_id(s, c)), 0);
    io_uring_sqe_set_data64(sqe, rc_ud(RC_UOP_CANCEL, c->gen, rc_conn_id(s, c)));
}

void rc_conn_abort(rc_shard *s, rc_conn *c)
{
    if (c->state == RC_CONN_FREE || c->state == RC_CONN_DEAD)
        return;
    if (c->flags & RC_CF_WS) {
        c->flags &= (uint8_t)~RC_CF_WS;
        rc_counter_set(&s->stats.ws_open, rc_counter_get(&s->stats.ws_open) - 1);
    }
    c->state = RC_CONN_DEAD;
    s->closing_code = 1006;
    snprintf(s->closing_reason, sizeof(s->closing_reason), "aborted");
    rc_conn_proto(s, c)->closed(s, c);
    rc_wheel_del(&s->wheel, rc_conn_id(s, c));
    /* Cancel by user_data, not by descriptor: the kernel finds a request by
     * its user_data in a hash table, while a cancel by descriptor scans every
     * pending request of the ring (measured: with 10k connections closing,
     * 84% of the shard's time went to that scan). */
    if (c->flags & RC_CF_RECV)
        cancel_op(s, c, RC_UOP_RECV);
    if (c->flags & RC_CF_SEND)
        cancel_op(s, c, RC_UOP_SEND);
    rc_conn_maybe_reap(s, c);
}

static void move_go(rc_shard *s, rc_conn *c);

void rc_conn_maybe_reap(rc_shard *s, rc_conn *c)
{
    if (c->state == RC_CONN_MOVING && !(c->flags & (RC_CF_RECV | RC_CF_SEND))) {
        move_go(s, c);
        return;
    }
    if (c->state != RC_CONN_DEAD || (c->flags & (RC_CF_RECV | RC_CF_SEND | RC_CF_REAP)))
        return;
    c->flags |= RC_CF_REAP;
    rc_idlist_push(&s->reap, &s->nreap, &s->cap_reap, rc_conn_id(s, c));
}

static void drop_sess(rc_shard *s, rc_conn *c)
{
    if (!c->sess)
        return;
    if (c->flags & RC_CF_WSSESS) {
        rc_ws_discard(&s->ws_pool, c->sess);
        rc_counter_set(&s->stats.ws_sessions, s->ws_pool.in_use);
    } else {
        free(c->sess);
    }
    c->sess = NULL;
    c->flags &= (uint8_t)~RC_CF_WSSESS;
}

void rc_conn_release(rc_shard *s, rc_conn *c)
{
    if (c->state != RC_CONN_DEAD)
        return;
    uint32_t id = rc_conn_id(s, c);
    rc_conn_proto(s, c)->closed(s, c);
    rc_req_drop(s, c);
    drop_sess(s, c);
    rc_wheel_del(&s->wheel, id);
    outq_free(s, c);
    free(c->auth);
    free(c->chans);
    if (s->pstate[id]) { /* written only when set: an untouched page stays untouched */
        free(s->pstate[id]);
        s->pstate[id] = NULL;
    }
    rc_shard_addr_release(s, c);
    if (c->deflate) {
        uint64_t n = rc_counter_get(&s->stats.deflate_conns) - 1;
        rc_counter_set(&s->stats.deflate_conns, n);
        rc_counter_set(&s->node->links[s->id].deflate_conns, n);
    }
    uint16_t gen = (uint16_t)(c->gen + 1);
    memset(c, 0, sizeof(*c));
    c->gen = gen;
    c->state = RC_CONN_FREE;
    s->open--;
    s->freed++;
    rc_counter_set(&s->stats.conns_open, s->open);
    if (id >= s->nsock) {
        s->vfree[s->nvfree++] = id; /* no socket to close */
        return;
    }
    struct io_uring_sqe *sqe = rc_ring_sqe(&s->ring);
    io_uring_prep_close_direct(sqe, id);
    io_uring_sqe_set_data64(sqe, rc_ud(RC_UOP_CLOSE, gen, id));
}

/* ---- WebSocket input ------------------------------------------------------ */

void rc_conn_ws_input(rc_shard *s, rc_conn *c, const uint8_t *data, size_t len)
{
    if (!c->sess) {
        c->sess = rc_ws_get(&s->ws_pool);
        c->flags |= RC_CF_WSSESS;
        if (c->deflate)
            rc_ws_set_deflate(c->sess, 1);
    }
    s->feeding = c;
    int r = rc_ws_feed(&s->ws_pool, c->sess, s, data, len);
    s->feeding = NULL;
    if (c->state != RC_CONN_OPEN || r == RC_WS_DONE) {
        drop_sess(s, c);
    } else if (r == RC_WS_IDLE) {
        rc_ws_put(&s->ws_pool, c->sess);
        c->sess = NULL;
        c->flags &= (uint8_t)~RC_CF_WSSESS;
    }
    rc_counter_set(&s->stats.ws_sessions, s->ws_pool.in_use);
}

/* Refills the message bucket; 1 when a message may pass. */
static int rate_take(rc_shard *s, rc_conn *c)
{
    uint32_t rate = s->cfg->msg_rate;
    if (!rate)
        return 1;
    /* The bucket is 16 bits wide (rc_conn stays 64 bytes): the burst is
     * capped at 65535, and the sum is formed in 64 bits so that a long idle
     * time cannot wrap it round to a small number. */
    uint64_t add = ((uint64_t)(s->now_tick - c->rate_tick) * rate * RC_TICK_MS) / 1000;
    if (add) {
        uint64_t cap = RC_MIN((uint64_t)s->cfg->msg_burst, (uint64_t)UINT16_MAX);
        c->tokens = (uint16_t)RC_MIN(cap, (uint64_t)c->tokens + add);
        c->rate_tick = s->now_tick;
    }
    if (!c->tokens)
        return 0;
    c->tokens--;
    return 1;
}

static void hook_text(void *ctx, const uint8_t *msg, size_t len)
{
    rc_shard *s = ctx;
    rc_conn_message(s, s->feeding, msg, len);
}

void rc_conn_message(rc_shard *s, rc_conn *c, const uint8_t *msg, size_t len)
{
    if (c->state != RC_CONN_OPEN)
        return;
    rc_counter_inc(&s->stats.msgs_in);
    int allowed = rate_take(s, c);
    if (!rc_req_busy(s, c))
        rc_conn_proto(s, c)->message(s, c, msg, len, 0, allowed);
    else if (rc_req_defer(s, c, msg, len, allowed) < 0)
        rc_conn_close(s, c, RC_CLOSE_POLICY, RC_REQ_FULL_REASON);
}

static void hook_binary(void *ctx, const uint8_t *msg, size_t len)
{
    rc_shard *s = ctx;
    rc_conn *c = s->feeding;
    if (c->state != RC_CONN_OPEN)
        return;
    rc_counter_inc(&s->stats.msgs_in);
    /* Not rate-limited nor held: a protocol without binary messages refuses
     * it at once. */
    rc_conn_proto(s, c)->message(s, c, msg, len, 1, 1);
}

static void hook_pong(void *ctx)
{
    rc_shard *s = ctx;
    s->feeding->flags &= (uint8_t)~RC_CF_PING;
}

static void hook_ctrl(void *ctx, int opcode, const uint8_t *payload, size_t len, int peer_closed)
{
    rc_shard *s = ctx;
    rc_conn *c = s->feeding;
    if (c->state != RC_CONN_OPEN)
        return;
    if (opcode == RC_WS_OP_PONG) {
        rc_conn_send(s, c, rc_obuf_frame(RC_OBUF_CTRL, RC_WS_OP_PONG, payload, len));
        return;
    }
    if (opcode != RC_WS_OP_CLOSE)
        return;
    if (peer_closed) {
        /* The client said goodbye: echo its code (RFC 6455 5.5.1). */
        uint16_t code = len >= 2 ? (uint16_t)((payload[0] << 8) | payload[1]) : 0;
        count_close(s, code ? code : RC_CLOSE_NORMAL);
        close_with_payload(s, c, payload, len >= 2 ? 2 : 0, 0, payload, len);
        c->state = RC_CONN_FINAL; /* nothing more to wait for */
        return;
    }
    /* wslay found an error; say which, with a reason the client can read. */
    uint16_t code = len >= 2 ? (uint16_t)((payload[0] << 8) | payload[1]) : RC_CLOSE_PROTOCOL;
    char reason[124];
    if (len > 2) {
        /* The session's own refusals (ws/session.h) come with their reason;
         * wslay's never do. */
        snprintf(reason, sizeof(reason), "%.*s", (int)RC_MIN(len - 2, sizeof(reason) - 1),
                 (const char *)payload + 2);
        rc_conn_close(s, c, code, reason);
        return;
    }
    switch (code) {
    case RC_CLOSE_BAD_DATA:
        snprintf(reason, sizeof(reason), "invalid UTF-8 in a text message");
        break;
    case RC_CLOSE_TOO_BIG:
        snprintf(reason, sizeof(reason), "message too big: the limit is %u bytes",
                 s->cfg->max_message_bytes);
        break;
    default:
        code = RC_CLOSE_PROTOCOL;
        snprintf(reason, sizeof(reason), "protocol error");
        break;
    }
    rc_conn_close(s, c, code, reason);
}

static void hook_inflate(void *ctx, int outcome)
{
    rc_shard *s = ctx;
    switch (outcome) {
    case RC_WS_INFLATED: rc_counter_inc(&s->stats.inflated); break;
    case RC_WS_REF_TOO_BIG: rc_counter_inc(&s->stats.inflate_refused[RC_PMD_REF_TOO_BIG]); break;
    case RC_WS_REF_BAD: rc_counter_inc(&s->stats.inflate_refused[RC_PMD_REF_BAD]); break;
    default: rc_counter_inc(&s->stats.inflate_refused[RC_PMD_REF_RSV1]); break;
    }
}

const rc_ws_hooks rc_conn_ws_hooks = {
    .text = hook_text,
    .binary = hook_binary,
    .pong = hook_pong,
    .ctrl = hook_ctrl,
    .inflate = hook_inflate,
};

/* ---- heartbeats and token expiry ------------------------------------------ */

static int told(const rc_shard *s, const rc_conn *c)
{
    uint32_t id = rc_conn_id(s, c);
    return s->refresh_told[id / 8] >> (id % 8) & 1;
}

static void set_told(rc_shard *s, const rc_conn *c, int on)
{
    uint32_t id = rc_conn_id(s, c);
    if (on)
        s->refresh_told[id / 8] |= (uint8_t)(1u << (id % 8));
    else
        s->refresh_told[id / 8] &= (uint8_t) ~(1u << (id % 8));
}

/* Seconds before exp at which c is asked for a new token: 0 when it is not
 * (no exp, notice off, or asked already). */
static int64_t notice_due(const rc_shard *s, const rc_conn *c)
{
    if (!c->auth || !c->auth->exp || !s->cfg->refresh_notice_s || told(s, c))
        return 0;
    return s->cfg->refresh_notice_s;
}

/* Sets the timer for the next thing due on an open connection. */
static void schedule(rc_shard *s, rc_conn *c)
{
    uint64_t ms = UINT64_MAX;
    uint32_t interval = s->cfg->ping_interval_ms;
    if (rc_conn_proto(s, c)->heartbeat) {
        uint32_t h = rc_conn_proto(s, c)->heartbeat(s, c, 0);
        if (h != UINT32_MAX)
            ms = h;
    } else if (interval) {
        uint64_t idle = (uint64_t)(s->now_tick - c->last_rx) * RC_TICK_MS;
        ms = (c->flags & RC_CF_PING) ? s->cfg->pong_timeout_ms
                                     : (idle >= interval ? RC_TICK_MS : interval - idle);
    }
    if (c->auth && c->auth->exp) {
        /* Saturated: exp may be far away (INT64_MAX); the wheel takes at
         * most UINT32_MAX / 2 ms, and the timer is set again when it fires. */
        int64_t left =
            rc_sat_mul(rc_sat_sub(rc_sat_sub(c->auth->exp, notice_due(s, c)), rc_wall_s()), 1000);
        ms = RC_MIN(ms, (uint64_t)RC_MAX(left, (int64_t)RC_TICK_MS));
    }
    if (ms == UINT64_MAX)
        rc_wheel_del(&s->wheel, rc_conn_id(s, c));
    else
        rc_conn_timer(s, c, (uint32_t)RC_MIN(ms, (uint64_t)UINT32_MAX / 2));
}

void rc_conn_on_timer(rc_shard *s, rc_conn *c)
{
    if (c->auth && c->auth->exp && rc_wall_s() >= c->auth->exp) {
        rc_counter_inc(&s->stats.token_expiries);
        rc_conn_close(s, c, RC_CLOSE_TOKEN_EXPIRED, "token expired: reconnect with a new token");
        return;
    }
    int64_t notice = notice_due(s, c);
    if (notice && rc_wall_s() >= c->auth->exp - notice) {
        set_told(s, c, 1);
        rc_counter_inc(&s->stats.refresh_asked);
        rc_conn_proto(s, c)->refresh_due(s, c, c->auth->exp - rc_wall_s());
    }
    uint32_t interval = s->cfg->ping_interval_ms;
    if (rc_conn_proto(s, c)->heartbeat) {
        rc_conn_proto(s, c)->heartbeat(s, c, 1);
        if (c->state != RC_CONN_OPEN)
            return;
    } else if (interval) {
        uint64_t idle = (uint64_t)(s->now_tick - c->last_rx) * RC_TICK_MS;
        if (c->flags & RC_CF_PING) {
            if (idle >= s->cfg->pong_timeout_ms) {
                rc_counter_inc(&s->stats.heartbeat_timeouts);
                rc_conn_close(s, c, RC_CLOSE_HEARTBEAT, "heartbeat timeout: no pong");
                return;
            }
            c->flags &= (uint8_t)~RC_CF_PING; /* it spoke since: alive */
        } else if (idle >= interval) {
            rc_conn_send(s, c, rc_obuf_frame(RC_OBUF_CTRL, RC_WS_OP_PING, "rc", 2));
            rc_counter_inc(&s->stats.pings_sent);
            c->flags |= RC_CF_PING;
        }
    }
    schedule(s, c);
}

void rc_conn_new_token(rc_shard *s, rc_conn *c)
{
    set_told(s, c, 0);
    schedule(s, c);
}

/* Called by the HTTP side once the 101 is queued. */
void rc_conn_opened(rc_shard *s, rc_conn *c, int proto)
{
    c->state = RC_CONN_OPEN;
    set_told(s, c, 0);
    c->proto = (uint8_t)proto & 0x7;
    c->flags |= RC_CF_WS;
    c->tokens = (uint16_t)RC_MIN(s->cfg->msg_burst, 65535u);
    c->rate_tick = s->now_tick;
    c->last_rx = s->now_tick;
    rc_counter_set(&s->stats.ws_open, rc_counter_get(&s->stats.ws_open) + 1);
    schedule(s, c);
    rc_conn_proto(s, c)->opened(s, c);
}

/* ---- virtual connections ---------------------------------------------------- */

void rc_conn_claim(rc_shard *s, rc_conn *c, int state)
{
    rc_assert(c->state == RC_CONN_FREE);
    uint16_t gen = c->gen;
    if (gen == 0) /* a page given back reads 0: start from its floor */
        gen = s->page_gen[rc_conn_id(s, c) / s->conns_per_page];
    memset(c, 0, sizeof(*c));
    c->gen = gen;
    c->state = (uint8_t)state & 0xf;
    c->addr = RC_NO_CONN;
    c->last_rx = s->now_tick;
    rc_tnode_init(&c->timer);
    s->open++;
    rc_counter_set(&s->stats.conns_open, s->open);
}

rc_conn *rc_conn_new_virtual(rc_shard *s, int proto)
{
    if (!s->nvfree)
        return NULL;
    rc_conn *c = &s->conns[s->vfree[--s->nvfree]];
    rc_conn_claim(s, c, RC_CONN_FREE);
    rc_conn_opened(s, c, proto);
    return c;
}

rc_obuf *rc_conn_pop(rc_shard *s, rc_conn *c)
{
    rc_outq *q = c->out;
    if (!q || q->n == 0)
        return NULL;
    rc_obuf *b = q->items[q->head];
    backlog_add(s, q, -(int64_t)(b->len - q->off));
    q->off = 0;
    q->head = (q->head + 1) & (q->cap - 1);
    q->n--;
    if (q->n == 0 && q->dropped == 0)
        outq_free(s, c); /* an idle session holds none */
    return b;
}

/* ---- moving a connection to another shard ------------------------------------- */

void rc_conn_move(rc_shard *s, rc_conn *c, int shard)
{
    rc_assert(c->state == RC_CONN_HTTP && c->sess && shard != s->id && shard < s->node->nshards);
    c->state = RC_CONN_MOVING;
    c->tokens = (uint16_t)shard;
    ((rc_httpbuf *)c->sess)->busy = 1;
    rc_wheel_del(&s->wheel, rc_conn_id(s, c));
    if (c->flags & RC_CF_RECV)
        cancel_op(s, c, RC_UOP_RECV); /* what it still reads goes along */
    rc_conn_maybe_reap(s, c);
}

void rc_conn_moving_input(rc_shard *s, rc_conn *c, const uint8_t *data, size_t len)
{
    rc_httpbuf *hb = c->sess;
    size_t limit = (size_t)s->cfg->max_header_bytes + s->cfg->max_body_bytes;
    len = RC_MIN(len, limit - RC_MIN(limit, hb->len));
    if (hb->len + len > hb->cap) {
        hb = rc_realloc(hb, sizeof(*hb) + hb->len + len);
        hb->cap = hb->len + (uint32_t)len;
        c->sess = hb;
    }
    memcpy(hb->buf + hb->len, data, len);
    hb->len += (uint32_t)len;
}

/* Nothing is in flight on c: its socket goes to the other shard's ring,
 * which finds the request's bytes in the completion's user_data. */
static void move_go(rc_shard *s, rc_conn *c)
{
    rc_shard *to = s->node->shards[c->tokens];
    uint64_t ptr = (uint64_t)(uintptr_t)c->sess;
    rc_assert(ptr >> 56 == 0);
    struct io_uring_sqe *sqe = rc_ring_sqe(&s->ring);
    io_uring_prep_rw(IORING_OP_MSG_RING, sqe, to->ring.ring_fd, NULL, 0,
                     ((uint64_t)RC_UOP_MOVED << 56) | ptr);
    sqe->addr = IORING_MSG_SEND_FD;
    sqe->addr3 = rc_conn_id(s, c);
    sqe->file_index = IORING_FILE_INDEX_ALLOC;
    io_uring_sqe_set_data64(sqe, rc_ud(RC_UOP_MOVE, c->gen, rc_conn_id(s, c)));
    c->flags |= RC_CF_SEND; /* in flight */
}

int rc_conn_moved_out(rc_shard *s, rc_conn *c, int res)
{
    c->flags &= (uint8_t)~RC_CF_SEND;
    if (res >= 0) {
        c->sess = NULL; /* the other shard has the bytes now */
        rc_counter_inc(&s->stats.conns_moved);
        c->state = RC_CONN_DEAD; /* the other shard holds the socket too */
        rc_conn_maybe_reap(s, c);
        return 0;
    }
    /* The socket is still ours, and so are the request's bytes. With
     * -EOVERFLOW the kernel did install it in the other ring's table but
     * could not post the completion that tells that shard: its slot holds
     * the socket until the node stops, and which slot it is, is not said
     * (a kernel limit of IORING_MSG_SEND_FD with IORING_FILE_INDEX_ALLOC). */
    rc_warn("shard=%d conn=%u could not move to shard %u: %s%s", s->id, rc_conn_id(s, c), c->tokens,
            strerror(-res),
            res == -EOVERFLOW ? " (its ring's completions are full: one of its slots is lost)"
                              : "");
    rc_counter_inc(&s->stats.conns_move_failed);
    c->state = RC_CONN_HTTP; /* to be answered here */
    return -1;
}
