/* rc_conn_page_floor: whether a page of the connection table may be given
 * back, and the generation its slots start from afterwards, which must be
 * past every generation a tenant of any of its slots ever had, so that an
 * answer still addressed to a departed connection (slot and generation)
 * never reaches the next one. */
#include <string.h>

#include "engine/shard.h"
#include "tests/unit/unit.h"

#define PER 64

static rc_conn page[PER];

static void reset(void)
{
    memset(page, 0, sizeof(page));
}

static void test_untouched_page_is_left(void)
{
    reset();
    uint16_t out = 7;
    CHECK_EQ_INT(rc_conn_page_floor(page, PER, 0, &out), 0);
    CHECK_EQ_INT(out, 7);                                      /* not written */
    CHECK_EQ_INT(rc_conn_page_floor(page, PER, 300, &out), 0); /* given back before */
}

static void test_a_slot_in_use_keeps_the_page(void)
{
    reset();
    page[3].gen = 5;
    page[40].state = RC_CONN_OPEN;
    page[40].gen = 9;
    uint16_t out = 0;
    CHECK_EQ_INT(rc_conn_page_floor(page, PER, 0, &out), 0);
    page[40].state = RC_CONN_DEAD; /* still waiting for completions */
    CHECK_EQ_INT(rc_conn_page_floor(page, PER, 0, &out), 0);
    page[40].state = RC_CONN_HTTP;
    CHECK_EQ_INT(rc_conn_page_floor(page, PER, 0, &out), 0);
}

static void test_floor_is_the_latest_generation(void)
{
    reset();
    page[0].gen = 3;
    page[17].gen = 12;
    page[63].gen = 4;
    uint16_t out = 0;
    CHECK_EQ_INT(rc_conn_page_floor(page, PER, 0, &out), 1);
    CHECK_EQ_INT(out, 12);
    /* The page's previous floor counts for the slots that read 0. */
    CHECK_EQ_INT(rc_conn_page_floor(page, PER, 20, &out), 1);
    CHECK_EQ_INT(out, 20);
    /* A slot claimed from floor 20 and released twice since is at 22. */
    page[5].gen = 22;
    CHECK_EQ_INT(rc_conn_page_floor(page, PER, 20, &out), 1);
    CHECK_EQ_INT(out, 22);
}

static void test_sixteen_bit_wrap(void)
{
    reset();
    /* Generations past 65535 wrap: 2 is later than 65530. */
    page[1].gen = 65530;
    page[2].gen = 2;
    uint16_t out = 0;
    CHECK_EQ_INT(rc_conn_page_floor(page, PER, 65000, &out), 1);
    CHECK_EQ_INT(out, 2);
}

/* The property the floor exists for, over many waves: a slot's tenants,
 * each claiming with rc_conn_claim's rule and releasing with a bump, never
 * repeat a generation while the page is given back between waves. */
static void test_no_generation_repeats_across_trims(void)
{
    reset();
    uint16_t page_gen = 0;
    static uint8_t seen[PER][65536 / 8];
    memset(seen, 0, sizeof(seen));
    uint32_t rng = 12345;
    int repeats = 0;
    for (int wave = 0; wave < 200; wave++) {
        for (int i = 0; i < PER; i++) {
            rng = rng * 1103515245u + 12345u;
            if (rng >> 16 & 1)
                continue;                                        /* this slot sits the wave out */
            uint16_t gen = page[i].gen ? page[i].gen : page_gen; /* claim */
            if (seen[i][gen / 8] >> (gen % 8) & 1)
                repeats++;
            seen[i][gen / 8] |= (uint8_t)(1u << (gen % 8));
            page[i].gen = (uint16_t)(gen + 1); /* release */
        }
        uint16_t floor;
        if (rc_conn_page_floor(page, PER, page_gen, &floor)) {
            memset(page, 0, sizeof(page)); /* what MADV_DONTNEED leaves */
            page_gen = floor;
        }
    }
    CHECK_EQ_INT(repeats, 0);
    CHECK(page_gen > 0);
}

int main(void)
{
    RUN(test_untouched_page_is_left);
    RUN(test_a_slot_in_use_keeps_the_page);
    RUN(test_floor_is_the_latest_generation);
    RUN(test_sixteen_bit_wrap);
    RUN(test_no_generation_repeats_across_trims);
    return UNIT_DONE();
}
