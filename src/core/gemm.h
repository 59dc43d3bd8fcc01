/* gemm.h — the one matrix product of seqlab: row-major sgemm through CBLAS.
 *
 * C (M x N) = alpha * op(A) * op(B) + beta * C, all row-major with leading
 * dimensions. OpenBLAS (OpenMP build) does the work; inside an OpenMP parallel
 * region it runs on the calling thread, so small per-head products can be
 * issued from parallel loops. */
#ifndef SEQLAB_GEMM_H
#define SEQLAB_GEMM_H

#include <stdbool.h>
#include <stddef.h>

void gemm(bool trans_a, bool trans_b, size_t M, size_t N, size_t K, float alpha, const float *A, size_t lda,
          const float *B, size_t ldb, float beta, float *C, size_t ldc);

#endif
