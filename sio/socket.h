/* The Socket.IO protocol module: Socket.IO v5 over Engine.IO v4, for
 * unmodified socket.io-client applications (issue 15).
 *
 * A connection on --socketio-path speaks it (c->proto RC_PROTO_SIO). The
 * node greets it with Engine.IO's open packet and pings it every
 * --ping-interval-ms ("2"; a client that has not answered "3" within
 * --pong-timeout-ms is closed). The client CONNECTs to "/" or to a
 * --socketio-namespace with an auth payload; auth.token is verified like
 * the WebSocket path's tokens (any key type the node accepts), and a bad
 * one, a missing one without --anonymous, or an unknown namespace gets a
 * CONNECT_ERROR with the reason as its message.
 *
 * What a client EVENT becomes:
 *   - an event named by --socketio-map acts on channel PREFIX X (X its
 *     first argument; in namespace /NAME, channel NAME/PREFIX X): subscribe,
 *     unsubscribe, or publish its second argument;
 *   - any other event goes to the backend event stream (--event-stream,
 *     events/events.h) with its argument as data (null for none, an array
 *     for several), and a backend's reply answers the client's ack.
 * An ack of a mapped event gets {"ok":true,"channel":C}; any refusal an
 * {"error":CODE,"message":M} (without an ack: the event "ringcast:error").
 * Channel messages reach the client as EVENT ["<event>", data] in the
 * channel's namespace, made once per message per shard.
 *
 * Binary attachments are refused (binary_unsupported), and their binary
 * frames skipped. A malformed packet closes the connection (1008, "parse
 * error: ..."), as a Socket.IO server does.
 *
 * Thread: the shard that owns the connection. */
#ifndef RC_SIO_SOCKET_H
#define RC_SIO_SOCKET_H

#include "proto/protocol.h"

extern const rc_protocol rc_sio_protocol;

struct rc_shard;
struct rc_sio_keep;
/* The relay's answer about a kept session a CONNECT asked to recover
 * (sio/recovery.h); frees k. */
void rc_sio_on_kept(struct rc_shard *s, struct rc_sio_keep *k);

#endif
