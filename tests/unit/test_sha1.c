/* Unit tests for base/sha1.c: the FIPS 180-4 example digests, and the same
 * digest as libcrypto's for every length from 0 to 300 bytes (one-block and
 * two-block padding, and the lengths around each block edge). */
#include "base/sha1.h"
#include "tests/unit/unit.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

static void hex(const uint8_t *md, char out[41])
{
    for (int i = 0; i < RC_SHA1_LEN; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static void test_known_digests(void)
{
    uint8_t md[RC_SHA1_LEN];
    char h[41];
    rc_sha1("", 0, md);
    hex(md, h);
    CHECK_EQ_STR(h, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    rc_sha1("abc", 3, md);
    hex(md, h);
    CHECK_EQ_STR(h, "a9993e364706816aba3e25717850c26c9cd0d89d");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    rc_sha1(two, strlen(two), md);
    hex(md, h);
    CHECK_EQ_STR(h, "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
    static char million[1000000];
    memset(million, 'a', sizeof(million));
    rc_sha1(million, sizeof(million), md);
    hex(md, h);
    CHECK_EQ_STR(h, "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
}

static void test_same_as_libcrypto(void)
{
    uint8_t buf[300];
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (uint8_t)(i * 131 + 7);
    for (size_t n = 0; n <= sizeof(buf); n++) {
        uint8_t ours[RC_SHA1_LEN], theirs[EVP_MAX_MD_SIZE];
        unsigned int len = 0;
        rc_sha1(buf, n, ours);
        CHECK(EVP_Digest(buf, n, theirs, &len, EVP_sha1(), NULL) == 1);
        CHECK_EQ_INT((int)len, RC_SHA1_LEN);
        CHECK(memcmp(ours, theirs, RC_SHA1_LEN) == 0);
    }
}

int main(void)
{
    RUN(test_known_digests);
    RUN(test_same_as_libcrypto);
    return UNIT_DONE();
}
