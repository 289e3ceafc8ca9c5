/* HTTP/1.1 request head parser and response formatter.
 *
 * The bytes come from anyone on the network, so the parser is a single
 * bounded pass that never looks past min(len, max), accepts only what
 * RFC 9110/9112 allow (and only what ringcast needs: origin-form targets,
 * bodies framed by Content-Length), and stops at the first problem.
 *
 * Thread: any thread (pure functions; the shards call them). */
#include "net/http.h"

#include <limits.h>
#include <string.h>

#define MAX_HEADERS 64

/* RFC 9110 5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-"
 * / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA */
static int is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return 1;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* field-vchar / SP / HTAB / obs-text: everything but CTLs (and DEL). */
static int is_value_char(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static unsigned char lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

static int span_ieq(const char *p, size_t n, const char *lit)
{
    size_t m = strlen(lit);
    if (n != m)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (lower((unsigned char)p[i]) != lower((unsigned char)lit[i]))
            return 0;
    return 1;
}

enum { H_UNIQUE = 1, H_TE = 2, H_CLEN = 4, H_LIST = 8, H_FIRST = 16 };

struct known_header {
    const char *name;
    size_t off; /* offset of the rc_str (rc_http_list with H_LIST) in rc_http_req */
    int flags;
};

/* Content-Type and X-API-Key are unique too: two copies of a header that
 * decides how a body is read or who is calling is ambiguous, and ambiguity
 * between a proxy and ringcast is how requests get smuggled. */
static const struct known_header known[] = {
    {"host", offsetof(rc_http_req, host), H_UNIQUE},
    {"upgrade", offsetof(rc_http_req, upgrade), H_LIST},
    {"connection", offsetof(rc_http_req, connection), H_LIST},
    {"sec-websocket-key", offsetof(rc_http_req, ws_key), H_UNIQUE},
    {"sec-websocket-version", offsetof(rc_http_req, ws_version), H_UNIQUE},
    {"sec-websocket-protocol", offsetof(rc_http_req, ws_protocol), H_LIST},
    {"sec-websocket-extensions", offsetof(rc_http_req, ws_extensions), H_LIST},
    {"expect", offsetof(rc_http_req, expect), H_LIST},
    {"authorization", offsetof(rc_http_req, authorization), H_UNIQUE},
    {"origin", offsetof(rc_http_req, origin), H_UNIQUE},
    {"content-type", offsetof(rc_http_req, content_type), H_UNIQUE},
    {"x-api-key", offsetof(rc_http_req, x_api_key), H_UNIQUE},
    {"content-length", 0, H_UNIQUE | H_CLEN},
    /* Read only to spot clients with known bugs: the first copy counts. */
    {"user-agent", offsetof(rc_http_req, user_agent), H_FIRST},
    {"transfer-encoding", 0, H_TE},
};

static int parse_content_length(const char *p, size_t n, int64_t *out)
{
    if (n == 0)
        return -1;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        int d = p[i] - '0';
        if (v > (INT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

/* Request line: method SP request-target SP HTTP-version, single spaces. */
static int parse_request_line(const char *p, size_t n, rc_http_req *req)
{
    size_t i = 0;
    while (i < n && is_tchar((unsigned char)p[i]))
        i++;
    if (i == 0 || i >= n || p[i] != ' ')
        return RC_HTTP_EBAD;
    req->method = (rc_str){p, i};

    size_t t0 = ++i;
    /* Only origin-form: ringcast is never a proxy. '#' never belongs in a
     * target, and anything outside visible ASCII is refused. */
    if (i >= n || p[i] != '/')
        return RC_HTTP_EBAD;
    size_t q = 0;
    while (i < n && p[i] != ' ') {
        unsigned char c = (unsigned char)p[i];
        if (c <= 0x20 || c >= 0x7f || c == '#')
            return RC_HTTP_EBAD;
        if (c == '?' && q == 0)
            q = i;
        i++;
    }
    if (i >= n)
        return RC_HTTP_EBAD;
    req->target = (rc_str){p + t0, i - t0};
    if (q) {
        req->path = (rc_str){p + t0, q - t0};
        req->query = (rc_str){p + q + 1, i - q - 1};
    } else {
        req->path = req->target;
        req->query = (rc_str){p + i, 0};
    }

    const char *v = p + i + 1;
    size_t vn = n - i - 1;
    if (vn != 8 || memcmp(v, "HTTP/", 5) != 0 || v[6] != '.' || v[5] < '0' || v[5] > '9' ||
        v[7] < '0' || v[7] > '9')
        return RC_HTTP_EBAD;
    if (v[5] != '1')
        return RC_HTTP_EVERSION;
    /* RFC 9110 2.5: a higher minor version is served as the highest we know. */
    req->minor_version = v[7] == '0' ? 0 : 1;
    return RC_HTTP_OK;
}

static int parse_header_line(const char *p, size_t n, rc_http_req *req)
{
    size_t i = 0;
    /* A leading space or tab is obsolete line folding (RFC 9112 5.2). */
    while (i < n && is_tchar((unsigned char)p[i]))
        i++;
    if (i == 0 || i >= n || p[i] != ':')
        return RC_HTTP_EBAD;
    size_t name_n = i++;

    for (size_t k = i; k < n; k++)
        if (!is_value_char((unsigned char)p[k]))
            return RC_HTTP_EBAD;
    size_t b = i, e = n;
    while (b < e && (p[b] == ' ' || p[b] == '\t'))
        b++;
    while (e > b && (p[e - 1] == ' ' || p[e - 1] == '\t'))
        e--;

    if (++req->n_headers > MAX_HEADERS)
        return RC_HTTP_EBAD;

    for (size_t k = 0; k < RC_ARRAY_LEN(known); k++) {
        const struct known_header *h = &known[k];
        if (!span_ieq(p, name_n, h->name))
            continue;
        if (h->flags & H_TE)
            return RC_HTTP_EBAD;
        if (h->flags & H_CLEN) {
            if (req->content_length >= 0)
                return RC_HTTP_EDUP;
            if (parse_content_length(p + b, e - b, &req->content_length) < 0)
                return RC_HTTP_EBAD;
            return RC_HTTP_OK;
        }
        if (h->flags & H_LIST) {
            rc_http_list *l = (rc_http_list *)((char *)req + h->off);
            if (l->n == RC_HTTP_LIST_LINES)
                return RC_HTTP_ELIST;
            l->line[l->n++] = (rc_str){p + b, e - b};
            return RC_HTTP_OK;
        }
        rc_str *f = (rc_str *)((char *)req + h->off);
        if (f->p && (h->flags & H_FIRST))
            return RC_HTTP_OK;
        if (f->p)
            return RC_HTTP_EDUP; /* every other header ringcast reads is unique */
        *f = (rc_str){p + b, e - b};
        return RC_HTTP_OK;
    }
    return RC_HTTP_OK;
}

int rc_http_parse(const char *buf, size_t len, size_t max, rc_http_req *req)
{
    memset(req, 0, sizeof(*req));
    req->content_length = -1;

    size_t limit = RC_MIN(len, max);
    size_t pos = 0;
    int line_no = 0;
    for (;;) {
        const char *nl = limit > pos ? memchr(buf + pos, '\n', limit - pos) : NULL;
        if (!nl)
            return len >= max ? RC_HTTP_ETOOBIG : RC_HTTP_INCOMPLETE;
        size_t end = (size_t)(nl - buf);
        size_t n = end - pos;
        if (n > 0 && buf[end - 1] == '\r')
            n--;
        const char *line = buf + pos;
        pos = end + 1;

        int rc;
        if (line_no++ == 0) {
            /* No leniency for empty lines before the request line: a client
             * that sends them is not one ringcast serves. */
            rc = parse_request_line(line, n, req);
        } else if (n == 0) {
            req->head_len = pos;
            return RC_HTTP_OK;
        } else {
            rc = parse_header_line(line, n, req);
        }
        if (rc != RC_HTTP_OK)
            return rc;
    }
}

const char *rc_http_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

struct out {
    char *p;
    size_t cap, n;
    int overflow;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->overflow || n > o->cap - o->n) {
        o->overflow = 1;
        return;
    }
    memcpy(o->p + o->n, s, n);
    o->n += n;
}

static void puts_(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

static void put_uint(struct out *o, uint64_t v)
{
    char tmp[24];
    size_t i = sizeof(tmp);
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put(o, tmp + i, sizeof(tmp) - i);
}

int rc_http_response(char *out, size_t cap, int status, const char *content_type,
                     const char *extra_headers, const char *body, size_t body_len)
{
    struct out o = {out, cap, 0, 0};
    if (status < 100 || status > 999)
        return -1;
    puts_(&o, "HTTP/1.1 ");
    put_uint(&o, (uint64_t)status);
    puts_(&o, " ");
    puts_(&o, rc_http_reason(status));
    puts_(&o, "\r\n");
    if (content_type) {
        puts_(&o, "Content-Type: ");
        puts_(&o, content_type);
        puts_(&o, "\r\n");
    }
    puts_(&o, "Content-Length: ");
    put_uint(&o, body_len);
    puts_(&o, "\r\nConnection: close\r\n");
    if (extra_headers)
        puts_(&o, extra_headers);
    puts_(&o, "\r\n");
    if (body_len)
        put(&o, body, body_len);
    if (o.overflow || o.n > INT_MAX)
        return -1;
    return (int)o.n;
}

/* Decodes s[0..n) into out (when out != NULL, at most cap bytes). Returns the
 * decoded length or -1 on a bad escape or a %00, which no caller wants in a
 * C string. */
static long form_decode(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            if (n - i < 3)
                return -1;
            int h = rc_hexval(s[i + 1]), l = rc_hexval(s[i + 2]);
            if (h < 0 || l < 0 || (h == 0 && l == 0))
                return -1;
            c = (char)(h * 16 + l);
            i += 2;
        }
        if (out) {
            if (o >= cap)
                return -2;
            out[o] = c;
        }
        o++;
    }
    return (long)o;
}

/* Compares the form-encoded key s[0..n) with name, decoding as it goes. */
static int key_matches(const char *s, size_t n, const char *name)
{
    char tmp[128];
    size_t nl = strlen(name);
    if (nl > sizeof(tmp) || n > 3 * sizeof(tmp))
        return 0;
    long d = form_decode(s, n, tmp, sizeof(tmp));
    return d >= 0 && (size_t)d == nl && memcmp(tmp, name, nl) == 0;
}

int rc_http_query_param(rc_str query, const char *name, char *out, size_t cap)
{
    size_t i = 0;
    while (i < query.n) {
        const char *amp = memchr(query.p + i, '&', query.n - i);
        size_t end = amp ? (size_t)(amp - query.p) : query.n;
        const char *pair = query.p + i;
        size_t pn = end - i;
        i = end + 1;

        const char *eq = memchr(pair, '=', pn);
        size_t kn = eq ? (size_t)(eq - pair) : pn;
        if (!key_matches(pair, kn, name))
            continue;
        const char *v = eq ? eq + 1 : pair + pn;
        size_t vn = eq ? pn - kn - 1 : 0;
        if (cap == 0)
            return -2;
        long d = form_decode(v, vn, out, cap - 1);
        if (d < 0)
            return -2;
        out[d] = '\0';
        return (int)d;
    }
    return -1;
}

int rc_http_list_next(const rc_http_list *list, rc_http_list_iter *it, rc_str *member)
{
    while (it->line < list->n) {
        rc_str v = list->line[it->line];
        if (it->off >= v.n) {
            it->line++;
            it->off = 0;
            continue;
        }
        const char *comma = memchr(v.p + it->off, ',', v.n - it->off);
        size_t end = comma ? (size_t)(comma - v.p) : v.n;
        size_t b = it->off, e = end;
        it->off = end + 1;
        while (b < e && (v.p[b] == ' ' || v.p[b] == '\t'))
            b++;
        while (e > b && (v.p[e - 1] == ' ' || v.p[e - 1] == '\t'))
            e--;
        if (e > b) {
            *member = (rc_str){v.p + b, e - b};
            return 1;
        }
    }
    return 0;
}

int rc_http_has_token(const rc_http_list *list, const char *token)
{
    rc_http_list_iter it = {0, 0};
    rc_str m;
    while (rc_http_list_next(list, &it, &m))
        if (span_ieq(m.p, m.n, token))
            return 1;
    return 0;
}
