/* ringcast configuration: one table of options drives the defaults, the INI
 * file, the command-line flags and the --help text, so the four cannot drift
 * apart.
 *
 * Thread: the main thread, before any other thread starts; read-only afterwards. */
#include "engine/config.h"
#include "engine/config_options.h"
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

#define N_OPTS   rc_cfg_nopts
#define OPT_BASE 256 /* getopt val of rc_cfg_opts[i] is OPT_BASE + i */

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
    int cli_deflate;  /* the same for --deflate */
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

static void clear_deflate(rc_config *cfg)
{
    for (int i = 0; i < cfg->n_deflate; i++)
        free(cfg->deflate[i].pattern);
    memset(cfg->deflate, 0, sizeof(cfg->deflate));
    cfg->n_deflate = 0;
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
    clear_deflate(cfg);
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

int rc_config_deflate(const rc_config *cfg, const char *name, size_t len)
{
    for (int i = 0; i < cfg->n_deflate; i++)
        if (rc_pattern_match(cfg->deflate[i].pattern, name, len, NULL))
            return cfg->deflate[i].on;
    return 1;
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
            if (*p == '{' || *p == '}') {
                snprintf(msg, ml, "may not hold { or }: a Redis Cluster reads them as a hash tag");
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
        rc_redis_url u[RC_REDIS_MAX_SEEDS];
        size_t nseeds;
        if (*v && rc_redis_seeds_parse(v, u, RC_REDIS_MAX_SEEDS, &nseeds, msg, ml) < 0)
            return -1;
        return rc_cfg_copy_str(field(cfg, o), o->size, v, msg, ml);
    }
    case K_PREFIX:
        for (const char *p = v; *p; p++) {
            if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f) {
                snprintf(msg, ml, "must be visible ASCII");
                return -1;
            }
            if (*p == '{' || *p == '}') {
                snprintf(msg, ml, "may not hold { or }: a Redis Cluster reads them as a hash tag");
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
    case K_DEFLATE:
        if (from_flag && !L->cli_deflate) {
            L->cli_deflate = 1;
            clear_deflate(cfg);
        }
        if (cfg->n_deflate >= RC_MAX_PUBLIC_PATTERNS) {
            snprintf(msg, ml, "more than %d deflate rules", RC_MAX_PUBLIC_PATTERNS);
            return -1;
        }
        if (rc_cfg_parse_deflate(&cfg->deflate[cfg->n_deflate], v, msg, ml) < 0)
            return -1;
        cfg->n_deflate++;
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
    cfg->permessage_deflate = 1;
    cfg->deflate_min_bytes = 128;
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
    for (size_t i = 0; i < rc_cfg_nsections; i++)
        known_section |= strcmp(section, rc_cfg_sections[i]) == 0;
    if (!section[0]) {
        fail(L, "%s:%d: '%s' is outside any [section]", L->file, L->line, name);
        return 0;
    }
    if (!known_section) {
        fail(L, "%s:%d: unknown section [%s]", L->file, L->line, section);
        return 0;
    }
    for (size_t i = 0; i < N_OPTS; i++) {
        const struct opt *o = &rc_cfg_opts[i];
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
        lo[i].name = rc_cfg_opts[i].name;
        lo[i].has_arg = rc_cfg_opts[i].arg ? required_argument : no_argument;
        lo[i].flag = NULL;
        lo[i].val = OPT_BASE + (int)i;
    }
    memset(&lo[N_OPTS], 0, sizeof(lo[N_OPTS]));
}

static const struct opt *find_opt(const char *name)
{
    for (size_t i = 0; i < N_OPTS; i++)
        if (strcmp(rc_cfg_opts[i].name, name) == 0)
            return &rc_cfg_opts[i];
    return NULL;
}

/* Pass 1 finds --config, --help and --version (so the file applies before
 * the flags wherever --config sits); pass 2 applies the other flags. Both
 * passes use getopt_long, so "--config=F", abbreviations and values that look
 * like flags are understood the same way. Returns 0, 1 (help/version) or -1. */
static int scan_args(struct loader *L, int argc, char **argv, int pass, const char **config)
{
    struct option lo[RC_CFG_MAX_OPTS + 1];
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
                     rc_cfg_opts[optopt - OPT_BASE].name);
            else if (optopt)
                fail(L, "unknown option '-%c'", optopt);
            else
                fail(L, "unknown or ambiguous option '%.80s'", arg);
            return -1;
        }
        const struct opt *o = c == 'h' ? find_opt("help") : &rc_cfg_opts[c - OPT_BASE];
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
    for (size_t s = 0; s <= rc_cfg_nsections; s++) {
        const char *sec = s ? rc_cfg_sections[s - 1] : NULL;
        fprintf(f, "\n%s", s ? rc_cfg_section_titles[s - 1] : "General");
        if (sec)
            fprintf(f, " [%s]", sec);
        fputs(":\n", f);
        for (size_t i = 0; i < N_OPTS; i++) {
            const struct opt *o = &rc_cfg_opts[i];
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
