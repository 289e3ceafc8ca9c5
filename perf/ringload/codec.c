#include "perf/ringload/codec.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "base/common.h"
#include "ws/frame.h"
#include "ws/handshake.h"

void rl_ws_key_b64(const uint8_t raw[16], char out[25])
{
    EVP_EncodeBlock((unsigned char *)out, raw, 16);
}

int rl_hs_request(char *out, size_t cap, const char *host, const char *path, const char *key,
                  const char *token, int deflate)
{
    int has_tok = token && *token;
    int n = snprintf(out, cap,
                     "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\n%s%s%s%s\r\n",
                     path, host, key, has_tok ? "Authorization: Bearer " : "", has_tok ? token : "",
                     has_tok ? "\r\n" : "",
                     deflate ? "Sec-WebSocket-Extensions: permessage-deflate; "
                               "client_max_window_bits\r\n"
                             : "");
    return (n < 0 || (size_t)n >= cap) ? -1 : n;
}

/* Case-insensitive search for a token inside a header value (comma lists
 * such as "keep-alive, Upgrade" included). */
static int value_has(const char *v, size_t n, const char *tok)
{
    size_t t = strlen(tok);
    for (size_t i = 0; i + t <= n; i++)
        if (strncasecmp(v + i, tok, t) == 0)
            return 1;
    return 0;
}

int rl_hs_response(const char *buf, size_t len, const char *key, int *status, size_t *head_len,
                   const char **why)
{
    const char *end = memmem(buf, len, "\r\n\r\n", 4);
    if (!end) {
        if (len < RL_HS_MAX_HEAD)
            return 0;
        *status = 0;
        *why = "response head too large";
        return -1;
    }
    *status = 0;
    size_t hl = (size_t)(end - buf) + 4;
    if (hl < 12 || memcmp(buf, "HTTP/1.1 ", 9) != 0 || buf[9] < '1' || buf[9] > '5' ||
        buf[10] < '0' || buf[10] > '9' || buf[11] < '0' || buf[11] > '9') {
        *why = "bad status line";
        return -1;
    }
    *status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
    if (*status != 101) {
        *why = "status not 101";
        return -1;
    }
    char expect[29];
    if (rc_ws_accept_key((rc_str){key, strlen(key)}, expect) != 0) {
        *why = "bad key";
        return -1;
    }
    int upgrade = 0, connection = 0, accept = 0;
    const char *line = memchr(buf, '\n', hl) + 1;
    while (line < end) {
        const char *eol = memmem(line, (size_t)(end + 2 - line), "\r\n", 2);
        const char *colon = memchr(line, ':', (size_t)(eol - line));
        if (!colon) {
            *why = "malformed header";
            return -1;
        }
        size_t nl = (size_t)(colon - line);
        const char *v = colon + 1;
        while (v < eol && (*v == ' ' || *v == '\t'))
            v++;
        size_t vn = (size_t)(eol - v);
        while (vn && (v[vn - 1] == ' ' || v[vn - 1] == '\t'))
            vn--;
        /* List headers: a token on any of their lines counts (RFC 9110 5.3). */
        if (nl == 7 && strncasecmp(line, "Upgrade", 7) == 0)
            upgrade |= value_has(v, vn, "websocket");
        else if (nl == 10 && strncasecmp(line, "Connection", 10) == 0)
            connection |= value_has(v, vn, "upgrade");
        else if (nl == 20 && strncasecmp(line, "Sec-WebSocket-Accept", 20) == 0)
            accept = vn == 28 && memcmp(v, expect, 28) == 0;
        line = eol + 2;
    }
    if (!upgrade || !connection) {
        *why = "missing Upgrade/Connection";
        return -1;
    }
    if (!accept) {
        *why = "wrong Sec-WebSocket-Accept";
        return -1;
    }
    *head_len = hl;
    return 1;
}

size_t rl_ws_frame_size(size_t len)
{
    return rc_ws_header_len(len) + 4 + len;
}

size_t rl_ws_encode(uint8_t *out, int opcode, const void *p, size_t len, uint32_t mask)
{
    size_t h = rc_ws_header(out, opcode, len);
    out[1] |= 0x80;
    uint8_t k[4] = {(uint8_t)(mask >> 24), (uint8_t)(mask >> 16), (uint8_t)(mask >> 8),
                    (uint8_t)mask};
    memcpy(out + h, k, 4);
    uint8_t *dst = out + h + 4;
    const uint8_t *src = p;
    for (size_t i = 0; i < len; i++)
        dst[i] = src[i] ^ k[i & 3];
    return h + 4 + len;
}

void rl_wsdec_init(rl_wsdec *d, uint32_t max_msg)
{
    memset(d, 0, sizeof(*d));
    d->max_msg = max_msg;
}

void rl_wsdec_free(rl_wsdec *d)
{
    free(d->buf);
    free(d->frag);
    uint32_t m = d->max_msg;
    uint8_t z = d->rsv1_ok;
    rl_wsdec_init(d, m);
    d->rsv1_ok = z;
}

static void grow(uint8_t **b, uint32_t *cap, size_t need)
{
    if (need <= *cap)
        return;
    size_t c = *cap ? *cap : 256;
    while (c < need)
        c *= 2;
    *b = rc_realloc(*b, c);
    *cap = (uint32_t)c;
}

/* Parses whole frames from p[0..n); sets *used to the bytes consumed. */
static int parse(rl_wsdec *d, const uint8_t *p, size_t n, size_t *used, rl_ws_msg_fn fn, void *ud)
{
    size_t off = 0;
    int r = 0;
    while (n - off >= 2) {
        const uint8_t *f = p + off;
        int fin = f[0] & 0x80, op = f[0] & 0x0f, z = f[0] & 0x40 ? RL_WS_COMPRESSED : 0;
        if ((f[0] & 0x30) || (f[1] & 0x80))
            return RL_WS_ERR_PROTO;
        /* RSV1 only where permessage-deflate allows it: the first frame of
         * a data message, once negotiated. */
        if (z && (!d->rsv1_ok || op == RC_WS_OP_CONT || op >= 0x8))
            return RL_WS_ERR_PROTO;
        uint64_t plen = f[1] & 0x7f;
        size_t h = 2;
        if (plen == 126) {
            if (n - off < 4)
                break;
            plen = ((uint64_t)f[2] << 8) | f[3];
            h = 4;
        } else if (plen == 127) {
            if (n - off < 10)
                break;
            plen = 0;
            for (int i = 0; i < 8; i++)
                plen = (plen << 8) | f[2 + i];
            h = 10;
        }
        int control = op & 0x8;
        if (control && (!fin || plen > 125))
            return RL_WS_ERR_PROTO;
        if (op > RC_WS_OP_BINARY && !control)
            return RL_WS_ERR_PROTO;
        if (control && op > RC_WS_OP_PONG)
            return RL_WS_ERR_PROTO;
        if (plen > d->max_msg)
            return RL_WS_ERR_PROTO;
        /* A continuation is judged on its header too, before its payload:
         * with the message so far, it must stay within the limit. */
        if (op == RC_WS_OP_CONT && (!d->frag_op || (uint64_t)d->frag_len + plen > d->max_msg))
            return RL_WS_ERR_PROTO;
        if (n - off - h < plen)
            break;
        const uint8_t *pl = f + h;
        off += h + (size_t)plen;
        if (control) {
            r = fn(ud, op, pl, (size_t)plen);
        } else if (op == RC_WS_OP_CONT) {
            grow(&d->frag, &d->frag_cap, d->frag_len + plen);
            memcpy(d->frag + d->frag_len, pl, (size_t)plen);
            d->frag_len += (uint32_t)plen;
            if (fin) {
                int fop = d->frag_op;
                uint32_t flen = d->frag_len;
                d->frag_op = 0;
                d->frag_len = 0;
                r = fn(ud, fop, d->frag, flen);
            }
        } else {
            if (d->frag_op)
                return RL_WS_ERR_PROTO;
            if (fin) {
                r = fn(ud, op | z, pl, (size_t)plen);
            } else {
                d->frag_op = (uint8_t)(op | z);
                grow(&d->frag, &d->frag_cap, plen);
                memcpy(d->frag, pl, (size_t)plen);
                d->frag_len = (uint32_t)plen;
            }
        }
        if (r) {
            *used = off;
            return r;
        }
    }
    *used = off;
    return 0;
}

int rl_wsdec_feed(rl_wsdec *d, const uint8_t *p, size_t n, rl_ws_msg_fn fn, void *ud)
{
    size_t used = 0;
    int r;
    if (d->len == 0) {
        r = parse(d, p, n, &used, fn, ud);
        if (r)
            return r;
        if (used < n) {
            grow(&d->buf, &d->cap, n - used);
            memcpy(d->buf, p + used, n - used);
            d->len = (uint32_t)(n - used);
        }
        return 0;
    }
    grow(&d->buf, &d->cap, (size_t)d->len + n);
    memcpy(d->buf + d->len, p, n);
    d->len += (uint32_t)n;
    r = parse(d, d->buf, d->len, &used, fn, ud);
    if (r)
        return r;
    memmove(d->buf, d->buf + used, d->len - used);
    d->len -= (uint32_t)used;
    return 0;
}
