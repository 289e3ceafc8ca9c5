/* Redis Cluster's map of hash slots (issue 16, first piece): which slot a
 * key or channel lives in, and which primary owns each slot as CLUSTER
 * SLOTS tells it. The relay's cluster links are built on it.
 *
 * A key's slot is CRC16 (the XMODEM variant: polynomial 0x1021, initial
 * value 0) of the key, modulo 16384; when the key holds a "{" followed,
 * somewhere after it, by a "}" with at least one byte between them, only
 * those bytes (between the first "{" and the first "}" after it) are
 * hashed, so keys that share such a tag share a slot.
 *
 * Thread: any (pure functions on the caller's map). */
#ifndef RC_REDIS_CLUSTER_H
#define RC_REDIS_CLUSTER_H

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>

#define RC_CLUSTER_SLOTS         16384
#define RC_CLUSTER_MAX_PRIMARIES 64
#define RC_CLUSTER_NO_OWNER      0xffff

/* The slot of key[0..n). */
uint16_t rc_cluster_slot(const char *key, size_t n);

typedef struct rc_cluster_node {
    char host[64]; /* as the cluster names it (an IP address, or a host name) */
    int port;
    char id[41];       /* the node's id (40 hex digits), or empty */
    uint32_t replicas; /* replicas listed with its slots (the most of any of its ranges) */
} rc_cluster_node;

typedef struct rc_cluster_map {
    uint16_t owner[RC_CLUSTER_SLOTS]; /* index in primaries, or RC_CLUSTER_NO_OWNER */
    rc_cluster_node primaries[RC_CLUSTER_MAX_PRIMARIES];
    uint32_t n_primaries;
    uint32_t covered; /* slots with an owner */
} rc_cluster_map;

/* Fills m from a CLUSTER SLOTS reply: each entry [start, end, primary,
 * replicas...], the primary [host, port, id, ...]. 0, or -1 with *why (a
 * reply that is not one, a slot out of range, more primaries than the map
 * holds): m is then undefined. Slots no entry names have no owner. */
int rc_cluster_map_read(const redisReply *r, rc_cluster_map *m, const char **why);

/* The primary that owns slot, or NULL. */
const rc_cluster_node *rc_cluster_owner(const rc_cluster_map *m, uint16_t slot);

#endif
