/* gemm.c — what gemm.h's backends share: the dispatch, the precision's name,
 * and the one-row product of generation.
 *
 * A one-token step multiplies one row by each weight matrix of the model: it
 * reads every weight once for two flops, so the bytes of the weights, not
 * arithmetic, set its time (docs/mega-seqboat.md measures it). The row product
 * here splits W's rows over the threads, each output one dot product on one
 * thread (the same bits on any number of threads), and under bf16 precision it
 * reads the weights from a bf16 copy made for generation: half the bytes. The
 * backends' sgemm took as long for one row in fp32 (bench/results). */
#include <omp.h>
#include <stdlib.h>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "gemm_backend.h"
#include "threads.h"

int precision_parse(const char *name, Precision *out) {
    if (!strcmp(name, "fp32")) *out = PRECISION_FP32;
    else if (!strcmp(name, "bf16")) *out = PRECISION_BF16;
    else return -1;
    return 0;
}

/* ---- the bf16 copy of the weights ---- */

static struct {
    const float *fp32;
    uint16_t *bf16;
    size_t n;
} shadow;

int gemm_weights_bf16(const float *w, size_t n, Error *err) {
    free(shadow.bf16);
    shadow.fp32 = NULL, shadow.bf16 = NULL, shadow.n = 0;
    if (!w || !n) return 0;
    uint16_t *copy = malloc(n * sizeof *copy);
    if (!copy) return err_set(err, "out of memory for the bf16 copy of %zu weights", n);
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) copy[i] = bf16_round(w[i]);
    shadow.fp32 = w, shadow.bf16 = copy, shadow.n = n;
    return 0;
}

/* B's rows in the bf16 copy, or NULL when B is not inside the copied weights. */
static const uint16_t *shadow_of(const float *B, size_t rows, size_t ld) {
    if (!shadow.bf16 || B < shadow.fp32 || B >= shadow.fp32 + shadow.n) return NULL;
    const size_t at = (size_t)(B - shadow.fp32);
    return at + (rows - 1) * ld < shadow.n ? shadow.bf16 + at : NULL;
}

/* ---- one row ---- */

static float dot_f32(const float *w, const float *x, size_t K) {
    float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
    for (size_t i = 0; i < K; i++) acc += w[i] * x[i];
    return acc;
}

static inline float bf16_value(uint16_t h) {
    const uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* A bf16 weight pair (w[2j], w[2j+1]) fills one 32-bit lane: shifting the
 * lane left by 16 gives w[2j] as a float, masking its low half gives w[2j+1].
 * So 32 weights become two float vectors in two instructions, multiplied by
 * x's even and odd elements (x_even, x_odd: x deinterleaved once per product). */
enum { PAIR_BLOCK = 32 };

static size_t paired_length(size_t K) {
#if defined(__AVX512F__)
    return K - K % PAIR_BLOCK;
#else
    (void)K;
    return 0;
#endif
}

static float dot_bf16(const uint16_t *w, const float *x, const float *x_even, const float *x_odd, size_t K) {
    const size_t paired = paired_length(K);
    float acc = 0.0f;
#if defined(__AVX512F__)
    const __m512i high = _mm512_set1_epi32((int)0xffff0000u);
    __m512 even = _mm512_setzero_ps(), odd = _mm512_setzero_ps();
    for (size_t i = 0; i < paired; i += PAIR_BLOCK) {
        const __m512i pairs = _mm512_loadu_si512(w + i);
        even = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(pairs, 16)), _mm512_loadu_ps(x_even + i / 2), even);
        odd = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_and_si512(pairs, high)), _mm512_loadu_ps(x_odd + i / 2), odd);
    }
    acc = _mm512_reduce_add_ps(_mm512_add_ps(even, odd));
#else
    (void)x_even, (void)x_odd;
#endif
    for (size_t i = paired; i < K; i++) acc += bf16_value(w[i]) * x[i];
    return acc;
}

/* x deinterleaved into even and odd elements; grows to the longest row. */
static float *deinterleave(const float *x, size_t K) {
    static float *room;
    static size_t cap;
    const size_t paired = paired_length(K);
    if (paired > cap) {
        float *r = realloc(room, paired * sizeof *r);
        if (!r) return NULL;
        room = r, cap = paired;
    }
    for (size_t j = 0; j < paired / 2; j++) room[j] = x[2 * j], room[paired / 2 + j] = x[2 * j + 1];
    return room;
}

/* Below this many weights a product is not worth waking the other threads. */
enum { ROW_PRODUCT_PARALLEL_MIN = 1 << 15 };

/* C (1 x N) = alpha x W^T + beta C, W (N x K) with leading dimension ldb. */
static void row_product(size_t N, size_t K, float alpha, const float *x, const float *W, size_t ldb, float beta,
                        float *C) {
    const uint16_t *w16 = omp_in_parallel() ? NULL : shadow_of(W, N, ldb); /* the room below is not per thread */
    const float *split = w16 ? deinterleave(x, K) : NULL;
    if (!split) w16 = NULL;
    const size_t half = paired_length(K) / 2;
#pragma omp parallel for schedule(static) num_threads(threads_get()) if (N * K >= ROW_PRODUCT_PARALLEL_MIN)
    for (size_t o = 0; o < N; o++) {
        const float dot = w16 ? dot_bf16(w16 + o * ldb, x, split, split + half, K) : dot_f32(W + o * ldb, x, K);
        C[o] = alpha * dot + (beta == 0.0f ? 0.0f : beta * C[o]); /* beta 0: C may hold garbage */
    }
}

void gemm(bool trans_a, bool trans_b, size_t M, size_t N, size_t K, float alpha, const float *A, size_t lda,
          const float *B, size_t ldb, float beta, float *C, size_t ldc) {
    if (M == 0 || N == 0) return;
    if (M == 1 && trans_b) row_product(N, K, alpha, A, B, ldb, beta, C);
    else backend_gemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
