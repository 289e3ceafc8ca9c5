/* The worker: one io_uring ring, a share of the connections, and the
 * client-side connection life cycle (connect, handshake, frames, close).
 *
 * Sockets live only in the ring's registered file table: socket() and
 * bind() give a plain fd, io_uring_register_files_update installs it at a
 * free slot and the fd is closed at once, so 100k connections never touch the
 * process's 20000-fd limit. Everything after that uses IOSQE_FIXED_FILE. */
#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "perf/ringload/rl.h"
#include "ws/deflate.h"
#include "ws/frame.h"

enum { OP_CONNECT = 1, OP_RECV, OP_SEND, OP_CLOSE, OP_IGNORE };

#define BGID          1
#define BUF_COUNT     4096
#define BUF_SIZE      4096
#define RING_SQ       4096
#define MAX_MSG       (16u << 20)
#define CLOSE_WAIT_NS 3000000000ull

rl_thr *rl_thrs;

static uint64_t rnd(rl_thr *th)
{
    uint64_t x = th->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return th->rng = x;
}

void rl_code_count(rl_codecount *tab, uint32_t code)
{
    for (int i = 0; i < RL_CODES; i++) {
        if (tab[i].n && tab[i].code == code) {
            RL_INC(tab[i].n);
            return;
        }
        if (tab[i].n == 0) {
            tab[i].code = code;
            RL_INC(tab[i].n);
            return;
        }
    }
}

int rl_thr_init(rl_thr *th, int id, uint32_t target, uint32_t first_index, uint32_t cap)
{
    memset(th, 0, sizeof(*th));
    th->id = id;
    th->target = target;
    th->first_index = first_index;
    th->cap = cap;
    th->rng = 0x9e3779b97f4a7c15ull ^ ((uint64_t)id << 32) ^ rc_now_ns();
    rl_hist_init(&th->hist);
    th->conns = rc_calloc(cap, sizeof(rl_conn));
    th->freel = rc_malloc(cap * sizeof(uint32_t));
    for (uint32_t i = 0; i < cap; i++) {
        th->conns[i].slot = i;
        th->freel[i] = cap - 1 - i;
    }
    th->nfree = cap;
    th->hold_cap = 4096;
    th->hold = rc_malloc(th->hold_cap * sizeof(uint64_t));
    th->hold_t = rc_malloc(th->hold_cap * sizeof(uint64_t));
    return 0;
}

static struct io_uring_sqe *sqe_for(rl_thr *th)
{
    return rc_ring_sqe(&th->ring);
}

static void set_ud(struct io_uring_sqe *s, rl_conn *c, unsigned op)
{
    io_uring_sqe_set_data64(s, rc_ud(op, c->gen, c->slot));
}

static void arm_recv(rl_thr *th, rl_conn *c)
{
    struct io_uring_sqe *s = sqe_for(th);
    io_uring_prep_recv_multishot(s, (int)c->slot, NULL, 0, 0);
    s->flags |= IOSQE_FIXED_FILE | IOSQE_BUFFER_SELECT;
    s->buf_group = BGID;
    set_ud(s, c, OP_RECV);
    c->flags |= RL_CF_RECV_ARMED;
}

static void obuf_free(rl_obuf *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

static void release(rl_thr *th, rl_conn *c)
{
    obuf_free(&c->fly);
    obuf_free(&c->pend);
    free(c->hs);
    c->hs = NULL;
    rl_wsdec_free(&c->dec);
    c->state = RL_ST_FREE;
    c->flags = 0;
    c->gen++;
    th->freel[th->nfree++] = c->slot;
}

static void maybe_release(rl_thr *th, rl_conn *c)
{
    if (c->state == RL_ST_DEAD && (c->flags & RL_CF_CLOSE_DONE) &&
        !(c->flags & (RL_CF_RECV_ARMED | RL_CF_SEND_BUSY)))
        release(th, c);
}

static int ending(void)
{
    return rl_phase() == RL_PH_STOP;
}

/* Closes the socket; the slot is freed once every operation on it is
 * back. how: 0 clean (we closed, or the run ends), 1 failure before open,
 * 2 the peer or the network ended an open connection. */
static void kill_conn(rl_thr *th, rl_conn *c, int how, uint32_t close_code)
{
    if (c->state == RL_ST_DEAD || c->state == RL_ST_FREE)
        return;
    if (c->flags & RL_CF_GONE) { /* counted when the server's close came */
        c->state = RL_ST_DEAD;
        goto close;
    }
    int was_open = c->state == RL_ST_OPEN || c->state == RL_ST_CLOSING;
    if (c->state == RL_ST_CONNECTING || c->state == RL_ST_HANDSHAKE)
        th->inflight--;
    if (was_open && c->role == RL_ROLE_STAY)
        RL_DEC(th->st.open_now);
    if (how == 1) {
        if (c->role == RL_ROLE_CHURN)
            RL_INC(th->st.churn_failed);
        else if (c->role == RL_ROLE_PUB)
            RL_INC(th->st.pub_failed);
        else
            RL_INC(th->st.failed);
    } else if (how == 2 && !ending()) {
        if (c->role == RL_ROLE_CHURN) {
            RL_INC(th->st.churn_failed);
        } else {
            RL_INC(th->st.closed_unexpected);
            rl_code_count(th->st.close, close_code);
        }
    } else if (how == 0 && c->role == RL_ROLE_CHURN) {
        RL_INC(th->st.churn_done);
    }
    c->state = RL_ST_DEAD;
close:
    if (th->pub == c)
        th->pub = NULL;
    if (c->flags & RL_CF_RECV_ARMED) {
        struct io_uring_sqe *s = rc_ring_sqe(&th->ring);
        io_uring_prep_cancel64(s, rc_ud(OP_RECV, c->gen, c->slot), 0);
        io_uring_sqe_set_data64(s, rc_ud(OP_IGNORE, 0, 0));
    }
    struct io_uring_sqe *s = rc_ring_sqe(&th->ring);
    io_uring_prep_close_direct(s, c->slot);
    set_ud(s, c, OP_CLOSE);
}

static void fail_errno(rl_thr *th, rl_conn *c, int err)
{
    switch (err) {
    case ECONNREFUSED: RL_INC(th->st.e_refused); break;
    case ETIMEDOUT: RL_INC(th->st.e_timeout); break;
    case ECONNRESET:
    case EPIPE: RL_INC(th->st.e_reset); break;
    case EADDRNOTAVAIL:
    case EADDRINUSE: RL_INC(th->st.e_addr); break;
    default: RL_INC(th->st.e_other); break;
    }
    kill_conn(th, c, 1, 0);
}

static void start_failed(rl_thr *th, int role)
{
    if (role == RL_ROLE_CHURN)
        RL_INC(th->st.churn_failed);
    else if (role == RL_ROLE_PUB)
        RL_INC(th->st.pub_failed);
    else
        RL_INC(th->st.failed);
}

rl_conn *rl_conn_start(rl_thr *th, int role, uint32_t index)
{
    if (th->nfree == 0)
        return NULL;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        RL_INC(th->st.e_other);
        start_failed(th, role);
        return NULL;
    }
    int one = 1;
    /* The port is picked at connect time from the whole 4-tuple, so each
     * source address gives its own ~28k ports to the target. */
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct sockaddr_in src = {.sin_family = AF_INET};
    uint32_t k = index % rl_cfg_g.src_addrs;
    src.sin_addr.s_addr = htonl(0x7f000002u + k);
    if (bind(fd, (struct sockaddr *)&src, sizeof(src)) != 0) {
        int e = errno;
        close(fd);
        if (e == EADDRINUSE || e == EADDRNOTAVAIL)
            RL_INC(th->st.e_addr);
        else
            RL_INC(th->st.e_other);
        start_failed(th, role);
        return NULL;
    }
    uint32_t slot = th->freel[--th->nfree];
    rl_conn *c = &th->conns[slot];
    int r = io_uring_register_files_update(&th->ring, slot, &fd, 1);
    close(fd);
    if (r != 1) {
        th->freel[th->nfree++] = slot;
        RL_INC(th->st.e_other);
        start_failed(th, role);
        return NULL;
    }
    c->index = index;
    c->role = (uint8_t)role;
    c->state = RL_ST_CONNECTING;
    c->flags = 0;
    c->outstanding = 0;
    c->next_i = 0;
    c->ticket = 0;
    c->t_state = rc_now_ns();
    rl_wsdec_init(&c->dec, MAX_MSG);
    th->inflight++;
    if (role != RL_ROLE_CHURN)
        RL_INC(th->st.started);
    struct io_uring_sqe *s = sqe_for(th);
    const rl_endpoint *ep = rl_endpoint_for(role);
    io_uring_prep_connect(s, (int)slot, (const struct sockaddr *)&ep->addr, sizeof(ep->addr));
    s->flags |= IOSQE_FIXED_FILE;
    set_ud(s, c, OP_CONNECT);
    return c;
}

static void kick_send(rl_thr *th, rl_conn *c)
{
    if ((c->flags & RL_CF_SEND_BUSY) || c->state == RL_ST_DEAD)
        return;
    if (c->fly.off == c->fly.len) {
        if (c->pend.len == 0)
            return;
        rl_obuf t = c->fly;
        c->fly = c->pend;
        c->pend = t;
        c->pend.len = c->pend.off = 0;
    }
    struct io_uring_sqe *s = sqe_for(th);
    io_uring_prep_send(s, (int)c->slot, c->fly.p + c->fly.off, c->fly.len - c->fly.off,
                       MSG_NOSIGNAL);
    s->flags |= IOSQE_FIXED_FILE;
    set_ud(s, c, OP_SEND);
    c->flags |= RL_CF_SEND_BUSY;
}

static void queue_raw(rl_thr *th, rl_conn *c, const void *p, size_t n)
{
    rl_obuf *b = &c->pend;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        b->p = rc_realloc(b->p, cap);
        b->cap = (uint32_t)cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += (uint32_t)n;
    kick_send(th, c);
}

void rl_conn_send(rl_thr *th, rl_conn *c, int opcode, const void *p, size_t n)
{
    if (c->state == RL_ST_DEAD || (c->flags & RL_CF_CLOSE_SENT))
        return;
    rl_obuf *b = &c->pend;
    size_t need = rl_ws_frame_size(n);
    if (b->len + need > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + need)
            cap *= 2;
        b->p = rc_realloc(b->p, cap);
        b->cap = (uint32_t)cap;
    }
    b->len += (uint32_t)rl_ws_encode(b->p + b->len, opcode, p, n, (uint32_t)rnd(th));
    kick_send(th, c);
}

void rl_conn_close(rl_thr *th, rl_conn *c)
{
    if (c->state != RL_ST_OPEN)
        return;
    uint8_t code[2] = {RC_CLOSE_NORMAL >> 8, RC_CLOSE_NORMAL & 0xff};
    rl_conn_send(th, c, RC_WS_OP_CLOSE, code, 2);
    c->flags |= RL_CF_CLOSE_SENT;
    c->state = RL_ST_CLOSING;
    c->t_state = rc_now_ns();
}

void rl_conn_subscribe(rl_thr *th, rl_conn *c)
{
    char ch[256], msg[512];
    rl_cfg_g.scen->channel(c, ch, sizeof(ch));
    int n = rl_msg_subscribe(rl_cfg_g.dialect, msg, sizeof(msg), c->index, ch);
    if (n > 0)
        rl_conn_send(th, c, RC_WS_OP_TEXT, msg, (size_t)n);
}

void rl_conn_publish(rl_thr *th, rl_conn *c, const char *channel, uint64_t t, uint64_t i)
{
    char data[70000], msg[71000];
    int dn = rl_cfg_g.seats ? rl_data_build_seats(data, sizeof(data), t, i, rl_cfg_g.payload)
                            : rl_data_build(data, sizeof(data), t, i, rl_cfg_g.payload);
    int n = dn < 0 ? -1
                   : rl_msg_publish(rl_cfg_g.dialect, msg, sizeof(msg),
                                    rl_cfg_g.acks ? i : RL_NO_ID, channel, data, (size_t)dn);
    if (n > 0)
        rl_conn_send(th, c, RC_WS_OP_TEXT, msg, (size_t)n);
}

static void became_ready(rl_thr *th, rl_conn *c)
{
    c->flags |= RL_CF_READY;
    if (c->role == RL_ROLE_CHURN || (c->role == RL_ROLE_STAY && rl_cfg_g.scen->subscribes))
        rl_conn_subscribe(th, c);
    if (rl_cfg_g.scen->on_open)
        rl_cfg_g.scen->on_open(th, c);
}

static int on_text(rl_thr *th, rl_conn *c, const uint8_t *p, size_t n)
{
    rc_str data;
    uint64_t t, i;
    if (rl_cfg_g.scen->on_text && rl_cfg_g.scen->on_text(th, c, (const char *)p, n))
        return 0;
    switch (rl_msg_classify(rl_cfg_g.dialect, (const char *)p, n, &data)) {
    case RL_IN_MESSAGE:
        if (rl_data_parse(data.p, data.n, &t, &i) == 0 && rl_cfg_g.scen->on_data)
            rl_cfg_g.scen->on_data(th, c, t, i, th->rx_ns);
        break;
    case RL_IN_SUBSCRIBED:
        if (!(c->flags & RL_CF_SUBSCRIBED)) {
            c->flags |= RL_CF_SUBSCRIBED;
            if (c->role == RL_ROLE_STAY)
                RL_INC(th->st.subscribed);
            if (rl_cfg_g.scen->on_subscribed)
                rl_cfg_g.scen->on_subscribed(th, c, rc_now_ns());
        }
        break;
    case RL_IN_PUBLISHED: RL_INC(th->st.acks); break;
    case RL_IN_ERROR: RL_INC(th->st.server_errors); break;
    case RL_IN_SIO_OPEN: rl_conn_send(th, c, RC_WS_OP_TEXT, "40", 2); break;
    case RL_IN_SIO_CONNECTED:
        if (!(c->flags & RL_CF_READY))
            became_ready(th, c);
        break;
    case RL_IN_SIO_PING: rl_conn_send(th, c, RC_WS_OP_TEXT, "3", 1); break;
    case RL_IN_OTHER: break;
    }
    return 0;
}

static int on_frame(void *ud, int op, const uint8_t *p, size_t n)
{
    rl_thr *th = ud;
    rl_conn *c = th->cur;
    if (c->state == RL_ST_DEAD)
        return 1;
    if (op & RL_WS_COMPRESSED) {
        /* permessage-deflate: each message is a stream of its own (the
         * server answered server_no_context_takeover), so one inflater
         * per worker, reset per message, serves every connection. */
        op &= ~RL_WS_COMPRESSED;
        if (!th->inflater)
            th->inflater = rc_pmd_inflater_new();
        if (!th->inflater || rc_pmd_inflate(th->inflater, p, n, MAX_MSG, &p, &n) != RC_PMD_OK) {
            RL_INC(th->st.inflate_errors);
            return 0;
        }
        RL_INC(th->st.inflated);
    }
    switch (op) {
    case RC_WS_OP_TEXT: return on_text(th, c, p, n);
    case RC_WS_OP_PING: rl_conn_send(th, c, RC_WS_OP_PONG, p, n); return 0;
    case RC_WS_OP_CLOSE: {
        uint32_t code = n >= 2 ? ((uint32_t)p[0] << 8 | p[1]) : 1005;
        if (c->flags & RL_CF_CLOSE_SENT) {
            kill_conn(th, c, 0, code);
            return 1;
        }
        /* The server closed: echo the code, then close once it is sent. */
        uint8_t echo[2] = {(uint8_t)(code >> 8), (uint8_t)code};
        rl_conn_send(th, c, RC_WS_OP_CLOSE, echo, n >= 2 ? 2 : 0);
        c->flags |= RL_CF_CLOSE_SENT | RL_CF_CLOSE_AFTER;
        if (c->role == RL_ROLE_CHURN) {
            RL_INC(th->st.churn_failed);
        } else if (!ending()) {
            RL_INC(th->st.closed_unexpected);
            rl_code_count(th->st.close, code);
        }
        if (c->role == RL_ROLE_STAY)
            RL_DEC(th->st.open_now);
        c->flags |= RL_CF_GONE;
        c->state = RL_ST_CLOSING;
        c->t_state = rc_now_ns();
        if (!(c->flags & RL_CF_SEND_BUSY))
            kill_conn(th, c, 0, code);
        return 1;
    }
    default: return 0;
    }
}

static void opened(rl_thr *th, rl_conn *c)
{
    uint64_t now = rc_now_ns();
    th->inflight--;
    c->state = RL_ST_OPEN;
    c->t_state = now;
    if (c->role == RL_ROLE_STAY) {
        RL_INC(th->st.opened);
        RL_INC(th->st.open_now);
        if (!th->st.first_open_ns)
            RL_ADD(th->st.first_open_ns, now);
        __atomic_store_n(&th->st.last_open_ns, now, __ATOMIC_RELAXED);
    }
    if (c->role == RL_ROLE_PUB) {
        th->pub = c;
        RL_INC(th->st.pub_open);
    }
    if (rl_cfg_g.dialect == RL_DIALECT_RINGCAST)
        became_ready(th, c);
}

static void on_bytes(rl_thr *th, rl_conn *c, const uint8_t *p, size_t n)
{
    RL_ADD(th->st.wire_bytes, n);
    RL_INC(th->st.reads);
    if (rl_phase() == RL_PH_RUN) {
        RL_ADD(th->st.wire_bytes_meas, n);
        RL_INC(th->st.reads_meas);
    }
    if (c->state == RL_ST_HANDSHAKE) {
        if (!c->hs)
            c->hs = rc_malloc(RL_HS_MAX_HEAD);
        size_t take = RC_MIN(n, (size_t)RL_HS_MAX_HEAD - c->hs_len);
        memcpy(c->hs + c->hs_len, p, take);
        c->hs_len += (uint32_t)take;
        char key[25];
        rl_ws_key_b64(c->key, key);
        int status;
        size_t head;
        const char *why;
        int r = rl_hs_response(c->hs, c->hs_len, key, &status, &head, &why);
        if (r == 0)
            return;
        if (r < 0) {
            if (status) {
                RL_INC(th->st.e_status);
                rl_code_count(th->st.status, (uint32_t)status);
            } else {
                RL_INC(th->st.e_proto);
            }
            kill_conn(th, c, 1, 0);
            return;
        }
        if (rl_cfg_g.deflate && memmem(c->hs, head, "permessage-deflate", 18)) {
            c->dec.rsv1_ok = 1;
            RL_INC(th->st.deflate_conns);
        }
        /* bytes of this chunk past the head are the first frames */
        size_t before = c->hs_len - take;
        size_t rest_off = head - before;
        free(c->hs);
        c->hs = NULL;
        c->hs_len = 0;
        opened(th, c);
        if (rest_off >= n)
            return;
        p += rest_off;
        n -= rest_off;
    }
    if (c->state != RL_ST_OPEN && c->state != RL_ST_CLOSING)
        return;
    if (c->flags & RL_CF_CLOSE_AFTER)
        return;
    th->cur = c;
    int r = rl_wsdec_feed(&c->dec, p, n, on_frame, th);
    if (r == RL_WS_ERR_PROTO) {
        RL_INC(th->st.e_proto);
        kill_conn(th, c, 2, 1002);
    }
}

static void handle_cqe(rl_thr *th, struct io_uring_cqe *cqe)
{
    uint64_t ud = cqe->user_data;
    unsigned op = rc_ud_op(ud);
    if (op == OP_IGNORE)
        return;
    uint32_t slot = rc_ud_id(ud);
    rl_conn *c = &th->conns[slot];
    int res = cqe->res;
    if (op == OP_RECV && (cqe->flags & IORING_CQE_F_BUFFER)) {
        uint16_t bid = (uint16_t)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
        if (c->gen == rc_ud_gen(ud) && res > 0) {
            th->rx_ns = rc_now_ns();
            on_bytes(th, c, rc_bufring_addr(&th->br, bid), (size_t)res);
        }
        rc_bufring_recycle(&th->br, bid);
    }
    if (c->gen != rc_ud_gen(ud))
        return;
    switch (op) {
    case OP_CONNECT:
        if (c->state != RL_ST_CONNECTING)
            break;
        if (res < 0) {
            fail_errno(th, c, -res);
            break;
        }
        c->state = RL_ST_HANDSHAKE;
        c->t_state = rc_now_ns();
        arm_recv(th, c);
        {
            char key[25], req[2048];
            uint64_t a = rnd(th), b = rnd(th);
            memcpy(c->key, &a, 8);
            memcpy(c->key + 8, &b, 8);
            rl_ws_key_b64(c->key, key);
            const rl_endpoint *ep = rl_endpoint_for(c->role);
            const char *token = rl_cfg_g.token;
            char minted[512];
            if (rl_cfg_g.jwt_secret) {
                const char *sec = rl_cfg_g.jwt_secret;
                if (rl_queue_token(minted, sizeof(minted), (const uint8_t *)sec, strlen(sec),
                                   rl_cfg_g.user_prefix, c->index) > 0)
                    token = minted;
            }
            int n =
                rl_hs_request(req, sizeof(req), ep->host, ep->path, key, token, rl_cfg_g.deflate);
            if (n > 0)
                queue_raw(th, c, req, (size_t)n);
        }
        break;
    case OP_RECV:
        if (!(cqe->flags & IORING_CQE_F_MORE))
            c->flags &= (uint8_t)~RL_CF_RECV_ARMED;
        if (c->state == RL_ST_DEAD) {
            maybe_release(th, c);
            break;
        }
        if (res == 0) {
            if (c->state == RL_ST_CONNECTING || c->state == RL_ST_HANDSHAKE) {
                RL_INC(th->st.e_reset);
                kill_conn(th, c, 1, 0);
            } else {
                kill_conn(th, c, (c->flags & RL_CF_CLOSE_SENT) ? 0 : 2, 1006);
            }
        } else if (res < 0 && res != -ENOBUFS) {
            if (c->state == RL_ST_OPEN || c->state == RL_ST_CLOSING)
                kill_conn(th, c, (c->flags & RL_CF_CLOSE_SENT) ? 0 : 2, 1006);
            else
                fail_errno(th, c, -res);
        } else if (!(c->flags & RL_CF_RECV_ARMED) && c->state != RL_ST_DEAD) {
            arm_recv(th, c);
        }
        break;
    case OP_SEND:
        c->flags &= (uint8_t)~RL_CF_SEND_BUSY;
        if (c->state == RL_ST_DEAD) {
            maybe_release(th, c);
            break;
        }
        if (res < 0) {
            if (c->state == RL_ST_OPEN || c->state == RL_ST_CLOSING)
                kill_conn(th, c, (c->flags & RL_CF_CLOSE_SENT) ? 0 : 2, 1006);
            else
                fail_errno(th, c, -res);
            break;
        }
        c->fly.off += (uint32_t)res;
        if (c->fly.off == c->fly.len)
            c->fly.len = c->fly.off = 0;
        kick_send(th, c);
        if (!(c->flags & RL_CF_SEND_BUSY)) {
            if (c->flags & RL_CF_CLOSE_AFTER) {
                kill_conn(th, c, 0, 0);
            } else if (c->fly.cap > 4096 || c->pend.len == 0) {
                obuf_free(&c->fly);
                if (c->pend.len == 0)
                    obuf_free(&c->pend);
            }
        }
        break;
    case OP_CLOSE:
        c->flags |= RL_CF_CLOSE_DONE;
        maybe_release(th, c);
        break;
    }
}

/* Handshake and close timeouts; O(slots) once every half second. */
static void sweep(rl_thr *th, uint64_t now)
{
    uint64_t hs = (uint64_t)(rl_cfg_g.hs_timeout * 1e9);
    for (uint32_t i = 0; i < th->cap; i++) {
        rl_conn *c = &th->conns[i];
        if ((c->state == RL_ST_CONNECTING || c->state == RL_ST_HANDSHAKE) && now > c->t_state &&
            now - c->t_state > hs) {
            RL_INC(th->st.e_timeout);
            kill_conn(th, c, 1, 0);
        } else if (c->state == RL_ST_CLOSING && now > c->t_state &&
                   now - c->t_state > CLOSE_WAIT_NS) {
            kill_conn(th, c, 0, 0);
        }
    }
}

static void ramp(rl_thr *th, uint64_t now)
{
    uint32_t max_inflight = RC_MAX(1u, 1000u / rl_cfg_g.threads);
    if (rl_cfg_g.ramp_rate > 0) {
        double dt = th->ramp_last ? (double)(now - th->ramp_last) / 1e9 : 0;
        th->ramp_tokens += dt * rl_cfg_g.ramp_rate / rl_cfg_g.threads;
        if (th->ramp_tokens > max_inflight)
            th->ramp_tokens = max_inflight;
        th->ramp_last = now;
    }
    while (th->st.started < th->target && th->inflight < max_inflight) {
        if (rl_cfg_g.ramp_rate > 0) {
            if (th->ramp_tokens < 1)
                break;
            th->ramp_tokens -= 1;
        }
        uint32_t k = (uint32_t)th->st.started;
        int pub = rl_cfg_g.scen->publisher && th->id == 0 && k == th->target - 1;
        if (!rl_conn_start(th, pub ? RL_ROLE_PUB : RL_ROLE_STAY, th->first_index + k) &&
            th->nfree == 0)
            break;
        if (th->st.started == k) /* failed before connect: still counts as tried */
            RL_INC(th->st.started);
    }
}

static void loop_once(rl_thr *th, unsigned wait_ms)
{
    struct __kernel_timespec ts = {.tv_sec = wait_ms / 1000,
                                   .tv_nsec = (long long)(wait_ms % 1000) * 1000000};
    struct io_uring_cqe *cqe;
    io_uring_submit_and_wait_timeout(&th->ring, &cqe, 1, &ts, NULL);
    unsigned head, count = 0;
    io_uring_for_each_cqe (&th->ring, head, cqe) {
        handle_cqe(th, cqe);
        count++;
    }
    io_uring_cq_advance(&th->ring, count);
    rc_bufring_publish(&th->br);
}

/* The ring is made by the thread that uses it: SINGLE_ISSUER binds a ring
 * to its creator, and DEFER_TASKRUN runs completions only when we wait. */
static int ring_setup(rl_thr *th)
{
    const char *mode;
    int r = rc_ring_init(&th->ring, RING_SQ, &mode);
    if (r < 0) {
        fprintf(stderr, "ringload: io_uring setup: %s\n", strerror(-r));
        return r;
    }
    r = io_uring_register_files_sparse(&th->ring, th->cap);
    if (r < 0) {
        fprintf(stderr, "ringload: registering %u file slots: %s (RLIMIT_NOFILE caps it)\n",
                th->cap, strerror(-r));
        return r;
    }
    r = rc_bufring_init(&th->br, &th->ring, BGID, BUF_COUNT, BUF_SIZE);
    if (r < 0) {
        fprintf(stderr, "ringload: buffer ring: %s\n", strerror(-r));
        return r;
    }
    return 0;
}

void *rl_thr_main(void *arg)
{
    rl_thr *th = arg;
    int r = ring_setup(th);
    __atomic_store_n(&th->ready, r == 0 ? 1 : -1, __ATOMIC_RELEASE);
    if (r != 0)
        return NULL;
    while (rl_phase() != RL_PH_STOP) {
        uint64_t now = rc_now_ns();
        ramp(th, now);
        if (rl_cfg_g.scen->tick)
            rl_cfg_g.scen->tick(th, now);
        if (now >= th->next_sweep) {
            sweep(th, now);
            th->next_sweep = now + 500000000ull;
        }
        int ph = rl_phase();
        unsigned wait = (th->pub && ph >= RL_PH_WARMUP && ph <= RL_PH_RUN) ? 1 : 5;
        loop_once(th, wait);
    }
    /* Say goodbye properly: close frames to everyone still open, then wait
     * a little for the server's answers. */
    for (uint32_t i = 0; i < th->cap; i++)
        if (th->conns[i].state == RL_ST_OPEN)
            rl_conn_close(th, &th->conns[i]);
    uint64_t deadline = rc_now_ns() + 2000000000ull;
    while (th->nfree < th->cap && rc_now_ns() < deadline) {
        loop_once(th, 20);
        if (rc_now_ns() >= th->next_sweep) {
            sweep(th, rc_now_ns());
            th->next_sweep = rc_now_ns() + 500000000ull;
        }
    }
    return NULL;
}
