/* HTTP/1.1 request parsing and response formatting for the listener port.
 *
 * Every connection starts as HTTP: a WebSocket upgrade on the configured path,
 * GET /healthz, GET /metrics, POST /api/publish. The parser is incremental in
 * the simplest way: call it again with the whole buffer as more bytes arrive;
 * it never reads past len and never writes to buf. */
#ifndef RC_HTTP_H
#define RC_HTTP_H

#include "base/common.h"

/* Return values of rc_http_parse. */
#define RC_HTTP_OK         0    /* a complete request head is in buf */
#define RC_HTTP_INCOMPLETE 1    /* need more bytes (and fewer than max so far) */
#define RC_HTTP_ETOOBIG    (-1) /* head longer than max: answer 431 */
#define RC_HTTP_EBAD       (-2) /* malformed request line or header: 400 */
#define RC_HTTP_EDUP       (-3) /* a header that must appear once appeared twice: 400 */
#define RC_HTTP_EVERSION   (-4) /* not HTTP/1.x: 505 */
#define RC_HTTP_ELIST      (-5) /* a list header on more than RC_HTTP_LIST_LINES lines: 400 */

/* Lines kept per list header. Clients send one or two; a request with more
 * is refused rather than read in part, since a member on a line not kept
 * (a token, a subprotocol) would silently not count. */
#define RC_HTTP_LIST_LINES 8

/* A list header (RFC 9110 5.3): every line it came on, in order, is one
 * comma-separated list, as if the lines were joined with ", ". n == 0 when
 * the header is absent; a line may be empty (p != NULL, n == 0). */
typedef struct rc_http_list {
    rc_str line[RC_HTTP_LIST_LINES];
    int n;
} rc_http_list;

/* Position in a walk over a list's members (start zeroed). */
typedef struct rc_http_list_iter {
    int line;
    size_t off;
} rc_http_list_iter;

typedef struct rc_http_req {
    rc_str method;     /* "GET" */
    rc_str target;     /* whole request target "/ws?token=x" */
    rc_str path;       /* "/ws" */
    rc_str query;      /* "token=x" (without '?'); n == 0 when absent */
    int minor_version; /* 0 or 1 */
    /* Headers ringcast reads; p == NULL when absent. Names match
     * case-insensitively; values have surrounding spaces/tabs trimmed.
     * Host, Sec-WebSocket-Key, Sec-WebSocket-Version, Authorization,
     * Content-Length, Origin, Content-Type and X-API-Key are unique: a second
     * copy is RC_HTTP_EDUP. An empty value has p != NULL and n == 0. */
    rc_str host, ws_key, ws_version, authorization, origin, content_type, x_api_key;
    /* User-Agent (the first copy; read only to spot clients with known
     * bugs, ws/deflate.h). */
    rc_str user_agent;
    /* List headers: every line is kept (see rc_http_list), so a member on a
     * second line counts as much as one on the first. */
    rc_http_list connection, upgrade, ws_protocol, ws_extensions, expect;
    int64_t content_length; /* -1 when absent */
    size_t head_len;        /* bytes of request line + headers + CRLFCRLF */
    int n_headers;          /* all headers seen, known or not */
} rc_http_req;

/* Parses the request head at the start of buf[0..len). Accepts CRLF line
 * endings (and bare LF, as many clients' tests send). Rejects header names
 * with characters outside RFC 9110 token characters, obsolete line folding,
 * control characters in values, more than 64 headers, a Content-Length that
 * is not a plain decimal number, and any Transfer-Encoding (RC_HTTP_EBAD:
 * ringcast takes bodies only with Content-Length). Only origin-form targets
 * ("/..."), single spaces in the request line, and no empty lines before it.
 * On RC_HTTP_OK req is filled and req->head_len says where a body would
 * start. On any other return req's contents are unspecified. A malformed line
 * is reported as soon as it is complete, before the head ends. A list header
 * (Connection, Upgrade, Sec-WebSocket-Protocol, Sec-WebSocket-Extensions,
 * Expect) on more than RC_HTTP_LIST_LINES lines is RC_HTTP_ELIST. max bounds the
 * head, and bytes past max are never read: a head that has not ended within
 * the first max bytes is RC_HTTP_ETOOBIG once len >= max (even when buf holds
 * its end further on), RC_HTTP_INCOMPLETE while len < max. */
int rc_http_parse(const char *buf, size_t len, size_t max, rc_http_req *req);

/* The reason phrase for a status code ("Not Found"); "Unknown" for others. */
const char *rc_http_reason(int status);

/* Formats a whole response into out: status line, Content-Type (when
 * content_type != NULL), Content-Length, "Connection: close", the
 * extra_headers verbatim (each line ending in CRLF, may be NULL), blank line,
 * body. Returns the length written, or -1 when it does not fit in cap (out is
 * then unspecified). Never writes past cap. */
int rc_http_response(char *out, size_t cap, int status, const char *content_type,
                     const char *extra_headers, const char *body, size_t body_len);

/* Looks up name in an application/x-www-form-urlencoded query string and
 * percent-decodes its value ('+' is a space) into out with a NUL. Returns the
 * decoded length, -1 when absent, -2 when the value is malformed (bad %-escape,
 * or %00, which no C-string consumer can hold) or does not fit in cap
 * (including the NUL). Keys are decoded before comparing; the first match
 * counts; "name" without '=' has the empty value. */
int rc_http_query_param(rc_str query, const char *name, char *out, size_t cap);

/* The next non-empty member of list, trimmed of spaces and tabs, into
 * *member: returns 1, or 0 when there are no more. Members never span lines:
 * "a" then "b" on two lines are two members, as "a, b" on one. */
int rc_http_list_next(const rc_http_list *list, rc_http_list_iter *it, rc_str *member);

/* 1 when list holds token (case-insensitive) on any of its lines:
 * "keep-alive, Upgrade", or "keep-alive" then "Upgrade", has "upgrade". */
int rc_http_has_token(const rc_http_list *list, const char *token);

#endif
