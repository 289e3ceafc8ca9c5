/* Thread: the main thread, at start-up. */
#include "net/listen.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* A TCP socket bound to host:port (SO_REUSEADDR always; SO_REUSEPORT when
 * reuseport). Returns it, or -1 with err set. */
static int bound_socket(const char *host, uint16_t port, int reuseport, char *err, size_t errlen)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char portstr[8];
    snprintf(portstr, sizeof(portstr), "%u", port);
    int e = getaddrinfo(host[0] ? host : NULL, portstr, &hints, &res);
    if (e != 0) {
        snprintf(err, errlen, "cannot resolve listen address %s: %s", host, gai_strerror(e));
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        freeaddrinfo(res);
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (reuseport)
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    if (bind(fd, res->ai_addr, res->ai_addrlen) < 0) {
        if (errno == EADDRINUSE)
            snprintf(err, errlen,
                     "cannot listen on %s:%u: the port is in use by another process (another "
                     "ringcast still running?)",
                     host, port);
        else
            snprintf(err, errlen, "cannot listen on %s:%u: %s", host, port, strerror(errno));
        close(fd);
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    return fd;
}

int rc_listen_probe(const char *host, uint16_t port, char *err, size_t errlen)
{
    /* Without SO_REUSEPORT the bind fails while anyone listens on the port,
     * SO_REUSEPORT or not (SO_REUSEADDR only lets it past TIME_WAIT). */
    int fd = bound_socket(host, port, 0, err, errlen);
    if (fd < 0)
        return -1;
    close(fd);
    return 0;
}

int rc_listen_socket(const char *host, uint16_t port, char *err, size_t errlen)
{
    int fd = bound_socket(host, port, 1, err, errlen);
    if (fd < 0)
        return -1;
    int one = 1;
    /* Accepted sockets inherit it: small frames go out at once. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (listen(fd, 4096) < 0) {
        snprintf(err, errlen, "listen: %s", strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}
