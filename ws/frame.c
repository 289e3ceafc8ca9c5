/* Thread: any thread (pure functions). */
#include "ws/frame.h"

#include <string.h>

size_t rc_ws_header_len(uint64_t len)
{
    return len < 126 ? 2 : len <= 0xffff ? 4 : 10;
}

size_t rc_ws_header(uint8_t *hdr, int opcode, uint64_t len)
{
    hdr[0] = (uint8_t)(0x80 | (opcode & 0x0f));
    if (len < 126) {
        hdr[1] = (uint8_t)len;
        return 2;
    }
    if (len <= 0xffff) {
        hdr[1] = 126;
        hdr[2] = (uint8_t)(len >> 8);
        hdr[3] = (uint8_t)len;
        return 4;
    }
    hdr[1] = 127;
    for (int i = 0; i < 8; i++)
        hdr[2 + i] = (uint8_t)(len >> (56 - 8 * i));
    return 10;
}

size_t rc_ws_close_frame(uint8_t *out, uint16_t code, const char *reason)
{
    if (code == 0)
        return rc_ws_header(out, RC_WS_OP_CLOSE, 0);
    size_t rlen = reason ? strlen(reason) : 0;
    if (rlen > 123) /* reasons are ours and ASCII, so cutting is safe */
        rlen = 123;
    size_t h = rc_ws_header(out, RC_WS_OP_CLOSE, 2 + rlen);
    out[h] = (uint8_t)(code >> 8);
    out[h + 1] = (uint8_t)code;
    memcpy(out + h + 2, reason, rlen);
    return h + 2 + rlen;
}
