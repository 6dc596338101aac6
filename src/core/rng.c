#include "maec/rng.h"

#include "maec/error.h"

#include <math.h>
#include <string.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

void philox4x32_10(const uint32_t counter[4], const uint32_t key[2], uint32_t out[4])
{
    uint32_t c0 = counter[0], c1 = counter[1], c2 = counter[2], c3 = counter[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int round = 0; round < 10; round++) {
        uint64_t p0 = (uint64_t)PHILOX_M0 * c0;
        uint64_t p1 = (uint64_t)PHILOX_M1 * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
        uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        c0 = n0;
        c1 = (uint32_t)p1;
        c2 = n2;
        c3 = (uint32_t)p0;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

Rng rng_make(uint64_t seed, uint32_t stream, uint32_t a, uint64_t b)
{
    if (a >= (1u << 24) || stream >= 256)
        fatal("internal: rng cell out of range (stream %u, a %u); please report this", stream, a);
    Rng rng = {0};
    rng.key[0] = (uint32_t)seed;
    rng.key[1] = (uint32_t)(seed >> 32);
    rng.counter[0] = 0;
    rng.counter[1] = (uint32_t)b;
    rng.counter[2] = (uint32_t)(b >> 32);
    rng.counter[3] = (stream << 24) | a;
    rng.available = 0;
    return rng;
}

uint32_t rng_u32(Rng *rng)
{
    if (rng->available == 0) {
        philox4x32_10(rng->counter, rng->key, rng->block);
        rng->counter[0]++;
        rng->available = 4;
    }
    return rng->block[4 - rng->available--];
}

float rng_uniform(Rng *rng) { return (float)(rng_u32(rng) >> 8) * (1.0f / 16777216.0f); }

double rng_uniform_double(Rng *rng)
{
    uint64_t hi = rng_u32(rng) >> 5, lo = rng_u32(rng) >> 6; /* 27 + 26 = 53 bits */
    return ((double)hi * 67108864.0 + (double)lo) * (1.0 / 9007199254740992.0);
}

double rng_normal(Rng *rng)
{
    double u1 = 1.0 - rng_uniform_double(rng); /* (0, 1]: log never sees 0 */
    double u2 = rng_uniform_double(rng);
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

uint64_t rng_below(Rng *rng, uint64_t n)
{
    if (n <= UINT32_MAX) {
        uint32_t bound = (uint32_t)n;
        uint32_t limit = UINT32_MAX - (UINT32_MAX % bound); /* reject the biased tail */
        uint32_t x;
        do
            x = rng_u32(rng);
        while (x >= limit);
        return x % bound;
    }
    uint64_t limit = UINT64_MAX - (UINT64_MAX % n);
    uint64_t x;
    do
        x = ((uint64_t)rng_u32(rng) << 32) | rng_u32(rng);
    while (x >= limit);
    return x % n;
}

void rng_shuffle(Rng *rng, void *items, size_t n, size_t item_size)
{
    unsigned char tmp[64], *x = items;
    if (item_size > sizeof tmp)
        fatal("internal: rng_shuffle item of %zu bytes (at most %zu)", item_size, sizeof tmp);
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)rng_below(rng, i);
        memcpy(tmp, x + (i - 1) * item_size, item_size);
        memcpy(x + (i - 1) * item_size, x + j * item_size, item_size);
        memcpy(x + j * item_size, tmp, item_size);
    }
}

void rng_permutation(Rng *rng, size_t *perm, size_t n)
{
    for (size_t i = 0; i < n; i++)
        perm[i] = i;
    rng_shuffle(rng, perm, n, sizeof *perm);
}
