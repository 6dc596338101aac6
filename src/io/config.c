#include "maec/config.h"

#include <math.h>
#include <string.h>

/* Enum fields are stored through int pointers by the key table. */
_Static_assert(sizeof(JobNormalize) == sizeof(int) && sizeof(JobDistMode) == sizeof(int),
               "job enums must be int-sized");

static const char *const mask_weight_names[] = {"none", "neighbours", NULL};
static const char *const normalize_names[] = {"dataset", "imagenet", "none", "custom", NULL};
static const char *const dist_names[] = {"allreduce", "zero1", "zero2", NULL};

static void fill_from_preset(void *target)
{
    JobConfig *cfg = target;
    MaecError err;
    if (vit_preset(vit_preset_names[cfg->model_preset], &cfg->model, &err))
        fatal("internal: %s", err.msg);
}

#define KEYROW_TARGET JobConfig
#define AT KEYROW_AT
#define MODEL_INT(p, f, hi, text) \
    {.path = p, .type = KEY_INT, .offset = AT(f), .min = 1, .max = hi, .default_from = "model.preset", .doc = text}
#define OPEN_MIN KEY_MIN_OPEN
#define OPEN_MAX KEY_MAX_OPEN
#define OPEN KEY_OPEN
#define UNBOUNDED HUGE_VAL

/* The single source of truth for keys: order, types, ranges, defaults and docs. Keys of a section
 * come right after its row, before its subsections (see keytable.h). */
static const Key keys[] = {
    KEYROW_INT("seed", seed, 0, UNBOUNDED, "0", "Seed of every random draw (initialisation, masks, crops, shuffling); "
        "a seed gives the same run on any number of ranks"),
    KEYROW_INT("threads", threads, 0, 1024, "0", "Worker threads per rank; 0 = the CPUs this rank may use"),

    KEYROW_SECTION("model", "The ViT encoder and the MAE decoder. `preset` fills every field that is not given "
            "explicitly; a field given here or with --set keeps its value, whatever the order."),
    {.path = "model.preset", .type = KEY_ENUM, .offset = AT(model_preset), .names = vit_preset_names,
     .def = "vit-tiny", .after = fill_from_preset,
     .doc = "Starting shape: the ViT paper's encoders at 224 px, patch 16, RGB, with the MAE decoder "
            "(512 wide, 8 blocks, 16 heads); `-light` variants have a 2-block decoder (128 or 256 wide)"},
    MODEL_INT("model.img_size", model.img_size, 8192, "Image side in pixels: a multiple of model.patch_size"),
    MODEL_INT("model.patch_size", model.patch_size, 1024, "Patch side in pixels"),
    MODEL_INT("model.in_chans", model.in_chans, KEY_FLOATS_MAX, "Image channels (3 for RGB); must match "
              "the dataset"),
    MODEL_INT("model.embed_dim", model.embed_dim, 16384, "Encoder width: a multiple of 4 and of "
              "model.num_heads"),
    MODEL_INT("model.depth", model.depth, 256, "Encoder transformer blocks"),
    MODEL_INT("model.num_heads", model.num_heads, 256, "Encoder attention heads"),
    MODEL_INT("model.decoder_embed_dim", model.decoder_embed_dim, 16384, "Decoder width: a multiple of 4 and "
              "of model.decoder_num_heads"),
    MODEL_INT("model.decoder_depth", model.decoder_depth, 256, "Decoder transformer blocks"),
    MODEL_INT("model.decoder_num_heads", model.decoder_num_heads, 256, "Decoder attention heads"),
    {.path = "model.mlp_ratio", .type = KEY_FLOAT, .offset = AT(model.mlp_ratio), .min = 0, .max = 16,
     .flags = OPEN_MIN, .default_from = "model.preset",
     .doc = "MLP hidden width as a multiple of the block width (encoder and decoder)"},

    KEYROW_SECTION("masking", "Which patches the encoder does not see, for the objectives that take the job's mask "
            "(their pages in docs/variants say so). Masks are drawn from (seed, epoch, sample), so they do not "
            "depend on the number of ranks."),
    KEYROW_ENUM("masking.kind", masking.kind, mask_kind_names, "random", "The mask generator: `random` masks a "
         "uniformly random subset of each image's patches (MAE), `block` random rectangles of patches "
         "(BEiT), topped up to the exact count with random ones"),
    KEYROW_FLOAT("masking.ratio", masking.ratio, 0, 1, OPEN, "0.75", "Fraction of patches masked; "
          "int(patches * (1 - ratio)) stay visible and must be at least 1"),
    KEYROW_ENUM("masking.weights", masking.weights, mask_weight_names, "none", "Loss weight of each masked patch: "
         "`none` 1, `neighbours` 1 + the masked fraction of its 3x3 neighbourhood (BootMAE's weight_mask); "
         "the loss is still divided by the number of masked patches"),
    KEYROW_FLOAT("masking.block_ratio", masking.block_ratio, 0, 1, OPEN_MAX, "0", "With `kind: block`, the fraction "
          "of patches that the rectangles cover before the count is made exact; 0 = masking.ratio"),
    KEYROW_INT("masking.block_min_patches", masking.block_min_patches, 1, 1 << 20, "16", "With `kind: block`, the "
        "smallest rectangle in patches (BEiT: 16)"),
    KEYROW_FLOAT("masking.block_min_aspect", masking.block_min_aspect, 0, 1, OPEN_MIN, "0.3", "With `kind: block`, "
          "the aspect ratios of the rectangles lie in [block_min_aspect, 1 / block_min_aspect] (BEiT: 0.3)"),

    KEYROW_SECTION("data", "The datasets (HDF5 files written by `maec prep`) and how images are prepared."),
    KEYROW_STRING("data.train", data.train, KEY_NONEMPTY, "\"\"", "The training data: an HDF5 dataset file, a "
           "glob such as `data/nct-*.h5`, or a comma-separated list of shards. Required"),
    KEYROW_STRING("data.val", data.val, 0, "\"\"", "Validation data for the reconstruction loss, in the same "
           "forms; empty = none"),
    KEYROW_ENUM("data.normalize", data.normalize, normalize_names, "dataset", "Per-channel normalisation of "
         "pixels in [0, 1]: `dataset` uses the mean/std stored in the dataset, `imagenet` the ImageNet "
         "values (RGB only), `custom` data.mean and data.std, `none` none"),
    KEYROW_FLOATS("data.mean", data.mean, 0, 0, 1, 0, "[]", "With `normalize: custom`, the mean of each "
           "channel (model.in_chans values), in pixel units of [0, 1]"),
    KEYROW_FLOATS("data.std", data.std, 0, 0, 1, OPEN_MIN, "[]", "With `normalize: custom`, the standard "
           "deviation of each channel (model.in_chans values)"),
    KEYROW_INT("data.prefetch", data.prefetch, 1, 64, "2", "Batches the prefetch thread reads and augments "
        "ahead of the step"),

    KEYROW_SECTION("data.augment", "Random changes to each training image, drawn from (seed, epoch, sample) so "
            "they do not depend on the number of ranks."),
    KEYROW_FLOATS("data.augment.crop_scale", data.augment.crop_scale, 2, 0, 1, OPEN_MIN | KEY_ASCENDING,
           "[0.2, 1.0]", "Random resized crop: range of the crop's area as a fraction of the image"),
    KEYROW_FLOATS("data.augment.crop_ratio", data.augment.crop_ratio, 2, 0, 100, OPEN_MIN | KEY_ASCENDING,
           "[0.75, 1.3333333333333333]", "Random resized crop: range of the crop's aspect ratio "
           "(width / height)"),
    KEYROW_BOOL("data.augment.hflip", data.augment.hflip, "true", "Mirror left-right with probability 1/2"),
    KEYROW_BOOL("data.augment.vflip", data.augment.vflip, "false", "Mirror top-bottom with probability 1/2 "
         "(tissue tiles have no up)"),
    KEYROW_BOOL("data.augment.rot90", data.augment.rot90, "false", "Rotate by a random multiple of 90 degrees"),

    KEYROW_SECTION("optim", "AdamW and the learning-rate schedule: linear warm-up from 0 to the peak, then a "
            "half-cosine down to min_lr, updated every optimizer step."),
    KEYROW_FLOAT("optim.blr", optim.blr, 0, 1, OPEN_MIN, "1.5e-4", "Base learning rate: the peak is blr * global "
          "batch / 256 (global batch = ranks * batch_per_rank * accum_iter) unless optim.lr > 0"),
    KEYROW_FLOAT("optim.lr", optim.lr, 0, 10, 0, "0", "Peak learning rate as an absolute value; 0 = from "
          "optim.blr"),
    KEYROW_FLOAT("optim.min_lr", optim.min_lr, 0, 10, 0, "0", "Learning rate at the end of the cosine"),
    KEYROW_FLOAT("optim.epochs", optim.epochs, 0, 1e6, OPEN_MIN, "400", "Run length in passes over data.train; "
          "fractions are fine (the schedule is per step)"),
    KEYROW_INT("optim.steps", optim.steps, 0, UNBOUNDED, "0", "Run length in optimizer steps; when > 0 it replaces "
        "optim.epochs"),
    KEYROW_FLOAT("optim.warmup_epochs", optim.warmup_epochs, 0, 1e6, 0, "40", "Warm-up length in epochs"),
    KEYROW_INT("optim.warmup_steps", optim.warmup_steps, 0, UNBOUNDED, "0", "Warm-up length in optimizer steps; when "
        "> 0 it replaces optim.warmup_epochs"),
    KEYROW_INT("optim.batch_per_rank", optim.batch_per_rank, 1, 65536, "64", "Images per rank in one "
        "forward/backward pass"),
    KEYROW_INT("optim.global_batch", optim.global_batch, 0, 1 << 24, "0", "Images per optimizer step over all "
        "ranks; when > 0, batch_per_rank becomes global_batch / (ranks * accum_iter), which must be "
        "whole"),
    KEYROW_INT("optim.accum_iter", optim.accum_iter, 1, 65536, "1", "Passes whose gradients are summed before "
        "each optimizer step"),
    KEYROW_FLOAT("optim.weight_decay", optim.weight_decay, 0, 1, 0, "0.05", "AdamW decoupled weight decay; "
          "biases and LayerNorm parameters get none"),
    KEYROW_FLOAT("optim.beta1", optim.beta1, 0, 1, OPEN_MAX, "0.9", "AdamW decay of the gradient average"),
    KEYROW_FLOAT("optim.beta2", optim.beta2, 0, 1, OPEN_MAX, "0.95", "AdamW decay of the squared-gradient "
          "average (MAE uses 0.95, not PyTorch's 0.999)"),
    KEYROW_FLOAT("optim.eps", optim.eps, 0, 1, OPEN_MIN, "1e-8", "AdamW epsilon added to the denominator"),
    KEYROW_FLOAT("optim.clip_grad", optim.clip_grad, 0, UNBOUNDED, 0, "0", "Clip the global gradient norm to this "
          "value; 0 = no clipping (MAE pre-training does not clip)"),

    KEYROW_SECTION("dist", "How ranks combine gradients and share optimizer state. Every mode gives the same "
            "parameters; the ZeRO modes use less memory per rank."),
    KEYROW_ENUM("dist.mode", dist.mode, dist_names, "allreduce", "`allreduce`: every rank holds all optimizer "
         "state; `zero1`: optimizer state sharded across ranks; `zero2`: gradients sharded too"),
    KEYROW_FLOAT("dist.bucket_mb", dist.bucket_mb, 0, 4096, OPEN_MIN, "4", "Gradient message size in MiB: "
          "larger means fewer messages, smaller means communication starts earlier in the backward pass"),
    KEYROW_BOOL("dist.overlap", dist.overlap, "true", "Start reducing each bucket of gradients as soon as the "
         "backward pass has finished it, while it computes the layers below; the result is the same "
         "either way"),

    KEYROW_SECTION("checkpoint", "Where and when the run is saved. A checkpoint holds the model, the optimizer "
            "state, the position in the data and this configuration."),
    KEYROW_STRING("checkpoint.dir", checkpoint.dir, KEY_NONEMPTY, "runs/default", "Directory of the run "
           "(checkpoints, metrics); created if missing"),
    KEYROW_INT("checkpoint.every_steps", checkpoint.every_steps, 0, UNBOUNDED, "0", "Save every N optimizer steps; "
        "0 = off"),
    KEYROW_FLOAT("checkpoint.every_minutes", checkpoint.every_minutes, 0, 1e6, 0, "30", "Save when this many "
          "minutes have passed since the last save; 0 = off"),
    KEYROW_INT("checkpoint.keep_last", checkpoint.keep_last, 1, 1000000, "3", "Checkpoints kept; older ones are "
        "deleted once a newer one is complete"),

    KEYROW_SECTION("log", "Progress and metrics (written by rank 0)."),
    KEYROW_INT("log.every_steps", log.every_steps, 1, UNBOUNDED, "10", "Write a metrics line every N optimizer steps"),
    KEYROW_STRING("log.metrics", log.metrics, KEY_NONEMPTY, "metrics.jsonl", "Metrics file, one JSON object "
           "per line; a relative path is inside checkpoint.dir"),
};

/* The objective section is read by the objective layer (job.h). */
static const char *const delegated[] = {"objective", NULL};
static const KeyTable table = {keys, sizeof keys / sizeof keys[0], sizeof(JobConfig), offsetof(JobConfig, sources),
                               .skip = delegated};

const KeyTable *config_keys(void) { return &table; }

void config_defaults(JobConfig *cfg) { keytable_defaults(cfg, &table); }

char *config_to_yaml(const JobConfig *cfg) { return keytable_to_yaml(cfg, &table); }

bool config_equal(const JobConfig *a, const JobConfig *b) { return keytable_equal(a, b, &table); }

char *config_docs_markdown(void) { return keytable_reference_markdown(&table); }

void config_free(JobConfig *cfg) { keytable_sources_free(cfg, &table); }

int config_set(JobConfig *cfg, const char *assignment, MaecError *err)
{
    return keytable_set(cfg, &table, assignment, err);
}

int config_load(const char *path, JobConfig *cfg, MaecError *err)
{
    config_defaults(cfg);
    return keytable_read_file(cfg, &table, path, err);
}

int config_load_string(const char *yaml_text, const char *name, JobConfig *cfg, MaecError *err)
{
    config_defaults(cfg);
    return keytable_read_text(cfg, &table, yaml_text, strlen(yaml_text), name, err);
}

/* ---- rules across keys ---- */

/* The first of paths that was given, so a message points at what the user wrote; else the first. */
static const char *first_given(const JobConfig *cfg, const char *const *paths)
{
    for (const char *const *p = paths; *p; p++)
        if (keytable_given(cfg, &table, *p))
            return *p;
    return paths[0];
}

/* Where path occurs in msg as a whole key name ("model.depth" but not in "model.depth_x"). */
static const char *find_key_name(const char *msg, const char *path)
{
    size_t n = strlen(path);
    for (const char *p = strstr(msg, path); p; p = strstr(p + 1, path))
        if (p[n] != '_' && !(p[n] >= 'a' && p[n] <= 'z') && !(p[n] >= '0' && p[n] <= '9'))
            return p;
    return NULL;
}

/* vit_config_validate names the fields it rejects ("model.embed_dim"); point at the first of them the
 * user gave. */
static const char *blamed_model_key(const JobConfig *cfg, const char *msg)
{
    const char *blamed = "model.preset", *earliest = NULL;
    for (size_t i = 0; i < table.count; i++) {
        const char *path = keys[i].path;
        const char *at = strncmp(path, "model.", 6) ? NULL : find_key_name(msg, path);
        if (at && keytable_given(cfg, &table, path) && (!earliest || at < earliest)) {
            earliest = at;
            blamed = path;
        }
    }
    return blamed;
}

static int check_model(const JobConfig *cfg, MaecError *err)
{
    MaecError why;
    if (!vit_config_validate(&cfg->model, &why))
        return 0;
    return keytable_error(cfg, &table, blamed_model_key(cfg, why.msg), err, "%s (model.preset is %s)",
                          why.msg, vit_preset_names[cfg->model_preset]);
}

static int check_masking(const JobConfig *cfg, MaecError *err)
{
    int patches = vit_num_patches(&cfg->model);
    if ((int)(patches * (1.0 - cfg->masking.ratio)) >= 1)
        return 0;
    const char *blame = first_given(cfg, (const char *const[]){"masking.ratio", "model.patch_size",
                                                                "model.img_size", NULL});
    return keytable_error(cfg, &table, blame, err, "masking.ratio = %g leaves no patch visible: the model has "
                          "%d patches (model.img_size %d / model.patch_size %d, squared) and keeps "
                          "int(%d * (1 - ratio)) of them; lower the ratio or use smaller patches",
                          cfg->masking.ratio, patches, cfg->model.img_size, cfg->model.patch_size, patches);
}

static int check_channel_stats(const JobConfig *cfg, const char *path, const FloatList *list, MaecError *err)
{
    const JobData *d = &cfg->data;
    int chans = cfg->model.in_chans;
    if (d->normalize == JOB_NORMALIZE_CUSTOM && list->n != chans)
        return keytable_error(cfg, &table, first_given(cfg, (const char *const[]){path, "data.normalize", NULL}),
                              err, "%s has %d values; data.normalize: custom needs one per channel "
                              "(model.in_chans = %d)", path, list->n, chans);
    if (d->normalize != JOB_NORMALIZE_CUSTOM && list->n > 0)
        return keytable_error(cfg, &table, path, err, "%s is only used with data.normalize: custom (it is %s)",
                              path, normalize_names[d->normalize]);
    return 0;
}

static int check_normalize(const JobConfig *cfg, MaecError *err)
{
    int chans = cfg->model.in_chans;
    if (cfg->data.normalize == JOB_NORMALIZE_IMAGENET && chans != 3)
        return keytable_error(cfg, &table, "data.normalize", err, "data.normalize: imagenet has values for 3 "
                              "channels (RGB) but model.in_chans = %d; use dataset, custom or none", chans);
    return check_channel_stats(cfg, "data.mean", &cfg->data.mean, err) ||
                   check_channel_stats(cfg, "data.std", &cfg->data.std, err)
               ? -1
               : 0;
}

static int check_schedule(const JobConfig *cfg, MaecError *err)
{
    const JobOptim *o = &cfg->optim;
    if (o->steps == 0 && o->warmup_steps == 0 && o->warmup_epochs >= o->epochs)
        return keytable_error(cfg, &table, first_given(cfg, (const char *const[]){"optim.warmup_epochs",
                                                                                  "optim.epochs", NULL}),
                              err, "optim.warmup_epochs = %g must be less than optim.epochs = %g, or the "
                              "learning rate never reaches its peak", o->warmup_epochs, o->epochs);
    if (o->steps > 0 && o->warmup_steps >= o->steps)
        return keytable_error(cfg, &table, first_given(cfg, (const char *const[]){"optim.warmup_steps",
                                                                                  "optim.steps", NULL}),
                              err, "optim.warmup_steps = %d must be less than optim.steps = %d",
                              o->warmup_steps, o->steps);
    if (o->lr > 0 && o->min_lr > o->lr)
        return keytable_error(cfg, &table, first_given(cfg, (const char *const[]){"optim.min_lr", "optim.lr",
                                                                                  NULL}),
                              err, "optim.min_lr = %g is above the peak optim.lr = %g", o->min_lr, o->lr);
    return 0;
}

int config_validate(const JobConfig *cfg, MaecError *err)
{
    return check_model(cfg, err) || check_masking(cfg, err) || check_normalize(cfg, err) ||
                   check_schedule(cfg, err) || keytable_check_required(cfg, &table, err)
               ? -1
               : 0;
}
