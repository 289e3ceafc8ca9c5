/* Per-address limits (--max-conns-per-ip, --handshake-rate-per-ip): a
 * small hash table of the addresses a shard serves, with a connection count
 * and a handshake bucket each; and the token bucket both rates use.
 *
 * Thread: the shard's own. */
#include <string.h>

#include "engine/shard.h"

static uint32_t addr_hash(const struct in6_addr *ip)
{
    uint32_t h = 2166136261u;
    for (int i = 0; i < 16; i++)
        h = (h ^ ip->s6_addr[i]) * 16777619u;
    return h;
}

static uint32_t addr_find_or_add(rc_shard *s, const struct in6_addr *ip)
{
    if (!s->addr_hash) {
        s->addr_mask = 4095;
        s->addr_hash = rc_malloc((s->addr_mask + 1) * sizeof(uint32_t));
        memset(s->addr_hash, 0xff, (s->addr_mask + 1) * sizeof(uint32_t));
        s->addr_free = RC_NO_CONN;
    }
    uint32_t b = addr_hash(ip) & s->addr_mask;
    for (uint32_t i = s->addr_hash[b]; i != RC_NO_CONN; i = s->addrs[i].next)
        if (memcmp(&s->addrs[i].ip, ip, sizeof(*ip)) == 0)
            return i;
    uint32_t i;
    if (s->addr_free != RC_NO_CONN) {
        i = s->addr_free;
        s->addr_free = s->addrs[i].next;
    } else {
        if (s->naddrs == s->cap_addrs) {
            s->cap_addrs = s->cap_addrs ? s->cap_addrs * 2 : 256;
            s->addrs = rc_realloc(s->addrs, s->cap_addrs * sizeof(rc_addr));
        }
        i = s->naddrs++;
    }
    rc_addr *a = &s->addrs[i];
    memset(a, 0, sizeof(*a));
    a->ip = *ip;
    a->hs_tokens = (uint64_t)s->cfg->handshake_rate_per_ip * 1000u;
    a->hs_tick = s->now_tick;
    a->next = s->addr_hash[b];
    s->addr_hash[b] = i;
    return i;
}

/* An idle entry whose handshake bucket is not yet full must stay: freeing
 * it would hand the address a full bucket on its next connection, and a
 * client that closes each connection before opening the next would never be
 * limited. It lingers until the bucket has refilled (at most a second), and
 * addr_sweep frees it then. */
static int addr_lingers(const rc_shard *s, const rc_addr *a)
{
    uint32_t rate = s->cfg->handshake_rate_per_ip;
    if (!rate)
        return 0;
    uint64_t refill = (uint64_t)(s->now_tick - a->hs_tick) * rate * RC_TICK_MS;
    return a->hs_tokens + refill < (uint64_t)rate * 1000u;
}

static void addr_free(rc_shard *s, uint32_t i)
{
    rc_addr *a = &s->addrs[i];
    uint32_t b = addr_hash(&a->ip) & s->addr_mask;
    uint32_t *pp = &s->addr_hash[b];
    while (*pp != i)
        pp = &s->addrs[*pp].next;
    *pp = a->next;
    a->next = s->addr_free;
    a->lingering = 0;
    s->addr_free = i;
}

/* Drops a connection's hold on its address entry; frees idle entries. */
static void addr_unref(rc_shard *s, uint32_t i)
{
    rc_addr *a = &s->addrs[i];
    if (a->conns)
        a->conns--;
    if (a->conns)
        return;
    if (addr_lingers(s, a)) {
        if (!a->lingering) {
            a->lingering = 1;
            s->addrs_lingering++;
        }
        return;
    }
    addr_free(s, i);
}

/* Once a tick: frees the idle entries whose buckets have refilled. */
void rc_addr_sweep(rc_shard *s)
{
    for (uint32_t i = 0; s->addrs_lingering && i < s->naddrs; i++) {
        rc_addr *a = &s->addrs[i];
        if (!a->lingering)
            continue;
        if (a->conns) { /* in use again */
            a->lingering = 0;
            s->addrs_lingering--;
        } else if (!addr_lingers(s, a)) {
            s->addrs_lingering--;
            addr_free(s, i);
        }
    }
}

void rc_shard_addr_release(rc_shard *s, rc_conn *c)
{
    if (c->addr != RC_NO_CONN) {
        addr_unref(s, c->addr);
        c->addr = RC_NO_CONN;
    }
}

/* Token buckets in thousandths, refilled by elapsed ticks: takes one token
 * and returns 1, or returns 0 when the bucket is empty. The bucket holds at
 * most one second of tokens, so counting more than a second of elapsed ticks
 * changes nothing; capping them keeps the sum within 64 bits for any rate. */
int rc_bucket_take(uint64_t *tokens, uint32_t *tick, uint32_t now, uint32_t rate)
{
    uint64_t cap = (uint64_t)rate * 1000u;
    uint64_t elapsed = RC_MIN((uint64_t)(now - *tick), (uint64_t)(1000 / RC_TICK_MS));
    uint64_t add = elapsed * rate * RC_TICK_MS;
    *tick = now;
    *tokens = RC_MIN(cap, *tokens + add);
    if (*tokens < 1000)
        return 0;
    *tokens -= 1000;
    return 1;
}

int rc_addr_admit(rc_shard *s, rc_conn *c, const struct in6_addr *ip, const char **why,
                  const char **retry)
{
    c->addr = addr_find_or_add(s, ip);
    rc_addr *a = &s->addrs[c->addr];
    a->conns++;
    if (s->per_ip_conns && a->conns > s->per_ip_conns) {
        *why = "too many connections from your address\n";
        *retry = "Retry-After: 5\r\n";
        return -1;
    }
    if (s->cfg->handshake_rate_per_ip &&
        !rc_bucket_take(&a->hs_tokens, &a->hs_tick, s->now_tick, s->cfg->handshake_rate_per_ip)) {
        *why = "handshake rate exceeded\n";
        *retry = "Retry-After: 1\r\n";
        return -1;
    }
    return 0;
}
