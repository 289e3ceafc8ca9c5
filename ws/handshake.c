/* The server side of the RFC 6455 opening handshake.
 *
 * Thread: any thread (pure functions; the shards call them). */
#include "ws/handshake.h"

#include <string.h>

#include "base/sha1.h"
#include "ws/b64url.h"

static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/* 16 bytes encode as 21 full sextets, one sextet holding the last 2 bits
 * (its low 4 bits must be zero in canonical base64), and "==". */
static int key_is_valid(rc_str key)
{
    if (key.n != 24 || key.p[22] != '=' || key.p[23] != '=')
        return 0;
    for (size_t i = 0; i < 22; i++)
        if (rc_b64_value((unsigned char)key.p[i], 0) < 0)
            return 0;
    return (rc_b64_value((unsigned char)key.p[21], 0) & 0x0f) == 0;
}

int rc_ws_accept_key(rc_str key, char out[29])
{
    if (!key.p || !key_is_valid(key))
        return -1;
    unsigned char in[24 + sizeof(ws_guid) - 1];
    memcpy(in, key.p, 24);
    memcpy(in + 24, ws_guid, sizeof(ws_guid) - 1);
    uint8_t md[RC_SHA1_LEN];
    rc_sha1(in, sizeof(in), md);
    /* 20 bytes are 27 base64 characters and one "=": base64url's, with the
     * two characters where the alphabets differ changed back. */
    if (rc_b64url_encode(md, sizeof(md), out, 29) != 27)
        return -1;
    for (int i = 0; i < 27; i++)
        out[i] = out[i] == '-' ? '+' : out[i] == '_' ? '/' : out[i];
    out[27] = '=';
    out[28] = '\0';
    return 0;
}

int rc_ws_check_upgrade(const rc_http_req *req, const char **why)
{
    char accept[29];
    if (req->method.n != 3 || memcmp(req->method.p, "GET", 3) != 0) {
        *why = "WebSocket upgrade needs GET";
        return 400;
    }
    if (req->minor_version != 1) {
        *why = "WebSocket upgrade needs HTTP/1.1";
        return 400;
    }
    if (!req->host.p || req->host.n == 0) {
        *why = "missing Host";
        return 400;
    }
    if (!rc_http_has_token(&req->upgrade, "websocket")) {
        *why = "missing Upgrade: websocket";
        return 426;
    }
    if (!rc_http_has_token(&req->connection, "upgrade")) {
        *why = "missing Connection: upgrade";
        return 426;
    }
    /* Version before key: a client speaking an older draft is told which
     * version to use (426 + Sec-WebSocket-Version) rather than a bare 400. */
    if (!req->ws_version.p || req->ws_version.n != 2 || memcmp(req->ws_version.p, "13", 2)) {
        *why = "Sec-WebSocket-Version must be 13";
        return 426;
    }
    if (!req->ws_key.p) {
        *why = "missing Sec-WebSocket-Key";
        return 400;
    }
    if (rc_ws_accept_key(req->ws_key, accept) < 0) {
        *why = "invalid Sec-WebSocket-Key";
        return 400;
    }
    return 0;
}

int rc_ws_response_101(char *out, size_t cap, const char accept[29], rc_str protocol,
                       const char *extensions)
{
    /* The protocol is echoed from the client's offer; refuse anything that
     * could end the header line early. */
    for (size_t i = 0; i < protocol.n; i++) {
        unsigned char c = (unsigned char)protocol.p[i];
        if (c < 0x21 || c > 0x7e)
            return -1;
    }
    if (protocol.n > 65535)
        return -1;
    int n = snprintf(out, cap,
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Accept: %.28s\r\n"
                     "%s%.*s%s%s%s%s\r\n",
                     accept, protocol.n ? "Sec-WebSocket-Protocol: " : "", (int)protocol.n,
                     protocol.n ? protocol.p : "", protocol.n ? "\r\n" : "",
                     extensions ? "Sec-WebSocket-Extensions: " : "", extensions ? extensions : "",
                     extensions ? "\r\n" : "");
    if (n < 0 || (size_t)n >= cap)
        return -1;
    return n;
}

static int span_eq(const char *p, size_t n, const char *lit)
{
    return n == strlen(lit) && memcmp(p, lit, n) == 0;
}

int rc_ws_protocol_token(const rc_http_list *offer, rc_str *token, rc_str *selected)
{
    static const char v1[] = "ringcast.v1", bearer[] = "bearer.";
    const size_t bl = sizeof(bearer) - 1;
    rc_str have_v1 = {"", 0}, have_bearer = {NULL, 0};
    rc_http_list_iter it = {0, 0};
    rc_str m;
    while (rc_http_list_next(offer, &it, &m)) {
        /* Subprotocol names are case-sensitive (RFC 6455 4.1). */
        if (span_eq(m.p, m.n, v1) && have_v1.n == 0)
            have_v1 = m;
        else if (m.n >= bl && memcmp(m.p, bearer, bl) == 0 && !have_bearer.p)
            have_bearer = m;
    }
    if (!have_bearer.p) {
        *selected = have_v1;
        return 0;
    }
    *token = (rc_str){have_bearer.p + bl, have_bearer.n - bl};
    *selected = have_v1.n ? have_v1 : have_bearer;
    return 1;
}
