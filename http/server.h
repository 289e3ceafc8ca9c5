/* The HTTP side of the listener port (http/server.c): the request head of
 * every new connection, the WebSocket upgrade (which hands the connection to
 * a protocol), /healthz, /readyz, /metrics; the HTTP API is http/api.c.
 *
 * Thread: the shard that owns the connection. */
#ifndef RC_HTTP_SERVER_H
#define RC_HTTP_SERVER_H

#include "admission/admission.h"
#include "engine/shard.h"

/* Bytes received while the connection speaks HTTP. */
void rc_http_input(rc_shard *s, rc_conn *c, const uint8_t *data, size_t len);
/* The handshake deadline passed. */
void rc_http_timeout(rc_shard *s, rc_conn *c);

#endif
