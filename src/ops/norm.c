/* norm.c — the normalisations besides LayerNorm (layernorm.c), as MEGA's
 * SequenceNorm computes them (shared/spec/mega-seqboat.md §1.2, eps 1e-5):
 *   rmsnorm:   y = w * x / sqrt(mean(x^2) + eps), per-channel weight
 *   scalenorm: y = g * x / sqrt(mean(x^2) + eps), one scalar g
 *   batchnorm: y = (x - mean_c) / sqrt(var_c + eps) * w + b, statistics per
 *              channel over all rows (training) or the running averages
 *              (evaluation), as torch.nn.BatchNorm1d (momentum 0.1, the running
 *              variance unbiased).
 * Parameter gradients are reduced over rows in fixed blocks of columns, so
 * they do not depend on the thread count. */
#include <math.h>
#include <string.h>

#include "ops.h"

/* ---- rmsnorm and scalenorm: one kernel, weight per channel or shared ---- */

/* y = x * rstd * w[c or 0]; rstd (N) saved. */
static void rms_forward(float *y, float *rstd, const float *x, const float *w, bool shared, size_t N, size_t C) {
#pragma omp parallel for schedule(static)
    for (size_t n = 0; n < N; n++) {
        const float *xr = x + n * C;
        float ms = 0.0f;
#pragma omp simd reduction(+ : ms)
        for (size_t c = 0; c < C; c++) ms += xr[c] * xr[c];
        float r = 1.0f / sqrtf(ms / (float)C + NORM_EPS);
        for (size_t c = 0; c < C; c++) y[n * C + c] = xr[c] * r * w[shared ? 0 : c];
        rstd[n] = r;
    }
}

/* dx = rstd * (g - xhat * mean(g * xhat)), g = dy * w, xhat = x * rstd. */
static void rms_backward(float *dx, float *dw, const float *dy, const float *x, const float *rstd, const float *w,
                         bool shared, size_t N, size_t C, bool accumulate_dx) {
    if (shared) { /* one weight: its gradient is one sum, taken in row order */
        double g = 0.0;
        for (size_t n = 0; n < N; n++)
            for (size_t c = 0; c < C; c++) g += (double)dy[n * C + c] * x[n * C + c] * rstd[n];
        dw[0] += (float)g;
    } else {
#pragma omp parallel for schedule(static)
        for (size_t c0 = 0; c0 < C; c0 += 32) {
            size_t c1 = c0 + 32 < C ? c0 + 32 : C;
            float acc[32] = {0};
            for (size_t n = 0; n < N; n++)
                for (size_t c = c0; c < c1; c++) acc[c - c0] += dy[n * C + c] * x[n * C + c] * rstd[n];
            for (size_t c = c0; c < c1; c++) dw[c] += acc[c - c0];
        }
    }
#pragma omp parallel for schedule(static)
    for (size_t n = 0; n < N; n++) {
        const float *xr = x + n * C, *dyr = dy + n * C;
        float r = rstd[n], dot = 0.0f;
#pragma omp simd reduction(+ : dot)
        for (size_t c = 0; c < C; c++) dot += dyr[c] * w[shared ? 0 : c] * xr[c] * r;
        dot /= (float)C;
        for (size_t c = 0; c < C; c++) {
            float d = r * (dyr[c] * w[shared ? 0 : c] - xr[c] * r * dot);
            dx[n * C + c] = accumulate_dx ? dx[n * C + c] + d : d;
        }
    }
}

void rmsnorm_forward(float *y, float *rstd, const float *x, const float *w, size_t N, size_t C) {
    rms_forward(y, rstd, x, w, false, N, C);
}
void rmsnorm_backward(float *dx, float *dw, const float *dy, const float *x, const float *rstd, const float *w,
                      size_t N, size_t C, bool accumulate_dx) {
    rms_backward(dx, dw, dy, x, rstd, w, false, N, C, accumulate_dx);
}
void scalenorm_forward(float *y, float *rstd, const float *x, const float *g, size_t N, size_t C) {
    rms_forward(y, rstd, x, g, true, N, C);
}
void scalenorm_backward(float *dx, float *dg, const float *dy, const float *x, const float *rstd, const float *g,
                        size_t N, size_t C, bool accumulate_dx) {
    rms_backward(dx, dg, dy, x, rstd, g, true, N, C, accumulate_dx);
}

/* ---- batchnorm ---- */

void batchnorm_forward(float *y, float *mean, float *rstd, const float *x, const float *w, const float *b,
                       float *running_mean, float *running_var, bool training, size_t N, size_t C) {
#pragma omp parallel for schedule(static)
    for (size_t c = 0; c < C; c++) {
        float m, r;
        if (training) {
            double s = 0.0, s2 = 0.0;
            for (size_t n = 0; n < N; n++) s += x[n * C + c];
            m = (float)(s / (double)N);
            for (size_t n = 0; n < N; n++) s2 += ((double)x[n * C + c] - m) * ((double)x[n * C + c] - m);
            float var = (float)(s2 / (double)N);
            r = 1.0f / sqrtf(var + NORM_EPS);
            running_mean[c] = (1.0f - BATCHNORM_MOMENTUM) * running_mean[c] + BATCHNORM_MOMENTUM * m;
            float unbiased = N > 1 ? (float)(s2 / (double)(N - 1)) : var;
            running_var[c] = (1.0f - BATCHNORM_MOMENTUM) * running_var[c] + BATCHNORM_MOMENTUM * unbiased;
        } else {
            m = running_mean[c];
            r = 1.0f / sqrtf(running_var[c] + NORM_EPS);
        }
        mean[c] = m;
        rstd[c] = r;
    }
#pragma omp parallel for schedule(static)
    for (size_t n = 0; n < N; n++)
        for (size_t c = 0; c < C; c++) y[n * C + c] = (x[n * C + c] - mean[c]) * rstd[c] * w[c] + b[c];
}

void batchnorm_backward(float *dx, float *dw, float *db, const float *dy, const float *x, const float *mean,
                        const float *rstd, const float *w, bool training, size_t N, size_t C, bool accumulate_dx) {
#pragma omp parallel for schedule(static)
    for (size_t c = 0; c < C; c++) {
        double sdy = 0.0, sdyx = 0.0;
        for (size_t n = 0; n < N; n++) {
            float xhat = (x[n * C + c] - mean[c]) * rstd[c];
            sdy += dy[n * C + c];
            sdyx += (double)dy[n * C + c] * xhat;
        }
        dw[c] += (float)sdyx;
        db[c] += (float)sdy;
        /* training: the statistics depend on x too; evaluation: a fixed affine map */
        float k1 = training ? (float)(sdy / (double)N) : 0.0f, k2 = training ? (float)(sdyx / (double)N) : 0.0f;
        for (size_t n = 0; n < N; n++) {
            float xhat = (x[n * C + c] - mean[c]) * rstd[c];
            float d = w[c] * rstd[c] * (dy[n * C + c] - k1 - xhat * k2);
            dx[n * C + c] = accumulate_dx ? dx[n * C + c] + d : d;
        }
    }
}
