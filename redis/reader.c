/* The reader of Redis replies: hiredis's, with a bound on arrays.
 *
 * Thread: any (the relay's reads replies; the fuzzers call it too). */
#include "redis/reader.h"

#include <stdlib.h>

/* hiredis 0.14 allocates an array as soon as its header announces the
 * count, so "*555555553\r\n" alone would ask for 4.4 GB. No reply ringcast
 * reads has more than a few thousand elements: a larger count fails the
 * reader (an out-of-memory error), which drops the connection. */
#define MAX_ARRAY_ELEMENTS (1 << 20)

static redisReplyObjectFunctions limited_fns;
static void *(*default_array)(const redisReadTask *, int);

static void *limited_array(const redisReadTask *task, int elements)
{
    if (elements > MAX_ARRAY_ELEMENTS)
        return NULL;
    return default_array(task, elements);
}

redisReader *rc_redis_reader_new(void)
{
    /* The default functions are static inside hiredis: borrow them from a
     * default reader (the same on every call, so the race of two threads
     * setting them is harmless; only the relay thread does). */
    if (!default_array) {
        redisReader *d = redisReaderCreate();
        if (!d)
            abort();
        limited_fns = *d->fn;
        default_array = limited_fns.createArray;
        limited_fns.createArray = limited_array;
        redisReaderFree(d);
    }
    redisReader *rd = redisReaderCreateWithFunctions(&limited_fns);
    if (!rd)
        abort();
    return rd;
}
