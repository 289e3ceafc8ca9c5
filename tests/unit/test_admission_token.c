/* Tests for admission/token.c.
 *
 * The TOK_* fixtures were computed independently with python3 3.11 (hmac,
 * hashlib, base64, json), secret b"ringcast-admission-test":
 *   b = lambda x: base64.urlsafe_b64encode(x).rstrip(b'=').decode()
 *   si = b(header.encode()) + '.' + b(payload.encode())
 *   token = si + '.' + b(hmac.new(secret, si.encode(), hashlib.sha256).digest())
 * header '{"alg":"HS256","typ":"JWT"}' unless noted; the payload is in the
 * comment above each fixture. The sub of TOK_UNICODE was written with
 * json.dumps(user, ensure_ascii=False, separators=(',', ':')).
 * Oversized tokens are signed in-test with rc_jwt_sign (ws/jwt, tested in
 * test_jwt.c): only their length matters there. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "admission/token.h"
#include "tests/unit/unit.h"
#include "ws/jwt.h"

#define SECRET "ringcast-admission-test"
#define SLEN   (sizeof(SECRET) - 1)
#define IAT    1700000000
#define EXP    1700000600

/* {"sub":"alice","queue":"sale-42","iat":1700000000,"exp":1700000600,"typ":"admission"} */
#define TOK_VALID                                                                                  \
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."                                                        \
    "eyJzdWIiOiJhbGljZSIsInF1ZXVlIjoic2FsZS00MiIsImlhdCI6MTcwMDAwMDAwMCwiZXhwIjoxNzAwMDAwNjAwLCJ0" \
    "eXAiOiJhZG1pc3Npb24ifQ.BFPOXwC25VGnTy1NTBYmpZNTiQkuGcfdC4fRDK6qBws"
/* The same claims with sub = 'bob "the\\builder"\t' + U+00E9 U+20AC U+1F600 + '\x01',
 * i.e. {"sub":"bob \"the\\builder\"\té€😀\u0001","queue":"sale-42",...} */
#define USER_UNICODE "bob \"the\\builder\"\t\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\x01"
#define TOK_UNICODE                                                                                \
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."                                                        \
    "eyJzdWIiOiJib2IgXCJ0aGVcXGJ1aWxkZXJcIlx0w6nigqzwn5iAXHUwMDAxIiwicXVldWUiOiJzYWxlLTQyIiwiaWF0" \
    "IjoxNzAwMDAwMDAwLCJleHAiOjE3MDAwMDA2MDAsInR5cCI6ImFkbWlzc2lvbiJ9."                            \
    "2GQEaC1w9ZONxBO0Z59U22D50zdfPh0YH5Ol70fGUCI"
/* {"sub":"alice","queue":"sale-42","iat":1700000000,"exp":1700000600,"typ":"client"} */
#define TOK_TYP_CLIENT                                                                             \
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."                                                        \
    "eyJzdWIiOiJhbGljZSIsInF1ZXVlIjoic2FsZS00MiIsImlhdCI6MTcwMDAwMDAwMCwiZXhwIjoxNzAwMDAwNjAwLCJ0" \
    "eXAiOiJjbGllbnQifQ.9eB7zeMIlYkDLIwk2FqgiXbzZ8XFTD7iHHVt_hTVmnQ"
/* {"sub":"alice","queue":"sale-42","iat":1700000000,"exp":1700000600} */
#define TOK_NO_TYP                                                                                 \
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."                                                        \
    "eyJzdWIiOiJhbGljZSIsInF1ZXVlIjoic2FsZS00MiIsImlhdCI6MTcwMDAwMDAwMCwiZXhwIjoxNzAwMDAwNjAwfQ."  \
    "L4mdEb3DISFRjKJYMit0qW_9jyLkNO5p9o8I-qNAdPs"
/* {"sub":"alice","iat":1700000000,"exp":1700000600,"typ":"admission"} */
#define TOK_NO_QUEUE                                                                               \
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."                                                        \
    "eyJzdWIiOiJhbGljZSIsImlhdCI6MTcwMDAwMDAwMCwiZXhwIjoxNzAwMDAwNjAwLCJ0eXAiOiJhZG1pc3Npb24ifQ."  \
    "ToHYFljPNJb3Y4kwYBPZwNPLlUinWMuLkCDm1QuZw-c"
/* header {"alg":"none","typ":"JWT"}, TOK_VALID's claims, empty signature */
#define TOK_ALG_NONE                                                                               \
    "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0."                                                         \
    "eyJzdWIiOiJhbGljZSIsInF1ZXVlIjoic2FsZS00MiIsImlhdCI6MTcwMDAwMDAwMCwiZXhwIjoxNzAwMDAwNjAwLCJ0" \
    "eXAiOiJhZG1pc3Npb24ifQ."
/* header {"alg":"RS256","typ":"JWT"}, TOK_VALID's claims, HMAC-SHA256 signature */
#define TOK_ALG_RS256                                                                              \
    "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9."                                                        \
    "eyJzdWIiOiJhbGljZSIsInF1ZXVlIjoic2FsZS00MiIsImlhdCI6MTcwMDAwMDAwMCwiZXhwIjoxNzAwMDAwNjAwLCJ0" \
    "eXAiOiJhZG1pc3Npb24ifQ.1KvScMFH8h1iS1qR4__wiH5ZDYCrg3KieTEH1klpi-o"
/* payload 'sub=alice;queue=sale-42' (not JSON), correctly signed */
#define TOK_NOT_JSON                                                                               \
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.c3ViPWFsaWNlO3F1ZXVlPXNhbGUtNDI."                        \
    "ojTT7EX-bGuEM3utq7YQqC-m6e23Wq8lo0Cwb-QdZrs"
/* header '{"alg":"HS256"' (cut short), TOK_VALID's claims, correctly signed */
#define TOK_HDR_NOT_JSON                                                                           \
    "eyJhbGciOiJIUzI1NiI."                                                                         \
    "eyJzdWIiOiJhbGljZSIsInF1ZXVlIjoic2FsZS00MiIsImlhdCI6MTcwMDAwMDAwMCwiZXhwIjoxNzAwMDAwNjAwLCJ0" \
    "eXAiOiJhZG1pc3Npb24ifQ.MhtXunClGpKbxpUcpD_VpNMQhUx2lwdCvAE86phSUUQ"
/* {"sub":"alice","queue":"sale-42","iat":1700000000,"exp":"1700000600","typ":"admission"} */
#define TOK_EXP_STRING                                                                             \
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."                                                        \
    "eyJzdWIiOiJhbGljZSIsInF1ZXVlIjoic2FsZS00MiIsImlhdCI6MTcwMDAwMDAwMCwiZXhwIjoiMTcwMDAwMDYwMCIs" \
    "InR5cCI6ImFkbWlzc2lvbiJ9.eWnQtqwDvygFomml949gZlOa8vgV_4X6eCDa7LqmQL4"
/* TOK_VALID's claims followed by "sub":"mallory" */
#define TOK_DUP_SUB                                                                                \
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."                                                        \
    "eyJzdWIiOiJhbGljZSIsInF1ZXVlIjoic2FsZS00MiIsImlhdCI6MTcwMDAwMDAwMCwiZXhwIjoxNzAwMDAwNjAwLCJ0" \
    "eXAiOiJhZG1pc3Npb24iLCJzdWIiOiJtYWxsb3J5In0.0ku5kQHlEDnuydvXLUsIkiurwlzNSoupHSP3NGAb_9E"
/* TOK_VALID's claims with "queue":"sale 42" (a space: not a queue id) */
#define TOK_BAD_QUEUE                                                                              \
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."                                                        \
    "eyJzdWIiOiJhbGljZSIsInF1ZXVlIjoic2FsZSA0MiIsImlhdCI6MTcwMDAwMDAwMCwiZXhwIjoxNzAwMDAwNjAwLCJ0" \
    "eXAiOiJhZG1pc3Npb24ifQ.9giZtWeM2K1cKZWjMmto5hZgqDoJlw4bTijqzDF73Uc"
/* {"sub":"alice","queue":"sale-42","exp":1700000600,"typ":"admission"} */
#define TOK_NO_IAT                                                                                 \
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."                                                        \
    "eyJzdWIiOiJhbGljZSIsInF1ZXVlIjoic2FsZS00MiIsImV4cCI6MTcwMDAwMDYwMCwidHlwIjoiYWRtaXNzaW9uIn0." \
    "sCJ8hn7wMn4GDz8sIJikHWWI2SVhRxEeaH9Y0yvUNHk"

static int verify_at(const char *tok, int64_t now, rc_atoken *out)
{
    return rc_atoken_verify(tok, strlen(tok), SECRET, SLEN, now, out);
}

static int verify(const char *tok)
{
    rc_atoken t;
    return verify_at(tok, IAT, &t);
}

static void test_mint_exact(void)
{
    char out[RC_ATOKEN_MAX_LEN + 1];
    ssize_t n = rc_atoken_mint(out, sizeof(out), SECRET, SLEN, "alice", "sale-42", IAT, EXP);
    CHECK_EQ_INT(n, strlen(TOK_VALID));
    CHECK_EQ_STR(out, TOK_VALID);

    n = rc_atoken_mint(out, sizeof(out), SECRET, SLEN, USER_UNICODE, "sale-42", IAT, EXP);
    CHECK_EQ_INT(n, strlen(TOK_UNICODE));
    CHECK_EQ_STR(out, TOK_UNICODE);
}

static void test_round_trip(void)
{
    rc_atoken t;
    CHECK_EQ_INT(verify_at(TOK_VALID, IAT, &t), RC_ATOKEN_OK);
    CHECK_EQ_STR(t.user, "alice");
    CHECK_EQ_STR(t.queue, "sale-42");
    CHECK_EQ_INT(t.iat, IAT);
    CHECK_EQ_INT(t.exp, EXP);

    /* Escaped quotes, backslash, control characters and 4-byte UTF-8 come
     * back as the same bytes. */
    memset(&t, 0, sizeof(t));
    CHECK_EQ_INT(verify_at(TOK_UNICODE, IAT, &t), RC_ATOKEN_OK);
    CHECK_EQ_STR(t.user, USER_UNICODE);

    /* Largest inputs: 128 bytes that each need a 6-byte escape, a 64-byte
     * queue, extreme times; RC_ATOKEN_MAX_LEN + 1 must be enough. */
    char user[RC_ATOKEN_MAX_USER + 1], queue[RC_ATOKEN_MAX_QUEUE + 1];
    memset(user, 0x01, RC_ATOKEN_MAX_USER);
    user[RC_ATOKEN_MAX_USER] = '\0';
    memset(queue, 'q', RC_ATOKEN_MAX_QUEUE);
    queue[RC_ATOKEN_MAX_QUEUE] = '\0';
    char out[RC_ATOKEN_MAX_LEN + 1];
    ssize_t n = rc_atoken_mint(out, sizeof(out), SECRET, SLEN, user, queue, INT64_MIN, INT64_MAX);
    CHECK(n > 0);
    CHECK_EQ_INT(rc_atoken_verify(out, (size_t)n, SECRET, SLEN, INT64_MAX - 1, &t), RC_ATOKEN_OK);
    CHECK_EQ_STR(t.user, user);
    CHECK_EQ_STR(t.queue, queue);
    CHECK(t.iat == INT64_MIN);
    CHECK(t.exp == INT64_MAX);

    /* Every allowed queue character. */
    const char *q = "Az09_.:@/=+-";
    n = rc_atoken_mint(out, sizeof(out), SECRET, SLEN, "u", q, 1, 2);
    CHECK(n > 0);
    CHECK_EQ_INT(rc_atoken_verify(out, (size_t)n, SECRET, SLEN, 1, &t), RC_ATOKEN_OK);
    CHECK_EQ_STR(t.queue, q);
}

static void test_mint_limits(void)
{
    size_t len = strlen(TOK_VALID);
    char out[RC_ATOKEN_MAX_LEN + 1];
    CHECK_EQ_INT(rc_atoken_mint(out, len + 1, SECRET, SLEN, "alice", "sale-42", IAT, EXP), len);
    CHECK_EQ_INT(rc_atoken_mint(out, len, SECRET, SLEN, "alice", "sale-42", IAT, EXP), -1);
    CHECK_EQ_INT(rc_atoken_mint(out, 10, SECRET, SLEN, "alice", "sale-42", IAT, EXP), -1);
    CHECK_EQ_INT(rc_atoken_mint(out, 0, SECRET, SLEN, "alice", "sale-42", IAT, EXP), -1);

    char big[RC_ATOKEN_MAX_USER + 2];
    memset(big, 'u', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0'; /* 129 bytes */
    CHECK_EQ_INT(rc_atoken_mint(out, sizeof(out), SECRET, SLEN, big, "q", IAT, EXP), -1);
    big[RC_ATOKEN_MAX_USER] = '\0'; /* 128 bytes */
    CHECK(rc_atoken_mint(out, sizeof(out), SECRET, SLEN, big, "q", IAT, EXP) > 0);
    CHECK_EQ_INT(rc_atoken_mint(out, sizeof(out), SECRET, SLEN, "", "q", IAT, EXP), -1);
    CHECK_EQ_INT(rc_atoken_mint(out, sizeof(out), SECRET, SLEN, "\xff", "q", IAT, EXP), -1);

    char qbig[RC_ATOKEN_MAX_QUEUE + 2];
    memset(qbig, 'q', sizeof(qbig) - 1);
    qbig[sizeof(qbig) - 1] = '\0'; /* 65 bytes */
    CHECK_EQ_INT(rc_atoken_mint(out, sizeof(out), SECRET, SLEN, "u", qbig, IAT, EXP), -1);
    CHECK_EQ_INT(rc_atoken_mint(out, sizeof(out), SECRET, SLEN, "u", "", IAT, EXP), -1);
    CHECK_EQ_INT(rc_atoken_mint(out, sizeof(out), SECRET, SLEN, "u", "sale 42", IAT, EXP), -1);
    CHECK_EQ_INT(rc_atoken_mint(out, sizeof(out), SECRET, SLEN, "u", "a\"b", IAT, EXP), -1);
    CHECK_EQ_INT(rc_atoken_mint(out, sizeof(out), SECRET, 0, "u", "q", IAT, EXP), -1);
}

static void test_tampered(void)
{
    char t[sizeof(TOK_VALID)];
    memcpy(t, TOK_VALID, sizeof(t));
    /* One base64url digit of the payload (inside the sub value) changed. */
    char *p = strstr(t, "eyJzdWIiOiJhbGljZSIs");
    CHECK(p != NULL);
    if (p) {
        CHECK(p[15] == 'j');
        p[15] = 'Z';
        CHECK_EQ_INT(verify(t), RC_ATOKEN_BAD_SIGNATURE);
    }
    /* First signature digit (a full 6 bits, so still canonical base64url). */
    memcpy(t, TOK_VALID, sizeof(t));
    char *s = strrchr(t, '.') + 1;
    CHECK(s[0] == 'B');
    s[0] = 'C';
    CHECK_EQ_INT(verify(t), RC_ATOKEN_BAD_SIGNATURE);
    /* The signature cut to 40 digits (30 bytes). */
    rc_atoken out;
    CHECK_EQ_INT(rc_atoken_verify(TOK_VALID, strlen(TOK_VALID) - 3, SECRET, SLEN, IAT, &out),
                 RC_ATOKEN_BAD_SIGNATURE);
    /* Another user's claims under alice's signature. */
    const char *sig = strrchr(TOK_UNICODE, '.');
    char mixed[sizeof(TOK_UNICODE) + 64];
    snprintf(mixed, sizeof(mixed), "%.*s%s", (int)(sig - TOK_UNICODE), TOK_UNICODE,
             strrchr(TOK_VALID, '.'));
    CHECK_EQ_INT(verify(mixed), RC_ATOKEN_BAD_SIGNATURE);

    CHECK_EQ_INT(
        rc_atoken_verify(TOK_VALID, strlen(TOK_VALID), "ringcast-admission-tesT", SLEN, IAT, &out),
        RC_ATOKEN_BAD_SIGNATURE);
    CHECK_EQ_INT(rc_atoken_verify(TOK_VALID, strlen(TOK_VALID), SECRET, SLEN - 1, IAT, &out),
                 RC_ATOKEN_BAD_SIGNATURE);
    CHECK_EQ_INT(rc_atoken_verify(TOK_VALID, strlen(TOK_VALID), SECRET, 0, IAT, &out),
                 RC_ATOKEN_BAD_SIGNATURE);
}

static void test_expiry(void)
{
    rc_atoken t;
    CHECK_EQ_INT(verify_at(TOK_VALID, EXP - 1, &t), RC_ATOKEN_OK);
    CHECK_EQ_INT(verify_at(TOK_VALID, EXP, &t), RC_ATOKEN_EXPIRED);
    CHECK_EQ_INT(verify_at(TOK_VALID, EXP + 1, &t), RC_ATOKEN_EXPIRED);
    CHECK_EQ_INT(verify_at(TOK_VALID, INT64_MAX, &t), RC_ATOKEN_EXPIRED);
}

static void test_not_admission(void)
{
    CHECK_EQ_INT(verify(TOK_TYP_CLIENT), RC_ATOKEN_NOT_ADMISSION);
    CHECK_EQ_INT(verify(TOK_NO_TYP), RC_ATOKEN_NOT_ADMISSION);
    CHECK_EQ_INT(verify(TOK_NO_QUEUE), RC_ATOKEN_NOT_ADMISSION);
    /* Checked before expiry: an old client token is reported for what it is. */
    rc_atoken t;
    CHECK_EQ_INT(verify_at(TOK_TYP_CLIENT, EXP + 100, &t), RC_ATOKEN_NOT_ADMISSION);
}

static void test_alg(void)
{
    CHECK_EQ_INT(verify(TOK_ALG_NONE), RC_ATOKEN_BAD_SIGNATURE);
    CHECK_EQ_INT(verify(TOK_ALG_RS256), RC_ATOKEN_BAD_SIGNATURE);
}

static void test_malformed(void)
{
    CHECK_EQ_INT(verify(""), RC_ATOKEN_MALFORMED);
    CHECK_EQ_INT(verify("abc"), RC_ATOKEN_MALFORMED);
    CHECK_EQ_INT(verify("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSJ9"),
                 RC_ATOKEN_MALFORMED);
    CHECK_EQ_INT(verify(TOK_VALID ".x"), RC_ATOKEN_MALFORMED);
    CHECK_EQ_INT(verify(".."), RC_ATOKEN_MALFORMED);
    CHECK_EQ_INT(verify(TOK_VALID "="), RC_ATOKEN_MALFORMED);
    CHECK_EQ_INT(rc_atoken_verify(NULL, 0, SECRET, SLEN, IAT, &(rc_atoken){0}),
                 RC_ATOKEN_MALFORMED);

    /* A character outside the base64url alphabet in each part. */
    for (int part = 0; part < 3; part++) {
        char t[sizeof(TOK_VALID)];
        memcpy(t, TOK_VALID, sizeof(t));
        char *p = t;
        for (int i = 0; i < part; i++)
            p = strchr(p, '.') + 1;
        p[1] = '*';
        CHECK_EQ_INT(verify(t), RC_ATOKEN_MALFORMED);
        p[1] = '+'; /* standard base64, not base64url */
        CHECK_EQ_INT(verify(t), RC_ATOKEN_MALFORMED);
    }

    CHECK_EQ_INT(verify(TOK_NOT_JSON), RC_ATOKEN_MALFORMED);
    CHECK_EQ_INT(verify(TOK_HDR_NOT_JSON), RC_ATOKEN_MALFORMED);
    CHECK_EQ_INT(verify(TOK_EXP_STRING), RC_ATOKEN_MALFORMED);
    CHECK_EQ_INT(verify(TOK_DUP_SUB), RC_ATOKEN_MALFORMED);
    CHECK_EQ_INT(verify(TOK_BAD_QUEUE), RC_ATOKEN_MALFORMED);
    CHECK_EQ_INT(verify(TOK_NO_IAT), RC_ATOKEN_MALFORMED);
}

/* Builds a correctly signed admission token whose payload is padded (with
 * an extra claim) to exactly payload_len bytes. */
static int padded_token(char *out, size_t cap, size_t payload_len)
{
    static const char head[] =
        "{\"sub\":\"alice\",\"queue\":\"sale-42\",\"iat\":1700000000,\"exp\":1700000600,"
        "\"typ\":\"admission\",\"pad\":\"";
    char claims[RC_ATOKEN_MAX_LEN * 2];
    size_t h = sizeof(head) - 1;
    if (payload_len < h + 2 || payload_len > sizeof(claims))
        return -1;
    memcpy(claims, head, h);
    memset(claims + h, 'x', payload_len - h - 2);
    memcpy(claims + payload_len - 2, "\"}", 2);
    return rc_jwt_sign(claims, payload_len, (const uint8_t *)SECRET, SLEN, out, cap);
}

static void test_oversized(void)
{
    /* 36 (header) + 1 + 1967 (1475 bytes of payload) + 1 + 43 = 2048. */
    char t[RC_ATOKEN_MAX_LEN * 3];
    rc_atoken out;
    int n = padded_token(t, sizeof(t), 1475);
    CHECK_EQ_INT(n, RC_ATOKEN_MAX_LEN);
    CHECK_EQ_INT(rc_atoken_verify(t, (size_t)n, SECRET, SLEN, IAT, &out), RC_ATOKEN_OK);
    n = padded_token(t, sizeof(t), 1476);
    CHECK_EQ_INT(n, RC_ATOKEN_MAX_LEN + 1);
    CHECK_EQ_INT(rc_atoken_verify(t, (size_t)n, SECRET, SLEN, IAT, &out), RC_ATOKEN_MALFORMED);
    n = padded_token(t, sizeof(t), 3000);
    CHECK(n > RC_ATOKEN_MAX_LEN);
    CHECK_EQ_INT(rc_atoken_verify(t, (size_t)n, SECRET, SLEN, IAT, &out), RC_ATOKEN_MALFORMED);
}

static void test_out_unchanged(void)
{
    rc_atoken t, before;
    memset(&t, 0x5a, sizeof(t));
    before = t;
    const char *bad[] = {TOK_TYP_CLIENT, TOK_ALG_NONE, TOK_NOT_JSON, TOK_DUP_SUB, "x.y.z"};
    for (size_t i = 0; i < RC_ARRAY_LEN(bad); i++) {
        CHECK(verify_at(bad[i], IAT, &t) != RC_ATOKEN_OK);
        CHECK(memcmp(&t, &before, sizeof(t)) == 0);
    }
    CHECK_EQ_INT(verify_at(TOK_VALID, EXP, &t), RC_ATOKEN_EXPIRED);
    CHECK(memcmp(&t, &before, sizeof(t)) == 0);
}

static void test_reason(void)
{
    CHECK_EQ_STR(rc_atoken_reason(RC_ATOKEN_OK), "ok");
    CHECK_EQ_STR(rc_atoken_reason(RC_ATOKEN_MALFORMED), "malformed");
    CHECK_EQ_STR(rc_atoken_reason(RC_ATOKEN_BAD_SIGNATURE), "bad signature");
    CHECK_EQ_STR(rc_atoken_reason(RC_ATOKEN_EXPIRED), "expired");
    CHECK_EQ_STR(rc_atoken_reason(RC_ATOKEN_NOT_ADMISSION), "not an admission token");
    CHECK_EQ_STR(rc_atoken_reason(99), "malformed");
}

int main(void)
{
    RUN(test_mint_exact);
    RUN(test_round_trip);
    RUN(test_mint_limits);
    RUN(test_tampered);
    RUN(test_expiry);
    RUN(test_not_admission);
    RUN(test_alg);
    RUN(test_malformed);
    RUN(test_oversized);
    RUN(test_out_unchanged);
    RUN(test_reason);
    return UNIT_DONE();
}
