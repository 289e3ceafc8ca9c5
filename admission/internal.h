/* What the parts of the admission engine share (admission/admission.c,
 * api.c, commands.c, scripts.c): the engine's state, Redis key and argument helpers.
 * Private to admission/. Thread: the relay's. */
#ifndef RC_ADMISSION_INTERNAL_H
#define RC_ADMISSION_INTERNAL_H

#include "admission/admission.h"
#include "channels/room.h"
#include "redis/link.h"
#include "redis/cluster.h"

struct rc_admission {
    const rc_config *cfg;
    rc_admission_ops ops;
    void *u;
    rc_admission_stats *st;
    rc_rlink *r; /* one Redis, or a cluster's primaries (redis/link.h) */
    uint64_t last_unconfirmed_log_ms;
    uint64_t next_tick_ms;
    bool tick_inflight;
    uint64_t tick_no; /* ticks sent */
    rc_rooms *led; /* queues whose lease this node held at its last tick (room->seq: that tick) */
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
/* PUBLISH, or SPUBLISH on a Redis Cluster (the scripts' publish). */
const char *adm_publish_verb(const rc_admission *a);

/* Up to 16 arguments; strings given as (pointer, length) pairs through av.
 * The keys among them (adm_arg_key) give the command its Redis Cluster hash
 * slot: all of a command's keys must share one (a cluster refuses others
 * with CROSSSLOT; here it is a bug, rc_assert). */
typedef struct args {
    const char *v[16];
    size_t l[16];
    int n;
    bool keyed;    /* a key was given: slot is its slot */
    uint16_t slot; /* rc_cluster_slot of every key */
} args;

void adm_arg(args *x, const char *p, size_t n);
void adm_arg_s(args *x, const char *p);
void adm_arg_key(args *x, const key *k);
/* Sends the command in x; 0, or -1 when the connection refused it (fn is
 * then never called). */
int adm_send(rc_admission *a, args *x, rc_redis_reply_fn fn, void *priv);

/* ---- a batch of commands, each with its hash slot ----
 *
 * The commands of one tick, in order, each carrying the Redis Cluster hash
 * slot of its keys (adm_cmd_key; a command naming no key has none: keyed
 * false). On one Redis, adm_batch_send queues them all on the admission
 * connection: one pipeline, one round trip. On a Redis Cluster each
 * command goes to its slot's primary (redis/link.h): one pipeline per
 * primary, all in flight at once, so a tick still costs one round trip's
 * time. A command's reply goes to its own fn and priv, and no command
 * depends on another's reply.
 *
 * The batch holds copies of the arguments given with adm_cmd_arg and
 * adm_cmd_key, valid until adm_batch_free; adm_cmd_arg_static keeps the
 * caller's pointer (the scripts, constants that outlive the batch). */
typedef struct adm_cmd {
    bool keyed;    /* it names a key: slot is the slot of every key it names */
    uint16_t slot; /* rc_cluster_slot of its keys */
    int argc, cap;
    const char **argv;
    size_t *argl;
    rc_redis_reply_fn fn; /* its reply: fn(a, reply, err, priv), exactly once if sent */
    void *priv;
} adm_cmd;

typedef struct adm_chunk adm_chunk;

typedef struct adm_batch {
    adm_cmd *cmd; /* cmd[0..n), in the order they are sent */
    size_t n, cap;
    adm_chunk *mem; /* the arguments' bytes */
} adm_batch;

/* A new command at the end of b with room for max_args arguments; the
 * pointer is valid until the next adm_batch_add. */
adm_cmd *adm_batch_add(adm_batch *b, int max_args, rc_redis_reply_fn fn, void *priv);
/* A NUL-terminated copy of p[0..n) in b's memory. */
char *adm_batch_copy(adm_batch *b, const char *p, size_t n);
/* An argument, copied into b. */
void adm_cmd_arg(adm_batch *b, adm_cmd *c, const char *p, size_t n);
/* An argument whose bytes outlive b (not copied). */
void adm_cmd_arg_static(adm_cmd *c, const char *p, size_t n);
/* A key, copied into b; it sets the command's slot, or must be in it. */
void adm_cmd_key(adm_batch *b, adm_cmd *c, const key *k);
/* Queues b's commands, in order, each on its slot's primary; returns how
 * many were accepted: their fn will be called, the others' never (a
 * connection that is not ready, or over its byte bound). *nodes (if not
 * NULL): how many primaries the accepted ones went to (round trips). */
size_t adm_batch_send(rc_admission *a, const adm_batch *b, uint32_t *nodes);
/* Frees what b holds (its commands and their copies); b is then empty. */
void adm_batch_free(adm_batch *b);

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
extern const char RC_TICK_LUA[], RC_JOIN_LUA[], RC_LEAVE_LUA[], RC_GONE_LUA[], RC_SEEN_LUA[];

#endif
