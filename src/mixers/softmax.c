/* softmax.c — multi-head softmax attention (Vaswani et al. 2017), the
 * `softmax` mixer (FMMformer seed alias attn_type 2).
 * Spec: shared/spec/attention.md §0.2 and §1. Projection layout as the FMM
 * trainer's MultiHeadAttn (minhtannguyen/fmmformer-code-submission,
 * lmtool-fwms/src/mem_transformer.py@92bc369): q_net C -> H*d and kv_net
 * C -> 2*H*d (K = first H*d outputs, V = the rest), o_net H*d -> C, no biases
 * (`bias: true` adds them, starting at 0: the Nystromformer code's softmax
 * baseline has W_q, W_k, W_v and its output with biases).
 * The core is the tiled online-softmax kernel of ops/attention.c; generation
 * keeps a K/V cache. */
#include <math.h>
#include <string.h>

#include "../nn/module.h"
#include "../ops/ops.h"

typedef struct {
    Module base;
    int n_head, d_head; /* keys; d_head 0: C / n_head */
    bool bias;
    double dropatt, init_std;
    size_t H, d, HD;
    float *wq, *dwq;   /* (HD, C) */
    float *wkv, *dwkv; /* (2HD, C) */
    float *wo, *dwo;   /* (C, HD) */
    float *bq, *dbq, *bkv, *dbkv, *bo, *dbo; /* (HD), (2HD), (C) with bias, else NULL */
} SoftmaxAttn;

static const ModuleKey softmax_keys[] = {
    MODULE_KEY(SoftmaxAttn, n_head, KEY_INT, "4", NULL, "n_head", 1, 4096, "attention heads"),
    MODULE_KEY(SoftmaxAttn, d_head, KEY_INT, "0", NULL, "d_head", 0, 4096, "width of one head; 0 = C / n_head"),
    MODULE_KEY(SoftmaxAttn, bias, KEY_BOOL, "false", NULL, NULL, 0, -1, "biases on q_net, kv_net and o_net (from 0)"),
    MODULE_KEY(SoftmaxAttn, dropatt, KEY_FLOAT, "0", NULL, "dropatt", 0, 0.999, "dropout on the attention weights"),
    MODULE_KEY(SoftmaxAttn, init_std, KEY_FLOAT, "0.02", NULL, "init_std", 1e-12, 1e6, "std of the initial weights"),
    {0}};

/* Per use: what backward needs. */
typedef struct {
    const float *x;    /* borrowed: forward input (B, T, C), intact until backward */
    float *q;          /* (B, T, HD) */
    float *kv;         /* (B, T, 2HD): K in columns [0, HD), V in [HD, 2HD) */
    float *a;          /* (B, T, HD): attention output, heads concatenated */
    float *lse;        /* (B, H, T): row log-sum-exp of the scores */
} SoftmaxFrame;

enum { SITE_DROPATT = 0 };

static int softmax_configure(Module *m, const ModuleSpec *spec, Error *err) {
    SoftmaxAttn *s = (SoftmaxAttn *)m;
    (void)spec;
    if (s->d_head == 0 && m->C_in % (size_t)s->n_head)
        return err_set(err, "%s: width %zu is not divisible by n_head %d; set d_head", m->path, m->C_in, s->n_head);
    s->H = (size_t)s->n_head;
    s->d = s->d_head ? (size_t)s->d_head : m->C_in / s->H;
    s->HD = s->H * s->d;
    return 0;
}

static void softmax_params(Module *m, ParamSet *ps) {
    SoftmaxAttn *s = (SoftmaxAttn *)m;
    params_add(ps, "q_net.weight", &s->wq, &s->dwq, GROUP_LINEAR, 2, s->HD, m->C_in);
    params_add(ps, "kv_net.weight", &s->wkv, &s->dwkv, GROUP_LINEAR, 2, 2 * s->HD, m->C_in);
    params_add(ps, "o_net.weight", &s->wo, &s->dwo, GROUP_LINEAR, 2, m->C_out, s->HD);
    if (!s->bias) return;
    params_add(ps, "q_net.bias", &s->bq, &s->dbq, GROUP_BIAS, 1, s->HD);
    params_add(ps, "kv_net.bias", &s->bkv, &s->dbkv, GROUP_BIAS, 1, 2 * s->HD);
    params_add(ps, "o_net.bias", &s->bo, &s->dbo, GROUP_BIAS, 1, m->C_out);
}

static void softmax_init(Module *m, uint64_t seed) {
    SoftmaxAttn *s = (SoftmaxAttn *)m;
    float std = (float)s->init_std;
    module_init_normal(m, s->wq, s->HD * m->C_in, std, seed, 0);
    module_init_normal(m, s->wkv, 2 * s->HD * m->C_in, std, seed, 1);
    module_init_normal(m, s->wo, m->C_out * s->HD, std, seed, 2);
    if (!s->bias) return;
    memset(s->bq, 0, s->HD * sizeof(float));
    memset(s->bkv, 0, 2 * s->HD * sizeof(float));
    memset(s->bo, 0, m->C_out * sizeof(float));
}

static void softmax_layout(Module *m, Frame *f, size_t B, size_t T, Arena *a) {
    SoftmaxAttn *s = (SoftmaxAttn *)m;
    SoftmaxFrame *sf = f->data;
    sf->q = arena_take(a, B * T * s->HD);
    sf->kv = arena_take(a, B * T * 2 * s->HD);
    sf->a = arena_take(a, B * T * s->HD);
    sf->lse = arena_take(a, B * s->H * T);
}

static AttentionShape shape_of(const SoftmaxAttn *s, size_t B, size_t T, bool causal, const Ctx *c) {
    AttentionShape sh = {.B = B, .T = T, .H = s->H, .d = s->d, .ldq = s->HD, .ldk = 2 * s->HD,
                         .ldv = 2 * s->HD, .ldo = s->HD, .hq = s->d, .hk = s->d, .hv = s->d, .ho = s->d,
                         .causal = causal, .scale = 1.0f / sqrtf((float)s->d), .dropatt = 0.0f};
    if (c && c->training && s->dropatt > 0.0f) {
        sh.dropatt = (float)s->dropatt;
        sh.seed = c->seed;
        sh.stream = ctx_stream(c, SITE_DROPATT);
        sh.row0 = c->row0;
    }
    if (c) {
        sh.key_mask = c->mask;
    }
    return sh;
}

static size_t softmax_scratch(Module *m, size_t B, size_t T) {
    SoftmaxAttn *s = (SoftmaxAttn *)m;
    AttentionShape sh = shape_of(s, B, T, true, NULL);
    /* backward: da, dq (N, HD) and dkv (N, 2HD), then the tiles; step: q, a (HD) and T probabilities */
    return 4 * B * T * s->HD + attention_scratch(&sh) + s->H * T + 16;
}

static void softmax_forward(Module *m, Frame *f, const float *x, float *y, const Ctx *c) {
    SoftmaxAttn *s = (SoftmaxAttn *)m;
    SoftmaxFrame *sf = f->data;
    const size_t N = c->B * c->T;
    sf->x = x;
    linear_forward(sf->q, x, s->wq, s->bq, N, m->C_in, s->HD);
    linear_forward(sf->kv, x, s->wkv, s->bkv, N, m->C_in, 2 * s->HD);
    AttentionShape sh = shape_of(s, c->B, c->T, c->causal, c);
    attention_forward(sf->a, sf->lse, sf->q, sf->kv, sf->kv + s->HD, &sh, c->scratch);
    linear_forward(y, sf->a, s->wo, s->bo, N, s->HD, m->C_out);
}

static void softmax_backward(Module *m, Frame *f, const float *dy, float *dx, const Ctx *c) {
    SoftmaxAttn *s = (SoftmaxAttn *)m;
    SoftmaxFrame *sf = f->data;
    const size_t N = c->B * c->T, C = m->C_in, HD = s->HD;
    float *da = c->scratch, *dq = da + N * HD, *dkv = dq + N * HD, *tiles = dkv + 2 * N * HD;
    linear_backward(da, s->dwo, s->dbo, dy, sf->a, s->wo, N, HD, m->C_out, false);
    AttentionShape sh = shape_of(s, c->B, c->T, c->causal, c);
    attention_backward(dq, dkv, dkv + HD, da, sf->q, sf->kv, sf->kv + HD, sf->a, sf->lse, &sh, tiles);
    linear_backward(dx, s->dwq, s->dbq, dq, sf->x, s->wq, N, C, HD, false);
    linear_backward(dx, s->dwkv, s->dbkv, dkv, sf->x, s->wkv, N, C, 2 * HD, true);
}

/* Generation state: the K/V cache, (max_T, 2HD) laid out like kv. */
static size_t softmax_state_size(Module *m, size_t max_T) { return max_T * 2 * ((SoftmaxAttn *)m)->HD; }

static void softmax_step(Module *m, Frame *f, float *state, size_t t, const float *x, float *y, const Ctx *c) {
    SoftmaxAttn *s = (SoftmaxAttn *)m;
    const size_t HD = s->HD;
    float *q = c->scratch, *a = q + HD, *probs = a + HD;
    float *kv_t = state + t * 2 * HD;
    (void)f;
    linear_forward(q, x, s->wq, s->bq, 1, m->C_in, HD);
    linear_forward(kv_t, x, s->wkv, s->bkv, 1, m->C_in, 2 * HD);
    /* a bidirectional layer has no causal generation; the model refuses it */
    AttentionShape sh = shape_of(s, 1, t + 1, true, NULL);
    attention_step(a, q, state, state + HD, t + 1, &sh, probs);
    linear_forward(y, a, s->wo, s->bo, 1, HD, m->C_out);
}

/* QK^T and PV: 2 * 2 * T^2 * d per head and sequence, half of it when causal. */
static double softmax_flops(Module *m, size_t B, size_t T, bool causal) {
    SoftmaxAttn *s = (SoftmaxAttn *)m;
    return 4.0 * (double)B * (double)T * (double)T * (double)s->HD * (causal ? 0.5 : 1.0);
}

const ModuleOps softmax_module = {
    .name = "softmax",
    .kind = "mixer",
    .size = sizeof(SoftmaxAttn),
    .keys = softmax_keys,
    .configure = softmax_configure,
    .params = softmax_params,
    .init = softmax_init,
    .frame_bytes = sizeof(SoftmaxFrame),
    .layout = softmax_layout,
    .scratch = softmax_scratch,
    .forward = softmax_forward,
    .backward = softmax_backward,
    .state_size = softmax_state_size,
    .step = softmax_step,
    .flops = softmax_flops,
};
