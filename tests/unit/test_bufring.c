/* Unit tests for net/uring.c's provided-buffer ring, against the kernel's
 * io_uring: the ring starts small, grows when reads find no buffer, gives
 * buffers back as they return once use has fallen, and drops its pages when
 * quiet. 200 socket pairs, one multishot recv each. */
#include "net/uring.h"
#include "tests/unit/unit.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define PAIRS 200

static struct io_uring ring;
static rc_bufring bufs;
static int fds[PAIRS][2];
static int got[PAIRS];

static void arm(int i)
{
    struct io_uring_sqe *sqe = rc_ring_sqe(&ring);
    io_uring_prep_recv_multishot(sqe, fds[i][0], NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = bufs.bgid;
    io_uring_sqe_set_data64(sqe, (uint64_t)i);
}

/* One batch: waits for a completion, reads every one there is (checking the
 * bytes: "m" and the pair's number), gives the buffers back, re-arms the
 * reads that ended, publishes. Returns the messages read. */
static int batch(void)
{
    struct io_uring_cqe *cqe;
    struct __kernel_timespec ts = {.tv_sec = 2, .tv_nsec = 0};
    io_uring_submit_and_wait_timeout(&ring, &cqe, 1, &ts, NULL);
    unsigned head, seen = 0;
    int n = 0, rearm[PAIRS], nrearm = 0;
    io_uring_for_each_cqe (&ring, head, cqe) {
        seen++;
        int i = (int)cqe->user_data;
        if (cqe->res > 0) {
            CHECK(cqe->flags & IORING_CQE_F_BUFFER);
            uint16_t bid = (uint16_t)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
            char want[16];
            int len = snprintf(want, sizeof(want), "m%d.", i);
            const uint8_t *data = rc_bufring_addr(&bufs, bid);
            for (int off = 0; off + len <= cqe->res; off += len) {
                CHECK(memcmp(data + off, want, (size_t)len) == 0);
                got[i]++;
                n++;
            }
            rc_bufring_recycle(&bufs, bid);
        } else if (cqe->res == -ENOBUFS) {
            rc_bufring_starved(&bufs);
        } else {
            CHECK_EQ_INT(cqe->res, 0); /* nothing else is expected */
        }
        if (!(cqe->flags & IORING_CQE_F_MORE))
            rearm[nrearm++] = i;
    }
    io_uring_cq_advance(&ring, seen);
    rc_bufring_publish(&bufs);
    for (int k = 0; k < nrearm; k++)
        arm(rearm[k]);
    return n;
}

static void say(int i)
{
    char m[16];
    int len = snprintf(m, sizeof(m), "m%d.", i);
    CHECK_EQ_INT((int)write(fds[i][1], m, (size_t)len), len);
}

static void test_grows_when_starved(void)
{
    CHECK_EQ_INT((int)bufs.live, RC_BUFRING_START);
    CHECK_EQ_INT((int)bufs.nspare, 1024 - RC_BUFRING_START);
    /* The bytes are there before the reads are armed: submitting 200 reads
     * runs them at once, as when many connections are accepted in one
     * batch and their requests are already waiting. */
    for (int i = 0; i < PAIRS; i++)
        say(i);
    for (int i = 0; i < PAIRS; i++)
        arm(i);
    int n = 0;
    for (int k = 0; k < 50 && n < PAIRS; k++)
        n += batch();
    CHECK_EQ_INT(n, PAIRS);
    for (int i = 0; i < PAIRS; i++)
        CHECK_EQ_INT(got[i], 1);
    /* 200 reads at once do not fit in 64 buffers: the ring grew. */
    CHECK(bufs.live > RC_BUFRING_START);
    CHECK(bufs.live <= 1024);
    CHECK_EQ_INT((int)(bufs.live + bufs.nspare), 1024);
}

static void test_shrinks_as_buffers_return(void)
{
    uint32_t grown = bufs.live;
    rc_bufring_trim(&bufs, 0); /* the peak of the burst: no smaller goal yet */
    CHECK(bufs.goal >= grown || bufs.goal >= 2 * RC_BUFRING_START);
    /* A quiet second: one read per batch. */
    for (int k = 0; k < 5; k++) {
        say(k);
        CHECK_EQ_INT(batch(), 1);
    }
    rc_bufring_trim(&bufs, 0);
    CHECK_EQ_INT((int)bufs.goal, RC_BUFRING_START);
    /* Each returning buffer above the goal leaves the ring. */
    for (int k = 0; k < (int)grown + 10; k++) {
        say(k % PAIRS);
        CHECK_EQ_INT(batch(), 1);
    }
    CHECK_EQ_INT((int)bufs.live, RC_BUFRING_START);
    CHECK_EQ_INT((int)bufs.nspare, 1024 - RC_BUFRING_START);
    /* Still serving from the buffers left. */
    say(7);
    CHECK_EQ_INT(batch(), 1);
}

static void test_quiet_ring_drops_pages(void)
{
    /* Fewer than live/2 reads since the last trim: the pages go. */
    rc_bufring_trim(&bufs, 1);
    say(3);
    CHECK_EQ_INT(batch(), 1);
    CHECK(rc_bufring_trim(&bufs, 1) > 0);
    /* Reads go on into fresh pages. */
    for (int i = 0; i < 10; i++)
        say(i);
    int n = 0;
    for (int k = 0; k < 20 && n < 10; k++)
        n += batch();
    CHECK_EQ_INT(n, 10);
    /* Not quiet: 10 reads against a trim that needs fewer than live/2 = 32
     * is quiet too, so busy it with more than that first. */
    for (int k = 0; k < 40; k++) {
        say(k);
        batch();
    }
    CHECK_EQ_INT((int)rc_bufring_trim(&bufs, 1), 0);
    /* Not allowed (no DEFER_TASKRUN): never. */
    CHECK_EQ_INT((int)rc_bufring_trim(&bufs, 0), 0);
}

/* A CQ too small for the completions: the kernel keeps the rest in its
 * overflow list, their buffers already filled, so the ring is not at rest
 * until they are reaped. */
static void test_not_at_rest_while_completions_wait(void)
{
    struct io_uring small;
    struct io_uring_params p;
    memset(&p, 0, sizeof(p));
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_CQSIZE;
    p.cq_entries = 8;
    if (io_uring_queue_init_params(8, &small, &p) < 0) {
        printf("skip: no DEFER_TASKRUN here\n");
        return;
    }
    rc_bufring b;
    CHECK_EQ_INT(rc_bufring_init(&b, &small, 5, 64, 4096), 0);
    CHECK(rc_ring_at_rest(&small));
    int sp[32][2];
    for (int i = 0; i < 32; i++) {
        CHECK_EQ_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, sp[i]), 0);
        CHECK_EQ_INT((int)write(sp[i][1], "x", 1), 1);
        struct io_uring_sqe *sqe = rc_ring_sqe(&small);
        io_uring_prep_recv(sqe, sp[i][0], NULL, 0, 0);
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = b.bgid;
        io_uring_submit(&small);
    }
    struct io_uring_cqe *cqe;
    CHECK_EQ_INT(io_uring_wait_cqe(&small, &cqe), 0);
    CHECK(!rc_ring_at_rest(&small));
    /* Empty the CQ without entering the kernel: the overflow list still
     * holds completions whose buffers are filled. */
    int reaped = 0;
    while (io_uring_cq_ready(&small)) {
        CHECK_EQ_INT(io_uring_peek_cqe(&small, &cqe), 0);
        CHECK_EQ_INT(cqe->res, 1);
        io_uring_cqe_seen(&small, cqe);
        reaped++;
    }
    CHECK(reaped < 32);
    CHECK_EQ_INT(io_uring_cq_ready(&small), 0);
    CHECK(!rc_ring_at_rest(&small));
    /* Reap the rest: now it is at rest. */
    while (reaped < 32 && io_uring_wait_cqe(&small, &cqe) == 0) {
        CHECK_EQ_INT(cqe->res, 1);
        io_uring_cqe_seen(&small, cqe);
        reaped++;
    }
    CHECK_EQ_INT(reaped, 32);
    CHECK(rc_ring_at_rest(&small));
    for (int i = 0; i < 32; i++) {
        close(sp[i][0]);
        close(sp[i][1]);
    }
    rc_bufring_free(&b, &small);
    io_uring_queue_exit(&small);
}

int main(void)
{
    const char *mode;
    if (rc_ring_init(&ring, 256, &mode) < 0 || rc_bufring_init(&bufs, &ring, 3, 1024, 4096) < 0) {
        fprintf(stderr, "no io_uring here\n");
        return 1;
    }
    for (int i = 0; i < PAIRS; i++)
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds[i]) < 0)
            return 1;
    RUN(test_grows_when_starved);
    RUN(test_shrinks_as_buffers_return);
    RUN(test_quiet_ring_drops_pages);
    RUN(test_not_at_rest_while_completions_wait);
    rc_bufring_free(&bufs, &ring);
    io_uring_queue_exit(&ring);
    return UNIT_DONE();
}
