/* One Redis connection on a caller-owned io_uring: see redis/client.h.
 *
 * Thread: the thread that owns the ring (the relay's). */
#include "redis/client.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/common.h"
#include "net/uring.h"
#include "redis/reader.h"

enum { OP_CONNECT = 1, OP_RECV, OP_SEND };

#define RECV_SIZE          (64 * 1024)
#define CONNECT_TIMEOUT_MS 2000
#define BACKOFF_MIN_MS     100
#define BACKOFF_MAX_MS     5000

typedef struct pending {
    rc_redis_reply_fn fn;
    void *priv;
} pending;

typedef struct buf {
    char *p;
    size_t len, cap;
} buf;

struct rc_redis {
    struct io_uring *ring;
    rc_redis_url url;
    rc_redis_hooks hooks;
    void *udata, *reply_udata; /* the hooks', the reply callbacks' */
    uint16_t tag;

    rc_redis_state state;
    bool stopping, ever_ready, sub_mode;
    int fd;
    uint8_t epoch; /* per attempt: a stray completion from an old one is ignored */
    unsigned inflight;
    bool connect_inflight, recv_inflight, send_inflight;

    struct sockaddr_storage addr;
    socklen_t addrlen;

    uint64_t now_ms, deadline_ms, next_attempt_ms, backoff_ms;
    uint64_t rng;

    redisReader *reader;
    char *rbuf;
    buf out;  /* formatted, not yet handed to the kernel */
    buf wire; /* the send in flight: stable until its completion */
    size_t wire_off;
    size_t max_queued;

    pending *fifo;
    size_t fifo_head, fifo_len, fifo_cap; /* ring buffer, cap a power of two */

    unsigned hs_pending;
    uint32_t ping_interval_ms;
    uint64_t next_ping_ms, ping_sent_ns;
    bool ping_outstanding;

    rc_redis_stats st;
    char err[256];
};

static void fail(rc_redis *r, bool notify, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static uint64_t ud(rc_redis *r, unsigned op)
{
    return rc_ud(RC_UOP_REDIS, r->tag, (uint32_t)op | ((uint32_t)r->epoch << 8));
}

static bool alive(const rc_redis *r)
{
    return r->state == RC_REDIS_CONNECTING || r->state == RC_REDIS_HANDSHAKE ||
           r->state == RC_REDIS_READY;
}

/* ---- reply FIFO ---------------------------------------------------------- */

static void fifo_push(rc_redis *r, rc_redis_reply_fn fn, void *priv)
{
    if (r->fifo_len == r->fifo_cap) {
        size_t ncap = r->fifo_cap ? r->fifo_cap * 2 : 64;
        pending *n = rc_malloc(ncap * sizeof(*n));
        for (size_t i = 0; i < r->fifo_len; i++)
            n[i] = r->fifo[(r->fifo_head + i) & (r->fifo_cap - 1)];
        free(r->fifo);
        r->fifo = n;
        r->fifo_cap = ncap;
        r->fifo_head = 0;
    }
    r->fifo[(r->fifo_head + r->fifo_len) & (r->fifo_cap - 1)] = (pending){fn, priv};
    r->fifo_len++;
}

static pending fifo_pop(rc_redis *r)
{
    pending p = r->fifo[r->fifo_head];
    r->fifo_head = (r->fifo_head + 1) & (r->fifo_cap - 1);
    r->fifo_len--;
    return p;
}

/* Every waiting callback gets NULL. A callback may queue new commands; those
 * are refused (state is no longer READY), so the loop ends. */
static void fifo_fail_all(rc_redis *r, const char *why)
{
    while (r->fifo_len) {
        pending p = fifo_pop(r);
        p.fn(r->reply_udata, NULL, why, p.priv);
    }
}

/* ---- output -------------------------------------------------------------- */

static void buf_append(buf *b, const char *p, size_t n)
{
    if (b->len + n > b->cap) {
        size_t ncap = b->cap ? b->cap : 4096;
        while (ncap < b->len + n)
            ncap *= 2;
        b->p = rc_realloc(b->p, ncap);
        b->cap = ncap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

static void post_send(rc_redis *r)
{
    struct io_uring_sqe *sqe = rc_ring_sqe(r->ring);
    io_uring_prep_send(sqe, r->fd, r->wire.p + r->wire_off, r->wire.len - r->wire_off,
                       MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, ud(r, OP_SEND));
    r->send_inflight = true;
    r->inflight++;
}

void rc_redis_flush(rc_redis *r)
{
    if (r->send_inflight || !r->out.len || r->fd < 0 ||
        (r->state != RC_REDIS_HANDSHAKE && r->state != RC_REDIS_READY))
        return;
    buf t = r->wire;
    r->wire = r->out;
    r->out = t;
    r->out.len = 0;
    r->wire_off = 0;
    post_send(r);
}

static size_t queued_bytes(const rc_redis *r)
{
    return r->out.len + (r->send_inflight ? r->wire.len - r->wire_off : 0);
}

/* Formats into out; fn NULL = no reply expected. Bypasses the READY check
 * (the handshake uses it). */
static int enqueue(rc_redis *r, rc_redis_reply_fn fn, void *priv, int argc, const char **argv,
                   const size_t *argvlen)
{
    size_t lens[64];
    size_t *heap = NULL;
    if (!argvlen) {
        size_t *l = lens;
        if ((size_t)argc > RC_ARRAY_LEN(lens))
            l = heap = rc_malloc((size_t)argc * sizeof(*l));
        for (int i = 0; i < argc; i++)
            l[i] = strlen(argv[i]);
        argvlen = l;
    }
    char *cmd = NULL;
    int n = argc > 0 ? redisFormatCommandArgv(&cmd, argc, argv, argvlen) : -1;
    free(heap);
    if (n < 0)
        return -1;
    if (queued_bytes(r) + (size_t)n > r->max_queued) {
        redisFreeCommand(cmd);
        return -1;
    }
    buf_append(&r->out, cmd, (size_t)n);
    redisFreeCommand(cmd);
    if (fn)
        fifo_push(r, fn, priv);
    r->st.commands++;
    return 0;
}

int rc_redis_command(rc_redis *r, rc_redis_reply_fn fn, void *priv, int argc, const char **argv,
                     const size_t *argvlen)
{
    if (r->state != RC_REDIS_READY || !fn)
        return -1;
    return enqueue(r, fn, priv, argc, argv, argvlen);
}

int rc_redis_command_formatted(rc_redis *r, rc_redis_reply_fn fn, void *priv, const char *cmd,
                               size_t len)
{
    if (r->state != RC_REDIS_READY || !fn || queued_bytes(r) + len > r->max_queued)
        return -1;
    buf_append(&r->out, cmd, len);
    fifo_push(r, fn, priv);
    r->st.commands++;
    return 0;
}

static bool is_subscribe(const char *s, size_t n)
{
    return (n == 9 && strncasecmp(s, "subscribe", 9) == 0) ||
           (n == 10 &&
            (strncasecmp(s, "psubscribe", 10) == 0 || strncasecmp(s, "ssubscribe", 10) == 0));
}

int rc_redis_send_raw(rc_redis *r, int argc, const char **argv, const size_t *argvlen)
{
    if (r->state != RC_REDIS_READY || argc < 1)
        return -1;
    if (enqueue(r, NULL, NULL, argc, argv, argvlen) < 0)
        return -1;
    if (is_subscribe(argv[0], argvlen ? argvlen[0] : strlen(argv[0])))
        r->sub_mode = true;
    return 0;
}

/* ---- connection life ----------------------------------------------------- */

static uint64_t next_rand(rc_redis *r)
{
    r->rng ^= r->rng << 13;
    r->rng ^= r->rng >> 7;
    r->rng ^= r->rng << 17;
    return r->rng;
}

static void finish_close(rc_redis *r)
{
    if (r->inflight || (r->state != RC_REDIS_CLOSING))
        return;
    if (r->fd >= 0)
        close(r->fd);
    r->fd = -1;
    r->state = r->stopping ? RC_REDIS_STOPPED : RC_REDIS_DISCONNECTED;
}

static void fail(rc_redis *r, bool notify, const char *fmt, ...)
{
    if (!alive(r))
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err, sizeof(r->err), fmt, ap);
    va_end(ap);
    if (notify)
        r->st.errors++;
    /* shutdown ends an in-flight recv (0) and send (EPIPE); a pending connect
     * needs an explicit cancel. */
    if (r->fd >= 0)
        shutdown(r->fd, SHUT_RDWR);
    if (r->connect_inflight) {
        struct io_uring_sqe *sqe = rc_ring_sqe(r->ring);
        io_uring_prep_cancel64(sqe, ud(r, OP_CONNECT), 0);
        io_uring_sqe_set_data64(sqe, rc_ud(RC_UOP_IGNORE, 0, 0));
    }
    r->state = RC_REDIS_CLOSING;
    r->out.len = 0;
    r->hs_pending = 0;
    r->ping_outstanding = false;
    /* +-25% jitter so that many nodes do not reconnect in lockstep. */
    uint64_t d = r->backoff_ms * 3 / 4 + next_rand(r) % (r->backoff_ms / 2 + 1);
    r->next_attempt_ms = r->now_ms + d;
    r->backoff_ms = RC_MIN(r->backoff_ms * 2, (uint64_t)BACKOFF_MAX_MS);
    char why[sizeof(r->err)];
    memcpy(why, r->err, sizeof(why));
    fifo_fail_all(r, why);
    if (notify && r->hooks.on_down)
        r->hooks.on_down(r->udata, why);
    finish_close(r);
}

static void became_ready(rc_redis *r)
{
    r->state = RC_REDIS_READY;
    r->deadline_ms = 0;
    r->backoff_ms = BACKOFF_MIN_MS;
    if (r->ever_ready)
        r->st.reconnects++;
    r->ever_ready = true;
    r->next_ping_ms = r->now_ms + r->ping_interval_ms;
    if (r->hooks.on_ready)
        r->hooks.on_ready(r->udata);
}

static void on_handshake_reply(void *udata, redisReply *reply, const char *err, void *priv)
{
    rc_redis *r = priv;
    if (!reply)
        return;
    if (reply->type == REDIS_REPLY_ERROR) {
        fail(r, true, "redis handshake: %.*s", (int)RC_MIN(reply->len, (size_t)200), reply->str);
        return;
    }
    if (--r->hs_pending == 0)
        became_ready(r);
}

static void on_ping_reply(void *udata, redisReply *reply, const char *err, void *priv)
{
    rc_redis *r = priv;
    if (!reply)
        return;
    r->ping_outstanding = false;
    r->st.rtt_us = (rc_now_ns() - r->ping_sent_ns) / 1000;
}

static void post_recv(rc_redis *r)
{
    struct io_uring_sqe *sqe = rc_ring_sqe(r->ring);
    io_uring_prep_recv(sqe, r->fd, r->rbuf, RECV_SIZE, 0);
    io_uring_sqe_set_data64(sqe, ud(r, OP_RECV));
    r->recv_inflight = true;
    r->inflight++;
}

static void start_handshake(rc_redis *r)
{
    r->state = RC_REDIS_HANDSHAKE;
    post_recv(r);
    if (r->url.password[0]) {
        const char *argv[3] = {"AUTH", r->url.user, r->url.password};
        if (r->url.user[0])
            enqueue(r, on_handshake_reply, r, 3, argv, NULL);
        else
            enqueue(r, on_handshake_reply, r, 2, (const char *[]){"AUTH", r->url.password}, NULL);
        r->hs_pending++;
    }
    if (r->url.db) {
        char db[16];
        snprintf(db, sizeof(db), "%d", r->url.db);
        enqueue(r, on_handshake_reply, r, 2, (const char *[]){"SELECT", db}, NULL);
        r->hs_pending++;
    }
    /* Last, and always: the connection is ready only once Redis has
     * answered. The kernel completes a TCP connect for a stopped (SIGSTOP)
     * or wedged Redis, so a connect alone proves nothing. */
    enqueue(r, on_handshake_reply, r, 1, (const char *[]){"PING"}, NULL);
    r->hs_pending++;
    /* The handshake is internal: it does not count as user commands. */
    r->st.commands -= r->hs_pending;
    rc_redis_flush(r);
}

static int resolve(rc_redis *r)
{
    memset(&r->addr, 0, sizeof(r->addr));
    if (r->url.unix_path[0]) {
        struct sockaddr_un *un = (struct sockaddr_un *)&r->addr;
        un->sun_family = AF_UNIX;
        memcpy(un->sun_path, r->url.unix_path, strlen(r->url.unix_path) + 1);
        r->addrlen = sizeof(*un);
        return 0;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    char port[8];
    snprintf(port, sizeof(port), "%u", r->url.port);
    int rc = getaddrinfo(r->url.host, port, &hints, &res);
    if (rc != 0 || !res) {
        snprintf(r->err, sizeof(r->err), "resolve %.200s: %s", r->url.host, gai_strerror(rc));
        return -1;
    }
    memcpy(&r->addr, res->ai_addr, res->ai_addrlen);
    r->addrlen = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

static void start_connect(rc_redis *r)
{
    r->epoch++;
    r->sub_mode = false;
    r->fifo_head = 0;
    r->out.len = r->wire.len = r->wire_off = 0;
    if (r->reader)
        redisReaderFree(r->reader);
    r->reader = rc_redis_reader_new();
    r->state = RC_REDIS_CONNECTING;
    r->deadline_ms = r->now_ms + CONNECT_TIMEOUT_MS;
    if (resolve(r) < 0) {
        char e[sizeof(r->err)];
        memcpy(e, r->err, sizeof(e));
        fail(r, true, "%s", e);
        return;
    }
    r->fd = socket(r->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (r->fd < 0) {
        fail(r, true, "socket: %s", strerror(errno));
        return;
    }
    if (r->addr.ss_family != AF_UNIX) {
        int one = 1;
        setsockopt(r->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    struct io_uring_sqe *sqe = rc_ring_sqe(r->ring);
    io_uring_prep_connect(sqe, r->fd, (struct sockaddr *)&r->addr, r->addrlen);
    io_uring_sqe_set_data64(sqe, ud(r, OP_CONNECT));
    r->connect_inflight = true;
    r->inflight++;
}

/* ---- completions --------------------------------------------------------- */

static bool is_push(const redisReply *rep)
{
    static const char *const kinds[] = {"message",     "pmessage",     "smessage",
                                        "subscribe",   "psubscribe",   "ssubscribe",
                                        "unsubscribe", "punsubscribe", "sunsubscribe"};
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 1 || !rep->element[0] ||
        rep->element[0]->type != REDIS_REPLY_STRING)
        return false;
    const redisReply *k = rep->element[0];
    for (size_t i = 0; i < RC_ARRAY_LEN(kinds); i++)
        if (strlen(kinds[i]) == k->len && strncasecmp(k->str, kinds[i], k->len) == 0)
            return true;
    return false;
}

static void dispatch(rc_redis *r, redisReply *rep)
{
    /* In subscriber mode an error answers a (S)SUBSCRIBE (a cluster node's
     * MOVED, say), which has no entry in the FIFO: the pings' entries
     * never get errors. */
    if ((r->sub_mode && (is_push(rep) || rep->type == REDIS_REPLY_ERROR)) || r->fifo_len == 0) {
        if (r->hooks.on_push)
            r->hooks.on_push(r->udata, rep);
        return;
    }
    pending p = fifo_pop(r);
    if (rep->type == REDIS_REPLY_ERROR)
        r->st.errors++;
    p.fn(r->reply_udata, rep, NULL, p.priv);
}

static void on_recv(rc_redis *r, int res)
{
    if (!alive(r))
        return;
    if (res <= 0) {
        if (res == 0)
            fail(r, true, "redis closed the connection");
        else
            fail(r, true, "recv: %s", strerror(-res));
        return;
    }
    r->st.bytes_in += (uint64_t)res;
    if (redisReaderFeed(r->reader, r->rbuf, (size_t)res) != REDIS_OK) {
        fail(r, true, "redis reader: %s", r->reader->errstr);
        return;
    }
    while (alive(r)) {
        void *rep = NULL;
        if (redisReaderGetReply(r->reader, &rep) != REDIS_OK) {
            fail(r, true, "redis protocol error: %s", r->reader->errstr);
            return;
        }
        if (!rep)
            break;
        dispatch(r, rep);
        freeReplyObject(rep);
    }
    if (alive(r))
        post_recv(r);
}

static void on_send(rc_redis *r, int res)
{
    if (!alive(r))
        return;
    if (res < 0) {
        fail(r, true, "send: %s", strerror(-res));
        return;
    }
    r->st.bytes_out += (uint64_t)res;
    r->wire_off += (size_t)res;
    if (r->wire_off < r->wire.len) {
        post_send(r);
        return;
    }
    r->wire.len = r->wire_off = 0;
}

void rc_redis_on_cqe(rc_redis *r, struct io_uring_cqe *cqe)
{
    uint32_t id = rc_ud_id(cqe->user_data);
    unsigned op = id & 0xff;
    if ((id >> 8) != r->epoch || !r->inflight)
        return;
    r->now_ms = rc_now_ms();
    switch (op) {
    case OP_CONNECT:
        if (!r->connect_inflight)
            return;
        r->connect_inflight = false;
        r->inflight--;
        if (cqe->res < 0)
            fail(r, true, "connect: %s", strerror(-cqe->res));
        else if (r->state == RC_REDIS_CONNECTING)
            start_handshake(r);
        break;
    case OP_RECV:
        if (!r->recv_inflight)
            return;
        r->recv_inflight = false;
        r->inflight--;
        on_recv(r, cqe->res);
        break;
    case OP_SEND:
        if (!r->send_inflight)
            return;
        r->send_inflight = false;
        r->inflight--;
        on_send(r, cqe->res);
        break;
    default: return;
    }
    finish_close(r);
    rc_redis_flush(r);
}

void rc_redis_tick(rc_redis *r, uint64_t now_ms)
{
    r->now_ms = now_ms;
    if (r->state == RC_REDIS_DISCONNECTED && !r->stopping && now_ms >= r->next_attempt_ms)
        start_connect(r);
    if ((r->state == RC_REDIS_CONNECTING || r->state == RC_REDIS_HANDSHAKE) &&
        now_ms >= r->deadline_ms)
        fail(r, true, "%s timeout after %d ms",
             r->state == RC_REDIS_CONNECTING ? "connect" : "handshake", CONNECT_TIMEOUT_MS);
    if (r->state == RC_REDIS_READY && r->ping_interval_ms) {
        uint64_t limit = RC_MAX((uint64_t)r->ping_interval_ms * 3, (uint64_t)CONNECT_TIMEOUT_MS);
        if (r->ping_outstanding && (rc_now_ns() - r->ping_sent_ns) / 1000000 >= limit) {
            fail(r, true, "ping unanswered for %llu ms", (unsigned long long)limit);
        } else if (!r->ping_outstanding && now_ms >= r->next_ping_ms) {
            const char *argv[1] = {"PING"};
            if (enqueue(r, on_ping_reply, r, 1, argv, NULL) == 0) {
                r->st.commands--;
                r->ping_outstanding = true;
                r->ping_sent_ns = rc_now_ns();
            }
            r->next_ping_ms = now_ms + r->ping_interval_ms;
        }
    }
    rc_redis_flush(r);
}

/* ---- lifetime ------------------------------------------------------------ */

rc_redis *rc_redis_new(struct io_uring *ring, const rc_redis_url *url, const rc_redis_hooks *hooks,
                       void *udata, uint16_t tag)
{
    rc_redis *r = rc_calloc(1, sizeof(*r));
    r->ring = ring;
    r->url = *url;
    if (hooks)
        r->hooks = *hooks;
    r->udata = r->reply_udata = udata;
    r->tag = tag;
    r->fd = -1;
    r->state = RC_REDIS_DISCONNECTED;
    r->backoff_ms = BACKOFF_MIN_MS;
    r->max_queued = RC_REDIS_DEFAULT_MAX_QUEUED;
    r->rng = (rc_now_ns() ^ (uintptr_t)r) | 1;
    r->rbuf = rc_malloc(RECV_SIZE);
    return r;
}

void rc_redis_set_reply_udata(rc_redis *r, void *udata)
{
    r->reply_udata = udata;
}

void rc_redis_set_max_queued(rc_redis *r, size_t bytes)
{
    r->max_queued = bytes;
}

void rc_redis_set_ping_interval(rc_redis *r, uint32_t interval_ms)
{
    r->ping_interval_ms = interval_ms;
    r->next_ping_ms = r->now_ms + interval_ms;
}

void rc_redis_close(rc_redis *r)
{
    r->stopping = true;
    if (alive(r))
        fail(r, false, "closed");
    else
        fifo_fail_all(r, "closed");
    if (r->state == RC_REDIS_DISCONNECTED)
        r->state = RC_REDIS_STOPPED;
}

bool rc_redis_idle(const rc_redis *r)
{
    return r->inflight == 0;
}

void rc_redis_free(rc_redis *r)
{
    if (!r)
        return;
    r->stopping = true;
    /* The ring may be gone already: no cancel SQE for a pending connect. */
    r->connect_inflight = false;
    if (alive(r))
        fail(r, false, "closed");
    fifo_fail_all(r, "closed");
    if (r->fd >= 0)
        close(r->fd);
    if (r->reader)
        redisReaderFree(r->reader);
    free(r->fifo);
    free(r->out.p);
    free(r->wire.p);
    free(r->rbuf);
    free(r);
}

rc_redis_state rc_redis_get_state(const rc_redis *r)
{
    return r->state;
}

const char *rc_redis_last_error(const rc_redis *r)
{
    return r->err;
}

void rc_redis_get_stats(const rc_redis *r, rc_redis_stats *out)
{
    *out = r->st;
    out->backoff_ms = r->backoff_ms;
    out->pipeline_depth = (uint32_t)r->fifo_len;
    out->queued_bytes = queued_bytes(r);
}
