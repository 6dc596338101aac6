/* Philox4x32-10 against the Random123 known-answer vectors, and the properties maec relies on:
 * cells are independent of evaluation order, permutations are permutations, uniforms are
 * uniform enough. */
#include "../testing.h"

#include "maec/rng.h"

#include <stdlib.h>
#include <string.h>

static void test_known_answers(void)
{
    /* Random123 kat_vectors, philox4x32 10 rounds. */
    const uint32_t ctr[3][4] = {{0, 0, 0, 0},
                                {0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu},
                                {0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}};
    const uint32_t key[3][2] = {{0, 0}, {0xffffffffu, 0xffffffffu}, {0xa4093822u, 0x299f31d0u}};
    const uint32_t want[3][4] = {{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u},
                                 {0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu},
                                 {0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}};
    for (int i = 0; i < 3; i++) {
        uint32_t out[4];
        philox4x32_10(ctr[i], key[i], out);
        CHECK(memcmp(out, want[i], sizeof out) == 0, "vector %d: got %08x %08x %08x %08x", i,
              out[0], out[1], out[2], out[3]);
    }
}

static void test_cells_are_order_independent(void)
{
    /* Drawing sample 7's values must not depend on whether sample 3 was drawn first. */
    Rng a = rng_make(42, RNG_MASK, 5, 7);
    Rng b3 = rng_make(42, RNG_MASK, 5, 3);
    for (int i = 0; i < 10; i++)
        (void)rng_u32(&b3);
    Rng b = rng_make(42, RNG_MASK, 5, 7);
    for (int i = 0; i < 100; i++)
        CHECK(rng_u32(&a) == rng_u32(&b), "draw %d differs", i);
    Rng other_stream = rng_make(42, RNG_AUGMENT, 5, 7);
    Rng same = rng_make(42, RNG_MASK, 5, 7);
    int equal = 0;
    for (int i = 0; i < 100; i++)
        equal += rng_u32(&other_stream) == rng_u32(&same);
    CHECK(equal < 3, "streams RNG_MASK and RNG_AUGMENT share %d of 100 draws", equal);
}

static void test_permutation(void)
{
    enum { N = 1000 };
    size_t perm[N];
    int seen[N] = {0};
    Rng r = rng_make(1, RNG_SHUFFLE, 0, 0);
    rng_permutation(&r, perm, N);
    int fixed = 0;
    for (size_t i = 0; i < N; i++) {
        CHECK(perm[i] < N, "perm[%zu] = %zu out of range", i, perm[i]);
        if (perm[i] < N)
            seen[perm[i]]++;
        fixed += perm[i] == i;
    }
    for (size_t i = 0; i < N; i++)
        CHECK(seen[i] == 1, "value %zu appears %d times", i, seen[i]);
    CHECK(fixed < 10, "%d fixed points: not shuffled", fixed);
}

static void test_distributions(void)
{
    enum { N = 200000, BINS = 10 };
    Rng r = rng_make(7, RNG_INIT, 0, 1);
    int bins[BINS] = {0};
    double sum = 0, sum2 = 0, nsum = 0, nsum2 = 0;
    for (int i = 0; i < N; i++) {
        float u = rng_uniform(&r);
        CHECK(u >= 0.0f && u < 1.0f, "uniform %g outside [0,1)", (double)u);
        bins[(int)(u * BINS)]++;
        sum += u;
        sum2 += (double)u * u;
        double z = rng_normal(&r);
        nsum += z;
        nsum2 += z * z;
    }
    for (int b = 0; b < BINS; b++) /* expected 20000, sd ~134: 6 sd */
        CHECK(abs(bins[b] - N / BINS) < 800, "bin %d has %d of %d", b, bins[b], N);
    CHECK(fabs(sum / N - 0.5) < 0.005, "uniform mean %g", sum / N);
    CHECK(fabs(nsum / N) < 0.01, "normal mean %g", nsum / N);
    CHECK(fabs(nsum2 / N - 1.0) < 0.02, "normal variance %g", nsum2 / N);
    int below[3] = {0};
    for (int i = 0; i < 30000; i++)
        below[rng_below(&r, 3)]++;
    for (int k = 0; k < 3; k++)
        CHECK(abs(below[k] - 10000) < 500, "rng_below(3) gave %d %d %d", below[0], below[1], below[2]);
}

int main(void)
{
    test_known_answers();
    test_cells_are_order_independent();
    test_permutation();
    test_distributions();
    return test_summary("test_rng");
}
