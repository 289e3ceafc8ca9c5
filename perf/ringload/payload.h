/* What ringload says and reads in each dialect of perf's bench protocol
 * (notes: bench_protocol.md): the stamped data payload, subscribe and
 * publish messages, and the classification of server text messages. */
#ifndef RL_PAYLOAD_H
#define RL_PAYLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "base/common.h"

typedef enum rl_dialect { RL_DIALECT_RINGCAST = 0, RL_DIALECT_SOCKETIO } rl_dialect;

/* Writes the data payload {"t":t,"i":i,"p":"xx..."} padded with 'x' so the
 * whole text is size bytes; when size is below the unpadded length the
 * padding is empty and the text is longer than size. Returns the length
 * (no NUL written), or -1 when it does not fit in cap. */
int rl_data_build(char *out, size_t cap, uint64_t t, uint64_t i, size_t size);

/* The same stamp in a realistic payload of about size bytes: a seat-map
 * update of a ticket sale, {"t":t,"i":i,"event":"sale-42","seats":[{"seat":
 * "C17","state":"sold","price":6500},...]} with seats varying with i, padded
 * with spaces (JSON whitespace) to size. Compresses as such data does, which
 * 'x' padding would not. Returns the length, or -1 when it does not fit. */
int rl_data_build_seats(char *out, size_t cap, uint64_t t, uint64_t i, size_t size);

/* Reads t and i out of a data payload span p[0..n) (members in any order;
 * other members ignored). Returns 0, or -1 when either is missing or not a
 * non-negative integer (outputs unchanged). */
int rl_data_parse(const char *p, size_t n, uint64_t *t, uint64_t *i);

/* Client messages. Each writes the text of one message into out and returns
 * its length, or -1 when it does not fit in cap. channel is escaped as a
 * JSON string; data is inserted as it is (it must be JSON). id is used by
 * the ringcast dialect only. */
int rl_msg_subscribe(rl_dialect d, char *out, size_t cap, uint64_t id, const char *channel);
/* An id for rl_msg_publish that asks for no acknowledgement. */
#define RL_NO_ID UINT64_MAX

int rl_msg_publish(rl_dialect d, char *out, size_t cap, uint64_t id, const char *channel,
                   const char *data, size_t dlen);

typedef enum rl_in_kind {
    RL_IN_OTHER = 0,     /* anything else: ignored */
    RL_IN_MESSAGE,       /* a channel message; data spans its payload */
    RL_IN_SUBSCRIBED,    /* subscribe acknowledged */
    RL_IN_PUBLISHED,     /* publish acknowledged (ringcast) */
    RL_IN_ERROR,         /* a server error message */
    RL_IN_SIO_OPEN,      /* Engine.IO open ("0{...}"): answer "40" */
    RL_IN_SIO_CONNECTED, /* Socket.IO connect ack ("40..."): now subscribe */
    RL_IN_SIO_PING,      /* Engine.IO ping ("2"): answer "3" */
} rl_in_kind;

/* Classifies one server text message p[0..n) in dialect d. For
 * RL_IN_MESSAGE, *data is set to the span of the message's data value.
 * Never fails: unknown or malformed text is RL_IN_OTHER. */
rl_in_kind rl_msg_classify(rl_dialect d, const char *p, size_t n, rc_str *data);

#endif
