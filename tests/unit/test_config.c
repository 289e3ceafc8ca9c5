/* Unit tests for engine/config.c. Expected defaults are the ones written in
 * engine/config.h's comments. */
#include "base/common.h"
#include "engine/config.h"
#include "tests/unit/unit.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char err[512];

#define ARGV(...)      ((char *[]){"ringcast", __VA_ARGS__, NULL})
#define ARGC(...)      ((int)(sizeof((char *[]){"ringcast", __VA_ARGS__}) / sizeof(char *)))
#define LOAD(cfg, ...) rc_config_load(cfg, ARGC(__VA_ARGS__), ARGV(__VA_ARGS__), err, sizeof(err))

/* Writes text to a fresh file under /tmp; the caller unlinks it. */
static void temp_file(char path[64], const char *text)
{
    strcpy(path, "/tmp/ringcast_cfg_XXXXXX");
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    size_t n = strlen(text);
    CHECK(write(fd, text, n) == (ssize_t)n);
    close(fd);
}

static int starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static void test_defaults(void)
{
    rc_config c;
    char *argv[] = {"ringcast", NULL};
    CHECK_EQ_INT(rc_config_load(&c, 1, argv, err, sizeof(err)), 0);
    CHECK_EQ_STR(c.listen_host, "127.0.0.1");
    CHECK_EQ_INT(c.listen_port, 8080);
    CHECK_EQ_STR(c.ws_path, "/ws");
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    CHECK_EQ_INT(c.shards, cpus < 1 ? 1 : cpus > 256 ? 256 : cpus);
    CHECK_EQ_INT(c.pin_threads, 1);
    char host[256] = "", expect[128];
    gethostname(host, sizeof(host));
    snprintf(expect, sizeof(expect), "%.50s-%ld", host, (long)getpid());
    CHECK_EQ_STR(c.node_id, expect);
    CHECK_EQ_INT(c.log_level, RC_LOG_INFO);
    CHECK_EQ_INT(c.max_connections, 100000);
    CHECK_EQ_INT(c.max_conns_per_ip, 0);
    CHECK_EQ_INT(c.handshake_rate, 0);
    CHECK_EQ_INT(c.handshake_rate_per_ip, 0);
    CHECK_EQ_INT(c.handshake_timeout_ms, 10000);
    CHECK_EQ_INT(c.max_header_bytes, 8192);
    CHECK_EQ_INT(c.max_body_bytes, 65536);
    CHECK_EQ_INT(c.max_message_bytes, 65536);
    CHECK_EQ_INT(c.max_channels_per_conn, 64);
    CHECK_EQ_INT(c.max_channel_len, 128);
    CHECK_EQ_INT(c.msg_rate, 50);
    CHECK_EQ_INT(c.msg_burst, 100);
    CHECK_EQ_INT(c.send_backlog_bytes, 1048576);
    CHECK_EQ_INT(c.backlog_policy, RC_BACKLOG_CLOSE);
    CHECK_EQ_INT(c.ping_interval_ms, 25000);
    CHECK_EQ_INT(c.pong_timeout_ms, 10000);
    CHECK_EQ_INT(c.drain_timeout_ms, 10000);
    CHECK_EQ_STR(c.jwt_secret, "");
    CHECK_EQ_INT(c.jwt_secret_len, 0);
    CHECK_EQ_STR(c.api_key, "");
    CHECK_EQ_INT(c.n_public_patterns, 0);
    CHECK_EQ_INT(c.allow_anonymous, 1);
    CHECK_EQ_INT(c.anonymous_publish, 0);
    CHECK_EQ_INT(c.recv_buf_size, 4096);
    CHECK_EQ_INT(c.recv_buf_count, 1024);
    CHECK_EQ_INT(c.queue_size, 65536);
    CHECK_EQ_INT(c.ring_entries, 4096);
    rc_config_free(&c);

    /* argc 0 (no argv[0]) is not a crash either. */
    char *none[] = {NULL};
    CHECK_EQ_INT(rc_config_load(&c, 0, none, err, sizeof(err)), 0);
    rc_config_free(&c);
}

static void test_flags(void)
{
    rc_config c;
    CHECK_EQ_INT(LOAD(&c, "--listen", "0.0.0.0:9001", "--ws-path=/live", "--shards", "8",
                      "--no-pin", "--node-id", "edge-1", "--log-level", "debug",
                      "--max-connections", "5", "--max-conns-per-ip", "2", "--max-channels", "3",
                      "--max-channel-len", "256", "--send-backlog-bytes", "4294967296",
                      "--backlog-policy", "drop", "--ping-interval-ms", "0", "--no-anonymous",
                      "--anonymous-publish", "--recv-buf-count", "32768", "--queue-size", "2",
                      "--api-key", "k"),
                 0);
    CHECK_EQ_STR(err, "");
    CHECK_EQ_STR(c.listen_host, "0.0.0.0");
    CHECK_EQ_INT(c.listen_port, 9001);
    CHECK_EQ_STR(c.ws_path, "/live");
    CHECK_EQ_INT(c.shards, 8);
    CHECK_EQ_INT(c.pin_threads, 0);
    CHECK_EQ_STR(c.node_id, "edge-1");
    CHECK_EQ_INT(c.log_level, RC_LOG_DEBUG);
    CHECK_EQ_INT(c.max_connections, 5);
    CHECK_EQ_INT(c.max_conns_per_ip, 2);
    CHECK_EQ_INT(c.max_channels_per_conn, 3);
    CHECK_EQ_INT(c.max_channel_len, 256);
    CHECK(c.send_backlog_bytes == 4294967296ull);
    CHECK_EQ_INT(c.backlog_policy, RC_BACKLOG_DROP);
    CHECK_EQ_INT(c.ping_interval_ms, 0);
    CHECK_EQ_INT(c.allow_anonymous, 0);
    CHECK_EQ_INT(c.anonymous_publish, 1);
    CHECK_EQ_INT(c.recv_buf_count, 32768);
    CHECK_EQ_INT(c.queue_size, 2);
    CHECK_EQ_STR(c.api_key, "k");
    rc_config_free(&c);
}

static void test_file_then_flags(void)
{
    char path[64];
    temp_file(path, "; ringcast test config\n"
                    "[server]\n"
                    "listen = 10.0.0.1:9000\n"
                    "shards = 3\n"
                    "pin = false\n"
                    "\n"
                    "[limits]\n"
                    "max_conns_per_ip = 7\n"
                    "backlog_policy = drop\n"
                    "[heartbeat]\n"
                    "pong_timeout_ms = 2000\n"
                    "[lifecycle]\n"
                    "drain_timeout_ms = 0\n"
                    "[auth]\n"
                    "jwt_secret = file-secret\n"
                    "public = news:*, demo:*\n"
                    "public = lobby\n"
                    "anonymous_publish = yes\n"
                    "[engine]\n"
                    "queue_size = 1024\n");
    rc_config c;
    /* --config last on the line still applies before the flags. */
    CHECK_EQ_INT(LOAD(&c, "--shards", "5", "--jwt-secret", "flag-secret", "--config", path), 0);
    CHECK_EQ_STR(err, "");
    CHECK_EQ_INT(c.shards, 5);
    CHECK_EQ_STR(c.listen_host, "10.0.0.1");
    CHECK_EQ_INT(c.listen_port, 9000);
    CHECK_EQ_INT(c.pin_threads, 0);
    CHECK_EQ_INT(c.max_conns_per_ip, 7);
    CHECK_EQ_INT(c.backlog_policy, RC_BACKLOG_DROP);
    CHECK_EQ_INT(c.pong_timeout_ms, 2000);
    CHECK_EQ_INT(c.drain_timeout_ms, 0);
    CHECK_EQ_STR(c.jwt_secret, "flag-secret");
    CHECK_EQ_INT(c.jwt_secret_len, 11);
    CHECK_EQ_INT(c.anonymous_publish, 1);
    CHECK_EQ_INT(c.queue_size, 1024);
    CHECK_EQ_INT(c.n_public_patterns, 3);
    if (c.n_public_patterns == 3) {
        CHECK_EQ_STR(c.public_patterns[0], "news:*");
        CHECK_EQ_STR(c.public_patterns[1], "demo:*");
        CHECK_EQ_STR(c.public_patterns[2], "lobby");
    }
    rc_config_free(&c);
    CHECK_EQ_INT(c.n_public_patterns, 0);

    /* --public on the command line replaces the file's list. */
    CHECK_EQ_INT(LOAD(&c, "--config=", path, "--public", "x:*"), -1); /* empty path */
    CHECK_EQ_INT(LOAD(&c, "--public", "x:*", "--config", path), 0);
    CHECK_EQ_INT(c.n_public_patterns, 1);
    if (c.n_public_patterns == 1)
        CHECK_EQ_STR(c.public_patterns[0], "x:*");
    CHECK_EQ_STR(c.jwt_secret, "file-secret");
    rc_config_free(&c);

    CHECK_EQ_INT(LOAD(&c, "--config", path, "--config", path), -1);
    CHECK(strstr(err, "--config") != NULL);
    unlink(path);

    CHECK_EQ_INT(LOAD(&c, "--config", "/nonexistent/ringcast.ini"), -1);
    CHECK(starts_with(err, "/nonexistent/ringcast.ini"));
}

static void test_env_overrides(void)
{
    rc_config c;
    setenv("RINGCAST_JWT_SECRET", "env-secret", 1);
    setenv("RINGCAST_API_KEY", "env-key", 1);
    CHECK_EQ_INT(LOAD(&c, "--jwt-secret", "flag-secret", "--api-key", "flag-key"), 0);
    CHECK_EQ_STR(c.jwt_secret, "env-secret");
    CHECK_EQ_INT(c.jwt_secret_len, 10);
    CHECK_EQ_STR(c.api_key, "env-key");
    rc_config_free(&c);

    /* Empty counts as unset. */
    setenv("RINGCAST_JWT_SECRET", "", 1);
    unsetenv("RINGCAST_API_KEY");
    CHECK_EQ_INT(LOAD(&c, "--jwt-secret", "flag-secret", "--api-key", "flag-key"), 0);
    CHECK_EQ_STR(c.jwt_secret, "flag-secret");
    CHECK_EQ_STR(c.api_key, "flag-key");
    rc_config_free(&c);

    char big[600];
    memset(big, 'k', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    setenv("RINGCAST_API_KEY", big, 1);
    CHECK_EQ_INT(LOAD(&c, "--shards", "1"), -1);
    CHECK(strstr(err, "RINGCAST_API_KEY") != NULL);
    unsetenv("RINGCAST_JWT_SECRET");
    unsetenv("RINGCAST_API_KEY");
}

static void test_redis(void)
{
    rc_config c;
    CHECK_EQ_INT(LOAD(&c, "--shards", "1"), 0);
    CHECK_EQ_STR(c.redis_url, "");
    CHECK_EQ_STR(c.redis_prefix, "rc:");
    CHECK_EQ_INT(c.redis_backlog_bytes, 8u << 20);
    CHECK_EQ_INT(c.redis_ping_ms, 1000);
    CHECK_EQ_INT(c.user_channels, 1);
    rc_config_free(&c);

    CHECK_EQ_INT(LOAD(&c, "--redis", "redis://:pw@127.0.0.1:7000/2", "--redis-prefix", "app1:",
                      "--redis-backlog-bytes", "0", "--redis-ping-ms", "250", "--no-user-channels"),
                 0);
    CHECK_EQ_STR(c.redis_url, "redis://:pw@127.0.0.1:7000/2");
    CHECK_EQ_STR(c.redis_prefix, "app1:");
    CHECK_EQ_INT(c.redis_backlog_bytes, 0);
    CHECK_EQ_INT(c.redis_ping_ms, 250);
    CHECK_EQ_INT(c.user_channels, 0);
    rc_config_free(&c);

    /* The long name, the file key, and the environment (which wins). */
    CHECK_EQ_INT(LOAD(&c, "--redis-url", "unix:///run/redis.sock"), 0);
    CHECK_EQ_STR(c.redis_url, "unix:///run/redis.sock");
    rc_config_free(&c);
    char path[64];
    temp_file(path, "[redis]\nredis_url = redis://10.0.0.1\nredis_prefix = x:\n");
    CHECK_EQ_INT(LOAD(&c, "--config", path), 0);
    CHECK_EQ_STR(c.redis_url, "redis://10.0.0.1");
    CHECK_EQ_STR(c.redis_prefix, "x:");
    rc_config_free(&c);
    setenv("RINGCAST_REDIS_URL", "redis://127.0.0.9:6380", 1);
    CHECK_EQ_INT(LOAD(&c, "--config", path, "--redis", "redis://127.0.0.1"), 0);
    CHECK_EQ_STR(c.redis_url, "redis://127.0.0.9:6380");
    rc_config_free(&c);
    setenv("RINGCAST_REDIS_URL", "rediss://127.0.0.1", 1);
    CHECK_EQ_INT(LOAD(&c, "--shards", "1"), -1);
    CHECK(starts_with(err, "RINGCAST_REDIS_URL:"));
    unsetenv("RINGCAST_REDIS_URL");
    unlink(path);
}

static void test_origins(void)
{
    rc_config c;
    char path[64];
    temp_file(path, "[auth]\nallowed_origin = https://a.example, https://*.b.example\n");
    CHECK_EQ_INT(LOAD(&c, "--config", path), 0);
    CHECK_EQ_INT(c.n_allowed_origins, 2);
    CHECK_EQ_STR(c.allowed_origins[0], "https://a.example");
    CHECK_EQ_STR(c.allowed_origins[1], "https://*.b.example");
    rc_config_free(&c);
    /* Flags replace the file's list; they add up among themselves. */
    CHECK_EQ_INT(LOAD(&c, "--config", path, "--allowed-origin", "https://c.example",
                      "--allowed-origin", "*"),
                 0);
    CHECK_EQ_INT(c.n_allowed_origins, 2);
    CHECK_EQ_STR(c.allowed_origins[0], "https://c.example");
    CHECK_EQ_STR(c.allowed_origins[1], "*");
    rc_config_free(&c);
    CHECK_EQ_INT(LOAD(&c, "--allowed-origin", "https://a b"), -1);
    CHECK(starts_with(err, "--allowed-origin:"));
    unlink(path);
}

static void test_bad_flags(void)
{
    static const char *bad[][2] = {
        {"--shards", "0"},
        {"--shards", "257"},
        {"--shards", "-1"},
        {"--shards", "4x"},
        {"--shards", ""},
        {"--shards", " 4"},
        {"--shards", "99999999999999999999999"},
        {"--recv-buf-count", "1000"},
        {"--recv-buf-count", "65536"},
        {"--queue-size", "3"},
        {"--queue-size", "1"},
        /* the per-connection bucket is 16 bits wide */
        {"--msg-burst", "65536"},
        {"--max-channel-len", "257"},
        {"--max-channel-len", "0"},
        {"--max-connections", "0"},
        {"--max-header-bytes", "100"},
        {"--log-level", "verbose"},
        {"--backlog-policy", "block"},
        {"--ws-path", "ws"},
        {"--ws-path", "/a b"},
        {"--ws-path", "/a?b"},
        {"--node-id", "a b"},
        {"--redis", "rediss://127.0.0.1:6379"},
        {"--redis", "http://127.0.0.1"},
        {"--redis", "redis://127.0.0.1:99999"},
        {"--redis-prefix", "a b"},
        {"--redis-ping-ms", "50"},
        {"--redis-backlog-bytes", "x"},
        {"--node-id", ""},
        {"--listen", "8080"},
        {"--send-backlog-bytes", "4294967297"},
        {"--msg-rate", "0"},
        {"--ring-entries", "4"},
        {"--public", ""},
        {"--public", "a,,b"},
        {"--public", "a b"},
    };
    rc_config c;
    char msg[256];
    for (size_t i = 0; i < RC_ARRAY_LEN(bad); i++) {
        char *argv[] = {"ringcast", (char *)bad[i][0], (char *)bad[i][1], NULL};
        int rc = rc_config_load(&c, 3, argv, err, sizeof(err));
        if (rc != -1)
            fprintf(stderr, "  accepted %s '%s'\n", bad[i][0], bad[i][1]);
        CHECK_EQ_INT(rc, -1);
        snprintf(msg, sizeof(msg), "%s:", bad[i][0]);
        if (!starts_with(err, msg))
            fprintf(stderr, "  message '%s'\n", err);
        CHECK(starts_with(err, msg));
        CHECK_EQ_INT(c.n_public_patterns, 0); /* nothing left to free */
    }
    CHECK_EQ_INT(LOAD(&c, "--bogus", "1"), -1);
    CHECK(strstr(err, "--bogus") != NULL);
    CHECK_EQ_INT(LOAD(&c, "--shards"), -1);
    CHECK(strstr(err, "--shards") != NULL);
    CHECK_EQ_INT(LOAD(&c, "--pin=yes"), -1);
    CHECK(strstr(err, "--pin") != NULL);
    CHECK_EQ_INT(LOAD(&c, "stray"), -1);
    CHECK(strstr(err, "stray") != NULL);
    CHECK_EQ_INT(LOAD(&c, "-q"), -1);
    CHECK(strstr(err, "-q") != NULL);

    /* The limit is 32 patterns. */
    char *many[2 + 2 * 33];
    int n = 0;
    many[n++] = "ringcast";
    for (int i = 0; i < 33; i++) {
        many[n++] = "--public";
        many[n++] = "p:*";
    }
    many[n] = NULL;
    CHECK_EQ_INT(rc_config_load(&c, n - 2, many, err, sizeof(err)), 0);
    CHECK_EQ_INT(c.n_public_patterns, 32);
    rc_config_free(&c);
    CHECK_EQ_INT(rc_config_load(&c, n, many, err, sizeof(err)), -1);
    CHECK(starts_with(err, "--public:"));
}

/* Loads a one-file config and checks the message starts with "path:line:". */
static void check_bad_file(const char *text, int line, const char *needle)
{
    char path[64], prefix[96];
    temp_file(path, text);
    rc_config c;
    CHECK_EQ_INT(LOAD(&c, "--config", path), -1);
    snprintf(prefix, sizeof(prefix), "%s:%d:", path, line);
    if (!starts_with(err, prefix) || !strstr(err, needle))
        fprintf(stderr, "  want '%s...%s', got '%s'\n", prefix, needle, err);
    CHECK(starts_with(err, prefix));
    CHECK(strstr(err, needle) != NULL);
    unlink(path);
}

static void test_bad_file(void)
{
    check_bad_file("[server]\nshards = 2\nshards = 0\n", 3, "shards");
    check_bad_file("[server]\n\n# c\nbogus_key = 1\n", 4, "bogus_key");
    check_bad_file("[server]\nshards = 2\n[nope]\nx = 1\n", 4, "nope");
    check_bad_file("shards = 2\n", 1, "shards");
    check_bad_file("[limits]\nshards = 2\n", 2, "server");
    check_bad_file("[server]\nthis line has no equals sign\n", 2, "");
    check_bad_file("[engine]\nqueue_size = 1000\n", 2, "queue_size");
    check_bad_file("[server]\npin = maybe\n", 2, "pin");
    check_bad_file("[server]\nno_pin = true\n", 2, "no_pin");
    check_bad_file("[limits]\nmax_conns_per_ip = -1\n", 2, "max_conns_per_ip");
    /* The first error is the one reported. */
    check_bad_file("[server]\nshards = 0\nlisten = nope\n", 2, "shards");

    char text[1024];
    char *p = text + sprintf(text, "[auth]\napi_key = ");
    memset(p, 'a', 400);
    strcpy(p + 400, "\n[server]\nshards = 1\n");
    check_bad_file(text, 2, "long");
}

static void test_public_repeat(void)
{
    rc_config c;
    CHECK_EQ_INT(LOAD(&c, "--public", "a:*", "--public", " b:* , c ", "--public=d"), 0);
    CHECK_EQ_INT(c.n_public_patterns, 4);
    if (c.n_public_patterns == 4) {
        CHECK_EQ_STR(c.public_patterns[0], "a:*");
        CHECK_EQ_STR(c.public_patterns[1], "b:*");
        CHECK_EQ_STR(c.public_patterns[2], "c");
        CHECK_EQ_STR(c.public_patterns[3], "d");
    }
    rc_config_free(&c);
    /* Loading again after free starts from an empty list. */
    CHECK_EQ_INT(LOAD(&c, "--public", "z"), 0);
    CHECK_EQ_INT(c.n_public_patterns, 1);
    rc_config_free(&c);
}

static void test_event_rules(void)
{
    rc_config c;
    CHECK_EQ_INT(LOAD(&c, "--shards", "1"), 0);
    CHECK_EQ_INT(c.n_events, 0);
    CHECK_EQ_INT(c.event_max_bytes, 16384);
    rc_config_free(&c);
    CHECK_EQ_INT(LOAD(&c, "--event-stream", "seat:* seats", "--event-stream",
                      "chat:* chat.v1 maxlen=50", "--event-max-bytes", "100"),
                 0);
    CHECK_EQ_INT(c.n_events, 2);
    const rc_event_rule *r = rc_config_event(&c, "seat:select", 11);
    CHECK(r && strcmp(r->stream, "seats") == 0 && r->maxlen == 100000);
    r = rc_config_event(&c, "chat:x", 6);
    CHECK(r && strcmp(r->stream, "chat.v1") == 0 && r->maxlen == 50);
    CHECK(rc_config_event(&c, "other", 5) == NULL);
    CHECK_EQ_INT(c.event_max_bytes, 100);
    rc_config_free(&c);
    static const char *const bad[] = {
        "seat:*",             /* no stream */
        "seat:* a b",         /* two streams */
        "seat:* s maxlen=0",  /* maxlen out of range */
        "seat:* s maxlen=x",  /* not a number */
        "seat:* bad/name",    /* stream characters */
        "a,b s",              /* one pattern per rule */
        "seat:* s color=red", /* unknown member */
    };
    for (size_t i = 0; i < RC_ARRAY_LEN(bad); i++) {
        const char *argv[] = {"ringcast", "--event-stream", bad[i]};
        int rc = rc_config_load(&c, 3, (char **)argv, err, sizeof(err));
        if (rc != -1)
            fprintf(stderr, "  accepted bad rule '%s'\n", bad[i]);
        CHECK_EQ_INT(rc, -1);
        CHECK(strncmp(err, "--event-stream:", 15) == 0);
    }
    char path[64];
    temp_file(path, "[events]\nevent_stream = seat:* seats maxlen=7\nevent_max_bytes = 64\n");
    CHECK_EQ_INT(LOAD(&c, "--config", path), 0);
    CHECK(c.n_events == 1 && c.events[0].maxlen == 7 && c.event_max_bytes == 64);
    rc_config_free(&c);
    unlink(path);
}

static void test_presence_rules(void)
{
    rc_config c;
    CHECK_EQ_INT(LOAD(&c, "--shards", "1"), 0);
    CHECK_EQ_INT(c.n_presence, 0);
    CHECK_EQ_INT(c.presence_ttl_s, 30);
    CHECK_EQ_INT(c.presence_page_max, 1000);
    CHECK(rc_config_presence(&c, "room:1", 6) == NULL);
    rc_config_free(&c);
    CHECK_EQ_INT(LOAD(&c, "--presence", "room:* join_leave", "--presence", "lobby",
                      "--presence-ttl", "5", "--presence-page-max", "10"),
                 0);
    CHECK_EQ_INT(c.n_presence, 2);
    CHECK_EQ_INT(c.presence_ttl_s, 5);
    CHECK_EQ_INT(c.presence_page_max, 10);
    const rc_presence_rule *r = rc_config_presence(&c, "room:9", 6);
    CHECK(r && r->join_leave == 1 && strcmp(r->pattern, "room:*") == 0);
    r = rc_config_presence(&c, "lobby", 5);
    CHECK(r && r->join_leave == 0);
    CHECK(rc_config_presence(&c, "lobby2", 6) == NULL);
    rc_config_free(&c);
    CHECK_EQ_INT(c.n_presence, 0);
    static const char *const bad[] = {
        "",                    /* no pattern */
        "room:* join",         /* unknown word */
        "a,b",                 /* one pattern per rule */
        "room:* join_leave x", /* trailing word */
    };
    for (size_t i = 0; i < RC_ARRAY_LEN(bad); i++) {
        const char *argv[] = {"ringcast", "--presence", bad[i]};
        int rc = rc_config_load(&c, 3, (char **)argv, err, sizeof(err));
        if (rc != -1)
            fprintf(stderr, "  accepted bad rule '%s'\n", bad[i]);
        CHECK_EQ_INT(rc, -1);
        CHECK(strncmp(err, "--presence:", 11) == 0);
    }
    CHECK_EQ_INT(LOAD(&c, "--presence-ttl", "2"), -1);
    CHECK_EQ_INT(LOAD(&c, "--presence-page-max", "0"), -1);
    /* In the file; a --presence flag replaces the file's rules. */
    char path[64];
    temp_file(path, "[channels]\npresence = room:* join_leave\npresence = lobby\n"
                    "presence_ttl = 9\n");
    CHECK_EQ_INT(LOAD(&c, "--config", path), 0);
    CHECK(c.n_presence == 2 && c.presence[0].join_leave && c.presence_ttl_s == 9);
    rc_config_free(&c);
    CHECK_EQ_INT(LOAD(&c, "--config", path, "--presence", "x:*"), 0);
    CHECK(c.n_presence == 1 && strcmp(c.presence[0].pattern, "x:*") == 0 &&
          !c.presence[0].join_leave);
    rc_config_free(&c);
    unlink(path);
}

static void test_deflate_options(void)
{
    rc_config c;
    CHECK_EQ_INT(LOAD(&c, "--shards", "1"), 0);
    CHECK(c.permessage_deflate == 1 && c.deflate_min_bytes == 128 && c.n_deflate == 0);
    CHECK_EQ_INT(rc_config_deflate(&c, "any:1", 5), 1);
    rc_config_free(&c);
    CHECK_EQ_INT(LOAD(&c, "--no-permessage-deflate", "--deflate-min-bytes", "0", "--deflate",
                      "bin:* off", "--deflate", "bin:text:* on", "--deflate", "raw:* off"),
                 0);
    CHECK(c.permessage_deflate == 0 && c.deflate_min_bytes == 0 && c.n_deflate == 3);
    CHECK_EQ_INT(rc_config_deflate(&c, "bin:1", 5), 0);
    CHECK_EQ_INT(rc_config_deflate(&c, "bin:text:1", 10), 0); /* first match wins */
    CHECK_EQ_INT(rc_config_deflate(&c, "raw:x", 5), 0);
    CHECK_EQ_INT(rc_config_deflate(&c, "news:1", 6), 1);
    rc_config_free(&c);
    static const char *const bad[] = {"", "bin:*", "bin:* maybe", "bin:* on off", "a,b on"};
    for (size_t i = 0; i < RC_ARRAY_LEN(bad); i++) {
        const char *argv[] = {"ringcast", "--deflate", bad[i]};
        int rc = rc_config_load(&c, 3, (char **)argv, err, sizeof(err));
        if (rc != -1)
            fprintf(stderr, "  accepted bad rule '%s'\n", bad[i]);
        CHECK_EQ_INT(rc, -1);
        CHECK(strncmp(err, "--deflate:", 10) == 0);
    }
    /* In the file; a flag replaces the file's rules. */
    char path[64];
    temp_file(path, "[server]\npermessage_deflate = off\ndeflate_min_bytes = 512\n"
                    "[channels]\ndeflate = img:* off\n");
    CHECK_EQ_INT(LOAD(&c, "--config", path), 0);
    CHECK(!c.permessage_deflate && c.deflate_min_bytes == 512 && c.n_deflate == 1 &&
          rc_config_deflate(&c, "img:1", 5) == 0);
    rc_config_free(&c);
    CHECK_EQ_INT(LOAD(&c, "--config", path, "--permessage-deflate", "--deflate", "x:* off"), 0);
    CHECK(c.permessage_deflate && c.n_deflate == 1 && rc_config_deflate(&c, "img:1", 5) == 1);
    rc_config_free(&c);
    unlink(path);
}

static void test_socketio_options(void)
{
    rc_config c;
    CHECK_EQ_INT(LOAD(&c, "--log-level", "info"), 0);
    CHECK(c.sio_on && strcmp(c.sio_path, "/socket.io/") == 0 && c.n_sio_nsps == 0 &&
          c.n_sio_maps == 0);
    CHECK_EQ_INT(c.sio_recovery_s, 120);
    rc_config_free(&c);
    CHECK_EQ_INT(LOAD(&c, "--socketio-recovery", "0"), 0);
    CHECK_EQ_INT(c.sio_recovery_s, 0);
    rc_config_free(&c);
    CHECK_EQ_INT(LOAD(&c, "--no-socketio", "--socketio-path", "/rt/", "--socketio-namespace",
                      "/admin,/chat", "--socketio-map", "join:event subscribe event:",
                      "--socketio-map", " leave:event  unsubscribe event: ", "--socketio-map",
                      "say publish room:", "--socketio-map", "message publish"),
                 0);
    CHECK(!c.sio_on && strcmp(c.sio_path, "/rt/") == 0);
    CHECK_EQ_INT(c.n_sio_nsps, 2);
    CHECK_EQ_INT(c.n_sio_maps, 4);
    if (c.n_sio_nsps == 2 && c.n_sio_maps == 4) {
        CHECK_EQ_STR(c.sio_maps[3].prefix, "");
        CHECK_EQ_STR(c.sio_nsps[1], "/chat");
        CHECK_EQ_STR(c.sio_maps[1].event, "leave:event");
        CHECK_EQ_STR(c.sio_maps[1].prefix, "event:");
        CHECK_EQ_INT(c.sio_maps[1].op, RC_SIO_MAP_UNSUBSCRIBE);
        CHECK_EQ_INT(c.sio_maps[2].op, RC_SIO_MAP_PUBLISH);
    }
    rc_config_free(&c);
    /* Refused, each with its reason. */
    static const char *const bad[][2] = {
        {"--socketio-namespace", "admin"},
        {"--socketio-namespace", "/"},
        {"--socketio-namespace", "/a/b"},
        {"--socketio-namespace", "/a,/a"},
        {"--socketio-namespace", "/a b"},
        {"--socketio-namespace", "/1,/2,/3,/4,/5,/6,/7,/8"},
        {"--socketio-map", "join"},
        {"--socketio-map", "join follow event:"},
        {"--socketio-map", "j#n subscribe x"},
        {"--socketio-map", "join subscribe ev#"},
        {"--socketio-map", "a subscribe b c"},
        {"--socketio-path", "socket.io"},
        {"--socketio-recovery", "86401"},
        {"--socketio-recovery", "-1"},
    };
    for (size_t i = 0; i < RC_ARRAY_LEN(bad); i++) {
        char *argv[] = {"ringcast", (char *)bad[i][0], (char *)bad[i][1], NULL};
        CHECK_EQ_INT(rc_config_load(&c, 3, argv, err, sizeof(err)), -1);
        CHECK(strstr(err, bad[i][0] + 2) != NULL);
        rc_config_free(&c);
    }
}

static void test_history_rules(void)
{
    rc_config c;
    CHECK_EQ_INT(LOAD(&c, "--history", "chat:* size=100 ttl=3600", "--history",
                      "  news:{sub}   ttl=60 size=1  "),
                 0);
    CHECK_EQ_INT(c.n_history, 2);
    CHECK_EQ_INT(c.recovery_max, 1000);
    CHECK_EQ_INT(c.history_meta_ttl_s, 30 * 86400);
    if (c.n_history == 2) {
        CHECK_EQ_STR(c.history[0].pattern, "chat:*");
        CHECK_EQ_INT(c.history[0].size, 100);
        CHECK_EQ_INT(c.history[0].ttl_s, 3600);
        CHECK_EQ_STR(c.history[1].pattern, "news:{sub}");
        CHECK_EQ_INT(c.history[1].size, 1);
        CHECK_EQ_INT(c.history[1].ttl_s, 60);
    }
    /* First match wins; {sub} matches no user here (history is not per reader). */
    const rc_history_rule *r = rc_config_history(&c, "chat:1", 6);
    CHECK(r && r->size == 100);
    CHECK(rc_config_history(&c, "other", 5) == NULL);
    CHECK(rc_config_history(&c, "news:x", 6) == NULL);
    rc_config_free(&c);
    CHECK_EQ_INT(c.n_history, 0);

    static const char *const bad[] = {
        "chat:*",                                 /* no size, no ttl */
        "chat:* size=0 ttl=1",                    /* size out of range */
        "chat:* size=100001 ttl=1",               /* past the cap */
        "chat:* size=1 ttl=0",                    /* ttl out of range */
        "chat:* size=1 ttl=2592001",              /* past 30 days */
        "chat:* size=1 ttl=1 color=red",          /* unknown member */
        "a,b size=1 ttl=1",                       /* one pattern per rule */
        "size=1 ttl=1",                           /* no pattern */
        "chat:* size=-1 ttl=1",                   /* not a number */
        "chat:* size=18446744073709551616 ttl=1", /* overflow */
    };
    for (size_t i = 0; i < RC_ARRAY_LEN(bad); i++) {
        const char *argv[] = {"ringcast", "--history", bad[i]};
        int rc = rc_config_load(&c, 3, (char **)argv, err, sizeof(err));
        if (rc != -1)
            fprintf(stderr, "  accepted bad rule '%s'\n", bad[i]);
        CHECK_EQ_INT(rc, -1);
        CHECK(strncmp(err, "--history:", 10) == 0);
    }
    /* In the file: [channels], one rule per line; a --history flag replaces them. */
    char path[64];
    temp_file(path, "[channels]\nhistory = chat:* size=7 ttl=60\nhistory = news:* size=2 ttl=5\n"
                    "recovery_max = 20\nhistory_meta_ttl = 120\n");
    CHECK_EQ_INT(LOAD(&c, "--config", path), 0);
    CHECK_EQ_INT(c.n_history, 2);
    CHECK(c.n_history == 2 && c.history[1].size == 2 && c.history[1].ttl_s == 5);
    CHECK_EQ_INT(c.recovery_max, 20);
    CHECK_EQ_INT(c.history_meta_ttl_s, 120);
    rc_config_free(&c);
    CHECK_EQ_INT(LOAD(&c, "--config", path, "--history", "x:* size=1 ttl=1"), 0);
    CHECK(c.n_history == 1 && strcmp(c.history[0].pattern, "x:*") == 0);
    rc_config_free(&c);
    /* Data must not outlive the epoch and offset that make sense of it. */
    CHECK_EQ_INT(
        LOAD(&c, "--config", path, "--history-meta-ttl", "60", "--history", "x:* size=1 ttl=61"),
        -1);
    CHECK(strstr(err, "--history-meta-ttl") != NULL);
    unlink(path);

    /* The cap on the number of rules. */
    const char *many[2 + 2 * (RC_MAX_PUBLIC_PATTERNS + 1)];
    int n = 0;
    many[n++] = "ringcast";
    for (int i = 0; i <= RC_MAX_PUBLIC_PATTERNS; i++) {
        many[n++] = "--history";
        many[n++] = "c:* size=1 ttl=1";
    }
    CHECK_EQ_INT(rc_config_load(&c, n, (char **)many, err, sizeof(err)), -1);
    CHECK(strstr(err, "history rules") != NULL);
}

static void test_help_version(void)
{
    rc_config c;
    fflush(stdout);
    FILE *saved = stdout;
    FILE *tmp = tmpfile();
    CHECK(tmp != NULL);
    if (!tmp)
        return;
    stdout = tmp;
    int rc_help = LOAD(&c, "--shards", "2", "--help");
    int rc_h = LOAD(&c, "-h");
    int rc_ver = LOAD(&c, "--version");
    fflush(tmp);
    stdout = saved;
    CHECK_EQ_INT(rc_help, 1);
    CHECK_EQ_INT(rc_h, 1);
    CHECK_EQ_INT(rc_ver, 1);

    char out[32768];
    rewind(tmp);
    size_t n = fread(out, 1, sizeof(out) - 1, tmp);
    out[n] = '\0';
    fclose(tmp);
    CHECK(strstr(out, "ringcast 0.1.0\n") != NULL);
    /* Look at the first of the two help texts only. */
    char *second = strstr(out + 1, "usage:");
    CHECK(second != NULL);
    if (second)
        *second = '\0';

    /* The usage names every long flag from config.h's comments. */
    static const char *flags[] = {
        "--listen",
        "--ws-path",
        "--shards",
        "--[no-]pin",
        "--node-id",
        "--log-level",
        "--max-connections",
        "--max-conns-per-ip",
        "--handshake-rate ",
        "--handshake-rate-per-ip",
        "--handshake-timeout-ms",
        "--max-header-bytes",
        "--max-body-bytes",
        "--max-message-bytes",
        "--max-channels ",
        "--max-channel-len",
        "--msg-rate",
        "--msg-burst",
        "--send-backlog-bytes",
        "--backlog-policy",
        "--ping-interval-ms",
        "--pong-timeout-ms",
        "--drain-timeout-ms",
        "--jwt-secret",
        "--api-key",
        "--public",
        "--allowed-origin",
        "--jwt-secret-previous",
        "--admission-secret-previous",
        "--[no-]anonymous ",
        "--[no-]anonymous-publish",
        "--recv-buf-size",
        "--recv-buf-count",
        "--queue-size",
        "--ring-entries",
        "--[no-]user-channels",
        "--redis-url",
        "--redis-prefix",
        "--redis-backlog-bytes",
        "--redis-ping-ms",
        "--admission-secret",
        "--admission-tick-ms",
        "--history RULE",
        "--recovery-max",
        "--history-meta-ttl",
        "--config",
        "--help",
        "--version",
        "RINGCAST_JWT_SECRET",
        "RINGCAST_API_KEY",
        "RINGCAST_REDIS_URL",
        "RINGCAST_ADMISSION_SECRET",
        "_SECRET_PREVIOUS",
    };
    for (size_t i = 0; i < RC_ARRAY_LEN(flags); i++) {
        if (!strstr(out, flags[i]))
            fprintf(stderr, "  usage lacks %s\n", flags[i]);
        CHECK(strstr(out, flags[i]) != NULL);
    }
    /* Every option line states its default. */
    int lines = 0, with_default = 0;
    for (char *l = strstr(out, "\n  --"); l; l = strstr(l + 1, "\n  --")) {
        char *end = strchr(l + 1, '\n');
        size_t len = end ? (size_t)(end - l) : strlen(l);
        lines++;
        char line[256];
        snprintf(line, sizeof(line), "%.*s", (int)RC_MIN(len, sizeof(line) - 1), l);
        if (strstr(line, "default") || strstr(line, "--config") || strstr(line, "--help") ||
            strstr(line, "--version"))
            with_default++;
    }
    CHECK_EQ_INT(lines, 69);
    CHECK_EQ_INT(with_default, lines);
}

static void test_listen_variants(void)
{
    static const struct {
        const char *in, *host;
        int port;
    } good[] = {
        {"127.0.0.1:8080", "127.0.0.1", 8080},
        {"[::1]:8080", "::1", 8080},
        {"[::]:1", "::", 1},
        {":8080", "0.0.0.0", 8080},
        {"localhost:65535", "localhost", 65535},
        {"edge-1.example.com:443", "edge-1.example.com", 443},
    };
    rc_config c;
    for (size_t i = 0; i < RC_ARRAY_LEN(good); i++) {
        CHECK_EQ_INT(LOAD(&c, "--listen", (char *)good[i].in), 0);
        CHECK_EQ_STR(c.listen_host, good[i].host);
        CHECK_EQ_INT(c.listen_port, good[i].port);
        rc_config_free(&c);
    }
    static const char *bad[] = {
        "8080",    "::1:8080", "[::1]8080", "[::1]", "[zz]:1", "[]:1",  "h:0",
        "h:65536", "h:",       "[::1]:",    "h:80x", "h:-1",   "a b:1", "[::1:80"};
    for (size_t i = 0; i < RC_ARRAY_LEN(bad); i++) {
        int rc = LOAD(&c, "--listen", (char *)bad[i]);
        if (rc != -1)
            fprintf(stderr, "  accepted --listen '%s'\n", bad[i]);
        CHECK_EQ_INT(rc, -1);
        CHECK(starts_with(err, "--listen:"));
    }
}

int main(void)
{
    unsetenv("RINGCAST_JWT_SECRET");
    unsetenv("RINGCAST_API_KEY");
    unsetenv("RINGCAST_REDIS_URL");
    RUN(test_defaults);
    RUN(test_flags);
    RUN(test_file_then_flags);
    RUN(test_env_overrides);
    RUN(test_redis);
    RUN(test_origins);
    RUN(test_bad_flags);
    RUN(test_bad_file);
    RUN(test_public_repeat);
    RUN(test_socketio_options);
    RUN(test_history_rules);
    RUN(test_presence_rules);
    RUN(test_deflate_options);
    RUN(test_event_rules);
    RUN(test_help_version);
    RUN(test_listen_variants);
    return UNIT_DONE();
}
