/* The channels' history on the relay (channels/history.c): for each channel
 * with a history rule (--history), its epoch, its top offset and its last
 * publications, kept as the very frames that went out live, so a recovery
 * sends the same bytes.
 *
 * An offset counts the channel's publications (the first is 1); the epoch
 * names one unbroken run of offsets. A client that knows (offset, epoch)
 * of the last publication it saw can be given exactly what came after, or
 * be told that it cannot (never a part of it).
 *
 * Without Redis this is the channel's history itself. Records are created
 * by the first publication or the first subscriber, lose their
 * publications ttl seconds after the last one, and are forgotten (epoch and
 * top offset too) --history-meta-ttl seconds after it, or sooner when more
 * than RC_HISTORY_MAX_CHANNELS channels have records (the one idle longest
 * goes first: its clients are then told "epoch_changed", never given
 * wrong messages).
 *
 * Thread: the relay thread. */
#ifndef RC_HISTORY_H
#define RC_HISTORY_H

#include "engine/config.h"
#include "engine/msg.h"
#include "proto/protocol.h"

#define RC_HISTORY_MAX_CHANNELS 100000

/* A shard's question about a channel's history, and the relay's answer
 * (RC_Q_HISTORY there, RC_Q_HISTORY_DONE back). Made and freed by the shard
 * (any thread may free it). */
enum rc_histq_kind {
    RC_HISTQ_SUBSCRIBE = 1, /* a subscriber's position, and its recovery with since */
    RC_HISTQ_READ,          /* a history request: the last limit, or those after since */
};

typedef struct rc_histreq {
    struct rc_histreq *next; /* the relay's: waiting for a read of Redis */
    uint8_t kind;            /* enum rc_histq_kind */
    uint8_t has_since;
    uint8_t since_epoch_len;
    uint8_t tag_len;
    uint8_t via_http; /* asked by the HTTP API: answered by http/server.c */
    uint16_t shard;
    uint16_t gen;
    uint32_t conn;
    uint32_t limit; /* RC_HISTQ_READ */
    uint64_t since;
    char since_epoch[RC_PROTO_MAX_EPOCH + 1];
    char tag[RC_PROTO_MAX_ID + 1];
    /* the answer */
    int8_t outcome;      /* enum rc_recovery */
    uint8_t has_history; /* the channel has a history rule: top and epoch are set */
    uint8_t epoch_len;
    uint64_t top;
    char epoch[RC_PROTO_MAX_EPOCH + 1];
    uint32_t n;
    rc_msg **msgs; /* n publications, oldest first, a reference each */
    uint16_t chan_len;
    char chan[]; /* NUL-terminated */
} rc_histreq;

rc_histreq *rc_histreq_new(rc_str chan);
/* Frees q and drops its publications' references. Any thread. */
void rc_histreq_free(rc_histreq *q);

typedef struct rc_history rc_history;
typedef struct rc_hist rc_hist;

/* redis: the history is Redis's (channels/relay.c reads it and sees its
 * publications go by); a record then starts unknown. */
rc_history *rc_history_new(const rc_config *cfg, int redis);
void rc_history_free(rc_history *h);

/* The record of channel chan, created (with a new epoch and offset 0) when
 * absent; NULL when the channel has no history rule. */
rc_hist *rc_history_open(rc_history *h, rc_str chan, int64_t now_ms);

/* The next offset of e: call, then append the publication built with it. */
uint64_t rc_hist_next(rc_hist *e);
uint64_t rc_hist_top(const rc_hist *e);
rc_str rc_hist_epoch(const rc_hist *e);
/* Keeps m (taking one reference) as the publication at offset. */
void rc_hist_append(rc_history *h, rc_hist *e, uint64_t offset, rc_msg *m, int64_t now_ms);

/* The publications after since in epoch (all of them, or an outcome that
 * says why not): on RC_REC_OK, *out holds *n messages (a reference each,
 * the caller's), oldest first. max bounds *n (--recovery-max). */
int rc_hist_since(rc_hist *e, rc_str epoch, uint64_t since, uint32_t max, rc_msg ***out,
                  uint32_t *n);
/* The last limit publications kept (fewer when fewer are kept), oldest
 * first, with a reference each. */
void rc_hist_last(rc_hist *e, uint32_t limit, rc_msg ***out, uint32_t *n);

/* --- with Redis: what this node knows of Redis's history --- */

/* 1 when e's epoch and top are Redis's as this node saw them last, and its
 * kept publications the last ones of that run; 0 until read or seen. */
int rc_hist_known(const rc_hist *e);
/* The publication at offset in epoch, as Redis gave it out (taking one
 * reference to m): another epoch, or a gap, starts the kept run again. */
void rc_hist_observe(rc_history *h, rc_hist *e, rc_str epoch, uint64_t offset, rc_msg *m,
                     int64_t now_ms);
/* What a read of Redis found: epoch, top, and the last n publications
 * (msgs, oldest first, offsets top-n+1..top; references taken). What was
 * seen since with higher offsets in the same epoch stays after them. */
void rc_hist_load(rc_history *h, rc_hist *e, rc_str epoch, uint64_t top, rc_msg **msgs, uint32_t n,
                  int64_t now_ms);
/* This node no longer sees e's publications go by (it left the channel's
 * Redis channel, or read it without being there): what it keeps of e may
 * fall behind, so it is forgotten until the next read. */
void rc_hist_unknown(rc_history *h, rc_hist *e);
/* The link to Redis was down: nothing seen before can be trusted. */
void rc_history_unknown_all(rc_history *h);
/* A read of e's history in flight, and the questions that wait for it. */
typedef struct rc_hist_read {
    rc_histreq *head, *tail;
    uint64_t id;    /* the read in flight (its fence carries it); 0: none */
    int use_fence;  /* the answer waits for the fence too */
    int fence_seen; /* the fence came back */
    int replied;    /* the read's answer is in rd_* */
    char rd_epoch[RC_PROTO_MAX_EPOCH + 1];
    size_t rd_epoch_len;
    uint64_t rd_top;
    rc_msg **rd_msgs;
    uint32_t rd_n;
} rc_hist_read;
rc_hist_read *rc_hist_reading(rc_hist *e);
/* Calls fn(e, arg) for every record (fn must not add or forget records). */
void rc_history_each(rc_history *h, void (*fn)(rc_hist *e, void *arg), void *arg);
/* The record of chan, or NULL (never creates). */
rc_hist *rc_history_find(rc_history *h, rc_str chan);
rc_str rc_hist_name(const rc_hist *e);

/* Drops publications past their ttl, and records past the meta ttl. */
void rc_history_expire(rc_history *h, int64_t now_ms);

typedef struct rc_history_stats {
    size_t channels; /* records */
    size_t entries;  /* publications kept */
    uint64_t bytes;  /* their frames' bytes */
} rc_history_stats;
void rc_history_get_stats(const rc_history *h, rc_history_stats *out);

#endif
