/* ringload's target addresses: a ws:// URL parsed into what a connection
 * needs (the address to connect to, and the Host and path of the request). */
#ifndef RL_URL_H
#define RL_URL_H

#include <netinet/in.h>

typedef struct rl_endpoint {
    char url[1024];  /* the URL as given */
    char host[300];  /* host[:port] as written in the URL, for the Host header */
    char path[1024]; /* request target, "/" at least */
    struct sockaddr_in addr;
} rl_endpoint;

#define RL_URL_BAD          (-1)
#define RL_URL_NOT_LOOPBACK (-2)

/* Parses ws://HOST[:PORT][/PATH] (port 80 when absent) into *out. When the
 * URL has no path or the path is "/", the path is default_path if that is
 * non-NULL, else "/". HOST is resolved to IPv4 and must be in 127.0.0.0/8:
 * the load generator never aims at another machine. Returns 0;
 * RL_URL_BAD when the URL is malformed (other scheme, empty or too long
 * host, port outside 1..65535, path too long) or HOST does not resolve;
 * RL_URL_NOT_LOOPBACK when it resolves outside 127/8. On error *out is
 * unspecified. */
int rl_parse_url(const char *url, const char *default_path, rl_endpoint *out);

#endif
