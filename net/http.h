/* HTTP/1.1 request parsing and response formatting for the listener port.
 *
 * Every connection starts as HTTP: a WebSocket upgrade on the configured path,
 * GET /healthz, GET /metrics, POST /api/publish. The parser is incremental in
 * the simplest way: call it again with the whole buffer as more bytes arrive;
 * it never reads past len and never writes to buf. */
#ifndef RC_HTTP_H
#define RC_HTTP_H

#include "engine/common.h"

/* Return values of rc_http_parse. */
#define RC_HTTP_OK         0    /* a complete request head is in buf */
#define RC_HTTP_INCOMPLETE 1    /* need more bytes (and fewer than max so far) */
#define RC_HTTP_ETOOBIG    (-1) /* head longer than max: answer 431 */
#define RC_HTTP_EBAD       (-2) /* malformed request line or header: 400 */
#define RC_HTTP_EDUP       (-3) /* a header that must appear once appeared twice: 400 */
#define RC_HTTP_EVERSION   (-4) /* not HTTP/1.x: 505 */

typedef struct rc_http_req {
    rc_str method;     /* "GET" */
    rc_str target;     /* whole request target "/ws?token=x" */
    rc_str path;       /* "/ws" */
    rc_str query;      /* "token=x" (without '?'); n == 0 when absent */
    int minor_version; /* 0 or 1 */
    /* Headers ringcast reads; p == NULL when absent. Names match
     * case-insensitively; values have surrounding spaces/tabs trimmed.
     * Host, Upgrade, Sec-WebSocket-Key, Sec-WebSocket-Version, Authorization,
     * Content-Length, Origin, Content-Type and X-API-Key are unique: a second
     * copy is RC_HTTP_EDUP. Connection and Sec-WebSocket-Protocol may repeat:
     * the parser keeps the first (a comma list in one header is the usual
     * form). An empty value has p != NULL and n == 0. */
    rc_str host, upgrade, connection, ws_key, ws_version, ws_protocol, authorization, origin,
        content_type, x_api_key;
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
 * is reported as soon as it is complete, before the head ends. max bounds the
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

/* 1 when value, a comma-separated list, holds token (case-insensitive, with
 * optional whitespace around items): "keep-alive, Upgrade" has "upgrade". */
int rc_http_has_token(rc_str value, const char *token);

#endif
