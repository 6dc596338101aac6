/* Helpers shared by the core kernels (private to src/core).
 *
 * Reductions keep KERNEL_LANES independent double accumulators: GCC vectorises that shape
 * without -ffast-math, the summation order is fixed by the data alone (so results never depend
 * on the thread count), and double accumulation keeps long rows of values with a large common
 * offset (LayerNorm over C = 1024 at mean 100) accurate to float resolution. */
#ifndef MAEC_CORE_KERNEL_UTIL_H
#define MAEC_CORE_KERNEL_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define KERNEL_LANES 16
/* Below this many elements per piece, waking a pool thread costs more than it saves. */
#define KERNEL_MIN_WORK 32768
/* Column reductions are split across threads in groups of one cache line of floats, and summed
 * a block at a time into accumulators on the stack (2 KiB of doubles). */
#define COLUMN_GROUP 16
#define COLUMN_BLOCK 256

/* parallel_for's min_chunk for items of work_per_item elements each. */
static inline size_t kernel_min_chunk(size_t work_per_item)
{
    size_t w = work_per_item ? work_per_item : 1;
    return (KERNEL_MIN_WORK + w - 1) / w;
}

static inline size_t min_size(size_t a, size_t b) { return a < b ? a : b; }

/* Pairwise, in a fixed order. */
static inline double lanes_total(const double acc[KERNEL_LANES])
{
    double s[KERNEL_LANES / 2];
    for (size_t l = 0; l < KERNEL_LANES / 2; l++)
        s[l] = acc[l] + acc[l + KERNEL_LANES / 2];
    for (size_t w = KERNEL_LANES / 4; w > 0; w /= 2)
        for (size_t l = 0; l < w; l++)
            s[l] += s[l + w];
    return s[0];
}

static inline double sum_f64(const float *restrict x, size_t n)
{
    double acc[KERNEL_LANES] = {0};
    size_t j = 0;
    for (; j + KERNEL_LANES <= n; j += KERNEL_LANES)
        for (size_t l = 0; l < KERNEL_LANES; l++)
            acc[l] += x[j + l];
    for (size_t l = 0; j + l < n; l++)
        acc[l] += x[j + l];
    return lanes_total(acc);
}

/* Float products are exact in double, so only the additions round. */
static inline double dot_f64(const float *restrict x, const float *restrict y, size_t n)
{
    double acc[KERNEL_LANES] = {0};
    size_t j = 0;
    for (; j + KERNEL_LANES <= n; j += KERNEL_LANES)
        for (size_t l = 0; l < KERNEL_LANES; l++)
            acc[l] += (double)x[j + l] * y[j + l];
    for (size_t l = 0; j + l < n; l++)
        acc[l] += (double)x[j + l] * y[j + l];
    return lanes_total(acc);
}

/* n >= 1. A NaN is not propagated here; callers subtract the max, which spreads it. */
static inline float max_f32(const float *restrict x, size_t n)
{
    float acc[KERNEL_LANES];
    for (size_t l = 0; l < KERNEL_LANES; l++)
        acc[l] = x[0];
    size_t j = 0;
    for (; j + KERNEL_LANES <= n; j += KERNEL_LANES)
        for (size_t l = 0; l < KERNEL_LANES; l++)
            acc[l] = x[j + l] > acc[l] ? x[j + l] : acc[l];
    for (size_t l = 0; j + l < n; l++)
        acc[l] = x[j + l] > acc[l] ? x[j + l] : acc[l];
    float m = acc[0];
    for (size_t l = 1; l < KERNEL_LANES; l++)
        m = acc[l] > m ? acc[l] : m;
    return m;
}

/* acc[0..n) += the sums over rows of x[r*ld + 0..n), each column in row order, so a column's
 * sum does not depend on how the columns are split between threads. */
static inline void column_sums_f64(double *restrict acc, const float *restrict x, size_t rows,
                                   size_t n, size_t ld)
{
    for (size_t r = 0; r < rows; r++)
        for (size_t j = 0; j < n; j++)
            acc[j] += x[r * ld + j];
}

/* exp(r) * 2^n for |r| <= ln2/2, about 1 ulp: the Cephes expf polynomial. Below the normal
 * range (n < -126) the result flushes to 0 through an integer max on the exponent, so callers
 * need no second select. n arrives as the low bits of a rounding-magic float (t = x + 1.5 * 2^23
 * holds n in its mantissa): no float-to-int conversion, which is undefined for NaN. */
static inline float exp_reduced(float r, uint32_t n)
{
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f;
    int32_t biased = (int32_t)(n + 127u);
    biased = biased < 0 ? 0 : biased;
    uint32_t bits = (uint32_t)biased << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

/* exp of anything below this is 0 in float; clamping there keeps the reduction finite. NaN
 * passes the clamp and comes out NaN. */
#define EXP_CLAMP_ARG (-104.0f)

/* exp(a) for a <= 0 (softmax after subtracting the row max), vectorisable, about 1 ulp; flushes
 * to 0 below -87.3 (results that would be subnormal) and for -inf. */
static inline float exp_nonpositive(float a)
{
    const float magic = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    float c = a < EXP_CLAMP_ARG ? EXP_CLAMP_ARG : a;
    float t = c * 1.44269504f + magic;
    float n = t - magic;
    float r = (c - n * 0.693359375f) + n * 2.12194440e-4f; /* ln 2 in two parts (Cody-Waite) */
    uint32_t tbits;
    memcpy(&tbits, &t, sizeof tbits);
    return exp_reduced(r, tbits - 0x4B400000u);
}

#endif
