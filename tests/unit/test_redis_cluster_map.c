/* Redis Cluster's hash slots and slot map (redis/cluster.c), held to a real
 * cluster-enabled redis-server: its CLUSTER KEYSLOT for thousands of keys
 * (hash tags included) and its CLUSTER SLOTS for slots we assign. Replies
 * that are not well formed are refused. Skipped (with a message) only when
 * redis-server is not installed. */
#include <hiredis/hiredis.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <string.h>

#include "base/common.h"
#include "redis/cluster.h"
#include "tests/unit/redis_server.h"
#include "tests/unit/unit.h"

static char dir[64]; /* /tmp/rc-cluster-PID */

/* Whether TCP port p of 127.0.0.1 can be bound now. */
static int port_free(int p)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)p),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    return ok;
}

/* A port for a cluster node: free, and its cluster bus port (10000 above,
 * so at most 55535) free too. */
static int cluster_port(void)
{
    for (int i = 0; i < 1000; i++) {
        int p = free_port();
        if (p > 0 && p <= 55535 && port_free(p + 10000))
            return p;
    }
    return -1;
}

/* One redis-server with --cluster-enabled yes on a free port. */
static pid_t start_cluster_node(int port)
{
    char p[16], conf[64];
    snprintf(p, sizeof(p), "%d", port);
    snprintf(conf, sizeof(conf), "nodes-%d.conf", port);
    pid_t child = fork();
    if (child == 0) {
        char log[96];
        snprintf(log, sizeof(log), "%s/redis-%d.log", dir, port);
        if (!freopen(log, "w", stdout) || !freopen(log, "a", stderr))
            _exit(127);
        const char *argv[] = {"redis-server",
                              "--port",
                              p,
                              "--bind",
                              "127.0.0.1",
                              "--save",
                              "",
                              "--appendonly",
                              "no",
                              "--cluster-enabled",
                              "yes",
                              "--cluster-config-file",
                              conf,
                              "--cluster-announce-ip",
                              "127.0.0.1",
                              "--dir",
                              dir,
                              NULL};
        execvp("redis-server", (char *const *)argv);
        _exit(127);
    }
    for (int i = 0; i < 500; i++) {
        if (can_connect(port))
            return child;
        sleep_ms(10);
    }
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    return -1;
}

static void test_spec_vector(void)
{
    /* The cluster specification's CRC16 check value: "123456789" -> 0x31C3. */
    CHECK_EQ_INT(rc_cluster_slot("123456789", 9), 0x31C3 & 16383);
    /* Keys with the same tag share a slot: the tag alone is hashed. */
    CHECK_EQ_INT(rc_cluster_slot("{user1000}.following", 20), rc_cluster_slot("user1000", 8));
    CHECK_EQ_INT(rc_cluster_slot("rc:h:{chat:1}:s", 15), rc_cluster_slot("rc:h:{chat:1}:m", 15));
}

static void test_against_redis(redisContext *rc)
{
    /* Random keys over an alphabet rich in braces, and the tag edge cases. */
    static const char alpha[] = "ab{}{}:_x";
    static const char *const edge[] = {"{}",
                                       "{}{x}",
                                       "a{}b",
                                       "x{y",
                                       "}{",
                                       "{{x}}",
                                       "{x}{y}",
                                       "a{b}c{d}",
                                       "{",
                                       "}",
                                       "{user1000}.following"};
    int mismatches = 0;
    char key[32];
    srand(12345);
    for (int i = 0; i < 3000 + (int)RC_ARRAY_LEN(edge); i++) {
        size_t n;
        if (i < (int)RC_ARRAY_LEN(edge)) {
            n = strlen(edge[i]);
            memcpy(key, edge[i], n);
        } else {
            n = 1 + (size_t)rand() % 20;
            for (size_t k = 0; k < n; k++)
                key[k] = alpha[rand() % (int)(sizeof(alpha) - 1)];
        }
        redisReply *r = redisCommand(rc, "CLUSTER KEYSLOT %b", key, n);
        if (!r || r->type != REDIS_REPLY_INTEGER) {
            CHECK(!"CLUSTER KEYSLOT answered");
            freeReplyObject(r);
            return;
        }
        if (r->integer != rc_cluster_slot(key, n) && mismatches++ < 5)
            fprintf(stderr, "  slot of '%.*s': redis %lld, ours %u\n", (int)n, key, r->integer,
                    rc_cluster_slot(key, n));
        freeReplyObject(r);
    }
    CHECK_EQ_INT(mismatches, 0);
}

static void test_slots_reply(redisContext *rc, int port)
{
    redisReply *a = redisCommand(rc, "CLUSTER ADDSLOTSRANGE 0 99 200 16383");
    CHECK(a && a->type == REDIS_REPLY_STATUS);
    freeReplyObject(a);
    redisReply *r = NULL;
    /* The node takes a moment to list the slots it owns. */
    for (int i = 0; i < 100; i++) {
        freeReplyObject(r);
        r = redisCommand(rc, "CLUSTER SLOTS");
        if (r && r->type == REDIS_REPLY_ARRAY && r->elements > 0)
            break;
        if (!r) /* the connection broke (the node reconfiguring): again */
            redisReconnect(rc);
        sleep_ms(20);
    }
    static rc_cluster_map m;
    const char *why = NULL;
    CHECK_EQ_INT(rc_cluster_map_read(r, &m, &why), 0);
    if (why)
        fprintf(stderr, "  CLUSTER SLOTS not read: %s (reply type %d: %s; %s)\n", why,
                r ? r->type : -1, r && r->type == REDIS_REPLY_ERROR ? r->str : "", rc->errstr);
    CHECK_EQ_INT(m.n_primaries, 1);
    CHECK_EQ_INT(m.covered, 16384 - 100);
    const rc_cluster_node *o = rc_cluster_owner(&m, 0);
    CHECK(o && o->port == port && strcmp(o->host, "127.0.0.1") == 0 && strlen(o->id) == 40);
    CHECK(rc_cluster_owner(&m, 99) == o && rc_cluster_owner(&m, 200) == o &&
          rc_cluster_owner(&m, 16383) == o);
    CHECK(rc_cluster_owner(&m, 100) == NULL && rc_cluster_owner(&m, 199) == NULL);
    freeReplyObject(r);
}

/* A reply from RESP text. */
static redisReply *parse(const char *resp)
{
    redisReader *rd = redisReaderCreate();
    redisReaderFeed(rd, resp, strlen(resp));
    void *out = NULL;
    if (redisReaderGetReply(rd, &out) != REDIS_OK)
        out = NULL;
    redisReaderFree(rd);
    return out;
}

static void test_bad_replies(void)
{
    static const char *const bad[] = {
        ":1\r\n",                                              /* not an array */
        "*1\r\n:1\r\n",                                        /* an entry not an array */
        "*1\r\n*3\r\n:5\r\n:2\r\n*2\r\n$1\r\nh\r\n:1\r\n",     /* start after end */
        "*1\r\n*3\r\n:0\r\n:16384\r\n*2\r\n$1\r\nh\r\n:1\r\n", /* past the last slot */
        "*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n$1\r\nh\r\n:0\r\n",     /* port 0 */
        "*1\r\n*3\r\n:0\r\n:1\r\n*1\r\n$1\r\nh\r\n",           /* no port */
        "*1\r\n*2\r\n:0\r\n:1\r\n",                            /* no primary */
        "*2\r\n*3\r\n:0\r\n:9\r\n*2\r\n$1\r\na\r\n:1\r\n"
        "*3\r\n:5\r\n:20\r\n*2\r\n$1\r\nb\r\n:1\r\n", /* a slot owned twice */
    };
    static rc_cluster_map m;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        redisReply *r = parse(bad[i]);
        const char *why = NULL;
        CHECK(r != NULL);
        CHECK_EQ_INT(rc_cluster_map_read(r, &m, &why), -1);
        CHECK(why && *why);
        freeReplyObject(r);
    }
    /* Two primaries, a replica each: the replicas are not owners. */
    redisReply *r =
        parse("*2\r\n*4\r\n:0\r\n:8191\r\n*2\r\n$1\r\na\r\n:1\r\n*2\r\n$1\r\nc\r\n:3\r\n"
              "*4\r\n:8192\r\n:16383\r\n*2\r\n$1\r\nb\r\n:2\r\n*2\r\n$1\r\nd\r\n:4\r\n");
    const char *why = NULL;
    CHECK_EQ_INT(rc_cluster_map_read(r, &m, &why), 0);
    CHECK_EQ_INT(m.n_primaries, 2);
    CHECK_EQ_INT(m.covered, 16384);
    CHECK(rc_cluster_owner(&m, 8191)->port == 1 && rc_cluster_owner(&m, 8192)->port == 2);
    freeReplyObject(r);
}

int main(void)
{
    RUN(test_spec_vector);
    RUN(test_bad_replies);
    int port = 0;
    snprintf(dir, sizeof(dir), "/tmp/rc-cluster-%d", (int)getpid());
    if (mkdir(dir, 0700) != 0) {
        CHECK(!"a temporary directory");
        return UNIT_DONE();
    }
    if (system("command -v redis-server >/dev/null 2>&1") != 0) {
        printf("redis-server not found: the cluster parts of test_redis_cluster_map skipped\n");
        return UNIT_DONE();
    }
    pid_t pid = -1;
    for (int tries = 0; tries < 3 && pid < 0; tries++) /* a free port another may take first */
        pid = start_cluster_node(port = cluster_port());
    CHECK(pid > 0);
    if (pid < 0)
        return UNIT_DONE();
    redisContext *rc = redisConnect("127.0.0.1", port);
    CHECK(rc && !rc->err);
    if (rc && !rc->err) {
        test_against_redis(rc);
        test_slots_reply(rc, port);
    }
    redisFree(rc);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    char f[128];
    snprintf(f, sizeof(f), "%s/nodes-%d.conf", dir, port);
    unlink(f);
    snprintf(f, sizeof(f), "%s/redis-%d.log", dir, port);
    unlink(f);
    rmdir(dir);
    return UNIT_DONE();
}
