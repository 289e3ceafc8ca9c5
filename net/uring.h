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

/* Whether no provided buffer of the ring can hold bytes not yet read: the
 * ring runs with DEFER_TASKRUN (the kernel fills provided buffers only
 * inside the owner's io_uring_enter), and no completion waits, neither in
 * the CQ nor in the kernel's overflow list (a CQE that found the CQ full:
 * its buffer is filled, its CQE not yet visible). */
int rc_ring_at_rest(struct io_uring *ring);

/* An SQE, submitting what is queued first when the SQ is full. Never NULL:
 * when the kernel cannot take more, this aborts (a bug: rings are sized for
 * the worst case batch). */
struct io_uring_sqe *rc_ring_sqe(struct io_uring *ring);

/* A provided-buffer ring of up to count buffers of size bytes in group
 * bgid, which grows with use and gives memory back when use falls.
 *
 * The kernel takes buffers from the ring in order, so every buffer in the
 * ring is written, and its pages kept, within one turn of the ring: a ring
 * of 1024 buffers of 4 KiB costs 4 MiB of RSS as soon as 1024 messages have
 * been read, whatever the load. So the ring starts with RC_BUFRING_START
 * buffers ("live"), and at each publish, when fewer than a quarter of them
 * are left for the kernel, or the kernel ran out (rc_bufring_starved), it
 * doubles, up to count. Once a second rc_bufring_trim sets the goal to twice
 * the most buffers one batch consumed since the last call; buffers above it
 * are taken out of the ring as they come back (rc_bufring_recycle), their
 * pages returned with MADV_DONTNEED. When the buffers do not come back
 * because little is read, rc_bufring_trim drops the pages of every buffer: only where the ring runs
 * with DEFER_TASKRUN, under which the kernel writes into provided buffers only inside this thread's
 * own io_uring_enter calls, never while the loop is between them. */
#define RC_BUFRING_START 64

typedef struct rc_bufring {
    struct io_uring_buf_ring *br;
    uint8_t *mem;
    uint32_t count, size, mask;
    uint16_t bgid;
    uint32_t pending; /* buffers given back since the last publish */
    uint32_t live;    /* buffers in circulation: in the ring, or being read */
    uint32_t avail;   /* live buffers the kernel can take (as of the last publish) */
    uint32_t goal;    /* live wanted: those above it leave as they come back */
    uint32_t taken;   /* buffers given back in this batch (each was taken once) */
    uint32_t peak;    /* most taken in one batch since the last trim */
    uint64_t quiet;   /* taken since the last rc_bufring_trim */
    uint32_t starved; /* the kernel ran out in this batch */
    uint16_t *spare;  /* buffer ids out of circulation, a stack */
    uint32_t nspare;
} rc_bufring;

/* Registers the ring (page-aligned memory, as liburing 2.3 has no
 * io_uring_setup_buf_ring) and gives it its first RC_BUFRING_START buffers
 * (or count, if fewer). Returns 0 or -errno. */
int rc_bufring_init(rc_bufring *b, struct io_uring *ring, uint16_t bgid, uint32_t count,
                    uint32_t size);
void rc_bufring_free(rc_bufring *b, struct io_uring *ring);

static inline uint8_t *rc_bufring_addr(rc_bufring *b, uint16_t bid)
{
    return b->mem + (size_t)bid * b->size;
}

/* Gives buffer bid back, once its bytes are read (every buffer the kernel
 * hands over must come back here exactly once, in the batch it came in);
 * visible to the kernel after rc_bufring_publish. A buffer above the goal
 * leaves the ring instead. */
void rc_bufring_recycle(rc_bufring *b, uint16_t bid);

/* The kernel had no buffer for a read (-ENOBUFS): grow at the next publish. */
static inline void rc_bufring_starved(rc_bufring *b)
{
    b->starved = 1;
}

/* End of a batch: hands the kernel what came back, and grows the ring when
 * it runs low. */
void rc_bufring_publish(rc_bufring *b);

/* Once a second, between batches: sets the goal from the peak of the last
 * second, and, where zap_ok (no buffer holds unread bytes) and the ring
 * was quiet since the last call (fewer buffers taken than half the live
 * ones), drops the pages of every buffer. Returns the bytes whose pages
 * it dropped. */
size_t rc_bufring_trim(rc_bufring *b, int zap_ok);

#endif
