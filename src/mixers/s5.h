/* s5.h — the discretisation of one S5 state (spec ssm-hyena.md §1.5, §1.6),
 * shared by the mixer and its tests. */
#ifndef SEQLAB_S5_H
#define SEQLAB_S5_H

#include <complex.h>
#include <stdbool.h>

#define S5_CLIP_RE (-1e-4) /* clip_eigs: Re Λ <= -1e-4 keeps every state decaying */

typedef struct {
    double complex lambda; /* Λ, its real part clipped when asked */
    double complex abar;   /* Λ̄ */
    double complex f;      /* B̄ = f B̃ */
    double delta;          /* Δ = step_rescale exp(log_step) */
} S5Discrete;

/* ZOH: Λ̄ = exp(ΛΔ), f = (Λ̄ - 1)/Λ; bilinear: Λ̄ = (1 + ΔΛ/2)/(1 - ΔΛ/2), f = Δ/(1 - ΔΛ/2). */
S5Discrete s5_discretize(double lambda_re, double lambda_im, double log_step, double step_rescale, bool clip_eigs,
                         bool zoh);

#endif
