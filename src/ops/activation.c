/* activation.c — ReLU, GELU (exact, erf), GELU (tanh approximation,
 * Hendrycks & Gimpel 2016) and SiLU (x sigmoid(x), Elfwing et al. 2018), as torch.nn.functional computes them,
 * and MEGA's relu2 and laplace (fairseq/utils.py of the MEGA code); erf and exp from fastmath.h so the loops
 * vectorise. */
#include <math.h>
#include <string.h>

#include "fastmath.h"
#include "ops.h"

#define SQRT_2_OVER_PI 0.7978845608028654f
#define INV_SQRT_2 0.7071067811865476f
#define INV_SQRT_2PI 0.3989422804014327f

int activation_parse(const char *name, Activation *out) {
    if (strcmp(name, "relu") == 0) *out = ACT_RELU;
    else if (strcmp(name, "gelu") == 0) *out = ACT_GELU;
    else if (strcmp(name, "gelu_tanh") == 0) *out = ACT_GELU_TANH;
    else if (strcmp(name, "silu") == 0) *out = ACT_SILU;
    else if (strcmp(name, "relu2") == 0) *out = ACT_RELU2;
    else if (strcmp(name, "laplace") == 0) *out = ACT_LAPLACE;
    else return -1;
    return 0;
}

/* The normal CDF Phi(x) = 0.5 (1 + erf(x / sqrt 2)) given e = exp(-x^2 / 2),
 * through Abramowitz & Stegun 7.1.26 for erfc on the whole line: erf's
 * absolute error stays below 1.5e-7, which is what GELU needs (x Phi(x) is
 * then within 1e-7 relative of the exact value; erf's relative accuracy near
 * 0 does not matter here). One exp and one division: half the work of
 * fast_erff's two branches, and GELU bounds the feed-forward's speed. */
static inline float normal_cdf(float x, float e) {
    float t = 1.0f / fmaf(0.3275911f * INV_SQRT_2, fabsf(x), 1.0f);
    float p = 1.061405429f;
    p = fmaf(p, t, -1.453152027f);
    p = fmaf(p, t, 1.421413741f);
    p = fmaf(p, t, -0.284496736f);
    p = fmaf(p, t, 0.254829592f);
    float tail = 0.5f * t * p * e; /* Phi(-|x|) */
    return x >= 0.0f ? 1.0f - tail : tail;
}
static inline float gelu(float x) { return x * normal_cdf(x, fast_expf(-0.5f * x * x)); }
static inline float gelu_tanh(float x) {
    return 0.5f * x * (1.0f + fast_tanhf(SQRT_2_OVER_PI * (x + 0.044715f * x * x * x)));
}

/* MEGA's laplace: the normal CDF at (x - mu) / sigma, mu = sqrt(1/2), sigma =
 * sqrt(1/(4 pi)) (so that it matches relu2 near the origin); its derivative
 * is the normal density there over sigma. */
#define LAPLACE_MU 0.7071067811865476f
#define LAPLACE_SIGMA 0.28209479177387814f
static inline float laplace_and_grad(float x, float *grad) {
    float z = (x - LAPLACE_MU) * (1.0f / LAPLACE_SIGMA), e = fast_expf(-0.5f * z * z);
    *grad = e * (INV_SQRT_2PI / LAPLACE_SIGMA);
    return normal_cdf(z, e);
}

/* SiLU (swish): x sigmoid(x), and its derivative s (1 + x (1 - s)). */
static inline float sigmoid(float x) { return 1.0f / (1.0f + fast_expf(-x)); }
static inline float silu_and_grad(float x, float *grad) {
    float s = sigmoid(x);
    *grad = s * (1.0f + x * (1.0f - s));
    return x * s;
}

void activation_forward(float *y, const float *x, size_t n, Activation a) {
    switch (a) {
    case ACT_RELU:
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
        break;
    case ACT_GELU:
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < n; i++) y[i] = gelu(x[i]);
        break;
    case ACT_GELU_TANH:
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < n; i++) y[i] = gelu_tanh(x[i]);
        break;
    case ACT_SILU:
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < n; i++) y[i] = x[i] * sigmoid(x[i]);
        break;
    case ACT_RELU2:
    case ACT_LAPLACE: { /* no cheaper form without the derivative */
        float unused;
#pragma omp parallel for simd schedule(static) private(unused)
        for (size_t i = 0; i < n; i++)
            y[i] = a == ACT_RELU2 ? (x[i] > 0.0f ? x[i] * x[i] : 0.0f) : laplace_and_grad(x[i], &unused);
        break;
    }
    }
}

/* The derivative comes with the value: GELU's share one exp and one erf. */
static inline float gelu_and_grad(float x, float *grad) {
    float e = fast_expf(-0.5f * x * x), cdf = normal_cdf(x, e);
    *grad = cdf + x * INV_SQRT_2PI * e;
    return x * cdf;
}
static inline float gelu_tanh_and_grad(float x, float *grad) {
    float t = fast_tanhf(SQRT_2_OVER_PI * (x + 0.044715f * x * x * x));
    float du = SQRT_2_OVER_PI * (1.0f + 3.0f * 0.044715f * x * x);
    *grad = 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * du;
    return 0.5f * x * (1.0f + t);
}

void activation_grad(float *y, float *dydx, const float *x, size_t n, Activation a) {
    switch (a) {
    case ACT_RELU:
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < n; i++) {
            float v = x[i];
            y[i] = v > 0.0f ? v : 0.0f;
            dydx[i] = v > 0.0f ? 1.0f : 0.0f;
        }
        break;
    case ACT_GELU:
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < n; i++) y[i] = gelu_and_grad(x[i], &dydx[i]);
        break;
    case ACT_GELU_TANH:
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < n; i++) y[i] = gelu_tanh_and_grad(x[i], &dydx[i]);
        break;
    case ACT_SILU:
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < n; i++) y[i] = silu_and_grad(x[i], &dydx[i]);
        break;
    case ACT_RELU2:
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < n; i++) {
            float v = x[i] > 0.0f ? x[i] : 0.0f;
            y[i] = v * v;
            dydx[i] = 2.0f * v;
        }
        break;
    case ACT_LAPLACE:
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < n; i++) y[i] = laplace_and_grad(x[i], &dydx[i]);
        break;
    }
}
