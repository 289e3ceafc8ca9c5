/* Thread: the thread that owns the ring. */
#include "net/uring.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int rc_ring_init(struct io_uring *ring, unsigned entries, const char **mode)
{
    static const struct {
        unsigned flags;
        const char *name;
    } tries[] = {
        {IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN, "single_issuer+defer_taskrun"},
        {IORING_SETUP_COOP_TASKRUN, "coop_taskrun"},
        {0, "plain"},
    };
    int r = -EINVAL;
    for (size_t i = 0; i < RC_ARRAY_LEN(tries); i++) {
        struct io_uring_params p;
        memset(&p, 0, sizeof(p));
        p.flags = tries[i].flags | IORING_SETUP_SUBMIT_ALL;
        /* A CQ four times the SQ: multishot recv and accept post many
         * completions per submission. */
        p.flags |= IORING_SETUP_CQSIZE;
        p.cq_entries = entries * 4;
        r = io_uring_queue_init_params(entries, ring, &p);
        if (r == 0) {
            *mode = tries[i].name;
            return 0;
        }
    }
    return r;
}

int rc_ring_at_rest(struct io_uring *ring)
{
    return (ring->flags & IORING_SETUP_DEFER_TASKRUN) && io_uring_cq_ready(ring) == 0 &&
           !(IO_URING_READ_ONCE(*ring->sq.kflags) & IORING_SQ_CQ_OVERFLOW);
}

struct io_uring_sqe *rc_ring_sqe(struct io_uring *ring)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    if (RC_LIKELY(sqe != NULL))
        return sqe;
    io_uring_submit(ring);
    sqe = io_uring_get_sqe(ring);
    rc_assert(sqe != NULL);
    return sqe;
}

int rc_bufring_init(rc_bufring *b, struct io_uring *ring, uint16_t bgid, uint32_t count,
                    uint32_t size)
{
    memset(b, 0, sizeof(*b));
    size_t ring_bytes = (size_t)count * sizeof(struct io_uring_buf);
    void *br = mmap(NULL, ring_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (br == MAP_FAILED)
        return -errno;
    /* Address space for every buffer; only those in circulation get pages. */
    void *mem = mmap(NULL, (size_t)count * size, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    uint16_t *spare = rc_calloc(count, sizeof(*spare));
    if (mem == MAP_FAILED) {
        int e = errno;
        munmap(br, ring_bytes);
        free(spare);
        return -e;
    }
    b->br = br;
    b->mem = mem;
    b->count = count;
    b->size = size;
    b->mask = (uint32_t)io_uring_buf_ring_mask(count);
    b->bgid = bgid;
    b->spare = spare;
    io_uring_buf_ring_init(b->br);
    struct io_uring_buf_reg reg;
    memset(&reg, 0, sizeof(reg));
    reg.ring_addr = (uint64_t)(uintptr_t)br;
    reg.ring_entries = count;
    reg.bgid = bgid;
    int r = io_uring_register_buf_ring(ring, &reg, 0);
    if (r < 0) {
        munmap(br, ring_bytes);
        munmap(mem, (size_t)count * size);
        free(spare);
        memset(b, 0, sizeof(*b));
        return r;
    }
    /* The stack pops the lowest ids first: the ring's pages stay together. */
    for (uint32_t i = count; i-- > 0;)
        b->spare[b->nspare++] = (uint16_t)i;
    b->goal = count;
    uint32_t start = RC_MIN(count, (uint32_t)RC_BUFRING_START);
    for (uint32_t i = 0; i < start; i++) {
        uint16_t bid = b->spare[--b->nspare];
        io_uring_buf_ring_add(b->br, rc_bufring_addr(b, bid), b->size, bid, (int)b->mask, (int)i);
    }
    io_uring_buf_ring_advance(b->br, (int)start);
    b->live = b->avail = start;
    return 0;
}

/* Returns the whole pages inside [p, p + n) to the kernel; a buffer smaller
 * than a page keeps its page (its neighbours may be live). */
static size_t drop_pages(uint8_t *p, size_t n)
{
    uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE); /* rare: no cache, no shared state */
    uintptr_t lo = ((uintptr_t)p + pg - 1) & ~(pg - 1), hi = ((uintptr_t)p + n) & ~(pg - 1);
    if (hi <= lo)
        return 0;
    madvise((void *)lo, hi - lo, MADV_DONTNEED);
    return hi - lo;
}

void rc_bufring_recycle(rc_bufring *b, uint16_t bid)
{
    b->taken++;
    if (b->live > b->goal) {
        b->live--;
        b->spare[b->nspare++] = bid;
        drop_pages(rc_bufring_addr(b, bid), b->size);
        return;
    }
    io_uring_buf_ring_add(b->br, rc_bufring_addr(b, bid), b->size, bid, (int)b->mask,
                          (int)b->pending);
    b->pending++;
}

void rc_bufring_publish(rc_bufring *b)
{
    /* Each buffer given back this batch was taken by the kernel once. */
    b->avail = b->avail > b->taken ? b->avail - b->taken : 0;
    b->avail += b->pending;
    b->quiet += b->taken;
    if (b->taken > b->peak)
        b->peak = b->taken;
    b->taken = 0;
    uint32_t add = 0;
    if ((b->starved || b->avail < b->live / 4) && b->live < b->count) {
        add = RC_MIN(b->live, b->count - b->live);
        if (add > b->nspare)
            add = b->nspare;
        for (uint32_t i = 0; i < add; i++) {
            uint16_t bid = b->spare[--b->nspare];
            io_uring_buf_ring_add(b->br, rc_bufring_addr(b, bid), b->size, bid, (int)b->mask,
                                  (int)(b->pending + i));
        }
        b->live += add;
        b->avail += add;
        if (b->goal < b->live)
            b->goal = b->live;
    }
    b->starved = 0;
    if (b->pending + add) {
        io_uring_buf_ring_advance(b->br, (int)(b->pending + add));
        b->pending = 0;
    }
}

size_t rc_bufring_trim(rc_bufring *b, int zap_ok)
{
    uint32_t want = RC_BUFRING_START;
    while (want < 2 * b->peak && want < b->count)
        want *= 2;
    b->goal = RC_MIN(want, b->count);
    b->peak = 0;
    /* Quiet: fewer buffers taken since the last call than half the live
     * ones, so dropping every page costs at most that many page faults. */
    size_t dropped = 0;
    if (zap_ok && b->quiet < b->live / 2)
        dropped = drop_pages(b->mem, (size_t)b->count * b->size);
    b->quiet = 0;
    return dropped;
}

void rc_bufring_free(rc_bufring *b, struct io_uring *ring)
{
    if (!b->br)
        return;
    io_uring_unregister_buf_ring(ring, b->bgid);
    munmap(b->br, (size_t)b->count * sizeof(struct io_uring_buf));
    munmap(b->mem, (size_t)b->count * b->size);
    free(b->spare);
    memset(b, 0, sizeof(*b));
}
