/* An independent base64url decoder and HMAC-SHA256 check for the token
 * drivers (fuzz_jwt.c, fuzz_atoken.c): a token that verifies must carry,
 * as its third part, exactly the HMAC of its first two parts. */
#ifndef RC_FUZZ_B64_H
#define RC_FUZZ_B64_H

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>

#include "tests/fuzz/fuzz.h"

/* Strict unpadded base64url; returns the length or -1. */
static inline int fuzz_b64url(const char *in, size_t n, uint8_t *out, size_t cap)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        const char *c = in[i] ? memchr(abc, in[i], 64) : NULL;
        if (!c)
            return -1;
        acc = acc << 6 | (uint32_t)(c - abc);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o == cap)
                return -1;
            out[o++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    return acc == 0 && bits < 6 ? (int)o : -1;
}

/* Aborts unless tok is a.b.c with c the unpadded base64url HMAC-SHA256 of
 * "a.b" under secret. */
static inline void fuzz_check_signed(const char *tok, size_t len, const void *secret, size_t sl)
{
    const char *d1 = memchr(tok, '.', len);
    FUZZ_CHECK(d1 != NULL);
    const char *d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - tok));
    FUZZ_CHECK(d2 != NULL);
    size_t signed_len = (size_t)(d2 - tok);
    uint8_t mac[EVP_MAX_MD_SIZE];
    unsigned ml = 0;
    FUZZ_CHECK(HMAC(EVP_sha256(), secret, (int)sl, (const unsigned char *)tok, signed_len, mac,
                    &ml) != NULL);
    uint8_t sig[64];
    int n = fuzz_b64url(d2 + 1, len - signed_len - 1, sig, sizeof(sig));
    FUZZ_CHECK(n == 32 && ml == 32);
    FUZZ_CHECK(memcmp(sig, mac, 32) == 0);
}

#endif
