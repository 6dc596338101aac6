/* Weighted k-nearest-neighbour classification of frozen features, as DINO's eval_knn.py:
 * features are L2-normalised, similarity is the cosine (one GEMM per block of test rows), the k
 * most similar training samples vote for their class with weight exp(similarity / T), and the
 * class with the largest total wins. */
#ifndef MAEC_KNN_H
#define MAEC_KNN_H

#include <stddef.h>
#include <stdint.h>

typedef struct KnnOptions {
    size_t k;           /* neighbours; more than the training set means all of it. DINO: 20 */
    double temperature; /* T of the vote weights. DINO: 0.07 */
} KnnOptions;

/* predicted[n_test] = the class each test row gets. Rows of zeros (no direction) have cosine 0
 * with everything. Ties (equal similarity, equal votes) go to the lower index, whichever thread
 * handles the row. Needs k >= 1, temperature > 0, n_train >= 1, every
 * train label in 0 .. num_classes-1. */
void knn_classify(int32_t *predicted, const float *test, const float *train, const int32_t *train_labels,
                  const KnnOptions *options, size_t n_test, size_t n_train, size_t dim, size_t num_classes);

#endif
