/* Answers on the HTTP side (http/reply.c), for the HTTP server, its API
 * and the shard's loop (refusals before a request is read).
 *
 * Thread: the shard that owns the connection. */
#ifndef RC_HTTP_REPLY_H
#define RC_HTTP_REPLY_H

#include "engine/shard.h"

/* Sends the answer (status, content type, body, extra header lines or NULL)
 * and ends the connection once it is out. Nothing when c is no longer HTTP. */
void rc_http_reply(rc_shard *s, rc_conn *c, int status, const char *content_type, const char *body,
                   size_t len, const char *extra);
/* A text/plain answer, with extra header lines (or NULL). */
void rc_http_text(rc_shard *s, rc_conn *c, int status, const char *text, const char *extra);
/* With --allowed-origin, a browser (which always sends Origin) from any
 * other site is refused: 0. Clients without Origin are not browsers: 1. */
int rc_http_origin_ok(const rc_shard *s, rc_str origin);
/* 1 when a is exactly the string b. */
int rc_http_str_is(rc_str a, const char *b);

#endif
