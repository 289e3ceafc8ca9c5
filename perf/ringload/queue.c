#include "perf/ringload/queue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "ws/json.h"
#include "ws/jwt.h"

int rl_user_prefix_ok(const char *prefix)
{
    size_t n = strlen(prefix);
    if (n > 64)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)prefix[i];
        if (ch < 0x20 || ch > 0x7e || ch == '"' || ch == '\\')
            return 0;
    }
    return 1;
}

int rl_queue_token(char *out, size_t cap, const uint8_t *secret, size_t secret_len,
                   const char *prefix, uint32_t index)
{
    char claims[128];
    int cn = snprintf(claims, sizeof(claims), "{\"sub\":\"%s%u\"}", prefix, index);
    if (cn < 0 || (size_t)cn >= sizeof(claims))
        return -1;
    return rc_jwt_sign(claims, (size_t)cn, secret, secret_len, out, cap);
}

int rl_queue_join_msg(char *out, size_t cap, uint64_t id, const char *queue)
{
    char q[300];
    ssize_t ql = rc_json_escape(q, sizeof(q), queue, strlen(queue));
    if (ql < 0)
        return -1;
    int n = snprintf(out, cap, "{\"type\":\"queue.join\",\"id\":%llu,\"queue\":%.*s}",
                     (unsigned long long)id, (int)ql, q);
    return (n < 0 || (size_t)n >= cap) ? -1 : n;
}

static int raw_is(const rc_json_val *v, const char *lit)
{
    size_t n = strlen(lit);
    return v->type == RC_JSON_STRING && v->raw.n == n + 2 && memcmp(v->raw.p + 1, lit, n) == 0;
}

int rl_queue_classify(const char *p, size_t n, rl_qmsg *m)
{
    rc_json_iter it;
    rc_json_val k, v, type = {RC_JSON_INVALID, RC_STR_NULL};
    int64_t tm = -1, head = -1, ticket = 0, pos = 0;
    int has_ticket = 0, has_pos = 0;
    if (rc_json_object_begin(&it, p, n, 8) != 0)
        return RL_QM_OTHER;
    while (rc_json_object_next(&it, &k, &v)) {
        if (rc_json_key_is(&k, "type"))
            type = v;
        else if (rc_json_key_is(&k, "time") && rc_json_int64(&v, &tm) != 0)
            tm = -1;
        else if (rc_json_key_is(&k, "head") && rc_json_int64(&v, &head) != 0)
            head = -1;
        else if (rc_json_key_is(&k, "ticket"))
            has_ticket = rc_json_int64(&v, &ticket) == 0;
        else if (rc_json_key_is(&k, "position"))
            has_pos = rc_json_int64(&v, &pos) == 0;
    }
    if (raw_is(&type, "queue.tick")) {
        if (tm < 0 || head < 0)
            return RL_QM_OTHER;
        m->time = tm;
        m->head = head;
        return RL_QM_TICK;
    }
    if (raw_is(&type, "queue.joined")) {
        if (!has_ticket || !has_pos)
            return RL_QM_OTHER;
        m->ticket = ticket;
        m->position = pos;
        return RL_QM_JOINED;
    }
    if (raw_is(&type, "admitted"))
        return RL_QM_ADMITTED;
    if (raw_is(&type, "queue.left"))
        return RL_QM_LEFT;
    if (raw_is(&type, "error"))
        return RL_QM_ERROR;
    return RL_QM_OTHER;
}

int64_t rl_queue_position(int64_t ticket, int64_t head)
{
    /* Saturated, as the server counts: both come from the network. */
    return RC_MAX(rc_sat_sub(ticket, head), (int64_t)1);
}

/* Index of the first entry whose time is >= time (n when none). Ticks come
 * in order, so look back from the end first. */
static uint32_t lower_bound(const rl_ticks *t, int64_t time)
{
    uint32_t i = t->n;
    for (int k = 0; k < 4 && i > 0; k++, i--)
        if (t->v[i - 1].time < time)
            return i;
    uint32_t lo = 0, hi = i;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (t->v[mid].time < time)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void put(rl_ticks *t, int64_t time, uint64_t n, uint64_t max_us)
{
    uint32_t i = lower_bound(t, time);
    if (i < t->n && t->v[i].time == time) {
        t->v[i].n += n;
        if (max_us > t->v[i].max_us)
            t->v[i].max_us = max_us;
        return;
    }
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 64;
        t->v = rc_realloc(t->v, t->cap * sizeof(rl_tickstat));
    }
    memmove(&t->v[i + 1], &t->v[i], (t->n - i) * sizeof(rl_tickstat));
    t->v[i] = (rl_tickstat){time, n, max_us};
    t->n++;
}

void rl_ticks_add(rl_ticks *t, int64_t time, uint64_t lat_us)
{
    put(t, time, 1, lat_us);
}

void rl_ticks_merge(rl_ticks *dst, const rl_ticks *src)
{
    for (uint32_t i = 0; i < src->n; i++)
        put(dst, src->v[i].time, src->v[i].n, src->v[i].max_us);
}

void rl_ticks_free(rl_ticks *t)
{
    free(t->v);
    memset(t, 0, sizeof(*t));
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

uint32_t rl_ticks_summary(const rl_ticks *t, uint64_t *median_max_us, uint64_t *worst_max_us,
                          uint64_t *min_n, uint64_t *max_n)
{
    *median_max_us = *worst_max_us = *min_n = *max_n = 0;
    if (t->n == 0)
        return 0;
    uint64_t *m = rc_malloc(t->n * sizeof(uint64_t));
    *min_n = UINT64_MAX;
    for (uint32_t i = 0; i < t->n; i++) {
        m[i] = t->v[i].max_us;
        *min_n = RC_MIN(*min_n, t->v[i].n);
        *max_n = RC_MAX(*max_n, t->v[i].n);
    }
    qsort(m, t->n, sizeof(uint64_t), cmp_u64);
    *median_max_us = m[(t->n - 1) / 2];
    *worst_max_us = m[t->n - 1];
    free(m);
    return t->n;
}
