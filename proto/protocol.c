/* What every protocol shares: the error codes' names and the rule for
 * names (channels, events, queues).
 *
 * Thread: any (pure functions). */
#include "proto/protocol.h"

#include <string.h>

static const char *const err_names[RC_PERR__COUNT] = {
    [RC_PERR_NONE] = "none",
    [RC_PERR_BAD_JSON] = "bad_json",
    [RC_PERR_BAD_REQUEST] = "bad_request",
    [RC_PERR_UNKNOWN_TYPE] = "unknown_type",
    [RC_PERR_INVALID_CHANNEL] = "invalid_channel",
    [RC_PERR_FORBIDDEN] = "forbidden",
    [RC_PERR_CHANNEL_LIMIT] = "channel_limit",
    [RC_PERR_RATE_LIMITED] = "rate_limited",
    [RC_PERR_NOT_SUBSCRIBED] = "not_subscribed",
    [RC_PERR_OVERLOADED] = "overloaded",
    [RC_PERR_BINARY] = "binary_unsupported",
    [RC_PERR_MESSAGES_DROPPED] = "messages_dropped",
    [RC_PERR_INTERNAL] = "internal",
    [RC_PERR_QUEUE_UNAVAILABLE] = "queue_unavailable",
    [RC_PERR_QUEUE_NOT_FOUND] = "queue_not_found",
    [RC_PERR_QUEUE_BUSY] = "already_waiting",
    [RC_PERR_BAD_SINCE] = "bad_since",
    [RC_PERR_NO_HISTORY] = "no_history",
    [RC_PERR_UNAVAILABLE] = "history_unavailable",
    [RC_PERR_NO_PRESENCE] = "no_presence",
    [RC_PERR_PRESENCE_UNAVAILABLE] = "presence_unavailable",
    [RC_PERR_UNKNOWN_EVENT] = "unknown_event",
    [RC_PERR_EVENT_TOO_LARGE] = "event_too_large",
    [RC_PERR_STREAM_FULL] = "stream_full",
    [RC_PERR_EVENTS_UNAVAILABLE] = "events_unavailable",
    [RC_PERR_BAD_TOKEN] = "bad_token",
};

const char *rc_proto_errname(int code)
{
    if (code < 0 || code >= RC_PERR__COUNT || !err_names[code])
        return "internal";
    return err_names[code];
}

static int name_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.' || c == ':' || c == '@' || c == '/' || c == '=' || c == '+';
}

int rc_proto_name_valid(const char *name, size_t n, size_t max)
{
    if (n < 1 || n > max)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!name_char((unsigned char)name[i]))
            return 0;
    return 1;
}

int rc_proto_event(const rc_json_val *v, char *out, size_t *len)
{
    ssize_t n = -1;
    if (!v) {
        memcpy(out, "message", sizeof("message"));
        *len = sizeof("message") - 1;
        return 0;
    }
    if (v->type == RC_JSON_STRING)
        n = rc_json_string(v, out, RC_PROTO_MAX_EVENT + 1);
    if (n < 0 || !rc_proto_name_valid(out, (size_t)n, RC_PROTO_MAX_EVENT)) {
        out[0] = '\0';
        *len = 0;
        return -1;
    }
    *len = (size_t)n;
    return 0;
}

static const char *const outcome_names[RC_REC__COUNT] = {
    [RC_REC_OK] = "recovered",
    [RC_REC_EPOCH] = "epoch_changed",
    [RC_REC_TRIMMED] = "trimmed",
    [RC_REC_TOO_MANY] = "too_many",
    [RC_REC_NO_HISTORY] = "no_history",
    [RC_REC_AHEAD] = "offset_ahead",
    [RC_REC_UNAVAILABLE] = "unavailable",
};

const char *rc_recovery_name(int outcome)
{
    return outcome >= 0 && outcome < RC_REC__COUNT ? outcome_names[outcome] : "unavailable";
}

int rc_presence_cursor_valid(const char *s, size_t n)
{
    if (n < 1 || n > RC_PROTO_MAX_CURSOR)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
            return 0;
    return 1;
}
