#include "maec/gemm.h"

#include "maec/parallel.h"

#include <cblas.h>
#include <math.h>
#include <stdatomic.h>

/* A product is cut into pieces that depend on its shape alone, one sgemm call each, run on the
 * pool or one after another on the calling thread. OpenBLAS picks its kernel by the size of a
 * call (its small-matrix path below about 10^6 multiply-adds sums in another order), so cutting
 * by the thread count would change the last bits of C with the number of threads.
 *
 * Each piece holds at least this many multiply-adds and this many rows (or columns) of C: every
 * call packs the other operand again, which 64 lines of arithmetic amortise (on one thread the
 * ViT-Tiny linears, 800 x 576 x 192 and the like, ran 10-15% below one call per product). */
#define GEMM_PIECE_MIN_MACS (1u << 20)
#define GEMM_PIECE_MIN_LINES 64
/* Lines per piece are a multiple of this, so pieces keep OpenBLAS's register blocking whole. */
#define GEMM_LINE_ALIGN 16

/* Integer so that worker threads can add to it without a lock (and without libatomic). */
static atomic_ullong g_flops = 0;

typedef struct GemmJob {
    bool trans_a, trans_b;
    bool split_rows; /* pieces are rows of C; else columns */
    size_t lines;    /* rows (or columns) of C per piece */
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

/* Pieces [begin, end), each its own sgemm call. */
static void gemm_pieces(void *ctx, size_t begin, size_t end, int thread)
{
    (void)thread;
    const GemmJob *j = ctx;
    size_t span = j->split_rows ? j->M : j->N;
    for (size_t p = begin; p < end; p++) {
        size_t first = p * j->lines, count = span - first < j->lines ? span - first : j->lines;
        if (j->split_rows) {
            /* rows first.. of op(A): A + first*lda untransposed, A + first (columns) transposed */
            const float *a = j->trans_a ? j->A + first : j->A + first * j->lda;
            sgemm(j->trans_a, j->trans_b, count, j->N, j->K, j->alpha, a, j->lda, j->B, j->ldb,
                  j->beta, j->C + first * j->ldc, j->ldc);
        } else {
            const float *b = j->trans_b ? j->B + first * j->ldb : j->B + first;
            sgemm(j->trans_a, j->trans_b, j->M, count, j->K, j->alpha, j->A, j->lda, b, j->ldb,
                  j->beta, j->C + first, j->ldc);
        }
    }
}

/* Lines of C per piece for a span of lines that cost macs_per_line multiply-adds each. */
static size_t piece_lines(size_t span, double macs_per_line)
{
    double want = macs_per_line > 0 ? ceil(GEMM_PIECE_MIN_MACS / macs_per_line) : (double)span;
    size_t lines = want > (double)span ? span : (size_t)want;
    lines = lines < GEMM_PIECE_MIN_LINES ? GEMM_PIECE_MIN_LINES : lines;
    return (lines + GEMM_LINE_ALIGN - 1) / GEMM_LINE_ALIGN * GEMM_LINE_ALIGN;
}

void gemm(bool trans_a, bool trans_b, size_t M, size_t N, size_t K,
          float alpha, const float *A, size_t lda, const float *B, size_t ldb,
          float beta, float *C, size_t ldc)
{
    if (M == 0 || N == 0)
        return;
    atomic_fetch_add_explicit(&g_flops, 2ull * M * N * K, memory_order_relaxed);
    bool split_rows = M >= N;
    size_t span = split_rows ? M : N;
    size_t lines = piece_lines(span, (double)(split_rows ? N : M) * (double)K);
    GemmJob job = {trans_a, trans_b, split_rows, lines, M, N, K,
                   lda, ldb, ldc, alpha, beta, A, B, C};
    parallel_for((span + lines - 1) / lines, 1, gemm_pieces, &job);
}

double gemm_flops(void) { return (double)atomic_load(&g_flops); }
