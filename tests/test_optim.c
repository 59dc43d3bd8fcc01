/* test_optim.c — learning-rate schedules against their formulas, and
 * clipping against torch.nn.utils.clip_grad_norm_'s rule. */
#include <math.h>
#include <string.h>

#include "../src/train/optim.h"
#include "test.h"

static Config schedule_config(const char *name, int warmup, long max_step) {
    Config c;
    config_defaults(&c);
    snprintf(c.scheduler, sizeof c.scheduler, "%s", name);
    c.lr = 2.5e-4;
    c.min_lr = 0.0;
    c.warmup_step = warmup;
    c.max_step = max_step;
    return c;
}

TEST(schedule_cosine_txl_matches_the_transformer_xl_trainer) {
    Config c = schedule_config("cosine_txl", 2000, 500000);
    c.warmup_first_step_full_lr = true;
    CHECK(schedule_lr(&c, 0) == 2.5e-4, "update 1 runs at the full lr (the original's quirk)");
    CHECK(fabs(schedule_lr(&c, 1) - 2.5e-4 / 2000) < 1e-15, "update 2 at lr * 1/2000");
    CHECK(fabs(schedule_lr(&c, 1999) - 2.5e-4 * 1999 / 2000) < 1e-15, "last warm-up update");
    double want = 0.5 * 2.5e-4 * (1 + cos(M_PI * 2000.0 / 500000.0)); /* not shifted by the warm-up */
    CHECK(fabs(schedule_lr(&c, 2000) - want) < 1e-15, "first cosine update %.9g vs %.9g", schedule_lr(&c, 2000), want);
    CHECK(fabs(schedule_lr(&c, 500000)) < 1e-15, "ends at eta_min 0");
    c.warmup_first_step_full_lr = false;
    CHECK(fabs(schedule_lr(&c, 0) - 2.5e-4 / 2000) < 1e-15, "without the quirk update 1 warms up");
}

/* The Nystromformer pretraining schedule (tasks-fmm-nystrom.md B.4):
 * OneCycleLR(max_lr 1e-4, pct_start 0.01, linear) over 500,000 updates, from
 * 4e-6 up to 1e-4 at update 4,999, down to 4e-10 at update 499,999; beta1
 * 0.95 -> 0.85 at the peak -> 0.95 (the exact match with PyTorch's own
 * scheduler is checked by tests/ref/golden_nystrom.py and the golden file). */
TEST(schedule_one_cycle_matches_the_nystromformer_trainer) {
    Config c = schedule_config("one_cycle", 0, 500000);
    c.lr = 1e-4;
    c.pct_start = 0.01;
    const struct {
        uint64_t s;
        double lr, beta1;
    } points[] = {{0, 4e-6, 0.95},
                  {2499, 4e-6 + (1e-4 - 4e-6) * 2499.0 / 4999.0, 0.95 - 0.1 * 2499.0 / 4999.0},
                  {4999, 1e-4, 0.85},
                  {252499, 1e-4 + (4e-10 - 1e-4) * 0.5, 0.90},
                  {499999, 4e-10, 0.95}};
    for (size_t i = 0; i < sizeof points / sizeof *points; i++) {
        const double lr = schedule_lr(&c, points[i].s), b1 = schedule_beta1(&c, points[i].s);
        CHECK(fabs(lr - points[i].lr) <= 1e-12 * points[i].lr + 1e-20, "update %llu: lr %.12g, want %.12g",
              (unsigned long long)points[i].s, lr, points[i].lr);
        CHECK(fabs(b1 - points[i].beta1) < 1e-12, "update %llu: beta1 %.12g, want %.12g",
              (unsigned long long)points[i].s, b1, points[i].beta1);
    }
    c.cycle_momentum = false;
    CHECK(schedule_beta1(&c, 4999) == c.beta1, "without cycle_momentum beta1 is the config's");
}

/* The S5/Hyena trainer's optax schedule at the associative-recall values
 * (spec ssm-hyena.md §1.12: warm-up 5,000 of 50,000; zero from 45,000). */
TEST(schedule_cosine_optax_matches_the_s5_trainer) {
    Config c = schedule_config("cosine_optax", 5000, 50000);
    c.lr = 1e-3;
    CHECK(schedule_lr(&c, 0) == 0.0, "update 0 runs at lr 0");
    CHECK(fabs(schedule_lr(&c, 2500) - 5e-4) < 1e-15, "half the warm-up: lr / 2");
    CHECK(fabs(schedule_lr(&c, 5000) - 1e-3) < 1e-15, "the peak at the end of the warm-up");
    CHECK(fabs(schedule_lr(&c, 25000) - 5e-4) < 1e-12, "half way through the 40,000-step cosine: %.9g",
          schedule_lr(&c, 25000));
    CHECK(schedule_lr(&c, 44999) > 0.0 && schedule_lr(&c, 45000) == 0.0 && schedule_lr(&c, 49999) == 0.0,
          "zero from max_step - warmup on");
}

TEST(schedule_cosine_and_inv_sqrt) {
    Config c = schedule_config("cosine", 10, 110);
    c.min_lr = 1e-5;
    CHECK(fabs(schedule_lr(&c, 0) - 2.5e-5) < 1e-15, "warm-up (s+1)/w");
    CHECK(fabs(schedule_lr(&c, 10) - 2.5e-4) < 1e-15, "peak after warm-up");
    CHECK(fabs(schedule_lr(&c, 60) - (1e-5 + 0.5 * (2.4e-4))) < 1e-12, "half way");
    c = schedule_config("inv_sqrt", 16, 100);
    CHECK(fabs(schedule_lr(&c, 63) - 2.5e-4 * 0.5) < 1e-15, "lr * sqrt(w / (s+1))");
    c = schedule_config("constant", 0, 100);
    CHECK(schedule_lr(&c, 57) == 2.5e-4, "constant");
}

TEST(clip_follows_torch_rule) {
    ParamSet ps;
    params_init(&ps);
    float *w, *g;
    params_add(&ps, "w", &w, &g, GROUP_LINEAR, 1, (size_t)4);
    Error err;
    REQUIRE(params_allocate(&ps, &err) == 0, "%s", err.msg);
    float grads[4] = {3, 4, 0, 0};
    memcpy(g, grads, sizeof grads);
    double norm = optim_clip(&ps, 1.0);
    CHECK(fabs(norm - 5.0) < 1e-12, "norm %.9g", norm);
    CHECK(fabsf(g[0] - 3.0f / (5.0f + 1e-6f)) < 1e-7f, "scaled by clip / (norm + 1e-6)");
    memcpy(g, grads, sizeof grads);
    optim_clip(&ps, 10.0);
    CHECK(g[1] == 4.0f, "below the limit: untouched");
    params_free(&ps);
}

/* ---- parameter rules: decay groups, lr_groups patterns, frozen parameters and buffers ---- */

typedef struct {
    ParamSet ps;
    float *w, *dw, *b, *db, *e, *de, *buf;
} RuleRig;

static int rule_rig(RuleRig *r) {
    params_init(&r->ps);
    params_add(&r->ps, "blocks.0.mixer.ssm.A", &r->w, &r->dw, GROUP_OTHER, 1, (size_t)3);
    params_add(&r->ps, "blocks.0.ffn.fc1.bias", &r->b, &r->db, GROUP_BIAS, 1, (size_t)3);
    params_add(&r->ps, "embed.weight", &r->e, &r->de, GROUP_EMBEDDING, 1, (size_t)3);
    params_add_buffer(&r->ps, "blocks.0.norm.running_mean", &r->buf, 1, (size_t)3);
    Error err;
    if (params_allocate(&r->ps, &err)) return -1;
    for (size_t i = 0; i < r->ps.total; i++) r->ps.values[i] = 1.0f, r->ps.grads[i] = 0.5f;
    return 0;
}

TEST(optim_rules_from_decay_groups_and_lr_groups) {
    RuleRig r;
    REQUIRE(rule_rig(&r) == 0, "rig");
    Config c;
    config_defaults(&c);
    c.weight_decay = 0.1;
    c.lr = 4e-3;
    Error err = {0};
    REQUIRE(config_set(&c, "lr_groups.*.ssm.*.lr", "1e-3", "cfg.yaml:5", &err) == 0 &&
                config_set(&c, "lr_groups.*.ssm.*.weight_decay", "0", "cfg.yaml:5", &err) == 0 &&
                config_set(&c, "lr_groups.embed.*.trainable", "false", "cfg.yaml:6", &err) == 0,
            "%s", err.msg);
    Optimizer o;
    REQUIRE(optim_build(&o, &c, &r.ps, &err) == 0, "%s", err.msg);
    CHECK(o.rules[0].lr_scale == 0.25f && o.rules[0].weight_decay == 0.0f && o.rules[0].trainable, "ssm rule");
    CHECK(o.rules[1].lr_scale == 1.0f && o.rules[1].weight_decay == 0.0f, "bias: not in decay_groups");
    CHECK(!o.rules[2].trainable && r.ps.specs[2].frozen, "embedding frozen");
    CHECK(!o.rules[3].trainable, "a buffer never trains");
    const char *name;
    CHECK(optim_state(&o, &r.ps, 2, 0, &name) == NULL && optim_state(&o, &r.ps, 0, 1, &name) && !strcmp(name, "exp_avg_sq"),
          "state only for trainable parameters");
    /* the gradient norm leaves frozen parameters and buffers out: 6 trainable grads of 0.5 */
    CHECK(fabs(optim_clip(&r.ps, 0.0) - sqrt(6 * 0.25)) < 1e-12, "norm %.9g", optim_clip(&r.ps, 0.0));
    optim_step(&o, &r.ps, 4e-3, 1);
    /* Adam's first step moves each trainable element by its lr (m / sqrt(v) = 1) */
    CHECK(fabsf(r.w[0] - (1.0f - 1e-3f)) < 1e-7f, "ssm moved by its own lr: %.9g", r.w[0]);
    CHECK(fabsf(r.b[0] - (1.0f - 4e-3f)) < 1e-7f, "bias moved by the base lr: %.9g", r.b[0]);
    CHECK(r.e[0] == 1.0f && r.buf[0] == 1.0f, "frozen and buffer untouched");
    optim_free(&o);
    REQUIRE(config_set(&c, "lr_groups.*.sm.*.lr", "1e-3", "cfg.yaml:9", &err) == 0, "%s", err.msg);
    CHECK(optim_build(&o, &c, &r.ps, &err) == -1 && strstr(err.msg, "(cfg.yaml:9)") && strstr(err.msg, "matches no parameter"),
          "%s", err.msg);
    config_defaults(&c);
    REQUIRE(config_set(&c, "lr_groups.embed.*.momentum", "0.5", "cfg.yaml:2", &err) == 0, "%s", err.msg);
    CHECK(optim_build(&o, &c, &r.ps, &err) == -1 && strstr(err.msg, "lr, weight_decay or trainable"), "%s", err.msg);
    params_free(&r.ps);
}

/* fairseq's linear warm-up from warmup_init_lr and linear decay to min_lr (MEGA, SeqBoat). */
TEST(schedule_linear_matches_fairseq) {
    Config c = schedule_config("linear", 10, 110);
    c.warmup_init_lr = 1e-7;
    CHECK(schedule_lr(&c, 0) == 1e-7, "update 0 at warmup_init_lr");
    CHECK(fabs(schedule_lr(&c, 5) - (1e-7 + (2.5e-4 - 1e-7) * 0.5)) < 1e-15, "half the warm-up");
    CHECK(fabs(schedule_lr(&c, 10) - 2.5e-4) < 1e-15, "peak at the end of the warm-up");
    CHECK(fabs(schedule_lr(&c, 60) - 1.25e-4) < 1e-15, "half way down");
    CHECK(schedule_lr(&c, 110) == 0.0 && schedule_lr(&c, 500) == 0.0, "0 at max_step and after");
}

/* RAdam against the authors' update written out in double: momentum-only
 * while rho_t < 5 (the first 5 updates at beta2 0.98), then the rectified
 * adaptive step, decoupled decay throughout. */
TEST(radam_follows_its_definition) {
    Config c;
    config_defaults(&c);
    snprintf(c.optim, sizeof c.optim, "radam");
    c.beta1 = 0.9, c.beta2 = 0.98, c.eps = 1e-8, c.weight_decay = 0.1;
    snprintf(c.decay_groups, sizeof c.decay_groups, "linear");
    ParamSet ps;
    params_init(&ps);
    float *w, *dw;
    Error err = {0};
    params_add(&ps, "w", &w, &dw, GROUP_LINEAR, 1, (size_t)3);
    REQUIRE(params_allocate(&ps, &err) == 0, "%s", err.msg);
    Optimizer o;
    REQUIRE(optim_build(&o, &c, &ps, &err) == 0, "%s", err.msg);
    double p[3] = {0.5, -1.0, 2.0}, m[3] = {0}, v[3] = {0};
    for (int i = 0; i < 3; i++) w[i] = (float)p[i];
    const double lr = 0.01, rho_inf = 2 / (1 - 0.98) - 1;
    int momentum_steps = 0;
    for (int t = 1; t <= 12; t++) {
        for (int i = 0; i < 3; i++) dw[i] = (float)(sin(t + i) + 0.3 * p[i]);
        optim_step(&o, &ps, lr, (uint64_t)t);
        const double b2t = pow(0.98, t), rho = rho_inf - 2 * t * b2t / (1 - b2t);
        for (int i = 0; i < 3; i++) {
            const double g = dw[i];
            p[i] -= lr * 0.1 * p[i];
            m[i] = 0.9 * m[i] + 0.1 * g;
            v[i] = 0.98 * v[i] + 0.02 * g * g;
            if (rho >= 5) {
                const double r = sqrt((1 - b2t) * (rho - 4) / (rho_inf - 4) * (rho - 2) / rho * rho_inf / (rho_inf - 2));
                p[i] -= lr * r / (1 - pow(0.9, t)) * m[i] / (sqrt(v[i]) + 1e-8);
            } else {
                p[i] -= lr / (1 - pow(0.9, t)) * m[i];
                momentum_steps += i == 0;
            }
            CHECK(fabs(w[i] - p[i]) < 1e-5 * (1 + fabs(p[i])), "update %d, w[%d] = %.8f, want %.8f", t, i, w[i], p[i]);
        }
    }
    CHECK(momentum_steps == 5, "momentum-only updates: %d (rho_t < 5 for t <= 5 at beta2 0.98)", momentum_steps);
    optim_free(&o);
    params_free(&ps);
}

/* spec moe-brainformer.md §6.1 / §9.4: Adagrad with per-tensor clipping
 * against its definition, in double: two tensors, one whose gradient norm
 * stays below clip and one above it (only its step is scaled), L2 weight
 * decay in the gradient (before the norm), the accumulator growing. */
TEST(adagrad_with_per_tensor_clipping_follows_its_definition) {
    Config c;
    config_defaults(&c);
    snprintf(c.optim, sizeof c.optim, "adagrad");
    snprintf(c.clip_mode, sizeof c.clip_mode, "per_tensor");
    snprintf(c.decay_groups, sizeof c.decay_groups, "linear");
    c.clip = 0.5, c.weight_decay = 0.01;
    ParamSet ps;
    params_init(&ps);
    float *w[2], *dw[2];
    Error err = {0};
    params_add(&ps, "small", &w[0], &dw[0], GROUP_BIAS, 1, (size_t)3);  /* no decay */
    params_add(&ps, "large", &w[1], &dw[1], GROUP_LINEAR, 1, (size_t)3); /* decay 0.01 */
    REQUIRE(params_allocate(&ps, &err) == 0, "%s", err.msg);
    Optimizer o;
    REQUIRE(optim_build(&o, &c, &ps, &err) == 0, "%s", err.msg);
    CHECK(o.global_clip == 0.0 && o.tensor_clip == 0.5, "clip %g / %g: per_tensor leaves no global clip",
          o.global_clip, o.tensor_clip);
    double p[2][3] = {{0.5, -1.0, 2.0}, {1.0, 0.25, -0.75}}, G[2][3] = {{0}};
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < 3; i++) w[k][i] = (float)p[k][i];
    const double lr = 0.07, scale[2] = {0.1, 3.0}, decay[2] = {0.0, 0.01};
    int clipped[2] = {0};
    for (int t = 1; t <= 6; t++) {
        for (int k = 0; k < 2; k++)
            for (int i = 0; i < 3; i++) dw[k][i] = (float)(scale[k] * sin(t + 2 * i + k));
        optim_step(&o, &ps, lr, (uint64_t)t);
        for (int k = 0; k < 2; k++) {
            double g[3], norm = 0;
            for (int i = 0; i < 3; i++) g[i] = dw[k][i] + decay[k] * p[k][i], norm += g[i] * g[i];
            norm = sqrt(norm);
            const double clr = norm > 0.5 ? lr * 0.5 / (norm + 1e-10) : lr;
            clipped[k] += norm > 0.5;
            for (int i = 0; i < 3; i++) {
                G[k][i] += g[i] * g[i];
                p[k][i] -= clr * g[i] / (sqrt(G[k][i]) + 1e-10);
                CHECK(fabs(w[k][i] - p[k][i]) < 1e-6 * (1 + fabs(p[k][i])), "update %d, %s[%d] = %.8f, want %.8f", t,
                      k ? "large" : "small", i, w[k][i], p[k][i]);
            }
        }
    }
    CHECK(clipped[0] == 0 && clipped[1] == 6, "clipped updates: %d, %d (the test needs 0 and 6)", clipped[0],
          clipped[1]);
    optim_free(&o);
    snprintf(c.optim, sizeof c.optim, "adamw");
    CHECK(optim_build(&o, &c, &ps, &err) != 0 && strstr(err.msg, "clip_mode"), "per_tensor with adamw accepted");
    params_free(&ps);
}

/* §6.2 / §9.5: the adaptive-span trainer's warm-up, min(1, s / warmup): the
 * first update at lr 0, the full lr from update `warmup` on, no decay. */
TEST(schedule_constant_from_zero_matches_the_adaptive_span_trainer) {
    Config c = schedule_config("constant_from_zero", 32000, 100000);
    c.lr = 0.07;
    CHECK(schedule_lr(&c, 0) == 0.0, "update 0 at %g, not 0", schedule_lr(&c, 0));
    CHECK(fabs(schedule_lr(&c, 16000) - 0.035) < 1e-15, "half-way: %.9g", schedule_lr(&c, 16000));
    CHECK(schedule_lr(&c, 32000) == 0.07 && schedule_lr(&c, 99999) == 0.07, "not constant after the warm-up");
}
