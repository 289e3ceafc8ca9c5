/* The room index of one shard: channel name -> the shard's members of it.
 *
 * Shard-local, single-threaded. Members are connection ids (uint32) in a dense
 * array, so a fan-out walks contiguous memory. Removal is swap-with-last in
 * O(1): the caller keeps, per membership, the member's position, and
 * rc_room_leave tells which member moved into the freed position so that the
 * caller can update that member's record. */
#ifndef RC_ROOM_H
#define RC_ROOM_H

#include "base/common.h"

typedef struct rc_room {
    uint32_t n; /* members */
    uint32_t cap;
    uint32_t *members; /* members[0..n) */
    uint32_t hash;
    uint32_t flags; /* free for the owner's use (relay handshake state) */
    uint32_t held;  /* free for the owner's use (shard: members not live yet) */
    uint64_t seq;   /* free for the owner's use (last sequence number) */
    void *udata;    /* free for the shard's use */
    /* Socket.IO recovery (sio/recovery.c): the channel's position as this
     * shard last framed it or heard it (epoch as a number, 0: none) and
     * the frame clock's reading for the room's last frame. */
    uint64_t top, top_epoch, top_tick;
    struct rc_room *next; /* hash chain: private to room.c */
    uint16_t name_len;
    char name[]; /* NUL-terminated */
} rc_room;

typedef struct rc_rooms rc_rooms;

/* A new, empty index. Can't fail (allocation failure aborts). */
rc_rooms *rc_rooms_new(void);

/* Frees the index and every room in it. */
void rc_rooms_free(rc_rooms *rs);

/* The room for name[0..len), or NULL. Leaves the index unchanged. */
rc_room *rc_rooms_get(rc_rooms *rs, const char *name, size_t len);

/* The room for name[0..len), created empty (flags 0, held 0, seq 0, udata NULL) if absent.
 * len must be <= UINT16_MAX (name_len's range; rc_assert otherwise). */
rc_room *rc_rooms_add(rc_rooms *rs, const char *name, size_t len);

/* Removes room r from the index and frees it. r must be in rs. */
void rc_rooms_del(rc_rooms *rs, rc_room *r);

/* Number of rooms in the index. */
size_t rc_rooms_count(const rc_rooms *rs);

/* Calls fn(r, arg) for every room (fn must not add or delete rooms). */
void rc_rooms_each(rc_rooms *rs, void (*fn)(rc_room *r, void *arg), void *arg);

/* Appends member to r and returns its position. The caller guarantees that
 * member is not already in r (it keeps per-connection membership) and is not
 * UINT32_MAX (rc_room_leave's "nothing moved"). */
uint32_t rc_room_join(rc_room *r, uint32_t member);

/* Removes the member at position pos. Returns the member that was moved into
 * pos to fill the gap, or UINT32_MAX when pos was the last position (nothing
 * moved). pos must be < r->n. */
uint32_t rc_room_leave(rc_room *r, uint32_t pos);

#endif
