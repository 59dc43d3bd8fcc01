/* fmm.c — FMMformer attention (Nguyen et al. 2021), the `fmm` mixer (seed
 * alias attn_type 201): a banded softmax near field N plus one or two
 * linear-attention far fields L (feature maps elu, elu_flip), all from one
 * interleaved qkv projection, blended by the mode that floor(sparse_ratio)
 * selects (shared/spec/attention.md §4.2):
 *   0: w*N + L   1: N + w*L   2: w*N + L (the seeds)   3: w*N + w2*L
 *   4: N (band only)   5: L (far field only)
 * with L = a1 L1 + a2 L2 for two kernels (a learned in modes 0, 1, 3, fixed
 * 0.5 otherwise). The blend vectors are per channel (head, feature) and
 * start at 0, so the seed models begin as pure linear attention.
 * Original: minhtannguyen/fmmformer-code-submission@92bc369,
 * lmtool-fwms/src/mem_transformer.py, MultiHeadAttnSparseLowrank. */
#include "fmm.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static bool has_near(const FmmAttn *f) { return f->mode <= 4; }
static bool has_far(const FmmAttn *f) { return f->mode != 4; }

int fmm_setup(Module *m, int mode, const char *kernels, Error *err) {
    FmmAttn *f = (FmmAttn *)m;
    if (f->d_head == 0 && m->C_in % (size_t)f->n_head)
        return err_set(err, "%s: width %zu is not divisible by n_head %d; set d_head", m->path, m->C_in, f->n_head);
    f->H = (size_t)f->n_head;
    f->d = f->d_head ? (size_t)f->d_head : m->C_in / f->H;
    f->HD = f->H * f->d;
    f->mode = mode;
    f->window = (size_t)f->diag_size;
    f->chunk = (size_t)f->linear_chunk;
    char list[CFG_NAME];
    snprintf(list, sizeof list, "%s", kernels);
    f->n_kernels = 0;
    for (char *save = NULL, *k = strtok_r(list, ",", &save); k; k = strtok_r(NULL, ",", &save)) {
        if (f->n_kernels == FMM_MAX_KERNELS) return err_set(err, "key 'kernels': at most %d kernels", FMM_MAX_KERNELS);
        if (feature_map_parse(k, &f->maps[f->n_kernels++]))
            return err_set(err, "key 'kernels': unknown kernel '%s' (elu, elu_flip)", k);
    }
    if (has_far(f) && f->n_kernels == 0) return err_set(err, "key 'kernels' is empty; give elu and/or elu_flip");
    if (has_far(f) && f->d > 256) return err_set(err, "key 'd_head' %zu: linear attention supports d_head <= 256", f->d);
    return 0;
}

void fmm_params(Module *m, ParamSet *ps) {
    FmmAttn *f = (FmmAttn *)m;
    params_add(ps, "qkv_net.weight", &f->w_qkv, &f->dw_qkv, GROUP_LINEAR, 2, 3 * f->HD, m->C_in);
    params_add(ps, "o_net.weight", &f->w_o, &f->dw_o, GROUP_LINEAR, 2, m->C_out, f->HD);
    if (f->mode == 0 || f->mode == 2 || f->mode == 3)
        params_add(ps, "w_near", &f->w_near, &f->dw_near, GROUP_OTHER, 1, f->HD);
    if (f->mode == 1 || f->mode == 3) params_add(ps, "w_far", &f->w_far, &f->dw_far, GROUP_OTHER, 1, f->HD);
    if (f->n_kernels == 2 && (f->mode == 0 || f->mode == 1 || f->mode == 3))
        params_add(ps, "kernel_mix", &f->mix, &f->dmix, GROUP_OTHER, 1, (size_t)2);
}

void fmm_init(Module *m, uint64_t seed) {
    FmmAttn *f = (FmmAttn *)m;
    float std = (float)f->init_std;
    module_init_normal(m, f->w_qkv, 3 * f->HD * m->C_in, std, seed, 0);
    module_init_normal(m, f->w_o, m->C_out * f->HD, std, seed, 1);
    if (f->w_near) memset(f->w_near, 0, f->HD * sizeof(float)); /* blend gates start closed (spec 4.2) */
    if (f->w_far) memset(f->w_far, 0, f->HD * sizeof(float));
    if (f->mix) f->mix[0] = f->mix[1] = 0.5f;
}

void fmm_layout(Module *m, Frame *fr, size_t B, size_t T, Arena *a) {
    FmmAttn *f = (FmmAttn *)m;
    FmmFrame *ff = fr->data;
    const size_t N = B * T;
    ff->qkv = arena_take(a, N * 3 * f->HD);
    ff->near = ff->lse = NULL;
    if (has_near(f)) {
        ff->near = arena_take(a, N * f->HD);
        ff->lse = arena_take(a, B * f->H * T);
    }
    for (int k = 0; k < FMM_MAX_KERNELS; k++) ff->far[k] = ff->far_saved[k] = NULL;
    for (int k = 0; has_far(f) && k < f->n_kernels; k++) {
        LinearAttnShape ls = {.io = {.B = B, .T = T, .H = f->H, .d = f->d}, .chunk = f->chunk};
        ff->far[k] = arena_take(a, N * f->HD);
        ff->far_saved[k] = arena_take(a, linear_attention_saved(&ls));
    }
}

/* Layout of the heads: q, k, v interleaved per head in qkv, outputs concatenated. */
static AttentionShape heads(const FmmAttn *f, size_t B, size_t T) {
    AttentionShape s = {.B = B, .T = T, .H = f->H, .d = f->d, .ldq = 3 * f->HD, .ldk = 3 * f->HD,
                        .ldv = 3 * f->HD, .ldo = f->HD, .hq = 3 * f->d, .hk = 3 * f->d, .hv = 3 * f->d,
                        .ho = f->d, .scale = 1.0f / sqrtf((float)f->d)};
    return s;
}

static AttentionShape near_shape(const FmmAttn *f, size_t B, size_t T, bool causal, const Ctx *c) {
    AttentionShape s = heads(f, B, T);
    s.causal = causal;
    s.window = f->window;
    if (c && c->training && f->dropatt > 0.0) {
        s.dropatt = (float)f->dropatt;
        s.seed = c->seed;
        s.stream = ctx_stream(c, 0);
        s.row0 = c->row0;
    }
    if (c) s.key_mask = c->mask;
    return s;
}

/* The far field's shape; key_mask: the padding (NULL: none). */
static LinearAttnShape far_shape(const FmmAttn *f, size_t B, size_t T, bool causal, int k, const float *key_mask) {
    LinearAttnShape s = {.io = heads(f, B, T), .phi = f->maps[k], .chunk = f->chunk, .eps = 1e-5f};
    s.io.causal = causal;
    s.io.key_mask = key_mask;
    return s;
}

size_t fmm_scratch(Module *m, size_t B, size_t T) {
    FmmAttn *f = (FmmAttn *)m;
    AttentionShape ns = near_shape(f, B, T, true, NULL);
    size_t core = has_near(f) ? attention_scratch(&ns) : 0, lin = 0;
    if (has_far(f)) {
        LinearAttnShape ls = far_shape(f, B, T, true, 0, NULL);
        lin = linear_attention_scratch(&ls);
    }
    /* backward: dL (N, HD, da in place), dN (N, HD), dqkv (N, 3HD), then a core's scratch */
    return 5 * B * T * f->HD + (core > lin ? core : lin) + 16;
}

/* Weight of kernel k in L. */
static float kernel_weight(const FmmAttn *f, int k) {
    if (f->n_kernels == 1) return 1.0f;
    return f->mix ? f->mix[k] : 0.5f;
}

/* The blend of channel c is a = near_gate N + far_gate L (spec 4.2). */
static float near_gate(const FmmAttn *f, size_t c) {
    return f->mode == 4 || f->mode == 1 ? 1.0f : f->w_near ? f->w_near[c] : 0.0f;
}
static float far_gate(const FmmAttn *f, size_t c) { return f->w_far ? f->w_far[c] : 1.0f; }

/* L of element i of the far fields far[k] (each with the same layout). */
static float far_field(const FmmAttn *f, float *const *far, size_t i) {
    float L = 0.0f;
    for (int k = 0; has_far(f) && k < f->n_kernels; k++) L += kernel_weight(f, k) * far[k][i];
    return L;
}

/* a (n rows of HD) from the near field and the far fields. */
static void blend(const FmmAttn *f, float *a, const float *near, float *const *far, size_t n) {
    const size_t HD = f->HD;
#pragma omp parallel for schedule(static) if (n > 16)
    for (size_t r = 0; r < n; r++)
        for (size_t c = 0; c < HD; c++) {
            size_t i = r * HD + c;
            a[i] = near_gate(f, c) * (has_near(f) ? near[i] : 0.0f) + far_gate(f, c) * far_field(f, far, i);
        }
}

void fmm_forward(Module *m, Frame *fr, const float *x, float *y, const Ctx *c) {
    FmmAttn *f = (FmmAttn *)m;
    FmmFrame *ff = fr->data;
    const size_t N = c->B * c->T, HD = f->HD;
    ff->x = x;
    linear_forward(ff->qkv, x, f->w_qkv, NULL, N, m->C_in, 3 * HD);
    const float *q = ff->qkv, *k = ff->qkv + f->d, *v = ff->qkv + 2 * f->d;
    if (has_near(f)) {
        AttentionShape ns = near_shape(f, c->B, c->T, c->causal, c);
        attention_forward(ff->near, ff->lse, q, k, v, &ns, c->scratch);
    }
    for (int kk = 0; has_far(f) && kk < f->n_kernels; kk++) {
        LinearAttnShape ls = far_shape(f, c->B, c->T, c->causal, kk, c->mask);
        linear_attention_forward(ff->far[kk], ff->far_saved[kk], q, k, v, &ls, c->scratch);
    }
    float *a = c->scratch; /* not kept: backward blends again */
    blend(f, a, ff->near, ff->far, N);
    linear_forward(y, a, f->w_o, NULL, N, HD, m->C_out);
}

/* Gradients of the blend: dN and dL from da (dL may be da itself), and the
 * blend parameters. */
static void blend_backward(FmmAttn *f, const FmmFrame *ff, const float *da, float *dN, float *dL, size_t N) {
    const size_t HD = f->HD;
#pragma omp parallel for schedule(static)
    for (size_t c = 0; c < HD; c++) { /* channels own their parameter gradient: no races */
        float gwn = 0.0f, gwf = 0.0f;
        const float gn = near_gate(f, c), gl = far_gate(f, c);
        for (size_t n = 0; n < N; n++) {
            size_t i = n * HD + c;
            float L = far_field(f, ff->far, i), g = da[i];
            if (has_near(f)) {
                dN[i] = gn * g;
                gwn += ff->near[i] * g;
            }
            gwf += L * g;
            dL[i] = gl * g;
        }
        if (f->dw_near) f->dw_near[c] += gwn;
        if (f->dw_far) f->dw_far[c] += gwf;
    }
    if (f->mix)
        for (int k = 0; k < 2; k++) {
            double g = 0.0;
            for (size_t i = 0; i < N * HD; i++) g += (double)ff->far[k][i] * dL[i];
            f->dmix[k] += (float)g;
        }
}

void fmm_backward(Module *m, Frame *fr, const float *dy, float *dx, const Ctx *c) {
    FmmAttn *f = (FmmAttn *)m;
    FmmFrame *ff = fr->data;
    const size_t N = c->B * c->T, HD = f->HD;
    float *da = c->scratch, *dL = da, *dN = da + N * HD, *dqkv = dN + N * HD, *core = dqkv + 3 * N * HD;
    const float *q = ff->qkv, *k = ff->qkv + f->d, *v = ff->qkv + 2 * f->d;
    blend(f, dN, ff->near, ff->far, N); /* a again, in dN's place until blend_backward writes dN */
    linear_backward(da, f->dw_o, NULL, dy, dN, f->w_o, N, HD, m->C_out, false);
    blend_backward(f, ff, da, dN, dL, N);
    bool first = true; /* the first core writes dqkv, later ones add to it */
    if (has_near(f)) {
        AttentionShape ns = near_shape(f, c->B, c->T, c->causal, c);
        attention_backward(dqkv, dqkv + f->d, dqkv + 2 * f->d, dN, q, k, v, ff->near, ff->lse, &ns, core);
        first = false;
    }
    for (int kk = 0; has_far(f) && kk < f->n_kernels; kk++) {
        LinearAttnShape ls = far_shape(f, c->B, c->T, c->causal, kk, c->mask);
        linear_attention_backward(dqkv, dqkv + f->d, dqkv + 2 * f->d, dL, kernel_weight(f, kk), !first, q, k, v,
                                  ff->far[kk], ff->far_saved[kk], &ls, core);
        first = false;
    }
    linear_backward(dx, f->dw_qkv, NULL, dqkv, ff->x, f->w_qkv, N, m->C_in, 3 * HD, false);
}

/* Generation state: a ring of the last diag_size qkv rows (near field),
 * then each kernel's (S, z) per head. */
size_t fmm_state_size(Module *m, size_t max_T) {
    FmmAttn *f = (FmmAttn *)m;
    (void)max_T;
    LinearAttnShape ls = far_shape(f, 1, 1, true, 0, NULL);
    size_t near = has_near(f) ? f->window * 3 * f->HD : 0;
    return near + (has_far(f) ? (size_t)f->n_kernels * linear_attention_state(&ls) : 0);
}

void fmm_step(Module *m, Frame *fr, float *state, size_t t, const float *x, float *y, const Ctx *c) {
    FmmAttn *f = (FmmAttn *)m;
    const size_t HD = f->HD, W = f->window;
    float *qkv = c->scratch, *near = qkv + 3 * HD, *far = near + HD, *probs = far + FMM_MAX_KERNELS * HD;
    (void)fr;
    linear_forward(qkv, x, f->w_qkv, NULL, 1, m->C_in, 3 * HD);
    float *ring = state, *lin = state + (has_near(f) ? W * 3 * HD : 0);
    if (has_near(f)) { /* softmax over a set of keys: their order in the ring does not matter */
        memcpy(ring + (t % W) * 3 * HD, qkv, 3 * HD * sizeof(float));
        AttentionShape s = heads(f, 1, 1);
        attention_step(near, qkv, ring + f->d, ring + 2 * f->d, t + 1 < W ? t + 1 : W, &s, probs);
    }
    for (int k = 0; has_far(f) && k < f->n_kernels; k++) {
        LinearAttnShape ls = far_shape(f, 1, 1, true, k, NULL);
        linear_attention_step(far + k * HD, lin + k * linear_attention_state(&ls), qkv, qkv + f->d, qkv + 2 * f->d,
                              &ls);
    }
    float *a = qkv, *fars[FMM_MAX_KERNELS]; /* the projection is no longer needed: reuse it for the blend */
    for (int k = 0; k < FMM_MAX_KERNELS; k++) fars[k] = far + k * HD;
    blend(f, a, near, fars, 1);
    linear_forward(y, a, f->w_o, NULL, 1, HD, m->C_out);
}

/* Per token and head: the band's QK^T and PV over its keys (diag_size when
 * causal, 2 diag_size - 1 when not); each kernel's chunk products A = a b^T
 * and A V (2 chunk d each) and the state products a S and b^T V (2 d^2). */
double fmm_flops(Module *m, size_t B, size_t T, bool causal) {
    const FmmAttn *f = (const FmmAttn *)m;
    const double tokens = (double)B * (double)T, d = (double)f->d, H = (double)f->H;
    double keys = causal ? (double)f->window : 2.0 * (double)f->window - 1.0;
    if (keys > (double)T) keys = (double)T;
    double near = has_near(f) ? 4.0 * keys * d : 0.0;
    double far = has_far(f) ? f->n_kernels * 2.0 * (2.0 * (double)f->chunk * d + 2.0 * d * d) : 0.0;
    return tokens * H * (near + far);
}

static const ModuleKey fmm_keys[] = {
    FMM_HEAD_KEYS, FMM_BAND_KEYS, FMM_FAR_KEYS,
    MODULE_KEY(FmmAttn, sparse_ratio, KEY_FLOAT, "2.5", NULL, "sparse_ratio", 0, 1e9,
               "blend mode floor(sparse_ratio): 0 w*N+L, 1 N+w*L, 2 w*N+L (seeds), 3 w*N+w2*L, 4 band only, "
               ">=5 far field only"),
    MODULE_KEY(FmmAttn, kernels, KEY_LIST, "elu", NULL, "kernels", 0, -1,
               "far-field feature maps: elu, or elu,elu_flip (two kernels)"),
    {0}};

/* floor(sparse_ratio), with everything from 5 up meaning "far field only". */
static int fmm_configure(Module *m, const ModuleSpec *spec, Error *err) {
    FmmAttn *f = (FmmAttn *)m;
    (void)spec;
    int mode = f->sparse_ratio >= 5.0 ? 5 : (int)floor(f->sparse_ratio);
    return fmm_setup(m, mode, f->kernels, err);
}

const ModuleOps fmm_module = FMM_MODULE_OPS("fmm", fmm_keys, fmm_configure);
