/* The listener's HTTP request head (net/http.c) and the WebSocket upgrade
 * checks made on it (ws/handshake.c).
 *
 * Invariants, beyond "no crash":
 *  - on RC_HTTP_OK every span lies inside the head, header values hold no
 *    CR, LF or other control bytes and are trimmed, the target starts with
 *    '/', path + '?' + query make up the target, head_len <= len and <= max;
 *  - the answer does not depend on bytes after the head, and every proper
 *    prefix of an accepted head is RC_HTTP_INCOMPLETE;
 *  - bytes past max are never read (ASan: the buffer then ends at max);
 *  - an accepted upgrade has a key whose accept value matches SHA-1 +
 *    base64 computed here with libcrypto, and a 101 response naming it;
 *  - every line of a list header is kept (at most RC_HTTP_LIST_LINES), its
 *    members are trimmed comma-free spans of one line;
 *  - the subprotocol token and the echoed entry are spans of one offer line;
 *  - a decoded query parameter holds no NUL and fits its buffer. */
#include <ctype.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <string.h>

#include "net/http.h"
#include "tests/fuzz/fuzz.h"
#include "ws/handshake.h"

#define MAX_HEAD 8192

static void check_value(rc_str v, const char *buf, size_t head_len)
{
    if (!v.p)
        return;
    FUZZ_CHECK(fuzz_inside(v.p, v.n, buf, head_len));
    for (size_t i = 0; i < v.n; i++) {
        unsigned char c = (unsigned char)v.p[i];
        FUZZ_CHECK(c != '\r' && c != '\n' && c != 0);
        FUZZ_CHECK(c >= 0x20 || c == '\t');
        FUZZ_CHECK(c != 0x7f);
    }
    if (v.n) {
        FUZZ_CHECK(v.p[0] != ' ' && v.p[0] != '\t');
        FUZZ_CHECK(v.p[v.n - 1] != ' ' && v.p[v.n - 1] != '\t');
    }
}

/* Is [p, p+n) inside one line of the list? */
static int inside_list(const char *p, size_t n, const rc_http_list *l)
{
    for (int i = 0; i < l->n; i++)
        if (fuzz_inside(p, n, l->line[i].p, l->line[i].n))
            return 1;
    return 0;
}

/* Every line is a header value; every member is a non-empty trimmed span of
 * one line without a comma. */
static void check_list(const rc_http_list *l, const char *buf, size_t head_len)
{
    FUZZ_CHECK(l->n >= 0 && l->n <= RC_HTTP_LIST_LINES);
    for (int i = 0; i < l->n; i++) {
        FUZZ_CHECK(l->line[i].p != NULL);
        check_value(l->line[i], buf, head_len);
    }
    rc_http_list_iter it = {0, 0};
    rc_str m;
    int count = 0;
    while (rc_http_list_next(l, &it, &m)) {
        FUZZ_CHECK(m.n > 0 && inside_list(m.p, m.n, l));
        FUZZ_CHECK(memchr(m.p, ',', m.n) == NULL);
        FUZZ_CHECK(m.p[0] != ' ' && m.p[0] != '\t' && m.p[m.n - 1] != ' ' && m.p[m.n - 1] != '\t');
        FUZZ_CHECK(++count <= (int)head_len);
    }
    FUZZ_CHECK(rc_http_has_token(l, "") == 0); /* empty members are skipped */
}

static void check_upgrade(const rc_http_req *req)
{
    const char *why = NULL;
    int st = rc_ws_check_upgrade(req, &why);
    char accept[29];
    if (st != 0) {
        FUZZ_CHECK(st == 400 || st == 426);
        FUZZ_CHECK(why != NULL);
    } else {
        FUZZ_CHECK(req->method.n == 3 && memcmp(req->method.p, "GET", 3) == 0);
        FUZZ_CHECK(req->minor_version == 1 && req->host.p && req->ws_key.p);
        FUZZ_CHECK(req->ws_version.n == 2 && memcmp(req->ws_version.p, "13", 2) == 0);
        FUZZ_CHECK(rc_http_has_token(&req->upgrade, "websocket"));
        FUZZ_CHECK(rc_http_has_token(&req->connection, "upgrade"));
        FUZZ_CHECK(rc_ws_accept_key(req->ws_key, accept) == 0);
    }
    if (req->ws_key.p && rc_ws_accept_key(req->ws_key, accept) == 0) {
        /* The key decodes to 16 bytes; recompute the accept value here. */
        FUZZ_CHECK(req->ws_key.n == 24);
        unsigned char raw[20];
        FUZZ_CHECK(EVP_DecodeBlock(raw, (const unsigned char *)req->ws_key.p, 24) == 18);
        char in[24 + 36];
        memcpy(in, req->ws_key.p, 24);
        memcpy(in + 24, "258EAFA5-E914-47DA-95CA-C5AB0DC85B11", 36);
        unsigned char sha[SHA_DIGEST_LENGTH];
        SHA1((const unsigned char *)in, sizeof(in), sha);
        char want[29];
        FUZZ_CHECK(EVP_EncodeBlock((unsigned char *)want, sha, sizeof(sha)) == 28);
        FUZZ_CHECK(memcmp(want, accept, 29) == 0);

        rc_str token, selected = RC_STR_NULL;
        const rc_http_list *proto = &req->ws_protocol;
        int has = rc_ws_protocol_token(proto, &token, &selected);
        FUZZ_CHECK(selected.n == 0 || inside_list(selected.p, selected.n, proto));
        if (has) {
            FUZZ_CHECK(inside_list(token.p - 7, token.n + 7, proto));
            FUZZ_CHECK(memcmp(token.p - 7, "bearer.", 7) == 0);
            FUZZ_CHECK(selected.n > 0);
        }
        FUZZ_CHECK(selected.n == 0 ||
                   (selected.n == 11 && !memcmp(selected.p, "ringcast.v1", 11)) ||
                   (selected.n >= 7 && !memcmp(selected.p, "bearer.", 7)));
        char out[1024];
        int n = rc_ws_response_101(out, sizeof(out), accept, selected, NULL);
        if (n >= 0) {
            FUZZ_CHECK((size_t)n < sizeof(out));
            /* The fixed lines are 129 bytes, 155 with a protocol line. */
            FUZZ_CHECK((size_t)n == (selected.n ? 155 + selected.n : 129));
            FUZZ_CHECK(memcmp(out, "HTTP/1.1 101", 12) == 0);
            FUZZ_CHECK(memmem(out, (size_t)n, accept, 28) != NULL);
            FUZZ_CHECK(n >= 4 && memcmp(out + n - 4, "\r\n\r\n", 4) == 0);
        } else {
            /* Refused: too long, or (beyond the header's word) a byte that
             * is not visible ASCII, which could end the header line. */
            int odd = 0;
            for (size_t i = 0; i < selected.n; i++)
                odd |= (unsigned char)selected.p[i] < 0x21 || (unsigned char)selected.p[i] > 0x7e;
            FUZZ_CHECK(odd || 155 + selected.n >= sizeof(out));
        }
    }
}

static void check_query(rc_str query, const char *buf, size_t head_len)
{
    static const char *const names[] = {"token", "t", "x", ""};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char out[64];
        int n = rc_http_query_param(query, names[i], out, sizeof(out));
        FUZZ_CHECK(n >= -2 && n < (int)sizeof(out));
        if (n >= 0) {
            FUZZ_CHECK(out[n] == '\0' && strlen(out) == (size_t)n);
            FUZZ_CHECK((size_t)n <= query.n);
        }
    }
}

static void check_ok(const char *buf, size_t len, size_t max, const rc_http_req *req)
{
    size_t hl = req->head_len;
    FUZZ_CHECK(hl > 0 && hl <= len && hl <= max);
    FUZZ_CHECK(buf[hl - 1] == '\n');
    FUZZ_CHECK(req->minor_version == 0 || req->minor_version == 1);
    FUZZ_CHECK(req->n_headers >= 0 && req->n_headers <= 64);
    FUZZ_CHECK(req->content_length >= -1);
    FUZZ_CHECK(req->method.n > 0 && fuzz_inside(req->method.p, req->method.n, buf, hl));
    FUZZ_CHECK(req->method.p == buf);
    FUZZ_CHECK(req->target.n > 0 && fuzz_inside(req->target.p, req->target.n, buf, hl));
    FUZZ_CHECK(req->target.p[0] == '/');
    for (size_t i = 0; i < req->target.n; i++)
        FUZZ_CHECK(req->target.p[i] > ' ' && req->target.p[i] != 0x7f);
    FUZZ_CHECK(req->path.p == req->target.p && req->path.n <= req->target.n);
    if (req->query.n) {
        FUZZ_CHECK(req->query.p == req->path.p + req->path.n + 1);
        FUZZ_CHECK(req->path.p[req->path.n] == '?');
        FUZZ_CHECK(req->path.n + 1 + req->query.n == req->target.n);
        FUZZ_CHECK(memchr(req->path.p, '?', req->path.n) == NULL);
    } else {
        FUZZ_CHECK(req->path.n == req->target.n ||
                   (req->path.n + 1 == req->target.n && req->target.p[req->path.n] == '?'));
    }
    const rc_str *hs[] = {&req->host,   &req->ws_key,       &req->ws_version, &req->authorization,
                          &req->origin, &req->content_type, &req->x_api_key};
    for (size_t i = 0; i < sizeof(hs) / sizeof(hs[0]); i++)
        check_value(*hs[i], buf, hl);
    const rc_http_list *ls[] = {&req->connection, &req->upgrade, &req->ws_protocol,
                                &req->ws_extensions, &req->expect};
    for (size_t i = 0; i < sizeof(ls) / sizeof(ls[0]); i++)
        check_list(ls[i], buf, hl);
    check_upgrade(req);
    check_query(req->query, buf, hl);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    rc_http_req req;
    int r = rc_http_parse(buf, size, MAX_HEAD, &req);
    FUZZ_CHECK(r >= RC_HTTP_ELIST && r <= RC_HTTP_INCOMPLETE);
    if (r == RC_HTTP_ETOOBIG)
        FUZZ_CHECK(size >= MAX_HEAD);
    if (r == RC_HTTP_INCOMPLETE)
        FUZZ_CHECK(size < MAX_HEAD);
    if (r == RC_HTTP_OK) {
        check_ok(buf, size, MAX_HEAD, &req);
        size_t hl = req.head_len;
        /* The same head alone gives the same answer. */
        rc_http_req again;
        FUZZ_CHECK(rc_http_parse(buf, hl, MAX_HEAD, &again) == RC_HTTP_OK);
        FUZZ_CHECK(again.head_len == hl && again.n_headers == req.n_headers);
        FUZZ_CHECK(again.content_length == req.content_length);
        /* Prefixes are incomplete (a few cuts: every cut is quadratic). */
        fuzz_rng rng = {hl};
        for (int i = 0; i < 6 && hl > 1; i++) {
            size_t cut = i == 0 ? hl - 1 : fuzz_next(&rng) % hl;
            FUZZ_CHECK(rc_http_parse(buf, cut, MAX_HEAD, &again) == RC_HTTP_INCOMPLETE);
        }
    }

    /* A small max with a buffer that really ends at max: ASan catches any
     * read past it, even though len says more bytes exist. */
    size_t max = size ? 16 + data[size - 1] % 200 : 16;
    if (size > max) {
        char *cut = malloc(max);
        memcpy(cut, buf, max);
        int r2 = rc_http_parse(cut, size, max, &req);
        FUZZ_CHECK(r2 != RC_HTTP_INCOMPLETE);
        if (r2 == RC_HTTP_OK)
            check_ok(cut, max, max, &req);
        free(cut);
    }

    /* Responses carry any body without overrunning the buffer. */
    char out[512];
    int n =
        rc_http_response(out, sizeof(out), 200 + (int)(size % 400), "text/plain", NULL, buf, size);
    FUZZ_CHECK(n == -1 || ((size_t)n <= sizeof(out) && (size_t)n >= size));
    if (n > 0)
        FUZZ_CHECK(memcmp(out + n - size, buf, size) == 0);
    return 0;
}
