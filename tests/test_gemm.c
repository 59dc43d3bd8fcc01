/* test_gemm.c — the matrix product of core/gemm.h against the exact product
 * in double, element by element, with the rigorous rounding bound of each
 * precision: every transpose combination, alpha, beta, leading dimensions
 * wider than the matrix, in and outside OpenMP parallel regions. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "../src/core/gemm.h"
#include "../src/core/rng.h"
#include "../src/core/threads.h"
#include "test.h"
#include "tolerance.h"

/* bfloat16 keeps 8 significant bits: rounding to nearest costs 2^-9 relative. */
#define BF16_UNIT_ROUNDOFF 0x1p-9

typedef struct {
    bool ta, tb;
    size_t M, N, K, lda, ldb, ldc;
    float alpha, beta;
} Case;

static float *random_matrix(size_t n, uint64_t stream) {
    float *x = malloc(n * sizeof *x);
    Rng r = rng_make(12, rng_stream(RNG_TEST, stream, 0));
    for (size_t i = 0; i < n; i++) x[i] = rng_normal(&r);
    return x;
}

static float elem(const float *X, bool trans, size_t ld, size_t r, size_t c) {
    return trans ? X[c * ld + r] : X[r * ld + c];
}

/* Runs one case and returns the largest ratio |C - exact| / bound over the
 * elements (<= 1 passes). The bound of element (i, j): the inputs' rounding
 * (2 u_in + u_in^2 per product, u_in = 0 in fp32) and float32 accumulation
 * over K + 2 terms (alpha, beta C), both on sum |alpha a_ik b_kj| + |beta c_ij|.
 * With `differs` (not NULL) it also tells whether any element differs from
 * the fp32 product (which it runs in fp32 for that). */
static double run_case(const Case *k, double u_in, bool *differs) {
    const size_t arows = k->ta ? k->K : k->M, brows = k->tb ? k->N : k->K;
    float *A = random_matrix(arows * k->lda, 1), *B = random_matrix(brows * k->ldb, 2);
    float *C = random_matrix(k->M * k->ldc, 3), *C32 = malloc(k->M * k->ldc * sizeof(float));
    memcpy(C32, C, k->M * k->ldc * sizeof(float));
    double *exact = malloc(k->M * k->N * sizeof(double)), *mag = malloc(k->M * k->N * sizeof(double));
    for (size_t i = 0; i < k->M; i++)
        for (size_t j = 0; j < k->N; j++) {
            double s = 0, a = 0;
            for (size_t p = 0; p < k->K; p++) {
                double t = (double)elem(A, k->ta, k->lda, i, p) * elem(B, k->tb, k->ldb, p, j);
                s += t, a += fabs(t);
            }
            double c = k->beta * (double)C[i * k->ldc + j];
            exact[i * k->N + j] = k->alpha * s + c;
            mag[i * k->N + j] = fabs(k->alpha) * a + fabs(c);
        }
    if (differs) {
        Precision p = gemm_get_precision();
        gemm_set_precision(PRECISION_FP32, NULL);
        gemm(k->ta, k->tb, k->M, k->N, k->K, k->alpha, A, k->lda, B, k->ldb, k->beta, C32, k->ldc);
        gemm_set_precision(p, NULL);
    }
    gemm(k->ta, k->tb, k->M, k->N, k->K, k->alpha, A, k->lda, B, k->ldb, k->beta, C, k->ldc);
    double worst = 0;
    bool any_differs = false;
    const double u = FLOAT32_UNIT_ROUNDOFF, per_product = 2 * u_in + u_in * u_in;
    for (size_t i = 0; i < k->M; i++)
        for (size_t j = 0; j < k->N; j++) {
            double m = mag[i * k->N + j], bound = (per_product + (k->K + 2) * u) * m + 1e-30;
            worst = fmax(worst, fabs(C[i * k->ldc + j] - exact[i * k->N + j]) / bound);
            any_differs |= C[i * k->ldc + j] != C32[i * k->ldc + j];
        }
    for (size_t i = 0; i < k->M; i++) /* columns past N are not the product's to touch */
        for (size_t j = k->N; j < k->ldc; j++) worst = C[i * k->ldc + j] == C32[i * k->ldc + j] ? worst : INFINITY;
    if (differs) *differs = any_differs;
    free(A), free(B), free(C), free(C32), free(exact), free(mag);
    return worst;
}

static const Case CASES[] = {
    {false, false, 70, 45, 33, 33, 45, 45, 1.0f, 0.0f}, {false, true, 64, 48, 40, 40, 40, 48, 1.0f, 1.0f},
    {true, false, 40, 96, 64, 40, 96, 100, 0.5f, 1.0f}, {true, true, 33, 35, 37, 40, 41, 42, -2.0f, 0.5f},
    {false, true, 5, 7, 3, 3, 3, 7, 1.0f, 0.0f}, /* small: stays fp32 under bf16 */
    {false, true, 1, 64, 64, 64, 64, 64, 1.0f, 1.0f}, /* one row, as generation issues */
};

TEST(gemm_matches_the_exact_product_in_fp32) {
    Error err = {0};
    REQUIRE(gemm_set_precision(PRECISION_FP32, &err) == 0, "%s", err.msg);
    for (size_t i = 0; i < sizeof CASES / sizeof *CASES; i++) {
        bool differs;
        double r = run_case(&CASES[i], 0.0, &differs);
        CHECK(r <= 1.0, "case %zu: error %.3g times the fp32 bound (inf: wrote past N)", i, r);
    }
    /* inside a parallel region each thread runs its own product */
    double worst = 0;
#pragma omp parallel for reduction(max : worst)
    for (int t = 0; t < 4; t++) worst = fmax(worst, run_case(&CASES[t], 0.0, NULL));
    CHECK(worst <= 1.0, "in a parallel region: error %.3g times the fp32 bound", worst);
}

TEST(gemm_bf16_rounds_only_the_inputs) {
    Error err = {0};
    if (gemm_set_precision(PRECISION_BF16, &err)) {
        CHECK(strstr(err.msg, "bf16") != NULL, "refusal does not say why: %s", err.msg);
        TEST_SKIP("this CPU or build has no bf16 products");
    }
    for (size_t i = 0; i < sizeof CASES / sizeof *CASES; i++) {
        const Case *k = &CASES[i];
        bool large = k->M >= GEMM_BF16_MIN && k->N >= GEMM_BF16_MIN && k->K >= GEMM_BF16_MIN, differs;
        double r = run_case(k, large ? BF16_UNIT_ROUNDOFF : 0.0, &differs);
        CHECK(r <= 1.0, "case %zu: error %.3g times the bound", i, r);
        CHECK(differs == large, "case %zu: %s", i, large ? "ran in fp32 (no bf16 rounding seen)" : "small product rounded");
    }
    gemm_set_precision(PRECISION_FP32, &err);
}

/* bfloat16 round to nearest even, from the definition: of the two bf16
 * neighbours of f (its upper 16 bits, and the next one away from zero), the
 * nearer; on a tie the one with an even last bit. */
static float bf16_nearest(float f) {
    uint32_t u, toward_zero_bits, away_bits;
    memcpy(&u, &f, 4);
    toward_zero_bits = u & 0xffff0000u, away_bits = toward_zero_bits + 0x10000u;
    float toward_zero, away;
    memcpy(&toward_zero, &toward_zero_bits, 4), memcpy(&away, &away_bits, 4);
    const double d0 = fabs((double)f - toward_zero), d1 = fabs((double)away - f);
    if (d0 != d1) return d0 < d1 ? toward_zero : away;
    return (toward_zero_bits >> 16) & 1u ? away : toward_zero;
}

/* The largest ratio |y - exact| / fp32 bound of y = x W^T (one row), the exact
 * product taken with W's elements through `weight` (bf16 rounding or none). */
static double one_row_error(const float *y, const float *x, const float *W, size_t N, size_t K, size_t ldw,
                            float (*weight)(float)) {
    double worst = 0;
    for (size_t o = 0; o < N; o++) {
        double s = 0, a = 0;
        for (size_t i = 0; i < K; i++) {
            const double t = (double)x[i] * weight(W[o * ldw + i]);
            s += t, a += fabs(t);
        }
        worst = fmax(worst, fabs(y[o] - s) / ((K + 2) * FLOAT32_UNIT_ROUNDOFF * a + 1e-30));
    }
    return worst;
}

static float as_is(float f) { return f; }

TEST(gemm_one_row_reads_the_bf16_copy_of_given_weights) {
    enum { N = 37, K = 75, LDW = 80, AT = 5 }; /* K: two paired blocks and a tail; W at an odd offset */
    float *base = random_matrix(AT + N * LDW, 4), *x = random_matrix(K, 5), *W = base + AT;
    float *outside = malloc(N * LDW * sizeof(float)), y[N], y1[N];
    memcpy(outside, W, N * LDW * sizeof(float));
    Error err = {0};
    REQUIRE(gemm_weights_bf16(base, AT + N * LDW, &err) == 0, "%s", err.msg);
    const int threads = threads_get();
    threads_set(1);
    gemm(false, true, 1, N, K, 1.0f, x, K, W, LDW, 0.0f, y1, N);
    threads_set(2);
    gemm(false, true, 1, N, K, 1.0f, x, K, W, LDW, 0.0f, y, N);
    CHECK(!memcmp(y, y1, sizeof y), "the bits depend on the thread count");
    CHECK(one_row_error(y, x, W, N, K, LDW, bf16_nearest) <= 1.0, "not the product with W rounded to bf16");
    CHECK(one_row_error(y, x, W, N, K, LDW, as_is) > 1.0, "W was not rounded");
    gemm(false, true, 1, N, K, 1.0f, x, K, outside, LDW, 0.0f, y, N);
    CHECK(one_row_error(y, x, outside, N, K, LDW, as_is) <= 1.0, "weights outside the copy were rounded");
    gemm_weights_bf16(NULL, 0, NULL);
    gemm(false, true, 1, N, K, 1.0f, x, K, W, LDW, 0.0f, y, N);
    CHECK(one_row_error(y, x, W, N, K, LDW, as_is) <= 1.0, "the dropped copy is still read");
    threads_set(threads);
    free(base), free(x), free(outside);
}
