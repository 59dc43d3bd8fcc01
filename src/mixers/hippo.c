/* hippo.c — see hippo.h. */
#include "hippo.h"

#include <lapacke.h>
#include <math.h>
#include <stdlib.h>

#include "../core/error.h"

int hippo_n(size_t n, double complex *lambda, double complex *V, Error *err) {
    double *omega = malloc(n * sizeof *omega);
    lapack_complex_double *M = malloc(n * n * sizeof *M);
    if (!omega || !M) {
        free(omega), free(M);
        return err_set(err, "out of memory for the HiPPO matrix of size %zu", n);
    }
    /* S = A + p p^T has S_ij = -sqrt((i+1/2)(j+1/2)) below the diagonal and
     * +sqrt(...) above it (its skew part Sk), -1/2 on it; M = -i Sk. */
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            const double s = i == j ? 0.0 : (i > j ? -1.0 : 1.0) * sqrt((i + 0.5) * (j + 0.5));
            M[i * n + j] = -I * s;
        }
    const lapack_int info = LAPACKE_zheev(LAPACK_ROW_MAJOR, 'V', 'L', (lapack_int)n, M, (lapack_int)n, omega);
    if (info == 0)
        for (size_t m = 0; m < n; m++) {
            lambda[m] = -0.5 + I * omega[m];
            for (size_t i = 0; i < n; i++) V[i * n + m] = M[i * n + m];
        }
    free(omega), free(M);
    if (info != 0) return err_set(err, "LAPACK zheev failed (info %d) on the HiPPO matrix of size %zu", (int)info, n);
    return 0;
}
