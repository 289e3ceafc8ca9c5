/* The lifecycle stream (events/lifecycle.h).
 *
 * Thread: the relay thread. */
#include "events/lifecycle.h"

#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "base/log.h"

/* News per script: the script's run stays short. */
#define BATCH 500

struct rc_lifecycle {
    const rc_config *cfg;
    rc_lifecycle_stats *stats;
    rc_bridge *bridge;
    char run[RC_PROTO_MAX_NODE + 18]; /* NODE:RUN */
    char k_stream[200], k_nodes[200], k_conns[300], conns_prefix[200];
    rc_lcnews **pend;
    size_t n_pend, cap_pend;
    uint64_t beats;
};

/* KEYS: the stream, this run's connections, the nodes. ARGV: maxlen,
 * node, this run, then seven values per news: type, conn, gen, user, code
 * (or the channel of a subscribe or unsubscribe), reason, time. A write counts as a beat (a run
 * that dies before its first beat still has its connections taken over). Returns the number dropped
 * (the stream held maxlen). */
static const char WRITE_LUA[] =
    "local t = redis.call('TIME')\n"
    "redis.call('ZADD', KEYS[3], tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000),\n"
    "  ARGV[3])\n"
    "local maxlen, node, dropped = tonumber(ARGV[1]), ARGV[2], 0\n"
    "for k = 4, #ARGV, 7 do\n"
    "  local typ, conn, gen, user = ARGV[k], ARGV[k + 1], ARGV[k + 2], ARGV[k + 3]\n"
    "  local addr = conn .. ':' .. gen .. ':' .. node\n"
    "  if typ == 'connect' then\n"
    "    redis.call('ZADD', KEYS[2], 0, addr .. '|' .. user)\n"
    "  elseif typ == 'disconnect' then\n"
    "    redis.call('ZREM', KEYS[2], addr .. '|' .. user)\n"
    "  end\n"
    "  if redis.call('XLEN', KEYS[1]) >= maxlen then\n"
    "    dropped = dropped + 1\n"
    "  elseif typ == 'subscribe' or typ == 'unsubscribe' then\n"
    "    redis.call('XADD', KEYS[1], '*', 'type', typ, 'user', user, 'conn', conn, 'node', node,\n"
    "      'reply', addr, 'time', ARGV[k + 6], 'channel', ARGV[k + 4])\n"
    "  elseif typ == 'connect' then\n"
    "    redis.call('XADD', KEYS[1], '*', 'type', typ, 'user', user, 'conn', conn, 'node', node,\n"
    "      'reply', addr, 'time', ARGV[k + 6])\n"
    "  else\n"
    "    redis.call('XADD', KEYS[1], '*', 'type', typ, 'user', user, 'conn', conn, 'node', node,\n"
    "      'reply', addr, 'time', ARGV[k + 6], 'code', ARGV[k + 4], 'reason', ARGV[k + 5],\n"
    "      'cause', 'closed')\n"
    "  end\n"
    "end\n"
    "return dropped\n";

/* KEYS: the stream, the nodes. ARGV: maxlen, this run, timeout ms, the
 * prefix of runs' connection keys. Beats, then writes the disconnects of up
 * to 1000 connections of each silent run (forgetting a run once it has
 * none). Returns {1 when this run was not known, disconnects written,
 * dropped}. */
static const char BEAT_LUA[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local maxlen = tonumber(ARGV[1])\n"
    "local new = redis.call('ZADD', KEYS[2], now, ARGV[2])\n"
    "local taken, dropped = 0, 0\n"
    "local dead = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[3]),\n"
    "  'LIMIT', 0, 10)\n"
    "for _, run in ipairs(dead) do\n"
    "  local ck = ARGV[4] .. run\n"
    "  local node = string.match(run, '^(.*):[^:]*$') or run\n"
    "  local gone = redis.call('ZPOPMIN', ck, 1000)\n"
    "  for i = 1, #gone, 2 do\n"
    "    local m = gone[i]\n"
    "    local addr, user = string.match(m, '^([^|]*)|(.*)$')\n"
    "    if addr then\n"
    "      local conn = string.match(addr, '^(%d+):') or ''\n"
    "      if redis.call('XLEN', KEYS[1]) >= maxlen then\n"
    "        dropped = dropped + 1\n"
    "      else\n"
    "        redis.call('XADD', KEYS[1], '*', 'type', 'disconnect', 'user', user, 'conn', conn,\n"
    "          'node', node, 'reply', addr, 'time', now, 'code', 1006, 'reason', 'node lost',\n"
    "          'cause', 'node_lost')\n"
    "        taken = taken + 1\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "  if redis.call('EXISTS', ck) == 0 then redis.call('ZREM', KEYS[2], run) end\n"
    "end\n"
    "return {new, taken, dropped}\n";

rc_lifecycle *rc_lifecycle_new(const rc_config *cfg, rc_lifecycle_stats *stats)
{
    if (!cfg->lifecycle_stream[0] || !cfg->redis_url[0])
        return NULL;
    rc_lifecycle *l = rc_calloc(1, sizeof(*l));
    l->cfg = cfg;
    l->stats = stats;
    uint64_t r = 0;
    if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
        r = rc_now_ns();
    snprintf(l->run, sizeof(l->run), "%s:%016llx", cfg->node_id, (unsigned long long)r);
    const char *p = cfg->redis_prefix;
    snprintf(l->k_stream, sizeof(l->k_stream), "%slc:{lifecycle}:%s", p, cfg->lifecycle_stream);
    snprintf(l->k_nodes, sizeof(l->k_nodes), "%slc:{lifecycle}:nodes", p);
    snprintf(l->conns_prefix, sizeof(l->conns_prefix), "%slc:{lifecycle}:conns:", p);
    snprintf(l->k_conns, sizeof(l->k_conns), "%s%s", l->conns_prefix, l->run);
    return l;
}

void rc_lifecycle_attach(rc_lifecycle *l, rc_bridge *bridge)
{
    if (l)
        l->bridge = bridge;
}

void rc_lifecycle_free(rc_lifecycle *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n_pend; i++)
        free(l->pend[i]);
    free(l->pend);
    free(l);
}

void rc_lifecycle_on_news(rc_lifecycle *l, rc_lcnews *n)
{
    if (!l) {
        free(n);
        return;
    }
    if (l->n_pend == l->cap_pend) {
        l->cap_pend = l->cap_pend ? l->cap_pend * 2 : 64;
        l->pend = rc_realloc(l->pend, l->cap_pend * sizeof(*l->pend));
    }
    l->pend[l->n_pend++] = n;
}

static void on_written(void *arg, const redisReply *rep)
{
    rc_lifecycle *l = arg;
    if (rep && rep->type == REDIS_REPLY_INTEGER) {
        if (rep->integer > 0) {
            rc_counter_add(&l->stats->dropped, (uint64_t)rep->integer);
            rc_warn("lifecycle: the stream holds its maxlen: %lld events dropped (counted in "
                    "ringcast_lifecycle_dropped_total)",
                    rep->integer);
        }
    } else if (rep && rep->type == REDIS_REPLY_ERROR) {
        rc_warn("redis: writing lifecycle events failed: %s", rep->str);
    }
}

/* Writes pend[0..n): 0, or -1 when the link refused it. */
static int write_batch(rc_lifecycle *l, rc_lcnews *const *pend, size_t n)
{
    size_t argc = 9 + n * 7, a = 0;
    const char **argv = rc_malloc(argc * sizeof(*argv));
    size_t *lens = rc_malloc(argc * sizeof(*lens));
    char(*nums)[4][24] = rc_malloc(n * sizeof(*nums)); /* conn, gen, code, time */
    char maxlen[16];
    int mn = snprintf(maxlen, sizeof(maxlen), "%u", l->cfg->lifecycle_maxlen);
    const char *fixed[] = {"EVAL", WRITE_LUA,       "3",   l->k_stream, l->k_conns, l->k_nodes,
                           maxlen, l->cfg->node_id, l->run};
    size_t fixed_len[] = {4,
                          sizeof(WRITE_LUA) - 1,
                          1,
                          strlen(l->k_stream),
                          strlen(l->k_conns),
                          strlen(l->k_nodes),
                          (size_t)mn,
                          strlen(l->cfg->node_id),
                          strlen(l->run)};
    for (size_t i = 0; i < RC_ARRAY_LEN(fixed); i++) {
        argv[a] = fixed[i];
        lens[a++] = fixed_len[i];
    }
    long long now = (long long)rc_wall_ms();
    for (size_t i = 0; i < n; i++) {
        const rc_lcnews *x = pend[i];
        static const char *const types[] = {"", "connect", "disconnect", "subscribe",
                                            "unsubscribe"};
        int chan = x->kind == RC_LC_SUBSCRIBE || x->kind == RC_LC_UNSUBSCRIBE;
        int k[4] = {snprintf(nums[i][0], 24, "%llu", (unsigned long long)x->conn),
                    snprintf(nums[i][1], 24, "%u", (unsigned)x->gen),
                    snprintf(nums[i][2], 24, "%u", (unsigned)x->code),
                    snprintf(nums[i][3], 24, "%lld", now)};
        const char *v[7] = {
            types[x->kind], nums[i][0], nums[i][1], x->user, chan ? x->channel : nums[i][2],
            x->reason,      nums[i][3]};
        size_t vl[7] = {strlen(types[x->kind]),
                        (size_t)k[0],
                        (size_t)k[1],
                        strlen(x->user),
                        chan ? strlen(x->channel) : (size_t)k[2],
                        strlen(x->reason),
                        (size_t)k[3]};
        for (int j = 0; j < 7; j++) {
            argv[a] = v[j];
            lens[a++] = vl[j];
        }
    }
    int rc = rc_bridge_command(l->bridge, on_written, l, (int)a, argv, lens);
    free(nums);
    free(argv);
    free(lens);
    return rc;
}

void rc_lifecycle_flush(rc_lifecycle *l)
{
    if (!l || !l->n_pend || !l->bridge || !rc_bridge_command_ready(l->bridge))
        return;
    size_t done = 0;
    while (done < l->n_pend) {
        size_t n = RC_MIN((size_t)BATCH, l->n_pend - done);
        if (write_batch(l, l->pend + done, n) < 0)
            break;
        for (size_t i = 0; i < n; i++)
            free(l->pend[done + i]);
        rc_counter_add(&l->stats->written, n);
        done += n;
    }
    if (done)
        memmove(l->pend, l->pend + done, (l->n_pend - done) * sizeof(*l->pend));
    l->n_pend -= done;
}

static void on_beat(void *arg, const redisReply *rep)
{
    rc_lifecycle *l = arg;
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != 3)
        return;
    if (rep->element[0]->integer == 1 && l->beats > 1) {
        rc_counter_inc(&l->stats->declared);
        rc_warn("lifecycle: this node was silent past --lifecycle-timeout and its connections "
                "were reported disconnected; they stay open, and their disconnects will be "
                "written when they close");
    }
    rc_counter_add(&l->stats->taken, (uint64_t)rep->element[1]->integer);
    rc_counter_add(&l->stats->dropped, (uint64_t)rep->element[2]->integer);
}

void rc_lifecycle_tick(rc_lifecycle *l)
{
    if (!l || !l->bridge || !rc_bridge_command_ready(l->bridge))
        return;
    char maxlen[16], timeout[24];
    int mn = snprintf(maxlen, sizeof(maxlen), "%u", l->cfg->lifecycle_maxlen);
    int tn = snprintf(timeout, sizeof(timeout), "%llu",
                      (unsigned long long)l->cfg->lifecycle_timeout_s * 1000);
    const char *argv[] = {"EVAL", BEAT_LUA, "2",     l->k_stream,    l->k_nodes,
                          maxlen, l->run,   timeout, l->conns_prefix};
    size_t lens[] = {
        4,          sizeof(BEAT_LUA) - 1, 1,          strlen(l->k_stream),    strlen(l->k_nodes),
        (size_t)mn, strlen(l->run),       (size_t)tn, strlen(l->conns_prefix)};
    if (rc_bridge_command(l->bridge, on_beat, l, (int)RC_ARRAY_LEN(argv), argv, lens) == 0)
        l->beats++;
}
