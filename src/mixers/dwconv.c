/* dwconv.c — depthwise convolution along the sequence, the `dwconv` mixer:
 * every channel c is filtered by its own kernel of W taps,
 *   causal:         y_t[c] = b[c] + sum_{k<W} w[c][k] x_{t-(W-1)+k}[c]
 *   bidirectional:  y_t[c] = b[c] + sum_{k<W} w[c][k] x_{t-(W-1)/2+k}[c]
 * (a cross-correlation: the last tap meets the newest input) with x = 0
 * outside the sequence and at padding positions. It is
 * torch.nn.Conv1d(C, C, W, groups=C, padding=W-1) cut to the first T outputs
 * (causal; padding (W-1)/2 and W/2 otherwise), with PyTorch's default init
 * U(-1/sqrt(W), 1/sqrt(W)) for weight and bias; Hyena's short filter
 * (spec ssm-hyena.md §2.2) is this with W = 3 (its JAX port draws the taps
 * lecun-normal, `init: lecun_normal`). Generation keeps the last
 * W - 1 inputs: O(W) per token. */
#include <math.h>
#include <string.h>

#include "../core/rng.h"
#include "../nn/module.h"

typedef struct {
    Module base;
    int kernel_size;
    bool use_bias;
    char init[CFG_NAME];
    size_t W, C;
    float *w, *dw; /* (C, 1, W): Conv1d's layout */
    float *b, *db; /* (C) or NULL */
} DwConv;

static const ModuleKey dwconv_keys[] = {
    MODULE_KEY(DwConv, kernel_size, KEY_INT, "3", NULL, NULL, 1, 4096, "taps per channel (W)"),
    MODULE_KEY(DwConv, use_bias, KEY_BOOL, "true", NULL, NULL, 0, -1, "a bias per channel"),
    MODULE_KEY(DwConv, init, KEY_CHOICE, "uniform", "uniform|lecun_normal", NULL, 0, -1,
               "taps: PyTorch's U(+-1/sqrt(W)), bias too; or flax's lecun-normal (fan_in W), bias 0"),
    {0}};

/* Per use: backward needs only the input. */
typedef struct {
    const float *x; /* borrowed: input (B, T, C) */
} DwConvFrame;

static int dwconv_configure(Module *m, const ModuleSpec *spec, Error *err) {
    DwConv *d = (DwConv *)m;
    (void)spec;
    if (m->C_in != m->C_out) return err_set(err, "%s: a depthwise convolution keeps the width", m->path);
    d->W = (size_t)d->kernel_size;
    d->C = m->C_in;
    return 0;
}

static void dwconv_params(Module *m, ParamSet *ps) {
    DwConv *d = (DwConv *)m;
    params_add(ps, "conv.weight", &d->w, &d->dw, GROUP_LINEAR, 3, d->C, (size_t)1, d->W);
    if (d->use_bias) params_add(ps, "conv.bias", &d->b, &d->db, GROUP_BIAS, 1, d->C);
}

static void dwconv_init(Module *m, uint64_t seed) {
    DwConv *d = (DwConv *)m;
    const float bound = 1.0f / sqrtf((float)d->W); /* fan_in = W: one input channel per group */
    if (!strcmp(d->init, "lecun_normal")) {
        module_init_lecun(m, d->w, d->C * d->W, (double)d->W, seed, 0);
        if (d->b) memset(d->b, 0, d->C * sizeof *d->b);
        return;
    }
    module_init_uniform(m, d->w, d->C * d->W, bound, seed, 0);
    if (d->b) module_init_uniform(m, d->b, d->C, bound, seed, 1);
}

/* Scratch: the taps by offset (W, C) (row j: the tap that meets input t - j
 * when causal), so the loops run along channels;
 * backward also the weight gradient's partial sums (W, C). */
static size_t dwconv_scratch(Module *m, size_t B, size_t T) {
    (void)B, (void)T;
    return 2 * ((DwConv *)m)->W * ((DwConv *)m)->C;
}

static void taps_by_offset(const DwConv *d, float *wt) {
    for (size_t c = 0; c < d->C; c++)
        for (size_t k = 0; k < d->W; k++) wt[k * d->C + c] = d->w[c * d->W + d->W - 1 - k];
}

/* Offset row k of output t reads input t + shift - k (shift 0 causal, W/2 centred: the
 * weight w[W-1-k] reads t - (W-1)/2 + (W-1-k)). */
static size_t shift_of(const DwConv *d, bool causal) { return causal ? 0 : d->W / 2; }

/* Input row s of sequence b, or NULL outside the sequence or at padding. */
static const float *row_at(const float *x, const Ctx *c, size_t b, ptrdiff_t s, size_t C) {
    if (s < 0 || (size_t)s >= c->T) return NULL;
    if (c->mask && c->mask[b * c->T + (size_t)s] == 0.0f) return NULL;
    return x + (b * c->T + (size_t)s) * C;
}

static void dwconv_forward(Module *m, Frame *f, const float *x, float *y, const Ctx *c) {
    DwConv *d = (DwConv *)m;
    const size_t C = d->C, W = d->W, shift = shift_of(d, c->causal);
    float *wt = c->scratch;
    ((DwConvFrame *)f->data)->x = x;
    taps_by_offset(d, wt);
#pragma omp parallel for collapse(2) schedule(static)
    for (size_t b = 0; b < c->B; b++)
        for (size_t t = 0; t < c->T; t++) {
            float *yr = y + (b * c->T + t) * C;
            for (size_t ch = 0; ch < C; ch++) yr[ch] = d->b ? d->b[ch] : 0.0f;
            for (size_t k = 0; k < W; k++) {
                const float *xr = row_at(x, c, b, (ptrdiff_t)(t + shift) - (ptrdiff_t)k, C);
                if (!xr) continue;
#pragma omp simd
                for (size_t ch = 0; ch < C; ch++) yr[ch] += wt[k * C + ch] * xr[ch];
            }
        }
}

/* With the offset rows r_k = w[W-1-k]: dx[s] = sum_k r_k dy[s - shift + k]
 * (0 at padding), a pass over rows like forward; dr_k[c] = sum_t dy_t[c]
 * x_{t+shift-k}[c] and db = sum dy,
 * threads owning blocks of channels that they sum over the rows in order
 * (the same bits on any number of threads), accumulating in the scratch
 * after the transposed taps so the channel loops stay contiguous. */
enum { GRAD_BLOCK = 64 };

static void dwconv_backward(Module *m, Frame *f, const float *dy, float *dx, const Ctx *c) {
    DwConv *d = (DwConv *)m;
    const float *x = ((DwConvFrame *)f->data)->x;
    const size_t C = d->C, W = d->W, shift = shift_of(d, c->causal), T = c->T;
    float *wt = c->scratch, *acc = wt + W * C; /* acc: (W, C) in blocks of GRAD_BLOCK channels */
    taps_by_offset(d, wt);
#pragma omp parallel for collapse(2) schedule(static)
    for (size_t b = 0; b < c->B; b++)
        for (size_t s = 0; s < T; s++) {
            float *dxr = dx + (b * T + s) * C;
            memset(dxr, 0, C * sizeof *dxr);
            if (c->mask && c->mask[b * T + s] == 0.0f) continue; /* a padding input reached nothing */
            for (size_t k = 0; k < W; k++) {
                const ptrdiff_t t = (ptrdiff_t)s - (ptrdiff_t)shift + (ptrdiff_t)k;
                if (t < 0 || (size_t)t >= T) continue;
                const float *dyr = dy + (b * T + (size_t)t) * C;
#pragma omp simd
                for (size_t ch = 0; ch < C; ch++) dxr[ch] += wt[k * C + ch] * dyr[ch];
            }
        }
#pragma omp parallel for schedule(static)
    for (size_t c0 = 0; c0 < C; c0 += GRAD_BLOCK) {
        const size_t n = c0 + GRAD_BLOCK < C ? GRAD_BLOCK : C - c0;
        float *a = acc + c0 * W; /* (W, n) */
        memset(a, 0, W * n * sizeof *a);
        for (size_t b = 0; b < c->B; b++)
            for (size_t t = 0; t < T; t++) {
                const float *dyr = dy + (b * T + t) * C + c0;
                for (size_t k = 0; k < W; k++) {
                    const float *xr = row_at(x, c, b, (ptrdiff_t)(t + shift) - (ptrdiff_t)k, C);
                    if (!xr) continue;
                    xr += c0;
#pragma omp simd
                    for (size_t j = 0; j < n; j++) a[k * n + j] += dyr[j] * xr[j];
                }
            }
        for (size_t k = 0; k < W; k++)
            for (size_t j = 0; j < n; j++) d->dw[(c0 + j) * W + W - 1 - k] += a[k * n + j];
    }
    if (d->db) column_sums(d->db, dy, NULL, c->B * T, C);
}

/* Generation: the last W - 1 inputs, oldest first. */
static size_t dwconv_state_size(Module *m, size_t max_T) {
    (void)max_T;
    const DwConv *d = (const DwConv *)m;
    return (d->W - 1) * d->C;
}

static void dwconv_step(Module *m, Frame *f, float *state, size_t t, const float *x, float *y, const Ctx *c) {
    DwConv *d = (DwConv *)m;
    const size_t C = d->C, W = d->W;
    (void)f, (void)c;
    for (size_t ch = 0; ch < C; ch++) {
        float acc = (d->b ? d->b[ch] : 0.0f) + d->w[ch * W + W - 1] * x[ch];
        for (size_t k = 1; k < W && k <= t; k++) acc += d->w[ch * W + W - 1 - k] * state[(W - 1 - k) * C + ch];
        y[ch] = acc;
    }
    if (W > 1) { /* shift the window by one input */
        memmove(state, state + C, (W - 2) * C * sizeof(float));
        memcpy(state + (W - 2) * C, x, C * sizeof(float));
    }
}

/* One multiply-add per tap, channel and token. */
static double dwconv_flops(Module *m, size_t B, size_t T, bool causal) {
    (void)causal;
    const DwConv *d = (const DwConv *)m;
    return 2.0 * (double)B * (double)T * (double)d->C * (double)d->W;
}

const ModuleOps dwconv_module = {
    .name = "dwconv",
    .kind = "mixer",
    .size = sizeof(DwConv),
    .keys = dwconv_keys,
    .configure = dwconv_configure,
    .params = dwconv_params,
    .init = dwconv_init,
    .frame_bytes = sizeof(DwConvFrame),
    .scratch = dwconv_scratch,
    .forward = dwconv_forward,
    .backward = dwconv_backward,
    .state_size = dwconv_state_size,
    .step = dwconv_step,
    .flops = dwconv_flops,
};
