/* Public keys for RS256 and ES256 (ws/jwk.h).
 *
 * Thread: any. */
#include "ws/jwk.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "ws/json.h"
#include "ws/b64url.h"

typedef struct rc_key {
    EVP_PKEY *pkey;
    int type;
    char kid[RC_JWK_MAX_KID + 1];
    size_t kid_len;
} rc_key;

struct rc_keyset {
    size_t n;
    rc_key keys[RC_JWK_MAX_KEYS];
};

void rc_keyset_free(rc_keyset *k)
{
    if (!k)
        return;
    for (size_t i = 0; i < k->n; i++)
        EVP_PKEY_free(k->keys[i].pkey);
    free(k);
}

size_t rc_keyset_count(const rc_keyset *k)
{
    return k ? k->n : 0;
}

int rc_keyset_has(const rc_keyset *k, int type)
{
    for (size_t i = 0; k && i < k->n; i++)
        if (k->keys[i].type == type)
            return 1;
    return 0;
}

/* The key's type, or 0 when ringcast cannot use it (too small, wrong curve). */
static int usable(EVP_PKEY *p, char *err, size_t errlen)
{
    if (EVP_PKEY_get_base_id(p) == EVP_PKEY_RSA) {
        if (EVP_PKEY_get_bits(p) < 2048) {
            snprintf(err, errlen, "an RSA key of %d bits: at least 2048 are needed",
                     EVP_PKEY_get_bits(p));
            return 0;
        }
        return RC_JWK_RSA;
    }
    if (EVP_PKEY_get_base_id(p) == EVP_PKEY_EC) {
        char g[64] = "";
        size_t gl = 0;
        if (EVP_PKEY_get_utf8_string_param(p, OSSL_PKEY_PARAM_GROUP_NAME, g, sizeof(g), &gl) != 1 ||
            strcmp(g, "prime256v1") != 0) {
            snprintf(err, errlen, "an EC key on curve %s: ES256 needs P-256", g[0] ? g : "?");
            return 0;
        }
        return RC_JWK_EC;
    }
    snprintf(err, errlen, "a key that is neither RSA nor EC");
    return 0;
}

static int add(rc_keyset *k, EVP_PKEY *p, const char *kid, size_t kid_len, char *err, size_t errlen)
{
    int type = usable(p, err, errlen);
    if (!type || k->n == RC_JWK_MAX_KEYS) {
        if (type)
            snprintf(err, errlen, "more than %d keys", RC_JWK_MAX_KEYS);
        EVP_PKEY_free(p);
        return -1;
    }
    rc_key *e = &k->keys[k->n++];
    e->pkey = p;
    e->type = type;
    e->kid_len = kid_len;
    memcpy(e->kid, kid, kid_len);
    e->kid[kid_len] = '\0';
    return 0;
}

static int load_pem(rc_keyset *k, const char *path, char *err, size_t errlen)
{
    BIO *b = BIO_new_file(path, "r");
    if (!b) {
        snprintf(err, errlen, "%s: cannot be read", path);
        return -1;
    }
    size_t before = k->n;
    EVP_PKEY *p;
    while ((p = PEM_read_bio_PUBKEY(b, NULL, NULL, NULL)) != NULL) {
        if (add(k, p, "", 0, err, errlen) < 0) {
            BIO_free(b);
            return -1;
        }
    }
    ERR_clear_error(); /* the end of the file reads as an error */
    BIO_free(b);
    if (k->n == before) {
        snprintf(err, errlen, "%s: no PEM public key in it", path);
        return -1;
    }
    return 0;
}

/* A base64url member of a JWK into out; its length, or -1. */
static int b64_member(const rc_json_val *v, uint8_t *out, size_t cap)
{
    char text[1024];
    ssize_t n = v->type == RC_JSON_STRING ? rc_json_string(v, text, sizeof(text)) : -1;
    return n > 0 ? rc_b64url_decode(text, (size_t)n, out, cap) : -1;
}

static EVP_PKEY *from_params(const char *name, OSSL_PARAM_BLD *b)
{
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(b);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, name, NULL);
    EVP_PKEY *p = NULL;
    if (!params || !ctx || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &p, EVP_PKEY_PUBLIC_KEY, params) != 1)
        p = NULL;
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    return p;
}

static EVP_PKEY *jwk_rsa(const rc_json_val *n, const rc_json_val *e)
{
    uint8_t nb[1024], eb[16];
    int nl = b64_member(n, nb, sizeof(nb)), el = b64_member(e, eb, sizeof(eb));
    if (nl <= 0 || el <= 0)
        return NULL;
    BIGNUM *bn = BN_bin2bn(nb, nl, NULL), *be = BN_bin2bn(eb, el, NULL);
    OSSL_PARAM_BLD *b = OSSL_PARAM_BLD_new();
    EVP_PKEY *p = NULL;
    if (bn && be && b && OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_RSA_N, bn) == 1 &&
        OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_RSA_E, be) == 1)
        p = from_params("RSA", b);
    OSSL_PARAM_BLD_free(b);
    BN_free(bn);
    BN_free(be);
    return p;
}

static EVP_PKEY *jwk_ec(const rc_json_val *x, const rc_json_val *y)
{
    uint8_t pub[65], xb[64], yb[64];
    int xl = b64_member(x, xb, sizeof(xb)), yl = b64_member(y, yb, sizeof(yb));
    if (xl != 32 || yl != 32)
        return NULL;
    pub[0] = 4; /* uncompressed point */
    memcpy(pub + 1, xb, 32);
    memcpy(pub + 33, yb, 32);
    OSSL_PARAM_BLD *b = OSSL_PARAM_BLD_new();
    EVP_PKEY *p = NULL;
    if (b && OSSL_PARAM_BLD_push_utf8_string(b, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) == 1 &&
        OSSL_PARAM_BLD_push_octet_string(b, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub)) == 1)
        p = from_params("EC", b);
    OSSL_PARAM_BLD_free(b);
    return p;
}

static int load_jwks(rc_keyset *k, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: cannot be read", path);
        return -1;
    }
    char *text = rc_malloc(1 << 20);
    size_t len = fread(text, 1, (1 << 20) - 1, f);
    fclose(f);
    rc_json_iter it, ka, km;
    rc_json_val key, v, keys = {0}, m;
    int rc = -1;
    if (rc_json_object_begin(&it, text, len, 8) != 0) {
        snprintf(err, errlen, "%s: not a JSON object", path);
        goto out;
    }
    while (rc_json_object_next(&it, &key, &v))
        if (rc_json_key_is(&key, "keys"))
            keys = v;
    if (keys.type != RC_JSON_ARRAY || rc_json_array_begin(&ka, keys.raw.p, keys.raw.n, 6) != 0) {
        snprintf(err, errlen, "%s: no \"keys\" array", path);
        goto out;
    }
    while (rc_json_array_next(&ka, &m)) {
        rc_json_val kty = {0}, kid = {0}, n = {0}, e = {0}, crv = {0}, x = {0}, y = {0}, use = {0};
        if (m.type != RC_JSON_OBJECT || rc_json_object_begin(&km, m.raw.p, m.raw.n, 4) != 0) {
            snprintf(err, errlen, "%s: a key that is not an object", path);
            goto out;
        }
        while (rc_json_object_next(&km, &key, &v)) {
            rc_json_val *slots[] = {&kty, &kid, &n, &e, &crv, &x, &y, &use};
            static const char *const names[] = {"kty", "kid", "n", "e", "crv", "x", "y", "use"};
            for (size_t i = 0; i < RC_ARRAY_LEN(names); i++)
                if (rc_json_key_is(&key, names[i]))
                    *slots[i] = v;
        }
        char t[8] = "", c[16] = "", u[8] = "", kd[RC_JWK_MAX_KID + 1] = "";
        ssize_t kl = 0;
        if (kty.type == RC_JSON_STRING)
            rc_json_string(&kty, t, sizeof(t));
        if (crv.type == RC_JSON_STRING)
            rc_json_string(&crv, c, sizeof(c));
        if (use.type == RC_JSON_STRING)
            rc_json_string(&use, u, sizeof(u));
        if (kid.type == RC_JSON_STRING)
            kl = rc_json_string(&kid, kd, sizeof(kd));
        if (kl < 0) {
            snprintf(err, errlen, "%s: a kid of more than %d bytes", path, RC_JWK_MAX_KID);
            goto out;
        }
        if (u[0] && strcmp(u, "sig") != 0)
            continue; /* an encryption key: not for tokens */
        EVP_PKEY *p = NULL;
        if (strcmp(t, "RSA") == 0)
            p = jwk_rsa(&n, &e);
        else if (strcmp(t, "EC") == 0 && strcmp(c, "P-256") == 0)
            p = jwk_ec(&x, &y);
        if (!p) {
            snprintf(err, errlen, "%s: key \"%s\" is not an RSA key or an EC P-256 key", path, kd);
            goto out;
        }
        if (add(k, p, kd, (size_t)kl, err, errlen) < 0)
            goto out;
    }
    rc = 0;
out:
    free(text);
    return rc;
}

rc_keyset *rc_keyset_load(const char *pem_path, const char *jwks_path, char *err, size_t errlen)
{
    rc_keyset *k = rc_calloc(1, sizeof(*k));
    if ((pem_path && pem_path[0] && load_pem(k, pem_path, err, errlen) < 0) ||
        (jwks_path && jwks_path[0] && load_jwks(k, jwks_path, err, errlen) < 0)) {
        rc_keyset_free(k);
        return NULL;
    }
    return k;
}

static int verify_one(const rc_key *key, const uint8_t *msg, size_t msg_len, const uint8_t *sig,
                      size_t sig_len)
{
    uint8_t der[80];
    const uint8_t *s = sig;
    size_t sl = sig_len;
    if (key->type == RC_JWK_EC) {
        if (sig_len != 64)
            return 0;
        ECDSA_SIG *es = ECDSA_SIG_new();
        BIGNUM *r = BN_bin2bn(sig, 32, NULL), *ss = BN_bin2bn(sig + 32, 32, NULL);
        if (!es || !r || !ss || ECDSA_SIG_set0(es, r, ss) != 1) {
            BN_free(r);
            BN_free(ss);
            ECDSA_SIG_free(es);
            return 0;
        }
        uint8_t *w = der;
        int dl = i2d_ECDSA_SIG(es, NULL) <= (int)sizeof(der) ? i2d_ECDSA_SIG(es, &w) : -1;
        ECDSA_SIG_free(es);
        if (dl <= 0)
            return 0;
        s = der;
        sl = (size_t)dl;
    }
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    int ok = m && EVP_DigestVerifyInit(m, NULL, EVP_sha256(), NULL, key->pkey) == 1 &&
             EVP_DigestVerify(m, s, sl, msg, msg_len) == 1;
    EVP_MD_CTX_free(m);
    ERR_clear_error();
    return ok;
}

int rc_keyset_verify(const rc_keyset *k, int type, const char *kid, size_t kid_len,
                     const uint8_t *msg, size_t msg_len, const uint8_t *sig, size_t sig_len)
{
    int found = 0;
    for (size_t i = 0; k && i < k->n; i++) {
        const rc_key *key = &k->keys[i];
        if (key->type != type)
            continue;
        if (kid_len && (key->kid_len != kid_len || memcmp(key->kid, kid, kid_len) != 0))
            continue;
        found = 1;
        if (verify_one(key, msg, msg_len, sig, sig_len))
            return 1;
    }
    return kid_len && !found ? -1 : 0;
}
