/* Public keys that verify RS256 and ES256 tokens (ws/jwk.c): read from a PEM
 * file (one or more public keys, without key ids) and from a JWKS file
 * ({"keys":[{"kty":"RSA","kid":K,"n":..,"e":..}, {"kty":"EC","crv":"P-256",
 * "kid":K,"x":..,"y":..}]}). RSA keys below 2048 bits and curves other than
 * P-256 are refused. A key set is immutable once loaded; a reload makes a
 * new one (engine/main.c). Uses OpenSSL's libcrypto.
 *
 * Thread: any (a loaded set is only read). */
#ifndef RC_JWK_H
#define RC_JWK_H

#include <stddef.h>
#include <stdint.h>

enum rc_jwk_type { RC_JWK_RSA = 1, RC_JWK_EC = 2 };

#define RC_JWK_MAX_KEYS 64
#define RC_JWK_MAX_KID  128

typedef struct rc_keyset rc_keyset;

/* Loads the keys of pem_path and jwks_path (either may be NULL or empty).
 * NULL with a one-line message in err when a file cannot be read or holds
 * a key that cannot be used. */
rc_keyset *rc_keyset_load(const char *pem_path, const char *jwks_path, char *err, size_t errlen);
void rc_keyset_free(rc_keyset *k);
size_t rc_keyset_count(const rc_keyset *k);
/* 1 when k holds a key of type. */
int rc_keyset_has(const rc_keyset *k, int type);

/* Verifies sig over msg with a key of type whose kid is kid (kid_len 0: any
 * key of that type; keys from the PEM file have no kid and match only
 * then). Returns 1 when a key verifies it, 0 when none does, -1 when no key
 * has that kid. ES256 signatures are the 64 bytes r || s of RFC 7518. */
int rc_keyset_verify(const rc_keyset *k, int type, const char *kid, size_t kid_len,
                     const uint8_t *msg, size_t msg_len, const uint8_t *sig, size_t sig_len);

#endif
