/* norm.h — the normalisation a module chooses by name (key `norm`):
 * layernorm, rmsnorm, scalenorm, batchnorm (running statistics as buffers) or
 * none; the residual wrapper's, and any module that owns its norms.
 *
 *     Norm n;  norm_parse("rmsnorm", &n.kind);  n.C = C;
 *     norm_params(&n, ps, "norm");                 // norm.weight (+ bias, buffers)
 *     norm_forward(&n, y, stats, x, N, training);  // stats: norm_stats_floats(&n, N)
 *     norm_backward(&n, dx, dy, x, stats, N, training, accumulate);
 */
#ifndef SEQLAB_NORM_H
#define SEQLAB_NORM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/params.h"

typedef enum { NORM_LAYER, NORM_RMS, NORM_SCALE, NORM_BATCH, NORM_NONE } NormKind;

#define NORM_CHOICES "layernorm|rmsnorm|scalenorm|batchnorm|none"

typedef struct {
    NormKind kind;
    size_t C;
    float *w, *dw;                     /* (C), scalenorm (1); NULL for none */
    float *b, *db;                     /* (C) layernorm and batchnorm; else NULL */
    float *running_mean, *running_var; /* (C) batchnorm buffers */
} Norm;

int norm_parse(const char *name, NormKind *out);
/* Declares `<name>.weight`, `<name>.bias`, `<name>.running_mean/var` as the kind has them. */
void norm_params(Norm *n, ParamSet *ps, const char *name);
/* weight = 1 + N(0, w_std^2) from (seed, scope, index) (w_std 0: exactly 1), bias 0, running var 1. */
void norm_init(Norm *n, float w_std, uint64_t seed, uint64_t scope, int index);
/* Floats of statistics a forward saves for backward over N rows. */
size_t norm_stats_floats(const Norm *n, size_t N);
/* y (N, C) from x; fills stats. y may not alias x. */
void norm_forward(const Norm *n, float *y, float *stats, const float *x, size_t N, bool training);
/* y again from x and the saved stats (what forward wrote), without
 * touching the running statistics. */
void norm_apply(const Norm *n, float *y, const float *stats, const float *x, size_t N);
/* dx overwritten, or accumulated; parameter gradients accumulated. */
void norm_backward(const Norm *n, float *dx, const float *dy, const float *x, const float *stats, size_t N,
                   bool training, bool accumulate_dx);

#endif
