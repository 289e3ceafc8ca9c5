/* permessage-deflate (ws/deflate.h).
 *
 * Thread: any thread; each rc_pmd_stream is used by the thread that made it
 * (the relay's compressor, each shard's inflater). */
#include "ws/deflate.h"

#include <string.h>
#include <zlib.h>

/* ---- the offer ------------------------------------------------------------ */

static int is_tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static int eq_nocase(const char *p, size_t n, const char *lit)
{
    if (n != strlen(lit))
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char a = (unsigned char)p[i], b = (unsigned char)lit[i];
        if (a >= 'A' && a <= 'Z')
            a = (unsigned char)(a - 'A' + 'a');
        if (a != b)
            return 0;
    }
    return 1;
}

/* A cursor over one header line. */
typedef struct cur {
    const char *p;
    size_t n, i;
} cur;

static void skip_ows(cur *c)
{
    while (c->i < c->n && (c->p[c->i] == ' ' || c->p[c->i] == '\t'))
        c->i++;
}

static rc_str read_token(cur *c)
{
    size_t s = c->i;
    while (c->i < c->n && is_tchar((unsigned char)c->p[c->i]))
        c->i++;
    return (rc_str){c->p + s, c->i - s};
}

/* A quoted-string's content, unescaped into buf (at most cap bytes; longer
 * ones are invalid here: no valid value is long). -1 when malformed. */
static int read_quoted(cur *c, char *buf, size_t cap, size_t *len)
{
    size_t k = 0;
    c->i++; /* the opening quote */
    while (c->i < c->n) {
        char ch = c->p[c->i++];
        if (ch == '"') {
            *len = k;
            return 0;
        }
        if (ch == '\\') {
            if (c->i >= c->n)
                return -1;
            ch = c->p[c->i++];
        }
        if (k >= cap)
            return -1;
        buf[k++] = ch;
    }
    return -1; /* unterminated */
}

/* Skips to just past the next comma outside a quoted string (or the end). */
static void skip_offer(cur *c)
{
    int q = 0;
    while (c->i < c->n) {
        char ch = c->p[c->i++];
        if (q && ch == '\\' && c->i < c->n)
            c->i++;
        else if (ch == '"')
            q = !q;
        else if (ch == ',' && !q)
            return;
    }
}

/* A window-bits value: "8".."15", no sign, no leading zero. -1 otherwise. */
static int window_bits(const char *v, size_t n)
{
    if (n == 1 && (v[0] == '8' || v[0] == '9'))
        return v[0] - '0';
    if (n == 2 && v[0] == '1' && v[1] >= '0' && v[1] <= '5')
        return 10 + (v[1] - '0');
    return -1;
}

enum {
    P_SNCT = 1, /* server_no_context_takeover */
    P_CNCT = 2, /* client_no_context_takeover */
    P_SMWB = 4, /* server_max_window_bits */
    P_CMWB = 8, /* client_max_window_bits */
};

/* Reads one offer from the cursor (up to and past its comma). Returns 1
 * when it is a permessage-deflate offer we accept (*smwb: 1 when it named
 * server_max_window_bits, which the answer must then repeat), 0 otherwise;
 * the cursor is past the offer either way. */
static int one_offer(cur *c, int *smwb)
{
    skip_ows(c);
    rc_str name = read_token(c);
    int ok = name.n > 0 && eq_nocase(name.p, name.n, "permessage-deflate");
    unsigned seen = 0;
    for (;;) {
        skip_ows(c);
        if (c->i >= c->n)
            break;
        if (c->p[c->i] == ',') {
            c->i++;
            break;
        }
        if (c->p[c->i] != ';' || !ok) {
            skip_offer(c);
            return 0;
        }
        c->i++;
        skip_ows(c);
        rc_str param = read_token(c);
        skip_ows(c);
        char val[16];
        size_t vlen = 0;
        int has_val = 0;
        if (c->i < c->n && c->p[c->i] == '=') {
            c->i++;
            skip_ows(c);
            has_val = 1;
            if (c->i < c->n && c->p[c->i] == '"') {
                if (read_quoted(c, val, sizeof(val), &vlen) < 0) {
                    skip_offer(c);
                    return 0;
                }
            } else {
                rc_str t = read_token(c);
                if (t.n == 0 || t.n > sizeof(val)) {
                    skip_offer(c);
                    return 0;
                }
                memcpy(val, t.p, t.n);
                vlen = t.n;
            }
        }
        unsigned bit;
        if (eq_nocase(param.p, param.n, "server_no_context_takeover"))
            bit = P_SNCT;
        else if (eq_nocase(param.p, param.n, "client_no_context_takeover"))
            bit = P_CNCT;
        else if (eq_nocase(param.p, param.n, "server_max_window_bits"))
            bit = P_SMWB;
        else if (eq_nocase(param.p, param.n, "client_max_window_bits"))
            bit = P_CMWB;
        else
            bit = 0; /* unknown (or empty): the offer is refused */
        int good = bit && !(seen & bit);
        seen |= bit;
        if (good && (bit == P_SNCT || bit == P_CNCT))
            good = !has_val;
        else if (good && bit == P_SMWB)
            /* Valid values are 8..15; below 15 we decline (see the header). */
            good = has_val && window_bits(val, vlen) == 15;
        else if (good && bit == P_CMWB)
            good = !has_val || window_bits(val, vlen) > 0;
        if (!good)
            ok = 0;
    }
    *smwb = (seen & P_SMWB) != 0;
    return ok;
}

int rc_pmd_negotiate(const rc_http_list *ext, char answer[RC_PMD_ANSWER_MAX])
{
    for (int l = 0; l < ext->n; l++) {
        cur c = {ext->line[l].p, ext->line[l].n, 0};
        while (c.i < c.n) {
            int smwb = 0;
            if (one_offer(&c, &smwb)) {
                snprintf(answer, RC_PMD_ANSWER_MAX,
                         "permessage-deflate; server_no_context_takeover; "
                         "client_no_context_takeover%s",
                         smwb ? "; server_max_window_bits=15" : "");
                return RC_PMD_ACCEPTED;
            }
        }
    }
    return RC_PMD_NONE;
}

/* ---- the Safari 15.0-15.3 rule -------------------------------------------- */

static const char *find(rc_str h, const char *needle, size_t from)
{
    size_t k = strlen(needle);
    for (size_t i = from; i + k <= h.n; i++)
        if (memcmp(h.p + i, needle, k) == 0)
            return h.p + i;
    return NULL;
}

/* 1 when after the text at p (within h) comes "15" then sep then a digit
 * 0..3 that is not followed by another digit ("15.3", "15_2", never "15.30"). */
static int major15_minor0to3(rc_str h, const char *p, char sep)
{
    size_t i = (size_t)(p - h.p);
    if (i + 4 > h.n || h.p[i] != '1' || h.p[i + 1] != '5' || h.p[i + 2] != sep)
        return 0;
    char m = h.p[i + 3];
    if (m < '0' || m > '3')
        return 0;
    return i + 4 == h.n || h.p[i + 4] < '0' || h.p[i + 4] > '9';
}

int rc_pmd_ua_broken(rc_str ua)
{
    if (!ua.p || !find(ua, "AppleWebKit/", 0))
        return 0;
    /* Safari on macOS and iOS: "Version/15.2 ... Safari/". Chrome's and
     * Firefox's desktop agents carry no "Version/". */
    const char *v = find(ua, "Version/", 0);
    if (v && find(ua, "Safari/", 0) && major15_minor0to3(ua, v + 8, '.'))
        return 1;
    /* Every iOS browser is WebKit: "iPhone OS 15_2" or "CPU OS 15_2" (iPad). */
    static const char *const ios[] = {"iPhone OS ", "CPU OS "};
    for (size_t k = 0; k < 2; k++) {
        const char *o = find(ua, ios[k], 0);
        if (o && major15_minor0to3(ua, o + strlen(ios[k]), '_'))
            return 1;
    }
    return 0;
}

/* ---- the streams ---------------------------------------------------------- */

struct rc_pmd_stream {
    z_stream z;
    int inflate;
    uint8_t *buf; /* the inflater's output */
    size_t cap;
};

/* Past this, an inflater's buffer is given back after the message. */
#define KEEP_BUF (256u << 10)

rc_pmd_stream *rc_pmd_deflater_new(void)
{
    rc_pmd_stream *z = rc_calloc(1, sizeof(*z));
    if (deflateInit2(&z->z, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        free(z);
        return NULL;
    }
    return z;
}

rc_pmd_stream *rc_pmd_inflater_new(void)
{
    rc_pmd_stream *z = rc_calloc(1, sizeof(*z));
    z->inflate = 1;
    if (inflateInit2(&z->z, -15) != Z_OK) {
        free(z);
        return NULL;
    }
    return z;
}

void rc_pmd_free(rc_pmd_stream *z)
{
    if (!z)
        return;
    if (z->inflate)
        inflateEnd(&z->z);
    else
        deflateEnd(&z->z);
    free(z->buf);
    free(z);
}

ssize_t rc_pmd_compress(rc_pmd_stream *z, const uint8_t *in, size_t n, uint8_t *out, size_t cap)
{
    rc_assert(!z->inflate);
    deflateReset(&z->z);
    z->z.next_in = (Bytef *)in;
    z->z.avail_in = (uInt)n;
    z->z.next_out = out;
    z->z.avail_out = (uInt)(cap + 4);
    int r = deflate(&z->z, Z_SYNC_FLUSH);
    /* A full buffer may hide more output: then it is not shorter anyway. */
    if (r != Z_OK || z->z.avail_in != 0 || z->z.avail_out == 0)
        return -1;
    size_t got = cap + 4 - z->z.avail_out;
    if (got < 4 || memcmp(out + got - 4, "\x00\x00\xff\xff", 4) != 0)
        return -1;
    got -= 4;
    return got < cap ? (ssize_t)got : -1;
}

int rc_pmd_inflate(rc_pmd_stream *z, const uint8_t *in, size_t n, size_t max, const uint8_t **out,
                   size_t *outlen)
{
    rc_assert(z->inflate);
    static const uint8_t tail[4] = {0x00, 0x00, 0xff, 0xff};
    inflateReset(&z->z);
    size_t have = 0;
    int r = Z_OK, stage = 0;
    z->z.next_in = (Bytef *)in;
    z->z.avail_in = (uInt)n;
    for (;;) {
        if (z->z.avail_in == 0 && stage == 0) {
            z->z.next_in = (Bytef *)tail;
            z->z.avail_in = sizeof(tail);
            stage = 1;
        }
        if (have == z->cap) {
            /* Grow, but never past max + 1 (one byte more says "too big"). */
            if (z->cap > max) {
                r = RC_PMD_TOO_BIG;
                break;
            }
            size_t ncap = z->cap ? z->cap * 2 : 4096;
            if (ncap > max + 1)
                ncap = max + 1;
            z->buf = rc_realloc(z->buf, ncap);
            z->cap = ncap;
        }
        z->z.next_out = z->buf + have;
        z->z.avail_out = (uInt)(z->cap - have);
        r = inflate(&z->z, Z_SYNC_FLUSH);
        have = z->cap - z->z.avail_out;
        if (have > max) {
            r = RC_PMD_TOO_BIG;
            break;
        }
        if (r == Z_STREAM_END) {
            r = RC_PMD_OK; /* a final block: what follows it is not read */
            break;
        }
        if (r != Z_OK && r != Z_BUF_ERROR) {
            r = RC_PMD_BAD;
            break;
        }
        if (z->z.avail_in == 0 && stage == 1 && z->z.avail_out > 0) {
            /* Everything read: the message must end between blocks. */
            r = (z->z.data_type & 128) ? RC_PMD_OK : RC_PMD_BAD;
            break;
        }
        if (r == Z_BUF_ERROR && z->z.avail_out > 0 && z->z.avail_in > 0) {
            r = RC_PMD_BAD; /* no progress possible */
            break;
        }
    }
    *out = z->buf;
    *outlen = r == RC_PMD_OK ? have : 0;
    if (r != RC_PMD_OK && z->cap > KEEP_BUF) {
        free(z->buf);
        z->buf = NULL;
        z->cap = 0;
    }
    return r;
}

/* ---- UTF-8 ---------------------------------------------------------------- */

int rc_utf8_valid(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t k;
        uint8_t lo = 0x80, hi = 0xbf;
        if (c >= 0xc2 && c <= 0xdf)
            k = 1;
        else if (c >= 0xe0 && c <= 0xef) {
            k = 2;
            if (c == 0xe0)
                lo = 0xa0; /* overlong */
            else if (c == 0xed)
                hi = 0x9f; /* surrogates */
        } else if (c >= 0xf0 && c <= 0xf4) {
            k = 3;
            if (c == 0xf0)
                lo = 0x90; /* overlong */
            else if (c == 0xf4)
                hi = 0x8f; /* above U+10FFFF */
        } else
            return 0;
        if (n - i <= k)
            return 0;
        if (p[i + 1] < lo || p[i + 1] > hi)
            return 0;
        for (size_t j = 2; j <= k; j++)
            if (p[i + j] < 0x80 || p[i + j] > 0xbf)
                return 0;
        i += k + 1;
    }
    return 1;
}
