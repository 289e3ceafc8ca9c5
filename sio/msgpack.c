/* MessagePack, read (sio/msgpack.h). Format: msgpack's spec, the types
 * by their first byte.
 *
 * Thread: any. */
#include "sio/msgpack.h"

#include <stdio.h>
#include <string.h>

#include "base/common.h"
#include "ws/json.h"

static int need(const rc_mp *m, size_t k)
{
    return (size_t)(m->end - m->p) >= k;
}

static uint64_t be(const uint8_t *p, int k)
{
    uint64_t v = 0;
    for (int i = 0; i < k; i++)
        v = v << 8 | p[i];
    return v;
}

/* The integer whose encoding starts at at (RC_MP_INT already checked):
 * 0 and *out, or -1 for a uint64 past INT64_MAX. */
static int int_at(const uint8_t *at, int64_t *out)
{
    uint8_t t = *at;
    if (t <= 0x7f) {
        *out = t;
    } else if (t >= 0xe0) {
        *out = (int8_t)t;
    } else if (t >= 0xcc && t <= 0xcf) {
        uint64_t v = be(at + 1, 1 << (t - 0xcc));
        if (v > (uint64_t)INT64_MAX)
            return -1;
        *out = (int64_t)v;
    } else {
        int k = 1 << (t - 0xd0);
        uint64_t v = be(at + 1, k);
        *out = k == 8 ? (int64_t)v : (int64_t)(v << (64 - 8 * k)) >> (64 - 8 * k);
    }
    return 0;
}

/* A length of k bytes after the type byte. */
static int len_of(rc_mp *m, int k, uint32_t *n)
{
    if (!need(m, 1 + (size_t)k))
        return -1;
    *n = (uint32_t)be(m->p + 1, k);
    m->p += 1 + k;
    return 0;
}

int rc_mp_next(rc_mp *m, uint32_t *n, const uint8_t **s)
{
    *n = 0;
    if (!need(m, 1))
        return RC_MP_BAD;
    uint8_t t = *m->p;
    int kind;
    if (t <= 0x7f || t >= 0xe0) {
        m->p++;
        return RC_MP_INT;
    }
    if ((t & 0xf0) == 0x80) {
        *n = t & 0x0f;
        m->p++;
        return RC_MP_MAP;
    }
    if ((t & 0xf0) == 0x90) {
        *n = t & 0x0f;
        m->p++;
        return RC_MP_ARRAY;
    }
    if ((t & 0xe0) == 0xa0) {
        *n = t & 0x1f;
        m->p++;
        kind = RC_MP_STR;
        goto bytes;
    }
    switch (t) {
    case 0xc0: m->p++; return RC_MP_NIL;
    case 0xc2:
    case 0xc3: m->p++; return RC_MP_BOOL;
    case 0xcc:
    case 0xd0: return need(m, 2) ? (m->p += 2, RC_MP_INT) : RC_MP_BAD;
    case 0xcd:
    case 0xd1: return need(m, 3) ? (m->p += 3, RC_MP_INT) : RC_MP_BAD;
    case 0xce:
    case 0xd2: return need(m, 5) ? (m->p += 5, RC_MP_INT) : RC_MP_BAD;
    case 0xcf:
    case 0xd3: return need(m, 9) ? (m->p += 9, RC_MP_INT) : RC_MP_BAD;
    case 0xca: return need(m, 5) ? (m->p += 5, RC_MP_FLOAT) : RC_MP_BAD;
    case 0xcb: return need(m, 9) ? (m->p += 9, RC_MP_FLOAT) : RC_MP_BAD;
    case 0xd9:
        kind = RC_MP_STR;
        if (len_of(m, 1, n) < 0)
            return RC_MP_BAD;
        goto bytes2;
    case 0xda:
        kind = RC_MP_STR;
        if (len_of(m, 2, n) < 0)
            return RC_MP_BAD;
        goto bytes2;
    case 0xdb:
        kind = RC_MP_STR;
        if (len_of(m, 4, n) < 0)
            return RC_MP_BAD;
        goto bytes2;
    case 0xc4:
        kind = RC_MP_BIN;
        if (len_of(m, 1, n) < 0)
            return RC_MP_BAD;
        goto bytes2;
    case 0xc5:
        kind = RC_MP_BIN;
        if (len_of(m, 2, n) < 0)
            return RC_MP_BAD;
        goto bytes2;
    case 0xc6:
        kind = RC_MP_BIN;
        if (len_of(m, 4, n) < 0)
            return RC_MP_BAD;
        goto bytes2;
    case 0xdc: return len_of(m, 2, n) < 0 ? RC_MP_BAD : RC_MP_ARRAY;
    case 0xdd: return len_of(m, 4, n) < 0 ? RC_MP_BAD : RC_MP_ARRAY;
    case 0xde: return len_of(m, 2, n) < 0 ? RC_MP_BAD : RC_MP_MAP;
    case 0xdf: return len_of(m, 4, n) < 0 ? RC_MP_BAD : RC_MP_MAP;
    default: return (t >= 0xc7 && t <= 0xc9) || (t >= 0xd4 && t <= 0xd8) ? RC_MP_EXT : RC_MP_BAD;
    }
bytes:
bytes2:
    if (!need(m, *n))
        return RC_MP_BAD;
    *s = m->p;
    m->p += *n;
    return kind;
}

static int skip(rc_mp *m, int depth)
{
    uint32_t n;
    const uint8_t *s;
    int k = rc_mp_next(m, &n, &s);
    if (k == RC_MP_BAD || k == RC_MP_EXT || depth > RC_MP_MAX_DEPTH)
        return -1;
    uint64_t items = k == RC_MP_ARRAY ? n : k == RC_MP_MAP ? 2ull * n : 0;
    for (uint64_t i = 0; i < items; i++)
        if (skip(m, depth + 1) < 0)
            return -1;
    return 0;
}

int rc_mp_int(rc_mp *m, int64_t *out)
{
    rc_mp t = *m;
    uint32_t n;
    const uint8_t *s;
    if (rc_mp_next(&t, &n, &s) != RC_MP_INT || int_at(m->p, out) < 0)
        return -1;
    *m = t;
    return 0;
}

int rc_mp_skip(rc_mp *m)
{
    return skip(m, 0);
}

typedef struct out {
    char *p;
    size_t n, cap;
} out;

static int put(out *o, const char *s, size_t n)
{
    if (n > o->cap - o->n)
        return -1;
    memcpy(o->p + o->n, s, n);
    o->n += n;
    return 0;
}

/* A string as JSON: refused unless it is UTF-8 (its text goes out in
 * WebSocket text frames, which must be). */
static int put_str(out *o, const uint8_t *s, uint32_t n)
{
    ssize_t e = rc_json_escape(o->p + o->n, o->cap - o->n, (const char *)s, n);
    if (e < 0 || rc_json_validate(o->p + o->n, (size_t)e, 1) != 0)
        return -1;
    o->n += (size_t)e;
    return 0;
}

static int json(rc_mp *m, out *o, int depth)
{
    if (depth > RC_MP_MAX_DEPTH)
        return -1;
    const uint8_t *at = m->p;
    uint32_t n;
    const uint8_t *s = NULL;
    int k = rc_mp_next(m, &n, &s);
    char num[40];
    int w;
    switch (k) {
    case RC_MP_NIL: return put(o, "null", 4);
    case RC_MP_BOOL: return *at == 0xc3 ? put(o, "true", 4) : put(o, "false", 5);
    case RC_MP_INT: {
        int64_t v;
        if (int_at(at, &v) < 0) /* a uint64 past INT64_MAX */
            w = snprintf(num, sizeof(num), "%llu",
                         (unsigned long long)be(at + 1, 1 << (*at - 0xcc)));
        else
            w = snprintf(num, sizeof(num), "%lld", (long long)v);
        return put(o, num, (size_t)w);
    }
    case RC_MP_FLOAT: {
        double d;
        if (*at == 0xca) {
            uint32_t v = (uint32_t)be(at + 1, 4);
            float f;
            memcpy(&f, &v, 4);
            d = f;
        } else {
            uint64_t v = be(at + 1, 8);
            memcpy(&d, &v, 8);
        }
        if (d != d || d - d != 0)
            return put(o, "null", 4); /* NaN and infinities: JSON has none */
        w = snprintf(num, sizeof(num), "%.17g", d);
        return put(o, num, (size_t)w);
    }
    case RC_MP_STR: return put_str(o, s, n);
    case RC_MP_ARRAY:
        if (put(o, "[", 1) < 0)
            return -1;
        for (uint32_t i = 0; i < n; i++)
            if ((i && put(o, ",", 1) < 0) || json(m, o, depth + 1) < 0)
                return -1;
        return put(o, "]", 1);
    case RC_MP_MAP:
        if (put(o, "{", 1) < 0)
            return -1;
        for (uint32_t i = 0; i < n; i++) {
            uint32_t kn;
            const uint8_t *ks;
            if ((i && put(o, ",", 1) < 0) || rc_mp_next(m, &kn, &ks) != RC_MP_STR)
                return -1;
            if (put_str(o, ks, kn) < 0 || put(o, ":", 1) < 0 || json(m, o, depth + 1) < 0)
                return -1;
        }
        return put(o, "}", 1);
    default: return -1; /* binary, extension, malformed */
    }
}

ssize_t rc_mp_to_json(rc_mp *m, char *outp, size_t cap)
{
    out o = {outp, 0, cap};
    if (json(m, &o, 0) < 0)
        return -1;
    return (ssize_t)o.n;
}
