/* The link's insides, shared by redis/link.c (nodes, the slot map, life)
 * and redis/link_cmd.c (commands: routing, redirects, retries). Private to
 * redis/link*.c.
 *
 * Thread: the relay's. */
#ifndef RC_REDIS_LINK_INT_H
#define RC_REDIS_LINK_INT_H

#include "redis/cluster.h"
#include "redis/link.h"

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
    bool closing;      /* rc_redis_close called: freed once idle */
    bool up;           /* the caller was told on_ready, and not on_down since */
    uint32_t replicas; /* as the last map listed them (a cluster's primary) */
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

/* link.c */
int rl_index_of(const rc_rlink *l, const node *n);
node *rl_by_tag(const rc_rlink *l, uint16_t tag);
node *rl_by_addr(const rc_rlink *l, const char *host, int port); /* not closing */
bool rl_ready(const node *n);
/* A connection to host:port with the seeds' auth, in role; NULL when the
 * table is full. */
node *rl_node_at(rc_rlink *l, const char *host, int port, enum role role);
/* Reads the map (through the leader, if any) in_ms from now or sooner. */
void rl_want_refresh(rc_rlink *l, uint64_t in_ms);

/* The node slot lives on (-1: a ready one; one Redis: its node), or NULL. */
node *rl_owner_of(const rc_rlink *l, int slot);
/* q's callback, then q freed. */
void rl_finish(req *q, redisReply *rep, const char *err);
/* rc_rlink_tick's halves around the waiting commands: probing and the map's
 * refresh first, then each node's own turn (retiring, freeing, ticking). */
void rl_tick_topology(rc_rlink *l, uint64_t now_ms);
void rl_tick_nodes(rc_rlink *l, uint64_t now_ms);
/* rc_rlink_close's part after the waiting commands failed: closes each node. */
void rl_close_nodes(rc_rlink *l);

/* link_cmd.c (calls into link.c, never the other way) */
/* Sends the commands waiting whose time has come; gives up those past
 * theirs; fails all once the link stops. */
void rl_run_waiting(rc_rlink *l);

#endif
