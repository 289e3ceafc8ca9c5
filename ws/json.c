/* JSON scanner: validation is a single iterative pass with an explicit bit
 * stack, so hostile nesting cannot exhaust the C stack; everything handed out
 * afterwards walks text that is already known to be valid.
 *
 * Thread: any thread (pure functions). */
#include "ws/json.h"

#include <string.h>

/* The bit stack bounds nesting regardless of the caller's max_depth. */
#define HARD_MAX_DEPTH 1024

static int is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && is_ws(*p))
        p++;
    return p;
}

/* Reads the four hex digits after "\u" at p; -1 when they are not there. */
static long hex4(const char *p, const char *end)
{
    if (end - p < 4)
        return -1;
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int h = rc_hexval(p[i]);
        if (h < 0)
            return -1;
        v = v << 4 | h;
    }
    return v;
}

/* Validates one UTF-8 sequence starting at p (first byte >= 0x80) and returns
 * its length, or 0 when it is malformed, overlong, a surrogate or > U+10FFFF. */
static int utf8_seq(const unsigned char *p, const unsigned char *end)
{
    unsigned char c = p[0];
    int n;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0)
            lo = 0xA0; /* overlong */
        else if (c == 0xED)
            hi = 0x9F; /* UTF-16 surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0)
            lo = 0x90; /* overlong */
        else if (c == 0xF4)
            hi = 0x8F; /* above U+10FFFF */
    } else {
        return 0;
    }
    if (end - p < n)
        return 0;
    if (p[1] < lo || p[1] > hi)
        return 0;
    for (int i = 2; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xBF)
            return 0;
    return n;
}

/* p at the opening quote; returns the byte after the closing quote or NULL. */
static const char *scan_string(const char *p, const char *end)
{
    p++;
    while (p < end) {
        unsigned char c = (unsigned char)*p;
        if (c == '"')
            return p + 1;
        if (c < 0x20)
            return NULL;
        if (c == '\\') {
            if (end - p < 2)
                return NULL;
            char e = p[1];
            if (e == 'u') {
                long u = hex4(p + 2, end);
                if (u < 0 || (u >= 0xDC00 && u <= 0xDFFF))
                    return NULL;
                p += 6;
                if (u >= 0xD800 && u <= 0xDBFF) {
                    /* A high surrogate is only valid as the first half of a pair. */
                    if (end - p < 2 || p[0] != '\\' || p[1] != 'u')
                        return NULL;
                    long l = hex4(p + 2, end);
                    if (l < 0xDC00 || l > 0xDFFF)
                        return NULL;
                    p += 6;
                }
            } else if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' ||
                       e == 'r' || e == 't') {
                p += 2;
            } else {
                return NULL;
            }
        } else if (c < 0x80) {
            p++;
        } else {
            int n = utf8_seq((const unsigned char *)p, (const unsigned char *)end);
            if (!n)
                return NULL;
            p += n;
        }
    }
    return NULL;
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* -? (0 | [1-9][0-9]*) (.[0-9]+)? ([eE][+-]?[0-9]+)? */
static const char *scan_number(const char *p, const char *end)
{
    if (p < end && *p == '-')
        p++;
    if (p == end)
        return NULL;
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        while (p < end && is_digit(*p))
            p++;
    } else {
        return NULL;
    }
    if (p < end && *p == '.') {
        p++;
        if (p == end || !is_digit(*p))
            return NULL;
        while (p < end && is_digit(*p))
            p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (p == end || !is_digit(*p))
            return NULL;
        while (p < end && is_digit(*p))
            p++;
    }
    return p;
}

static const char *scan_literal(const char *p, const char *end, const char *lit)
{
    size_t n = strlen(lit);
    if ((size_t)(end - p) < n || memcmp(p, lit, n) != 0)
        return NULL;
    return p + n;
}

static const char *scan_scalar(const char *p, const char *end)
{
    switch (*p) {
    case '"': return scan_string(p, end);
    case 't': return scan_literal(p, end, "true");
    case 'f': return scan_literal(p, end, "false");
    case 'n': return scan_literal(p, end, "null");
    default: return scan_number(p, end);
    }
}

enum { ST_VALUE, ST_KEY, ST_AFTER };

/* Validates one value starting at p (leading whitespace allowed) and returns
 * the byte after it, or NULL. Iterative: the containers open at each level
 * are kept as bits (1 = object) rather than as C stack frames. */
static const char *scan_value(const char *p, const char *end, int max_depth)
{
    uint64_t stack[HARD_MAX_DEPTH / 64];
    int depth = 0, state = ST_VALUE;
    if (max_depth > HARD_MAX_DEPTH)
        max_depth = HARD_MAX_DEPTH;

    for (;;) {
        p = skip_ws(p, end);
        if (state == ST_AFTER) {
            if (depth == 0)
                return p;
            if (p == end)
                return NULL;
            int in_obj = (stack[(depth - 1) / 64] >> ((depth - 1) % 64)) & 1;
            if (*p == ',') {
                p++;
                state = in_obj ? ST_KEY : ST_VALUE;
            } else if (*p == (in_obj ? '}' : ']')) {
                p++;
                depth--;
            } else {
                return NULL;
            }
            continue;
        }
        if (p == end)
            return NULL;
        if (state == ST_KEY) {
            if (*p != '"' || !(p = scan_string(p, end)))
                return NULL;
            p = skip_ws(p, end);
            if (p == end || *p != ':')
                return NULL;
            p++;
            state = ST_VALUE;
            continue;
        }
        /* ST_VALUE */
        if (*p == '{' || *p == '[') {
            int obj = *p == '{';
            if (depth >= max_depth)
                return NULL;
            uint64_t bit = 1ull << (depth % 64);
            if (obj)
                stack[depth / 64] |= bit;
            else
                stack[depth / 64] &= ~bit;
            depth++;
            p = skip_ws(p + 1, end);
            if (p < end && *p == (obj ? '}' : ']')) {
                p++;
                depth--;
                state = ST_AFTER;
            } else {
                state = obj ? ST_KEY : ST_VALUE;
            }
            continue;
        }
        if (!(p = scan_scalar(p, end)))
            return NULL;
        state = ST_AFTER;
    }
}

int rc_json_validate(const char *buf, size_t len, int max_depth)
{
    const char *end = buf + len;
    const char *p = scan_value(buf, end, max_depth);
    if (!p)
        return -1;
    return skip_ws(p, end) == end ? 0 : -1;
}

/* The end of the (already validated) value at p. */
static const char *skip_value(const char *p, const char *end)
{
    if (*p == '"') {
        for (p++; p < end; p++) {
            if (*p == '\\')
                p++;
            else if (*p == '"')
                return p + 1;
        }
        return end;
    }
    if (*p == '{' || *p == '[') {
        int depth = 0;
        for (; p < end; p++) {
            if (*p == '"') {
                p = skip_value(p, end) - 1;
            } else if (*p == '{' || *p == '[') {
                depth++;
            } else if (*p == '}' || *p == ']') {
                if (--depth == 0)
                    return p + 1;
            }
        }
        return end;
    }
    while (p < end && !is_ws(*p) && *p != ',' && *p != '}' && *p != ']')
        p++;
    return p;
}

static rc_json_type type_of(char c)
{
    switch (c) {
    case '"': return RC_JSON_STRING;
    case '{': return RC_JSON_OBJECT;
    case '[': return RC_JSON_ARRAY;
    case 't': return RC_JSON_TRUE;
    case 'f': return RC_JSON_FALSE;
    case 'n': return RC_JSON_NULL;
    default: return RC_JSON_NUMBER;
    }
}

static int container_begin(rc_json_iter *it, const char *buf, size_t len, int max_depth, char open)
{
    memset(it, 0, sizeof(*it));
    it->closed = 1;
    if (rc_json_validate(buf, len, max_depth) != 0)
        return -1;
    const char *end = buf + len;
    const char *p = skip_ws(buf, end);
    if (p == end || *p != open)
        return -1;
    it->p = p + 1;
    it->end = skip_value(p, end);
    it->max_depth = max_depth;
    it->closed = 0;
    return 0;
}

int rc_json_object_begin(rc_json_iter *it, const char *buf, size_t len, int max_depth)
{
    return container_begin(it, buf, len, max_depth, '{');
}

int rc_json_array_begin(rc_json_iter *it, const char *buf, size_t len, int max_depth)
{
    return container_begin(it, buf, len, max_depth, '[');
}

/* Moves past the separator before the next item; 0 at the closing bracket. */
static int iter_step(rc_json_iter *it)
{
    if (it->closed)
        return 0;
    const char *p = skip_ws(it->p, it->end);
    if (p < it->end && *p == ',')
        p = skip_ws(p + 1, it->end);
    if (p >= it->end || *p == '}' || *p == ']') {
        it->closed = 1;
        it->p = it->end;
        return 0;
    }
    it->p = p;
    return 1;
}

static void take_value(rc_json_iter *it, rc_json_val *val)
{
    const char *e = skip_value(it->p, it->end);
    val->type = type_of(*it->p);
    val->raw.p = it->p;
    val->raw.n = (size_t)(e - it->p);
    it->p = e;
}

int rc_json_object_next(rc_json_iter *it, rc_json_val *key, rc_json_val *val)
{
    if (!iter_step(it))
        return 0;
    take_value(it, key);
    const char *p = skip_ws(it->p, it->end);
    if (p < it->end && *p == ':')
        p++;
    it->p = skip_ws(p, it->end);
    if (it->p >= it->end) {
        it->closed = 1;
        return 0;
    }
    take_value(it, val);
    it->count++;
    return 1;
}

int rc_json_array_next(rc_json_iter *it, rc_json_val *val)
{
    if (!iter_step(it))
        return 0;
    take_value(it, val);
    it->count++;
    return 1;
}

static void put_utf8(uint32_t cp, char *b, int *n)
{
    if (cp < 0x80) {
        b[0] = (char)cp;
        *n = 1;
    } else if (cp < 0x800) {
        b[0] = (char)(0xC0 | cp >> 6);
        b[1] = (char)(0x80 | (cp & 0x3F));
        *n = 2;
    } else if (cp < 0x10000) {
        b[0] = (char)(0xE0 | cp >> 12);
        b[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        b[2] = (char)(0x80 | (cp & 0x3F));
        *n = 3;
    } else {
        b[0] = (char)(0xF0 | cp >> 18);
        b[1] = (char)(0x80 | (cp >> 12 & 0x3F));
        b[2] = (char)(0x80 | (cp >> 6 & 0x3F));
        b[3] = (char)(0x80 | (cp & 0x3F));
        *n = 4;
    }
}

/* Decodes the next unit of string content at *pp (inside the quotes, before
 * end) into b and returns its byte count; 0 at the end of the content, -1 on
 * \u0000 or a malformed escape. Raw bytes are passed through one at a time. */
static int decode_next(const char **pp, const char *end, char b[4])
{
    const char *p = *pp;
    if (p >= end)
        return 0;
    if (*p != '\\') {
        b[0] = *p;
        *pp = p + 1;
        return 1;
    }
    if (end - p < 2)
        return -1;
    int n = 1;
    switch (p[1]) {
    case '"': b[0] = '"'; break;
    case '\\': b[0] = '\\'; break;
    case '/': b[0] = '/'; break;
    case 'b': b[0] = '\b'; break;
    case 'f': b[0] = '\f'; break;
    case 'n': b[0] = '\n'; break;
    case 'r': b[0] = '\r'; break;
    case 't': b[0] = '\t'; break;
    case 'u': {
        long u = hex4(p + 2, end);
        if (u <= 0)
            return -1;
        p += 6;
        uint32_t cp = (uint32_t)u;
        if (u >= 0xD800 && u <= 0xDBFF) {
            if (end - p < 2 || p[0] != '\\' || p[1] != 'u')
                return -1;
            long l = hex4(p + 2, end);
            if (l < 0xDC00 || l > 0xDFFF)
                return -1;
            cp = 0x10000 + (((uint32_t)u - 0xD800) << 10) + ((uint32_t)l - 0xDC00);
            p += 6;
        } else if (u >= 0xDC00 && u <= 0xDFFF) {
            return -1;
        }
        put_utf8(cp, b, &n);
        *pp = p;
        return n;
    }
    default: return -1;
    }
    *pp = p + 2;
    return n;
}

static int string_body(const rc_json_val *v, const char **p, const char **end)
{
    if (v->type != RC_JSON_STRING || v->raw.n < 2 || !v->raw.p)
        return -1;
    *p = v->raw.p + 1;
    *end = v->raw.p + v->raw.n - 1;
    return 0;
}

int rc_json_key_is(const rc_json_val *key, const char *name)
{
    const char *p, *end;
    if (string_body(key, &p, &end) != 0)
        return 0;
    size_t i = 0, nlen = strlen(name);
    char b[4];
    int n;
    while ((n = decode_next(&p, end, b)) > 0) {
        if (nlen - i < (size_t)n || memcmp(name + i, b, (size_t)n) != 0)
            return 0;
        i += (size_t)n;
    }
    return n == 0 && i == nlen;
}

ssize_t rc_json_string(const rc_json_val *v, char *out, size_t cap)
{
    const char *p, *end;
    if (string_body(v, &p, &end) != 0 || cap == 0)
        return -1;
    size_t i = 0;
    char b[4];
    int n;
    while ((n = decode_next(&p, end, b)) > 0) {
        if (cap - i <= (size_t)n)
            return -1;
        memcpy(out + i, b, (size_t)n);
        i += (size_t)n;
    }
    if (n < 0)
        return -1;
    out[i] = '\0';
    return (ssize_t)i;
}

int rc_json_int64(const rc_json_val *v, int64_t *out)
{
    if (v->type != RC_JSON_NUMBER || !v->raw.p || v->raw.n == 0)
        return -1;
    const char *p = v->raw.p, *end = p + v->raw.n;
    int neg = *p == '-';
    if (neg)
        p++;
    if (p == end)
        return -1;
    /* The magnitude limit differs by sign: |INT64_MIN| = INT64_MAX + 1. */
    uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    uint64_t acc = 0;
    for (; p < end; p++) {
        if (!is_digit(*p))
            return -1;
        unsigned d = (unsigned)(*p - '0');
        if (acc > (limit - d) / 10)
            return -1;
        acc = acc * 10 + d;
    }
    if (neg)
        *out = acc == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)acc;
    else
        *out = (int64_t)acc;
    return 0;
}

ssize_t rc_json_escape(char *out, size_t cap, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    if (cap < 1)
        return -1;
    out[o++] = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char tmp[6];
        size_t k = 0;
        if (c == '"' || c == '\\') {
            tmp[k++] = '\\';
            tmp[k++] = (char)c;
        } else if (c < 0x20) {
            char e = c == '\b'   ? 'b'
                     : c == '\f' ? 'f'
                     : c == '\n' ? 'n'
                     : c == '\r' ? 'r'
                     : c == '\t' ? 't'
                                 : 0;
            tmp[k++] = '\\';
            if (e) {
                tmp[k++] = e;
            } else {
                tmp[k++] = 'u';
                tmp[k++] = '0';
                tmp[k++] = '0';
                tmp[k++] = hex[c >> 4];
                tmp[k++] = hex[c & 15];
            }
        } else {
            tmp[k++] = (char)c;
        }
        if (cap - o < k)
            return -1;
        memcpy(out + o, tmp, k);
        o += k;
    }
    if (cap - o < 1)
        return -1;
    out[o++] = '"';
    return (ssize_t)o;
}
