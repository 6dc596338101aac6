#include "maec/gemm.h"

#include <cblas.h>

static double g_flops = 0.0;

void gemm(bool trans_a, bool trans_b, size_t M, size_t N, size_t K,
          float alpha, const float *A, size_t lda, const float *B, size_t ldb,
          float beta, float *C, size_t ldc)
{
    if (M == 0 || N == 0)
        return;
    g_flops += 2.0 * (double)M * (double)N * (double)K;
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
                (blasint)M, (blasint)N, (blasint)K, alpha, A, (blasint)lda, B, (blasint)ldb,
                beta, C, (blasint)ldc);
}

double gemm_flops(void) { return g_flops; }
