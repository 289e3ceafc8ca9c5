/* Shared by the libFuzzer drivers in tests/fuzz/: an invariant check that
 * stops the run with the broken condition (libFuzzer then saves the input as
 * a crash), and a small deterministic generator for choices derived from the
 * input (chunk sizes, positions), so every run of an input is the same. */
#ifndef RC_FUZZ_H
#define RC_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz invariant broken at %s:%d: %s\n", __FILE__, __LINE__, #cond);  \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* 1 when span [p, p+n) lies inside [base, base+len). */
static inline int fuzz_inside(const void *p, size_t n, const void *base, size_t len)
{
    const char *q = p, *b = base;
    return q >= b && q <= b + len && n <= (size_t)(b + len - q);
}

typedef struct fuzz_rng {
    uint64_t s;
} fuzz_rng;

static inline uint32_t fuzz_next(fuzz_rng *r)
{
    r->s = r->s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(r->s >> 33);
}

/* Takes the first byte of the input as a parameter (0 when empty). */
static inline uint8_t fuzz_take(const uint8_t **data, size_t *size)
{
    if (*size == 0)
        return 0;
    uint8_t b = **data;
    (*data)++;
    (*size)--;
    return b;
}

#endif
