/* The protocols a node speaks (proto/protocols.c): the one table a shard
 * looks a connection's protocol up in (s->protos, by rc_conn.proto). */
#ifndef RC_PROTOCOLS_H
#define RC_PROTOCOLS_H

#include "proto/protocol.h"

/* Fills table[RC_PROTO__COUNT] with every protocol module. */
void rc_protocols_install(const rc_protocol *table[RC_PROTO__COUNT]);

#endif
