/* test_modules.c — every registered module through the same checks:
 * finite-difference gradients (input and every parameter), and for mixers
 * with a step form, step-by-step generation equals forward.
 * To cover a new mixer, add a line to the tables below. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "rig.h"
#include "test.h"
#include "tolerance.h"

typedef struct {
    const char *label, *name, *kind;
    bool causal;
    double dropout, dropatt;
    const char *activation;
    size_t B, T;
    float h; /* finite-difference step; small where kinks (ReLU) are near */
    int diag_size;
    double sparse_ratio;
    const char *kernels;
    const char *entries; /* section keys, "key=value;key=value" (NULL: none) */
} ModuleCase;

static const ModuleCase gradient_cases[] = {
    {"softmax causal", "softmax", "mixer", true, 0, 0, "gelu", 2, 7, 1e-2f, 0, 0, NULL, NULL},
    {"softmax bidirectional", "softmax", "mixer", false, 0, 0, "gelu", 2, 7, 1e-2f, 0, 0, NULL, NULL},
    {"softmax causal, fixed dropatt mask", "softmax", "mixer", true, 0, 0.3, "gelu", 2, 7, 1e-2f, 0, 0, NULL, NULL},
    {"softmax bidirectional, fixed dropatt mask", "softmax", "mixer", false, 0, 0.3, "gelu", 1, 9, 1e-2f, 0, 0, NULL, NULL},
    {"softmax causal across tiles", "softmax", "mixer", true, 0, 0, "gelu", 1, 70, 1e-2f, 0, 0, NULL, NULL},
    {"softmax bidirectional with biases", "softmax", "mixer", false, 0, 0, "gelu", 2, 7, 1e-2f, 0, 0, NULL,
     "mixer.bias=true"},
    {"mlp relu", "mlp", "ffn", true, 0, 0, "relu", 2, 5, 1e-3f, 0, 0, NULL, NULL},
    {"mlp gelu", "mlp", "ffn", true, 0, 0, "gelu", 2, 5, 1e-2f, 0, 0, NULL, NULL},
    {"mlp gelu_tanh, fixed dropout mask", "mlp", "ffn", true, 0.25, 0, "gelu_tanh", 2, 5, 1e-2f, 0, 0, NULL, NULL},
    {"mlp over two row chunks (4200 rows), fixed dropout mask", "mlp", "ffn", true, 0.25, 0, "gelu", 2, 2100, 1e-2f,
     0, 0, NULL, NULL},
    {"linear", "linear", "mixer", true, 0, 0, "gelu", 2, 70, 1e-2f, 0, 0, NULL, NULL},
    {"linear bidirectional", "linear", "mixer", false, 0, 0, "gelu", 2, 70, 1e-2f, 0, 0, NULL, NULL},
    {"band causal 5", "band", "mixer", true, 0, 0, "gelu", 2, 70, 1e-2f, 5, 0, NULL, NULL},
    {"band bidirectional 5", "band", "mixer", false, 0, 0, "gelu", 1, 70, 1e-2f, 5, 0, NULL, NULL},
    {"band causal 20, fixed dropatt mask", "band", "mixer", true, 0, 0.3, "gelu", 1, 70, 1e-2f, 20, 0, NULL, NULL},
    {"fmm mode 0, 2 kernels", "fmm", "mixer", true, 0, 0, "gelu", 1, 70, 1e-2f, 5, 0.5, "elu,elu_flip", NULL},
    {"fmm mode 1, 2 kernels", "fmm", "mixer", true, 0, 0, "gelu", 1, 70, 1e-2f, 5, 1.5, "elu,elu_flip", NULL},
    {"fmm mode 2, 1 kernel", "fmm", "mixer", true, 0, 0, "gelu", 1, 70, 1e-2f, 5, 2.5, "elu", NULL},
    {"fmm mode 2, 2 kernels", "fmm", "mixer", true, 0, 0, "gelu", 1, 70, 1e-2f, 20, 2.5, "elu,elu_flip", NULL},
    {"fmm mode 3, 2 kernels", "fmm", "mixer", true, 0, 0, "gelu", 1, 70, 1e-2f, 5, 3.5, "elu,elu_flip", NULL},
    {"fmm mode 4 (band only)", "fmm", "mixer", true, 0, 0, "gelu", 1, 70, 1e-2f, 5, 4.5, "elu", NULL},
    {"fmm mode 5 (far only), 2 kernels", "fmm", "mixer", true, 0, 0, "gelu", 1, 70, 1e-2f, 5, 5.5, "elu,elu_flip", NULL},
    {"fmm mode 2 bidirectional, 2 kernels", "fmm", "mixer", false, 0, 0, "gelu", 1, 70, 1e-2f, 5, 2.5,
     "elu,elu_flip", NULL},
    {"mlp silu", "mlp", "ffn", true, 0, 0, "silu", 2, 5, 1e-2f, 0, 0, NULL, NULL},
    {"dwconv causal, 3 taps", "dwconv", "mixer", true, 0, 0, "gelu", 2, 9, 1e-2f, 0, 0, NULL, NULL},
    {"dwconv bidirectional, 4 taps, no bias", "dwconv", "mixer", false, 0, 0, "gelu", 2, 9, 1e-2f, 0, 0, NULL,
     "mixer.kernel_size=4;mixer.use_bias=false"},
    {"gated dwconv (a child module)", "gated", "mixer", true, 0, 0, "gelu", 2, 9, 1e-2f, 0, 0, NULL,
     "mixer.d_inner=8"},
    {"gated softmax (a child named in the config)", "gated", "mixer", true, 0, 0.2, "gelu", 2, 9, 1e-2f, 0, 0, NULL,
     "mixer.inner.name=softmax;mixer.inner.n_head=2;mixer.activation=gelu"},
    {"residual pre layernorm around softmax", "s", "sublayer", true, 0.2, 0, "gelu", 2, 7, 1e-2f, 0, 0, NULL, NULL},
    {"residual post rmsnorm around mlp", "f", "sublayer", true, 0, 0, "gelu", 2, 7, 1e-2f, 0, 0, NULL,
     "residual.place=post;residual.norm=rmsnorm"},
    {"residual pre scalenorm around band", "s", "sublayer", true, 0, 0, "gelu", 2, 9, 1e-2f, 3, 0, NULL,
     "mixer.name=band;residual.norm=scalenorm"},
    {"residual post batchnorm around dwconv", "s", "sublayer", true, 0, 0, "gelu", 2, 9, 1e-2f, 0, 0, NULL,
     "mixer.name=dwconv;residual.place=post;residual.norm=batchnorm"},
    {"residual without norm around mlp", "f", "sublayer", true, 0, 0, "relu", 2, 5, 1e-3f, 0, 0, NULL,
     "residual.norm=none"},
    {"s5 zoh gelu, conj_sym, 2 blocks", "s5", "mixer", true, 0, 0, "gelu", 2, 9, 1e-2f, 0, 0, NULL,
     "mixer.ssm_size=8;mixer.blocks=2"},
    {"s5 bilinear half_glu2, clip_eigs", "s5", "mixer", true, 0, 0, "gelu", 2, 9, 1e-2f, 0, 0, NULL,
     "mixer.ssm_size=4;mixer.discretization=bilinear;mixer.activation=half_glu2;mixer.clip_eigs=true"},
    {"s5 half_glu1, gelu tanh, lecun C, no conj_sym", "s5", "mixer", true, 0, 0, "gelu", 2, 9, 1e-2f, 0, 0, NULL,
     "mixer.ssm_size=3;mixer.conj_sym=false;mixer.activation=half_glu1;mixer.gelu=tanh;mixer.c_init=lecun_normal"},
    {"s5 bidirectional full_glu", "s5", "mixer", false, 0, 0, "gelu", 2, 9, 1e-2f, 0, 0, NULL,
     "mixer.ssm_size=4;mixer.activation=full_glu;mixer.bidirectional=true"},
    {"s5 no activation across scan chunks (T 1030), clip_eigs", "s5", "mixer", true, 0, 0, "gelu", 1, 1030, 1e-2f,
     0, 0, NULL, "mixer.ssm_size=4;mixer.activation=none;mixer.clip_eigs=true"},
    {"hyena order 2 (direct convolution, T 9)", "hyena", "mixer", true, 0, 0, "gelu", 2, 9, 1e-2f, 0, 0, NULL, NULL},
    {"hyena order 3, fixed dropout mask, FFT convolution (T 100)", "hyena", "mixer", true, 0, 0, "gelu", 2, 100, 1e-2f,
     0, 0, NULL, "mixer.order=3;mixer.drop_rate=0.2;mixer.filter_order=8"},
    {"hyena-s5 (an s5 filter, half_glu2)", "hyena", "mixer", true, 0, 0, "gelu", 2, 9, 1e-2f, 0, 0, NULL,
     "mixer.filter.name=s5;mixer.filter.ssm_size=4;mixer.filter.activation=half_glu2;mixer.filter.clip_eigs=true"},
    {"ema causal (direct convolution, T 9)", "ema", "mixer", true, 0, 0, "gelu", 2, 9, 1e-2f, 0, 0, NULL,
     "mixer.n_dim=3"},
    {"ema bidirectional, truncation 40, FFT (T 100)", "ema", "mixer", false, 0, 0, "gelu", 2, 100, 1e-2f, 0, 0, NULL,
     "mixer.n_dim=4;mixer.truncation=40"},
    {"ema causal, truncated normal init, FFT (T 100)", "ema", "mixer", true, 0, 0, "gelu", 1, 100, 1e-2f, 0, 0, NULL,
     "mixer.n_dim=2;mixer.init=trunc_normal"},
    {"mega causal, chunks of 4 (T 9), softmax, simple bias, pre layernorm", "mega", "mixer", true, 0, 0, "gelu", 2,
     9, 1e-2f, 0, 0, NULL, "mixer.z_dim=4;mixer.h_dim=5;mixer.n_dim=3;mixer.chunk_size=4"},
    {"mega bidirectional, relu2, rotary bias, post scalenorm", "mega", "mixer", false, 0, 0, "gelu", 2, 8, 1e-2f, 0,
     0, NULL, "mixer.z_dim=4;mixer.h_dim=5;mixer.n_dim=3;mixer.attention=relu2;mixer.rel_pos=rotary;mixer.place=post;"
     "mixer.norm_type=scalenorm"},
    {"mega causal laplace, truncation 3, rmsnorm, fixed dropout masks", "mega", "mixer", true, 0.2, 0.2, "gelu", 1, 9,
     1e-2f, 0, 0, NULL, "mixer.z_dim=4;mixer.h_dim=6;mixer.n_dim=2;mixer.attention=laplace;mixer.truncation=3;"
     "mixer.norm_type=rmsnorm;mixer.hidden_dropout=0.3;mixer.rel_pos=none"},
    {"mega bidirectional softmax, chunks of 4, feature dropout", "mega", "mixer", false, 0.3, 0, "gelu", 2, 8, 1e-2f,
     0, 0, NULL, "mixer.z_dim=4;mixer.h_dim=5;mixer.n_dim=2;mixer.chunk_size=4;mixer.feature_dropout=true"},
    /* SeqBoat's routing is a step function of u1 - u0: a difference step wider than a token's margin
     * would flip it, so these cases use steps below their smallest margins (a flip shows as a failure) */
    {"seqboat causal, window 2 (T 9), RoPE, pre layernorm", "seqboat", "mixer", true, 0, 0, "gelu", 2, 9, 1e-2f, 0,
     0, NULL, "mixer.z_dim=4;mixer.h_dim=5;mixer.n_dim=3;mixer.chunk_size=2;mixer.rel_pos=rotary"},
    {"seqboat bidirectional, full attention, simple bias, post scalenorm", "seqboat", "mixer", false, 0, 0, "gelu", 2,
     8, 1e-2f, 0, 0, NULL, "mixer.z_dim=4;mixer.h_dim=5;mixer.n_dim=2;mixer.place=post;mixer.norm_type=scalenorm"},
    {"seqboat bidirectional relu2, window 2, local_pos bias, fixed dropout masks", "seqboat", "mixer", false, 0.2, 0.2,
     "gelu", 1, 9, 2e-3f, 0, 0, NULL, "mixer.z_dim=4;mixer.h_dim=5;mixer.n_dim=2;mixer.chunk_size=2;"
     "mixer.attention=relu2;mixer.local_pos=true;mixer.hidden_dropout=0.2"},
    {"seqboat causal laplace, full attention, truncation 4", "seqboat", "mixer", true, 0, 0, "gelu", 1, 9, 2e-3f, 0, 0,
     NULL, "mixer.z_dim=4;mixer.h_dim=6;mixer.n_dim=2;mixer.attention=laplace;mixer.truncation=4;mixer.rel_pos=none"},
    {"hyena without short filter, gpt2 init, no feed-through", "hyena", "mixer", true, 0, 0, "gelu", 1, 9, 1e-2f, 0,
     0, NULL, "mixer.short_filter_order=0;mixer.init=gpt2;mixer.filter_bias=false"},
};

static int configure(Config *c, const ModuleCase *mc) {
    rig_config(c);
    c->causal = mc->causal;
    c->dropout = mc->dropout;
    c->dropatt = mc->dropatt;
    snprintf(c->activation, sizeof c->activation, "%s", mc->activation);
    if (mc->diag_size) c->diag_size = mc->diag_size;
    c->sparse_ratio = mc->sparse_ratio;
    if (mc->kernels) snprintf(c->kernels, sizeof c->kernels, "%s", mc->kernels);
    return rig_set_entries(c, mc->entries);
}

TEST(module_gradients) {
    for (size_t i = 0; i < sizeof gradient_cases / sizeof gradient_cases[0]; i++) {
        const ModuleCase *mc = &gradient_cases[i];
        Config c;
        Rig rig;
        REQUIRE(configure(&c, mc) == 0 && rig_build(&rig, mc->name, mc->kind, &c, mc->B, mc->T) == 0,
                "%s: build failed", mc->label);
        int failures = rig_gradcheck(&rig, 40, mc->h);
        CHECK(failures == 0, "%s: %d gradient tensors off", mc->label, failures);
        rig_free(&rig);
    }
}

/* Runs step() over the sequence of batch row 0 and compares with forward,
 * twice from a cleared state (as the generator clears it). */
static double step_vs_forward(Rig *rig) {
    const size_t T = rig->T, C = rig->C;
    rig->ctx.training = false;
    module_forward(rig->f, rig->x, rig->y, &rig->ctx);
    float *state = calloc(module_state_size(rig->m, T) + 1, sizeof(float));
    float *scratch = calloc(module_scratch(rig->m, 1, T) + 1, sizeof(float));
    float *out = calloc(C, sizeof(float));
    double worst = 0.0;
    const Ctx one = {.B = 1, .T = 1, .causal = true, .scratch = scratch, .max_T = T};
    for (int pass = 0; pass < 2; pass++) { /* twice: what a module keeps besides its state must not leak */
        memset(state, 0, module_state_size(rig->m, T) * sizeof(float)); /* the generator's contract */
        for (size_t t = 0; t < T; t++) {
            module_step(rig->f, state, t, rig->x + t * C, out, &one);
            for (size_t c = 0; c < C; c++) worst = fmax(worst, fabs(out[c] - rig->y[t * C + c]));
        }
    }
    free(state);
    free(scratch);
    free(out);
    return worst;
}

TEST(module_step_equals_forward) {
    static const struct {
        const char *name, *kind, *entries;
    } cases[] = {{"softmax", "mixer", NULL},
                 {"mlp", "ffn", NULL},
                 {"linear", "mixer", NULL},
                 {"band", "mixer", NULL},
                 {"fmm", "mixer", NULL},
                 {"fmm", "mixer", "mixer.sparse_ratio=3.5;mixer.kernels=elu,elu_flip"},
                 {"dwconv", "mixer", "mixer.kernel_size=4"},
                 {"gated", "mixer", "mixer.inner.name=fmm"},
                 {"s5", "mixer", "mixer.ssm_size=8;mixer.blocks=2"},
                 {"s5", "mixer", "mixer.ssm_size=4;mixer.activation=half_glu2;mixer.clip_eigs=true"},
                 {"s5", "mixer", "mixer.ssm_size=4;mixer.activation=full_glu;mixer.discretization=bilinear"},
                 {"s5", "mixer", "mixer.ssm_size=6;mixer.conj_sym=false;mixer.activation=half_glu1;mixer.gelu=tanh"},
                 {"s5", "mixer", "mixer.activation=none"},
                 {"hyena", "mixer", NULL},
                 {"ema", "mixer", "mixer.n_dim=5"},
                 {"mega", "mixer", "mixer.z_dim=4;mixer.h_dim=6;mixer.chunk_size=3"},
                 {"mega", "mixer", "mixer.z_dim=4;mixer.chunk_size=3;mixer.rel_pos=rotary"},
                 {"moe", "ffn", "ffn.num_experts=5;ffn.top_k=1;ffn.eval_top_k=3;ffn.activation=gelu"},
                 {"g", "sublayer", "moe.num_experts=4;residual.place=post"},
                 {"seqboat", "mixer", "mixer.z_dim=4;mixer.chunk_size=2;mixer.rel_pos=rotary"},
                 {"seqboat", "mixer", "mixer.z_dim=4;mixer.attention=relu2;mixer.place=post"},
                 {"seqboat", "mixer", "mixer.z_dim=6;mixer.chunk_size=3;mixer.local_pos=true;mixer.attention=laplace"},
                 {"mega", "mixer", "mixer.z_dim=4;mixer.attention=relu2;mixer.rel_pos=rotary;mixer.place=post"},
                 {"mega", "mixer", "mixer.z_dim=6;mixer.attention=laplace;mixer.rel_pos=none;mixer.norm_type=rmsnorm"},
                 {"hyena", "mixer", "mixer.order=3;mixer.filter_order=8"},
                 {"hyena", "mixer", "mixer.filter.name=s5;mixer.filter.ssm_size=4;mixer.filter.activation=half_glu2;mixer.filter.clip_eigs=true"},
                 {"hyena", "mixer", "mixer.filter.name=s5;mixer.short_filter_order=0;mixer.order=3"},
                 {"s", "sublayer", "residual.norm=rmsnorm"},
                 {"f", "sublayer", "residual.place=post;residual.norm=scalenorm"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Config c;
        rig_config(&c);
        c.diag_size = 5;
        c.sparse_ratio = 2.5; /* learned blend weights (random here) in both */
        Rig rig;
        REQUIRE(rig_set_entries(&c, cases[i].entries) == 0 && rig_build(&rig, cases[i].name, cases[i].kind, &c, 1, 75) == 0,
                "build %s", cases[i].name);
        double worst = step_vs_forward(&rig);
        /* the longest chain: input and output projections (C each), the mixing's sums over up to T
         * positions (normaliser and values), the feed-forward's product over F */
        double tol = rounding_tolerance(2.0 * rig.C + 2.0 * rig.T + c.d_inner, max_abs(rig.y, rig.T * rig.C));
        CHECK(worst <= tol, "%s (case %zu): step differs from forward by %.3g (rounding allows %.3g)", cases[i].name,
              i, worst, tol);
        rig_free(&rig);
    }
}

/* Output at t must not move when inputs after t change. */
TEST(softmax_causal_ignores_future) {
    Config c;
    rig_config(&c);
    Rig rig;
    REQUIRE(rig_build(&rig, "softmax", "mixer", &c, 2, 80) == 0, "build");
    rig.ctx.training = false;
    const size_t T = rig.T, C = rig.C, cut = 37;
    module_forward(rig.f, rig.x, rig.y, &rig.ctx);
    float *before = malloc(2 * T * C * sizeof(float));
    memcpy(before, rig.y, 2 * T * C * sizeof(float));
    for (size_t b = 0; b < 2; b++)
        for (size_t t = cut + 1; t < T; t++)
            for (size_t k = 0; k < C; k++) rig.x[(b * T + t) * C + k] += 3.0f;
    module_forward(rig.f, rig.x, rig.y, &rig.ctx);
    int moved = 0;
    for (size_t b = 0; b < 2; b++)
        for (size_t t = 0; t <= cut; t++)
            for (size_t k = 0; k < C; k++) moved += rig.y[(b * T + t) * C + k] != before[(b * T + t) * C + k];
    CHECK(moved == 0, "%d outputs at t <= %zu changed when only later inputs did", moved, cut);
    int changed_after = 0;
    for (size_t k = 0; k < C; k++) changed_after += rig.y[(cut + 1) * C + k] != before[(cut + 1) * C + k];
    CHECK(changed_after > 0, "output after the cut did not change (the test would pass vacuously)");
    free(before);
    rig_free(&rig);
}

/* Oracles of shared/spec/attention.md §3-4 between mixers with the same weights. */

/* Builds mixer `name` with the config and the parameters of `like` where the names match. */
static int rig_like(Rig *rig, const char *name, const Config *c, const Rig *like) {
    if (rig_build(rig, name, "mixer", c, like->B, like->T)) return -1;
    memcpy(rig->x, like->x, like->B * like->T * like->C * sizeof(float));
    for (size_t i = 0; i < rig->ps.count; i++) {
        const ParamSpec *s = &rig->ps.specs[i];
        const ParamSpec *o = params_find(&like->ps, s->name);
        if (o && o->numel == s->numel)
            memcpy(rig->ps.values + s->offset, like->ps.values + o->offset, s->numel * sizeof(float));
    }
    return 0;
}

TEST(fmm_oracles) {
    Config c;
    rig_config(&c);
    c.diag_size = 5;
    snprintf(c.kernels, sizeof c.kernels, "elu");
    Rig lin, fmm;
    REQUIRE(rig_build(&lin, "linear", "mixer", &c, 2, 70) == 0, "build linear");
    c.sparse_ratio = 2.5;
    REQUIRE(rig_like(&fmm, "fmm", &c, &lin) == 0, "build fmm");
    memset(fmm.ps.values + params_find(&fmm.ps, "w_near")->offset, 0, 12 * sizeof(float));
    const size_t n = 2 * 70 * 12;
    lin.ctx.training = fmm.ctx.training = false;
    module_forward(lin.f, lin.x, lin.y, &lin.ctx);
    module_forward(fmm.f, fmm.x, fmm.y, &fmm.ctx);
    /* projections in and out (C each) and the linear attention's sums over T positions (state, normaliser) */
    const double tol = rounding_tolerance(2.0 * 12 + 2.0 * 70, max_abs(lin.y, n));
    CHECK(max_diff(lin.y, fmm.y, n) <= tol, "fmm mode 2 with w_near = 0 differs from linear by %.3g (rounding: %.3g)",
          max_diff(lin.y, fmm.y, n), tol);
    rig_free(&fmm);
    snprintf(c.kernels, sizeof c.kernels, "elu,elu"); /* 0.5 L1 + 0.5 L1 = L1 */
    c.sparse_ratio = 5.5;
    REQUIRE(rig_like(&fmm, "fmm", &c, &lin) == 0, "build fmm");
    fmm.ctx.training = false;
    module_forward(fmm.f, fmm.x, fmm.y, &fmm.ctx);
    CHECK(max_diff(lin.y, fmm.y, n) <= tol, "2 kernels (elu, elu) differ from 1 kernel by %.3g (rounding: %.3g)",
          max_diff(lin.y, fmm.y, n), tol);
    rig_free(&fmm);
    rig_free(&lin);
}

/* softmax keeps q_net (HD, C) and kv_net (2HD, C); the FMM family one
 * qkv_net (3HD, C) interleaved per head: [q_h | k_h | v_h]. */
static void qkv_to_softmax(Rig *soft, const Rig *band, size_t H, size_t d, size_t C) {
    const float *qkv = band->ps.values + params_find(&band->ps, "qkv_net.weight")->offset;
    float *wq = soft->ps.values + params_find(&soft->ps, "q_net.weight")->offset;
    float *wkv = soft->ps.values + params_find(&soft->ps, "kv_net.weight")->offset;
    for (size_t h = 0; h < H; h++)
        for (size_t r = 0; r < d; r++) {
            memcpy(wq + (h * d + r) * C, qkv + (3 * h * d + r) * C, C * sizeof(float));
            memcpy(wkv + (h * d + r) * C, qkv + (3 * h * d + d + r) * C, C * sizeof(float));
            memcpy(wkv + (H * d + h * d + r) * C, qkv + (3 * h * d + 2 * d + r) * C, C * sizeof(float));
        }
}

TEST(band_wide_equals_softmax) {
    for (int causal = 0; causal < 2; causal++) {
        Config c;
        rig_config(&c);
        c.causal = causal;
        c.diag_size = 70;
        Rig band, soft;
        REQUIRE(rig_build(&band, "band", "mixer", &c, 2, 70) == 0, "build band");
        REQUIRE(rig_like(&soft, "softmax", &c, &band) == 0, "build softmax");
        qkv_to_softmax(&soft, &band, 3, 4, 12);
        band.ctx.training = soft.ctx.training = false;
        module_forward(band.f, band.x, band.y, &band.ctx);
        module_forward(soft.f, soft.x, soft.y, &soft.ctx);
        double diff = max_diff(band.y, soft.y, 2 * 70 * 12);
        /* projections (C each), scores over d = 4, softmax normaliser and values over T */
        double tol = rounding_tolerance(2.0 * 12 + 4 + 2.0 * 70, max_abs(soft.y, 2 * 70 * 12));
        CHECK(diff <= tol, "causal %d: band with diag_size >= T differs from softmax by %.3g (rounding: %.3g)", causal,
              diff, tol);
        rig_free(&band);
        rig_free(&soft);
    }
}

/* Dropout masks are keyed by the batch row, so a batch run whole equals its
 * rows run one micro-batch at a time (batch_split), also when the whole
 * batch spans several of the MLP's row chunks. */
TEST(module_output_independent_of_micro_batches) {
    Config c;
    rig_config(&c);
    c.dropout = 0.25;
    Rig whole, part;
    REQUIRE(rig_build(&whole, "mlp", "ffn", &c, 3, 2000) == 0 && rig_build(&part, "mlp", "ffn", &c, 1, 2000) == 0,
            "build");
    memcpy(part.ps.values, whole.ps.values, whole.ps.total * sizeof(float));
    whole.ctx.training = part.ctx.training = true;
    module_forward(whole.f, whole.x, whole.y, &whole.ctx);
    double worst = 0;
    const size_t n = 2000 * whole.C;
    for (size_t b = 0; b < 3; b++) {
        part.ctx.row0 = b;
        memcpy(part.x, whole.x + b * n, n * sizeof(float));
        module_forward(part.f, part.x, part.y, &part.ctx);
        for (size_t i = 0; i < n; i++) worst = fmax(worst, fabs(part.y[i] - whole.y[b * n + i]));
    }
    /* the same two products (C, then F terms) on other row blocks */
    double tol = rounding_tolerance((double)whole.C + c.d_inner, max_abs(whole.y, 3 * n));
    CHECK(worst <= tol, "row by row differs from the whole batch by %.3g (rounding: %.3g)", worst, tol);
    rig_free(&whole);
    rig_free(&part);
}

/* Largest |a - b| over n floats, against the rounding bound of `terms`. */
static bool within_rounding(const char *what, const float *a, const float *b, size_t n, double terms) {
    double diff = max_diff(a, b, n), tol = rounding_tolerance(terms, fmax(max_abs(a, n), max_abs(b, n)));
    if (diff > tol) printf("    %s differ by %.3g (rounding allows %.3g)\n", what, diff, tol);
    return diff <= tol;
}

/* recompute_ffn trades memory for one more fc1 product; nothing else changes. */
TEST(mlp_recompute_equals_keeping_the_hidden_units) {
    Config c;
    rig_config(&c);
    c.dropout = 0.2;
    Rig keep, again;
    REQUIRE(rig_build(&keep, "mlp", "ffn", &c, 2, 2300) == 0, "build");
    c.recompute_ffn = true;
    REQUIRE(rig_build(&again, "mlp", "ffn", &c, 2, 2300) == 0, "build");
    memcpy(again.ps.values, keep.ps.values, keep.ps.total * sizeof(float));
    keep.ctx.training = again.ctx.training = true;
    rig_backward(&keep);
    rig_backward(&again);
    /* the chains: fc1 and fc2 (C + F terms) forward, the same back for dx; the weight gradients also sum
     * over the N = 4600 rows */
    const size_t n = 2 * 2300 * keep.C;
    const double chain = 2.0 * (keep.C + c.d_inner);
    CHECK(within_rounding("outputs", keep.y, again.y, n, chain), "outputs differ");
    CHECK(within_rounding("input gradients", keep.dx, again.dx, n, chain), "input gradients differ");
    for (size_t k = 0; k < keep.ps.count; k++) {
        const ParamSpec *s = &keep.ps.specs[k];
        CHECK(within_rounding(s->name, keep.ps.grads + s->offset, again.ps.grads + s->offset, s->numel,
                              chain + 2.0 * 2300),
              "%s gradients differ", s->name);
    }
    CHECK(again.arena.used < keep.arena.used, "recompute keeps h: arena %zu vs %zu", again.arena.used,
          keep.arena.used);
    rig_free(&keep);
    rig_free(&again);
}

/* Keys come from the module's section, then the flat key, then the table's
 * default; a per-position section wins for its position; unknown keys are
 * named with their origin and the closest key. */
TEST(module_keys_resolve_and_are_checked) {
    Config c;
    rig_config(&c);
    c.diag_size = 7; /* flat */
    Error err = {0};
    ModuleSpec spec = {.cfg = &c, .kind = "mixer", .name = "band", .flat = true, .C_in = 12, .C_out = 12};
    snprintf(spec.section[1], sizeof spec.section[1], "mixer");
    Module *m = module_build(&spec, &err);
    REQUIRE(m, "%s", err.msg);
    CHECK(module_state_size(m, 100) == 7 * 3 * 12, "the flat diag_size feeds the band: state %zu", module_state_size(m, 100));
    module_free(m);
    REQUIRE(config_set(&c, "mixer.diag_size", "4", "cfg.yaml:3", &err) == 0, "%s", err.msg);
    REQUIRE(config_set(&c, "blocks.2.mixer.diag_size", "9", "cfg.yaml:8", &err) == 0, "%s", err.msg);
    REQUIRE((m = module_build(&spec, &err)), "%s", err.msg);
    CHECK(module_state_size(m, 100) == 4 * 3 * 12, "the section wins over the flat key");
    module_free(m);
    snprintf(spec.section[0], sizeof spec.section[0], "blocks.2.mixer");
    REQUIRE((m = module_build(&spec, &err)), "%s", err.msg);
    CHECK(module_state_size(m, 100) == 9 * 3 * 12, "the position's section wins");
    module_free(m);
    spec.flat = false; /* a child: no flat keys */
    spec.section[0][0] = 0;
    snprintf(spec.section[1], sizeof spec.section[1], "other");
    REQUIRE((m = module_build(&spec, &err)), "%s", err.msg);
    CHECK(module_state_size(m, 100) == 5 * 3 * 12, "without its section and flat keys: the default 5");
    module_free(m);
    REQUIRE(config_set(&c, "mixer.diag_sise", "4", "cfg.yaml:4", &err) == 0, "%s", err.msg);
    snprintf(spec.section[1], sizeof spec.section[1], "mixer");
    CHECK(!module_build(&spec, &err) && strstr(err.msg, "unknown key 'mixer.diag_sise' (cfg.yaml:4)") &&
              strstr(err.msg, "did you mean 'mixer.diag_size'"),
          "%s", err.msg);
    rig_config(&c);
    REQUIRE(config_set(&c, "mixer.n_head", "5", "cfg.yaml:2", &err) == 0, "%s", err.msg);
    CHECK(!module_build(&spec, &err) && strstr(err.msg, "not divisible by n_head 5"), "%s", err.msg);
    rig_config(&c);
    REQUIRE(config_set(&c, "mixer.dropatt", "1.5", "--mixer.dropatt", &err) == 0, "%s", err.msg);
    CHECK(!module_build(&spec, &err) && strstr(err.msg, "key 'mixer.dropatt' (--mixer.dropatt) must be in [0, 0.999]"),
          "%s", err.msg);
}

/* ---- the per-call context: auxiliary losses and statistics reach the
 * modules through their parents (a test module, not in the registry) ---- */

/* y = x; an auxiliary loss w * mean(x^2) and a statistic mean(x). */
static void probe_forward(Module *m, Frame *f, const float *x, float *y, const Ctx *c) {
    (void)m, (void)f;
    const size_t n = c->B * c->T * m->C_in;
    double sq = 0, s = 0;
    for (size_t i = 0; i < n; i++) y[i] = x[i], sq += (double)x[i] * x[i], s += x[i];
    if (c->aux) c->aux->sum += 0.5 * sq / (double)n;
    ctx_stat(c, "mean", s / (double)n);
    ((const float **)f->data)[0] = x;
}
static void probe_backward(Module *m, Frame *f, const float *dy, float *dx, const Ctx *c) {
    const size_t n = c->B * c->T * m->C_in;
    const float *x = ((const float **)f->data)[0];
    for (size_t i = 0; i < n; i++) dx[i] = dy[i] + (c->aux ? 0.5f * c->aux->scale * 2.0f * x[i] / (float)n : 0.0f);
}
static const ModuleOps probe_ops = {.name = "probe", .kind = "mixer", .size = sizeof(Module),
                                    .frame_bytes = sizeof(float *), .forward = probe_forward,
                                    .backward = probe_backward};

typedef struct {
    Rig *rig;
    AuxLoss *aux;
} AuxCtx;

/* sum r y plus the auxiliary loss as the objective adds it (scale * sum) */
static double aux_loss(void *ctx, double *abs_sum) {
    AuxCtx *a = ctx;
    a->aux->sum = 0.0;
    double l = rig_loss(a->rig, abs_sum);
    return l + a->aux->scale * a->aux->sum;
}

TEST(module_context_carries_aux_losses_and_statistics) {
    Config c;
    rig_config(&c);
    Rig rig;
    REQUIRE(rig_build(&rig, "s", "sublayer", &c, 2, 5) == 0, "build");
    Module *probe = calloc(1, sizeof(Module));
    probe->ops = &probe_ops;
    probe->C_in = probe->C_out = rig.C;
    module_free(rig.m->children[0]); /* the sublayer's softmax gives way to the probe */
    rig.m->children[0] = probe;
    frame_free(rig.f);
    Error err = {0};
    REQUIRE((rig.f = frame_create(rig.m, "blocks.0", &err)), "%s", err.msg);
    Arena count = arena_counting();
    module_layout(rig.f, 2, 5, &count);
    arena_free(&rig.arena);
    REQUIRE(arena_alloc(&rig.arena, count.used, &err) == 0, "%s", err.msg);
    module_layout(rig.f, 2, 5, &rig.arena);
    AuxLoss aux = {.scale = 0.5f};
    Stats stats = {0};
    rig.ctx.aux = &aux;
    rig.ctx.stats = &stats;
    rig.ctx.training = false;
    rig_backward(&rig);
    CHECK(aux.sum > 0 && stats.n == 1 && !strcmp(stats.name[0], "blocks.0.mixer.mean") && stats.count[0] == 1,
          "aux %.3g, %d stats ('%s')", aux.sum, stats.n, stats.n ? stats.name[0] : "");
    float *dx = malloc(2 * 5 * rig.C * sizeof(float));
    memcpy(dx, rig.dx, 2 * 5 * rig.C * sizeof(float));
    AuxCtx a = {&rig, &aux};
    CHECK(gradcheck("dx with the auxiliary loss", rig.x, dx, 2 * 5 * rig.C, aux_loss, &a, 1e-2f, 40, NULL) == 0,
          "the auxiliary loss's gradient");
    free(dx);
    rig_free(&rig);
}

/* SeqBoat's truncated normal (spec mega-seqboat.md §1.4): N(0, std^2) redrawn
 * until inside [-2 std, 2 std], so nothing lies outside, the spread is
 * 0.8796 std and the bounds carry no pile of clipped values; seeded. */
TEST(trunc_normal_is_redrawn_not_clipped) {
    enum { N = 200000 };
    float *w = malloc(N * sizeof *w), *again = malloc(N * sizeof *again);
    const float std = 0.3f;
    init_trunc_normal(w, N, std, 7, 3, 1);
    init_trunc_normal(again, N, std, 7, 3, 1);
    double sum = 0.0, sq = 0.0;
    size_t outside = 0, near_bound = 0;
    for (size_t i = 0; i < N; i++) {
        sum += w[i], sq += (double)w[i] * w[i];
        outside += fabsf(w[i]) > 2.0f * std * (1.0f + 1e-6f);
        near_bound += fabsf(w[i]) > 1.99f * std;
    }
    const double mean = sum / N, sd = sqrt(sq / N - mean * mean);
    /* N(0,1) conditioned on |z| <= 2: std 0.879626; P(1.99 < |z| <= 2) = 2 (Phi(2) - Phi(1.99)) / 0.9545 = 0.00113 */
    CHECK(outside == 0 && fabs(mean) < 0.003 && fabs(sd / std - 0.879626) < 0.004, "outside %zu, mean %.5f, sd/std %.5f",
          outside, mean, sd / std);
    CHECK((double)near_bound / N < 0.0025, "%.5f of the draws at the bounds (clipping piles mass there)",
          (double)near_bound / N);
    CHECK(!memcmp(w, again, N * sizeof *w), "the same stream gives other values");
    free(w);
    free(again);
}
