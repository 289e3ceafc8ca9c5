/* Admission tokens (admission/token.c): minted by the waiting room,
 * verified by POST /api/queues/verify.
 *
 * The first input byte picks the mode: 0 mint fields from the input (user,
 * queue, iat, exp) and verify the result; 1 verify the rest as a token; 2
 * sign the rest as a claims object with the admission secret (rc_jwt_sign)
 * and verify that. Invariants, beyond "no crash":
 *  - a minted token is at most RC_ATOKEN_MAX_LEN bytes, NUL-terminated, and
 *    verifies to the same user, queue, iat and exp (or EXPIRED when exp is
 *    past); mint refuses exactly the fields the header rules out;
 *  - a token that verifies carries the HMAC of its first two parts under the
 *    secret (checked with libcrypto), never verifies under another secret
 *    or with no secret, and no copy with one byte flipped verifies;
 *  - whatever claims are signed, OK means the claims say typ "admission"
 *    with a queue id, a user of 1..128 bytes, and exp in the future;
 *  - the answers built from a verified token (POST /api/queues/verify and
 *    /complete, in the buffers their callers give) are valid JSON that give
 *    the user, queue, iat and exp back exactly;
 *  - on failure *out is left as it was. */
#include <string.h>

#include "admission/token.h"
#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/fuzz_b64.h"
#include "tests/fuzz/fuzz_json.h"
#include "ws/jwt.h"
#include "proto/json.h"

static const char SECRET[] = "fuzz-admission-secret";
static const char OTHER[] = "fuzz-admission-secreT";
#define SL  (sizeof(SECRET) - 1)
#define NOW 1700000300

static int utf8_ok(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i];
        size_t k = c < 0x80             ? 0
                   : (c & 0xe0) == 0xc0 ? 1
                   : (c & 0xf0) == 0xe0 ? 2
                   : (c & 0xf8) == 0xf0 ? 3
                                        : 9;
        if (k == 9 || n - i <= k)
            return k == 0;
        uint32_t cp = k == 0 ? c : k == 1 ? (c & 0x1f) : k == 2 ? (c & 0x0f) : (c & 0x07);
        for (size_t j = 1; j <= k; j++) {
            if ((p[i + j] & 0xc0) != 0x80)
                return 0;
            cp = cp << 6 | (p[i + j] & 0x3f);
        }
        static const uint32_t min[] = {0, 0x80, 0x800, 0x10000};
        if (cp < min[k] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += k + 1;
    }
    return 1;
}

static int queue_ok(const char *q, size_t n)
{
    if (n < 1 || n > RC_ATOKEN_MAX_QUEUE)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = q[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              (c && strchr("_.:@/=+-", c))))
            return 0;
    }
    return 1;
}

/* The verify and complete answers for a verified token. */
static void answers(const rc_atoken *t, size_t ul)
{
    static char out[RC_PROTO_VERIFY_MAX];
    size_t ql = strlen(t->queue);
    ssize_t n = rc_proto_verified(out, sizeof(out), t->user, t->queue, t->iat, t->exp);
    fuzz_json_has_string(out, n, "user", t->user, ul);
    fuzz_json_has_string(out, n, "queue", t->queue, ql);
    fuzz_json_has_int(out, n, "iat", t->iat);
    fuzz_json_has_int(out, n, "exp", t->exp);
    n = rc_proto_completed(out, sizeof(out), t->queue, t->user, 0);
    fuzz_json_has_string(out, n, "user", t->user, ul);
    fuzz_json_has_string(out, n, "queue", t->queue, ql);
}

static int verify(const char *tok, size_t len, const char *secret, size_t sl, rc_atoken *out)
{
    rc_atoken before;
    memset(out, 0x5a, sizeof(*out));
    memcpy(&before, out, sizeof(before));
    int r = rc_atoken_verify(tok, len, secret, sl, NOW, out);
    FUZZ_CHECK(r >= RC_ATOKEN_OK && r <= RC_ATOKEN_NOT_ADMISSION);
    FUZZ_CHECK(rc_atoken_reason(r) != NULL);
    if (r != RC_ATOKEN_OK) {
        FUZZ_CHECK(memcmp(&before, out, sizeof(before)) == 0);
        return r;
    }
    FUZZ_CHECK(len <= RC_ATOKEN_MAX_LEN);
    fuzz_check_signed(tok, len, secret, sl);
    size_t ul = strnlen(out->user, sizeof(out->user));
    FUZZ_CHECK(ul >= 1 && ul <= RC_ATOKEN_MAX_USER && utf8_ok(out->user, ul));
    FUZZ_CHECK(queue_ok(out->queue, strnlen(out->queue, sizeof(out->queue))));
    FUZZ_CHECK(out->exp > NOW);
    answers(out, ul);
    return r;
}

/* Checks the token verifies only as it is. */
static void tamper(char *tok, size_t n, uint8_t a, uint8_t b)
{
    rc_atoken t;
    FUZZ_CHECK(verify(tok, n, OTHER, SL, &t) == RC_ATOKEN_BAD_SIGNATURE);
    FUZZ_CHECK(verify(tok, n, SECRET, 0, &t) != RC_ATOKEN_OK);
    FUZZ_CHECK(verify(tok, n - 1, SECRET, SL, &t) != RC_ATOKEN_OK);
    size_t at = ((size_t)a * 257 + b) % n;
    char was = tok[at];
    tok[at] ^= (char)(b | 1);
    FUZZ_CHECK(verify(tok, n, SECRET, SL, &t) != RC_ATOKEN_OK);
    tok[at] = was;
}

static void mint_mode(const uint8_t *d, size_t size)
{
    char user[256], queue[256];
    size_t ul = fuzz_take(&d, &size) % 160;
    ul = RC_MIN(ul, size);
    memcpy(user, d, ul);
    user[ul] = '\0';
    d += ul, size -= ul;
    size_t ql = fuzz_take(&d, &size) % 80;
    ql = RC_MIN(ql, size);
    memcpy(queue, d, ql);
    queue[ql] = '\0';
    d += ql, size -= ql;
    int64_t iat = 0, exp = 0;
    if (size >= 16) {
        memcpy(&iat, d, 8);
        memcpy(&exp, d + 8, 8);
    }
    uint8_t a = size ? d[size - 1] : 0, b = size > 1 ? d[size - 2] : 0;

    char tok[RC_ATOKEN_MAX_LEN + 1];
    ssize_t n = rc_atoken_mint(tok, sizeof(tok), SECRET, SL, user, queue, iat, exp);
    /* Fields with a NUL inside are shorter C strings: judge what mint saw. */
    size_t su = strlen(user), sq = strlen(queue);
    int fields_ok = su >= 1 && su <= RC_ATOKEN_MAX_USER && utf8_ok(user, su) && queue_ok(queue, sq);
    FUZZ_CHECK((n >= 0) == fields_ok);
    FUZZ_CHECK(rc_atoken_mint(tok, sizeof(tok), SECRET, 0, user, queue, iat, exp) == -1);
    if (n < 0)
        return;
    n = rc_atoken_mint(tok, sizeof(tok), SECRET, SL, user, queue, iat, exp);
    FUZZ_CHECK(n > 0 && (size_t)n <= RC_ATOKEN_MAX_LEN && tok[n] == '\0' &&
               strlen(tok) == (size_t)n);
    /* Too small a buffer says so and stays inside it (ASan). */
    char *small = malloc((size_t)n);
    FUZZ_CHECK(rc_atoken_mint(small, (size_t)n, SECRET, SL, user, queue, iat, exp) == -1);
    free(small);

    rc_atoken t;
    int r = verify(tok, (size_t)n, SECRET, SL, &t);
    FUZZ_CHECK(r == (exp > NOW ? RC_ATOKEN_OK : RC_ATOKEN_EXPIRED));
    if (r == RC_ATOKEN_OK) {
        FUZZ_CHECK(strcmp(t.user, user) == 0 && strcmp(t.queue, queue) == 0);
        FUZZ_CHECK(t.iat == iat && t.exp == exp);
    }
    tamper(tok, (size_t)n, a, b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t mode = fuzz_take(&data, &size) % 3;
    if (size > 8192)
        return 0;
    if (mode == 0) {
        mint_mode(data, size);
        return 0;
    }
    rc_atoken t;
    if (mode == 1) {
        char *tok = malloc(size ? size : 1);
        memcpy(tok, data, size);
        if (verify(tok, size, SECRET, SL, &t) == RC_ATOKEN_OK && size > 0)
            tamper(tok, size, (uint8_t)size, data[0]);
        free(tok);
        return 0;
    }
    static char tok[3 * 8192];
    int n = rc_jwt_sign((const char *)data, size, (const uint8_t *)SECRET, SL, tok, sizeof(tok));
    FUZZ_CHECK(n > 0);
    int r = verify(tok, (size_t)n, SECRET, SL, &t);
    FUZZ_CHECK(r != RC_ATOKEN_BAD_SIGNATURE);
    if (r == RC_ATOKEN_OK) {
        /* The signed claims themselves say admission. */
        FUZZ_CHECK(memmem(data, size, "admission", 9) != NULL);
        FUZZ_CHECK(memmem(data, size, t.queue, strlen(t.queue)) != NULL);
        tamper(tok, (size_t)n, (uint8_t)size, (uint8_t)n);
    }
    return 0;
}
