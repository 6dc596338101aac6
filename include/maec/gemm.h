/* The one entry point to matrix products: every GEMM in maec goes through gemm(), so threading
 * and blocking decisions live in one place. */
#ifndef MAEC_GEMM_H
#define MAEC_GEMM_H

#include <stdbool.h>
#include <stddef.h>

/* Row-major C[M,N] = alpha * op(A)[M,K] @ op(B)[K,N] + beta * C.
 * op(A) = A ([M,K], lda >= K) or A^T (A stored [K,M], lda >= M); likewise for B.
 * Leading dimensions allow strided views (e.g. one head's q inside a fused qkv row) without
 * copies. Called from the main thread, large products are split across the parallel.h pool
 * (OpenBLAS itself runs single-threaded once the pool exists); called inside a parallel_for
 * range, it runs on that worker alone. The pieces depend on the shape only, so C is bitwise
 * the same for any number of threads. */
void gemm(bool trans_a, bool trans_b, size_t M, size_t N, size_t K,
          float alpha, const float *A, size_t lda, const float *B, size_t ldb,
          float beta, float *C, size_t ldc);

/* Floating-point operations counted so far by gemm() in this process (2*M*N*K per call). */
double gemm_flops(void);

#endif
