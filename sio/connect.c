/* A namespace CONNECT on a Socket.IO session (sio/socket_int.h): the
 * auth payload's token, the answer (with the pid), and connection state
 * recovery's side of it: taking a kept session and subscribing its rooms
 * again (sio/recovery.h), and keeping the session when its connection ends.
 *
 * Thread: the shard that owns the connection. */
#include <string.h>

#include "base/log.h"
#include "channels/shard.h"
#include "ops/ops.h"
#include "sio/packet.h"
#include "sio/session.h"
#include "sio/socket.h"
#include "sio/socket_int.h"
#include "ws/b64url.h"

#define SOCKET_ID_LEN 20 /* base64url of 15 random bytes */

typedef rc_sio_conn sio_conn;

static sio_conn *state(rc_shard *s, const rc_conn *c)
{
    return rc_sio_state(s, c);
}

static void connect_error(rc_shard *s, rc_conn *c, rc_str nsp, const char *why)
{
    char buf[RC_SIO_MAX_NSP + RC_PROTO_MAX_TEXT + 64];
    rc_counter_inc(&s->stats.sio_connect_errors);
    rc_sio_send_msg(
        s, c, buf,
        rc_sio_write_connect_error(buf + 1, sizeof(buf) - 1, nsp, (rc_str){why, strlen(why)}));
}

/* The CONNECT answer of namespace i (an Engine.IO message): a new socket
 * id, and the session's pid when it has one for i. Its length, or 0. */
static size_t connect_packet(rc_shard *s, const sio_conn *st, int i, char *out, size_t cap)
{
    char sock_id[SOCKET_ID_LEN + 1], pid[RC_SIO_PID_LEN + 1];
    rc_sio_random_chars(sock_id, SOCKET_ID_LEN);
    rc_str ps = RC_STR_NULL;
    if (st->pid_nsp == i + 1) {
        rc_sio_pid_text(st, pid);
        ps = (rc_str){pid, RC_SIO_PID_LEN};
    }
    if (cap < 2)
        return 0;
    ssize_t n = rc_sio_write_connect(out + 1, cap - 1, rc_sio_nsp_name(s, i),
                                     (rc_str){sock_id, SOCKET_ID_LEN}, ps);
    if (n < 0)
        return 0;
    out[0] = RC_EIO_MESSAGE;
    return (size_t)n + 1;
}

/* The namespace CONNECT is accepted: the answer (with the session's pid
 * when recovery is on; recovered: the pid the client gave), and the
 * session opens on its first. */
static void connected(rc_shard *s, rc_conn *c, sio_conn *st, int i, int recovered)
{
    if (s->cfg->sio_recovery_s && (!st->pid_nsp || st->pid_nsp == i + 1)) {
        if (!recovered) {
            rc_sio_random_bytes(st->pid, sizeof(st->pid));
            st->open_tick = (uint32_t)s->sio_tick;
        }
        st->pid_nsp = (uint8_t)(i + 1);
        st->keep = 1;
    }
    st->nsps |= (uint8_t)(1u << i);
    rc_counter_inc(&s->stats.sio_connects);
    if (rc_conn_is_virtual(s, c)) {
        /* A polling session's answer is written when a GET takes its
         * output: it holds no queued bytes meanwhile. */
        st->connect_due |= (uint8_t)(1u << i);
        rc_sio_drain(s, c);
    } else {
        char buf[RC_SIO_MAX_NSP + 96];
        size_t n = connect_packet(s, st, i, buf, sizeof(buf));
        if (n)
            rc_conn_send_text(s, c, buf, n);
    }
    if (!st->opened) {
        st->opened = 1;
        rc_op_opened(s, c); /* lifecycle, user channel */
    }
}

size_t rc_sio_connect_due(rc_shard *s, rc_conn *c, rc_sio_conn *st, char *out, size_t cap)
{
    (void)c;
    for (int i = 0; i <= s->cfg->n_sio_nsps; i++) {
        if (!(st->connect_due >> i & 1))
            continue;
        st->connect_due &= (uint8_t) ~(1u << i);
        size_t n = connect_packet(s, st, i, out, cap);
        if (n)
            return n;
    }
    return 0;
}

/* A pid as the node gives them out. */
static int pid_valid(rc_str p)
{
    if (p.n != RC_SIO_PID_LEN)
        return 0;
    for (size_t k = 0; k < p.n; k++) {
        char ch = p.p[k];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_'))
            return 0;
    }
    return 1;
}

/* CONNECT to a namespace, with auth {"token":T,...} or none; a client
 * that was connected before adds "pid" and "offset" to recover. */
void rc_sio_on_connect(rc_shard *s, rc_conn *c, sio_conn *st, const rc_sio_packet *pk)
{
    int i = rc_sio_nsp_index(s, pk->nsp);
    if (i < 0) {
        connect_error(s, c, pk->nsp, "Invalid namespace");
        return;
    }
    if (st->restoring == i + 1) {
        /* Other namespaces connect meanwhile; this one is under way. */
        connect_error(s, c, pk->nsp, "a recovery of this namespace is under way");
        return;
    }
    rc_str tok = RC_STR_NULL;
    char *tbuf = NULL;
    char pid[RC_SIO_PID_LEN + 1], offset[RC_SIO_OFFSET_MAX + 1];
    ssize_t pidn = -1, offn = 0;
    if (pk->data.n) {
        rc_json_iter it;
        rc_json_val k, v;
        if (rc_json_object_begin(&it, pk->data.p, pk->data.n, RC_PROTO_MAX_DEPTH) == 0) {
            while (rc_json_object_next(&it, &k, &v) > 0) {
                if (rc_json_key_is(&k, "pid") && v.type == RC_JSON_STRING)
                    pidn = rc_json_string(&v, pid, sizeof(pid));
                else if (rc_json_key_is(&k, "offset") && v.type == RC_JSON_STRING)
                    offn = RC_MAX(rc_json_string(&v, offset, sizeof(offset)), 0);
                if (!rc_json_key_is(&k, "token") || v.type == RC_JSON_NULL)
                    continue;
                free(tbuf); /* a repeated key: the last one counts */
                tbuf = rc_malloc(RC_JWT_MAX_LEN + 1);
                ssize_t n =
                    v.type == RC_JSON_STRING ? rc_json_string(&v, tbuf, RC_JWT_MAX_LEN + 1) : -1;
                if (n <= 0) {
                    free(tbuf);
                    connect_error(s, c, pk->nsp, "malformed token");
                    return;
                }
                tok = (rc_str){tbuf, (size_t)n};
            }
        }
    }
    rc_auth *auth = NULL;
    if (tok.n) {
        int e = rc_op_verify_token(s, tok.p, tok.n, &auth);
        free(tbuf);
        if (e != RC_JWT_OK) {
            connect_error(s, c, pk->nsp, rc_jwt_strerror(e));
            return;
        }
    } else if (!c->auth && !s->cfg->allow_anonymous) {
        connect_error(s, c, pk->nsp, "a token is required");
        return;
    }
    if (st->opened && auth &&
        (!c->auth || strcmp(rc_auth_user(c->auth), rc_auth_user(auth)) != 0)) {
        free(auth);
        connect_error(s, c, pk->nsp, "one connection carries one user: reconnect to change users");
        return;
    }
    if (!st->opened && auth) {
        c->auth = auth;
        rc_conn_new_token(s, c); /* its exp */
    } else {
        free(auth);
    }
    rc_str pids = {pid, (size_t)RC_MAX(pidn, 0)};
    if (s->cfg->sio_recovery_s && !st->pid_nsp && pid_valid(pids)) {
        /* The answer waits for the kept session (rc_sio_on_kept). */
        rc_assert(rc_b64url_decode(pid, RC_SIO_PID_LEN, st->pid, sizeof(st->pid)) ==
                  (int)sizeof(st->pid));
        st->restoring = (uint8_t)(i + 1);
        st->pid_nsp = (uint8_t)(i + 1); /* the pid is this namespace's, recovered or not */
        st->open_tick = (uint32_t)s->sio_tick;
        rc_sio_take_session(s, c, i, pids, (rc_str){offset, (size_t)offn});
        return;
    }
    connected(s, c, st, i, 0);
}

/* ---- recovery ---------------------------------------------------------------- */

#define RESTORE_TAG ((rc_str){"R", 1}) /* no ack id looks like it */

int rc_sio_is_restore(rc_str tag)
{
    return tag.n == 1 && tag.p[0] == 'R';
}

static void recovery_counted(rc_shard *s, int outcome)
{
    rc_counter_inc(&s->stats.sio_recoveries[outcome]);
}

/* One of the recovery's subscribes has its answer (or the last step of
 * starting them): once all have, the CONNECT is answered. */
void rc_sio_restore_step(rc_shard *s, rc_conn *c, sio_conn *st, int lost)
{
    if (!st->restoring)
        return;
    st->lost |= lost ? 1 : 0;
    if (--st->pending)
        return;
    int i = st->restoring - 1;
    st->restoring = 0;
    recovery_counted(s, st->lost ? RC_SIO_REC_NOT_COVERED : RC_SIO_REC_RECOVERED);
    /* Not recovered: the client is told (a new pid) and reloads; the rooms
     * it had stay joined, so its joins again are answered at once. */
    connected(s, c, st, i, !st->lost);
}

void rc_sio_on_kept(rc_shard *s, rc_sio_keep *k)
{
    rc_conn *c = k->conn < s->nconns ? &s->conns[k->conn] : NULL;
    sio_conn *st = c && c->gen == k->gen && c->state == RC_CONN_OPEN && c->proto == RC_PROTO_SIO
                       ? state(s, c)
                       : NULL;
    if (!st || st->role != RC_SIO_SESSION || st->restoring != k->nsp + 1) {
        rc_sio_keep_free(k); /* the connection went meanwhile */
        return;
    }
    rc_sio_room *rooms;
    uint32_t n;
    int why = rc_sio_plan(k, c->auth ? rc_auth_user(c->auth) : "", s->cfg->max_channels_per_conn,
                          &rooms, &n);
    rc_sio_keep_free(k);
    if (why != RC_SIO_REC_RECOVERED) {
        int i = st->restoring - 1;
        st->restoring = 0;
        recovery_counted(s, why);
        connected(s, c, st, i, 0);
        return;
    }
    st->pending = 1;
    st->lost = 0;
    for (uint32_t j = 0; j < n; j++) {
        st->pending++;
        rc_str ch = {rooms[j].name, rooms[j].len};
        /* The rooms the server had joined come back as the server's (no
         * rights applied then, nor now); the client's own pass its
         * token's rights again. */
        if (rooms[j].server)
            rc_chan_subscribe_as(s, c, RESTORE_TAG, ch, &rooms[j].since, 1);
        else
            rc_op_subscribe(s, c, RESTORE_TAG, ch, &rooms[j].since);
    }
    free(rooms);
    rc_sio_restore_step(s, c, st, 0);
}

/* The rooms a kept session comes back to: those of its namespace, but not
 * the user channel (user:<sub>) unless it keeps history: the node joins
 * every connection of the user to it anyway. */
static int kept_room(const rc_shard *s, const rc_conn *c, const char *ch, size_t n, int nsp)
{
    if (!rc_sio_in_nsp(s, ch, n, nsp))
        return 0;
    const char *user = c->auth ? rc_auth_user(c->auth) : NULL;
    if (user && n == 5 + strlen(user) && memcmp(ch, "user:", 5) == 0 &&
        memcmp(ch + 5, user, n - 5) == 0)
        return rc_config_history(s->cfg, ch, n) != NULL;
    return 1;
}

void rc_sio_keep_closed(rc_shard *s, rc_conn *c, sio_conn *st)
{
    if (!st->keep || !st->pid_nsp || st->restoring || !s->cfg->sio_recovery_s)
        return;
    char pid[RC_SIO_PID_LEN + 1];
    rc_sio_pid_text(st, pid);
    /* open_tick keeps the clock's low 32 bits: the reading it was. */
    uint64_t open = (s->sio_tick & ~(uint64_t)UINT32_MAX) | st->open_tick;
    if (open > s->sio_tick)
        open -= (uint64_t)1 << 32;
    rc_sio_keep_session(s, c, pid, open, kept_room, st->pid_nsp - 1);
}
