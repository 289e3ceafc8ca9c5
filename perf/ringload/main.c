/* ringload: the WebSocket load generator of ringcast's benchmark.
 *
 * main parses the command line, sizes the workers (each an io_uring ring
 * holding at most ~18000 connections, as a ring's file table is capped by
 * RLIMIT_NOFILE), drives the phases, prints progress and the one JSON result
 * line. See --help. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <sched.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "perf/ringload/rl.h"

#define PER_THREAD 18000

static void usage(FILE *f)
{
    fprintf(f,
            "usage: ringload [OPTION]...\n"
            "Opens WebSocket client connections to a server under test and measures it.\n"
            "Prints progress on stderr (when it is a terminal, or --progress) and one JSON\n"
            "result line on stdout. Exit: 0 run completed (the JSON tells losses), 1 fatal\n"
            "(no connection at all, publisher failed, --max-time hit), 2 usage error.\n\n"
            "  --url URL            ws://HOST:PORT/PATH, loopback only (default\n"
            "                       ws://127.0.0.1:8080/ws; socketio: path\n"
            "                       /socket.io/?EIO=4&transport=websocket)\n"
            "  --pub-url URL        broadcast: the publisher connects here instead of\n"
            "                       --url (another node of a cluster), same dialect\n"
            "                       (default: --url)\n"
            "  --dialect D          ringcast|socketio (default ringcast)\n"
            "  --scenario S         idle|broadcast|echo|rpc|churn|queue|presence|events\n"
            "                       (default broadcast)\n"
            "  --conns N            staying connections (default 1000)\n"
            "  --threads N          worker rings (default max(1, ceil(conns/%d)))\n"
            "  --src-addrs N        source addresses 127.0.0.2.. (default ceil(conns/25000))\n"
            "  --channel C          channel for broadcast/idle/churn (default bench:1)\n"
            "  --channels N         broadcast: N channels C:0 .. C:N-1 (C = --channel);\n"
            "                       connection k subscribes to C:(k mod N), publish i\n"
            "                       goes to C:(i mod N) (default 1: C itself)\n"
            "  --rate R             broadcast publishes per second (default 10)\n"
            "  --payload B          data payload bytes (default 64)\n"
            "  --duration S         measured seconds (default 10)\n"
            "  --warmup S           seconds of traffic before measuring (default 1 for\n"
            "                       broadcast and echo, 0 otherwise)\n"
            "  --drain S            broadcast: seconds to wait for stragglers (default 3)\n"
            "  --ramp-rate N        new connections per second, 0 = as fast as 1000 in\n"
            "                       flight allow (default 0)\n"
            "  --hs-timeout S       connect + handshake time limit (default 10)\n"
            "  --token T            send Authorization: Bearer T (default none)\n"
            "  --pipeline N         echo: messages outstanding per connection (default 1)\n"
            "  --acks               ringcast dialect: give each publish an id, so that the\n"
            "                       server acknowledges it (default: fire and forget, the\n"
            "                       same work as the peers, which never acknowledge)\n"
            "  --deflate            offer permessage-deflate; inflate what comes compressed\n"
            "                       (one inflater per worker, reset per message) and report\n"
            "                       the bytes received on the wire (default off)\n"
            "  --seats              payloads are realistic JSON (a ticket sale's seat-map\n"
            "                       update) instead of 'x' padding (default off)\n"
            "  --jwt-secret S       mint each connection's token (HS256, sub =\n"
            "                       --user-prefix + connection index; overrides --token)\n"
            "  --user-prefix P      user ids of --jwt-secret tokens (default w)\n"
            "  --queue Q            queue: the waiting room to join (default bench)\n"
            "  --churn-rate N       churn: connects per second (default 10)\n"
            "  --churn-hold S       churn: seconds a churner stays subscribed (default 0.1)\n"
            "  --json FILE          also write the result line to FILE\n"
            "  --progress           progress line every second even when not a terminal\n"
            "  --quiet              no progress line\n"
            "  --cpu N              pin every thread to CPU N (default: no pinning)\n"
            "  --max-time S         hard stop (default warmup+duration+drain+conns/1000+60)\n"
            "  --help               this text\n",
            PER_THREAD);
}

#define SIO_PATH "/socket.io/?EIO=4&transport=websocket"

/* Returns 0, or 2 after printing why url is refused. */
static int set_endpoint(rl_endpoint *ep, const char *flag, const char *url, int socketio)
{
    int r = rl_parse_url(url, socketio ? SIO_PATH : NULL, ep);
    if (r == RL_URL_NOT_LOOPBACK)
        fprintf(stderr, "ringload: %s %s is not a loopback address: refusing\n", flag, url);
    else if (r != 0)
        fprintf(stderr, "ringload: bad %s %s (want ws://LOOPBACK-HOST:PORT/PATH)\n", flag, url);
    return r ? 2 : 0;
}

static int num(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi))
        return -1;
    *out = v;
    return 0;
}

/* Returns 0, or 2 after printing a usage error. */
static int parse_args(int argc, char **argv)
{
    enum {
        O_URL = 256,
        O_PUB_URL,
        O_DIALECT,
        O_SCEN,
        O_CONNS,
        O_THREADS,
        O_SRC,
        O_CHANNEL,
        O_CHANNELS,
        O_RATE,
        O_PAYLOAD,
        O_DURATION,
        O_WARMUP,
        O_DRAIN,
        O_RAMP,
        O_HST,
        O_TOKEN,
        O_PIPELINE,
        O_ACKS,
        O_DEFLATE,
        O_SEATS,
        O_CHURN,
        O_HOLD,
        O_JWT,
        O_UPREFIX,
        O_QUEUE,
        O_JSON,
        O_PROGRESS,
        O_QUIET,
        O_CPU,
        O_MAXT,
        O_HELP
    };
    static const struct option opts[] = {{"url", 1, 0, O_URL},
                                         {"pub-url", 1, 0, O_PUB_URL},
                                         {"dialect", 1, 0, O_DIALECT},
                                         {"scenario", 1, 0, O_SCEN},
                                         {"conns", 1, 0, O_CONNS},
                                         {"threads", 1, 0, O_THREADS},
                                         {"src-addrs", 1, 0, O_SRC},
                                         {"channel", 1, 0, O_CHANNEL},
                                         {"channels", 1, 0, O_CHANNELS},
                                         {"rate", 1, 0, O_RATE},
                                         {"payload", 1, 0, O_PAYLOAD},
                                         {"duration", 1, 0, O_DURATION},
                                         {"warmup", 1, 0, O_WARMUP},
                                         {"drain", 1, 0, O_DRAIN},
                                         {"ramp-rate", 1, 0, O_RAMP},
                                         {"hs-timeout", 1, 0, O_HST},
                                         {"token", 1, 0, O_TOKEN},
                                         {"pipeline", 1, 0, O_PIPELINE},
                                         {"acks", 0, 0, O_ACKS},
                                         {"deflate", 0, 0, O_DEFLATE},
                                         {"seats", 0, 0, O_SEATS},
                                         {"churn-rate", 1, 0, O_CHURN},
                                         {"churn-hold", 1, 0, O_HOLD},
                                         {"jwt-secret", 1, 0, O_JWT},
                                         {"user-prefix", 1, 0, O_UPREFIX},
                                         {"queue", 1, 0, O_QUEUE},
                                         {"json", 1, 0, O_JSON},
                                         {"progress", 0, 0, O_PROGRESS},
                                         {"quiet", 0, 0, O_QUIET},
                                         {"cpu", 1, 0, O_CPU},
                                         {"max-time", 1, 0, O_MAXT},
                                         {"help", 0, 0, O_HELP},
                                         {0, 0, 0, 0}};
    rl_cfg *c = &rl_cfg_g;
    const char *url = NULL, *pub_url = NULL;
    double v, threads = 0, src = 0, warmup = -1, maxt = 0;
    int progress = -1;
    c->dialect = RL_DIALECT_RINGCAST;
    c->scen = rl_scen_find("broadcast");
    c->conns = 1000;
    snprintf(c->channel, sizeof(c->channel), "bench:1");
    c->channels = 1;
    c->rate = 10;
    c->payload = 64;
    c->duration = 10;
    c->drain = 3;
    c->hs_timeout = 10;
    c->pipeline = 1;
    c->churn_rate = 10;
    c->churn_hold = 0.1;
    c->cpu = -1;
    c->user_prefix = "w";
    snprintf(c->queue, sizeof(c->queue), "bench");
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        const char *a = optarg;
        int bad = 0;
        switch (o) {
        case O_URL: url = a; break;
        case O_PUB_URL: pub_url = a; break;
        case O_DIALECT:
            if (strcmp(a, "ringcast") == 0)
                c->dialect = RL_DIALECT_RINGCAST;
            else if (strcmp(a, "socketio") == 0)
                c->dialect = RL_DIALECT_SOCKETIO;
            else
                bad = 1;
            break;
        case O_SCEN: bad = !(c->scen = rl_scen_find(a)); break;
        case O_CONNS:
            bad = num(a, 0, 1e7, &v);
            c->conns = (uint32_t)v;
            break;
        case O_THREADS: bad = num(a, 1, 256, &threads); break;
        case O_SRC: bad = num(a, 1, 250, &src); break;
        case O_CHANNEL:
            bad = strlen(a) == 0 || strlen(a) >= 200;
            snprintf(c->channel, sizeof(c->channel), "%s", a);
            break;
        case O_RATE: bad = num(a, 0.001, 1e7, &c->rate); break;
        case O_CHANNELS:
            bad = num(a, 1, 65536, &v);
            c->channels = (uint32_t)v;
            break;
        case O_PAYLOAD:
            bad = num(a, 0, 65536, &v);
            c->payload = (uint32_t)v;
            break;
        case O_DURATION: bad = num(a, 0.001, 1e6, &c->duration); break;
        case O_WARMUP: bad = num(a, 0, 1e6, &warmup); break;
        case O_DRAIN: bad = num(a, 0, 1e6, &c->drain); break;
        case O_RAMP: bad = num(a, 0, 1e7, &c->ramp_rate); break;
        case O_HST: bad = num(a, 0.01, 1e4, &c->hs_timeout); break;
        case O_TOKEN: c->token = a; break;
        case O_PIPELINE:
            bad = num(a, 1, 1e6, &v);
            c->pipeline = (uint32_t)v;
            break;
        case O_ACKS: c->acks = 1; break;
        case O_DEFLATE: c->deflate = 1; break;
        case O_SEATS: c->seats = 1; break;
        case O_CHURN: bad = num(a, 0, 1e6, &c->churn_rate); break;
        case O_HOLD: bad = num(a, 0, 1e4, &c->churn_hold); break;
        case O_JWT:
            bad = strlen(a) == 0;
            c->jwt_secret = a;
            break;
        case O_UPREFIX:
            bad = !rl_user_prefix_ok(a);
            c->user_prefix = a;
            break;
        case O_QUEUE:
            bad = strlen(a) == 0 || strlen(a) > 64;
            snprintf(c->queue, sizeof(c->queue), "%s", a);
            break;
        case O_JSON: c->json_file = a; break;
        case O_PROGRESS: progress = 1; break;
        case O_QUIET: progress = 0; break;
        case O_CPU:
            bad = num(a, 0, 4095, &v);
            c->cpu = (int)v;
            break;
        case O_MAXT: bad = num(a, 0.1, 1e7, &maxt); break;
        case O_HELP: usage(stdout); exit(0);
        default: usage(stderr); return 2;
        }
        if (bad) {
            fprintf(stderr, "ringload: bad value for --%s: %s\n", opts[o - O_URL].name, a);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "ringload: unexpected argument %s\n", argv[optind]);
        return 2;
    }
    int sio = c->dialect == RL_DIALECT_SOCKETIO;
    if (!url)
        url = sio ? "ws://127.0.0.1:8080" SIO_PATH : "ws://127.0.0.1:8080/ws";
    if (set_endpoint(&c->ep, "--url", url, sio) != 0)
        return 2;
    c->pub = c->ep;
    if (pub_url) {
        if (!c->scen->publisher) {
            fprintf(stderr, "ringload: --pub-url needs a scenario with a publisher (broadcast)\n");
            return 2;
        }
        if (set_endpoint(&c->pub, "--pub-url", pub_url, sio) != 0)
            return 2;
        c->has_pub_url = 1;
    }
    if (c->conns == 0 && c->scen->subscribes) {
        fprintf(stderr, "ringload: --conns must be at least 1 for %s\n", c->scen->name);
        return 2;
    }
    c->warmup = warmup >= 0 ? warmup : c->scen->warmup_default;
    c->threads =
        threads > 0 ? (uint32_t)threads : RC_MAX(1u, (c->conns + PER_THREAD - 1) / PER_THREAD);
    if (c->threads > RC_MAX(1u, c->conns))
        c->threads = RC_MAX(1u, c->conns);
    c->src_addrs = src > 0 ? (uint32_t)src : RC_MAX(1u, (c->conns + 24999) / 25000);
    c->max_time = maxt > 0
                      ? maxt
                      : c->warmup + c->duration + c->drain + c->conns / 1000.0 + c->hs_timeout + 60;
    c->progress = progress >= 0 ? progress : isatty(2);
    return 0;
}

static void hist_sum(rl_hist *h)
{
    rl_hist_init(h);
    for (uint32_t t = 0; t < rl_cfg_g.threads; t++)
        rl_hist_merge(h, &rl_thrs[t].hist);
}

static const char *phase_name(int ph)
{
    static const char *n[] = {"ramp", "settle", "warmup", "run", "drain", "stop"};
    return n[ph];
}

static void progress(uint64_t now, uint64_t *last_rx, uint64_t *last_t)
{
    rl_stats s;
    rl_stats_sum(&s);
    rl_hist h;
    hist_sum(&h);
    double dt = (double)(now - *last_t) / 1e9;
    double rx = dt > 0 ? (double)(s.received - *last_rx) / dt : 0;
    *last_rx = s.received;
    *last_t = now;
    fprintf(stderr,
            "[%7.1fs] %-6s conns %llu/%u fail %llu closed %llu | rx %.0f/s | p99 %lluus | "
            "lost %llu ooo %llu\n",
            (double)(now - rl_run_g.t_start) / 1e9, phase_name(rl_phase()),
            (unsigned long long)s.open_now, rl_cfg_g.conns, (unsigned long long)s.failed,
            (unsigned long long)s.closed_unexpected, rx,
            (unsigned long long)rl_hist_percentile(&h, 0.99), (unsigned long long)s.gaps,
            (unsigned long long)s.out_of_order);
}

static void codes_json(FILE *f, const rl_codecount *tab)
{
    fputc('{', f);
    for (int i = 0, first = 1; i < RL_CODES; i++)
        if (tab[i].n) {
            fprintf(f, "%s\"%u\":%llu", first ? "" : ",", tab[i].code,
                    (unsigned long long)tab[i].n);
            first = 0;
        }
    fputc('}', f);
}

static void set_phase(int ph)
{
    __atomic_store_n(&rl_run_g.phase, ph, __ATOMIC_RELEASE);
}

int main(int argc, char **argv)
{
    int r = parse_args(argc, argv);
    if (r)
        return r;
    rl_cfg *c = &rl_cfg_g;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    getrlimit(RLIMIT_NOFILE, &rl);
    if (c->cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(c->cpu, &set);
        if (sched_setaffinity(0, sizeof(set), &set) != 0) {
            fprintf(stderr, "ringload: cannot pin to CPU %d: %s\n", c->cpu, strerror(errno));
            return 2;
        }
    }
    uint32_t churn_extra =
        c->scen->tick && strcmp(c->scen->name, "churn") == 0
            ? (uint32_t)RC_MIN(8192.0, c->churn_rate / c->threads * (c->churn_hold + 2) + 64)
            : 0;
    rl_run_g.t_meas_start = rl_run_g.t_meas_end = UINT64_MAX;
    rl_run_g.meas_from_i = UINT64_MAX;
    rl_run_g.wall_meas_start_ms = rl_run_g.wall_meas_end_ms = INT64_MAX;
    rl_run_g.t_start = rc_now_ns();
    rl_thrs = rc_calloc(c->threads, sizeof(rl_thr));
    uint32_t first = 0;
    for (uint32_t t = 0; t < c->threads; t++) {
        uint32_t share = c->conns / c->threads + (t < c->conns % c->threads);
        uint32_t target = share + (t == 0 && c->scen->publisher);
        uint32_t cap = target + churn_extra + 8;
        if (cap + 16 > rl.rlim_cur) {
            fprintf(stderr,
                    "ringload: %u connections per ring exceed RLIMIT_NOFILE %llu: "
                    "use more --threads\n",
                    cap, (unsigned long long)rl.rlim_cur);
            return 2;
        }
        if (rl_thr_init(&rl_thrs[t], (int)t, target, first, cap) != 0)
            return 1;
        first += share;
    }
    for (uint32_t t = 0; t < c->threads; t++)
        pthread_create(&rl_thrs[t].tid, NULL, rl_thr_main, &rl_thrs[t]);
    for (uint32_t t = 0; t < c->threads; t++) {
        int rd;
        while ((rd = __atomic_load_n(&rl_thrs[t].ready, __ATOMIC_ACQUIRE)) == 0)
            usleep(1000);
        if (rd < 0) {
            set_phase(RL_PH_STOP);
            for (uint32_t k = 0; k < c->threads; k++)
                pthread_join(rl_thrs[k].tid, NULL);
            return 1;
        }
    }

    const char *fatal = NULL, *stopped_by = "error";
    uint64_t t0 = rl_run_g.t_start, next_prog = t0 + 1000000000ull, last_rx = 0, last_t = t0;
    uint64_t settle_start = 0, warm_end = 0, run_end = 0, drain_end = 0;
    uint64_t held = 0;
    int held_set = 0;
    for (;;) {
        struct timespec ts = {0, 20000000};
        nanosleep(&ts, NULL);
        uint64_t now = rc_now_ns();
        if (c->progress && now >= next_prog) {
            progress(now, &last_rx, &last_t);
            next_prog += 1000000000ull;
        }
        if ((double)(now - t0) / 1e9 > c->max_time) {
            stopped_by = "max_time";
            fatal = "hard stop at --max-time";
            break;
        }
        rl_stats s;
        rl_stats_sum(&s);
        int ph = rl_phase();
        if (ph == RL_PH_RAMP) {
            int pub_done = !c->scen->publisher || s.pub_open || s.pub_failed;
            if (s.opened + s.failed >= c->conns && pub_done) {
                if (s.opened == 0 && c->conns > 0) {
                    fatal = "no connection could be opened";
                    break;
                }
                if (c->scen->publisher && !s.pub_open) {
                    fatal = "the publisher connection failed";
                    break;
                }
                settle_start = now;
                set_phase(RL_PH_SETTLE);
            }
        } else if (ph == RL_PH_SETTLE) {
            if (!(c->scen->subscribes || c->scen->joins) || s.subscribed >= s.open_now ||
                now - settle_start > 10000000000ull) {
                rl_run_g.subscribers = s.subscribed;
                warm_end = now + (uint64_t)(c->warmup * 1e9);
                set_phase(RL_PH_WARMUP);
            }
        } else if (ph == RL_PH_WARMUP) {
            if (now >= warm_end) {
                __atomic_store_n(&rl_run_g.wall_meas_start_ms, rc_wall_ms(), __ATOMIC_RELEASE);
                __atomic_store_n(&rl_run_g.t_meas_start, now, __ATOMIC_RELEASE);
                run_end = now + (uint64_t)(c->duration * 1e9);
                set_phase(RL_PH_RUN);
            }
        } else if (ph == RL_PH_RUN) {
            if (now >= run_end) {
                __atomic_store_n(&rl_run_g.wall_meas_end_ms, rc_wall_ms(), __ATOMIC_RELEASE);
                __atomic_store_n(&rl_run_g.t_meas_end, now, __ATOMIC_RELEASE);
                held = s.open_now;
                held_set = 1;
                drain_end = now + (uint64_t)((c->scen->drained ? c->drain : 0) * 1e9);
                set_phase(RL_PH_DRAIN);
            }
        } else if (ph == RL_PH_DRAIN) {
            if (now >= drain_end || (c->scen->drained && c->scen->drained()))
                break;
        }
    }
    uint64_t t_stop = rc_now_ns();
    set_phase(RL_PH_STOP);
    for (uint32_t t = 0; t < c->threads; t++)
        pthread_join(rl_thrs[t].tid, NULL);
    uint64_t t_end = rc_now_ns();
    rl_stats_sum(&rl_tot);
    hist_sum(&rl_tot_hist);
    if (!held_set) /* stopped before the end of the run */
        held = rl_tot.open_now;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double user = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6;
    double sys = (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    double wall = (double)(t_end - t0) / 1e9;
    double window = rl_run_g.t_meas_end != UINT64_MAX && rl_run_g.t_meas_start != UINT64_MAX
                        ? (double)(rl_run_g.t_meas_end - rl_run_g.t_meas_start) / 1e9
                        : 0;
    /* from the first connect to the last 101 of the staying connections */
    double ramp_s = rl_tot.last_open_ns > t0 ? (double)(rl_tot.last_open_ns - t0) / 1e9 : 0;
    char *line = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&line, &len);
    fprintf(f,
            "{\"tool\":\"ringload\",\"scenario\":\"%s\",\"dialect\":\"%s\",\"url\":\"%s\","
            "\"complete\":%s,\"stopped_by\":\"%s\"",
            c->scen->name, c->dialect == RL_DIALECT_SOCKETIO ? "socketio" : "ringcast", c->ep.url,
            fatal ? "false" : "true", fatal ? stopped_by : "completed");
    if (c->has_pub_url)
        fprintf(f, ",\"pub_url\":\"%s\"", c->pub.url);
    if (fatal)
        fprintf(f, ",\"error\":\"%s\"", fatal);
    fprintf(f,
            ",\"conns\":%u,\"threads\":%u,\"src_addrs\":%u,\"duration_s\":%g,\"warmup_s\":%g,"
            "\"measured_s\":%.3f,\"wall_s\":%.3f",
            c->conns, c->threads, c->src_addrs, c->duration, c->warmup, window, wall);
    fprintf(f,
            ",\"opened\":%llu,\"failed\":%llu,\"held\":%llu,\"unexpected_closes\":%llu,"
            "\"close_codes\":",
            (unsigned long long)rl_tot.opened, (unsigned long long)rl_tot.failed,
            (unsigned long long)held, (unsigned long long)rl_tot.closed_unexpected);
    codes_json(f, rl_tot.close);
    fprintf(f,
            ",\"ramp_s\":%.3f,\"handshakes_per_s\":%.1f,\"errors\":{\"refused\":%llu,"
            "\"timeout\":%llu,\"reset\":%llu,\"addr\":%llu,\"status\":%llu,\"protocol\":%llu,"
            "\"other\":%llu,\"status_codes\":",
            ramp_s, ramp_s > 0 ? (double)rl_tot.opened / ramp_s : 0,
            (unsigned long long)rl_tot.e_refused, (unsigned long long)rl_tot.e_timeout,
            (unsigned long long)rl_tot.e_reset, (unsigned long long)rl_tot.e_addr,
            (unsigned long long)rl_tot.e_status, (unsigned long long)rl_tot.e_proto,
            (unsigned long long)rl_tot.e_other);
    codes_json(f, rl_tot.status);
    fprintf(f, "},\"subscribed\":%llu,\"server_errors\":%llu,\"messages_received\":%llu",
            (unsigned long long)rl_tot.subscribed, (unsigned long long)rl_tot.server_errors,
            (unsigned long long)rl_tot.received);
    fprintf(f,
            ",\"wire\":{\"bytes\":%llu,\"bytes_measured\":%llu,\"reads\":%llu,"
            "\"reads_measured\":%llu,\"deflate\":%s,"
            "\"deflate_conns\":%llu,\"inflated\":%llu,\"inflate_errors\":%llu}",
            (unsigned long long)rl_tot.wire_bytes, (unsigned long long)rl_tot.wire_bytes_meas,
            (unsigned long long)rl_tot.reads, (unsigned long long)rl_tot.reads_meas,
            c->deflate ? "true" : "false", (unsigned long long)rl_tot.deflate_conns,
            (unsigned long long)rl_tot.inflated, (unsigned long long)rl_tot.inflate_errors);
    if (c->scen->report)
        c->scen->report(f, window);
    const rl_hist *h = &rl_tot_hist;
    fprintf(f,
            ",\"latency_us\":{\"count\":%llu,\"p50\":%llu,\"p90\":%llu,\"p99\":%llu,"
            "\"p999\":%llu,\"max\":%llu,\"mean\":%.1f}",
            (unsigned long long)h->count, (unsigned long long)rl_hist_percentile(h, 0.5),
            (unsigned long long)rl_hist_percentile(h, 0.9),
            (unsigned long long)rl_hist_percentile(h, 0.99),
            (unsigned long long)rl_hist_percentile(h, 0.999), (unsigned long long)h->max,
            rl_hist_mean(h));
    fprintf(f,
            ",\"cpu\":{\"user_s\":%.3f,\"sys_s\":%.3f,\"utilisation\":%.3f,\"pinned\":%d},"
            "\"shutdown_s\":%.3f}\n",
            user, sys, wall > 0 ? (user + sys) / wall : 0, c->cpu, (double)(t_end - t_stop) / 1e9);
    fclose(f);
    fputs(line, stdout);
    fflush(stdout);
    if (c->json_file) {
        FILE *jf = fopen(c->json_file, "w");
        if (!jf || fputs(line, jf) < 0 || fclose(jf) != 0)
            fprintf(stderr, "ringload: cannot write %s: %s\n", c->json_file, strerror(errno));
    }
    if (fatal)
        fprintf(stderr, "ringload: %s\n", fatal);
    free(line);
    return fatal ? 1 : 0;
}
