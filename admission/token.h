/* Admission tokens: the signed pass a waiting room hands an admitted user,
 * which the ticketing backend checks before it sells.
 *
 * A standard JWT (RFC 7519) signed with HS256 and the admission secret
 * (--admission-secret / RINGCAST_ADMISSION_SECRET, shared by every node and
 * the backend), so any JWT library verifies it. Header and claims, in this
 * order and with no whitespace:
 *   {"alg":"HS256","typ":"JWT"}
 *   {"sub":USER,"queue":QUEUE,"iat":SECONDS,"exp":SECONDS,"typ":"admission"}
 * The "typ":"admission" claim keeps a client connection token signed with the
 * same key from passing as an admission.
 *
 * Every function here is pure (no static state, no allocation): shards and the
 * relay call them concurrently. */
#ifndef RC_ADMISSION_TOKEN_H
#define RC_ADMISSION_TOKEN_H

#include <sys/types.h>

#include "base/common.h"
#include "proto/protocol.h"

#define RC_ATOKEN_MAX_LEN   RC_PROTO_MAX_TOKEN /* longer tokens are refused as malformed */
#define RC_ATOKEN_MAX_USER  128                /* bytes of UTF-8 */
#define RC_ATOKEN_MAX_QUEUE 64                 /* [A-Za-z0-9_.:@/=+-] */

/* Result codes of rc_atoken_verify. */
#define RC_ATOKEN_OK            0
#define RC_ATOKEN_MALFORMED     1 /* not three base64url parts, bad JSON or claim types, too long */
#define RC_ATOKEN_BAD_SIGNATURE 2 /* signature does not match, alg is not HS256, or no secret */
#define RC_ATOKEN_EXPIRED       3 /* exp <= now */
#define RC_ATOKEN_NOT_ADMISSION 4 /* typ claim is not "admission", or no queue claim */

/* What a verified admission token says. */
typedef struct rc_atoken {
    char user[RC_ATOKEN_MAX_USER + 1];   /* the sub claim, NUL-terminated */
    char queue[RC_ATOKEN_MAX_QUEUE + 1]; /* NUL-terminated */
    int64_t iat, exp;                    /* seconds since the epoch */
} rc_atoken;

/* Writes the admission token for user (1..128 bytes of UTF-8, JSON-escaped in
 * the sub claim) in queue (1..64 bytes of [A-Za-z0-9_.:@/=+-]), issued at iat_s
 * and expiring at exp_s, into out with a terminating NUL. Returns its length
 * (without the NUL), or -1 when it does not fit in cap, user or queue is out
 * of range (or user is not UTF-8), secret_len is 0, or libcrypto fails; out's
 * contents are then unspecified. A cap of RC_ATOKEN_MAX_LEN + 1 always fits
 * the largest user and queue. */
ssize_t rc_atoken_mint(char *out, size_t cap, const char *secret, size_t secret_len,
                       const char *user, const char *queue, int64_t iat_s, int64_t exp_s);

/* Verifies tok[0..len) against secret and now_s (seconds since the epoch).
 * The checks run in this order, and the first failure is returned:
 *   MALFORMED      len > RC_ATOKEN_MAX_LEN, not header.payload.signature in
 *                  unpadded base64url, header not a JSON object (or typ in
 *                  it other than "JWT")
 *   BAD_SIGNATURE  header alg not HS256 (so "none" never passes), secret_len
 *                  == 0, or HMAC-SHA256 mismatch (compared in constant time)
 *   MALFORMED      payload not a JSON object, sub missing or not a 1..128 byte
 *                  string, iat or exp missing or not an integer, queue present
 *                  but not a queue id, a claim given twice
 *   NOT_ADMISSION  typ is not the string "admission", or queue is absent
 *   EXPIRED        exp <= now_s
 * Claims are only read once the signature has matched. On RC_ATOKEN_OK fills
 * *out; on any other result *out is left unchanged. Never logs the token. */
int rc_atoken_verify(const char *tok, size_t len, const char *secret, size_t secret_len,
                     int64_t now_s, rc_atoken *out);

/* A static description of a result code: "ok", "malformed", "bad signature",
 * "expired", "not an admission token" (the reasons POST /api/queues/verify
 * answers with), or "malformed" for an unknown code. */
const char *rc_atoken_reason(int code);

#endif
