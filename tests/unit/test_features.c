/* Feature files: a write/read round trip, and every kind of bad input refused with a message
 * that names the file and says what is wrong. */
#include "../testing.h"

#include "maec/features.h"
#include "maec/h5.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[] = "/tmp/maec-test-features-XXXXXX";

static char *path_in_dir(const char *name)
{
    static char paths[16][512];
    static int next = 0;
    char *p = paths[next++ % 16];
    snprintf(p, 512, "%s/%s", dir, name);
    return p;
}

/* count x dim features 0.5 * i, labels cycling over the classes, names a, b, c. */
static Features sample_features(size_t count, size_t dim, const char *pooling)
{
    static char *names[] = {"a", "b", "c"};
    Features f = {.count = count, .dim = dim, .num_classes = 3, .class_names = names,
                  .source_checkpoint = "run/checkpoint-00100.h5", .pooling = (char *)pooling};
    f.values = malloc((count * dim + 1) * sizeof *f.values);
    f.labels = malloc((count + 1) * sizeof *f.labels);
    for (size_t i = 0; i < count * dim; i++)
        f.values[i] = 0.5f * (float)i;
    for (size_t i = 0; i < count; i++)
        f.labels[i] = (int32_t)(i % 3);
    return f;
}

static void free_sample(Features *f)
{
    free(f->values);
    free(f->labels);
}

/* Writes f to name; returns the path. */
static const char *write_sample(const char *name, const Features *f)
{
    const char *path = path_in_dir(name);
    MaecError err = {""};
    int rc = features_write(path, f, true, &err);
    CHECK(rc == 0, "writing %s: %s", path, err.msg);
    return path;
}

/* Reading path must fail with a message holding the path and fragment. */
static void expect_read_error(const char *path, const char *fragment)
{
    Features f;
    MaecError err = {""};
    int rc = features_read(&f, path, &err);
    CHECK(rc != 0, "reading %s should fail (%s)", path, fragment);
    CHECK(strstr(err.msg, path) && strstr(err.msg, fragment), "message '%s' should name %s and say '%s'", err.msg,
          path, fragment);
    if (rc == 0)
        features_free(&f);
}

static void test_round_trip(void)
{
    Features w = sample_features(7, 4, "mean");
    const char *path = write_sample("round.h5", &w);
    Features r;
    MaecError err = {""};
    CHECK(features_read(&r, path, &err) == 0, "read back: %s", err.msg);
    CHECK(r.count == 7 && r.dim == 4 && r.num_classes == 3, "shape %zu x %zu, %zu classes", r.count, r.dim,
          r.num_classes);
    CHECK(!memcmp(r.values, w.values, 28 * sizeof(float)) && !memcmp(r.labels, w.labels, 7 * sizeof(int32_t)),
          "values and labels");
    CHECK(!strcmp(r.class_names[2], "c") && !strcmp(r.pooling, "mean") &&
              !strcmp(r.source_checkpoint, "run/checkpoint-00100.h5") && !strcmp(r.source_dataset, ""),
          "names and provenance");
    CHECK(!strcmp(r.path, path), "the path is kept for messages");
    CHECK(features_write(path, &w, false, &err) != 0 && strstr(err.msg, "already exists"),
          "no silent overwrite: %s", err.msg);
    CHECK(access(path_in_dir("round.h5.partial"), F_OK) != 0, "no partial file is left behind");
    features_free(&r);
    free_sample(&w);
}

static void test_bad_files(void)
{
    expect_read_error(path_in_dir("absent.h5"), "No such file");
    FILE *text = fopen(path_in_dir("text.h5"), "w");
    fputs("not hdf5\n", text);
    fclose(text);
    expect_read_error(path_in_dir("text.h5"), "not an HDF5 file");

    Features f = sample_features(0, 4, "cls");
    expect_read_error(write_sample("empty.h5", &f), "empty");
    free_sample(&f);

    f = sample_features(6, 4, "cls");
    f.labels[4] = 3;
    expect_read_error(write_sample("range.h5", &f), "sample 4 has label 3");
    f.labels[4] = 1;
    f.values[9] = NAN;
    expect_read_error(write_sample("nan.h5", &f), "sample 2, feature 1");
    f.values[9] = 0.0f;

    const char *path = write_sample("nolabels.h5", &f);
    MaecError err = {""};
    hid_t file = h5_open_file(path, true, &err);
    h5_lock();
    H5Ldelete(file, "labels", H5P_DEFAULT);
    h5_unlock();
    h5_close_file(file);
    expect_read_error(path, "no /labels");

    path = write_sample("dataset.h5", &f);
    file = h5_open_file(path, true, &err);
    h5_attr_write_string(file, "format", "maec-dataset", &err);
    h5_close_file(file);
    expect_read_error(path, "'maec-dataset' file");
    free_sample(&f);
}

static void test_labels_required(void)
{
    Features w = sample_features(5, 2, "cls");
    for (size_t i = 0; i < 5; i++)
        w.labels[i] = i == 1 || i == 3 ? (int32_t)i % 3 : -1;
    Features r;
    MaecError err = {""};
    size_t dropped = 0;
    features_read(&r, write_sample("some.h5", &w), &err);
    CHECK(features_keep_labeled(&r, &dropped, &err) == 0 && dropped == 3 && r.count == 2, "3 of 5 dropped");
    CHECK(r.labels[1] == 0 && r.values[2] == 3.0f && r.values[3] == 3.5f, "the kept rows move up with their labels");
    features_free(&r);

    for (size_t i = 0; i < 5; i++)
        w.labels[i] = -1;
    const char *path = write_sample("unlabeled.h5", &w);
    features_read(&r, path, &err);
    CHECK(features_keep_labeled(&r, &dropped, &err) != 0 && strstr(err.msg, path) &&
              strstr(err.msg, "no labelled samples"),
          "all -1: %s", err.msg);
    features_free(&r);
    free_sample(&w);
}

/* check_compatible(train, test) must fail with both paths and fragment in the message. */
static void expect_incompatible(const Features *train, const Features *test, const char *fragment)
{
    Features a, b;
    MaecError err = {""};
    features_read(&a, write_sample("a.h5", train), &err);
    features_read(&b, write_sample("b.h5", test), &err);
    CHECK(features_check_compatible(&a, &b, &err) != 0 && strstr(err.msg, a.path) && strstr(err.msg, b.path) &&
              strstr(err.msg, fragment),
          "expected '%s' naming both files: %s", fragment, err.msg);
    features_free(&a);
    features_free(&b);
}

static void test_pairs(void)
{
    Features train = sample_features(6, 4, "cls"), narrow = sample_features(6, 3, "cls");
    expect_incompatible(&train, &narrow, "4-dimensional");
    Features renamed = sample_features(6, 4, "cls");
    char *names[] = {"a", "B", "c"};
    renamed.class_names = names;
    expect_incompatible(&train, &renamed, "class 1 is 'b'");
    renamed.num_classes = 2;
    memset(renamed.labels, 0, 6 * sizeof *renamed.labels);
    expect_incompatible(&train, &renamed, "3 classes");
    Features mean = sample_features(6, 4, "mean");
    expect_incompatible(&train, &mean, "'cls'");
    Features a, b;
    MaecError err = {""};
    features_read(&a, write_sample("a.h5", &train), &err);
    features_read(&b, write_sample("b.h5", &train), &err);
    CHECK(features_check_compatible(&a, &b, &err) == 0, "same layout is compatible: %s", err.msg);
    features_free(&a);
    features_free(&b);
    free_sample(&train);
    free_sample(&narrow);
    free_sample(&renamed);
    free_sample(&mean);
}

int main(void)
{
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_round_trip();
    test_bad_files();
    test_labels_required();
    test_pairs();
    int rc = test_summary("test_features");
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return rc;
}
