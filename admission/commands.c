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

/* A tick planned without a link (the unit tests) is one Redis's. */
static bool adm_cluster(const rc_admission *a)
{
    return a->r && rc_rlink_is_cluster(a->r);
}

/* The Redis channel of queue:{q}, where ticks and leaves are published: on
 * a cluster a shard channel in the queue's slot (channels/bridge.h). */
key adm_qchan(const rc_admission *a, const char *q)
{
    if (!adm_cluster(a))
        return mkkey(a, "ch:queue:", q, "");
    char tag[RC_PROTO_MAX_QUEUE + 4];
    snprintf(tag, sizeof(tag), "{%s}", q);
    return mkkey(a, "ch:queue:", tag, "");
}

const char *adm_publish_verb(const rc_admission *a)
{
    return adm_cluster(a) ? "SPUBLISH" : "PUBLISH";
}

/* Sets *slot to the slot of k when there is none yet (*keyed false), else
 * checks that k is in it. */
static void slot_take(bool *keyed, uint16_t *slot, const key *k)
{
    uint16_t s = rc_cluster_slot(k->s, k->n);
    rc_assert(!*keyed || *slot == s); /* one slot per command */
    *keyed = true;
    *slot = s;
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

void adm_arg_key(args *x, const key *k)
{
    slot_take(&x->keyed, &x->slot, k);
    adm_arg(x, k->s, k->n);
}

int adm_send(rc_admission *a, args *x, rc_redis_reply_fn fn, void *priv)
{
    return rc_rlink_command(a->r, x->keyed ? x->slot : -1, fn, priv, x->n, x->v, x->l);
}

/* ---- a batch of commands, each with its slot ----------------------------------- */

/* The batch's memory: chunks that never move, so argv may point into them. */
struct adm_chunk {
    adm_chunk *next;
    size_t used, cap;
    char buf[]; /* 8-aligned: it follows three 8-byte fields */
};

#define CHUNK_MIN 16384

static void *batch_alloc(adm_batch *b, size_t n)
{
    n = (n + 7) & ~(size_t)7;
    adm_chunk *m = b->mem;
    if (!m || m->cap - m->used < n) {
        size_t cap = RC_MAX(n, (size_t)CHUNK_MIN);
        m = rc_malloc(sizeof(*m) + cap);
        m->next = b->mem;
        m->used = 0;
        m->cap = cap;
        b->mem = m;
    }
    void *p = m->buf + m->used;
    m->used += n;
    return p;
}

adm_cmd *adm_batch_add(adm_batch *b, int max_args, rc_redis_reply_fn fn, void *priv)
{
    rc_assert(max_args > 0);
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 16;
        b->cmd = rc_realloc(b->cmd, b->cap * sizeof(*b->cmd));
    }
    adm_cmd *c = &b->cmd[b->n++];
    *c = (adm_cmd){.cap = max_args, .fn = fn, .priv = priv};
    c->argv = batch_alloc(b, (size_t)max_args * sizeof(*c->argv));
    c->argl = batch_alloc(b, (size_t)max_args * sizeof(*c->argl));
    return c;
}

void adm_cmd_arg_static(adm_cmd *c, const char *p, size_t n)
{
    rc_assert(c->argc < c->cap);
    c->argv[c->argc] = p;
    c->argl[c->argc++] = n;
}

char *adm_batch_copy(adm_batch *b, const char *p, size_t n)
{
    char *copy = batch_alloc(b, n + 1);
    memcpy(copy, p, n);
    copy[n] = '\0';
    return copy;
}

void adm_cmd_arg(adm_batch *b, adm_cmd *c, const char *p, size_t n)
{
    adm_cmd_arg_static(c, adm_batch_copy(b, p, n), n);
}

void adm_cmd_key(adm_batch *b, adm_cmd *c, const key *k)
{
    slot_take(&c->keyed, &c->slot, k);
    adm_cmd_arg(b, c, k->s, k->n);
}

size_t adm_batch_send(rc_admission *a, const adm_batch *b, uint32_t *nodes)
{
    /* each command to its slot's primary: one pipeline per primary, all
     * in flight at once */
    uint16_t seen[64];
    size_t sent = 0, nseen = 0;
    for (size_t i = 0; i < b->n; i++) {
        const adm_cmd *c = &b->cmd[i];
        int slot = c->keyed ? c->slot : -1;
        if (rc_rlink_command(a->r, slot, c->fn, c->priv, c->argc, c->argv, c->argl) < 0)
            continue;
        sent++;
        uint16_t node = rc_rlink_owner(a->r, slot);
        size_t k = 0;
        while (k < nseen && seen[k] != node)
            k++;
        if (k == nseen && nseen < RC_ARRAY_LEN(seen))
            seen[nseen++] = node;
    }
    if (nodes)
        *nodes = (uint32_t)nseen;
    return sent;
}

void adm_batch_free(adm_batch *b)
{
    while (b->mem) {
        adm_chunk *m = b->mem;
        b->mem = m->next;
        free(m);
    }
    free(b->cmd);
    *b = (adm_batch){0};
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
