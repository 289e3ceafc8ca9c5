/* The node: what main sets up before any thread starts and what every thread
 * may read afterwards (read-only, except the rc_flag and queue members, which
 * are the thread-safe kind). */
#ifndef RC_NODE_H
#define RC_NODE_H

#include "base/common.h"
#include "engine/config.h"
#include "engine/queue.h"

struct rc_shard;
struct rc_relay;

/* The two queues between one shard and the relay, and the shard's waker. */
typedef struct rc_link {
    rc_spsc to_relay;     /* producer: the shard; consumer: the relay */
    rc_spsc to_shard;     /* producer: the relay; consumer: the shard */
    rc_waker shard_waker; /* the relay wakes the shard */
    /* Open connections of the shard that negotiated permessage-deflate:
     * written by the shard, read by the relay (which compresses only while
     * some did). Here rather than in the shard's stats because the links
     * outlive the shards, and the relay's last turns come after them. */
    rc_counter deflate_conns;
} rc_link;

typedef struct rc_node {
    const rc_config *cfg;
    int nshards;
    struct rc_shard **shards;
    struct rc_relay *relay;
    rc_link *links;       /* [nshards] */
    rc_waker relay_waker; /* shards wake the relay */
    rc_flag draining;     /* set by main on SIGTERM/SIGINT */
    rc_flag relay_stop;   /* set by main once every shard has exited */
    rc_flag shards_ready; /* count of shards that finished set-up */
    /* The public keys of --jwt-public-key and --jwks (ws/jwk.h), or NULL:
     * replaced whole by the main thread on a reload (read it with
     * __atomic_load_n, acquire; a set once published is never freed
     * before exit, so a reader needs no lock). */
    struct rc_keyset *keys;
    rc_counter signals_ignored; /* SIGHUP, SIGUSR1, SIGUSR2 received (main thread) */
    int64_t started_ms;
    uint32_t conns_per_shard; /* connection slots per shard */
} rc_node;

/* Queue item kinds (rc_qitem.kind) between the shards and the relay. */
enum rc_qkind {
    /* shard -> relay */
    RC_Q_SUB = 1,   /* p: channel name (malloc'd NUL-terminated string), a: shard.
                       Ownership goes to the relay, which sends it back in SUBACK. */
    RC_Q_UNSUB,     /* p: channel name (malloc'd), a: shard; the relay frees it */
    RC_Q_PUBLISH,   /* p: rc_pub (malloc'd); the relay frees it */
    RC_Q_CALL,      /* p: rc_call (admission/admission.h) for the relay to answer */
    RC_Q_HISTORY,   /* p: rc_histreq (channels/history.h) for the relay to answer */
    RC_Q_PRESENCE,  /* p: rc_presreq (channels/presence.h): news the relay frees, or a
                       question it answers */
    RC_Q_EVENT,     /* p: rc_evreq (events/events.h) for the relay to store and answer */
    RC_Q_LIFECYCLE, /* p: rc_lcnews (events/events.h); the relay frees it */
    RC_Q_CONTROL,   /* p: rc_ctl (events/control.h) from the HTTP API; the relay frees it */
    RC_Q_REPLY,     /* p: rc_replyreq (events/events.h) from the HTTP API; the relay frees it */
    RC_Q_SIO_KEEP,  /* p: rc_sio_keep (sio/recovery.h): a SAVE the relay frees, or a TAKE it
                       answers */
    /* relay -> shard */
    RC_Q_SUBACK,        /* p: channel name from RC_Q_SUB (the shard frees it), b: seq */
    RC_Q_DELIVER,       /* p: rc_msg with one reference for this shard */
    RC_Q_DRAIN,         /* start draining */
    RC_Q_CALLDONE,      /* p: the rc_call of an RC_Q_CALL, answered; the shard frees it */
    RC_Q_HISTORY_DONE,  /* p: the rc_histreq of an RC_Q_HISTORY, answered; the shard frees it */
    RC_Q_EVENT_DONE,    /* p: the rc_evreq of an RC_Q_EVENT, answered; the shard frees it */
    RC_Q_CONTROL_DO,    /* p: rc_ctl for this shard's connections; the shard frees it */
    RC_Q_DIRECT,        /* p: rc_msg (one reference) for connection slot a of generation b */
    RC_Q_PRESENCE_DONE, /* p: the rc_presreq of an RC_Q_PRESENCE question, answered; the
                           shard frees it */
    RC_Q_SIO_KEPT,      /* p: the rc_sio_keep of a TAKE, answered; the shard frees it */
    RC_Q_SIO_BCAST,     /* p: rc_sio_bcast (sio/broadcast.h), this shard's copy: the emitter's
                           broadcast or remote operation; the shard frees it */
};

/* A publish on its way to the relay: one allocation. */
typedef struct rc_pub {
    uint16_t origin; /* shard id */
    uint16_t chan_len;
    uint16_t event_len;
    uint16_t user_len; /* the publisher's user id (from a client with a token) */
    uint32_t data_len;
    uint8_t from;       /* enum rc_from (proto/json.h): a client or the backend */
    uint64_t from_conn; /* the publishing connection (a client's) */
    char mem[];         /* channel NUL, event NUL, user NUL, data (raw JSON) */
} rc_pub;

/* from: RC_FROM_CLIENT (with user, possibly empty, and conn) or
 * RC_FROM_BACKEND. */
rc_pub *rc_pub_new(int origin, rc_str channel, rc_str event, rc_str data, int from, rc_str user,
                   uint64_t conn);
static inline rc_str rc_pub_channel(const rc_pub *p)
{
    return (rc_str){p->mem, p->chan_len};
}
static inline rc_str rc_pub_event(const rc_pub *p)
{
    return (rc_str){p->mem + p->chan_len + 1, p->event_len};
}
static inline rc_str rc_pub_user(const rc_pub *p)
{
    return (rc_str){p->mem + p->chan_len + 1 + p->event_len + 1, p->user_len};
}
static inline rc_str rc_pub_data(const rc_pub *p)
{
    return (rc_str){p->mem + p->chan_len + 1 + p->event_len + 1 + p->user_len + 1, p->data_len};
}

#endif
