/* SHA-1 (FIPS 180-4), for the one place the WebSocket protocol needs it:
 * the opening handshake's Sec-WebSocket-Accept. Not for anything that needs
 * a secure hash. It is ours rather than libcrypto's because libcrypto's
 * digests go through its provider machinery, whose first use pages in about
 * 2 MiB of the library: a cost every node paid with its first connection.
 *
 * Thread: any (pure function). */
#ifndef RC_SHA1_H
#define RC_SHA1_H

#include <stddef.h>
#include <stdint.h>

#define RC_SHA1_LEN 20

/* Writes the 20-byte digest of in[0..n) to out. Cannot fail. */
void rc_sha1(const void *in, size_t n, uint8_t out[RC_SHA1_LEN]);

#endif
