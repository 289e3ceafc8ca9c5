/* What the Socket.IO protocol module's two files share: sio/socket.c (the
 * packets, the operations' results, frames, heartbeat) and sio/connect.c
 * (a namespace CONNECT and the recovery of a kept session). Private to
 * them.
 *
 * Thread: the shard that owns the connection. */
#ifndef RC_SIO_SOCKET_INT_H
#define RC_SIO_SOCKET_INT_H

#include "sio/packet.h"
#include "sio/session.h"

/* n base64url characters of the kernel's randomness (n a multiple of 4),
 * and n random bytes: ids that guard sessions. */
void rc_sio_random_chars(char *out, size_t n);
void rc_sio_random_bytes(uint8_t *out, size_t n);

/* Namespace i's name ("/" for 0); the index of a name (-1: not ours); the
 * namespace of a channel ("NAME/..." is /NAME's, any other "/"'s). */
rc_str rc_sio_nsp_name(const rc_shard *s, int i);
int rc_sio_nsp_index(const rc_shard *s, rc_str nsp);
int rc_sio_nsp_of_channel(const rc_shard *s, const char *ch, size_t n);
int rc_sio_in_nsp(const rc_shard *s, const char *ch, size_t n, int nsp);

/* An Engine.IO MESSAGE carrying the Socket.IO packet a writer put at
 * buf + 1 (n its length, -1: it did not fit). */
void rc_sio_send_msg(rc_shard *s, rc_conn *c, char *buf, ssize_t n);
/* A malformed packet: the connection closes (1008 "parse error: why"). */
void rc_sio_parse_error(rc_shard *s, rc_conn *c, const char *why);

/* sio/connect.c */
void rc_sio_on_connect(rc_shard *s, rc_conn *c, rc_sio_conn *st, const rc_sio_packet *pk);
/* A request tag of a recovery's subscribe; its answer (lost: it did not
 * recover). */
int rc_sio_is_restore(rc_str tag);
void rc_sio_restore_step(rc_shard *s, rc_conn *c, rc_sio_conn *st, int lost);
/* The session's connection ends: keep it for recovery when it may be. */
void rc_sio_keep_closed(rc_shard *s, rc_conn *c, rc_sio_conn *st);

#endif
