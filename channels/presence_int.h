/* Presence on the relay, shared by its two halves: channels/presence.c
 * (the table of members, joins and leaves, writing them to Redis) and
 * channels/presence_ask.c (presence and presence_stats questions).
 * Private to channels/presence*.c.
 *
 * Thread: the relay thread. */
#ifndef RC_PRESENCE_INT_H
#define RC_PRESENCE_INT_H

#include "channels/presence.h"
#include "channels/room.h"

/* A member on this node. key: its name in Redis, "NODE:BOOT:SERIAL", which
 * no other join anywhere ever had (a connection id is reused by the next
 * connection; a node id by the node's next run). */
typedef struct ent {
    uint64_t seq;    /* join order in its channel: the cursor of pages here */
    uint8_t sent;    /* with Redis: its join went out (a refresh's counts) */
    uint8_t pending; /* with Redis: in its channel's pend */
    uint16_t user_len, key_len;
    uint32_t json_len;
    char mem[]; /* user NUL, key NUL, member JSON NUL */
} ent;

static inline rc_str ent_user(const ent *e)
{
    return (rc_str){e->mem, e->user_len};
}

static inline rc_str ent_key(const ent *e)
{
    return (rc_str){e->mem + e->user_len + 1, e->key_len};
}

static inline rc_str ent_json(const ent *e)
{
    return (rc_str){e->mem + e->user_len + 1 + e->key_len + 1, e->json_len};
}

/* A channel with members here, or with questions waiting for Redis. */
typedef struct pchan {
    rc_rooms *byconn; /* decimal connection id -> udata: its ent */
    rc_rooms *users;  /* user id -> seq: its connections here */
    ent **order;      /* by seq; NULL where one left (compacted as they grow) */
    size_t n_order, cap, live;
    uint64_t next_seq;
    int join_leave;
    rc_presreq *waiting; /* with Redis: stats questions waiting for the read in flight */
    int reading;
    /* With Redis, what is still to be written, in batches: joins (the
     * members themselves), leaves ("KEY\0USER\0" each), and the refresh of
     * every member, which goes on from refresh_pos until done. */
    ent **pend;
    size_t n_pend, cap_pend;
    char **leaves;
    size_t n_leaves, cap_leaves;
    int dirty;      /* in p->dirty */
    int refreshing; /* in p->dirty for its refresh */
    size_t refresh_pos;
    int64_t refreshed_ms; /* when its last refresh began */
} pchan;

struct rc_presence {
    const rc_config *cfg;
    rc_presence_ops ops;
    void *u;
    rc_presence_stats *stats;
    rc_bridge *bridge; /* NULL without Redis */
    rc_rooms *chans;   /* channel -> udata: pchan */
    char boot[17];     /* this run's nonce, in every key */
    uint64_t serial;
    uint64_t ttl_ms;
    int was_ready;   /* the command connection was ready at the last tick */
    rc_room **dirty; /* channels with something to write to Redis */
    size_t n_dirty, cap_dirty;
    size_t n_leaves; /* leaves waiting, all channels (capped) */
    char prefix_join[RC_PROTO_MAX_NODE * 2 + 32], prefix_leave[RC_PROTO_MAX_NODE * 2 + 32];
};

/* Every script's start: the time (Redis's clock, ms), and sweep, which
 * removes up to 1000 members whose time is past, with their users' counts,
 * and announces them as leaves when ev is "1". KEYS: z, l, i, u. */
#define PRELUDE                                                                                    \
    "local t = redis.call('TIME')\n"                                                               \
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"                      \
    "local function sweep(ch, ev)\n"                                                               \
    "  local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 1000)\n"         \
    "  for _, m in ipairs(gone) do\n"                                                              \
    "    local inf = redis.call('HGET', KEYS[3], m)\n"                                             \
    "    redis.call('ZREM', KEYS[1], m)\n"                                                         \
    "    redis.call('ZREM', KEYS[2], m)\n"                                                         \
    "    redis.call('HDEL', KEYS[3], m)\n"                                                         \
    "    if inf then\n"                                                                            \
    "      local ok, d = pcall(cjson.decode, inf)\n"                                               \
    "      if ok and type(d) == 'table' and type(d.user) == 'string' then\n"                       \
    "        if redis.call('HINCRBY', KEYS[4], d.user, -1) <= 0 then\n"                            \
    "          redis.call('HDEL', KEYS[4], d.user)\n"                                              \
    "        end\n"                                                                                \
    "      end\n"                                                                                  \
    "      if ev ~= '0' then redis.call(ev, ch, '{\"leave\":' .. inf .. '}') end\n"                \
    "    end\n"                                                                                    \
    "  end\n"                                                                                      \
    "end\n"

#define KEY_CAP (64 + RC_PROTO_MAX_CHANNEL + 16)

typedef struct script_args {
    char keys[4][KEY_CAP];
    char name[80 + RC_PROTO_MAX_CHANNEL + 3];
    const char **argv;
    size_t *lens;
    int argc, cap;
} script_args;

/* EVAL script 4 KEYS(chan) Redis-channel ev ...: the fixed part; then
 * args_add the rest, and args_end once sent. */
void rc_pres_args_begin(rc_presence *p, script_args *a, const char *script, size_t script_len,
                        rc_str chan, int ev, int extra);
void rc_pres_args_add(script_args *a, const char *s, size_t n);
void rc_pres_args_end(script_args *a);

/* The channel's record (created when create), or NULL. */
pchan *rc_pres_chan(rc_presence *p, rc_str chan, int create);
/* Forgets the channel's record when nothing holds it any more. */
void rc_pres_chan_check(rc_presence *p, rc_str chan);
/* The index in c->order of the first member joined after seq after. */
size_t rc_pres_order_after(const pchan *c, uint64_t after);

/* A question (presence_ask.c): answered now or once Redis has. */
void rc_pres_on_question(rc_presence *p, rc_presreq *q);

#endif
