/* Client events on a shard: the checks, the hand-off to the relay, the
 * answer, and the backends' replies to one connection (events/events.h).
 *
 * Thread: the shard's own (rc_evreq_new and rc_reply_parse: any). */
#include "events/events.h"

#include <stdio.h>
#include <string.h>

#include "channels/shard.h"
#include "engine/msg.h"
#include "events/control.h"
#include "ws/json.h"

rc_evreq *rc_evreq_new(rc_str event, rc_str user, rc_str data)
{
    rc_evreq *q = rc_calloc(1, sizeof(*q) + event.n + user.n + data.n + 3);
    char *w = q->mem;
    q->event = w;
    memcpy(w, event.p, event.n);
    w += event.n + 1;
    q->user = w;
    if (user.n)
        memcpy(w, user.p, user.n);
    w += user.n + 1;
    q->data = w;
    memcpy(w, data.p, data.n);
    q->event_len = (uint16_t)event.n;
    q->user_len = (uint16_t)user.n;
    q->data_len = (uint32_t)data.n;
    return q;
}

void rc_events_emit(rc_shard *s, rc_conn *c, rc_str tag, rc_str event, rc_str data)
{
    if (!s->cfg->redis_url[0]) {
        rc_conn_error(s, c, tag, RC_PERR_EVENTS_UNAVAILABLE,
                      "client events need Redis: this node runs without", RC_STR_NULL);
        return;
    }
    if (!rc_config_event(s->cfg, event.p, event.n)) {
        rc_conn_error(s, c, tag, RC_PERR_UNKNOWN_EVENT, "no stream takes events of this name",
                      RC_STR_NULL);
        return;
    }
    if (data.n > s->cfg->event_max_bytes) {
        char msg[96];
        snprintf(msg, sizeof(msg), "an event's data is at most %u bytes", s->cfg->event_max_bytes);
        rc_conn_error(s, c, tag, RC_PERR_EVENT_TOO_LARGE, msg, RC_STR_NULL);
        return;
    }
    const char *user = c->auth ? rc_auth_user(c->auth) : NULL;
    rc_evreq *q = rc_evreq_new(event, (rc_str){user, user ? strlen(user) : 0}, data);
    q->shard = (uint16_t)s->id;
    q->conn = rc_conn_id(s, c);
    q->gen = c->gen;
    q->from_conn = rc_conn_public_id(s, c);
    q->tag_len = (uint8_t)tag.n;
    if (tag.n)
        memcpy(q->tag, tag.p, tag.n);
    if (rc_shard_to_relay(s, RC_Q_EVENT, q, 1) < 0) {
        free(q);
        rc_conn_error(s, c, tag, RC_PERR_OVERLOADED, "server busy: send the event again shortly",
                      RC_STR_NULL);
        return;
    }
    rc_req_hold(s, c);
}

void rc_events_on_done(rc_shard *s, rc_evreq *q)
{
    rc_conn *c = q->conn < s->nconns ? &s->conns[q->conn] : NULL;
    int same = c && c->gen == q->gen;
    rc_str tag = {q->tag, q->tag_len};
    if (same && c->state == RC_CONN_OPEN) {
        if (q->error == RC_PERR_STREAM_FULL)
            rc_conn_error(s, c, tag, q->error,
                          "the event's stream is full: the backends are behind; send it later",
                          RC_STR_NULL);
        else if (q->error)
            rc_conn_error(s, c, tag, q->error,
                          "the event could not be stored (Redis is away): send it again shortly",
                          RC_STR_NULL);
        else
            rc_conn_proto(s, c)->event_acked(s, c, tag, (rc_str){q->entry, q->entry_len});
    }
    if (same)
        rc_req_release(s, c);
    free(q);
}

void rc_events_on_direct(rc_shard *s, uint32_t slot, uint16_t gen, rc_msg *m)
{
    rc_conn *c = slot < s->nconns ? &s->conns[slot] : NULL;
    if (c && c->gen == gen && c->state == RC_CONN_OPEN && rc_conn_proto(s, c)->reply) {
        rc_conn_proto(s, c)->reply(s, c, m);
        rc_msg_put(m);
        rc_counter_inc(&s->stats.replies_delivered);
    } else if (c && c->gen == gen && c->state == RC_CONN_OPEN) {
        rc_obuf *b = rc_obuf_shared(m);
        b->refs = 1;
        b->kind = RC_OBUF_REPLY; /* an answer to the client's own request */
        rc_conn_send(s, c, b);
        rc_counter_inc(&s->stats.replies_delivered);
    } else {
        rc_msg_put(m);
        rc_counter_inc(&s->stats.replies_gone);
    }
}

static void lifecycle_news(rc_shard *s, const rc_conn *c, int kind)
{
    rc_lcnews *n = rc_calloc(1, sizeof(*n));
    n->kind = (uint8_t)kind;
    n->gen = c->gen;
    n->conn = rc_conn_public_id(s, c);
    if (c->auth)
        snprintf(n->user, sizeof(n->user), "%s", rc_auth_user(c->auth));
    if (kind == RC_LC_DISCONNECT) {
        n->code = s->closing_code;
        snprintf(n->reason, sizeof(n->reason), "%s", s->closing_reason);
    }
    rc_shard_to_relay(s, RC_Q_LIFECYCLE, n, 0);
}

void rc_events_conn_opened(rc_shard *s, rc_conn *c)
{
    if (!s->cfg->lifecycle_stream[0] || !s->cfg->redis_url[0])
        return;
    uint32_t id = rc_conn_id(s, c);
    s->announced[id / 8] |= (uint8_t)(1u << (id % 8));
    lifecycle_news(s, c, RC_LC_CONNECT);
}

void rc_events_conn_closed(rc_shard *s, rc_conn *c)
{
    uint32_t id = rc_conn_id(s, c);
    uint8_t bit = (uint8_t)(1u << (id % 8));
    if (!(s->announced[id / 8] & bit))
        return;
    s->announced[id / 8] &= (uint8_t)~bit;
    lifecycle_news(s, c, RC_LC_DISCONNECT);
}

void rc_events_membership(rc_shard *s, const rc_conn *c, rc_str ch, int join)
{
    uint32_t id = rc_conn_id(s, c);
    if (c->state != RC_CONN_OPEN || !(s->announced[id / 8] >> (id % 8) & 1))
        return;
    rc_lcnews *n = rc_calloc(1, sizeof(*n));
    n->kind = join ? RC_LC_SUBSCRIBE : RC_LC_UNSUBSCRIBE;
    n->gen = c->gen;
    n->conn = rc_conn_public_id(s, c);
    if (c->auth)
        snprintf(n->user, sizeof(n->user), "%s", rc_auth_user(c->auth));
    memcpy(n->channel, ch.p, RC_MIN(ch.n, sizeof(n->channel) - 1));
    rc_shard_to_relay(s, RC_Q_LIFECYCLE, n, 0);
}

static int matches(const rc_shard *s, const rc_conn *c, const rc_ctl *k)
{
    if (k->by_conn)
        return rc_conn_public_id(s, c) == k->conn && c->gen == k->gen &&
               strcmp(k->node, s->cfg->node_id) == 0;
    return c->auth && strcmp(rc_auth_user(c->auth), k->user) == 0;
}

uint32_t rc_ctl_apply(rc_shard *s, const rc_ctl *k)
{
    uint32_t n = 0;
    rc_str ch = {k->channel, strlen(k->channel)};
    for (uint32_t i = 0; i < s->nconns; i++) {
        rc_conn *c = &s->conns[i];
        if (c->state != RC_CONN_OPEN || !matches(s, c, k))
            continue;
        n++;
        if (k->op == RC_CTL_DISCONNECT) {
            rc_conn_close(s, c, k->code, k->reason);
        } else if (k->op == RC_CTL_SUBSCRIBE) {
            if (c->nchan < s->cfg->max_channels_per_conn || rc_chan_holds(s, c, ch))
                rc_chan_join_quiet(s, c, ch);
        } else if (rc_chan_unsubscribe(s, c, ch) == 0) {
            rc_conn_proto(s, c)->unsubscribed(s, c, RC_STR_NULL, ch);
        }
    }
    return n;
}
