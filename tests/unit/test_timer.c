/* Timer wheel: every fire checked against a reference model that knows, for
 * each armed timer, the tick it must fire at (timer.h's contract), under
 * random add/del/re-add and advances of every size, plus the callback cases
 * (re-arm self, disarm and arm others) and ticks wrapping past UINT32_MAX. */
#include "engine/timer.h"

#include <string.h>

#include "tests/unit/unit.h"

enum { NIDS = 3000, LOGMAX = 1 << 20 };

static rc_tnode nodes[NIDS];

static rc_tnode *node_of(void *ctx, uint32_t id)
{
    rc_tnode *base = ctx;
    if (id >= NIDS) {
        fprintf(stderr, "timer test: wheel asked for id %u\n", id);
        abort();
    }
    return &base[id];
}

static uint64_t rng_state;

static uint32_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 0x2545F4914F6CDD1DULL) >> 32);
}

/* ---- a fire log ---- */

typedef struct fired {
    uint32_t id, tick;
} fired;

static fired logbuf[LOGMAX];
static size_t nlog;
static rc_wheel *cur_wheel;

static void record(void *arg, uint32_t id)
{
    if (nlog < LOGMAX)
        logbuf[nlog++] = (fired){id, cur_wheel->now};
}

static void reset_nodes(void)
{
    for (int i = 0; i < NIDS; i++)
        rc_tnode_init(&nodes[i]);
}

static int cmp_fired(const void *a, const void *b)
{
    const fired *x = a, *y = b;
    if (x->tick != y->tick)
        return x->tick < y->tick ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* ---- simple cases ---- */

static void test_basic(void)
{
    rc_wheel w;
    reset_nodes();
    rc_wheel_init(&w, 8, 100, node_of, nodes);
    cur_wheel = &w;
    nlog = 0;

    CHECK(!rc_tnode_armed(&nodes[1]));
    rc_wheel_del(&w, 1); /* unarmed: no-op */
    CHECK(!rc_tnode_armed(&nodes[1]));

    rc_wheel_add(&w, 1, 103);
    rc_wheel_add(&w, 2, 103);
    rc_wheel_add(&w, 3, 105);
    rc_wheel_add(&w, 4, 111); /* same slot as 103, next round */
    CHECK(rc_tnode_armed(&nodes[1]));
    CHECK_EQ_INT(nodes[4].when, 111);
    rc_wheel_del(&w, 5); /* unarmed while others are armed */
    CHECK(rc_tnode_armed(&nodes[1]) && rc_tnode_armed(&nodes[4]));

    rc_wheel_advance(&w, 102, record, NULL);
    CHECK_EQ_INT(nlog, 0);
    CHECK_EQ_INT(w.now, 102);
    rc_wheel_advance(&w, 103, record, NULL);
    CHECK_EQ_INT(nlog, 2);
    qsort(logbuf, nlog, sizeof(fired), cmp_fired);
    CHECK(logbuf[0].id == 1 && logbuf[0].tick == 103);
    CHECK(logbuf[1].id == 2 && logbuf[1].tick == 103);
    CHECK(!rc_tnode_armed(&nodes[1]) && !rc_tnode_armed(&nodes[2]));
    CHECK(rc_tnode_armed(&nodes[4])); /* 111 shares the slot: skipped */

    /* Re-arm moves: 3 from 105 to 107. */
    rc_wheel_add(&w, 3, 107);
    CHECK_EQ_INT(nodes[3].when, 107);
    rc_wheel_advance(&w, 106, record, NULL);
    CHECK_EQ_INT(nlog, 2);
    rc_wheel_advance(&w, 107, record, NULL);
    CHECK_EQ_INT(nlog, 3);
    CHECK(logbuf[2].id == 3 && logbuf[2].tick == 107);

    /* Disarmed before its tick: never fires. */
    rc_wheel_del(&w, 4);
    CHECK(!rc_tnode_armed(&nodes[4]));
    rc_wheel_del(&w, 4);
    rc_wheel_advance(&w, 120, record, NULL);
    CHECK_EQ_INT(nlog, 3);

    /* A when in the past (or now) fires on the next advance, at now + 1. */
    rc_wheel_add(&w, 6, 50);
    rc_wheel_add(&w, 7, 120);
    CHECK_EQ_INT(nodes[6].when, 121);
    CHECK_EQ_INT(nodes[7].when, 121);
    rc_wheel_advance(&w, 120, record, NULL); /* not later: nothing */
    rc_wheel_advance(&w, 119, record, NULL); /* backwards: nothing */
    CHECK_EQ_INT(w.now, 120);
    CHECK_EQ_INT(nlog, 3);
    rc_wheel_advance(&w, 125, record, NULL);
    CHECK_EQ_INT(nlog, 5);
    CHECK(logbuf[3].tick == 121 && logbuf[4].tick == 121);

    rc_wheel_free(&w);
}

static void test_far_beyond_span(void)
{
    rc_wheel w;
    reset_nodes();
    rc_wheel_init(&w, 8, 0, node_of, nodes);
    cur_wheel = &w;
    nlog = 0;
    rc_wheel_add(&w, 1, 1000);
    rc_wheel_add(&w, 2, 1000000);
    for (uint32_t t = 1; t < 1000; t++)
        rc_wheel_advance(&w, t, record, NULL);
    CHECK_EQ_INT(nlog, 0);
    rc_wheel_advance(&w, 1000, record, NULL);
    CHECK_EQ_INT(nlog, 1);
    CHECK(logbuf[0].id == 1 && logbuf[0].tick == 1000);
    /* One jump to just before, then the tick itself. */
    rc_wheel_advance(&w, 999999, record, NULL);
    CHECK_EQ_INT(nlog, 1);
    CHECK(rc_tnode_armed(&nodes[2]));
    rc_wheel_advance(&w, 1000000, record, NULL);
    CHECK_EQ_INT(nlog, 2);
    CHECK(logbuf[1].id == 2 && logbuf[1].tick == 1000000);
    rc_wheel_free(&w);
}

/* Ticks around UINT32_MAX: 2^32 - 6 .. 9 in order, across the wrap. */
static void test_wrap(void)
{
    rc_wheel w;
    reset_nodes();
    uint32_t start = UINT32_MAX - 10;
    rc_wheel_init(&w, 4, start, node_of, nodes);
    cur_wheel = &w;
    nlog = 0;
    rc_wheel_add(&w, 1, start + 5); /* 4294967290 */
    rc_wheel_add(&w, 2, UINT32_MAX);
    rc_wheel_add(&w, 3, 0); /* 11 ticks ahead, not behind */
    rc_wheel_add(&w, 4, 9);
    rc_wheel_add(&w, 5, start - 3); /* the past */
    for (uint32_t t = start + 1; t != 20; t++)
        rc_wheel_advance(&w, t, record, NULL);
    CHECK_EQ_INT(nlog, 5);
    CHECK(logbuf[0].id == 5 && logbuf[0].tick == start + 1);
    CHECK(logbuf[1].id == 1 && logbuf[1].tick == 4294967290u);
    CHECK(logbuf[2].id == 2 && logbuf[2].tick == 4294967295u);
    CHECK(logbuf[3].id == 3 && logbuf[3].tick == 0);
    CHECK(logbuf[4].id == 4 && logbuf[4].tick == 9);

    /* A past when across the wrap: now = 19, when = 2^32 - 3 is behind. */
    rc_wheel_add(&w, 6, UINT32_MAX - 2);
    CHECK_EQ_INT(nodes[6].when, 20);
    /* And advancing "back" over the wrap changes nothing. */
    rc_wheel_advance(&w, UINT32_MAX - 5, record, NULL);
    CHECK_EQ_INT(w.now, 19);
    CHECK_EQ_INT(nlog, 5);
    rc_wheel_advance(&w, 20, record, NULL);
    CHECK(nlog == 6 && logbuf[5].id == 6 && logbuf[5].tick == 20);

    /* One jump across the wrap, longer than the span. */
    rc_wheel_free(&w);
    rc_wheel_init(&w, 4, UINT32_MAX - 100, node_of, nodes);
    nlog = 0;
    rc_wheel_add(&w, 7, UINT32_MAX - 50);
    rc_wheel_add(&w, 8, 2);
    rc_wheel_add(&w, 9, 200);
    rc_wheel_advance(&w, 100, record, NULL);
    CHECK_EQ_INT(nlog, 2);
    CHECK(rc_tnode_armed(&nodes[9]));
    rc_wheel_free(&w);
}

/* ---- callbacks ---- */

static int self_fires;
static uint32_t self_ticks[16];

static void rearm_self(void *arg, uint32_t id)
{
    rc_wheel *w = arg;
    self_ticks[self_fires++] = w->now;
    if (self_fires < 5)
        rc_wheel_add(w, id, w->now + 3);
}

static void rearm_now(void *arg, uint32_t id)
{
    rc_wheel *w = arg;
    self_ticks[self_fires++] = w->now;
    if (self_fires < 5)
        rc_wheel_add(w, id, w->now);
}

static void test_rearm_self(void)
{
    rc_wheel w;
    reset_nodes();
    rc_wheel_init(&w, 32, 0, node_of, nodes);
    self_fires = 0;
    rc_wheel_add(&w, 9, 5);
    rc_wheel_advance(&w, 30, rearm_self, &w); /* all in one advance */
    CHECK_EQ_INT(self_fires, 5);
    CHECK_EQ_INT(self_ticks[0], 5);
    CHECK_EQ_INT(self_ticks[1], 8);
    CHECK_EQ_INT(self_ticks[2], 11);
    CHECK_EQ_INT(self_ticks[3], 14);
    CHECK_EQ_INT(self_ticks[4], 17);
    CHECK(!rc_tnode_armed(&nodes[9]));

    /* Re-arming at "now" (the past) from the callback fires next tick, not
     * again within the same tick: on a 1-slot wheel that would loop. */
    rc_wheel_free(&w);
    rc_wheel_init(&w, 4, 0, node_of, nodes);
    self_fires = 0;
    rc_wheel_add(&w, 9, 2);
    rc_wheel_advance(&w, 3, rearm_now, &w);
    CHECK_EQ_INT(self_fires, 2);
    CHECK_EQ_INT(self_ticks[0], 2);
    CHECK_EQ_INT(self_ticks[1], 3);
    CHECK(rc_tnode_armed(&nodes[9]));
    CHECK_EQ_INT(nodes[9].when, 4);
    rc_wheel_free(&w);
    rc_wheel_init(&w, 1, 0, node_of, nodes);
    self_fires = 0;
    rc_wheel_add(&w, 9, 1);
    rc_wheel_advance(&w, 1, rearm_now, &w);
    rc_wheel_advance(&w, 2, rearm_now, &w);
    CHECK_EQ_INT(self_fires, 2);
    CHECK_EQ_INT(self_ticks[1], 2);
    CHECK_EQ_INT(nodes[9].when, 3);
    /* A jump longer than the span on the same wheel: only the last tick of
     * it is visited (timer.h), so the timer fires once, at 10. */
    rc_wheel_advance(&w, 10, rearm_now, &w);
    CHECK_EQ_INT(self_fires, 3);
    CHECK_EQ_INT(self_ticks[2], 10);
    CHECK_EQ_INT(nodes[9].when, 11);
    rc_wheel_free(&w);
}

static uint32_t fired_ids[16];
static int nfired;

static void disarm_others(void *arg, uint32_t id)
{
    rc_wheel *w = arg;
    fired_ids[nfired++] = id;
    if (id == 1 || id == 2) {
        rc_wheel_del(w, id == 1 ? 2 : 1);
        rc_wheel_del(w, 3);
        rc_wheel_add(w, 4, w->now); /* arm another: due next tick */
    }
}

static void test_disarm_other(void)
{
    /* 1, 2 and 5 are due at tick 4, 3 at tick 5; whichever of 1 and 2 fires
     * first disarms the other and 3, and arms 4 for the next tick. With one
     * slot all of them share a list, and the node disarmed may be the one
     * the walk was about to visit. */
    for (uint32_t nslots = 1; nslots <= 8; nslots *= 2) {
        rc_wheel w;
        reset_nodes();
        rc_wheel_init(&w, nslots, 3, node_of, nodes);
        nfired = 0;
        rc_wheel_add(&w, 5, 4);
        rc_wheel_add(&w, 1, 4);
        rc_wheel_add(&w, 2, 4);
        rc_wheel_add(&w, 6, 4 + 8 * nslots); /* same slot, rounds later */
        rc_wheel_add(&w, 3, 5);
        rc_wheel_advance(&w, 4, disarm_others, &w);
        CHECK_EQ_INT(nfired, 2);
        rc_wheel_advance(&w, 5, disarm_others, &w);
        CHECK_EQ_INT(nfired, 3);
        int saw12 = 0, saw5 = 0, saw4 = 0;
        for (int i = 0; i < nfired; i++) {
            saw12 += fired_ids[i] == 1 || fired_ids[i] == 2;
            saw5 += fired_ids[i] == 5;
            saw4 += fired_ids[i] == 4 && i == nfired - 1;
        }
        CHECK(saw12 == 1 && saw5 == 1 && saw4 == 1);
        CHECK(!rc_tnode_armed(&nodes[1]) && !rc_tnode_armed(&nodes[2]));
        CHECK(!rc_tnode_armed(&nodes[3]));
        CHECK(rc_tnode_armed(&nodes[6]));
        rc_wheel_free(&w);
    }
}

/* ---- random operations against a model ---- */

/* The tick at which an armed timer with tick `when` fires during an advance
 * from `from` to `to` (timer.h): its own tick, or for one skipped by a jump
 * of more than nslots, the tick of the last round that shares its slot.
 * Returns 0 with *fires = 0 when it does not fire in this advance. */
static uint32_t expect_tick(uint32_t when, uint32_t from, uint32_t to, uint32_t nslots, int *fires)
{
    *fires = (int32_t)(when - to) <= 0;
    if (!*fires)
        return 0;
    if (to - when < nslots)
        return when;
    return to - ((to - when) & (nslots - 1));
}

typedef struct model {
    uint8_t armed[NIDS];
    uint32_t when[NIDS];
} model;

static model md;
static fired want[LOGMAX];

static void random_run(uint32_t nslots, uint32_t start, uint64_t seed, int ops)
{
    rc_wheel w;
    reset_nodes();
    memset(&md, 0, sizeof(md));
    rng_state = seed;
    rc_wheel_init(&w, nslots, start, node_of, nodes);
    cur_wheel = &w;
    int bad_fire = 0, bad_arm = 0, bad_order = 0, advances = 0, fires = 0, jumps = 0;

    for (int op = 0; op < ops; op++) {
        uint32_t id = rnd() % NIDS;
        uint32_t k = rnd() % 100;
        if (k < 45) {
            /* Add or re-add, at a tick past, near, beyond the span, far. */
            uint32_t d, kind = rnd() % 10;
            if (kind == 0)
                d = (uint32_t) - (int32_t)(rnd() % 5); /* now or past */
            else if (kind < 6)
                d = 1 + rnd() % nslots;
            else if (kind < 9)
                d = 1 + rnd() % (nslots * 20);
            else
                d = 1 + rnd() % 1000000;
            uint32_t when = w.now + d;
            rc_wheel_add(&w, id, when);
            md.armed[id] = 1;
            md.when[id] = (int32_t)(when - w.now) <= 0 ? w.now + 1 : when;
            bad_arm += nodes[id].when != md.when[id];
        } else if (k < 65) {
            rc_wheel_del(&w, id);
            md.armed[id] = 0;
        } else {
            uint32_t step, kind = rnd() % 20;
            if (kind < 14)
                step = rnd() % 4;
            else if (kind < 18)
                step = 1 + rnd() % (nslots * 3);
            else if (kind < 19)
                step = 1 + rnd() % 200000; /* far past the span */
            else
                step = nslots + rnd() % 2; /* at the edge */
            uint32_t from = w.now, to = from + step;
            size_t nw = 0;
            for (uint32_t i = 0; i < NIDS; i++) {
                int f;
                if (!md.armed[i])
                    continue;
                uint32_t t = expect_tick(md.when[i], from, to, nslots, &f);
                if (f) {
                    want[nw++] = (fired){i, t};
                    md.armed[i] = 0;
                }
            }
            nlog = 0;
            rc_wheel_advance(&w, to, record, NULL);
            advances++;
            jumps += step > nslots;
            fires += (int)nlog;
            bad_arm += w.now != to;
            for (size_t i = 1; i < nlog; i++)
                bad_order += (int32_t)(logbuf[i].tick - logbuf[i - 1].tick) < 0;
            /* Sort both by (tick offset from `from`, id) and compare. */
            for (size_t i = 0; i < nlog; i++)
                logbuf[i].tick -= from;
            for (size_t i = 0; i < nw; i++)
                want[i].tick -= from;
            qsort(logbuf, nlog, sizeof(fired), cmp_fired);
            qsort(want, nw, sizeof(fired), cmp_fired);
            if (nlog != nw || memcmp(logbuf, want, nw * sizeof(fired)) != 0) {
                if (!bad_fire)
                    fprintf(stderr, "op %d: advance %u -> %u: %zu fired, %zu expected\n", op, from,
                            to, nlog, nw);
                bad_fire++;
            }
        }
        if (op % 1000 == 0 || k >= 65) {
            for (uint32_t i = 0; i < NIDS; i++) {
                bad_arm += rc_tnode_armed(&nodes[i]) != md.armed[i];
                bad_arm += md.armed[i] && nodes[i].when != md.when[i];
            }
        }
    }
    CHECK_EQ_INT(bad_fire, 0);
    CHECK_EQ_INT(bad_arm, 0);
    CHECK_EQ_INT(bad_order, 0);
    CHECK(advances > ops / 4 && fires > ops / 20 && jumps > 10);
    rc_wheel_free(&w);
}

static void test_random_model(void)
{
    random_run(64, 0, 0x1234567887654321ULL, 100000);
    random_run(8, UINT32_MAX - 3000, 0xdeadbeefcafef00dULL, 100000); /* wraps */
    random_run(1, 777, 0x0badc0ffee0ddf00ULL, 30000);
    random_run(512, 0x7ffffff0u, 0x5eed5eed5eed5eedULL, 60000);
}

/* Random callbacks: each fire checks it is due now by the model, then
 * disarms, re-arms or arms random timers, mirrored in the model. */
static int cb_bad;
static uint32_t cb_from, cb_to, cb_nslots;
static int cb_fires;

static void chaos(void *arg, uint32_t id)
{
    rc_wheel *w = arg;
    int f = 0;
    cb_fires++;
    uint32_t t = md.armed[id] ? expect_tick(md.when[id], cb_from, cb_to, cb_nslots, &f) : 0;
    if (!md.armed[id] || !f || t != w->now || rc_tnode_armed(&nodes[id]))
        cb_bad++;
    md.armed[id] = 0;
    int acts = (int)(rnd() % 4);
    for (int i = 0; i < acts; i++) {
        uint32_t other = rnd() % 64; /* few ids: collide with due ones */
        uint32_t k = rnd() % 3;
        if (k == 0) {
            rc_wheel_del(w, other);
            md.armed[other] = 0;
        } else {
            uint32_t when = w->now + (k == 1 ? rnd() % 4 : rnd() % (cb_nslots * 3));
            rc_wheel_add(w, other, when);
            md.armed[other] = 1;
            md.when[other] = (int32_t)(when - w->now) <= 0 ? w->now + 1 : when;
        }
    }
}

static void test_random_callbacks(void)
{
    static const uint32_t sizes[] = {1, 2, 4, 32};
    for (size_t s = 0; s < RC_ARRAY_LEN(sizes); s++) {
        rc_wheel w;
        reset_nodes();
        memset(&md, 0, sizeof(md));
        rng_state = 0xabcdef0123456789ULL + s;
        cb_nslots = sizes[s];
        rc_wheel_init(&w, cb_nslots, UINT32_MAX - 500, node_of, nodes);
        cb_bad = 0;
        cb_fires = 0;
        int left = 0;
        for (int round = 0; round < 3000; round++) {
            for (int i = 0; i < 3; i++) {
                uint32_t id = rnd() % 64;
                uint32_t when = w.now + 1 + rnd() % (cb_nslots * 4);
                rc_wheel_add(&w, id, when);
                md.armed[id] = 1;
                md.when[id] = when;
            }
            cb_from = w.now;
            cb_to = w.now + 1 + rnd() % (cb_nslots * 3);
            rc_wheel_advance(&w, cb_to, chaos, &w);
            /* Everything due by now has fired. */
            for (uint32_t id = 0; id < 64; id++) {
                left += md.armed[id] && (int32_t)(md.when[id] - w.now) <= 0;
                left += rc_tnode_armed(&nodes[id]) != md.armed[id];
            }
        }
        CHECK_EQ_INT(cb_bad, 0);
        CHECK_EQ_INT(left, 0);
        CHECK(cb_fires > 3000);
        rc_wheel_free(&w);
    }
}

/* Milliseconds to ticks at the ends of the range: rounding up must not wrap
 * (UINT32_MAX ms, rounded up with a plain ms + tick - 1, became 0 ticks). */
static void test_ticks_for_ms(void)
{
    CHECK_EQ_INT(rc_ticks_for_ms(0, 100), 1);
    CHECK_EQ_INT(rc_ticks_for_ms(1, 100), 1);
    CHECK_EQ_INT(rc_ticks_for_ms(100, 100), 1);
    CHECK_EQ_INT(rc_ticks_for_ms(101, 100), 2);
    CHECK_EQ_INT(rc_ticks_for_ms(UINT32_MAX, 100), 42949673);
    CHECK_EQ_INT(rc_ticks_for_ms(UINT32_MAX - 50, 100), 42949673);
    CHECK_EQ_INT(rc_ticks_for_ms(UINT32_MAX / 2, 100), 21474837);
    CHECK_EQ_INT(rc_ticks_for_ms(UINT32_MAX, 1), UINT32_MAX);
    CHECK_EQ_INT(rc_ticks_for_ms(UINT32_MAX, 2), 2147483648u);
}

int main(void)
{
    RUN(test_ticks_for_ms);
    RUN(test_basic);
    RUN(test_far_beyond_span);
    RUN(test_wrap);
    RUN(test_rearm_self);
    RUN(test_disarm_other);
    RUN(test_random_model);
    RUN(test_random_callbacks);
    return UNIT_DONE();
}
