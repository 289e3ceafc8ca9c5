/* Tests for ws/json.c. Expected results come from RFC 8259's grammar and
 * RFC 3629's UTF-8 table; the byte sequences for escapes were checked with
 * python3 (e.g. '\U0001F600'.encode() == b'\xf0\x9f\x98\x80'). Every input is
 * copied into a heap buffer of exactly its length, so ASan catches any read
 * past len. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/unit.h"
#include "ws/json.h"

/* An exact-size heap copy of s[0..n). */
static char *dup_exact(const char *s, size_t n)
{
    char *p = malloc(n ? n : 1);
    memcpy(p, s, n);
    return p;
}

static int validate_exact(const char *s, size_t n, int max_depth)
{
    char *p = dup_exact(s, n);
    int rc = rc_json_validate(p, n, max_depth);
    free(p);
    return rc;
}

struct vcase {
    const char *s;
    size_t n;
    int ok;
};

#define OK(s)                                                                                      \
    {                                                                                              \
        s, sizeof(s) - 1, 1                                                                        \
    }
#define BAD(s)                                                                                     \
    {                                                                                              \
        s, sizeof(s) - 1, 0                                                                        \
    }

static const struct vcase cases[] = {
    /* valid */
    OK("{}"),
    OK("[]"),
    OK(" \t\n\r{} \r\n\t "),
    OK("0"),
    OK("-0"),
    OK("1.5e10"),
    OK("-1.0E-2"),
    OK("1E+2"),
    OK("0.0"),
    OK("1e5"),
    OK("123456789012345678901234567890"),
    OK("\"\""),
    OK("true"),
    OK("false"),
    OK("null"),
    OK("[1,2,3]"),
    OK("{\"a\":[{\"b\":null}]}"),
    OK("{\"\":0}"),
    OK("{\"a\":1,\"a\":2}"),
    OK("[[]]"),
    OK("[true,false,null,\"x\",-1,{}]"),
    OK("\"\\u00e9\""),
    OK("\"\\ud83d\\ude00\""),
    OK("\"\\uD834\\uDD1E\""),
    OK("\"\\/\\b\\f\\n\\r\\t\\\\\\\"\""),
    OK("\"\\u0000\""),
    OK("\"\x7f\""),
    OK("\"\xc3\xa9\""),
    OK("\"\xe2\x82\xac\""),
    OK("\"\xf0\x9f\x98\x80\""),
    OK("\"\xef\xbf\xbf\""),
    OK("\"\xf4\x8f\xbf\xbf\""),
    OK("\"\xed\x9f\xbf\""),
    OK("\"\xee\x80\x80\""),
    OK("{ \"a\" : [ 1 , 2 ] , \"b\" : { } }"),
    /* structure */
    BAD(""),
    BAD("   "),
    BAD("{"),
    BAD("}"),
    BAD("["),
    BAD("]"),
    BAD("[1,]"),
    BAD("{\"a\":1,}"),
    BAD("[,1]"),
    BAD("[1 2]"),
    BAD("{\"a\" 1}"),
    BAD("{\"a\":}"),
    BAD("{1:2}"),
    BAD("{a:1}"),
    BAD("{'a':1}"),
    BAD("{\"a\":1"),
    BAD("[1] ]"),
    BAD("{\"a\",1}"),
    BAD("{,}"),
    BAD("[1,,2]"),
    BAD("{\"a\":1 \"b\":2}"),
    /* two values, trailing garbage */
    BAD("1 2"),
    BAD("{} {}"),
    BAD("{}x"),
    BAD("\"a\"\"b\""),
    BAD("{}\0"),
    BAD("[]]"),
    /* numbers */
    BAD("01"),
    BAD("-01"),
    BAD("00"),
    BAD("+1"),
    BAD("NaN"),
    BAD("Infinity"),
    BAD("-Infinity"),
    BAD("-"),
    BAD("1."),
    BAD(".5"),
    BAD("1e"),
    BAD("1e+"),
    BAD("0x10"),
    BAD("1.e5"),
    BAD("-a"),
    BAD("1ee5"),
    BAD("1.5.2"),
    BAD("- 1"),
    /* literals */
    BAD("tru"),
    BAD("truex"),
    BAD("nul"),
    BAD("True"),
    BAD("NULL"),
    BAD("falsey"),
    BAD("'x'"),
    /* strings: termination and escapes */
    BAD("\"abc"),
    BAD("\""),
    BAD("\"\\"),
    BAD("\"\\\""),
    BAD("\"\\x\""),
    BAD("\"\\a\""),
    BAD("\"\\U00e9\""),
    BAD("\"\\u12\""),
    BAD("\"\\u12G4\""),
    BAD("\"\\u00e9"),
    BAD("\"\\'\""),
    BAD("\"\\0\""),
    /* lone surrogates */
    BAD("\"\\ud800\""),
    BAD("\"\\udc00\""),
    BAD("\"\\ud800\\u0041\""),
    BAD("\"\\ud800x\""),
    BAD("\"\\ude00\\ud83d\""),
    BAD("\"\\ud800\\ud800\""),
    BAD("\"\\ud800\\"),
    /* control characters */
    BAD("\"\t\""),
    BAD("\"\n\""),
    BAD("\"\x01\""),
    BAD("\"\x1f\""),
    BAD("\"a\0b\""),
    /* invalid UTF-8 */
    BAD("\"\xc0\xaf\""),
    BAD("\"\xc1\xbf\""),
    BAD("\"\xe0\x80\xaf\""),
    BAD("\"\xe0\x9f\xbf\""),
    BAD("\"\xed\xa0\x80\""),
    BAD("\"\xed\xbf\xbf\""),
    BAD("\"\xf0\x80\x80\xaf\""),
    BAD("\"\xf0\x8f\xbf\xbf\""),
    BAD("\"\xf4\x90\x80\x80\""),
    BAD("\"\xf5\x80\x80\x80\""),
    BAD("\"\x80\""),
    BAD("\"\xbf\""),
    BAD("\"\xc3\""),
    BAD("\"\xe2\x82\""),
    BAD("\"\xf0\x9f\x98\""),
    BAD("\"\xff\""),
    BAD("\"\xfe\""),
    BAD("\"\xc3\x28\""),
    BAD("\"\xe2\x28\xa1\""),
    BAD("\"\xc3\xa9"),
    /* raw non-JSON bytes outside strings */
    BAD("\xef\xbb\xbf{}"),
    BAD("{}\x0b"),
    BAD("\x0c[]"),
};

static void test_validate_table(void)
{
    for (size_t i = 0; i < RC_ARRAY_LEN(cases); i++) {
        int rc = validate_exact(cases[i].s, cases[i].n, 8);
        if ((rc == 0) != cases[i].ok)
            fprintf(stderr, "case %zu (%.*s): got %d\n", i, (int)cases[i].n, cases[i].s, rc);
        CHECK((rc == 0) == cases[i].ok);
    }
}

/* Every strict prefix of a container document is incomplete, so invalid. */
static void test_prefixes(void)
{
    static const char doc[] =
        "{\"a\":[1,-2.5e3,\"x\\u00e9\\ud83d\\ude00\xc3\xa9\",true,false,null],\"b\":{}}";
    size_t n = sizeof(doc) - 1;
    CHECK_EQ_INT(validate_exact(doc, n, 8), 0);
    int bad = 0;
    for (size_t i = 0; i < n; i++)
        bad += validate_exact(doc, i, 8) != 0;
    CHECK_EQ_INT(bad, (long long)n);
}

static char *nest(int depth, size_t *len)
{
    char *s = malloc((size_t)depth * 2 + 1);
    for (int i = 0; i < depth; i++) {
        s[i] = '[';
        s[depth + i] = ']';
    }
    *len = (size_t)depth * 2;
    return s;
}

static void test_depth(void)
{
    size_t n;
    char *s;
    CHECK_EQ_INT(rc_json_validate("[[[]]]", 6, 3), 0);
    CHECK_EQ_INT(rc_json_validate("[[[[]]]]", 8, 3), -1);
    CHECK_EQ_INT(rc_json_validate("{\"a\":{\"b\":[1]}}", 15, 3), 0);
    CHECK_EQ_INT(rc_json_validate("{\"a\":{\"b\":[1]}}", 15, 2), -1);
    CHECK_EQ_INT(rc_json_validate("[{}]", 4, 2), 0);
    CHECK_EQ_INT(rc_json_validate("[{\"a\":[]}]", 10, 2), -1);
    CHECK_EQ_INT(rc_json_validate("1", 1, 0), 0);
    CHECK_EQ_INT(rc_json_validate("[]", 2, 0), -1);

    s = nest(64, &n);
    CHECK_EQ_INT(validate_exact(s, n, 64), 0);
    free(s);
    s = nest(65, &n);
    CHECK_EQ_INT(validate_exact(s, n, 64), -1);
    free(s);

    /* Hostile nesting: far past any stack a recursive parser could afford. */
    s = nest(1000000, &n);
    CHECK_EQ_INT(validate_exact(s, n, 64), -1);
    CHECK_EQ_INT(validate_exact(s, n, 1 << 30), -1);
    free(s);
    s = nest(1024, &n);
    CHECK_EQ_INT(validate_exact(s, n, 1 << 30), 0);
    free(s);
    s = nest(1025, &n);
    CHECK_EQ_INT(validate_exact(s, n, 1 << 30), -1);
    free(s);

    /* Only open brackets: must fail without reading past the buffer. */
    s = malloc(100000);
    memset(s, '[', 100000);
    CHECK_EQ_INT(rc_json_validate(s, 100000, 1 << 30), -1);
    free(s);

    rc_json_iter it;
    CHECK_EQ_INT(rc_json_object_begin(&it, "{\"a\":[1]}", 9, 2), 0);
    CHECK_EQ_INT(rc_json_object_begin(&it, "{\"a\":[1]}", 9, 1), -1);
}

static int span_is(rc_str s, const char *want)
{
    return s.n == strlen(want) && memcmp(s.p, want, s.n) == 0;
}

static void test_object_iter(void)
{
    static const char text[] =
        " { \"a\" : 1 , \"b\":{\"x\": [1, 2 ,{\"y\":\"z\"}] } ,\"c\":\"s\\u00e9\","
        "\"d\":[],\"e\":true,\"f\":false,\"g\":null, \"h\" : -1.5e3 ,\"a\":\"dup\"} ";
    size_t n = sizeof(text) - 1;
    char *doc = dup_exact(text, n);
    static const struct {
        const char *key_raw;
        rc_json_type type;
        const char *raw;
    } want[] = {
        {"\"a\"", RC_JSON_NUMBER, "1"},
        {"\"b\"", RC_JSON_OBJECT, "{\"x\": [1, 2 ,{\"y\":\"z\"}] }"},
        {"\"c\"", RC_JSON_STRING, "\"s\\u00e9\""},
        {"\"d\"", RC_JSON_ARRAY, "[]"},
        {"\"e\"", RC_JSON_TRUE, "true"},
        {"\"f\"", RC_JSON_FALSE, "false"},
        {"\"g\"", RC_JSON_NULL, "null"},
        {"\"h\"", RC_JSON_NUMBER, "-1.5e3"},
        {"\"a\"", RC_JSON_STRING, "\"dup\""},
    };
    rc_json_iter it;
    rc_json_val k, v, b = {RC_JSON_INVALID, RC_STR_NULL};
    CHECK_EQ_INT(rc_json_object_begin(&it, doc, n, 4), 0);
    size_t i = 0;
    while (rc_json_object_next(&it, &k, &v)) {
        if (i >= RC_ARRAY_LEN(want)) {
            CHECK(0);
            break;
        }
        CHECK_EQ_INT(k.type, RC_JSON_STRING);
        CHECK(span_is(k.raw, want[i].key_raw));
        CHECK_EQ_INT(v.type, want[i].type);
        CHECK(span_is(v.raw, want[i].raw));
        /* A raw span is a window into the input, not a copy. */
        CHECK(v.raw.p >= doc && v.raw.p + v.raw.n <= doc + n);
        if (i == 1)
            b = v;
        i++;
    }
    CHECK_EQ_INT(i, RC_ARRAY_LEN(want));
    CHECK_EQ_INT(it.count, RC_ARRAY_LEN(want));
    CHECK_EQ_INT(rc_json_object_next(&it, &k, &v), 0);

    /* The nested object's span iterates on its own. */
    rc_json_iter in;
    CHECK(span_is(b.raw, "{\"x\": [1, 2 ,{\"y\":\"z\"}] }"));
    CHECK_EQ_INT(rc_json_object_begin(&in, b.raw.p, b.raw.n, 3), 0);
    CHECK_EQ_INT(rc_json_object_next(&in, &k, &v), 1);
    CHECK(rc_json_key_is(&k, "x"));
    CHECK(span_is(v.raw, "[1, 2 ,{\"y\":\"z\"}]"));
    CHECK_EQ_INT(rc_json_object_next(&in, &k, &v), 0);
    free(doc);

    CHECK_EQ_INT(rc_json_object_begin(&it, " {} ", 4, 1), 0);
    CHECK_EQ_INT(rc_json_object_next(&it, &k, &v), 0);
    CHECK_EQ_INT(it.count, 0);

    CHECK_EQ_INT(rc_json_object_begin(&it, "[1]", 3, 4), -1);
    CHECK_EQ_INT(rc_json_object_next(&it, &k, &v), 0);
    CHECK_EQ_INT(rc_json_object_begin(&it, "{\"a\":1,}", 8, 4), -1);
    CHECK_EQ_INT(rc_json_object_next(&it, &k, &v), 0);
    CHECK_EQ_INT(rc_json_object_begin(&it, "\"{}\"", 4, 4), -1);
    CHECK_EQ_INT(rc_json_object_begin(&it, "{} {}", 5, 4), -1);
}

static void test_array_iter(void)
{
    static const char text[] = "[ 1 , \"two\" , [3,[ ]] , {\"k\":[]},null ]";
    char *doc = dup_exact(text, sizeof(text) - 1);
    static const char *const want[] = {"1", "\"two\"", "[3,[ ]]", "{\"k\":[]}", "null"};
    static const rc_json_type types[] = {RC_JSON_NUMBER, RC_JSON_STRING, RC_JSON_ARRAY,
                                         RC_JSON_OBJECT, RC_JSON_NULL};
    rc_json_iter it;
    rc_json_val v;
    CHECK_EQ_INT(rc_json_array_begin(&it, doc, sizeof(text) - 1, 3), 0);
    size_t i = 0;
    while (rc_json_array_next(&it, &v) && i < RC_ARRAY_LEN(want)) {
        CHECK_EQ_INT(v.type, types[i]);
        CHECK(span_is(v.raw, want[i]));
        i++;
    }
    CHECK_EQ_INT(i, RC_ARRAY_LEN(want));
    CHECK_EQ_INT(rc_json_array_next(&it, &v), 0);
    free(doc);

    CHECK_EQ_INT(rc_json_array_begin(&it, "[]", 2, 1), 0);
    CHECK_EQ_INT(rc_json_array_next(&it, &v), 0);
    CHECK_EQ_INT(rc_json_array_begin(&it, "{}", 2, 1), -1);
    CHECK_EQ_INT(rc_json_array_begin(&it, "[1,]", 4, 1), -1);
}

static void test_key_is(void)
{
    rc_json_iter it;
    rc_json_val k, v;
    const char *doc = "{\"\\u0074ype\":1,\"ty\\\"pe\":2}";
    CHECK_EQ_INT(rc_json_object_begin(&it, doc, strlen(doc), 2), 0);
    CHECK_EQ_INT(rc_json_object_next(&it, &k, &v), 1);
    CHECK(rc_json_key_is(&k, "type"));
    CHECK(!rc_json_key_is(&k, "typ"));
    CHECK(!rc_json_key_is(&k, "types"));
    CHECK(!rc_json_key_is(&k, ""));
    CHECK_EQ_INT(rc_json_object_next(&it, &k, &v), 1);
    CHECK(rc_json_key_is(&k, "ty\"pe"));
    CHECK(!rc_json_key_is(&k, "type"));
    CHECK(!rc_json_key_is(&v, "2"));
}

/* The single element of the one-element array text. */
static rc_json_val elem(const char *text)
{
    rc_json_iter it;
    rc_json_val v = {RC_JSON_INVALID, RC_STR_NULL};
    if (rc_json_array_begin(&it, text, strlen(text), 2) == 0)
        rc_json_array_next(&it, &v);
    return v;
}

static void test_string_decode(void)
{
    char out[64];
    rc_json_val v;

    v = elem("[\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\"]");
    CHECK_EQ_INT(rc_json_string(&v, out, sizeof(out)), 12);
    CHECK(memcmp(out, "a\"b\\c/d\b\f\n\r\t", 13) == 0);

    v = elem("[\"\\u00e9\\u20AC\"]");
    CHECK_EQ_INT(rc_json_string(&v, out, sizeof(out)), 5);
    CHECK_EQ_STR(out, "\xc3\xa9\xe2\x82\xac");

    v = elem("[\"\\u0041\\u007f\\u0080\\u07ff\\u0800\\uffff\"]");
    CHECK_EQ_INT(rc_json_string(&v, out, sizeof(out)), 1 + 1 + 2 + 2 + 3 + 3);
    CHECK_EQ_STR(out, "A\x7f\xc2\x80\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf");

    v = elem("[\"\\ud83d\\ude00|\\uD834\\uDD1E|\\udbff\\udfff\"]");
    CHECK_EQ_INT(rc_json_string(&v, out, sizeof(out)), 14);
    CHECK_EQ_STR(out, "\xf0\x9f\x98\x80|\xf0\x9d\x84\x9e|\xf4\x8f\xbf\xbf");

    v = elem("[\"raw \xc3\xa9 \xf0\x9f\x98\x80\"]");
    CHECK_EQ_INT(rc_json_string(&v, out, sizeof(out)), 11);
    CHECK_EQ_STR(out, "raw \xc3\xa9 \xf0\x9f\x98\x80");

    v = elem("[\"\"]");
    CHECK_EQ_INT(rc_json_string(&v, out, sizeof(out)), 0);
    CHECK_EQ_STR(out, "");

    v = elem("[\"a\\u0000b\"]");
    CHECK_EQ_INT(v.type, RC_JSON_STRING);
    CHECK_EQ_INT(rc_json_string(&v, out, sizeof(out)), -1);

    /* cap counts the NUL */
    v = elem("[\"abc\"]");
    CHECK_EQ_INT(rc_json_string(&v, out, 4), 3);
    CHECK_EQ_INT(rc_json_string(&v, out, 3), -1);
    CHECK_EQ_INT(rc_json_string(&v, out, 0), -1);
    v = elem("[\"\\ud83d\\ude00\"]");
    memset(out, 'X', sizeof(out));
    CHECK_EQ_INT(rc_json_string(&v, out, 5), 4);
    CHECK_EQ_INT(rc_json_string(&v, out, 4), -1);
    CHECK_EQ_INT(out[5], 'X');

    v = elem("[12]");
    CHECK_EQ_INT(rc_json_string(&v, out, sizeof(out)), -1);
    v = elem("[null]");
    CHECK_EQ_INT(rc_json_string(&v, out, sizeof(out)), -1);
}

static void test_int64(void)
{
    static const struct {
        const char *text;
        int ok;
        int64_t want;
    } t[] = {
        {"[9223372036854775807]", 1, INT64_MAX},
        {"[9223372036854775808]", 0, 0},
        {"[-9223372036854775808]", 1, INT64_MIN},
        {"[-9223372036854775809]", 0, 0},
        {"[99999999999999999999]", 0, 0},
        {"[-0]", 1, 0},
        {"[0]", 1, 0},
        {"[123]", 1, 123},
        {"[-42]", 1, -42},
        {"[1300819380]", 1, 1300819380},
        {"[1.0]", 0, 0},
        {"[1e3]", 0, 0},
        {"[1E3]", 0, 0},
        {"[-1.5]", 0, 0},
        {"[\"5\"]", 0, 0},
        {"[true]", 0, 0},
    };
    for (size_t i = 0; i < RC_ARRAY_LEN(t); i++) {
        rc_json_val v = elem(t[i].text);
        CHECK(v.type != RC_JSON_INVALID);
        int64_t out = 77;
        int rc = rc_json_int64(&v, &out);
        CHECK_EQ_INT(rc, t[i].ok ? 0 : -1);
        CHECK(out == (t[i].ok ? t[i].want : 77));
    }
}

static void test_escape(void)
{
    char out[64];
    const char in[] = "a\"b\\c\n\x01\x1f\x7f \xc3\xa9/\b\f\r\t";
    const char want[] = "\"a\\\"b\\\\c\\n\\u0001\\u001f\x7f \xc3\xa9/\\b\\f\\r\\t\"";
    size_t wn = sizeof(want) - 1;
    memset(out, 'X', sizeof(out));
    CHECK_EQ_INT(rc_json_escape(out, sizeof(out), in, sizeof(in) - 1), (long long)wn);
    CHECK(memcmp(out, want, wn) == 0);
    CHECK_EQ_INT(out[wn], 'X');

    CHECK_EQ_INT(rc_json_escape(out, 2, "", 0), 2);
    CHECK(memcmp(out, "\"\"", 2) == 0);
    CHECK_EQ_INT(rc_json_escape(out, 0, "", 0), -1);
    CHECK_EQ_INT(rc_json_escape(out, 1, "", 0), -1);
    CHECK_EQ_INT(rc_json_escape(out, 7, "\x00", 1), -1);
    CHECK_EQ_INT(rc_json_escape(out, 8, "\x00", 1), 8);
    CHECK(memcmp(out, "\"\\u0000\"", 8) == 0);

    /* Every cap below the needed length fails and writes nothing past cap. */
    for (size_t cap = 0; cap < wn; cap++) {
        char *b = malloc(cap ? cap : 1);
        CHECK_EQ_INT(rc_json_escape(b, cap, in, sizeof(in) - 1), -1);
        free(b);
    }
    char *b = malloc(wn);
    CHECK_EQ_INT(rc_json_escape(b, wn, in, sizeof(in) - 1), (long long)wn);
    free(b);
}

/* escape then decode gives back the input, for random bytes 1..0x7f. */
static void test_escape_roundtrip(void)
{
    srand(7);
    int good = 0;
    for (int round = 0; round < 500; round++) {
        char in[40], esc[40 * 6 + 2], dec[41];
        size_t n = (size_t)(rand() % 40);
        for (size_t i = 0; i < n; i++)
            in[i] = (char)(1 + rand() % 127);
        ssize_t en = rc_json_escape(esc, sizeof(esc), in, n);
        if (en < 0 || rc_json_validate(esc, (size_t)en, 1) != 0)
            continue;
        rc_json_val v = {RC_JSON_STRING, {esc, (size_t)en}};
        ssize_t dn = rc_json_string(&v, dec, sizeof(dec));
        good += dn == (ssize_t)n && memcmp(dec, in, n) == 0;
    }
    CHECK_EQ_INT(good, 500);
}

/* Walks every value of a valid document; each span handed out must itself be
 * one valid value lying inside the document. Returns the number of bad spans. */
static int walk(const char *p, size_t n, int depth)
{
    rc_json_iter it;
    rc_json_val k, v;
    int bad = 0;
    if (rc_json_object_begin(&it, p, n, depth) == 0) {
        while (rc_json_object_next(&it, &k, &v)) {
            bad += k.type != RC_JSON_STRING || rc_json_validate(k.raw.p, k.raw.n, 0) != 0;
            bad += v.raw.p < p || v.raw.p + v.raw.n > p + n;
            bad += rc_json_validate(v.raw.p, v.raw.n, depth) != 0;
            if (v.type == RC_JSON_OBJECT || v.type == RC_JSON_ARRAY)
                bad += walk(v.raw.p, v.raw.n, depth);
        }
    } else if (rc_json_array_begin(&it, p, n, depth) == 0) {
        while (rc_json_array_next(&it, &v)) {
            bad += v.raw.p < p || v.raw.p + v.raw.n > p + n;
            bad += rc_json_validate(v.raw.p, v.raw.n, depth) != 0;
            if (v.type == RC_JSON_OBJECT || v.type == RC_JSON_ARRAY)
                bad += walk(v.raw.p, v.raw.n, depth);
        }
    }
    return bad;
}

/* Random byte mutations of a valid document, each in an exact-size buffer
 * (ASan checks the bounds); whatever still validates must walk cleanly. */
static void test_mutations(void)
{
    static const char doc[] =
        "{\"a\":[1,-2.5e3,\"x\\u00e9\\ud83d\\ude00\xc3\xa9\",true,false,null],"
        "\"b\":{\"c\":{\"d\":[[],{}]}},\"e\":\"\\\"\\\\\",\"f\":0}";
    static const char alphabet[] = "{}[],:\"\\ 0123456789-+.eEtrufalsn\x80\xc3\xed\xf4u";
    size_t n = sizeof(doc) - 1;
    int valid = 0, bad = 0;
    CHECK_EQ_INT(walk(doc, n, 8), 0);
    srand(99);
    for (int round = 0; round < 20000; round++) {
        char *b = dup_exact(doc, n);
        size_t bn = n;
        for (int m = rand() % 3; m >= 0; m--) {
            size_t at = (size_t)rand() % bn;
            if (rand() % 4 == 0)
                bn = at + 1; /* truncate */
            else
                b[at] = alphabet[(size_t)rand() % (sizeof(alphabet) - 1)];
        }
        char *e = dup_exact(b, bn);
        free(b);
        if (rc_json_validate(e, bn, 8) == 0) {
            valid++;
            bad += walk(e, bn, 8);
        }
        free(e);
    }
    CHECK(valid > 100);
    CHECK_EQ_INT(bad, 0);
}

int main(void)
{
    RUN(test_validate_table);
    RUN(test_prefixes);
    RUN(test_depth);
    RUN(test_object_iter);
    RUN(test_array_iter);
    RUN(test_key_is);
    RUN(test_string_decode);
    RUN(test_int64);
    RUN(test_escape);
    RUN(test_escape_roundtrip);
    RUN(test_mutations);
    return UNIT_DONE();
}
