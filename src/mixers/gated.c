/* gated.c — a gated mixer around any other (the `gated` mixer):
 *   u = x W_u^T,  g = act(x W_g^T),  y = (g * M(u)) W_o^T
 * with M the child mixer `inner` (section mixer.inner; dwconv by default:
 * then this is the gated short convolution of H3 and Hyena's order-1 form,
 * Dao et al. 2023, Poli et al. 2023), widths C -> D -> C. The gate lets a
 * mixer that only moves information along the sequence choose per channel
 * what passes. Generation steps the inner mixer. */
#include <string.h>

#include "../nn/module.h"

typedef struct {
    Module base;
    int d_inner;             /* D; 0 = C */
    char activation[CFG_NAME]; /* of the gate */
    double init_std;
    size_t D;
    Activation act;
    float *wu, *dwu; /* (D, C) */
    float *wg, *dwg; /* (D, C) */
    float *wo, *dwo; /* (C, D) */
} Gated;

static const ModuleKey gated_keys[] = {
    MODULE_KEY(Gated, d_inner, KEY_INT, "0", NULL, NULL, 0, 1e9, "width D of the inner mixer; 0 = C"),
    MODULE_KEY(Gated, activation, KEY_CHOICE, "silu", "silu|gelu|gelu_tanh|relu", NULL, 0, -1, "gate activation"),
    MODULE_KEY(Gated, init_std, KEY_FLOAT, "0.02", NULL, "init_std", 1e-12, 1e6, "std of the initial weights"),
    {0}};

/* Per use: the projections and the gate's derivative, for backward. */
typedef struct {
    const float *x; /* borrowed: input (B, T, C) */
    float *u;       /* (B, T, D) the inner mixer's input */
    float *g;       /* (B, T, D) the gate */
    float *dg;      /* (B, T, D) act' at the gate's pre-activation */
    float *z;       /* (B, T, D) the inner mixer's output */
} GatedFrame;

static int gated_configure(Module *m, const ModuleSpec *spec, Error *err) {
    Gated *g = (Gated *)m;
    g->D = g->d_inner ? (size_t)g->d_inner : m->C_in;
    if (activation_parse(g->activation, &g->act)) return err_set(err, "unknown activation '%s'", g->activation);
    return module_add_child(m, spec, "inner", "mixer", "dwconv", g->D, g->D, err) ? 0 : -1;
}

static void gated_params(Module *m, ParamSet *ps) {
    Gated *g = (Gated *)m;
    params_add(ps, "u_proj.weight", &g->wu, &g->dwu, GROUP_LINEAR, 2, g->D, m->C_in);
    params_add(ps, "g_proj.weight", &g->wg, &g->dwg, GROUP_LINEAR, 2, g->D, m->C_in);
    params_add(ps, "o_proj.weight", &g->wo, &g->dwo, GROUP_LINEAR, 2, m->C_out, g->D);
}

static void gated_init(Module *m, uint64_t seed) {
    Gated *g = (Gated *)m;
    const float std = (float)g->init_std;
    module_init_normal(m, g->wu, g->D * m->C_in, std, seed, 0);
    module_init_normal(m, g->wg, g->D * m->C_in, std, seed, 1);
    module_init_normal(m, g->wo, m->C_out * g->D, std, seed, 2);
}

static void gated_layout(Module *m, Frame *f, size_t B, size_t T, Arena *a) {
    Gated *g = (Gated *)m;
    GatedFrame *gf = f->data;
    const size_t n = B * T * g->D;
    gf->u = arena_take(a, n);
    gf->g = arena_take(a, n);
    gf->dg = arena_take(a, n);
    gf->z = arena_take(a, n);
    module_layout(&f->children[0], B, T, a);
}

/* Scratch: three (B, T, D) buffers (forward: g * z; backward: its
 * gradient, dz and du), then the inner mixer's. */
static size_t gated_scratch(Module *m, size_t B, size_t T) {
    Gated *g = (Gated *)m;
    return 3 * B * T * g->D + module_scratch(m->children[0], B, T);
}

static Ctx inner_ctx(const Gated *g, const Ctx *c) {
    Ctx in = *c;
    in.scratch = c->scratch + 3 * c->B * c->T * g->D;
    return in;
}

static void gated_forward(Module *m, Frame *f, const float *x, float *y, const Ctx *c) {
    Gated *g = (Gated *)m;
    GatedFrame *gf = f->data;
    const size_t N = c->B * c->T, n = N * g->D;
    gf->x = x;
    linear_forward(gf->u, x, g->wu, NULL, N, m->C_in, g->D);
    linear_forward(gf->g, x, g->wg, NULL, N, m->C_in, g->D);
    activation_grad(gf->g, gf->dg, gf->g, n, g->act);
    if (c->stats) { /* how open the gates are: a diagnostic in the training log */
        double s = 0.0;
        for (size_t i = 0; i < n; i++) s += gf->g[i];
        ctx_stat(c, "gate_mean", s / (double)n);
    }
    const Ctx in = inner_ctx(g, c);
    module_forward(&f->children[0], gf->u, gf->z, &in);
    float *h = c->scratch; /* g * z, fc_o's input; not kept */
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) h[i] = gf->g[i] * gf->z[i];
    linear_forward(y, h, g->wo, NULL, N, g->D, m->C_out);
}

static void gated_backward(Module *m, Frame *f, const float *dy, float *dx, const Ctx *c) {
    Gated *g = (Gated *)m;
    GatedFrame *gf = f->data;
    const size_t N = c->B * c->T, n = N * g->D;
    float *dh = c->scratch, *dz = dh + n, *du = dz + n;
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) dz[i] = gf->g[i] * gf->z[i]; /* fc_o's input again */
    linear_backward(dh, g->dwo, NULL, dy, dz, g->wo, N, g->D, m->C_out, false);
    /* dz = dh * g; dh becomes the gate's pre-activation gradient dh * z * act' */
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) {
        dz[i] = dh[i] * gf->g[i];
        dh[i] = dh[i] * gf->z[i] * gf->dg[i];
    }
    const Ctx in = inner_ctx(g, c);
    module_backward(&f->children[0], dz, du, &in);
    linear_backward(dx, g->dwg, NULL, dh, gf->x, g->wg, N, m->C_in, g->D, false);
    linear_backward(dx, g->dwu, NULL, du, gf->x, g->wu, N, m->C_in, g->D, true);
}

static size_t gated_state_size(Module *m, size_t max_T) { return module_state_size(m->children[0], max_T); }

/* One token: u, g, the inner mixer's step, y. Scratch: u, g, z (D each), then the inner's. */
static void gated_step(Module *m, Frame *f, float *state, size_t t, const float *x, float *y, const Ctx *c) {
    Gated *g = (Gated *)m;
    const size_t D = g->D;
    float *u = c->scratch, *gate = u + D, *z = gate + D;
    Ctx in = *c;
    in.scratch = z + D;
    linear_forward(u, x, g->wu, NULL, 1, m->C_in, D);
    linear_forward(gate, x, g->wg, NULL, 1, m->C_in, D);
    activation_forward(gate, gate, D, g->act);
    module_step(&f->children[0], state, t, u, z, &in);
    for (size_t i = 0; i < D; i++) z[i] *= gate[i];
    linear_forward(y, z, g->wo, NULL, 1, D, m->C_out);
}

const ModuleOps gated_module = {
    .name = "gated",
    .kind = "mixer",
    .size = sizeof(Gated),
    .keys = gated_keys,
    .configure = gated_configure,
    .params = gated_params,
    .init = gated_init,
    .frame_bytes = sizeof(GatedFrame),
    .layout = gated_layout,
    .scratch = gated_scratch,
    .forward = gated_forward,
    .backward = gated_backward,
    .state_size = gated_state_size,
    .step = gated_step,
};
