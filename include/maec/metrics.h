/* Classification metrics of an evaluation: accuracy, balanced accuracy, macro-F1 and the
 * confusion matrix, as a table for people and as JSON for scripts. Definitions follow
 * scikit-learn, so numbers compare with papers that use it:
 *  - balanced accuracy: the mean recall over the classes present in the truth;
 *  - macro-F1: the mean F1 = 2 TP / (2 TP + FP + FN) over the classes present in the truth or
 *    the predictions (a class never seen on either side has no F1 and is left out). */
#ifndef MAEC_METRICS_H
#define MAEC_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct Metrics {
    size_t num_classes, count;
    size_t *confusion;               /* [num_classes, num_classes]: row = true class, column = predicted */
    size_t *support;                 /* [num_classes]: samples per true class */
    double *precision, *recall, *f1; /* [num_classes]: 0 where undefined */
    double accuracy, balanced_accuracy, macro_f1;
} Metrics;

/* truth and predicted hold n class indices in 0 .. num_classes-1; n >= 1. */
void metrics_compute(Metrics *m, const int32_t *truth, const int32_t *predicted, size_t n, size_t num_classes);
void metrics_free(Metrics *m);

/* The summary, a per-class table and the confusion matrix, classes by name. */
void metrics_print(FILE *out, const Metrics *m, const char *const *class_names);

/* The members "count", "accuracy", "balanced_accuracy", "macro_f1", "classes" (name, support,
 * precision, recall, f1) and "confusion" (rows = true class), without the enclosing braces, so
 * a command can add its own members around them. */
void metrics_write_json(FILE *out, const Metrics *m, const char *const *class_names);

/* Mean and sample standard deviation (0 for n = 1) of n values stride doubles apart: one score
 * over the folds of a few-label evaluation. */
void metrics_mean_std(const double *values, size_t n, size_t stride, double *mean, double *std);

#endif
