/* naive: the benchmark floor. A single-threaded epoll WebSocket server that
 * speaks the ringcast dialect subset (subscribe, unsubscribe, publish, ping)
 * and sends each message frame to each subscriber with its own send(). The
 * frame is encoded once per publish, sockets are non-blocking, short sends
 * are kept in a per-connection backlog and flushed on EPOLLOUT: simple and
 * honest, but without ringcast's per-connection coalescing of frames.
 *
 *   build/naive [--listen HOST:PORT] [--path /ws] [--cpu N]
 *
 * Limits: one fd per connection, so RLIMIT_NOFILE (ulimit -n) bounds the
 * connections it holds; a client whose backlog passes MAX_BACKLOG bytes is
 * dropped (the floor has no smarter slow-consumer policy). Text frames are
 * not checked for valid UTF-8, and fragmented client messages are refused
 * (close 1003): the load generator never sends them. SIGTERM/SIGINT stop it with exit status 0. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/common.h"
#include "net/http.h"
#include "net/listen.h"
#include "ws/frame.h"
#include "ws/handshake.h"
#include "proto/json.h"

#define MAX_HEAD    8192
#define MAX_MSG     (1u << 20)   /* client message, bytes */
#define MAX_BACKLOG (8u << 20)   /* unsent bytes per connection before dropping it */
#define READ_CHUNK  65536
#define CHAN_BUCKETS 4096        /* power of two */

enum { ST_HTTP, ST_WS, ST_CLOSING };

struct chan;

typedef struct sub {
    struct chan *ch;
    size_t pos; /* index of this connection in ch->members */
} sub;

typedef struct conn {
    int fd;
    int state;
    int dead;
    int want_out;       /* EPOLLOUT armed */
    uint8_t *in;        /* bytes received but not yet parsed */
    size_t in_len, in_cap;
    uint8_t *out;       /* backlog: bytes accepted but not yet sent */
    size_t out_off, out_len, out_cap;
    sub *subs;
    size_t n_subs, cap_subs;
} conn;

typedef struct chan {
    char *name;
    size_t name_len;
    conn **members;
    size_t n, cap;
    uint64_t seq;
    struct chan *next; /* hash bucket chain */
} chan;

static int g_ep;
static conn **g_conns;   /* indexed by fd */
static size_t g_max_fd;
static conn **g_reap;    /* connections to close at the end of the event batch */
static size_t g_n_reap, g_cap_reap;
static chan *g_buckets[CHAN_BUCKETS];
static uint8_t *g_frame; /* scratch for one encoded server frame */
static size_t g_frame_cap;

static void kill_conn(conn *c)
{
    if (c->dead)
        return;
    c->dead = 1;
    if (g_n_reap == g_cap_reap) {
        g_cap_reap = g_cap_reap ? g_cap_reap * 2 : 64;
        g_reap = rc_realloc(g_reap, g_cap_reap * sizeof(*g_reap));
    }
    g_reap[g_n_reap++] = c;
}

static void set_out_interest(conn *c, int want)
{
    if (c->want_out == want)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0), .data.ptr = c};
    if (epoll_ctl(g_ep, EPOLL_CTL_MOD, c->fd, &ev) < 0)
        kill_conn(c);
    c->want_out = want;
}

static void backlog_append(conn *c, const uint8_t *p, size_t n)
{
    if (c->out_len + n > MAX_BACKLOG) {
        kill_conn(c);
        return;
    }
    if (c->out_off > 0 && c->out_off + c->out_len + n > c->out_cap) {
        memmove(c->out, c->out + c->out_off, c->out_len);
        c->out_off = 0;
    }
    if (c->out_off + c->out_len + n > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 4096;
        while (cap < c->out_len + n)
            cap *= 2;
        c->out = rc_realloc(c->out, cap);
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_off + c->out_len, p, n);
    c->out_len += n;
    set_out_interest(c, 1);
}

/* One send() per call when nothing is queued; otherwise the bytes wait behind
 * the backlog so frames stay in order. */
static void conn_write(conn *c, const void *buf, size_t n)
{
    if (c->dead)
        return;
    if (c->out_len == 0) {
        ssize_t w = send(c->fd, buf, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                kill_conn(c);
                return;
            }
            w = 0;
        }
        if ((size_t)w == n)
            return;
        buf = (const uint8_t *)buf + w;
        n -= (size_t)w;
    }
    backlog_append(c, buf, n);
}

static void flush_backlog(conn *c)
{
    while (c->out_len > 0) {
        ssize_t w = send(c->fd, c->out + c->out_off, c->out_len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                kill_conn(c);
            return;
        }
        c->out_off += (size_t)w;
        c->out_len -= (size_t)w;
    }
    c->out_off = 0;
    set_out_interest(c, 0);
    if (c->state == ST_CLOSING)
        kill_conn(c);
}

/* Writes an unmasked frame header for n payload bytes into the scratch buffer
 * and returns where the payload goes; *flen gets the whole frame's length. */
static uint8_t *frame_begin(int op, size_t n, size_t *flen)
{
    if (RC_WS_MAX_HEADER + n > g_frame_cap) {
        g_frame_cap = (RC_WS_MAX_HEADER + n) * 2;
        g_frame = rc_realloc(g_frame, g_frame_cap);
    }
    size_t h = rc_ws_header(g_frame, op, n);
    *flen = h + n;
    return g_frame + h;
}

/* The connection closes once its backlog is sent; input is ignored meanwhile. */
static void close_after_flush(conn *c)
{
    c->state = ST_CLOSING;
    if (c->out_len == 0)
        kill_conn(c);
}

static void send_text(conn *c, const char *json, size_t n)
{
    size_t flen;
    memcpy(frame_begin(RC_WS_OP_TEXT, n, &flen), json, n);
    conn_write(c, g_frame, flen);
}

static void send_close(conn *c, uint16_t code, const char *reason)
{
    uint8_t f[128];
    conn_write(c, f, rc_ws_close_frame(f, code, reason));
    close_after_flush(c);
}

/* ---- channels ------------------------------------------------------------ */

static uint32_t hash_name(const char *p, size_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)p[i]) * 16777619u;
    return h;
}

static chan *chan_find(const char *name, size_t n, int create)
{
    chan **b = &g_buckets[hash_name(name, n) & (CHAN_BUCKETS - 1)];
    for (chan *ch = *b; ch; ch = ch->next)
        if (ch->name_len == n && memcmp(ch->name, name, n) == 0)
            return ch;
    if (!create)
        return NULL;
    chan *ch = rc_calloc(1, sizeof(*ch));
    ch->name = rc_strndup(name, n);
    ch->name_len = n;
    ch->next = *b;
    *b = ch;
    return ch;
}

static sub *find_sub(conn *c, const chan *ch)
{
    for (size_t i = 0; i < c->n_subs; i++)
        if (c->subs[i].ch == ch)
            return &c->subs[i];
    return NULL;
}

static void chan_add(conn *c, chan *ch)
{
    if (find_sub(c, ch))
        return;
    if (ch->n == ch->cap) {
        ch->cap = ch->cap ? ch->cap * 2 : 8;
        ch->members = rc_realloc(ch->members, ch->cap * sizeof(*ch->members));
    }
    if (c->n_subs == c->cap_subs) {
        c->cap_subs = c->cap_subs ? c->cap_subs * 2 : 2;
        c->subs = rc_realloc(c->subs, c->cap_subs * sizeof(*c->subs));
    }
    c->subs[c->n_subs++] = (sub){ch, ch->n};
    ch->members[ch->n++] = c;
}

/* Removes subscription s of c (swap-remove on both sides). Empty channels stay
 * allocated: benchmarks reuse a handful of names. */
static void chan_remove(conn *c, sub *s)
{
    chan *ch = s->ch;
    conn *last = ch->members[--ch->n];
    if (last != c) {
        ch->members[s->pos] = last;
        find_sub(last, ch)->pos = s->pos;
    }
    *s = c->subs[--c->n_subs];
}

/* ---- messages ------------------------------------------------------------ */

static void publish(const rc_proto_req *rq)
{
    chan *ch = chan_find(rq->channel, rq->channel_len, 0);
    if (!ch || ch->n == 0)
        return;
    rc_str cs = {rq->channel, rq->channel_len}, ev = {rq->event, rq->event_len};
    uint64_t seq = ++ch->seq;
    size_t plen = rc_proto_message_len(cs, ev, seq, rq->data), flen;
    char *p = (char *)frame_begin(RC_WS_OP_TEXT, plen, &flen);
    rc_assert(rc_proto_message(p, plen, cs, ev, seq, rq->data) == (ssize_t)plen);
    for (size_t i = 0; i < ch->n; i++)
        conn_write(ch->members[i], g_frame, flen); /* failures only mark the conn dead */
}

static void on_text(conn *c, const char *msg, size_t len)
{
    rc_proto_req rq;
    const char *why = NULL;
    char out[1024];
    ssize_t n;
    memset(&rq, 0, sizeof(rq));
    int err = rc_proto_parse(msg, len, RC_PROTO_MAX_CHANNEL, &rq, &why);
    rc_str id = {rq.id, err == RC_PERR_BAD_JSON ? 0 : rq.id_len};
    rc_str cs = {rq.channel, err ? 0 : rq.channel_len};
    if (err) {
        n = rc_proto_error(out, sizeof(out), id, err, why, RC_STR_NULL);
    } else if (rq.op == RC_OP_SUBSCRIBE) {
        chan_add(c, chan_find(rq.channel, rq.channel_len, 1));
        n = rc_proto_reply(out, sizeof(out), "subscribed", id, cs, -1);
    } else if (rq.op == RC_OP_UNSUBSCRIBE) {
        chan *ch = chan_find(rq.channel, rq.channel_len, 0);
        sub *s = ch ? find_sub(c, ch) : NULL;
        if (s) {
            chan_remove(c, s);
            n = rc_proto_reply(out, sizeof(out), "unsubscribed", id, cs, -1);
        } else {
            n = rc_proto_error(out, sizeof(out), id, RC_PERR_NOT_SUBSCRIBED, NULL, cs);
        }
    } else if (rq.op == RC_OP_PUBLISH) {
        publish(&rq);
        return;
    } else {
        n = rc_proto_pong(out, sizeof(out), id, rc_wall_ms());
    }
    if (n > 0)
        send_text(c, out, (size_t)n);
}

static void on_message(conn *c, int op, uint8_t *p, size_t n)
{
    if (op == RC_WS_OP_TEXT) {
        on_text(c, (const char *)p, n);
    } else {
        char out[256];
        ssize_t k = rc_proto_error(out, sizeof(out), RC_STR_NULL, RC_PERR_BINARY, NULL,
                                   RC_STR_NULL);
        if (k > 0)
            send_text(c, out, (size_t)k);
    }
}

/* Parses complete client frames from buf; returns the bytes consumed. */
static size_t parse_frames(conn *c, uint8_t *buf, size_t len)
{
    size_t off = 0;
    while (!c->dead && c->state == ST_WS && len - off >= 2) {
        uint8_t *f = buf + off;
        int fin = f[0] & 0x80, op = f[0] & 0x0f;
        uint64_t plen = f[1] & 0x7f;
        size_t h = 2;
        if ((f[0] & 0x70) || !(f[1] & 0x80)) { /* RSV bits, or an unmasked client frame */
            send_close(c, RC_CLOSE_PROTOCOL, "protocol error");
            break;
        }
        if (plen == 126) {
            if (len - off < 4)
                break;
            plen = (uint64_t)f[2] << 8 | f[3];
            h = 4;
        } else if (plen == 127) {
            if (len - off < 10)
                break;
            plen = 0;
            for (int i = 0; i < 8; i++)
                plen = plen << 8 | f[2 + i];
            h = 10;
        }
        if (plen > MAX_MSG) {
            send_close(c, RC_CLOSE_TOO_BIG, "message too big");
            break;
        }
        if (len - off < h + 4 + plen)
            break;
        uint8_t *mask = f + h, *p = f + h + 4;
        for (uint64_t i = 0; i < plen; i++)
            p[i] ^= mask[i & 3];
        off += h + 4 + plen;

        if (op >= 0x8) { /* control frames: never fragmented, at most 125 bytes */
            if (!fin || plen > 125) {
                send_close(c, RC_CLOSE_PROTOCOL, "bad control frame");
            } else if (op == RC_WS_OP_PING) {
                size_t flen;
                memcpy(frame_begin(RC_WS_OP_PONG, plen, &flen), p, plen);
                conn_write(c, g_frame, flen);
            } else if (op == RC_WS_OP_CLOSE) {
                uint16_t code = plen >= 2 ? (uint16_t)(p[0] << 8 | p[1]) : 0;
                send_close(c, code, "");
            } else if (op != RC_WS_OP_PONG) {
                send_close(c, RC_CLOSE_PROTOCOL, "unknown opcode");
            }
        } else if (!fin || op == RC_WS_OP_CONT) {
            send_close(c, RC_CLOSE_UNSUPPORTED, "fragmented messages are not supported");
        } else if (op == RC_WS_OP_TEXT || op == RC_WS_OP_BINARY) {
            on_message(c, op, p, plen);
        } else {
            send_close(c, RC_CLOSE_PROTOCOL, "unknown opcode");
        }
    }
    return off;
}

static const char *g_path = "/ws";

static void http_fail(conn *c, int status, const char *body)
{
    char out[512];
    int n = rc_http_response(out, sizeof(out), status, "text/plain", NULL, body, strlen(body));
    if (n > 0)
        conn_write(c, out, (size_t)n);
    close_after_flush(c);
}

/* Returns bytes consumed: the request head once it is complete and valid. */
static size_t parse_http(conn *c, uint8_t *buf, size_t len)
{
    rc_http_req req;
    const char *why = "bad request";
    int r = rc_http_parse((const char *)buf, len, MAX_HEAD, &req);
    if (r == RC_HTTP_INCOMPLETE)
        return 0;
    if (r != RC_HTTP_OK) {
        http_fail(c, r == RC_HTTP_ETOOBIG ? 431 : r == RC_HTTP_EVERSION ? 505 : 400, "bad\n");
        return len;
    }
    if (req.path.n != strlen(g_path) || memcmp(req.path.p, g_path, req.path.n) != 0) {
        http_fail(c, 404, "not found\n");
        return len;
    }
    int status = rc_ws_check_upgrade(&req, &why);
    char accept[29], out[512];
    if (status == 0 && rc_ws_accept_key(req.ws_key, accept) != 0)
        status = 400;
    if (status != 0) {
        http_fail(c, status, why);
        return len;
    }
    int n = rc_ws_response_101(out, sizeof(out), accept, RC_STR_NULL, NULL);
    rc_assert(n > 0);
    conn_write(c, out, (size_t)n);
    c->state = ST_WS;
    return req.head_len;
}

/* ---- the loop ------------------------------------------------------------ */

static void on_readable(conn *c)
{
    static uint8_t rbuf[READ_CHUNK];
    ssize_t r = recv(c->fd, rbuf, sizeof(rbuf), 0);
    if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
        kill_conn(c);
        return;
    }
    if (r < 0 || c->state == ST_CLOSING)
        return;
    /* Parse straight from rbuf when nothing is pending: the common case. */
    uint8_t *buf = rbuf;
    size_t len = (size_t)r;
    if (c->in_len > 0) {
        if (c->in_len + len > c->in_cap) {
            c->in_cap = RC_MAX(c->in_cap * 2, c->in_len + len);
            c->in = rc_realloc(c->in, c->in_cap);
        }
        memcpy(c->in + c->in_len, rbuf, len);
        c->in_len += len;
        buf = c->in;
        len = c->in_len;
    }
    size_t off = 0;
    if (c->state == ST_HTTP)
        off = parse_http(c, buf, len);
    if (c->state == ST_WS)
        off += parse_frames(c, buf + off, len - off);
    if (c->dead || c->state == ST_CLOSING) {
        c->in_len = 0;
        return;
    }
    size_t rest = len - off;
    if (rest > 0 && buf == rbuf) {
        if (rest > c->in_cap) {
            c->in_cap = RC_MAX(rest, 4096);
            c->in = rc_realloc(c->in, c->in_cap);
        }
        memcpy(c->in, rbuf + off, rest);
    } else if (rest > 0 && off > 0) {
        memmove(c->in, c->in + off, rest);
    }
    c->in_len = rest;
    if (c->state == ST_HTTP && c->in_len >= MAX_HEAD)
        http_fail(c, 431, "too big\n");
}

static void reap(void)
{
    for (size_t i = 0; i < g_n_reap; i++) {
        conn *c = g_reap[i];
        while (c->n_subs > 0)
            chan_remove(c, &c->subs[c->n_subs - 1]);
        g_conns[c->fd] = NULL;
        close(c->fd);
        free(c->in);
        free(c->out);
        free(c->subs);
        free(c);
    }
    g_n_reap = 0;
}

static void on_accept(int lfd, int *spare)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE) {
                /* Out of fds (ulimit -n): shed this client instead of spinning on a
                 * listener that stays readable. */
                static unsigned long shed;
                close(*spare);
                fd = accept(lfd, NULL, NULL);
                if (fd >= 0)
                    close(fd);
                *spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
                if (fd < 0)
                    return;
                shed++;
                if ((shed & (shed - 1)) == 0) /* 1st, 2nd, 4th, ... */
                    fprintf(stderr, "naive: out of file descriptors (ulimit -n), "
                                    "%lu connections refused\n", shed);
                continue;
            }
            return; /* EAGAIN, or a transient error: epoll reports the listener again */
        }
        if ((size_t)fd >= g_max_fd) {
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        conn *c = rc_calloc(1, sizeof(*c));
        c->fd = fd;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(g_ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
            close(fd);
            free(c);
            continue;
        }
        g_conns[fd] = c;
    }
}

static int listen_on(const char *spec)
{
    char host[256], err[256];
    const char *colon = strrchr(spec, ':');
    if (!colon || (size_t)(colon - spec) >= sizeof(host))
        return -1;
    snprintf(host, sizeof(host), "%.*s", (int)(colon - spec), spec);
    int fd = rc_listen_socket(host[0] ? host : "0.0.0.0", (uint16_t)atoi(colon + 1), err,
                              sizeof(err));
    if (fd < 0)
        fprintf(stderr, "naive: %s\n", err);
    else
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

int main(int argc, char **argv)
{
    const char *listen_spec = "127.0.0.1:8090";
    int cpu = -1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc) {
            listen_spec = argv[++i];
        } else if (strcmp(argv[i], "--path") == 0 && i + 1 < argc) {
            g_path = argv[++i];
        } else if (strcmp(argv[i], "--cpu") == 0 && i + 1 < argc) {
            cpu = atoi(argv[++i]);
        } else {
            fprintf(stderr, "usage: %s [--listen HOST:PORT] [--path /ws] [--cpu N]\n", argv[0]);
            return 2;
        }
    }
    if (cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        if (sched_setaffinity(0, sizeof(set), &set) < 0) {
            perror("naive: sched_setaffinity");
            return 1;
        }
    }
    struct rlimit rl;
    g_max_fd = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
                   ? (size_t)rl.rlim_cur : 1u << 20;
    g_conns = rc_calloc(g_max_fd, sizeof(*g_conns));

    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigprocmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    int sfd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);
    int lfd = listen_on(listen_spec);
    int spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
    g_ep = epoll_create1(EPOLL_CLOEXEC);
    if (lfd < 0 || sfd < 0 || g_ep < 0) {
        fprintf(stderr, "naive: cannot listen on %s: %s\n", listen_spec, strerror(errno));
        return 1;
    }
    /* Listener and signalfd are told apart from connections by these tags. */
    static int tag_listen, tag_signal;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &tag_listen};
    epoll_ctl(g_ep, EPOLL_CTL_ADD, lfd, &ev);
    ev.data.ptr = &tag_signal;
    epoll_ctl(g_ep, EPOLL_CTL_ADD, sfd, &ev);

    struct sockaddr_storage bound;
    socklen_t blen = sizeof(bound);
    getsockname(lfd, (struct sockaddr *)&bound, &blen);
    printf("listening on %d\n", ntohs(((struct sockaddr_in *)&bound)->sin_port));
    fflush(stdout);

    struct epoll_event evs[256];
    for (int running = 1; running;) {
        int n = epoll_wait(g_ep, evs, (int)RC_ARRAY_LEN(evs), -1);
        if (n < 0 && errno != EINTR) {
            perror("naive: epoll_wait");
            return 1;
        }
        for (int i = 0; i < n; i++) {
            void *tag = evs[i].data.ptr;
            if (tag == &tag_listen) {
                on_accept(lfd, &spare);
                continue;
            }
            if (tag == &tag_signal) {
                running = 0;
                continue;
            }
            conn *c = tag;
            if (c->dead)
                continue;
            if (evs[i].events & (EPOLLERR | EPOLLHUP))
                kill_conn(c);
            if (!c->dead && (evs[i].events & EPOLLOUT))
                flush_backlog(c);
            if (!c->dead && (evs[i].events & EPOLLIN))
                on_readable(c);
        }
        reap();
    }
    for (size_t fd = 0; fd < g_max_fd; fd++)
        if (g_conns[fd])
            kill_conn(g_conns[fd]);
    reap();
    /* Channels and scratch buffers die with the process. */
    close(lfd);
    return 0;
}
