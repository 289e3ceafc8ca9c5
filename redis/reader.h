/* Reading Redis replies (redis/reader.c). */
#ifndef RC_REDIS_READER_H
#define RC_REDIS_READER_H

#include <hiredis/hiredis.h>

/* A hiredis reader like redisReaderCreate's, except that an array header
 * announcing more than 2^20 elements is an error (hiredis 0.14 would
 * allocate the array at once). Never NULL (aborts on OOM). */
redisReader *rc_redis_reader_new(void);

#endif
