/* layernorm.c — LayerNorm over the last dimension (Ba et al. 2016), as
 * torch.nn.LayerNorm computes it: biased variance, eps inside the sqrt. */
#include <math.h>
#include <string.h>

#include "ops.h"

void layernorm_forward(float *y, float *mean, float *rstd, const float *x, const float *w, const float *b, size_t N,
                       size_t C) {
#pragma omp parallel for schedule(static)
    for (size_t n = 0; n < N; n++) {
        const float *xr = x + n * C;
        float *yr = y + n * C;
        /* simd reductions: a fixed order of partial sums (not the thread count's) */
        float m = 0.0f;
#pragma omp simd reduction(+ : m)
        for (size_t c = 0; c < C; c++) m += xr[c];
        m /= (float)C;
        float v = 0.0f;
#pragma omp simd reduction(+ : v)
        for (size_t c = 0; c < C; c++) v += (xr[c] - m) * (xr[c] - m);
        v /= (float)C;
        float r = 1.0f / sqrtf(v + LAYERNORM_EPS);
        for (size_t c = 0; c < C; c++) yr[c] = (xr[c] - m) * r * w[c] + b[c];
        mean[n] = m; /* cached for backward */
        rstd[n] = r;
    }
}

void layernorm_apply(float *y, const float *mean, const float *rstd, const float *x, const float *w, const float *b,
                     size_t N, size_t C) {
#pragma omp parallel for schedule(static)
    for (size_t n = 0; n < N; n++)
        for (size_t c = 0; c < C; c++) y[n * C + c] = (x[n * C + c] - mean[n]) * rstd[n] * w[c] + b[c];
}

/* Per-thread partial sums of dw and db would make the result depend on the
 * thread count; instead the rows are reduced in fixed blocks of columns. */
static void layernorm_param_grads(float *dw, float *db, const float *dy, const float *x, const float *mean,
                                  const float *rstd, size_t N, size_t C) {
#pragma omp parallel for schedule(static)
    for (size_t c0 = 0; c0 < C; c0 += 32) {
        size_t c1 = c0 + 32 < C ? c0 + 32 : C;
        float aw[32] = {0}, ab[32] = {0};
        for (size_t n = 0; n < N; n++) {
            const float *xr = x + n * C, *dyr = dy + n * C;
            for (size_t c = c0; c < c1; c++) {
                aw[c - c0] += dyr[c] * (xr[c] - mean[n]) * rstd[n];
                ab[c - c0] += dyr[c];
            }
        }
        for (size_t c = c0; c < c1; c++) {
            dw[c] += aw[c - c0];
            db[c] += ab[c - c0];
        }
    }
}

void layernorm_backward(float *dx, float *dw, float *db, const float *dy, const float *x, const float *mean,
                        const float *rstd, const float *w, size_t N, size_t C, bool accumulate_dx) {
    layernorm_param_grads(dw, db, dy, x, mean, rstd, N, C);
#pragma omp parallel for schedule(static)
    for (size_t n = 0; n < N; n++) {
        const float *xr = x + n * C, *dyr = dy + n * C;
        float *dxr = dx + n * C;
        /* dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dy * w */
        float gmean = 0.0f, gxmean = 0.0f;
#pragma omp simd reduction(+ : gmean, gxmean)
        for (size_t c = 0; c < C; c++) {
            float g = dyr[c] * w[c];
            gmean += g;
            gxmean += g * (xr[c] - mean[n]) * rstd[n];
        }
        gmean /= (float)C;
        gxmean /= (float)C;
        for (size_t c = 0; c < C; c++) {
            float xhat = (xr[c] - mean[n]) * rstd[n];
            float d = rstd[n] * (dyr[c] * w[c] - gmean - xhat * gxmean);
            dxr[c] = accumulate_dx ? dxr[c] + d : d;
        }
    }
}
