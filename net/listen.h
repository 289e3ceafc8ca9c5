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

/* Whether host:port is free: binds a socket WITHOUT SO_REUSEPORT (which
 * fails while anyone listens there, even a process that set SO_REUSEPORT:
 * a stale ringcast would otherwise share the port and take half of the new
 * connections) and closes it. Returns 0 when free, or -1 with a message in
 * err. A process that binds the port between this probe and the shards'
 * own binds (a few microseconds later) is not seen. */
int rc_listen_probe(const char *host, uint16_t port, char *err, size_t errlen);

#endif
