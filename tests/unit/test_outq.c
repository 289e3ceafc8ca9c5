/* rc_outq_merge: which frames at the head of a connection's output queue are
 * copied into one buffer, the bytes that buffer holds (from the unsent part
 * of the head on), the queue's ring indices after it, and the references
 * the merged frames give up. */
#include <string.h>

#include "engine/shard.h"
#include "tests/unit/unit.h"

#define CAP 32

typedef struct fixture {
    rc_outq q;
    rc_obuf *items[CAP];
} fixture;

/* A queue holding frames of the given lengths, starting at ring slot head;
 * frame i is filled with the letter 'a' + i. Each frame holds an extra
 * reference so the test can see whether the merge dropped its own. */
static void fill(fixture *f, uint32_t head, const uint32_t *lens, uint32_t n, uint32_t off)
{
    memset(f, 0, sizeof(*f));
    f->q.items = f->items;
    f->q.cap = CAP;
    f->q.head = head;
    f->q.off = off;
    for (uint32_t i = 0; i < n; i++) {
        rc_obuf *b = rc_obuf_raw("", 0);
        b = rc_realloc(b, sizeof(*b) + lens[i]);
        b->data = b->inline_data;
        memset(b->inline_data, 'a' + (int)i, lens[i]);
        b->len = lens[i];
        b->refs = 2;
        f->items[(head + i) % CAP] = b;
        f->q.bytes += lens[i];
    }
    f->q.n = n;
    f->q.bytes -= off;
}

static const rc_obuf *at(const fixture *f, uint32_t i)
{
    return f->items[(f->q.head + i) % CAP];
}

/* The bytes run[0..len) are the letters of frames first.. with the given
 * lengths, the first one cut by off. */
static int holds(const rc_obuf *run, const uint32_t *lens, uint32_t first, uint32_t m, uint32_t off)
{
    size_t p = 0;
    for (uint32_t i = first; i < first + m; i++) {
        uint32_t len = lens[i] - (i == first ? off : 0);
        for (uint32_t k = 0; k < len; k++)
            if (run->data[p + k] != 'a' + (int)i)
                return 0;
        p += len;
    }
    return p == run->len;
}

/* Drops the test's reference on each original frame, then the queue's on
 * what it still holds. */
static void release(fixture *f, rc_obuf **orig, uint32_t n)
{
    for (uint32_t i = 0; i < f->q.n; i++)
        rc_obuf_put(f->items[(f->q.head + i) % CAP]);
    for (uint32_t i = 0; i < n; i++)
        rc_obuf_put(orig[i]);
}

static void test_small_run_then_large(void)
{
    uint32_t lens[] = {100, 200, 50, 2000, 30};
    fixture f;
    fill(&f, 0, lens, 5, 0);
    rc_obuf *orig[5];
    for (int i = 0; i < 5; i++)
        orig[i] = f.items[i];
    uint64_t bytes = f.q.bytes;
    CHECK_EQ_INT(rc_outq_merge(&f.q), 3);
    CHECK_EQ_INT(f.q.n, 3);
    CHECK_EQ_INT(f.q.head, 2);
    CHECK_EQ_INT(f.q.off, 0);
    CHECK(f.q.bytes == bytes); /* the same bytes wait, in fewer frames */
    const rc_obuf *run = at(&f, 0);
    CHECK(run != orig[0] && run != orig[1] && run != orig[2]);
    CHECK_EQ_INT(run->refs, 1);
    CHECK_EQ_INT(run->kind, RC_OBUF_REPLY);
    CHECK(holds(run, lens, 0, 3, 0));
    CHECK(at(&f, 1) == orig[3] && at(&f, 2) == orig[4]);
    for (int i = 0; i < 3; i++)
        CHECK_EQ_INT(orig[i]->refs, 1); /* the queue's reference was dropped */
    CHECK_EQ_INT(orig[3]->refs, 2);
    /* The large frame now leads: nothing more to merge. */
    rc_obuf *run0 = (rc_obuf *)run;
    f.q.head = (f.q.head + 1) % CAP;
    f.q.n--;
    CHECK_EQ_INT(rc_outq_merge(&f.q), 0);
    CHECK(at(&f, 0) == orig[3]);
    rc_obuf_put(run0);
    release(&f, orig, 5);
}

static void test_from_part_sent_head_across_the_ring_end(void)
{
    /* Head at slot 30: the run wraps to slots 31, 0, 1. */
    uint32_t lens[] = {900, 10, 20, 30, 5000};
    fixture f;
    fill(&f, 30, lens, 5, 700);
    rc_obuf *orig[5];
    for (int i = 0; i < 5; i++)
        orig[i] = f.items[(30 + i) % CAP];
    CHECK_EQ_INT(rc_outq_merge(&f.q), 4);
    CHECK_EQ_INT(f.q.head, 1);
    CHECK_EQ_INT(f.q.n, 2);
    CHECK_EQ_INT(f.q.off, 0);
    const rc_obuf *run = at(&f, 0);
    CHECK_EQ_INT(run->len, 200 + 10 + 20 + 30);
    CHECK(holds(run, lens, 0, 4, 700));
    CHECK(at(&f, 1) == orig[4]);
    release(&f, orig, 5);
}

static void test_head_too_large_unless_mostly_sent(void)
{
    uint32_t lens[] = {RC_MERGE_FRAME_MAX + 1, 10, 10};
    fixture f;
    fill(&f, 0, lens, 3, 0);
    rc_obuf *orig[3] = {f.items[0], f.items[1], f.items[2]};
    CHECK_EQ_INT(rc_outq_merge(&f.q), 0);
    CHECK(at(&f, 0) == orig[0] && f.q.n == 3);
    release(&f, orig, 3);
    /* Two bytes of it left: those lead a run. */
    fill(&f, 0, lens, 3, RC_MERGE_FRAME_MAX - 1);
    for (int i = 0; i < 3; i++)
        orig[i] = f.items[i];
    CHECK_EQ_INT(rc_outq_merge(&f.q), 3);
    CHECK_EQ_INT(at(&f, 0)->len, 2 + 10 + 10);
    CHECK(holds(at(&f, 0), lens, 0, 3, RC_MERGE_FRAME_MAX - 1));
    release(&f, orig, 3);
}

static void test_byte_cap_and_single_frame(void)
{
    /* 20 frames of 1000 bytes: the run stops before the one that would
     * take it past RC_MERGE_BYTES_MAX. */
    uint32_t lens[20];
    for (int i = 0; i < 20; i++)
        lens[i] = 1000;
    fixture f;
    fill(&f, 30, lens, 20, 0);
    rc_obuf *orig[20];
    for (int i = 0; i < 20; i++)
        orig[i] = f.items[(30 + i) % CAP];
    uint32_t fit = RC_MERGE_BYTES_MAX / 1000;
    CHECK(fit < 20);
    CHECK_EQ_INT(rc_outq_merge(&f.q), fit);
    CHECK_EQ_INT(at(&f, 0)->len, fit * 1000);
    CHECK(holds(at(&f, 0), lens, 0, fit, 0));
    CHECK_EQ_INT(f.q.n, 20 - fit + 1);
    CHECK(at(&f, 1) == orig[fit]);
    release(&f, orig, 20);

    uint32_t one[] = {10};
    fill(&f, 0, one, 1, 0);
    orig[0] = f.items[0];
    CHECK_EQ_INT(rc_outq_merge(&f.q), 0); /* nothing to gain from copying one */
    CHECK(at(&f, 0) == orig[0]);
    release(&f, orig, 1);
}

int main(void)
{
    RUN(test_small_run_then_large);
    RUN(test_from_part_sent_head_across_the_ring_end);
    RUN(test_head_too_large_unless_mostly_sent);
    RUN(test_byte_cap_and_single_frame);
    return UNIT_DONE();
}
