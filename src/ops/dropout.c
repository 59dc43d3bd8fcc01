/* dropout.c — inverted dropout (Srivastava et al. 2014) whose mask is a pure
 * function of (seed, stream, element index): see core/rng.h. Nothing is
 * stored between forward and backward, and the mask does not depend on how
 * the loop is split among threads. */
#include <string.h>

#include "../core/rng.h"
#include "ops.h"

/* y = x * mask * scale; the one loop both directions share. */
static void apply_mask(float *y, const float *x, size_t n, const DropoutKey *k) {
    if (k->p <= 0.0f) {
        if (y != x) memcpy(y, x, n * sizeof *y);
        return;
    }
    const uint32_t threshold = rng_drop_threshold(k->p);
    const float scale = 1.0f / (1.0f - k->p);
    if (n == 0) return;
    /* one Philox call gives the words of 4 consecutive global indices */
    const uint64_t g0 = k->first >> 2, g1 = (k->first + n - 1) >> 2;
#pragma omp parallel for schedule(static)
    for (uint64_t g = g0; g <= g1; g++) {
        uint32_t w[4];
        philox4x32(k->seed, k->stream, g, w);
        for (uint64_t j = 0; j < 4; j++) {
            uint64_t idx = 4 * g + j;
            if (idx < k->first || idx >= k->first + n) continue;
            size_t i = (size_t)(idx - k->first);
            y[i] = w[j] >= threshold ? x[i] * scale : 0.0f;
        }
    }
}

void dropout_forward(float *y, const float *x, size_t n, const DropoutKey *k) { apply_mask(y, x, n, k); }

void dropout_backward(float *dx, const float *dy, size_t n, const DropoutKey *k) { apply_mask(dx, dy, n, k); }
