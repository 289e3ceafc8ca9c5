/* rc_redis_url_parse: valid forms, defaults, percent-decoding, refusals. */
#include "redis/url.h"
#include "tests/unit/unit.h"

static rc_redis_url u;
static char err[128];

static int parse(const char *s)
{
    return rc_redis_url_parse(s, &u, err, sizeof(err));
}

static void test_tcp_defaults(void)
{
    CHECK_EQ_INT(parse("redis://localhost"), 0);
    CHECK_EQ_STR(u.host, "localhost");
    CHECK_EQ_INT(u.port, 6379);
    CHECK_EQ_INT(u.db, 0);
    CHECK_EQ_STR(u.user, "");
    CHECK_EQ_STR(u.password, "");
    CHECK_EQ_STR(u.unix_path, "");

    CHECK_EQ_INT(parse("redis://10.0.0.5:7000/3"), 0);
    CHECK_EQ_STR(u.host, "10.0.0.5");
    CHECK_EQ_INT(u.port, 7000);
    CHECK_EQ_INT(u.db, 3);

    CHECK_EQ_INT(parse("redis://h/"), 0);
    CHECK_EQ_INT(u.db, 0);
    CHECK_EQ_INT(parse("REDIS://Host.Example:65535/15"), 0);
    CHECK_EQ_STR(u.host, "Host.Example");
    CHECK_EQ_INT(u.port, 65535);
    CHECK_EQ_INT(u.db, 15);
    CHECK_EQ_INT(parse("redis://[::1]:6380/2"), 0);
    CHECK_EQ_STR(u.host, "::1");
    CHECK_EQ_INT(u.port, 6380);
    CHECK_EQ_INT(u.db, 2);
    CHECK_EQ_INT(parse("redis://[fe80::1]"), 0);
    CHECK_EQ_STR(u.host, "fe80::1");
    CHECK_EQ_INT(u.port, 6379);
}

static void test_userinfo(void)
{
    CHECK_EQ_INT(parse("redis://:secret@h"), 0);
    CHECK_EQ_STR(u.user, "");
    CHECK_EQ_STR(u.password, "secret");
    CHECK_EQ_STR(u.host, "h");

    CHECK_EQ_INT(parse("redis://alice:pw@h:1/9"), 0);
    CHECK_EQ_STR(u.user, "alice");
    CHECK_EQ_STR(u.password, "pw");
    CHECK_EQ_INT(u.port, 1);
    CHECK_EQ_INT(u.db, 9);

    /* %40 = '@', %3A = ':', %2F = '/', %25 = '%', %20 = ' ' (RFC 3986 2.1) */
    CHECK_EQ_INT(parse("redis://us%40er:p%3Aa%2Fs%25s%20x@h"), 0);
    CHECK_EQ_STR(u.user, "us@er");
    CHECK_EQ_STR(u.password, "p:a/s%s x");
    CHECK_EQ_INT(parse("redis://:%e2%82%ac@h"), 0); /* U+20AC in UTF-8 */
    CHECK_EQ_STR(u.password, "\xe2\x82\xac");
    /* a password containing ':' after the first one stays whole */
    CHECK_EQ_INT(parse("redis://u:a:b@h"), 0);
    CHECK_EQ_STR(u.user, "u");
    CHECK_EQ_STR(u.password, "a:b");
}

static void test_unix(void)
{
    CHECK_EQ_INT(parse("unix:///run/redis/redis.sock"), 0);
    CHECK_EQ_STR(u.unix_path, "/run/redis/redis.sock");
    CHECK_EQ_STR(u.host, "");
    CHECK_EQ_INT(u.port, 0);
    CHECK_EQ_INT(u.db, 0);
    CHECK_EQ_INT(parse("redis+unix:///tmp/r.sock?db=4"), 0);
    CHECK_EQ_STR(u.unix_path, "/tmp/r.sock");
    CHECK_EQ_INT(u.db, 4);
    char longp[200] = "unix:///";
    memset(longp + 8, 'a', 99); /* path "/" + 99 = 100 bytes: fits 108 */
    CHECK_EQ_INT(parse(longp), 0);
    CHECK_EQ_INT(strlen(u.unix_path), 100);
}

static void refused(const char *s, const char *needle)
{
    memset(&u, 0x5a, sizeof(u));
    int rc = parse(s);
    CHECK_EQ_INT(rc, -1);
    CHECK(strstr(err, needle) != NULL);
    if (rc != -1 || !strstr(err, needle))
        fprintf(stderr, "  url '%s' err '%s'\n", s, err);
    CHECK_EQ_STR(u.host, ""); /* zeroed, never half-filled */
    CHECK_EQ_INT(u.port, 0);
}

static void test_refused(void)
{
    refused("rediss://h:6380", "TLS");
    refused("", "empty");
    refused("localhost:6379", "scheme");
    refused("http://h", "scheme");
    refused("redis://", "empty host");
    refused("redis://:6379", "empty host");
    refused("redis://h:0", "port");
    refused("redis://h:65536", "port");
    refused("redis://h:abc", "port");
    refused("redis://h:", "port");
    refused("redis://h:-1", "port");
    refused("redis://h/x", "db");
    refused("redis://h/-1", "db");
    refused("redis://h/99999999999", "db");
    refused("redis://h?x=1", "query");
    refused("redis://secret@h", "userinfo");
    refused("redis://u:@h", "empty password");
    refused("redis://u:p%4@h", "percent");
    refused("redis://u:p%zz@h", "percent");
    refused("redis://u:p%00x@h", "percent");
    refused("redis://u%g1:p@h", "percent");
    refused("redis://[::1", "IPv6");
    refused("redis://[::1]x", "junk");
    refused("unix://relative.sock", "absolute");
    refused("unix:///", "empty");
    refused("unix:///tmp/s?db=x", "db");
    refused("unix:///tmp/s?timeout=1", "db=N");
    char longp[200] = "unix:///";
    memset(longp + 8, 'a', 107); /* 108 bytes + NUL: one too many */
    refused(longp, "longer");
    char longh[400] = "redis://";
    memset(longh + 8, 'h', 300);
    refused(longh, "host too long");
}

static void test_null_err(void)
{
    CHECK_EQ_INT(rc_redis_url_parse("rediss://x", &u, NULL, 0), -1);
    char small[8];
    CHECK_EQ_INT(rc_redis_url_parse("rediss://x", &u, small, sizeof(small)), -1);
    CHECK_EQ_INT(strlen(small), 7);
}

int main(void)
{
    RUN(test_tcp_defaults);
    RUN(test_userinfo);
    RUN(test_unix);
    RUN(test_refused);
    RUN(test_null_err);
    return UNIT_DONE();
}
