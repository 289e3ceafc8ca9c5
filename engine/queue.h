/* Everything ringcast shares between threads lives here, and this pair of
 * files is the only place with atomics.
 *
 * Threads: N shard threads, one relay thread, the main thread (signals).
 *
 * object              written by                  read by             orderings
 * ------------------  --------------------------  ------------------  -----------------------------
 * rc_spsc.tail        the producer (one thread)   the consumer        store release / load acquire
 * rc_spsc.head        the consumer (one thread)   the producer        store release / load acquire
 * rc_spsc.slots[i]    the producer, before tail   the consumer, after published by tail's release
 * rc_waker.sleeping   the consumer (set), the     both                seq_cst (Dekker-style, see
 *                     producer (clear, exchange)                      rc_waker)
 * rc_counter.v        one owning thread           any (metrics)       relaxed; one writer, no RMW
 * rc_gauge.v          one owning thread           any                 relaxed
 * rc_ref.v            any holder                  any holder          get relaxed, put acq_rel
 * rc_flag.v           any                         any                 store release / load acquire
 *
 * Queues: one bounded SPSC ring shard->relay and one relay->shard per shard.
 * A full queue is a decision for the producer (rc_spsc_push returns false),
 * never a block. Wake-ups: the consumer sleeps in io_uring with a read armed
 * on its eventfd; a producer writes the eventfd only when the consumer said
 * it is about to sleep, so a busy consumer costs producers no syscall, and a
 * batch of pushes costs at most one. */
#ifndef RC_QUEUE_H
#define RC_QUEUE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RC_CACHELINE 64

/* One queue entry: small and fixed, copied by value. What kind means, and
 * which fields carry what, is the business of the two ends (relay.h). */
typedef struct rc_qitem {
    uint32_t kind;
    uint32_t a;
    uint64_t b;
    void *p;
} rc_qitem;

typedef struct rc_spsc {
    /* consumer side */
    _Alignas(RC_CACHELINE) _Atomic size_t head;
    size_t tail_cache; /* consumer's last view of tail */
    /* producer side */
    _Alignas(RC_CACHELINE) _Atomic size_t tail;
    size_t head_cache; /* producer's last view of head */
    /* read-only after init */
    _Alignas(RC_CACHELINE) size_t mask;
    rc_qitem *slots;
} rc_spsc;

/* Sets up an empty queue of capacity entries (a power of two >= 2). Returns 0,
 * or -1 when capacity is not a power of two. Not thread-safe: call before
 * the threads start. */
int rc_spsc_init(rc_spsc *q, size_t capacity);
void rc_spsc_free(rc_spsc *q);

/* Producer only. Appends *it; returns false when the queue is full (nothing
 * is written). */
bool rc_spsc_push(rc_spsc *q, const rc_qitem *it);

/* Consumer only. Pops the oldest entry into *it; returns false when empty. */
bool rc_spsc_pop(rc_spsc *q, rc_qitem *it);

/* Consumer only. The oldest entry without removing it, or NULL when empty.
 * The pointer is valid until the next pop or drop. */
const rc_qitem *rc_spsc_peek(rc_spsc *q);

/* Consumer only. Removes the oldest entry (after a non-NULL peek). */
void rc_spsc_drop(rc_spsc *q);

/* Any thread. Entries in the queue at some recent moment (for metrics). */
size_t rc_spsc_depth(const rc_spsc *q);

/* Consumer only: true when nothing is queued. */
bool rc_spsc_empty(rc_spsc *q);

/* The wake-up side of a consumer: an eventfd plus a "sleeping" flag.
 * Consumer:  rc_waker_sleep_begin(w); if (queues empty) wait in io_uring
 *            (its eventfd read completes on wake); rc_waker_sleep_end(w).
 * Producer:  push one or more items, then rc_waker_wake(w).
 * The seq_cst store of the flag before the consumer re-checks its queues, and
 * the seq_cst exchange after the producer's push, make it impossible for both
 * to miss each other. */
typedef struct rc_waker {
    int efd;
    _Alignas(RC_CACHELINE) _Atomic int sleeping;
    _Atomic uint64_t wakes; /* eventfd writes, for metrics */
} rc_waker;

/* Creates the eventfd (non-blocking, close-on-exec). Returns 0 or -errno. */
int rc_waker_init(rc_waker *w);
void rc_waker_free(rc_waker *w);
void rc_waker_sleep_begin(rc_waker *w);
void rc_waker_sleep_end(rc_waker *w);
/* Wakes the consumer if it announced sleep. Can't fail (a full eventfd
 * counter already means "awake"). */
void rc_waker_wake(rc_waker *w);

/* A counter with one writer and any number of readers. */
typedef struct rc_counter {
    _Atomic uint64_t v;
} rc_counter;

static inline void rc_counter_add(rc_counter *c, uint64_t n)
{
    atomic_store_explicit(&c->v, atomic_load_explicit(&c->v, memory_order_relaxed) + n,
                          memory_order_relaxed);
}
static inline void rc_counter_inc(rc_counter *c)
{
    rc_counter_add(c, 1);
}
static inline void rc_counter_set(rc_counter *c, uint64_t v)
{
    atomic_store_explicit(&c->v, v, memory_order_relaxed);
}
static inline uint64_t rc_counter_get(const rc_counter *c)
{
    return atomic_load_explicit(&c->v, memory_order_relaxed);
}

/* A reference count shared by threads (a message delivered by several
 * shards). */
typedef struct rc_ref {
    _Atomic uint32_t v;
} rc_ref;

static inline void rc_ref_init(rc_ref *r, uint32_t n)
{
    atomic_init(&r->v, n);
}
/* Takes one more reference, for a holder that already has one. */
static inline void rc_ref_get(rc_ref *r)
{
    atomic_fetch_add_explicit(&r->v, 1, memory_order_relaxed);
}
/* Drops one reference; true when it was the last (the caller frees). */
static inline bool rc_ref_put(rc_ref *r)
{
    return atomic_fetch_sub_explicit(&r->v, 1, memory_order_acq_rel) == 1;
}

/* A one-way flag (drain requested, thread ready). */
typedef struct rc_flag {
    _Atomic int v;
} rc_flag;

static inline void rc_flag_set(rc_flag *f, int v)
{
    atomic_store_explicit(&f->v, v, memory_order_release);
}
static inline int rc_flag_get(const rc_flag *f)
{
    return atomic_load_explicit(&f->v, memory_order_acquire);
}

#endif
