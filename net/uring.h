/* io_uring plumbing shared by the shards and the relay: ring set-up with
 * flag fallback, the provided-buffer ring, and the user_data layout.
 *
 * user_data bit layout (one place, so every completion decodes the same way):
 *   63..56  op     (RC_OP_ACCEPT, RC_OP_RECV, ...)
 *   55..48  spare
 *   47..32  gen    (connection generation: a stale completion for a slot that
 *                   has since been reused carries the old gen and is ignored)
 *   31..0   id     (connection slot = direct descriptor index, or op-specific)
 */
#ifndef RC_URING_H
#define RC_URING_H

#include <liburing.h>

#include "base/common.h"

enum rc_uop {
    RC_UOP_ACCEPT = 1,
    RC_UOP_RECV,
    RC_UOP_SEND,
    RC_UOP_SHUTDOWN,
    RC_UOP_CLOSE,
    RC_UOP_WAKE, /* the eventfd read that wakes a sleeping thread */
    RC_UOP_CANCEL,
    RC_UOP_IGNORE, /* completions nobody waits for */
    RC_UOP_REDIS,  /* redis/client.c: gen = caller tag, id = client op + epoch */
    RC_UOP_MOVE,   /* a connection's socket sent to another shard's ring (MSG_RING) */
    RC_UOP_MOVED,  /* on the ring it went to: bits 55..0 are its request's bytes
                      (an rc_httpbuf pointer); res is its new slot */
};

static inline uint64_t rc_ud(unsigned op, uint16_t gen, uint32_t id)
{
    return ((uint64_t)op << 56) | ((uint64_t)gen << 32) | id;
}
static inline unsigned rc_ud_op(uint64_t ud)
{
    return (unsigned)(ud >> 56);
}
static inline uint16_t rc_ud_gen(uint64_t ud)
{
    return (uint16_t)(ud >> 32);
}
static inline uint32_t rc_ud_id(uint64_t ud)
{
    return (uint32_t)ud;
}

/* Creates a ring of entries SQEs for the calling thread, trying in order
 * SINGLE_ISSUER|DEFER_TASKRUN (completions run only when this thread asks:
 * no IPIs, no task work interrupting the loop), then COOP_TASKRUN, then no
 * flags. Writes which one took into *mode (a static string). Returns 0 or
 * -errno of the last attempt. */
int rc_ring_init(struct io_uring *ring, unsigned entries, const char **mode);

/* An SQE, submitting what is queued first when the SQ is full. Never NULL:
 * when the kernel cannot take more, this aborts (a bug: rings are sized for
 * the worst case batch). */
struct io_uring_sqe *rc_ring_sqe(struct io_uring *ring);

/* A provided-buffer ring: count buffers of size bytes in group bgid. */
typedef struct rc_bufring {
    struct io_uring_buf_ring *br;
    uint8_t *mem;
    uint32_t count, size, mask;
    uint16_t bgid;
    uint32_t pending; /* buffers given back since the last publish */
} rc_bufring;

/* Registers the ring (page-aligned memory, as liburing 2.3 has no
 * io_uring_setup_buf_ring) and fills it. Returns 0 or -errno. */
int rc_bufring_init(rc_bufring *b, struct io_uring *ring, uint16_t bgid, uint32_t count,
                    uint32_t size);
void rc_bufring_free(rc_bufring *b, struct io_uring *ring);

static inline uint8_t *rc_bufring_addr(rc_bufring *b, uint16_t bid)
{
    return b->mem + (size_t)bid * b->size;
}

/* Gives buffer bid back; visible to the kernel after rc_bufring_publish. */
static inline void rc_bufring_recycle(rc_bufring *b, uint16_t bid)
{
    io_uring_buf_ring_add(b->br, rc_bufring_addr(b, bid), b->size, bid, (int)b->mask,
                          (int)b->pending);
    b->pending++;
}

static inline void rc_bufring_publish(rc_bufring *b)
{
    if (b->pending) {
        io_uring_buf_ring_advance(b->br, (int)b->pending);
        b->pending = 0;
    }
}

#endif
