/* A link to one Redis or a Redis Cluster: see redis/link.h.
 *
 * Thread: the relay's. */
#include "redis/link_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/common.h"
#include "base/log.h"
#include "net/uring.h"
#include "redis/cluster.h"

/* ---- nodes --------------------------------------------------------------- */

int rl_index_of(const rc_rlink *l, const node *n)
{
    for (int i = 0; i < MAX_NODES; i++)
        if (l->tab[i] == n)
            return i;
    return -1;
}

node *rl_by_tag(const rc_rlink *l, uint16_t tag)
{
    for (int i = 0; i < MAX_NODES; i++)
        if (l->tab[i] && l->tab[i]->tag == tag)
            return l->tab[i];
    return NULL;
}

node *rl_by_addr(const rc_rlink *l, const char *host, int port)
{
    for (int i = 0; i < MAX_NODES; i++) {
        node *n = l->tab[i];
        if (n && !n->closing && n->port == port && strcmp(n->host, host) == 0)
            return n;
    }
    return NULL;
}

bool rl_ready(const node *n)
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
        if (!rl_by_tag(l, tag))
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
node *rl_node_at(rc_rlink *l, const char *host, int port, enum role role)
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

void rl_want_refresh(rc_rlink *l, uint64_t in_ms)
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
        if (n && n->role == ROLE_PRIMARY && rl_ready(n) && send_slots(n)) {
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
    if (!rl_by_addr(l, s->host, s->port))
        node_new(l, s, ROLE_PROBE);
    l->refresh_due_ms = l->now_ms + REFRESH_DOWN;
}

static bool all_up(const rc_rlink *l)
{
    for (int i = 0; i < MAX_NODES; i++)
        if (l->tab[i] && l->tab[i]->role == ROLE_PRIMARY && !rl_ready(l->tab[i]))
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
        node *n = rl_by_addr(l, cn->host, cn->port);
        if (n && n->role != ROLE_PRIMARY) {
            n->role = ROLE_PRIMARY;
            changed = true;
            if (rl_ready(n))
                adopted[nadopted++] = n;
        } else if (!n) {
            n = rl_node_at(l, cn->host, cn->port, ROLE_PRIMARY);
            changed = true;
        }
        if (n)
            n->replicas = cn->replicas;
        idx[p] = n ? (uint8_t)rl_index_of(l, n) : NO_NODE;
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
        rl_want_refresh(l, REFRESH_DOWN);
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
        rl_want_refresh(l, REFRESH_DOWN);
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
        rl_want_refresh(l, REFRESH_DOWN);
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
        rl_want_refresh(l, REFRESH_SOON);
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

/* ---- state --------------------------------------------------------------- */

uint16_t rc_rlink_ready_node(const rc_rlink *l, int slot)
{
    node *n = rl_owner_of(l, slot);
    return rl_ready(n) ? n->tag : 0;
}

uint16_t rc_rlink_owner(const rc_rlink *l, int slot)
{
    if (l->mode == MODE_CLUSTER && slot < 0) {
        for (int i = 0; i < MAX_NODES; i++)
            if (l->tab[i] && l->tab[i]->role == ROLE_PRIMARY)
                return l->tab[i]->tag;
        return 0;
    }
    node *n = rl_owner_of(l, slot);
    return n ? n->tag : 0;
}

bool rc_rlink_node_ready(const rc_rlink *l, uint16_t tag)
{
    node *n = rl_by_tag(l, tag);
    return n && n->role == ROLE_PRIMARY && rl_ready(n);
}

uint32_t rc_rlink_replicas(const rc_rlink *l, int slot)
{
    if (l->mode != MODE_CLUSTER)
        return 0;
    node *n = rl_owner_of(l, slot);
    return n ? n->replicas : 0;
}

bool rc_rlink_is_cluster(const rc_rlink *l)
{
    return l->mode == MODE_CLUSTER;
}

bool rc_rlink_ready(const rc_rlink *l)
{
    if (l->mode == MODE_SINGLE)
        return rl_ready(rl_owner_of(l, -1));
    return l->mode == MODE_CLUSTER && l->covered == RC_CLUSTER_SLOTS && all_up(l);
}

void rc_rlink_refresh(rc_rlink *l)
{
    rl_want_refresh(l, REFRESH_SOON);
}

void rc_rlink_follow(rc_rlink *follower, rc_rlink *leader)
{
    follower->leader = leader;
    leader->follower = follower;
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
    node *n = rl_by_tag(l, rc_ud_gen(cqe->user_data));
    if (n)
        rc_redis_on_cqe(n->r, cqe);
}

node *rl_owner_of(const rc_rlink *l, int slot)
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
        if (l->tab[i] && l->tab[i]->role == ROLE_PRIMARY && rl_ready(l->tab[i]))
            return l->tab[i];
    return NULL;
}

void rl_finish(req *q, redisReply *rep, const char *err)
{
    q->fn(q->l->u, rep, err, q->priv);
    free(q);
}

void rl_tick_topology(rc_rlink *l, uint64_t now_ms)
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
            rl_want_refresh(l, 0);
        }
        if (l->refresh_wanted && !l->refresh_inflight && now_ms >= l->refresh_due_ms)
            start_refresh(l);
    }
}

void rl_tick_nodes(rc_rlink *l, uint64_t now_ms)
{
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
        if (rl_ready(n)) {
            out->nodes_up++;
            out->rtt_us = RC_MAX(out->rtt_us, st.rtt_us);
        }
    }
}

const char *rc_rlink_last_error(const rc_rlink *l)
{
    return l->err;
}

void rl_close_nodes(rc_rlink *l)
{
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
        rl_finish(q, NULL, "closed");
    }
    for (int i = 0; i < MAX_NODES; i++)
        if (l->tab[i]) {
            rc_redis_free(l->tab[i]->r);
            free(l->tab[i]);
        }
    free(l->owner);
    free(l);
}
