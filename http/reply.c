/* Answers on the HTTP side: every HTTP answer of the port is written here,
 * then the connection is closed (Connection: close).
 *
 * Thread: the shard that owns the connection. */
#include <string.h>
#include <strings.h>

#include "http/reply.h"

#include "net/http.h"

int rc_http_str_is(rc_str a, const char *b)
{
    size_t n = strlen(b);
    return a.n == n && memcmp(a.p, b, n) == 0;
}

void rc_http_reply(rc_shard *s, rc_conn *c, int status, const char *content_type, const char *body,
                   size_t len, const char *extra)
{
    if (c->state != RC_CONN_HTTP)
        return;
    size_t cap = len + 512 + (extra ? strlen(extra) : 0);
    char *buf = rc_malloc(cap);
    int n = rc_http_response(buf, cap, status, content_type, extra, body, len);
    rc_assert(n > 0);
    rc_conn_send(s, c, rc_obuf_raw(buf, (size_t)n));
    free(buf);
    free(c->sess);
    c->sess = NULL;
    c->state = RC_CONN_FINAL;
    rc_conn_timer(s, c, 5000);
}

void rc_http_text(rc_shard *s, rc_conn *c, int status, const char *text, const char *extra)
{
    rc_http_reply(s, c, status, "text/plain; charset=utf-8", text, strlen(text), extra);
}

/* Is origin o admitted by pattern p: "*", an exact origin, or an origin
 * whose host starts with a "*." label (https, then "://", "*.", shop.example,
 * and an optional port: any subdomain, not the domain itself)? Origins are
 * compared without regard to case (RFC 6454 serializes them in lower case;
 * some clients do not). */
static int origin_match(const char *p, rc_str o)
{
    size_t pn = strlen(p);
    if (pn == 1 && p[0] == '*')
        return 1;
    const char *star = strstr(p, "://*.");
    if (!star)
        return pn == o.n && strncasecmp(p, o.p, pn) == 0;
    size_t scheme = (size_t)(star - p) + 3; /* "https://" */
    size_t suffix = pn - scheme - 1;        /* ".domain[:port]" */
    return o.n > scheme + suffix && strncasecmp(o.p, p, scheme) == 0 &&
           strncasecmp(o.p + o.n - suffix, p + scheme + 1, suffix) == 0 &&
           !memchr(o.p + scheme, '/', o.n - scheme - suffix);
}

/* With --allowed-origin, a browser (which always sends Origin) from any
 * other site is refused; clients that send no Origin are not browsers and
 * are judged by their token alone. */
int rc_http_origin_ok(const rc_shard *s, rc_str origin)
{
    if (!s->cfg->n_allowed_origins || !origin.p)
        return 1;
    for (int i = 0; i < s->cfg->n_allowed_origins; i++)
        if (origin_match(s->cfg->allowed_origins[i], origin))
            return 1;
    return 0;
}
