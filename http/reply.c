/* Answers on the HTTP side: every HTTP answer of the port is written here,
 * then the connection is closed (Connection: close).
 *
 * Thread: the shard that owns the connection. */
#include <string.h>

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
