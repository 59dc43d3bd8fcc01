/* ema.c — the kernel of MEGA's multi-dimensional damped EMA (spec
 * mega-seqboat.md §2.2, §2.6) and the coefficients of its recurrent form
 * (§2.5). The convolution itself is fftconv.c's.
 *
 * Per kernel d of K (K = D, or 2D bidirectional: the first D run forward in
 * time, the last D backward) and expansion n of N, from the learned delta,
 * alpha, beta, gamma (K, N):
 *   p = σ(delta), a = σ(alpha), q = 1 - p a     (the code's delta is the paper's α,
 *                                                 its alpha the paper's δ: §2.1)
 *   k[d][j] = sqrt(1/N) Σ_n gamma p beta q^j     for j < Tk (the truncation).
 * q^j comes from repeated products in double, the N expansions side by side
 * (they vectorise; the original's exp(j log q) in float32 is less exact). */
#include "ops.h"

#include <math.h>
#include <string.h>

static double sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }

/* One kernel's per-expansion constants: c = scale gamma p beta (the weight
 * of q^j) and q; the longest N the stack arrays of this file hold. */
enum { EMA_MAX_N = 256 };

static void expansion(const float *delta, const float *alpha, const float *beta, const float *gamma, size_t d,
                      size_t N, double *c, double *q) {
    const double scale = sqrt(1.0 / (double)N);
    for (size_t n = 0; n < N; n++) {
        const size_t i = d * N + n;
        const double p = sigmoid(delta[i]), a = sigmoid(alpha[i]);
        q[n] = 1.0 - p * a;
        c[n] = scale * gamma[i] * p * beta[i];
    }
}

void ema_kernel(float *k, const float *delta, const float *alpha, const float *beta, const float *gamma, size_t K,
                size_t D, size_t N, size_t Tk, size_t L) {
#pragma omp parallel for schedule(static)
    for (size_t d = 0; d < K; d++) {
        double c[EMA_MAX_N], q[EMA_MAX_N], pw[EMA_MAX_N];
        expansion(delta, alpha, beta, gamma, d, N, c, q);
        for (size_t n = 0; n < N; n++) pw[n] = c[n];
        float *col = k + (d / D) * L * D + d % D;
        for (size_t j = 0; j < Tk; j++) {
            double s = 0.0;
            for (size_t n = 0; n < N; n++) {
                s += pw[n];
                pw[n] *= q[n];
            }
            col[j * D] = (float)s;
        }
        for (size_t j = Tk; j < L; j++) col[j * D] = 0.0f;
    }
}

/* With G = dk: P0 = Σ_j G_j q^j and P1 = Σ_j G_j j q^(j-1) per expansion,
 * then the chain of §2.6 through q = 1 - p a and the two sigmoids. */
void ema_kernel_backward(float *ddelta, float *dalpha, float *dbeta, float *dgamma, const float *dk,
                         const float *delta, const float *alpha, const float *beta, const float *gamma, size_t K,
                         size_t D, size_t N, size_t Tk, size_t L) {
    const double scale = sqrt(1.0 / (double)N);
#pragma omp parallel for schedule(static)
    for (size_t d = 0; d < K; d++) {
        double c[EMA_MAX_N], q[EMA_MAX_N], pw[EMA_MAX_N], prev[EMA_MAX_N], P0[EMA_MAX_N], P1[EMA_MAX_N];
        expansion(delta, alpha, beta, gamma, d, N, c, q);
        for (size_t n = 0; n < N; n++) pw[n] = 1.0, prev[n] = 0.0, P0[n] = 0.0, P1[n] = 0.0;
        const float *col = dk + (d / D) * L * D + d % D;
        for (size_t j = 0; j < Tk; j++) { /* pw = q^j, prev = q^(j-1) */
            const double g = col[j * D];
            for (size_t n = 0; n < N; n++) {
                P1[n] += g * (double)j * prev[n];
                P0[n] += g * pw[n];
                prev[n] = pw[n];
                pw[n] *= q[n];
            }
        }
        for (size_t n = 0; n < N; n++) {
            const size_t i = d * N + n;
            const double p = sigmoid(delta[i]), a = sigmoid(alpha[i]);
            const double w = scale * gamma[i] * p * beta[i]; /* d k_j / d q^j */
            const double dp = scale * gamma[i] * beta[i] * P0[n] - w * P1[n] * a;
            const double da = -w * P1[n] * p;
            dgamma[i] += (float)(scale * p * beta[i] * P0[n]);
            dbeta[i] += (float)(scale * gamma[i] * p * P0[n]);
            ddelta[i] += (float)(dp * p * (1.0 - p));
            dalpha[i] += (float)(da * a * (1.0 - a));
        }
    }
}

void ema_coefficients(float *pb, float *q, float *g, const float *delta, const float *alpha, const float *beta,
                      const float *gamma, size_t K, size_t N) {
    const double scale = sqrt(1.0 / (double)N);
    for (size_t i = 0; i < K * N; i++) {
        const double p = sigmoid(delta[i]), a = sigmoid(alpha[i]);
        pb[i] = (float)(p * beta[i]);
        q[i] = (float)(1.0 - p * a);
        g[i] = (float)(scale * gamma[i]);
    }
}
