#include "perf/ringload/payload.h"

#include <stdio.h>
#include <string.h>

#include "ws/json.h"

int rl_data_build(char *out, size_t cap, uint64_t t, uint64_t i, size_t size)
{
    int n = snprintf(out, cap, "{\"t\":%llu,\"i\":%llu,\"p\":\"", (unsigned long long)t,
                     (unsigned long long)i);
    if (n < 0 || (size_t)n >= cap)
        return -1;
    size_t pad = size > (size_t)n + 2 ? size - (size_t)n - 2 : 0;
    if ((size_t)n + pad + 2 > cap)
        return -1;
    memset(out + n, 'x', pad);
    memcpy(out + n + pad, "\"}", 2);
    return (int)((size_t)n + pad + 2);
}

int rl_data_build_seats(char *out, size_t cap, uint64_t t, uint64_t i, size_t size)
{
    static const char *const states[] = {"held", "sold", "free"};
    static const int prices[] = {4500, 6500, 9900};
    int n = snprintf(out, cap, "{\"t\":%llu,\"i\":%llu,\"event\":\"sale-42\",\"seats\":[",
                     (unsigned long long)t, (unsigned long long)i);
    if (n < 0 || (size_t)n >= cap)
        return -1;
    size_t len = (size_t)n;
    for (uint64_t k = 0;; k++) {
        char seat[80];
        uint64_t s = i * 7 + k * 13;
        int m = snprintf(seat, sizeof(seat), "%s{\"seat\":\"%c%u\",\"state\":\"%s\",\"price\":%d}",
                         k ? "," : "", 'A' + (int)(s % 12), (unsigned)(s % 40 + 1),
                         states[(s / 3) % 3], prices[(s / 5) % 3]);
        /* "]}" still has to fit within size (and cap) after this seat */
        if (k > 0 && len + (size_t)m + 2 > size)
            break;
        if (len + (size_t)m + 2 > cap)
            return -1;
        memcpy(out + len, seat, (size_t)m);
        len += (size_t)m;
    }
    size_t pad = size > len + 2 ? size - len - 2 : 0;
    if (len + pad + 2 > cap)
        return -1;
    out[len++] = ']';
    memset(out + len, ' ', pad);
    len += pad;
    out[len++] = '}';
    return (int)len;
}

static int read_uint(const char *p, size_t n, const char *key, uint64_t *out)
{
    size_t kl = strlen(key);
    const char *s = p, *end = p + n;
    while ((s = memmem(s, (size_t)(end - s), key, kl)) != NULL) {
        const char *d = s + kl;
        /* the key must start a member: preceded by '{' or ',' */
        if (s > p && (s[-1] == '{' || s[-1] == ',') && d < end && *d >= '0' && *d <= '9') {
            uint64_t v = 0;
            while (d < end && *d >= '0' && *d <= '9')
                v = v * 10 + (uint64_t)(*d++ - '0');
            *out = v;
            return 0;
        }
        s += kl;
    }
    return -1;
}

/* Digits at *pp (at least one), advancing *pp past them. */
static int take_uint(const char **pp, const char *end, uint64_t *out)
{
    const char *d = *pp;
    uint64_t v = 0;
    if (d >= end || *d < '0' || *d > '9')
        return -1;
    while (d < end && *d >= '0' && *d <= '9')
        v = v * 10 + (uint64_t)(*d++ - '0');
    *pp = d;
    *out = v;
    return 0;
}

int rl_data_parse(const char *p, size_t n, uint64_t *t, uint64_t *i)
{
    uint64_t tv, iv;
    /* Fast path for the shape rl_data_build and rl_data_build_seats write,
     * {"t":T,"i":I,...}, which every server here passes on byte for byte:
     * at millions of messages a second the searches below are a good part
     * of the generator's own CPU. */
    const char *q = p, *end = p + n;
    if (n > 12 && memcmp(q, "{\"t\":", 5) == 0) {
        q += 5;
        if (take_uint(&q, end, &tv) == 0 && end - q > 5 && memcmp(q, ",\"i\":", 5) == 0) {
            q += 5;
            if (take_uint(&q, end, &iv) == 0) {
                *t = tv;
                *i = iv;
                return 0;
            }
        }
    }
    if (read_uint(p, n, "\"t\":", &tv) != 0 || read_uint(p, n, "\"i\":", &iv) != 0)
        return -1;
    *t = tv;
    *i = iv;
    return 0;
}

int rl_msg_subscribe(rl_dialect d, char *out, size_t cap, uint64_t id, const char *channel)
{
    char ch[600];
    ssize_t cl = rc_json_escape(ch, sizeof(ch), channel, strlen(channel));
    if (cl < 0)
        return -1;
    int n;
    if (d == RL_DIALECT_SOCKETIO) /* with an ack id: answered by an ack or "subscribed" */
        n = snprintf(out, cap, "42%llu[\"subscribe\",%.*s]", (unsigned long long)id, (int)cl, ch);
    else
        n = snprintf(out, cap, "{\"type\":\"subscribe\",\"id\":%llu,\"channel\":%.*s}",
                     (unsigned long long)id, (int)cl, ch);
    return (n < 0 || (size_t)n >= cap) ? -1 : n;
}

int rl_msg_publish(rl_dialect d, char *out, size_t cap, uint64_t id, const char *channel,
                   const char *data, size_t dlen)
{
    char ch[600];
    ssize_t cl = rc_json_escape(ch, sizeof(ch), channel, strlen(channel));
    if (cl < 0)
        return -1;
    int n;
    if (d == RL_DIALECT_SOCKETIO) /* socket.emit("message", room, {channel, data}) */
        n = snprintf(out, cap, "42[\"message\",%.*s,{\"channel\":%.*s,\"data\":%.*s}]", (int)cl, ch,
                     (int)cl, ch, (int)dlen, data);
    else if (id == RL_NO_ID) /* fire and forget: no "published" reply */
        n = snprintf(out, cap, "{\"type\":\"publish\",\"channel\":%.*s,\"data\":%.*s}", (int)cl, ch,
                     (int)dlen, data);
    else
        n = snprintf(out, cap, "{\"type\":\"publish\",\"id\":%llu,\"channel\":%.*s,\"data\":%.*s}",
                     (unsigned long long)id, (int)cl, ch, (int)dlen, data);
    return (n < 0 || (size_t)n >= cap) ? -1 : n;
}

static int starts(const char *p, size_t n, const char *lit)
{
    size_t l = strlen(lit);
    return n >= l && memcmp(p, lit, l) == 0;
}

/* The value of "data" in an object whose text is p[0..n). */
static int find_data(const char *p, size_t n, rc_str *data)
{
    rc_json_iter it;
    rc_json_val k, v;
    if (rc_json_object_begin(&it, p, n, 64) != 0)
        return -1;
    while (rc_json_object_next(&it, &k, &v))
        if (rc_json_key_is(&k, "data")) {
            *data = v.raw;
            return 0;
        }
    return -1;
}

static rl_in_kind classify_ringcast(const char *p, size_t n, rc_str *data)
{
    /* Fast path for the shape the servers send: the envelope ends with the
     * data member, so data is everything between "data": and the last '}'. */
    if (starts(p, n, "{\"type\":\"message\"") && n > 0 && p[n - 1] == '}') {
        /* A run's payloads all have one size: look where the last message's
         * data began, counted from the end, before searching. Payloads
         * built here hold no ",\"data\":" of their own. */
        static __thread size_t hint;
        if (hint && n > hint + 9 && memcmp(p + n - 1 - hint - 8, ",\"data\":", 8) == 0) {
            *data = (rc_str){p + n - 1 - hint, hint};
            return RL_IN_MESSAGE;
        }
        const char *d = memmem(p, n, ",\"data\":", 8);
        if (d) {
            const char *s = d + 8;
            *data = (rc_str){s, (size_t)(p + n - 1 - s)};
            hint = data->n;
            return RL_IN_MESSAGE;
        }
    }
    rc_json_iter it;
    rc_json_val k, v;
    if (rc_json_object_begin(&it, p, n, 64) != 0)
        return RL_IN_OTHER;
    char type[32] = "";
    int has_data = 0;
    while (rc_json_object_next(&it, &k, &v)) {
        if (rc_json_key_is(&k, "type") && v.type == RC_JSON_STRING) {
            if (rc_json_string(&v, type, sizeof(type)) < 0)
                return RL_IN_OTHER;
        } else if (rc_json_key_is(&k, "data")) {
            *data = v.raw;
            has_data = 1;
        }
    }
    if (strcmp(type, "message") == 0)
        return has_data ? RL_IN_MESSAGE : RL_IN_OTHER;
    if (strcmp(type, "subscribed") == 0)
        return RL_IN_SUBSCRIBED;
    if (strcmp(type, "published") == 0)
        return RL_IN_PUBLISHED;
    if (strcmp(type, "error") == 0)
        return RL_IN_ERROR;
    return RL_IN_OTHER;
}

static rl_in_kind classify_sio(const char *p, size_t n, rc_str *data)
{
    if (n == 1 && p[0] == '2')
        return RL_IN_SIO_PING;
    if (n >= 1 && p[0] == '0')
        return RL_IN_SIO_OPEN;
    if (starts(p, n, "42[\"message\",") && p[n - 1] == ']') {
        const char *o = p + 13;
        size_t on = (size_t)(p + n - 1 - o);
        if (on >= 2 && o[0] == '{' && o[on - 1] == '}') {
            const char *d = memmem(o, on, ",\"data\":", 8);
            if (d) { /* the peer sends {"channel":C,"data":D} */
                const char *s = d + 8;
                *data = (rc_str){s, (size_t)(o + on - 1 - s)};
                return RL_IN_MESSAGE;
            }
            if (find_data(o, on, data) == 0)
                return RL_IN_MESSAGE;
        }
        return RL_IN_OTHER;
    }
    if (starts(p, n, "42[\"subscribed\""))
        return RL_IN_SUBSCRIBED;
    if (starts(p, n, "43")) /* an ack: of a subscribe, the only request with one */
        return memmem(p, n, "\"ok\":true", 9) ? RL_IN_SUBSCRIBED : RL_IN_ERROR;
    if (starts(p, n, "42[\"error\"") || starts(p, n, "44"))
        return RL_IN_ERROR;
    if (starts(p, n, "40"))
        return RL_IN_SIO_CONNECTED;
    return RL_IN_OTHER;
}

rl_in_kind rl_msg_classify(rl_dialect d, const char *p, size_t n, rc_str *data)
{
    if (n == 0)
        return RL_IN_OTHER;
    return d == RL_DIALECT_SOCKETIO ? classify_sio(p, n, data) : classify_ringcast(p, n, data);
}
