/* ringcast: a WebSocket edge engine. main() reads the configuration, sets up
 * the node (queues, relay, shards), and waits for a signal: SIGTERM or SIGINT
 * drains, a second one exits at once.
 *
 * Thread: the main thread (it starts the relay and the shards, then waits for signals). */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "engine/config.h"
#include "ws/jwk.h"
#include <sys/stat.h>
#include "base/log.h"
#include "engine/node.h"
#include "engine/relay.h"
#include "engine/loop.h"
#include "net/listen.h"

/* Connection slots per shard: the direct-descriptor table of one ring may
 * hold at most RLIMIT_NOFILE entries; a few process fds stay for listeners,
 * eventfds and rings. */
static uint32_t slots_per_shard(const rc_config *cfg)
{
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    uint64_t cap = rl.rlim_cur == RLIM_INFINITY ? 1u << 20 : rl.rlim_cur;
    uint64_t want =
        ((uint64_t)cfg->max_connections + (uint64_t)cfg->shards - 1) / (uint64_t)cfg->shards + 64;
    return (uint32_t)RC_MIN(cap, RC_MIN(want, (uint64_t)1 << 20));
}

/* SIGHUP, SIGUSR1, SIGUSR2: the node keeps serving. Nothing is reloaded
 * today: the log goes to stderr (no file to reopen), and secrets and
 * options are read once at start-up (restart the node, one at a time, to
 * change them). This is the place where a reload of files (keys, the
 * configuration) belongs. */
/* The public key files' last change (mtime and size), to see a new one. */
typedef struct key_files {
    struct timespec mtime[2];
    off_t size[2];
    rc_keyset **old; /* sets replaced by a reload: freed at exit */
    size_t n_old;
} key_files;

static int changed(const rc_config *cfg, key_files *kf)
{
    const char *paths[2] = {cfg->jwt_public_key, cfg->jwks};
    int any = 0;
    for (int i = 0; i < 2; i++) {
        struct stat st;
        if (!paths[i][0] || stat(paths[i], &st) != 0)
            continue;
        if (st.st_mtim.tv_sec != kf->mtime[i].tv_sec ||
            st.st_mtim.tv_nsec != kf->mtime[i].tv_nsec || st.st_size != kf->size[i])
            any = 1;
        kf->mtime[i] = st.st_mtim;
        kf->size[i] = st.st_size;
    }
    return any;
}

/* Reads the key files again; a set that cannot be read leaves the current
 * one in place (logged). */
static void reload_keys(rc_node *node, key_files *kf, const char *why)
{
    char err[256];
    rc_keyset *k = rc_keyset_load(node->cfg->jwt_public_key, node->cfg->jwks, err, sizeof(err));
    if (!k) {
        rc_warn("keys: %s: not reloaded, the previous keys stay: %s", why, err);
        return;
    }
    rc_keyset *prev = __atomic_exchange_n(&node->keys, k, __ATOMIC_ACQ_REL);
    if (prev) {
        kf->old = rc_realloc(kf->old, (kf->n_old + 1) * sizeof(*kf->old));
        kf->old[kf->n_old++] = prev;
    }
    rc_info("keys: %s: %zu public keys loaded", why, rc_keyset_count(k));
}

static void on_hup(rc_node *node, int sig, key_files *kf)
{
    if (sig == SIGHUP && (node->cfg->jwt_public_key[0] || node->cfg->jwks[0])) {
        changed(node->cfg, kf);
        reload_keys(node, kf, "SIGHUP");
        return;
    }
    rc_counter_inc(&node->signals_ignored);
    rc_info("signal %s: ignored (nothing to reload; SIGTERM drains the node)",
            sig == SIGHUP    ? "SIGHUP"
            : sig == SIGUSR1 ? "SIGUSR1"
                             : "SIGUSR2");
}

int main(int argc, char **argv)
{
    static rc_config cfg;
    char err[512];
    int r = rc_config_load(&cfg, argc, argv, err, sizeof(err));
    if (r == 1)
        return 0;
    if (r < 0) {
        fprintf(stderr, "ringcast: %s\n(see ringcast --help)\n", err);
        return 2;
    }
    rc_log_set_level(cfg.log_level);
    if (rc_listen_probe(cfg.listen_host, cfg.listen_port, err, sizeof(err)) < 0) {
        fprintf(stderr, "ringcast: %s\n", err);
        rc_config_free(&cfg);
        return 1;
    }

    /* Signals are taken by sigwait() here; every thread inherits the mask.
     * SIGHUP (a logrotate postrotate, `systemctl reload`, a closed terminal)
     * and SIGUSR1/SIGUSR2 must never stop a node: their default action is
     * to terminate, so they are taken here too and only logged and counted
     * (see on_hup). */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    sigaddset(&sigs, SIGUSR1);
    sigaddset(&sigs, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    static rc_node node;
    node.cfg = &cfg;
    key_files kf = {0};
    if (cfg.jwt_public_key[0] || cfg.jwks[0]) {
        char kerr[256];
        changed(&cfg, &kf);
        node.keys = rc_keyset_load(cfg.jwt_public_key, cfg.jwks, kerr, sizeof(kerr));
        if (!node.keys) {
            fprintf(stderr, "ringcast: %s\n", kerr);
            return 2;
        }
        rc_info("keys: %zu public keys loaded", rc_keyset_count(node.keys));
    }
    node.nshards = cfg.shards;
    node.started_ms = rc_wall_ms();
    node.conns_per_shard = slots_per_shard(&cfg);
    uint64_t capacity = (uint64_t)node.conns_per_shard * (uint64_t)cfg.shards;
    if (capacity < cfg.max_connections)
        rc_info(
            "capacity %llu connections: %d shards x %u direct descriptors (RLIMIT_NOFILE "
            "caps each ring's table); --shards %llu holds max_connections=%u",
            (unsigned long long)capacity, cfg.shards, node.conns_per_shard,
            (unsigned long long)(cfg.max_connections / RC_MAX(1u, node.conns_per_shard - 64) + 1),
            cfg.max_connections);
    /* rc_link holds cache-line aligned members: plain malloc is not enough. */
    size_t links_size =
        ((size_t)cfg.shards * sizeof(rc_link) + RC_CACHELINE - 1) & ~(size_t)(RC_CACHELINE - 1);
    node.links = aligned_alloc(RC_CACHELINE, links_size);
    rc_assert(node.links != NULL);
    memset(node.links, 0, links_size);
    if (rc_waker_init(&node.relay_waker) < 0) {
        fprintf(stderr, "ringcast: eventfd: %s\n", strerror(errno));
        return 1;
    }
    for (int i = 0; i < cfg.shards; i++) {
        rc_link *l = &node.links[i];
        if (rc_spsc_init(&l->to_relay, cfg.queue_size) < 0 ||
            rc_spsc_init(&l->to_shard, cfg.queue_size) < 0 || rc_waker_init(&l->shard_waker) < 0) {
            fprintf(stderr, "ringcast: queue set-up failed\n");
            return 1;
        }
    }
    node.relay = rc_relay_new(&node);
    node.shards = rc_calloc((size_t)cfg.shards, sizeof(rc_shard *));
    for (int i = 0; i < cfg.shards; i++)
        node.shards[i] = rc_shard_new(&node, i);
    if (rc_relay_start(node.relay) != 0) {
        fprintf(stderr, "ringcast: cannot start the relay thread\n");
        return 1;
    }
    for (int i = 0; i < cfg.shards; i++) {
        if (rc_shard_start(node.shards[i]) != 0) {
            fprintf(stderr, "ringcast: cannot start shard %d\n", i);
            return 1;
        }
    }
    rc_info("ringcast listening on ws://%s:%u%s shards=%d slots_per_shard=%u node=%s",
            cfg.listen_host, cfg.listen_port, cfg.ws_path, cfg.shards, node.conns_per_shard,
            cfg.node_id);

    int sig = 0;
    for (;;) {
        /* Once a second without a signal: a key file that changed is read again. */
        struct timespec second = {1, 0};
        sig = sigtimedwait(&sigs, NULL, &second);
        if (sig < 0) {
            if (changed(&cfg, &kf))
                reload_keys(&node, &kf, "a key file changed");
            continue;
        }
        if (sig == SIGTERM || sig == SIGINT)
            break;
        on_hup(&node, sig, &kf);
    }
    rc_info("signal %s: draining (deadline %u ms; a second signal exits now)",
            sig == SIGTERM ? "SIGTERM" : "SIGINT", cfg.drain_timeout_ms);
    rc_flag_set(&node.draining, 1);
    rc_waker_wake(&node.relay_waker);
    /* Keep the relay awake until it has told every shard. */
    for (;;) {
        int done = 1;
        for (int i = 0; i < cfg.shards; i++)
            done &= rc_flag_get(&node.shards[i]->exited);
        if (done)
            break;
        sigset_t pending;
        sigpending(&pending);
        if (sigismember(&pending, SIGTERM) || sigismember(&pending, SIGINT)) {
            rc_warn("second signal: exiting without finishing the drain");
            _exit(1);
        }
        rc_waker_wake(&node.relay_waker);
        usleep(10000);
    }
    for (int i = 0; i < cfg.shards; i++)
        rc_shard_join(node.shards[i]);
    rc_flag_set(&node.relay_stop, 1);
    rc_waker_wake(&node.relay_waker);
    rc_relay_join(node.relay);
    for (int i = 0; i < cfg.shards; i++) {
        rc_spsc_free(&node.links[i].to_relay);
        rc_spsc_free(&node.links[i].to_shard);
        rc_waker_free(&node.links[i].shard_waker);
    }
    rc_waker_free(&node.relay_waker);
    free(node.links);
    free(node.shards);
    for (size_t i = 0; i < kf.n_old; i++)
        rc_keyset_free(kf.old[i]);
    free(kf.old);
    rc_keyset_free(node.keys);
    rc_info("ringcast stopped");
    rc_config_free(&cfg);
    return 0;
}
