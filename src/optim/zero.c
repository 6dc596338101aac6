#include "maec/zero.h"

#include "maec/error.h"

const char *dist_mode_name(DistMode mode)
{
    return mode == DIST_ZERO1 ? "zero1" : mode == DIST_ZERO2 ? "zero2" : "allreduce";
}

void zero_shard_range(size_t padded, int rank, int world, size_t *lo, size_t *hi)
{
    if (world < 1 || rank < 0 || rank >= world || padded % (size_t)world != 0)
        fatal("internal: zero_shard_range(%zu, rank %d, world %d): buffer not padded to the world size",
              padded, rank, world);
    size_t shard = padded / (size_t)world;
    *lo = (size_t)rank * shard;
    *hi = *lo + shard;
}

TrainStateBytes zero_state_bytes(DistMode mode, size_t padded, int world)
{
    const size_t full = padded * sizeof(float), shard = full / (size_t)world;
    TrainStateBytes b = {full, full, 0, 2 * full};
    if (mode == DIST_ZERO1) {
        b.optimizer = 2 * shard;
    } else if (mode == DIST_ZERO2) {
        b.optimizer = 2 * shard;
        b.grads = shard;
        b.grads_work = full;
    }
    return b;
}
