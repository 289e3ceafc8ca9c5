/* The protocols a node speaks. A new protocol adds its id to enum
 * rc_protocol_id (proto/protocol.h) and its module here; the HTTP side
 * (http/server.c) chooses it for the requests it owns.
 *
 * Thread: a shard's, once at its start. */
#include "proto/protocols.h"

#include "base/common.h"
#include "proto/json_protocol.h"
#include "sio/socket.h"

void rc_protocols_install(const rc_protocol *table[RC_PROTO__COUNT])
{
    table[RC_PROTO_JSON] = &rc_json_protocol;
    table[RC_PROTO_SIO] = &rc_sio_protocol;
    for (int i = 0; i < RC_PROTO__COUNT; i++)
        rc_assert(table[i] && table[i]->opened && table[i]->message && table[i]->closed &&
                  table[i]->error);
}
