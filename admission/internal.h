/* What the parts of the admission engine share (admission/admission.c,
 * api.c, commands.c, scripts.c): the engine's state, Redis key and argument helpers.
 * Private to admission/. Thread: the relay's. */
#ifndef RC_ADMISSION_INTERNAL_H
#define RC_ADMISSION_INTERNAL_H

#include "admission/admission.h"
#include "channels/room.h"
#include "redis/client.h"

struct rc_admission {
    const rc_config *cfg;
    rc_admission_ops ops;
    void *u;
    rc_admission_stats *st;
    rc_redis *r;
    uint64_t next_tick_ms;
    bool tick_inflight;
    bool leader;
    char **queues; /* from the last SMEMBERS of the index */
    size_t nqueues;
    rc_rooms *local; /* queue -> waiters (room->udata) */
};

typedef struct key {
    char s[80 + RC_PROTO_MAX_QUEUE + 16];
    size_t n;
} key;

/* prefix a, then b, c and d, as one key; P q:{q}:what (a queue's keys, in
 * one Redis Cluster slot thanks to the braces); P q:what (every queue's);
 * the Redis channel of queue:{q}, where ticks and leaves are published. */
key adm_qkey(const rc_admission *a, const char *q, const char *what);
key adm_gkey(const rc_admission *a, const char *what);
key adm_qchan(const rc_admission *a, const char *q);

/* Up to 16 arguments; strings given as (pointer, length) pairs through av. */
typedef struct args {
    const char *v[16];
    size_t l[16];
    int n;
} args;

void adm_arg(args *x, const char *p, size_t n);
void adm_arg_s(args *x, const char *p);
/* Sends the command in x; 0, or -1 when the connection refused it (fn is
 * then never called). */
int adm_send(rc_admission *a, args *x, rc_redis_reply_fn fn, void *priv);
/* A reply callback that ignores the reply. */
void adm_on_ignore(void *u, redisReply *rep, const char *err, void *priv);

/* An integer (or a number Redis wrote as a string, saturated) or a double
 * from a reply; 0 when there is none. */
int64_t adm_reply_i64(const redisReply *r);
double adm_reply_f(const redisReply *r);
/* The HTTP answer of an API call: status and a JSON body made with fmt;
 * an error {"type":"error","code":code,"message":msg}. */
void adm_set_reply(rc_call *c, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void adm_api_error(rc_call *c, int status, const char *code, const char *msg);
/* Hands c back to its shard. */
void adm_finish(rc_admission *a, rc_call *c);

/* PUT, GET /api/queues/{q}, POST /api/queues/{q}/complete (api.c); Redis is
 * ready. */
void adm_api_call(rc_admission *a, rc_call *c);

/* The scripts (scripts.c). */
extern const char RC_LEASE_LUA[], RC_TICK_LUA[], RC_JOIN_LUA[], RC_LEAVE_LUA[], RC_GONE_LUA[],
    RC_SEEN_LUA[];

#endif
