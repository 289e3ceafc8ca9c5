/* redis-server processes for the unit tests that need a real one: started
 * on a free port of 127.0.0.1 (or a unix socket) without persistence,
 * stopped by PID. Included by test_redis_client.c and test_redis_bridge.c. */
#ifndef RC_TEST_REDIS_SERVER_H
#define RC_TEST_REDIS_SERVER_H

#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static inline int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof(a);
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &l) < 0) {
        close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

static inline int can_connect(int tcp_port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)tcp_port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    return ok;
}

static inline void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static inline pid_t start_redis(int tcp_port, const char *password)
{
    char p[16];
    snprintf(p, sizeof(p), "%d", tcp_port);
    pid_t child = fork();
    if (child == 0) {
        if (!freopen("/dev/null", "w", stdout))
            _exit(127);
        const char *argv[16] = {"redis-server", "--port",      p,   "--bind",
                                "127.0.0.1",    "--save",      "",  "--appendonly",
                                "no",           "--daemonize", "no"};
        int n = 11;
        if (password) {
            argv[n++] = "--requirepass";
            argv[n++] = password;
        }
        argv[n] = NULL;
        execvp("redis-server", (char *const *)argv);
        _exit(127);
    }
    for (int i = 0; i < 500; i++) {
        if (can_connect(tcp_port))
            return child;
        int status;
        if (waitpid(child, &status, WNOHANG) == child)
            return -1;
        sleep_ms(10);
    }
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    return -1;
}

/* A TCP-less server listening on a unix socket only. */
static inline pid_t start_redis_unix(const char *path)
{
    pid_t child = fork();
    if (child == 0) {
        if (!freopen("/dev/null", "w", stdout))
            _exit(127);
        execlp("redis-server", "redis-server", "--port", "0", "--unixsocket", path,
               "--unixsocketperm", "700", "--save", "", "--appendonly", "no", "--daemonize", "no",
               (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 500; i++) {
        if (access(path, F_OK) == 0)
            return child;
        int status;
        if (waitpid(child, &status, WNOHANG) == child)
            return -1;
        sleep_ms(10);
    }
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    return -1;
}

static inline void stop_redis(pid_t child)
{
    if (child > 0) {
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
    }
}

static inline int have_redis(void)
{
    return system("command -v redis-server >/dev/null 2>&1") == 0;
}

#endif
