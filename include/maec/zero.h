/* How the flat buffers are split across ranks (ZeRO, Rajbhandari et al. 2020) and what each
 * data-parallel mode keeps per rank. Rank r owns the contiguous range [r S, (r+1) S) of the
 * padded flat buffer, S = padded / world; borders may cut tensors anywhere (AdamW follows each
 * tensor's decay flag by ranges, see adamw.h). */
#ifndef MAEC_ZERO_H
#define MAEC_ZERO_H

#include <stddef.h>

typedef enum DistMode {
    DIST_ALLREDUCE, /* every rank: full gradients averaged, full AdamW state */
    DIST_ZERO1,     /* AdamW m, v only for the owned shard; gradients reduce-scattered */
    DIST_ZERO2,     /* also the accumulated gradients only for the owned shard */
} DistMode;

const char *dist_mode_name(DistMode mode);

/* [lo, hi) owned by rank of world; padded must be a multiple of world. */
void zero_shard_range(size_t padded, int rank, int world, size_t *lo, size_t *hi);

/* Bytes per rank of training state in a mode (floats of 4 bytes). */
typedef struct TrainStateBytes {
    size_t params;     /* full replica: every mode runs the whole forward pass */
    size_t grads;      /* persistent gradient accumulator */
    size_t grads_work; /* gradient workspace of one backward pass (ZeRO-2 only; freed state) */
    size_t optimizer;  /* AdamW m and v */
} TrainStateBytes;

TrainStateBytes zero_state_bytes(DistMode mode, size_t padded, int world);

#endif
