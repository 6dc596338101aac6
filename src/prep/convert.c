#include "maec/convert.h"

#include "maec/alloc.h"
#include "maec/dataset.h"
#include "maec/dataset_writer.h"
#include "maec/dist.h"
#include "maec/exchange.h"
#include "maec/log.h"
#include "maec/parallel.h"
#include "maec/split.h"
#include "maec/timer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A block of decoded items holds about this many bytes over all ranks: large enough that the
 * gather costs little per item, small enough to stay far below MPI's 2 GiB limit per rank. */
#define BLOCK_TARGET_BYTES ((size_t)32 << 20)
#define PROGRESS_SECONDS 5.0

/* What a rank sends back for one item: how decoding ended, why it failed, then the pixels. */
typedef struct ItemResult {
    int32_t status;
    char reason[508];
} ItemResult;

typedef struct Block {
    PrepSource *src;
    size_t first;       /* index of the rank's first item */
    size_t record_size; /* sizeof(ItemResult) + sample bytes */
    uint8_t *records;
} Block;

static void decode_range(void *ctx, size_t begin, size_t end, int thread)
{
    Block *b = ctx;
    for (size_t i = begin; i < end; i++) {
        uint8_t *rec = b->records + i * b->record_size;
        ItemResult result = {.status = ITEM_OK, .reason = ""};
        MaecError err = {""};
        result.status = (int32_t)b->src->read(b->src->ctx, &b->src->items[b->first + i],
                                              rec + sizeof result, thread, &err);
        if (result.status != ITEM_OK)
            snprintf(result.reason, sizeof result.reason, "%s", err.msg);
        memcpy(rec, &result, sizeof result);
    }
}

void convert_output_path(char *path, size_t size, const char *output, int file, int shards)
{
    size_t len = strlen(output);
    int stem = (int)(len > 3 && !strcmp(output + len - 3, ".h5") ? len - 3 : len);
    if (file == shards)
        snprintf(path, size, "%.*s-val.h5", stem, output);
    else if (shards == 1)
        snprintf(path, size, "%s", output);
    else
        snprintf(path, size, "%.*s-%05d-of-%05d.h5", stem, output, file, shards);
}

/* The state of one run on rank 0 (writers) and on every rank (assignment). */
typedef struct Run {
    PrepSource *src;
    const ConvertOptions *opt;
    int *file_of_item;
    int num_files; /* shards, plus one with a validation file */
    DatasetWriter **writers;
    size_t sample_bytes, skipped;
    SampleMeta *skips; /* every skipped input, recorded in every file */
    char **skip_reasons;
} Run;

static int check_same_source(const PrepSource *src, MaecError *err)
{
    uint64_t mine = source_fingerprint(src);
    uint64_t *all = xmalloc((size_t)dist_size() * sizeof *all, "input fingerprints");
    dist_allgather(&mine, all, sizeof mine);
    int rc = 0;
    for (int r = 1; r < dist_size() && !rc; r++)
        if (all[r] != all[0])
            rc = error_set(err, "rank %d found different inputs than rank 0 (files changing while prep runs, "
                                "or a folder that differs between nodes?); run again on a stable copy", r);
    free(all);
    return rc;
}

static int open_writers(Run *run, MaecError *err)
{
    const ConvertOptions *opt = run->opt;
    const PrepSource *src = run->src;
    size_t *counts = xcalloc((size_t)run->num_files, sizeof *counts, "file sizes");
    for (size_t i = 0; i < src->num_items; i++)
        counts[run->file_of_item[i]]++;
    run->writers = xcalloc((size_t)run->num_files, sizeof *run->writers, "dataset writers");
    int rc = 0;
    for (int f = 0; f < run->num_files && !rc && dist_rank() == 0; f++) {
        char path[4096];
        convert_output_path(path, sizeof path, opt->output, f, opt->shards);
        DatasetWriterConfig cfg = {
            .height = src->height, .width = src->width, .channels = src->channels,
            .class_names = (const char *const *)src->class_names, .num_classes = src->num_classes,
            .source = src->description, .mpp = src->mpp, .deflate = opt->deflate,
            .expected_count = counts[f], .split = f == opt->shards ? "val" : "train",
            .shard_index = f == opt->shards ? 0 : f, .shard_count = f == opt->shards ? 1 : opt->shards,
            .command = opt->command,
        };
        if (opt->shards == 1 && run->num_files == 1)
            cfg.split = "all";
        run->writers[f] = dataset_writer_create(path, &cfg, opt->force, err);
        rc = run->writers[f] ? 0 : -1;
    }
    free(counts);
    return rc;
}

static void record_skip(Run *run, const PrepItem *item, const char *reason)
{
    run->skips = xrealloc(run->skips, (run->skipped + 1) * sizeof *run->skips, "skipped inputs");
    run->skip_reasons = xrealloc(run->skip_reasons, (run->skipped + 1) * sizeof *run->skip_reasons,
                                 "skipped inputs");
    run->skips[run->skipped] = (SampleMeta){.source = run->src->sources[item->source], .record = item->record,
                                            .x = item->x, .y = item->y};
    run->skip_reasons[run->skipped++] = xstrdup(reason);
    log_warn("skipped %s: %s", run->src->sources[item->source], reason);
}

/* Rank 0: appends the gathered results of items [first, first + n) to their files. */
static int write_block(Run *run, const uint8_t *records, size_t first, size_t n, size_t record_size,
                       MaecError *err)
{
    for (size_t i = 0; i < n; i++) {
        const uint8_t *rec = records + i * record_size;
        ItemResult result;
        memcpy(&result, rec, sizeof result);
        const PrepItem *item = &run->src->items[first + i];
        const char *name = run->src->sources[item->source];
        if (result.status == ITEM_FATAL || (result.status == ITEM_SKIP && run->opt->strict))
            return error_set(err, "%s%s", result.reason,
                             result.status == ITEM_SKIP ? " (--strict: stopping; leave it out to skip such inputs)" : "");
        if (result.status == ITEM_SKIP) {
            record_skip(run, item, result.reason);
            continue;
        }
        SampleMeta meta = {.source = name, .record = item->record, .x = item->x, .y = item->y};
        if (dataset_writer_append(run->writers[run->file_of_item[first + i]], rec + sizeof result, item->label,
                                  &meta, err))
            return -1;
    }
    return 0;
}

static void report_progress(const Run *run, size_t done, double start, double *last)
{
    double now = now_seconds();
    if (done < run->src->num_items && now - *last < PROGRESS_SECONDS)
        return;
    *last = now;
    double rate = (double)done / (now - start > 1e-9 ? now - start : 1e-9);
    log_info("prep: %zu / %zu %s (%.0f %s/s, %zu skipped)", done, run->src->num_items, run->src->unit, rate,
             run->src->unit, run->skipped);
}

/* Decodes items [first, first + n): each rank its share, rank 0 writes all of them. */
static int convert_block(Run *run, size_t first, size_t n, MaecError *err)
{
    size_t begin, end, record_size = sizeof(ItemResult) + run->sample_bytes;
    dataset_rank_range(n, dist_rank(), dist_size(), &begin, &end);
    Block b = {.src = run->src, .first = first + begin, .record_size = record_size};
    b.records = xmalloc((end - begin) * record_size + 1, "decoded items");
    parallel_for(end - begin, 1, decode_range, &b);
    uint8_t *all = NULL;
    size_t *offsets = xmalloc(((size_t)dist_size() + 1) * sizeof *offsets, "block offsets");
    exchange_gather(&all, offsets, b.records, (end - begin) * record_size);
    free(b.records);
    int rc = dist_rank() == 0 ? write_block(run, all, first, n, record_size, err) : 0;
    free(all);
    free(offsets);
    return exchange_agree(rc, err);
}

static int convert_items(Run *run, MaecError *err)
{
    size_t record_size = sizeof(ItemResult) + run->sample_bytes;
    size_t per_block = BLOCK_TARGET_BYTES / record_size;
    per_block = per_block < (size_t)dist_size() ? (size_t)dist_size() : per_block;
    double start = now_seconds(), last = start;
    for (size_t first = 0; first < run->src->num_items; first += per_block) {
        size_t n = run->src->num_items - first < per_block ? run->src->num_items - first : per_block;
        if (convert_block(run, first, n, err))
            return -1;
        report_progress(run, first + n, start, &last);
    }
    return 0;
}

/* Rank 0: records every skipped input in every file, closes and renames them. */
static int finish_files(Run *run, MaecError *err)
{
    size_t total = 0;
    for (int f = 0; f < run->num_files; f++)
        total += dataset_writer_count(run->writers[f]);
    if (total == 0)
        return error_set(err, "every one of the %zu %s was skipped (see the messages above); nothing to write",
                         run->src->num_items, run->src->unit);
    for (int f = 0; f < run->num_files; f++) {
        for (size_t s = 0; s < run->src->num_rejected; s++)
            dataset_writer_skip(run->writers[f], &(SampleMeta){.source = run->src->rejected[s], .x = -1, .y = -1},
                                run->src->rejected_reason[s]);
        for (size_t s = 0; s < run->skipped; s++)
            dataset_writer_skip(run->writers[f], &run->skips[s], run->skip_reasons[s]);
        if (dataset_writer_close(run->writers[f], err))
            return -1;
    }
    for (int f = 0; f < run->num_files; f++) {
        int rc = dataset_writer_commit(run->writers[f], err);
        run->writers[f] = NULL;
        if (rc)
            return -1;
    }
    return 0;
}

static void summarize(const Run *run)
{
    for (int f = 0; f < run->num_files; f++) {
        char path[4096];
        convert_output_path(path, sizeof path, run->opt->output, f, run->opt->shards);
        log_info("prep: wrote %s", path);
    }
    log_info("prep: %zu %s converted, %zu skipped, %zu inputs rejected", run->src->num_items - run->skipped,
             run->src->unit, run->skipped, run->src->num_rejected);
}

static int check_rejected(const PrepSource *src, const ConvertOptions *opt, MaecError *err)
{
    for (size_t s = 0; s < src->num_rejected; s++)
        log_warn("skipped %s: %s", src->rejected[s], src->rejected_reason[s]);
    if (opt->strict && src->num_rejected > 0)
        return error_set(err, "%s: %s (--strict: stopping)", src->rejected[0], src->rejected_reason[0]);
    if (src->num_items == 0)
        return error_set(err, "the inputs hold no %s to convert%s", src->unit,
                         src->num_rejected ? " (every input was rejected, see above)" : "");
    return 0;
}

static void free_run(Run *run)
{
    for (int f = 0; run->writers && f < run->num_files; f++)
        dataset_writer_abort(run->writers[f]);
    for (size_t s = 0; s < run->skipped; s++)
        free(run->skip_reasons[s]);
    free(run->skip_reasons);
    free(run->skips);
    free(run->writers);
    free(run->file_of_item);
}

int convert_run(PrepSource *src, const ConvertOptions *opt, MaecError *err)
{
    Run run = {.src = src, .opt = opt, .num_files = opt->shards + (opt->val_fraction > 0 ? 1 : 0)};
    run.sample_bytes = (size_t)src->height * (size_t)src->width * (size_t)src->channels;
    int rc = check_same_source(src, err) || check_rejected(src, opt, err);
    if (!rc) {
        run.file_of_item = xmalloc((src->num_items ? src->num_items : 1) * sizeof *run.file_of_item, "split");
        rc = split_assign(run.file_of_item, src->items, src->num_items, opt->shards, opt->val_fraction,
                          src->split_by_source, opt->seed, err);
    }
    rc = rc ? -1 : exchange_agree(open_writers(&run, err), err);
    if (!rc)
        rc = convert_items(&run, err);
    if (!rc)
        rc = exchange_agree(dist_rank() == 0 ? finish_files(&run, err) : 0, err);
    if (!rc)
        summarize(&run);
    free_run(&run);
    return rc;
}
