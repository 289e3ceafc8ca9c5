/* Client events on the relay (events/relay.h).
 *
 * Thread: the relay thread. */
#include "events/relay.h"

#include <stdio.h>
#include <string.h>

#include "base/log.h"
#include "engine/msg.h"
#include "events/control.h"
#include "events/events.h"
#include "proto/json.h"

struct rc_events {
    const rc_config *cfg;
    rc_outbox *out;
    rc_bridge *bridge;
    rc_events_stats *stats;
    int stopping;
    uint64_t last_bad_log_ms;
    char reply_chan[sizeof(RC_REPLY_CHANNEL) + RC_PROTO_MAX_NODE]; /* _rc.reply:NODE */
    /* The turn's events, per rule (cfg->events): written at its end. */
    rc_evreq **pend[RC_MAX_PUBLIC_PATTERNS];
    size_t n_pend[RC_MAX_PUBLIC_PATTERNS], cap_pend[RC_MAX_PUBLIC_PATTERNS];
    int any_pend;
};

/* Appends a turn's events of one stream, each unless the stream holds
 * maxlen entries. KEYS: the stream. ARGV: maxlen, node, reply channel, then
 * seven values per event: event, data, id, user, conn, time, reply.
 * Returns the entry id of each event, or nil for one the full stream
 * refused. */
static const char XADD_LUA[] =
    "local maxlen, out = tonumber(ARGV[1]), {}\n"
    "local len = redis.call('XLEN', KEYS[1])\n"
    "for k = 4, #ARGV, 7 do\n"
    "  if len >= maxlen then\n"
    "    out[#out + 1] = false\n"
    "  else\n"
    "    out[#out + 1] = redis.call('XADD', KEYS[1], '*', 'event', ARGV[k], 'data', ARGV[k + 1],\n"
    "      'id', ARGV[k + 2], 'user', ARGV[k + 3], 'conn', ARGV[k + 4], 'node', ARGV[2],\n"
    "      'time', ARGV[k + 5], 'reply', ARGV[k + 6], 'reply_channel', ARGV[3])\n"
    "    len = len + 1\n"
    "  end\n"
    "end\n"
    "return out\n";

/* Events per script. */
#define BATCH 500

rc_events *rc_events_new(const rc_config *cfg, rc_outbox *out, rc_events_stats *stats)
{
    rc_events *e = rc_calloc(1, sizeof(*e));
    e->cfg = cfg;
    e->out = out;
    e->stats = stats;
    snprintf(e->reply_chan, sizeof(e->reply_chan), "%s%s", RC_REPLY_CHANNEL, cfg->node_id);
    return e;
}

static void on_direct(void *u, rc_str chan, rc_str payload);

void rc_events_attach(rc_events *e, rc_bridge *bridge)
{
    e->bridge = bridge;
    if (!bridge)
        return;
    rc_str ch = {e->reply_chan, strlen(e->reply_chan)};
    rc_bridge_on_direct(bridge, on_direct, e);
    if (e->cfg->n_events) /* without events, nothing is ever answered */
        rc_bridge_subscribe(bridge, ch);
    rc_str ctl = {RC_CONTROL_CHANNEL, sizeof(RC_CONTROL_CHANNEL) - 1};
    rc_bridge_subscribe(bridge, ctl);
}

void rc_events_stop(rc_events *e)
{
    e->stopping = 1;
}

void rc_events_free(rc_events *e)
{
    if (!e)
        return;
    for (int r = 0; r < RC_MAX_PUBLIC_PATTERNS; r++) {
        for (size_t i = 0; i < e->n_pend[r]; i++)
            free(e->pend[r][i]);
        free(e->pend[r]);
    }
    free(e);
}

static void answer(rc_events *e, rc_evreq *q)
{
    if (e->stopping) {
        free(q);
        return;
    }
    rc_qitem done = {.kind = RC_Q_EVENT_DONE, .p = q};
    rc_outbox_push(e->out, q->shard, &done);
}

typedef struct xadd_ctx {
    rc_events *e;
    size_t n;
    rc_evreq *q[];
} xadd_ctx;

static void on_xadd(void *arg, const redisReply *rep)
{
    xadd_ctx *k = arg;
    rc_events *e = k->e;
    int ok = rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == k->n;
    if (rep && rep->type == REDIS_REPLY_ERROR)
        rc_warn("redis: storing client events failed: %s", rep->str);
    for (size_t i = 0; i < k->n; i++) {
        rc_evreq *q = k->q[i];
        const redisReply *x = ok ? rep->element[i] : NULL;
        if (x && x->type == REDIS_REPLY_STRING && x->len < sizeof(q->entry)) {
            memcpy(q->entry, x->str, x->len);
            q->entry_len = (uint8_t)x->len;
            rc_counter_inc(&e->stats->stored);
        } else if (x && x->type == REDIS_REPLY_NIL) {
            q->error = RC_PERR_STREAM_FULL;
            rc_counter_inc(&e->stats->full);
        } else {
            q->error = RC_PERR_EVENTS_UNAVAILABLE;
            rc_counter_inc(&e->stats->failed);
        }
        answer(e, q);
    }
    free(k);
}

void rc_events_on_event(rc_events *e, const rc_qitem *it)
{
    rc_evreq *q = it->p;
    const rc_event_rule *rule = rc_config_event(e->cfg, q->event, q->event_len);
    if (!e->bridge || !rule) { /* the shard checked the rule: config is the same */
        q->error = e->bridge ? RC_PERR_UNKNOWN_EVENT : RC_PERR_EVENTS_UNAVAILABLE;
        rc_counter_inc(&e->stats->failed);
        answer(e, q);
        return;
    }
    size_t r = (size_t)(rule - e->cfg->events);
    if (e->n_pend[r] == e->cap_pend[r]) {
        e->cap_pend[r] = e->cap_pend[r] ? e->cap_pend[r] * 2 : 64;
        e->pend[r] = rc_realloc(e->pend[r], e->cap_pend[r] * sizeof(*e->pend[r]));
    }
    e->pend[r][e->n_pend[r]++] = q;
    e->any_pend = 1;
}

/* One script for events q[0..n) of rule's stream; they are answered when
 * it comes back (or now, when the link refuses it). */
static void write_batch(rc_events *e, const rc_event_rule *rule, rc_evreq *const *q, size_t n)
{
    size_t argc = 7 + 7 * n, a = 0;
    const char **argv = rc_malloc(argc * sizeof(*argv));
    size_t *lens = rc_malloc(argc * sizeof(*lens));
    char(*nums)[3][RC_PROTO_MAX_NODE + 48] = rc_malloc(n * sizeof(*nums)); /* conn, time, reply */
    char key[64 + 8 + 64], maxlen[16];
    int kn = snprintf(key, sizeof(key), "%sev:%s", e->cfg->redis_prefix, rule->stream);
    int mn = snprintf(maxlen, sizeof(maxlen), "%u", rule->maxlen);
    /* the node's reply channel, named now: a cluster's names differ */
    char reply[80 + sizeof(RC_REPLY_CHANNEL) + RC_PROTO_MAX_NODE + 3];
    size_t rl = rc_bridge_channel_name(e->bridge, (rc_str){e->reply_chan, strlen(e->reply_chan)},
                                       reply, sizeof(reply));
    rc_assert(rl);
    const char *fixed[7] = {"EVAL", XADD_LUA, "1", key, maxlen, e->cfg->node_id, reply};
    size_t fl[7] = {4,          sizeof(XADD_LUA) - 1,    1, (size_t)kn,
                    (size_t)mn, strlen(e->cfg->node_id), rl};
    for (int i = 0; i < 7; i++) {
        argv[a] = fixed[i];
        lens[a++] = fl[i];
    }
    long long now = (long long)rc_wall_ms();
    for (size_t i = 0; i < n; i++) {
        int cn =
            snprintf(nums[i][0], sizeof(nums[i][0]), "%llu", (unsigned long long)q[i]->from_conn);
        int tn = snprintf(nums[i][1], sizeof(nums[i][1]), "%lld", now);
        int rn =
            snprintf(nums[i][2], sizeof(nums[i][2]), "%llu:%u:%s",
                     (unsigned long long)q[i]->from_conn, (unsigned)q[i]->gen, e->cfg->node_id);
        const char *v[7] = {q[i]->event, q[i]->data, q[i]->tag, q[i]->user,
                            nums[i][0],  nums[i][1], nums[i][2]};
        size_t vl[7] = {q[i]->event_len, q[i]->data_len, q[i]->tag_len, q[i]->user_len,
                        (size_t)cn,      (size_t)tn,     (size_t)rn};
        for (int j = 0; j < 7; j++) {
            argv[a] = v[j];
            lens[a++] = vl[j];
        }
    }
    xadd_ctx *k = rc_malloc(sizeof(*k) + n * sizeof(k->q[0]));
    k->e = e;
    k->n = n;
    memcpy(k->q, q, n * sizeof(k->q[0]));
    if (rc_bridge_command(e->bridge, on_xadd, k, (int)a, argv, lens) < 0)
        on_xadd(k, NULL); /* answers each: events_unavailable */
    free(nums);
    free(argv);
    free(lens);
}

void rc_events_flush(rc_events *e)
{
    if (!e->any_pend)
        return;
    for (int r = 0; r < e->cfg->n_events; r++) {
        for (size_t done = 0; done < e->n_pend[r];) {
            size_t n = RC_MIN((size_t)BATCH, e->n_pend[r] - done);
            write_batch(e, &e->cfg->events[r], e->pend[r] + done, n);
            done += n;
        }
        e->n_pend[r] = 0;
    }
    e->any_pend = 0;
}

static void bad_reply(rc_events *e, const char *why)
{
    rc_counter_inc(&e->stats->replies_bad);
    uint64_t now = rc_now_ms();
    if (now - e->last_bad_log_ms >= 1000) {
        e->last_bad_log_ms = now;
        rc_warn("events: dropped a reply: %s (counted in ringcast_event_replies_bad_total; "
                "logged at most once a second)",
                why);
    }
}

/* A command for every shard's connections. */
static void broadcast(rc_events *e, const rc_ctl *k)
{
    rc_counter_inc(&e->stats->controls);
    for (int i = 0; i < e->cfg->shards; i++) {
        rc_ctl *copy = rc_malloc(sizeof(*copy));
        *copy = *k;
        rc_qitem d = {.kind = RC_Q_CONTROL_DO, .p = copy};
        rc_outbox_push(e->out, i, &d);
    }
}

/* A reply on this node's reply channel: one frame to its connection; or a
 * command on the control channel. */
static void on_direct(void *u, rc_str chan, rc_str payload)
{
    rc_events *e = u;
    if (e->stopping)
        return;
    if (chan.n == sizeof(RC_CONTROL_CHANNEL) - 1 &&
        memcmp(chan.p, RC_CONTROL_CHANNEL, chan.n) == 0) {
        rc_ctl k;
        const char *why = "";
        if (rc_ctl_parse(payload.p, payload.n, 0, RC_PROTO_MAX_CHANNEL, &k, &why) < 0)
            bad_reply(e, why);
        else
            broadcast(e, &k);
        return;
    }
    rc_reply r;
    const char *why = "";
    if (rc_reply_parse(payload.p, payload.n, &r, &why) < 0) {
        bad_reply(e, why);
        return;
    }
    int shard = (int)(r.conn >> 32);
    if (r.node.n != strlen(e->cfg->node_id) || memcmp(r.node.p, e->cfg->node_id, r.node.n) != 0 ||
        shard >= e->cfg->shards) {
        bad_reply(e, "the address is not one of this node's connections");
        return;
    }
    rc_str body = r.error.n ? r.error : r.data;
    size_t cap = rc_proto_reply_cap(r.id, body);
    char *buf = rc_malloc(cap);
    ssize_t n = rc_proto_backend_reply(buf, cap, r.id, r.data, r.error);
    rc_assert(n > 0); /* the cap fits the worst case */
    rc_msg *m = rc_msg_new_text(RC_STR_NULL, buf, (size_t)n);
    free(buf);
    rc_ref_init(&m->refs, 1);
    rc_counter_inc(&e->stats->replies_in);
    rc_qitem d = {.kind = RC_Q_DIRECT, .a = (uint32_t)r.conn, .b = r.gen, .p = m};
    rc_outbox_push(e->out, shard, &d);
}

static void on_control_published(void *arg, const redisReply *rep)
{
    rc_events *e = arg;
    if (!rep || rep->type == REDIS_REPLY_ERROR)
        bad_reply(e, "Redis did not take a server-side command");
}

void rc_events_on_control(rc_events *e, const rc_qitem *it)
{
    rc_ctl *k = it->p;
    if (!e->bridge) {
        broadcast(e, k);
    } else {
        char json[RC_CTL_JSON_MAX], name[96];
        ssize_t n = rc_ctl_write(json, sizeof(json), k);
        size_t nl = rc_bridge_channel_name(
            e->bridge, (rc_str){RC_CONTROL_CHANNEL, sizeof(RC_CONTROL_CHANNEL) - 1}, name,
            sizeof(name));
        rc_assert(nl);
        const char *argv[3] = {"PUBLISH", name, json};
        size_t lens[3] = {7, nl, n > 0 ? (size_t)n : 0};
        if (n <= 0 || rc_bridge_command(e->bridge, on_control_published, e, 3, argv, lens) < 0)
            bad_reply(e, "a server-side command could not be sent (Redis away)");
    }
    free(k);
}

static void on_published(void *arg, const redisReply *rep)
{
    rc_events *e = arg;
    if (!rep || rep->type == REDIS_REPLY_ERROR)
        bad_reply(e, "Redis did not take a reply from the HTTP API");
}

void rc_events_on_reply(rc_events *e, const rc_qitem *it)
{
    rc_replyreq *q = it->p;
    rc_reply r;
    const char *why = "";
    if (e->bridge && rc_reply_parse(q->body, q->len, &r, &why) == 0) {
        /* On the node's reply channel, this node's too. */
        char name[80 + sizeof(RC_REPLY_CHANNEL) + 2 * RC_PROTO_MAX_NODE + 3];
        char ch[sizeof(RC_REPLY_CHANNEL) + RC_PROTO_MAX_NODE + 1];
        int cl = snprintf(ch, sizeof(ch), "%s%.*s", RC_REPLY_CHANNEL, (int)r.node.n, r.node.p);
        size_t nl =
            cl > 0 && (size_t)cl < sizeof(ch)
                ? rc_bridge_channel_name(e->bridge, (rc_str){ch, (size_t)cl}, name, sizeof(name))
                : 0;
        const char *argv[3] = {"PUBLISH", name, q->body};
        size_t lens[3] = {7, nl, q->len};
        if (nl && rc_bridge_command(e->bridge, on_published, e, 3, argv, lens) == 0)
            rc_counter_inc(&e->stats->replies_out);
        else
            bad_reply(e, "the link to Redis is down");
    }
    free(q);
}
