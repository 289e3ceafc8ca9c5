/* Thread: whichever single thread owns the index (a shard, or the relay for its channel table). */
#include "channels/room.h"

#include <stddef.h>
#include <string.h>
#include <sys/random.h>

/* Buckets never go below this, so that a shard with a handful of rooms does
 * not resize on every add and delete. */
#define MIN_BUCKETS 16u

struct rc_rooms {
    rc_room **buckets;
    uint32_t mask; /* nbuckets - 1 */
    size_t count;
    uint64_t k0, k1; /* hash key, random per index */
};

/* Channel names are chosen by clients, so a fixed hash would let anyone who
 * knows it fill one chain and make every lookup on the shard linear. The
 * index uses SipHash-1-3 (the keyed hash several language runtimes use for
 * their tables) under a key drawn per index. */
static inline uint64_t rotl64(uint64_t x, int b)
{
    return (x << b) | (x >> (64 - b));
}

#define SIPROUND()                                                                                 \
    do {                                                                                           \
        v0 += v1;                                                                                  \
        v1 = rotl64(v1, 13);                                                                       \
        v1 ^= v0;                                                                                  \
        v0 = rotl64(v0, 32);                                                                       \
        v2 += v3;                                                                                  \
        v3 = rotl64(v3, 16);                                                                       \
        v3 ^= v2;                                                                                  \
        v0 += v3;                                                                                  \
        v3 = rotl64(v3, 21);                                                                       \
        v3 ^= v0;                                                                                  \
        v2 += v1;                                                                                  \
        v1 = rotl64(v1, 17);                                                                       \
        v1 ^= v2;                                                                                  \
        v2 = rotl64(v2, 32);                                                                       \
    } while (0)

static uint64_t load_le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint64_t siphash13(uint64_t k0, uint64_t k1, const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t v0 = k0 ^ 0x736f6d6570736575ULL;
    uint64_t v1 = k1 ^ 0x646f72616e646f6dULL;
    uint64_t v2 = k0 ^ 0x6c7967656e657261ULL;
    uint64_t v3 = k1 ^ 0x7465646279746573ULL;
    size_t whole = len & ~(size_t)7;

    for (size_t i = 0; i < whole; i += 8) {
        uint64_t m = load_le64(p + i);
        v3 ^= m;
        SIPROUND();
        v0 ^= m;
    }
    uint64_t b = (uint64_t)len << 56;
    for (size_t i = 0; i < (len & 7); i++)
        b |= (uint64_t)p[whole + i] << (8 * i);
    v3 ^= b;
    SIPROUND();
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND();
    SIPROUND();
    SIPROUND();
    return v0 ^ v1 ^ v2 ^ v3;
}

static uint32_t name_hash(const rc_rooms *rs, const char *name, size_t len)
{
    uint64_t h = siphash13(rs->k0, rs->k1, name, len);
    return (uint32_t)(h ^ (h >> 32));
}

static void draw_key(rc_rooms *rs)
{
    uint64_t k[2];
    size_t got = 0;
    while (got < sizeof(k)) {
        ssize_t r = getrandom((char *)k + got, sizeof(k) - got, 0);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    if (got < sizeof(k)) {
        /* No getrandom (a very old kernel or a seccomp filter): a key from
         * the clock and an address is weaker but still not a constant. */
        k[0] = rc_now_ns() * 0x9e3779b97f4a7c15ULL;
        k[1] = (uint64_t)(uintptr_t)rs ^ rotl64(k[0], 29);
    }
    rs->k0 = k[0];
    rs->k1 = k[1];
}

rc_rooms *rc_rooms_new(void)
{
    rc_rooms *rs = rc_calloc(1, sizeof(*rs));
    rs->buckets = rc_calloc(MIN_BUCKETS, sizeof(rc_room *));
    rs->mask = MIN_BUCKETS - 1;
    draw_key(rs);
    return rs;
}

static void room_free(rc_room *r)
{
    free(r->members);
    free(r);
}

void rc_rooms_free(rc_rooms *rs)
{
    if (!rs)
        return;
    for (size_t i = 0; i <= rs->mask; i++) {
        rc_room *r = rs->buckets[i];
        while (r) {
            rc_room *next = r->next;
            room_free(r);
            r = next;
        }
    }
    free(rs->buckets);
    free(rs);
}

/* Rehashes into nb buckets using the hashes stored in the rooms, so a resize
 * never touches the names. */
static void resize(rc_rooms *rs, size_t nb)
{
    rc_room **nbk = rc_calloc(nb, sizeof(rc_room *));
    uint32_t nmask = (uint32_t)(nb - 1);
    for (size_t i = 0; i <= rs->mask; i++) {
        rc_room *r = rs->buckets[i];
        while (r) {
            rc_room *next = r->next;
            rc_room **head = &nbk[r->hash & nmask];
            r->next = *head;
            *head = r;
            r = next;
        }
    }
    free(rs->buckets);
    rs->buckets = nbk;
    rs->mask = nmask;
}

static rc_room *lookup(rc_rooms *rs, const char *name, size_t len, uint32_t h)
{
    for (rc_room *r = rs->buckets[h & rs->mask]; r; r = r->next) {
        if (r->hash == h && r->name_len == len && memcmp(r->name, name, len) == 0)
            return r;
    }
    return NULL;
}

rc_room *rc_rooms_get(rc_rooms *rs, const char *name, size_t len)
{
    if (len > UINT16_MAX)
        return NULL;
    return lookup(rs, name, len, name_hash(rs, name, len));
}

rc_room *rc_rooms_add(rc_rooms *rs, const char *name, size_t len)
{
    rc_assert(len <= UINT16_MAX);
    uint32_t h = name_hash(rs, name, len);
    rc_room *r = lookup(rs, name, len, h);
    if (r)
        return r;

    size_t sz = RC_MAX(sizeof(rc_room), offsetof(rc_room, name) + len + 1);
    r = rc_malloc(sz);
    r->n = 0;
    r->cap = 0;
    r->members = NULL;
    r->hash = h;
    r->flags = 0;
    r->held = 0;
    r->udata = NULL;
    r->seq = 0;
    r->top = r->top_epoch = r->top_tick = 0;
    r->name_len = (uint16_t)len;
    memcpy(r->name, name, len);
    r->name[len] = '\0';

    rc_room **head = &rs->buckets[h & rs->mask];
    r->next = *head;
    *head = r;
    rs->count++;
    /* Load factor above 1: double. The bucket count is capped where the
     * 32-bit hash stops spreading rooms any further. */
    if (rs->count > (size_t)rs->mask + 1 && rs->mask < UINT32_MAX / 2)
        resize(rs, ((size_t)rs->mask + 1) * 2);
    return r;
}

void rc_rooms_del(rc_rooms *rs, rc_room *r)
{
    rc_room **pp = &rs->buckets[r->hash & rs->mask];
    while (*pp != r) {
        rc_assert(*pp != NULL); /* r is not in this index */
        pp = &(*pp)->next;
    }
    *pp = r->next;
    room_free(r);
    rs->count--;
    /* Shrink at a load factor under 1/4 to a load under 1/2, so that an add
     * right after a shrink does not grow again straight away. */
    size_t nb = (size_t)rs->mask + 1;
    if (nb > MIN_BUCKETS && rs->count < nb / 4)
        resize(rs, nb / 2);
}

size_t rc_rooms_count(const rc_rooms *rs)
{
    return rs->count;
}

void rc_rooms_each(rc_rooms *rs, void (*fn)(rc_room *r, void *arg), void *arg)
{
    for (size_t i = 0; i <= rs->mask; i++) {
        rc_room *r = rs->buckets[i];
        while (r) {
            rc_room *next = r->next;
            fn(r, arg);
            r = next;
        }
    }
}

/* Member arrays start at 2 entries (8 bytes: the smallest allocation class)
 * and double, so a one-member room costs one small block. */
uint32_t rc_room_join(rc_room *r, uint32_t member)
{
    rc_assert(member != UINT32_MAX);
    if (r->n == r->cap) {
        rc_assert(r->cap <= UINT32_MAX / 2);
        uint32_t ncap = r->cap ? r->cap * 2 : 2;
        r->members = rc_realloc(r->members, (size_t)ncap * sizeof(uint32_t));
        r->cap = ncap;
    }
    r->members[r->n] = member;
    return r->n++;
}

uint32_t rc_room_leave(rc_room *r, uint32_t pos)
{
    rc_assert(pos < r->n);
    uint32_t last = r->n - 1;
    uint32_t moved = UINT32_MAX;
    if (pos != last) {
        moved = r->members[last];
        r->members[pos] = moved;
    }
    r->n = last;

    /* A room that a crowd joined and left gives its memory back: empty frees
     * the array; under a quarter full halves it (still twice the members, so
     * joins and leaves around the boundary do not thrash). */
    if (r->n == 0) {
        free(r->members);
        r->members = NULL;
        r->cap = 0;
    } else if (r->cap > 2 && r->n < r->cap / 4) {
        r->cap /= 2;
        r->members = rc_realloc(r->members, (size_t)r->cap * sizeof(uint32_t));
    }
    return moved;
}
