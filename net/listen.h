/* Listening sockets. */
#ifndef RC_LISTEN_H
#define RC_LISTEN_H

#include <stddef.h>
#include <stdint.h>

/* A TCP listener on host:port with SO_REUSEPORT, so that every shard binds
 * its own and the kernel spreads connections across them. host is an IPv4 or
 * IPv6 literal, or a name resolved once here. Returns the fd, or -1 with a
 * message in err. */
int rc_listen_socket(const char *host, uint16_t port, char *err, size_t errlen);

#endif
