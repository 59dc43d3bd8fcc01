/* hyena.h — the constants of Hyena's implicit filter (spec ssm-hyena.md
 * §2.3), shared by the mixer and its tests. */
#ifndef SEQLAB_HYENA_H
#define SEQLAB_HYENA_H

#include <stddef.h>

/* Positions k = 0 .. L-1: t (L) = k / (L - 1), and the features z (L, E) =
 * [t_k, cos(f_j w_k) for the (E-1)/2 bands j, -sin(f_j w_k) ...] with
 * w_k = 2 pi k / L and f_j = linspace(1e-4, bands - 1, bands). E odd. */
void hyena_positions(float *z, float *t, size_t L, size_t E);
/* The window's rates δ (n) = linspace(ln(target)/slow_pct, ln(target)/fast_pct, n):
 * channel c's window at t is exp(-t |δ_c|) (+ shift). */
void hyena_decays(float *delta, size_t n, double fast_pct, double slow_pct, double target);

#endif
