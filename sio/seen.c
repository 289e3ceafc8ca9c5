/* Names for the emitter's messages that every node hears alike
 * (sio/seen.h): a table of content digests with how often each came within
 * the window, oldest last-seen first.
 *
 * Thread: the relay thread. */
#include "sio/seen.h"

#include "proto/protocol.h"

#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUCKETS 4096 /* a power of two */

typedef struct entry {
    struct entry *next;          /* in its bucket */
    struct entry *older, *newer; /* by last seen */
    uint64_t last_ms;
    uint32_t count;
    uint8_t digest[16];
} entry;

struct rc_sio_seen {
    entry *buckets[BUCKETS];
    entry *oldest, *newest;
    uint32_t n;
};

rc_sio_seen *rc_sio_seen_new(void)
{
    return rc_calloc(1, sizeof(rc_sio_seen));
}

static uint32_t bucket_of(const uint8_t *d)
{
    uint32_t h;
    memcpy(&h, d, sizeof(h));
    return h & (BUCKETS - 1);
}

static void unlink_lru(rc_sio_seen *t, entry *e)
{
    if (e->older)
        e->older->newer = e->newer;
    else
        t->oldest = e->newer;
    if (e->newer)
        e->newer->older = e->older;
    else
        t->newest = e->older;
    e->older = e->newer = NULL;
}

static void push_newest(rc_sio_seen *t, entry *e)
{
    e->older = t->newest;
    e->newer = NULL;
    if (t->newest)
        t->newest->newer = e;
    else
        t->oldest = e;
    t->newest = e;
}

static void drop(rc_sio_seen *t, entry *e)
{
    entry **pp = &t->buckets[bucket_of(e->digest)];
    while (*pp != e)
        pp = &(*pp)->next;
    *pp = e->next;
    unlink_lru(t, e);
    t->n--;
    free(e);
}

size_t rc_sio_seen_name(rc_sio_seen *t, rc_str chan, rc_str payload, uint64_t now_ms, char *out)
{
    while (t->oldest && now_ms - t->oldest->last_ms >= RC_SIO_SEEN_WINDOW_MS)
        drop(t, t->oldest);
    /* SHA-256 of the channel, a NUL and the payload's own digest. */
    uint8_t full[SHA256_DIGEST_LENGTH], buf[RC_PROTO_MAX_CHANNEL + 1 + SHA256_DIGEST_LENGTH];
    size_t cn = RC_MIN(chan.n, (size_t)RC_PROTO_MAX_CHANNEL);
    memcpy(buf, chan.p, cn);
    buf[cn] = '\0';
    SHA256((const unsigned char *)payload.p, payload.n, buf + cn + 1);
    SHA256(buf, cn + 1 + SHA256_DIGEST_LENGTH, full);
    entry *e = t->buckets[bucket_of(full)];
    while (e && memcmp(e->digest, full, sizeof(e->digest)) != 0)
        e = e->next;
    if (e) {
        unlink_lru(t, e);
        e->count++;
    } else {
        if (t->n >= RC_SIO_SEEN_MAX)
            drop(t, t->oldest);
        e = rc_calloc(1, sizeof(*e));
        memcpy(e->digest, full, sizeof(e->digest));
        e->count = 1;
        uint32_t b = bucket_of(full);
        e->next = t->buckets[b];
        t->buckets[b] = e;
        t->n++;
    }
    e->last_ms = now_ms;
    push_newest(t, e);
    size_t n = 0;
    for (size_t i = 0; i < sizeof(e->digest); i++)
        n += (size_t)snprintf(out + n, RC_SIO_SEEN_NAME_MAX - n, "%02x", e->digest[i]);
    n += (size_t)snprintf(out + n, RC_SIO_SEEN_NAME_MAX - n, "-%u", e->count);
    return n;
}

uint32_t rc_sio_seen_count(const rc_sio_seen *t)
{
    return t->n;
}

void rc_sio_seen_free(rc_sio_seen *t)
{
    if (!t)
        return;
    while (t->oldest)
        drop(t, t->oldest);
    free(t);
}
