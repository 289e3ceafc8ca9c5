/* Engine.IO v4 and Socket.IO v5 packets (sio/packet.h).
 *
 * Thread: any. */
#include "sio/packet.h"

#include <stdio.h>
#include <string.h>

#include "ws/json.h"

#define MAX_ID ((1ULL << 53) - 1) /* ids are JavaScript numbers */

static const char *const errtext[] = {
    [RC_SIO_OK] = "ok",
    [RC_SIO_ERR_TYPE] = "unknown packet type",
    [RC_SIO_ERR_ATTACHMENTS] = "bad attachment count",
    [RC_SIO_ERR_NSP] = "bad namespace",
    [RC_SIO_ERR_ID] = "bad acknowledgement id",
    [RC_SIO_ERR_PAYLOAD] = "bad payload",
};

const char *rc_sio_errtext(int err)
{
    if (err < 0 || err >= (int)(sizeof(errtext) / sizeof(errtext[0])))
        return "bad packet";
    return errtext[err];
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* The payload's shape, by the packet's type. */
static int shape_ok(int type, rc_str d)
{
    rc_json_iter it;
    rc_json_val v;
    switch (type) {
    case RC_SIO_CONNECT:
        return d.n == 0 || rc_json_object_begin(&it, d.p, d.n, RC_SIO_MAX_DEPTH) == 0;
    case RC_SIO_DISCONNECT: return d.n == 0;
    case RC_SIO_EVENT:
    case RC_SIO_BINARY_EVENT:
        return rc_json_array_begin(&it, d.p, d.n, RC_SIO_MAX_DEPTH) == 0 &&
               rc_json_array_next(&it, &v) == 1 && v.type == RC_JSON_STRING;
    case RC_SIO_ACK:
    case RC_SIO_BINARY_ACK: return rc_json_array_begin(&it, d.p, d.n, RC_SIO_MAX_DEPTH) == 0;
    case RC_SIO_CONNECT_ERROR:
        if (rc_json_object_begin(&it, d.p, d.n, RC_SIO_MAX_DEPTH) == 0)
            return 1;
        return d.n >= 2 && d.p[0] == '"' && rc_json_validate(d.p, d.n, 1) == 0;
    }
    return 0;
}

int rc_sio_parse(const char *p, size_t n, rc_sio_packet *out)
{
    memset(out, 0, sizeof(*out));
    out->nsp = (rc_str){"/", 1};
    if (n == 0 || p[0] < '0' || p[0] > '6')
        return RC_SIO_ERR_TYPE;
    out->type = p[0] - '0';
    size_t i = 1;
    if (out->type == RC_SIO_BINARY_EVENT || out->type == RC_SIO_BINARY_ACK) {
        uint32_t k = 0;
        size_t start = i;
        while (i < n && is_digit(p[i]) && i - start < 3)
            k = k * 10 + (uint32_t)(p[i++] - '0');
        if (i == start || i >= n || p[i] != '-' || k > RC_SIO_MAX_ATTACH)
            return RC_SIO_ERR_ATTACHMENTS;
        out->attachments = k;
        i++;
    }
    if (i < n && p[i] == '/') {
        size_t start = i;
        while (i < n && p[i] != ',')
            i++;
        if (i - start > RC_SIO_MAX_NSP)
            return RC_SIO_ERR_NSP;
        if (i == n) {
            /* A namespace alone ("1/admin"): allowed when nothing follows. */
            out->nsp = (rc_str){p + start, i - start};
        } else {
            out->nsp = (rc_str){p + start, i - start};
            i++; /* the ',' */
        }
    }
    if (i < n && is_digit(p[i])) {
        uint64_t id = 0;
        while (i < n && is_digit(p[i])) {
            id = id * 10 + (uint64_t)(p[i++] - '0');
            if (id > MAX_ID)
                return RC_SIO_ERR_ID;
        }
        out->has_id = 1;
        out->id = id;
    }
    out->data = (rc_str){p + i, n - i};
    if (!shape_ok(out->type, out->data))
        return RC_SIO_ERR_PAYLOAD;
    if (out->has_id && out->type != RC_SIO_EVENT && out->type != RC_SIO_ACK &&
        out->type != RC_SIO_BINARY_EVENT && out->type != RC_SIO_BINARY_ACK)
        return RC_SIO_ERR_ID;
    if ((out->type == RC_SIO_ACK || out->type == RC_SIO_BINARY_ACK) && !out->has_id)
        return RC_SIO_ERR_ID;
    return RC_SIO_OK;
}

int rc_eio_payload_next(const char **p, const char *end, rc_str *pkt)
{
    if (*p > end)
        return 0; /* past the last packet */
    const char *s = *p;
    const char *sep = memchr(s, 0x1e, (size_t)(end - s));
    const char *stop = sep ? sep : end;
    *pkt = (rc_str){s, (size_t)(stop - s)};
    *p = sep ? sep + 1 : end + 1;
    return 1;
}

/* out[*len..) gets s; -1 when it does not fit. */
static int put(char *out, size_t cap, size_t *len, const char *s, size_t n)
{
    if (n > cap - *len)
        return -1;
    memcpy(out + *len, s, n);
    *len += n;
    return 0;
}

/* The type digit, the namespace (unless "/") and its ',', the id. */
static int head(char *out, size_t cap, size_t *len, char type, rc_str nsp, int has_id, uint64_t id)
{
    if (put(out, cap, len, &type, 1) < 0)
        return -1;
    if (!(nsp.n == 1 && nsp.p[0] == '/') && nsp.n) {
        if (put(out, cap, len, nsp.p, nsp.n) < 0 || put(out, cap, len, ",", 1) < 0)
            return -1;
    }
    if (has_id) {
        char num[24];
        int k = snprintf(num, sizeof(num), "%llu", (unsigned long long)id);
        if (put(out, cap, len, num, (size_t)k) < 0)
            return -1;
    }
    return 0;
}

/* A JSON string literal of s. */
static int put_string(char *out, size_t cap, size_t *len, rc_str s)
{
    ssize_t k = rc_json_escape(out + *len, cap - *len, s.p, s.n);
    if (k < 0)
        return -1;
    *len += (size_t)k;
    return 0;
}

rc_str rc_sio_args_of(rc_str data, int several)
{
    if (!several)
        return data;
    const char *p = data.p, *e = data.p + data.n;
    while (p < e && *p != '[')
        p++;
    while (e > p && e[-1] != ']')
        e--;
    if (p >= e) /* not an array: as it is */
        return data;
    p++, e--;
    while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    while (e > p && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
        e--;
    return (rc_str){p, (size_t)(e - p)};
}

ssize_t rc_sio_write_event(char *out, size_t cap, rc_str nsp, int has_id, uint64_t id, rc_str event,
                           rc_str args)
{
    size_t len = 0;
    if (head(out, cap, &len, '2', nsp, has_id, id) < 0 || put(out, cap, &len, "[", 1) < 0 ||
        put_string(out, cap, &len, event) < 0 ||
        (args.n && (put(out, cap, &len, ",", 1) < 0 || put(out, cap, &len, args.p, args.n) < 0)) ||
        put(out, cap, &len, "]", 1) < 0)
        return -1;
    return (ssize_t)len;
}

ssize_t rc_sio_write_ack(char *out, size_t cap, rc_str nsp, uint64_t id, rc_str args)
{
    size_t len = 0;
    if (head(out, cap, &len, '3', nsp, 1, id) < 0 || put(out, cap, &len, "[", 1) < 0 ||
        put(out, cap, &len, args.p, args.n) < 0 || put(out, cap, &len, "]", 1) < 0)
        return -1;
    return (ssize_t)len;
}

ssize_t rc_sio_write_connect(char *out, size_t cap, rc_str nsp, rc_str sid, rc_str pid)
{
    size_t len = 0;
    if (head(out, cap, &len, '0', nsp, 0, 0) < 0 || put(out, cap, &len, "{\"sid\":", 7) < 0 ||
        put_string(out, cap, &len, sid) < 0)
        return -1;
    if (pid.n && (put(out, cap, &len, ",\"pid\":", 7) < 0 || put_string(out, cap, &len, pid) < 0))
        return -1;
    if (put(out, cap, &len, "}", 1) < 0)
        return -1;
    return (ssize_t)len;
}

ssize_t rc_sio_write_connect_error(char *out, size_t cap, rc_str nsp, rc_str message)
{
    size_t len = 0;
    if (head(out, cap, &len, '4', nsp, 0, 0) < 0 || put(out, cap, &len, "{\"message\":", 11) < 0 ||
        put_string(out, cap, &len, message) < 0 || put(out, cap, &len, "}", 1) < 0)
        return -1;
    return (ssize_t)len;
}
