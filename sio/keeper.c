/* Kept Socket.IO sessions: the relay's side of connection state recovery
 * (sio/recovery.h). With Redis a session is the string PREFIX sio:PID,
 * written with SET PX and taken with GETDEL; without, an entry of a table
 * in the relay's memory.
 *
 * Thread: the relay thread. */
#include "sio/recovery.h"

#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "channels/bridge.h"

#define BUCKETS 4096 /* a power of two */

typedef struct kept {
    struct kept *next;  /* in its bucket */
    struct kept *older; /* the FIFO of expiry (one ttl for all: insertion order) */
    struct kept *newer;
    uint64_t expires_ms;
    char pid[RC_SIO_PID_LEN + 1];
    char *text;
    size_t len;
} kept;

struct rc_sio_keeper {
    const rc_config *cfg;
    rc_sio_keeper_stats *stats;
    void (*done)(void *u, rc_sio_keep *k);
    void *u;
    rc_bridge *bridge;
    kept *buckets[BUCKETS];
    kept *oldest, *newest;
    uint32_t n;
};

rc_sio_keeper *rc_sio_keeper_new(const rc_config *cfg, rc_sio_keeper_stats *stats,
                                 void (*done)(void *u, rc_sio_keep *k), void *u)
{
    rc_sio_keeper *kp = rc_calloc(1, sizeof(*kp));
    kp->cfg = cfg;
    kp->stats = stats;
    kp->done = done;
    kp->u = u;
    return kp;
}

void rc_sio_keeper_attach(rc_sio_keeper *kp, rc_bridge *b)
{
    kp->bridge = b;
}

/* ---- in memory ------------------------------------------------------------ */

static uint32_t bucket(const char *pid)
{
    uint32_t h = 2166136261u;
    for (const char *p = pid; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    return h & (BUCKETS - 1);
}

static void unlink_kept(rc_sio_keeper *kp, kept *e)
{
    kept **pp = &kp->buckets[bucket(e->pid)];
    while (*pp != e)
        pp = &(*pp)->next;
    *pp = e->next;
    if (e->older)
        e->older->newer = e->newer;
    else
        kp->oldest = e->newer;
    if (e->newer)
        e->newer->older = e->older;
    else
        kp->newest = e->older;
    kp->n--;
    rc_counter_set(&kp->stats->held, kp->n);
}

static void drop_kept(rc_sio_keeper *kp, kept *e)
{
    unlink_kept(kp, e);
    free(e->text);
    free(e);
}

static kept *find(rc_sio_keeper *kp, const char *pid)
{
    for (kept *e = kp->buckets[bucket(pid)]; e; e = e->next)
        if (strcmp(e->pid, pid) == 0)
            return e;
    return NULL;
}

static void mem_save(rc_sio_keeper *kp, rc_sio_keep *k)
{
    kept *old = find(kp, k->pid);
    if (old)
        drop_kept(kp, old);
    if (kp->n >= RC_SIO_KEEP_MAX) { /* full: the oldest goes */
        drop_kept(kp, kp->oldest);
        rc_counter_inc(&kp->stats->dropped);
    }
    kept *e = rc_calloc(1, sizeof(*e));
    memcpy(e->pid, k->pid, sizeof(e->pid));
    e->text = k->text;
    e->len = k->len;
    k->text = NULL;
    e->expires_ms = rc_now_ms() + k->ttl_ms;
    uint32_t b = bucket(e->pid);
    e->next = kp->buckets[b];
    kp->buckets[b] = e;
    e->older = kp->newest;
    if (kp->newest)
        kp->newest->newer = e;
    else
        kp->oldest = e;
    kp->newest = e;
    kp->n++;
    rc_counter_set(&kp->stats->held, kp->n);
    rc_counter_inc(&kp->stats->saved);
}

static void mem_take(rc_sio_keeper *kp, rc_sio_keep *k)
{
    kept *e = find(kp, k->pid);
    if (e && e->expires_ms > rc_now_ms()) {
        k->text = e->text;
        k->len = e->len;
        e->text = NULL;
        k->result = RC_SIO_KEPT_FOUND;
    }
    if (e)
        drop_kept(kp, e);
}

void rc_sio_keeper_tick(rc_sio_keeper *kp, uint64_t now_ms)
{
    while (kp->oldest && kp->oldest->expires_ms <= now_ms)
        drop_kept(kp, kp->oldest);
}

/* ---- in Redis ------------------------------------------------------------- */

typedef struct pending {
    rc_sio_keeper *kp;
    rc_sio_keep *k;
} pending;

static int key_of(const rc_sio_keeper *kp, const rc_sio_keep *k, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%ssio:%s", kp->cfg->redis_prefix, k->pid);
    return n > 0 && (size_t)n < cap ? n : -1;
}

static void saved(void *arg, const redisReply *rep)
{
    pending *p = arg;
    if (rep && rep->type == REDIS_REPLY_STATUS)
        rc_counter_inc(&p->kp->stats->saved);
    else
        rc_counter_inc(&p->kp->stats->dropped);
    rc_sio_keep_free(p->k);
    free(p);
}

static void taken(void *arg, const redisReply *rep)
{
    pending *p = arg;
    rc_sio_keep *k = p->k;
    if (!rep || rep->type == REDIS_REPLY_ERROR) {
        k->result = RC_SIO_KEPT_UNAVAILABLE;
    } else if (rep->type == REDIS_REPLY_STRING) {
        k->text = rc_malloc(rep->len + 1);
        memcpy(k->text, rep->str, rep->len);
        k->text[rep->len] = '\0';
        k->len = rep->len;
        k->result = RC_SIO_KEPT_FOUND;
    }
    p->kp->done(p->kp->u, k);
    free(p);
}

static void redis_on(rc_sio_keeper *kp, rc_sio_keep *k)
{
    char key[160], ttl[24];
    int kl = key_of(kp, k, key, sizeof(key));
    pending *p = rc_malloc(sizeof(*p));
    *p = (pending){kp, k};
    int r = -1;
    if (kl > 0 && k->op == RC_SIO_KEEP_SAVE) {
        int tl = snprintf(ttl, sizeof(ttl), "%u", k->ttl_ms);
        const char *argv[] = {"SET", key, k->text, "PX", ttl};
        size_t lens[] = {3, (size_t)kl, k->len, 2, (size_t)tl};
        r = rc_bridge_command(kp->bridge, saved, p, 5, argv, lens);
    } else if (kl > 0) {
        const char *argv[] = {"GETDEL", key};
        size_t lens[] = {6, (size_t)kl};
        r = rc_bridge_command(kp->bridge, taken, p, 2, argv, lens);
    }
    if (r == 0)
        return;
    free(p);
    if (k->op == RC_SIO_KEEP_SAVE) {
        rc_counter_inc(&kp->stats->dropped);
        rc_sio_keep_free(k);
    } else {
        k->result = RC_SIO_KEPT_UNAVAILABLE;
        kp->done(kp->u, k);
    }
}

/* ---- either ---------------------------------------------------------------- */

void rc_sio_keeper_on(rc_sio_keeper *kp, rc_sio_keep *k)
{
    if (kp->bridge) {
        redis_on(kp, k);
    } else if (k->op == RC_SIO_KEEP_SAVE) {
        mem_save(kp, k);
        rc_sio_keep_free(k);
    } else {
        mem_take(kp, k);
        kp->done(kp->u, k);
    }
}

void rc_sio_keeper_free(rc_sio_keeper *kp)
{
    if (!kp)
        return;
    while (kp->oldest)
        drop_kept(kp, kp->oldest);
    free(kp);
}
