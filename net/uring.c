/* Thread: the thread that owns the ring. */
#include "net/uring.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

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
    void *mem = mmap(NULL, (size_t)count * size, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
        int e = errno;
        munmap(br, ring_bytes);
        return -e;
    }
    b->br = br;
    b->mem = mem;
    b->count = count;
    b->size = size;
    b->mask = (uint32_t)io_uring_buf_ring_mask(count);
    b->bgid = bgid;
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
        memset(b, 0, sizeof(*b));
        return r;
    }
    for (uint32_t i = 0; i < count; i++)
        rc_bufring_recycle(b, (uint16_t)i);
    rc_bufring_publish(b);
    return 0;
}

void rc_bufring_free(rc_bufring *b, struct io_uring *ring)
{
    if (!b->br)
        return;
    io_uring_unregister_buf_ring(ring, b->bgid);
    munmap(b->br, (size_t)b->count * sizeof(struct io_uring_buf));
    munmap(b->mem, (size_t)b->count * b->size);
    memset(b, 0, sizeof(*b));
}
