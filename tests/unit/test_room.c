/* Room index and member arrays: lookups, growth to 100k rooms, names that
 * differ in one byte, each-iteration, and join/leave checked against a
 * reference model of who is in a room and where the caller thinks they are. */
#include "channels/room.h"

#include <string.h>

#include "tests/unit/unit.h"

static uint64_t rng_state;

static uint32_t rnd(void)
{
    /* xorshift64*: fixed seed, so a failure is reproducible. */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 0x2545F4914F6CDD1DULL) >> 32);
}

static rc_room *add_s(rc_rooms *rs, const char *s)
{
    return rc_rooms_add(rs, s, strlen(s));
}

static rc_room *get_s(rc_rooms *rs, const char *s)
{
    return rc_rooms_get(rs, s, strlen(s));
}

static void test_add_get_del(void)
{
    rc_rooms *rs = rc_rooms_new();
    CHECK_EQ_INT(rc_rooms_count(rs), 0);
    CHECK(get_s(rs, "news") == NULL);

    rc_room *a = add_s(rs, "news");
    CHECK(a != NULL);
    CHECK_EQ_STR(a->name, "news");
    CHECK_EQ_INT(a->name_len, 4);
    CHECK_EQ_INT(a->n, 0);
    CHECK_EQ_INT(a->flags, 0);
    CHECK(a->udata == NULL);
    CHECK_EQ_INT(rc_rooms_count(rs), 1);
    CHECK(get_s(rs, "news") == a);
    CHECK(add_s(rs, "news") == a); /* existing: same room, no new one */
    CHECK_EQ_INT(rc_rooms_count(rs), 1);

    /* Only the first len bytes count. */
    CHECK(rc_rooms_get(rs, "newsroom", 4) == a);
    CHECK(get_s(rs, "new") == NULL);
    CHECK(get_s(rs, "newsroom") == NULL);

    a->flags = 7;
    int tag;
    a->udata = &tag;
    rc_room *b = add_s(rs, "user:42");
    CHECK(b != a);
    CHECK_EQ_INT(rc_rooms_count(rs), 2);
    CHECK(get_s(rs, "news") == a);
    CHECK_EQ_INT(a->flags, 7);
    CHECK(a->udata == &tag);

    rc_rooms_del(rs, a);
    CHECK_EQ_INT(rc_rooms_count(rs), 1);
    CHECK(get_s(rs, "news") == NULL);
    CHECK(get_s(rs, "user:42") == b);

    /* Re-added after delete: a fresh room, fields reset. */
    a = add_s(rs, "news");
    CHECK_EQ_INT(a->flags, 0);
    CHECK_EQ_INT(a->held, 0);
    CHECK(a->seq == 0);
    CHECK(a->udata == NULL);
    CHECK_EQ_INT(rc_rooms_count(rs), 2);

    /* The empty name is a name like any other. */
    rc_room *e = rc_rooms_add(rs, "", 0);
    CHECK_EQ_INT(e->name_len, 0);
    CHECK_EQ_STR(e->name, "");
    CHECK(rc_rooms_get(rs, "x", 0) == e);
    CHECK_EQ_INT(rc_rooms_count(rs), 3);

    /* Embedded NUL: "a\0b" is neither "a" nor "a\0c". */
    rc_room *n1 = rc_rooms_add(rs, "a\0b", 3);
    rc_room *n2 = rc_rooms_add(rs, "a\0c", 3);
    rc_room *n3 = rc_rooms_add(rs, "a", 1);
    CHECK(n1 != n2 && n1 != n3 && n2 != n3);
    CHECK_EQ_INT(n1->name_len, 3);
    CHECK(memcmp(n1->name, "a\0b", 4) == 0); /* bytes plus terminating NUL */
    CHECK(rc_rooms_get(rs, "a\0b", 3) == n1);
    CHECK(rc_rooms_get(rs, "a\0c", 3) == n2);
    CHECK_EQ_INT(rc_rooms_count(rs), 6);

    rc_rooms_free(rs);
    rc_rooms_free(NULL);
}

/* Two indexes hash with different keys, so a name's hash differs between
 * them (equal with chance 2^-32). */
static void test_seeded(void)
{
    rc_rooms *a = rc_rooms_new(), *b = rc_rooms_new();
    int same = 0;
    char name[32];
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof(name), "seed:%d", i);
        same += add_s(a, name)->hash == add_s(b, name)->hash;
    }
    CHECK(same <= 1);
    rc_rooms_free(a);
    rc_rooms_free(b);
}

/* Every name of 16 bytes that differs from a base in exactly one byte. */
static void test_one_byte_apart(void)
{
    rc_rooms *rs = rc_rooms_new();
    char base[17] = "chan:0123456789a";
    enum { LEN = 16, VARIANTS = LEN * 255 + 1 };
    static rc_room *rooms[VARIANTS];
    static uint32_t hashes[VARIANTS];
    int k = 0;

    rooms[k++] = rc_rooms_add(rs, base, LEN);
    for (int pos = 0; pos < LEN; pos++) {
        for (int v = 0; v < 256; v++) {
            if ((char)v == base[pos])
                continue;
            char nm[LEN];
            memcpy(nm, base, LEN);
            nm[pos] = (char)v;
            rooms[k++] = rc_rooms_add(rs, nm, LEN);
        }
    }
    CHECK_EQ_INT(k, VARIANTS);
    CHECK_EQ_INT(rc_rooms_count(rs), VARIANTS);

    int wrong = 0, lost = 0;
    k = 1;
    for (int pos = 0; pos < LEN; pos++) {
        for (int v = 0; v < 256; v++) {
            if ((char)v == base[pos])
                continue;
            char nm[LEN];
            memcpy(nm, base, LEN);
            nm[pos] = (char)v;
            rc_room *r = rc_rooms_get(rs, nm, LEN);
            lost += r != rooms[k];
            wrong += r && (r->name_len != LEN || memcmp(r->name, nm, LEN) != 0);
            k++;
        }
    }
    CHECK_EQ_INT(lost, 0);
    CHECK_EQ_INT(wrong, 0);
    CHECK(rc_rooms_get(rs, base, LEN) == rooms[0]);

    /* A keyed hash spreads near-identical names: among 4081 32-bit hashes
     * the expected number of equal pairs is about 0.002. */
    for (int i = 0; i < VARIANTS; i++)
        hashes[i] = rooms[i]->hash;
    int collisions = 0;
    for (int i = 0; i < VARIANTS; i++)
        for (int j = i + 1; j < VARIANTS; j++)
            collisions += hashes[i] == hashes[j];
    CHECK(collisions <= 2);

    /* Deleting one leaves its neighbours in place. */
    rc_rooms_del(rs, rooms[1]);
    CHECK(rc_rooms_get(rs, rooms[2]->name, LEN) == rooms[2]);
    CHECK(rc_rooms_get(rs, base, LEN) == rooms[0]);
    CHECK_EQ_INT(rc_rooms_count(rs), VARIANTS - 1);
    rc_rooms_free(rs);
}

enum { MANY = 100000 };

static void test_many(void)
{
    rc_rooms *rs = rc_rooms_new();
    static rc_room *rooms[MANY];
    char name[32];
    for (int i = 0; i < MANY; i++) {
        int len = snprintf(name, sizeof(name), "room:%d", i);
        rooms[i] = rc_rooms_add(rs, name, (size_t)len);
        rooms[i]->udata = &rooms[i];
    }
    CHECK_EQ_INT(rc_rooms_count(rs), MANY);

    /* After all the growth, every room is found, at the address it was
     * created at (rooms never move: callers keep pointers). */
    int bad = 0;
    for (int i = 0; i < MANY; i++) {
        int len = snprintf(name, sizeof(name), "room:%d", i);
        rc_room *r = rc_rooms_get(rs, name, (size_t)len);
        bad += r != rooms[i] || r->udata != &rooms[i] || strcmp(r->name, name) != 0;
    }
    CHECK_EQ_INT(bad, 0);
    CHECK(get_s(rs, "room:100000") == NULL);

    /* Chains stay short: 100k hashes over 2^17 buckets (the size the index
     * grows to) put at most about 9 in one; 20 would mean a bad hash. */
    static uint8_t per_bucket[1 << 17];
    int worst = 0;
    for (int i = 0; i < MANY; i++) {
        int c = ++per_bucket[rooms[i]->hash & ((1 << 17) - 1)];
        worst = c > worst ? c : worst;
    }
    CHECK(worst < 20);

    /* Delete the odd ones (the index shrinks on the way), then check both
     * halves. */
    for (int i = 1; i < MANY; i += 2)
        rc_rooms_del(rs, rooms[i]);
    CHECK_EQ_INT(rc_rooms_count(rs), MANY / 2);
    bad = 0;
    for (int i = 0; i < MANY; i++) {
        int len = snprintf(name, sizeof(name), "room:%d", i);
        rc_room *r = rc_rooms_get(rs, name, (size_t)len);
        bad += (i & 1) ? r != NULL : r != rooms[i];
    }
    CHECK_EQ_INT(bad, 0);

    /* Down to a few rooms and back up: still consistent. */
    for (int i = 0; i < MANY - 10; i += 2)
        rc_rooms_del(rs, rooms[i]);
    CHECK_EQ_INT(rc_rooms_count(rs), 5);
    for (int i = MANY - 10; i < MANY; i += 2)
        CHECK(rc_rooms_get(rs, rooms[i]->name, rooms[i]->name_len) == rooms[i]);
    for (int i = 0; i < 1000; i++) {
        int len = snprintf(name, sizeof(name), "again:%d", i);
        rc_rooms_add(rs, name, (size_t)len);
    }
    CHECK_EQ_INT(rc_rooms_count(rs), 1005);
    CHECK(get_s(rs, "again:999") != NULL);
    CHECK(get_s(rs, "room:0") == NULL);
    rc_rooms_free(rs);
}

enum { EACH_N = 5000 };

static void count_visit(rc_room *r, void *arg)
{
    int *visits = arg;
    visits[(int *)r->udata - visits]++;
}

static void test_each(void)
{
    rc_rooms *rs = rc_rooms_new();
    static int visits[EACH_N];
    char name[32];
    int calls = 0;

    rc_rooms_each(rs, count_visit, visits); /* empty: no calls */
    for (int i = 0; i < EACH_N; i++)
        calls += visits[i];
    CHECK_EQ_INT(calls, 0);

    for (int i = 0; i < EACH_N; i++) {
        snprintf(name, sizeof(name), "e%d", i);
        add_s(rs, name)->udata = &visits[i];
    }
    for (int i = 0; i < EACH_N; i += 3) {
        snprintf(name, sizeof(name), "e%d", i);
        rc_rooms_del(rs, get_s(rs, name));
    }
    rc_rooms_each(rs, count_visit, visits);
    int bad = 0;
    for (int i = 0; i < EACH_N; i++)
        bad += visits[i] != (i % 3 == 0 ? 0 : 1);
    CHECK_EQ_INT(bad, 0);
    rc_rooms_free(rs);
}

/* Join/leave against a model: in[m] says whether m is in the room, pos[m]
 * is where the caller believes m sits, maintained only through the values
 * rc_room_join and rc_room_leave return. */
enum { NROOMS = 8, NMEMB = 600, OPS = 100000 };

static int check_room_matches(const rc_room *r, const uint8_t *in, const uint32_t *pos,
                              uint32_t size)
{
    if (r->n != size || r->cap < r->n)
        return 0;
    for (uint32_t m = 0; m < NMEMB; m++) {
        if (in[m] && (pos[m] >= r->n || r->members[pos[m]] != m))
            return 0;
    }
    return 1;
}

static void test_join_leave_model(void)
{
    rng_state = 0x9e3779b97f4a7c15ULL;
    rc_rooms *rs = rc_rooms_new();
    rc_room *rooms[NROOMS];
    static uint8_t in[NROOMS][NMEMB];
    static uint32_t pos[NROOMS][NMEMB];
    uint32_t size[NROOMS] = {0};
    char name[16];
    for (int i = 0; i < NROOMS; i++) {
        snprintf(name, sizeof(name), "m%d", i);
        rooms[i] = add_s(rs, name);
    }

    int bad_join = 0, bad_leave = 0, bad_state = 0, bad_mem = 0, leaves_last = 0;
    for (int op = 0; op < OPS; op++) {
        int ri = (int)(rnd() % NROOMS);
        rc_room *r = rooms[ri];
        uint32_t m = rnd() % NMEMB;
        /* Alternate phases that fill rooms (about 90% of the ids) and drain
         * them (about 5%), so arrays grow and shrink many times. */
        int want_join = (int)(rnd() % 100) < ((op / 10000) % 2 ? 5 : 90);
        if (!in[ri][m] && want_join) {
            uint32_t p = rc_room_join(r, m);
            bad_join += p != size[ri];
            in[ri][m] = 1;
            pos[ri][m] = p;
            size[ri]++;
        } else if (in[ri][m] && !want_join) {
            uint32_t p = pos[ri][m];
            uint32_t last_m = r->members[size[ri] - 1];
            uint32_t moved = rc_room_leave(r, p);
            if (p == size[ri] - 1) {
                leaves_last++;
                bad_leave += moved != UINT32_MAX;
            } else {
                bad_leave += moved != last_m || !in[ri][moved];
                if (moved != UINT32_MAX && moved < NMEMB)
                    pos[ri][moved] = p;
            }
            in[ri][m] = 0;
            size[ri]--;
        }
        bad_state += r->n != size[ri];
        /* Memory follows the members: freed when empty, never under a
         * quarter full beyond the smallest array. */
        bad_mem +=
            r->n == 0 ? (r->cap != 0 || r->members != NULL) : (r->cap > 2 && r->n < r->cap / 4);
        if (op % 997 == 0)
            bad_state += !check_room_matches(r, in[ri], pos[ri], size[ri]);
    }
    for (int i = 0; i < NROOMS; i++)
        bad_state += !check_room_matches(rooms[i], in[i], pos[i], size[i]);
    CHECK_EQ_INT(bad_join, 0);
    CHECK_EQ_INT(bad_leave, 0);
    CHECK_EQ_INT(bad_state, 0);
    CHECK_EQ_INT(bad_mem, 0);
    CHECK(leaves_last > 0); /* both branches of the contract ran */

    /* Empty every room through the contract, then check all are empty. */
    for (int i = 0; i < NROOMS; i++) {
        while (rooms[i]->n > 0) {
            uint32_t p = rnd() % rooms[i]->n;
            uint32_t m = rooms[i]->members[p];
            uint32_t moved = rc_room_leave(rooms[i], p);
            in[i][m] = 0;
            if (moved != UINT32_MAX)
                pos[i][moved] = p;
        }
        CHECK(rooms[i]->members == NULL && rooms[i]->cap == 0);
    }
    rc_rooms_free(rs);
}

static void test_leave_contract_small(void)
{
    rc_rooms *rs = rc_rooms_new();
    rc_room *r = add_s(rs, "small");
    CHECK_EQ_INT(rc_room_join(r, 10), 0);
    CHECK_EQ_INT(rc_room_join(r, 11), 1);
    CHECK_EQ_INT(rc_room_join(r, 12), 2);
    CHECK_EQ_INT(rc_room_join(r, 13), 3);
    /* [10 11 12 13]: leave pos 1 -> 13 moves there: [10 13 12] */
    CHECK_EQ_INT(rc_room_leave(r, 1), 13);
    CHECK_EQ_INT(r->n, 3);
    CHECK_EQ_INT(r->members[0], 10);
    CHECK_EQ_INT(r->members[1], 13);
    CHECK_EQ_INT(r->members[2], 12);
    /* leave the last position: nothing moves */
    CHECK_EQ_INT(rc_room_leave(r, 2), (uint32_t)UINT32_MAX);
    CHECK_EQ_INT(r->n, 2);
    CHECK_EQ_INT(rc_room_leave(r, 0), 13);
    CHECK_EQ_INT(r->members[0], 13);
    CHECK_EQ_INT(rc_room_leave(r, 0), (uint32_t)UINT32_MAX);
    CHECK_EQ_INT(r->n, 0);
    /* member ids up to UINT32_MAX - 1 are fine */
    CHECK_EQ_INT(rc_room_join(r, UINT32_MAX - 1), 0);
    CHECK_EQ_INT(r->members[0], UINT32_MAX - 1);
    rc_rooms_free(rs);
}

static void test_member_memory(void)
{
    rc_rooms *rs = rc_rooms_new();
    rc_room *r = add_s(rs, "crowd");
    CHECK_EQ_INT(r->cap, 0);
    CHECK(r->members == NULL);
    rc_room_join(r, 1);
    CHECK(r->cap >= 1 && r->cap <= 2); /* one member costs one small block */

    enum { BIG = 100000 };
    for (uint32_t m = 2; m <= BIG; m++)
        rc_room_join(r, m);
    CHECK_EQ_INT(r->n, BIG);
    CHECK(r->cap >= BIG && r->cap < 2 * BIG); /* geometric, not wasteful */
    uint32_t peak = r->cap;

    /* Leave from the end until one member is left: the array follows. */
    while (r->n > 1)
        rc_room_leave(r, r->n - 1);
    CHECK_EQ_INT(r->members[0], 1);
    CHECK(r->cap <= 4);
    CHECK(r->cap < peak);
    rc_room_leave(r, 0);
    CHECK_EQ_INT(r->cap, 0);
    CHECK(r->members == NULL);

    /* Usable again after being emptied. */
    CHECK_EQ_INT(rc_room_join(r, 5), 0);
    CHECK_EQ_INT(r->members[0], 5);
    rc_rooms_free(rs);
}

int main(void)
{
    RUN(test_add_get_del);
    RUN(test_seeded);
    RUN(test_one_byte_apart);
    RUN(test_many);
    RUN(test_each);
    RUN(test_leave_contract_small);
    RUN(test_join_leave_model);
    RUN(test_member_memory);
    return UNIT_DONE();
}
