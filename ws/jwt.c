/* JWT HS256: structure and header are checked before the signature, and the
 * payload's claims are only interpreted once the signature has matched.
 *
 * Thread: any thread (pure functions; the shards call them). */
#include "ws/jwt.h"

#include "ws/jwk.h"

#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "ws/json.h"

#define MAX_PATTERN 256
#define JSON_DEPTH  16 /* room for unknown nested claims, which are ignored */
#define SHA256_LEN  RC_JWT_MAC_LEN

const char *rc_jwt_strerror(int code)
{
    switch (code) {
    case RC_JWT_OK: return "ok";
    case RC_JWT_MALFORMED: return "malformed token";
    case RC_JWT_BAD_ALG: return "unsupported token algorithm";
    case RC_JWT_BAD_SIG: return "bad token signature";
    case RC_JWT_EXPIRED: return "token expired";
    case RC_JWT_NOT_YET: return "token not yet valid";
    case RC_JWT_NO_SECRET: return "no token secret configured";
    case RC_JWT_BAD_KID: return "unknown token key id";
    case RC_JWT_NO_KEY: return "no public key configured for this token algorithm";
    default: return "unknown token error";
    }
}

int rc_jwt_hs256(const uint8_t *secret, size_t secret_len, const char *data, size_t n,
                 uint8_t mac[RC_JWT_MAC_LEN])
{
    unsigned int mac_len = 0;
    static const uint8_t empty_key[1];
    if (!HMAC(EVP_sha256(), secret_len ? secret : empty_key, (int)secret_len,
              (const unsigned char *)data, n, mac, &mac_len) ||
        mac_len != SHA256_LEN)
        return -1;
    return 0;
}

static int pattern_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("_-.:@/=+", c) != NULL);
}

static int pattern_valid(const char *p, size_t n)
{
    if (n < 1 || n > MAX_PATTERN)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '*' && i == n - 1)
            continue;
        if (p[i] == '{' && n - i >= 5 && memcmp(p + i, "{sub}", 5) == 0) {
            i += 4;
            continue;
        }
        if (!pattern_char(p[i]))
            return 0;
    }
    return 1;
}

int rc_pattern_match(const char *pattern, const char *channel, size_t len, const char *user)
{
    size_t ci = 0;
    for (const char *p = pattern; *p; p++) {
        if (p[0] == '*' && p[1] == '\0')
            return 1;
        if (strncmp(p, "{sub}", 5) == 0) {
            if (!user)
                return 0;
            size_t un = strlen(user);
            if (len - ci < un || memcmp(channel + ci, user, un) != 0)
                return 0;
            ci += un;
            p += 4;
            continue;
        }
        if (ci == len || channel[ci] != *p)
            return 0;
        ci++;
    }
    return ci == len;
}

const char *rc_auth_user(const rc_auth *a)
{
    return a->data;
}

rc_str rc_auth_info(const rc_auth *a)
{
    return (rc_str){a->data + a->info_off, a->info_len};
}

static int any_match(const rc_auth *a, int skip, int count, const char *channel, size_t len)
{
    const char *p = a->data + a->sub_len + 1;
    for (int i = 0; i < skip; i++)
        p += strlen(p) + 1;
    for (int i = 0; i < count; i++) {
        if (rc_pattern_match(p, channel, len, a->data))
            return 1;
        p += strlen(p) + 1;
    }
    return 0;
}

int rc_auth_may_subscribe(const rc_auth *a, const char *channel, size_t len)
{
    return a && any_match(a, 0, a->n_sub, channel, len);
}

int rc_auth_may_publish(const rc_auth *a, const char *channel, size_t len)
{
    return a && any_match(a, a->n_sub, a->n_pub, channel, len);
}

/* Appends each pattern of the array v to buf (NUL after each) and counts
 * them; -1 when v is not an array of valid patterns or there are too many. */
static int take_patterns(const rc_json_val *v, char *buf, size_t cap, size_t *used, uint16_t *count)
{
    rc_json_iter it;
    rc_json_val e;
    if (v->type != RC_JSON_ARRAY || rc_json_array_begin(&it, v->raw.p, v->raw.n, 2) != 0)
        return -1;
    while (rc_json_array_next(&it, &e)) {
        if (*count >= RC_JWT_MAX_PATTERNS || e.type != RC_JSON_STRING)
            return -1;
        ssize_t n = rc_json_string(&e, buf + *used, cap - *used);
        if (n < 0 || !pattern_valid(buf + *used, (size_t)n))
            return -1;
        *used += (size_t)n + 1;
        (*count)++;
    }
    return 0;
}

enum { C_SUB, C_EXP, C_NBF, C_SUBSCRIBE, C_PUBLISH, C_INFO, C__COUNT };
static const char *const claim_names[C__COUNT] = {"sub",       "exp",     "nbf",
                                                  "subscribe", "publish", "info"};

static int parse_claims(const char *json, size_t n, int64_t now, rc_auth **out)
{
    rc_json_iter it;
    rc_json_val k, v, claims[C__COUNT];
    int seen[C__COUNT] = {0};
    memset(claims, 0, sizeof(claims));
    if (rc_json_object_begin(&it, json, n, JSON_DEPTH) != 0)
        return RC_JWT_MALFORMED;
    while (rc_json_object_next(&it, &k, &v)) {
        for (int c = 0; c < C__COUNT; c++) {
            if (rc_json_key_is(&k, claim_names[c])) {
                /* Two values for one claim would let parsers disagree. */
                if (seen[c]++)
                    return RC_JWT_MALFORMED;
                claims[c] = v;
            }
        }
    }

    /* The decoded strings are never longer than the payload text. */
    char buf[RC_JWT_MAX_LEN];
    size_t used = 0;
    if (!seen[C_SUB] || claims[C_SUB].type != RC_JSON_STRING)
        return RC_JWT_MALFORMED;
    ssize_t sub_len = rc_json_string(&claims[C_SUB], buf, RC_JWT_MAX_SUB + 1);
    if (sub_len < 1)
        return RC_JWT_MALFORMED;
    used = (size_t)sub_len + 1;

    int64_t exp = 0, nbf = 0;
    if (seen[C_EXP] && rc_json_int64(&claims[C_EXP], &exp) != 0)
        return RC_JWT_MALFORMED;
    if (seen[C_NBF] && rc_json_int64(&claims[C_NBF], &nbf) != 0)
        return RC_JWT_MALFORMED;

    uint16_t n_sub = 0, n_pub = 0;
    if (seen[C_SUBSCRIBE] &&
        take_patterns(&claims[C_SUBSCRIBE], buf, sizeof(buf), &used, &n_sub) != 0)
        return RC_JWT_MALFORMED;
    if (seen[C_PUBLISH] && take_patterns(&claims[C_PUBLISH], buf, sizeof(buf), &used, &n_pub) != 0)
        return RC_JWT_MALFORMED;

    size_t info_off = used, info_len = 0;
    if (seen[C_INFO]) {
        info_len = claims[C_INFO].raw.n;
        if (info_len > RC_JWT_MAX_INFO || used + info_len > sizeof(buf))
            return RC_JWT_MALFORMED;
        memcpy(buf + used, claims[C_INFO].raw.p, info_len);
        used += info_len;
    }

    if (seen[C_EXP] && exp <= now)
        return RC_JWT_EXPIRED;
    if (seen[C_NBF] && nbf > now)
        return RC_JWT_NOT_YET;

    rc_auth *a = rc_malloc(sizeof(*a) + used);
    a->exp = seen[C_EXP] ? exp : 0;
    a->sub_len = (uint16_t)sub_len;
    a->n_sub = n_sub;
    a->n_pub = n_pub;
    a->info_off = (uint16_t)info_off;
    a->info_len = (uint16_t)info_len;
    memcpy(a->data, buf, used);
    *out = a;
    return RC_JWT_OK;
}

int rc_jwt_check_header(const char *json, size_t n)
{
    rc_json_iter it;
    rc_json_val k, v, alg = {0};
    int n_alg = 0, n_typ = 0;
    char s[16];
    if (rc_json_object_begin(&it, json, n, JSON_DEPTH) != 0)
        return RC_JWT_MALFORMED;
    while (rc_json_object_next(&it, &k, &v)) {
        if (rc_json_key_is(&k, "alg")) {
            if (n_alg++ || v.type != RC_JSON_STRING)
                return RC_JWT_MALFORMED;
            alg = v;
        } else if (rc_json_key_is(&k, "typ")) {
            if (n_typ++ || v.type != RC_JSON_STRING)
                return RC_JWT_MALFORMED;
            if (rc_json_string(&v, s, sizeof(s)) < 0 || strcmp(s, "JWT") != 0)
                return RC_JWT_MALFORMED;
        }
    }
    if (!n_alg || rc_json_string(&alg, s, sizeof(s)) < 0 || strcmp(s, "HS256") != 0)
        return RC_JWT_BAD_ALG;
    return RC_JWT_OK;
}

int rc_jwt_verify(const char *token, size_t len, const uint8_t *secret, size_t secret_len,
                  int64_t now, rc_auth **out)
{
    *out = NULL;
    if (!token || len == 0 || len > RC_JWT_MAX_LEN)
        return RC_JWT_MALFORMED;
    if (!secret || secret_len == 0)
        return RC_JWT_NO_SECRET;

    const char *d1 = memchr(token, '.', len);
    const char *d2 = d1 ? memchr(d1 + 1, '.', (size_t)(token + len - d1 - 1)) : NULL;
    if (!d2 || memchr(d2 + 1, '.', (size_t)(token + len - d2 - 1)))
        return RC_JWT_MALFORMED;
    /* Compact JWS has no padding; refusing it keeps one spelling per token. */
    if (memchr(token, '=', len))
        return RC_JWT_MALFORMED;

    size_t hn = (size_t)(d1 - token), pn = (size_t)(d2 - d1 - 1);
    size_t sn = (size_t)(token + len - d2 - 1);
    uint8_t header[RC_JWT_MAX_LEN], payload[RC_JWT_MAX_LEN], sig[RC_JWT_MAX_LEN];
    int hl = rc_b64url_decode(token, hn, header, sizeof(header));
    int pl = rc_b64url_decode(d1 + 1, pn, payload, sizeof(payload));
    int sl = rc_b64url_decode(d2 + 1, sn, sig, sizeof(sig));
    if (hl <= 0 || pl <= 0 || sl < 0)
        return RC_JWT_MALFORMED;

    int rc = rc_jwt_check_header((const char *)header, (size_t)hl);
    if (rc != RC_JWT_OK)
        return rc;

    uint8_t mac[SHA256_LEN];
    if (rc_jwt_hs256(secret, secret_len, token, (size_t)(d2 - token), mac) != 0)
        return RC_JWT_BAD_SIG;
    if (!rc_ct_equal(mac, sizeof(mac), sig, (size_t)sl))
        return RC_JWT_BAD_SIG;

    return parse_claims((const char *)payload, (size_t)pl, now, out);
}

enum { ALG_HS256 = 1, ALG_RS256, ALG_ES256 };

/* The JOSE header's alg (one of ours) and kid (at most RC_JWK_MAX_KID
 * bytes, into kid). */
static int read_header(const char *json, size_t n, int *alg, char *kid, size_t *kid_len)
{
    rc_json_iter it;
    rc_json_val k, v, a = {0}, kv = {0};
    int n_alg = 0, n_typ = 0, n_kid = 0;
    char s[16];
    if (rc_json_object_begin(&it, json, n, JSON_DEPTH) != 0)
        return RC_JWT_MALFORMED;
    while (rc_json_object_next(&it, &k, &v)) {
        if (rc_json_key_is(&k, "alg")) {
            if (n_alg++ || v.type != RC_JSON_STRING)
                return RC_JWT_MALFORMED;
            a = v;
        } else if (rc_json_key_is(&k, "typ")) {
            if (n_typ++ || v.type != RC_JSON_STRING)
                return RC_JWT_MALFORMED;
            if (rc_json_string(&v, s, sizeof(s)) < 0 || strcmp(s, "JWT") != 0)
                return RC_JWT_MALFORMED;
        } else if (rc_json_key_is(&k, "kid")) {
            if (n_kid++ || v.type != RC_JSON_STRING)
                return RC_JWT_MALFORMED;
            kv = v;
        }
    }
    *kid_len = 0;
    if (n_kid) {
        ssize_t kl = rc_json_string(&kv, kid, RC_JWK_MAX_KID + 1);
        if (kl < 0)
            return RC_JWT_MALFORMED;
        *kid_len = (size_t)kl;
    }
    if (!n_alg || rc_json_string(&a, s, sizeof(s)) < 0)
        return RC_JWT_BAD_ALG;
    *alg = strcmp(s, "HS256") == 0   ? ALG_HS256
           : strcmp(s, "RS256") == 0 ? ALG_RS256
           : strcmp(s, "ES256") == 0 ? ALG_ES256
                                     : 0;
    return *alg ? RC_JWT_OK : RC_JWT_BAD_ALG;
}

int rc_jwt_verify_keys(const char *token, size_t len, const rc_jwt_keys *keys, int64_t now,
                       rc_auth **out)
{
    *out = NULL;
    if (!token || len == 0 || len > RC_JWT_MAX_LEN)
        return RC_JWT_MALFORMED;
    const char *d1 = memchr(token, '.', len);
    const char *d2 = d1 ? memchr(d1 + 1, '.', (size_t)(token + len - d1 - 1)) : NULL;
    if (!d2 || memchr(d2 + 1, '.', (size_t)(token + len - d2 - 1)) || memchr(token, '=', len))
        return RC_JWT_MALFORMED;
    uint8_t header[RC_JWT_MAX_LEN];
    int hl = rc_b64url_decode(token, (size_t)(d1 - token), header, sizeof(header));
    if (hl <= 0)
        return RC_JWT_MALFORMED;
    int alg = 0;
    char kid[RC_JWK_MAX_KID + 1];
    size_t kid_len = 0;
    int rc = read_header((const char *)header, (size_t)hl, &alg, kid, &kid_len);
    if (rc != RC_JWT_OK)
        return rc;
    if (alg == ALG_HS256) {
        if (!keys->secret_len)
            return RC_JWT_NO_SECRET;
        rc = rc_jwt_verify(token, len, keys->secret, keys->secret_len, now, out);
        if (rc == RC_JWT_BAD_SIG && keys->previous_len)
            rc = rc_jwt_verify(token, len, keys->previous, keys->previous_len, now, out);
        return rc;
    }
    int type = alg == ALG_RS256 ? RC_JWK_RSA : RC_JWK_EC;
    uint8_t payload[RC_JWT_MAX_LEN], sig[RC_JWT_MAX_LEN];
    int pl = rc_b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), payload, sizeof(payload));
    int sl = rc_b64url_decode(d2 + 1, (size_t)(token + len - d2 - 1), sig, sizeof(sig));
    if (pl <= 0 || sl <= 0)
        return RC_JWT_MALFORMED;
    if (!keys->set || !rc_keyset_has(keys->set, type))
        return RC_JWT_NO_KEY;
    int v = rc_keyset_verify(keys->set, type, kid, kid_len, (const uint8_t *)token,
                             (size_t)(d2 - token), sig, (size_t)sl);
    if (v < 0)
        return RC_JWT_BAD_KID;
    if (v == 0)
        return RC_JWT_BAD_SIG;
    return parse_claims((const char *)payload, (size_t)pl, now, out);
}

int rc_jwt_sign(const char *claims_json, size_t claims_len, const uint8_t *secret,
                size_t secret_len, char *out, size_t cap)
{
    static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    size_t o = 0;
    int n = rc_b64url_encode((const uint8_t *)header, sizeof(header) - 1, out, cap);
    if (n < 0)
        return -1;
    o = (size_t)n;
    if (cap - o < 2)
        return -1;
    out[o++] = '.';
    n = rc_b64url_encode((const uint8_t *)claims_json, claims_len, out + o, cap - o);
    if (n < 0)
        return -1;
    o += (size_t)n;
    uint8_t mac[SHA256_LEN];
    if (rc_jwt_hs256(secret, secret_len, out, o, mac) != 0)
        return -1;
    if (cap - o < 2)
        return -1;
    out[o++] = '.';
    n = rc_b64url_encode(mac, sizeof(mac), out + o, cap - o);
    if (n < 0)
        return -1;
    o += (size_t)n;
    return o > INT32_MAX ? -1 : (int)o;
}
