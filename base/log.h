/* One line per event, with a level, to stderr:
 *   2026-11-21T17:04:05.123Z INFO  shard=0 listening addr=127.0.0.1:8080
 * Any thread may log; each line is written with one write() so lines from
 * different threads do not interleave. Secrets are never passed here. */
#ifndef RC_LOG_H
#define RC_LOG_H

#include "base/common.h"

enum rc_log_level { RC_LOG_DEBUG = 0, RC_LOG_INFO, RC_LOG_WARN, RC_LOG_ERROR };

void rc_log_set_level(int level);
int rc_log_enabled(int level);
void rc_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define rc_debug(...)                                                                              \
    do {                                                                                           \
        if (rc_log_enabled(RC_LOG_DEBUG))                                                          \
            rc_log(RC_LOG_DEBUG, __VA_ARGS__);                                                     \
    } while (0)
#define rc_info(...)  rc_log(RC_LOG_INFO, __VA_ARGS__)
#define rc_warn(...)  rc_log(RC_LOG_WARN, __VA_ARGS__)
#define rc_error(...) rc_log(RC_LOG_ERROR, __VA_ARGS__)

#endif
