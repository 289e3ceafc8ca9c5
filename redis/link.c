/* A link to one Redis or a Redis Cluster: see redis/link.h.
 *
 * Thread: the relay's. */
#include "redis/link.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/common.h"
#include "base/log.h"
#include "net/uring.h"
#include "redis/cluster.h"

#define MAX_SEEDS     RC_REDIS_MAX_SEEDS
#define MAX_NODES     128 /* primaries, probes and retiring connections */
#define NO_NODE       0xff
#define SERIAL_MASK   0x0fffu
#define MAX_REDIRECTS 5
#define GIVE_UP_MS    10000
#define RETRY_MS      100
#define REFRESH_MS    10000 /* the map's periodic read */
#define REFRESH_SOON  0     /* after a trigger */
#define REFRESH_DOWN  500   /* again, while a primary is down or a slot has no owner */
#define PROBE_MIN_MS  100
#define PROBE_MAX_MS  5000

enum role { ROLE_PROBE, ROLE_PRIMARY, ROLE_RETIRING };
enum mode { MODE_PROBE, MODE_SINGLE, MODE_CLUSTER };

typedef struct node {
    rc_rlink *l;
    rc_redis *r;
    uint16_t tag;
    uint8_t role;
    bool closing; /* rc_redis_close called: freed once idle */
    bool up;      /* the caller was told on_ready, and not on_down since */
    char host[256];
    int port;
} node;

/* A cluster command, kept formatted until its final reply. */
typedef struct req {
    struct req *next; /* in the link's waiting list */
    rc_rlink *l;
    rc_redis_reply_fn fn;
    void *priv;
    int slot;
    uint16_t ask; /* the node an ASK named, for the next send only */
    uint8_t redirects;
    uint64_t give_up_ms, due_ms;
    size_t len;
    char cmd[];
} req;

struct rc_rlink {
    struct io_uring *ring;
    rc_redis_url seeds[MAX_SEEDS];
    size_t nseeds, seed_next;
    rc_rlink_hooks h;
    void *u;
    unsigned kind;
    uint16_t serial;
    enum mode mode;
    bool stopping;
    node *tab[MAX_NODES];
    uint8_t *owner; /* [RC_CLUSTER_SLOTS]: index in tab, NO_NODE: none (cluster mode) */
    uint32_t covered;
    size_t max_queued;
    uint32_t ping_ms;
    uint64_t now_ms;
    bool refresh_wanted, refresh_inflight;
    uint64_t refresh_due_ms, next_periodic_ms;
    uint64_t probe_due_ms, probe_backoff_ms;
    req *wait_head, *wait_tail;
    rc_rlink *leader, *follower; /* a subscriber link reads its map through its leader */
    rc_rlink_stats st;           /* the link's own counters; reconnects of freed nodes */
    char err[512];
};

/* ---- nodes --------------------------------------------------------------- */

static int index_of(const rc_rlink *l, const node *n)
{
    for (int i = 0; i < MAX_NODES; i++)
        if (l->tab[i] == n)
            return i;
    return -1;
}

static node *by_tag(const rc_rlink *l, uint16_t tag)
{
    for (int i = 0; i < MAX_NODES; i++)
        if (l->tab[i] && l->tab[i]->tag == tag)
            return l->tab[i];
    return NULL;
}

static node *by_addr(const rc_rlink *l, const char *host, int port)
{
    for (int i = 0; i < MAX_NODES; i++) {
        node *n = l->tab[i];
        if (n && !n->closing && n->port == port && strcmp(n->host, host) == 0)
            return n;
    }
    return NULL;
}

static bool ready(const node *n)
{
    return n && !n->closing && rc_redis_get_state(n->r) == RC_REDIS_READY;
}

static void node_ready(void *ud);
static void node_down(void *ud, const char *reason);
static void node_push(void *ud, redisReply *rep);

static uint16_t next_tag(rc_rlink *l)
{
    for (;;) {
        l->serial = (uint16_t)((l->serial + 1) & SERIAL_MASK);
        if (!l->serial)
            continue;
        uint16_t tag = (uint16_t)(l->kind << RC_RLINK_KIND_SHIFT | l->serial);
        if (!by_tag(l, tag))
            return tag;
    }
}

/* A connection to url's server in role; NULL when the table is full. */
static node *node_new(rc_rlink *l, const rc_redis_url *url, enum role role)
{
    int slot = -1;
    for (int i = 0; i < MAX_NODES && slot < 0; i++)
        if (!l->tab[i])
            slot = i;
    if (slot < 0) {
        rc_warn("redis: more than %d connections in one link; %s:%d not connected", MAX_NODES,
                url->host, url->port);
        return NULL;
    }
    node *n = rc_calloc(1, sizeof(*n));
    n->l = l;
    n->role = (uint8_t)role;
    n->tag = next_tag(l);
    snprintf(n->host, sizeof(n->host), "%s", url->host);
    n->port = url->port;
    rc_redis_hooks hk = {.on_ready = node_ready, .on_down = node_down, .on_push = node_push};
    n->r = rc_redis_new(l->ring, url, &hk, n, n->tag);
    rc_redis_set_reply_udata(n->r, l->u);
    if (l->max_queued)
        rc_redis_set_max_queued(n->r, l->max_queued);
    if (l->ping_ms)
        rc_redis_set_ping_interval(n->r, l->ping_ms);
    rc_redis_tick(n->r, l->now_ms);
    l->tab[slot] = n;
    return n;
}

/* The seeds' auth with another address (a node the cluster named). */
static node *node_at(rc_rlink *l, const char *host, int port, enum role role)
{
    rc_redis_url url = l->seeds[0];
    snprintf(url.host, sizeof(url.host), "%s", host);
    url.port = (uint16_t)port;
    url.unix_path[0] = '\0';
    url.db = 0;
    return node_new(l, &url, role);
}

static void tell_down(node *n, const char *reason)
{
    if (!n->up)
        return;
    n->up = false;
    if (n->l->h.on_down)
        n->l->h.on_down(n->l->u, n->tag, reason);
}

/* No new commands; closed once its pipeline is empty (tick). */
static void retire(node *n, const char *reason)
{
    tell_down(n, reason);
    n->role = ROLE_RETIRING;
}

/* ---- the slot map -------------------------------------------------------- */

static void want_refresh(rc_rlink *l, uint64_t in_ms)
{
    if (l->leader && l->leader->mode == MODE_CLUSTER)
        l = l->leader;
    if (l->mode != MODE_CLUSTER || l->stopping)
        return;
    uint64_t due = l->now_ms + in_ms;
    if (!l->refresh_wanted || due < l->refresh_due_ms)
        l->refresh_due_ms = due;
    l->refresh_wanted = true;
}

static void on_slots(void *u, redisReply *rep, const char *err, void *priv);

static bool send_slots(node *n)
{
    const char *argv[2] = {"CLUSTER", "SLOTS"};
    size_t lens[2] = {7, 5};
    return rc_redis_command(n->r, on_slots, n, 2, argv, lens) == 0;
}

/* Asks a ready primary for the map; with none, a probe connection to the
 * next seed asks once it is ready. */
static void start_refresh(rc_rlink *l)
{
    for (int i = 0; i < MAX_NODES; i++) {
        node *n = l->tab[i];
        if (n && n->role == ROLE_PRIMARY && ready(n) && send_slots(n)) {
            l->refresh_inflight = true;
            l->refresh_wanted = false;
            l->st.refreshes++;
            return;
        }
    }
    for (int i = 0; i < MAX_NODES; i++)
        if (l->tab[i] && l->tab[i]->role == ROLE_PROBE && !l->tab[i]->closing)
            return; /* it asks when it is ready */
    const rc_redis_url *s = &l->seeds[l->seed_next++ % l->nseeds];
    if (!by_addr(l, s->host, s->port))
        node_new(l, s, ROLE_PROBE);
    l->refresh_due_ms = l->now_ms + REFRESH_DOWN;
}

static bool all_up(const rc_rlink *l)
{
    for (int i = 0; i < MAX_NODES; i++)
        if (l->tab[i] && l->tab[i]->role == ROLE_PRIMARY && !ready(l->tab[i]))
            return false;
    return true;
}

static void apply_map(rc_rlink *l, const rc_cluster_map *m)
{
    uint8_t idx[RC_CLUSTER_MAX_PRIMARIES];
    node *adopted[RC_CLUSTER_MAX_PRIMARIES];
    size_t nadopted = 0;
    bool changed = l->covered != m->covered;
    for (uint32_t p = 0; p < m->n_primaries; p++) {
        const rc_cluster_node *cn = &m->primaries[p];
        node *n = by_addr(l, cn->host, cn->port);
        if (n && n->role != ROLE_PRIMARY) {
            n->role = ROLE_PRIMARY;
            changed = true;
            if (ready(n))
                adopted[nadopted++] = n;
        } else if (!n) {
            n = node_at(l, cn->host, cn->port, ROLE_PRIMARY);
            changed = true;
        }
        idx[p] = n ? (uint8_t)index_of(l, n) : NO_NODE;
    }
    for (int i = 0; i < RC_CLUSTER_SLOTS; i++) {
        uint8_t o = m->owner[i] == RC_CLUSTER_NO_OWNER ? NO_NODE : idx[m->owner[i]];
        if (l->owner[i] != o) {
            l->owner[i] = o;
            changed = true;
        }
    }
    l->covered = m->covered;
    for (int i = 0; i < MAX_NODES; i++) {
        node *n = l->tab[i];
        if (!n || n->closing || n->role == ROLE_RETIRING)
            continue;
        bool named = false;
        for (uint32_t p = 0; p < m->n_primaries && !named; p++)
            named = idx[p] == i;
        if (!named) {
            rc_info("redis: cluster node %s:%d is no longer a primary we use", n->host, n->port);
            retire(n, "no longer a primary of the cluster");
            changed = true;
        }
    }
    if (changed && l->h.on_map)
        l->h.on_map(l->u);
    for (size_t i = 0; i < nadopted; i++) {
        adopted[i]->up = true;
        if (l->h.on_ready)
            l->h.on_ready(l->u, adopted[i]->tag);
    }
}

static void on_slots(void *u, redisReply *rep, const char *err, void *priv)
{
    node *n = priv;
    rc_rlink *l = n->l;
    (void)u;
    l->refresh_inflight = false;
    if (l->stopping)
        return;
    if (!rep) {
        want_refresh(l, REFRESH_DOWN);
        return;
    }
    if (l->mode == MODE_PROBE && rep->type == REDIS_REPLY_ERROR) {
        if (strncmp(rep->str, "LOADING", 7) == 0) {
            l->probe_due_ms = l->now_ms + 1000;
            return;
        }
        /* One Redis (cluster support off, or CLUSTER refused to us). */
        l->mode = MODE_SINGLE;
        n->role = ROLE_PRIMARY;
        n->up = true;
        rc_info("redis: %s:%d is one Redis (not a cluster)", n->host, n->port);
        if (l->h.on_ready)
            l->h.on_ready(l->u, n->tag);
        return;
    }
    rc_cluster_map *m = rc_malloc(sizeof(*m));
    const char *why = "";
    if (rc_cluster_map_read(rep, m, &why) < 0) {
        rc_warn("redis: CLUSTER SLOTS from %s:%d unreadable (%s)", n->host, n->port,
                rep->type == REDIS_REPLY_ERROR ? rep->str : why);
        free(m);
        want_refresh(l, REFRESH_DOWN);
        return;
    }
    if (l->mode == MODE_PROBE) {
        l->mode = MODE_CLUSTER;
        l->owner = rc_malloc(RC_CLUSTER_SLOTS);
        memset(l->owner, NO_NODE, RC_CLUSTER_SLOTS);
        rc_info("redis: %s:%d is a Redis Cluster node: %u primaries, %u slots covered", n->host,
                n->port, m->n_primaries, m->covered);
        l->next_periodic_ms = l->now_ms + REFRESH_MS;
    }
    apply_map(l, m);
    rc_rlink *f = l->follower;
    if (f && f->mode == MODE_CLUSTER && !f->stopping)
        apply_map(f, m);
    free(m);
    if (l->covered < RC_CLUSTER_SLOTS || !all_up(l) || (f && f->mode == MODE_CLUSTER && !all_up(f)))
        want_refresh(l, REFRESH_DOWN);
}

/* ---- hooks of each connection ------------------------------------------- */

static void node_ready(void *ud)
{
    node *n = ud;
    rc_rlink *l = n->l;
    if (l->stopping || n->closing)
        return;
    if (n->role == ROLE_PROBE) {
        send_slots(n);
        if (l->mode == MODE_CLUSTER)
            l->refresh_inflight = true;
        return;
    }
    if (n->role != ROLE_PRIMARY)
        return;
    l->probe_backoff_ms = 0;
    n->up = true;
    if (l->h.on_ready)
        l->h.on_ready(l->u, n->tag);
    if (l->refresh_wanted && !l->refresh_inflight)
        l->refresh_due_ms = l->now_ms;
}

static void node_down(void *ud, const char *reason)
{
    node *n = ud;
    rc_rlink *l = n->l;
    snprintf(l->err, sizeof(l->err), "%s:%d: %s", n->host, n->port, reason);
    if (l->stopping || n->closing || n->role == ROLE_RETIRING)
        return;
    /* every failed attempt, as redis/client.h's on_down */
    n->up = false;
    if (l->h.on_down)
        l->h.on_down(l->u, n->tag, reason);
    if (l->mode == MODE_CLUSTER) {
        want_refresh(l, REFRESH_SOON);
    } else if (l->mode == MODE_PROBE && l->nseeds > 1) {
        /* the next seed, after a pause that grows while none answers */
        retire(n, reason);
        l->probe_backoff_ms =
            RC_MIN(RC_MAX(l->probe_backoff_ms * 2, (uint64_t)PROBE_MIN_MS), (uint64_t)PROBE_MAX_MS);
        l->probe_due_ms = l->now_ms + l->probe_backoff_ms;
    }
}

static void node_push(void *ud, redisReply *rep)
{
    node *n = ud;
    if (n->role == ROLE_PRIMARY && !n->closing && n->l->h.on_push)
        n->l->h.on_push(n->l->u, n->tag, rep);
}

/* ---- commands ------------------------------------------------------------ */

static node *owner_of(const rc_rlink *l, int slot)
{
    if (l->mode == MODE_SINGLE) {
        for (int i = 0; i < MAX_NODES; i++)
            if (l->tab[i] && l->tab[i]->role == ROLE_PRIMARY && !l->tab[i]->closing)
                return l->tab[i];
        return NULL;
    }
    if (l->mode != MODE_CLUSTER)
        return NULL;
    if (slot >= 0 && slot < RC_CLUSTER_SLOTS)
        return l->owner[slot] == NO_NODE ? NULL : l->tab[l->owner[slot]];
    for (int i = 0; i < MAX_NODES; i++)
        if (l->tab[i] && l->tab[i]->role == ROLE_PRIMARY && ready(l->tab[i]))
            return l->tab[i];
    return NULL;
}

static void on_req_reply(void *u, redisReply *rep, const char *err, void *priv);

static void finish(req *q, redisReply *rep, const char *err)
{
    q->fn(q->l->u, rep, err, q->priv);
    free(q);
}

static void wait_push(rc_rlink *l, req *q, uint64_t due)
{
    q->due_ms = due;
    q->next = NULL;
    if (l->wait_tail)
        l->wait_tail->next = q;
    else
        l->wait_head = q;
    l->wait_tail = q;
}

/* Sends q to the node an ASK named or the slot's owner: 0, or -1. */
static int req_send(rc_rlink *l, req *q)
{
    node *n = q->ask ? by_tag(l, q->ask) : owner_of(l, q->slot);
    if (!ready(n) || n->role == ROLE_PROBE)
        return -1;
    if (q->ask) {
        static const char asking[] = "*1\r\n$6\r\nASKING\r\n";
        if (rc_redis_command_formatted(n->r, on_req_reply, NULL, asking, sizeof(asking) - 1) < 0)
            return -1;
        q->ask = 0;
    }
    return rc_redis_command_formatted(n->r, on_req_reply, q, q->cmd, q->len);
}

/* "MOVED 3999 127.0.0.1:6381" or "ASK ...": the slot and the address. */
static bool parse_redirect(const char *s, int *slot, char *host, size_t hcap, int *port)
{
    const char *sp = strchr(s, ' ');
    if (!sp)
        return false;
    char *end;
    long v = strtol(sp + 1, &end, 10);
    if (*end != ' ' || v < 0 || v >= RC_CLUSTER_SLOTS)
        return false;
    const char *addr = end + 1, *colon = strrchr(addr, ':');
    if (!colon || colon == addr || (size_t)(colon - addr) >= hcap)
        return false;
    long p = strtol(colon + 1, &end, 10);
    if (p <= 0 || p > 65535)
        return false;
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    *slot = (int)v;
    *port = (int)p;
    return true;
}

static void on_req_reply(void *u, redisReply *rep, const char *err, void *priv)
{
    req *q = priv;
    (void)u;
    if (!q)
        return; /* ASKING's answer */
    rc_rlink *l = q->l;
    if (!rep || rep->type != REDIS_REPLY_ERROR || l->stopping) {
        finish(q, rep, err);
        return;
    }
    bool moved = strncmp(rep->str, "MOVED ", 6) == 0, ask = strncmp(rep->str, "ASK ", 4) == 0;
    bool later = strncmp(rep->str, "TRYAGAIN", 8) == 0 ||
                 strncmp(rep->str, "CLUSTERDOWN", 11) == 0 || strncmp(rep->str, "LOADING", 7) == 0;
    if (!moved && !ask && !later) {
        finish(q, rep, err);
        return;
    }
    if (++q->redirects > MAX_REDIRECTS || l->now_ms >= q->give_up_ms) {
        l->st.gave_up++;
        rc_warn("redis: a command gave up after %u redirects: %s", q->redirects - 1, rep->str);
        finish(q, rep, err);
        return;
    }
    if (later) {
        l->st.retries++;
        if (strncmp(rep->str, "CLUSTERDOWN", 11) == 0)
            want_refresh(l, REFRESH_SOON);
        wait_push(l, q, l->now_ms + RETRY_MS);
        return;
    }
    char host[256];
    int slot, port;
    if (!parse_redirect(rep->str, &slot, host, sizeof(host), &port)) {
        finish(q, rep, err);
        return;
    }
    node *n = by_addr(l, host, port);
    if (!n)
        n = node_at(l, host, port, ROLE_PRIMARY);
    if (moved) {
        l->st.moved++;
        if (n && n->role != ROLE_PRIMARY)
            n->role = ROLE_PRIMARY;
        int i = n ? index_of(l, n) : -1;
        if (i >= 0 && l->owner)
            l->owner[slot] = (uint8_t)i;
        want_refresh(l, REFRESH_SOON);
    } else {
        l->st.asked++;
        q->ask = n ? n->tag : 0;
    }
    if (req_send(l, q) < 0)
        wait_push(l, q, l->now_ms);
}

static req *req_new(rc_rlink *l, int slot, rc_redis_reply_fn fn, void *priv, int argc,
                    const char **argv, const size_t *lens)
{
    char *cmd = NULL;
    int n = argc > 0 ? redisFormatCommandArgv(&cmd, argc, argv, lens) : -1;
    if (n < 0)
        return NULL;
    req *q = rc_malloc(sizeof(*q) + (size_t)n);
    memset(q, 0, sizeof(*q));
    q->l = l;
    q->fn = fn;
    q->priv = priv;
    q->slot = slot;
    q->give_up_ms = l->now_ms + GIVE_UP_MS;
    q->len = (size_t)n;
    memcpy(q->cmd, cmd, (size_t)n);
    redisFreeCommand(cmd);
    return q;
}

int rc_rlink_command(rc_rlink *l, int slot, rc_redis_reply_fn fn, void *priv, int argc,
                     const char **argv, const size_t *lens)
{
    if (l->stopping || !fn)
        return -1;
    node *n = owner_of(l, slot);
    if (!ready(n))
        return -1;
    if (l->mode == MODE_SINGLE)
        return rc_redis_command(n->r, fn, priv, argc, argv, lens);
    req *q = req_new(l, slot, fn, priv, argc, argv, lens);
    if (!q)
        return -1;
    if (rc_redis_command_formatted(n->r, on_req_reply, q, q->cmd, q->len) < 0) {
        free(q);
        return -1;
    }
    return 0;
}

int rc_rlink_command_on(rc_rlink *l, uint16_t tag, rc_redis_reply_fn fn, void *priv, int argc,
                        const char **argv, const size_t *lens)
{
    node *n = by_tag(l, tag);
    if (l->stopping || !ready(n) || n->role != ROLE_PRIMARY)
        return -1;
    return rc_redis_command(n->r, fn, priv, argc, argv, lens);
}

uint16_t rc_rlink_send_raw(rc_rlink *l, int slot, int argc, const char **argv, const size_t *lens)
{
    node *n = l->stopping ? NULL : owner_of(l, slot);
    if (!ready(n) || rc_redis_send_raw(n->r, argc, argv, lens) < 0)
        return 0;
    return n->tag;
}

int rc_rlink_send_raw_on(rc_rlink *l, uint16_t tag, int argc, const char **argv, const size_t *lens)
{
    node *n = by_tag(l, tag);
    if (l->stopping || !ready(n))
        return -1;
    return rc_redis_send_raw(n->r, argc, argv, lens);
}

/* ---- state --------------------------------------------------------------- */

uint16_t rc_rlink_ready_node(const rc_rlink *l, int slot)
{
    node *n = owner_of(l, slot);
    return ready(n) ? n->tag : 0;
}

uint16_t rc_rlink_owner(const rc_rlink *l, int slot)
{
    if (l->mode == MODE_CLUSTER && slot < 0) {
        for (int i = 0; i < MAX_NODES; i++)
            if (l->tab[i] && l->tab[i]->role == ROLE_PRIMARY)
                return l->tab[i]->tag;
        return 0;
    }
    node *n = owner_of(l, slot);
    return n ? n->tag : 0;
}

bool rc_rlink_node_ready(const rc_rlink *l, uint16_t tag)
{
    node *n = by_tag(l, tag);
    return n && n->role == ROLE_PRIMARY && ready(n);
}

bool rc_rlink_is_cluster(const rc_rlink *l)
{
    return l->mode == MODE_CLUSTER;
}

bool rc_rlink_ready(const rc_rlink *l)
{
    if (l->mode == MODE_SINGLE)
        return ready(owner_of(l, -1));
    return l->mode == MODE_CLUSTER && l->covered == RC_CLUSTER_SLOTS && all_up(l);
}

void rc_rlink_refresh(rc_rlink *l)
{
    want_refresh(l, REFRESH_SOON);
}

void rc_rlink_follow(rc_rlink *follower, rc_rlink *leader)
{
    follower->leader = leader;
    leader->follower = follower;
}

bool rc_rlink_moved(rc_rlink *l, const char *err)
{
    char host[256];
    int slot, port;
    if (l->mode != MODE_CLUSTER || strncmp(err, "MOVED ", 6) != 0 ||
        !parse_redirect(err, &slot, host, sizeof(host), &port))
        return false;
    node *n = by_addr(l, host, port);
    if (!n)
        n = node_at(l, host, port, ROLE_PRIMARY);
    int i = n ? index_of(l, n) : -1;
    if (i < 0)
        return false;
    n->role = ROLE_PRIMARY;
    l->owner[slot] = (uint8_t)i;
    l->st.moved++;
    want_refresh(l, REFRESH_SOON);
    return true;
}

/* ---- life ---------------------------------------------------------------- */

rc_rlink *rc_rlink_new(struct io_uring *ring, const rc_redis_url *seeds, size_t n,
                       const rc_rlink_hooks *hooks, void *u, unsigned kind)
{
    rc_assert(n >= 1 && kind >= 1 && kind <= 15);
    rc_rlink *l = rc_calloc(1, sizeof(*l));
    l->ring = ring;
    l->nseeds = RC_MIN(n, (size_t)MAX_SEEDS);
    memcpy(l->seeds, seeds, l->nseeds * sizeof(*seeds));
    l->h = *hooks;
    l->u = u;
    l->kind = kind;
    l->now_ms = rc_now_ms();
    l->seed_next = 1;
    node_new(l, &l->seeds[0], ROLE_PROBE);
    return l;
}

void rc_rlink_set_max_queued(rc_rlink *l, size_t bytes)
{
    l->max_queued = bytes;
    for (int i = 0; i < MAX_NODES; i++)
        if (l->tab[i])
            rc_redis_set_max_queued(l->tab[i]->r, bytes);
}

void rc_rlink_set_ping_interval(rc_rlink *l, uint32_t ms)
{
    l->ping_ms = ms;
    for (int i = 0; i < MAX_NODES; i++)
        if (l->tab[i])
            rc_redis_set_ping_interval(l->tab[i]->r, ms);
}

void rc_rlink_on_cqe(rc_rlink *l, struct io_uring_cqe *cqe)
{
    node *n = by_tag(l, rc_ud_gen(cqe->user_data));
    if (n)
        rc_redis_on_cqe(n->r, cqe);
}

static void run_waiting(rc_rlink *l)
{
    req *q = l->wait_head, *keep = NULL, *keep_tail = NULL;
    l->wait_head = l->wait_tail = NULL;
    while (q) {
        req *next = q->next;
        if (l->stopping) {
            finish(q, NULL, "closed");
        } else if (q->due_ms <= l->now_ms && req_send(l, q) == 0) {
            /* sent */
        } else if (l->now_ms >= q->give_up_ms) {
            l->st.gave_up++;
            finish(q, NULL, "no ready primary for the slot");
        } else {
            q->next = NULL;
            if (keep_tail)
                keep_tail->next = q;
            else
                keep = q;
            keep_tail = q;
        }
        q = next;
    }
    /* what the sends above queued again goes behind what still waits */
    if (keep) {
        keep_tail->next = l->wait_head;
        if (!l->wait_head)
            l->wait_tail = keep_tail;
        l->wait_head = keep;
    }
}

void rc_rlink_tick(rc_rlink *l, uint64_t now_ms)
{
    l->now_ms = now_ms;
    if (l->mode == MODE_PROBE && l->probe_due_ms && now_ms >= l->probe_due_ms && !l->stopping) {
        l->probe_due_ms = 0;
        bool probing = false;
        for (int i = 0; i < MAX_NODES; i++)
            probing |= l->tab[i] && l->tab[i]->role == ROLE_PROBE && !l->tab[i]->closing;
        if (!probing)
            node_new(l, &l->seeds[l->seed_next++ % l->nseeds], ROLE_PROBE);
    }
    if (l->mode == MODE_CLUSTER && !l->stopping &&
        !(l->leader && l->leader->mode == MODE_CLUSTER)) {
        if (now_ms >= l->next_periodic_ms) {
            l->next_periodic_ms = now_ms + REFRESH_MS;
            want_refresh(l, 0);
        }
        if (l->refresh_wanted && !l->refresh_inflight && now_ms >= l->refresh_due_ms)
            start_refresh(l);
    }
    if (l->wait_head)
        run_waiting(l);
    for (int i = 0; i < MAX_NODES; i++) {
        node *n = l->tab[i];
        if (!n)
            continue;
        if (n->role == ROLE_RETIRING && !n->closing) {
            rc_redis_stats st;
            rc_redis_get_stats(n->r, &st);
            if (!st.pipeline_depth || rc_redis_get_state(n->r) != RC_REDIS_READY) {
                rc_redis_close(n->r);
                n->closing = true;
            }
        }
        if (n->closing && rc_redis_idle(n->r)) {
            rc_redis_stats st;
            rc_redis_get_stats(n->r, &st);
            l->st.reconnects += st.reconnects;
            rc_redis_free(n->r);
            free(n);
            l->tab[i] = NULL;
            continue;
        }
        rc_redis_tick(n->r, now_ms);
    }
}

void rc_rlink_flush(rc_rlink *l)
{
    for (int i = 0; i < MAX_NODES; i++)
        if (l->tab[i])
            rc_redis_flush(l->tab[i]->r);
}

void rc_rlink_get_stats(const rc_rlink *l, rc_rlink_stats *out)
{
    *out = l->st;
    out->slots_covered = l->mode == MODE_SINGLE ? RC_CLUSTER_SLOTS : l->covered;
    for (int i = 0; i < MAX_NODES; i++) {
        node *n = l->tab[i];
        if (!n)
            continue;
        rc_redis_stats st;
        rc_redis_get_stats(n->r, &st);
        out->reconnects += st.reconnects;
        out->pipeline_depth += st.pipeline_depth;
        out->queued_bytes += st.queued_bytes;
        if (n->role != ROLE_PRIMARY || n->closing)
            continue;
        out->nodes++;
        if (ready(n)) {
            out->nodes_up++;
            out->rtt_us = RC_MAX(out->rtt_us, st.rtt_us);
        }
    }
}

const char *rc_rlink_last_error(const rc_rlink *l)
{
    return l->err;
}

void rc_rlink_close(rc_rlink *l)
{
    l->stopping = true;
    run_waiting(l);
    for (int i = 0; i < MAX_NODES; i++)
        if (l->tab[i] && !l->tab[i]->closing) {
            rc_redis_close(l->tab[i]->r);
            l->tab[i]->closing = true;
        }
}

bool rc_rlink_idle(const rc_rlink *l)
{
    for (int i = 0; i < MAX_NODES; i++)
        if (l->tab[i] && !rc_redis_idle(l->tab[i]->r))
            return false;
    return true;
}

void rc_rlink_free(rc_rlink *l)
{
    if (!l)
        return;
    l->stopping = true;
    for (req *q = l->wait_head, *next; q; q = next) {
        next = q->next;
        finish(q, NULL, "closed");
    }
    for (int i = 0; i < MAX_NODES; i++)
        if (l->tab[i]) {
            rc_redis_free(l->tab[i]->r);
            free(l->tab[i]);
        }
    free(l->owner);
    free(l);
}
