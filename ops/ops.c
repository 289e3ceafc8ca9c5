/* The operations, and who may do what (ops/ops.h).
 *
 * Thread: the shard that owns the connection. */
#include "ops/ops.h"

#include <stdio.h>
#include <string.h>

#include "admission/waitroom.h"
#include "channels/shard.h"
#include "events/events.h"

#define RESERVED_PREFIX "queue:" /* waiting-room ticks (admission/) */

static int reserved(rc_str ch)
{
    size_t n = sizeof(RESERVED_PREFIX) - 1, i = sizeof(RC_INTERNAL_PREFIX) - 1;
    return (ch.n >= n && memcmp(ch.p, RESERVED_PREFIX, n) == 0) ||
           (ch.n >= i && memcmp(ch.p, RC_INTERNAL_PREFIX, i) == 0);
}

int rc_op_may(const rc_shard *s, const rc_auth *auth, rc_str ch, int right, const char **why)
{
    int publish = right == RC_MAY_PUBLISH;
    *why = publish ? "not allowed to publish to this channel"
                   : "not allowed to subscribe to this channel";
    if (reserved(ch))
        return RC_PERR_FORBIDDEN;
    if (auth &&
        (publish ? rc_auth_may_publish(auth, ch.p, ch.n) : rc_auth_may_subscribe(auth, ch.p, ch.n)))
        return RC_PERR_NONE;
    if (publish && (auth || !s->cfg->anonymous_publish))
        return RC_PERR_FORBIDDEN;
    const char *user = auth ? rc_auth_user(auth) : NULL;
    for (int i = 0; i < s->cfg->n_public_patterns; i++)
        if (rc_pattern_match(s->cfg->public_patterns[i], ch.p, ch.n, user))
            return RC_PERR_NONE;
    return RC_PERR_FORBIDDEN;
}

int rc_op_verify_token(const rc_shard *s, const char *token, size_t len, rc_auth **out)
{
    rc_jwt_keys k = {
        .secret = (const uint8_t *)s->cfg->jwt_secret,
        .secret_len = s->cfg->jwt_secret_len,
        .previous = (const uint8_t *)s->cfg->jwt_secret_previous,
        .previous_len = strlen(s->cfg->jwt_secret_previous),
        .set = __atomic_load_n(&s->node->keys, __ATOMIC_ACQUIRE),
    };
    return rc_jwt_verify_keys(token, len, &k, rc_wall_s(), out);
}

void rc_op_subscribe(rc_shard *s, rc_conn *c, rc_str tag, rc_str ch, const rc_since *since)
{
    const char *why;
    int e = rc_op_may(s, c->auth, ch, RC_MAY_SUBSCRIBE, &why);
    if (e != RC_PERR_NONE) {
        rc_conn_error(s, c, tag, e, why, ch);
        return;
    }
    if (c->nchan >= s->cfg->max_channels_per_conn && !rc_chan_holds(s, c, ch)) {
        rc_conn_error(s, c, tag, RC_PERR_CHANNEL_LIMIT, "too many channels on this connection", ch);
        return;
    }
    rc_chan_subscribe(s, c, tag, ch, since);
}

void rc_op_history(rc_shard *s, rc_conn *c, rc_str tag, rc_str ch, uint32_t limit,
                   const rc_since *since)
{
    const char *why;
    int e = rc_op_may(s, c->auth, ch, RC_MAY_SUBSCRIBE, &why);
    if (e != RC_PERR_NONE) {
        rc_conn_error(s, c, tag, e, "not allowed to read this channel", ch);
        return;
    }
    if (!rc_config_history(s->cfg, ch.p, ch.n)) {
        rc_conn_error(s, c, tag, RC_PERR_NO_HISTORY, "this channel keeps no history", ch);
        return;
    }
    uint32_t max = s->cfg->recovery_max;
    if (limit > max) {
        char msg[96];
        snprintf(msg, sizeof(msg), "limit must be 1..%u on this server", max);
        rc_conn_error(s, c, tag, RC_PERR_BAD_REQUEST, msg, ch);
        return;
    }
    rc_chan_history(s, c, tag, ch, limit ? limit : max, since);
}

/* Presence questions need the right to subscribe, and a channel that
 * keeps presence: 0, or an error told to c. */
static int presence_check(rc_shard *s, rc_conn *c, rc_str tag, rc_str ch)
{
    const char *why;
    int e = rc_op_may(s, c->auth, ch, RC_MAY_SUBSCRIBE, &why);
    if (e != RC_PERR_NONE) {
        rc_conn_error(s, c, tag, e, "not allowed to see who is in this channel", ch);
        return -1;
    }
    if (!rc_config_presence(s->cfg, ch.p, ch.n)) {
        rc_conn_error(s, c, tag, RC_PERR_NO_PRESENCE, "this channel keeps no presence", ch);
        return -1;
    }
    return 0;
}

void rc_op_presence(rc_shard *s, rc_conn *c, rc_str tag, rc_str ch, uint32_t limit, rc_str cursor)
{
    if (presence_check(s, c, tag, ch) < 0)
        return;
    uint32_t max = s->cfg->presence_page_max;
    if (limit > max) {
        char msg[96];
        snprintf(msg, sizeof(msg), "limit must be 1..%u on this server", max);
        rc_conn_error(s, c, tag, RC_PERR_BAD_REQUEST, msg, ch);
        return;
    }
    rc_chan_presence(s, c, tag, ch, limit ? limit : max, cursor);
}

void rc_op_presence_stats(rc_shard *s, rc_conn *c, rc_str tag, rc_str ch)
{
    if (presence_check(s, c, tag, ch) == 0)
        rc_chan_presence_stats(s, c, tag, ch);
}

void rc_op_unsubscribe(rc_shard *s, rc_conn *c, rc_str tag, rc_str ch)
{
    if (rc_chan_unsubscribe(s, c, ch) < 0) {
        rc_conn_error(s, c, tag, RC_PERR_NOT_SUBSCRIBED, "not subscribed to this channel", ch);
        return;
    }
    rc_conn_proto(s, c)->unsubscribed(s, c, tag, ch);
}

void rc_op_publish(rc_shard *s, rc_conn *c, rc_str tag, rc_str ch, rc_str event, rc_str data)
{
    const char *why;
    int e = rc_op_may(s, c->auth, ch, RC_MAY_PUBLISH, &why);
    if (e != RC_PERR_NONE) {
        rc_conn_error(s, c, tag, e, why, ch);
        return;
    }
    if (rc_chan_publish(s, ch, event, data, c) < 0) {
        rc_conn_error(s, c, tag, RC_PERR_OVERLOADED, "server busy: publish again shortly", ch);
        return;
    }
    rc_conn_proto(s, c)->published(s, c, tag, ch);
}

int rc_op_publish_api(rc_shard *s, rc_str ch, rc_str event, rc_str data, const char **why)
{
    if (reserved(ch)) {
        *why = ch.p[0] == '_' ? "channels _rc.* are the server's own: not for publishing"
                              : "channels queue:* carry waiting-room ticks: not for publishing";
        return RC_PERR_FORBIDDEN;
    }
    if (rc_chan_publish(s, ch, event, data, NULL) < 0) {
        *why = "server busy: publish again shortly";
        return RC_PERR_OVERLOADED;
    }
    return RC_PERR_NONE;
}

void rc_op_refresh(rc_shard *s, rc_conn *c, rc_str tag, rc_str token)
{
    rc_auth *a = NULL;
    int e = rc_op_verify_token(s, token.p, token.n, &a);
    if (e != RC_JWT_OK) {
        rc_counter_inc(&s->stats.refresh_refused);
        rc_conn_error(s, c, tag, RC_PERR_BAD_TOKEN, rc_jwt_strerror(e), RC_STR_NULL);
        return;
    }
    if (!c->auth || strcmp(rc_auth_user(c->auth), rc_auth_user(a)) != 0) {
        free(a);
        rc_counter_inc(&s->stats.refresh_refused);
        rc_conn_error(s, c, tag, RC_PERR_FORBIDDEN,
                      "a refresh keeps the connection's user: reconnect to change it", RC_STR_NULL);
        return;
    }
    free(c->auth);
    c->auth = a;
    rc_counter_inc(&s->stats.refreshed);
    rc_conn_new_token(s, c);
    rc_conn_proto(s, c)->refreshed(s, c, tag, a->exp);
}

void rc_op_event(rc_shard *s, rc_conn *c, rc_str tag, rc_str event, rc_str data)
{
    rc_events_emit(s, c, tag, event, data);
}

void rc_op_queue_join(rc_shard *s, rc_conn *c, rc_str tag, rc_str q)
{
    if (!s->cfg->admission_secret[0]) {
        rc_conn_error(s, c, tag, RC_PERR_QUEUE_UNAVAILABLE,
                      "waiting rooms are off on this server (no admission secret)", RC_STR_NULL);
        return;
    }
    if (!c->auth || !rc_auth_user(c->auth)) {
        rc_conn_error(s, c, tag, RC_PERR_FORBIDDEN,
                      "joining a queue needs a token with a user id (sub)", RC_STR_NULL);
        return;
    }
    rc_wait_join(s, c, tag, q);
}

void rc_op_queue_leave(rc_shard *s, rc_conn *c, rc_str tag, rc_str q)
{
    /* Anyone may leave: a connection that does not wait is told it is out. */
    rc_wait_leave(s, c, tag, q);
}

void rc_op_join_user(rc_shard *s, rc_conn *c)
{
    const char *user = c->auth ? rc_auth_user(c->auth) : NULL;
    if (!user || !s->cfg->user_channels)
        return;
    char name[RC_PROTO_MAX_CHANNEL + 1];
    int n = snprintf(name, sizeof(name), "user:%s", user);
    /* A user id that cannot be part of a channel name gets no user channel. */
    if (n < 0 || !rc_proto_name_valid(name, (size_t)n, s->cfg->max_channel_len))
        return;
    rc_chan_join_quiet(s, c, (rc_str){name, (size_t)n});
}

void rc_op_opened(rc_shard *s, rc_conn *c)
{
    rc_events_conn_opened(s, c);
    rc_op_join_user(s, c);
}

void rc_op_end(rc_shard *s, rc_conn *c)
{
    rc_events_conn_closed(s, c);
    rc_wait_conn_gone(s, c);
    rc_chan_leave_all(s, c);
}
