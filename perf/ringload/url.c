/* ws:// URL parsing for ringload's --url and --pub-url. */
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "perf/ringload/url.h"

/* The whole port text must be digits: atoi would take "80x" as 80. */
static int parse_port(const char *s)
{
    if (!*s || strlen(s) > 5)
        return -1;
    int v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        v = v * 10 + (*s - '0');
    }
    return v >= 1 && v <= 65535 ? v : -1;
}

int rl_parse_url(const char *url, const char *default_path, rl_endpoint *out)
{
    memset(out, 0, sizeof(*out));
    if (strncmp(url, "ws://", 5) != 0 || strlen(url) >= sizeof(out->url))
        return RL_URL_BAD;
    const char *h = url + 5, *slash = strchr(h, '/');
    size_t hl = slash ? (size_t)(slash - h) : strlen(h);
    if (hl == 0 || hl >= sizeof(out->host))
        return RL_URL_BAD;
    memcpy(out->host, h, hl);
    out->host[hl] = 0;
    const char *path = slash && strcmp(slash, "/") != 0 ? slash : NULL;
    if (!path)
        path = default_path ? default_path : "/";
    if (strlen(path) >= sizeof(out->path))
        return RL_URL_BAD;
    snprintf(out->path, sizeof(out->path), "%s", path);
    char name[300];
    snprintf(name, sizeof(name), "%s", out->host);
    char *colon = strrchr(name, ':');
    int port = 80;
    if (colon) {
        *colon = 0;
        port = parse_port(colon + 1);
    }
    if (port < 0 || !name[0])
        return RL_URL_BAD;
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *ai;
    if (getaddrinfo(name, NULL, &hints, &ai) != 0)
        return RL_URL_BAD;
    out->addr = *(struct sockaddr_in *)ai->ai_addr;
    freeaddrinfo(ai);
    out->addr.sin_port = htons((uint16_t)port);
    if ((ntohl(out->addr.sin_addr.s_addr) >> 24) != 127)
        return RL_URL_NOT_LOOPBACK;
    snprintf(out->url, sizeof(out->url), "%s", url);
    return 0;
}
