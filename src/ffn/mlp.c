/* mlp.c — the position-wise feed-forward sublayer ('f' in an arch string):
 * y = fc2(Dropout(act(fc1(x)))), as the Transformer's FFN and the FMM
 * trainer's PositionwiseFF (which uses ReLU and dropout after it). The block
 * wrapper adds the dropout after fc2 and the residual. */
#include <string.h>

#include "../nn/module.h"
#include "../ops/ops.h"

typedef struct {
    Module base;
    int d_inner;
    char activation[CFG_NAME];
    double dropout, init_std;
    char init[CFG_NAME];
    int n_layer;     /* of the model: the depth scaling of fc2 under the gpt2 and flax schemes */
    bool recompute;  /* recompute_ffn: h is not kept but computed again in backward */
    size_t F;
    Activation act;
    float *w1, *dw1; /* (F, C) */
    float *b1, *db1; /* (F) */
    float *w2, *dw2; /* (C, F) */
    float *b2, *db2; /* (C) */
} Mlp;

static const ModuleKey mlp_keys[] = {
    MODULE_KEY(Mlp, d_inner, KEY_INT, "0", NULL, "d_inner", 0, 1e9, "hidden width; 0 = 4 C"),
    MODULE_KEY(Mlp, activation, KEY_CHOICE, "gelu", ACTIVATIONS, "activation", 0, -1, "activation"),
    MODULE_KEY(Mlp, dropout, KEY_FLOAT, "0.1", NULL, "dropout", 0, 0.999, "dropout on the hidden units"),
    MODULE_KEY(Mlp, init_std, KEY_FLOAT, "0.02", NULL, "init_std", 1e-12, 1e6, "std of the initial weights"),
    MODULE_KEY(Mlp, init, KEY_CHOICE, "seqlab", INIT_SCHEMES, "init", 0, -1,
               "scheme: seqlab N(0, init_std); gpt2 N(0, 0.02); flax lecun-normal fc1; fc2 of both N(0, 0.02/sqrt(2 n_layer)); pytorch U(+-1/sqrt(fan_in)) weights and biases"),
    MODULE_KEY(Mlp, recompute, KEY_BOOL, "false", NULL, "recompute_ffn", 0, -1,
               "recompute the hidden units in backward instead of keeping them (memory for long sequences)"),
    {0}};

/* Per use: the input and the saved hidden pre-activations. */
typedef struct {
    const float *x; /* borrowed: forward input (B, T, C) */
    float *h;       /* (B, T, F): fc1 output (bias added), before the activation; the only saved
                       activation (fc2's input is recomputed from it in backward); NULL with recompute */
} MlpFrame;

enum { SITE_HIDDEN_DROPOUT = 1 };

static int mlp_configure(Module *m, const ModuleSpec *spec, Error *err) {
    Mlp *f = (Mlp *)m;
    f->n_layer = spec->cfg->n_layer;
    f->F = f->d_inner ? (size_t)f->d_inner : 4 * m->C_in;
    if (activation_parse(f->activation, &f->act)) return err_set(err, "unknown activation '%s'", f->activation);
    return 0;
}

static void mlp_params(Module *m, ParamSet *ps) {
    Mlp *f = (Mlp *)m;
    params_add(ps, "fc1.weight", &f->w1, &f->dw1, GROUP_LINEAR, 2, f->F, m->C_in);
    params_add(ps, "fc1.bias", &f->b1, &f->db1, GROUP_BIAS, 1, f->F);
    params_add(ps, "fc2.weight", &f->w2, &f->dw2, GROUP_LINEAR, 2, m->C_out, f->F);
    params_add(ps, "fc2.bias", &f->b2, &f->db2, GROUP_BIAS, 1, m->C_out);
}

static void mlp_init(Module *m, uint64_t seed) {
    Mlp *f = (Mlp *)m;
    module_init_dense(m, f->w1, f->F, m->C_in, f->init, f->init_std, false, f->n_layer, seed, 0);
    module_init_dense(m, f->w2, m->C_out, f->F, f->init, f->init_std, true, f->n_layer, seed, 1);
    module_init_bias(m, f->b1, f->F, m->C_in, f->init, seed, 2);
    module_init_bias(m, f->b2, m->C_out, f->F, f->init, seed, 3);
}

static void mlp_layout(Module *m, Frame *fr, size_t B, size_t T, Arena *a) {
    Mlp *f = (Mlp *)m;
    MlpFrame *mf = fr->data;
    mf->h = f->recompute ? NULL : arena_take(a, B * T * f->F);
}

/* fc2's input g and its gradient live only for a chunk of rows at a time,
 * so the temporaries do not grow with the tokens of a step (the saved h does). */
enum { MLP_CHUNK = 4096 };

static size_t chunk_rows(size_t N) { return N < MLP_CHUNK ? N : MLP_CHUNK; }

/* Three chunks of scratch: g (fc2's input), dg (its gradient, then dh) and d
 * (act'(h) with the dropout mask, what backward multiplies dg by); with
 * recompute_ffn the chunk's h is computed into d's room. */
static size_t mlp_scratch(Module *m, size_t B, size_t T) {
    const Mlp *f = (const Mlp *)m;
    return 3 * chunk_rows(B * T) * f->F;
}

/* The dropout key of the hidden units of rows [r0, ...). */
static DropoutKey hidden_dropout(const Mlp *f, const Ctx *p, size_t r0) {
    DropoutKey k = ctx_dropout(p, SITE_HIDDEN_DROPOUT, (float)f->dropout, f->F);
    k.first += r0 * f->F;
    return k;
}

/* Rows per block of the elementwise passes: h, g and d of a block (3 x 32 x F
 * floats) stay in L2 while the bias, activation and dropout pass over them,
 * instead of each op streaming the whole chunk from memory. */
enum { BLOCK_ROWS = 32 };

/* For rows [r0, r0 + n) of the step (h, g, d: those rows): h += b1 when
 * add_bias (h straight from the fc1 product), g = Dropout(act(h)); with d
 * also d = act'(h) * mask / (1 - p). d may be h (recompute: h is scratch). */
static void hidden_units(const Mlp *f, float *h, float *g, float *d, bool add_bias, size_t r0, size_t n,
                         const Ctx *p) {
    const size_t F = f->F;
#pragma omp parallel for schedule(static)
    for (size_t b0 = 0; b0 < n; b0 += BLOCK_ROWS) {
        const size_t rows = n - b0 < BLOCK_ROWS ? n - b0 : BLOCK_ROWS, len = rows * F;
        float *hb = h + b0 * F, *gb = g + b0 * F;
        if (add_bias)
            for (size_t r = 0; r < rows; r++)
#pragma omp simd
                for (size_t c = 0; c < F; c++) hb[r * F + c] += f->b1[c];
        DropoutKey drop = hidden_dropout(f, p, r0 + b0);
        if (d) {
            activation_grad(gb, d + b0 * F, hb, len, f->act);
            dropout_backward(d + b0 * F, d + b0 * F, len, &drop);
        } else {
            activation_forward(gb, hb, len, f->act);
        }
        dropout_forward(gb, gb, len, &drop);
    }
}

/* fc1 without its bias (hidden_units adds it) for rows [r0, r0 + n) of x. */
static void fc1_product(const Mlp *f, float *h, const float *x, size_t r0, size_t n) {
    linear_forward(h, x + r0 * f->base.C_in, f->w1, NULL, n, f->base.C_in, f->F);
}

static void mlp_forward(Module *m, Frame *fr, const float *x, float *y, const Ctx *p) {
    Mlp *f = (Mlp *)m;
    MlpFrame *mf = fr->data;
    const size_t N = p->B * p->T, C = m->C_out, F = f->F, chunk = chunk_rows(N);
    float *g = p->scratch, *hbuf = g + 2 * chunk * F;
    mf->x = x;
    for (size_t r0 = 0; r0 < N; r0 += chunk) {
        const size_t n = N - r0 < chunk ? N - r0 : chunk;
        float *h = f->recompute ? hbuf : mf->h + r0 * F;
        fc1_product(f, h, x, r0, n);
        hidden_units(f, h, g, NULL, true, r0, n, p);
        linear_forward(y + r0 * C, g, f->w2, f->b2, n, F, C);
    }
}

/* dh = dg * d in place and db (F) += its column sums. Threads split the
 * columns and each sums its rows in order, so the result does not depend on
 * the thread count. */
static void hidden_grad(float *dg, const float *d, float *db, size_t n, size_t F) {
#pragma omp parallel for schedule(static)
    for (size_t c0 = 0; c0 < F; c0 += 64) {
        const size_t c1 = c0 + 64 < F ? c0 + 64 : F;
        float acc[64] = {0};
        for (size_t r = 0; r < n; r++)
#pragma omp simd
            for (size_t c = c0; c < c1; c++) {
                float v = dg[r * F + c] * d[r * F + c];
                dg[r * F + c] = v;
                acc[c - c0] += v;
            }
        for (size_t c = c0; c < c1; c++) db[c] += acc[c - c0];
    }
}

static void mlp_backward(Module *m, Frame *fr, const float *dy, float *dx, const Ctx *p) {
    Mlp *f = (Mlp *)m;
    MlpFrame *mf = fr->data;
    const size_t N = p->B * p->T, C = m->C_out, Cin = m->C_in, F = f->F, chunk = chunk_rows(N);
    float *g = p->scratch, *dg = g + chunk * F, *d = dg + chunk * F;
    for (size_t r0 = 0; r0 < N; r0 += chunk) {
        const size_t n = N - r0 < chunk ? N - r0 : chunk;
        float *h = f->recompute ? d : mf->h + r0 * F;
        if (f->recompute) fc1_product(f, h, mf->x, r0, n);
        hidden_units(f, h, g, d, f->recompute, r0, n, p);
        linear_backward(dg, f->dw2, f->db2, dy + r0 * C, g, f->w2, n, F, C, false);
        hidden_grad(dg, d, f->db1, n, F);
        linear_backward(dx + r0 * Cin, f->dw1, NULL, dg, mf->x + r0 * Cin, f->w1, n, Cin, F, false);
    }
}

/* Position-wise: one token needs no state. */
static size_t mlp_state_size(Module *m, size_t max_T) {
    (void)m;
    (void)max_T;
    return 0;
}

static void mlp_step(Module *m, Frame *fr, float *state, size_t t, const float *x, float *y, const Ctx *c) {
    Mlp *f = (Mlp *)m;
    (void)fr, (void)state, (void)t;
    linear_forward(c->scratch, x, f->w1, f->b1, 1, m->C_in, f->F);
    activation_forward(c->scratch, c->scratch, f->F, f->act);
    linear_forward(y, c->scratch, f->w2, f->b2, 1, f->F, m->C_out);
}

const ModuleOps mlp_module = {
    .name = "mlp",
    .kind = "ffn",
    .size = sizeof(Mlp),
    .keys = mlp_keys,
    .configure = mlp_configure,
    .params = mlp_params,
    .init = mlp_init,
    .frame_bytes = sizeof(MlpFrame),
    .layout = mlp_layout,
    .scratch = mlp_scratch,
    .forward = mlp_forward,
    .backward = mlp_backward,
    .state_size = mlp_state_size,
    .step = mlp_step,
};
