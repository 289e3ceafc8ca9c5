/* Thread: the shard that owns the pool (contexts are lent per shard). */
#include "ws/session.h"

#include <string.h>
#include <wslay/wslay.h>

#include "ws/deflate.h"
#include "ws/frame.h"

struct rc_ws_sess {
    wslay_event_context_ptr ctx;
    rc_ws_pool *pool;
    rc_ws_sess *next;  /* free list */
    const uint8_t *in; /* bytes being fed */
    size_t in_len;
    /* Our own scan of frame boundaries over the same bytes. */
    uint64_t remaining; /* payload bytes of the current frame still to come */
    uint64_t msg_total; /* payload bytes declared so far by the open message */
    uint8_t hdr[14];
    uint8_t hdr_have;
    uint8_t frag_open;        /* a fragmented data message is open */
    uint8_t too_big;          /* a data frame header declared more than max_msg */
    uint8_t cur_ctrl;         /* the frame being scanned is a short control frame ... */
    uint8_t cur_set_close;    /* ... (the first close: it set seen_close) ... */
    size_t cur_start;         /* ... which starts at this offset of the current feed */
    uint8_t bad_close;        /* a close frame with a 1-byte body: wslay echoes it as a
                                 normal close, RFC 6455 5.5.1 wants 1002 */
    uint8_t seen_close;       /* a close frame was scanned: what follows is never read */
    uint8_t deflate;          /* the connection negotiated permessage-deflate */
    uint8_t bad_rsv1;         /* a frame header had RSV1 where it is not allowed ... */
    const char *bad_rsv1_why; /* ... and this is why */
    uint8_t failed;           /* a message was refused: nothing more is handed on */
    /* wslay mishandles a control frame that arrives in pieces (a close's
     * reason was found garbled or judged by its first part only), so an
     * incomplete control frame is held back here and handed over whole. */
    uint8_t pend[2 + 8 + 4 + 125];
    uint8_t pend_len;
    /* Control frames wslay wants to send, collected by send_cb. */
    size_t clen;
    uint8_t cbuf[512];
};

static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
                       void *user_data)
{
    rc_ws_sess *s = user_data;
    if (s->in_len == 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    size_t n = RC_MIN(len, s->in_len);
    memcpy(buf, s->in, n);
    s->in += n;
    s->in_len -= n;
    return (ssize_t)n;
}

static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                       void *user_data)
{
    rc_ws_sess *s = user_data;
    size_t room = sizeof(s->cbuf) - s->clen;
    if (room == 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    size_t n = RC_MIN(room, len);
    memcpy(s->cbuf + s->clen, data, n);
    s->clen += n;
    return (ssize_t)n;
}

static int genmask_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, void *user_data)
{
    /* Servers never mask; wslay asks only in client mode. */
    memset(buf, 0, len);
    return 0;
}

/* Refuses the message being read: a close with code and reason, and
 * nothing more from this connection is handed on. */
static void refuse(rc_ws_sess *s, uint16_t code, const char *reason, int outcome)
{
    s->failed = 1;
    wslay_event_queue_close(s->ctx, code, (const uint8_t *)reason, strlen(reason));
    if (s->pool->hooks->inflate)
        s->pool->hooks->inflate(s->pool->cur, outcome);
}

/* A compressed message (RSV1): inflated with the pool's inflater into *msg,
 * *len; 0, or -1 when it was refused. */
static int inflate_msg(rc_ws_sess *s, int text, const uint8_t **msg, size_t *len)
{
    rc_ws_pool *pool = s->pool;
    if (!pool->inflater && !(pool->inflater = rc_pmd_inflater_new())) {
        refuse(s, RC_CLOSE_INTERNAL, "no memory to inflate the message", RC_WS_REF_BAD);
        return -1;
    }
    int r = rc_pmd_inflate(pool->inflater, *msg, *len, pool->max_msg, msg, len);
    if (r == RC_PMD_TOO_BIG) {
        char why[96];
        snprintf(why, sizeof(why), "message too big: it inflates past the limit of %llu bytes",
                 (unsigned long long)pool->max_msg);
        refuse(s, RC_CLOSE_TOO_BIG, why, RC_WS_REF_TOO_BIG);
        return -1;
    }
    if (r != RC_PMD_OK) {
        refuse(s, RC_CLOSE_BAD_DATA, "invalid compressed data (permessage-deflate)", RC_WS_REF_BAD);
        return -1;
    }
    if (text && !rc_utf8_valid(*msg, *len)) {
        refuse(s, RC_CLOSE_BAD_DATA, "invalid UTF-8 in a compressed text message", RC_WS_REF_BAD);
        return -1;
    }
    if (pool->hooks->inflate)
        pool->hooks->inflate(pool->cur, RC_WS_INFLATED);
    return 0;
}

static void msg_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                   void *user_data)
{
    rc_ws_sess *s = user_data;
    const rc_ws_hooks *h = s->pool->hooks;
    if (s->failed)
        return;
    const uint8_t *msg = arg->msg;
    size_t len = arg->msg_length;
    int data = arg->opcode == WSLAY_TEXT_FRAME || arg->opcode == WSLAY_BINARY_FRAME;
    /* The scan let RSV1 through only on the first frame of a data message
     * of a connection that negotiated permessage-deflate. */
    if (data && (arg->rsv & WSLAY_RSV1_BIT) &&
        inflate_msg(s, arg->opcode == WSLAY_TEXT_FRAME, &msg, &len) < 0)
        return;
    switch (arg->opcode) {
    case WSLAY_TEXT_FRAME: h->text(s->pool->cur, msg, len); break;
    case WSLAY_BINARY_FRAME: h->binary(s->pool->cur, msg, len); break;
    case WSLAY_PONG: h->pong(s->pool->cur); break;
    default: /* ping and close are answered through send_cb */ break;
    }
}

static const struct wslay_event_callbacks wslay_cbs = {
    .recv_callback = recv_cb,
    .send_callback = send_cb,
    .genmask_callback = genmask_cb,
    .on_msg_recv_callback = msg_cb,
};

void rc_ws_pool_init(rc_ws_pool *pool, const rc_ws_hooks *hooks, uint64_t max_msg,
                     uint32_t max_free)
{
    memset(pool, 0, sizeof(*pool));
    pool->hooks = hooks;
    pool->max_msg = max_msg;
    pool->max_free = max_free;
}

static void sess_destroy(rc_ws_sess *s)
{
    wslay_event_context_free(s->ctx);
    free(s);
}

void rc_ws_pool_free(rc_ws_pool *pool)
{
    rc_pmd_free(pool->inflater);
    pool->inflater = NULL;
    while (pool->free_list) {
        rc_ws_sess *s = pool->free_list;
        pool->free_list = s->next;
        sess_destroy(s);
    }
    pool->n_free = 0;
}

rc_ws_sess *rc_ws_get(rc_ws_pool *pool)
{
    rc_ws_sess *s = pool->free_list;
    if (s) {
        pool->free_list = s->next;
        pool->n_free--;
    } else {
        s = rc_calloc(1, sizeof(*s));
        s->pool = pool;
        if (wslay_event_context_server_init(&s->ctx, &wslay_cbs, s) != 0)
            rc_assert(!"wslay context allocation failed");
        wslay_event_config_set_max_recv_msg_length(s->ctx, pool->max_msg);
        pool->created++;
    }
    s->next = NULL;
    s->deflate = 0;
    wslay_event_config_set_allowed_rsv_bits(s->ctx, WSLAY_RSV_NONE);
    pool->in_use++;
    return s;
}

void rc_ws_set_deflate(rc_ws_sess *s, int on)
{
    s->deflate = on != 0;
    wslay_event_config_set_allowed_rsv_bits(s->ctx, on ? WSLAY_RSV1_BIT : WSLAY_RSV_NONE);
}

void rc_ws_put(rc_ws_pool *pool, rc_ws_sess *s)
{
    pool->in_use--;
    if (pool->n_free >= pool->max_free) {
        sess_destroy(s);
        return;
    }
    s->next = pool->free_list;
    pool->free_list = s;
    pool->n_free++;
}

void rc_ws_discard(rc_ws_pool *pool, rc_ws_sess *s)
{
    pool->in_use--;
    sess_destroy(s);
}

/* Would a data frame header declaring plen bytes take its message past
 * max_msg? Only well-formed sequences are judged here (a text or binary frame
 * outside a message, a continuation inside one, a length without the
 * forbidden top bit): wslay reports the others as protocol errors. Nothing
 * after a client's close is read, so nothing after it is judged either. */
static int declares_too_much(const rc_ws_sess *s, int opcode, uint64_t plen)
{
    if (s->seen_close || (plen >> 63))
        return 0;
    uint64_t before;
    if ((opcode == 0x1 || opcode == 0x2) && !s->frag_open)
        before = 0;
    else if (opcode == 0x0 && s->frag_open)
        before = s->msg_total;
    else
        return 0;
    return plen > s->pool->max_msg || before > s->pool->max_msg - plen;
}

/* Why RSV1 on a frame of this opcode is a protocol error, or NULL when it
 * marks a compressed message (RFC 7692 section 6). Reserved opcodes are
 * left to wslay. */
static const char *bad_rsv1(const rc_ws_sess *s, int opcode)
{
    if ((opcode > 0x2 && opcode < 0x8) || opcode > 0xa)
        return NULL;
    if (!s->deflate)
        return "RSV1 set but permessage-deflate was not negotiated";
    if (opcode >= 0x8)
        return "RSV1 set on a control frame";
    if (opcode == 0x0)
        return "RSV1 set on a continuation frame";
    return NULL;
}

/* Advances the boundary scan over data[0..len). Returns len, or the offset
 * where an incomplete control frame of at most 125 payload bytes starts:
 * those bytes are to be held back (the scan state is as before them), or
 * the offset of a data frame header that declares too much (too_big set:
 * the bytes from there on are never read). */
static size_t scan(rc_ws_sess *s, const uint8_t *data, size_t len)
{
    size_t off = 0, start = 0;
    int in_frame = s->hdr_have > 0; /* a header began in an earlier feed */
    while (off < len) {
        if (s->remaining) {
            size_t n = (size_t)RC_MIN((uint64_t)(len - off), s->remaining);
            s->remaining -= n;
            off += n;
            if (s->remaining == 0)
                s->cur_ctrl = 0;
            continue;
        }
        if (s->hdr_have == 0) {
            start = off;
            in_frame = 0;
        }
        s->hdr[s->hdr_have++] = data[off++];
        if (s->hdr_have < 2)
            continue;
        uint8_t len7 = s->hdr[1] & 0x7f;
        size_t need = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + ((s->hdr[1] & 0x80) ? 4 : 0);
        if (s->hdr_have < need)
            continue;
        uint64_t plen = len7;
        if (len7 == 126)
            plen = ((uint64_t)s->hdr[2] << 8) | s->hdr[3];
        else if (len7 == 127) {
            plen = 0;
            for (int i = 0; i < 8; i++)
                plen = (plen << 8) | s->hdr[2 + i];
        }
        int opcode = s->hdr[0] & 0x0f, fin = s->hdr[0] >> 7;
        const char *rsv_why =
            (s->hdr[0] & RC_WS_RSV1) && !s->seen_close ? bad_rsv1(s, opcode) : NULL;
        if (rsv_why) {
            /* Refused on its header, as wslay would not say why. */
            s->bad_rsv1 = 1;
            s->bad_rsv1_why = rsv_why;
            s->hdr_have = 0;
            return start;
        }
        if (declares_too_much(s, opcode, plen)) {
            /* Refused on its header: nothing from here on is fed to wslay,
             * which would wait for the payload before judging its size. */
            s->too_big = 1;
            s->hdr_have = 0;
            return start;
        }
        if (opcode < 0x8) { /* data or continuation: fin closes the message */
            s->frag_open = !fin;
            s->msg_total = fin ? 0 : s->msg_total + plen;
        }
        s->cur_set_close = opcode == 0x8 && !s->seen_close;
        if (s->cur_set_close) {
            s->seen_close = 1;
            s->bad_close = plen == 1;
        }
        s->remaining = plen;
        s->cur_ctrl = opcode >= 0x8 && plen <= 125 && !in_frame;
        s->cur_start = start;
        s->hdr_have = 0;
    }
    /* An unfinished header that may be a control frame's, or an unfinished
     * control frame: hold it back, and forget having scanned it. */
    if (s->hdr_have && !in_frame && (s->hdr[0] & 0x0f) >= 0x8) {
        s->hdr_have = 0;
        return start;
    }
    if (s->remaining && s->cur_ctrl) {
        if (s->cur_set_close) {
            s->seen_close = 0;
            s->bad_close = 0;
        }
        s->remaining = 0;
        s->cur_ctrl = 0;
        return s->cur_start;
    }
    return len;
}

/* Hands the control frames wslay produced to the connection. They are whole
 * unmasked frames of at most 125 payload bytes, so their header is 2 bytes. */
static void flush_ctrl(rc_ws_sess *s, void *conn)
{
    /* A malformed close is reported as an error, not echoed. */
    int peer_closed = wslay_event_get_close_received(s->ctx) && !s->bad_close;
    /* cbuf is emptied of whole frames every round, so each round makes
     * progress; wslay holds one pong per ping it read in this feed. */
    while (wslay_event_want_write(s->ctx)) {
        int r = wslay_event_send(s->ctx);
        size_t off = 0;
        while (s->clen - off >= 2) {
            size_t plen = s->cbuf[off + 1] & 0x7f;
            if (s->clen - off < 2 + plen)
                break;
            s->pool->hooks->ctrl(conn, s->cbuf[off] & 0x0f, s->cbuf + off + 2, plen, peer_closed);
            off += 2 + plen;
        }
        memmove(s->cbuf, s->cbuf + off, s->clen - off);
        s->clen -= off;
        if (r != 0)
            break;
    }
}

int rc_ws_feed(rc_ws_pool *pool, rc_ws_sess *s, void *conn, const uint8_t *data, size_t len)
{
    /* Bytes of a control frame held back from the last feed go first. */
    uint8_t *joined = NULL;
    if (s->pend_len) {
        joined = rc_malloc(s->pend_len + len);
        memcpy(joined, s->pend, s->pend_len);
        memcpy(joined + s->pend_len, data, len);
        data = joined;
        len += s->pend_len;
        s->pend_len = 0;
    }
    size_t cut = scan(s, data, len);
    if (cut < len && !s->too_big && !s->bad_rsv1) {
        rc_assert(len - cut <= sizeof(s->pend));
        memcpy(s->pend, data + cut, len - cut);
        s->pend_len = (uint8_t)(len - cut);
    }
    pool->cur = conn;
    s->in = data;
    s->in_len = cut;
    int r = cut ? wslay_event_recv(s->ctx) : 0;
    /* The bytes before an oversized header were read like any others; unless
     * they ended the session, the header is answered as wslay answers a
     * message that grew too big: a close with 1009. */
    if (s->too_big && r == 0 && wslay_event_get_read_enabled(s->ctx) &&
        !wslay_event_get_close_sent(s->ctx) && !s->seen_close && !s->failed)
        wslay_event_queue_close(s->ctx, WSLAY_CODE_MESSAGE_TOO_BIG, NULL, 0);
    else if (s->bad_rsv1 && r == 0 && wslay_event_get_read_enabled(s->ctx) &&
             !wslay_event_get_close_sent(s->ctx) && !s->seen_close && !s->failed)
        refuse(s, RC_CLOSE_PROTOCOL, s->bad_rsv1_why, RC_WS_REF_RSV1);
    flush_ctrl(s, conn);
    pool->cur = NULL;
    free(joined);
    if (r != 0 || s->too_big || s->bad_rsv1 || s->failed || !wslay_event_get_read_enabled(s->ctx))
        return RC_WS_DONE;
    if (s->remaining == 0 && s->hdr_have == 0 && s->pend_len == 0 && !s->frag_open &&
        s->clen == 0 && !wslay_event_want_write(s->ctx))
        return RC_WS_IDLE;
    return RC_WS_MORE;
}
