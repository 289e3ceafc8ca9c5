/* The client side of RFC 6455 for ringload: the opening handshake (request
 * and response check), masked client frames, and an incremental decoder of
 * server frames that copes with any split of the byte stream. */
#ifndef RL_CODEC_H
#define RL_CODEC_H

#include <stddef.h>
#include <stdint.h>

/* Base64 of a 16-byte nonce: 24 chars and a NUL into out. Can't fail. */
void rl_ws_key_b64(const uint8_t raw[16], char out[25]);

/* Writes the upgrade request: GET path, Host, Upgrade, Connection,
 * Sec-WebSocket-Key (key, 24 chars), Sec-WebSocket-Version 13, and
 * "Authorization: Bearer token" when token is non-NULL and non-empty, and
 * with deflate an offer of permessage-deflate. Returns the length (no NUL
 * counted), or -1 when it does not fit in cap. */
int rl_hs_request(char *out, size_t cap, const char *host, const char *path, const char *key,
                  const char *token, int deflate);

/* Largest response head rl_hs_response waits for before giving up. */
#define RL_HS_MAX_HEAD 8192

/* Checks the server's answer in buf[0..len) against the key that was sent.
 * Returns 1 when the head is complete, the status is 101, Upgrade has
 * "websocket", Connection has "upgrade" and Sec-WebSocket-Accept matches;
 * *head_len is then the length of the head including the blank line (bytes
 * after it are the first frames). Returns 0 when the head is incomplete and
 * len < RL_HS_MAX_HEAD (nothing set). Returns -1 otherwise, with *status the
 * code from the status line (0 when there is no parsable one) and *why a
 * short static reason. */
int rl_hs_response(const char *buf, size_t len, const char *key, int *status, size_t *head_len,
                   const char **why);

/* Size of a masked client frame for a payload of len bytes: header (2, 4 or
 * 10), the 4-byte mask, and the payload. */
size_t rl_ws_frame_size(size_t len);

/* Writes a final, masked client frame (opcode, payload p[0..len), masking key
 * mask, big-endian in the header) into out, which must hold
 * rl_ws_frame_size(len) bytes. Returns that size. p may not overlap out. */
size_t rl_ws_encode(uint8_t *out, int opcode, const void *p, size_t len, uint32_t mask);

/* Called once per complete server message (text, binary; fragments joined)
 * and per control frame (ping, pong, close) with its payload. A non-zero
 * return stops rl_wsdec_feed, which returns that value. */
typedef int (*rl_ws_msg_fn)(void *ud, int opcode, const uint8_t *p, size_t n);

#define RL_WS_ERR_PROTO (-1)

/* Incremental decoder state; all zero (or rl_wsdec_init) is an empty one. */
typedef struct rl_wsdec {
    uint8_t *buf; /* bytes of an incomplete frame */
    uint32_t len, cap;
    uint8_t *frag; /* a fragmented message so far */
    uint32_t frag_len, frag_cap;
    uint8_t frag_op; /* opcode of that message (| RL_WS_COMPRESSED); 0 when none is open */
    uint8_t rsv1_ok; /* permessage-deflate was negotiated: RSV1 may start a data message */
    uint32_t max_msg;
} rl_wsdec;

/* Added to the opcode given to rl_ws_msg_fn: the message came with RSV1
 * (permessage-deflate), its payload is still compressed. */
#define RL_WS_COMPRESSED 0x40

/* Empty decoder refusing messages larger than max_msg bytes. */
void rl_wsdec_init(rl_wsdec *d, uint32_t max_msg);

/* Frees the buffers; d is then empty and usable again. */
void rl_wsdec_free(rl_wsdec *d);

/* Feeds p[0..n): calls fn for every message completed, keeps the bytes of an
 * incomplete frame. Returns 0; RL_WS_ERR_PROTO on a frame a server must not
 * send (masked, RSV bits, unknown opcode, control frame fragmented or over
 * 125 bytes, continuation without a start, a new message inside a fragmented
 * one, message over max_msg); or fn's non-zero value. After a non-zero
 * return the decoder's state is unspecified: do not feed it again. */
int rl_wsdec_feed(rl_wsdec *d, const uint8_t *p, size_t n, rl_ws_msg_fn fn, void *ud);

#endif
