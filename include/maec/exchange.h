/* Byte blocks between the ranks of a maec prep run, which decodes inputs on every rank and writes
 * the dataset on rank 0. With one rank these are plain copies. One rank's block must stay below
 * 2 GiB (MPI counts are int); callers size their blocks well below that. */
#ifndef MAEC_EXCHANGE_H
#define MAEC_EXCHANGE_H

#include "maec/error.h"

#include <stddef.h>
#include <stdint.h>

/* On rank 0: *all (malloc'd, free it) = every rank's block in rank order; offsets[r] is where rank
 * r's block starts and offsets[size] the total. On other ranks *all is NULL. offsets has
 * dist_size() + 1 entries on every rank. */
void exchange_gather(uint8_t **all, size_t *offsets, const void *send, size_t bytes);
/* The same, with the result on every rank. */
void exchange_allgather(uint8_t **all, size_t *offsets, const void *send, size_t bytes);
/* Makes rank 0's outcome everyone's: returns rank 0's rc, and on failure copies its message into
 * err on every rank, so all ranks stop together with the same explanation. */
int exchange_agree(int rc, MaecError *err);

#endif
