/* What the waiting rooms' Redis side shares (admission.c, api.c): the keys
 * of a queue, a command's arguments and its sending, the numbers in a
 * reply, and the answer of a call back to its shard.
 *
 * Thread: the relay thread. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "admission/internal.h"

/* ---- keys ------------------------------------------------------------------ */

/* prefix a, then b, c and d, as one key. */
static key mkkey(const rc_admission *a, const char *b, const char *c, const char *d)
{
    key k;
    int n = snprintf(k.s, sizeof(k.s), "%s%s%s%s", a->cfg->redis_prefix, b, c, d);
    rc_assert(n > 0 && (size_t)n < sizeof(k.s));
    k.n = (size_t)n;
    return k;
}

/* P q:{q}:what, a key of queue q (the braces keep a queue's keys in one
 * Redis Cluster slot). */
key adm_qkey(const rc_admission *a, const char *q, const char *what)
{
    char tag[RC_PROTO_MAX_QUEUE + 8];
    snprintf(tag, sizeof(tag), "{%s}:", q);
    return mkkey(a, "q:", tag, what);
}

/* P q:what, a key of every queue. */
key adm_gkey(const rc_admission *a, const char *what)
{
    return mkkey(a, "q:", what, "");
}

/* The Redis channel of queue:{q}, where ticks and leaves are published. */
key adm_qchan(const rc_admission *a, const char *q)
{
    return mkkey(a, "ch:queue:", q, "");
}

void adm_arg(args *x, const char *p, size_t n)
{
    rc_assert(x->n < 16);
    x->v[x->n] = p;
    x->l[x->n++] = n;
}

void adm_arg_s(args *x, const char *p)
{
    adm_arg(x, p, strlen(p));
}

int adm_send(rc_admission *a, args *x, rc_redis_reply_fn fn, void *priv)
{
    return rc_redis_command(a->r, fn, priv, x->n, x->v, x->l);
}

/* ---- reply helpers ---------------------------------------------------------- */

int64_t adm_reply_i64(const redisReply *r)
{
    if (!r)
        return 0;
    if (r->type == REDIS_REPLY_INTEGER)
        return r->integer;
    if (r->type == REDIS_REPLY_STRING)
        return rc_d2i64(strtod(r->str, NULL)); /* scores may come as "1.7e+12" */
    return 0;
}

double adm_reply_f(const redisReply *r)
{
    if (r && r->type == REDIS_REPLY_STRING)
        return strtod(r->str, NULL);
    return r && r->type == REDIS_REPLY_INTEGER ? (double)r->integer : 0;
}

void adm_set_reply(rc_call *c, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    free(c->reply);
    c->reply = rc_malloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(c->reply, (size_t)n + 1, fmt, ap);
    va_end(ap);
    c->reply_len = (size_t)n;
    c->status = status;
}

void adm_api_error(rc_call *c, int status, const char *code, const char *msg)
{
    char m[512];
    ssize_t n = rc_json_escape(m, sizeof(m), msg, strlen(msg));
    rc_assert(n > 0); /* our own short messages */
    adm_set_reply(c, status, "{\"type\":\"error\",\"code\":\"%s\",\"message\":%.*s}", code, (int)n,
                  m);
}

void rc_call_free(rc_call *c)
{
    free(c->body);
    free(c->reply);
    free(c);
}

void adm_finish(rc_admission *a, rc_call *c)
{
    a->ops.done(a->u, c);
}

void adm_on_ignore(void *u, redisReply *rep, const char *err, void *priv)
{
}
