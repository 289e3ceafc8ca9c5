/* The values of options: strict numbers, booleans, strings that must fit,
 * the listen address, lists of patterns. engine/config.c's table says which
 * option takes which.
 *
 * Thread: the main thread, before any other thread starts. */
#include "engine/config_values.h"

#include "proto/protocol.h"

#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

/* Strict decimal: digits only, no sign or spaces, no overflow. */
int rc_cfg_parse_u64(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    if (!*s)
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int rc_cfg_parse_bool(const char *s, int *out)
{
    static const char *const t[] = {"1", "true", "yes", "on"};
    static const char *const f[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < RC_ARRAY_LEN(t); i++) {
        if (strcasecmp(s, t[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(s, f[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

int rc_cfg_copy_str(char *dst, size_t size, const char *v, char *msg, size_t ml)
{
    size_t n = strlen(v);
    if (n >= size) {
        snprintf(msg, ml, "longer than %zu bytes", size - 1);
        return -1;
    }
    memcpy(dst, v, n + 1);
    return 0;
}

int rc_cfg_host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '-' || c == '_';
}

int rc_cfg_parse_listen(rc_config *cfg, const char *v, char *msg, size_t ml)
{
    char host[256];
    const char *port_s;
    if (v[0] == '[') {
        const char *close = strchr(v, ']');
        size_t hn = close ? (size_t)(close - v - 1) : 0;
        struct in6_addr a6;
        if (!close || close[1] != ':' || hn == 0 || hn >= sizeof(host)) {
            snprintf(msg, ml, "expected [IPV6]:PORT, got '%.80s'", v);
            return -1;
        }
        memcpy(host, v + 1, hn);
        host[hn] = '\0';
        if (inet_pton(AF_INET6, host, &a6) != 1) {
            snprintf(msg, ml, "'%.80s' is not an IPv6 address", host);
            return -1;
        }
        port_s = close + 2;
    } else {
        const char *colon = strrchr(v, ':');
        if (!colon) {
            snprintf(msg, ml, "expected HOST:PORT, got '%.80s'", v);
            return -1;
        }
        size_t hn = (size_t)(colon - v);
        if (hn >= sizeof(host)) {
            snprintf(msg, ml, "host longer than %zu bytes", sizeof(host) - 1);
            return -1;
        }
        memcpy(host, v, hn);
        host[hn] = '\0';
        for (size_t i = 0; i < hn; i++) {
            if (!rc_cfg_host_char(host[i])) {
                snprintf(msg, ml, "bad host '%.80s' (IPv6 goes in brackets: [::1]:8080)", host);
                return -1;
            }
        }
        if (hn == 0)
            strcpy(host, "0.0.0.0");
        port_s = colon + 1;
    }
    uint64_t port;
    if (rc_cfg_parse_u64(port_s, &port) < 0 || port < 1 || port > 65535) {
        snprintf(msg, ml, "port must be 1..65535, got '%.20s'", port_s);
        return -1;
    }
    strcpy(cfg->listen_host, host);
    cfg->listen_port = (uint16_t)port;
    return 0;
}

/* Adds the comma-separated patterns of v to list[*n] (at most
 * RC_MAX_PUBLIC_PATTERNS). */
int rc_cfg_add_patterns(char **list, int *count, const char *v, char *msg, size_t ml)
{
    const char *p = v;
    for (;;) {
        const char *comma = strchr(p, ',');
        const char *e = comma ? comma : p + strlen(p);
        while (p < e && (*p == ' ' || *p == '\t'))
            p++;
        while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        size_t n = (size_t)(e - p);
        if (n == 0 || n > 256) {
            snprintf(msg, ml, "a pattern must be 1..256 bytes");
            return -1;
        }
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)p[i];
            if (c <= 0x20 || c == 0x7f) {
                snprintf(msg, ml, "pattern '%.*s' has a space or control character",
                         (int)RC_MIN(n, 80u), p);
                return -1;
            }
        }
        if (*count >= RC_MAX_PUBLIC_PATTERNS) {
            snprintf(msg, ml, "more than %d patterns", RC_MAX_PUBLIC_PATTERNS);
            return -1;
        }
        list[(*count)++] = rc_strndup(p, n);
        if (!comma)
            return 0;
        p = comma + 1;
    }
}

void rc_cfg_clear_list(char **list, int *count)
{
    for (int i = 0; i < *count; i++) {
        free(list[i]);
        list[i] = NULL;
    }
    *count = 0;
}

/* The single pattern of a rule (what: its kind, for the message) into *out. */
static int one_pattern(char **out, const char *pattern, const char *what, char *msg, size_t ml)
{
    if (strchr(pattern, ',')) {
        snprintf(msg, ml, "one pattern per %s rule", what);
        return -1;
    }
    char *list[1];
    int n = 0;
    if (rc_cfg_add_patterns(list, &n, pattern, msg, ml) < 0)
        return -1;
    *out = list[0];
    return 0;
}

/* "PATTERN size=N ttl=SECONDS", in any order after the pattern. */
int rc_cfg_parse_history(rc_history_rule *r, const char *v, char *msg, size_t ml)
{
    char buf[512];
    if (rc_cfg_copy_str(buf, sizeof(buf), v, msg, ml) < 0)
        return -1;
    uint64_t size = 0, ttl = 0;
    char *save = NULL, *pattern = NULL;
    for (char *t = strtok_r(buf, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
        if (!pattern) {
            pattern = t;
        } else if (strncmp(t, "size=", 5) == 0) {
            if (rc_cfg_parse_u64(t + 5, &size) < 0 || size < 1 || size > RC_HISTORY_MAX_SIZE) {
                snprintf(msg, ml, "size must be 1..%d, got '%.20s'", RC_HISTORY_MAX_SIZE, t + 5);
                return -1;
            }
        } else if (strncmp(t, "ttl=", 4) == 0) {
            if (rc_cfg_parse_u64(t + 4, &ttl) < 0 || ttl < 1 || ttl > 30 * 86400) {
                snprintf(msg, ml, "ttl must be 1..2592000 seconds, got '%.20s'", t + 4);
                return -1;
            }
        } else {
            snprintf(msg, ml, "expected 'PATTERN size=N ttl=SECONDS', got '%.40s'", t);
            return -1;
        }
    }
    if (!pattern || !size || !ttl) {
        snprintf(msg, ml, "expected 'PATTERN size=N ttl=SECONDS'");
        return -1;
    }
    if (one_pattern(&r->pattern, pattern, "history", msg, ml) < 0)
        return -1;
    r->size = (uint32_t)size;
    r->ttl_s = (uint32_t)ttl;
    return 0;
}

/* "PATTERN on|off". */
int rc_cfg_parse_deflate(rc_deflate_rule *r, const char *v, char *msg, size_t ml)
{
    char buf[512];
    if (rc_cfg_copy_str(buf, sizeof(buf), v, msg, ml) < 0)
        return -1;
    char *save = NULL, *pattern = NULL;
    int on = -1;
    for (char *t = strtok_r(buf, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
        if (!pattern) {
            pattern = t;
        } else if (on < 0 && (strcmp(t, "on") == 0 || strcmp(t, "off") == 0)) {
            on = strcmp(t, "on") == 0;
        } else {
            snprintf(msg, ml, "expected 'PATTERN on|off', got '%.40s'", t);
            return -1;
        }
    }
    if (!pattern || on < 0) {
        snprintf(msg, ml, "expected 'PATTERN on|off'");
        return -1;
    }
    if (one_pattern(&r->pattern, pattern, "deflate", msg, ml) < 0)
        return -1;
    r->on = on;
    return 0;
}

/* "PATTERN [join_leave]". */
int rc_cfg_parse_presence(rc_presence_rule *r, const char *v, char *msg, size_t ml)
{
    char buf[512];
    if (rc_cfg_copy_str(buf, sizeof(buf), v, msg, ml) < 0)
        return -1;
    char *save = NULL, *pattern = NULL;
    int join_leave = 0;
    for (char *t = strtok_r(buf, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
        if (!pattern) {
            pattern = t;
        } else if (strcmp(t, "join_leave") == 0) {
            join_leave = 1;
        } else {
            snprintf(msg, ml, "expected 'PATTERN [join_leave]', got '%.40s'", t);
            return -1;
        }
    }
    if (!pattern) {
        snprintf(msg, ml, "expected 'PATTERN [join_leave]'");
        return -1;
    }
    if (one_pattern(&r->pattern, pattern, "presence", msg, ml) < 0)
        return -1;
    r->join_leave = join_leave;
    return 0;
}

/* "PATTERN STREAM [maxlen=N]": STREAM is a name (the key is PREFIX "ev:"
 * STREAM). */
int rc_cfg_parse_event(rc_event_rule *r, const char *v, char *msg, size_t ml)
{
    char buf[512];
    if (rc_cfg_copy_str(buf, sizeof(buf), v, msg, ml) < 0)
        return -1;
    char *save = NULL, *pattern = NULL, *stream = NULL;
    uint64_t maxlen = 100000;
    for (char *t = strtok_r(buf, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
        if (!pattern) {
            pattern = t;
        } else if (!stream && !strchr(t, '=')) {
            stream = t;
        } else if (strncmp(t, "maxlen=", 7) == 0) {
            if (rc_cfg_parse_u64(t + 7, &maxlen) < 0 || maxlen < 1 || maxlen > 100000000) {
                snprintf(msg, ml, "maxlen must be 1..100000000, got '%.20s'", t + 7);
                return -1;
            }
        } else {
            snprintf(msg, ml, "expected 'PATTERN STREAM [maxlen=N]', got '%.40s'", t);
            return -1;
        }
    }
    if (!pattern || !stream) {
        snprintf(msg, ml, "expected 'PATTERN STREAM [maxlen=N]'");
        return -1;
    }
    for (const char *q = stream; *q; q++) {
        if (!((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9') ||
              strchr("_-.:", *q)) ||
            q - stream >= 64) {
            snprintf(msg, ml, "stream names are 1..64 characters of A-Z a-z 0-9 _ - . :");
            return -1;
        }
    }
    if (one_pattern(&r->pattern, pattern, "event", msg, ml) < 0)
        return -1;
    r->stream = rc_strndup(stream, strlen(stream));
    r->maxlen = (uint32_t)maxlen;
    return 0;
}

static char *dup_str(const char *v)
{
    size_t n = strlen(v) + 1;
    return memcpy(rc_malloc(n), v, n);
}

int rc_cfg_parse_sio_map(rc_sio_map *r, const char *v, char *msg, size_t ml)
{
    static const char usage[] = "expected 'EVENT subscribe|unsubscribe|publish [PREFIX]'";
    char buf[512];
    if (rc_cfg_copy_str(buf, sizeof(buf), v, msg, ml) < 0)
        return -1;
    char *save = NULL, *t[4] = {0};
    int n = 0;
    for (char *w = strtok_r(buf, " \t", &save); w; w = strtok_r(NULL, " \t", &save))
        if (n < 4)
            t[n++] = w;
    if (n != 2 && n != 3) {
        snprintf(msg, ml, "%s", usage);
        return -1;
    }
    int op = strcmp(t[1], "subscribe") == 0     ? RC_SIO_MAP_SUBSCRIBE
             : strcmp(t[1], "unsubscribe") == 0 ? RC_SIO_MAP_UNSUBSCRIBE
             : strcmp(t[1], "publish") == 0     ? RC_SIO_MAP_PUBLISH
                                                : 0;
    if (!op) {
        snprintf(msg, ml, "%s, got '%.40s'", usage, t[1]);
        return -1;
    }
    if (!rc_proto_name_valid(t[0], strlen(t[0]), RC_PROTO_MAX_EVENT)) {
        snprintf(msg, ml, "the event '%.40s' is not a valid event name", t[0]);
        return -1;
    }
    if (n == 3 && !rc_proto_name_valid(t[2], strlen(t[2]), RC_PROTO_MAX_CHANNEL - 1)) {
        snprintf(msg, ml, "the prefix '%.40s' is not the start of a valid channel name", t[2]);
        return -1;
    }
    r->event = dup_str(t[0]);
    r->prefix = dup_str(n == 3 ? t[2] : "");
    r->op = op;
    return 0;
}

int rc_cfg_check_sio_nsp(const char *v, char *msg, size_t ml)
{
    size_t n = strlen(v);
    if (n < 2 || v[0] != '/' || strchr(v + 1, '/') || !rc_proto_name_valid(v + 1, n - 1, 63)) {
        snprintf(msg, ml,
                 "must be '/' and 1..63 of A-Z a-z 0-9 _ - . : @ = + (no further '/'), got "
                 "'%.40s'",
                 v);
        return -1;
    }
    return 0;
}
