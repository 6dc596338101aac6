#include "maec/schedule.h"

#include <math.h>

double lr_at(const LrSchedule *s, double step)
{
    if (step < s->warmup)
        return s->peak * step / s->warmup;
    if (s->total <= s->warmup)
        return s->peak;
    double progress = (step - s->warmup) / (s->total - s->warmup);
    if (progress > 1.0)
        progress = 1.0;
    return s->min_lr + (s->peak - s->min_lr) * 0.5 * (1.0 + cos(M_PI * progress));
}

double lr_from_base(double blr, long global_batch) { return blr * (double)global_batch / 256.0; }
