/* The MessagePack that Socket.IO's Redis emitter publishes, read: values
 * are walked in place and turned into JSON text (strings, numbers, true,
 * false, nil, arrays, maps with string keys). Binary and extension types
 * have no JSON form and are refused.
 *
 * Thread: any (no state). */
#ifndef RC_SIO_MSGPACK_H
#define RC_SIO_MSGPACK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define RC_MP_MAX_DEPTH 32

typedef struct rc_mp {
    const uint8_t *p, *end;
} rc_mp;

enum rc_mp_kind {
    RC_MP_BAD = 0,
    RC_MP_NIL,
    RC_MP_BOOL,
    RC_MP_INT,
    RC_MP_FLOAT,
    RC_MP_STR,
    RC_MP_BIN,
    RC_MP_ARRAY,
    RC_MP_MAP,
    RC_MP_EXT
};

/* The kind of the value at m->p and, for strings, arrays and maps, its
 * length (bytes, elements, pairs) in *n; for strings *s points at the
 * bytes. Moves m->p past the value's header only (past the whole value
 * for scalars). RC_MP_BAD when truncated or unknown. */
int rc_mp_next(rc_mp *m, uint32_t *n, const uint8_t **s);

/* Reads an integer value (any of MessagePack's integer encodings) into
 * *out and moves past it: 0, or -1 (m unchanged) when the value is not an
 * integer or lies outside int64. */
int rc_mp_int(rc_mp *m, int64_t *out);

/* Skips one whole value: 0, or -1 when malformed or nested past the limit. */
int rc_mp_skip(rc_mp *m);

/* Writes one whole value as JSON into out[cap] and moves past it: the
 * length, or -1 (malformed, binary or extension, a string that is not
 * UTF-8, too deep, no room). */
ssize_t rc_mp_to_json(rc_mp *m, char *out, size_t cap);

#endif
