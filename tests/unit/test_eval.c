/* Evaluation: metrics on hand-computed examples, kNN on a hand-made case where the temperature
 * decides, and kNN and the linear probe on synthetic Gaussian clusters: near-perfect where the
 * classes separate, near chance where labels are random. */
#include "../testing.h"

#include "maec/knn.h"
#include "maec/linprobe.h"
#include "maec/metrics.h"
#include "maec/parallel.h"
#include "maec/rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CLASSES 5
#define DIM 32

static void test_metrics_hand_computed(void)
{
    /* Confusion [[2,1,0],[0,1,1],[0,0,1]] plus a fourth class seen on neither side. */
    const int32_t truth[] = {0, 0, 0, 1, 1, 2}, predicted[] = {0, 0, 1, 1, 2, 2};
    Metrics m;
    metrics_compute(&m, truth, predicted, 6, 4);
    const size_t confusion[16] = {2, 1, 0, 0, 0, 1, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0};
    CHECK(!memcmp(m.confusion, confusion, sizeof confusion), "confusion matrix");
    CHECK(fabs(m.accuracy - 4.0 / 6.0) < 1e-12, "accuracy %g", m.accuracy);
    /* Recalls 2/3, 1/2, 1 over the three classes present. */
    CHECK(fabs(m.balanced_accuracy - (2.0 / 3.0 + 0.5 + 1.0) / 3.0) < 1e-12, "balanced accuracy %g",
          m.balanced_accuracy);
    /* F1 = 2TP / (2TP + FP + FN): 4/5, 2/4, 2/3; the unseen class is left out of the mean. */
    CHECK(fabs(m.macro_f1 - (0.8 + 0.5 + 2.0 / 3.0) / 3.0) < 1e-12, "macro-F1 %g", m.macro_f1);
    CHECK(fabs(m.precision[1] - 0.5) < 1e-12 && fabs(m.recall[0] - 2.0 / 3.0) < 1e-12, "per-class values");
    CHECK(m.support[0] == 3 && m.support[3] == 0, "support");
    metrics_free(&m);
}

static void test_metrics_class_only_predicted(void)
{
    /* sklearn: balanced accuracy ignores class 1 (no true samples), macro-F1 counts it as 0. */
    const int32_t truth[] = {0, 0}, predicted[] = {0, 1};
    Metrics m;
    metrics_compute(&m, truth, predicted, 2, 2);
    CHECK(fabs(m.balanced_accuracy - 0.5) < 1e-12, "balanced accuracy %g", m.balanced_accuracy);
    CHECK(fabs(m.macro_f1 - (2.0 / 3.0 + 0.0) / 2.0) < 1e-12, "macro-F1 %g", m.macro_f1);
    metrics_free(&m);
}

static char *captured(void (*write)(FILE *, const Metrics *, const char *const *), const Metrics *m,
                      const char *const *names)
{
    static char text[4096];
    FILE *f = tmpfile();
    write(f, m, names);
    rewind(f);
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    return text;
}

static void test_metrics_output(void)
{
    const int32_t truth[] = {0, 1, 1}, predicted[] = {0, 1, 0};
    const char *names[] = {"tumour \"T\"", "stroma"};
    Metrics m;
    metrics_compute(&m, truth, predicted, 3, 2);
    const char *json = captured(metrics_write_json, &m, names);
    CHECK(strstr(json, "\"accuracy\":0.6666666667"), "accuracy in %s", json);
    CHECK(strstr(json, "\"name\":\"tumour \\\"T\\\"\""), "escaped class name in %s", json);
    CHECK(strstr(json, "\"confusion\":[[1,0],[1,1]]"), "confusion in %s", json);
    const char *table = captured(metrics_print, &m, names);
    CHECK(strstr(table, "stroma") && strstr(table, "(2 of 3)") && strstr(table, "confusion matrix"), "table: %s",
          table);
    metrics_free(&m);
}

/* Test point at angle 0; train: A at 0 deg (class 0), B at 10 and C at 12 deg (class 1), C far
 * out (length is ignored). k = 3: weights exp((s - 1) / T) are 1 for A and 0.805 + 0.732 for
 * class 1 at T = 0.07, but 0.219 + 0.112 at T = 0.01. */
static void test_knn_hand_case(void)
{
    const double b = 10.0 * M_PI / 180.0, c = 12.0 * M_PI / 180.0;
    const float train[6] = {1.0f, 0.0f, (float)cos(b), (float)sin(b), 100.0f * (float)cos(c), 100.0f * (float)sin(c)};
    const int32_t labels[3] = {0, 1, 1};
    const float test[4] = {2.0f, 0.0f, 0.0f, 0.0f}; /* the second row has no direction */
    int32_t predicted[2];
    knn_classify(predicted, test, train, labels, &(KnnOptions){3, 0.07}, 2, 3, 2, 2);
    CHECK(predicted[0] == 1, "k 3, T 0.07: two close neighbours outvote the closest: got %d", predicted[0]);
    CHECK(predicted[1] == 1, "a zero row is equally close to all, so the plain majority wins: got %d",
          predicted[1]);
    knn_classify(predicted, test, train, labels, &(KnnOptions){3, 0.01}, 1, 3, 2, 2);
    CHECK(predicted[0] == 0, "k 3, T 0.01: the closest dominates: got %d", predicted[0]);
    knn_classify(predicted, test, train, labels, &(KnnOptions){1, 0.07}, 1, 3, 2, 2);
    CHECK(predicted[0] == 0, "k 1: the closest: got %d", predicted[0]);
    knn_classify(predicted, test, train, labels, &(KnnOptions){50, 0.07}, 1, 3, 2, 2);
    CHECK(predicted[0] == 1, "k larger than the training set: all vote: got %d", predicted[0]);
}

typedef struct Samples {
    size_t n;
    float *x;
    int32_t *y;
} Samples;

/* n samples around CLASSES centres N(0, spread^2) in DIM dimensions with unit noise; spread 0
 * gives no class information at all. Labels are drawn independently of the features when
 * random_labels. Stream RNG_SYNTHETIC, a = set (train / test), b = sample. */
static Samples clusters(size_t n, double spread, bool random_labels, uint32_t set, uint64_t seed)
{
    double centres[CLASSES][DIM];
    Rng rc = rng_make(seed, RNG_SYNTHETIC, 0, 1u << 30);
    for (int c = 0; c < CLASSES; c++)
        for (int j = 0; j < DIM; j++)
            centres[c][j] = spread * rng_normal(&rc);
    Samples s = {n, malloc(n * DIM * sizeof(float)), malloc(n * sizeof(int32_t))};
    for (size_t i = 0; i < n; i++) {
        Rng r = rng_make(seed, RNG_SYNTHETIC, set, i);
        int32_t cls = (int32_t)rng_below(&r, CLASSES);
        for (int j = 0; j < DIM; j++)
            s.x[i * DIM + j] = (float)(centres[cls][j] + rng_normal(&r));
        s.y[i] = random_labels ? (int32_t)rng_below(&r, CLASSES) : cls;
    }
    return s;
}

static void samples_free(Samples *s)
{
    free(s->x);
    free(s->y);
}

static double accuracy(const int32_t *predicted, const Samples *test)
{
    size_t hits = 0;
    for (size_t i = 0; i < test->n; i++)
        hits += predicted[i] == test->y[i];
    return (double)hits / (double)test->n;
}

static double knn_accuracy(double spread, bool random_labels)
{
    Samples train = clusters(1000, spread, random_labels, 0, 7), test = clusters(1000, spread, random_labels, 1, 7);
    int32_t *predicted = malloc(test.n * sizeof *predicted);
    knn_classify(predicted, test.x, train.x, train.y, &(KnnOptions){20, 0.07}, test.n, train.n, DIM, CLASSES);
    double acc = accuracy(predicted, &test);
    free(predicted);
    samples_free(&train);
    samples_free(&test);
    return acc;
}

static void test_knn_clusters(void)
{
    double separated = knn_accuracy(1.0, false), random = knn_accuracy(1.0, true), no_signal = knn_accuracy(0.0, false);
    printf("kNN accuracy: separated clusters %.4f, random labels %.4f, no class signal %.4f (chance %.2f)\n",
           separated, random, no_signal, 1.0 / CLASSES);
    CHECK(separated > 0.95, "separated clusters: %.4f", separated);
    CHECK(random > 0.12 && random < 0.28, "random labels must stay near chance: %.4f", random);
    CHECK(no_signal > 0.12 && no_signal < 0.28, "features without class signal: %.4f", no_signal);
}

/* Linear probe accuracy on the test set; the features are scaled and shifted by (scale, shift)
 * per dimension first, which the probe's normalisation must undo. */
static double probe_accuracy(double spread, bool random_labels, float scale, float shift, LinearProbe *keep)
{
    Samples train = clusters(1000, spread, random_labels, 0, 11), test = clusters(1000, spread, random_labels, 1, 11);
    for (size_t i = 0; i < train.n * DIM; i++) {
        train.x[i] = train.x[i] * scale + shift * (float)(i % DIM);
        test.x[i] = test.x[i] * scale + shift * (float)(i % DIM);
    }
    LinprobeOptions o = linprobe_default_options();
    o.epochs = 30;
    LinearProbe probe;
    linprobe_train(&probe, train.x, train.y, &o, NULL, NULL, train.n, DIM, CLASSES);
    int32_t *predicted = malloc(test.n * sizeof *predicted);
    linprobe_predict(predicted, &probe, test.x, test.n);
    double acc = accuracy(predicted, &test);
    if (keep)
        *keep = probe;
    else
        linprobe_free(&probe);
    free(predicted);
    samples_free(&train);
    samples_free(&test);
    return acc;
}

static void test_linprobe_clusters(void)
{
    double separated = probe_accuracy(1.0, false, 1.0f, 0.0f, NULL);
    double scaled = probe_accuracy(1.0, false, 1000.0f, 500.0f, NULL);
    double random = probe_accuracy(1.0, true, 1.0f, 0.0f, NULL);
    printf("linear probe accuracy: separated clusters %.4f, scaled x1000 and shifted %.4f, random labels %.4f\n",
           separated, scaled, random);
    CHECK(separated > 0.95, "separated clusters: %.4f", separated);
    CHECK(scaled > 0.95, "the normalisation must undo scale and shift: %.4f", scaled);
    CHECK(random > 0.12 && random < 0.28, "random labels must stay near chance: %.4f", random);
}

static void test_linprobe_deterministic(void)
{
    LinearProbe a, b;
    probe_accuracy(1.0, false, 1.0f, 0.0f, &a);
    probe_accuracy(1.0, false, 1.0f, 0.0f, &b);
    CHECK(!memcmp(a.weight, b.weight, CLASSES * DIM * sizeof(float)) && !memcmp(a.bias, b.bias, CLASSES * sizeof(float)),
          "two runs with one seed give the same probe, bit for bit");
    linprobe_free(&a);
    linprobe_free(&b);
}

/* A constant feature has variance 0: eps keeps it finite, and it must not disturb the rest. */
static void test_linprobe_constant_feature(void)
{
    Samples s = clusters(200, 1.0, false, 0, 3);
    for (size_t i = 0; i < s.n; i++)
        s.x[i * DIM] = 4.0f;
    LinprobeOptions o = linprobe_default_options();
    o.epochs = 5;
    LinearProbe probe;
    linprobe_train(&probe, s.x, s.y, &o, NULL, NULL, s.n, DIM, CLASSES);
    bool finite = true;
    for (size_t i = 0; i < CLASSES * DIM; i++)
        finite = finite && isfinite(probe.weight[i]);
    CHECK(finite, "weights stay finite with a constant feature");
    linprobe_free(&probe);
    samples_free(&s);
}

int main(void)
{
    parallel_init(2);
    test_metrics_hand_computed();
    test_metrics_class_only_predicted();
    test_metrics_output();
    test_knn_hand_case();
    test_knn_clusters();
    test_linprobe_clusters();
    test_linprobe_deterministic();
    test_linprobe_constant_feature();
    parallel_shutdown();
    return test_summary("test_eval");
}
