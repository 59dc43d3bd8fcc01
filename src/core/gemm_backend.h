/* gemm_backend.h — what gemm.c asks of the backend chosen at build time
 * (gemm_onednn.c or gemm_cblas.c): the products gemm.c does not run itself. */
#ifndef SEQLAB_GEMM_BACKEND_H
#define SEQLAB_GEMM_BACKEND_H

#include <stdint.h>
#include <string.h>

#include "gemm.h"

void backend_gemm(bool trans_a, bool trans_b, size_t M, size_t N, size_t K, float alpha, const float *A, size_t lda,
                  const float *B, size_t ldb, float beta, float *C, size_t ldc);

/* Round to nearest even, as AVX512-BF16's conversion does (inputs are finite
 * or inf; a NaN stays a NaN because its payload survives the shift). */
static inline uint16_t bf16_round(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

#endif
