/* Thread: any thread: it renders every counter with relaxed loads (on the shard that took the
 * request). */
#include "http/prometheus.h"

#include "engine/metrics.h"

#include <stdarg.h>
#include <string.h>

#include "engine/node.h"
#include "engine/relay.h"
#include "engine/shard.h"

static const uint16_t close_codes[RC_N_CLOSE_CODES] = RC_CLOSE_CODES;

static const char *hs_name(int outcome)
{
    static const char *names[RC_HS__COUNT] = {
        "ok",        "bad_request", "unauthorized",     "forbidden",
        "not_found", "timeout",     "upgrade_required", "rate_limited",
        "too_large", "full",        "version",          "draining",
    };
    return outcome >= 0 && outcome < RC_HS__COUNT ? names[outcome] : "other";
}

/* A growing text buffer. */
typedef struct out {
    char *p;
    size_t len, cap;
} out;

static void put(out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(out *o, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < o->cap - o->len) {
            o->len += (size_t)n;
            return;
        }
        o->cap *= 2;
        o->p = rc_realloc(o->p, o->cap);
    }
}

static void head(out *o, const char *name, const char *type, const char *help)
{
    put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One metric with a shard label, for every shard. */
#define PER_SHARD(o, node, name, type, help, field)                                                \
    do {                                                                                           \
        head(o, name, type, help);                                                                 \
        for (int i_ = 0; i_ < (node)->nshards; i_++)                                               \
            put(o, "%s{shard=\"%d\"} %llu\n", name, i_,                                            \
                (unsigned long long)rc_counter_get(&(node)->shards[i_]->stats.field));             \
    } while (0)

static uint64_t sum(const rc_node *node, size_t offset)
{
    uint64_t t = 0;
    for (int i = 0; i < node->nshards; i++)
        t += rc_counter_get((const rc_counter *)((const char *)&node->shards[i]->stats + offset));
    return t;
}

#define TOTAL(o, node, name, type, help, field)                                                    \
    do {                                                                                           \
        head(o, name, type, help);                                                                 \
        put(o, "%s %llu\n", name, (unsigned long long)sum(node, offsetof(rc_shard_stats, field))); \
    } while (0)

/* One line of a labelled metric: element k of a counter array in the
 * shards' stats (at offset), summed over the shards. */
static void labelled(out *o, const rc_node *node, const char *name, const char *label,
                     const char *value, size_t offset, int k)
{
    put(o, "%s{%s=\"%s\"} %llu\n", name, label, value,
        (unsigned long long)sum(node, offset + (size_t)k * sizeof(rc_counter)));
}

#define SINGLE(o, name, type, help, v)                                                             \
    do {                                                                                           \
        head(o, name, type, help);                                                                 \
        put(o, "%s %llu\n", name, (unsigned long long)(v));                                        \
    } while (0)

/* A single-valued metric read from an rc_counter at offset off of a stats
 * struct. */
typedef struct metric_def {
    const char *name, *type, *help;
    size_t off;
} metric_def;

static void render_defs(out *o, const metric_def *d, size_t n, const void *stats)
{
    for (size_t i = 0; i < n; i++)
        SINGLE(o, d[i].name, d[i].type, d[i].help,
               rc_counter_get((const rc_counter *)((const char *)stats + d[i].off)));
}

static const metric_def redis_metrics[] = {
#define M(n, t, f, h)                                                                              \
    {                                                                                              \
        "ringcast_redis_" n, t, h, offsetof(rc_bridge_stats, f)                                    \
    }
    M("pipeline_depth", "gauge", pipeline_depth,
      "Commands sent on the command connection and not yet answered."),
    M("subscriptions", "gauge", subscriptions,
      "Redis channels this node is subscribed to (confirmed)."),
    M("messages_in_total", "counter", messages_in, "Pub/sub messages received from Redis."),
    M("echoes_total", "counter", echoes,
      "Of those, this node's own publishes (dropped: delivered locally already)."),
    M("bad_messages_total", "counter", bad_messages,
      "Of those, payloads that are not a valid envelope (dropped)."),
    M("unwanted_total", "counter", unwanted,
      "Of those, for a channel the node had just left (dropped)."),
    M("messages_out_total", "counter", messages_out, "PUBLISH commands sent to Redis."),
    M("publish_dropped_total", "counter", publish_dropped,
      "Publishes not carried to Redis: the backlog was full, or the connection dropped before "
      "Redis answered."),
    M("publish_errors_total", "counter", publish_errors, "Error replies to PUBLISH."),
    M("backlog_bytes", "gauge", backlog_bytes, "Publish bytes held for Redis or not yet sent."),
    M("reconnects_total", "counter", reconnects, "Redis connections re-established after a loss."),
    M("connect_failures_total", "counter", connect_failures, "Failed Redis connection attempts."),
    M("cluster_primaries", "gauge", cluster_primaries,
      "Redis Cluster primaries the command link routes to (0 with one Redis)."),
    M("cluster_primaries_up", "gauge", cluster_primaries_up,
      "Of those, primaries whose command connection is ready."),
    M("cluster_slots_covered", "gauge", cluster_slots,
      "Hash slots with a primary in the last slot map read (0 with one Redis)."),
    M("cluster_moved_total", "counter", cluster_moved,
      "Commands sent again to the node a MOVED reply named."),
    M("cluster_ask_total", "counter", cluster_asked,
      "Commands sent once to the node an ASK reply named (a slot being migrated)."),
    M("cluster_retries_total", "counter", cluster_retries,
      "Commands sent again after TRYAGAIN, CLUSTERDOWN or LOADING."),
    M("cluster_gave_up_total", "counter", cluster_gave_up,
      "Commands that ran out of redirects or time (10 s): their fate is unknown."),
    M("cluster_map_reads_total", "counter", cluster_refreshes,
      "Slot maps read (CLUSTER SLOTS): at start, after a redirect, a dropped connection or "
      "subscription, and every 10 s."),
#undef M
};

static void render_redis(out *o, const rc_bridge_stats *b)
{
    head(o, "ringcast_redis_up", "gauge", "1 while the Redis connection is ready.");
    put(o, "ringcast_redis_up{conn=\"command\"} %llu\n",
        (unsigned long long)rc_counter_get(&b->up_command));
    put(o, "ringcast_redis_up{conn=\"subscriber\"} %llu\n",
        (unsigned long long)rc_counter_get(&b->up_subscriber));
    head(o, "ringcast_redis_rtt_seconds", "gauge", "Round trip of the last PING.");
    put(o, "ringcast_redis_rtt_seconds{conn=\"command\"} %.6f\n",
        (double)rc_counter_get(&b->rtt_us_command) / 1e6);
    put(o, "ringcast_redis_rtt_seconds{conn=\"subscriber\"} %.6f\n",
        (double)rc_counter_get(&b->rtt_us_subscriber) / 1e6);
    render_defs(o, redis_metrics, RC_ARRAY_LEN(redis_metrics), b);
}

static const metric_def adm_metrics[] = {
#define M(n, t, f, h)                                                                              \
    {                                                                                              \
        "ringcast_admission_" n, t, h, offsetof(rc_admission_stats, f)                             \
    }
    M("up", "gauge", up, "1 while the waiting rooms' Redis connection is ready."),
    M("leader", "gauge", leader, "1 while this node leads at least one queue (holds its lease)."),
    M("leader_queues", "gauge", leader_queues,
      "Queues whose admission lease this node held at its last tick."),
    M("ticks_total", "counter", ticks, "Admission ticks sent (every node sends them)."),
    M("round_trips_total", "counter", round_trips, "Redis round trips made by ticks."),
    M("late_ticks_total", "counter", late_ticks,
      "Ticks skipped because the previous one was still unanswered."),
    M("replicated_ticks_total", "counter", replicated_ticks,
      "Ticks announced once a replica of their Redis Cluster primary confirmed them (WAIT)."),
    M("unconfirmed_ticks_total", "counter", unconfirmed_ticks,
      "Ticks of queues whose Redis Cluster primary has replicas that no replica confirmed "
      "within 100 ms (WAIT): not announced, so a failover cannot take back what waiters saw."),
    M("admitted_total", "counter", admitted, "Users admitted by this node as leader."),
    M("abandoned_total", "counter", abandoned, "Waiters removed by this node as leader."),
    M("joins_total", "counter", joins, "Joins answered (waiting or admitted)."),
    M("join_errors_total", "counter", join_errors, "Joins refused (no queue, Redis away)."),
    M("local_waiters", "gauge", local_waiters, "Distinct users waiting on this node."),
    M("queues", "gauge", queues, "Queues in the index."),
#undef M
};

static void render_admission(out *o, const rc_admission_stats *a)
{
    render_defs(o, adm_metrics, RC_ARRAY_LEN(adm_metrics), a);
    head(o, "ringcast_admission_tick_seconds", "gauge", "Redis round trip of the last tick.");
    put(o, "ringcast_admission_tick_seconds %.6f\n", (double)rc_counter_get(&a->tick_us) / 1e6);
    /* Per queue, from the latest tick this node saw (the same figures as
     * GET /api/queues/{q}). */
    static const metric_def qm[] = {
#define M(n, t, f, h) {"ringcast_queue_" n, t, h, offsetof(rc_qstat, f)}
        M("waiting", "gauge", waiting, "Users in the queue's line."),
        M("active", "gauge", active, "Users admitted and not yet expired."),
        M("head", "gauge", head, "The ticket of the last user who left the line."),
        M("last_ticket", "gauge", last_ticket, "The last ticket given."),
        M("admitted_total", "counter", admitted_total, "Users admitted, all nodes."),
        M("abandoned_total", "counter", abandoned_total, "Waiters removed as gone."),
        M("rate", "gauge", rate, "Configured admissions per tick."),
        M("max_active", "gauge", max_active, "Configured cap on active users."),
        M("open", "gauge", open, "1 when open, 0 when paused."),
#undef M
    };
    for (size_t k = 0; k < RC_ARRAY_LEN(qm); k++) {
        head(o, qm[k].name, qm[k].type, qm[k].help);
        for (int i = 0; i < RC_QSTAT_MAX && rc_flag_get(&a->q[i].used); i++)
            put(o, "%s{queue=\"%s\"} %llu\n", qm[k].name, a->q[i].name,
                (unsigned long long)rc_counter_get(
                    (const rc_counter *)((const char *)&a->q[i] + qm[k].off)));
    }
}

/* permessage-deflate: negotiation, what the shards sent compressed, what
 * they inflated or refused, and per publication what the relay compressed. */
static void render_deflate(out *o, rc_node *node, const rc_chan_relay_stats *cs)
{
    TOTAL(o, node, "ringcast_deflate_connections", "gauge",
          "Open connections that negotiated permessage-deflate.", deflate_conns);
    TOTAL(o, node, "ringcast_deflate_negotiated_total", "counter",
          "Upgrades that negotiated permessage-deflate.", deflate_negotiated);
    static const char *const decl[RC_PMD_DECL__COUNT] = {"disabled", "offer", "client"};
    head(o, "ringcast_deflate_declined_total", "counter",
         "Upgrades that offered permessage-deflate and did not get it, by reason.");
    for (int k = 0; k < RC_PMD_DECL__COUNT; k++)
        labelled(o, node, "ringcast_deflate_declined_total", "reason", decl[k],
                 offsetof(rc_shard_stats, deflate_declined), k);
    SINGLE(o, "ringcast_deflate_publications_total", "counter",
           "Publications compressed (once each, for every connection that negotiated it).",
           rc_counter_get(&cs->deflate_compressed));
    SINGLE(o, "ringcast_deflate_small_total", "counter",
           "Publications sent uncompressed because their payload is under --deflate-min-bytes.",
           rc_counter_get(&cs->deflate_small));
    SINGLE(o, "ringcast_deflate_not_smaller_total", "counter",
           "Publications sent uncompressed because compressing did not make them shorter.",
           rc_counter_get(&cs->deflate_not_smaller));
    SINGLE(o, "ringcast_deflate_payload_bytes_in_total", "counter",
           "Payload bytes of the compressed publications, before compression.",
           rc_counter_get(&cs->deflate_bytes_in));
    SINGLE(o, "ringcast_deflate_payload_bytes_out_total", "counter",
           "Payload bytes of the compressed publications, after compression.",
           rc_counter_get(&cs->deflate_bytes_out));
    TOTAL(o, node, "ringcast_deflate_frames_total", "counter",
          "Compressed frames queued to clients.", deflate_frames);
    TOTAL(o, node, "ringcast_deflate_frame_bytes_total", "counter",
          "Bytes of the compressed frames queued to clients.", deflate_frame_bytes);
    TOTAL(o, node, "ringcast_deflate_frame_plain_bytes_total", "counter",
          "Bytes those frames would have taken uncompressed.", deflate_plain_bytes);
    TOTAL(o, node, "ringcast_inflated_total", "counter", "Compressed client messages inflated.",
          inflated);
    static const char *const ref[RC_PMD_REF__COUNT] = {"too_big", "bad_data", "rsv1"};
    head(o, "ringcast_inflate_refused_total", "counter",
         "Client messages refused by permessage-deflate, by reason (too_big: 1009, bad_data: "
         "1007, rsv1: 1002).");
    for (int k = 0; k < RC_PMD_REF__COUNT; k++)
        labelled(o, node, "ringcast_inflate_refused_total", "reason", ref[k],
                 offsetof(rc_shard_stats, inflate_refused), k);
}

static void render_history(out *o, const rc_chan_relay_stats *cs)
{
    SINGLE(o, "ringcast_history_writes_total", "counter",
           "Publications kept in a channel's history.", rc_counter_get(&cs->history_writes));
    SINGLE(o, "ringcast_history_reads_total", "counter",
           "History questions answered (positions, recoveries, history requests).",
           rc_counter_get(&cs->history_reads));
    head(o, "ringcast_recoveries_total", "counter",
         "Subscribes and history requests with since, by outcome.");
    for (int k = 0; k < RC_REC__COUNT; k++)
        put(o, "ringcast_recoveries_total{outcome=\"%s\"} %llu\n", rc_recovery_name(k),
            (unsigned long long)rc_counter_get(&cs->recoveries[k]));
    SINGLE(o, "ringcast_history_cached_total", "counter",
           "With Redis: history questions answered from what the node saw go by.",
           rc_counter_get(&cs->history_cached));
    SINGLE(o, "ringcast_history_coalesced_total", "counter",
           "With Redis: history questions that waited for a read another one asked for.",
           rc_counter_get(&cs->history_coalesced));
    SINGLE(o, "ringcast_history_channels", "gauge", "Channels with a history record.",
           rc_counter_get(&cs->history_channels));
    SINGLE(o, "ringcast_history_publications", "gauge", "Publications kept in histories.",
           rc_counter_get(&cs->history_entries));
    SINGLE(o, "ringcast_history_bytes", "gauge", "Bytes of the publications kept.",
           rc_counter_get(&cs->history_bytes));
}

static void render_presence(out *o, const rc_presence_stats *ps)
{
    SINGLE(o, "ringcast_presence_joins_total", "counter",
           "Connections that joined a channel with presence on this node.",
           rc_counter_get(&ps->joins));
    SINGLE(o, "ringcast_presence_leaves_total", "counter",
           "Connections that left a channel with presence on this node.",
           rc_counter_get(&ps->leaves));
    SINGLE(o, "ringcast_presence_stats_reads_total", "counter",
           "presence_stats questions answered (requests and the HTTP API).",
           rc_counter_get(&ps->stats_reads));
    SINGLE(o, "ringcast_presence_page_reads_total", "counter",
           "presence questions answered (pages of members).", rc_counter_get(&ps->page_reads));
    SINGLE(o, "ringcast_presence_coalesced_total", "counter",
           "With Redis: presence_stats questions that waited for a read another one asked for.",
           rc_counter_get(&ps->coalesced));
    SINGLE(o, "ringcast_presence_redis_calls_total", "counter",
           "With Redis: presence scripts run (joins, leaves, refreshes, reads).",
           rc_counter_get(&ps->redis_calls));
    SINGLE(o, "ringcast_presence_unavailable_total", "counter",
           "Presence questions answered presence_unavailable (Redis away).",
           rc_counter_get(&ps->unavailable));
    SINGLE(o, "ringcast_presence_events_total", "counter",
           "Join and leave events handed to this node's members (one per event).",
           rc_counter_get(&ps->events));
    SINGLE(o, "ringcast_presence_channels", "gauge",
           "Channels with presence members (or questions) on this node.",
           rc_counter_get(&ps->channels));
    SINGLE(o, "ringcast_presence_members", "gauge",
           "This node's presence members, all channels (one per connection per channel).",
           rc_counter_get(&ps->members));
    SINGLE(o, "ringcast_presence_largest", "gauge",
           "This node's members of its largest presence channel.", rc_counter_get(&ps->largest));
}

char *rc_metrics_render(struct rc_node *node, size_t *len)
{
    out o = {rc_malloc(16384), 0, 16384};
    o.p[0] = '\0';
    head(&o, "ringcast_info", "gauge", "Build and node identity.");
    put(&o, "ringcast_info{version=\"0.1.0\",node=\"%s\",shards=\"%d\"} 1\n", node->cfg->node_id,
        node->nshards);
    head(&o, "ringcast_uptime_seconds", "gauge", "Seconds since the node started.");
    put(&o, "ringcast_uptime_seconds %lld\n",
        (long long)((rc_wall_ms() - node->started_ms) / 1000));
    head(&o, "ringcast_draining", "gauge", "1 while the node drains after SIGTERM.");
    put(&o, "ringcast_draining %d\n", rc_flag_get(&node->draining));
    SINGLE(&o, "ringcast_signals_ignored_total", "counter",
           "SIGHUP, SIGUSR1 and SIGUSR2 received: logged, the node keeps serving.",
           rc_counter_get(&node->signals_ignored));

    PER_SHARD(&o, node, "ringcast_connections", "gauge",
              "Connections in any state (HTTP, WebSocket, closing).", conns_open);
    PER_SHARD(&o, node, "ringcast_websockets", "gauge", "Open WebSocket connections.", ws_open);
    PER_SHARD(&o, node, "ringcast_accepted_total", "counter", "Connections accepted.", accepted);
    TOTAL(&o, node, "ringcast_accept_errors_total", "counter", "Failed accepts.", accept_errors);

    head(&o, "ringcast_handshakes_total", "counter",
         "WebSocket handshakes and connection refusals by outcome.");
    for (int k = 0; k < RC_HS__COUNT; k++)
        labelled(&o, node, "ringcast_handshakes_total", "outcome", hs_name(k),
                 offsetof(rc_shard_stats, handshakes), k);
    TOTAL(&o, node, "ringcast_http_requests_total", "counter",
          "Plain HTTP requests answered (health, metrics, API).", http_requests);

    TOTAL(&o, node, "ringcast_messages_in_total", "counter", "WebSocket messages from clients.",
          msgs_in);
    TOTAL(&o, node, "ringcast_bytes_in_total", "counter", "Bytes received from clients.", bytes_in);
    TOTAL(&o, node, "ringcast_frames_out_total", "counter",
          "Frames queued to clients (messages, replies, control).", msgs_out);
    TOTAL(&o, node, "ringcast_bytes_out_total", "counter", "Bytes sent to clients.", bytes_out);
    TOTAL(&o, node, "ringcast_sends_total", "counter",
          "Send operations (each may carry many frames).", sends);
    TOTAL(&o, node, "ringcast_send_frames_merged_total", "counter",
          "Small frames waiting for one connection copied into a single segment of its send.",
          frames_merged);
    TOTAL(&o, node, "ringcast_deliveries_total", "counter",
          "Channel messages queued to subscribers.", deliveries);
    TOTAL(&o, node, "ringcast_publishes_total", "counter",
          "Publishes accepted from clients and the HTTP API.", publishes);
    TOTAL(&o, node, "ringcast_event_replies_delivered_total", "counter",
          "Backends' replies handed to their connection.", replies_delivered);
    TOTAL(&o, node, "ringcast_event_replies_gone_total", "counter",
          "Backends' replies for a connection no longer there (dropped).", replies_gone);
    TOTAL(&o, node, "ringcast_connections_moved_total", "counter",
          "Connections handed to the shard that holds their session (Engine.IO polling).",
          conns_moved);
    TOTAL(&o, node, "ringcast_connection_moves_failed_total", "counter",
          "Moves to another shard that failed (answered 503 Retry-After by the shard that had "
          "the request).",
          conns_move_failed);
    TOTAL(&o, node, "ringcast_socketio_polling_sessions", "gauge",
          "Engine.IO long-polling sessions (no socket of their own).", sio_polling);
    TOTAL(&o, node, "ringcast_socketio_connections", "gauge",
          "Socket.IO (Engine.IO) connections open.", sio_open);
    TOTAL(&o, node, "ringcast_socketio_connects_total", "counter",
          "Socket.IO namespace CONNECTs accepted.", sio_connects);
    TOTAL(&o, node, "ringcast_socketio_connect_errors_total", "counter",
          "Socket.IO CONNECTs refused with CONNECT_ERROR (bad token, unknown namespace).",
          sio_connect_errors);
    TOTAL(&o, node, "ringcast_socketio_bad_packets_total", "counter",
          "Malformed Engine.IO or Socket.IO packets (the connection is closed).", sio_bad_packets);
    TOTAL(&o, node, "ringcast_socketio_binary_refused_total", "counter",
          "Socket.IO packets with binary attachments, refused.", sio_binary_refused);
    TOTAL(&o, node, "ringcast_socketio_emitter_reached_total", "counter",
          "Socket.IO sessions reached by the emitter's broadcasts (several rooms, a namespace, "
          "except) and remote join, leave and disconnect, one per message each.",
          sio_emitter_reached);
    head(&o, "ringcast_socketio_recoveries_total", "counter",
         "Socket.IO CONNECTs that asked to recover a session (pid and offset), by outcome.");
    for (int k = 0; k < RC_SIO_REC__COUNT; k++)
        labelled(&o, node, "ringcast_socketio_recoveries_total", "outcome", rc_sio_rec_name(k),
                 offsetof(rc_shard_stats, sio_recoveries), k);
    head(&o, "ringcast_socketio_upgrades_total", "counter",
         "WebSockets opened to upgrade a polling session, by outcome (upgraded; timeout: no "
         "probe and upgrade within a ping interval and timeout; refused: another one has the "
         "session).");
    static const char *const upg[RC_SIO_UPG__COUNT] = {"upgraded", "timeout", "refused"};
    for (int k = 0; k < RC_SIO_UPG__COUNT; k++)
        labelled(&o, node, "ringcast_socketio_upgrades_total", "outcome", upg[k],
                 offsetof(rc_shard_stats, sio_upgrades), k);
    TOTAL(&o, node, "ringcast_token_refresh_asked_total", "counter",
          "Clients asked for a new token --token-refresh-notice seconds before exp.",
          refresh_asked);
    TOTAL(&o, node, "ringcast_token_refreshed_total", "counter",
          "Tokens replaced on an open connection (refresh).", refreshed);
    TOTAL(&o, node, "ringcast_token_refresh_refused_total", "counter",
          "Refresh requests refused (a bad token, or another user's).", refresh_refused);
    TOTAL(&o, node, "ringcast_control_connections_total", "counter",
          "Connections a server-side command (disconnect, subscribe, unsubscribe) applied to.",
          controlled);
    TOTAL(&o, node, "ringcast_presence_shard_coalesced_total", "counter",
          "presence_stats requests answered by a question their shard already had in flight.",
          presence_coalesced);

    TOTAL(&o, node, "ringcast_backlog_closes_total", "counter",
          "Connections closed because their send backlog was full.", backlog_closes);
    TOTAL(&o, node, "ringcast_backlog_drops_total", "counter",
          "Messages dropped (drop policy) because a send backlog was full.", backlog_drops);
    PER_SHARD(&o, node, "ringcast_backlog_bytes", "gauge",
              "Bytes queued to clients and not yet sent.", backlog_bytes);

    head(&o, "ringcast_protocol_errors_total", "counter", "Error replies sent, by code.");
    for (int k = 1; k < RC_PERR__COUNT; k++)
        labelled(&o, node, "ringcast_protocol_errors_total", "code", rc_proto_errname(k),
                 offsetof(rc_shard_stats, proto_errors), k);
    head(&o, "ringcast_ws_closes_total", "counter", "Close frames sent, by close code.");
    for (int k = 0; k <= RC_N_CLOSE_CODES; k++) {
        char code[16];
        if (k < RC_N_CLOSE_CODES)
            snprintf(code, sizeof(code), "%u", close_codes[k]);
        else
            snprintf(code, sizeof(code), "other");
        labelled(&o, node, "ringcast_ws_closes_total", "code", code,
                 offsetof(rc_shard_stats, closes), k);
    }
    TOTAL(&o, node, "ringcast_pings_sent_total", "counter", "Server heartbeat pings.", pings_sent);
    TOTAL(&o, node, "ringcast_heartbeat_timeouts_total", "counter",
          "Connections closed for a missing pong.", heartbeat_timeouts);
    TOTAL(&o, node, "ringcast_token_expiries_total", "counter",
          "Connections closed because their token expired.", token_expiries);
    PER_SHARD(&o, node, "ringcast_rooms", "gauge", "Channels with members on the shard.", rooms);
    PER_SHARD(&o, node, "ringcast_waiters", "gauge", "Connections waiting in a queue.", waiters);
    TOTAL(&o, node, "ringcast_admission_tokens_total", "counter",
          "Admission tokens handed to connections.", admitted);
    PER_SHARD(&o, node, "ringcast_subscriptions", "gauge", "Channel memberships.", subscriptions);
    PER_SHARD(&o, node, "ringcast_ws_sessions", "gauge",
              "WebSocket parser contexts lent to connections mid-message.", ws_sessions);
    PER_SHARD(&o, node, "ringcast_held_connections", "gauge",
              "Connections whose request waits for the relay (their next requests wait).",
              held_conns);
    TOTAL(&o, node, "ringcast_deferred_requests_total", "counter",
          "Requests handled after an earlier request of the same connection was answered.",
          deferred);
    TOTAL(&o, node, "ringcast_deferred_closes_total", "counter",
          "Connections closed (1008) for sending too many requests while one waited.",
          defer_closes);
    TOTAL(&o, node, "ringcast_recv_nobufs_total", "counter",
          "Receives re-armed after the provided buffers ran out.", recv_nobufs);
    PER_SHARD(&o, node, "ringcast_recv_buffers", "gauge",
              "Receive buffers in circulation (the pool grows with use, up to "
              "--recv-buf-count, and shrinks when use falls).",
              recv_buffers);
    TOTAL(&o, node, "ringcast_conn_table_pages_trimmed_total", "counter",
          "Pages of the connection table given back to the kernel after every slot on them "
          "was freed.",
          table_trimmed);
    PER_SHARD(&o, node, "ringcast_send_waiting_connections", "gauge",
              "Connections with output waiting for their turn in the shard's sweep of sends "
              "(a broadcast to many connections takes several turns of the loop).",
              send_waiting);

    head(&o, "ringcast_relay_queue_depth", "gauge", "Items waiting in the shard/relay queues.");
    for (int i = 0; i < node->nshards; i++) {
        put(&o, "ringcast_relay_queue_depth{shard=\"%d\",direction=\"to_relay\"} %zu\n", i,
            rc_spsc_depth(&node->links[i].to_relay));
        put(&o, "ringcast_relay_queue_depth{shard=\"%d\",direction=\"to_shard\"} %zu\n", i,
            rc_spsc_depth(&node->links[i].to_shard));
    }
    TOTAL(&o, node, "ringcast_relay_queue_full_total", "counter",
          "Pushes refused by a full shard-to-relay queue.", relay_full);
    PER_SHARD(&o, node, "ringcast_relay_backlog", "gauge",
              "Subscription changes waiting for room in the shard-to-relay queue.", relay_backlog);
    const rc_relay_stats *rs = rc_relay_get_stats(node->relay);
    head(&o, "ringcast_relay_publishes_total", "counter", "Publishes handled by the relay.");
    put(&o, "ringcast_relay_publishes_total %llu\n",
        (unsigned long long)rc_counter_get(&rs->chans.publishes));
    head(&o, "ringcast_relay_no_members_total", "counter",
         "Publishes to channels with no member on this node.");
    put(&o, "ringcast_relay_no_members_total %llu\n",
        (unsigned long long)rc_counter_get(&rs->chans.no_members));
    head(&o, "ringcast_relay_channels", "gauge", "Channels with members on this node.");
    put(&o, "ringcast_relay_channels %llu\n",
        (unsigned long long)rc_counter_get(&rs->chans.channels));
    SINGLE(&o, "ringcast_socketio_sessions_kept_total", "counter",
           "Socket.IO sessions kept for recovery when their connection ended.",
           rc_counter_get(&rs->sio_keeper.saved));
    SINGLE(&o, "ringcast_socketio_sessions_dropped_total", "counter",
           "Socket.IO sessions that could not be kept (Redis away, or the memory table full).",
           rc_counter_get(&rs->sio_keeper.dropped));
    SINGLE(&o, "ringcast_socketio_sessions_held", "gauge",
           "Socket.IO sessions kept in the node's memory (without Redis).",
           rc_counter_get(&rs->sio_keeper.held));
    head(&o, "ringcast_socketio_emitter_messages_total", "counter",
         "Messages of Socket.IO's Redis emitter, by kind (room, rooms, namespace, join, leave, "
         "disconnect, server_side_emit, other) and outcome (applied, refused).");
    for (int k = 0; k < RC_SIO_EM__COUNT; k++) {
        put(&o, "ringcast_socketio_emitter_messages_total{kind=\"%s\",outcome=\"applied\"} %llu\n",
            rc_sio_em_kind_name(k),
            (unsigned long long)rc_counter_get(&rs->sio_emitter.applied[k]));
        put(&o, "ringcast_socketio_emitter_messages_total{kind=\"%s\",outcome=\"refused\"} %llu\n",
            rc_sio_em_kind_name(k),
            (unsigned long long)rc_counter_get(&rs->sio_emitter.refused[k]));
    }
    head(&o, "ringcast_relay_overflow", "gauge",
         "Items the relay holds because a shard's queue was full.");
    put(&o, "ringcast_relay_overflow %llu\n",
        (unsigned long long)rc_counter_get(&rs->out.overflow));
    head(&o, "ringcast_relay_dropped_total", "counter",
         "Messages dropped for a shard whose overflow was full (members were told).");
    put(&o, "ringcast_relay_dropped_total %llu\n",
        (unsigned long long)rc_counter_get(&rs->out.dropped));
    render_history(&o, &rs->chans);
    render_deflate(&o, node, &rs->chans);
    render_presence(&o, &rs->chans.presence);
    if (rs->redis) {
        render_admission(&o, &rs->admission);
        render_redis(&o, &rs->bridge);
        SINGLE(&o, "ringcast_events_stored_total", "counter",
               "Client events appended to their stream.", rc_counter_get(&rs->events.stored));
        SINGLE(&o, "ringcast_events_stream_full_total", "counter",
               "Client events refused: the stream held its maxlen.",
               rc_counter_get(&rs->events.full));
        SINGLE(&o, "ringcast_events_failed_total", "counter",
               "Client events refused: Redis away, or an error.",
               rc_counter_get(&rs->events.failed));
        SINGLE(&o, "ringcast_event_replies_in_total", "counter",
               "Replies that came on this node's reply channel.",
               rc_counter_get(&rs->events.replies_in));
        SINGLE(&o, "ringcast_event_replies_bad_total", "counter",
               "Replies dropped: unreadable, or not for this node.",
               rc_counter_get(&rs->events.replies_bad));
        SINGLE(&o, "ringcast_lifecycle_written_total", "counter",
               "Connect and disconnect events of this node's connections written.",
               rc_counter_get(&rs->lifecycle.written));
        SINGLE(&o, "ringcast_lifecycle_dropped_total", "counter",
               "Lifecycle events dropped: the stream held --lifecycle-maxlen.",
               rc_counter_get(&rs->lifecycle.dropped));
        SINGLE(&o, "ringcast_lifecycle_node_lost_total", "counter",
               "Disconnects this node wrote for the connections of nodes that went silent.",
               rc_counter_get(&rs->lifecycle.taken));
        SINGLE(&o, "ringcast_lifecycle_declared_dead_total", "counter",
               "Times this node found itself reported dead after a silence.",
               rc_counter_get(&rs->lifecycle.declared));
        SINGLE(&o, "ringcast_control_commands_total", "counter",
               "Server-side commands this node applied (from any node).",
               rc_counter_get(&rs->events.controls));
        SINGLE(&o, "ringcast_event_replies_out_total", "counter",
               "Replies from this node's HTTP API sent on through Redis.",
               rc_counter_get(&rs->events.replies_out));
        SINGLE(&o, "ringcast_redis_history_reads_total", "counter",
               "Reads of a channel's history from Redis (one serves every question waiting).",
               rc_counter_get(&rs->bridge.history_reads));
        SINGLE(&o, "ringcast_redis_notices_total", "counter",
               "messages_dropped notices after a Redis reconnect (one per member shard).",
               rc_counter_get(&rs->chans.notices));
    }
    *len = o.len;
    return o.p;
}
