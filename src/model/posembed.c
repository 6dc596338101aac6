#include "maec/posembed.h"

#include <math.h>
#include <string.h>

/* One half: [sin(pos * w_k) for k < D/4, cos(pos * w_k) for k < D/4], w_k = 10000^(-k/(D/4)). */
static void sincos_half(float *out, int half, double pos)
{
    int quarter = half / 2;
    for (int k = 0; k < quarter; k++) {
        double omega = 1.0 / pow(10000.0, (double)k / (double)quarter);
        out[k] = (float)sin(pos * omega);
        out[quarter + k] = (float)cos(pos * omega);
    }
}

void posembed_2d_sincos(float *out, int D, int G, bool cls)
{
    int half = D / 2;
    if (cls) {
        memset(out, 0, (size_t)D * sizeof(float));
        out += D;
    }
    for (int i = 0; i < G; i++)
        for (int j = 0; j < G; j++) {
            float *row = out + ((size_t)i * G + j) * D;
            sincos_half(row, half, (double)j);
            sincos_half(row + half, half, (double)i);
        }
}
