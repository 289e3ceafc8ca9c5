/* ringcast's options: one table drives the defaults, the INI file, the
 * command-line flags and the --help text (engine/config.c reads it), so
 * the four cannot drift apart. Each entry: the flag, its INI section, how
 * its value is read, where it goes in rc_config, its range, its help.
 *
 * Thread: read-only data. */
#include "engine/config_options.h"

#include "engine/config.h"

#define FIELD(f) offsetof(rc_config, f), sizeof(((rc_config *)0)->f)
#define NOFIELD  0, 0
#define U32(n, s, f, lo, hi, h)                                                                    \
    {                                                                                              \
        n, s, K_U32, FIELD(f), lo, hi, 0, 0, "N", h                                                \
    }
#define POW2(n, s, f, lo, hi, h)                                                                   \
    {                                                                                              \
        n, s, K_U32, FIELD(f), lo, hi, 1, 0, "N", h                                                \
    }

const struct opt rc_cfg_opts[] = {
    {"config", NULL, K_CONFIG, NOFIELD, 0, 0, 0, 0, "FILE", "read an INI config file first"},
    {"help", NULL, K_HELP, NOFIELD, 0, 0, 0, 0, NULL, "print this help and exit"},
    {"version", NULL, K_VERSION, NOFIELD, 0, 0, 0, 0, NULL, "print the version and exit"},

    {"listen", "server", K_LISTEN, FIELD(listen_host), 0, 0, 0, 0, "HOST:PORT",
     "[::1]:PORT for IPv6, :PORT for all IPv4 (default 127.0.0.1:8080)"},
    {"ws-path", "server", K_PATH, FIELD(ws_path), 0, 0, 0, 0, "PATH",
     "WebSocket endpoint path (default /ws)"},
    {"shards", "server", K_INT, FIELD(shards), 1, 256, 0, 0, "N",
     "shard threads, 1..256 (default: online CPUs)"},
    {"pin", "server", K_BOOL, FIELD(pin_threads), 0, 1, 0, 1, NULL,
     "pin shard threads to CPUs (default on)"},
    {"no-pin", NULL, K_BOOL, FIELD(pin_threads), 0, 1, 0, 0, NULL, NULL},
    {"node-id", "server", K_NODE_ID, FIELD(node_id), 0, 0, 0, 0, "ID",
     "node id, [A-Za-z0-9._:-] (default HOSTNAME-PID)"},
    {"log-level", "server", K_LOG_LEVEL, FIELD(log_level), 0, 0, 0, 0, "LEVEL",
     "debug|info|warn|error (default info)"},
    {"permessage-deflate", "server", K_BOOL, FIELD(permessage_deflate), 0, 1, 0, 1, NULL,
     "accept permessage-deflate (RFC 7692) when a client offers it (default on)"},
    {"no-permessage-deflate", NULL, K_BOOL, FIELD(permessage_deflate), 0, 1, 0, 0, NULL, NULL},
    U32("deflate-min-bytes", "server", deflate_min_bytes, 0, 64u << 20,
        "publications whose payload is shorter go uncompressed (default 128)"),

    U32("max-connections", "limits", max_connections, 1, 10000000,
        "connections per node (default 100000)"),
    U32("max-conns-per-ip", "limits", max_conns_per_ip, 0, 10000000,
        "connections per client IP, 0 = unlimited (default 0)"),
    U32("handshake-rate", "limits", handshake_rate, 0, 10000000,
        "handshakes per second per node, 0 = unlimited (default 0)"),
    U32("handshake-rate-per-ip", "limits", handshake_rate_per_ip, 0, 10000000,
        "handshakes per second per client IP, 0 = unlimited (default 0)"),
    U32("handshake-timeout-ms", "limits", handshake_timeout_ms, 100, 600000,
        "time allowed for the HTTP upgrade, 100..600000 (default 10000)"),
    U32("max-header-bytes", "limits", max_header_bytes, 1024, 65536,
        "HTTP request head size, 1024..65536 (default 8192)"),
    U32("max-body-bytes", "limits", max_body_bytes, 1, 64u << 20,
        "HTTP API body size, up to 64 MiB (default 65536)"),
    U32("max-message-bytes", "limits", max_message_bytes, 1, 64u << 20,
        "WebSocket message size, up to 64 MiB (default 65536)"),
    U32("max-channels", "limits", max_channels_per_conn, 1, 65536,
        "channels per connection, 1..65536 (default 64)"),
    U32("max-channel-len", "limits", max_channel_len, 1, 256,
        "channel name length, 1..256 (default 128)"),
    U32("msg-rate", "limits", msg_rate, 1, 1000000,
        "client messages per second per connection (default 50)"),
    U32("msg-burst", "limits", msg_burst, 1, 65535,
        "client message burst per connection (default 100)"),
    {"send-backlog-bytes", "limits", K_U64, FIELD(send_backlog_bytes), 4096, 1ull << 32, 0, 0, "N",
     "unsent bytes per connection, 4096..4 GiB (default 1048576)"},
    {"backlog-policy", "limits", K_BACKLOG, FIELD(backlog_policy), 0, 0, 0, 0, "POLICY",
     "past the backlog: close (1008) or drop and notify (default close)"},

    U32("ping-interval-ms", "heartbeat", ping_interval_ms, 0, 3600000,
        "server ping interval, 0 = off (default 25000)"),
    U32("pong-timeout-ms", "heartbeat", pong_timeout_ms, 100, 600000,
        "close when no pong within this (default 10000)"),

    U32("drain-timeout-ms", "lifecycle", drain_timeout_ms, 0, 600000,
        "time to flush clients on SIGTERM (default 10000)"),

    {"jwt-secret", "auth", K_SECRET, FIELD(jwt_secret), 0, 0, 0, 0, "SECRET",
     "HS256 key; prefer RINGCAST_JWT_SECRET (default empty: no tokens)"},
    {"api-key", "auth", K_STRING, FIELD(api_key), 0, 0, 0, 0, "KEY",
     "HTTP API key; prefer RINGCAST_API_KEY (default empty: API off)"},
    {"public", "auth", K_PUBLIC, NOFIELD, 0, 0, 0, 0, "PATTERN",
     "channel pattern anyone may join; repeatable or a comma list (default none)"},
    {"jwt-public-key", "auth", K_STRING, FIELD(jwt_public_key), 0, 0, 0, 0, "FILE",
     "PEM public keys that verify RS256 and ES256 tokens; reread on change and on SIGHUP "
     "(default none)"},
    {"jwks", "auth", K_STRING, FIELD(jwks), 0, 0, 0, 0, "FILE",
     "a JSON Web Key Set whose keys (chosen by the token's kid) verify RS256 and ES256 tokens; "
     "reread on change and on SIGHUP (default none)"},
    U32("token-refresh-notice", "auth", refresh_notice_s, 0, 86400,
        "seconds before a token's exp when the client is asked for a new one (refresh); 0: "
        "never (default 30)"),
    {"jwt-secret-previous", "auth", K_STRING, FIELD(jwt_secret_previous), 0, 0, 0, 0, "SECRET",
     "also accept tokens signed with this (rotation; default none); prefer env"},
    {"allowed-origin", "auth", K_ORIGIN, NOFIELD, 0, 0, 0, 0, "ORIGIN",
     "browser Origin allowed to connect (https://host[:port], https://*.domain, *); repeatable "
     "or a comma list (default: any)"},
    {"anonymous", "auth", K_BOOL, FIELD(allow_anonymous), 0, 1, 0, 1, NULL,
     "let tokenless clients reach public channels (default on)"},
    {"no-anonymous", NULL, K_BOOL, FIELD(allow_anonymous), 0, 1, 0, 0, NULL, NULL},
    {"anonymous-publish", "auth", K_BOOL, FIELD(anonymous_publish), 0, 1, 0, 1, NULL,
     "let them publish there too (default off)"},
    {"no-anonymous-publish", NULL, K_BOOL, FIELD(anonymous_publish), 0, 1, 0, 0, NULL, NULL},
    {"user-channels", "auth", K_BOOL, FIELD(user_channels), 0, 1, 0, 1, NULL,
     "join each token holder to channel user:<sub> (default on)"},
    {"no-user-channels", NULL, K_BOOL, FIELD(user_channels), 0, 1, 0, 0, NULL, NULL},

    {"redis", NULL, K_REDIS_URL, FIELD(redis_url), 0, 0, 0, 0, "URL", NULL},
    {"redis-url", "redis", K_REDIS_URL, FIELD(redis_url), 0, 0, 0, 0, "URL",
     "redis://[user:pass@]host[:port][/db] or unix:///PATH, or a Redis Cluster's seeds "
     "redis://[user:pass@]host:port,host:port,... (one Redis or a cluster: told apart at "
     "connect; default none: single node)"},
    {"redis-prefix", "redis", K_PREFIX, FIELD(redis_prefix), 0, 0, 0, 0, "PREFIX",
     "prefix of ringcast's Redis keys and channels (default rc:)"},
    {"redis-backlog-bytes", "redis", K_U64, FIELD(redis_backlog_bytes), 0, 1ull << 32, 0, 0, "N",
     "publishes held for Redis while it is away, 0..4 GiB (default 8388608)"},
    U32("redis-ping-ms", "redis", redis_ping_ms, 100, 60000,
        "Redis PING interval; 3 unanswered drop the link (default 1000)"),

    {"admission-secret", "admission", K_STRING, FIELD(admission_secret), 0, 0, 0, 0, "SECRET",
     "HMAC key of admission tokens; prefer RINGCAST_ADMISSION_SECRET (default empty: no joins)"},
    {"admission-secret-previous", "admission", K_STRING, FIELD(admission_secret_previous), 0, 0, 0,
     0, "SECRET", "verify also accepts this (rotation; default none); prefer env"},
    U32("admission-tick-ms", "admission", admission_tick_ms, 100, 10000,
        "waiting-room admission period (default 1000)"),

    {"history", "channels", K_HISTORY, NOFIELD, 0, 0, 0, 0, "RULE",
     "'PATTERN size=N ttl=SECONDS': keep the last N (1..100000) publications of matching "
     "channels for SECONDS (1..2592000) after the last one; repeatable, first match wins "
     "(default none: no history)"},
    U32("recovery-max", "channels", recovery_max, 1, 100000,
        "publications one recovery or history request may return (default 1000)"),
    U32("history-meta-ttl", "channels", history_meta_ttl_s, 60, 31536000,
        "seconds a channel's epoch and offset outlive its last publication (default 2592000)"),
    {"presence", "channels", K_PRESENCE, NOFIELD, 0, 0, 0, 0, "RULE",
     "'PATTERN [join_leave]': matching channels keep who is here (presence and presence_stats "
     "requests); join_leave also tells members of each join and leave; repeatable, first match "
     "wins (default none: no presence)"},
    {"deflate", "channels", K_DEFLATE, NOFIELD, 0, 0, 0, 0, "RULE",
     "'PATTERN on|off': whether publications on matching channels are compressed for clients "
     "that negotiated permessage-deflate; repeatable, first match wins (default: on)"},
    U32("presence-ttl", "channels", presence_ttl_s, 3, 3600,
        "seconds after which a member its node stopped refreshing is gone; nodes refresh every "
        "third of it (default 30)"),
    U32("presence-page-max", "channels", presence_page_max, 1, 10000,
        "members one presence page may hold (default 1000)"),

    {"event-stream", "events", K_EVENT, NOFIELD, 0, 0, 0, 0, "RULE",
     "'PATTERN STREAM [maxlen=N]': client events named like PATTERN go to the Redis stream "
     "PREFIX ev:STREAM, which holds at most N (default 100000) unread and unremoved entries; "
     "repeatable, first match wins (default none: client events refused)"},
    U32("event-max-bytes", "events", event_max_bytes, 16, 1u << 20,
        "largest data of one client event, bytes (default 16384)"),
    {"lifecycle-stream", "events", K_PREFIX, FIELD(lifecycle_stream), 0, 0, 0, 0, "STREAM",
     "with Redis: connect and disconnect events go to the stream PREFIX lc:{lifecycle}:STREAM "
     "(default empty: none)"},
    U32("lifecycle-maxlen", "events", lifecycle_maxlen, 1, 100000000,
        "entries the lifecycle stream may hold; past it events are dropped and counted (default "
        "1000000)"),
    {"lifecycle-subscriptions", "events", K_BOOL, FIELD(lifecycle_subscriptions), 0, 1, 0, 1, NULL,
     "also write subscribe and unsubscribe events to the lifecycle stream (default off)"},
    U32("lifecycle-timeout", "events", lifecycle_timeout_s, 2, 3600,
        "seconds without a node's heartbeat after which another node writes the disconnects of "
        "its connections (default 10)"),

    {"socketio", "socketio", K_BOOL, FIELD(sio_on), 0, 1, 0, 1, NULL,
     "serve Socket.IO v5 clients (Engine.IO v4) on --socketio-path (default on)"},
    {"no-socketio", NULL, K_BOOL, FIELD(sio_on), 0, 1, 0, 0, NULL, NULL},
    {"socketio-path", "socketio", K_PATH, FIELD(sio_path), 0, 0, 0, 0, "PATH",
     "the Socket.IO path (default /socket.io/)"},
    {"socketio-namespace", "socketio", K_SIO_NSP, NOFIELD, 0, 0, 0, 0, "NSP",
     "a namespace besides '/', whose channels are NAME/...; repeatable or a comma list, up to 7 "
     "(default none)"},
    {"socketio-map", "socketio", K_SIO_MAP, NOFIELD, 0, 0, 0, 0, "RULE",
     "'EVENT subscribe|unsubscribe|publish [PREFIX]': the client event EVENT with argument X "
     "acts on channel PREFIX X itself; other events go to --event-stream; repeatable (default "
     "none)"},

    {"socketio-emitter", "socketio", K_PREFIX, FIELD(sio_emitter), 0, 0, 0, 0, "KEY",
     "with Redis: hear @socket.io/redis-emitter publishing with this key (its default is "
     "socket.io) for the rooms with members here (default empty: off)"},
    U32("socketio-recovery", "socketio", sio_recovery_s, 0, 86400,
        "seconds a disconnected Socket.IO session can be recovered (its pid and offset) on "
        "channels with history; 0: off (default 120)"),

    U32("recv-buf-size", "engine", recv_buf_size, 256, 1u << 20,
        "provided receive buffer size, 256..1048576 (default 4096)"),
    POW2("recv-buf-count", "engine", recv_buf_count, 1, 32768,
         "most receive buffers per shard, power of 2 (default 1024; the pool starts at 64 and "
         "grows with use)"),
    POW2("queue-size", "engine", queue_size, 2, 1u << 24,
         "shard/relay queue entries, power of 2 (default 65536)"),
    U32("ring-entries", "engine", ring_entries, 8, 32768,
        "io_uring submission queue size, 8..32768 (default 4096)"),
};

const char *const rc_cfg_sections[] = {"server", "limits",   "heartbeat", "lifecycle",
                                       "auth",   "redis",    "admission", "channels",
                                       "events", "socketio", "engine"};
const char *const rc_cfg_section_titles[] = {"Server", "Limits",    "Heartbeat", "Lifecycle",
                                             "Auth",   "Redis",     "Admission", "Channels",
                                             "Events", "Socket.IO", "Engine"};
const size_t rc_cfg_nopts = sizeof(rc_cfg_opts) / sizeof(rc_cfg_opts[0]);
_Static_assert(sizeof(rc_cfg_opts) / sizeof(rc_cfg_opts[0]) <= RC_CFG_MAX_OPTS,
               "RC_CFG_MAX_OPTS holds the table");
const size_t rc_cfg_nsections = sizeof(rc_cfg_sections) / sizeof(rc_cfg_sections[0]);
_Static_assert(sizeof(rc_cfg_sections) == sizeof(rc_cfg_section_titles),
               "every section has its title in --help");
