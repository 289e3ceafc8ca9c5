/* The HTTP API behind the API key (http/api.c), and what the rest of the
 * HTTP side (http/server.c) shares with it.
 *
 * Thread: the shard that owns the connection. */
#ifndef RC_HTTP_API_H
#define RC_HTTP_API_H

#include "admission/admission.h"
#include "engine/shard.h"
#include "net/http.h"

/* 1 when the request's path is the API's (/api/...). */
int rc_http_api_owns(const rc_http_req *req);
/* 1 when an API request of this path may carry a body (and may be told
 * "100 Continue" before it is sent). */
int rc_http_api_takes_body(const rc_http_req *req);
/* The refusal an API request gets on its head alone (method, API key), with
 * the reply's text and extra headers; 0 when the request may go on. */
int rc_http_api_gate(const rc_shard *s, const rc_http_req *req, const char **text,
                     const char **extra);
/* Answers an API request whose whole body is in hb. */
void rc_http_api_serve(rc_shard *s, rc_conn *c, const rc_http_req *req, rc_httpbuf *hb);

/* The relay's answers to the API's questions: a call on queues
 * (/api/queues; frees k), GET /api/channels/{ch}/history (frees q), and
 * /presence or /presence-stats (frees q). Each goes to the caller, if
 * still there. */
void rc_http_on_calldone(rc_shard *s, rc_call *k);
struct rc_histreq;
void rc_http_on_history(rc_shard *s, struct rc_histreq *q);
struct rc_presreq;
void rc_http_on_presence(rc_shard *s, struct rc_presreq *q);

#endif
