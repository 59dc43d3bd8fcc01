/* crossentropy.c — softmax cross-entropy, fused with its gradient so the
 * (N, V) logits buffer is reused for dlogits. */
#include <math.h>

#include "fastmath.h"
#include "ops.h"

static float row_logsumexp(const float *z, size_t V) {
    float m = -INFINITY;
    for (size_t v = 0; v < V; v++) m = z[v] > m ? z[v] : m;
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (size_t v = 0; v < V; v++) s += fast_expf(z[v] - m);
    return m + logf(s);
}

/* Sums in row order, so the total does not depend on the thread count (an
 * OpenMP reduction combines per-thread partial sums in no fixed order). */
static double sum_losses(const float *losses, size_t N) {
    double total = 0.0;
    for (size_t n = 0; n < N; n++) total += losses[n];
    return total;
}

double crossentropy_forward_backward(float *logits, float *losses, const int32_t *targets, size_t N, size_t V,
                                     float grad_scale) {
#pragma omp parallel for schedule(static)
    for (size_t n = 0; n < N; n++) {
        float *z = logits + n * V;
        float lse = row_logsumexp(z, V);
        losses[n] = lse - z[targets[n]];
#pragma omp simd
        for (size_t v = 0; v < V; v++) z[v] = fast_expf(z[v] - lse) * grad_scale;
        z[targets[n]] -= grad_scale;
    }
    return sum_losses(losses, N);
}

double crossentropy_forward(const float *logits, float *losses, const int32_t *targets, size_t N, size_t V) {
#pragma omp parallel for schedule(static)
    for (size_t n = 0; n < N; n++) {
        const float *z = logits + n * V;
        losses[n] = row_logsumexp(z, V) - z[targets[n]];
    }
    return sum_losses(losses, N);
}
