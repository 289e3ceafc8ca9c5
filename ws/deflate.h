/* permessage-deflate (RFC 7692): the offer in the upgrade, and the raw
 * DEFLATE streams that compress what the server sends and inflate what a
 * client sends.
 *
 * ringcast keeps no compression state per connection. It always answers
 * with server_no_context_takeover and client_no_context_takeover, so every
 * message is a stream of its own in both directions: one compressor on the
 * relay thread compresses a publication once for every subscriber (the
 * frame is shared like the plain one), and one inflater per shard inflates
 * any client's message, reset between messages.
 *
 * Thread: any thread; an rc_pmd_stream belongs to the thread that made it. */
#ifndef RC_DEFLATE_H
#define RC_DEFLATE_H

#include "base/common.h"
#include "net/http.h"

/* The value of our Sec-WebSocket-Extensions answer is at most this long. */
#define RC_PMD_ANSWER_MAX 128

/* Outcomes of rc_pmd_negotiate. */
#define RC_PMD_NONE     0 /* nothing usable offered (or nothing offered): no compression */
#define RC_PMD_ACCEPTED 1 /* answer holds the extension to send back */

/* Reads every offer of Sec-WebSocket-Extensions (every line, every
 * comma-separated offer, parameters with optional token or quoted-string
 * values) and accepts the first permessage-deflate offer that RFC 7692
 * section 7 lets us accept: an offer with an unknown, duplicated or invalid
 * parameter is skipped and the next one tried. An offer that limits our
 * window (server_max_window_bits below 15) is declined too: ringcast
 * compresses each publication once, with a 15-bit window. client_max_window_bits
 * is accepted in any valid form and not answered (our inflater takes any
 * window). On RC_PMD_ACCEPTED, answer[0..RC_PMD_ANSWER_MAX) holds the
 * extension value, NUL-terminated. Never fails otherwise. */
int rc_pmd_negotiate(const rc_http_list *ext, char answer[RC_PMD_ANSWER_MAX]);

/* 1 when the User-Agent is a WebKit known to break with compression:
 * Safari (and every iOS browser) 15.0 to 15.3, which compress their own
 * messages with context takeover even when told client_no_context_takeover,
 * so that the second message from them fails to inflate. */
int rc_pmd_ua_broken(rc_str user_agent);

/* One raw DEFLATE stream (compressor or inflater), reset per message. */
typedef struct rc_pmd_stream rc_pmd_stream;

/* A compressor at level 6, a 15-bit window and memLevel 8, or NULL when
 * zlib could not allocate. Free with rc_pmd_free. */
rc_pmd_stream *rc_pmd_deflater_new(void);

/* An inflater with a 15-bit window (which inflates any smaller window). */
rc_pmd_stream *rc_pmd_inflater_new(void);

void rc_pmd_free(rc_pmd_stream *z);

/* Compresses in[0..n) as one message: raw DEFLATE flushed with a sync
 * flush, the final 00 00 ff ff removed (RFC 7692 7.2.1). out must hold
 * cap + 4 bytes (the trailing four are written, then cut). Returns the
 * compressed length, or -1 when it would not be shorter than cap (the caller
 * then sends the message plain; pass cap = n for "only if smaller"). */
ssize_t rc_pmd_compress(rc_pmd_stream *z, const uint8_t *in, size_t n, uint8_t *out, size_t cap);

/* Outcomes of rc_pmd_inflate. */
#define RC_PMD_OK      0
#define RC_PMD_TOO_BIG (-1) /* would inflate past max: a zip bomb or an oversized message */
#define RC_PMD_BAD     (-2) /* not a valid compressed message */

/* Inflates the compressed message in[0..n) (its 00 00 ff ff added back)
 * into a buffer the stream owns, valid until the next call: *out, *outlen.
 * Stops as soon as more than max bytes would come out. */
int rc_pmd_inflate(rc_pmd_stream *z, const uint8_t *in, size_t n, size_t max, const uint8_t **out,
                   size_t *outlen);

/* 1 when p[0..n) is well-formed UTF-8 (RFC 3629: no overlongs, no
 * surrogates, nothing above U+10FFFF). */
int rc_utf8_valid(const uint8_t *p, size_t n);

#endif
