#include "maec/metrics.h"

#include "maec/alloc.h"
#include "maec/json.h"

#include <stdlib.h>
#include <math.h>
#include <string.h>

/* Longest class name shown in the tables; longer ones are cut, the JSON keeps them whole. */
#define NAME_WIDTH_MAX 24

static double ratio(size_t num, size_t den) { return den ? (double)num / (double)den : 0.0; }

static void per_class(Metrics *m)
{
    size_t C = m->num_classes, present = 0, seen = 0;
    double recall_sum = 0.0, f1_sum = 0.0;
    for (size_t c = 0; c < C; c++) {
        size_t tp = m->confusion[c * C + c], predicted = 0;
        for (size_t r = 0; r < C; r++)
            predicted += m->confusion[r * C + c];
        m->precision[c] = ratio(tp, predicted);
        m->recall[c] = ratio(tp, m->support[c]);
        /* 2TP / (2TP + FP + FN), with FP + TP = predicted and FN + TP = support. */
        m->f1[c] = ratio(2 * tp, predicted + m->support[c]);
        if (m->support[c] > 0) {
            present++;
            recall_sum += m->recall[c];
        }
        if (m->support[c] + predicted > 0) {
            seen++;
            f1_sum += m->f1[c];
        }
    }
    m->balanced_accuracy = present ? recall_sum / (double)present : 0.0;
    m->macro_f1 = seen ? f1_sum / (double)seen : 0.0;
}

void metrics_compute(Metrics *m, const int32_t *truth, const int32_t *predicted, size_t n, size_t num_classes)
{
    size_t C = num_classes;
    m->num_classes = C;
    m->count = n;
    m->confusion = xcalloc(C * C, sizeof *m->confusion, "confusion matrix");
    m->support = xcalloc(C, sizeof *m->support, "class support");
    m->precision = xcalloc(C, sizeof *m->precision, "precision");
    m->recall = xcalloc(C, sizeof *m->recall, "recall");
    m->f1 = xcalloc(C, sizeof *m->f1, "F1");
    size_t correct = 0;
    for (size_t i = 0; i < n; i++) {
        m->confusion[(size_t)truth[i] * C + (size_t)predicted[i]]++;
        m->support[truth[i]]++;
        correct += truth[i] == predicted[i];
    }
    m->accuracy = ratio(correct, n);
    per_class(m);
}

void metrics_free(Metrics *m)
{
    free(m->confusion);
    free(m->support);
    free(m->precision);
    free(m->recall);
    free(m->f1);
    memset(m, 0, sizeof *m);
}

static int name_width(const char *const *names, size_t n)
{
    size_t width = 5; /* "class" */
    for (size_t c = 0; c < n; c++)
        width = strlen(names[c]) > width ? strlen(names[c]) : width;
    return width > NAME_WIDTH_MAX ? NAME_WIDTH_MAX : (int)width;
}

static int digits(size_t v)
{
    int d = 1;
    for (; v >= 10; v /= 10)
        d++;
    return d;
}

/* The confusion matrix with numbered columns; the row labels say which number is which class. */
static void print_confusion(FILE *out, const Metrics *m, const char *const *names, int width)
{
    size_t C = m->num_classes;
    int cell = digits(m->count > C ? m->count : C) + 2;
    fprintf(out, "\nconfusion matrix (rows: true class, columns: predicted class)\n%*s", width + 4, "");
    for (size_t c = 0; c < C; c++)
        fprintf(out, "%*zu", cell, c);
    fputc('\n', out);
    for (size_t r = 0; r < C; r++) {
        fprintf(out, "%3zu %-*.*s", r, width, width, names[r]);
        for (size_t c = 0; c < C; c++)
            fprintf(out, "%*zu", cell, m->confusion[r * C + c]);
        fputc('\n', out);
    }
}

void metrics_print(FILE *out, const Metrics *m, const char *const *names)
{
    size_t correct = 0;
    for (size_t c = 0; c < m->num_classes; c++)
        correct += m->confusion[c * m->num_classes + c];
    fprintf(out, "accuracy           %.4f  (%zu of %zu)\n", m->accuracy, correct, m->count);
    fprintf(out, "balanced accuracy  %.4f\nmacro-F1           %.4f\n\n", m->balanced_accuracy, m->macro_f1);
    int width = name_width(names, m->num_classes);
    fprintf(out, "    %-*s  support  precision  recall      F1\n", width, "class");
    for (size_t c = 0; c < m->num_classes; c++)
        fprintf(out, "%3zu %-*.*s  %7zu  %9.4f  %6.4f  %6.4f\n", c, width, width, names[c], m->support[c],
                m->precision[c], m->recall[c], m->f1[c]);
    print_confusion(out, m, names, width);
}

void metrics_write_json(FILE *out, const Metrics *m, const char *const *names)
{
    fprintf(out, "\"count\":%zu,\"accuracy\":%.10g,\"balanced_accuracy\":%.10g,\"macro_f1\":%.10g,\"classes\":[",
            m->count, m->accuracy, m->balanced_accuracy, m->macro_f1);
    for (size_t c = 0; c < m->num_classes; c++) {
        fprintf(out, "%s{\"name\":", c ? "," : "");
        json_write_string(out, names[c]);
        fprintf(out, ",\"support\":%zu,\"precision\":%.10g,\"recall\":%.10g,\"f1\":%.10g}", m->support[c],
                m->precision[c], m->recall[c], m->f1[c]);
    }
    fprintf(out, "],\"confusion\":[");
    for (size_t r = 0; r < m->num_classes; r++) {
        fprintf(out, "%s[", r ? "," : "");
        for (size_t c = 0; c < m->num_classes; c++)
            fprintf(out, "%s%zu", c ? "," : "", m->confusion[r * m->num_classes + c]);
        fputc(']', out);
    }
    fputc(']', out);
}

void metrics_mean_std(const double *values, size_t n, size_t stride, double *mean, double *std)
{
    double sum = 0.0, sum_sq = 0.0;
    for (size_t i = 0; i < n; i++)
        sum += values[i * stride];
    *mean = sum / (double)n;
    for (size_t i = 0; i < n; i++)
        sum_sq += (values[i * stride] - *mean) * (values[i * stride] - *mean);
    *std = n > 1 ? sqrt(sum_sq / (double)(n - 1)) : 0.0;
}
