/* Redis URL parsing: see redis/url.h for the accepted grammar.
 *
 * Thread: any thread (the main thread at start-up, the relay on connect). */
#include "redis/url.h"

#include "base/common.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static int fail(rc_redis_url *out, char *err, size_t errlen, const char *fmt, ...)
{
    memset(out, 0, sizeof(*out));
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* Percent-decodes s[0..n) into dst (cap bytes with the NUL). %00 is refused:
 * the result is a C string and a silent truncation would change a password. */
static int pct_decode(const char *s, size_t n, char *dst, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '%') {
            if (i + 2 >= n)
                return -1;
            int hi = rc_hexval(s[i + 1]), lo = rc_hexval(s[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            c = hi * 16 + lo;
            if (c == 0)
                return -1;
            i += 2;
        }
        if (o + 1 >= cap)
            return -2;
        dst[o++] = (char)c;
    }
    dst[o] = '\0';
    return 0;
}

/* Digits only (no sign, no spaces), value <= max. */
static int parse_uint(const char *s, size_t n, long max, long *v)
{
    if (n == 0 || n > 10)
        return -1;
    long x = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        x = x * 10 + (s[i] - '0');
    }
    if (x > max)
        return -1;
    *v = x;
    return 0;
}

static int parse_unix(const char *p, rc_redis_url *out, char *err, size_t errlen)
{
    /* p follows "scheme://"; an empty authority means p starts with '/'. */
    if (*p != '/')
        return fail(out, err, errlen, "unix URL needs an absolute path (unix:///path)");
    const char *q = strchr(p, '?');
    size_t plen = q ? (size_t)(q - p) : strlen(p);
    if (strchr(p, '#'))
        return fail(out, err, errlen, "unix URL: fragment not allowed");
    if (plen < 2)
        return fail(out, err, errlen, "unix URL: empty socket path");
    if (plen >= sizeof(out->unix_path))
        return fail(out, err, errlen, "unix URL: socket path longer than %zu bytes",
                    sizeof(out->unix_path) - 1);
    memcpy(out->unix_path, p, plen);
    out->unix_path[plen] = '\0';
    if (q) {
        const char *a = q + 1;
        if (strncmp(a, "db=", 3) != 0)
            return fail(out, err, errlen, "unix URL: only ?db=N is supported");
        long v;
        if (parse_uint(a + 3, strlen(a + 3), 2147483647L, &v) < 0)
            return fail(out, err, errlen, "unix URL: db must be a non-negative integer");
        out->db = (int)v;
    }
    return 0;
}

int rc_redis_url_parse(const char *url, rc_redis_url *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (err && errlen)
        err[0] = '\0';
    if (!url || !*url)
        return fail(out, err, errlen, "empty Redis URL");
    const char *sep = strstr(url, "://");
    if (!sep)
        return fail(out, err, errlen, "Redis URL needs a scheme (redis:// or unix://)");
    size_t slen = (size_t)(sep - url);
    const char *p = sep + 3;
    if (slen == 6 && strncasecmp(url, "rediss", 6) == 0)
        return fail(out, err, errlen, "rediss:// (TLS) is not supported; use redis://");
    if ((slen == 4 && strncasecmp(url, "unix", 4) == 0) ||
        (slen == 10 && strncasecmp(url, "redis+unix", 10) == 0)) {
        return parse_unix(p, out, err, errlen);
    }
    if (!(slen == 5 && strncasecmp(url, "redis", 5) == 0))
        return fail(out, err, errlen, "unsupported scheme '%.*s' (redis:// or unix://)",
                    (int)(slen < 32 ? slen : 32), url);
    if (strpbrk(p, "?#"))
        return fail(out, err, errlen, "redis URL: query or fragment not allowed");

    const char *path = strchr(p, '/');
    size_t alen = path ? (size_t)(path - p) : strlen(p);
    /* The last '@' ends the userinfo: a raw '@' in a password must be %40, but
     * being lenient here costs nothing. */
    const char *at = NULL;
    for (size_t i = 0; i < alen; i++)
        if (p[i] == '@')
            at = p + i;
    const char *h = p;
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (!colon)
            return fail(out, err, errlen, "redis URL: userinfo must be [user]:password@");
        int rc = pct_decode(p, (size_t)(colon - p), out->user, sizeof(out->user));
        if (rc == -2)
            return fail(out, err, errlen, "redis URL: user too long");
        if (rc < 0)
            return fail(out, err, errlen, "redis URL: bad percent-encoding in user");
        rc = pct_decode(colon + 1, (size_t)(at - colon - 1), out->password, sizeof(out->password));
        if (rc == -2)
            return fail(out, err, errlen, "redis URL: password too long");
        if (rc < 0)
            return fail(out, err, errlen, "redis URL: bad percent-encoding in password");
        if (!out->password[0])
            return fail(out, err, errlen, "redis URL: empty password after ':'");
        h = at + 1;
    }
    size_t hlen = alen - (size_t)(h - p);
    const char *port = NULL;
    size_t hostlen;
    if (hlen && h[0] == '[') {
        const char *rb = memchr(h, ']', hlen);
        if (!rb)
            return fail(out, err, errlen, "redis URL: unterminated [IPv6] host");
        hostlen = (size_t)(rb - h - 1);
        if (rb + 1 < h + hlen) {
            if (rb[1] != ':')
                return fail(out, err, errlen, "redis URL: junk after ]");
            port = rb + 2;
        }
        h++;
    } else {
        const char *c = memchr(h, ':', hlen);
        hostlen = c ? (size_t)(c - h) : hlen;
        if (c)
            port = c + 1;
    }
    if (hostlen == 0)
        return fail(out, err, errlen, "redis URL: empty host");
    if (hostlen >= sizeof(out->host))
        return fail(out, err, errlen, "redis URL: host too long");
    for (size_t i = 0; i < hostlen; i++)
        if (h[i] == '%' || h[i] == ' ' || h[i] == '@' || h[i] == '[' || h[i] == ']')
            return fail(out, err, errlen, "redis URL: bad character in host");
    memcpy(out->host, h, hostlen);
    out->host[hostlen] = '\0';
    out->port = 6379;
    if (port) {
        long v;
        if (parse_uint(port, (size_t)(p + alen - port), 65535, &v) < 0 || v == 0)
            return fail(out, err, errlen, "redis URL: port must be 1..65535");
        out->port = (uint16_t)v;
    }
    if (path && path[1]) {
        long v;
        if (parse_uint(path + 1, strlen(path + 1), 2147483647L, &v) < 0)
            return fail(out, err, errlen, "redis URL: db must be a non-negative integer");
        out->db = (int)v;
    }
    return 0;
}

int rc_redis_seeds_parse(const char *list, rc_redis_url *out, size_t max, size_t *n, char *err,
                         size_t errlen)
{
    *n = 0;
    const char *sep = list ? strstr(list, "://") : NULL;
    const char *comma = sep ? strchr(sep, ',') : NULL;
    if (!comma) {
        if (max < 1 || rc_redis_url_parse(list, &out[0], err, errlen) < 0)
            return -1;
        *n = 1;
        return 0;
    }
    /* scheme://[userinfo@]host:port,host:port,...[/db]: each address with
     * the first one's scheme, userinfo and db */
    const char *p = sep + 3, *path = strchr(p, '/');
    const char *end = path ? path : p + strlen(p);
    const char *hosts = p;
    for (const char *c = p; c < end; c++)
        if (*c == '@')
            hosts = c + 1;
    const char *rest = end;
    for (const char *h = hosts; h < end;) {
        const char *e = memchr(h, ',', (size_t)(end - h));
        if (!e)
            e = end;
        if (*n == max) {
            if (err && errlen)
                snprintf(err, errlen, "Redis URL: more than %zu addresses", max);
            return -1;
        }
        char one[1024];
        int len = snprintf(one, sizeof(one), "%.*s%.*s%s", (int)(hosts - list), list, (int)(e - h),
                           h, rest);
        if (len < 0 || (size_t)len >= sizeof(one)) {
            if (err && errlen)
                snprintf(err, errlen, "Redis URL too long");
            return -1;
        }
        if (e == h) {
            if (err && errlen)
                snprintf(err, errlen, "Redis URL: an empty address in the list");
            return -1;
        }
        if (rc_redis_url_parse(one, &out[*n], err, errlen) < 0)
            return -1;
        if (out[*n].unix_path[0]) {
            if (err && errlen)
                snprintf(err, errlen, "Redis URL: a list of addresses must be redis://");
            return -1;
        }
        (*n)++;
        h = e == end ? end : e + 1;
    }
    return 0;
}
