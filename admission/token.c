/* Admission tokens on top of ws/jwt's HS256 pieces (base64url, HMAC, header
 * check, signing), so client tokens and admission tokens share one
 * implementation of the cryptographic parts.
 *
 * Thread: any thread (pure functions; shards mint and verify). */
#include "admission/token.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "ws/json.h"
#include "ws/jwt.h"

#define JSON_DEPTH    8 /* room for unknown nested claims, which are ignored */
#define TYP_ADMISSION "admission"

/* Same alphabet as the channel names the spec allows for queue ids; such ids
 * need no JSON escaping. */
static int queue_valid(const char *q, size_t n)
{
    if (n < 1 || n > RC_ATOKEN_MAX_QUEUE)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = q[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              (c != '\0' && strchr("_.:@/=+-", c) != NULL)))
            return 0;
    }
    return 1;
}

ssize_t rc_atoken_mint(char *out, size_t cap, const char *secret, size_t secret_len,
                       const char *user, const char *queue, int64_t iat_s, int64_t exp_s)
{
    if (!out || !secret || secret_len == 0 || !user || !queue)
        return -1;
    size_t un = strnlen(user, RC_ATOKEN_MAX_USER + 1);
    size_t qn = strnlen(queue, RC_ATOKEN_MAX_QUEUE + 1);
    if (un < 1 || un > RC_ATOKEN_MAX_USER || !queue_valid(queue, qn))
        return -1;

    /* Worst case: every user byte escaped as \u00XX. */
    char claims[16 + 6 * RC_ATOKEN_MAX_USER + RC_ATOKEN_MAX_QUEUE + 96];
    size_t o = 0;
    memcpy(claims, "{\"sub\":", 7);
    o = 7;
    ssize_t e = rc_json_escape(claims + o, sizeof(claims) - o, user, un);
    if (e < 0)
        return -1;
    o += (size_t)e;
    int n = snprintf(claims + o, sizeof(claims) - o,
                     ",\"queue\":\"%s\",\"iat\":%" PRId64 ",\"exp\":%" PRId64
                     ",\"typ\":\"" TYP_ADMISSION "\"}",
                     queue, iat_s, exp_s);
    if (n < 0 || (size_t)n >= sizeof(claims) - o)
        return -1;
    o += (size_t)n;
    /* rc_json_escape passes bytes >= 0x80 through; a user id that is not
     * UTF-8 would make a token no JSON parser accepts, so refuse it here. */
    if (rc_json_validate(claims, o, 1) != 0)
        return -1;

    int len = rc_jwt_sign(claims, o, (const uint8_t *)secret, secret_len, out, cap);
    return len < 0 ? -1 : (ssize_t)len;
}

enum { C_SUB, C_QUEUE, C_IAT, C_EXP, C_TYP, C__COUNT };
static const char *const claim_names[C__COUNT] = {"sub", "queue", "iat", "exp", "typ"};

static int parse_claims(const char *json, size_t n, int64_t now_s, rc_atoken *out)
{
    rc_json_iter it;
    rc_json_val k, v, claims[C__COUNT];
    int seen[C__COUNT] = {0};
    memset(claims, 0, sizeof(claims));
    if (rc_json_object_begin(&it, json, n, JSON_DEPTH) != 0)
        return RC_ATOKEN_MALFORMED;
    while (rc_json_object_next(&it, &k, &v)) {
        for (int c = 0; c < C__COUNT; c++) {
            if (rc_json_key_is(&k, claim_names[c])) {
                /* Two values for one claim would let verifiers disagree. */
                if (seen[c]++)
                    return RC_ATOKEN_MALFORMED;
                claims[c] = v;
            }
        }
    }

    rc_atoken t;
    memset(&t, 0, sizeof(t));
    if (!seen[C_SUB] || rc_json_string(&claims[C_SUB], t.user, sizeof(t.user)) < 1)
        return RC_ATOKEN_MALFORMED;
    if (!seen[C_IAT] || rc_json_int64(&claims[C_IAT], &t.iat) != 0)
        return RC_ATOKEN_MALFORMED;
    if (!seen[C_EXP] || rc_json_int64(&claims[C_EXP], &t.exp) != 0)
        return RC_ATOKEN_MALFORMED;
    if (seen[C_QUEUE]) {
        ssize_t qn = rc_json_string(&claims[C_QUEUE], t.queue, sizeof(t.queue));
        if (qn < 0 || !queue_valid(t.queue, (size_t)qn))
            return RC_ATOKEN_MALFORMED;
    }

    char typ[sizeof(TYP_ADMISSION)];
    if (!seen[C_TYP] || rc_json_string(&claims[C_TYP], typ, sizeof(typ)) < 0 ||
        strcmp(typ, TYP_ADMISSION) != 0 || !seen[C_QUEUE])
        return RC_ATOKEN_NOT_ADMISSION;
    if (t.exp <= now_s)
        return RC_ATOKEN_EXPIRED;
    *out = t;
    return RC_ATOKEN_OK;
}

int rc_atoken_verify(const char *tok, size_t len, const char *secret, size_t secret_len,
                     int64_t now_s, rc_atoken *out)
{
    if (!tok || len == 0 || len > RC_ATOKEN_MAX_LEN)
        return RC_ATOKEN_MALFORMED;
    const char *end = tok + len;
    const char *d1 = memchr(tok, '.', len);
    const char *d2 = d1 ? memchr(d1 + 1, '.', (size_t)(end - d1 - 1)) : NULL;
    if (!d2 || memchr(d2 + 1, '.', (size_t)(end - d2 - 1)))
        return RC_ATOKEN_MALFORMED;
    /* Compact JWS has no padding; refusing it keeps one spelling per token. */
    if (memchr(tok, '=', len))
        return RC_ATOKEN_MALFORMED;

    /* Decoded parts are shorter than the token, which is bounded above. */
    uint8_t header[RC_ATOKEN_MAX_LEN], payload[RC_ATOKEN_MAX_LEN], sig[RC_ATOKEN_MAX_LEN];
    int hl = rc_b64url_decode(tok, (size_t)(d1 - tok), header, sizeof(header));
    int pl = rc_b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), payload, sizeof(payload));
    int sl = rc_b64url_decode(d2 + 1, (size_t)(end - d2 - 1), sig, sizeof(sig));
    if (hl <= 0 || pl <= 0 || sl < 0)
        return RC_ATOKEN_MALFORMED;

    int rc = rc_jwt_check_header((const char *)header, (size_t)hl);
    if (rc == RC_JWT_BAD_ALG)
        return RC_ATOKEN_BAD_SIGNATURE;
    if (rc != RC_JWT_OK)
        return RC_ATOKEN_MALFORMED;

    /* Without a secret nothing can be trusted; this is not the caller's
     * token's fault, but "bad signature" is what a backend should hear. */
    if (!secret || secret_len == 0)
        return RC_ATOKEN_BAD_SIGNATURE;
    uint8_t mac[RC_JWT_MAC_LEN];
    if (rc_jwt_hs256((const uint8_t *)secret, secret_len, tok, (size_t)(d2 - tok), mac) != 0)
        return RC_ATOKEN_BAD_SIGNATURE;
    if (!rc_ct_equal(mac, sizeof(mac), sig, (size_t)sl))
        return RC_ATOKEN_BAD_SIGNATURE;

    return parse_claims((const char *)payload, (size_t)pl, now_s, out);
}

const char *rc_atoken_reason(int code)
{
    switch (code) {
    case RC_ATOKEN_OK: return "ok";
    case RC_ATOKEN_BAD_SIGNATURE: return "bad signature";
    case RC_ATOKEN_EXPIRED: return "expired";
    case RC_ATOKEN_NOT_ADMISSION: return "not an admission token";
    case RC_ATOKEN_MALFORMED:
    default: return "malformed";
    }
}
