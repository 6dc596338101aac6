/* gemm() against a double-precision triple loop for every transpose combination, with strided
 * leading dimensions and beta != 0, on one thread and split across the pool (rows and columns);
 * and bitwise the same result on one thread and on the pool. */
#include "../testing.h"

#include "maec/gemm.h"
#include "maec/parallel.h"
#include "maec/rng.h"

#include <stdlib.h>
#include <string.h>

static void fill(float *x, size_t n, Rng *r)
{
    for (size_t i = 0; i < n; i++)
        x[i] = 2.0f * rng_uniform(r) - 1.0f;
}

static void check_case(bool ta, bool tb, size_t M, size_t N, size_t K, Rng *r)
{
    size_t lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 5, ldc = N + 2;
    size_t arows = ta ? K : M, brows = tb ? N : K;
    float *A = malloc(arows * lda * sizeof(float)), *B = malloc(brows * ldb * sizeof(float));
    float *C = malloc(M * ldc * sizeof(float));
    double *want = malloc(M * N * sizeof(double));
    fill(A, arows * lda, r);
    fill(B, brows * ldb, r);
    fill(C, M * ldc, r);
    const float alpha = 0.75f, beta = -0.5f;
    for (size_t i = 0; i < M; i++)
        for (size_t j = 0; j < N; j++) {
            double s = 0;
            for (size_t k = 0; k < K; k++)
                s += (double)(ta ? A[k * lda + i] : A[i * lda + k]) * (tb ? B[j * ldb + k] : B[k * ldb + j]);
            want[i * N + j] = alpha * s + beta * (double)C[i * ldc + j];
        }
    gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    double num = 0, den = 0;
    for (size_t i = 0; i < M; i++)
        for (size_t j = 0; j < N; j++) {
            double d = C[i * ldc + j] - want[i * N + j];
            num += d * d;
            den += want[i * N + j] * want[i * N + j];
        }
    CHECK(sqrt(num / den) < 1e-6, "ta=%d tb=%d M=%zu N=%zu K=%zu threads=%d rel error %g", ta, tb, M,
          N, K, parallel_threads(), sqrt(num / den));
    free(A);
    free(B);
    free(C);
    free(want);
}

static void check_all(Rng *r)
{
    /* 600 x 40 and 40 x 600 (K = 70) are cut into two pieces of rows and of columns */
    const size_t shapes[][3] = {{1, 1, 1}, {7, 5, 3}, {600, 40, 70}, {40, 600, 70}, {97, 131, 64}};
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
            for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
                check_case(ta, tb, shapes[s][0], shapes[s][1], shapes[s][2], r);
}

/* C[200, 8] = A[200, 1000] B[1000, 8] from fixed inputs: cut into row pieces by the thread
 * count, OpenBLAS's small-matrix kernel would sum the pieces in another order than the whole. */
static float *thin_product(void)
{
    const size_t M = 200, N = 8, K = 1000;
    Rng r = rng_make(4, RNG_INIT, 0, 0);
    float *A = malloc(M * K * sizeof(float)), *B = malloc(K * N * sizeof(float));
    float *C = calloc(M * N, sizeof(float));
    fill(A, M * K, &r);
    fill(B, K * N, &r);
    gemm(false, false, M, N, K, 1.0f, A, K, B, N, 0.0f, C, N);
    free(A);
    free(B);
    return C;
}

/* Inside a parallel_for range gemm runs on the calling thread alone: the one-thread result. */
static void thin_product_inline(void *ctx, size_t begin, size_t end, int thread)
{
    (void)begin, (void)end, (void)thread;
    *(float **)ctx = thin_product();
}

int main(void)
{
    Rng r = rng_make(3, RNG_INIT, 0, 0);
    check_all(&r);
    parallel_init(2);
    check_all(&r);
    float *one_thread, *pool = thin_product();
    parallel_for(1, 1, thin_product_inline, &one_thread);
    CHECK(memcmp(one_thread, pool, 200 * 8 * sizeof(float)) == 0,
          "200 x 8 x 1000 product on 2 threads differs from one thread");
    free(one_thread);
    free(pool);
    double before = gemm_flops();
    float a = 1, b = 2, c = 0;
    gemm(false, false, 1, 1, 1, 1.0f, &a, 1, &b, 1, 0.0f, &c, 1);
    CHECK(c == 2.0f && gemm_flops() - before == 2.0, "1x1 product %g, flops counted %g", (double)c,
          gemm_flops() - before);
    parallel_shutdown();
    return test_summary("test_gemm");
}
