/* Engine.IO v4 and Socket.IO v5 packets, read and written: the wire format
 * of the Socket.IO protocol (issue 15), without any I/O.
 *
 * An Engine.IO packet is a type character and its data. Over WebSocket each
 * text frame is one packet; over HTTP long-polling a body holds several,
 * separated by the record separator 0x1e, and binary data travels base64
 * encoded behind a 'b'. A Socket.IO packet rides in an Engine.IO MESSAGE
 * ('4'): its type digit, for binary types the attachment count and '-', a
 * namespace ('/' unless it starts with '/', up to a ','), an acknowledgement
 * id (digits), then a JSON payload.
 *
 * Thread: any (no state). */
#ifndef RC_SIO_PACKET_H
#define RC_SIO_PACKET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/common.h"

/* Engine.IO packet types, as their characters. */
enum rc_eio_type {
    RC_EIO_OPEN = '0',
    RC_EIO_CLOSE = '1',
    RC_EIO_PING = '2',
    RC_EIO_PONG = '3',
    RC_EIO_MESSAGE = '4',
    RC_EIO_UPGRADE = '5',
    RC_EIO_NOOP = '6',
};

/* Socket.IO packet types. */
enum rc_sio_type {
    RC_SIO_CONNECT = 0,
    RC_SIO_DISCONNECT = 1,
    RC_SIO_EVENT = 2,
    RC_SIO_ACK = 3,
    RC_SIO_CONNECT_ERROR = 4,
    RC_SIO_BINARY_EVENT = 5,
    RC_SIO_BINARY_ACK = 6,
};

#define RC_SIO_MAX_NSP    128 /* bytes of a namespace name, '/' included */
#define RC_SIO_MAX_ATTACH 10  /* binary attachments one packet may announce */
#define RC_SIO_MAX_DEPTH  32  /* nesting of a payload */

typedef struct rc_sio_packet {
    int type;             /* enum rc_sio_type */
    uint32_t attachments; /* binary types: how many binary packets follow */
    rc_str nsp;           /* "/" when the packet names none */
    int has_id;
    uint64_t id; /* acknowledgement id, 0..2^53-1 */
    rc_str data; /* the JSON payload as sent; empty when absent */
} rc_sio_packet;

/* Why a packet was refused. */
enum rc_sio_err {
    RC_SIO_OK = 0,
    RC_SIO_ERR_TYPE,        /* not a Socket.IO packet type */
    RC_SIO_ERR_ATTACHMENTS, /* a bad or too large attachment count */
    RC_SIO_ERR_NSP,         /* a namespace without its ',' or too long */
    RC_SIO_ERR_ID,          /* an acknowledgement id too large */
    RC_SIO_ERR_PAYLOAD,     /* not JSON, or not the shape the type needs */
};

/* Reads the Socket.IO packet in p[0..n) (an Engine.IO MESSAGE's data).
 * Checks the payload's shape: CONNECT an object or nothing; DISCONNECT
 * nothing; EVENT and BINARY_EVENT an array whose first element is a string
 * (the event name); ACK and BINARY_ACK an array; CONNECT_ERROR an object
 * or a string. The spans in out point into p. Returns RC_SIO_OK or an
 * enum rc_sio_err. */
int rc_sio_parse(const char *p, size_t n, rc_sio_packet *out);

/* A short English text for an enum rc_sio_err. */
const char *rc_sio_errtext(int err);

/* The next packet of an HTTP long-polling body: sets *pkt to the bytes up
 * to the next 0x1e (or the end) and moves *p past them. Returns 1 for a
 * packet, 0 past the last one. A body with k separators holds k + 1
 * packets, so an empty body, two separators in a row or one at the end
 * give an empty packet, which the caller refuses. */
int rc_eio_payload_next(const char **p, const char *end, rc_str *pkt);

/* Writes an EVENT packet into out: '2', the namespace unless it is "/"
 * (then ','), the id when has_id, and ["event",args...] where args is the
 * text of zero or more JSON values separated by commas (empty: none).
 * Returns the length, or -1 when it does not fit in cap. */
/* The arguments an EVENT carries for a message's data: data itself, or
 * (several) the elements of the JSON array data, as a comma list (empty
 * for []). */
rc_str rc_sio_args_of(rc_str data, int several);

ssize_t rc_sio_write_event(char *out, size_t cap, rc_str nsp, int has_id, uint64_t id, rc_str event,
                           rc_str args);

/* Writes an ACK packet: '3', the namespace, the id, and [args]. */
ssize_t rc_sio_write_ack(char *out, size_t cap, rc_str nsp, uint64_t id, rc_str args);

/* Writes a CONNECT answer: '0', the namespace, {"sid":"SID"} (and, when
 * pid is not empty, "pid" for connection state recovery). */
ssize_t rc_sio_write_connect(char *out, size_t cap, rc_str nsp, rc_str sid, rc_str pid);

/* Writes a CONNECT_ERROR: '4', the namespace, {"message":M}. */
ssize_t rc_sio_write_connect_error(char *out, size_t cap, rc_str nsp, rc_str message);

#endif
