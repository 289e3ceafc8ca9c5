/* Socket.IO's Redis emitter (@socket.io/redis-emitter), heard: a backend's
 * io.to(room).emit(event, ...args) reaches the room's members on every node
 * (issue 15).
 *
 * With --socketio-emitter KEY, the node subscribes, beside each channel with
 * members here, to the emitter's channel for that room: KEY#NSP#ROOM#, where
 * channel NAME/ROOM is room ROOM of namespace /NAME and any other channel is
 * a room of "/". No pattern subscription. What arrives there is MessagePack
 * [uid, packet, opts]; an EVENT packet's data [event, args...] becomes a
 * publication on the channel from a backend (data: the one argument, null
 * for none, an array for several), delivered like any other: JSON clients
 * and Socket.IO clients of the room get it.
 *
 * On a room whose channel keeps history (--history), the event is kept
 * with an offset, once for all the nodes that heard it (sio/seen.h,
 * rc_bridge_publish_history_once), and delivered from the channel's own
 * subscription: Socket.IO clients recover it like any publication.
 *
 * opts.except (rooms whose members must not get it) is not honoured yet:
 * such a message is dropped, counted and logged rather than sent to the
 * wrong people. Emits to several rooms or to a whole namespace go to KEY#NSP#
 * and the request channel (remote join, leave, disconnect, serverSideEmit)
 * is not subscribed yet either.
 *
 * Thread: the relay thread. */
#ifndef RC_SIO_EMITTER_H
#define RC_SIO_EMITTER_H

#include "channels/bridge.h"
#include "engine/config.h"

typedef struct rc_sio_emitter rc_sio_emitter;

/* Subscribes the emitter's room channels along with the bridge's; NULL
 * when the emitter is not configured. Free it after the bridge. */
rc_sio_emitter *rc_sio_emitter_attach(rc_bridge *b, const rc_config *cfg);
void rc_sio_emitter_free(rc_sio_emitter *e);

/* KEY#NSP#ROOM# for channel chan into out[cap]: its length, or 0. */
size_t rc_sio_emitter_name(const rc_config *cfg, rc_str chan, char *out, size_t cap);

/* Reads an emitter message on Redis channel rname: 0 and the channel
 * (chan[RC_PROTO_MAX_CHANNEL + 1]), the event (ev[RC_PROTO_MAX_EVENT + 1])
 * and *data (JSON, malloc'd), or -1 with *why. */
int rc_sio_emitter_read(const rc_config *cfg, rc_str rname, rc_str payload, char *chan,
                        size_t *chan_len, char *ev, size_t *ev_len, char **data, size_t *data_len,
                        const char **why);

#endif
