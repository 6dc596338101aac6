#include "maec/exchange.h"

#include "maec/alloc.h"
#include "maec/dist.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* counts[r] and displacements of every rank's block, as MPI's ints; offsets as size_t. */
static void block_layout(int *counts, int *displs, size_t *offsets, size_t bytes)
{
    int p = dist_size();
    size_t *sizes = xmalloc((size_t)p * sizeof *sizes, "block sizes");
    dist_allgather(&bytes, sizes, sizeof bytes);
    offsets[0] = 0;
    for (int r = 0; r < p; r++) {
        offsets[r + 1] = offsets[r] + sizes[r];
        if (sizes[r] > INT_MAX || offsets[r + 1] > INT_MAX)
            fatal("internal: prep exchanges %zu bytes in one step, more than MPI's int counts allow; "
                  "please report this with the command line", offsets[r + 1]);
        counts[r] = (int)sizes[r];
        displs[r] = (int)offsets[r];
    }
    free(sizes);
}

static void exchange(uint8_t **all, size_t *offsets, const void *send, size_t bytes, bool to_everyone)
{
    int p = dist_size();
    if (p == 1) {
        *all = xmalloc(bytes ? bytes : 1, "exchanged block");
        memcpy(*all, send, bytes);
        offsets[0] = 0;
        offsets[1] = bytes;
        return;
    }
    int *counts = xmalloc((size_t)p * sizeof *counts, "block sizes");
    int *displs = xmalloc((size_t)p * sizeof *displs, "block offsets");
    block_layout(counts, displs, offsets, bytes);
    bool receive = to_everyone || dist_rank() == 0;
    *all = receive ? xmalloc(offsets[p] ? offsets[p] : 1, "exchanged blocks") : NULL;
    if (to_everyone)
        dist_check(MPI_Allgatherv(send, (int)bytes, MPI_BYTE, *all, counts, displs, MPI_BYTE, dist_comm()),
                   "MPI_Allgatherv");
    else
        dist_check(MPI_Gatherv(send, (int)bytes, MPI_BYTE, *all, counts, displs, MPI_BYTE, 0, dist_comm()),
                   "MPI_Gatherv");
    free(displs);
    free(counts);
}

void exchange_gather(uint8_t **all, size_t *offsets, const void *send, size_t bytes)
{
    exchange(all, offsets, send, bytes, false);
}

void exchange_allgather(uint8_t **all, size_t *offsets, const void *send, size_t bytes)
{
    exchange(all, offsets, send, bytes, true);
}

int exchange_agree(int rc, MaecError *err)
{
    dist_bcast(&rc, sizeof rc, 0);
    if (rc)
        dist_bcast(err->msg, sizeof err->msg, 0);
    return rc;
}
