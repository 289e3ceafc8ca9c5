/* ringcast configuration: defaults, config file (INI, read with inih),
 * command-line flags and environment overrides.
 *
 * Precedence, lowest first: built-in defaults < config file (--config FILE)
 * < command-line flags < environment (RINGCAST_JWT_SECRET, RINGCAST_API_KEY:
 * secrets are best kept out of argv, which every local user can read). */
#ifndef RC_CONFIG_H
#define RC_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "base/log.h"

#define RC_MAX_PUBLIC_PATTERNS 32

enum rc_backlog_policy {
    RC_BACKLOG_CLOSE = 0, /* close with 1008 and a reason; the default */
    RC_BACKLOG_DROP = 1,  /* drop the message, tell the client it missed some */
};

/* Channels matching pattern keep their last `size` publications for `ttl_s`
 * seconds after the last one (--history). */
typedef struct rc_history_rule {
    char *pattern;
    uint32_t size;
    uint32_t ttl_s;
} rc_history_rule;

#define RC_HISTORY_MAX_SIZE 100000

/* Channels matching pattern keep who is here (--presence); with join_leave
 * their members are told of each arrival and departure. */
typedef struct rc_presence_rule {
    char *pattern;
    int join_leave;
} rc_presence_rule;

/* Channels matching pattern have their publications compressed for the
 * connections that negotiated permessage-deflate, or not (--deflate). */
typedef struct rc_deflate_rule {
    char *pattern;
    int on;
} rc_deflate_rule;

/* Client events whose name matches pattern go to the Redis stream
 * PREFIX "ev:" stream, which takes at most maxlen entries (--event-stream). */
typedef struct rc_event_rule {
    char *pattern;
    char *stream;
    uint32_t maxlen;
} rc_event_rule;

/* A Socket.IO client event that the node turns into an operation itself
 * (--socketio-map 'EVENT OP [PREFIX]'): the event's first argument X names
 * the channel PREFIX X (PREFIX may be empty). */
enum rc_sio_op { RC_SIO_MAP_SUBSCRIBE = 1, RC_SIO_MAP_UNSUBSCRIBE, RC_SIO_MAP_PUBLISH };
typedef struct rc_sio_map {
    char *event;
    char *prefix;
    int op; /* enum rc_sio_op */
} rc_sio_map;

#define RC_SIO_MAX_NSPS 7 /* namespaces besides "/" (--socketio-namespace) */

typedef struct rc_config {
    /* [server] */
    char listen_host[256]; /* --listen HOST:PORT, default 127.0.0.1:8080 */
    uint16_t listen_port;
    char ws_path[128];          /* --ws-path, default /ws */
    int shards;                 /* --shards, default: online CPUs */
    int pin_threads;            /* --pin / --no-pin, default 1 */
    char node_id[64];           /* --node-id, default: hostname-pid */
    int log_level;              /* --log-level debug|info|warn|error, default info */
    int permessage_deflate;     /* --permessage-deflate / --no-permessage-deflate, default on */
    uint32_t deflate_min_bytes; /* --deflate-min-bytes: smaller payloads go plain, default 128 */

    /* [limits] */
    uint32_t max_connections;  /* --max-connections, node-wide, default 100000 */
    uint32_t max_conns_per_ip; /* --max-conns-per-ip, default 0 = unlimited */
    uint32_t handshake_rate;   /* --handshake-rate per second, node-wide, default 0 = unlimited */
    uint32_t handshake_rate_per_ip; /* --handshake-rate-per-ip per second, default 0 = unlimited */
    uint32_t handshake_timeout_ms;  /* --handshake-timeout-ms, default 10000 */
    uint32_t max_header_bytes;      /* --max-header-bytes, default 8192 */
    uint32_t max_body_bytes;        /* --max-body-bytes (HTTP API), default 65536 */
    uint32_t max_message_bytes;     /* --max-message-bytes, default 65536 */
    uint32_t max_channels_per_conn; /* --max-channels, default 64 */
    uint32_t max_channel_len;       /* --max-channel-len, default 128 */
    uint32_t msg_rate;              /* --msg-rate per connection per second, default 50 */
    uint32_t msg_burst;             /* --msg-burst, default 100 */
    uint64_t send_backlog_bytes;    /* --send-backlog-bytes, default 1 MiB */
    int backlog_policy;             /* --backlog-policy close|drop, default close */

    /* [heartbeat] */
    uint32_t ping_interval_ms; /* --ping-interval-ms, default 25000; 0 = off */
    uint32_t pong_timeout_ms;  /* --pong-timeout-ms, default 10000 */

    /* [lifecycle] */
    uint32_t drain_timeout_ms; /* --drain-timeout-ms, default 10000 */

    /* [auth] */
    char jwt_secret[512]; /* --jwt-secret or RINGCAST_JWT_SECRET; empty = tokens refused */
    size_t jwt_secret_len;
    char jwt_secret_previous[512]; /* RINGCAST_JWT_SECRET_PREVIOUS: also accepted, while
                                      tokens signed with it are still in use (rotation) */
    char jwt_public_key[512];      /* --jwt-public-key FILE: PEM public keys (RS256, ES256) */
    char jwks[512];                /* --jwks FILE: a JSON Web Key Set (RS256, ES256, by kid) */
    uint32_t refresh_notice_s;     /* --token-refresh-notice: tell a client this long before exp */
    char api_key[256];             /* --api-key or RINGCAST_API_KEY; empty = HTTP API off (403) */
    char *public_patterns[RC_MAX_PUBLIC_PATTERNS]; /* --public PATTERN (repeatable) */
    int n_public_patterns;
    char *allowed_origins[RC_MAX_PUBLIC_PATTERNS]; /* --allowed-origin (repeatable) */
    int n_allowed_origins;

    /* [channels] */
    rc_history_rule history[RC_MAX_PUBLIC_PATTERNS]; /* --history (repeatable), first match */
    int n_history;
    uint32_t recovery_max;       /* --recovery-max: publications a recovery may replay */
    uint32_t history_meta_ttl_s; /* --history-meta-ttl: how long a channel's epoch and top
                                    offset outlive its last publication */
    rc_presence_rule presence[RC_MAX_PUBLIC_PATTERNS]; /* --presence (repeatable), first match */
    int n_presence;
    rc_deflate_rule deflate[RC_MAX_PUBLIC_PATTERNS]; /* --deflate (repeatable), first match */
    int n_deflate;
    uint32_t presence_ttl_s;    /* --presence-ttl: a member not refreshed for this long is
                                   gone (a dead node's members, with Redis) */
    uint32_t presence_page_max; /* --presence-page-max: members one presence page may hold */
    int allow_anonymous;        /* --anonymous / --no-anonymous, default 1: tokenless
                                   clients connect but reach only public channels */
    int anonymous_publish;      /* --anonymous-publish, default 0 */
    int user_channels;          /* --user-channels / --no-user-channels, default 1: a
                                   connection with a token joins user:<sub> */

    /* [events] */
    rc_event_rule events[RC_MAX_PUBLIC_PATTERNS]; /* --event-stream (repeatable), first match */
    int n_events;
    uint32_t event_max_bytes;     /* --event-max-bytes: an event's data */
    char lifecycle_stream[65];    /* --lifecycle-stream: connect/disconnect events (empty: off) */
    uint32_t lifecycle_maxlen;    /* --lifecycle-maxlen */
    uint32_t lifecycle_timeout_s; /* --lifecycle-timeout: a node silent this long is dead */
    int lifecycle_subscriptions;  /* --lifecycle-subscriptions: subscribe/unsubscribe too */

    /* [socketio] */
    int sio_on;                      /* --socketio / --no-socketio, default on */
    char sio_path[128];              /* --socketio-path, default /socket.io/ */
    char *sio_nsps[RC_SIO_MAX_NSPS]; /* --socketio-namespace (repeatable): besides "/" */
    int n_sio_nsps;
    rc_sio_map sio_maps[RC_MAX_PUBLIC_PATTERNS]; /* --socketio-map (repeatable) */
    int n_sio_maps;
    char sio_emitter[64]; /* --socketio-emitter KEY: hear Socket.IO's Redis emitter (empty: off) */
    uint32_t sio_recovery_s; /* --socketio-recovery: how long a session can be recovered (0: off) */

    /* [redis] */
    char redis_url[1024];         /* --redis URL or RINGCAST_REDIS_URL; empty = single node */
    char redis_prefix[64];        /* --redis-prefix, default "rc:" */
    uint64_t redis_backlog_bytes; /* --redis-backlog-bytes, default 8 MiB */
    uint32_t redis_ping_ms;       /* --redis-ping-ms, default 1000 */

    /* [admission] */
    char admission_secret[512];          /* --admission-secret or RINGCAST_ADMISSION_SECRET; empty =
                                            waiting rooms refuse joins (no tokens can be signed) */
    char admission_secret_previous[512]; /* RINGCAST_ADMISSION_SECRET_PREVIOUS: still
                                            accepted by /api/queues/verify (rotation) */
    uint32_t admission_tick_ms;          /* --admission-tick-ms, default 1000 */

    /* [engine] */
    uint32_t recv_buf_size;  /* --recv-buf-size, provided-buffer size, default 4096 */
    uint32_t recv_buf_count; /* --recv-buf-count per shard, power of 2, default 1024 */
    uint32_t queue_size;     /* --queue-size, SPSC ring entries, power of 2, default 65536 */
    uint32_t ring_entries;   /* --ring-entries, io_uring SQ size, default 4096 */
} rc_config;

/* Fills cfg with defaults, then applies the config file named by --config (if
 * any), then the flags in argv, then the environment. Returns 0 on success;
 * 1 when --help or --version printed something and the program should exit 0;
 * -1 on error with a one-line message (naming the flag or file:line) in err.
 * cfg owns the strings it points to; release them with rc_config_free(). */
int rc_config_load(rc_config *cfg, int argc, char **argv, char *err, size_t errlen);

/* Releases what rc_config_load allocated. cfg may be reused after. */
void rc_config_free(rc_config *cfg);

/* Writes the --help text (every option with its default) to f. */
void rc_config_usage(FILE *f);

/* The history rule of channel name[0..len), or NULL: none. */
const rc_history_rule *rc_config_history(const rc_config *cfg, const char *name, size_t len);

/* The stream rule of client event name[0..len), or NULL: none. */
const rc_event_rule *rc_config_event(const rc_config *cfg, const char *name, size_t len);

/* The presence rule of channel name[0..len), or NULL: none. */
const rc_presence_rule *rc_config_presence(const rc_config *cfg, const char *name, size_t len);

/* 1 when publications on channel name[0..len) may be compressed: the
 * first --deflate rule that matches says on or off; no rule: on. */
int rc_config_deflate(const rc_config *cfg, const char *name, size_t len);

#endif
