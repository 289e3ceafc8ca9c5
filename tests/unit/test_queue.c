/* SPSC ring, waker, reference count and counter: single-threaded contract
 * checks, then real threads: 5M items in strict order through a small ring,
 * a consumer that really sleeps in poll() on the eventfd (a lost wake-up
 * shows as a 1 s timeout with items pending), two threads dropping shared
 * references, and a counter read while it is written. Meant to pass under
 * ThreadSanitizer as well as ASan+UBSan. */
#include "engine/queue.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <unistd.h>

#include "tests/unit/unit.h"

/* What a producer puts in each field of item number seq, so that the
 * consumer can tell a torn or stale slot from the right one. */
static rc_qitem make_item(uint64_t seq)
{
    rc_qitem it;
    it.kind = (uint32_t)(seq % 7);
    it.a = (uint32_t)(seq * 2654435761u) ^ 0x5a5a5a5au;
    it.b = seq;
    it.p = (void *)(uintptr_t)(seq * 0x9e3779b97f4a7c15ULL + 1);
    return it;
}

static int item_ok(const rc_qitem *it, uint64_t seq)
{
    rc_qitem want = make_item(seq);
    return it->kind == want.kind && it->a == want.a && it->b == want.b && it->p == want.p;
}

static uint64_t rng_state = 0x243f6a8885a308d3ULL;

static uint32_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 0x2545F4914F6CDD1DULL) >> 32);
}

/* ---- single thread ---- */

static rc_spsc q1;

static void test_single_thread(void)
{
    CHECK_EQ_INT(rc_spsc_init(&q1, 0), -1);
    CHECK_EQ_INT(rc_spsc_init(&q1, 1), -1);
    CHECK_EQ_INT(rc_spsc_init(&q1, 3), -1);
    CHECK_EQ_INT(rc_spsc_init(&q1, 12), -1);
    CHECK_EQ_INT(rc_spsc_init(&q1, 8), 0);

    rc_qitem it;
    CHECK(rc_spsc_empty(&q1));
    CHECK_EQ_INT(rc_spsc_depth(&q1), 0);
    CHECK(!rc_spsc_pop(&q1, &it));

    for (uint64_t i = 0; i < 8; i++) {
        it = make_item(i);
        CHECK(rc_spsc_push(&q1, &it));
        CHECK_EQ_INT(rc_spsc_depth(&q1), i + 1);
        CHECK(!rc_spsc_empty(&q1));
    }
    it = make_item(99);
    CHECK(!rc_spsc_push(&q1, &it)); /* full: refused */
    CHECK_EQ_INT(rc_spsc_depth(&q1), 8);

    rc_qitem out;
    memset(&out, 0, sizeof(out));
    CHECK(rc_spsc_pop(&q1, &out));
    CHECK(item_ok(&out, 0));
    CHECK_EQ_INT(rc_spsc_depth(&q1), 7);
    it = make_item(8);
    CHECK(rc_spsc_push(&q1, &it)); /* room again after one pop */
    CHECK(!rc_spsc_push(&q1, &it));
    for (uint64_t i = 1; i <= 8; i++) {
        CHECK(rc_spsc_pop(&q1, &out));
        CHECK(item_ok(&out, i));
    }
    CHECK(!rc_spsc_pop(&q1, &out));
    CHECK(rc_spsc_empty(&q1));
    CHECK_EQ_INT(rc_spsc_depth(&q1), 0);

    /* Many wraps of the ring with random fill levels, against a count. */
    uint64_t next_in = 9, next_out = 9;
    int bad = 0;
    for (int op = 0; op < 100000; op++) {
        if (rnd() % 2) {
            it = make_item(next_in);
            bool ok = rc_spsc_push(&q1, &it);
            bad += ok != (next_in - next_out < 8);
            next_in += ok;
        } else {
            bool ok = rc_spsc_pop(&q1, &out);
            bad += ok != (next_in != next_out);
            if (ok)
                bad += !item_ok(&out, next_out++);
        }
        bad += rc_spsc_depth(&q1) != next_in - next_out;
        bad += rc_spsc_empty(&q1) != (next_in == next_out);
    }
    CHECK_EQ_INT(bad, 0);
    CHECK(next_out > 40000);
    rc_spsc_free(&q1);
    CHECK(q1.slots == NULL);
}

static void test_waker_single_thread(void)
{
    rc_waker w;
    CHECK_EQ_INT(rc_waker_init(&w), 0);
    CHECK(w.efd >= 0);
    struct pollfd pfd = {.fd = w.efd, .events = POLLIN};
    uint64_t v = 0;

    rc_waker_wake(&w); /* consumer awake: no write */
    CHECK_EQ_INT(atomic_load(&w.wakes), 0);
    CHECK_EQ_INT(poll(&pfd, 1, 0), 0);

    rc_waker_sleep_begin(&w);
    rc_waker_wake(&w); /* announced sleep: one write */
    rc_waker_wake(&w); /* already woken: no second */
    CHECK_EQ_INT(atomic_load(&w.wakes), 1);
    CHECK_EQ_INT(poll(&pfd, 1, 0), 1);
    CHECK_EQ_INT(read(w.efd, &v, sizeof(v)), (ssize_t)sizeof(v));
    CHECK_EQ_INT(v, 1);
    rc_waker_sleep_end(&w);
    rc_waker_wake(&w);
    CHECK_EQ_INT(atomic_load(&w.wakes), 1);

    /* Non-blocking: reading an empty eventfd fails instead of hanging. */
    errno = 0;
    CHECK_EQ_INT(read(w.efd, &v, sizeof(v)), -1);
    CHECK_EQ_INT(errno, EAGAIN);
    rc_waker_free(&w);
    CHECK_EQ_INT(w.efd, -1);
}

/* ---- two threads, 5M items ---- */

enum { BULK_ITEMS = 5000000, BULK_CAP = 1024 };

static rc_spsc bulk_q;
static rc_flag start_flag;

typedef struct bulk_result {
    uint64_t bad, full_spins, items;
} bulk_result;

static void wait_start(void)
{
    while (!rc_flag_get(&start_flag))
        sched_yield();
}

static void *bulk_producer(void *arg)
{
    bulk_result *res = arg;
    wait_start();
    for (uint64_t seq = 0; seq < BULK_ITEMS; seq++) {
        rc_qitem it = make_item(seq);
        while (!rc_spsc_push(&bulk_q, &it)) {
            res->full_spins++;
            sched_yield();
        }
        if ((seq & 1023) == 0)
            res->bad += rc_spsc_depth(&bulk_q) > BULK_CAP; /* any thread may ask */
    }
    return NULL;
}

static void *bulk_consumer(void *arg)
{
    bulk_result *res = arg;
    wait_start();
    uint64_t seq = 0;
    rc_qitem it;
    while (seq < BULK_ITEMS) {
        if (!rc_spsc_pop(&bulk_q, &it)) {
            sched_yield();
            continue;
        }
        if (!item_ok(&it, seq)) {
            if (res->bad++ == 0)
                fprintf(stderr, "bulk: item %llu has b=%llu\n", (unsigned long long)seq,
                        (unsigned long long)it.b);
        }
        seq++;
    }
    res->items = seq;
    return NULL;
}

static void test_two_threads_bulk(void)
{
    CHECK_EQ_INT(rc_spsc_init(&bulk_q, BULK_CAP), 0);
    rc_flag_set(&start_flag, 0);
    bulk_result pr = {0, 0, 0}, cr = {0, 0, 0};
    pthread_t pt, ct;
    CHECK_EQ_INT(pthread_create(&ct, NULL, bulk_consumer, &cr), 0);
    CHECK_EQ_INT(pthread_create(&pt, NULL, bulk_producer, &pr), 0);
    rc_flag_set(&start_flag, 1);
    pthread_join(pt, NULL);
    pthread_join(ct, NULL);
    CHECK_EQ_INT(pr.bad, 0);
    CHECK_EQ_INT(cr.bad, 0);
    CHECK_EQ_INT(cr.items, BULK_ITEMS);
    CHECK(rc_spsc_empty(&bulk_q));
    rc_qitem it;
    CHECK(!rc_spsc_pop(&bulk_q, &it)); /* nothing extra */
    fprintf(stderr, "  bulk: producer found the ring full %llu times\n",
            (unsigned long long)pr.full_spins);
    rc_spsc_free(&bulk_q);
}

/* ---- waker: a consumer that really sleeps ---- */

enum { WAKE_ITEMS = 100000, WAKE_CAP = 64 };

static rc_spsc wake_q;
static rc_waker wake_w;
static rc_counter consumed;

typedef struct wake_result {
    uint64_t bad, lost, idle_timeouts, sleeps, spurious;
} wake_result;

static void *wake_consumer(void *arg)
{
    wake_result *res = arg;
    uint64_t seq = 0;
    rc_qitem it;
    while (seq < WAKE_ITEMS) {
        while (rc_spsc_pop(&wake_q, &it)) {
            res->bad += !item_ok(&it, seq);
            seq++;
            rc_counter_set(&consumed, seq);
        }
        if (seq == WAKE_ITEMS)
            break;
        rc_waker_sleep_begin(&wake_w);
        if (!rc_spsc_empty(&wake_q)) {
            rc_waker_sleep_end(&wake_w);
            continue;
        }
        struct pollfd pfd = {.fd = wake_w.efd, .events = POLLIN};
        /* After a first lost wake-up, stop waiting whole seconds: the test
         * has failed already and should end soon. */
        int r = poll(&pfd, 1, res->lost ? 10 : 1000);
        if (r == 0) {
            /* A second with items queued: the producer's wake-up was lost. */
            if (!rc_spsc_empty(&wake_q))
                res->lost++;
            else
                res->idle_timeouts++;
        } else if (r > 0) {
            uint64_t v;
            if (read(wake_w.efd, &v, sizeof(v)) != (ssize_t)sizeof(v))
                res->spurious++;
            res->sleeps++;
        }
        rc_waker_sleep_end(&wake_w);
    }
    return NULL;
}

static void test_waker_threads(void)
{
    CHECK_EQ_INT(rc_spsc_init(&wake_q, WAKE_CAP), 0);
    CHECK_EQ_INT(rc_waker_init(&wake_w), 0);
    rc_counter_set(&consumed, 0);
    wake_result res;
    memset(&res, 0, sizeof(res));
    pthread_t ct;
    CHECK_EQ_INT(pthread_create(&ct, NULL, wake_consumer, &res), 0);

    uint64_t seq = 0, bursts = 0, pauses = 0;
    while (seq < WAKE_ITEMS) {
        uint32_t k = 1 + rnd() % 16;
        for (uint32_t i = 0; i < k && seq < WAKE_ITEMS; i++) {
            rc_qitem it = make_item(seq);
            while (!rc_spsc_push(&wake_q, &it)) {
                rc_waker_wake(&wake_w);
                sched_yield();
            }
            seq++;
        }
        rc_waker_wake(&wake_w);
        bursts++;
        /* Wait for the consumer to drain: if a wake-up is lost, this wait
         * lasts until the consumer's 1 s poll timeout, which counts it.
         * Then either pause, so that the consumer surely sleeps and the next
         * burst must wake it, or push again at once, to race the consumer
         * on its way to sleep (the window the waker protocol closes). */
        if (bursts % 4 == 0 || rnd() % 2) {
            for (int spins = 0; rc_counter_get(&consumed) != seq; spins++) {
                if (spins > 2000)
                    sched_yield();
            }
            if (bursts % 4 == 0) {
                usleep(50 + rnd() % 150);
                pauses++;
            }
        }
    }
    pthread_join(ct, NULL);
    CHECK_EQ_INT(res.bad, 0);
    CHECK_EQ_INT(res.lost, 0);
    CHECK_EQ_INT(res.idle_timeouts, 0);
    CHECK_EQ_INT(rc_counter_get(&consumed), WAKE_ITEMS);
    /* The consumer slept (and was woken by the eventfd) many times. */
    CHECK(res.sleeps > pauses / 2);
    CHECK(atomic_load(&wake_w.wakes) >= res.sleeps - res.spurious);
    fprintf(stderr, "  waker: %llu bursts, %llu pauses, %llu sleeps, %llu eventfd writes\n",
            (unsigned long long)bursts, (unsigned long long)pauses, (unsigned long long)res.sleeps,
            (unsigned long long)atomic_load(&wake_w.wakes));
    rc_waker_free(&wake_w);
    rc_spsc_free(&wake_q);
}

/* ---- rc_ref from two threads ---- */

enum { NREF = 200000 };

static struct shared_obj {
    rc_ref ref;
    uint32_t part[2]; /* plain fields: each holder writes its own before put */
} objs[NREF];
static uint8_t was_last[2][NREF];
static uint64_t ref_bad[2];
static rc_counter ref_progress[2];

static void *ref_dropper(void *arg)
{
    int k = (int)(intptr_t)arg;
    wait_start();
    for (uint32_t i = 0; i < NREF; i++) {
        /* Keep the two threads within a few objects of each other, so that
         * which one drops last really varies. */
        for (int spins = 0; i > rc_counter_get(&ref_progress[!k]) + 4; spins++) {
            if (spins > 100)
                sched_yield();
        }
        rc_counter_set(&ref_progress[k], i);
        objs[i].part[k] = i * 2 + (uint32_t)k + 1;
        if (rc_ref_put(&objs[i].ref)) {
            was_last[k][i] = 1;
            /* The last holder "frees": it must see the other's write (the
             * acq_rel decrement orders it; TSan checks this read). */
            ref_bad[k] += objs[i].part[0] != i * 2 + 1 || objs[i].part[1] != i * 2 + 2;
        }
    }
    rc_counter_set(&ref_progress[k], NREF + 8);
    return NULL;
}

static void test_ref_two_threads(void)
{
    rc_ref one;
    rc_ref_init(&one, 1);
    CHECK(rc_ref_put(&one));
    rc_ref_init(&one, 3);
    CHECK(!rc_ref_put(&one));
    CHECK(!rc_ref_put(&one));
    CHECK(rc_ref_put(&one));

    for (uint32_t i = 0; i < NREF; i++)
        rc_ref_init(&objs[i].ref, 2);
    rc_flag_set(&start_flag, 0);
    pthread_t t0, t1;
    CHECK_EQ_INT(pthread_create(&t0, NULL, ref_dropper, (void *)(intptr_t)0), 0);
    CHECK_EQ_INT(pthread_create(&t1, NULL, ref_dropper, (void *)(intptr_t)1), 0);
    rc_flag_set(&start_flag, 1);
    pthread_join(t0, NULL);
    pthread_join(t1, NULL);
    uint64_t not_one = 0, by1 = 0;
    for (uint32_t i = 0; i < NREF; i++) {
        not_one += was_last[0][i] + was_last[1][i] != 1;
        by1 += was_last[1][i];
    }
    CHECK_EQ_INT(not_one, 0); /* exactly one holder saw the last drop */
    CHECK_EQ_INT(ref_bad[0] + ref_bad[1], 0);
    CHECK(by1 > 0 && by1 < NREF); /* both threads were last sometimes */
    fprintf(stderr, "  ref: thread 1 dropped the last reference %llu of %d times\n",
            (unsigned long long)by1, NREF);
}

/* ---- rc_counter: one writer, one reader ---- */

enum { COUNTER_STEPS = 3000000 };

static rc_counter ctr;
static rc_flag writer_done;

static void *counter_writer(void *arg)
{
    wait_start();
    for (uint32_t i = 0; i < COUNTER_STEPS; i++) {
        if (i % 2)
            rc_counter_inc(&ctr);
        else
            rc_counter_add(&ctr, 3);
    }
    rc_flag_set(&writer_done, 1);
    return NULL;
}

static void test_counter_two_threads(void)
{
    rc_counter_set(&ctr, 0);
    rc_flag_set(&writer_done, 0);
    rc_flag_set(&start_flag, 0);
    pthread_t wt;
    CHECK_EQ_INT(pthread_create(&wt, NULL, counter_writer, NULL), 0);
    rc_flag_set(&start_flag, 1);

    uint64_t prev = 0, backwards = 0, reads = 0, changes = 0;
    for (;;) {
        int done = rc_flag_get(&writer_done);
        uint64_t v = rc_counter_get(&ctr);
        backwards += v < prev;
        changes += v != prev;
        prev = v;
        reads++;
        if (done)
            break;
    }
    pthread_join(wt, NULL);
    const uint64_t want = (uint64_t)COUNTER_STEPS / 2 * 4; /* 1.5M x 3 + 1.5M x 1 */
    CHECK_EQ_INT(backwards, 0);
    /* Read after seeing the writer's release of writer_done: the final. */
    CHECK_EQ_INT(prev, want);
    CHECK_EQ_INT(rc_counter_get(&ctr), want);
    CHECK(changes >= 1);
    fprintf(stderr, "  counter: %llu reads, %llu distinct values seen\n", (unsigned long long)reads,
            (unsigned long long)changes);
}

/* peek shows the oldest entry without taking it; drop takes it. */
static void test_peek_drop(void)
{
    rc_spsc q;
    CHECK_EQ_INT(rc_spsc_init(&q, 4), 0);
    CHECK(rc_spsc_peek(&q) == NULL);
    for (uint32_t i = 1; i <= 4; i++) {
        rc_qitem it = {.kind = i, .b = 100 + i};
        CHECK(rc_spsc_push(&q, &it));
    }
    for (uint32_t i = 1; i <= 4; i++) {
        const rc_qitem *h = rc_spsc_peek(&q);
        CHECK(h != NULL);
        if (!h)
            break;
        CHECK_EQ_INT(h->kind, i);
        CHECK_EQ_INT(rc_spsc_peek(&q)->kind, i); /* peeking again changes nothing */
        CHECK_EQ_INT(rc_spsc_depth(&q), 5 - i);
        rc_spsc_drop(&q);
    }
    CHECK(rc_spsc_peek(&q) == NULL);
    CHECK(rc_spsc_empty(&q));
    /* room freed by drop is usable by the producer */
    rc_qitem it = {.kind = 9};
    CHECK(rc_spsc_push(&q, &it));
    CHECK_EQ_INT(rc_spsc_peek(&q)->kind, 9);
    rc_spsc_free(&q);
}

int main(void)
{
    RUN(test_single_thread);
    RUN(test_peek_drop);
    RUN(test_waker_single_thread);
    RUN(test_two_threads_bulk);
    RUN(test_waker_threads);
    RUN(test_ref_two_threads);
    RUN(test_counter_two_threads);
    return UNIT_DONE();
}
