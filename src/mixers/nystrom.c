/* nystrom.c — Nyström attention (Xiong et al. 2021), the `nystrom` mixer.
 * Spec: shared/spec/attention.md §0.2 and §5. The layer of
 * mlpen/Nystromformer code/model.py (`Attention`) around
 * code/attention_nystrom.py: W_q, W_k, W_v (C -> H*d, with biases), the
 * Nyström core of ops/nystrom_attention.c, the optional depthwise convolution skip on
 * V (`conv_kernel_size`; Conv2d over time, one filter per head shared by its
 * d features, no bias), and ff (H*d -> C, with bias). Parameter names are
 * the original's below `mha.` (`W_q.weight`, ..., `conv.weight`), so a
 * checkpoint maps one to one.
 *
 * Bidirectional only: the landmarks are means over segments that reach into
 * the future, and no reordering makes them causal without changing the
 * method (spec §5), so a causal model is refused. Lengths that are not a
 * multiple of the landmarks are padded up to one with masked rows, which
 * count in the segment means as the original's padding does (`uneven: pad`),
 * or refused (`uneven: error`). */
#include <math.h>
#include <string.h>

#include "../nn/module.h"
#include "../ops/ops.h"

typedef struct {
    Module base;
    int n_head, d_head, num_landmarks, conv_kernel_size, pinv_iterations;
    char pinv_init[CFG_NAME], uneven[CFG_NAME], init[CFG_NAME];
    double init_std;
    size_t H, d, HD, M, K;
    float *wq, *dwq, *bq, *dbq; /* W_q: (HD, C), (HD) */
    float *wk, *dwk, *bk, *dbk; /* W_k */
    float *wv, *dwv, *bv, *dbv; /* W_v */
    float *wo, *dwo, *bo, *dbo; /* ff: (C, HD), (C) */
    float *conv, *dconv;        /* (H, 1, K, 1): tap u of head h at [h K + u] */
} Nystrom;

static const ModuleKey nystrom_keys[] = {
    MODULE_KEY(Nystrom, n_head, KEY_INT, "4", NULL, "n_head", 1, 4096, "attention heads"),
    MODULE_KEY(Nystrom, d_head, KEY_INT, "0", NULL, "d_head", 0, 4096, "width of one head; 0 = C / n_head"),
    MODULE_KEY(Nystrom, num_landmarks, KEY_INT, "64", NULL, NULL, 1, 1 << 20,
               "landmarks M: segment means of Q and K; sequences of at most M tokens take the exact softmax"),
    MODULE_KEY(Nystrom, conv_kernel_size, KEY_INT, "0", NULL, NULL, 0, 4095,
               "taps of the depthwise convolution skip on V (odd; 0 = none; the seed's 512 model: 33)"),
    MODULE_KEY(Nystrom, pinv_iterations, KEY_INT, "6", NULL, NULL, 0, 100, "iterations of the pseudo-inverse"),
    MODULE_KEY(Nystrom, pinv_init, KEY_CHOICE, "global", "global|per_matrix", NULL, 0, -1,
               "Z0 = A^T / c with c the largest column sum over the whole batch and all heads (the original), "
               "or of each matrix"),
    MODULE_KEY(Nystrom, uneven, KEY_CHOICE, "pad", "pad|error", NULL, 0, -1,
               "a length that is not a multiple of num_landmarks: pad it with masked rows, or refuse the model"),
    MODULE_KEY(Nystrom, init_std, KEY_FLOAT, "0.02", NULL, "init_std", 1e-12, 1e6, "std of the initial weights"),
    MODULE_KEY(Nystrom, init, KEY_CHOICE, "seqlab", INIT_SCHEMES, "init", 0, -1,
               "scheme of the projections (pytorch: the original's); the convolution is always PyTorch's"),
    {0}};

/* Per use: what backward needs. */
typedef struct {
    const float *x;  /* borrowed: forward input (B, T, C), intact until backward */
    float *q, *k, *v; /* (B, T, HD): the projections, biases added */
    float *a;        /* (B, T, HD): attention output plus the convolution skip */
    float *saved;    /* nystrom_saved floats */
} NystromFrame;

/* The model's sequence length: max_len when set, else the LM window. */
static int model_length(const Config *cfg) { return cfg->max_len ? cfg->max_len : cfg->tgt_len; }

static int nystrom_configure(Module *m, const ModuleSpec *spec, Error *err) {
    Nystrom *n = (Nystrom *)m;
    if (spec->cfg->causal)
        return err_set(err, "%s: nystrom attention is bidirectional only (its landmarks average over future "
                            "positions); set causal: false", m->path);
    if (n->d_head == 0 && m->C_in % (size_t)n->n_head)
        return err_set(err, "%s: width %zu is not divisible by n_head %d; set d_head", m->path, m->C_in, n->n_head);
    if (n->conv_kernel_size && n->conv_kernel_size % 2 == 0)
        return err_set(err, "%s: conv_kernel_size %d must be odd (the original's 'same' padding of k // 2)",
                       m->path, n->conv_kernel_size);
    const int T = model_length(spec->cfg);
    if (!strcmp(n->uneven, "error") && T % n->num_landmarks)
        return err_set(err, "%s: the sequence length %d is not a multiple of num_landmarks %d (uneven: error)",
                       m->path, T, n->num_landmarks);
    n->H = (size_t)n->n_head;
    n->d = n->d_head ? (size_t)n->d_head : m->C_in / n->H;
    n->HD = n->H * n->d;
    n->M = (size_t)n->num_landmarks;
    n->K = (size_t)n->conv_kernel_size;
    return 0;
}

static void nystrom_params(Module *m, ParamSet *ps) {
    Nystrom *n = (Nystrom *)m;
    const size_t C = m->C_in, HD = n->HD;
    params_add(ps, "W_q.weight", &n->wq, &n->dwq, GROUP_LINEAR, 2, HD, C);
    params_add(ps, "W_q.bias", &n->bq, &n->dbq, GROUP_BIAS, 1, HD);
    params_add(ps, "W_k.weight", &n->wk, &n->dwk, GROUP_LINEAR, 2, HD, C);
    params_add(ps, "W_k.bias", &n->bk, &n->dbk, GROUP_BIAS, 1, HD);
    params_add(ps, "W_v.weight", &n->wv, &n->dwv, GROUP_LINEAR, 2, HD, C);
    params_add(ps, "W_v.bias", &n->bv, &n->dbv, GROUP_BIAS, 1, HD);
    if (n->K) params_add(ps, "conv.weight", &n->conv, &n->dconv, GROUP_LINEAR, 4, n->H, (size_t)1, n->K, (size_t)1);
    params_add(ps, "ff.weight", &n->wo, &n->dwo, GROUP_LINEAR, 2, m->C_out, HD);
    params_add(ps, "ff.bias", &n->bo, &n->dbo, GROUP_BIAS, 1, m->C_out);
}

static void nystrom_init(Module *m, uint64_t seed) {
    Nystrom *n = (Nystrom *)m;
    const size_t C = m->C_in, HD = n->HD;
    float *w[] = {n->wq, n->wk, n->wv}, *b[] = {n->bq, n->bk, n->bv};
    for (int i = 0; i < 3; i++) {
        module_init_dense(m, w[i], HD, C, n->init, n->init_std, false, 0, seed, 2 * i);
        module_init_bias(m, b[i], HD, C, n->init, seed, 2 * i + 1);
    }
    module_init_dense(m, n->wo, m->C_out, HD, n->init, n->init_std, false, 0, seed, 6);
    module_init_bias(m, n->bo, m->C_out, HD, n->init, seed, 7);
    /* Conv2d(H, H, (K, 1), groups H): fan_in = K */
    if (n->K) module_init_uniform(m, n->conv, n->H * n->K, 1.0f / sqrtf((float)n->K), seed, 8);
}

static NystromShape shape_of(const Nystrom *n, const Ctx *c) {
    return (NystromShape){.B = c->B, .T = c->T, .H = n->H, .d = n->d, .M = n->M, .iterations = n->pinv_iterations,
                          .per_matrix = !strcmp(n->pinv_init, "per_matrix"), .mask = c->mask};
}

static void nystrom_layout(Module *m, Frame *f, size_t B, size_t T, Arena *a) {
    Nystrom *n = (Nystrom *)m;
    NystromFrame *nf = f->data;
    const Ctx c = {.B = B, .T = T};
    const NystromShape sh = shape_of(n, &c);
    nf->q = arena_take(a, B * T * n->HD);
    nf->k = arena_take(a, B * T * n->HD);
    nf->v = arena_take(a, B * T * n->HD);
    nf->a = arena_take(a, B * T * n->HD);
    nf->saved = arena_take(a, nystrom_attention_saved(&sh));
}

static size_t nystrom_scratch_floats(Module *m, size_t B, size_t T) {
    Nystrom *n = (Nystrom *)m;
    const Ctx c = {.B = B, .T = T};
    const NystromShape sh = shape_of(n, &c);
    return 4 * B * T * n->HD + nystrom_attention_scratch(&sh); /* backward: da, dq, dk, dv, then the core's */
}

/* ---- the convolution skip: a[b, t, h d + e] += sum_u w_h[u] (V ⊙ mask)[b, t + u - K/2, h d + e] ---- */

static float mask_at(const Ctx *c, size_t b, size_t t) { return c->mask ? c->mask[b * c->T + t] : 1.0f; }

static void conv_skip_forward(const Nystrom *n, float *a, const float *v, const Ctx *c) {
    const size_t T = c->T, HD = n->HD, half = n->K / 2;
#pragma omp parallel for collapse(2) schedule(static)
    for (size_t b = 0; b < c->B; b++)
        for (size_t t = 0; t < T; t++)
            for (size_t u = 0; u < n->K; u++) {
                const ptrdiff_t s = (ptrdiff_t)(t + u) - (ptrdiff_t)half;
                if (s < 0 || (size_t)s >= T) continue;
                const float m = mask_at(c, b, (size_t)s), *vs = v + (b * T + (size_t)s) * HD;
                float *at = a + (b * T + t) * HD;
                for (size_t h = 0; h < n->H; h++) {
                    const float w = n->conv[h * n->K + u] * m;
                    for (size_t e = 0; e < n->d; e++) at[h * n->d + e] += w * vs[h * n->d + e];
                }
            }
}

/* dv[s] += mask[s] sum_u w[u] da[s - u + K/2]; dw_h[u] += sum da[t] ⊙ (V ⊙ mask)[t + u - K/2]. */
static void conv_skip_backward(const Nystrom *n, float *dv, const float *da, const float *v, const Ctx *c) {
    const size_t T = c->T, HD = n->HD, half = n->K / 2;
#pragma omp parallel for collapse(2) schedule(static)
    for (size_t b = 0; b < c->B; b++)
        for (size_t s = 0; s < T; s++) {
            const float m = mask_at(c, b, s);
            if (m == 0.0f) continue;
            float *dvs = dv + (b * T + s) * HD;
            for (size_t u = 0; u < n->K; u++) {
                const ptrdiff_t t = (ptrdiff_t)(s + half) - (ptrdiff_t)u;
                if (t < 0 || (size_t)t >= T) continue;
                const float *dat = da + (b * T + (size_t)t) * HD;
                for (size_t h = 0; h < n->H; h++) {
                    const float w = n->conv[h * n->K + u] * m;
                    for (size_t e = 0; e < n->d; e++) dvs[h * n->d + e] += w * dat[h * n->d + e];
                }
            }
        }
#pragma omp parallel for collapse(2) schedule(static)
    for (size_t h = 0; h < n->H; h++)
        for (size_t u = 0; u < n->K; u++) {
            double sum = 0.0;
            for (size_t b = 0; b < c->B; b++)
                for (size_t t = 0; t < T; t++) {
                    const ptrdiff_t s = (ptrdiff_t)(t + u) - (ptrdiff_t)half;
                    if (s < 0 || (size_t)s >= T) continue;
                    const float m = mask_at(c, b, (size_t)s);
                    const float *dat = da + (b * T + t) * HD + h * n->d, *vs = v + (b * T + (size_t)s) * HD + h * n->d;
                    float part = 0.0f;
                    for (size_t e = 0; e < n->d; e++) part += dat[e] * vs[e];
                    sum += (double)(part * m);
                }
            n->dconv[h * n->K + u] += (float)sum;
        }
}

/* ---- the layer ---- */

static void nystrom_forward(Module *m, Frame *f, const float *x, float *y, const Ctx *c) {
    Nystrom *n = (Nystrom *)m;
    NystromFrame *nf = f->data;
    const size_t N = c->B * c->T, C = m->C_in, HD = n->HD;
    const NystromShape sh = shape_of(n, c);
    nf->x = x;
    linear_forward(nf->q, x, n->wq, n->bq, N, C, HD);
    linear_forward(nf->k, x, n->wk, n->bk, N, C, HD);
    linear_forward(nf->v, x, n->wv, n->bv, N, C, HD);
    nystrom_attention_forward(nf->a, nf->saved, nf->q, nf->k, nf->v, &sh, c->scratch);
    if (n->K) conv_skip_forward(n, nf->a, nf->v, c);
    linear_forward(y, nf->a, n->wo, n->bo, N, HD, m->C_out);
}

static void nystrom_backward(Module *m, Frame *f, const float *dy, float *dx, const Ctx *c) {
    Nystrom *n = (Nystrom *)m;
    NystromFrame *nf = f->data;
    const size_t N = c->B * c->T, C = m->C_in, HD = n->HD;
    const NystromShape sh = shape_of(n, c);
    float *da = c->scratch, *dq = da + N * HD, *dk = dq + N * HD, *dv = dk + N * HD, *core = dv + N * HD;
    linear_backward(da, n->dwo, n->dbo, dy, nf->a, n->wo, N, HD, m->C_out, false);
    nystrom_attention_backward(dq, dk, dv, da, nf->q, nf->k, nf->v, nf->saved, &sh, core);
    if (n->K) conv_skip_backward(n, dv, da, nf->v, c);
    linear_backward(dx, n->dwq, n->dbq, dq, nf->x, n->wq, N, C, HD, false);
    linear_backward(dx, n->dwk, n->dbk, dk, nf->x, n->wk, N, C, HD, true);
    linear_backward(dx, n->dwv, n->dbv, dv, nf->x, n->wv, N, C, HD, true);
}

/* Per head: Q K~^T, Q~ K^T, (F Z) and (Bm V) and their product: 4 T M d + 2 T M^2,
 * A: 2 M^2 d, the pseudo-inverse 8 M^3 per iteration (T <= M: the exact softmax). */
static double nystrom_flops(Module *m, size_t B, size_t T, bool causal) {
    Nystrom *n = (Nystrom *)m;
    const double t = (double)T, M = (double)n->M, d = (double)n->d, heads = (double)B * (double)n->H;
    (void)causal;
    if (T <= n->M) return heads * 4.0 * t * t * d;
    return heads * (2.0 * t * M * d * 4.0 + 2.0 * t * M * M + 2.0 * M * M * d + 8.0 * M * M * M * n->pinv_iterations +
                    2.0 * t * d * (double)n->K);
}

const ModuleOps nystrom_module = {
    .name = "nystrom",
    .kind = "mixer",
    .size = sizeof(Nystrom),
    .keys = nystrom_keys,
    .configure = nystrom_configure,
    .params = nystrom_params,
    .init = nystrom_init,
    .frame_bytes = sizeof(NystromFrame),
    .layout = nystrom_layout,
    .scratch = nystrom_scratch_floats,
    .forward = nystrom_forward,
    .backward = nystrom_backward,
    .flops = nystrom_flops,
};
