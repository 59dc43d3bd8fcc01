/* gemm.h — the one matrix product of seqlab, through the backend that
 * measured fastest.
 *
 * C (M x N) = alpha * op(A) * op(B) + beta * C, all row-major with leading
 * dimensions. The backend is chosen at build time by measurement on the
 * products seqlab runs (bench/gemm.sh, docs/benchmarks.md): oneDNN by
 * default (`make`), OpenBLAS with `make GEMM=openblas`. Both run on seqlab's
 * OpenMP threads; called inside an OpenMP parallel region a product runs on
 * the calling thread, so small per-head products can be issued from
 * parallel loops.
 *
 *     Error err = {0};
 *     if (gemm_set_precision(PRECISION_BF16, &err)) ...   // refused without AVX512-BF16
 *     gemm(false, true, N, out, in, 1.0f, x, in, w, in, 0.0f, y, out);  // y = x W^T
 *
 * Precision: fp32 (the default) runs every product in float32. bf16 rounds
 * the two inputs of the large products (issued outside parallel regions,
 * every dimension at least GEMM_BF16_MIN) to bfloat16 and accumulates in
 * float32 (oneDNN's matmul on AVX512-BF16 / AMX); the inputs themselves stay
 * float32, so weights keep their fp32 master copy. Small products and the
 * attention tiles stay fp32.
 *
 * One-row products (M = 1, B transposed: y = x W^T, as a one-token step
 * issues them) run in gemm.c, split over the threads by W's rows; when W lies
 * inside weights given to gemm_weights_bf16 they read its bf16 copy (weights
 * rounded, x and the sums fp32). */
#ifndef SEQLAB_GEMM_H
#define SEQLAB_GEMM_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

void gemm(bool trans_a, bool trans_b, size_t M, size_t N, size_t K, float alpha, const float *A, size_t lda,
          const float *B, size_t ldb, float beta, float *C, size_t ldc);

typedef enum { PRECISION_FP32, PRECISION_BF16 } Precision;

/* Products with a dimension below this stay fp32 under bf16: converting the
 * inputs would cost more than the product saves (one-token generation). */
#define GEMM_BF16_MIN 32

/* Parses "fp32" | "bf16"; -1 for anything else. */
int precision_parse(const char *name, Precision *out);

/* Sets the precision of the products that follow (process-wide, like the
 * thread count). Returns -1 with a message when this CPU or backend cannot
 * run bf16 products; the precision is then unchanged. */
int gemm_set_precision(Precision p, Error *err);
Precision gemm_get_precision(void);

/* Makes a bf16 copy of the n weights at w for one-row products that read
 * inside them (generation under bf16 precision); w = NULL drops the copy.
 * The copy is of the weights as they are now. */
int gemm_weights_bf16(const float *w, size_t n, Error *err);

/* The thread count of the backend's own pool, where it has one. */
void gemm_set_threads(int n);

/* "oneDNN 2.6.3: sgemm on avx512_core_amx" — the library and the kernel
 * family that runs, for seqlab bench. */
const char *gemm_backend(void);

#endif
