/* The dataset writer and reader together: round trips, shards read as one dataset, statistics
 * that agree exactly between a file and its shards, the validation and shard split, and every
 * way a file can be unusable (each message must name the file). */
#include "../testing.h"

#include "maec/dataset.h"
#include "maec/dataset_writer.h"
#include "maec/h5.h"
#include "maec/split.h"
#include "maec/synthetic.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[256];

static void path_in_dir(char *path, size_t size, const char *name) { snprintf(path, size, "%s/%s", dir, name); }

static const char *const class_names[] = {"a", "b", "c"};

/* Writes samples [first, first + n) of a synthetic 8x6x3 set, labels i % 3 (-1 every 7th). */
static int write_file(const char *name, size_t first, size_t n, int deflate)
{
    char path[512];
    path_in_dir(path, sizeof path, name);
    DatasetWriterConfig cfg = {.height = 8, .width = 6, .channels = 3, .class_names = class_names,
                               .num_classes = 3, .source = "test", .mpp = 0.5, .deflate = deflate,
                               .expected_count = n, .split = "all", .shard_count = 1, .command = "test"};
    SyntheticConfig syn = {.count = 1000, .height = 8, .width = 6, .channels = 3, .classes = 3, .seed = 7};
    MaecError err;
    DatasetWriter *w = dataset_writer_create(path, &cfg, true, &err);
    CHECK(w != NULL, "%s", err.msg);
    if (!w)
        return -1;
    uint8_t pixels[8 * 6 * 3];
    for (size_t i = first; i < first + n; i++) {
        synthetic_image(pixels, &syn, i);
        SampleMeta meta = {.source = "synthetic", .record = (int64_t)i, .x = -1, .y = -1};
        CHECK(dataset_writer_append(w, pixels, i % 7 == 0 ? -1 : (int32_t)(i % 3), &meta, &err) == 0, "%s", err.msg);
    }
    dataset_writer_skip(w, &(SampleMeta){.source = "bad.tif", .x = -1, .y = -1}, "truncated");
    CHECK(dataset_writer_close(w, &err) == 0, "%s", err.msg);
    CHECK(dataset_writer_commit(w, &err) == 0, "%s", err.msg);
    CHECK(access(path, F_OK) == 0, "%s was not renamed into place", path);
    return 0;
}

/* How many samples of ds differ from synthetic samples first, first + 1, ... (pixels or label).
 * No CHECK inside: threads call it. */
static size_t count_wrong_samples(Dataset *ds, size_t first)
{
    SyntheticConfig syn = {.count = 1000, .height = 8, .width = 6, .channels = 3, .classes = 3, .seed = 7};
    uint8_t want[8 * 6 * 3], got[8 * 6 * 3];
    MaecError err;
    size_t wrong = 0;
    for (size_t i = 0; i < dataset_count(ds); i++) {
        int32_t label = 99;
        synthetic_image(want, &syn, first + i);
        int32_t expect = (first + i) % 7 == 0 ? -1 : (int32_t)((first + i) % 3);
        if (dataset_read(ds, i, got, &label, &err) || memcmp(want, got, sizeof got) || label != expect)
            wrong++;
    }
    return wrong;
}

static void check_samples(Dataset *ds, size_t first)
{
    size_t wrong = count_wrong_samples(ds, first);
    CHECK(wrong == 0, "%zu of %zu samples read back wrong", wrong, dataset_count(ds));
}

static void test_round_trip(void)
{
    for (int deflate = 0; deflate <= 4; deflate += 4) {
        write_file("one.h5", 0, 100, deflate);
        char path[512];
        path_in_dir(path, sizeof path, "one.h5");
        for (size_t limit = 0; limit <= DATASET_DEFAULT_MEMORY_LIMIT; limit += DATASET_DEFAULT_MEMORY_LIMIT) {
            MaecError err;
            DatasetOpenOptions options = {.memory_limit = limit};
            Dataset *ds = dataset_open_with(path, &options, &err);
            CHECK(ds != NULL, "%s", err.msg);
            if (!ds)
                return;
            CHECK(dataset_count(ds) == 100 && dataset_height(ds) == 8 && dataset_width(ds) == 6 &&
                      dataset_channels(ds) == 3 && dataset_num_classes(ds) == 3,
                  "shape or classes wrong");
            CHECK(!strcmp(dataset_class_name(ds, 2), "c") && dataset_mpp(ds) == 0.5, "attributes wrong");
            CHECK(dataset_in_memory(ds) == (limit > 0), "memory mode");
            check_samples(ds, 0);
            size_t indices[3] = {43, 0, 99};
            uint8_t out[3 * 8 * 6 * 3], one[8 * 6 * 3];
            int32_t labels[3];
            CHECK(dataset_read_many(ds, indices, 3, out, labels, &err) == 0, "%s", err.msg);
            dataset_read(ds, 99, one, NULL, &err);
            CHECK(memcmp(out + 2 * sizeof one, one, sizeof one) == 0 && labels[0] == 1, "read_many order");
            CHECK(dataset_read(ds, 100, one, NULL, &err) == -1 && strstr(err.msg, "100"), "out of range: %s", err.msg);
            dataset_close(ds);
        }
    }
}

static void *read_everything(void *ds)
{
    return (void *)count_wrong_samples(ds, 0);
}

/* The prefetch thread reads while the main thread writes checkpoints: reads from several threads
 * at once (through HDF5, not from memory) must all see the right samples. */
static void test_concurrent_reads(void)
{
    char path[512];
    path_in_dir(path, sizeof path, "one.h5");
    MaecError err;
    Dataset *ds = dataset_open_with(path, &(DatasetOpenOptions){.memory_limit = 0}, &err);
    CHECK(ds != NULL, "%s", err.msg);
    if (!ds)
        return;
    pthread_t threads[4];
    for (int t = 0; t < 4; t++)
        pthread_create(&threads[t], NULL, read_everything, ds);
    for (int t = 0; t < 4; t++) {
        void *wrong = NULL;
        pthread_join(threads[t], &wrong);
        CHECK(wrong == NULL, "thread %d read %zu samples wrong", t, (size_t)wrong);
    }
    dataset_close(ds);
}

/* Shards opened by glob are one dataset, and their mean/std equal the single file's exactly. */
static void test_shards(void)
{
    write_file("whole.h5", 0, 90, 0);
    write_file("part-00000-of-00003.h5", 0, 30, 0);
    write_file("part-00001-of-00003.h5", 30, 31, 0);
    write_file("part-00002-of-00003.h5", 61, 29, 0);
    char whole[512], glob[512];
    path_in_dir(whole, sizeof whole, "whole.h5");
    path_in_dir(glob, sizeof glob, "part-*-of-00003.h5");
    MaecError err;
    Dataset *a = dataset_open(whole, &err), *b = dataset_open(glob, &err);
    CHECK(a && b, "%s", err.msg);
    if (!a || !b)
        return;
    CHECK(dataset_count(b) == 90 && dataset_file_count(b) == 3 && dataset_file_first(b, 2) == 61, "shard layout");
    check_samples(b, 0);
    for (int c = 0; c < 3; c++)
        CHECK(dataset_mean(a)[c] == dataset_mean(b)[c] && dataset_std(a)[c] == dataset_std(b)[c],
              "channel %d: mean/std of the shards differ from the whole file", c);
    CHECK(memcmp(dataset_labels(a), dataset_labels(b), 90 * sizeof(int32_t)) == 0, "labels differ");
    dataset_close(a);
    dataset_close(b);
    size_t begin, end, total = 0;
    for (int r = 0; r < 4; r++) {
        dataset_rank_range(90, r, 4, &begin, &end);
        CHECK(begin == total && (end - begin == 22 || end - begin == 23), "rank %d: [%zu, %zu)", r, begin, end);
        total = end;
    }
    CHECK(total == 90, "rank ranges cover %zu", total);
}

static void expect_open_error(const char *path, const char *fragment)
{
    MaecError err = {""};
    Dataset *ds = dataset_open(path, &err);
    CHECK(ds == NULL, "%s opened", path);
    dataset_close(ds);
    CHECK(strstr(err.msg, path) && strstr(err.msg, fragment), "message for %s: '%s' (want '%s')", path, err.msg,
          fragment);
}

static void set_attribute(const char *path, const char *name, int32_t value)
{
    MaecError err;
    hid_t f = h5_open_file(path, true, &err);
    CHECK(f >= 0, "%s", err.msg);
    CHECK(h5_attr_write_scalar(f, name, H5T_NATIVE_INT32, &value, &err) == 0, "%s", err.msg);
    h5_close_file(f);
}

static void test_bad_files(void)
{
    char path[512], other[512], both[1100];
    path_in_dir(path, sizeof path, "missing.h5");
    expect_open_error(path, "No such file");
    path_in_dir(path, sizeof path, "text.h5");
    FILE *f = fopen(path, "w");
    fputs("not hdf5\n", f);
    fclose(f);
    expect_open_error(path, "not an HDF5 file");
    path_in_dir(path, sizeof path, "truncated.h5");
    write_file("truncated.h5", 0, 50, 0);
    CHECK(truncate(path, 4000) == 0, "truncate");
    expect_open_error(path, "truncated.h5");
    path_in_dir(path, sizeof path, "future.h5");
    write_file("future.h5", 0, 10, 0);
    set_attribute(path, "format_version", DATASET_FORMAT_VERSION + 1);
    expect_open_error(path, "newer than this maec reads");
    path_in_dir(path, sizeof path, "classes.h5");
    write_file("classes.h5", 0, 10, 0);
    set_attribute(path, "num_classes", 5);
    expect_open_error(path, "class_names lists 3");
    path_in_dir(path, sizeof path, "nomatch-*.h5");
    expect_open_error(path, "matches no file");
    path_in_dir(path, sizeof path, "whole.h5");
    path_in_dir(other, sizeof other, "gray.h5");
    DatasetWriterConfig cfg = {.height = 8, .width = 6, .channels = 1, .source = "gray", .expected_count = 1,
                               .shard_count = 1};
    MaecError err;
    DatasetWriter *w = dataset_writer_create(other, &cfg, true, &err);
    uint8_t pixels[48] = {0};
    dataset_writer_append(w, pixels, -1, &(SampleMeta){.source = "x", .x = -1, .y = -1}, &err);
    dataset_writer_close(w, &err);
    dataset_writer_commit(w, &err);
    snprintf(both, sizeof both, "%s,%s", path, other);
    Dataset *ds = dataset_open(both, &err);
    CHECK(!ds && strstr(err.msg, "gray.h5") && strstr(err.msg, "image shape"), "mixed shapes: %s", err.msg);
    dataset_close(ds);
    CHECK(dataset_writer_create(path, &cfg, false, &err) == NULL && strstr(err.msg, "--force"),
          "existing output: %s", err.msg);
}

static void test_split(void)
{
    enum { N = 200 };
    PrepItem items[N];
    for (int i = 0; i < N; i++)
        items[i] = (PrepItem){.source = i / 10, .label = (i / 10) % 4, .x = -1, .y = -1};
    int file[N], again[N];
    MaecError err;
    CHECK(split_assign(file, items, N, 3, 0.25, false, 5, &err) == 0, "%s", err.msg);
    split_assign(again, items, N, 3, 0.25, false, 5, &err);
    CHECK(memcmp(file, again, sizeof file) == 0, "the split depends on more than items and seed");
    int per_file[4] = {0}, val_per_label[4] = {0};
    for (int i = 0; i < N; i++) {
        per_file[file[i]]++;
        val_per_label[items[i].label] += file[i] == 3;
    }
    CHECK(per_file[3] == 52 && val_per_label[0] == 13 && val_per_label[3] == 13, "stratified: val %d (label 0: %d)",
          per_file[3], val_per_label[0]);
    CHECK(abs(per_file[0] - per_file[2]) <= 1 && abs(per_file[0] - per_file[1]) <= 1, "shards %d %d %d", per_file[0],
          per_file[1], per_file[2]);
    CHECK(split_assign(file, items, N, 2, 0.3, true, 5, &err) == 0, "%s", err.msg);
    for (int i = 1; i < N; i++)
        if (items[i].source == items[i - 1].source)
            CHECK((file[i] == 2) == (file[i - 1] == 2), "source %d split across train and validation", items[i].source);
    CHECK(split_assign(file, items, 3, 4, 0.0, false, 5, &err) == -1 && strstr(err.msg, "--shards"), "%s", err.msg);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/maec-test-dataset-XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_round_trip();
    test_concurrent_reads();
    test_shards();
    test_bad_files();
    test_split();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return test_summary("test_dataset");
}
