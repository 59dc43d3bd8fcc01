/* fastmath.h — exp and erf in plain float arithmetic (internal to src/ops).
 *
 * glibc's expf and erff are scalar calls, so loops over them do not
 * vectorise; these inline versions do (`#pragma omp simd`). Measured on the
 * 4-layer benchmark model (docs/benchmarks.md), exact GELU through erff cost
 * about a quarter of the feed-forward time. Accuracy, checked against libm in
 * double by tests/test_ops.c: fast_expf within 3e-7 relative on
 * [-87.3, 88.7] (0 below); fast_erff within 3e-7 absolute; fast_tanhf
 * within 3e-7 absolute and relative near 0.
 */
#ifndef SEQLAB_FASTMATH_H
#define SEQLAB_FASTMATH_H

#include <math.h>
#include <stdint.h>

/* e^x: x = n ln2 + r with |r| <= ln2/2 (Cody-Waite, ln2 split in a high part
 * exact in float and a low part), e^r by its Taylor polynomial to r^6
 * (truncation < 1e-7 relative), times 2^n built in the exponent bits. */
static inline float fast_expf(float x) {
    const float big = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    float xc = x < -87.33654f ? -87.33654f : x > 88.72283f ? 88.72283f : x;
    float n = (xc * 1.44269504f + big) - big;
    float r = fmaf(n, -0.693145751953125f, xc);
    r = fmaf(n, -1.428606765330187e-06f, r);
    float p = 1.0f / 720.0f;
    p = fmaf(p, r, 1.0f / 120.0f);
    p = fmaf(p, r, 1.0f / 24.0f);
    p = fmaf(p, r, 1.0f / 6.0f);
    p = fmaf(p, r, 0.5f);
    p = fmaf(p, r, 1.0f);
    p = fmaf(p, r, 1.0f);
    union {
        int32_t i;
        float f;
    } scale = {.i = ((int32_t)n + 127) << 23}; /* a union, not memcpy: gcc vectorises this one */
    return x < -87.33654f ? 0.0f : p * scale.f;
}

/* erf(x) given e = exp(-x^2) (callers often have it already): the Taylor
 * series 2/sqrt(pi) sum (-1)^n x^(2n+1) / (n! (2n+1)) to n = 10 below
 * |x| = 1 (the next term is 1e-9), else Abramowitz & Stegun 7.1.26
 * (1 - t P(t) e^{-x^2}, t = 1 / (1 + 0.3275911 |x|), error 1.5e-7). */
static inline float fast_erff_with_exp(float x, float e) {
    float a = fabsf(x), x2 = x * x;
    float s = 1.0f / 76204800.0f;
    s = fmaf(s, x2, -1.0f / 6894720.0f);
    s = fmaf(s, x2, 1.0f / 685440.0f);
    s = fmaf(s, x2, -1.0f / 75600.0f);
    s = fmaf(s, x2, 1.0f / 9360.0f);
    s = fmaf(s, x2, -1.0f / 1320.0f);
    s = fmaf(s, x2, 1.0f / 216.0f);
    s = fmaf(s, x2, -1.0f / 42.0f);
    s = fmaf(s, x2, 1.0f / 10.0f);
    s = fmaf(s, x2, -1.0f / 3.0f);
    s = fmaf(s, x2, 1.0f);
    float small = 1.1283791670955126f * x * s;
    float t = 1.0f / fmaf(0.3275911f, a, 1.0f);
    float p = 1.061405429f;
    p = fmaf(p, t, -1.453152027f);
    p = fmaf(p, t, 1.421413741f);
    p = fmaf(p, t, -0.284496736f);
    p = fmaf(p, t, 0.254829592f);
    float large = copysignf(1.0f - t * p * e, x);
    return a < 1.0f ? small : large;
}

static inline float fast_erff(float x) { return fast_erff_with_exp(x, fast_expf(-x * x)); }

/* tanh(x) = 1 - 2 / (e^{2x} + 1), odd-symmetrised so small |x| keeps its
 * relative accuracy through x (1 - 2/3 x^2 ...) below |x| = 2^-7. */
static inline float fast_tanhf(float x) {
    float a = fabsf(x);
    float t = 1.0f - 2.0f / (fast_expf(2.0f * a) + 1.0f);
    float small = x * (1.0f - x * x * (1.0f / 3.0f));
    return a < 0.0078125f ? small : copysignf(t, x);
}

#endif
