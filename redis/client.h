/* One Redis connection driven by a caller-owned io_uring loop (the relay's).
 *
 * The client never blocks and never submits: it prepares SQEs on the ring
 * given to rc_redis_new (user_data = rc_ud(RC_UOP_REDIS, tag, op)), and the
 * caller forwards every RC_UOP_REDIS completion whose gen equals the tag to
 * rc_redis_on_cqe, calls rc_redis_tick often (every loop turn or at least every
 * 100 ms), calls rc_redis_flush before it submits, and submits. Cancels the
 * client issues carry RC_UOP_IGNORE and need no forwarding.
 *
 * States: DISCONNECTED -> CONNECTING (socket + IORING_OP_CONNECT, 2 s timeout)
 * -> HANDSHAKE (AUTH [user] password, SELECT db, then PING, always: pipelined,
 * replies checked, within the same 2 s) -> READY. A connection is READY only
 * once Redis has answered the PING, whatever the auth and db: the kernel
 * completes a TCP connect even to a stopped Redis. Any error or EOF ->
 * CLOSING (in-flight ops drain) -> DISCONNECTED, and a new attempt after an
 * exponential backoff: 100 ms doubling to 5 s across failed attempts
 * (handshake timeouts included), +-25% jitter, back to 100 ms once READY.
 *
 * Every callback (hooks and reply callbacks) runs inside rc_redis_on_cqe,
 * rc_redis_tick or rc_redis_close; callbacks may call rc_redis_command and
 * rc_redis_send_raw but never rc_redis_free.
 *
 * Host names go through getaddrinfo, which may block on DNS: give an IP
 * address (or a unix socket) where that matters.
 *
 * Thread: everything here belongs to the thread that owns the ring (the relay).
 * hiredis is only used for formatting (redisFormatCommandArgv) and parsing
 * (redisReader); all IO is ours. */
#ifndef RC_REDIS_CLIENT_H
#define RC_REDIS_CLIENT_H

#include <hiredis/hiredis.h>
#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>

#include "redis/url.h"

typedef struct rc_redis rc_redis;

/* reply: the parsed reply, owned by the client and freed when fn returns
 * (an error reply is a redisReply of type REDIS_REPLY_ERROR, err NULL).
 * When the connection drops before the reply came, reply is NULL and err says
 * why. Each accepted command's fn is called exactly once. */
typedef void (*rc_redis_reply_fn)(void *udata, redisReply *reply, const char *err, void *priv);

typedef struct rc_redis_hooks {
    /* The connection is READY (after every successful (re)connect): the place
     * to (re)SUBSCRIBE, as subscriptions do not survive a reconnect. */
    void (*on_ready)(void *udata);
    /* A connection attempt failed or a live connection dropped; reason is a
     * one-line message (valid during the call). Called once per failed attempt,
     * not on rc_redis_close. */
    void (*on_down)(void *udata, const char *reason);
    /* A reply nobody waits for: pub/sub "message"/"pmessage"/"smessage",
     * the "subscribe"/"unsubscribe" confirmations (one per channel) and
     * their S variants, and, in subscriber mode, error replies (they answer
     * a (S)SUBSCRIBE: a cluster node's MOVED, say). Freed when
     * the hook returns. May be NULL: such replies are then dropped. */
    void (*on_push)(void *udata, redisReply *reply);
} rc_redis_hooks;

typedef enum rc_redis_state {
    RC_REDIS_DISCONNECTED,
    RC_REDIS_CONNECTING,
    RC_REDIS_HANDSHAKE,
    RC_REDIS_READY,
    RC_REDIS_CLOSING, /* socket shut down, waiting for in-flight ops */
    RC_REDIS_STOPPED, /* after rc_redis_close, once nothing is in flight */
} rc_redis_state;

typedef struct rc_redis_stats {
    uint64_t rtt_us;         /* round trip of the last answered ping, 0 before */
    uint32_t pipeline_depth; /* commands waiting for a reply */
    uint64_t queued_bytes;   /* formatted and not yet sent (the max_queued bound) */
    uint64_t bytes_in, bytes_out;
    uint64_t reconnects; /* READY transitions after the first */
    uint64_t commands;   /* commands accepted (rc_redis_command + send_raw) */
    uint64_t errors;     /* error replies + failed attempts / dropped connections */
    uint64_t backoff_ms; /* the wait before the attempt after the next failure */
} rc_redis_stats;

#define RC_REDIS_DEFAULT_MAX_QUEUED (8u << 20)

/* A client for url (copied). Does not connect yet: the first rc_redis_tick
 * starts the first attempt. hooks is copied; udata is passed to every
 * callback; tag tells this client's completions apart (the gen field of
 * user_data). Never NULL (aborts on OOM). */
rc_redis *rc_redis_new(struct io_uring *ring, const rc_redis_url *url, const rc_redis_hooks *hooks,
                       void *udata, uint16_t tag);

/* The udata reply callbacks get (by default the hooks' udata). */
void rc_redis_set_reply_udata(rc_redis *r, void *udata);

/* Bound on bytes formatted but not yet sent (default 8 MiB): beyond it
 * rc_redis_command and rc_redis_send_raw refuse. */
void rc_redis_set_max_queued(rc_redis *r, size_t bytes);

/* Sends PING every interval_ms while READY to measure rtt_us (0 = off, the
 * default). A ping unanswered for 3 intervals (at least 2 s) drops the
 * connection, which is how a silent peer is noticed. */
void rc_redis_set_ping_interval(rc_redis *r, uint32_t interval_ms);

/* Handles one completion whose user_data op is RC_UOP_REDIS and gen == tag.
 * May call hooks and reply callbacks; prepares follow-up SQEs (recv, send,
 * connect). */
void rc_redis_on_cqe(rc_redis *r, struct io_uring_cqe *cqe);

/* Drives timers with the monotonic clock in ms (rc_now_ms): starts due
 * connection attempts, enforces the connect/handshake timeout (2 s), sends
 * pings. Also flushes. */
void rc_redis_tick(rc_redis *r, uint64_t now_ms);

/* Formats the command (redisFormatCommandArgv; argvlen NULL = strlen of each)
 * into the output buffer and queues (fn, priv) for its reply. Returns 0; or
 * -1 (nothing queued, fn never called) when not READY, when fn is NULL or
 * argc < 1, or when the queued bytes would exceed the bound. The bytes go out on the next
 * rc_redis_flush (or CQE/tick): commands issued meanwhile share one send. */
int rc_redis_command(rc_redis *r, rc_redis_reply_fn fn, void *priv, int argc, const char **argv,
                     const size_t *argvlen);

/* rc_redis_command for a command formatted already (RESP, as
 * redisFormatCommandArgv makes it): cmd[0..len) is copied. 0, or -1 as
 * rc_redis_command. */
int rc_redis_command_formatted(rc_redis *r, rc_redis_reply_fn fn, void *priv, const char *cmd,
                               size_t len);

/* Like rc_redis_command but expects no reply on the FIFO: for SUBSCRIBE,
 * UNSUBSCRIBE and their P/S variants, whose confirmations come to on_push.
 * After a (P/S)SUBSCRIBE the connection is in subscriber mode until it
 * drops: pub/sub arrays go to on_push even while commands (PING) wait.
 * Returns 0, or -1 as rc_redis_command. */
int rc_redis_send_raw(rc_redis *r, int argc, const char **argv, const size_t *argvlen);

/* Prepares a send of everything queued unless one is in flight (then the
 * bytes go when it completes). Call before submitting the ring. */
void rc_redis_flush(rc_redis *r);

/* Stops for good: no reconnect; pending reply callbacks get NULL now
 * ("closed"); on_down is not called. In-flight ops drain through
 * rc_redis_on_cqe; rc_redis_idle says when they have. */
void rc_redis_close(rc_redis *r);

/* True when no SQE of this client is in flight (its buffers are unused). */
bool rc_redis_idle(const rc_redis *r);

/* Frees the client. Call once rc_redis_idle is true, or after the ring has
 * been torn down (io_uring_queue_exit); pending callbacks, if any, get NULL
 * first. NULL is a no-op. */
void rc_redis_free(rc_redis *r);

rc_redis_state rc_redis_get_state(const rc_redis *r);
/* The last failure's reason ("" if none); valid until the next failure. */
const char *rc_redis_last_error(const rc_redis *r);
void rc_redis_get_stats(const rc_redis *r, rc_redis_stats *out);

#endif
