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
