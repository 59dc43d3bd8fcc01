/* gemm_cblas.c — the OpenBLAS backend of gemm.h (`make GEMM=openblas`).
 *
 * Kept for machines without oneDNN. OpenBLAS (the OpenMP build) picks its
 * kernels when it is loaded, from the CPU or from OPENBLAS_CORETYPE; on the
 * machines of docs/benchmarks.md it is slower than oneDNN and slower still
 * with OPENBLAS_CORETYPE=Haswell. fp32 only. */
#include <cblas.h>
#include <stdio.h>

#include "gemm_backend.h"

char *openblas_get_corename(void);
void openblas_set_num_threads(int num_threads);

void backend_gemm(bool trans_a, bool trans_b, size_t M, size_t N, size_t K, float alpha, const float *A, size_t lda,
          const float *B, size_t ldb, float beta, float *C, size_t ldc) {
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, (int)M,
                (int)N, (int)K, alpha, A, (int)lda, B, (int)ldb, beta, C, (int)ldc);
}

int gemm_set_precision(Precision p, Error *err) {
    if (p == PRECISION_BF16)
        return err_set(err, "key 'precision': bf16 needs the oneDNN build of seqlab (this one uses OpenBLAS); "
                            "use precision: fp32 or build with plain `make`");
    return 0;
}

Precision gemm_get_precision(void) { return PRECISION_FP32; }

void gemm_set_threads(int n) { openblas_set_num_threads(n); }

const char *gemm_backend(void) {
    static char name[96];
    snprintf(name, sizeof name, "OpenBLAS: sgemm on %s", openblas_get_corename());
    return name;
}
