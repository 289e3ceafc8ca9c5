/* ringload's core types: the run configuration, the shared run state, a
 * worker thread with its ring and connections, and the scenario table.
 *
 * Threads: main (CLI, phases, progress, report) and the workers (one io_uring
 * ring each, a share of the connections). A worker writes only its own
 * rl_thr; main reads the counters with relaxed loads (RL_GET) for progress
 * and reads everything after joining. rl_run is written by main (phase, clock
 * marks) and by worker 0's publisher (the measured index window); those
 * fields are atomics. */
#ifndef RL_H
#define RL_H

#include <liburing.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>

#include "net/uring.h"
#include "perf/ringload/codec.h"
#include "perf/ringload/hist.h"
#include "perf/ringload/payload.h"
#include "perf/ringload/queue.h"
#include "perf/ringload/url.h"

#define RL_INC(x)    __atomic_store_n(&(x), (x) + 1, __ATOMIC_RELAXED)
#define RL_ADD(x, v) __atomic_store_n(&(x), (x) + (v), __ATOMIC_RELAXED)
#define RL_DEC(x)    __atomic_store_n(&(x), (x)-1, __ATOMIC_RELAXED)
#define RL_GET(x)    __atomic_load_n(&(x), __ATOMIC_RELAXED)

struct rl_thr;
struct rl_conn;

/* A scenario is one entry in rl_scenarios: the engine (client.c) opens the
 * staying connections, subscribes them when `subscribes`, and calls the
 * hooks; everything scenario-specific lives behind them (scen.c). */
typedef struct rl_scen {
    const char *name;
    const char *help;
    double warmup_default; /* seconds of traffic before measuring */
    int subscribes;        /* staying connections subscribe on open */
    int publisher;         /* worker 0 opens one extra, unsubscribed connection */
    int joins;             /* settle waits for st.subscribed as for subscribers */
    /* channel a connection subscribes to */
    void (*channel)(const struct rl_conn *c, char *out, size_t cap);
    /* called every loop turn of every worker */
    void (*tick)(struct rl_thr *th, uint64_t now);
    /* a subscribe was acknowledged */
    void (*on_subscribed)(struct rl_thr *th, struct rl_conn *c, uint64_t now);
    /* a channel message with a stamped payload arrived */
    void (*on_data)(struct rl_thr *th, struct rl_conn *c, uint64_t t, uint64_t i, uint64_t now);
    /* a connection is open and ready (after the subscribe, if any, is sent) */
    void (*on_open)(struct rl_thr *th, struct rl_conn *c);
    /* every server text message first; non-zero: handled, skip the usual
     * classification */
    int (*on_text)(struct rl_thr *th, struct rl_conn *c, const char *p, size_t n);
    /* main: true when the drain can end early */
    int (*drained)(void);
    /* main: writes the scenario's JSON members (leading comma each) */
    void (*report)(FILE *f, double window_s);
} rl_scen;

extern const rl_scen rl_scenarios[];
const rl_scen *rl_scen_find(const char *name);

typedef struct rl_cfg {
    rl_dialect dialect;
    const rl_scen *scen;
    rl_endpoint ep;  /* --url: every connection but the publisher */
    rl_endpoint pub; /* --pub-url (a copy of ep without it): the publisher */
    int has_pub_url;
    uint32_t conns, threads, src_addrs, pipeline, payload;
    char channel[256];
    uint32_t channels; /* broadcast: --channels, 1 = --channel itself */
    double rate, duration, warmup, drain, ramp_rate, churn_rate, churn_hold, max_time;
    double hs_timeout;
    const char *token;
    const char *jwt_secret;  /* mint a token per connection: sub = user_prefix + index */
    const char *user_prefix; /* default "w" */
    char queue[128];         /* queue: the queue to join */
    const char *json_file;
    int progress, cpu;
    int acks;    /* ringcast dialect: publish with an id, so the server acknowledges */
    int deflate; /* offer permessage-deflate, inflate what comes compressed */
    int seats;   /* payloads are seat-map JSON (rl_data_build_seats), not 'x' padding */
} rl_cfg;

enum rl_phase { RL_PH_RAMP = 0, RL_PH_SETTLE, RL_PH_WARMUP, RL_PH_RUN, RL_PH_DRAIN, RL_PH_STOP };

typedef struct rl_run {
    int phase;
    uint64_t t_start;                 /* ns, process start of the run */
    uint64_t t_meas_start;            /* ns, set before phase RUN; UINT64_MAX before */
    uint64_t t_meas_end;              /* ns, set before phase DRAIN; UINT64_MAX before */
    uint64_t meas_from_i;             /* broadcast: first measured publish index */
    uint64_t meas_end_i;              /* broadcast: publishes when publishing stopped */
    uint64_t pub_t_first, pub_t_last; /* publisher's clock at those points */
    int pub_done;                     /* the publisher saw DRAIN and stopped */
    uint64_t subscribers;             /* subscribed connections when measuring began */
    int64_t wall_meas_start_ms;       /* wall clock (ms) of t_meas_start; INT64_MAX before */
    int64_t wall_meas_end_ms;         /* wall clock (ms) of t_meas_end; INT64_MAX before */
} rl_run;

extern rl_cfg rl_cfg_g;
extern rl_run rl_run_g;

static inline int rl_phase(void)
{
    return __atomic_load_n(&rl_run_g.phase, __ATOMIC_ACQUIRE);
}

#define RL_CODES 12
typedef struct rl_codecount {
    uint32_t code;
    uint64_t n;
} rl_codecount;

/* Counters of one worker. */
typedef struct rl_stats {
    uint64_t opened, failed, open_now, started;
    uint64_t first_open_ns, last_open_ns;
    uint64_t e_refused, e_timeout, e_reset, e_addr, e_status, e_proto, e_other;
    uint64_t closed_unexpected;
    uint64_t subscribed, server_errors;
    uint64_t received, measured, gaps, out_of_order;
    uint64_t published, acks, pub_open, pub_failed;
    uint64_t round_trips;
    uint64_t wire_bytes;               /* bytes received from the servers, handshakes included */
    uint64_t wire_bytes_meas;          /* of those, the ones received while measuring */
    uint64_t reads, reads_meas;        /* receives that brought bytes (a server's sends, roughly) */
    uint64_t deflate_conns;            /* connections whose upgrade negotiated permessage-deflate */
    uint64_t inflated, inflate_errors; /* compressed messages inflated, and failed */
    uint64_t p_answers, p_conns_sum, p_users_sum; /* presence: answers and what they said */
    uint64_t churn_done, churn_failed, churn_skipped;
    uint64_t q_joined, q_positions, q_measured, q_admitted, q_left, q_errors, q_regress;
    rl_codecount status[RL_CODES], close[RL_CODES];
} rl_stats;

enum rl_role { RL_ROLE_STAY = 0, RL_ROLE_PUB, RL_ROLE_CHURN };
enum rl_state {
    RL_ST_FREE = 0,
    RL_ST_CONNECTING,
    RL_ST_HANDSHAKE,
    RL_ST_OPEN,
    RL_ST_CLOSING,
    RL_ST_DEAD
};

#define RL_CF_SEND_BUSY   0x01
#define RL_CF_RECV_ARMED  0x02
#define RL_CF_CLOSE_SENT  0x04 /* we started the close handshake */
#define RL_CF_CLOSE_AFTER 0x08 /* close the socket when the send queue empties */
#define RL_CF_READY       0x10 /* may subscribe and publish (socketio: after "40") */
#define RL_CF_CLOSE_DONE  0x20 /* the close_direct completed */
#define RL_CF_SUBSCRIBED  0x40
#define RL_CF_GONE        0x80 /* the server closed it; already counted */

typedef struct rl_obuf {
    uint8_t *p;
    uint32_t len, cap, off;
} rl_obuf;

typedef struct rl_conn {
    uint32_t slot, index;
    uint16_t gen;
    uint8_t state, role, flags;
    uint32_t outstanding; /* echo: own messages in flight */
    uint64_t t_state;     /* ns of the last state change (timeouts) */
    uint64_t next_i;      /* broadcast: next expected index; echo: next to send;
                             queue: the last position (0: none yet) */
    int64_t ticket;       /* queue: from queue.joined (0: not joined yet) */
    uint8_t key[16];
    char *hs; /* response head so far, during the handshake */
    uint32_t hs_len;
    rl_wsdec dec;
    rl_obuf fly, pend; /* the send in flight and what queued behind it */
} rl_conn;

typedef struct rl_thr {
    int id;
    pthread_t tid;
    struct io_uring ring;
    rc_bufring br;
    rl_conn *conns;
    uint32_t cap, nfree, *freel;
    uint32_t target, first_index, inflight;
    uint64_t rng;
    double ramp_tokens, churn_tokens;
    uint64_t ramp_last, churn_last, next_sweep;
    rl_conn *cur;   /* the connection whose bytes are being decoded */
    uint64_t rx_ns; /* when the bytes being decoded were taken: every message in one receive
                     * arrived by then, and one clock read a receive is cheaper than one a
                     * message */
    struct rc_pmd_stream *inflater; /* --deflate: one for the worker, reset per message */
    rl_stats st;
    rl_hist hist;
    /* scenario state of this worker */
    rl_conn *pub;
    uint64_t pub_sent, pub_t0;
    int pub_measuring, kicked;
    uint64_t *hold; /* churners waiting to close: gen << 32 | slot, FIFO */
    uint64_t *hold_t;
    uint32_t hold_head, hold_n, hold_cap;
    uint32_t churn_next_index;
    rl_ticks ticks; /* queue: measured ticks as this worker's waiters saw them */
    char qerr[96];  /* queue: the first error message a waiter got */
    int ready;      /* set by the worker: 1 ring set up, -1 failed */
} rl_thr;

extern rl_thr *rl_thrs;

/* Totals over every worker, filled by main after the workers are joined
 * (and as snapshots for the progress line). */
extern rl_stats rl_tot;
extern rl_hist rl_tot_hist;

/* Sums the workers' counters into *out (relaxed loads: safe while they run). */
void rl_stats_sum(rl_stats *out);

/* Worker set-up (connection table of cap slots). Returns 0. The worker
 * makes its own ring in rl_thr_main and reports through ready. */
int rl_thr_init(rl_thr *th, int id, uint32_t target, uint32_t first_index, uint32_t cap);
void *rl_thr_main(void *arg);

/* Where a connection of the given role connects: the publisher to
 * rl_cfg_g.pub, everyone else to rl_cfg_g.ep. */
static inline const rl_endpoint *rl_endpoint_for(int role)
{
    return role == RL_ROLE_PUB ? &rl_cfg_g.pub : &rl_cfg_g.ep;
}

/* Starts a connection of the given role (socket, bind, install, connect).
 * Returns it, or NULL when no slot is free or the socket could not be made
 * (counted as a failure). */
rl_conn *rl_conn_start(rl_thr *th, int role, uint32_t index);

/* Queues one frame / text message on c (masked); sends when idle. */
void rl_conn_send(rl_thr *th, rl_conn *c, int opcode, const void *p, size_t n);
/* Starts the close handshake with code 1000. */
void rl_conn_close(rl_thr *th, rl_conn *c);
/* Subscribes c to its scenario channel. */
void rl_conn_subscribe(rl_thr *th, rl_conn *c);
/* Publishes the stamped payload (t, i) to channel. */
void rl_conn_publish(rl_thr *th, rl_conn *c, const char *channel, uint64_t t, uint64_t i);

/* Counts a code (HTTP status or close code) in a small table. */
void rl_code_count(rl_codecount *tab, uint32_t code);

#endif
