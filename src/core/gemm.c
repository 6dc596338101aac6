#include "maec/gemm.h"

#include "maec/parallel.h"

#include <cblas.h>
#include <stdatomic.h>

/* Below this many multiply-adds a product runs on the calling thread: splitting costs more. */
#define GEMM_SPLIT_MIN_MACS (1u << 18)
/* Rows per piece are a multiple of this, so pieces keep OpenBLAS's register blocking whole. */
#define GEMM_ROW_ALIGN 16

/* Integer so that worker threads can add to it without a lock (and without libatomic). */
static atomic_ullong g_flops = 0;

typedef struct GemmJob {
    bool trans_a, trans_b;
    bool split_rows; /* split M (rows of C); else split N (columns of C) */
    size_t M, N, K, lda, ldb, ldc;
    float alpha, beta;
    const float *A, *B;
    float *C;
} GemmJob;

static void sgemm(bool ta, bool tb, size_t M, size_t N, size_t K, float alpha, const float *A,
                  size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc)
{
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                (blasint)M, (blasint)N, (blasint)K, alpha, A, (blasint)lda, B, (blasint)ldb,
                beta, C, (blasint)ldc);
}

static void gemm_piece(void *ctx, size_t begin, size_t end, int thread)
{
    (void)thread;
    const GemmJob *j = ctx;
    if (j->split_rows) {
        size_t r0 = begin * GEMM_ROW_ALIGN, r1 = end * GEMM_ROW_ALIGN < j->M ? end * GEMM_ROW_ALIGN : j->M;
        /* rows r0.. of op(A): A + r0*lda untransposed, A + r0 (columns) transposed */
        const float *a = j->trans_a ? j->A + r0 : j->A + r0 * j->lda;
        sgemm(j->trans_a, j->trans_b, r1 - r0, j->N, j->K, j->alpha, a, j->lda, j->B, j->ldb,
              j->beta, j->C + r0 * j->ldc, j->ldc);
    } else {
        size_t c0 = begin * GEMM_ROW_ALIGN, c1 = end * GEMM_ROW_ALIGN < j->N ? end * GEMM_ROW_ALIGN : j->N;
        const float *b = j->trans_b ? j->B + c0 * j->ldb : j->B + c0;
        sgemm(j->trans_a, j->trans_b, j->M, c1 - c0, j->K, j->alpha, j->A, j->lda, b, j->ldb,
              j->beta, j->C + c0, j->ldc);
    }
}

void gemm(bool trans_a, bool trans_b, size_t M, size_t N, size_t K,
          float alpha, const float *A, size_t lda, const float *B, size_t ldb,
          float beta, float *C, size_t ldc)
{
    if (M == 0 || N == 0)
        return;
    atomic_fetch_add_explicit(&g_flops, 2ull * M * N * K, memory_order_relaxed);
    int threads = parallel_threads();
    if (threads == 1 || parallel_in_region() || (double)M * N * K < GEMM_SPLIT_MIN_MACS) {
        sgemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    GemmJob job = {trans_a, trans_b, M >= N, M, N, K, lda, ldb, ldc, alpha, beta, A, B, C};
    size_t span = job.split_rows ? M : N;
    size_t blocks = (span + GEMM_ROW_ALIGN - 1) / GEMM_ROW_ALIGN;
    parallel_for(blocks, 1, gemm_piece, &job);
}

double gemm_flops(void) { return (double)atomic_load(&g_flops); }
