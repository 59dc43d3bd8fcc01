/* dropout.c — inverted dropout (Srivastava et al. 2014) whose mask is a pure
 * function of (seed, stream, element index): see core/rng.h. Nothing is
 * stored between forward and backward, and the mask does not depend on how
 * the loop is split among threads. */
#include <string.h>

#include "../core/rng.h"
#include "ops.h"

/* y = x * mask * scale; the one loop both directions share. */
static void apply_mask(float *y, const float *x, size_t n, float p, uint64_t seed, uint64_t stream) {
    if (p <= 0.0f) {
        if (y != x) memcpy(y, x, n * sizeof *y);
        return;
    }
    const uint32_t threshold = rng_drop_threshold(p);
    const float scale = 1.0f / (1.0f - p);
#pragma omp parallel for schedule(static)
    for (size_t i0 = 0; i0 < n; i0 += 4) {
        uint32_t w[4];
        philox4x32(seed, stream, i0 >> 2, w); /* one call gives the words of 4 elements */
        size_t i1 = i0 + 4 < n ? i0 + 4 : n;
        for (size_t i = i0; i < i1; i++) y[i] = w[i - i0] >= threshold ? x[i] * scale : 0.0f;
    }
}

void dropout_forward(float *y, const float *x, size_t n, float p, uint64_t seed, uint64_t stream) {
    apply_mask(y, x, n, p, seed, stream);
}

void dropout_backward(float *dx, const float *dy, size_t n, float p, uint64_t seed, uint64_t stream) {
    apply_mask(dx, dy, n, p, seed, stream);
}
