/* Engine.IO's HTTP long-polling transport, and the way a polling session
 * upgrades to a WebSocket (issue 15).
 *
 * A polling session is a virtual connection (engine/shard.h) on the shard
 * that took its handshake: GET /socket.io/?EIO=4&transport=polling opens it
 * and answers the open packet; GET with its sid waits until the session has
 * something to say (at the latest its next ping) and answers every packet
 * queued, separated by 0x1e; POST with its sid brings the client's packets.
 * A request that reaches another shard goes to the session's shard with its
 * socket (rc_conn_move): the sid names the shard. Sessions live on one node,
 * so a balancer in front of several must route by sid (sticky sessions);
 * a sid no session has is answered 400 {"code":1,"message":"Session ID
 * unknown"}, on which clients start a new session.
 *
 * The upgrade: a WebSocket request with the sid becomes the session's
 * carrier. It answers the probe ("2probe": "3probe"); at "5" the session's
 * packets take the WebSocket from then on, and the parked GET is answered
 * "6" (noop).
 *
 * Browsers on other origins: every answer carries CORS headers with
 * credentials for an allowed origin (--allowed-origin), and OPTIONS is
 * answered for preflights.
 *
 * Thread: the shard that owns the connection. */
#ifndef RC_SIO_POLL_H
#define RC_SIO_POLL_H

#include "engine/shard.h"
#include "net/http.h"

/* An Engine.IO refusal: 400 (403 for code 4) with {"code":N,"message":M},
 * the body Engine.IO clients read; code: 0 transport unknown, 1 session ID
 * unknown, 2 bad handshake method, 3 bad request, 4 forbidden, 5
 * unsupported protocol version. */
void rc_sio_refuse(rc_shard *s, rc_conn *c, const rc_http_req *req, int code);

/* A request of the polling transport (GET, POST or OPTIONS). */
void rc_sio_poll(rc_shard *s, rc_conn *c, const rc_http_req *req, rc_httpbuf *hb);

/* A WebSocket request with sid: 1 when c was moved to the session's shard
 * or refused (done), 0 when c is to be upgraded here as the carrier of its
 * session (set up). */
int rc_sio_upgrade_sid(rc_shard *s, rc_conn *c, const rc_http_req *req, const char *sid);

/* A parked GET's timer fired. */
void rc_sio_poll_timeout(rc_shard *s, rc_conn *c);

#endif
