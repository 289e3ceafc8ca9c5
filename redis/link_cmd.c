/* A link's commands (redis/link.h): each to its slot's primary, kept
 * formatted on a cluster so that a MOVED, an ASK or a TRYAGAIN sends it
 * again; the subscribers' raw commands; a subscriber's MOVED.
 *
 * Thread: the relay's. */
#include "redis/link_int.h"

#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "base/log.h"

/* ---- commands ------------------------------------------------------------ */

static void on_req_reply(void *u, redisReply *rep, const char *err, void *priv);

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
    node *n = q->ask ? rl_by_tag(l, q->ask) : rl_owner_of(l, q->slot);
    if (!rl_ready(n) || n->role == ROLE_PROBE)
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
        rl_finish(q, rep, err);
        return;
    }
    bool moved = strncmp(rep->str, "MOVED ", 6) == 0, ask = strncmp(rep->str, "ASK ", 4) == 0;
    bool later = strncmp(rep->str, "TRYAGAIN", 8) == 0 ||
                 strncmp(rep->str, "CLUSTERDOWN", 11) == 0 || strncmp(rep->str, "LOADING", 7) == 0;
    if (!moved && !ask && !later) {
        rl_finish(q, rep, err);
        return;
    }
    if (++q->redirects > MAX_REDIRECTS || l->now_ms >= q->give_up_ms) {
        l->st.gave_up++;
        rc_warn("redis: a command gave up after %u redirects: %s", q->redirects - 1, rep->str);
        rl_finish(q, rep, err);
        return;
    }
    if (later) {
        l->st.retries++;
        if (strncmp(rep->str, "CLUSTERDOWN", 11) == 0)
            rl_want_refresh(l, REFRESH_SOON);
        wait_push(l, q, l->now_ms + RETRY_MS);
        return;
    }
    char host[256];
    int slot, port;
    if (!parse_redirect(rep->str, &slot, host, sizeof(host), &port)) {
        rl_finish(q, rep, err);
        return;
    }
    node *n = rl_by_addr(l, host, port);
    if (!n)
        n = rl_node_at(l, host, port, ROLE_PRIMARY);
    if (moved) {
        l->st.moved++;
        if (n && n->role != ROLE_PRIMARY)
            n->role = ROLE_PRIMARY;
        int i = n ? rl_index_of(l, n) : -1;
        if (i >= 0 && l->owner)
            l->owner[slot] = (uint8_t)i;
        rl_want_refresh(l, REFRESH_SOON);
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
    node *n = rl_owner_of(l, slot);
    if (!rl_ready(n))
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
    node *n = rl_by_tag(l, tag);
    if (l->stopping || !rl_ready(n) || n->role != ROLE_PRIMARY)
        return -1;
    return rc_redis_command(n->r, fn, priv, argc, argv, lens);
}

uint16_t rc_rlink_send_raw(rc_rlink *l, int slot, int argc, const char **argv, const size_t *lens)
{
    node *n = l->stopping ? NULL : rl_owner_of(l, slot);
    if (!rl_ready(n) || rc_redis_send_raw(n->r, argc, argv, lens) < 0)
        return 0;
    return n->tag;
}

int rc_rlink_send_raw_on(rc_rlink *l, uint16_t tag, int argc, const char **argv, const size_t *lens)
{
    node *n = rl_by_tag(l, tag);
    if (l->stopping || !rl_ready(n))
        return -1;
    return rc_redis_send_raw(n->r, argc, argv, lens);
}

bool rc_rlink_moved(rc_rlink *l, const char *err)
{
    char host[256];
    int slot, port;
    if (l->mode != MODE_CLUSTER || strncmp(err, "MOVED ", 6) != 0 ||
        !parse_redirect(err, &slot, host, sizeof(host), &port))
        return false;
    node *n = rl_by_addr(l, host, port);
    if (!n)
        n = rl_node_at(l, host, port, ROLE_PRIMARY);
    int i = n ? rl_index_of(l, n) : -1;
    if (i < 0)
        return false;
    n->role = ROLE_PRIMARY;
    l->owner[slot] = (uint8_t)i;
    l->st.moved++;
    rl_want_refresh(l, REFRESH_SOON);
    return true;
}

void rl_run_waiting(rc_rlink *l)
{
    req *q = l->wait_head, *keep = NULL, *keep_tail = NULL;
    l->wait_head = l->wait_tail = NULL;
    while (q) {
        req *next = q->next;
        if (l->stopping) {
            rl_finish(q, NULL, "closed");
        } else if (q->due_ms <= l->now_ms && req_send(l, q) == 0) {
            /* sent */
        } else if (l->now_ms >= q->give_up_ms) {
            l->st.gave_up++;
            rl_finish(q, NULL, "no ready primary for the slot");
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

/* ---- the link's turn and its end ------------------------------------------ */

void rc_rlink_tick(rc_rlink *l, uint64_t now_ms)
{
    rl_tick_topology(l, now_ms);
    if (l->wait_head)
        rl_run_waiting(l);
    rl_tick_nodes(l, now_ms);
}

void rc_rlink_close(rc_rlink *l)
{
    l->stopping = true;
    rl_run_waiting(l);
    rl_close_nodes(l);
}
