/* Shared messages, the shards' send buffers, and the publications the
 * shards hand to the relay (rc_pub). No message format is known here: the
 * payload of a frame is written by whoever builds it (channels/relay.c).
 *
 * Thread: messages are built by the relay and released by whichever shard
 * sends last; obufs belong to one shard; rc_pub_new runs on a shard. */
#include "engine/msg.h"

#include <string.h>

#include "engine/node.h"
#include "ws/frame.h"

/* Lays out [struct][channel NUL][frame header][payload]; the caller writes
 * the payload. */
static rc_msg *msg_alloc(rc_str channel, size_t payload_len)
{
    size_t hlen = rc_ws_header_len(payload_len);
    rc_msg *m = rc_malloc(sizeof(*m) + channel.n + 1 + hlen + payload_len);
    rc_ref_init(&m->refs, 0);
    m->chan_len = (uint16_t)channel.n;
    m->kind = RC_MSG_DATA;
    m->seq = 0;
    m->zframe = NULL;
    m->zframe_len = 0;
    if (channel.n) /* a reply to one connection has none (and p may be NULL) */
        memcpy(m->mem, channel.p, channel.n);
    m->mem[channel.n] = '\0';
    m->chan = (const char *)m->mem;
    uint8_t *frame = m->mem + channel.n + 1;
    rc_ws_header(frame, RC_WS_OP_TEXT, payload_len);
    m->frame = frame;
    m->frame_len = (uint32_t)(hlen + payload_len);
    return m;
}

rc_msg *rc_msg_new_frame(rc_str channel, size_t payload_len, uint8_t **payload)
{
    rc_msg *m = msg_alloc(channel, payload_len);
    *payload = (uint8_t *)m->frame + (m->frame_len - payload_len);
    return m;
}

rc_msg *rc_msg_new_text(rc_str channel, const char *json, size_t len)
{
    rc_msg *m = msg_alloc(channel, len);
    memcpy((uint8_t *)m->frame + (m->frame_len - len), json, len);
    return m;
}

rc_str rc_msg_payload(const rc_msg *m)
{
    uint8_t b = m->frame[1] & 0x7f;
    size_t hlen = b < 126 ? 2 : b == 126 ? 4 : 10;
    return (rc_str){(const char *)m->frame + hlen, m->frame_len - hlen};
}

void rc_msg_put(rc_msg *m)
{
    if (rc_ref_put(&m->refs)) {
        free(m->zframe);
        free(m);
    }
}

void rc_msg_set_zframe(rc_msg *m, const uint8_t *z, size_t n)
{
    size_t h = rc_ws_header_len(n);
    uint8_t *f = rc_malloc(h + n);
    rc_ws_header(f, RC_WS_OP_TEXT, n);
    f[0] |= RC_WS_RSV1;
    memcpy(f + h, z, n);
    free(m->zframe);
    m->zframe = f;
    m->zframe_len = (uint32_t)(h + n);
}

rc_obuf *rc_obuf_shared(rc_msg *m)
{
    rc_obuf *b = rc_malloc(sizeof(*b));
    b->refs = 0;
    b->len = m->frame_len;
    b->kind = RC_OBUF_DATA;
    b->shared = m;
    b->data = m->frame;
    return b;
}

rc_obuf *rc_obuf_shared_z(rc_msg *m)
{
    rc_obuf *b = rc_obuf_shared(m);
    b->len = m->zframe_len;
    b->data = m->zframe;
    rc_ref_get(&m->refs);
    return b;
}

rc_obuf *rc_obuf_frame(int kind, int opcode, const void *payload, size_t len)
{
    size_t hlen = rc_ws_header_len(len);
    rc_obuf *b = rc_malloc(sizeof(*b) + hlen + len);
    b->refs = 1;
    b->kind = (uint8_t)kind;
    b->shared = NULL;
    rc_ws_header(b->inline_data, opcode, len);
    if (len)
        memcpy(b->inline_data + hlen, payload, len);
    b->len = (uint32_t)(hlen + len);
    b->data = b->inline_data;
    return b;
}

rc_obuf *rc_obuf_raw(const void *data, size_t len)
{
    rc_obuf *b = rc_malloc(sizeof(*b) + len);
    b->refs = 1;
    b->kind = RC_OBUF_CTRL;
    b->shared = NULL;
    memcpy(b->inline_data, data, len);
    b->len = (uint32_t)len;
    b->data = b->inline_data;
    return b;
}

void rc_obuf_put(rc_obuf *b)
{
    if (--b->refs)
        return;
    if (b->shared)
        rc_msg_put(b->shared);
    free(b);
}

static char *put_z(char *w, rc_str s)
{
    if (s.n)
        memcpy(w, s.p, s.n);
    w[s.n] = '\0';
    return w + s.n + 1;
}

rc_pub *rc_pub_new(int origin, rc_str channel, rc_str event, rc_str data, int from, rc_str user,
                   uint64_t conn)
{
    rc_pub *p = rc_malloc(sizeof(*p) + channel.n + 1 + event.n + 1 + user.n + 1 + data.n);
    p->origin = (uint16_t)origin;
    p->chan_len = (uint16_t)channel.n;
    p->event_len = (uint16_t)event.n;
    p->user_len = (uint16_t)user.n;
    p->data_len = (uint32_t)data.n;
    p->from = (uint8_t)from;
    p->from_conn = conn;
    char *w = put_z(p->mem, channel);
    w = put_z(w, event);
    w = put_z(w, user);
    if (data.n)
        memcpy(w, data.p, data.n);
    return p;
}
