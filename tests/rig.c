/* rig.c — see rig.h. */
#include "rig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/core/rng.h"
#include "gradcheck.h"

void rig_config(Config *c) {
    config_defaults(c);
    c->d_model = 12;
    c->n_head = 3;
    c->d_head = 4;
    c->d_inner = 20;
    c->dropout = 0.0;
    c->dropatt = 0.0;
    c->max_len = 512;
    c->tgt_len = 16;
    c->eval_tgt_len = 16;
    c->diag_size = 5;
    c->linear_chunk = 64;
    c->sparse_ratio = 2.5;
    snprintf(c->kernels, sizeof c->kernels, "elu");
}

static void fill_normal(float *x, size_t n, float std, uint64_t stream) {
    Rng r = rng_make(7, rng_stream(RNG_TEST, stream, 0));
    for (size_t i = 0; i < n; i++) x[i] = std * rng_normal(&r);
}

int rig_build(Rig *rig, const char *name, const char *kind, const Config *cfg, size_t B, size_t T) {
    memset(rig, 0, sizeof *rig);
    rig->cfg = *cfg;
    rig->B = B;
    rig->T = T;
    rig->C = (size_t)cfg->d_model;
    Error err = {0};
    rig->m = module_create(name, kind, &rig->cfg, 0, &err);
    if (!rig->m) {
        printf("    module_create: %s\n", err.msg);
        return -1;
    }
    params_init(&rig->ps);
    rig->m->ops->params(rig->m, &rig->ps);
    if (params_allocate(&rig->ps, &err)) return -1;
    rig->m->ops->init(rig->m, 11);
    fill_normal(rig->ps.values, rig->ps.total, 0.3f, 1);
    Arena count = arena_counting();
    rig->m->ops->layout(rig->m, B, T, &count);
    if (arena_alloc(&rig->arena, count.used, &err)) return -1;
    rig->m->ops->layout(rig->m, B, T, &rig->arena);
    size_t n = B * T * rig->C;
    rig->x = calloc(4 * n, sizeof(float));
    rig->scratch = calloc(rig->m->ops->scratch(rig->m, B, T) + 1, sizeof(float));
    rig->y = rig->x + n;
    rig->r = rig->y + n;
    rig->dx = rig->r + n;
    fill_normal(rig->x, n, 1.0f, 2);
    fill_normal(rig->r, n, 1.0f, 3);
    rig->pass = (Pass){.B = B, .T = T, .training = true, .seed = 5, .step = 3, .scratch = rig->scratch};
    return 0;
}

void rig_free(Rig *rig) {
    module_free(rig->m);
    params_free(&rig->ps);
    arena_free(&rig->arena);
    free(rig->x);
    free(rig->scratch);
}

double rig_loss(void *ctx, double *abs_sum) {
    Rig *rig = ctx;
    rig->m->ops->forward(rig->m, rig->x, rig->y, &rig->pass);
    return weighted_sum(rig->y, rig->r, rig->B * rig->T * rig->C, abs_sum);
}

void rig_backward(Rig *rig) {
    memset(rig->ps.grads, 0, rig->ps.total * sizeof(float));
    rig->m->ops->forward(rig->m, rig->x, rig->y, &rig->pass);
    rig->m->ops->backward(rig->m, rig->r, rig->dx, &rig->pass);
}

int rig_gradcheck(Rig *rig, size_t max_checks, float h) {
    rig_backward(rig);
    int failures = 0;
    /* the analytic gradients are kept aside: the loss closure reruns forward */
    size_t n = rig->B * rig->T * rig->C;
    float *dx = malloc(n * sizeof(float)), *dp = malloc(rig->ps.total * sizeof(float));
    memcpy(dx, rig->dx, n * sizeof(float));
    memcpy(dp, rig->ps.grads, rig->ps.total * sizeof(float));
    failures += gradcheck("dx", rig->x, dx, n, rig_loss, rig, h, max_checks, NULL) != 0;
    for (size_t k = 0; k < rig->ps.count; k++) {
        const ParamSpec *s = &rig->ps.specs[k];
        failures += gradcheck(s->name, rig->ps.values + s->offset, dp + s->offset, s->numel, rig_loss, rig, h,
                              max_checks, NULL) != 0;
    }
    free(dx);
    free(dp);
    return failures;
}
