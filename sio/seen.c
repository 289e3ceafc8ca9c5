/* Names for the emitter's messages that every node hears alike
 * (sio/seen.h).
 *
 * Thread: any. */
#include "sio/seen.h"

#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>

#include "proto/protocol.h"

size_t rc_sio_seen_name(rc_str chan, rc_str payload, char *out)
{
    /* SHA-256 of the channel, a NUL and the payload's own digest. */
    uint8_t full[SHA256_DIGEST_LENGTH], buf[RC_PROTO_MAX_CHANNEL + 1 + SHA256_DIGEST_LENGTH];
    size_t cn = RC_MIN(chan.n, (size_t)RC_PROTO_MAX_CHANNEL);
    memcpy(buf, chan.p, cn);
    buf[cn] = '\0';
    SHA256((const unsigned char *)payload.p, payload.n, buf + cn + 1);
    SHA256(buf, cn + 1 + SHA256_DIGEST_LENGTH, full);
    for (size_t i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", full[i]);
    return 32;
}
