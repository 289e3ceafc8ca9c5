/* Server-side WebSocket frames (RFC 6455 section 5.2). Server frames are
 * never masked, so one encoding of a message serves every recipient. */
#ifndef RC_FRAME_H
#define RC_FRAME_H

#include "base/common.h"

#define RC_WS_OP_CONT   0x0
#define RC_WS_OP_TEXT   0x1
#define RC_WS_OP_BINARY 0x2
#define RC_WS_OP_CLOSE  0x8
#define RC_WS_OP_PING   0x9
#define RC_WS_OP_PONG   0xA

#define RC_WS_MAX_HEADER 10   /* largest unmasked header */
#define RC_WS_RSV1       0x40 /* in the first byte: a compressed message (RFC 7692) */

/* Close codes ringcast sends (1000-1015 per RFC 6455 section 7.4.1; 4000+ are
 * ringcast's own, documented in docs/PROTOCOL.md). */
#define RC_CLOSE_NORMAL        1000
#define RC_CLOSE_GOING_AWAY    1001
#define RC_CLOSE_PROTOCOL      1002
#define RC_CLOSE_UNSUPPORTED   1003
#define RC_CLOSE_BAD_DATA      1007
#define RC_CLOSE_POLICY        1008
#define RC_CLOSE_TOO_BIG       1009
#define RC_CLOSE_INTERNAL      1011
#define RC_CLOSE_TRY_AGAIN     1013
#define RC_CLOSE_TOKEN_EXPIRED 4001
#define RC_CLOSE_HEARTBEAT     4002

/* Length of the header for a payload of len bytes: 2, 4 or 10. */
size_t rc_ws_header_len(uint64_t len);

/* Writes a final (FIN) unmasked frame header for opcode and payload length
 * into hdr (at least RC_WS_MAX_HEADER bytes). Returns its length. */
size_t rc_ws_header(uint8_t *hdr, int opcode, uint64_t len);

/* Writes a whole close frame (code, then reason cut to fit the 125-byte
 * control-frame limit) into out (at least 127 bytes). code 0 writes an empty
 * close. Returns the frame length. */
size_t rc_ws_close_frame(uint8_t *out, uint16_t code, const char *reason);

#endif
