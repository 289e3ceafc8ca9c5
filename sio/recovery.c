/* Connection state recovery for Socket.IO clients: the shard's side
 * (sio/recovery.h). The relay's side is sio/keeper.c.
 *
 * Thread: the shard that owns the connection. */
#include "sio/recovery.h"

#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "base/log.h"
#include "channels/room.h"
#include "engine/msg.h"

static const char *const rec_names[RC_SIO_REC__COUNT] = {
    "recovered", "unknown", "other_user", "no_history", "unplaced", "not_covered", "unavailable",
};
_Static_assert(RC_SIO_REC__COUNT <= RC_SIO_REC_SLOTS, "rc_shard_stats.sio_recoveries is too small");

const char *rc_sio_rec_name(int outcome)
{
    return outcome >= 0 && outcome < RC_SIO_REC__COUNT ? rec_names[outcome] : "unknown";
}

void rc_sio_keep_free(rc_sio_keep *k)
{
    if (k) {
        free(k->text);
        free(k);
    }
}

/* ---- the frame clock ---------------------------------------------------- */

/* The name of this shard's clock and its key: random per start, so that
 * readings of another shard or another run never compare, and nobody but
 * the node writes an offset that reads back (a client's last argument is
 * any string an event ended with, which may be anyone's text). */
static uint32_t clock_name(rc_shard *s)
{
    while (!s->sio_clock) {
        uint32_t v = 0;
        if (getrandom(&v, sizeof(v), 0) == (ssize_t)sizeof(v) &&
            getrandom(s->sio_key, sizeof(s->sio_key), 0) == (ssize_t)sizeof(s->sio_key))
            s->sio_clock = v;
    }
    return s->sio_clock;
}

size_t rc_sio_offset_text(const uint8_t key[16], uint64_t epoch, uint64_t offset, uint32_t clock,
                          uint64_t tick, char *out, size_t cap)
{
    char body[96];
    int n = snprintf(body, sizeof(body), "%016llx-%llu-%08x-%llu", (unsigned long long)epoch,
                     (unsigned long long)offset, clock, (unsigned long long)tick);
    uint8_t mac[EVP_MAX_MD_SIZE];
    unsigned ml = 0;
    if (n <= 0 || (size_t)n >= sizeof(body) ||
        !HMAC(EVP_sha256(), key, 16, (const uint8_t *)body, (size_t)n, mac, &ml) || ml < 8)
        return 0;
    int w = snprintf(out, cap, "%s-%02x%02x%02x%02x%02x%02x%02x%02x", body, mac[0], mac[1], mac[2],
                     mac[3], mac[4], mac[5], mac[6], mac[7]);
    return w > 0 && (size_t)w < cap ? (size_t)w : 0;
}

/* An epoch as the node gives them out: 16 hex digits, as a number (0: not
 * one of those). */
static uint64_t epoch_num(rc_str e)
{
    if (e.n != 16)
        return 0;
    uint64_t v = 0;
    for (size_t i = 0; i < 16; i++) {
        char ch = e.p[i];
        int d = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
        if (d < 0)
            return 0;
        v = v << 4 | (uint64_t)d;
    }
    return v;
}

static void note(rc_room *r, uint64_t epoch, uint64_t offset)
{
    if (!epoch)
        return;
    if (r->top_epoch != epoch || offset > r->top) {
        r->top_epoch = epoch;
        r->top = offset;
    }
}

size_t rc_sio_offset_arg(rc_shard *s, const rc_msg *m, rc_str epoch, int has_offset,
                         uint64_t offset, char *out, size_t cap)
{
    rc_room *r = rc_rooms_get(s->rooms, m->chan, m->chan_len);
    uint64_t tick = ++s->sio_tick;
    if (r)
        r->top_tick = tick;
    uint64_t e = has_offset ? epoch_num(epoch) : 0;
    if (!e)
        return 0;
    if (r)
        note(r, e, offset);
    uint32_t clock = clock_name(s);
    if (cap < 3)
        return 0;
    size_t n = rc_sio_offset_text(s->sio_key, e, offset, clock, tick, out + 1, cap - 2);
    if (!n)
        return 0;
    out[0] = '"';
    out[n + 1] = '"';
    return n + 2;
}

void rc_sio_note_position(rc_shard *s, rc_str ch, const rc_sub_info *info)
{
    if (!info || !info->has_pos)
        return;
    rc_room *r = rc_rooms_get(s->rooms, ch.p, ch.n);
    if (r)
        note(r, epoch_num(info->epoch), info->offset);
}

/* ---- keeping a session -------------------------------------------------- */

static void to_relay(rc_shard *s, rc_sio_keep *k)
{
    rc_shard_to_relay(s, RC_Q_SIO_KEEP, k, 0);
}

void rc_sio_keep_session(rc_shard *s, const rc_conn *c, const char *pid, uint64_t open_tick,
                         int (*keep)(const rc_shard *s, const rc_conn *c, const char *ch, size_t n,
                                     int nsp),
                         int nsp)
{
    const char *user = c->auth ? rc_auth_user(c->auth) : "";
    char uj[RC_JSON_ESCAPED_MAX(RC_PROTO_MAX_USER)];
    ssize_t un = rc_json_escape(uj, sizeof(uj), user, strlen(user));
    size_t cap = 96 + (size_t)RC_MAX(un, 0) + (size_t)c->nchan * (RC_PROTO_MAX_CHANNEL * 6 + 80);
    char *t = rc_malloc(cap);
    uint32_t clock = clock_name(s);
    char kh[33];
    for (int i = 0; i < 16; i++)
        snprintf(kh + 2 * i, 3, "%02x", s->sio_key[i]);
    size_t n = (size_t)snprintf(
        t, cap, "{\"u\":%.*s,\"n\":%d,\"s\":\"%08x\",\"k\":\"%s\",\"o\":%llu,\"c\":[",
        (int)RC_MAX(un, 0), uj, nsp, clock, kh, (unsigned long long)open_tick);
    int first = 1;
    for (uint32_t i = 0; i < c->nchan; i++) {
        const rc_room *r = c->chans[i].room;
        if (!keep(s, c, r->name, r->name_len, nsp))
            continue;
        char nj[RC_JSON_ESCAPED_MAX(RC_PROTO_MAX_CHANNEL)];
        ssize_t nn = rc_json_escape(nj, sizeof(nj), r->name, r->name_len);
        if (nn < 0)
            continue;
        n += (size_t)snprintf(t + n, cap - n, "%s[%.*s,\"%016llx\",%llu,%llu,%s]", first ? "" : ",",
                              (int)nn, nj, (unsigned long long)r->top_epoch,
                              (unsigned long long)r->top, (unsigned long long)r->top_tick,
                              c->chans[i].server ? "true" : "false");
        first = 0;
    }
    n += (size_t)snprintf(t + n, cap - n, "]}");
    rc_assert(n < cap);
    rc_sio_keep *k = rc_calloc(1, sizeof(*k));
    k->op = RC_SIO_KEEP_SAVE;
    k->shard = (uint16_t)s->id;
    k->ttl_ms = s->cfg->sio_recovery_s * 1000u;
    memcpy(k->pid, pid, RC_SIO_PID_LEN);
    k->text = t;
    k->len = n;
    to_relay(s, k);
}

void rc_sio_take_session(rc_shard *s, const rc_conn *c, int nsp, rc_str pid, rc_str offset)
{
    rc_assert(pid.n == RC_SIO_PID_LEN && offset.n <= RC_SIO_OFFSET_MAX);
    rc_sio_keep *k = rc_calloc(1, sizeof(*k));
    k->op = RC_SIO_KEEP_TAKE;
    k->nsp = (uint8_t)nsp;
    k->shard = (uint16_t)s->id;
    k->conn = rc_conn_id(s, c);
    k->gen = c->gen;
    memcpy(k->pid, pid.p, pid.n);
    memcpy(k->offset, offset.p, offset.n);
    to_relay(s, k);
}

/* ---- reading a kept session ---------------------------------------------- */

/* The client's offset: its channel's epoch and offset, and the frame's
 * clock name and reading. 0, or -1 when it is not one the node wrote. */
typedef struct client_pos {
    uint64_t epoch, offset, tick;
    uint32_t clock;
} client_pos;

static int read_u64(const char **p, const char *end, int base, uint64_t *out)
{
    const char *q = *p;
    uint64_t v = 0;
    int digits = 0;
    for (; q < end && *q != '-'; q++, digits++) {
        char ch = *q;
        int d = ch >= '0' && ch <= '9'                 ? ch - '0'
                : base == 16 && ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                                                       : -1;
        if (d < 0 || digits >= (base == 16 ? 16 : 19))
            return -1;
        v = v * (uint64_t)base + (uint64_t)d;
    }
    if (digits == 0)
        return -1;
    *out = v;
    *p = q < end ? q + 1 : q;
    return 0;
}

/* "EPOCH-OFFSET-CLOCK-TICK-MAC": 0, or -1 (the MAC is checked apart). */
static int read_offset(const char *o, client_pos *cp)
{
    const char *p = o, *end = o + strlen(o);
    uint64_t clock, mac;
    if (read_u64(&p, end, 16, &cp->epoch) < 0 || read_u64(&p, end, 10, &cp->offset) < 0 ||
        read_u64(&p, end, 16, &clock) < 0 || clock > UINT32_MAX ||
        read_u64(&p, end, 10, &cp->tick) < 0 || p == end || !cp->epoch)
        return -1;
    if (end - p != 16 || read_u64(&p, end, 16, &mac) < 0 || p != end)
        return -1;
    cp->clock = (uint32_t)clock;
    return 0;
}

/* The offset is one this shard run wrote (key: its clock's key, as hex). */
static int offset_genuine(const char *o, const client_pos *cp, const char *key_hex)
{
    uint8_t key[16];
    if (strlen(key_hex) != 32)
        return 0;
    for (int i = 0; i < 16; i++) {
        unsigned b;
        if (sscanf(key_hex + 2 * i, "%2x", &b) != 1)
            return 0;
        key[i] = (uint8_t)b;
    }
    char mine[RC_SIO_OFFSET_MAX + 1];
    size_t n =
        rc_sio_offset_text(key, cp->epoch, cp->offset, cp->clock, cp->tick, mine, sizeof(mine));
    /* Compared in constant time: the MAC is the secret's witness. */
    size_t ol = strlen(o);
    if (!n || n != ol)
        return 0;
    unsigned diff = 0;
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned)(uint8_t)(mine[i] ^ o[i]);
    return diff == 0;
}

static int get_u64(const rc_json_val *v, uint64_t *out)
{
    int64_t x;
    if (v->type != RC_JSON_NUMBER || rc_json_int64(v, &x) < 0 || x < 0)
        return -1;
    *out = (uint64_t)x;
    return 0;
}

/* One room of the record: ["name","epoch",top,tick,server]. */
static int read_room(const rc_json_val *v, rc_sio_room *rm, uint64_t *epoch, uint64_t *top,
                     uint64_t *tick)
{
    rc_json_iter it;
    rc_json_val f[5];
    int k = 0;
    if (rc_json_array_begin(&it, v->raw.p, v->raw.n, 4) < 0)
        return -1;
    while (k < 5 && rc_json_array_next(&it, &f[k]) > 0)
        k++;
    char e[17];
    ssize_t nl = k == 5 && f[0].type == RC_JSON_STRING
                     ? rc_json_string(&f[0], rm->name, sizeof(rm->name))
                     : -1;
    if (nl <= 0 || f[1].type != RC_JSON_STRING || rc_json_string(&f[1], e, sizeof(e)) != 16 ||
        get_u64(&f[2], top) < 0 || get_u64(&f[3], tick) < 0 ||
        (f[4].type != RC_JSON_TRUE && f[4].type != RC_JSON_FALSE))
        return -1;
    rm->len = (size_t)nl;
    rm->server = f[4].type == RC_JSON_TRUE;
    *epoch = epoch_num((rc_str){e, 16});
    return 0;
}

int rc_sio_plan(const rc_sio_keep *k, const char *user, uint32_t max_rooms, rc_sio_room **rooms,
                uint32_t *n)
{
    *rooms = NULL;
    *n = 0;
    if (k->result == RC_SIO_KEPT_UNAVAILABLE)
        return RC_SIO_REC_UNAVAILABLE;
    if (k->result != RC_SIO_KEPT_FOUND || !k->text)
        return RC_SIO_REC_UNKNOWN;
    client_pos cp = {0};
    int has_pos = k->offset[0] && read_offset(k->offset, &cp) == 0;
    rc_json_iter it;
    rc_json_val key, v, chans = {0};
    char u[RC_PROTO_MAX_USER + 1] = "", clock_s[9] = "", key_hex[33] = "";
    uint64_t open_tick = 0, nsp = UINT64_MAX;
    int have_user = 0;
    if (rc_json_object_begin(&it, k->text, k->len, 4) < 0)
        return RC_SIO_REC_UNKNOWN;
    while (rc_json_object_next(&it, &key, &v) > 0) {
        if (rc_json_key_is(&key, "u"))
            have_user = v.type == RC_JSON_STRING && rc_json_string(&v, u, sizeof(u)) >= 0;
        else if (rc_json_key_is(&key, "s") && v.type == RC_JSON_STRING)
            rc_json_string(&v, clock_s, sizeof(clock_s));
        else if (rc_json_key_is(&key, "k") && v.type == RC_JSON_STRING)
            rc_json_string(&v, key_hex, sizeof(key_hex));
        else if (rc_json_key_is(&key, "n"))
            get_u64(&v, &nsp);
        else if (rc_json_key_is(&key, "o"))
            get_u64(&v, &open_tick);
        else if (rc_json_key_is(&key, "c") && v.type == RC_JSON_ARRAY)
            chans = v;
    }
    if (!have_user || !chans.raw.n || nsp != k->nsp)
        return RC_SIO_REC_UNKNOWN; /* not a session this node wrote, or another namespace's */
    if (strcmp(u, user ? user : "") != 0)
        return RC_SIO_REC_OTHER_USER;
    uint32_t clock = (uint32_t)strtoul(clock_s, NULL, 16);
    /* A position counts only when this shard run wrote it: anything else
     * (another run's, an event's last string argument, a forgery) places
     * nothing. */
    has_pos = has_pos && strlen(clock_s) == 8 && clock == cp.clock &&
              offset_genuine(k->offset, &cp, key_hex);
    int same_clock = has_pos;
    uint32_t cap = 0;
    rc_sio_room *out = NULL;
    int why = RC_SIO_REC_RECOVERED;
    if (rc_json_array_begin(&it, chans.raw.p, chans.raw.n, 4) < 0)
        return RC_SIO_REC_UNKNOWN;
    while (why == RC_SIO_REC_RECOVERED && rc_json_array_next(&it, &v) > 0) {
        if (*n >= max_rooms) {
            why = RC_SIO_REC_UNKNOWN; /* more rooms than a connection may hold */
            break;
        }
        if (*n == cap) {
            cap = cap ? cap * 2 : 4;
            out = rc_realloc(out, cap * sizeof(*out));
        }
        rc_sio_room *rm = &out[*n];
        uint64_t epoch, top, tick;
        if (read_room(&v, rm, &epoch, &top, &tick) < 0) {
            why = RC_SIO_REC_UNKNOWN;
            break;
        }
        uint64_t from = top;
        if (!epoch) {
            why = RC_SIO_REC_NO_HISTORY; /* no position: what it missed is not kept */
            break;
        }
        if ((same_clock && tick <= cp.tick) || tick <= open_tick) {
            /* Its last frame reached the client (or none was made since
             * the session began): it stands at the room's top. */
        } else if (has_pos && epoch == cp.epoch) {
            from = cp.offset; /* the room the client's offset names */
        } else {
            why = RC_SIO_REC_UNPLACED;
            break;
        }
        snprintf(rm->epoch, sizeof(rm->epoch), "%016llx", (unsigned long long)epoch);
        rm->since = (rc_since){.has = 1, .offset = from, .epoch = {rm->epoch, 16}};
        (*n)++;
    }
    if (why != RC_SIO_REC_RECOVERED) {
        free(out);
        *n = 0;
        return why;
    }
    *rooms = out;
    return why;
}
