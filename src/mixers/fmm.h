/* fmm.h — the attention family that shares one interleaved qkv projection
 * (internal to src/mixers): FMMformer (fmm.c), and its two special cases,
 * banded softmax attention (band.c, mode 4) and causal linear attention
 * (linear.c, mode 5 with one kernel). Spec: shared/spec/attention.md §2–4. */
#ifndef SEQLAB_FMM_H
#define SEQLAB_FMM_H

#include "../ops/ops.h"
#include "mixer.h"

enum { FMM_MAX_KERNELS = 2 };

typedef struct {
    Module base;
    size_t H, d, HD;
    bool causal;
    float dropatt;
    int mode;                 /* floor(sparse_ratio), 5 for anything >= 5 */
    size_t window;            /* diag_size */
    int n_kernels;
    FeatureMap kernels[FMM_MAX_KERNELS];
    size_t chunk;             /* linear_chunk */
    /* parameters */
    float *w_qkv, *dw_qkv;    /* (3HD, C): head h = [q | k | v] at columns 3hd */
    float *w_o, *dw_o;        /* (C, HD) */
    float *w_near, *dw_near;  /* (HD) modes 0, 2, 3, or NULL */
    float *w_far, *dw_far;    /* (HD) modes 1, 3, or NULL */
    float *mix, *dmix;        /* (2) learned kernel weights a1, a2, or NULL */
    /* saved activations */
    const float *x;           /* borrowed: input (B, T, C) */
    float *qkv;               /* (B, T, 3HD) */
    float *near, *lse;        /* (B, T, HD) band output N, (B, H, T) its log-sum-exp; NULL without a near field */
    float *far[FMM_MAX_KERNELS];       /* (B, T, HD) each kernel's linear attention L_k */
    float *far_saved[FMM_MAX_KERNELS]; /* each kernel's den and chunk states */
} FmmAttn;

/* Configures an FmmAttn for `mode` with the kernels of the comma list. */
int fmm_setup(Module *m, int mode, const char *kernels, Error *err);
void fmm_params(Module *m, ParamSet *ps);
void fmm_init(Module *m, uint64_t seed);
void fmm_layout(Module *m, size_t B, size_t T, Arena *a);
size_t fmm_scratch(Module *m, size_t B, size_t T);
void fmm_forward(Module *m, const float *x, float *y, const Pass *p);
void fmm_backward(Module *m, const float *dy, float *dx, const Pass *p);
size_t fmm_state_size(Module *m, size_t max_T);
void fmm_step(Module *m, float *state, size_t t, const float *x, float *y, float *scratch);
double fmm_flops(Module *m, size_t B, size_t T);

#define FMM_MODULE_OPS(NAME, CONFIGURE)                                                                  \
    {                                                                                                   \
        .name = NAME, .size = sizeof(FmmAttn), .configure = CONFIGURE, .params = fmm_params,             \
        .init = fmm_init, .layout = fmm_layout, .scratch = fmm_scratch, .forward = fmm_forward,          \
        .backward = fmm_backward, .state_size = fmm_state_size, .step = fmm_step, .flops = fmm_flops,    \
    }

#endif
