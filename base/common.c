/* Thread: any thread. */
#include "base/common.h"

#include <string.h>
#include <time.h>

static void rc_oom(size_t n)
{
    fprintf(stderr, "ringcast: out of memory allocating %zu bytes\n", n);
    abort();
}

void *rc_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        rc_oom(n);
    return p;
}

void *rc_calloc(size_t count, size_t n)
{
    void *p = calloc(count ? count : 1, n ? n : 1);
    if (!p)
        rc_oom(count * n);
    return p;
}

void *rc_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        rc_oom(n);
    return q;
}

char *rc_strndup(const char *s, size_t n)
{
    char *d = rc_malloc(n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

uint64_t rc_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t rc_now_ms(void)
{
    return rc_now_ns() / 1000000ull;
}

int64_t rc_wall_s(void)
{
    return (int64_t)time(NULL);
}

int64_t rc_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int rc_ct_equal(const void *a, size_t an, const void *b, size_t bn)
{
    const unsigned char *x = a, *y = b;
    unsigned char diff = (unsigned char)(an != bn);
    size_t n = an < bn ? an : bn;
    for (size_t i = 0; i < n; i++)
        diff |= x[i] ^ y[i];
    return diff == 0;
}
