/* The admission tick's commands and their hash slots (admission/commands.c,
 * admission/admission.c, included here as h2o's tests do): each command
 * names the keys of one Redis Cluster slot and carries that slot; a batch
 * owns copies of its arguments; the tick of a queue names the queue's own
 * lease. No Redis: the tick is built, not sent. */
#include <stdlib.h>
#include <string.h>

#include "admission/admission.c"
#include "tests/unit/unit.h"

static int arg_is(const adm_cmd *c, int i, const char *want)
{
    return i < c->argc && c->argl[i] == strlen(want) && memcmp(c->argv[i], want, c->argl[i]) == 0;
}

static uint16_t slot_of(const char *s)
{
    return rc_cluster_slot(s, strlen(s));
}

static void test_batch_copies_and_slots(void)
{
    adm_batch b = {0};
    char buf[32] = "rc:q:{sale}:wait";
    key k1 = {.n = 0}, k2 = {.n = 0};
    snprintf(k1.s, sizeof(k1.s), "rc:q:{sale}:cfg"), k1.n = strlen(k1.s);
    snprintf(k2.s, sizeof(k2.s), "%s", buf), k2.n = strlen(k2.s);

    adm_cmd *c = adm_batch_add(&b, 4, adm_on_ignore, &b);
    CHECK(!c->keyed);
    adm_cmd_arg_static(c, "EVAL", 4);
    adm_cmd_key(&b, c, &k1);
    adm_cmd_key(&b, c, &k2);
    adm_cmd_arg(&b, c, buf, 5);
    CHECK(c->keyed);
    CHECK_EQ_INT(c->slot, slot_of("sale"));
    CHECK_EQ_INT(c->slot, slot_of("rc:q:{sale}:wait"));
    CHECK(c->fn == adm_on_ignore && c->priv == &b);
    /* the copies do not follow the caller's buffers; the static one is kept */
    memset(buf, 'x', sizeof(buf) - 1);
    memset(k1.s, 'y', k1.n);
    CHECK(arg_is(c, 0, "EVAL"));
    CHECK(arg_is(c, 1, "rc:q:{sale}:cfg"));
    CHECK(arg_is(c, 2, "rc:q:{sale}:wait"));
    CHECK(arg_is(c, 3, "rc:q:"));
    CHECK(c->argv[1][c->argl[1]] == '\0');

    /* a command with no key has no slot */
    c = adm_batch_add(&b, 1, adm_on_ignore, NULL);
    adm_cmd_arg_static(c, "PING", 4);
    CHECK(!c->keyed);

    /* many commands and many arguments: more chunks, nothing moves */
    char name[32];
    for (int i = 0; i < 200; i++) {
        key k = {.n = 0};
        k.n = (size_t)snprintf(k.s, sizeof(k.s), "rc:q:{q%d}:seen", i);
        c = adm_batch_add(&b, 2 + 300, adm_on_ignore, NULL);
        adm_cmd_arg_static(c, "ZADD", 4);
        adm_cmd_key(&b, c, &k);
        for (int j = 0; j < 300; j++) {
            int n = snprintf(name, sizeof(name), "user-%d-%d", i, j);
            adm_cmd_arg(&b, c, name, (size_t)n);
        }
    }
    CHECK_EQ_INT(b.n, 202);
    int bad = 0;
    for (int i = 0; i < 200; i++) {
        c = &b.cmd[2 + i];
        snprintf(name, sizeof(name), "q%d", i);
        bad += c->argc != 302 || !c->keyed || c->slot != slot_of(name);
        for (int j = 0; j < 300; j++) {
            snprintf(name, sizeof(name), "user-%d-%d", i, j);
            bad += !arg_is(c, 2 + j, name);
        }
    }
    CHECK_EQ_INT(bad, 0);
    CHECK(arg_is(&b.cmd[0], 1, "rc:q:{sale}:cfg"));
    adm_batch_free(&b);
    CHECK(b.n == 0 && b.cmd == NULL && b.mem == NULL);
    adm_batch_free(&b); /* empty: a no-op */
}

static void test_args_key(void)
{
    rc_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    snprintf(cfg.redis_prefix, sizeof(cfg.redis_prefix), "app7:");
    rc_admission a = {.cfg = &cfg};
    key cfgk = adm_qkey(&a, "sale-42", "cfg"), lease = adm_qkey(&a, "sale-42", "lease");
    key index = adm_gkey(&a, "index");
    CHECK_EQ_STR(cfgk.s, "app7:q:{sale-42}:cfg");
    CHECK_EQ_STR(lease.s, "app7:q:{sale-42}:lease");
    CHECK_EQ_STR(index.s, "app7:q:index");

    args x = {.n = 0};
    adm_arg_s(&x, "GET");
    CHECK(!x.keyed);
    adm_arg_key(&x, &lease);
    CHECK(x.keyed && x.slot == slot_of("sale-42"));
    CHECK(x.n == 2 && x.l[1] == lease.n && x.v[1] == lease.s);
    x = (args){.n = 0};
    adm_arg_s(&x, "SADD");
    adm_arg_key(&x, &index);
    CHECK(x.keyed && x.slot == slot_of("app7:q:index"));
}

/* Every key an EVAL names (numkeys after the script) is in c's slot. */
static int eval_keys_in_slot(const adm_cmd *c)
{
    if (!arg_is(c, 0, "EVAL") || c->argc < 3 || !c->keyed)
        return 0;
    int nk = atoi(c->argv[2]);
    if (nk < 1 || 3 + nk > c->argc)
        return 0;
    for (int i = 0; i < nk; i++)
        if (rc_cluster_slot(c->argv[3 + i], c->argl[3 + i]) != c->slot)
            return 0;
    return 1;
}

static void test_tick_plan(void)
{
    rc_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    snprintf(cfg.redis_prefix, sizeof(cfg.redis_prefix), "rc:");
    snprintf(cfg.node_id, sizeof(cfg.node_id), "edge-1");
    cfg.admission_tick_ms = 1000;
    rc_admission_stats st;
    memset(&st, 0, sizeof(st));
    rc_admission a = {.cfg = &cfg, .st = &st, .local = rc_rooms_new(), .led = rc_rooms_new()};
    const char *qs[] = {"sale-42", "b", "concert"};
    a.nqueues = 3;
    a.queues = rc_calloc(3, sizeof(char *));
    for (int i = 0; i < 3; i++)
        a.queues[i] = rc_strndup(qs[i], strlen(qs[i]));
    local_add(&a, "b", "ann");
    local_add(&a, "b", "bob");

    tick_ctx *t = rc_calloc(1, sizeof(*t));
    t->a = &a;
    tick_plan(&a, t);
    /* three tick scripts, one refresh (queue b), the index */
    CHECK_EQ_INT(t->batch.n, 5);
    for (int i = 0; i < 3; i++) {
        const adm_cmd *c = &t->batch.cmd[i];
        char k[96];
        CHECK(c->fn == on_qtick && c->priv == &t->q[i]);
        CHECK(arg_is(c, 1, RC_TICK_LUA) && c->argv[1] == RC_TICK_LUA);
        CHECK(arg_is(c, 2, "7"));
        CHECK_EQ_INT(c->argc, 16);
        snprintf(k, sizeof(k), "rc:q:{%s}:lease", qs[i]);
        CHECK(arg_is(c, 3, k));
        snprintf(k, sizeof(k), "rc:q:{%s}:seq", qs[i]);
        CHECK(arg_is(c, 9, k));
        snprintf(k, sizeof(k), "rc:ch:queue:%s", qs[i]);
        CHECK(arg_is(c, 10, "edge-1") && arg_is(c, 11, k));
        CHECK(arg_is(c, 12, "1000") && arg_is(c, 13, "5000"));
        CHECK(arg_is(c, 14, "PUBLISH")); /* one Redis: the channel is a classic one */
        CHECK(arg_is(c, 15, "1"));       /* and the script announces the tick itself */
        CHECK(eval_keys_in_slot(c));
        CHECK_EQ_INT(c->slot, slot_of(qs[i]));
        CHECK_EQ_STR(t->q[i].queue, qs[i]);
        CHECK(t->q[i].t == t && t->q[i].queue != a.queues[i]);
    }
    const adm_cmd *r = &t->batch.cmd[3];
    CHECK(r->fn == on_tick_other && r->priv == t);
    CHECK(arg_is(r, 1, RC_SEEN_LUA) && arg_is(r, 3, "rc:q:{b}:seen"));
    CHECK(eval_keys_in_slot(r) && r->slot == slot_of("b"));
    /* two waiters, refreshed three times per 120 s: one a tick, each
     * seen (2 * 2 + 2) ticks ahead */
    CHECK_EQ_INT(r->argc, 6);
    CHECK(arg_is(r, 4, "6000") && (arg_is(r, 5, "ann") || arg_is(r, 5, "bob")));
    const adm_cmd *ix = &t->batch.cmd[4];
    CHECK(ix->fn == on_index && arg_is(ix, 0, "SMEMBERS") && arg_is(ix, 1, "rc:q:index"));
    CHECK(ix->keyed && ix->slot == slot_of("rc:q:index"));

    /* the index's answer may replace a->queues before the last reply: the
     * tick keeps its own copies */
    for (size_t i = 0; i < a.nqueues; i++)
        free(a.queues[i]);
    free(a.queues);
    a.queues = NULL;
    a.nqueues = 0;
    CHECK_EQ_STR(t->q[0].queue, "sale-42");

    /* which queues this node leads, tick by tick */
    led_yes(&a, "sale-42", 7);
    led_yes(&a, "b", 7);
    prune_led(&a, 7);
    CHECK_EQ_INT(rc_rooms_count(a.led), 2);
    led_yes(&a, "b", 8);
    prune_led(&a, 8);
    CHECK_EQ_INT(rc_rooms_count(a.led), 1);
    CHECK(rc_rooms_get(a.led, "b", 1) != NULL);
    prune_led(&a, 0);
    CHECK_EQ_INT(rc_rooms_count(a.led), 0);

    adm_batch_free(&t->batch);
    free(t->q);
    free(t);
    rc_rooms_each(a.local, free_waiters, NULL);
    rc_rooms_free(a.local);
    rc_rooms_free(a.led);
}

int main(void)
{
    RUN(test_batch_copies_and_slots);
    RUN(test_args_key);
    RUN(test_tick_plan);
    return UNIT_DONE();
}
