#include "maec/knn.h"

#include "maec/alloc.h"
#include "maec/gemm.h"
#include "maec/parallel.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The similarity block is test rows x all training rows; this many floats keeps it near 32 MiB. */
#define SIMILARITY_BLOCK_FLOATS ((size_t)8 << 20)

/* A copy of x[n, dim] with every row scaled to unit length (rows of zeros stay zero). */
static float *normalized_rows(const float *x, size_t n, size_t dim)
{
    float *out = xmalloc(n * dim * sizeof *out, "normalised features");
    for (size_t i = 0; i < n; i++) {
        const float *row = x + i * dim;
        double sum = 0.0;
        for (size_t j = 0; j < dim; j++)
            sum += (double)row[j] * row[j];
        float scale = sum > 0.0 ? (float)(1.0 / sqrt(sum)) : 0.0f;
        for (size_t j = 0; j < dim; j++)
            out[i * dim + j] = row[j] * scale;
    }
    return out;
}

/* Per-thread scratch: the current top k (most similar first) and the class votes. */
typedef struct KnnScratch {
    float *top_sim;
    size_t *top_index;
    double *votes;
} KnnScratch;

typedef struct KnnBlock {
    int32_t *predicted;       /* the block's first test row */
    const float *similarity;  /* [rows, n_train] */
    const int32_t *train_labels;
    const KnnOptions *options;
    KnnScratch *scratch;      /* one per thread */
    size_t n_train, k, num_classes;
} KnnBlock;

/* Fills the k largest of sim[n] (k <= n) in decreasing order; on equal values the lower index
 * comes first. Insertion into a sorted list: after the first few rows almost every candidate
 * fails the comparison with the current k-th. */
static void top_k(float *top_sim, size_t *top_index, const float *sim, size_t n, size_t k)
{
    size_t have = 0;
    for (size_t i = 0; i < n; i++) {
        if (have == k && !(sim[i] > top_sim[k - 1]))
            continue;
        size_t pos = have < k ? have++ : k - 1;
        while (pos > 0 && sim[i] > top_sim[pos - 1]) {
            top_sim[pos] = top_sim[pos - 1];
            top_index[pos] = top_index[pos - 1];
            pos--;
        }
        top_sim[pos] = sim[i];
        top_index[pos] = i;
    }
}

/* The weighted vote. Weights are taken relative to the best neighbour, exp((s - s_max) / T),
 * which leaves the winner unchanged and cannot overflow at small T. */
static int32_t vote(double *votes, const float *top_sim, const size_t *top_index, const int32_t *labels,
                    size_t k, size_t num_classes, double temperature)
{
    memset(votes, 0, num_classes * sizeof *votes);
    for (size_t j = 0; j < k; j++)
        votes[labels[top_index[j]]] += exp(((double)top_sim[j] - top_sim[0]) / temperature);
    size_t best = 0;
    for (size_t c = 1; c < num_classes; c++)
        if (votes[c] > votes[best])
            best = c;
    return (int32_t)best;
}

static void classify_rows(void *ctx, size_t begin, size_t end, int thread)
{
    const KnnBlock *b = ctx;
    KnnScratch *s = &b->scratch[thread];
    for (size_t r = begin; r < end; r++) {
        top_k(s->top_sim, s->top_index, b->similarity + r * b->n_train, b->n_train, b->k);
        b->predicted[r] = vote(s->votes, s->top_sim, s->top_index, b->train_labels, b->k, b->num_classes,
                               b->options->temperature);
    }
}

static KnnScratch *scratch_create(size_t k, size_t num_classes)
{
    int threads = parallel_threads();
    KnnScratch *scratch = xcalloc((size_t)threads, sizeof *scratch, "kNN scratch");
    for (int t = 0; t < threads; t++) {
        scratch[t].top_sim = xmalloc(k * sizeof *scratch[t].top_sim, "kNN top similarities");
        scratch[t].top_index = xmalloc(k * sizeof *scratch[t].top_index, "kNN top indices");
        scratch[t].votes = xmalloc(num_classes * sizeof *scratch[t].votes, "kNN votes");
    }
    return scratch;
}

static void scratch_free(KnnScratch *scratch)
{
    for (int t = 0; t < parallel_threads(); t++) {
        free(scratch[t].top_sim);
        free(scratch[t].top_index);
        free(scratch[t].votes);
    }
    free(scratch);
}

void knn_classify(int32_t *predicted, const float *test, const float *train, const int32_t *train_labels,
                  const KnnOptions *options, size_t n_test, size_t n_train, size_t dim, size_t num_classes)
{
    size_t k = options->k < n_train ? options->k : n_train;
    float *test_unit = normalized_rows(test, n_test, dim);
    float *train_unit = normalized_rows(train, n_train, dim);
    size_t block_rows = SIMILARITY_BLOCK_FLOATS / n_train;
    block_rows = block_rows < 1 ? 1 : block_rows > n_test ? n_test : block_rows;
    float *similarity = xmalloc(block_rows * n_train * sizeof *similarity, "kNN similarity block");
    KnnBlock block = {.similarity = similarity, .train_labels = train_labels, .options = options,
                      .scratch = scratch_create(k, num_classes), .n_train = n_train, .k = k,
                      .num_classes = num_classes};
    for (size_t first = 0; first < n_test; first += block_rows) {
        size_t rows = n_test - first < block_rows ? n_test - first : block_rows;
        gemm(false, true, rows, n_train, dim, 1.0f, test_unit + first * dim, dim, train_unit, dim, 0.0f,
             similarity, n_train);
        block.predicted = predicted + first;
        parallel_for(rows, 1, classify_rows, &block);
    }
    scratch_free(block.scratch);
    free(similarity);
    free(train_unit);
    free(test_unit);
}
