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
 * ViT-Tiny linears, 800 x 576 x 192 and the like, ran 10-15% below one call per product). The
 * piece count is a multiple of 4 with borders spread evenly, so that two threads get equal rows:
 * an 800-row product is 12 pieces of 64 or 80 rows, 400 rows per thread (not 13 pieces of 64
 * with a 32-row tail, 448 against 352). */
#define GEMM_PIECE_MIN_MACS (1u << 20)
#define GEMM_PIECE_MIN_LINES 64
/* Pieces are whole groups of this many lines, so they keep OpenBLAS's register blocking whole. */
#define GEMM_LINE_ALIGN 16

/* Integer so that worker threads can add to it without a lock (and without libatomic). */
static atomic_ullong g_flops = 0;

typedef struct GemmJob {
    bool trans_a, trans_b;
    bool split_rows;       /* pieces are rows of C; else columns */
    size_t groups, pieces; /* piece p: line groups [p groups / pieces, (p+1) groups / pieces) */
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
        size_t first = p * j->groups / j->pieces * GEMM_LINE_ALIGN;
        size_t last = (p + 1) * j->groups / j->pieces * GEMM_LINE_ALIGN;
        size_t count = (last < span ? last : span) - first;
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

/* How many pieces a span of lines costing macs_per_line multiply-adds each is cut into: as many
 * as hold the minimum size, then rounded down to a multiple of 4 so that 2 or 4 threads get
 * equal shares (the pieces of a span differ by one line group at most). */
static size_t piece_count(size_t groups, double macs_per_line)
{
    double want = macs_per_line > 0 ? ceil(GEMM_PIECE_MIN_MACS / macs_per_line) : (double)groups * GEMM_LINE_ALIGN;
    double lines = want < GEMM_PIECE_MIN_LINES ? GEMM_PIECE_MIN_LINES : want;
    double min_groups = ceil(lines / GEMM_LINE_ALIGN);
    size_t count = (size_t)((double)groups / min_groups);
    if (count >= 4)
        return count - count % 4;
    return count >= 2 ? 2 : 1;
}

void gemm(bool trans_a, bool trans_b, size_t M, size_t N, size_t K,
          float alpha, const float *A, size_t lda, const float *B, size_t ldb,
          float beta, float *C, size_t ldc)
{
    if (M == 0 || N == 0)
        return;
    atomic_fetch_add_explicit(&g_flops, 2ull * M * N * K, memory_order_relaxed);
    bool split_rows = M >= N;
    size_t span = split_rows ? M : N, groups = (span + GEMM_LINE_ALIGN - 1) / GEMM_LINE_ALIGN;
    size_t pieces = piece_count(groups, (double)(split_rows ? N : M) * (double)K);
    GemmJob job = {trans_a, trans_b, split_rows, groups, pieces, M, N, K,
                   lda, ldb, ldc, alpha, beta, A, B, C};
    parallel_for(pieces, 1, gemm_pieces, &job);
}

double gemm_flops(void) { return (double)atomic_load(&g_flops); }
