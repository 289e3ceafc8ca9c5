/* sendfloor: what this machine's kernel alone costs to put one small message
 * on each of N loopback TCP connections, with no WebSocket, no JSON and no
 * server logic. It answers the question a fan-out benchmark on one machine
 * cannot: how much of "time until every client has the message" is the
 * kernel's, whatever the server does.
 *
 *   build/sendfloor [--conns N] [--procs P] [--bytes B] [--rounds R] [--uring 0|1]
 *
 * P pairs of processes share the N connections (each process stays under
 * RLIMIT_NOFILE): a sender that send()s B bytes on each of its connections
 * when told to, as fast as it can, and a reader that drains its connections
 * with epoll and says when all of a round's bytes are in. The parent starts
 * every sender at once, R times, 300 ms apart (after one round it does not
 * count, which lets connections whose handshake the full accept queue
 * delayed catch up), and prints per round the time
 * from the start until the last reader has everything, plus the CPU the
 * senders and readers used per message. On loopback the sender's send() also
 * runs the receiving half of TCP (socket lookup, queueing, waking the
 * reader), so the sender CPU per message is the floor of any server's cost
 * per delivery on this machine. --uring 1 (the default) sends as ringcast's
 * shards do: one io_uring SEND a connection, submitted in batches, so no
 * system call per message; --uring 0 calls send() for each. Exit status 0 when every round
 * delivered every byte. */
#include <arpa/inet.h>
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_PROCS 16

static double now_s(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
    perror(what);
    exit(2);
}

static void put(int fd, const void *p, size_t n)
{
    if (write(fd, p, n) != (ssize_t)n)
        die("control write");
}

static void get(int fd, void *p, size_t n)
{
    if (read(fd, p, n) != (ssize_t)n)
        die("control read");
}

/* The reader: accepts n connections on lfd, then for each round drains them
 * and writes to ctl the monotonic time at which the round's n*bytes were in,
 * and its CPU seconds for that round. */
static void reader(int lfd, int ctl, int n, int bytes, int rounds)
{
    int ep = epoll_create1(0);
    if (ep < 0)
        die("epoll_create1");
    for (int i = 0; i < n; i++) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
        if (fd < 0)
            die("accept");
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
            die("epoll_ctl");
    }
    close(lfd);
    char ok = 1;
    put(ctl, &ok, 1);
    static struct epoll_event evs[1024];
    static char buf[65536];
    long long want = (long long)n * bytes, have = 0;
    for (int r = 0; r < rounds; r++) {
        double cpu0 = now_s(CLOCK_PROCESS_CPUTIME_ID);
        while (have < want) {
            int k = epoll_wait(ep, evs, 1024, 30000);
            if (k <= 0)
                die("reader: nothing for 30 s");
            for (int i = 0; i < k; i++) {
                for (;;) {
                    ssize_t got = read(evs[i].data.fd, buf, sizeof buf);
                    if (got > 0) {
                        have += got;
                        continue;
                    }
                    if (got == 0 || (errno != EAGAIN && errno != EINTR))
                        die("reader: connection lost");
                    if (errno == EAGAIN)
                        break;
                }
            }
        }
        double t[2] = {now_s(CLOCK_MONOTONIC), now_s(CLOCK_PROCESS_CPUTIME_ID) - cpu0};
        have -= want;
        put(ctl, t, sizeof t);
    }
}

/* Sends msg on each of fds[0..n) through ring, QD SQEs a submission, and
 * reaps every completion; dies on a short or failed send. */
#define QD 4096
static void uring_send_all(struct io_uring *ring, const int *fds, int n, const char *msg, int bytes)
{
    int queued = 0, done = 0;
    while (done < n) {
        while (queued < n && queued - done < QD) {
            struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
            if (!sqe)
                break;
            io_uring_prep_send(sqe, fds[queued], msg, (size_t)bytes, MSG_DONTWAIT);
            queued++;
        }
        if (io_uring_submit_and_wait(ring, 1) < 0)
            die("io_uring_submit_and_wait");
        struct io_uring_cqe *cqe;
        unsigned head, seen = 0;
        io_uring_for_each_cqe (ring, head, cqe) {
            if (cqe->res != bytes) {
                fprintf(stderr, "sender: send gave %d\n", cqe->res);
                exit(2);
            }
            seen++;
        }
        io_uring_cq_advance(ring, seen);
        done += (int)seen;
    }
}

/* The sender: connects n sockets to port, then for each round waits for a
 * byte on ctl, sends bytes on every socket and reports its CPU seconds. */
static int use_uring = 1;
static void sender(int port, int ctl, int n, int bytes, int rounds)
{
    struct io_uring ring;
    if (use_uring && io_uring_queue_init(QD, &ring, 0) < 0)
        die("io_uring_queue_init");
    int *fds = malloc(sizeof(int) * (size_t)n);
    char *msg = malloc((size_t)bytes);
    if (!fds || !msg)
        die("malloc");
    memset(msg, 'x', (size_t)bytes);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int i = 0; i < n; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        int one = 1;
        if (fds[i] < 0 || setsockopt(fds[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0 ||
            connect(fds[i], (struct sockaddr *)&sa, sizeof sa) < 0)
            die("sender connect");
    }
    char ok = 1;
    put(ctl, &ok, 1);
    for (int r = 0; r < rounds; r++) {
        char go;
        get(ctl, &go, 1);
        double cpu0 = now_s(CLOCK_PROCESS_CPUTIME_ID);
        if (use_uring)
            uring_send_all(&ring, fds, n, msg, bytes);
        else
            for (int i = 0; i < n; i++)
                if (send(fds[i], msg, (size_t)bytes, MSG_DONTWAIT) != bytes)
                    die("sender send");
        double cpu = now_s(CLOCK_PROCESS_CPUTIME_ID) - cpu0;
        put(ctl, &cpu, sizeof cpu);
    }
    char quit;
    get(ctl, &quit, 1); /* the readers have everything: now the sockets may close */
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    int conns = 100000, procs = 6, bytes = 112, rounds = 10;
    for (int i = 1; i + 1 < argc; i += 2) {
        int v = atoi(argv[i + 1]);
        if (!strcmp(argv[i], "--conns"))
            conns = v;
        else if (!strcmp(argv[i], "--procs"))
            procs = v;
        else if (!strcmp(argv[i], "--bytes"))
            bytes = v;
        else if (!strcmp(argv[i], "--rounds"))
            rounds = v;
        else if (!strcmp(argv[i], "--uring"))
            use_uring = v != 0;
        else {
            fprintf(stderr,
                    "usage: %s [--conns N] [--procs P] [--bytes B] [--rounds R] [--uring 0|1]\n",
                    argv[0]);
            return 2;
        }
    }
    if (conns < 1 || procs < 1 || procs > MAX_PROCS || bytes < 1 || bytes > 4096 || rounds < 1) {
        fprintf(stderr, "sendfloor: conns >= 1, procs 1..%d, bytes 1..4096, rounds >= 1\n",
                MAX_PROCS);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    int sctl[MAX_PROCS], rctl[MAX_PROCS], share[MAX_PROCS];
    pid_t kids[2 * MAX_PROCS];
    int nk = 0;
    for (int p = 0; p < procs; p++) {
        share[p] = conns / procs + (p < conns % procs);
        int lfd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET};
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t sl = sizeof sa;
        if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(lfd, 4096) < 0 ||
            getsockname(lfd, (struct sockaddr *)&sa, &sl) < 0)
            die("listen");
        int rp[2], sp[2];
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, rp) < 0 ||
            socketpair(AF_UNIX, SOCK_STREAM, 0, sp) < 0)
            die("socketpair");
        if ((kids[nk++] = fork()) == 0) {
            close(rp[0]);
            close(sp[0]);
            close(sp[1]);
            reader(lfd, rp[1], share[p], bytes, rounds + 1);
            _exit(0);
        }
        if ((kids[nk++] = fork()) == 0) {
            close(lfd);
            close(rp[0]);
            close(rp[1]);
            close(sp[0]);
            sender(ntohs(sa.sin_port), sp[1], share[p], bytes, rounds + 1);
            _exit(0);
        }
        close(lfd);
        close(rp[1]);
        close(sp[1]);
        rctl[p] = rp[0];
        sctl[p] = sp[0];
        char ok;
        get(sctl[p], &ok, 1); /* connected ... */
        get(rctl[p], &ok, 1); /* ... and accepted */
    }
    printf("sendfloor: %d connections over %d sender/reader pairs, %d B a message, %d rounds, %s\n",
           conns, procs, bytes, rounds, use_uring ? "io_uring sends" : "send() calls");
    double *wall = calloc((size_t)rounds, sizeof *wall);
    double scpu_all = 0, rcpu_all = 0;
    for (int r = -1; r < rounds; r++) {
        usleep(300000);
        double t0 = now_s(CLOCK_MONOTONIC), last = t0, scpu = 0, rcpu = 0;
        char go = 1;
        for (int p = 0; p < procs; p++)
            put(sctl[p], &go, 1);
        for (int p = 0; p < procs; p++) {
            double c, t[2];
            get(sctl[p], &c, sizeof c);
            get(rctl[p], t, sizeof t);
            scpu += c;
            rcpu += t[1];
            if (t[0] > last)
                last = t[0];
        }
        if (r < 0)
            continue; /* the warm-up round */
        wall[r] = (last - t0) * 1e3;
        scpu_all += scpu;
        rcpu_all += rcpu;
        printf("round %d: all %d delivered in %.1f ms; sender CPU %.2f us, reader CPU %.2f us a "
               "message\n",
               r + 1, conns, wall[r], scpu / conns * 1e6, rcpu / conns * 1e6);
    }
    qsort(wall, (size_t)rounds, sizeof *wall, cmp);
    printf("median %.1f ms, worst %.1f ms until every connection had its message; "
           "sender CPU %.2f us and reader CPU %.2f us a message\n",
           wall[rounds / 2], wall[rounds - 1], scpu_all / ((double)conns * rounds) * 1e6,
           rcpu_all / ((double)conns * rounds) * 1e6);
    char quit = 0;
    for (int p = 0; p < procs; p++)
        put(sctl[p], &quit, 1);
    int bad = 0;
    for (int k = 0; k < nk; k++) {
        int st;
        if (waitpid(kids[k], &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            bad = 1;
    }
    return bad ? 1 : 0;
}
