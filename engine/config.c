/* ringcast configuration: one table of options drives the defaults, the INI
 * file, the command-line flags and the --help text, so the four cannot drift
 * apart.
 *
 * Thread: the main thread, before any other thread starts; read-only afterwards. */
#include "engine/config.h"
#include "engine/config_values.h"

#include "base/common.h"
#include "redis/url.h"
#include "ws/jwt.h"

#include <errno.h>
#include <getopt.h>
#include <ini.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#define RC_VERSION "0.1.0"

enum kind {
    K_U32,
    K_U64,
    K_INT,
    K_BOOL, /* flag without value sets bval; file value is a boolean */
    K_LISTEN,
    K_PATH,
    K_NODE_ID,
    K_LOG_LEVEL,
    K_BACKLOG,
    K_SECRET, /* jwt_secret with its length */
    K_STRING,
    K_REDIS_URL,
    K_PREFIX,
    K_PUBLIC,
    K_ORIGIN,
    K_HISTORY,
    K_PRESENCE,
    K_EVENT,
    K_SIO_NSP,
    K_SIO_MAP,
    K_CONFIG,
    K_HELP,
    K_VERSION,
};

struct opt {
    const char *name;    /* long flag; the file key is this with '-' -> '_' */
    const char *section; /* NULL: command line only */
    enum kind kind;
    size_t off, size;
    uint64_t min, max;
    int pow2;
    int bval;         /* K_BOOL: what the bare flag sets */
    const char *arg;  /* metavariable in --help; NULL: takes no value */
    const char *help; /* NULL: folded into another line of --help */
};

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

static const struct opt opts[] = {
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
     "redis://[user:pass@]host[:port][/db] or unix:///PATH (default none: single node)"},
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
         "receive buffers per shard, power of 2 (default 1024)"),
    POW2("queue-size", "engine", queue_size, 2, 1u << 24,
         "shard/relay queue entries, power of 2 (default 65536)"),
    U32("ring-entries", "engine", ring_entries, 8, 32768,
        "io_uring submission queue size, 8..32768 (default 4096)"),
};

static const char *const sections[] = {"server", "limits",   "heartbeat", "lifecycle",
                                       "auth",   "redis",    "admission", "channels",
                                       "events", "socketio", "engine"};
static const char *const section_titles[] = {"Server", "Limits",    "Heartbeat", "Lifecycle",
                                             "Auth",   "Redis",     "Admission", "Channels",
                                             "Events", "Socket.IO", "Engine"};
_Static_assert(RC_ARRAY_LEN(sections) == RC_ARRAY_LEN(section_titles),
               "every section has its title in --help");

#define N_OPTS   RC_ARRAY_LEN(opts)
#define OPT_BASE 256 /* getopt val of opts[i] is OPT_BASE + i */

struct loader {
    rc_config *cfg;
    char *err;
    size_t errlen;
    int failed;
    const char *file; /* while reading the config file */
    FILE *f;
    int line;
    int cli_public;   /* a --public flag replaces the file's list */
    int cli_origin;   /* the same for --allowed-origin */
    int cli_history;  /* the same for --history */
    int cli_presence; /* the same for --presence */
    int cli_event;    /* the same for --event-stream */
    int cli_sio_nsp;  /* the same for --socketio-namespace */
    int cli_sio_map;  /* the same for --socketio-map */
};

__attribute__((format(printf, 2, 3))) static void fail(struct loader *L, const char *fmt, ...)
{
    if (L->failed)
        return;
    L->failed = 1;
    if (!L->errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(L->err, L->errlen, fmt, ap);
    va_end(ap);
}

static void *field(rc_config *cfg, const struct opt *o)
{
    return (char *)cfg + o->off;
}

static void clear_history(rc_config *cfg)
{
    for (int i = 0; i < cfg->n_history; i++)
        free(cfg->history[i].pattern);
    memset(cfg->history, 0, sizeof(cfg->history));
    cfg->n_history = 0;
}

static void clear_presence(rc_config *cfg)
{
    for (int i = 0; i < cfg->n_presence; i++)
        free(cfg->presence[i].pattern);
    memset(cfg->presence, 0, sizeof(cfg->presence));
    cfg->n_presence = 0;
}

static void clear_events(rc_config *cfg)
{
    for (int i = 0; i < cfg->n_events; i++) {
        free(cfg->events[i].pattern);
        free(cfg->events[i].stream);
    }
    memset(cfg->events, 0, sizeof(cfg->events));
    cfg->n_events = 0;
}

static void clear_sio_nsps(rc_config *cfg)
{
    for (int i = 0; i < cfg->n_sio_nsps; i++)
        free(cfg->sio_nsps[i]);
    cfg->n_sio_nsps = 0;
}

static void clear_sio_maps(rc_config *cfg)
{
    for (int i = 0; i < cfg->n_sio_maps; i++) {
        free(cfg->sio_maps[i].event);
        free(cfg->sio_maps[i].prefix);
    }
    memset(cfg->sio_maps, 0, sizeof(cfg->sio_maps));
    cfg->n_sio_maps = 0;
}

static void clear_sio(rc_config *cfg)
{
    clear_sio_nsps(cfg);
    clear_sio_maps(cfg);
}

static void clear_public(rc_config *cfg)
{
    rc_cfg_clear_list(cfg->public_patterns, &cfg->n_public_patterns);
    rc_cfg_clear_list(cfg->allowed_origins, &cfg->n_allowed_origins);
    clear_history(cfg);
    clear_presence(cfg);
    clear_events(cfg);
    clear_sio(cfg);
}

const rc_history_rule *rc_config_history(const rc_config *cfg, const char *name, size_t len)
{
    for (int i = 0; i < cfg->n_history; i++)
        if (rc_pattern_match(cfg->history[i].pattern, name, len, NULL))
            return &cfg->history[i];
    return NULL;
}

const rc_event_rule *rc_config_event(const rc_config *cfg, const char *name, size_t len)
{
    for (int i = 0; i < cfg->n_events; i++)
        if (rc_pattern_match(cfg->events[i].pattern, name, len, NULL))
            return &cfg->events[i];
    return NULL;
}

const rc_presence_rule *rc_config_presence(const rc_config *cfg, const char *name, size_t len)
{
    for (int i = 0; i < cfg->n_presence; i++)
        if (rc_pattern_match(cfg->presence[i].pattern, name, len, NULL))
            return &cfg->presence[i];
    return NULL;
}

/* Applies value v to option o. from_flag: v is NULL for flags without a
 * value. On error writes the reason (without the option's name) to msg. */
static int set_value(struct loader *L, const struct opt *o, const char *v, int from_flag, char *msg,
                     size_t ml)
{
    rc_config *cfg = L->cfg;
    uint64_t n;
    switch (o->kind) {
    case K_U32:
    case K_U64:
    case K_INT:
        if (rc_cfg_parse_u64(v, &n) < 0 || n < o->min || n > o->max ||
            (o->pow2 && (n & (n - 1)) != 0)) {
            snprintf(msg, ml, "must be %s in %llu..%llu, got '%.40s'",
                     o->pow2 ? "a power of two" : "an integer", (unsigned long long)o->min,
                     (unsigned long long)o->max, v);
            return -1;
        }
        if (o->kind == K_U32)
            *(uint32_t *)field(cfg, o) = (uint32_t)n;
        else if (o->kind == K_U64)
            *(uint64_t *)field(cfg, o) = n;
        else
            *(int *)field(cfg, o) = (int)n;
        return 0;
    case K_BOOL: {
        int b = o->bval;
        if (!from_flag && rc_cfg_parse_bool(v, &b) < 0) {
            snprintf(msg, ml, "must be true or false, got '%.40s'", v);
            return -1;
        }
        *(int *)field(cfg, o) = b;
        return 0;
    }
    case K_LISTEN: return rc_cfg_parse_listen(cfg, v, msg, ml);
    case K_PATH:
        if (v[0] != '/' || strpbrk(v, "?#%")) {
            snprintf(msg, ml, "must start with '/' and hold no '?', '#' or '%%'");
            return -1;
        }
        for (const char *p = v; *p; p++) {
            if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f) {
                snprintf(msg, ml, "must be visible ASCII");
                return -1;
            }
        }
        return rc_cfg_copy_str(field(cfg, o), o->size, v, msg, ml);
    case K_NODE_ID:
        if (!*v) {
            snprintf(msg, ml, "must not be empty");
            return -1;
        }
        for (const char *p = v; *p; p++) {
            if (!rc_cfg_host_char(*p) && *p != ':') {
                snprintf(msg, ml, "may hold only A-Z a-z 0-9 . _ : -");
                return -1;
            }
        }
        return rc_cfg_copy_str(field(cfg, o), o->size, v, msg, ml);
    case K_LOG_LEVEL: {
        static const char *const lv[] = {"debug", "info", "warn", "error"};
        for (size_t i = 0; i < RC_ARRAY_LEN(lv); i++) {
            if (strcmp(v, lv[i]) == 0) {
                cfg->log_level = (int)i;
                return 0;
            }
        }
        snprintf(msg, ml, "must be debug, info, warn or error, got '%.40s'", v);
        return -1;
    }
    case K_BACKLOG:
        if (strcmp(v, "close") == 0) {
            cfg->backlog_policy = RC_BACKLOG_CLOSE;
        } else if (strcmp(v, "drop") == 0) {
            cfg->backlog_policy = RC_BACKLOG_DROP;
        } else {
            snprintf(msg, ml, "must be close or drop, got '%.40s'", v);
            return -1;
        }
        return 0;
    case K_SECRET:
        if (rc_cfg_copy_str(field(cfg, o), o->size, v, msg, ml) < 0)
            return -1;
        cfg->jwt_secret_len = strlen(v);
        return 0;
    case K_STRING: return rc_cfg_copy_str(field(cfg, o), o->size, v, msg, ml);
    case K_REDIS_URL: {
        rc_redis_url u;
        if (*v && rc_redis_url_parse(v, &u, msg, ml) < 0)
            return -1;
        return rc_cfg_copy_str(field(cfg, o), o->size, v, msg, ml);
    }
    case K_PREFIX:
        for (const char *p = v; *p; p++) {
            if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f) {
                snprintf(msg, ml, "must be visible ASCII");
                return -1;
            }
        }
        return rc_cfg_copy_str(field(cfg, o), o->size, v, msg, ml);
    case K_PUBLIC:
        if (from_flag && !L->cli_public) {
            L->cli_public = 1;
            rc_cfg_clear_list(cfg->public_patterns, &cfg->n_public_patterns);
        }
        return rc_cfg_add_patterns(cfg->public_patterns, &cfg->n_public_patterns, v, msg, ml);
    case K_ORIGIN:
        if (from_flag && !L->cli_origin) {
            L->cli_origin = 1;
            rc_cfg_clear_list(cfg->allowed_origins, &cfg->n_allowed_origins);
        }
        return rc_cfg_add_patterns(cfg->allowed_origins, &cfg->n_allowed_origins, v, msg, ml);
    case K_HISTORY:
        if (from_flag && !L->cli_history) {
            L->cli_history = 1;
            clear_history(cfg);
        }
        if (cfg->n_history >= RC_MAX_PUBLIC_PATTERNS) {
            snprintf(msg, ml, "more than %d history rules", RC_MAX_PUBLIC_PATTERNS);
            return -1;
        }
        if (rc_cfg_parse_history(&cfg->history[cfg->n_history], v, msg, ml) < 0)
            return -1;
        cfg->n_history++;
        return 0;
    case K_EVENT:
        if (from_flag && !L->cli_event) {
            L->cli_event = 1;
            clear_events(cfg);
        }
        if (cfg->n_events >= RC_MAX_PUBLIC_PATTERNS) {
            snprintf(msg, ml, "more than %d event stream rules", RC_MAX_PUBLIC_PATTERNS);
            return -1;
        }
        if (rc_cfg_parse_event(&cfg->events[cfg->n_events], v, msg, ml) < 0)
            return -1;
        cfg->n_events++;
        return 0;
    case K_PRESENCE:
        if (from_flag && !L->cli_presence) {
            L->cli_presence = 1;
            clear_presence(cfg);
        }
        if (cfg->n_presence >= RC_MAX_PUBLIC_PATTERNS) {
            snprintf(msg, ml, "more than %d presence rules", RC_MAX_PUBLIC_PATTERNS);
            return -1;
        }
        if (rc_cfg_parse_presence(&cfg->presence[cfg->n_presence], v, msg, ml) < 0)
            return -1;
        cfg->n_presence++;
        return 0;
    case K_SIO_NSP: {
        if (from_flag && !L->cli_sio_nsp) {
            L->cli_sio_nsp = 1;
            clear_sio_nsps(cfg);
        }
        char *list[RC_MAX_PUBLIC_PATTERNS];
        int got = 0;
        int bad = rc_cfg_add_patterns(list, &got, v, msg, ml) < 0;
        for (int i = 0; i < got; i++) {
            if (!bad && rc_cfg_check_sio_nsp(list[i], msg, ml) < 0)
                bad = 1;
            for (int j = 0; !bad && j < cfg->n_sio_nsps; j++)
                if (strcmp(cfg->sio_nsps[j], list[i]) == 0) {
                    snprintf(msg, ml, "the namespace '%.40s' is given twice", list[i]);
                    bad = 1;
                }
            if (!bad && cfg->n_sio_nsps >= RC_SIO_MAX_NSPS) {
                snprintf(msg, ml, "more than %d namespaces besides '/'", RC_SIO_MAX_NSPS);
                bad = 1;
            }
            if (bad)
                free(list[i]);
            else
                cfg->sio_nsps[cfg->n_sio_nsps++] = list[i];
        }
        return bad ? -1 : 0;
    }
    case K_SIO_MAP:
        if (from_flag && !L->cli_sio_map) {
            L->cli_sio_map = 1;
            clear_sio_maps(cfg);
        }
        if (cfg->n_sio_maps >= RC_MAX_PUBLIC_PATTERNS) {
            snprintf(msg, ml, "more than %d Socket.IO event rules", RC_MAX_PUBLIC_PATTERNS);
            return -1;
        }
        if (rc_cfg_parse_sio_map(&cfg->sio_maps[cfg->n_sio_maps], v, msg, ml) < 0)
            return -1;
        cfg->n_sio_maps++;
        return 0;
    case K_CONFIG:
    case K_HELP:
    case K_VERSION: break;
    }
    return 0;
}

static void set_defaults(rc_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    strcpy(cfg->listen_host, "127.0.0.1");
    cfg->listen_port = 8080;
    strcpy(cfg->ws_path, "/ws");
    cfg->sio_on = 1;
    cfg->sio_recovery_s = 120;
    strcpy(cfg->sio_path, "/socket.io/");
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    cfg->shards = (int)(cpus < 1 ? 1 : cpus > 256 ? 256 : cpus);
    cfg->pin_threads = 1;

    char host[256];
    if (gethostname(host, sizeof(host)) != 0 || !host[0])
        strcpy(host, "ringcast");
    host[sizeof(host) - 1] = '\0';
    /* Keep only characters node ids allow, and room for "-PID". */
    size_t k = 0;
    for (size_t i = 0; host[i] && k < 50; i++)
        if (rc_cfg_host_char(host[i]))
            host[k++] = host[i];
    host[k] = '\0';
    snprintf(cfg->node_id, sizeof(cfg->node_id), "%.50s-%ld", k ? host : "ringcast",
             (long)getpid());
    cfg->log_level = RC_LOG_INFO;

    cfg->max_connections = 100000;
    cfg->handshake_timeout_ms = 10000;
    cfg->max_header_bytes = 8192;
    cfg->max_body_bytes = 65536;
    cfg->max_message_bytes = 65536;
    cfg->max_channels_per_conn = 64;
    cfg->max_channel_len = 128;
    cfg->msg_rate = 50;
    cfg->msg_burst = 100;
    cfg->send_backlog_bytes = 1u << 20;
    cfg->backlog_policy = RC_BACKLOG_CLOSE;
    cfg->ping_interval_ms = 25000;
    cfg->pong_timeout_ms = 10000;
    cfg->drain_timeout_ms = 10000;
    cfg->allow_anonymous = 1;
    cfg->anonymous_publish = 0;
    cfg->user_channels = 1;
    strcpy(cfg->redis_prefix, "rc:");
    cfg->redis_backlog_bytes = 8u << 20;
    cfg->redis_ping_ms = 1000;
    cfg->admission_tick_ms = 1000;
    cfg->recovery_max = 1000;
    cfg->history_meta_ttl_s = 30 * 86400;
    cfg->presence_ttl_s = 30;
    cfg->presence_page_max = 1000;
    cfg->event_max_bytes = 16384;
    cfg->refresh_notice_s = 30;
    cfg->lifecycle_maxlen = 1000000;
    cfg->lifecycle_timeout_s = 10;
    cfg->recv_buf_size = 4096;
    cfg->recv_buf_count = 1024;
    cfg->queue_size = 65536;
    cfg->ring_entries = 4096;
}

/* ---- config file ---- */

/* inih's fixed line buffer would silently split a long line in two; read
 * the line here so that is an error with its line number instead. */
static char *read_line(char *str, int num, void *stream)
{
    struct loader *L = stream;
    if (!fgets(str, num, L->f))
        return NULL;
    L->line++;
    size_t n = strlen(str);
    if (n == (size_t)num - 1 && str[n - 1] != '\n') {
        int c = fgetc(L->f);
        if (c != EOF && c != '\n') {
            while (c != EOF && c != '\n')
                c = fgetc(L->f);
            fail(L, "%s:%d: line longer than %d bytes", L->file, L->line, num - 3);
            str[0] = '\0';
        }
    }
    return str;
}

static int ini_key_is(const struct opt *o, const char *key)
{
    const char *a = o->name;
    for (; *a && *key; a++, key++)
        if ((*a == '-' ? '_' : *a) != *key)
            return 0;
    return *a == *key;
}

static int on_key(void *user, const char *section, const char *name, const char *value)
{
    struct loader *L = user;
    if (L->failed)
        return 1; /* only the first problem is reported */
    int known_section = 0;
    for (size_t i = 0; i < RC_ARRAY_LEN(sections); i++)
        known_section |= strcmp(section, sections[i]) == 0;
    if (!section[0]) {
        fail(L, "%s:%d: '%s' is outside any [section]", L->file, L->line, name);
        return 0;
    }
    if (!known_section) {
        fail(L, "%s:%d: unknown section [%s]", L->file, L->line, section);
        return 0;
    }
    for (size_t i = 0; i < N_OPTS; i++) {
        const struct opt *o = &opts[i];
        if (!o->section || !ini_key_is(o, name))
            continue;
        if (strcmp(o->section, section) != 0) {
            fail(L, "%s:%d: '%s' belongs in [%s], not [%s]", L->file, L->line, name, o->section,
                 section);
            return 0;
        }
        char msg[256];
        if (set_value(L, o, value, 0, msg, sizeof(msg)) < 0) {
            fail(L, "%s:%d: %s: %s", L->file, L->line, name, msg);
            return 0;
        }
        return 1;
    }
    fail(L, "%s:%d: unknown key '%s' in [%s]", L->file, L->line, name, section);
    return 0;
}

static int load_file(struct loader *L, const char *path)
{
    L->f = fopen(path, "r");
    if (!L->f) {
        fail(L, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    L->file = path;
    L->line = 0;
    int rc = ini_parse_stream(read_line, L, on_key, L);
    fclose(L->f);
    L->f = NULL;
    if (L->failed)
        return -1;
    if (rc > 0)
        fail(L, "%s:%d: expected 'key = value' or '[section]'", path, rc);
    else if (rc < 0)
        fail(L, "%s: cannot read", path);
    return L->failed ? -1 : 0;
}

/* ---- command line ---- */

static void build_longopts(struct option *lo)
{
    for (size_t i = 0; i < N_OPTS; i++) {
        lo[i].name = opts[i].name;
        lo[i].has_arg = opts[i].arg ? required_argument : no_argument;
        lo[i].flag = NULL;
        lo[i].val = OPT_BASE + (int)i;
    }
    memset(&lo[N_OPTS], 0, sizeof(lo[N_OPTS]));
}

static const struct opt *find_opt(const char *name)
{
    for (size_t i = 0; i < N_OPTS; i++)
        if (strcmp(opts[i].name, name) == 0)
            return &opts[i];
    return NULL;
}

/* Pass 1 finds --config, --help and --version (so the file applies before
 * the flags wherever --config sits); pass 2 applies the other flags. Both
 * passes use getopt_long, so "--config=F", abbreviations and values that look
 * like flags are understood the same way. Returns 0, 1 (help/version) or -1. */
static int scan_args(struct loader *L, int argc, char **argv, int pass, const char **config)
{
    struct option lo[N_OPTS + 1];
    build_longopts(lo);
    /* optind = 0 makes glibc reinitialise, so rc_config_load can run twice. */
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "+:h", lo, NULL)) != -1) {
        const char *arg = argv[optind - 1];
        if (c == '?' || c == ':') {
            if (optopt >= OPT_BASE && (size_t)(optopt - OPT_BASE) < N_OPTS)
                fail(L, c == ':' ? "--%s needs a value" : "--%s takes no value",
                     opts[optopt - OPT_BASE].name);
            else if (optopt)
                fail(L, "unknown option '-%c'", optopt);
            else
                fail(L, "unknown or ambiguous option '%.80s'", arg);
            return -1;
        }
        const struct opt *o = c == 'h' ? find_opt("help") : &opts[c - OPT_BASE];
        if (pass == 1) {
            if (o->kind == K_HELP) {
                rc_config_usage(stdout);
                return 1;
            }
            if (o->kind == K_VERSION) {
                printf("ringcast " RC_VERSION "\n");
                return 1;
            }
            if (o->kind == K_CONFIG) {
                if (*config) {
                    fail(L, "--config given twice");
                    return -1;
                }
                *config = optarg;
            }
            continue;
        }
        if (o->kind == K_CONFIG || o->kind == K_HELP || o->kind == K_VERSION)
            continue;
        char msg[256];
        if (set_value(L, o, optarg, 1, msg, sizeof(msg)) < 0) {
            fail(L, "--%s: %s", o->name, msg);
            return -1;
        }
    }
    if (optind < argc) {
        fail(L, "unexpected argument '%.80s'", argv[optind]);
        return -1;
    }
    return 0;
}

static int apply_env(struct loader *L)
{
    /* An empty variable counts as unset: "VAR=" in a unit file or compose
     * file usually means "not configured", not "turn authentication off". */
    const char *v = getenv("RINGCAST_JWT_SECRET");
    char msg[256];
    if (v && *v && set_value(L, find_opt("jwt-secret"), v, 0, msg, sizeof(msg)) < 0) {
        fail(L, "RINGCAST_JWT_SECRET: %s", msg);
        return -1;
    }
    v = getenv("RINGCAST_API_KEY");
    if (v && *v && set_value(L, find_opt("api-key"), v, 0, msg, sizeof(msg)) < 0) {
        fail(L, "RINGCAST_API_KEY: %s", msg);
        return -1;
    }
    static const struct {
        const char *env, *opt;
    } prev[] = {{"RINGCAST_JWT_SECRET_PREVIOUS", "jwt-secret-previous"},
                {"RINGCAST_ADMISSION_SECRET_PREVIOUS", "admission-secret-previous"}};
    for (size_t i = 0; i < RC_ARRAY_LEN(prev); i++) {
        v = getenv(prev[i].env);
        if (v && *v && set_value(L, find_opt(prev[i].opt), v, 0, msg, sizeof(msg)) < 0) {
            fail(L, "%s: %s", prev[i].env, msg);
            return -1;
        }
    }
    v = getenv("RINGCAST_ADMISSION_SECRET");
    if (v && *v && set_value(L, find_opt("admission-secret"), v, 0, msg, sizeof(msg)) < 0) {
        fail(L, "RINGCAST_ADMISSION_SECRET: %s", msg);
        return -1;
    }
    v = getenv("RINGCAST_REDIS_URL");
    if (v && *v && set_value(L, find_opt("redis-url"), v, 0, msg, sizeof(msg)) < 0) {
        fail(L, "RINGCAST_REDIS_URL: %s", msg);
        return -1;
    }
    return 0;
}

/* Options that must agree with each other. */
static int check_together(struct loader *L)
{
    const rc_config *c = L->cfg;
    /* The send backlog bounds what waits behind the message being sent; a
     * message a client may publish must fit in it, or two of them in a row
     * would close (or, with the drop policy, lose) even a prompt reader. */
    if (c->max_message_bytes > c->send_backlog_bytes) {
        fail(L,
             "--max-message-bytes (%u) is above --send-backlog-bytes (%llu): a subscriber "
             "could not queue one message behind another; raise the backlog or lower the limit",
             c->max_message_bytes, (unsigned long long)c->send_backlog_bytes);
        return -1;
    }
    for (int i = 0; i < c->n_history; i++) {
        if (c->history[i].ttl_s > c->history_meta_ttl_s) {
            fail(L,
                 "--history '%s': ttl %u is above --history-meta-ttl (%u): a channel's epoch "
                 "and offset must outlive its publications",
                 c->history[i].pattern, c->history[i].ttl_s, c->history_meta_ttl_s);
            return -1;
        }
    }
    return 0;
}

int rc_config_load(rc_config *cfg, int argc, char **argv, char *err, size_t errlen)
{
    struct loader L = {.cfg = cfg, .err = err, .errlen = errlen};
    const char *config = NULL;
    if (errlen)
        err[0] = '\0';
    set_defaults(cfg);

    int rc = argc > 1 ? scan_args(&L, argc, argv, 1, &config) : 0;
    if (rc == 0 && config)
        rc = load_file(&L, config);
    if (rc == 0 && argc > 1)
        rc = scan_args(&L, argc, argv, 2, &config);
    if (rc == 0)
        rc = apply_env(&L);
    if (rc == 0)
        rc = check_together(&L);
    if (rc != 0)
        clear_public(cfg); /* nothing for the caller to free */
    return rc;
}

void rc_config_free(rc_config *cfg)
{
    clear_public(cfg);
}

void rc_config_usage(FILE *f)
{
    fprintf(f, "usage: ringcast [OPTION]...\n"
               "ringcast " RC_VERSION ", a WebSocket edge engine.\n"
               "Precedence: defaults < --config FILE < flags < environment\n"
               "(RINGCAST_JWT_SECRET, RINGCAST_API_KEY, RINGCAST_REDIS_URL,\n"
               "RINGCAST_ADMISSION_SECRET, and the *_SECRET_PREVIOUS of rotations).\n"
               "--redis is short\n"
               "for --redis-url. In the file, [section] key = value\n"
               "with the flag's name minus '--' and '-' as '_', e.g. max_conns_per_ip = 10;\n"
               "booleans are true/false.\n");
    for (size_t s = 0; s <= RC_ARRAY_LEN(sections); s++) {
        const char *sec = s ? sections[s - 1] : NULL;
        fprintf(f, "\n%s", s ? section_titles[s - 1] : "General");
        if (sec)
            fprintf(f, " [%s]", sec);
        fputs(":\n", f);
        for (size_t i = 0; i < N_OPTS; i++) {
            const struct opt *o = &opts[i];
            if (!o->help || (sec ? !o->section || strcmp(o->section, sec) : !!o->section))
                continue;
            char lhs[64];
            if (o->kind == K_BOOL)
                snprintf(lhs, sizeof(lhs), "--[no-]%s", o->name);
            else
                snprintf(lhs, sizeof(lhs), "--%s%s%s", o->name, o->arg ? " " : "",
                         o->arg ? o->arg : "");
            fprintf(f, "  %-30s %s\n", lhs, o->help);
        }
    }
}
