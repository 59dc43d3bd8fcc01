/* fmm.h — the attention family that shares one interleaved qkv projection
 * (internal to src/mixers): FMMformer (fmm.c), and its two special cases,
 * banded softmax attention (band.c, mode 4) and causal linear attention
 * (linear.c, mode 5 with one kernel). Spec: shared/spec/attention.md §2–4. */
#ifndef SEQLAB_FMM_H
#define SEQLAB_FMM_H

#include "../nn/module.h"
#include "../ops/ops.h"

enum { FMM_MAX_KERNELS = 2 };

typedef struct {
    Module base;
    /* keys */
    int n_head, d_head, diag_size, linear_chunk;
    double dropatt, init_std, sparse_ratio;
    char kernels[CFG_NAME];   /* key: comma list of feature maps */
    /* derived */
    size_t H, d, HD;
    int mode;                 /* floor(sparse_ratio), 5 for anything >= 5 */
    size_t window;            /* diag_size */
    int n_kernels;
    FeatureMap maps[FMM_MAX_KERNELS];
    size_t chunk;             /* linear_chunk */
    /* parameters */
    float *w_qkv, *dw_qkv;    /* (3HD, C): head h = [q | k | v] at columns 3hd */
    float *w_o, *dw_o;        /* (C, HD) */
    float *w_near, *dw_near;  /* (HD) modes 0, 2, 3, or NULL */
    float *w_far, *dw_far;    /* (HD) modes 1, 3, or NULL */
    float *mix, *dmix;        /* (2) learned kernel weights a1, a2, or NULL */
} FmmAttn;

/* Per use: what backward needs. */
typedef struct {
    const float *x;           /* borrowed: input (B, T, C) */
    float *qkv;               /* (B, T, 3HD) */
    float *near, *lse;        /* (B, T, HD) band output N, (B, H, T) its log-sum-exp; NULL without a near field */
    float *far[FMM_MAX_KERNELS];       /* (B, T, HD) each kernel's linear attention L_k */
    float *far_saved[FMM_MAX_KERNELS]; /* each kernel's den and chunk states */
} FmmFrame;

/* The keys every member of the family has, then those of the band and of
 * the far fields. */
#define FMM_HEAD_KEYS                                                                                          \
    MODULE_KEY(FmmAttn, n_head, KEY_INT, "4", NULL, "n_head", 1, 4096, "attention heads"),                    \
        MODULE_KEY(FmmAttn, d_head, KEY_INT, "0", NULL, "d_head", 0, 4096, "width of one head; 0 = C / n_head"), \
        MODULE_KEY(FmmAttn, init_std, KEY_FLOAT, "0.02", NULL, "init_std", 1e-12, 1e6, "std of the initial weights")
#define FMM_BAND_KEYS                                                                                          \
    MODULE_KEY(FmmAttn, diag_size, KEY_INT, "5", NULL, "diag_size", 1, 1e9,                                   \
               "keys per query including itself (causal); |i-j| < diag_size when bidirectional"),             \
        MODULE_KEY(FmmAttn, dropatt, KEY_FLOAT, "0", NULL, "dropatt", 0, 0.999, "dropout on the band's weights")
#define FMM_FAR_KEYS                                                                                           \
    MODULE_KEY(FmmAttn, linear_chunk, KEY_INT, "64", NULL, "linear_chunk", 1, 1e9,                            \
               "chunk length of causal linear attention (speed only)")

/* Configures an FmmAttn for `mode` with the kernels of the comma list. */
int fmm_setup(Module *m, int mode, const char *kernels, Error *err);
void fmm_params(Module *m, ParamSet *ps);
void fmm_init(Module *m, uint64_t seed);
void fmm_layout(Module *m, Frame *f, size_t B, size_t T, Arena *a);
size_t fmm_scratch(Module *m, size_t B, size_t T);
void fmm_forward(Module *m, Frame *f, const float *x, float *y, const Ctx *c);
void fmm_backward(Module *m, Frame *f, const float *dy, float *dx, const Ctx *c);
size_t fmm_state_size(Module *m, size_t max_T);
void fmm_step(Module *m, Frame *f, float *state, size_t t, const float *x, float *y, const Ctx *c);
double fmm_flops(Module *m, size_t B, size_t T, bool causal);

#define FMM_MODULE_OPS(NAME, KEYS, CONFIGURE)                                                                  \
    {                                                                                                         \
        .name = NAME, .kind = "mixer", .size = sizeof(FmmAttn), .keys = KEYS, .configure = CONFIGURE,          \
        .params = fmm_params, .init = fmm_init, .frame_bytes = sizeof(FmmFrame), .layout = fmm_layout,         \
        .scratch = fmm_scratch, .forward = fmm_forward, .backward = fmm_backward,                              \
        .state_size = fmm_state_size, .step = fmm_step, .flops = fmm_flops,                                    \
    }

#endif
