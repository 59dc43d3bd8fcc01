/* test_modules.c — every registered module through the same checks:
 * finite-difference gradients (input and every parameter), and for mixers
 * with a step form, step-by-step generation equals forward.
 * To cover a new mixer, add a line to the tables below. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rig.h"
#include "test.h"

typedef struct {
    const char *label, *name, *kind;
    bool causal;
    double dropout, dropatt;
    const char *activation;
    size_t B, T;
    float h; /* finite-difference step; small where kinks (ReLU) are near */
} ModuleCase;

static const ModuleCase gradient_cases[] = {
    {"softmax causal", "softmax", "mixer", true, 0, 0, "gelu", 2, 7, 1e-2f},
    {"softmax bidirectional", "softmax", "mixer", false, 0, 0, "gelu", 2, 7, 1e-2f},
    {"softmax causal, fixed dropatt mask", "softmax", "mixer", true, 0, 0.3, "gelu", 2, 7, 1e-2f},
    {"softmax bidirectional, fixed dropatt mask", "softmax", "mixer", false, 0, 0.3, "gelu", 1, 9, 1e-2f},
    {"softmax causal across tiles", "softmax", "mixer", true, 0, 0, "gelu", 1, 70, 1e-2f},
    {"mlp relu", "mlp", "ffn", true, 0, 0, "relu", 2, 5, 1e-3f},
    {"mlp gelu", "mlp", "ffn", true, 0, 0, "gelu", 2, 5, 1e-2f},
    {"mlp gelu_tanh, fixed dropout mask", "mlp", "ffn", true, 0.25, 0, "gelu_tanh", 2, 5, 1e-2f},
};

static void configure(Config *c, const ModuleCase *mc) {
    rig_config(c);
    c->causal = mc->causal;
    c->dropout = mc->dropout;
    c->dropatt = mc->dropatt;
    snprintf(c->activation, sizeof c->activation, "%s", mc->activation);
}

TEST(module_gradients) {
    for (size_t i = 0; i < sizeof gradient_cases / sizeof gradient_cases[0]; i++) {
        const ModuleCase *mc = &gradient_cases[i];
        Config c;
        configure(&c, mc);
        Rig rig;
        REQUIRE(rig_build(&rig, mc->name, mc->kind, &c, mc->B, mc->T) == 0, "%s: build failed", mc->label);
        int failures = rig_gradcheck(&rig, 40, mc->h);
        CHECK(failures == 0, "%s: %d gradient tensors off", mc->label, failures);
        rig_free(&rig);
    }
}

/* Runs step() over the sequence of batch row 0 and compares with forward. */
static double step_vs_forward(Rig *rig) {
    const size_t T = rig->T, C = rig->C;
    rig->pass.training = false;
    rig->m->ops->forward(rig->m, rig->x, rig->y, &rig->pass);
    float *state = calloc(rig->m->ops->state_size(rig->m, T) + 1, sizeof(float));
    float *scratch = calloc(rig->m->ops->scratch(rig->m, 1, T) + 1, sizeof(float));
    float *out = calloc(C, sizeof(float));
    double worst = 0.0;
    for (size_t t = 0; t < T; t++) {
        rig->m->ops->step(rig->m, state, t, rig->x + t * C, out, scratch);
        for (size_t c = 0; c < C; c++) worst = fmax(worst, fabs(out[c] - rig->y[t * C + c]));
    }
    free(state);
    free(scratch);
    free(out);
    return worst;
}

TEST(module_step_equals_forward) {
    const char *names[][2] = {{"softmax", "mixer"}, {"mlp", "ffn"}};
    for (size_t i = 0; i < 2; i++) {
        Config c;
        rig_config(&c);
        Rig rig;
        REQUIRE(rig_build(&rig, names[i][0], names[i][1], &c, 1, 75) == 0, "build %s", names[i][0]);
        double worst = step_vs_forward(&rig);
        CHECK(worst < 1e-5, "%s: step differs from forward by %.3g", names[i][0], worst);
        rig_free(&rig);
    }
}

/* Output at t must not move when inputs after t change. */
TEST(softmax_causal_ignores_future) {
    Config c;
    rig_config(&c);
    Rig rig;
    REQUIRE(rig_build(&rig, "softmax", "mixer", &c, 2, 80) == 0, "build");
    rig.pass.training = false;
    const size_t T = rig.T, C = rig.C, cut = 37;
    rig.m->ops->forward(rig.m, rig.x, rig.y, &rig.pass);
    float *before = malloc(2 * T * C * sizeof(float));
    memcpy(before, rig.y, 2 * T * C * sizeof(float));
    for (size_t b = 0; b < 2; b++)
        for (size_t t = cut + 1; t < T; t++)
            for (size_t k = 0; k < C; k++) rig.x[(b * T + t) * C + k] += 3.0f;
    rig.m->ops->forward(rig.m, rig.x, rig.y, &rig.pass);
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
