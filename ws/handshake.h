/* The server side of the RFC 6455 opening handshake. */
#ifndef RC_HANDSHAKE_H
#define RC_HANDSHAKE_H

#include "net/http.h"

/* Sec-WebSocket-Accept for a client key: base64(SHA-1(key + GUID)), 28 chars.
 * key must be the base64 encoding of 16 bytes (24 chars ending in "=="), as
 * RFC 6455 section 4.1 requires. Writes 28 chars and a NUL to out. Returns 0,
 * or -1 when the key is not valid (out unchanged). */
int rc_ws_accept_key(rc_str key, char out[29]);

/* Checks that req is a WebSocket upgrade a server should accept: method GET,
 * HTTP/1.1, Host present, Upgrade has "websocket", Connection has "upgrade",
 * Sec-WebSocket-Key valid, Sec-WebSocket-Version "13". Returns 0 when it is;
 * otherwise the HTTP status to answer (400, or 426 when the version is not 13
 * or the Upgrade/Connection headers are missing, as for a plain GET) and sets
 * *why to a short static reason. The path is not checked here. */
int rc_ws_check_upgrade(const rc_http_req *req, const char **why);

/* Writes the "101 Switching Protocols" response into out with the accept
 * value and, when protocol.n > 0, a Sec-WebSocket-Protocol header with it,
 * and when extensions is not NULL a Sec-WebSocket-Extensions header with it
 * (ours: the answer of rc_pmd_negotiate). Returns the length, or -1 when it
 * does not fit in cap. */
int rc_ws_response_101(char *out, size_t cap, const char accept[29], rc_str protocol,
                       const char *extensions);

/* Picks the token out of a Sec-WebSocket-Protocol offer. A client that cannot
 * set headers (a browser) offers "ringcast.v1, bearer.<JWT>". On success sets
 * *token to the JWT (without "bearer.") and *selected to the entry the server
 * must echo back ("ringcast.v1" when offered, else the bearer entry itself),
 * and returns 1. Returns 0 when no bearer entry is offered (*selected is then
 * "ringcast.v1" when offered, else empty). Entries match case-sensitively; the
 * first bearer entry counts; a bare "bearer." is one, with token->n == 0.
 * The offer is the whole list: entries on every Sec-WebSocket-Protocol line
 * count, in the order the lines came. */
int rc_ws_protocol_token(const rc_http_list *offer, rc_str *token, rc_str *selected);

#endif
