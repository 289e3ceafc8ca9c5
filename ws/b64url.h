/* base64url without padding (ws/b64url.c). encode returns the length
 * written (with a NUL), or -1 when it does not fit; decode accepts input
 * with or without padding, refuses characters outside the alphabet and
 * non-zero leftover bits (one encoding per byte string), and returns the
 * decoded length or -1 (malformed or does not fit). */
#ifndef RC_B64URL_H
#define RC_B64URL_H

#include <stddef.h>
#include <stdint.h>

int rc_b64url_encode(const uint8_t *in, size_t n, char *out, size_t cap);
int rc_b64url_decode(const char *in, size_t n, uint8_t *out, size_t cap);

#endif
