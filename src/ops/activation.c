/* activation.c — ReLU, GELU (exact, erf) and GELU (tanh approximation,
 * Hendrycks & Gimpel 2016), as torch.nn.functional computes them; erf and exp
 * from fastmath.h so the loops vectorise. */
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
    else return -1;
    return 0;
}

/* Phi(x) = 0.5 (1 + erf(x / sqrt 2)) and the density share e = exp(-x^2 / 2). */
static inline float gelu(float x) {
    return 0.5f * x * (1.0f + fast_erff_with_exp(x * INV_SQRT_2, fast_expf(-0.5f * x * x)));
}
static inline float gelu_grad(float x) {
    float e = fast_expf(-0.5f * x * x);
    return 0.5f * (1.0f + fast_erff_with_exp(x * INV_SQRT_2, e)) + x * INV_SQRT_2PI * e;
}
static inline float gelu_tanh(float x) {
    return 0.5f * x * (1.0f + fast_tanhf(SQRT_2_OVER_PI * (x + 0.044715f * x * x * x)));
}
static inline float gelu_tanh_grad(float x) {
    float u = SQRT_2_OVER_PI * (x + 0.044715f * x * x * x);
    float t = fast_tanhf(u);
    float du = SQRT_2_OVER_PI * (1.0f + 3.0f * 0.044715f * x * x);
    return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * du;
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
    }
}

void activation_backward(float *dx, const float *dy, const float *x, size_t n, Activation a) {
    switch (a) {
    case ACT_RELU:
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < n; i++) dx[i] = x[i] > 0.0f ? dy[i] : 0.0f;
        break;
    case ACT_GELU:
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < n; i++) dx[i] = dy[i] * gelu_grad(x[i]);
        break;
    case ACT_GELU_TANH:
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < n; i++) dx[i] = dy[i] * gelu_tanh_grad(x[i]);
        break;
    }
}
