/* The waiting-room side of ringload (scenario "queue"): the per-connection
 * token, the queue.join message, the classification of the server's queue
 * messages, and a per-tick table that tells how long the slowest waiter of
 * each admission tick waited for its new position. */
#ifndef RL_QUEUE_H
#define RL_QUEUE_H

#include <stddef.h>
#include <stdint.h>

/* Writes an HS256 JWT (header {"alg":"HS256","typ":"JWT"}) with claims
 * {"sub":"<prefix><index>"} signed with secret[0..secret_len) into out with a
 * NUL. prefix must need no JSON escaping (the caller checks with
 * rl_user_prefix_ok). Returns the length, or -1 when it does not fit in cap. */
int rl_queue_token(char *out, size_t cap, const uint8_t *secret, size_t secret_len,
                   const char *prefix, uint32_t index);

/* 1 when prefix is 0..64 characters that need no escaping inside a JSON
 * string and are valid in a user id (printable ASCII but '"' and '\\'). */
int rl_user_prefix_ok(const char *prefix);

/* Writes {"type":"queue.join","id":ID,"queue":"Q"} (queue escaped as a JSON
 * string). Returns the length (no NUL counted), or -1 when it does not fit. */
int rl_queue_join_msg(char *out, size_t cap, uint64_t id, const char *queue);

enum rl_qmsg_kind {
    RL_QM_OTHER = 0, /* not a queue message (or malformed): ignore */
    RL_QM_JOINED,    /* queue.joined: ticket and position are set */
    RL_QM_TICK,      /* queue.tick: time and head are set */
    RL_QM_ADMITTED,  /* admitted (a join reply or a push) */
    RL_QM_LEFT,      /* queue.left */
    RL_QM_ERROR,     /* error */
};

/* What a queue message says that ringload uses. */
typedef struct rl_qmsg {
    int64_t time, head;       /* queue.tick: the tick's ms and its head */
    int64_t ticket, position; /* queue.joined */
} rl_qmsg;

/* Classifies one server text message p[0..n) by its "type" member and fills
 * *m as the kind says: a queue.tick without non-negative integers "time"
 * and "head", or a queue.joined without integers "ticket" and "position",
 * is RL_QM_OTHER. Never fails; *m is unchanged unless RL_QM_TICK or
 * RL_QM_JOINED is returned. */
int rl_queue_classify(const char *p, size_t n, rl_qmsg *m);

/* A waiter's place from its ticket and a tick's head, as the server counts
 * it (docs/PROTOCOL.md, queue.tick): max(ticket - head, 1). */
int64_t rl_queue_position(int64_t ticket, int64_t head);

/* What the waiters saw of one tick: how many got the tick's frame (and so
 * their position), and the longest of their waits (receive time - tick
 * time). */
typedef struct rl_tickstat {
    int64_t time; /* the tick's time, ms */
    uint64_t n;
    uint64_t max_us;
} rl_tickstat;

/* Ticks sorted by time, one entry per distinct time. Zero is an empty table. */
typedef struct rl_ticks {
    rl_tickstat *v;
    uint32_t n, cap;
} rl_ticks;

/* Counts one position of the tick at time that waited lat_us. Can't fail
 * (allocation failure aborts). Cheap when time is the newest or a recent
 * tick, the usual case. */
void rl_ticks_add(rl_ticks *t, int64_t time, uint64_t lat_us);

/* Adds every tick of src into dst (counts summed, maxima kept); src is
 * unchanged. */
void rl_ticks_merge(rl_ticks *dst, const rl_ticks *src);

/* Frees the table; it is then empty and usable again. */
void rl_ticks_free(rl_ticks *t);

/* Over the ticks: the median (lower middle of an even count) and the largest
 * of the per-tick maxima, and the fewest and most positions a tick had.
 * Returns the number of ticks; with none, every output is 0. */
uint32_t rl_ticks_summary(const rl_ticks *t, uint64_t *median_max_us, uint64_t *worst_max_us,
                          uint64_t *min_n, uint64_t *max_n);

#endif
