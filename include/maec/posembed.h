/* Fixed 2-D sin-cos position tables (facebookresearch/mae util/pos_embed.py), computed in double
 * and rounded to float as the reference does. */
#ifndef MAEC_POSEMBED_H
#define MAEC_POSEMBED_H

#include <stdbool.h>

/* out[(cls + G*G), D]: token n = i*G + j (row i, column j). The first D/2 channels encode the
 * column j, the last D/2 the row i; each half is [sin(pos w_0..w_{D/4-1}), cos(...)] with
 * w_k = 1 / 10000^(k / (D/4)). With cls, row 0 is zeros and patches start at row 1.
 * D must be a multiple of 4. */
void posembed_2d_sincos(float *out, int D, int G, bool cls);

#endif
