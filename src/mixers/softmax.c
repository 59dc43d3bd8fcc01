/* softmax.c — multi-head softmax attention (Vaswani et al. 2017), the
 * `softmax` mixer (FMMformer seed alias attn_type 2).
 * Spec: shared/spec/attention.md §0.2 and §1. Projection layout as the FMM
 * trainer's MultiHeadAttn (minhtannguyen/fmmformer-code-submission,
 * lmtool-fwms/src/mem_transformer.py@92bc369): q_net C -> H*d and kv_net
 * C -> 2*H*d (K = first H*d outputs, V = the rest), o_net H*d -> C, no biases.
 * The core is the tiled online-softmax kernel of ops/attention.c; generation
 * keeps a K/V cache. */
#include <math.h>
#include <string.h>

#include "../ops/ops.h"
#include "mixer.h"

typedef struct {
    Module base;
    size_t H, d, HD;
    bool causal;
    float dropatt;
    float *wq, *dwq;   /* (HD, C) */
    float *wkv, *dwkv; /* (2HD, C) */
    float *wo, *dwo;   /* (C, HD) */
    const float *x;    /* borrowed: forward input (B, T, C), intact until backward */
    float *q;          /* (B, T, HD) */
    float *kv;         /* (B, T, 2HD): K in columns [0, HD), V in [HD, 2HD) */
    float *a;          /* (B, T, HD): attention output, heads concatenated */
    float *lse;        /* (B, H, T): row log-sum-exp of the scores */
} SoftmaxAttn;

enum { SITE_DROPATT = 0 };

static int softmax_configure(Module *m, Error *err) {
    SoftmaxAttn *s = (SoftmaxAttn *)m;
    const Config *c = m->cfg;
    s->H = (size_t)c->n_head;
    s->d = (size_t)c->d_head;
    s->HD = s->H * s->d;
    s->causal = c->causal;
    s->dropatt = (float)c->dropatt;
    (void)err;
    return 0;
}

static void softmax_params(Module *m, ParamSet *ps) {
    SoftmaxAttn *s = (SoftmaxAttn *)m;
    params_add(ps, "q_net.weight", &s->wq, &s->dwq, GROUP_LINEAR, 2, s->HD, m->C);
    params_add(ps, "kv_net.weight", &s->wkv, &s->dwkv, GROUP_LINEAR, 2, 2 * s->HD, m->C);
    params_add(ps, "o_net.weight", &s->wo, &s->dwo, GROUP_LINEAR, 2, m->C, s->HD);
}

static void softmax_init(Module *m, uint64_t seed) {
    SoftmaxAttn *s = (SoftmaxAttn *)m;
    float std = (float)m->cfg->init_std;
    init_normal(s->wq, s->HD * m->C, std, seed, m->layer, 0);
    init_normal(s->wkv, 2 * s->HD * m->C, std, seed, m->layer, 1);
    init_normal(s->wo, m->C * s->HD, std, seed, m->layer, 2);
}

static void softmax_layout(Module *m, size_t B, size_t T, Arena *a) {
    SoftmaxAttn *s = (SoftmaxAttn *)m;
    s->q = arena_take(a, B * T * s->HD);
    s->kv = arena_take(a, B * T * 2 * s->HD);
    s->a = arena_take(a, B * T * s->HD);
    s->lse = arena_take(a, B * s->H * T);
}

static AttentionShape shape_of(const SoftmaxAttn *s, size_t B, size_t T, const Pass *p) {
    AttentionShape sh = {.B = B, .T = T, .H = s->H, .d = s->d, .ldq = s->HD, .ldk = 2 * s->HD,
                         .ldv = 2 * s->HD, .ldo = s->HD, .hq = s->d, .hk = s->d, .hv = s->d, .ho = s->d,
                         .causal = s->causal,
                         .scale = 1.0f / sqrtf((float)s->d), .dropatt = 0.0f};
    if (p && p->training && s->dropatt > 0.0f) {
        sh.dropatt = s->dropatt;
        sh.seed = p->seed;
        sh.stream = pass_stream(p, s->base.layer, SITE_DROPATT);
        sh.row0 = p->row0;
    }
    return sh;
}

static size_t softmax_scratch(Module *m, size_t B, size_t T) {
    SoftmaxAttn *s = (SoftmaxAttn *)m;
    AttentionShape sh = shape_of(s, B, T, NULL);
    /* backward: da, dq (N, HD) and dkv (N, 2HD), then the tiles */
    return 4 * B * T * s->HD + attention_scratch(&sh) + 16;
}

static void softmax_forward(Module *m, const float *x, float *y, const Pass *p) {
    SoftmaxAttn *s = (SoftmaxAttn *)m;
    const size_t N = p->B * p->T, C = m->C;
    s->x = x;
    linear_forward(s->q, x, s->wq, NULL, N, C, s->HD);
    linear_forward(s->kv, x, s->wkv, NULL, N, C, 2 * s->HD);
    AttentionShape sh = shape_of(s, p->B, p->T, p);
    attention_forward(s->a, s->lse, s->q, s->kv, s->kv + s->HD, &sh, p->scratch);
    linear_forward(y, s->a, s->wo, NULL, N, s->HD, C);
}

static void softmax_backward(Module *m, const float *dy, float *dx, const Pass *p) {
    SoftmaxAttn *s = (SoftmaxAttn *)m;
    const size_t N = p->B * p->T, C = m->C, HD = s->HD;
    float *da = p->scratch, *dq = da + N * HD, *dkv = dq + N * HD, *tiles = dkv + 2 * N * HD;
    linear_backward(da, s->dwo, NULL, dy, s->a, s->wo, N, HD, C, false);
    AttentionShape sh = shape_of(s, p->B, p->T, p);
    attention_backward(dq, dkv, dkv + HD, da, s->q, s->kv, s->kv + HD, s->a, s->lse, &sh, tiles);
    linear_backward(dx, s->dwq, NULL, dq, s->x, s->wq, N, C, HD, false);
    linear_backward(dx, s->dwkv, NULL, dkv, s->x, s->wkv, N, C, 2 * HD, true);
}

/* Generation state: the K/V cache, (max_T, 2HD) laid out like kv. */
static size_t softmax_state_size(Module *m, size_t max_T) {
    return max_T * 2 * ((SoftmaxAttn *)m)->HD;
}

static void softmax_step(Module *m, float *state, size_t t, const float *x, float *y, float *scratch) {
    SoftmaxAttn *s = (SoftmaxAttn *)m;
    const size_t HD = s->HD, C = m->C;
    float *q = scratch, *a = q + HD, *probs = a + HD;
    float *kv_t = state + t * 2 * HD;
    linear_forward(q, x, s->wq, NULL, 1, C, HD);
    linear_forward(kv_t, x, s->wkv, NULL, 1, C, 2 * HD);
    /* a bidirectional layer has no causal generation; the model refuses it */
    AttentionShape sh = shape_of(s, 1, t + 1, NULL);
    attention_step(a, q, state, state + HD, t + 1, &sh, probs);
    linear_forward(y, a, s->wo, NULL, 1, HD, C);
}

/* QK^T and PV: 2 * 2 * T^2 * d per head and sequence, half of it when causal. */
static double softmax_flops(Module *m, size_t B, size_t T) {
    SoftmaxAttn *s = (SoftmaxAttn *)m;
    return 4.0 * (double)B * (double)T * (double)T * (double)s->HD * (s->causal ? 0.5 : 1.0);
}

const ModuleOps softmax_module = {
    .name = "softmax",
    .size = sizeof(SoftmaxAttn),
    .configure = softmax_configure,
    .params = softmax_params,
    .init = softmax_init,
    .layout = softmax_layout,
    .scratch = softmax_scratch,
    .forward = softmax_forward,
    .backward = softmax_backward,
    .state_size = softmax_state_size,
    .step = softmax_step,
    .flops = softmax_flops,
};
