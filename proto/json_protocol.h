/* The JSON protocol (docs/PROTOCOL.md): the module that plugs ringcast's
 * native JSON messages into the protocol seam (proto/protocol.h). */
#ifndef RC_JSON_PROTOCOL_H
#define RC_JSON_PROTOCOL_H

#include "proto/protocol.h"

extern const rc_protocol rc_json_protocol;

#endif
