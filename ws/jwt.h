/* JWT (HS256) verification and the per-connection permissions it grants.
 *
 * A token's claims:
 *   sub        string, the user id (required, 1..128 bytes)
 *   exp        integer seconds since the epoch (optional; absent = no expiry)
 *   nbf        integer seconds since the epoch (optional)
 *   subscribe  array of channel patterns the user may subscribe to (optional)
 *   publish    array of channel patterns the user may publish to (optional)
 *   info       any JSON value of at most 1024 bytes (optional): shown to
 *              others in presence, as the token's issuer wrote it
 * A pattern is a channel name, or a prefix ending in '*' ("room:*"), or "*".
 * "{sub}" inside a pattern stands for the user's own id ("user:{sub}").
 * Only alg HS256 is accepted: "none" and every other alg are refused. */
#ifndef RC_JWT_H
#define RC_JWT_H

#include "base/common.h"
#include "ws/b64url.h"

#define RC_JWT_MAX_LEN      4096 /* longer tokens are refused as malformed */
#define RC_JWT_MAX_SUB      128
#define RC_JWT_MAX_PATTERNS 64
#define RC_JWT_MAC_LEN      32 /* HMAC-SHA256 output */
#define RC_JWT_MAX_INFO     1024

/* Result codes of rc_jwt_verify. */
#define RC_JWT_OK        0
#define RC_JWT_MALFORMED 1 /* not three base64url parts, bad JSON, bad claim types */
#define RC_JWT_BAD_ALG   2 /* header alg is not HS256 (includes "none") */
#define RC_JWT_BAD_SIG   3 /* signature does not match */
#define RC_JWT_EXPIRED   4 /* exp <= now */
#define RC_JWT_NOT_YET   5 /* nbf > now */
#define RC_JWT_NO_SECRET 6 /* the server has no secret configured */
#define RC_JWT_BAD_KID   7 /* RS256/ES256: no public key has the token's kid */
#define RC_JWT_NO_KEY    8 /* RS256/ES256: the server has no public key of that type */

/* What a verified token grants; one allocation, freed with free(). */
typedef struct rc_auth {
    int64_t exp; /* 0 = no expiry */
    uint16_t sub_len;
    uint16_t n_sub;              /* subscribe patterns */
    uint16_t n_pub;              /* publish patterns */
    uint16_t info_off, info_len; /* the info claim's JSON text in data (len 0: none) */
    /* data: the user id and NUL, then n_sub patterns each with a NUL, then
     * n_pub patterns each with a NUL, then the info claim's text. */
    char data[];
} rc_auth;

/* Verifies token[0..len) with secret (HMAC-SHA256, compared in constant
 * time), checks exp and nbf against now (seconds), and on RC_JWT_OK sets *out
 * to a new rc_auth. On any other result *out is NULL. Never logs the token. */
int rc_jwt_verify(const char *token, size_t len, const uint8_t *secret, size_t secret_len,
                  int64_t now, rc_auth **out);

/* A short static description of a result code ("token expired"). */
const char *rc_jwt_strerror(int code);

/* What verifies a token: the HS256 secret (and the previous one, during a
 * rotation), and public keys for RS256 and ES256 (ws/jwk.h; NULL: none).
 * Each alg is checked only with its own kind of key: an HS256 token is
 * never checked against a public key, whatever the key's bytes. */
struct rc_keyset;
typedef struct rc_jwt_keys {
    const uint8_t *secret;
    size_t secret_len;
    const uint8_t *previous;
    size_t previous_len;
    const struct rc_keyset *set;
} rc_jwt_keys;

/* Like rc_jwt_verify, for tokens signed with HS256, RS256 or ES256. The
 * header's "kid", when present, selects the public key. */
int rc_jwt_verify_keys(const char *token, size_t len, const rc_jwt_keys *keys, int64_t now,
                       rc_auth **out);

/* The user id of a verified token (NUL-terminated). */
const char *rc_auth_user(const rc_auth *a);

/* The token's info claim as JSON text (n == 0: none). */
rc_str rc_auth_info(const rc_auth *a);

/* 1 when pattern admits channel[0..len) for user (user may be NULL, for an
 * anonymous connection: then a pattern containing {sub} admits nothing). */
int rc_pattern_match(const char *pattern, const char *channel, size_t len, const char *user);

/* 1 when a's subscribe (publish) patterns admit the channel. */
int rc_auth_may_subscribe(const rc_auth *a, const char *channel, size_t len);
int rc_auth_may_publish(const rc_auth *a, const char *channel, size_t len);

/* Signs a token: writes header.payload.signature for the given JSON claims
 * (claims_json is the payload object's text, used as is) into out with a NUL.
 * Returns the length, or -1 when it does not fit in cap. Used by tests and by
 * the admission tokens of later modules. */
int rc_jwt_sign(const char *claims_json, size_t claims_len, const uint8_t *secret,
                size_t secret_len, char *out, size_t cap);

/* HMAC-SHA256 of data[0..n) with secret (an empty secret is allowed). Writes
 * RC_JWT_MAC_LEN bytes to mac and returns 0, or -1 when libcrypto fails (mac
 * then holds nothing meaningful). No state: safe from any thread. */
int rc_jwt_hs256(const uint8_t *secret, size_t secret_len, const char *data, size_t n,
                 uint8_t mac[RC_JWT_MAC_LEN]);

/* Checks a decoded JOSE header json[0..n): a JSON object whose "alg" is
 * "HS256" and whose "typ", if present, is "JWT" (each at most once). Returns
 * RC_JWT_OK, RC_JWT_MALFORMED (not an object, duplicate or mistyped member,
 * typ other than "JWT") or RC_JWT_BAD_ALG (alg missing or not HS256). */
int rc_jwt_check_header(const char *json, size_t n);

#endif
