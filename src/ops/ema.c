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

/* Kernels run in bands: the loops walk time outside and the band's kernels
 * inside, so k (time-major) is read and written along rows and the band's
 * powers (EMA_BAND_FLOATS doubles) stay in cache. */
enum { EMA_BAND_FLOATS = 2048 };
/* The band's arrays sit in one buffer at this stride: 16 KiB apart they
 * would share their low 12 address bits, and the CPU would take each
 * store for one the next load depends on (4K aliasing; 10x slower). */
enum { EMA_STRIDE = EMA_BAND_FLOATS + 16 };
/* Powers below this are 0: far below what a float kernel can hold, and on
 * their way to underflow they would pass through the double subnormals,
 * which cost a hundred times a normal product (most of a long sequence's
 * step before this). */
#define EMA_TINY 1e-250

static size_t band_of(size_t N) { return EMA_BAND_FLOATS / N; } /* N <= 256: at least 8 kernels */

/* Kernel d's per-expansion constants: c = scale gamma p beta (the weight of
 * q^j) and q. */
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

/* Element (j, d) of the time-major blocks of k. */
static size_t at(size_t d, size_t j, size_t D, size_t L) { return (d / D) * L * D + j * D + d % D; }

void ema_kernel(float *k, const float *delta, const float *alpha, const float *beta, const float *gamma, size_t K,
                size_t D, size_t N, size_t Tk, size_t L) {
    const size_t band = band_of(N);
#pragma omp parallel for schedule(static)
    for (size_t d0 = 0; d0 < K; d0 += band) {
        const size_t nd = K - d0 < band ? K - d0 : band;
        double buf[2 * EMA_STRIDE], *q = buf, *pw = buf + EMA_STRIDE;
        for (size_t e = 0; e < nd; e++) expansion(delta, alpha, beta, gamma, d0 + e, N, pw + e * N, q + e * N);
        for (size_t j = 0; j < L; j++)
            for (size_t e = 0; e < nd; e++) {
                double s = 0.0;
                if (j < Tk) {
                    double *p = pw + e * N;
                    const double *r = q + e * N;
#pragma omp simd reduction(+ : s)
                    for (size_t n = 0; n < N; n++) {
                        s += p[n];
                        p[n] *= r[n];
                        p[n] = fabs(p[n]) > EMA_TINY ? p[n] : 0.0;
                    }
                }
                k[at(d0 + e, j, D, L)] = fabs(s) > 1e-30 ? (float)s : 0.0f; /* no float subnormals into the FFT */
            }
    }
}

/* With G = dk: P0 = Σ_j G_j q^j and P1 = Σ_j G_j j q^(j-1) per expansion,
 * then the chain of §2.6 through q = 1 - p a and the two sigmoids. */
void ema_kernel_backward(float *ddelta, float *dalpha, float *dbeta, float *dgamma, const float *dk,
                         const float *delta, const float *alpha, const float *beta, const float *gamma, size_t K,
                         size_t D, size_t N, size_t Tk, size_t L) {
    const double scale = sqrt(1.0 / (double)N);
    const size_t band = band_of(N);
#pragma omp parallel for schedule(static)
    for (size_t d0 = 0; d0 < K; d0 += band) {
        const size_t nd = K - d0 < band ? K - d0 : band, M = nd * N;
        double buf[6 * EMA_STRIDE], *c = buf, *q = c + EMA_STRIDE, *pw = q + EMA_STRIDE, *prev = pw + EMA_STRIDE,
               *P0 = prev + EMA_STRIDE, *P1 = P0 + EMA_STRIDE;
        for (size_t e = 0; e < nd; e++) expansion(delta, alpha, beta, gamma, d0 + e, N, c + e * N, q + e * N);
        for (size_t i = 0; i < M; i++) pw[i] = 1.0, prev[i] = 0.0, P0[i] = 0.0, P1[i] = 0.0;
        for (size_t j = 0; j < Tk; j++) /* pw = q^j, prev = q^(j-1) */
            for (size_t e = 0; e < nd; e++) {
                const double g = dk[at(d0 + e, j, D, L)], gj = g * (double)j;
                double *p = pw + e * N, *pv = prev + e * N, *a0 = P0 + e * N, *a1 = P1 + e * N;
                const double *r = q + e * N;
#pragma omp simd
                for (size_t n = 0; n < N; n++) {
                    a1[n] += gj * pv[n];
                    a0[n] += g * p[n];
                    pv[n] = p[n];
                    p[n] = p[n] * r[n] > EMA_TINY ? p[n] * r[n] : 0.0;
                }
            }
        for (size_t e = 0; e < nd; e++)
            for (size_t n = 0; n < N; n++) {
                const size_t i = (d0 + e) * N + n, l = e * N + n;
                const double p = sigmoid(delta[i]), a = sigmoid(alpha[i]);
                const double w = scale * gamma[i] * p * beta[i]; /* d k_j / d q^j */
                const double dp = scale * gamma[i] * beta[i] * P0[l] - w * P1[l] * a;
                const double da = -w * P1[l] * p;
                dgamma[i] += (float)(scale * p * beta[i] * P0[l]);
                dbeta[i] += (float)(scale * gamma[i] * p * P0[l]);
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
