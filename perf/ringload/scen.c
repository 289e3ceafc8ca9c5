/* The scenarios: each is one entry in rl_scenarios with its hooks. The
 * engine (client.c) opens the staying connections and subscribes them; main
 * drives the phases (ramp, settle, warm-up, run, drain, stop). */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "perf/ringload/rl.h"
#include "ws/frame.h"
#include "ws/json.h"

static void channel_cfg(const rl_conn *c, char *out, size_t cap)
{
    snprintf(out, cap, "%s", rl_cfg_g.channel);
}

static void channel_echo(const rl_conn *c, char *out, size_t cap)
{
    snprintf(out, cap, "echo:%u", c->index);
}

/* --- broadcast: one publisher at --rate, every staying connection receives.
 * With --channels N > 1 connection k is on channel C:(k mod N) and publish i
 * goes to C:(i mod N): each subscriber sees every N-th index, and its own
 * sequence j = (i - k mod N) / N is checked for gaps as i is with one. */

static void bc_channel_of(uint64_t k, char *out, size_t cap)
{
    if (rl_cfg_g.channels > 1)
        snprintf(out, cap, "%s:%u", rl_cfg_g.channel, (unsigned)(k % rl_cfg_g.channels));
    else
        snprintf(out, cap, "%s", rl_cfg_g.channel);
}

static void channel_bc(const rl_conn *c, char *out, size_t cap)
{
    bc_channel_of(c->index, out, cap);
}

/* Deliveries expected for the publishes [from, end): each publish times the
 * subscribers of its channel (connections 0 .. conns-1 spread round-robin;
 * scaled down when fewer were subscribed at the start of the measurement). */
static uint64_t bc_expected(uint64_t from, uint64_t end)
{
    uint64_t pubs = end > from ? end - from : 0, n = rl_cfg_g.channels, conns = rl_cfg_g.conns;
    if (n <= 1 || pubs == 0)
        return pubs * rl_run_g.subscribers;
    uint64_t sum = 0;
    for (uint64_t k = 0; k < n; k++) {
        uint64_t subs = conns / n + (k < conns % n);
        uint64_t first = from + (k + n - from % n) % n; /* first i >= from with i mod n == k */
        uint64_t cnt = first < end ? (end - 1 - first) / n + 1 : 0;
        sum += subs * cnt;
    }
    if (rl_run_g.subscribers < conns && conns > 0)
        sum = (uint64_t)((double)sum * (double)rl_run_g.subscribers / (double)conns);
    return sum;
}

static void bc_tick(rl_thr *th, uint64_t now)
{
    rl_conn *c = th->pub;
    int ph = rl_phase();
    if (th->id != 0 || ph < RL_PH_WARMUP)
        return;
    if (ph >= RL_PH_DRAIN || !c) {
        if (ph >= RL_PH_DRAIN && !__atomic_load_n(&rl_run_g.pub_done, __ATOMIC_RELAXED)) {
            __atomic_store_n(&rl_run_g.meas_end_i, th->pub_sent, __ATOMIC_RELAXED);
            __atomic_store_n(&rl_run_g.pub_t_last, now, __ATOMIC_RELAXED);
            __atomic_store_n(&rl_run_g.pub_done, 1, __ATOMIC_RELEASE);
        }
        return;
    }
    if (c->state != RL_ST_OPEN || !(c->flags & RL_CF_READY))
        return;
    if (!th->pub_t0)
        th->pub_t0 = now;
    if (ph == RL_PH_RUN && !th->pub_measuring) {
        th->pub_measuring = 1;
        __atomic_store_n(&rl_run_g.pub_t_first, now, __ATOMIC_RELAXED);
        __atomic_store_n(&rl_run_g.meas_from_i, th->pub_sent, __ATOMIC_RELEASE);
    }
    uint64_t due = (uint64_t)((double)(now - th->pub_t0) / 1e9 * rl_cfg_g.rate) + 1;
    /* Cap one turn's burst so a stalled loop does not dump a second's worth
     * of messages at once. */
    char ch[280];
    for (int n = 0; th->pub_sent < due && n < 10000; n++) {
        bc_channel_of(th->pub_sent, ch, sizeof(ch));
        rl_conn_publish(th, c, ch, rc_now_ns(), th->pub_sent);
        th->pub_sent++;
        RL_INC(th->st.published);
    }
    if (th->pub_sent < due) /* behind: do not try to catch up later */
        th->pub_t0 += (uint64_t)((double)(due - th->pub_sent) / rl_cfg_g.rate * 1e9);
}

static void bc_data(rl_thr *th, rl_conn *c, uint64_t t, uint64_t i, uint64_t now)
{
    if (c->role != RL_ROLE_STAY)
        return;
    RL_INC(th->st.received);
    uint64_t n = rl_cfg_g.channels, j = i;
    if (n > 1) {
        if (i % n != c->index % n) { /* another channel's message: never expected */
            RL_INC(th->st.out_of_order);
            return;
        }
        j = i / n;
    }
    if (j == c->next_i) {
        c->next_i++;
    } else if (j > c->next_i) {
        RL_ADD(th->st.gaps, j - c->next_i);
        c->next_i = j + 1;
    } else {
        RL_INC(th->st.out_of_order);
        return;
    }
    if (i >= __atomic_load_n(&rl_run_g.meas_from_i, __ATOMIC_ACQUIRE)) {
        RL_INC(th->st.measured);
        rl_hist_record(&th->hist, now > t ? (now - t) / 1000 : 0);
    }
}

static int bc_drained(void)
{
    if (!__atomic_load_n(&rl_run_g.pub_done, __ATOMIC_ACQUIRE))
        return 0;
    rl_stats s;
    rl_stats_sum(&s);
    return s.measured >= bc_expected(rl_run_g.meas_from_i, rl_run_g.meas_end_i);
}

static void bc_report(FILE *f, double window_s)
{
    uint64_t from = rl_run_g.meas_from_i, end = rl_run_g.meas_end_i;
    uint64_t pubs = from == UINT64_MAX || end < from ? 0 : end - from;
    uint64_t expected = pubs ? bc_expected(from, end) : 0;
    double w = rl_run_g.pub_t_last > rl_run_g.pub_t_first
                   ? (double)(rl_run_g.pub_t_last - rl_run_g.pub_t_first) / 1e9
                   : window_s;
    fprintf(f,
            ",\"rate\":%g,\"payload\":%u,\"channels\":%u,\"subscribers\":%llu,\"publishes\":%llu,"
            "\"publishes_total\":%llu,\"acks\":%llu,\"expected\":%llu,\"received\":%llu,"
            "\"lost\":%lld,\"gaps\":%llu,\"out_of_order\":%llu,\"publish_window_s\":%.3f,"
            "\"publishes_per_s\":%.1f,\"deliveries_per_s\":%.1f",
            rl_cfg_g.rate, rl_cfg_g.payload, rl_cfg_g.channels,
            (unsigned long long)rl_run_g.subscribers, (unsigned long long)pubs,
            (unsigned long long)rl_tot.published, (unsigned long long)rl_tot.acks,
            (unsigned long long)expected, (unsigned long long)rl_tot.measured,
            (long long)(expected - rl_tot.measured), (unsigned long long)rl_tot.gaps,
            (unsigned long long)rl_tot.out_of_order, w, w > 0 ? (double)pubs / w : 0,
            w > 0 ? (double)rl_tot.measured / w : 0);
}

/* --- echo: every connection publishes to its own channel, waits for it */

static void echo_send(rl_thr *th, rl_conn *c)
{
    char ch[64];
    channel_echo(c, ch, sizeof(ch));
    c->outstanding++;
    rl_conn_publish(th, c, ch, rc_now_ns(), c->next_i++);
}

static int echo_active(void)
{
    int ph = rl_phase();
    return ph == RL_PH_WARMUP || ph == RL_PH_RUN;
}

static void echo_start(rl_thr *th, rl_conn *c)
{
    while (c->outstanding < rl_cfg_g.pipeline)
        echo_send(th, c);
}

static void echo_tick(rl_thr *th, uint64_t now)
{
    if (th->kicked || !echo_active())
        return;
    th->kicked = 1;
    for (uint32_t k = 0; k < th->cap; k++) {
        rl_conn *c = &th->conns[k];
        if (c->state == RL_ST_OPEN && c->role == RL_ROLE_STAY && (c->flags & RL_CF_SUBSCRIBED))
            echo_start(th, c);
    }
}

static void echo_subscribed(rl_thr *th, rl_conn *c, uint64_t now)
{
    if (th->kicked && echo_active() && c->role == RL_ROLE_STAY)
        echo_start(th, c);
}

static void echo_data(rl_thr *th, rl_conn *c, uint64_t t, uint64_t i, uint64_t now)
{
    if (c->role != RL_ROLE_STAY)
        return;
    RL_INC(th->st.received);
    if (c->outstanding)
        c->outstanding--;
    uint64_t s = __atomic_load_n(&rl_run_g.t_meas_start, __ATOMIC_ACQUIRE);
    uint64_t e = __atomic_load_n(&rl_run_g.t_meas_end, __ATOMIC_ACQUIRE);
    if (t >= s && now <= e) {
        RL_INC(th->st.round_trips);
        rl_hist_record(&th->hist, now > t ? (now - t) / 1000 : 0);
    }
    if (echo_active())
        echo_start(th, c);
}

static void echo_report(FILE *f, double window_s)
{
    fprintf(f, ",\"pipeline\":%u,\"payload\":%u,\"round_trips\":%llu,\"round_trips_per_s\":%.1f",
            rl_cfg_g.pipeline, rl_cfg_g.payload, (unsigned long long)rl_tot.round_trips,
            window_s > 0 ? (double)rl_tot.round_trips / window_s : 0);
}

/* --- presence: every connection asks presence_stats of --channel, --pipeline outstanding */

static void p_send(rl_thr *th, rl_conn *c)
{
    char msg[400];
    int n = strcmp(rl_cfg_g.scen->name, "events") == 0
                ? snprintf(msg, sizeof(msg),
                           "{\"type\":\"event\",\"id\":%llu,\"event\":\"%s\",\"data\":%u}",
                           (unsigned long long)rc_now_ns(), rl_cfg_g.channel, c->index)
                : snprintf(msg, sizeof(msg),
                           "{\"type\":\"presence_stats\",\"id\":%llu,\"channel\":\"%s\"}",
                           (unsigned long long)rc_now_ns(), rl_cfg_g.channel);
    c->outstanding++;
    rl_conn_send(th, c, RC_WS_OP_TEXT, msg, (size_t)n);
}

static void p_start(rl_thr *th, rl_conn *c)
{
    while (c->outstanding < rl_cfg_g.pipeline)
        p_send(th, c);
}

static void p_tick(rl_thr *th, uint64_t now)
{
    if (th->kicked || !echo_active())
        return;
    th->kicked = 1;
    for (uint32_t k = 0; k < th->cap; k++) {
        rl_conn *c = &th->conns[k];
        if (c->state == RL_ST_OPEN && c->role == RL_ROLE_STAY)
            p_start(th, c);
    }
}

static void p_open(rl_thr *th, rl_conn *c)
{
    if (c->role != RL_ROLE_STAY)
        return;
    c->flags |= RL_CF_SUBSCRIBED; /* ready: nothing to subscribe to */
    RL_INC(th->st.subscribed);
    if (th->kicked && echo_active())
        p_start(th, c);
}

/* The integer after "key": in p[0..n), or -1. */
static long long json_int_after(const char *p, size_t n, const char *key)
{
    size_t kl = strlen(key);
    for (size_t i = 0; i + kl < n; i++) {
        if (memcmp(p + i, key, kl) == 0) {
            long long v = 0;
            size_t j = i + kl;
            if (j >= n || p[j] < '0' || p[j] > '9')
                return -1;
            for (; j < n && p[j] >= '0' && p[j] <= '9'; j++)
                v = v * 10 + (p[j] - '0');
            return v;
        }
    }
    return -1;
}

static int p_text(rl_thr *th, rl_conn *c, const char *p, size_t n)
{
    static const char want[] = "{\"type\":\"presence_stats\"", ack[] = "{\"type\":\"event_ack\"";
    if ((n < sizeof(want) - 1 || memcmp(p, want, sizeof(want) - 1) != 0) &&
        (n < sizeof(ack) - 1 || memcmp(p, ack, sizeof(ack) - 1) != 0)) {
        if (!th->qerr[0] && n > 16 && memcmp(p, "{\"type\":\"error\"", 16) == 0)
            snprintf(th->qerr, sizeof(th->qerr), "%.*s", (int)RC_MIN(n, sizeof(th->qerr) - 1), p);
        return 0; /* counted as a server error */
    }
    uint64_t now = rc_now_ns();
    long long t = json_int_after(p, n, "\"id\":");
    long long conns = json_int_after(p, n, "\"connections\":");
    long long users = json_int_after(p, n, "\"users\":");
    if (c->outstanding)
        c->outstanding--;
    uint64_t s = __atomic_load_n(&rl_run_g.t_meas_start, __ATOMIC_ACQUIRE);
    uint64_t e = __atomic_load_n(&rl_run_g.t_meas_end, __ATOMIC_ACQUIRE);
    if (t > 0 && (uint64_t)t >= s && now <= e) {
        RL_INC(th->st.round_trips);
        rl_hist_record(&th->hist, now > (uint64_t)t ? (now - (uint64_t)t) / 1000 : 0);
    }
    RL_INC(th->st.p_answers);
    if (conns > 0)
        RL_ADD(th->st.p_conns_sum, (uint64_t)conns);
    if (users > 0)
        RL_ADD(th->st.p_users_sum, (uint64_t)users);
    if (echo_active())
        p_start(th, c);
    return 1;
}

static void p_report(FILE *f, double window_s)
{
    double a = rl_tot.p_answers ? (double)rl_tot.p_answers : 1;
    const char *err = "";
    for (uint32_t t = 0; t < rl_cfg_g.threads && !err[0]; t++)
        err = rl_thrs[t].qerr;
    char ee[300];
    ssize_t el = rc_json_escape(ee, sizeof(ee), err, strlen(err));
    fprintf(f, ",\"first_error\":%.*s", (int)RC_MAX(el, 0), ee);
    fprintf(f,
            ",\"pipeline\":%u,\"round_trips\":%llu,\"round_trips_per_s\":%.1f,"
            "\"answers\":%llu,\"mean_connections\":%.1f,\"mean_users\":%.1f",
            rl_cfg_g.pipeline, (unsigned long long)rl_tot.round_trips,
            window_s > 0 ? (double)rl_tot.round_trips / window_s : 0,
            (unsigned long long)rl_tot.p_answers, (double)rl_tot.p_conns_sum / a,
            (double)rl_tot.p_users_sum / a);
}

/* --- churn: the staying connections hold; others come and go at a rate */

static void churn_tick(rl_thr *th, uint64_t now)
{
    while (th->hold_n && th->hold_t[th->hold_head] <= now) {
        uint64_t h = th->hold[th->hold_head];
        th->hold_head = (th->hold_head + 1) % th->hold_cap;
        th->hold_n--;
        rl_conn *c = &th->conns[(uint32_t)h];
        if (c->gen == (uint16_t)(h >> 32) && c->role == RL_ROLE_CHURN)
            rl_conn_close(th, c);
    }
    if (rl_phase() != RL_PH_RUN) {
        th->churn_last = 0;
        return;
    }
    if (th->churn_last)
        th->churn_tokens +=
            (double)(now - th->churn_last) / 1e9 * rl_cfg_g.churn_rate / rl_cfg_g.threads;
    th->churn_last = now;
    while (th->churn_tokens >= 1) {
        th->churn_tokens -= 1;
        uint32_t index =
            rl_cfg_g.conns + (uint32_t)th->id + th->churn_next_index++ * rl_cfg_g.threads;
        if (!rl_conn_start(th, RL_ROLE_CHURN, index))
            RL_INC(th->st.churn_skipped);
    }
}

static void churn_subscribed(rl_thr *th, rl_conn *c, uint64_t now)
{
    if (c->role != RL_ROLE_CHURN)
        return;
    if (th->hold_n == th->hold_cap) {
        rl_conn_close(th, c);
        return;
    }
    uint32_t at = (th->hold_head + th->hold_n) % th->hold_cap;
    th->hold[at] = (uint64_t)c->gen << 32 | c->slot;
    th->hold_t[at] = now + (uint64_t)(rl_cfg_g.churn_hold * 1e9);
    th->hold_n++;
}

static void churn_report(FILE *f, double window_s)
{
    fprintf(f,
            ",\"churn_rate\":%g,\"churn_done\":%llu,\"churn_failed\":%llu,"
            "\"churn_skipped\":%llu,\"churn_per_s\":%.1f",
            rl_cfg_g.churn_rate, (unsigned long long)rl_tot.churn_done,
            (unsigned long long)rl_tot.churn_failed, (unsigned long long)rl_tot.churn_skipped,
            window_s > 0 ? (double)rl_tot.churn_done / window_s : 0);
}

/* --- queue: every connection joins --queue as its own user and waits */

static void q_open(rl_thr *th, rl_conn *c)
{
    char msg[400];
    if (c->role != RL_ROLE_STAY)
        return;
    int n = rl_queue_join_msg(msg, sizeof(msg), (uint64_t)c->index + 1, rl_cfg_g.queue);
    if (n > 0)
        rl_conn_send(th, c, RC_WS_OP_TEXT, msg, (size_t)n);
}

static uint64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* A waiter's position is its own count from the tick's shared frame and the
 * ticket its join gave it; one that goes up is counted (it never should). */
static void q_position(rl_thr *th, rl_conn *c, int64_t pos)
{
    if (c->next_i && (uint64_t)pos > c->next_i)
        RL_INC(th->st.q_regress);
    c->next_i = pos > 0 ? (uint64_t)pos : 0;
}

static int q_text(rl_thr *th, rl_conn *c, const char *p, size_t n)
{
    rl_qmsg m;
    switch (rl_queue_classify(p, n, &m)) {
    case RL_QM_JOINED:
        RL_INC(th->st.q_joined);
        c->ticket = m.ticket;
        q_position(th, c, m.position);
        if (!(c->flags & RL_CF_SUBSCRIBED) && c->role == RL_ROLE_STAY) {
            c->flags |= RL_CF_SUBSCRIBED;
            RL_INC(th->st.subscribed);
        }
        return 1;
    case RL_QM_TICK: {
        uint64_t now = wall_us(), t_us = (uint64_t)m.time * 1000u;
        uint64_t lat = now > t_us ? now - t_us : 0;
        if (!c->ticket)
            return 1; /* no ticket to count from: not a position (counted missing) */
        RL_INC(th->st.q_positions);
        q_position(th, c, rl_queue_position(c->ticket, m.head));
        if (m.time >= __atomic_load_n(&rl_run_g.wall_meas_start_ms, __ATOMIC_ACQUIRE) &&
            m.time <= __atomic_load_n(&rl_run_g.wall_meas_end_ms, __ATOMIC_ACQUIRE)) {
            RL_INC(th->st.q_measured);
            rl_hist_record(&th->hist, lat);
            rl_ticks_add(&th->ticks, m.time, lat);
        }
        return 1;
    }
    case RL_QM_ADMITTED: RL_INC(th->st.q_admitted); return 1;
    case RL_QM_LEFT: RL_INC(th->st.q_left); return 1;
    case RL_QM_ERROR:
        RL_INC(th->st.q_errors);
        if (!th->qerr[0])
            snprintf(th->qerr, sizeof(th->qerr), "%.*s", (int)RC_MIN(n, sizeof(th->qerr) - 1), p);
        return 0; /* counted as a server error too */
    default: return 0;
    }
}

static int q_drained(void)
{
    return 0; /* positions of the last measured tick arrive within --drain */
}

static void q_report(FILE *f, double window_s)
{
    rl_ticks all = {0};
    const char *err = "";
    for (uint32_t t = 0; t < rl_cfg_g.threads; t++) {
        rl_ticks_merge(&all, &rl_thrs[t].ticks);
        if (!err[0])
            err = rl_thrs[t].qerr;
    }
    uint64_t med, worst, mn, mx;
    uint32_t nt = rl_ticks_summary(&all, &med, &worst, &mn, &mx);
    char qe[160], ee[300];
    ssize_t ql = rc_json_escape(qe, sizeof(qe), rl_cfg_g.queue, strlen(rl_cfg_g.queue));
    ssize_t el = rc_json_escape(ee, sizeof(ee), err, strlen(err));
    fprintf(f,
            ",\"queue\":%.*s,\"joined\":%llu,\"positions\":%llu,\"positions_measured\":%llu,"
            "\"admitted\":%llu,\"left\":%llu,\"queue_errors\":%llu,\"first_error\":%.*s,"
            "\"position_regressions\":%llu,\"ticks_measured\":%u,"
            "\"tick_all_waiters_ms\":{\"median\":%.3f,\"worst\":%.3f},"
            "\"tick_positions\":{\"min\":%llu,\"max\":%llu},\"ticks\":[",
            (int)RC_MAX(ql, 0), qe, (unsigned long long)rl_tot.q_joined,
            (unsigned long long)rl_tot.q_positions, (unsigned long long)rl_tot.q_measured,
            (unsigned long long)rl_tot.q_admitted, (unsigned long long)rl_tot.q_left,
            (unsigned long long)rl_tot.q_errors, (int)RC_MAX(el, 0), ee,
            (unsigned long long)rl_tot.q_regress, nt, (double)med / 1000.0, (double)worst / 1000.0,
            (unsigned long long)mn, (unsigned long long)mx);
    for (uint32_t i = 0; i < all.n; i++)
        fprintf(f, "%s{\"time\":%lld,\"positions\":%llu,\"max_ms\":%.3f}", i ? "," : "",
                (long long)all.v[i].time, (unsigned long long)all.v[i].n,
                (double)all.v[i].max_us / 1000.0);
    fputc(']', f);
    rl_ticks_free(&all);
}

const rl_scen rl_scenarios[] = {
    {.name = "idle",
     .help = "open --conns, hold them for --duration, answer pings",
     .channel = channel_cfg},
    {.name = "broadcast",
     .help = "--conns subscribers of --channel (or --channels) and one publisher at --rate",
     .warmup_default = 1,
     .subscribes = 1,
     .publisher = 1,
     .channel = channel_bc,
     .tick = bc_tick,
     .on_data = bc_data,
     .drained = bc_drained,
     .report = bc_report},
    {.name = "echo",
     .help = "each connection publishes to its own echo:<n> channel, --pipeline outstanding",
     .warmup_default = 1,
     .subscribes = 1,
     .channel = channel_echo,
     .tick = echo_tick,
     .on_subscribed = echo_subscribed,
     .on_data = echo_data,
     .report = echo_report},
    {.name = "presence",
     .help = "each connection asks presence_stats of --channel, --pipeline outstanding",
     .warmup_default = 1,
     .joins = 1,
     .channel = channel_cfg,
     .tick = p_tick,
     .on_open = p_open,
     .on_text = p_text,
     .report = p_report},
    {.name = "events",
     .help = "each connection sends client events named --channel, --pipeline outstanding, "
             "and times their event_ack (the event is in Redis)",
     .warmup_default = 1,
     .joins = 1,
     .channel = channel_cfg,
     .tick = p_tick,
     .on_open = p_open,
     .on_text = p_text,
     .report = p_report},
    {.name = "churn",
     .help = "--conns stay subscribed; --churn-rate/s more connect, subscribe and close",
     .subscribes = 1,
     .channel = channel_cfg,
     .tick = churn_tick,
     .on_subscribed = churn_subscribed,
     .report = churn_report},
    {.name = "queue",
     .help = "each connection joins waiting room --queue as user --user-prefix<n> (token "
             "from --jwt-secret) and times each tick's queue.tick (its position)",
     .joins = 1,
     .channel = channel_cfg,
     .on_open = q_open,
     .on_text = q_text,
     .drained = q_drained,
     .report = q_report},
    {.name = NULL},
};

const rl_scen *rl_scen_find(const char *name)
{
    for (const rl_scen *s = rl_scenarios; s->name; s++)
        if (strcmp(s->name, name) == 0)
            return s;
    return NULL;
}
