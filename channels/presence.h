/* Presence (channels/presence.c): who is here, per channel with a presence
 * rule (--presence), across every node.
 *
 * A shard tells the relay when a connection joins or leaves such a channel
 * (RC_Q_PRESENCE with RC_PRESQ_JOIN or RC_PRESQ_LEAVE); the relay keeps its
 * node's members, and:
 *
 * - Without Redis, that table is the presence: counts are kept as members
 *   come and go (a channel's connections and its distinct users), never
 *   recounted, and pages are read in join order.
 * - With Redis, each channel has four keys in one hash slot (the channel's
 *   name is their hash tag), PREFIX "p:{" CH "}:" and
 *     z  sorted set: member -> when it expires (Redis's clock, ms)
 *     l  sorted set: member, score 0 (pages, in the members' byte order)
 *     i  hash: member -> its JSON {"user":..,"conn":..,"node":..,"info":..}
 *     u  hash: user id -> its connections here (the distinct users: HLEN)
 *   where a member is "NODE:CONN". One script per join, per leave, per
 *   read, so that the four agree. Redis 7.0 has no per-field expiry, so
 *   expiry is the score in z: every node re-adds its own members every
 *   --presence-ttl / 3 seconds, and every script first removes (and
 *   announces as leaves) up to 1000 members whose time is past. A node
 *   that dies stops refreshing: its members are gone within --presence-ttl
 *   plus one refresh period of any node with members of the channel, or at
 *   the next read.
 *
 * Join and leave events (rules with join_leave) reach every member on
 * every node as {"type":"join"|"leave","channel":C,"member":M}: without
 * Redis from the table, with Redis through the channel's own Redis channel
 * ({"node":N,"join":M} / {"leave":M}), published by the script that made
 * the change.
 *
 * Thread: the relay thread, but for rc_presreq_new/free (any thread). */
#ifndef RC_PRESENCE_H
#define RC_PRESENCE_H

#include "channels/bridge.h"
#include "engine/msg.h"
#include "proto/protocol.h"

enum rc_presq_kind {
    RC_PRESQ_JOIN = 1, /* member joined chan (user, info) */
    RC_PRESQ_LEAVE,    /* member left chan */
    RC_PRESQ_STATS,    /* a presence_stats question */
    RC_PRESQ_PAGE,     /* a presence question: a page of members after cursor */
};

/* A shard's news or question, and the relay's answer (RC_Q_PRESENCE there,
 * RC_Q_PRESENCE_DONE back for questions). Made by the shard, freed by the
 * shard (questions) or the relay (news). */
typedef struct rc_presreq {
    struct rc_presreq *next; /* the relay's: waiting for a read of Redis */
    uint8_t kind;            /* enum rc_presq_kind */
    uint8_t via_http;        /* asked by the HTTP API: answered by http/server.c */
    uint8_t tag_len;
    uint8_t cursor_len;
    uint16_t shard;
    uint16_t gen;
    uint32_t conn;   /* questions: the asker's slot on its shard */
    uint64_t member; /* news: the member's connection id */
    uint32_t limit;  /* RC_PRESQ_PAGE: 1..--presence-page-max */
    char tag[RC_PROTO_MAX_ID + 1];
    char cursor[RC_PROTO_MAX_CURSOR + 1];
    /* the answer */
    int error; /* 0, or RC_PERR_PRESENCE_UNAVAILABLE */
    uint64_t connections, users;
    char *members; /* RC_PRESQ_PAGE: n members' JSON, comma-separated (malloc'd) */
    size_t members_len;
    uint32_t n;
    uint8_t next_cursor_len;
    char next_cursor[RC_PROTO_MAX_CURSOR + 1]; /* the next page's cursor (empty: last page) */
    /* news: the member's user id (empty: anonymous) and its token's info */
    uint16_t user_len, info_len, chan_len;
    const char *user, *info; /* inside chan's allocation */
    char chan[];             /* NUL-terminated, then user, then info */
} rc_presreq;

rc_presreq *rc_presreq_new(rc_str chan, rc_str user, rc_str info);
void rc_presreq_free(rc_presreq *q);

typedef struct rc_presence_stats {
    rc_counter joins, leaves; /* members that joined / left on this node */
    rc_counter stats_reads;   /* presence_stats questions answered */
    rc_counter page_reads;    /* presence questions answered */
    rc_counter coalesced;     /* with Redis: stats questions that waited for a read */
    rc_counter redis_calls;   /* with Redis: scripts run (joins, leaves, refreshes, reads) */
    rc_counter unavailable;   /* questions answered "presence_unavailable" */
    rc_counter events;        /* join/leave events handed to this node's members */
    rc_counter channels;      /* gauge: channels with members on this node */
    rc_counter members;       /* gauge: this node's members, all channels */
    rc_counter largest;       /* gauge: members of this node's largest channel */
} rc_presence_stats;

typedef struct rc_presence rc_presence;

/* What the presence needs of the channel table: hand a join/leave frame
 * (refs unset) to the node's members of chan; send an answer to its shard. */
typedef struct rc_presence_ops {
    void (*emit)(void *u, rc_str chan, rc_msg *m);
    void (*answer)(void *u, rc_presreq *q);
} rc_presence_ops;

rc_presence *rc_presence_new(const rc_config *cfg, const rc_presence_ops *ops, void *u,
                             rc_presence_stats *stats);
/* With Redis: the bridge whose command connection runs the scripts. */
void rc_presence_attach(rc_presence *p, rc_bridge *bridge);
void rc_presence_free(rc_presence *p);
/* A shard's item: takes q (news are freed, questions answered). */
void rc_presence_on_item(rc_presence *p, rc_presreq *q);
/* A join or leave event that came through Redis (member: its JSON). */
void rc_presence_on_event(rc_presence *p, rc_str chan, int join, rc_str member);
/* With Redis, at the end of each relay turn: the turn's joins and leaves
 * go out, a few hundred members to a script, and a refresh in progress
 * goes on. */
void rc_presence_flush(rc_presence *p);
/* Every second or so: with Redis, the refresh of this node's members (and
 * the leaves held while the link was down); gauges. */
void rc_presence_tick(rc_presence *p, int64_t now_ms);

#endif
