/* Softmax cross-entropy over the rows of logits[N,K], in double, with a temperature and label
 * smoothing (torch.nn.functional.cross_entropy(logits / temperature, labels,
 * label_smoothing = smoothing, reduction = "sum"), ignoring rows labelled -1). */
#ifndef MAEC_CROSS_ENTROPY_H
#define MAEC_CROSS_ENTROPY_H

#include <stddef.h>
#include <stdint.h>

/* Rows of labels[N] that are labelled (>= 0): the count a mean over the batch divides by. */
size_t cross_entropy_labeled(const int32_t *labels, size_t N);

/* Returns the sum over labelled rows of -sum_k target_k log softmax(logits / temperature)_k,
 * target = smoothing / K on every class plus 1 - smoothing on the label; a row with label < 0
 * adds nothing. If dlogits[N,K] is not NULL, accumulates (+=) dscale times the gradient of that
 * sum into it (zero on unlabelled rows). temperature > 0, labels < K. */
double cross_entropy_forward_backward(float *dlogits, const float *logits, const int32_t *labels,
                                      size_t N, size_t K, double temperature, double smoothing,
                                      double dscale);

#endif
