/* Client connection tokens (ws/jwt.c): HS256 JWTs checked at the upgrade.
 *
 * The first input byte picks the mode. Odd: the rest is a token, verified
 * as the upgrade path does. Even: the rest is a claims object, signed with
 * rc_jwt_sign, verified, then altered (one byte flipped at a position the
 * input chooses, or cut short) and verified again.
 *
 * Invariants, beyond "no crash":
 *  - a token that verifies carries the HMAC-SHA256 of its first two parts
 *    under the secret (recomputed here with libcrypto and an independent
 *    base64url decoder), and never verifies under another secret;
 *  - what it grants: a user of 1..128 bytes, at most 64 patterns of each
 *    kind, exp 0 or in the future;
 *  - a token signed by rc_jwt_sign never fails on its signature or alg, and
 *    no altered copy of it verifies;
 *  - on any failure *out is NULL (no leak: LeakSanitizer watches the rest). */
#include <string.h>

#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/fuzz_b64.h"
#include "tests/fuzz/fuzz_json.h"
#include "ws/json.h"
#include "ws/jwt.h"
#include "proto/json.h"

static const uint8_t SECRET[] = "integration-test-secret-0123456789";
static const uint8_t OTHER[] = "integration-test-secret-0123456788";
#define NOW 1700000000

static void check_auth(const rc_auth *a)
{
    const char *u = rc_auth_user(a);
    size_t ul = strlen(u);
    FUZZ_CHECK(ul >= 1 && ul <= RC_JWT_MAX_SUB && ul == a->sub_len);
    FUZZ_CHECK(a->n_sub <= RC_JWT_MAX_PATTERNS && a->n_pub <= RC_JWT_MAX_PATTERNS);
    FUZZ_CHECK(a->exp == 0 || a->exp > NOW);
    /* Whatever the patterns, matching stays inside them. */
    (void)rc_auth_may_subscribe(a, "room:1", 6);
    (void)rc_auth_may_publish(a, u, ul);
    /* Every answer that carries the user id, in the buffer its caller
     * gives it, is valid JSON and gives the user id back exactly. */
    static char w[RC_PROTO_WELCOME_MAX], v[RC_PROTO_VERIFY_MAX];
    ssize_t n = rc_proto_welcome(w, sizeof(w), "node-1", 0, 1, u, 25000, 65536);
    fuzz_json_has_string(w, n, "user", u, ul);
    n = rc_proto_verified(v, sizeof(v), u, "q", 1, a->exp);
    fuzz_json_has_string(v, n, "user", u, ul);
    fuzz_json_has_int(v, n, "exp", a->exp);
    n = rc_proto_completed(v, sizeof(v), "q", u, 1);
    fuzz_json_has_string(v, n, "user", u, ul);
}

static int verify(const char *tok, size_t len, const uint8_t *secret, size_t sl)
{
    rc_auth *a = (rc_auth *)(uintptr_t)1;
    int r = rc_jwt_verify(tok, len, secret, sl, NOW, &a);
    FUZZ_CHECK(r >= RC_JWT_OK && r <= RC_JWT_NO_SECRET);
    FUZZ_CHECK(rc_jwt_strerror(r) != NULL);
    if (r != RC_JWT_OK) {
        FUZZ_CHECK(a == NULL);
        return r;
    }
    FUZZ_CHECK(a != NULL);
    FUZZ_CHECK(len <= RC_JWT_MAX_LEN);
    fuzz_check_signed(tok, len, secret, sl);
    check_auth(a);
    free(a);
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t mode = fuzz_take(&data, &size);
    uint8_t pos = fuzz_take(&data, &size), flip = fuzz_take(&data, &size);
    if (size > 8192)
        return 0;
    char *in = malloc(size ? size : 1);
    memcpy(in, data, size);
    if (mode & 1) {
        /* An exact-size copy: reads past the end are ASan errors. */
        int r = verify(in, size, SECRET, sizeof(SECRET) - 1);
        if (r == RC_JWT_OK)
            FUZZ_CHECK(verify(in, size, OTHER, sizeof(OTHER) - 1) == RC_JWT_BAD_SIG);
        FUZZ_CHECK(verify(in, size, SECRET, 0) != RC_JWT_OK);
        free(in);
        return 0;
    }

    static char tok[3 * 8192];
    int n = rc_jwt_sign(in, size, SECRET, sizeof(SECRET) - 1, tok, sizeof(tok));
    free(in);
    FUZZ_CHECK(n > 0 && (size_t)n < sizeof(tok) && tok[n] == '\0' && strlen(tok) == (size_t)n);
    int r = verify(tok, (size_t)n, SECRET, sizeof(SECRET) - 1);
    FUZZ_CHECK(r != RC_JWT_BAD_SIG && r != RC_JWT_BAD_ALG && r != RC_JWT_NO_SECRET);
    if (n > RC_JWT_MAX_LEN)
        FUZZ_CHECK(r == RC_JWT_MALFORMED);
    /* The signed header is the fixed HS256 one and passes its own check. */
    uint8_t hdr[64];
    const char *dot = memchr(tok, '.', (size_t)n);
    FUZZ_CHECK(dot != NULL);
    int hl = rc_b64url_decode(tok, (size_t)(dot - tok), hdr, sizeof(hdr));
    FUZZ_CHECK(hl > 0 && rc_jwt_check_header((const char *)hdr, (size_t)hl) == RC_JWT_OK);

    FUZZ_CHECK(verify(tok, (size_t)n, OTHER, sizeof(OTHER) - 1) != RC_JWT_OK);
    FUZZ_CHECK(verify(tok, (size_t)n - 1, SECRET, sizeof(SECRET) - 1) != RC_JWT_OK);
    size_t at = ((size_t)pos * 131 + flip) % (size_t)n;
    tok[at] ^= (char)(flip | 1);
    FUZZ_CHECK(verify(tok, (size_t)n, SECRET, sizeof(SECRET) - 1) != RC_JWT_OK);
    return 0;
}
