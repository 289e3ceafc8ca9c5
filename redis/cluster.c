/* Redis Cluster's map of hash slots (redis/cluster.h).
 *
 * Thread: any. */
#include "redis/cluster.h"

#include "base/common.h"

#include <string.h>

/* CRC16-XMODEM, a bit at a time: keys are short, and the relay computes a
 * slot once per channel, not per message. */
static uint16_t crc16(const uint8_t *p, size_t n)
{
    uint16_t crc = 0;
    for (size_t i = 0; i < n; i++) {
        crc ^= (uint16_t)(p[i] << 8);
        for (int b = 0; b < 8; b++)
            crc = (uint16_t)(crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1);
    }
    return crc;
}

uint16_t rc_cluster_slot(const char *key, size_t n)
{
    const char *open = memchr(key, '{', n);
    if (open) {
        size_t rest = n - (size_t)(open - key) - 1;
        const char *close = memchr(open + 1, '}', rest);
        if (close && close > open + 1) {
            key = open + 1;
            n = (size_t)(close - open - 1);
        }
    }
    return (uint16_t)(crc16((const uint8_t *)key, n) & (RC_CLUSTER_SLOTS - 1));
}

static int fail(const char **why, const char *msg)
{
    *why = msg;
    return -1;
}

/* The primary named by node [host, port, id, ...]: its index in m, added
 * when new; -1 when it is malformed or the map is full. */
static int primary_of(rc_cluster_map *m, const redisReply *node, const char **why)
{
    if (node->type != REDIS_REPLY_ARRAY || node->elements < 2 ||
        node->element[0]->type != REDIS_REPLY_STRING ||
        node->element[1]->type != REDIS_REPLY_INTEGER)
        return fail(why, "a node that is not [host, port, ...]");
    const redisReply *h = node->element[0];
    long long port = node->element[1]->integer;
    if (h->len == 0 || h->len >= sizeof(m->primaries[0].host) || port <= 0 || port > 65535)
        return fail(why, "a node's host or port out of range");
    const redisReply *id = node->elements > 2 && node->element[2]->type == REDIS_REPLY_STRING
                               ? node->element[2]
                               : NULL;
    for (uint32_t i = 0; i < m->n_primaries; i++) {
        const rc_cluster_node *p = &m->primaries[i];
        if (p->port == port && strlen(p->host) == h->len && memcmp(p->host, h->str, h->len) == 0)
            return (int)i;
    }
    if (m->n_primaries >= RC_CLUSTER_MAX_PRIMARIES)
        return fail(why, "more primaries than the map holds");
    rc_cluster_node *p = &m->primaries[m->n_primaries];
    memset(p, 0, sizeof(*p));
    memcpy(p->host, h->str, h->len);
    p->port = (int)port;
    if (id && id->len < sizeof(p->id))
        memcpy(p->id, id->str, id->len);
    return (int)m->n_primaries++;
}

int rc_cluster_map_read(const redisReply *r, rc_cluster_map *m, const char **why)
{
    memset(m->owner, 0xff, sizeof(m->owner));
    m->n_primaries = 0;
    m->covered = 0;
    if (!r || r->type != REDIS_REPLY_ARRAY)
        return fail(why, "not an array");
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 ||
            e->element[0]->type != REDIS_REPLY_INTEGER ||
            e->element[1]->type != REDIS_REPLY_INTEGER)
            return fail(why, "an entry that is not [start, end, primary, ...]");
        long long lo = e->element[0]->integer, hi = e->element[1]->integer;
        if (lo < 0 || hi >= RC_CLUSTER_SLOTS || lo > hi)
            return fail(why, "a slot range out of 0..16383");
        int p = primary_of(m, e->element[2], why);
        if (p < 0)
            return -1;
        m->primaries[p].replicas = RC_MAX(m->primaries[p].replicas, (uint32_t)(e->elements - 3));
        for (long long s = lo; s <= hi; s++) {
            if (m->owner[s] == RC_CLUSTER_NO_OWNER)
                m->covered++;
            else if (m->owner[s] != (uint16_t)p)
                return fail(why, "a slot owned by two primaries");
            m->owner[s] = (uint16_t)p;
        }
    }
    return 0;
}

const rc_cluster_node *rc_cluster_owner(const rc_cluster_map *m, uint16_t slot)
{
    if (slot >= RC_CLUSTER_SLOTS || m->owner[slot] == RC_CLUSTER_NO_OWNER)
        return NULL;
    return &m->primaries[m->owner[slot]];
}
