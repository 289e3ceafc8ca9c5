/* Redis URL parsing for the relay's Redis connections.
 *
 * Accepted forms:
 *   redis://[[user]:password@]host[:port][/db]     host may be [IPv6]
 *   unix:///path/to/sock[?db=N]                    also redis+unix://
 * rediss:// is refused (ringcast speaks no TLS to Redis). User and password
 * are percent-decoded. Defaults: port 6379, db 0. Schemes are
 * case-insensitive. Thread: any (pure function). */
#ifndef RC_REDIS_URL_H
#define RC_REDIS_URL_H

#include <stddef.h>
#include <stdint.h>

typedef struct rc_redis_url {
    char host[256];      /* empty for a unix socket */
    uint16_t port;       /* 0 for a unix socket */
    char unix_path[108]; /* empty for TCP; fits sockaddr_un.sun_path */
    char user[128];      /* empty: AUTH with the password only */
    char password[256];  /* empty: no AUTH */
    int db;              /* SELECT db when non-zero */
} rc_redis_url;

/* Parses url into *out. Returns 0, or -1 with a one-line reason written to
 * err (NUL-terminated, truncated to errlen; err may be NULL when errlen is 0).
 * On error *out is left zeroed, never half-filled. */
int rc_redis_url_parse(const char *url, rc_redis_url *out, char *err, size_t errlen);

#define RC_REDIS_MAX_SEEDS 16

/* A list of seeds (a Redis Cluster's nodes, any of which can tell the
 * rest): redis://[[user]:password@]host:port,host:port,...[/db], each
 * address taking the first one's userinfo and db; or one URL of the form
 * above. Fills out[0..*n), *n <= max. 0, or -1 with err. */
int rc_redis_seeds_parse(const char *list, rc_redis_url *out, size_t max, size_t *n, char *err,
                         size_t errlen);

#endif
