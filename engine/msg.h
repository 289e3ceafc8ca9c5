/* Messages on their way to clients.
 *
 * rc_msg: one WebSocket frame shared by every recipient on every shard. The
 * relay builds it once (server frames are unmasked, so the bytes are the same
 * for everyone) and gives each shard that has members one reference; the
 * count is the only shared state (rc_ref, in engine/queue.h). The thread that
 * drops the last reference frees it: allocation is jemalloc's, whose free()
 * from another thread is safe and cheap.
 *
 * rc_obuf: a shard's handle on bytes to send, counted with a plain integer
 * because only its shard touches it. It either wraps an rc_msg (one rc_obuf
 * per message per shard, however many local recipients), or owns a private
 * frame (a reply, a pong, a close) stored inline. */
#ifndef RC_MSG_H
#define RC_MSG_H

#include "base/common.h"
#include "engine/queue.h"

enum rc_msg_kind {
    RC_MSG_DATA = 0, /* a channel message: moves the channel's seq */
    RC_MSG_NOTICE,   /* a "messages_dropped" notice for the channel's members */
    RC_MSG_TICK,     /* a waiting room's tick (admission/): the frame's payload is the
                        tick's data, from which the shard builds one frame its waiters share */
    RC_MSG_PRESENCE, /* a join or leave event of the channel's presence (channels/presence.h) */
    RC_MSG_QLEFT,    /* a user left a waiting room's line (payload {"user":U,"ticket":T}):
                        the user's connections stop waiting */
};

typedef struct rc_msg {
    rc_ref refs;
    uint32_t frame_len;
    uint64_t seq;
    uint16_t chan_len;
    uint8_t kind;         /* enum rc_msg_kind */
    const char *chan;     /* NUL-terminated, inside this allocation */
    const uint8_t *frame; /* inside this allocation */
    /* The same message compressed (permessage-deflate, RSV1 set), for the
     * connections that negotiated it, or NULL: made once, by the thread
     * that builds the message, before it is shared (rc_msg_set_zframe);
     * its own allocation, freed with the message. */
    uint8_t *zframe;
    uint32_t zframe_len;
    uint8_t mem[];
} rc_msg;

/* A message on channel whose frame is a text frame of payload_len bytes:
 * the caller writes them at *payload. refs 0: the caller sets them. */
rc_msg *rc_msg_new_frame(rc_str channel, size_t payload_len, uint8_t **payload);

/* Builds a text frame around an arbitrary JSON payload (a notice to every
 * member of a channel). */
rc_msg *rc_msg_new_text(rc_str channel, const char *json, size_t len);

/* The payload of m's frame (the bytes after the WebSocket header). */
rc_str rc_msg_payload(const rc_msg *m);

/* Drops one reference; frees on the last. */
void rc_msg_put(rc_msg *m);

/* Gives m its compressed frame: a final text frame with RSV1 around
 * z[0..n) (copied). Only before m is shared. */
void rc_msg_set_zframe(rc_msg *m, const uint8_t *z, size_t n);

enum rc_obuf_kind {
    RC_OBUF_DATA = 0, /* a channel message: subject to the backlog policy */
    RC_OBUF_REPLY,    /* a reply to the client's own request: never dropped */
    RC_OBUF_CTRL,     /* pong, ping, close: never dropped */
};

typedef struct rc_obuf {
    uint32_t refs; /* queue entries that point here (shard-local) */
    uint32_t len;
    uint8_t kind;
    rc_msg *shared; /* NULL for a private frame */
    const uint8_t *data;
    uint8_t inline_data[];
} rc_obuf;

/* A wrapper for a shared message with refs 0; the caller counts its uses. */
rc_obuf *rc_obuf_shared(rc_msg *m);

/* The same for m's compressed frame (m->zframe must be set); the wrapper
 * holds its own reference on m, taken here. */
rc_obuf *rc_obuf_shared_z(rc_msg *m);

/* A private frame: header for opcode + a copy of payload[0..len). refs 1. */
rc_obuf *rc_obuf_frame(int kind, int opcode, const void *payload, size_t len);

/* Raw bytes (an HTTP response before any WebSocket framing). refs 1. */
rc_obuf *rc_obuf_raw(const void *data, size_t len);

/* Drops one use; frees (and drops the rc_msg reference) on the last. */
void rc_obuf_put(rc_obuf *b);

#endif
