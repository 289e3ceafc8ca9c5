/* GET /metrics: every counter of the node in Prometheus text format. The
 * renderer reads the counters of every feature (shards, relay, channels,
 * events, the waiting room, Socket.IO), so it lives above them all, beside
 * the endpoint that serves it; the counters themselves are declared in
 * engine/metrics.h, where the features that count them can reach. */
#ifndef RC_HTTP_PROMETHEUS_H
#define RC_HTTP_PROMETHEUS_H

#include <stddef.h>

struct rc_node;

/* Renders every metric of the node into a new malloc'd buffer; sets *len.
 * Any thread: it reads the counters with relaxed loads. */
char *rc_metrics_render(struct rc_node *node, size_t *len);

#endif
