#include "maec/tissue.h"

uint8_t tissue_saturation(uint8_t r, uint8_t g, uint8_t b)
{
    int max = r > g ? (r > b ? r : b) : (g > b ? g : b);
    int min = r < g ? (r < b ? r : b) : (g < b ? g : b);
    return max == 0 ? 0 : (uint8_t)((max - min) * 255 / max);
}

int tissue_otsu_threshold(const uint64_t histogram[256])
{
    double total = 0.0, total_sum = 0.0;
    for (int v = 0; v < 256; v++) {
        total += (double)histogram[v];
        total_sum += (double)v * (double)histogram[v];
    }
    double below = 0.0, below_sum = 0.0, best = -1.0;
    int threshold = 0;
    for (int t = 0; t < 255; t++) {
        below += (double)histogram[t];
        below_sum += (double)t * (double)histogram[t];
        double above = total - below;
        if (below == 0.0 || above == 0.0)
            continue;
        double mean_below = below_sum / below, mean_above = (total_sum - below_sum) / above;
        double between = below * above * (mean_below - mean_above) * (mean_below - mean_above);
        if (between > best) {
            best = between;
            threshold = t;
        }
    }
    return threshold;
}
