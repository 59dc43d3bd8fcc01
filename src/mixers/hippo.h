/* hippo.h — the HiPPO-N initialisation of S5's state matrix (spec
 * ssm-hyena.md §1.3; Gu et al. 2020, 2022; Smith et al. 2023 §4.3).
 *
 * The HiPPO-LegS matrix A plus the rank-1 term p p^T is normal; its
 * eigenvalues all have real part -1/2 and its eigenvectors are those of the
 * Hermitian matrix -i Sk (Sk the skew-symmetric part), which LAPACK's zheev
 * finds with ascending imaginary parts, as JAX's eigh does. */
#ifndef SEQLAB_HIPPO_H
#define SEQLAB_HIPPO_H

#include <complex.h>
#include <stddef.h>

#include "../core/error.h"

/* For block size n: lambda (n) the eigenvalues -1/2 + i omega_m, omega
 * ascending; V (n x n, row-major, column m the eigenvector of lambda_m),
 * unitary. Each eigenvector is fixed only up to a unit phase (LAPACK's). */
int hippo_n(size_t n, double complex *lambda, double complex *V, Error *err);

#endif
