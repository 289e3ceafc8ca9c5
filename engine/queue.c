/* Thread: shared by design: the table in engine/queue.h says which thread writes and reads each
 * field. */
#include "engine/queue.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "base/common.h"

int rc_spsc_init(rc_spsc *q, size_t capacity)
{
    if (capacity < 2 || (capacity & (capacity - 1)))
        return -1;
    atomic_init(&q->head, 0);
    atomic_init(&q->tail, 0);
    q->tail_cache = 0;
    q->head_cache = 0;
    q->mask = capacity - 1;
    q->slots = rc_calloc(capacity, sizeof(rc_qitem));
    return 0;
}

void rc_spsc_free(rc_spsc *q)
{
    free(q->slots);
    q->slots = NULL;
}

bool rc_spsc_push(rc_spsc *q, const rc_qitem *it)
{
    size_t tail = atomic_load_explicit(&q->tail, memory_order_relaxed);
    /* Only re-read the consumer's head (a cache miss) when our cached view
     * says the ring is full. */
    if (tail - q->head_cache > q->mask) {
        q->head_cache = atomic_load_explicit(&q->head, memory_order_acquire);
        if (tail - q->head_cache > q->mask)
            return false;
    }
    q->slots[tail & q->mask] = *it;
    atomic_store_explicit(&q->tail, tail + 1, memory_order_release);
    return true;
}

bool rc_spsc_pop(rc_spsc *q, rc_qitem *it)
{
    size_t head = atomic_load_explicit(&q->head, memory_order_relaxed);
    if (head == q->tail_cache) {
        q->tail_cache = atomic_load_explicit(&q->tail, memory_order_acquire);
        if (head == q->tail_cache)
            return false;
    }
    *it = q->slots[head & q->mask];
    atomic_store_explicit(&q->head, head + 1, memory_order_release);
    return true;
}

const rc_qitem *rc_spsc_peek(rc_spsc *q)
{
    size_t head = atomic_load_explicit(&q->head, memory_order_relaxed);
    if (head == q->tail_cache) {
        q->tail_cache = atomic_load_explicit(&q->tail, memory_order_acquire);
        if (head == q->tail_cache)
            return NULL;
    }
    return &q->slots[head & q->mask];
}

void rc_spsc_drop(rc_spsc *q)
{
    size_t head = atomic_load_explicit(&q->head, memory_order_relaxed);
    atomic_store_explicit(&q->head, head + 1, memory_order_release);
}

bool rc_spsc_empty(rc_spsc *q)
{
    size_t head = atomic_load_explicit(&q->head, memory_order_relaxed);
    return head == atomic_load_explicit(&q->tail, memory_order_acquire);
}

size_t rc_spsc_depth(const rc_spsc *q)
{
    size_t tail = atomic_load_explicit(&q->tail, memory_order_relaxed);
    size_t head = atomic_load_explicit(&q->head, memory_order_relaxed);
    return tail >= head ? tail - head : 0;
}

int rc_waker_init(rc_waker *w)
{
    w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->efd < 0)
        return -errno;
    atomic_init(&w->sleeping, 0);
    atomic_init(&w->wakes, 0);
    return 0;
}

void rc_waker_free(rc_waker *w)
{
    if (w->efd >= 0)
        close(w->efd);
    w->efd = -1;
}

void rc_waker_sleep_begin(rc_waker *w)
{
    atomic_store_explicit(&w->sleeping, 1, memory_order_seq_cst);
    /* Orders the flag store before the caller's re-check of its queues. */
    atomic_thread_fence(memory_order_seq_cst);
}

void rc_waker_sleep_end(rc_waker *w)
{
    atomic_store_explicit(&w->sleeping, 0, memory_order_relaxed);
}

void rc_waker_wake(rc_waker *w)
{
    /* Orders the producer's pushes before its look at the flag. */
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_exchange_explicit(&w->sleeping, 0, memory_order_seq_cst)) {
        uint64_t one = 1;
        /* EAGAIN means the counter is already non-zero: the consumer will
         * wake anyway. */
        ssize_t r = write(w->efd, &one, sizeof(one));
        (void)r;
        atomic_fetch_add_explicit(&w->wakes, 1, memory_order_relaxed);
    }
}
