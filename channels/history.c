/* The channels' history on the relay (channels/history.h).
 *
 * Thread: the relay thread (rc_histreq_*: any). */
#include "channels/history.h"

#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "channels/room.h"

#define EPOCH_LEN 16 /* hex digits of 64 random bits */

typedef struct entry {
    uint64_t offset;
    rc_msg *m;
} entry;

struct rc_hist {
    rc_room *room; /* its name and index entry; room->udata is this */
    const rc_history_rule *rule;
    char epoch[RC_PROTO_MAX_EPOCH + 1]; /* ours (EPOCH_LEN), or Redis's */
    uint64_t top;
    int64_t last_ms; /* the last publication, or the creation */
    entry *ring;     /* grows to rule->size */
    uint32_t cap, head, n;
    rc_hist *prev, *next; /* most recently published first */
    int known;            /* see rc_hist_known */
    rc_hist_read rd;
};

struct rc_history {
    const rc_config *cfg;
    int redis;
    rc_rooms *index;
    rc_hist *newest, *oldest;
    rc_history_stats st;
};

static void set_epoch(rc_hist *e, rc_str epoch)
{
    size_t n = RC_MIN(epoch.n, (size_t)RC_PROTO_MAX_EPOCH);
    memset(e->epoch, 0, sizeof(e->epoch));
    memcpy(e->epoch, epoch.p, n);
}

static int same_epoch(const rc_hist *e, rc_str epoch)
{
    return epoch.n == strlen(e->epoch) && memcmp(epoch.p, e->epoch, epoch.n) == 0;
}

rc_history *rc_history_new(const rc_config *cfg, int redis)
{
    rc_history *h = rc_calloc(1, sizeof(*h));
    h->cfg = cfg;
    h->redis = redis;
    h->index = rc_rooms_new();
    return h;
}

static void unlink_rec(rc_history *h, rc_hist *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        h->newest = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        h->oldest = e->prev;
    e->prev = e->next = NULL;
}

static void push_newest(rc_history *h, rc_hist *e)
{
    e->prev = NULL;
    e->next = h->newest;
    if (h->newest)
        h->newest->prev = e;
    h->newest = e;
    if (!h->oldest)
        h->oldest = e;
}

static void drop_entries(rc_history *h, rc_hist *e)
{
    for (uint32_t i = 0; i < e->n; i++) {
        rc_msg *m = e->ring[(e->head + i) % e->cap].m;
        h->st.bytes -= m->frame_len;
        rc_msg_put(m);
    }
    h->st.entries -= e->n;
    e->head = e->n = 0;
}

static void drop_read(rc_hist *e)
{
    for (uint32_t i = 0; i < e->rd.rd_n; i++)
        rc_msg_put(e->rd.rd_msgs[i]);
    free(e->rd.rd_msgs);
    e->rd.rd_msgs = NULL;
    e->rd.rd_n = 0;
    e->rd.replied = 0;
}

static void forget(rc_history *h, rc_hist *e)
{
    /* Records with questions waiting are never chosen (see below); at exit
     * the relay has answered or dropped them. */
    drop_read(e);
    drop_entries(h, e);
    unlink_rec(h, e);
    free(e->ring);
    rc_rooms_del(h->index, e->room);
    free(e);
    h->st.channels--;
}

void rc_history_free(rc_history *h)
{
    if (!h)
        return;
    while (h->oldest)
        forget(h, h->oldest);
    rc_rooms_free(h->index);
    free(h);
}

static void new_epoch(char out[EPOCH_LEN + 1])
{
    uint64_t r = 0;
    if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
        r = (uint64_t)rc_now_ns() ^ ((uint64_t)rc_wall_ms() << 20);
    snprintf(out, EPOCH_LEN + 1, "%016llx", (unsigned long long)r);
}

rc_hist *rc_history_open(rc_history *h, rc_str chan, int64_t now_ms)
{
    rc_room *r = rc_rooms_get(h->index, chan.p, chan.n);
    if (r)
        return r->udata;
    const rc_history_rule *rule = rc_config_history(h->cfg, chan.p, chan.n);
    if (!rule)
        return NULL;
    if (h->st.channels >= RC_HISTORY_MAX_CHANNELS) {
        rc_hist *old = h->oldest;
        while (old && old->rd.head)
            old = old->prev;
        if (old)
            forget(h, old);
    }
    rc_hist *e = rc_calloc(1, sizeof(*e));
    e->room = rc_rooms_add(h->index, chan.p, chan.n);
    e->room->udata = e;
    e->rule = rule;
    new_epoch(e->epoch);
    e->known = !h->redis;
    e->last_ms = now_ms;
    push_newest(h, e);
    h->st.channels++;
    return e;
}

uint64_t rc_hist_next(rc_hist *e)
{
    return e->top + 1;
}

uint64_t rc_hist_top(const rc_hist *e)
{
    return e->top;
}

rc_str rc_hist_epoch(const rc_hist *e)
{
    return (rc_str){e->epoch, strlen(e->epoch)};
}

void rc_hist_append(rc_history *h, rc_hist *e, uint64_t offset, rc_msg *m, int64_t now_ms)
{
    rc_assert(offset == e->top + 1);
    e->top = offset;
    e->last_ms = now_ms;
    if (h->newest != e) {
        unlink_rec(h, e);
        push_newest(h, e);
    }
    uint32_t size = e->rule->size;
    if (e->n == e->cap && e->cap < size) {
        /* Grow (a power of two at most, up to the rule's size), unrolling. */
        uint32_t ncap = e->cap ? RC_MIN(e->cap * 2, size) : RC_MIN(8u, size);
        entry *nr = rc_malloc(ncap * sizeof(*nr));
        for (uint32_t i = 0; i < e->n; i++)
            nr[i] = e->ring[(e->head + i) % e->cap];
        free(e->ring);
        e->ring = nr;
        e->cap = ncap;
        e->head = 0;
    }
    if (e->n == e->cap) { /* full: the oldest goes */
        entry *old = &e->ring[e->head];
        h->st.bytes -= old->m->frame_len;
        rc_msg_put(old->m);
        e->head = (e->head + 1) % e->cap;
        e->n--;
        h->st.entries--;
    }
    e->ring[(e->head + e->n) % e->cap] = (entry){offset, m};
    e->n++;
    h->st.entries++;
    h->st.bytes += m->frame_len;
}

static void take(rc_hist *e, uint32_t from, uint32_t count, rc_msg ***out, uint32_t *n)
{
    *n = count;
    *out = count ? rc_malloc(count * sizeof(rc_msg *)) : NULL;
    for (uint32_t i = 0; i < count; i++) {
        rc_msg *m = e->ring[(e->head + from + i) % e->cap].m;
        rc_ref_get(&m->refs);
        (*out)[i] = m;
    }
}

int rc_hist_since(rc_hist *e, rc_str epoch, uint64_t since, uint32_t max, rc_msg ***out,
                  uint32_t *n)
{
    *out = NULL;
    *n = 0;
    if (!same_epoch(e, epoch))
        return RC_REC_EPOCH;
    if (since > e->top)
        return RC_REC_AHEAD;
    uint64_t missed = e->top - since;
    if (missed == 0)
        return RC_REC_OK;
    if (missed > max)
        return RC_REC_TOO_MANY;
    /* Kept: offsets top - n + 1 .. top, contiguous. */
    if (missed > e->n)
        return RC_REC_TRIMMED;
    take(e, e->n - (uint32_t)missed, (uint32_t)missed, out, n);
    return RC_REC_OK;
}

void rc_hist_last(rc_hist *e, uint32_t limit, rc_msg ***out, uint32_t *n)
{
    uint32_t count = RC_MIN(limit, e->n);
    take(e, e->n - count, count, out, n);
}

void rc_history_expire(rc_history *h, int64_t now_ms)
{
    /* Oldest first; every record newer than the shortest ttl is within its
     * own, so the walk stops there. */
    int64_t meta_ms = (int64_t)h->cfg->history_meta_ttl_s * 1000, min_ttl_ms = meta_ms;
    for (int i = 0; i < h->cfg->n_history; i++)
        min_ttl_ms = RC_MIN(min_ttl_ms, (int64_t)h->cfg->history[i].ttl_s * 1000);
    for (rc_hist *e = h->oldest; e;) {
        rc_hist *newer = e->prev;
        int64_t idle = now_ms - e->last_ms;
        if (idle < min_ttl_ms)
            break;
        if (e->rd.head)
            ; /* questions wait for it */
        else if (idle >= meta_ms)
            forget(h, e);
        else if (idle >= (int64_t)e->rule->ttl_s * 1000 && e->n)
            drop_entries(h, e);
        e = newer;
    }
}

void rc_history_get_stats(const rc_history *h, rc_history_stats *out)
{
    *out = h->st;
}

rc_histreq *rc_histreq_new(rc_str chan)
{
    rc_histreq *q = rc_calloc(1, sizeof(*q) + chan.n + 1);
    q->chan_len = (uint16_t)chan.n;
    memcpy(q->chan, chan.p, chan.n);
    q->chan[chan.n] = '\0';
    return q;
}

void rc_histreq_free(rc_histreq *q)
{
    if (!q)
        return;
    for (uint32_t i = 0; i < q->n; i++)
        rc_msg_put(q->msgs[i]);
    free(q->msgs);
    free(q);
}

int rc_hist_known(const rc_hist *e)
{
    return e->known;
}

rc_hist_read *rc_hist_reading(rc_hist *e)
{
    return &e->rd;
}

rc_hist *rc_history_find(rc_history *h, rc_str chan)
{
    rc_room *r = rc_rooms_get(h->index, chan.p, chan.n);
    return r ? r->udata : NULL;
}

rc_str rc_hist_name(const rc_hist *e)
{
    return (rc_str){e->room->name, e->room->name_len};
}

void rc_hist_observe(rc_history *h, rc_hist *e, rc_str epoch, uint64_t offset, rc_msg *m,
                     int64_t now_ms)
{
    if (e->known && same_epoch(e, epoch) && offset <= e->top) {
        rc_msg_put(m); /* seen already (a read brought it first) */
        return;
    }
    if (!same_epoch(e, epoch) || offset != e->top + 1) {
        /* Another run, or a gap: what is kept no longer leads up to it. */
        drop_entries(h, e);
        set_epoch(e, epoch);
        e->known = 0;
    }
    e->top = offset - 1;
    rc_hist_append(h, e, offset, m, now_ms);
}

void rc_hist_load(rc_history *h, rc_hist *e, rc_str epoch, uint64_t top, rc_msg **msgs, uint32_t n,
                  int64_t now_ms)
{
    /* Newer publications seen meanwhile, in the same run, stay after these. */
    uint32_t keep = 0, from = 0;
    if (same_epoch(e, epoch) && e->n && e->top > top) {
        for (from = 0; from < e->n; from++)
            if (e->ring[(e->head + from) % e->cap].offset == top + 1)
                break;
        keep = from < e->n ? e->n - from : 0;
    }
    entry *newer = keep ? rc_malloc(keep * sizeof(*newer)) : NULL;
    for (uint32_t i = 0; i < keep; i++) {
        newer[i] = e->ring[(e->head + from + i) % e->cap];
        rc_ref_get(&newer[i].m->refs);
    }
    drop_entries(h, e);
    set_epoch(e, epoch);
    e->top = top - n;
    for (uint32_t i = 0; i < n; i++)
        rc_hist_append(h, e, e->top + 1, msgs[i], now_ms);
    for (uint32_t i = 0; i < keep; i++)
        rc_hist_append(h, e, newer[i].offset, newer[i].m, now_ms);
    free(newer);
    e->known = 1;
}

void rc_hist_unknown(rc_history *h, rc_hist *e)
{
    if (!h->redis)
        return; /* without Redis the history is this node's own */
    drop_entries(h, e);
    e->known = 0;
}

static void unknown_one(rc_room *r, void *arg)
{
    rc_hist_unknown(arg, r->udata);
}

void rc_history_unknown_all(rc_history *h)
{
    rc_rooms_each(h->index, unknown_one, h);
}

typedef struct each_arg {
    void (*fn)(rc_hist *e, void *arg);
    void *arg;
} each_arg;

static void each_one(rc_room *r, void *arg)
{
    each_arg *a = arg;
    a->fn(r->udata, a->arg);
}

void rc_history_each(rc_history *h, void (*fn)(rc_hist *e, void *arg), void *arg)
{
    each_arg a = {fn, arg};
    rc_rooms_each(h->index, each_one, &a);
}
