/* The named parameter table: every trainable tensor of a model, by its PyTorch state_dict name
 * and shape, at an offset in one flat float buffer. Gradients and AdamW's m and v use the same
 * layout, so all-reduce, reduce-scatter and the optimizer work on plain ranges. The buffer is
 * padded at the tail to a multiple of the world size; padding stays zero. */
#ifndef MAEC_PARAMS_H
#define MAEC_PARAMS_H

#include <stdbool.h>
#include <stddef.h>

#define PARAM_NAME_MAX 96
#define PARAM_MAX_DIMS 4

typedef struct ParamTensor {
    char name[PARAM_NAME_MAX];
    int ndim;
    size_t shape[PARAM_MAX_DIMS];
    size_t numel;
    size_t offset;
    /* Weight decay applies unless the tensor is 1-D or its name ends in ".bias" (timm 0.3.2
     * add_weight_decay, as MAE pretraining uses it: cls and mask tokens are decayed). */
    bool decay;
} ParamTensor;

typedef struct ParamTable {
    ParamTensor *tensors;
    size_t count;
    size_t numel;  /* sum of all tensor sizes */
    size_t padded; /* numel rounded up to the padding multiple; set by param_table_finish */
} ParamTable;

void param_table_init(ParamTable *table);
/* Appends a tensor after the previous one; returns its index. The name must be new. */
size_t param_table_add(ParamTable *table, const char *name, int ndim, const size_t *shape);
/* Pads the total to a multiple of pad_multiple (the world size; >= 1). */
void param_table_finish(ParamTable *table, size_t pad_multiple);
/* The tensor with this name, or NULL. */
const ParamTensor *param_table_find(const ParamTable *table, const char *name);
/* Pointer to the named tensor inside a flat buffer of this layout; fatal if the name is absent
 * (a programming error: models look up only names they declared). */
float *param_ptr(const ParamTable *table, float *buffer, const char *name);
void param_table_free(ParamTable *table);

/* The name of the tensor holding flat offset `offset` of a table (ctx: the ParamTable), or
 * "(padding)" past the last one: for messages about offsets (GradSyncNames). */
const char *param_table_name_at(const void *table, size_t offset);

/* Formats "name [d0, d1, ...]" into buf. */
void param_shape_string(const ParamTensor *t, char *buf, size_t size);

/* What a backward pass tells as it goes: every gradient from `from` to the end of the flat
 * gradient buffer is final. Backward passes report in reverse table order, so data-parallel
 * training can reduce those gradients while the earlier layers are still computed. */
typedef struct GradReady {
    void (*notify)(void *ctx, const float *from);
    void *ctx;
} GradReady;

/* Calls ready->notify unless ready is NULL (no one listening). */
static inline void grad_ready(const GradReady *ready, const float *from)
{
    if (ready)
        ready->notify(ready->ctx, from);
}

#endif
