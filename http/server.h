/* The HTTP side of the listener port (http/server.c): the request head of
 * every new connection, the WebSocket upgrade (which hands the connection to
 * a protocol), /healthz, /readyz, /metrics and the HTTP API.
 *
 * Thread: the shard that owns the connection. */
#ifndef RC_HTTP_SERVER_H
#define RC_HTTP_SERVER_H

#include "admission/admission.h"
#include "engine/shard.h"

/* Bytes received while the connection speaks HTTP. */
void rc_http_input(rc_shard *s, rc_conn *c, const uint8_t *data, size_t len);
/* Answers with a whole HTTP response and closes after it is sent. */
void rc_http_reply(rc_shard *s, rc_conn *c, int status, const char *content_type, const char *body,
                   size_t len, const char *extra);
/* The handshake deadline passed. */
void rc_http_timeout(rc_shard *s, rc_conn *c);
/* The relay's answer to an HTTP API call on queues (/api/queues): the
 * answer goes to the caller, if still there; frees k. */
void rc_http_on_calldone(rc_shard *s, rc_call *k);
/* The relay's answer to GET /api/channels/{ch}/history; frees q. */
struct rc_histreq;
void rc_http_on_history(rc_shard *s, struct rc_histreq *q);
/* The relay's answer to GET /api/channels/{ch}/presence or /presence-stats;
 * frees q. */
struct rc_presreq;
void rc_http_on_presence(rc_shard *s, struct rc_presreq *q);

#endif
