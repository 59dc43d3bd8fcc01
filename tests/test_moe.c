/* test_moe.c — the mixture-of-experts feed-forward (src/ffn/moe.c) against
 * the oracles of spec moe-brainformer.md §4.4: finite-difference gradients
 * with the routing away from ties (the top-k choice is a step function),
 * one expert = the dense MLP, all experts = the softmax mixture, token order,
 * an unpicked expert's zero gradient, the fastmoe init, the smoedropout
 * policy (fixed gate, the k schedule) and the balance loss's gradient. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../src/model/model.h"
#include "../src/train/optim.h"
#include "gradcheck.h"
#include "rig.h"
#include "test.h"
#include "tolerance.h"

static int build(Rig *r, const char *entries, size_t B, size_t T) {
    Config c;
    rig_config(&c);
    if (rig_set_entries(&c, entries)) return -1;
    return rig_build(r, "moe", "ffn", &c, B, T);
}

/* The gate's logits of token t, in double. */
static void logits_of(const Rig *r, size_t t, size_t E, double *l) {
    const float *wg = rig_param(r, "gate.weight"), *bg = rig_param(r, "gate.bias");
    for (size_t e = 0; e < E; e++) {
        l[e] = bg[e];
        for (size_t c = 0; c < r->C; c++) l[e] += (double)wg[e * r->C + c] * r->x[t * r->C + c];
    }
}

/* The smallest gap over the tokens between the k-th and (k+1)-th largest logit. */
static double routing_margin(const Rig *r, size_t E, size_t k) {
    double worst = INFINITY, l[64];
    for (size_t t = 0; t < r->B * r->T && k < E; t++) {
        logits_of(r, t, E, l);
        for (size_t i = 1; i < E; i++) /* insertion sort, descending */
            for (size_t j = i; j > 0 && l[j] > l[j - 1]; j--) {
                double s = l[j];
                l[j] = l[j - 1], l[j - 1] = s;
            }
        worst = fmin(worst, l[k - 1] - l[k]);
    }
    return worst;
}

TEST(moe_gradients) {
    static const struct {
        const char *label, *entries;
        size_t E, k;
        float h;
    } cases[] = {
        {"E 4, top 2, gelu", "ffn.num_experts=4;ffn.top_k=2;ffn.activation=gelu", 4, 2, 1e-2f},
        {"E 3, top 1, relu", "ffn.num_experts=3;ffn.top_k=1", 3, 1, 1e-3f},
        {"E 4, top 2, fixed dropout masks inside and after", "ffn.num_experts=4;ffn.top_k=2;ffn.activation=gelu;"
         "ffn.dropout=0.25;ffn.output_dropout=0.1", 4, 2, 1e-2f},
        {"E 3, every expert, silu", "ffn.num_experts=3;ffn.top_k=3;ffn.activation=silu", 3, 3, 1e-2f},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        Rig r;
        REQUIRE(build(&r, cases[i].entries, 2, 5) == 0, "%s: build", cases[i].label);
        /* a perturbation of h moves a logit by at most about 3 h (|x| and |w| stay below 3): stay 3x away */
        const double margin = routing_margin(&r, cases[i].E, cases[i].k);
        REQUIRE(margin > 3 * 3 * cases[i].h, "%s: routing margin %.3g: the check would cross a tie", cases[i].label,
                margin);
        const int failures = rig_gradcheck(&r, 40, cases[i].h);
        CHECK(failures == 0, "%s: %d gradient tensors off", cases[i].label, failures);
        rig_free(&r);
    }
}

/* §4.4.1: one expert with k = 1 is the dense MLP with its weights. */
TEST(moe_one_expert_is_the_dense_mlp) {
    Config c;
    rig_config(&c);
    snprintf(c.activation, sizeof c.activation, "relu");
    Rig moe, mlp;
    REQUIRE(build(&moe, "ffn.num_experts=1;ffn.top_k=1;ffn.eval_top_k=1", 2, 6) == 0 &&
                rig_build(&mlp, "mlp", "ffn", &c, 2, 6) == 0, "build");
    const size_t F = (size_t)c.d_inner, C = moe.C, n = 2 * 6 * C;
    memcpy(rig_param(&mlp, "fc1.weight"), rig_param(&moe, "experts.fc1.weight"), F * C * sizeof(float));
    memcpy(rig_param(&mlp, "fc1.bias"), rig_param(&moe, "experts.fc1.bias"), F * sizeof(float));
    memcpy(rig_param(&mlp, "fc2.weight"), rig_param(&moe, "experts.fc2.weight"), C * F * sizeof(float));
    memcpy(rig_param(&mlp, "fc2.bias"), rig_param(&moe, "experts.fc2.bias"), C * sizeof(float));
    memcpy(mlp.x, moe.x, n * sizeof(float));
    module_forward(moe.f, moe.x, moe.y, &moe.ctx);
    module_forward(mlp.f, mlp.x, mlp.y, &mlp.ctx);
    double worst = 0;
    for (size_t i = 0; i < n; i++) worst = fmax(worst, fabs(moe.y[i] - mlp.y[i]));
    const double tol = rounding_tolerance(C + F + 2, max_abs(mlp.y, n));
    CHECK(worst <= tol, "differs from the MLP by %.3g (rounding %.3g)", worst, tol);
    rig_free(&moe);
    rig_free(&mlp);
}

/* One expert's output for token t, in double: fc2(act(fc1 x)). */
static void expert_output(const Rig *r, size_t e, size_t t, size_t F, double *y) {
    const size_t C = r->C;
    const float *w1 = rig_param(r, "experts.fc1.weight") + e * F * C, *b1 = rig_param(r, "experts.fc1.bias") + e * F;
    const float *w2 = rig_param(r, "experts.fc2.weight") + e * C * F, *b2 = rig_param(r, "experts.fc2.bias") + e * C;
    double h[64];
    for (size_t f = 0; f < F; f++) {
        double s = b1[f];
        for (size_t c = 0; c < C; c++) s += (double)w1[f * C + c] * r->x[t * C + c];
        h[f] = s > 0 ? s : 0;
    }
    for (size_t c = 0; c < C; c++) {
        double s = b2[c];
        for (size_t f = 0; f < F; f++) s += (double)w2[c * F + f] * h[f];
        y[c] = s;
    }
}

/* §4.4.2: k = E is the softmax-weighted sum of every expert. */
TEST(moe_every_expert_is_the_softmax_mixture) {
    Rig r;
    REQUIRE(build(&r, "ffn.num_experts=3;ffn.top_k=3", 2, 5) == 0, "build");
    const size_t E = 3, F = (size_t)r.cfg.d_inner, C = r.C, N = r.B * r.T;
    module_forward(r.f, r.x, r.y, &r.ctx);
    double worst = 0, l[3], y[64], want[64];
    for (size_t t = 0; t < N; t++) {
        logits_of(&r, t, E, l);
        double most = fmax(l[0], fmax(l[1], l[2])), z = 0;
        for (size_t e = 0; e < E; e++) z += exp(l[e] - most);
        memset(want, 0, sizeof want);
        for (size_t e = 0; e < E; e++) {
            expert_output(&r, e, t, F, y);
            for (size_t c = 0; c < C; c++) want[c] += exp(l[e] - most) / z * y[c];
        }
        for (size_t c = 0; c < C; c++) worst = fmax(worst, fabs(r.y[t * C + c] - want[c]));
    }
    const double tol = rounding_tolerance(2 * (C + F) + E, max_abs(r.y, N * C));
    CHECK(worst <= tol, "differs from the mixture by %.3g (rounding %.3g)", worst, tol);
    rig_free(&r);
}

/* §4.4.3: the sort leaves each token's output as it was in any order. */
TEST(moe_token_order_does_not_matter) {
    Rig r;
    REQUIRE(build(&r, "ffn.num_experts=4;ffn.top_k=2", 3, 7) == 0, "build");
    const size_t N = r.B * r.T, C = r.C;
    module_forward(r.f, r.x, r.y, &r.ctx);
    float *before = malloc(N * C * sizeof(float)), *x = malloc(N * C * sizeof(float));
    memcpy(before, r.y, N * C * sizeof(float));
    memcpy(x, r.x, N * C * sizeof(float));
    for (size_t t = 0; t < N; t++) memcpy(r.x + t * C, x + (N - 1 - t) * C, C * sizeof(float)); /* reversed */
    module_forward(r.f, r.x, r.y, &r.ctx);
    double worst = 0;
    for (size_t t = 0; t < N; t++)
        for (size_t c = 0; c < C; c++) worst = fmax(worst, fabs(r.y[t * C + c] - before[(N - 1 - t) * C + c]));
    const double tol = rounding_tolerance(C + r.cfg.d_inner, max_abs(before, N * C));
    CHECK(worst <= tol, "reordered tokens moved by %.3g (rounding %.3g)", worst, tol);
    free(before), free(x);
    rig_free(&r);
}

/* §4.4.4: an expert no token picks gets exactly zero gradient; the others do not. */
TEST(moe_unpicked_expert_gets_no_gradient) {
    Rig r;
    REQUIRE(build(&r, "ffn.num_experts=4;ffn.top_k=2", 2, 6) == 0, "build");
    rig_param(&r, "gate.bias")[3] = -100.0f;
    rig_backward(&r);
    const size_t F = (size_t)r.cfg.d_inner, C = r.C;
    const char *names[] = {"experts.fc1.weight", "experts.fc2.weight", "experts.fc1.bias", "experts.fc2.bias"};
    const size_t sizes[] = {F * C, C * F, F, C};
    for (int k = 0; k < 4; k++) {
        const float *g = rig_grad(&r, names[k]);
        double unpicked = 0, picked = 0;
        for (size_t i = 0; i < sizes[k]; i++) unpicked += fabs(g[3 * sizes[k] + i]), picked += fabs(g[i]);
        CHECK(unpicked == 0.0, "%s: expert 3 got gradient %.3g", names[k], unpicked);
        CHECK(picked > 0.0, "%s: expert 0 got none either (the test shows nothing)", names[k]);
    }
    CHECK(rig_grad(&r, "gate.bias")[3] == 0.0f, "the unpicked logit got gradient");
    rig_free(&r);
}

/* §4.1: fastmoe's Kaiming-uniform on the 3-D tensor, U(+-1/sqrt(out in)); zero biases; the gate nn.Linear's. */
TEST(moe_fastmoe_init) {
    Rig r;
    REQUIRE(build(&r, "ffn.num_experts=8;ffn.d_inner=64", 1, 2) == 0, "build");
    module_init(r.m, 11);
    const size_t E = 8, F = 64, C = r.C;
    const double bound = 1.0 / sqrt((double)(F * C)), gate_bound = 1.0 / sqrt((double)C);
    const struct {
        const char *name;
        size_t n;
        double bound;
    } w[] = {{"experts.fc1.weight", E * F * C, bound}, {"experts.fc2.weight", E * C * F, bound},
             {"gate.weight", E * C, gate_bound}};
    for (int k = 0; k < 3; k++) {
        const float *v = rig_param(&r, w[k].name);
        double most = 0, sq = 0;
        for (size_t i = 0; i < w[k].n; i++) most = fmax(most, fabs(v[i])), sq += (double)v[i] * v[i];
        const double std = sqrt(sq / w[k].n);
        CHECK(most <= w[k].bound && most > 0.95 * w[k].bound, "%s: max |w| %.4g, bound %.4g", w[k].name, most,
              w[k].bound);
        CHECK(fabs(std - w[k].bound / sqrt(3.0)) < 0.1 * w[k].bound / sqrt(3.0), "%s: std %.4g, U(+-b) has %.4g",
              w[k].name, std, w[k].bound / sqrt(3.0));
    }
    double biases = 0;
    for (size_t i = 0; i < E * F; i++) biases += fabs(rig_param(&r, "experts.fc1.bias")[i]);
    for (size_t i = 0; i < E * C; i++) biases += fabs(rig_param(&r, "experts.fc2.bias")[i]);
    CHECK(biases == 0.0, "expert biases are not zero");
    rig_free(&r);
}

/* §4.3: smoedropout keeps the gate at its init (the optimizer's rules leave
 * it untrained), and with the schedule k grows from k_min to k_max over
 * max_step, moving only at evaluation intervals: k = round(2 s / 100) + 2 at
 * the interval's first step s reaches 4 at s = 80 (3 from 30 to 79);
 * evaluation uses eval_top_k. */
TEST(moe_smoedropout_policy) {
    Rig r;
    REQUIRE(build(&r, "ffn.num_experts=4;ffn.top_k=2;ffn.policy=smoedropout;ffn.smoedropout_apply_schedule=true;"
                      "ffn.schedule_k_min=2;ffn.schedule_k_max=4;max_step=100;eval_interval=10", 2, 8) == 0, "build");
    Optimizer o;
    Error err = {0};
    REQUIRE(optim_build(&o, &r.cfg, &r.ps, &err) == 0, "%s", err.msg);
    for (size_t k = 0; k < r.ps.count; k++) {
        const bool gate = !strncmp(r.ps.specs[k].name, "gate.", 5);
        CHECK(o.rules[k].trainable == !gate, "%s: trainable %d", r.ps.specs[k].name, o.rules[k].trainable);
    }
    optim_free(&o);
    Stats stats;
    r.ctx.stats = &stats;
    r.ctx.path = "moe";
    /* every expert picked by every token gives each exactly a quarter of the choices */
    const struct {
        bool training;
        uint64_t step;
        bool all;
    } at[] = {{true, 0, false}, {true, 79, false}, {true, 80, true}, {true, 99, true}, {false, 99, false}};
    for (size_t i = 0; i < sizeof at / sizeof *at; i++) {
        memset(&stats, 0, sizeof stats);
        r.ctx.training = at[i].training;
        r.ctx.step = at[i].step;
        module_forward(r.f, r.x, r.y, &r.ctx);
        bool all = stats.n == 4;
        for (int e = 0; e < stats.n; e++) all &= stats.sum[e] == 0.25;
        CHECK(all == at[i].all, "training %d, step %llu: every expert %s", at[i].training,
              (unsigned long long)at[i].step, all ? "picked by every token" : "not picked by every token");
    }
    rig_free(&r);
}

/* The balance loss's gradient: finite differences of sum r y + scale * aux. */
static double loss_with_aux(void *ctx, double *abs_sum) {
    Rig *r = ctx;
    r->ctx.aux->sum = 0;
    module_forward(r->f, r->x, r->y, &r->ctx);
    return weighted_sum(r->y, r->r, r->B * r->T * r->C, abs_sum) + r->ctx.aux->scale * r->ctx.aux->sum;
}

TEST(moe_balance_loss_gradient) {
    Rig r;
    REQUIRE(build(&r, "ffn.num_experts=3;ffn.top_k=1;ffn.balance_loss=5", 2, 6) == 0, "build");
    AuxLoss aux = {.scale = 0.5f};
    r.ctx.aux = &aux;
    REQUIRE(routing_margin(&r, 3, 1) > 0.1, "routing margin %.3g", routing_margin(&r, 3, 1));
    rig_backward(&r);
    CHECK(aux.sum > 0, "no balance loss recorded");
    const ParamSpec *wg = params_find(&r.ps, "gate.weight");
    float *analytic = malloc(wg->numel * sizeof(float)), *dx = malloc(r.B * r.T * r.C * sizeof(float));
    memcpy(analytic, r.ps.grads + wg->offset, wg->numel * sizeof(float));
    memcpy(dx, r.dx, r.B * r.T * r.C * sizeof(float));
    CHECK(gradcheck("gate.weight", r.ps.values + wg->offset, analytic, wg->numel, loss_with_aux, &r, 1e-3f, 40, NULL) ==
              0, "the gate's gradient misses the balance loss");
    CHECK(gradcheck("dx", r.x, dx, r.B * r.T * r.C, loss_with_aux, &r, 1e-3f, 40, NULL) == 0,
          "dx misses the balance loss");
    /* the term is visible: without it the gate's gradient differs */
    r.ctx.aux = NULL;
    rig_backward(&r);
    double moved = 0, scale = 0;
    for (size_t i = 0; i < wg->numel; i++)
        moved = fmax(moved, fabs(analytic[i] - r.ps.grads[wg->offset + i])), scale = fmax(scale, fabs(analytic[i]));
    CHECK(moved > 1e-2 * scale, "the balance loss moves the gate's gradient by only %.3g of %.3g", moved, scale);
    free(analytic), free(dx);
    rig_free(&r);
}

/* §5.3: the parameter count of a Brainformer model whose layers use every
 * letter (enwik8_smoe's sgfgfg) is the original's formula: per layer the
 * attention 4D^2, its spans H, the dense FF 2DI + I + D, the MoE E(2DI + I +
 * D) + DE + E, three LayerNorms 6D; the embedding VD, the untied head VD +
 * V, key_pe d S (one for every layer). */
TEST(moe_brainformer_parameter_count) {
    Config c;
    config_defaults(&c);
    Error err = {0};
    const char *keys[][2] = {{"arch", "sgfgfg.sgfgfg"}, {"arch_grammar", "brainformer"}, {"mixer", "adaptive_span"},
                             {"mixer.attn_span", "32"}, {"moe.num_experts", "4"}, {"d_model", "16"},
                             {"n_head", "2"}, {"d_inner", "8"}, {"norm", "post"}, {"pos", "none"},
                             {"tie_weight", "false"}, {"head_bias", "true"}, {"tgt_len", "8"}};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        REQUIRE(config_set(&c, keys[i][0], keys[i][1], "test", &err) == 0, "%s", err.msg);
    REQUIRE(config_finalize(&c, &err) == 0, "%s", err.msg);
    Model m;
    REQUIRE(model_build(&m, &c, 11, &err) == 0, "%s", err.msg);
    const size_t D = 16, I = 8, E = 4, H = 2, S = 32, V = 11, d = D / H, layers = 2;
    const size_t ff = 2 * D * I + I + D, layer = 4 * D * D + H + ff + E * ff + D * E + E + 6 * D;
    const size_t want = layers * layer + V * D + V * D + V + d * S;
    CHECK(m.params.total == want, "%zu parameters, the formula gives %zu", m.params.total, want);
    model_free(&m);
}
